/*
 * fl_rt_task.c - a task: one assigned partition with its stores, each
 * opened from the local state folder and caught up from its changelog
 * before the task processes a record (Kafka Streams' StreamTask and its
 * changelog reader).
 *
 * Opening a task is quick and happens in the rebalance callback: the
 * stores are opened, checked (and wiped when they cannot be trusted), and
 * each input's starting offset is chosen. Restoring is slow and happens
 * in the loop, a slice at a time (fl__rt_task_restore_step), while the
 * task's input partitions are paused and the consumer keeps polling (its
 * other tasks go on, and the group does not evict a restoring member).
 *
 * Where an input resumes (the offsets reconciled at assignment): the
 * consumer group's committed offsets, which the transaction of every
 * batch moves (README "Processing guarantees"), are the authority, and
 * without them an input starts from the beginning. The offsets in the
 * store's last WriteBatch are its local checkpoint, never a resume point:
 * they tell whether the store belongs to the topics and the group it
 * finds (fl_reconcile.h).
 *
 * A store is wiped and rebuilt from its changelog (log line, metric
 * feedline_store_wipes_total{reason}) when its changelog position is past
 * the changelog's end (topics recreated), when its input offsets are past
 * the inputs' ends, when it holds input offsets the group has none for
 * (the group deleted or expired, or topics recreated and grown past the
 * old offsets), or when it is behind its changelog and was last committed
 * longer ago than the changelog's delete.retention.ms (the tombstones it
 * would need may be compacted away). A wipe, or a new store whose
 * changelog holds more than FL_RT_RESTORE_CHUNK records, is rebuilt in
 * RocksDB's bulk-load mode.
 *
 * A rebuild from the topics (--rebuild, feedline replay) keeps its stores
 * in bulk-load mode while it processes too: no WAL, large memtables,
 * flushed when the store closes. A crash then loses what was not flushed,
 * the store's offsets and changelog position with it (one column family:
 * what survives is a prefix of the commits), and the next start restores
 * the rest from the changelog, which holds every committed batch.
 *
 * Invariants: a task processes records only after every store replayed
 * its changelog to the end; restore reads committed records only and
 * commits every FL_RT_RESTORE_CHUNK records, so an interrupted restore
 * resumes where it stopped.
 */
#include "fl_kafka.h"
#include "fl_log.h"
#include "fl_rt_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *store_dir(const rt_t *rt, const char *store, int32_t partition)
{
    char *path = NULL;
    if (asprintf(&path, "%s/%s-%s/%s-%d", rt->opts.state_dir, rt->proc->name, rt->opts.instance,
                 store, partition) < 0)
        return NULL;
    return path;
}

