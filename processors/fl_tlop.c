/*
 * fl_tlop.c - encoding of timeline operations (format in fl_tlop.h).
 *
 * Hot path of the fan-out: one encode per (post, destination partition)
 * and one decode per record in feedline-timeline, so both are single
 * passes over flat arrays with no per-element allocation.
 */
#include "fl_tlop.h"

#include "fl_be.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FL_TLOP_MAGIC     'T'
#define FL_TLOP_VERSION   1
#define FL_TLOP_POST_SIZE 24

size_t fl_tlop_encoded_size(const fl_tlop_t *op)
{
    return FL_TLOP_HEADER_SIZE + (size_t)op->n_posts * FL_TLOP_POST_SIZE + 4 +
           (size_t)op->n_recipients * 8;
}

size_t fl_tlop_encode(const fl_tlop_t *op, unsigned char *buf)
{
    unsigned char *p = buf;
    p[0] = FL_TLOP_MAGIC;
    p[1] = FL_TLOP_VERSION;
    p[2] = (unsigned char)op->op;
    p[3] = 0;
    fl_be_put64(p + 4, (uint64_t)(op->author_id));
    fl_be_put32(p + 12, 0); /* reserved flags */
    fl_be_put32(p + 16, op->n_posts);
    p += FL_TLOP_HEADER_SIZE;
    for (uint32_t i = 0; i < op->n_posts; i++, p += FL_TLOP_POST_SIZE) {
        fl_be_put64(p, (uint64_t)(op->posts[i].post_id));
        fl_be_put64(p + 8, (uint64_t)(op->posts[i].author_id));
        fl_be_put64(p + 16, (uint64_t)(op->posts[i].created_at));
    }
    fl_be_put32(p, op->n_recipients);
    p += 4;
    for (uint32_t i = 0; i < op->n_recipients; i++, p += 8)
        fl_be_put64(p, (uint64_t)(op->recipients[i]));
    return (size_t)(p - buf);
}

fl_err_t fl_tlop_decode(const void *data, size_t len, fl_tlop_t *op, char *errstr,
                        size_t errstr_size)
{
    const unsigned char *p = data, *end = p + len;
    fl_err_t err = FL_OK;

    memset(op, 0, sizeof(*op));
    if (len > FL_TLOP_MAX_ENCODED) {
        snprintf(errstr, errstr_size, "timeline op of %zu bytes exceeds %u", len,
                 FL_TLOP_MAX_ENCODED);
        return FL_ERR_OVERSIZED;
    }
    if (len < FL_TLOP_HEADER_SIZE + 4) {
        snprintf(errstr, errstr_size, "timeline op truncated: %zu bytes", len);
        return FL_ERR_TRUNCATED;
    }
    if (p[0] != FL_TLOP_MAGIC || p[1] != FL_TLOP_VERSION) {
        snprintf(errstr, errstr_size, "not a timeline op (magic 0x%02x version %u)", p[0], p[1]);
        return FL_ERR_MAGIC;
    }
    op->op = (fl_tlop_kind_t)p[2];
    if (op->op < FL_TLOP_INSERT || op->op > FL_TLOP_REMOVE_AUTHOR) {
        snprintf(errstr, errstr_size, "unknown timeline op %u", p[2]);
        err = FL_ERR_INVALID;
        goto out;
    }
    if (p[3] != 0 || fl_be_get32(p + 12) != 0) {
        snprintf(errstr, errstr_size, "timeline op with reserved bits set");
        err = FL_ERR_INVALID;
        goto out;
    }
    op->author_id = (int64_t)fl_be_get64(p + 4);
    uint32_t n_posts = fl_be_get32(p + 16);
    p += FL_TLOP_HEADER_SIZE;
    if ((size_t)(end - p) < (size_t)n_posts * FL_TLOP_POST_SIZE + 4) {
        snprintf(errstr, errstr_size, "timeline op truncated: %u posts do not fit", n_posts);
        err = FL_ERR_TRUNCATED;
        goto out;
    }
    if (n_posts) {
        op->posts = malloc((size_t)n_posts * sizeof(*op->posts));
        if (!op->posts) {
            err = FL_ERR_NOMEM;
            goto out;
        }
    }
    for (uint32_t i = 0; i < n_posts; i++, p += FL_TLOP_POST_SIZE) {
        op->posts[i].post_id = (int64_t)fl_be_get64(p);
        op->posts[i].author_id = (int64_t)fl_be_get64(p + 8);
        op->posts[i].created_at = (int64_t)fl_be_get64(p + 16);
    }
    op->n_posts = n_posts;
    uint32_t n_rcpt = fl_be_get32(p);
    p += 4;
    if ((size_t)(end - p) != (size_t)n_rcpt * 8) {
        snprintf(errstr, errstr_size, "timeline op: %u recipients need %zu bytes, %zu remain",
                 n_rcpt, (size_t)n_rcpt * 8, (size_t)(end - p));
        err = (size_t)(end - p) < (size_t)n_rcpt * 8 ? FL_ERR_TRUNCATED : FL_ERR_INVALID;
        goto out;
    }
    if (n_rcpt) {
        op->recipients = malloc((size_t)n_rcpt * sizeof(*op->recipients));
        if (!op->recipients) {
            err = FL_ERR_NOMEM;
            goto out;
        }
    }
    for (uint32_t i = 0; i < n_rcpt; i++, p += 8)
        op->recipients[i] = (int64_t)fl_be_get64(p);
    op->n_recipients = n_rcpt;
out:
    if (err)
        fl_tlop_clear(op);
    return err;
}

void fl_tlop_clear(fl_tlop_t *op)
{
    if (!op)
        return;
    free(op->posts);
    free(op->recipients);
    memset(op, 0, sizeof(*op));
}

const char *fl_tlop_kind_str(fl_tlop_kind_t op)
{
    switch (op) {
    case FL_TLOP_INSERT:
        return "insert";
    case FL_TLOP_REMOVE:
        return "remove";
    case FL_TLOP_REMOVE_AUTHOR:
        return "remove_author";
    }
    return "unknown";
}
