/*
 * test_driver.c - the topology test driver (fl_driver.h) and the rule it
 * shares with the runtime through fl__ctx_process: a processor rejects a
 * record before it writes or forwards anything for it.
 *
 * The processor under test is a scripted one, run as the topology's
 * "fanout" entry of tests/data/topology/driver.yaml (its store and
 * outputs): each raw record's value is a script of one-letter steps run
 * in order, so that a test states exactly what the processor does before
 * it rejects. The record's key is the store key the steps write.
 *
 * The batch tests run on both backends: several records per commit, a
 * rejection inside a batch, a failure abandoning one, offsets per topic.
 */
#include <criterion/criterion.h>

#include "fl_ctx_int.h"
#include "fl_driver.h"
#include "fl_topics.h"

#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TPART 1

static fl_topology_t *topo;
static fl_driver_t *drv;
static char errstr[512];

/* ---- the scripted processor ---- */

/*
 * Steps: 'p' puts key = the script, 'd' deletes key, 'f' forwards the
 * record to feedline.timeline-ops, 'F' forwards it to a topic that is not
 * an output (and ignores the refusal), 'r' rejects (FL_ERR_INVALID), 'e'
 * fails (FL_ERR_IO). Any other failing step ends the script with its
 * error.
 */
static fl_err_t scripted_process(fl_ctx_t *ctx, const fl_proc_record_t *rec, char *errstr_,
                                 size_t errstr_size)
{
    fl_store_t *s = fl_ctx_store(ctx, FL_STORE_FANOUT);
    const char *script = rec->value;
    fl_err_t err = FL_OK;

    for (size_t i = 0; i < rec->value_len && !err; i++) {
        switch (script[i]) {
        case 'p':
            err = fl_store_put(s, rec->key, rec->key_len, rec->value, rec->value_len);
            break;
        case 'd':
            err = fl_store_delete(s, rec->key, rec->key_len);
            break;
        case 'f':
            err = fl_ctx_forward(ctx, FL_TOPIC_TIMELINE_OPS, 0, rec->key, rec->key_len, rec->value,
                                 rec->value_len);
            break;
        case 'F': /* refused; the script goes on regardless */
            (void)fl_ctx_forward(ctx, FL_TOPIC_POSTS, 0, rec->key, rec->key_len, rec->value,
                                 rec->value_len);
            break;
        case 'r':
            snprintf(errstr_, errstr_size, "script rejects the record");
            return FL_ERR_INVALID;
        case 'e':
            snprintf(errstr_, errstr_size, "script fails");
            return FL_ERR_IO;
        default:
            snprintf(errstr_, errstr_size, "bad script step '%c'", script[i]);
            return FL_ERR_CONFIG;
        }
    }
    if (err)
        snprintf(errstr_, errstr_size, "step failed: %s", fl_err_str(err));
    return err;
}

static const fl_processor_def_t scripted = {.name = "fanout", .process = scripted_process};

/* ---- fixture ---- */

static void load_topology(void)
{
    char path[4096], err[512] = "";
    const char *dir = getenv("FEEDLINE_SOURCE_DIR");

    snprintf(path, sizeof(path), "%s/tests/data/topology/driver.yaml", dir && *dir ? dir : ".");
    topo = fl_topology_load(path, err, sizeof(err));
    cr_assert_not_null(topo, "topology: %s", err);
}

static void setup(void)
{
    char err[512] = "";
    load_topology();
    drv = fl_driver_new(topo, &scripted, TPART, err, sizeof(err));
    cr_assert_not_null(drv, "driver: %s", err);
}

static void teardown(void)
{
    fl_driver_free(drv);
    drv = NULL;
    fl_topology_free(topo);
    topo = NULL;
}

TestSuite(driver, .init = setup, .fini = teardown);

/* Pipes the script with store key key (a C string). */
static fl_err_t run(const char *key, const char *script)
{
    errstr[0] = '\0';
    return fl_driver_pipe_raw(drv, FL_TOPIC_TIMELINE_OPS, key, strlen(key), script, strlen(script),
                              errstr, sizeof(errstr));
}