static int mkdir_p(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

int64_t fl__rt_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Opens the store's RocksDB at dir, in bulk-load mode or not. */
static fl_err_t open_kv(const char *dir, bool bulk, fl_kv_t **kv, char *err, size_t errsz)
{
    fl_kv_rocksdb_opts_t o = {.bulk_restore = bulk};
    if (mkdir_p(dir)) {
        snprintf(err, errsz, "cannot create %s", dir);
        return FL_ERR_IO;
    }
    return fl_kv_rocksdb_open(dir, &o, kv, err, errsz);
}

/* The store of task t at index i, on kv (taken), with its name, changelog
 * and read cache. */
static fl_err_t wrap_store(rt_t *rt, rt_task_t *t, size_t i, fl_kv_t *kv)
{
    const char *name = rt->proc->stores[i];
    t->stores[i] =
        fl_store_new(kv, name, fl_topology_store(rt->topo, name)->changelog, t->partition);
    if (!t->stores[i])
        return FL_ERR_NOMEM;
    return fl_store_set_cache(t->stores[i], (size_t)rt->topo->settings.store_cache_bytes);
}

/* Why store s of task t cannot be trusted (fl_reconcile.h), or -1. hi:
 * its changelog's end. */
static int wipe_reason(rt_t *rt, rt_task_t *t, size_t s, int64_t hi)
{
    fl_store_t *st = t->stores[s];
    int64_t local[FL_RT_MAX_INPUTS];
    fl_reconcile_in_t in = {.changelog_end = hi,
                            .n_inputs = rt->proc->n_inputs,
                            .local = local,
                            .input_end = t->input_end,
                            .committed = t->committed,
                            .committed_at_ms = -1,
                            .now_ms = fl__rt_wall_ms(),
                            .delete_retention_ms = rt->changelog_delete_retention_ms[s]};
    bool found = false;

    if (fl_store_changelog_position(st, &in.position))
        return -1;
    for (size_t i = 0; i < rt->proc->n_inputs; i++) {
        found = false;
        if (fl_store_offset(st, rt->proc->inputs[i], t->partition, &local[i], &found) || !found)
            local[i] = -1;
    }
    found = false;
    if (fl_store_offset(st, FL_RT_COMMITTED_AT, t->partition, &in.committed_at_ms, &found) ||
        !found)
        in.committed_at_ms = -1;
    return fl_reconcile_wipe(&in);
}

/* Closes store i of t, deletes its files and reopens it empty (bulk mode
 * when its changelog holds records). */
static fl_err_t wipe_store(rt_t *rt, rt_task_t *t, size_t i, int reason, bool bulk)
{
    char err[512];
    char *dir = store_dir(rt, rt->proc->stores[i], t->partition);
    fl_kv_t *kv = NULL;
    fl_err_t e = FL_ERR_NOMEM;

    if (!dir)
        return e;
    if (reason >= 0) {
        fl_log_warn("runtime", "wiping store %s [%d] (%s): it is rebuilt from its changelog",
                    rt->proc->stores[i], t->partition, fl_wipe_reason_name(reason));
        rt->m.wipes[reason]++;
    }
    fl_store_free(t->stores[i]);
    t->stores[i] = NULL;
    e = fl_kv_rocksdb_destroy(dir, err, sizeof(err));
    if (!e)
        e = open_kv(dir, bulk, &kv, err, sizeof(err));
    if (!e)
        e = wrap_store(rt, t, i, kv);
    else
        fl_log_error("runtime", "wiping store %s at %s: %s", rt->proc->stores[i], dir, err);
    t->bulk[i] = bulk && !e;
    free(dir);
    return e;
}

void fl__rt_task_free(rt_t *rt, rt_task_t *t)
{
    if (!t)
        return;
    if (t->rs_consumer) {
        rd_kafka_consumer_close(t->rs_consumer);
        rd_kafka_destroy(t->rs_consumer);
    }
    for (size_t i = 0; i < rt->proc->n_stores; i++)
        fl_store_free(t->stores ? t->stores[i] : NULL);
    free(t->stores);
    fl_merge_free(t->merge);
    free(t);
}

rt_task_t *fl__rt_task_open(rt_t *rt, int32_t partition, const int64_t *committed)
{
    char err[512];
    rt_task_t *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    t->partition = partition;
    t->merge = fl_merge_new(rt->proc->n_inputs, (const char *const *)rt->proc->inputs,
                            rt->opts.max_idle_ms, FL_RT_MAX_LAG_WAIT_MS, fl__rt_entry_free);
    t->stores = calloc(rt->proc->n_stores ? rt->proc->n_stores : 1, sizeof(*t->stores));
    if (!t->merge || !t->stores)
        goto fail;
    /* What is in Kafka already must be merged in order, even before the
     * first fetch of an input returns: ask the broker where each ends. */
    for (size_t i = 0; i < rt->proc->n_inputs; i++) {
        int64_t lo = -1, hi = -1;
        rd_kafka_resp_err_t kerr = rd_kafka_query_watermark_offsets(
            rt->consumer, RT_KAFKA(rt, rt->proc->inputs[i]), partition, &lo, &hi, 10000);
        t->input_end[i] = kerr ? -1 : fl__rt_until_end(rt, i, partition, hi);
        fl_merge_set_end(t->merge, i, t->input_end[i]);
        if (kerr)
            fl_log_warn("runtime", "end offset of %s [%d] unknown: %s", rt->proc->inputs[i],
                        partition, rd_kafka_err2str(kerr));
    }
    for (size_t i = 0; i < rt->proc->n_inputs; i++)
        t->committed[i] = committed ? committed[i] : -1;
    for (size_t i = 0; i < rt->proc->n_stores; i++) {
        const char *name = rt->proc->stores[i];
        const char *changelog = fl_topology_store(rt->topo, name)->changelog;
        char *dir = store_dir(rt, name, partition);
        fl_kv_t *kv = NULL;
        int64_t lo = 0, hi = 0, pos = 0;
        /* A rebuild (feedline replay) fills its new stores in bulk mode
         * from the start and keeps them so while it processes. */
        fl_err_t e = dir ? open_kv(dir, rt->opts.rebuild, &kv, err, sizeof(err)) : FL_ERR_NOMEM;
        t->bulk[i] = rt->opts.rebuild && !e;
        if (e == FL_ERR_CORRUPT && dir && !rt->opts.rebuild) {
            /* An interrupted bulk restore: finish it in bulk mode. */
            e = open_kv(dir, true, &kv, err, sizeof(err));
            t->bulk[i] = !e;
        }
        if (e) {
            fl_log_error("runtime", "opening store %s at %s: %s", name, dir ? dir : "?", err);
            free(dir);
            goto fail;
        }
        free(dir);
        if (wrap_store(rt, t, i, kv))
            goto fail;
        rd_kafka_resp_err_t kerr;
        /* Right after the topics were created a partition may have no
         * leader yet: a retriable error is asked again, with backoff. */
        for (int attempt = 1;; attempt++) {
            kerr = rd_kafka_query_watermark_offsets(rt->consumer, RT_KAFKA(rt, changelog),
                                                    partition, &lo, &hi, 10000);
            if (!kerr || !fl_err_retriable(fl_kafka_err(kerr)) || attempt == 10 || *rt->stop)
                break;
            fl_log_warn("runtime", "watermarks of %s [%d] (attempt %d): %s; retrying", changelog,
                        partition, attempt, rd_kafka_err2str(kerr));
            usleep((useconds_t)attempt * 200000);
        }
        if (kerr) {
            fl_log_error("runtime", "watermarks of %s [%d]: %s", changelog, partition,
                         rd_kafka_err2str(kerr));
            goto fail;
        }
        int reason = wipe_reason(rt, t, i, hi);
        if (fl_store_changelog_position(t->stores[i], &pos))
            goto fail;
        /* A full rebuild of a changelog with records goes in bulk mode. */
        bool full = reason >= 0 || (pos == 0 && hi - lo > FL_RT_RESTORE_CHUNK);
        if (reason >= 0)
            pos = 0; /* wiped below */
        if (full && (!t->bulk[i] || reason >= 0) &&
            wipe_store(rt, t, i, reason, hi > lo || rt->opts.rebuild))
            goto fail;
        t->rs_needed[i] = fl_reconcile_behind(pos, hi);
        t->rs_hi[i] = hi;
        t->restoring |= t->rs_needed[i];
    }
    /* The starting offsets, as far as they are known before restoring. */
    for (size_t i = 0; i < rt->proc->n_inputs; i++) {
        bool found = false;
        int64_t off = -1;
        /* Every store holds the same offsets; the first one is read. */
        if (rt->proc->n_stores &&
            fl_store_offset(t->stores[0], rt->proc->inputs[i], partition, &off, &found))
            goto fail;
        t->local[i] = found ? off : -1;
        fl_merge_set_position(t->merge, i, t->committed[i]);
        if (t->committed[i] >= 0 && t->local[i] > t->committed[i])
            fl_log_warn("runtime",
                        "%s [%d]: the store's offset %" PRId64 " is past the group's committed "
                        "%" PRId64 " (offsets reset?); resuming from the committed offset",
                        rt->proc->inputs[i], partition, t->local[i], t->committed[i]);
    }
    t->rs_t0 = fl__rt_now_ms();
    t->ctx.topo = rt->topo;
    t->ctx.proc = rt->proc;
    t->ctx.partition = partition;
    t->ctx.stores = t->stores;
    t->ctx.forward = fl__rt_forward;
    t->ctx.count = fl__rt_count;
    t->ctx.opaque = rt;
    if (!t->restoring && fl__rt_task_ready(rt, t))
        goto fail;
    return t;
fail:
    fl__rt_task_free(rt, t);
    return NULL;
}

/* The end of restoring: the final input offsets, written to every store
 * as its checkpoint, and background writes on. */
fl_err_t fl__rt_task_ready(rt_t *rt, rt_task_t *t)
{
    fl_store_offset_t offs[FL_RT_MAX_INPUTS + 1];
    size_t n = 0;

    for (size_t i = 0; i < rt->proc->n_inputs; i++) {
        /* A store that held offsets the group lacks was wiped at open. */
        int64_t pos = t->committed[i];
        fl_merge_set_position(t->merge, i, pos);
        if (pos >= 0)
            offs[n++] = (fl_store_offset_t){rt->proc->inputs[i], t->partition, pos};
    }
    /* The store is current as of now: what the tombstone rule measures. */
    offs[n++] = (fl_store_offset_t){FL_RT_COMMITTED_AT, t->partition, fl__rt_wall_ms()};
    for (size_t s = 0; s < rt->proc->n_stores; s++) {
        fl_err_t e = fl_store_commit(t->stores[s], offs, n, -1);
        /* RocksDB applies each commit on the store's writer thread while
         * the next batch is processed. */
        if (!e)
            e = fl_store_set_background_writes(t->stores[s], true);
        if (e) {
            fl_log_error("runtime", "store %s [%d]: %s", fl_store_name(t->stores[s]), t->partition,
                         fl_store_errmsg(t->stores[s]));
            return e;
        }
    }
    t->restoring = false;
    return FL_OK;
}

/* Starts reading store s's changelog from the store's position. */
static fl_err_t restore_begin(rt_t *rt, rt_task_t *t, size_t s)
{
    char err[512];
    const char *changelog = fl_topology_store(rt->topo, rt->proc->stores[s])->changelog;
    int64_t pos = 0;
    fl_err_t e = fl_store_changelog_position(t->stores[s], &pos);

    if (e)
        return e;
    /* librdkafka consumers read committed records only by default. */
    t->rs_consumer = fl_kafka_consumer_new(rt->topo->endpoints.kafka, NULL, err, sizeof(err));
    if (!t->rs_consumer) {
        fl_log_error("runtime", "restore consumer: %s", err);
        return FL_ERR_CONFIG;
    }
    t->rs_pos = pos;
    t->rs_applied = 0;
    rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new(1);
    /* Below the log start (compacted or truncated): from the start. */
    rd_kafka_topic_partition_list_add(tpl, RT_KAFKA(rt, changelog), t->partition)->offset =
        pos > 0 ? pos : RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t kerr = rd_kafka_assign(t->rs_consumer, tpl);
    rd_kafka_topic_partition_list_destroy(tpl);
    if (kerr)
        return fl_kafka_err(kerr);
    fl_log_info("runtime", "restoring %s [%d] from %s offset %" PRId64 " to %" PRId64 "%s",
                rt->proc->stores[s], t->partition, changelog, pos, t->rs_hi[s],
                t->bulk[s] ? " (bulk load)" : "");
    return FL_OK;
}

/* Store s reached its changelog's end: the last chunk, then (bulk mode,
 * outside a rebuild) the store is closed, which flushes it, and reopened
 * normally. */
static fl_err_t restore_end(rt_t *rt, rt_task_t *t, size_t s)
{
    char err[512];
    fl_err_t e = fl_store_commit(t->stores[s], NULL, 0, t->rs_pos);
    rd_kafka_consumer_close(t->rs_consumer);
    rd_kafka_destroy(t->rs_consumer);
    t->rs_consumer = NULL;
    if (e)
        return e;
    rt->m.restored_records += (uint64_t)t->rs_applied;
    fl_log_info("runtime", "restored %s [%d]: %" PRId64 " records, %" PRId64 " ms so far",
                rt->proc->stores[s], t->partition, t->rs_applied, fl__rt_now_ms() - t->rs_t0);
    if (t->bulk[s] && !rt->opts.rebuild) {
        char *dir = store_dir(rt, rt->proc->stores[s], t->partition);
        fl_kv_t *kv = NULL;
        fl_store_free(t->stores[s]); /* closing flushes the memtables */
        t->stores[s] = NULL;
        e = dir ? open_kv(dir, false, &kv, err, sizeof(err)) : FL_ERR_NOMEM;
        if (!e)
            e = wrap_store(rt, t, s, kv);
        else
            fl_log_error("runtime", "reopening %s after its bulk load: %s", dir, err);
        free(dir);
        t->bulk[s] = false;
    }
    return e;
}

fl_err_t fl__rt_task_restore_step(rt_t *rt, rt_task_t *t, int64_t budget_ms)
{
    int64_t deadline = fl__rt_now_ms() + budget_ms;
    fl_err_t e = FL_OK;

    while (t->restoring && !*rt->stop) {
        size_t s = t->rs_store;
        if (s >= rt->proc->n_stores)
            return fl__rt_task_ready(rt, t);
        if (!t->rs_needed[s]) {
            t->rs_store++;
            continue;
        }
        if (!t->rs_consumer && (e = restore_begin(rt, t, s)))
            return e;
        if (fl__rt_now_ms() >= deadline)
            return FL_OK;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(t->rs_consumer, 100);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(m);
            if ((e = restore_end(rt, t, s)))
                return e;
            t->rs_store++;
            continue;
        }
        if (m->err) {
            fl_log_warn("runtime", "restore of %s [%d]: %s; retrying", rt->proc->stores[s],
                        t->partition, rd_kafka_message_errstr(m));
            e = fl_kafka_err(m->err);
            rd_kafka_message_destroy(m);
            if (fl_err_retriable(e))
                continue;
            return e;
        }
        /* Changelogs written before offsets travelled in the transaction
         * hold offset markers: not store keys. */
        bool marker =
            m->key_len == FL_RT_MARKER_KLEN && !memcmp(m->key, FL_RT_MARKER_KEY, FL_RT_MARKER_KLEN);
        if (!marker && m->key_len > 0)
            e = fl_store_restore_apply(t->stores[s], m->key, m->key_len, m->payload, m->len);
        t->rs_pos = m->offset + 1;
        t->rs_applied++;
        rd_kafka_message_destroy(m);
        if (e)
            return e;
        if (fl_store_pending(t->stores[s]) >= FL_RT_RESTORE_CHUNK &&
            (e = fl_store_commit(t->stores[s], NULL, 0, t->rs_pos)))
            return e;
    }
    return FL_OK;
}

