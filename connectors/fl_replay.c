/*
 * fl_replay.c - `feedline replay` and `feedline generations` (fl_replay.h).
 *
 * replay: derive generation N's topology from the live one, create its
 * topics, run its programs stage by stage until each is caught up (lag
 * measured as `feedline lag` does, fl_lag.h), stop them, report. The
 * programs are the same binaries as the live pipeline's: a rebuild is
 * what live processing computes, from the same records in the same order.
 * generations switch: the Redis database and the PostgreSQL schema of the
 * new generation are moved to the live names, each in one atomic step.
 */
#include "fl_replay.h"

#include "fl_kafka_admin.h"
#include "fl_lag.h"
#include "fl_sink_store.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <libgen.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MEASURE_MS   10000
#define CAUGHT_UP_MS 5000
#define STOP_WAIT_S  60
#define MAX_PROGRAMS 32

/* A message (or path) into err, cut at its size: paths may be long. */
__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t size, const char *fmt,
                                                          ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *gens_dir(const char *opt)
{
    if (opt)
        return opt;
    return getenv("FEEDLINE_GENERATIONS") && *getenv("FEEDLINE_GENERATIONS")
               ? getenv("FEEDLINE_GENERATIONS")
               : FL_GENERATIONS_DEFAULT_DIR;
}

static void gen_path(char *out, size_t size, const char *dir, int n, const char *leaf)
{
    snprintf(out, size, "%s/g%d%s%s", dir, n, leaf ? "/" : "", leaf ? leaf : "");
}

/* The live generation: DIR/live's target "gK", 0 without the link, -1 when
 * the link names something else. */
static int gen_live(const char *dir)
{
    char link[PATH_MAX], buf[64];
    int k;
    snprintf(link, sizeof(link), "%s/live", dir);
    ssize_t n = readlink(link, buf, sizeof(buf) - 1);
    if (n < 0)
        return errno == ENOENT ? 0 : -1;
    buf[n] = '\0';
    return sscanf(buf, "g%d", &k) == 1 && k >= 0 ? k : -1;
}

/* The highest N of DIR/gN/topology.yaml (with built: of a generation whose
 * build finished, DIR/gN/replay.json; generation 0 always is), -1 when
 * there is none. */
static int gen_newest(const char *dir, bool built)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int best = -1, k;
    char path[PATH_MAX], rest[8];
    if (!d)
        return -1;
    while ((e = readdir(d))) {
        if (sscanf(e->d_name, "g%d%1s", &k, rest) != 1 || k < 0)
            continue;
        gen_path(path, sizeof(path), dir, k, built && k ? "replay.json" : "topology.yaml");
        if (access(path, R_OK) == 0 && k > best)
            best = k;
    }
    closedir(d);
    return best;
}

/* Generation n's topology: its file, or for 0 without one the base file. */
static fl_topology_t *gen_load(const char *dir, int n, const char *base_path, char *err,
                               size_t err_size)
{
    char path[PATH_MAX];
    gen_path(path, sizeof(path), dir, n, "topology.yaml");
    if (access(path, R_OK) != 0) {
        if (n != 0) {
            set_err(err, err_size, "generation %d has no %s", n, path);
            return NULL;
        }
        snprintf(path, sizeof(path), "%s", base_path);
    }
    return fl_topology_load(path, err, err_size);
}