#define OK(call)                                                                                   \
    do {                                                                                           \
        fl_err_t e_ = (call);                                                                      \
        cr_assert_eq(e_, FL_OK, "%s: %s (%s)", #call, fl_err_str(e_), errstr);                     \
    } while (0)

static fl_store_t *store(void)
{
    fl_store_t *s = fl_driver_store(drv, FL_STORE_FANOUT);
    cr_assert_not_null(s);
    return s;
}

/* The committed or pending value of key, "" when absent. */
static const char *value_of(const char *key)
{
    static char buf[64];
    size_t vlen;
    bool found;
    cr_assert_eq(fl_store_get(store(), key, strlen(key), buf, sizeof(buf) - 1, &vlen, &found),
                 FL_OK);
    buf[found ? vlen : 0] = '\0';
    return buf;
}

static size_t n_outputs(void)
{
    size_t n;
    fl_driver_outputs(drv, &n);
    return n;
}

static size_t n_changelog(void)
{
    size_t n;
    fl_driver_changelog(drv, &n);
    return n;
}

static int64_t committed_offset(void)
{
    int64_t off = -1;
    bool found;
    cr_assert_eq(fl_store_offset(store(), FL_TOPIC_TIMELINE_OPS, TPART, &off, &found), FL_OK);
    return found ? off : -1;
}

/* ---- the rule: reject before writing ---- */

Test(driver, clean_rejection_is_dead_lettered_and_changes_nothing)
{
    OK(run("k1", "p"));
    fl_driver_clear_outputs(drv);
    uint64_t writes = fl_store_writes(store());

    cr_assert_eq(run("k1", "r"), FL_ERR_INVALID);
    cr_assert_str_eq(errstr, "script rejects the record", "the processor's own message");
    cr_assert_eq(fl_driver_dead_letters(drv), 1);
    cr_assert_eq(n_outputs(), 0);
    cr_assert_eq(n_changelog(), 0);
    cr_assert_eq(fl_store_writes(store()), writes);
    cr_assert_eq(fl_store_pending(store()), 0);
    cr_assert_str_eq(value_of("k1"), "p");
    cr_assert_eq(committed_offset(), 2, "a dead-lettered record's offset is committed");

    /* Reading does not count as changing anything. */
    cr_assert_eq(run("k2", "r"), FL_ERR_INVALID);
    cr_assert_eq(fl_driver_dead_letters(drv), 2);
}

static void expect_corrupt(const char *script, const char *what)
{
    size_t dl = fl_driver_dead_letters(drv);
    fl_driver_clear_outputs(drv);
    fl_err_t err = run("k9", script);
    cr_assert_eq(err, FL_ERR_CORRUPT, "%s: got %s (%s)", what, fl_err_str(err), errstr);
    cr_assert(strstr(errstr, "processor fanout rejected"), "%s: message names the processor: %s",
              what, errstr);
    cr_assert(strstr(errstr, "script rejects the record"), "%s: message keeps the processor's: %s",
              what, errstr);
    cr_assert_eq(fl_driver_dead_letters(drv), dl, "%s: a violation is not a dead letter", what);
    cr_assert_eq(n_outputs(), 0, "%s: outputs of the failed record were kept", what);
    cr_assert_eq(n_changelog(), 0, "%s: changes of the failed record were kept", what);
    cr_assert_eq(fl_store_pending(store()), 0);
    cr_assert_str_eq(value_of("k9"), "", "%s: the write before the rejection was kept", what);
}

Test(driver, writing_then_rejecting_is_corruption)
{
    expect_corrupt("pr", "put, reject");
    expect_corrupt("dr", "delete, reject");
    expect_corrupt("ppdr", "puts and a delete, reject");
    expect_corrupt("fr", "forward, reject");
    expect_corrupt("pfr", "put, forward, reject");
    cr_assert_eq(committed_offset(), -1, "nothing was committed");
}

/* A write or forward that was refused is still a call made before the
 * rejection: the processor did not check the record first. */
Test(driver, refused_forward_then_rejecting_is_corruption)
{
    expect_corrupt("Fr", "forward to a non-output, reject");
}

Test(driver, other_failures_keep_nothing_and_are_not_dead_letters)
{
    OK(run("k1", "p"));
    cr_assert_eq(run("k1", "dfe"), FL_ERR_IO);
    cr_assert_eq(fl_driver_dead_letters(drv), 0);
    cr_assert_str_eq(value_of("k1"), "p");
    cr_assert_eq(committed_offset(), 1);
}

Test(driver, ctx_process_passes_results_and_messages_through)
{
    fl_ctx_t ctx = {.topo = topo,
                    .proc = fl_topology_processor(topo, "fanout"),
                    .partition = TPART,
                    .stores = (fl_store_t *[]){store()}};
    fl_proc_record_t rec = {.topic = FL_TOPIC_TIMELINE_OPS,
                            .partition = TPART,
                            .key = "k",
                            .key_len = 1,
                            .value = "r",
                            .value_len = 1};
    char msg[128] = "";

    cr_assert_eq(fl__ctx_process(&ctx, &scripted, &rec, msg, sizeof(msg)), FL_ERR_INVALID);
    cr_assert_str_eq(msg, "script rejects the record");
    rec.value = "pr";
    rec.value_len = 2;
    cr_assert_eq(fl__ctx_process(&ctx, &scripted, &rec, msg, sizeof(msg)), FL_ERR_CORRUPT);
    cr_assert(strstr(msg, "after 1 store writes and 0 forwards"), "%s", msg);
    /* A message buffer too small for it all is cut, not overrun. */
    char tiny[8];
    cr_assert_eq(fl__ctx_process(&ctx, &scripted, &rec, tiny, sizeof(tiny)), FL_ERR_CORRUPT);
    cr_assert_eq(strlen(tiny), sizeof(tiny) - 1);
    fl_store_abort(store());
}

/* ---- batches of several records, on both backends ---- */

static fl_driver_t *new_batched(fl_driver_backend_t backend, size_t n, const char *tmp_dir)
{
    char err[512] = "";
    fl_driver_opts_t opts = {.backend = backend, .batch_records = n, .tmp_dir = tmp_dir};
    fl_driver_t *d = fl_driver_new_opts(topo, &scripted, TPART, &opts, err, sizeof(err));
    cr_assert_not_null(d, "driver: %s", err);
    return d;
}

/* Replaces the fixture's driver. */
static void use_batched(fl_driver_backend_t backend, size_t n)
{
    fl_driver_free(drv);
    drv = new_batched(backend, n, NULL);
}

/* The changelog as "key=value" (or "key-" for a tombstone), space separated. */
static const char *changelog_str(void)
{
    static char buf[1024];
    size_t n, len = 0;
    const fl_driver_record_t *r = fl_driver_changelog(drv, &n);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(r[i].topic, FL_STORE_FANOUT);
        cr_assert_eq(r[i].partition, TPART);
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%.*s%s%.*s", i ? " " : "",
                                (int)r[i].klen, (const char *)r[i].key, r[i].value ? "=" : "-",
                                (int)r[i].vlen, r[i].value ? (const char *)r[i].value : "");
    }
    return buf;
}

