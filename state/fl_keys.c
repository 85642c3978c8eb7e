/*
 * fl_keys.c - order-preserving encodings of key fields and composite keys.
 *
 * Invariant: for fields a, b of one type, memcmp(enc(a), enc(b)) has the
 * sign of compare(a, b) (of compare(b, a) for descending fields), and
 * dec(enc(x)) == x for every x. Every read checks the remaining length
 * first, so parsing a truncated or foreign key never reads out of bounds.
 *
 * Workload: a few encodings per record processed; pure arithmetic.
 */
#include "fl_be.h"
#include "fl_keys.h"
#include "fl_state_int.h"

#include <string.h>

#define SIGN_BIT 0x8000000000000000ULL

void fl_key_enc_i64(uint8_t out[8], int64_t v)
{
    fl_be_put64(out, (uint64_t)v ^ SIGN_BIT);
}

int64_t fl_key_dec_i64(const uint8_t in[8])
{
    /* through uint64_t: the conversion back is exact for every bit pattern */
    uint64_t u = fl_be_get64(in) ^ SIGN_BIT;
    int64_t v;
    memcpy(&v, &u, sizeof(v));
    return v;
}

void fl_key_enc_i64_desc(uint8_t out[8], int64_t v)
{
    fl_be_put64(out, ~((uint64_t)v ^ SIGN_BIT));
}

int64_t fl_key_dec_i64_desc(const uint8_t in[8])
{
    uint64_t u = ~fl_be_get64(in) ^ SIGN_BIT;
    int64_t v;
    memcpy(&v, &u, sizeof(v));
    return v;
}

void fl_key_init(fl_key_t *k)
{
    k->len = 0;
    k->err = FL_OK;
}

/* Space for n more bytes, or NULL with the sticky error set. */
static uint8_t *reserve(fl_key_t *k, size_t n)
{
    uint8_t *p;
    if (k->err)
        return NULL;
    if (n > FL_KEY_MAX - k->len) {
        k->err = FL_ERR_OVERSIZED;
        return NULL;
    }
    p = k->buf + k->len;
    k->len += n;
    return p;
}

void fl_key_append_tag(fl_key_t *k, uint8_t tag)
{
    uint8_t *p;
    if (!k->err && (tag == 0 || k->len != 0)) {
        k->err = FL_ERR_INVALID;
        return;
    }
    p = reserve(k, 1);
    if (p)
        *p = tag;
}

void fl_key_append_u8(fl_key_t *k, uint8_t v)
{
    uint8_t *p = reserve(k, 1);
    if (p)
        *p = v;
}

void fl_key_append_i64(fl_key_t *k, int64_t v)
{
    uint8_t *p = reserve(k, 8);
    if (p)
        fl_key_enc_i64(p, v);
}

void fl_key_append_i64_desc(fl_key_t *k, int64_t v)
{
    uint8_t *p = reserve(k, 8);
    if (p)
        fl_key_enc_i64_desc(p, v);
}

fl_err_t fl_key_status(const fl_key_t *k)
{
    return k->err;
}

void fl_key_reader_init(fl_key_reader_t *r, const void *key, size_t len)
{
    r->p = key;
    r->len = key ? len : 0;
    r->off = 0;
}

/* The next n bytes, or NULL when fewer remain. */
static const uint8_t *take(fl_key_reader_t *r, size_t n)
{
    const uint8_t *p;
    if (n > r->len - r->off)
        return NULL;
    p = r->p + r->off;
    r->off += n;
    return p;
}

fl_err_t fl_key_read_tag(fl_key_reader_t *r, uint8_t tag)
{
    const uint8_t *p;
    if (r->off != 0)
        return FL_ERR_INVALID;
    p = take(r, 1);
    if (!p)
        return FL_ERR_TRUNCATED;
    return *p == tag && tag != 0 ? FL_OK : FL_ERR_INVALID;
}

fl_err_t fl_key_read_u8(fl_key_reader_t *r, uint8_t *v)
{
    const uint8_t *p = take(r, 1);
    if (!p)
        return FL_ERR_TRUNCATED;
    *v = *p;
    return FL_OK;
}

fl_err_t fl_key_read_i64(fl_key_reader_t *r, int64_t *v)
{
    const uint8_t *p = take(r, 8);
    if (!p)
        return FL_ERR_TRUNCATED;
    *v = fl_key_dec_i64(p);
    return FL_OK;
}

fl_err_t fl_key_read_i64_desc(fl_key_reader_t *r, int64_t *v)
{
    const uint8_t *p = take(r, 8);
    if (!p)
        return FL_ERR_TRUNCATED;
    *v = fl_key_dec_i64_desc(p);
    return FL_OK;
}

fl_err_t fl_key_read_end(const fl_key_reader_t *r)
{
    return r->off == r->len ? FL_OK : FL_ERR_INVALID;
}