/* Writes t as DIR/gN/topology.yaml, through a rename. */
static int gen_write(const char *dir, int n, const fl_topology_t *t, char *err, size_t err_size)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    gen_path(path, sizeof(path), dir, n, NULL);
    if (mkdir(dir, 0755) && errno != EEXIST) {
        set_err(err, err_size, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    if (mkdir(path, 0755) && errno != EEXIST) {
        set_err(err, err_size, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    gen_path(path, sizeof(path), dir, n, "topology.yaml");
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    /* it holds the JWT secret */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        set_err(err, err_size, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    fprintf(f,
            "# generation %d (feedline replay): its topics, groups, Redis database and\n"
            "# PostgreSQL schema; fixed when the generation was built\n",
            n);
    fl_topology_write(t, f);
    if (fflush(f) || fsync(fileno(f)) || fclose(f) || rename(tmp, path)) {
        set_err(err, err_size, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* DIR/live -> gN, replaced by a rename. */
static int gen_set_live(const char *dir, int n, char *err, size_t err_size)
{
    char link[PATH_MAX], tmp[PATH_MAX + 8], target[32];
    snprintf(link, sizeof(link), "%s/live", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", link);
    snprintf(target, sizeof(target), "g%d", n);
    unlink(tmp);
    if (symlink(target, tmp) || rename(tmp, link)) {
        set_err(err, err_size, "cannot point %s at %s: %s", link, target, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- deriving generation N -------------------------------------------- */

/* "gN.<name>", the name with any earlier generation's prefix taken off. */
static char *gen_name(const char *name, int n)
{
    const char *base = name, *p = name + 1;
    char *out = NULL;
    if (name[0] == 'g') {
        while (isdigit((unsigned char)*p))
            p++;
        if (p > name + 1 && *p == '.')
            base = p + 1;
    }
    return asprintf(&out, "g%d.%s", n, base) < 0 ? NULL : out;
}

/* The stores' generation: every topic but the inputs under "gN." in Kafka
 * (topic_prefix: the programs keep the topology's names), every
 * processor's group "gN.<group>". */
static int derive_stores(fl_topology_t *t, int n)
{
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "g%d.", n);
    if (fl_topology_set_topic_prefix(t, prefix))
        return -1;
    for (size_t k = 0; k < t->n_processors; k++) {
        char *g = gen_name(t->processors[k].group, n);
        if (!g)
            return -1;
        free(t->processors[k].group);
        t->processors[k].group = g;
    }
    return 0;
}

static int derive_sink(fl_topology_t *t, fl_sink_cfg_t *s, int n, int64_t redis_db)
{
    char *g = gen_name(s->group, n);
    if (!g)
        return -1;
    free(s->group);
    s->group = g;
    if (s->destination == FL_SINK_REDIS) {
        t->endpoints.redis_db = redis_db;
        return 0;
    }
    free(t->endpoints.postgres_schema);
    return asprintf(&t->endpoints.postgres_schema, "feedline_g%d", n) < 0 ? -1 : 0;
}

/* The lowest Redis database above 0 that no generation of dir uses. */
static int64_t free_redis_db(const char *dir, const char *base_path, int newest)
{
    bool used[1024] = {true};
    char err[512];
    for (int k = 0; k <= newest; k++) {
        fl_topology_t *t = gen_load(dir, k, base_path, err, sizeof(err));
        if (t && t->endpoints.redis_db < 1024)
            used[t->endpoints.redis_db] = true;
        fl_topology_free(t);
    }
    for (int64_t d = 1; d < 1024; d++)
        if (!used[d])
            return d;
    return -1;
}

/* ---- the programs of a generation -------------------------------------- */

typedef struct prog {
    const char *name;
    const fl_processor_t *proc; /* or */
    const fl_sink_cfg_t *sink;
    int stage;
    pid_t pid;
    char log[PATH_MAX];
    fl_lag_part_t *parts;
    size_t n_parts;
} prog_t;

typedef struct stage {
    char names[256];
    int64_t start_ms, done_ms;
    int64_t records; /* positions summed when caught up */
} stage_t;

typedef struct run {
    const fl_topology_t *t;
    const char *dir;
    int gen;
    char bindir[PATH_MAX], state[PATH_MAX], topo_path[PATH_MAX];
    prog_t progs[MAX_PROGRAMS];
    size_t n_progs;
    stage_t stages[MAX_PROGRAMS];
    int n_stages;
    fl_lag_t *lag;
    redisContext *redis;
    PGconn *pg;
    int64_t caught_up;
    int metrics_base; /* program i serves /metrics on 127.0.0.1:metrics_base+i; 0 = none */
    /* --until: each bounded input partition's end, and the same as the
     * programs' --input-until argument; NULL / 0 when the inputs are read
     * to their ends */
    fl_input_offset_t *bounds;
    size_t n_bounds;
    char *until_arg;
    bool tty;
    volatile sig_atomic_t *stop;
} run_t;

static bool reads_inputs_only(const fl_topology_t *t, const fl_processor_t *p)
{
    for (size_t i = 0; i < p->n_inputs; i++) {
        const fl_topic_t *tp = fl_topology_topic(t, p->inputs[i]);
        if (!tp || tp->kind != FL_TOPIC_INPUT)
            return false;
    }
    return true;
}

static int add_prog(run_t *r, const char *name, const fl_processor_t *p, const fl_sink_cfg_t *s,
                    int stage)
{
    if (r->n_progs == MAX_PROGRAMS)
        return -1;
    prog_t *g = &r->progs[r->n_progs++];
    *g = (prog_t){.name = name, .proc = p, .sink = s, .stage = stage};
    g->parts =
        fl_lag_parts(r->t, p ? p->inputs : s->inputs, p ? p->n_inputs : s->n_inputs, &g->n_parts);
    if (!g->parts)
        return -1;
    stage_t *st = &r->stages[stage];
    size_t len = strlen(st->names);
    snprintf(st->names + len, sizeof(st->names) - len, "%s%s", len ? ", " : "", name);
    if (stage >= r->n_stages)
        r->n_stages = stage + 1;
    return 0;
}

static int spawn(run_t *r, prog_t *g)
{
    char bin[PATH_MAX + 64];
    if (g->proc)
        snprintf(bin, sizeof(bin), "%s/feedline-%s", r->bindir, g->name);
    else
        snprintf(bin, sizeof(bin), "%s/feedline-%s-sink", r->bindir,
                 g->sink->destination == FL_SINK_REDIS ? "redis" : "pg");
    char logs[PATH_MAX];
    gen_path(logs, sizeof(logs), r->dir, r->gen, "logs");
    mkdir(logs, 0755);
    set_err(g->log, sizeof(g->log), "%s/%s.log", logs, g->name);
    /* everything the child needs, before fork: it only opens and execs */
    char metrics[32];
    snprintf(metrics, sizeof(metrics), "127.0.0.1:%d", r->metrics_base + (int)(g - r->progs));
    /* --rebuild: the replay batches of the topology's settings */
    char *argv[12] = {bin, "--topology", r->topo_path, "--rebuild"};
    int argc = 4;
    if (r->metrics_base) {
        argv[argc++] = "--metrics";
        argv[argc++] = metrics;
    }
    if (!g->sink) {
        argv[argc++] = "--state-dir";
        argv[argc++] = r->state;
    }
    if (r->until_arg) {
        argv[argc++] = "--input-until";
        argv[argc++] = r->until_arg;
    }
    argv[argc] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(g->log, O_WRONLY | O_CREAT | O_APPEND, 0644),
            nul = open("/dev/null", O_RDONLY);
        if (fd < 0 || nul < 0)
            _exit(127);
        dup2(nul, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(bin, argv);
        dprintf(2, "cannot run %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    g->pid = pid;
    return 0;
}

static void show_log_tail(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    long pos;
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    pos = ftell(f);
    fseek(f, pos > 4000 ? pos - 4000 : 0, SEEK_SET);
    if (pos > 4000 && !fgets(line, sizeof(line), f))
        line[0] = '\0';
    while (fgets(line, sizeof(line), f))
        fprintf(stderr, "  | %s", line);
    fclose(f);
}

/* A program that exited by itself: the replay fails. */
static prog_t *exited(run_t *r)
{
    for (size_t i = 0; i < r->n_progs; i++) {
        int status;
        if (r->progs[i].pid > 0 && waitpid(r->progs[i].pid, &status, WNOHANG) == r->progs[i].pid) {
            r->progs[i].pid = 0;
            return &r->progs[i];
        }
    }
    return NULL;
}

static void stop_all(run_t *r)
{
    for (size_t i = 0; i < r->n_progs; i++)
        if (r->progs[i].pid > 0)
            kill(r->progs[i].pid, SIGTERM);
    int64_t until = now_ms() + STOP_WAIT_S * 1000;
    for (size_t i = 0; i < r->n_progs; i++) {
        prog_t *g = &r->progs[i];
        while (g->pid > 0) {
            int status;
            pid_t w = waitpid(g->pid, &status, WNOHANG);
            if (w == g->pid || (w < 0 && errno == ECHILD)) {
                g->pid = 0;
            } else if (now_ms() > until) {
                fprintf(stderr, "feedline replay: %s did not stop in %d s: SIGKILL\n", g->name,
                        STOP_WAIT_S);
                kill(g->pid, SIGKILL);
                waitpid(g->pid, &status, 0);
                g->pid = 0;
            } else {
                usleep(50000);
            }
        }
    }
}

/* Positions of g from its group (a processor) or its destination (a sink). */
static fl_err_t positions(run_t *r, prog_t *g, char *err, size_t err_size)
{
    if (g->proc)
        return fl_lag_group_positions(r->lag, g->proc->group, g->parts, g->n_parts, MEASURE_MS, err,
                                      err_size);
    if (g->sink->destination == FL_SINK_REDIS) {
        char epoch[128];
        if (!r->redis &&
            !(r->redis = fl_sink_store_redis_connect(&r->t->endpoints, MEASURE_MS, err, err_size)))
            return FL_ERR_UNAVAILABLE;
        fl_err_t e = fl_sink_store_redis_offsets(r->redis, g->sink->name, g->parts, g->n_parts,
                                                 epoch, sizeof(epoch), err, err_size);
        if (e) {
            redisFree(r->redis);
            r->redis = NULL;
        }
        return e;
    }
    if (!r->pg) {
        char *ci = fl_sink_store_pg_conninfo(&r->t->endpoints, MEASURE_MS);
        r->pg = ci ? PQconnectdb(ci) : NULL;
        free(ci);
        if (!r->pg || PQstatus(r->pg) != CONNECTION_OK) {
            set_err(err, err_size, "PostgreSQL: %s",
                    r->pg ? strtok(PQerrorMessage(r->pg), "\n") : "out of memory");
            PQfinish(r->pg);
            r->pg = NULL;
            return FL_ERR_UNAVAILABLE;
        }
    }
    fl_err_t e =
        fl_sink_store_pg_offsets(r->pg, g->sink->name, g->parts, g->n_parts, err, err_size);
    if (e) {
        PQfinish(r->pg);
        r->pg = NULL;
    }
    return e;
}

/* The end of a bounded input partition, INT64_MAX when it has none. */
static int64_t bound_of(const run_t *r, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < r->n_bounds; i++)
        if (r->bounds[i].partition == partition && !strcmp(r->bounds[i].topic, topic))
            return r->bounds[i].offset;
    return INT64_MAX;
}

/* Measured parts with --until: a bounded input partition ends at its bound. */
static void cut_at_bounds(const run_t *r, fl_lag_part_t *parts, size_t n)
{
    for (size_t k = 0; k < n && r->n_bounds; k++) {
        int64_t b = bound_of(r, parts[k].topic, parts[k].partition);
        if (parts[k].end > b) {
            parts[k].end = b;
            parts[k].lag = parts[k].first < b ? b - parts[k].first : 0;
        }
    }
}

/*
 * --until WHEN into *bounds (*n of them) and *arg, the programs'
 * --input-until (the caller frees both): TOPIC:PARTITION:OFFSET,... (the
 * named input partitions end there, the others are read to their ends),
 * or a time, YYYY-MM-DDTHH:MM:SS[.mmm]Z or milliseconds since the epoch:
 * every input partition ends at its first record stamped at or after it
 * (Kafka's record time: when it was produced), or at its end now when it
 * has none. 0, or -1 with err set.
 */
static int resolve_until(const fl_topology_t *t, const char *when, fl_input_offset_t **bounds,
                         size_t *n, char **arg, char *err, size_t err_size)
{
    char msg[512];
    *n = 0;
    if (isalpha((unsigned char)*when)) {
        if (fl_topology_parse_input_offsets(t, when, bounds, n, msg, sizeof(msg)))
            return set_err(err, err_size, "--until: %s", msg), -1;
    } else {
        int64_t ms = -1;
        char *end = NULL;
        struct tm tm = {0};
        const char *rest = strptime(when, "%Y-%m-%dT%H:%M:%S", &tm);
        if (rest) {
            ms = (int64_t)timegm(&tm) * 1000;
            if (*rest == '.' && isdigit((unsigned char)rest[1])) {
                long frac = strtol(rest + 1, &end, 10);
                int digits = (int)(end - rest - 1);
                while (digits > 3)
                    frac /= 10, digits--;
                while (digits < 3)
                    frac *= 10, digits++;
                ms += frac;
                rest = end;
            }
            if (strcmp(rest, "Z"))
                ms = -1; /* a time zone other than UTC is not guessed */
        } else if (isdigit((unsigned char)*when)) {
            ms = strtoll(when, &end, 10);
            if (*end)
                ms = -1;
        }
        if (ms < 0)
            return set_err(err, err_size,
                           "--until wants YYYY-MM-DDTHH:MM:SS[.mmm]Z, milliseconds since the "
                           "epoch or TOPIC:PARTITION:OFFSET,..., got %s",
                           when),
                   -1;
        size_t cap = 0;
        for (size_t i = 0; i < t->n_topics; i++)
            if (t->topics[i].kind == FL_TOPIC_INPUT)
                cap += (size_t)t->topics[i].partitions;
        if (!(*bounds = calloc(cap ? cap : 1, sizeof(**bounds))))
            return set_err(err, err_size, "out of memory"), -1;
        rd_kafka_t *rk = fl_kafka_admin_new(t->endpoints.kafka, err, err_size);
        if (!rk)
            return -1;
        rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new((int)cap);
        for (size_t i = 0; i < t->n_topics; i++)
            for (int32_t p = 0; t->topics[i].kind == FL_TOPIC_INPUT && p < t->topics[i].partitions;
                 p++)
                rd_kafka_topic_partition_list_add(tpl, t->topics[i].name, p)->offset = ms;
        rd_kafka_resp_err_t kerr = rd_kafka_offsets_for_times(rk, tpl, MEASURE_MS);
        for (int i = 0; !kerr && i < tpl->cnt; i++) {
            rd_kafka_topic_partition_t *e = &tpl->elems[i];
            int64_t lo = 0, hi = 0, off = e->offset;
            kerr = e->err;
            if (!kerr && off < 0) /* nothing stamped at or after it: the end now */
                kerr = rd_kafka_query_watermark_offsets(rk, e->topic, e->partition, &lo, &hi,
                                                        MEASURE_MS),
                off = hi;
            if (!kerr)
                (*bounds)[(*n)++] =
                    (fl_input_offset_t){fl_topology_topic(t, e->topic)->name, e->partition, off};
        }
        if (kerr)
            set_err(err, err_size, "--until: offsets at %" PRId64 " ms: %s", ms,
                    rd_kafka_err2str(kerr));
        rd_kafka_topic_partition_list_destroy(tpl);
        rd_kafka_destroy(rk);
        if (kerr)
            return -1;
    }
    size_t len = 1;
    for (size_t i = 0; i < *n; i++)
        len += strlen((*bounds)[i].topic) + 32;
    if (!(*arg = malloc(len)))
        return set_err(err, err_size, "out of memory"), -1;
    (*arg)[0] = 0;
    for (size_t i = 0, o = 0; i < *n; i++)
        o += (size_t)snprintf(*arg + o, len - o, "%s%s:%d:%" PRId64, i ? "," : "",
                              (*bounds)[i].topic, (*bounds)[i].partition, (*bounds)[i].offset);
    return 0;
}

/* The stage's lag and records read so far; -1 when it could not be measured. */
static int64_t measure(run_t *r, int stage, int64_t *records)
{
    char err[512];
    int64_t lag = 0;
    *records = 0;
    for (size_t i = 0; i < r->n_progs; i++) {
        prog_t *g = &r->progs[i];
        if (g->stage != stage)
            continue;
        for (size_t k = 0; k < g->n_parts; k++)
            g->parts[k].pos = FL_LAG_NONE;
        if (positions(r, g, err, sizeof(err)) ||
            fl_lag_measure(r->lag, g->parts, g->n_parts, MEASURE_MS, err, sizeof(err)))
            return -1;
        cut_at_bounds(r, g->parts, g->n_parts);
        lag += fl_lag_total(g->parts, g->n_parts);
        for (size_t k = 0; k < g->n_parts; k++)
            *records += g->parts[k].pos > 0 ? g->parts[k].pos : 0;
    }
    return lag;
}

static void fmt_n(char *out, size_t size, int64_t v)
{
    char raw[32];
    size_t len = (size_t)snprintf(raw, sizeof(raw), "%" PRId64, v), o = 0;
    for (size_t i = 0; i < len && o + 2 < size; i++) {
        if (i && raw[i - 1] != '-' && (len - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = raw[i];
    }
    out[o] = '\0';
}

/* Runs stage s until its lag is at most caught_up; 0 or -1. */
static int run_stage(run_t *r, int s, int64_t deadline_ms)
{
    stage_t *st = &r->stages[s];
    int64_t last_print = 0, prev_rec = 0, prev_ms = 0, below_since = 0;
    double rate = 0;
    st->start_ms = now_ms();
    for (size_t i = 0; i < r->n_progs; i++)
        if (r->progs[i].stage == s && spawn(r, &r->progs[i])) {
            fprintf(stderr, "feedline replay: cannot start %s: %s\n", r->progs[i].name,
                    strerror(errno));
            return -1;
        }
    for (;;) {
        for (int i = 0; i < 10 && !*r->stop; i++)
            usleep(100000);
        if (*r->stop) {
            fprintf(stderr, "\nfeedline replay: stopped by a signal\n");
            return -1;
        }
        prog_t *dead = exited(r);
        if (dead) {
            fprintf(stderr, "\nfeedline replay: %s exited; its log %s ends:\n", dead->name,
                    dead->log);
            show_log_tail(dead->log);
            return -1;
        }
        int64_t rec, lag = measure(r, s, &rec), t = now_ms();
        if (lag < 0)
            continue; /* a store did not answer: measured again next second */
        if (prev_ms && t > prev_ms)
            rate = rate ? 0.7 * rate + 0.3 * (rec - prev_rec) * 1000.0 / (t - prev_ms)
                        : (rec - prev_rec) * 1000.0 / (t - prev_ms);
        prev_rec = rec;
        prev_ms = t;
        /* caught up: no lag, or (inputs that keep growing) at most
         * --caught-up records for CAUGHT_UP_MS */
        if (lag > r->caught_up)
            below_since = 0;
        else if (!below_since)
            below_since = t;
        bool done = lag == 0 || (below_since && t - below_since >= CAUGHT_UP_MS);
        if (r->tty || done || t - last_print >= 10000) {
            char a[32], b[32];
            fmt_n(a, sizeof(a), rec);
            fmt_n(b, sizeof(b), lag);
            fprintf(stderr, "%sstage %d/%d %s: %s records read, %s behind, %.0f records/s, ETA %s",
                    r->tty ? "\r\033[K" : "", s + 1, r->n_stages, st->names, a, b, rate,
                    done       ? "0 s"
                    : rate > 1 ? ""
                               : "?");
            if (!done && rate > 1)
                fprintf(stderr, "%.0f s", lag / rate);
            fputs(r->tty && !done ? "" : "\n", stderr);
            last_print = t;
        }
        if (done) {
            st->done_ms = t;
            st->records = rec;
            return 0;
        }
        if (deadline_ms && t > deadline_ms) {
            fprintf(stderr, "\nfeedline replay: --timeout reached in stage %d (%s)\n", s + 1,
                    st->names);
            return -1;
        }
    }
}

/* Fails when a topic or group of the new generation already holds
 * something: a folder deleted while Kafka kept its topics must not feed a
 * new build. */
static int check_fresh(run_t *r, char *err, size_t err_size)
{
    for (size_t i = 0; i < r->n_progs; i++) {
        prog_t *g = &r->progs[i];
        if (!g->proc || fl_lag_group_positions(r->lag, g->proc->group, g->parts, g->n_parts,
                                               MEASURE_MS, err, err_size))
            continue;
        for (size_t k = 0; k < g->n_parts; k++)
            if (g->parts[k].pos != FL_LAG_NONE) {
                set_err(err, err_size,
                        "consumer group %s already has offsets (an earlier generation %d?); "
                        "delete it or use another --dir",
                        g->proc->group, r->gen);
                return -1;
            }
    }
    for (size_t i = 0; i < r->t->n_topics; i++) {
        if (r->t->topics[i].kind == FL_TOPIC_INPUT)
            continue;
        char *names[] = {r->t->topics[i].name};
        size_t n;
        fl_lag_part_t *p = fl_lag_parts(r->t, names, 1, &n);
        int rc = p ? -1 : -2;
        /* a topic just created answers once its partitions have leaders */
        for (int attempt = 0; rc == -1 && attempt < 40; attempt++)
            if ((rc = fl_lag_measure(r->lag, p, n, MEASURE_MS, err, err_size) ? -1 : 0))
                usleep(250000);
        for (size_t k = 0; !rc && k < n; k++)
            if (p[k].end > 0) {
                set_err(err, err_size,
                        "topic %s already holds records (an earlier generation %d?); delete it "
                        "or use another --dir",
                        p[k].kafka, r->gen);
                rc = -1;
            }
        free(p);
        if (rc)
            return -1;
    }
    return 0;
}

/* An empty Redis database and PostgreSQL schema for the new generation. */
static int fresh_destinations(const fl_topology_t *t, bool redis, bool pg, char *err,
                              size_t err_size)
{
    if (redis) {
        redisContext *c = fl_sink_store_redis_connect(&t->endpoints, MEASURE_MS, err, err_size);
        redisReply *rep = c ? redisCommand(c, "FLUSHDB") : NULL;
        int rc = rep && rep->type == REDIS_REPLY_STATUS ? 0 : -1;
        if (rc && c)
            set_err(err, err_size, "Redis FLUSHDB in database %" PRId64 ": %s",
                    t->endpoints.redis_db, rep && rep->str ? rep->str : c->errstr);
        freeReplyObject(rep);
        redisFree(c);
        if (rc)
            return -1;
    }
    if (pg) {
        fl_endpoints_t ep = t->endpoints;
        ep.postgres_schema = NULL;
        char *ci = fl_sink_store_pg_conninfo(&ep, MEASURE_MS), sql[256];
        PGconn *c = ci ? PQconnectdb(ci) : NULL;
        free(ci);
        snprintf(
            sql, sizeof(sql),
            "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s",
            t->endpoints.postgres_schema, t->endpoints.postgres_schema);
        PGresult *res = c && PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
        int rc = res && PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
        if (rc)
            set_err(err, err_size, "PostgreSQL schema %s: %s", t->endpoints.postgres_schema,
                    c ? strtok(PQerrorMessage(c), "\n") : "out of memory");
        PQclear(res);
        PQfinish(c);
        if (rc)
            return -1;
    }
    return 0;
}

static void write_report(run_t *r, int64_t input_events, int64_t total_ms)
{
    char path[PATH_MAX];
    gen_path(path, sizeof(path), r->dir, r->gen, "replay.json");
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f,
            "{\"generation\":%d,\"input_events\":%" PRId64 ",\"elapsed_ms\":%" PRId64
            ",\"until\":%s%s%s,\"stages\":[",
            r->gen, input_events, total_ms, r->until_arg ? "\"" : "",
            r->until_arg ? r->until_arg : "null", r->until_arg ? "\"" : "");
    for (int s = 0; s < r->n_stages; s++)
        fprintf(f, "%s{\"programs\":\"%s\",\"elapsed_ms\":%" PRId64 ",\"records\":%" PRId64 "}",
                s ? "," : "", r->stages[s].names, r->stages[s].done_ms - r->stages[s].start_ms,
                r->stages[s].records);
    fputs("]}\n", f);
    fclose(f);
}

/* Records in the input topics now: what the replay reads. */
static int64_t input_records(run_t *r)
{
    int64_t sum = 0;
    for (size_t i = 0; i < r->t->n_topics; i++) {
        if (r->t->topics[i].kind != FL_TOPIC_INPUT)
            continue;
        char *names[] = {r->t->topics[i].name}, err[256];
        size_t n;
        fl_lag_part_t *p = fl_lag_parts(r->t, names, 1, &n);
        if (p && !fl_lag_measure(r->lag, p, n, MEASURE_MS, err, sizeof(err))) {
            cut_at_bounds(r, p, n);
            for (size_t k = 0; k < n; k++)
                sum += p[k].end;
        }
        free(p);
    }
    return sum;
}

static int gen_switch(const char *dir, int n, const char *base_path, char *err, size_t err_size);

static int replay_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "feedline replay: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nusage: feedline %s\n", FL_REPLAY_USAGE);
    return 2;
}

/* Generation 0 written out, the first time a replay runs beside it. */
static int ensure_gen0(const char *dir, const char *base_path, const char *state_dir, char *err,
                       size_t err_size)
{
    char path[PATH_MAX], real[PATH_MAX], base_real[PATH_MAX];
    gen_path(path, sizeof(path), dir, 0, "topology.yaml");
    /* rewritten from the topology given while it is the only generation
     * (not once a replay made others: then it is fixed like them) */
    if (access(path, R_OK) == 0 && (gen_newest(dir, false) > 0 || !realpath(base_path, base_real) ||
                                    !realpath(path, real) || !strcmp(base_real, real)))
        return 0;
    fl_topology_t *t = fl_topology_load(base_path, err, err_size);
    if (!t || gen_write(dir, 0, t, err, err_size)) {
        fl_topology_free(t);
        return -1;
    }
    fl_topology_free(t);
    mkdir(state_dir, 0755);
    gen_path(path, sizeof(path), dir, 0, "state");
    unlink(path);
    if (!realpath(state_dir, real) || symlink(real, path)) {
        set_err(err, err_size, "cannot link %s to %s: %s", path, state_dir, strerror(errno));
        return -1;
    }
    return gen_live(dir) == 0 ? gen_set_live(dir, 0, err, err_size) : 0;
}

static int gen_init(const char *dir, const char *base_path, const char *state_dir)
{
    char err[1024];
    if (!state_dir)
        state_dir = getenv("FEEDLINE_STATE_DIR");
    if (!state_dir || !*state_dir)
        state_dir = ".state";
    if (gen_live(dir) != 0 || gen_newest(dir, false) > 0)
        return 0; /* a replay made generations: they are what they are */
    if (ensure_gen0(dir, base_path, state_dir, err, sizeof(err)))
        return fprintf(stderr, "feedline generations: %s\n", err), 1;
    return 0;
}

int fl_replay_cmd(const fl_topology_t *topo, const char *topo_path, volatile sig_atomic_t *stop,
                  int argc, char **argv)
{
    static const struct option opts[] = {{"all", no_argument, NULL, 'a'},
                                         {"dir", required_argument, NULL, 'd'},
                                         {"state-dir", required_argument, NULL, 's'},
                                         {"switch", no_argument, NULL, 'w'},
                                         {"caught-up", required_argument, NULL, 'c'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"metrics-base", required_argument, NULL, 'm'},
                                         {"until", required_argument, NULL, 'u'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *dir_opt = NULL, *state_dir = getenv("FEEDLINE_STATE_DIR"), *until = NULL;
    bool all = false, do_switch = false, procs = false, redis = false, pg = false;
    int64_t caught_up = 1000, timeout_s = 0;
    int metrics_base = 0;
    int c, ret = 1;
    char err[1024];
    (void)topo;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            all = true;
            break;
        case 'd':
            dir_opt = optarg;
            break;
        case 's':
            state_dir = optarg;
            break;
        case 'w':
            do_switch = true;
            break;
        case 'c':
            caught_up = strtoll(optarg, NULL, 10);
            if (caught_up < 0)
                return replay_usage("--caught-up wants 0 or more, got %s", optarg);
            break;
        case 't':
            timeout_s = strtoll(optarg, NULL, 10);
            break;
        case 'm':
            metrics_base = atoi(optarg);
            if (metrics_base < 1 || metrics_base > 65000)
                return replay_usage("--metrics-base wants a port, got %s", optarg);
            break;
        case 'u':
            until = optarg;
            break;
        case 'h':
            printf("usage: feedline %s\n\n%s", FL_REPLAY_USAGE, FL_REPLAY_HELP);
            return 0;
        default:
            return replay_usage("%s", "bad option");
        }
    }
    if (!state_dir || !*state_dir)
        state_dir = ".state";
    const char *dir = gens_dir(dir_opt);
    int live = gen_live(dir);
    if (live < 0)
        return fprintf(stderr, "feedline replay: %s/live names no generation\n", dir), 1;
    if (live == 0 && ensure_gen0(dir, topo_path, state_dir, err, sizeof(err)))
        return fprintf(stderr, "feedline replay: %s\n", err), 1;
    fl_topology_t *t = gen_load(dir, live, topo_path, err, sizeof(err));
    if (!t)
        return fprintf(stderr, "feedline replay: %s\n", err), 1;
    /* what to rebuild */
    for (int i = optind; i < argc; i++) {
        bool known = false;
        for (size_t k = 0; k < t->n_processors; k++)
            known = known || !strcmp(argv[i], t->processors[k].name);
        for (size_t k = 0; k < t->n_stores; k++)
            known = known || !strcmp(argv[i], t->stores[k].name);
        procs = procs || known;
        for (size_t k = 0; k < t->n_sinks; k++)
            if (!strcmp(argv[i], t->sinks[k].name) ||
                !strcmp(argv[i], fl_sink_kind_str(t->sinks[k].destination))) {
                known = true;
                redis = redis || t->sinks[k].destination == FL_SINK_REDIS;
                pg = pg || t->sinks[k].destination == FL_SINK_POSTGRES;
            }
        if (!known) {
            fl_topology_free(t);
            return replay_usage("'%s' is no processor, store or sink of the topology", argv[i]);
        }
    }
    if (all == (optind < argc)) {
        fl_topology_free(t);
        return replay_usage("%s", "name what to rebuild, or --all");
    }
    /* the projections read the stores' changelogs: new stores, new projections */
    procs = procs || all;
    if (until && !procs) {
        fl_topology_free(t);
        return replay_usage("%s",
                            "--until rebuilds the stores: name a processor or store, or --all");
    }
    redis = redis || procs;
    pg = pg || procs;

    /* --until resolved before anything of the generation exists: a bad
     * WHEN leaves nothing behind */
    fl_input_offset_t *bounds = NULL;
    size_t n_bounds = 0;
    char *until_arg = NULL;
    if (until && resolve_until(t, until, &bounds, &n_bounds, &until_arg, err, sizeof(err))) {
        fprintf(stderr, "feedline replay: %s\n", err);
        free(bounds);
        free(until_arg);
        fl_topology_free(t);
        return 2;
    }
    int newest = gen_newest(dir, false), gen = (newest > live ? newest : live) + 1;
    int64_t db = redis ? free_redis_db(dir, topo_path, newest) : t->endpoints.redis_db;
    if (db < 0) {
        fprintf(stderr, "feedline replay: no free Redis database\n");
        goto out_t;
    }
    set_err(err, sizeof(err), "out of memory");
    if (procs && derive_stores(t, gen))
        goto fail;
    for (size_t k = 0; k < t->n_sinks; k++) {
        bool mine = t->sinks[k].destination == FL_SINK_REDIS ? redis : pg;
        if (mine && derive_sink(t, &t->sinks[k], gen, db))
            goto fail;
    }
    if (gen_write(dir, gen, t, err, sizeof(err)))
        goto fail;

    run_t r = {.t = t,
               .dir = dir,
               .gen = gen,
               .caught_up = caught_up,
               .metrics_base = metrics_base,
               .bounds = bounds,
               .n_bounds = n_bounds,
               .until_arg = until_arg,
               .stop = stop,
               .tty = isatty(STDERR_FILENO)};
    char self[PATH_MAX];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl <= 0) {
        set_err(err, sizeof(err), "cannot find the feedline binary: %s", strerror(errno));
        goto fail;
    }
    self[sl] = '\0';
    snprintf(r.bindir, sizeof(r.bindir), "%s", dirname(self));
    gen_path(r.topo_path, sizeof(r.topo_path), dir, gen, "topology.yaml");
    gen_path(r.state, sizeof(r.state), dir, gen, "state");
    if (procs) {
        if (mkdir(r.state, 0755) && errno != EEXIST) {
            set_err(err, sizeof(err), "cannot create %s: %s", r.state, strerror(errno));
            goto fail;
        }
    } else {
        /* the stores stay those of the live generation */
        char live_state[PATH_MAX], real[PATH_MAX];
        gen_path(live_state, sizeof(live_state), dir, live, "state");
        if (!realpath(live_state, real) || symlink(real, r.state)) {
            set_err(err, sizeof(err), "cannot link %s: %s", r.state, strerror(errno));
            goto fail;
        }
    }
    /* stages: the processors that read input topics only, the processors
     * after them, then the sinks together (each has a destination of its
     * own to wait on, so on a small machine they overlap well) */
    int s0 = 0;
    if (procs) {
        for (size_t k = 0; k < t->n_processors; k++)
            if (add_prog(&r, t->processors[k].name, &t->processors[k], NULL,
                         reads_inputs_only(t, &t->processors[k]) ? 0 : 1))
                goto nomem;
        s0 = r.n_stages;
    }
    for (size_t k = 0; k < t->n_sinks; k++) {
        bool mine = t->sinks[k].destination == FL_SINK_REDIS ? redis : pg;
        if (mine && add_prog(&r, t->sinks[k].name, NULL, &t->sinks[k], s0))
            goto nomem;
    }
    if (procs) {
        rd_kafka_t *rk = fl_kafka_admin_new(t->endpoints.kafka, err, sizeof(err));
        fl_err_t e =
            rk ? fl_kafka_create_topics(rk, t, NULL, err, sizeof(err)) : FL_ERR_UNAVAILABLE;
        if (rk)
            rd_kafka_destroy(rk);
        if (e)
            goto fail_run;
    }
    if (!(r.lag = fl_lag_new(t->endpoints.kafka, true, err, sizeof(err))) ||
        fl_lag_ready(r.lag, MEASURE_MS, err, sizeof(err)) ||
        (procs && check_fresh(&r, err, sizeof(err))) ||
        fresh_destinations(t, redis, pg, err, sizeof(err)))
        goto fail_run;

    int64_t events = input_records(&r), t0 = now_ms();
    char ev[32];
    fmt_n(ev, sizeof(ev), events);
    fprintf(stderr,
            "replay: generation %d beside live generation %d, %s input events%s%s, %d stages "
            "(%s%s%s)\n",
            gen, live, ev, until ? " up to " : "", until ? until : "", r.n_stages,
            procs ? "stores, " : "", redis ? "redis" : "",
            pg ? redis ? ", postgres" : "postgres" : "");
    for (int s = 0; s < r.n_stages; s++)
        if (run_stage(&r, s, timeout_s ? t0 + timeout_s * 1000 : 0)) {
            set_err(err, sizeof(err),
                    "generation %d not built (stage %d failed); its folder stays for its logs", gen,
                    s + 1);
            goto fail_run;
        }
    int64_t total = now_ms() - t0;
    stop_all(&r);
    write_report(&r, events, total);
    int64_t read = 0;
    for (int s = 0; s < r.n_stages; s++)
        read += r.stages[s].records;
    printf("generation %d built in %.1f s (%.0f records/s over its %d stages):\n", gen,
           total / 1000.0, total ? read * 1000.0 / total : 0, r.n_stages);
    for (int s = 0; s < r.n_stages; s++) {
        stage_t *st = &r.stages[s];
        int64_t ms = st->done_ms - st->start_ms;
        char a[32];
        fmt_n(a, sizeof(a), st->records);
        printf("  stage %d %-24s %8.1f s %14s records %10.0f records/s\n", s + 1, st->names,
               ms / 1000.0, a, ms ? st->records * 1000.0 / ms : 0);
    }
    printf("  topology %s, stores %s, Redis database %" PRId64 ", PostgreSQL schema %s\n",
           r.topo_path, r.state, t->endpoints.redis_db,
           t->endpoints.postgres_schema ? t->endpoints.postgres_schema : "(live)");
    ret = 0;
    if (do_switch) {
        if (gen_switch(dir, gen, topo_path, err, sizeof(err))) {
            fprintf(stderr, "feedline replay: switch: %s\n", err);
            ret = 1;
        } else {
            printf("generation %d is live\n", gen);
        }
    } else {
        printf("compare: feedline --topology %s verify --against %s/live/topology.yaml\n"
               "switch:  feedline generations --dir %s switch %d\n",
               r.topo_path, dir, dir, gen);
    }
    goto done;
nomem:
    set_err(err, sizeof(err), "out of memory");
fail_run:
    stop_all(&r);
    fprintf(stderr, "feedline replay: %s\n", err);
done:
    for (size_t i = 0; i < r.n_progs; i++)
        free(r.progs[i].parts);
    fl_lag_free(r.lag);
    redisFree(r.redis);
    PQfinish(r.pg);
    goto out_t;
fail:
    fprintf(stderr, "feedline replay: %s\n", err);
out_t:
    free(bounds); /* r borrowed them */
    free(until_arg);
    fl_topology_free(t);
    return ret;
}

/* ---- generations ------------------------------------------------------- */

static int pg_exec(PGconn *c, const char *sql, char *err, size_t err_size)
{
    PGresult *res = PQexec(c, sql);
    int rc =
        PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : -1;
    if (rc)
        set_err(err, err_size, "PostgreSQL: %s: %s", sql, strtok(PQerrorMessage(c), "\n"));
    PQclear(res);
    return rc;
}

/* Renames schema from to to; both names come from the loader or the server. */
static int pg_rename(PGconn *c, const char *from, const char *to, const char *from2,
                     const char *to2, char *err, size_t err_size)
{
    char *a = PQescapeIdentifier(c, from, strlen(from)), *b = PQescapeIdentifier(c, to, strlen(to));
    char *a2 = PQescapeIdentifier(c, from2, strlen(from2)),
         *b2 = PQescapeIdentifier(c, to2, strlen(to2)), sql[1024];
    int rc = -1;
    if (a && b && a2 && b2) {
        snprintf(sql, sizeof(sql),
                 "BEGIN; ALTER SCHEMA %s RENAME TO %s; ALTER SCHEMA %s RENAME TO %s; COMMIT", a, b,
                 a2, b2);
        rc = pg_exec(c, sql, err, err_size);
        if (rc) {
            PGresult *x = PQexec(c, "ROLLBACK");
            PQclear(x);
        }
    }
    PQfreemem(a);
    PQfreemem(b);
    PQfreemem(a2);
    PQfreemem(b2);
    return rc;
}

static int gen_switch(const char *dir, int n, const char *base_path, char *err, size_t err_size)
{
    int k = gen_live(dir), rc = -1;
    fl_topology_t *tk = NULL, *tn = NULL;
    redisContext *rc_ = NULL;
    PGconn *pg = NULL;
    char live_schema[128] = "", parked[64];
    bool pg_swapped = false;

    if (k < 0) {
        set_err(err, err_size, "%s/live names no generation", dir);
        return -1;
    }
    if (k == n) {
        set_err(err, err_size, "generation %d is already live", n);
        return -1;
    }
    char built[PATH_MAX];
    gen_path(built, sizeof(built), dir, n, "replay.json");
    if (n && access(built, R_OK)) {
        set_err(err, err_size, "generation %d was never built to the end (no %s)", n, built);
        return -1;
    }
    if (!(tk = gen_load(dir, k, base_path, err, err_size)) ||
        !(tn = gen_load(dir, n, base_path, err, err_size)))
        goto out;
    if (tk->endpoints.redis_db != 0 || tk->endpoints.postgres_schema) {
        set_err(err, err_size, "live generation %d is not in Redis database 0 and the live schema",
                k);
        goto out;
    }
    snprintf(parked, sizeof(parked), "feedline_g%d", k);
    if (tn->endpoints.postgres_schema) {
        char *ci = fl_sink_store_pg_conninfo(&tk->endpoints, 30000);
        pg = ci ? PQconnectdb(ci) : NULL;
        free(ci);
        if (!pg || PQstatus(pg) != CONNECTION_OK) {
            set_err(err, err_size, "PostgreSQL: %s",
                    pg ? strtok(PQerrorMessage(pg), "\n") : "out of memory");
            goto out;
        }
        PGresult *res = PQexec(pg, "SELECT current_schema()");
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
            !PQgetisnull(res, 0, 0))
            snprintf(live_schema, sizeof(live_schema), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        if (!live_schema[0]) {
            set_err(err, err_size, "PostgreSQL: the live search_path names no schema");
            goto out;
        }
        if (pg_rename(pg, live_schema, parked, tn->endpoints.postgres_schema, live_schema, err,
                      err_size))
            goto out;
        pg_swapped = true;
    }
    if (tn->endpoints.redis_db != 0) {
        rc_ = fl_sink_store_redis_connect(&tk->endpoints, 30000, err, err_size);
        redisReply *rep =
            rc_ ? redisCommand(rc_, "SWAPDB 0 %lld", (long long)tn->endpoints.redis_db) : NULL;
        bool ok = rep && rep->type == REDIS_REPLY_STATUS;
        if (!ok && rc_)
            set_err(err, err_size, "Redis SWAPDB 0 %" PRId64 ": %s", tn->endpoints.redis_db,
                    rep && rep->str ? rep->str : rc_->errstr);
        freeReplyObject(rep);
        if (!ok) {
            char e2[256];
            if (pg_swapped && pg_rename(pg, live_schema, tn->endpoints.postgres_schema, parked,
                                        live_schema, e2, sizeof(e2)))
                fprintf(stderr, "feedline generations: undoing the schema rename: %s\n", e2);
            goto out;
        }
        tk->endpoints.redis_db = tn->endpoints.redis_db;
        tn->endpoints.redis_db = 0;
    }
    if (pg_swapped) {
        free(tn->endpoints.postgres_schema);
        tn->endpoints.postgres_schema = NULL;
        if (!(tk->endpoints.postgres_schema = strdup(parked)))
            goto out;
    }
    if (gen_write(dir, k, tk, err, err_size) || gen_write(dir, n, tn, err, err_size) ||
        gen_set_live(dir, n, err, err_size))
        goto out;
    rc = 0;
out:
    redisFree(rc_);
    PQfinish(pg);
    fl_topology_free(tk);
    fl_topology_free(tn);
    return rc;
}

int fl_generations_cmd(const char *topo_path, int argc, char **argv)
{
    static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
                                         {"state-dir", required_argument, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    const char *dir_opt = NULL, *state_opt = NULL;
    char err[1024];
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'd')
            dir_opt = optarg;
        else if (c == 's')
            state_opt = optarg;
        else
            return fprintf(stderr, "usage: feedline %s\n", FL_GENERATIONS_USAGE), 2;
    }
    int i = optind; /* the subcommand, then its arguments */
    const char *dir = gens_dir(dir_opt), *what = i < argc ? argv[i] : "list";
    if (state_opt && strcmp(what, "init"))
        return fprintf(stderr, "feedline generations: --state-dir is for init\n"), 2;
    if (!strcmp(what, "newest") && i + 1 == argc) {
        int n = gen_newest(dir, true);
        if (n < 0)
            return fprintf(stderr, "feedline generations: none in %s\n", dir), 1;
        printf("%d\n", n);
        return 0;
    }
    if (!strcmp(what, "switch") && i + 2 == argc) {
        char *end;
        long n = strtol(argv[i + 1], &end, 10);
        if (*end || n < 0 || n > INT_MAX) {
            fprintf(stderr, "feedline generations: switch wants a generation number\n");
            return 2;
        }
        if (gen_switch(dir, (int)n, topo_path, err, sizeof(err)))
            return fprintf(stderr, "feedline generations: %s\n", err), 1;
        printf("generation %ld is live\n", n);
        return 0;
    }
    if (!strcmp(what, "init") && i + 1 == argc)
        return gen_init(dir, topo_path, state_opt);
    if (strcmp(what, "list") || i + 1 < argc) {
        fprintf(stderr, "usage: feedline %s\n", FL_GENERATIONS_USAGE);
        return 2;
    }
    int live = gen_live(dir), newest = gen_newest(dir, false);
    printf("%-10s %-5s %-8s %-16s %s\n", "generation", "live", "redis_db", "postgres_schema",
           "stores");
    for (int k = 0; k <= (newest > 0 ? newest : 0); k++) {
        fl_topology_t *t = gen_load(dir, k, topo_path, err, sizeof(err));
        char state[PATH_MAX], real[PATH_MAX];
        if (!t)
            continue;
        gen_path(state, sizeof(state), dir, k, "state");
        printf("%-10d %-5s %-8" PRId64 " %-16s %s\n", k, k == live ? "yes" : "",
               t->endpoints.redis_db,
               t->endpoints.postgres_schema ? t->endpoints.postgres_schema : "(live)",
               realpath(state, real) ? real : "-");
        fl_topology_free(t);
    }
    return 0;
}