static void batch_commits_every_n_records(fl_driver_backend_t backend)
{
    use_batched(backend, 3);
    OK(run("k1", "p"));
    OK(run("k2", "pf"));
    cr_assert_str_eq(changelog_str(), "", "committed before the batch was full");
    cr_assert_eq(n_outputs(), 1, "outputs are seen as they are forwarded");
    cr_assert_str_eq(value_of("k1"), "p", "reads see the open batch");
    cr_assert_eq(committed_offset(), -1);
    OK(run("k1", "pp")); /* the same key again in the batch: one changelog record */
    cr_assert_str_eq(changelog_str(), "k1=pp k2=pf");
    cr_assert_eq(committed_offset(), 3);
    cr_assert_eq(fl_store_pending(store()), 0);

    /* A partial batch waits for a flush. */
    OK(run("k2", "d"));
    cr_assert_str_eq(value_of("k2"), "");
    cr_assert_eq(committed_offset(), 3);
    OK(fl_driver_flush(drv, errstr, sizeof(errstr)));
    cr_assert_str_eq(changelog_str(), "k1=pp k2=pf k2-");
    cr_assert_eq(committed_offset(), 4);
    OK(fl_driver_flush(drv, errstr, sizeof(errstr))); /* nothing open: nothing to do */
    cr_assert_str_eq(changelog_str(), "k1=pp k2=pf k2-");
    cr_assert_str_eq(value_of("k2"), "");
    cr_assert_str_eq(value_of("k1"), "pp");
}

Test(driver, batch_commits_every_n_records_memory)
{
    batch_commits_every_n_records(FL_DRIVER_MEMORY);
}

Test(driver, batch_commits_every_n_records_rocksdb)
{
    batch_commits_every_n_records(FL_DRIVER_ROCKSDB);
}

/* As in the runtime: the rejected record is dead-lettered and the others
 * of its batch commit. */
static void rejected_record_leaves_the_rest_of_its_batch(fl_driver_backend_t backend)
{
    use_batched(backend, 4);
    OK(run("k1", "pf"));
    cr_assert_eq(run("k2", "r"), FL_ERR_INVALID);
    cr_assert_eq(fl_driver_dead_letters(drv), 1, "counted as it happens");
    OK(run("k3", "p"));
    cr_assert_str_eq(value_of("k1"), "pf", "the rejection dropped an earlier record");
    OK(run("k4", "p"));
    cr_assert_str_eq(changelog_str(), "k1=pf k3=p k4=p");
    cr_assert_eq(n_outputs(), 1);
    cr_assert_eq(committed_offset(), 4, "the dead letter's offset commits with its batch");
    cr_assert_eq(fl_driver_dead_letters(drv), 1);
}