/* The newest modification time of the files in dir (RocksDB writes its
 * log, manifest or tables whenever the store is used), in ms. */
static int64_t newest_mtime_ms(const char *dir)
{
    int64_t newest = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char *path = NULL;
        struct stat st;
        if (asprintf(&path, "%s/%s", dir, de->d_name) >= 0 && !stat(path, &st) &&
            (int64_t)st.st_mtime * 1000 > newest)
            newest = (int64_t)st.st_mtime * 1000;
        free(path);
    }
    if (d)
        closedir(d);
    return newest;
}

/* Store folders of this instance whose partition is not assigned and
 * that nothing wrote for longer than the changelog's delete.retention.ms:
 * they would be wiped on their next assignment anyway. */
void fl__rt_cleanup_state_dirs(rt_t *rt)
{
    char *base = NULL;
    if (asprintf(&base, "%s/%s-%s", rt->opts.state_dir, rt->proc->name, rt->opts.instance) < 0)
        return;
    DIR *d = opendir(base);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        for (size_t s = 0; s < rt->proc->n_stores; s++) {
            const char *name = rt->proc->stores[s];
            size_t nl = strlen(name);
            char *end = NULL;
            if (strncmp(de->d_name, name, nl) || de->d_name[nl] != '-')
                continue;
            long p = strtol(de->d_name + nl + 1, &end, 10);
            if (!end || *end || p < 0 || p >= rt->n_partitions || rt->tasks[p])
                continue;
            int64_t retention = rt->changelog_delete_retention_ms[s];
            char *dir = NULL;
            if (retention < 0 || asprintf(&dir, "%s/%s", base, de->d_name) < 0)
                continue;
            if (fl__rt_wall_ms() - newest_mtime_ms(dir) > retention) {
                char err[256];
                fl_log_info("runtime",
                            "removing %s: partition %ld not owned for longer than "
                            "the changelog keeps tombstones",
                            dir, p);
                if (!fl_kv_rocksdb_destroy(dir, err, sizeof(err)))
                    rmdir(dir);
                rt->m.dirs_removed++;
            }
            free(dir);
        }
    }
    if (d)
        closedir(d);
    free(base);
}