fl_err_t fl_key_entity(fl_key_t *k, uint8_t tag, int64_t id)
{
    fl_key_init(k);
    fl_key_append_tag(k, tag);
    fl_key_append_i64(k, id);
    return fl_key_status(k);
}

fl_err_t fl_key_parse_entity(const void *key, size_t len, uint8_t tag, int64_t *id)
{
    fl_key_reader_t r;
    fl_err_t err;
    fl_key_reader_init(&r, key, len);
    if ((err = fl_key_read_tag(&r, tag)) || (err = fl_key_read_i64(&r, id)))
        return err;
    return fl_key_read_end(&r);
}

fl_err_t fl_key_edge(fl_key_t *k, uint8_t tag, int64_t from, int64_t to)
{
    fl_key_init(k);
    fl_key_append_tag(k, tag);
    fl_key_append_i64(k, from);
    fl_key_append_i64(k, to);
    return fl_key_status(k);
}

fl_err_t fl_key_parse_edge(const void *key, size_t len, uint8_t tag, int64_t *from, int64_t *to)
{
    fl_key_reader_t r;
    fl_err_t err;
    fl_key_reader_init(&r, key, len);
    if ((err = fl_key_read_tag(&r, tag)) || (err = fl_key_read_i64(&r, from)) ||
        (err = fl_key_read_i64(&r, to)))
        return err;
    return fl_key_read_end(&r);
}

fl_err_t fl_key_triple(fl_key_t *k, uint8_t tag, int64_t a, int64_t b, int64_t c)
{
    fl_key_init(k);
    fl_key_append_tag(k, tag);
    fl_key_append_i64(k, a);
    fl_key_append_i64(k, b);
    fl_key_append_i64(k, c);
    return fl_key_status(k);
}

fl_err_t fl_key_parse_triple(const void *key, size_t len, uint8_t tag, int64_t *a, int64_t *b,
                             int64_t *c)
{
    fl_key_reader_t r;
    fl_err_t err;

    fl_key_reader_init(&r, key, len);
    if ((err = fl_key_read_tag(&r, tag)) || (err = fl_key_read_i64(&r, a)) ||
        (err = fl_key_read_i64(&r, b)) || (err = fl_key_read_i64(&r, c)))
        return err;
    return fl_key_read_end(&r);
}

fl_err_t fl_key_count(fl_key_t *k, uint8_t kind, const int64_t *ids, size_t n)
{
    fl_key_init(k);
    fl_key_append_tag(k, FL_KEY_TAG_COUNT);
    fl_key_append_u8(k, kind);
    for (size_t i = 0; i < n; i++)
        fl_key_append_i64(k, ids[i]);
    return fl_key_status(k);
}

fl_err_t fl_key_recent(fl_key_t *k, uint8_t tag, int64_t owner, int64_t created_at, int64_t post_id)
{
    fl_key_init(k);
    fl_key_append_tag(k, tag);
    fl_key_append_i64(k, owner);
    fl_key_append_i64_desc(k, created_at);
    fl_key_append_i64_desc(k, post_id);
    return fl_key_status(k);
}

fl_err_t fl_key_parse_recent(const void *key, size_t len, uint8_t tag, int64_t *owner,
                             int64_t *created_at, int64_t *post_id)
{
    fl_key_reader_t r;
    fl_err_t err;
    fl_key_reader_init(&r, key, len);
    if ((err = fl_key_read_tag(&r, tag)) || (err = fl_key_read_i64(&r, owner)) ||
        (err = fl_key_read_i64_desc(&r, created_at)) || (err = fl_key_read_i64_desc(&r, post_id)))
        return err;
    return fl_key_read_end(&r);
}

fl_err_t fl_key_timeline(fl_key_t *k, int64_t user, int64_t created_at, int64_t post_id)
{
    fl_key_init(k);
    fl_key_append_tag(k, FL_KEY_TAG_TIMELINE);
    fl_key_append_i64(k, user);
    fl_key_append_i64(k, created_at);
    fl_key_append_i64(k, post_id);
    return fl_key_status(k);
}

fl_err_t fl_key_parse_timeline(const void *key, size_t len, int64_t *user, int64_t *created_at,
                               int64_t *post_id)
{
    fl_key_reader_t r;
    fl_err_t err;
    fl_key_reader_init(&r, key, len);
    if ((err = fl_key_read_tag(&r, FL_KEY_TAG_TIMELINE)) || (err = fl_key_read_i64(&r, user)) ||
        (err = fl_key_read_i64(&r, created_at)) || (err = fl_key_read_i64(&r, post_id)))
        return err;
    return fl_key_read_end(&r);
}

int fl_key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    return fl__key_cmp(a, alen, b, blen);
}