Test(driver, rejected_record_leaves_the_rest_of_its_batch_memory)
{
    rejected_record_leaves_the_rest_of_its_batch(FL_DRIVER_MEMORY);
}

Test(driver, rejected_record_leaves_the_rest_of_its_batch_rocksdb)
{
    rejected_record_leaves_the_rest_of_its_batch(FL_DRIVER_ROCKSDB);
}

/* Any other failure abandons the whole open batch, as the runtime aborts
 * its transaction and reprocesses from the stored offsets. */
static void failure_abandons_the_open_batch(fl_driver_backend_t backend)
{
    use_batched(backend, 3);
    OK(run("k0", "p"));
    OK(run("k0", "p"));
    OK(run("k0", "p")); /* committed: offset 3 */
    fl_driver_clear_outputs(drv);
    OK(run("k1", "pf"));
    cr_assert_eq(run("k2", "r"), FL_ERR_INVALID);
    cr_assert_eq(run("k3", "pfe"), FL_ERR_IO);
    cr_assert_eq(n_outputs(), 0, "outputs of the abandoned batch were kept");
    cr_assert_eq(fl_driver_dead_letters(drv), 0, "a dead letter of the abandoned batch was kept");
    cr_assert_eq(fl_store_pending(store()), 0);
    cr_assert_str_eq(value_of("k1"), "");
    cr_assert_str_eq(value_of("k0"), "p");

    /* Piped again, the batch's records get the same offsets. */
    OK(run("k1", "p"));
    OK(fl_driver_flush(drv, errstr, sizeof(errstr)));
    cr_assert_eq(committed_offset(), 4);
    cr_assert_str_eq(changelog_str(), "k1=p");
}

Test(driver, failure_abandons_the_open_batch_memory)
{
    failure_abandons_the_open_batch(FL_DRIVER_MEMORY);
}

Test(driver, failure_abandons_the_open_batch_rocksdb)
{
    failure_abandons_the_open_batch(FL_DRIVER_ROCKSDB);
}

/* Every topic keeps its own offsets, and a commit stores them all. */
Test(driver, offsets_per_topic)
{
    int64_t off = -1;
    bool found;

    use_batched(FL_DRIVER_ROCKSDB, 2);
    OK(fl_driver_pipe_raw(drv, FL_TOPIC_POSTS, "a", 1, "p", 1, errstr, sizeof(errstr)));
    OK(fl_driver_pipe_raw(drv, FL_TOPIC_FOLLOWS, "b", 1, "p", 1, errstr, sizeof(errstr)));
    OK(fl_driver_pipe_raw(drv, FL_TOPIC_POSTS, "c", 1, "p", 1, errstr, sizeof(errstr)));
    OK(fl_driver_flush(drv, errstr, sizeof(errstr)));
    cr_assert_eq(fl_store_offset(store(), FL_TOPIC_POSTS, TPART, &off, &found), FL_OK);
    cr_assert(found && off == 2, "posts at %" PRId64, off);
    cr_assert_eq(fl_store_offset(store(), FL_TOPIC_FOLLOWS, TPART, &off, &found), FL_OK);
    cr_assert(found && off == 1, "follows at %" PRId64, off);
}

static int count_entries(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)path;
    (void)sb;
    (void)flag;
    return ftw->level > 0; /* stop at the first entry below the top */
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

Test(driver, rocksdb_stores_live_in_a_directory_removed_by_free)
{
    char parent[] = "/tmp/fl_test_driver_XXXXXX";
    cr_assert_not_null(mkdtemp(parent));
    fl_driver_t *d = new_batched(FL_DRIVER_ROCKSDB, 5, parent);
    cr_assert_eq(nftw(parent, count_entries, 8, FTW_PHYS), 1, "no store directory");
    cr_assert_eq(fl_driver_pipe_raw(d, FL_TOPIC_POSTS, "a", 1, "p", 1, errstr, sizeof(errstr)),
                 FL_OK);
    fl_driver_free(d);
    int left = nftw(parent, count_entries, 8, FTW_PHYS);
    nftw(parent, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    cr_assert_eq(left, 0, "the driver left files in %s", parent);

    char err[256] = "";
    fl_driver_opts_t bad = {.backend = FL_DRIVER_ROCKSDB, .tmp_dir = "/nonexistent/feedline"};
    cr_assert_null(fl_driver_new_opts(topo, &scripted, TPART, &bad, err, sizeof(err)));
    cr_assert_neq(err[0], '\0');
}
