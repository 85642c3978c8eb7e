/*
 * fl_codec.c - Confluent-framed Avro encoding and decoding of fl_event_t.
 *
 * At creation the codec reads ids.tsv and every schema it lists, checks
 * each schema against the event descriptors (fl_event.h), and prepares,
 * for every listed writer version, a resolver onto its type's reader
 * version. Decoding then costs one walk over the bytes, one avro-c read
 * through the resolver into a reused generic value, and one copy into the
 * event; encoding fills a reused generic value of the writer schema.
 *
 * Invariants:
 * - Untrusted bytes reach avro-c only after fl_walk() has checked them
 *   against the writer schema: every varint fits its type, every length
 *   prefix and block count is covered by the bytes that remain, every
 *   union and enum index is in range, strings are UTF-8 without NUL, and
 *   nothing trails the value. avro-c allocates string buffers from length
 *   prefixes and trusts union indexes, so without the walk a 5-byte body
 *   can ask it for a terabyte and a bad branch index can crash it.
 * - avro-c 1.11 cannot apply defaults during resolution (it refuses any
 *   reader field the writer lacks) and passes enum indexes through
 *   without mapping symbols. So the resolver targets a projection of the
 *   reader schema onto the writer's fields, defaults come from the .avsc
 *   JSON (avro-c drops them while parsing), and enum indexes are mapped
 *   by symbol here. The result is Avro schema resolution as the spec
 *   defines it, for the shapes the descriptors allow.
 * - After creation only the scratch values and buffers change, so a
 *   codec belongs to one thread at a time.
 *
 * Workload: one decode per consumed record on every processor, one encode
 * per produced record; a few dozen schema versions at most.
 */
#include "fl_be.h"
#include "fl_codec.h"
#include "fl_log.h"

#include <avro.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FL_CODEC_NAMESPACE    "dev.feedline.events"
#define FL_CODEC_MAX_VERSIONS 1024         /* rows of ids.tsv */
#define FL_CODEC_MAX_FILE     (256 * 1024) /* bytes of ids.tsv or of one .avsc */
#define FL_CODEC_MAX_DEPTH    32           /* nesting of records, unions, arrays, maps */
#define FL_CODEC_MAX_SYMBOLS  64           /* symbols of a Visibility enum */

/* How one descriptor field of a decoded event is obtained. */
typedef struct fl_plan {
    int src;              /* field index in the projected reader value; -1: not read */
    bool dflt;            /* the reader has the field, the writer does not */
    int64_t dflt_long;    /* FL_FIELD_LONG, FL_FIELD_TIMESTAMP default */
    const char *dflt_str; /* FL_FIELD_STRING default, borrowed from the reader's JSON */
    int dflt_vis;         /* FL_FIELD_VISIBILITY default */
    int n_vis;            /* symbols of the writer's enum */
    int8_t vis_map[FL_CODEC_MAX_SYMBOLS]; /* writer symbol index -> fl_visibility_t, or -1 */
} fl_plan_t;

/* Decoding records of one writer version with its type's reader version. */
typedef struct fl_resolution {
    avro_schema_t proj; /* reader restricted to the writer's fields */
    avro_value_iface_t *value_iface;
    avro_value_iface_t *resolver; /* avro-c resolved writer: writer -> proj */
    avro_value_t value;           /* generic instance of proj */
    avro_value_t resolved;        /* resolver instance wrapping value */
    fl_plan_t plan[FL_EVENT_MAX_FIELDS];
} fl_resolution_t;

/* One row of ids.tsv with its schema. */
typedef struct fl_version {
    int32_t id;
    fl_event_type_t type;
    int version;
    json_t *json;         /* the .avsc as written: avro-c keeps no defaults or logical types */
    avro_schema_t schema; /* owned reference */
    int field_index[FL_EVENT_MAX_FIELDS]; /* schema field of each descriptor field, or -1 */
    int vis_index[FL_VIS_PRIVATE + 1];    /* enum symbol index of each fl_visibility_t, or -1 */
    char unknown[64];                     /* a schema field the descriptor lacks; "" when none */
    avro_value_iface_t *enc_iface;
    avro_value_t enc_value; /* generic instance of schema, reused by every encode */
    fl_resolution_t res;
} fl_version_t;

struct fl_codec {
    fl_version_t *vers;
    size_t n_vers;
    int current[FL_EV__COUNT]; /* index in vers of the highest version of each type */
    int reader[FL_EV__COUNT];  /* index in vers of the reader version (current unless pinned) */
    avro_reader_t rd;
    avro_writer_t wr;
    uint8_t *buf; /* encode output: header then body */
    size_t cap;
};

static fl_err_t fl_fail(fl_err_t err, char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static fl_err_t fl_fail(fl_err_t err, char *errstr, size_t errstr_size, const char *fmt, ...)
{
    va_list ap;

    if (errstr && errstr_size) {
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return err;
}

static avro_schema_t fl_unlink(avro_schema_t s)
{
    while (is_avro_link(s))
        s = avro_schema_link_target(s);
    return s;
}

static bool fl_is_optional(fl_field_kind_t kind)
{
    return kind == FL_FIELD_OPT_STRING || kind == FL_FIELD_OPT_LONG;
}

/* RFC 3629 UTF-8 without NUL: no overlong forms, surrogates or code
 * points above U+10FFFF. */
static bool fl_utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t b = s[i];
        size_t len;
        uint32_t cp, min;

        if (b == 0)
            return false;
        if (b < 0x80) {
            i++;
            continue;
        }
        if ((b & 0xe0) == 0xc0) {
            len = 2, cp = b & 0x1f, min = 0x80;
        } else if ((b & 0xf0) == 0xe0) {
            len = 3, cp = b & 0x0f, min = 0x800;
        } else if ((b & 0xf8) == 0xf0) {
            len = 4, cp = b & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

/* ---- the pre-decode walk ---------------------------------------------- */

typedef struct fl_walk {
    const uint8_t *p, *end;
    size_t items;      /* array and map elements the rest of the body may hold */
    const char *field; /* innermost record field, for messages */
    char *errstr;
    size_t errstr_size;
} fl_walk_t;

static size_t fl_walk_left(const fl_walk_t *w)
{
    return (size_t)(w->end - w->p);
}

/* A zig-zag varint of at most max_bytes (5 for int, 10 for long); the last
 * byte may only carry the bits that remain (last_mask). */
static fl_err_t fl_walk_varint(fl_walk_t *w, int max_bytes, uint8_t last_mask, int64_t *out)
{
    uint64_t u = 0;

    for (int i = 0;; i++) {
        uint8_t b;

        if (w->p == w->end)
            return fl_fail(FL_ERR_TRUNCATED, w->errstr, w->errstr_size,
                           "field \"%s\": data ends before a varint is complete", w->field);
        b = *w->p++;
        if (i == max_bytes - 1 && (b & ~last_mask))
            return fl_fail(FL_ERR_INVALID, w->errstr, w->errstr_size,
                           "field \"%s\": varint too long or out of range for %s", w->field,
                           max_bytes == 5 ? "an int" : "a long");
        u |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80))
            break;
    }
    *out = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
    return FL_OK;
}

#define fl_walk_long(w, out) fl_walk_varint((w), 10, 0x01, (out))
#define fl_walk_int(w, out)  fl_walk_varint((w), 5, 0x0f, (out))

/* A length prefix: negative is invalid, beyond any legal message is
 * oversized, beyond the bytes left is a truncated message. */
static fl_err_t fl_walk_length(fl_walk_t *w, const char *what, int64_t *len)
{
    fl_err_t err = fl_walk_long(w, len);

    if (err)
        return err;
    if (*len < 0)
        return fl_fail(FL_ERR_INVALID, w->errstr, w->errstr_size,
                       "field \"%s\": negative %s length %" PRId64, w->field, what, *len);
    if (*len > FL_CODEC_MAX_MESSAGE)
        return fl_fail(FL_ERR_OVERSIZED, w->errstr, w->errstr_size,
                       "field \"%s\": %s length %" PRId64 " exceeds the %d-byte message limit",
                       w->field, what, *len, FL_CODEC_MAX_MESSAGE);
    if ((uint64_t)*len > fl_walk_left(w))
        return fl_fail(FL_ERR_TRUNCATED, w->errstr, w->errstr_size,
                       "field \"%s\": %s of %" PRId64 " bytes runs past the end (%zu left)",
                       w->field, what, *len, fl_walk_left(w));
    return FL_OK;
}

static fl_err_t fl_walk(fl_walk_t *w, avro_schema_t s, int depth);

/* Array and map blocks: a count, for a negative count also a byte size,
 * then the items; a zero count ends. */
static fl_err_t fl_walk_blocks(fl_walk_t *w, avro_schema_t item, bool map, int depth)
{
    fl_err_t err;

    for (;;) {
        int64_t count, bytes = -1;
        const uint8_t *start;

        if ((err = fl_walk_long(w, &count)))
            return err;
        if (count == 0)
            return FL_OK;
        if (count < 0) {
            if (count == INT64_MIN)
                return fl_fail(FL_ERR_INVALID, w->errstr, w->errstr_size,
                               "field \"%s\": bad block count", w->field);
            count = -count;
            if ((err = fl_walk_length(w, "block", &bytes)))
                return err;
        }
        if ((uint64_t)count > w->items)
            return fl_fail(FL_ERR_OVERSIZED, w->errstr, w->errstr_size,
                           "field \"%s\": blocks count more items (%" PRId64
                           " in this one) than the message has bytes",
                           w->field, count);
        w->items -= (size_t)count;
        start = w->p;
        for (int64_t k = 0; k < count; k++) {
            int64_t klen;
            if (map) {
                if ((err = fl_walk_length(w, "map key", &klen)))
                    return err;
                if (!fl_utf8_ok(w->p, (size_t)klen))
                    return fl_fail(FL_ERR_INVALID, w->errstr, w->errstr_size,
                                   "field \"%s\": map key is not UTF-8 or contains NUL", w->field);
                w->p += klen;
            }
            if ((err = fl_walk(w, item, depth + 1)))
                return err;
        }
        if (bytes >= 0 && w->p - start != bytes)
            return fl_fail(FL_ERR_INVALID, w->errstr, w->errstr_size,
                           "field \"%s\": block size %" PRId64 " does not match its items",
                           w->field, bytes);
    }
}

static fl_err_t fl_walk(fl_walk_t *w, avro_schema_t s, int depth)
{
    fl_err_t err = FL_OK;
    int64_t v;

    s = fl_unlink(s);
    if (depth > FL_CODEC_MAX_DEPTH)
        return fl_fail(FL_ERR_INVALID, w->errstr, w->errstr_size,
                       "field \"%s\": nesting deeper than %d", w->field, FL_CODEC_MAX_DEPTH);
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return FL_OK;
    case AVRO_BOOLEAN:
        if (w->p == w->end)
            return fl_fail(FL_ERR_TRUNCATED, w->errstr, w->errstr_size,
                           "field \"%s\": data ends before a boolean", w->field);
        if (*w->p > 1)
            return fl_fail(FL_ERR_INVALID, w->errstr, w->errstr_size,
                           "field \"%s\": boolean byte 0x%02x", w->field, *w->p);
        w->p++;
        return FL_OK;
    case AVRO_INT32:
        return fl_walk_int(w, &v);
    case AVRO_INT64:
        return fl_walk_long(w, &v);
    case AVRO_FLOAT:
    case AVRO_DOUBLE: {
        size_t n = avro_typeof(s) == AVRO_FLOAT ? 4 : 8;
        if (fl_walk_left(w) < n)
            return fl_fail(FL_ERR_TRUNCATED, w->errstr, w->errstr_size,
                           "field \"%s\": data ends inside a %zu-byte number", w->field, n);
        w->p += n;
        return FL_OK;
    }
    case AVRO_STRING:
    case AVRO_BYTES: {
        bool str = avro_typeof(s) == AVRO_STRING;
        if ((err = fl_walk_length(w, str ? "string" : "bytes", &v)))
            return err;
        if (str && !fl_utf8_ok(w->p, (size_t)v))
            return fl_fail(FL_ERR_INVALID, w->errstr, w->errstr_size,
                           "field \"%s\": string is not UTF-8 or contains NUL", w->field);
        w->p += v;
        return FL_OK;
    }
    case AVRO_FIXED: {
        int64_t n = avro_schema_fixed_size(s);
        if (n < 0 || (uint64_t)n > fl_walk_left(w))
            return fl_fail(FL_ERR_TRUNCATED, w->errstr, w->errstr_size,
                           "field \"%s\": data ends inside a %" PRId64 "-byte fixed", w->field, n);
        w->p += n;
        return FL_OK;
    }
    case AVRO_ENUM:
        if ((err = fl_walk_int(w, &v)))
            return err;
        if (v < 0 || v >= avro_schema_enum_number_of_symbols(s))
            return fl_fail(FL_ERR_INVALID, w->errstr, w->errstr_size,
                           "field \"%s\": enum index %" PRId64 " out of range [0, %d)", w->field, v,
                           avro_schema_enum_number_of_symbols(s));
        return FL_OK;
    case AVRO_UNION:
        if ((err = fl_walk_int(w, &v)))
            return err;
        if (v < 0 || (uint64_t)v >= avro_schema_union_size(s))
            return fl_fail(FL_ERR_INVALID, w->errstr, w->errstr_size,
                           "field \"%s\": union index %" PRId64 " out of range [0, %zu)", w->field,
                           v, avro_schema_union_size(s));
        return fl_walk(w, avro_schema_union_branch(s, (int)v), depth + 1);
    case AVRO_ARRAY:
        return fl_walk_blocks(w, avro_schema_array_items(s), false, depth);
    case AVRO_MAP:
        return fl_walk_blocks(w, avro_schema_map_values(s), true, depth);
    case AVRO_RECORD: {
        const char *outer = w->field;
        size_t n = avro_schema_record_size(s);
        for (size_t i = 0; i < n && !err; i++) {
            w->field = avro_schema_record_field_name(s, (int)i);
            err = fl_walk(w, avro_schema_record_field_get_by_index(s, (int)i), depth + 1);
        }
        if (!err)
            w->field = outer;
        return err;
    }
    default:
        return fl_fail(FL_ERR_INVALID, w->errstr, w->errstr_size,
                       "field \"%s\": unsupported schema type", w->field);
    }
}

/* ---- loading ------------------------------------------------------------ */

static char *fl_read_file(const char *path, size_t *len, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0;

    if (!f) {
        fl_fail(FL_ERR_IO, errstr, errstr_size, "%s: %s", path, strerror(errno));
        goto out;
    }
    buf = malloc(FL_CODEC_MAX_FILE + 1);
    if (!buf) {
        fl_fail(FL_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    n = fread(buf, 1, FL_CODEC_MAX_FILE + 1, f);
    if (ferror(f) || n > FL_CODEC_MAX_FILE) {
        fl_fail(FL_ERR_IO, errstr, errstr_size, "%s: %s", path,
                ferror(f) ? "read error" : "file too large");
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[n] = '\0';
    *len = n;
out:
    if (f)
        fclose(f);
    return buf;
}

static json_t *fl_json_field(const json_t *schema, const char *name)
{
    json_t *fields = json_object_get(schema, "fields");
    size_t i;
    json_t *f;

    json_array_foreach(fields, i, f)
    {
        const char *n = json_string_value(json_object_get(f, "name"));
        if (n && !strcmp(n, name))
            return f;
    }
    return NULL;
}

/* The expected Avro type when schema field s (JSON fjson) cannot carry
 * descriptor field f; NULL when it can. */
static const char *fl_kind_mismatch(const fl_field_desc_t *f, avro_schema_t s, const json_t *fjson)
{
    const json_t *t = json_object_get(fjson, "type");
    const char *lt = json_string_value(json_object_get(t, "logicalType"));

    s = fl_unlink(s);
    switch (f->kind) {
    case FL_FIELD_LONG:
        return is_avro_int64(s) ? NULL : "long";
    case FL_FIELD_TIMESTAMP:
        return is_avro_int64(s) && lt && !strcmp(lt, "timestamp-millis")
                   ? NULL
                   : "{\"type\": \"long\", \"logicalType\": \"timestamp-millis\"}";
    case FL_FIELD_STRING:
        return is_avro_string(s) ? NULL : "string";
    case FL_FIELD_OPT_STRING:
    case FL_FIELD_OPT_LONG: {
        bool str = f->kind == FL_FIELD_OPT_STRING;
        const json_t *d = json_object_get(fjson, "default");
        if (!is_avro_union(s) || avro_schema_union_size(s) != 2 ||
            !is_avro_null(fl_unlink(avro_schema_union_branch(s, 0))) ||
            !(str ? is_avro_string(fl_unlink(avro_schema_union_branch(s, 1)))
                  : is_avro_int64(fl_unlink(avro_schema_union_branch(s, 1)))) ||
            (d && !json_is_null(d)))
            return str ? "[\"null\", \"string\"] with default null"
                       : "[\"null\", \"long\"] with default null";
        return NULL;
    }
    case FL_FIELD_VISIBILITY: {
        const char *name = is_avro_enum(s) ? avro_schema_name(s) : NULL;
        int n = name ? avro_schema_enum_number_of_symbols(s) : 0;
        if (!name || strcmp(name, "Visibility") || n < 1 || n > FL_CODEC_MAX_SYMBOLS)
            return "enum Visibility (at most 64 symbols)";
        return NULL;
    }
    }
    return "a known field kind";
}

/* Reads one schema file and maps its fields onto the descriptor. */
static fl_err_t fl_load_schema(fl_version_t *v, const char *dir, const char *file, char *errstr,
                               size_t errstr_size)
{
    const fl_event_desc_t *d = fl_event_desc(v->type);
    fl_err_t err = FL_OK;
    char path[4096];
    char *text = NULL;
    size_t len = 0;
    json_error_t jerr;
    const char *ns;

    if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path)) {
        err = fl_fail(FL_ERR_SCHEMA, errstr, errstr_size, "%s/%s: path too long", dir, file);
        goto out;
    }
    text = fl_read_file(path, &len, errstr, errstr_size);
    if (!text) {
        err = FL_ERR_SCHEMA;
        goto out;
    }
    v->json = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v->json) {
        err = fl_fail(FL_ERR_SCHEMA, errstr, errstr_size, "%s:%d: %s", path, jerr.line, jerr.text);
        goto out;
    }
    if (avro_schema_from_json_length(text, len, &v->schema)) {
        v->schema = NULL;
        err = fl_fail(FL_ERR_SCHEMA, errstr, errstr_size, "%s: %s", path, avro_strerror());
        goto out;
    }
    ns = avro_schema_namespace(v->schema);
    if (!is_avro_record(v->schema) || strcmp(avro_schema_name(v->schema), d->name) || !ns ||
        strcmp(ns, FL_CODEC_NAMESPACE)) {
        err = fl_fail(FL_ERR_SCHEMA, errstr, errstr_size, "%s: expected record %s.%s", path,
                      FL_CODEC_NAMESPACE, d->name);
        goto out;
    }

    for (size_t i = 0; i < FL_EVENT_MAX_FIELDS; i++)
        v->field_index[i] = -1;
    for (int k = 0; k <= (int)FL_VIS_PRIVATE; k++)
        v->vis_index[k] = -1;
    for (size_t i = 0; i < d->n_fields; i++) {
        const fl_field_desc_t *f = &d->fields[i];
        int idx = avro_schema_record_field_get_index(v->schema, f->name);
        const char *want;
        avro_schema_t fs;

        if (idx < 0)
            continue;
        fs = avro_schema_record_field_get_by_index(v->schema, idx);
        want = fl_kind_mismatch(f, fs, fl_json_field(v->json, f->name));
        if (want) {
            err = fl_fail(FL_ERR_SCHEMA, errstr, errstr_size, "%s: field \"%s\" must be %s", path,
                          f->name, want);
            goto out;
        }
        v->field_index[i] = idx;
        if (f->kind == FL_FIELD_VISIBILITY)
            for (int k = 0; k <= (int)FL_VIS_PRIVATE; k++)
                v->vis_index[k] = avro_schema_enum_get_by_name(
                    fl_unlink(fs), fl_visibility_name((fl_visibility_t)k));
    }
    for (size_t i = 0; i < avro_schema_record_size(v->schema); i++) {
        const char *name = avro_schema_record_field_name(v->schema, (int)i);
        bool known = false;
        for (size_t k = 0; k < d->n_fields && !known; k++)
            known = !strcmp(d->fields[k].name, name);
        if (!known) {
            snprintf(v->unknown, sizeof(v->unknown), "%s", name);
            break;
        }
    }

    v->enc_iface = avro_generic_class_from_schema(v->schema);
    if (!v->enc_iface || avro_generic_value_new(v->enc_iface, &v->enc_value)) {
        v->enc_value.iface = NULL;
        err = fl_fail(FL_ERR_SCHEMA, errstr, errstr_size, "%s: %s", path, avro_strerror());
        goto out;
    }
out:
    free(text);
    return err;
}

/* Can v serve as the reader of its type? The current version must carry
 * every descriptor field; an older pinned one every required field. A
 * writer may use enum symbols fl_visibility_t lacks (they resolve to the
 * reader's default), a reader may not. */
static fl_err_t fl_check_reader(const fl_version_t *v, bool current, char *errstr,
                                size_t errstr_size)
{
    const fl_event_desc_t *d = fl_event_desc(v->type);

    for (size_t i = 0; i < d->n_fields; i++) {
        avro_schema_t e;

        if (v->field_index[i] < 0) {
            if (current || !fl_is_optional(d->fields[i].kind))
                return fl_fail(FL_ERR_SCHEMA, errstr, errstr_size,
                               "%s v%d (id %" PRId32 ") lacks field \"%s\"", d->name, v->version,
                               v->id, d->fields[i].name);
            continue;
        }
        if (d->fields[i].kind != FL_FIELD_VISIBILITY)
            continue;
        e = fl_unlink(avro_schema_record_field_get_by_index(v->schema, v->field_index[i]));
        for (int k = 0; k < avro_schema_enum_number_of_symbols(e); k++)
            if (fl_visibility_by_name(avro_schema_enum_get(e, k)) < 0)
                return fl_fail(FL_ERR_SCHEMA, errstr, errstr_size,
                               "%s v%d (id %" PRId32 "): reader symbol %s of field \"%s\" has no "
                               "fl_visibility_t value",
                               d->name, v->version, v->id, avro_schema_enum_get(e, k),
                               d->fields[i].name);
    }
    return FL_OK;
}

/* Can events be encoded with v? Every schema field must come from the
 * descriptor and every visibility must have its symbol. */
static fl_err_t fl_check_encodable(const fl_version_t *v, char *errstr, size_t errstr_size)
{
    const fl_event_desc_t *d = fl_event_desc(v->type);

    if (v->unknown[0])
        return fl_fail(FL_ERR_SCHEMA, errstr, errstr_size,
                       "%s v%d (id %" PRId32 "): field \"%s\" is not in the event descriptor",
                       d->name, v->version, v->id, v->unknown);
    for (size_t i = 0; i < d->n_fields; i++)
        if (d->fields[i].kind == FL_FIELD_VISIBILITY && v->field_index[i] >= 0)
            for (int k = 0; k <= (int)FL_VIS_PRIVATE; k++)
                if (v->vis_index[k] < 0)
                    return fl_fail(FL_ERR_SCHEMA, errstr, errstr_size,
                                   "%s v%d (id %" PRId32 "): enum Visibility lacks %s", d->name,
                                   v->version, v->id, fl_visibility_name((fl_visibility_t)k));
    return FL_OK;
}

static void fl_resolution_free(fl_resolution_t *r)
{
    if (r->resolved.iface)
        avro_value_decref(&r->resolved);
    if (r->value.iface)
        avro_value_decref(&r->value);
    if (r->resolver)
        avro_value_iface_decref(r->resolver);
    if (r->value_iface)
        avro_value_iface_decref(r->value_iface);
    if (r->proj)
        avro_schema_decref(r->proj);
    memset(r, 0, sizeof(*r));
}

/* The symbol a Visibility enum's JSON names as its default, if any. */
static const char *fl_enum_default(const json_t *fjson)
{
    return json_string_value(json_object_get(json_object_get(fjson, "type"), "default"));
}

/* How field i of the descriptor is obtained when w is read as r. */
static fl_err_t fl_plan_field(const fl_version_t *w, const fl_version_t *r, size_t i, fl_plan_t *p,
                              avro_schema_t proj, char *errstr, size_t errstr_size)
{
    const fl_field_desc_t *f = &fl_event_desc(w->type)->fields[i];
    const json_t *rjson = fl_json_field(r->json, f->name);
    avro_schema_t rfield;

    p->src = -1;
    if (r->field_index[i] < 0)
        return FL_OK; /* optional and not in this reader: stays absent */
    rfield = fl_unlink(avro_schema_record_field_get_by_index(r->schema, r->field_index[i]));

    if (w->field_index[i] >= 0) {
        p->src = avro_schema_record_field_get_index(proj, f->name);
        if (f->kind != FL_FIELD_VISIBILITY)
            return FL_OK;
        /* avro-c stores the writer's enum index unmapped: map by symbol,
         * falling back to the reader enum's default as the spec says. */
        avro_schema_t wenum =
            fl_unlink(avro_schema_record_field_get_by_index(w->schema, w->field_index[i]));
        const char *rdef = fl_enum_default(rjson);
        p->n_vis = avro_schema_enum_number_of_symbols(wenum);
        for (int k = 0; k < p->n_vis; k++) {
            const char *sym = avro_schema_enum_get(wenum, k);
            if (avro_schema_enum_get_by_name(rfield, sym) < 0)
                sym = rdef && avro_schema_enum_get_by_name(rfield, rdef) >= 0 ? rdef : NULL;
            p->vis_map[k] = (int8_t)(sym ? fl_visibility_by_name(sym) : -1);
        }
        return FL_OK;
    }

    const json_t *dv = json_object_get(rjson, "default");
    p->dflt = true;
    switch (f->kind) {
    case FL_FIELD_OPT_STRING:
    case FL_FIELD_OPT_LONG:
        if (dv && json_is_null(dv))
            return FL_OK;
        break;
    case FL_FIELD_LONG:
    case FL_FIELD_TIMESTAMP:
        if (json_is_integer(dv)) {
            p->dflt_long = (int64_t)json_integer_value(dv);
            return FL_OK;
        }
        break;
    case FL_FIELD_STRING:
        if (json_is_string(dv) && !memchr(json_string_value(dv), 0, json_string_length(dv))) {
            p->dflt_str = json_string_value(dv);
            return FL_OK;
        }
        break;
    case FL_FIELD_VISIBILITY:
        if (json_is_string(dv) &&
            avro_schema_enum_get_by_name(rfield, json_string_value(dv)) >= 0) {
            p->dflt_vis = fl_visibility_by_name(json_string_value(dv));
            return FL_OK;
        }
        break;
    }
    return fl_fail(FL_ERR_SCHEMA, errstr, errstr_size,
                   "field \"%s\" is not in v%d and has no usable default in v%d", f->name,
                   w->version, r->version);
}

/* Prepares decoding of records written with w into events, reading them
 * as r (same type). */
static fl_err_t fl_resolution_build(const fl_version_t *w, const fl_version_t *r,
                                    fl_resolution_t *res, char *errstr, size_t errstr_size)
{
    const fl_event_desc_t *d = fl_event_desc(w->type);
    fl_err_t err = FL_OK;
    json_t *pj = NULL, *fields, *f;
    char *text = NULL;
    size_t i;

    memset(res, 0, sizeof(*res));
    /* Every reader field the writer lacks needs a default (Avro's rule),
     * even one the descriptor does not know. */
    json_array_foreach(json_object_get(r->json, "fields"), i, f)
    {
        const char *name = json_string_value(json_object_get(f, "name"));
        if (name && avro_schema_record_field_get_index(w->schema, name) < 0 &&
            !json_object_get(f, "default")) {
            err = fl_fail(FL_ERR_SCHEMA, errstr, errstr_size,
                          "field \"%s\" is not in v%d and has no default in v%d", name, w->version,
                          r->version);
            goto out;
        }
    }

    pj = json_deep_copy(r->json);
    fields = json_object_get(pj, "fields");
    if (!pj || !json_is_array(fields)) {
        err = fl_fail(FL_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    for (i = json_array_size(fields); i-- > 0;) {
        const char *name = json_string_value(json_object_get(json_array_get(fields, i), "name"));
        if (!name || avro_schema_record_field_get_index(w->schema, name) < 0)
            json_array_remove(fields, i);
    }
    text = json_dumps(pj, JSON_COMPACT);
    if (!text) {
        err = fl_fail(FL_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    if (avro_schema_from_json_length(text, strlen(text), &res->proj)) {
        res->proj = NULL;
        err = fl_fail(FL_ERR_SCHEMA, errstr, errstr_size, "projection: %s", avro_strerror());
        goto out;
    }
    res->value_iface = avro_generic_class_from_schema(res->proj);
    if (!res->value_iface || avro_generic_value_new(res->value_iface, &res->value)) {
        res->value.iface = NULL;
        err = fl_fail(FL_ERR_SCHEMA, errstr, errstr_size, "%s", avro_strerror());
        goto out;
    }
    res->resolver = avro_resolved_writer_new(w->schema, res->proj);
    if (!res->resolver || avro_resolved_writer_new_value(res->resolver, &res->resolved)) {
        res->resolved.iface = NULL;
        err = fl_fail(FL_ERR_SCHEMA, errstr, errstr_size, "%s", avro_strerror());
        goto out;
    }
    avro_resolved_writer_set_dest(&res->resolved, &res->value);

    for (i = 0; i < d->n_fields; i++)
        if ((err = fl_plan_field(w, r, i, &res->plan[i], res->proj, errstr, errstr_size)))
            goto out;
out:
    if (err)
        fl_resolution_free(res);
    free(text);
    json_decref(pj);
    return err;
}

/* Parses ids.tsv into c->vers (schemas not loaded yet). */
static fl_err_t fl_load_ids(fl_codec_t *c, const char *dir, char ***files, char *errstr,
                            size_t errstr_size)
{
    fl_err_t err = FL_OK;
    char path[4096];
    char *text = NULL, *line, *next;
    size_t len = 0;
    int lineno = 0;

    snprintf(path, sizeof(path), "%s/ids.tsv", dir);
    text = fl_read_file(path, &len, errstr, errstr_size);
    if (!text) {
        err = FL_ERR_SCHEMA;
        goto out;
    }
    c->vers = calloc(FL_CODEC_MAX_VERSIONS, sizeof(*c->vers));
    *files = calloc(FL_CODEC_MAX_VERSIONS, sizeof(**files));
    if (!c->vers || !*files) {
        err = fl_fail(FL_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    for (line = text; line; line = next) {
        char *col[4], *end;
        size_t n = 0;
        long id, ver;
        fl_version_t *v;

        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        line[strcspn(line, "\r")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        for (char *p = line;;) {
            if (n == 4) {
                n = 5; /* a fifth column */
                break;
            }
            col[n++] = p;
            p = strchr(p, '\t');
            if (!p)
                break;
            *p++ = '\0';
        }
        if (n != 4) {
            err = fl_fail(FL_ERR_SCHEMA, errstr, errstr_size,
                          "%s:%d: expected 4 tab-separated columns: id, record, version, file",
                          path, lineno);
            goto out;
        }
        if (c->n_vers == FL_CODEC_MAX_VERSIONS) {
            err = fl_fail(FL_ERR_SCHEMA, errstr, errstr_size, "%s:%d: more than %d schemas", path,
                          lineno, FL_CODEC_MAX_VERSIONS);
            goto out;
        }
        v = &c->vers[c->n_vers];
        errno = 0;
        id = strtol(col[0], &end, 10);
        if (errno || end == col[0] || *end || id < 1 || id > INT32_MAX) {
            err = fl_fail(FL_ERR_SCHEMA, errstr, errstr_size, "%s:%d: bad schema id \"%s\"", path,
                          lineno, col[0]);
            goto out;
        }
        v->id = (int32_t)id;
        v->type = fl_event_type_by_name(col[1]);
        if (v->type == FL_EV_NONE) {
            err = fl_fail(FL_ERR_SCHEMA, errstr, errstr_size, "%s:%d: unknown record \"%s\"", path,
                          lineno, col[1]);
            goto out;
        }
        errno = 0;
        ver = strtol(col[2], &end, 10);
        if (errno || end == col[2] || *end || ver < 1 || ver > 1000000) {
            err = fl_fail(FL_ERR_SCHEMA, errstr, errstr_size, "%s:%d: bad version \"%s\"", path,
                          lineno, col[2]);
            goto out;
        }
        v->version = (int)ver;
        if (!col[3][0] || col[3][0] == '/' || strstr(col[3], "..")) {
            err = fl_fail(FL_ERR_SCHEMA, errstr, errstr_size,
                          "%s:%d: file must be a path inside the schemas directory", path, lineno);
            goto out;
        }
        for (size_t k = 0; k < c->n_vers; k++) {
            if (c->vers[k].id == v->id ||
                (c->vers[k].type == v->type && c->vers[k].version == ver)) {
                err = fl_fail(FL_ERR_SCHEMA, errstr, errstr_size,
                              "%s:%d: duplicate %s (first listed as id %" PRId32 ", %s v%d)", path,
                              lineno, c->vers[k].id == v->id ? "schema id" : "record version",
                              c->vers[k].id, fl_event_desc(c->vers[k].type)->name,
                              c->vers[k].version);
                goto out;
            }
        }
        (*files)[c->n_vers] = strdup(col[3]);
        if (!(*files)[c->n_vers]) {
            err = fl_fail(FL_ERR_NOMEM, errstr, errstr_size, "out of memory");
            goto out;
        }
        c->n_vers++;
    }
out:
    free(text);
    return err;
}

/* Points every version of type at reader index ridx, all or nothing. */
static fl_err_t fl_resolve_type(fl_codec_t *c, fl_event_type_t type, int ridx, char *errstr,
                                size_t errstr_size)
{
    fl_err_t err = FL_OK;
    fl_resolution_t *tmp = calloc(c->n_vers, sizeof(*tmp));
    char msg[512];
    size_t i;

    if (!tmp)
        return fl_fail(FL_ERR_NOMEM, errstr, errstr_size, "out of memory");
    for (i = 0; i < c->n_vers; i++) {
        const fl_version_t *w = &c->vers[i];
        if (w->type != type)
            continue;
        err = fl_resolution_build(w, &c->vers[ridx], &tmp[i], msg, sizeof(msg));
        if (err) {
            fl_fail(err, errstr, errstr_size, "%s v%d (id %" PRId32 ") cannot be read as v%d: %s",
                    fl_event_desc(type)->name, w->version, w->id, c->vers[ridx].version, msg);
            goto out;
        }
    }
    for (i = 0; i < c->n_vers; i++) {
        if (c->vers[i].type != type)
            continue;
        fl_resolution_free(&c->vers[i].res);
        c->vers[i].res = tmp[i];
        memset(&tmp[i], 0, sizeof(tmp[i]));
    }
    c->reader[type] = ridx;
out:
    for (i = 0; i < c->n_vers; i++)
        fl_resolution_free(&tmp[i]);
    free(tmp);
    return err;
}

const char *fl_codec_default_dir(void)
{
    const char *d = getenv("FEEDLINE_SCHEMAS");
    return d && *d ? d : "schemas";
}

fl_codec_t *fl_codec_new(const char *schemas_dir, char *errstr, size_t errstr_size)
{
    fl_codec_t *c = calloc(1, sizeof(*c));
    fl_err_t err = FL_OK;
    char **files = NULL;
    const char *dir = schemas_dir ? schemas_dir : fl_codec_default_dir();

    if (!c) {
        err = fl_fail(FL_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    if ((err = fl_load_ids(c, dir, &files, errstr, errstr_size)))
        goto out;
    for (int t = 0; t < FL_EV__COUNT; t++)
        c->current[t] = c->reader[t] = -1;
    for (size_t i = 0; i < c->n_vers; i++) {
        fl_version_t *v = &c->vers[i];
        if ((err = fl_load_schema(v, dir, files[i], errstr, errstr_size)))
            goto out;
        if (c->current[v->type] < 0 || c->vers[c->current[v->type]].version < v->version)
            c->current[v->type] = (int)i;
    }
    for (int t = FL_EV_NONE + 1; t < FL_EV__COUNT; t++) {
        const fl_version_t *cur;
        if (c->current[t] < 0) {
            err = fl_fail(FL_ERR_SCHEMA, errstr, errstr_size, "%s/ids.tsv: no schema for %s", dir,
                          fl_event_desc((fl_event_type_t)t)->name);
            goto out;
        }
        cur = &c->vers[c->current[t]];
        if ((err = fl_check_reader(cur, true, errstr, errstr_size)) ||
            (err = fl_check_encodable(cur, errstr, errstr_size)) ||
            (err = fl_resolve_type(c, (fl_event_type_t)t, c->current[t], errstr, errstr_size)))
            goto out;
    }
    c->buf = malloc(256);
    c->cap = 256;
    c->wr = c->buf ? avro_writer_memory((const char *)c->buf, (int64_t)c->cap) : NULL;
    c->rd = avro_reader_memory("", 0);
    if (!c->wr || !c->rd) {
        err = fl_fail(FL_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
out:
    if (files) {
        for (size_t i = 0; i < FL_CODEC_MAX_VERSIONS; i++)
            free(files[i]);
        free(files);
    }
    if (err) {
        fl_codec_free(c);
        return NULL;
    }
    return c;
}

void fl_codec_free(fl_codec_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->vers && i < c->n_vers; i++) {
        fl_version_t *v = &c->vers[i];
        fl_resolution_free(&v->res);
        if (v->enc_value.iface)
            avro_value_decref(&v->enc_value);
        if (v->enc_iface)
            avro_value_iface_decref(v->enc_iface);
        if (v->schema)
            avro_schema_decref(v->schema);
        json_decref(v->json);
    }
    free(c->vers);
    if (c->rd)
        avro_reader_free(c->rd);
    if (c->wr)
        avro_writer_free(c->wr);
    free(c->buf);
    free(c);
}

static int fl_find_version(const fl_codec_t *c, fl_event_type_t type, int version)
{
    for (size_t i = 0; i < c->n_vers; i++)
        if (c->vers[i].type == type && c->vers[i].version == version)
            return (int)i;
    return -1;
}

fl_err_t fl_codec_set_reader_version(fl_codec_t *c, const char *record_name, int version)
{
    fl_event_type_t type = fl_event_type_by_name(record_name);
    char msg[512];
    fl_err_t err;
    int idx;

    if (!c || type == FL_EV_NONE || (idx = fl_find_version(c, type, version)) < 0)
        return FL_ERR_SCHEMA;
    if (idx == c->reader[type])
        return FL_OK;
    err = fl_check_reader(&c->vers[idx], idx == c->current[type], msg, sizeof(msg));
    if (!err)
        err = fl_resolve_type(c, type, idx, msg, sizeof(msg));
    if (err)
        fl_log_warn("codec", "cannot pin the reader of %s to v%d: %s", record_name, version, msg);
    return err;
}

int32_t fl_codec_schema_id(const fl_codec_t *c, fl_event_type_t type)
{
    if (!c || !fl_event_desc(type) || c->current[type] < 0)
        return -1;
    return c->vers[c->current[type]].id;
}

/* ---- encoding ----------------------------------------------------------- */

static fl_err_t fl_encode_field(fl_version_t *v, const fl_field_desc_t *f, int idx,
                                const fl_event_t *ev, char *errstr, size_t errstr_size)
{
    const char *base = (const char *)ev;
    const char *name = fl_event_desc(ev->type)->name;
    avro_value_t fv, br;
    const char *s;
    int64_t n;
    int rc = 0;

    if (avro_value_get_by_index(&v->enc_value, (size_t)idx, &fv, NULL))
        return fl_fail(FL_ERR_SCHEMA, errstr, errstr_size, "%s", avro_strerror());
    switch (f->kind) {
    case FL_FIELD_LONG:
    case FL_FIELD_TIMESTAMP:
        memcpy(&n, base + f->offset, sizeof(n));
        rc = avro_value_set_long(&fv, n);
        break;
    case FL_FIELD_OPT_LONG:
        memcpy(&n, base + f->offset, sizeof(n));
        if (*(const bool *)(base + f->has_offset))
            rc = avro_value_set_branch(&fv, 1, &br) || avro_value_set_long(&br, n);
        else
            rc = avro_value_set_branch(&fv, 0, &br) || avro_value_set_null(&br);
        break;
    case FL_FIELD_STRING:
    case FL_FIELD_OPT_STRING:
        memcpy(&s, base + f->offset, sizeof(s));
        if (!s && f->kind == FL_FIELD_STRING)
            return fl_fail(FL_ERR_INVALID, errstr, errstr_size, "%s: missing field \"%s\"", name,
                           f->name);
        if (s && !fl_utf8_ok((const uint8_t *)s, strlen(s)))
            return fl_fail(FL_ERR_INVALID, errstr, errstr_size,
                           "%s: field \"%s\" is not valid UTF-8", name, f->name);
        if (f->kind == FL_FIELD_STRING)
            rc = avro_value_set_string(&fv, s);
        else if (s)
            rc = avro_value_set_branch(&fv, 1, &br) || avro_value_set_string(&br, s);
        else
            rc = avro_value_set_branch(&fv, 0, &br) || avro_value_set_null(&br);
        break;
    case FL_FIELD_VISIBILITY:
        if (!fl_visibility_name(ev->visibility) || v->vis_index[ev->visibility] < 0)
            return fl_fail(FL_ERR_INVALID, errstr, errstr_size, "%s: field \"%s\": bad value %d",
                           name, f->name, (int)ev->visibility);
        rc = avro_value_set_enum(&fv, v->vis_index[ev->visibility]);
        break;
    }
    if (rc)
        return fl_fail(FL_ERR_INVALID, errstr, errstr_size, "%s: field \"%s\": %s", name, f->name,
                       avro_strerror());
    return FL_OK;
}

static fl_err_t fl_encode_with(fl_codec_t *c, fl_version_t *v, const fl_event_t *ev,
                               const void **out, size_t *out_len, char *errstr, size_t errstr_size)
{
    const fl_event_desc_t *d = fl_event_desc(ev->type);
    fl_err_t err;
    size_t size = 0, total;

    if ((err = fl_check_encodable(v, errstr, errstr_size)))
        return err;
    avro_value_reset(&v->enc_value);
    for (size_t i = 0; i < d->n_fields; i++)
        if (v->field_index[i] >= 0 &&
            (err = fl_encode_field(v, &d->fields[i], v->field_index[i], ev, errstr, errstr_size)))
            return err;
    if (avro_value_sizeof(&v->enc_value, &size))
        return fl_fail(FL_ERR_INVALID, errstr, errstr_size, "%s: %s", d->name, avro_strerror());
    if (size > FL_CODEC_MAX_MESSAGE - FL_CODEC_HEADER_SIZE)
        return fl_fail(FL_ERR_OVERSIZED, errstr, errstr_size,
                       "%s: encoded size %zu exceeds the %d-byte message limit", d->name,
                       size + FL_CODEC_HEADER_SIZE, FL_CODEC_MAX_MESSAGE);
    total = size + FL_CODEC_HEADER_SIZE;
    if (total > c->cap) {
        size_t cap = c->cap;
        uint8_t *nb;
        while (cap < total)
            cap *= 2;
        nb = realloc(c->buf, cap);
        if (!nb)
            return fl_fail(FL_ERR_NOMEM, errstr, errstr_size, "out of memory");
        c->buf = nb;
        c->cap = cap;
    }
    c->buf[0] = FL_CODEC_MAGIC;
    fl_be_put32(c->buf + 1, (uint32_t)v->id);
    avro_writer_memory_set_dest(c->wr, (const char *)c->buf + FL_CODEC_HEADER_SIZE, (int64_t)size);
    if (avro_value_write(c->wr, &v->enc_value) || avro_writer_tell(c->wr) != (int64_t)size)
        return fl_fail(FL_ERR_INVALID, errstr, errstr_size, "%s: %s", d->name, avro_strerror());
    *out = c->buf;
    *out_len = total;
    return FL_OK;
}

fl_err_t fl_codec_encode(fl_codec_t *c, const fl_event_t *ev, const void **out, size_t *out_len,
                         char *errstr, size_t errstr_size)
{
    if (!c || !ev || !out || !out_len || !fl_event_desc(ev->type))
        return fl_fail(FL_ERR_INVALID, errstr, errstr_size, "no event type to encode");
    return fl_encode_with(c, &c->vers[c->current[ev->type]], ev, out, out_len, errstr, errstr_size);
}

fl_err_t fl_codec_encode_version(fl_codec_t *c, const fl_event_t *ev, int version, const void **out,
                                 size_t *out_len, char *errstr, size_t errstr_size)
{
    int idx;

    if (!c || !ev || !out || !out_len || !fl_event_desc(ev->type))
        return fl_fail(FL_ERR_INVALID, errstr, errstr_size, "no event type to encode");
    idx = fl_find_version(c, ev->type, version);
    if (idx < 0)
        return fl_fail(FL_ERR_SCHEMA, errstr, errstr_size, "%s v%d is not listed",
                       fl_event_desc(ev->type)->name, version);
    return fl_encode_with(c, &c->vers[idx], ev, out, out_len, errstr, errstr_size);
}

/* ---- decoding ----------------------------------------------------------- */

static char *fl_strndup(const char *s, size_t n)
{
    char *copy = malloc(n + 1);
    if (copy) {
        memcpy(copy, s, n);
        copy[n] = '\0';
    }
    return copy;
}

/* Copies the resolved value of v into ev, field by field per the plan. */
static fl_err_t fl_extract(fl_version_t *v, fl_event_t *ev, char *errstr, size_t errstr_size)
{
    const fl_event_desc_t *d = fl_event_desc(v->type);
    char *base = (char *)ev;

    ev->type = v->type;
    for (size_t i = 0; i < d->n_fields; i++) {
        const fl_field_desc_t *f = &d->fields[i];
        const fl_plan_t *p = &v->res.plan[i];
        avro_value_t fv, br;
        const char *s = NULL;
        char *copy;
        size_t sz = 0;
        int64_t n;
        int k, rc = 0;

        if (p->src < 0) {
            if (!p->dflt)
                continue;
            switch (f->kind) {
            case FL_FIELD_LONG:
            case FL_FIELD_TIMESTAMP:
                memcpy(base + f->offset, &p->dflt_long, sizeof(p->dflt_long));
                break;
            case FL_FIELD_STRING:
                copy = strdup(p->dflt_str);
                if (!copy)
                    return fl_fail(FL_ERR_NOMEM, errstr, errstr_size, "out of memory");
                memcpy(base + f->offset, &copy, sizeof(copy));
                break;
            case FL_FIELD_VISIBILITY:
                ev->visibility = (fl_visibility_t)p->dflt_vis;
                break;
            case FL_FIELD_OPT_STRING:
            case FL_FIELD_OPT_LONG:
                break;
            }
            continue;
        }
        if (avro_value_get_by_index(&v->res.value, (size_t)p->src, &fv, NULL))
            return fl_fail(FL_ERR_INVALID, errstr, errstr_size, "%s", avro_strerror());
        switch (f->kind) {
        case FL_FIELD_LONG:
        case FL_FIELD_TIMESTAMP:
            rc = avro_value_get_long(&fv, &n);
            if (!rc)
                memcpy(base + f->offset, &n, sizeof(n));
            break;
        case FL_FIELD_OPT_LONG:
            rc = avro_value_get_current_branch(&fv, &br);
            if (!rc && avro_value_get_type(&br) != AVRO_NULL) {
                rc = avro_value_get_long(&br, &n);
                if (!rc) {
                    memcpy(base + f->offset, &n, sizeof(n));
                    *(bool *)(base + f->has_offset) = true;
                }
            }
            break;
        case FL_FIELD_STRING:
        case FL_FIELD_OPT_STRING:
            br = fv;
            if (f->kind == FL_FIELD_OPT_STRING) {
                rc = avro_value_get_current_branch(&fv, &br);
                if (rc || avro_value_get_type(&br) == AVRO_NULL)
                    break;
            }
            /* avro-c's size counts the terminating NUL. */
            rc = avro_value_get_string(&br, &s, &sz);
            if (rc)
                break;
            copy = fl_strndup(s, sz ? sz - 1 : 0);
            if (!copy)
                return fl_fail(FL_ERR_NOMEM, errstr, errstr_size, "out of memory");
            memcpy(base + f->offset, &copy, sizeof(copy));
            break;
        case FL_FIELD_VISIBILITY:
            rc = avro_value_get_enum(&fv, &k);
            if (rc)
                break;
            if (k < 0 || k >= p->n_vis || p->vis_map[k] < 0)
                return fl_fail(FL_ERR_INVALID, errstr, errstr_size,
                               "%s: field \"%s\": symbol %d is unknown to the reader", d->name,
                               f->name, k);
            ev->visibility = (fl_visibility_t)p->vis_map[k];
            break;
        }
        if (rc)
            return fl_fail(FL_ERR_INVALID, errstr, errstr_size, "%s: field \"%s\": %s", d->name,
                           f->name, avro_strerror());
    }
    return FL_OK;
}

fl_err_t fl_codec_decode(fl_codec_t *c, const void *data, size_t len, fl_event_t *ev,
                         int32_t *schema_id, char *errstr, size_t errstr_size)
{
    const uint8_t *d = data;
    fl_version_t *v = NULL;
    fl_err_t err = FL_OK;
    fl_walk_t w;
    int32_t id;

    if (!c || !ev || (!data && len))
        return fl_fail(FL_ERR_INVALID, errstr, errstr_size, "bad arguments");
    if (len > FL_CODEC_MAX_MESSAGE) {
        err = fl_fail(FL_ERR_OVERSIZED, errstr, errstr_size,
                      "message of %zu bytes exceeds the %d-byte limit", len, FL_CODEC_MAX_MESSAGE);
        goto out;
    }
    if (len == 0) {
        err = fl_fail(FL_ERR_TRUNCATED, errstr, errstr_size, "empty message");
        goto out;
    }
    if (d[0] != FL_CODEC_MAGIC) {
        err = fl_fail(FL_ERR_MAGIC, errstr, errstr_size, "magic byte 0x%02x, expected 0x%02x", d[0],
                      FL_CODEC_MAGIC);
        goto out;
    }
    if (len < FL_CODEC_HEADER_SIZE) {
        err = fl_fail(FL_ERR_TRUNCATED, errstr, errstr_size,
                      "message of %zu bytes is shorter than the %d-byte header", len,
                      FL_CODEC_HEADER_SIZE);
        goto out;
    }
    id = (int32_t)fl_be_get32(d + 1);
    if (schema_id)
        *schema_id = id;
    for (size_t i = 0; i < c->n_vers && !v; i++)
        if (c->vers[i].id == id)
            v = &c->vers[i];
    if (!v) {
        err = fl_fail(FL_ERR_SCHEMA_ID, errstr, errstr_size, "unknown schema id %" PRId32, id);
        goto out;
    }

    w.p = d + FL_CODEC_HEADER_SIZE;
    w.end = d + len;
    w.items = len;
    w.field = fl_event_desc(v->type)->name;
    w.errstr = errstr;
    w.errstr_size = errstr_size;
    if ((err = fl_walk(&w, v->schema, 0)))
        goto out;
    if (w.p != w.end) {
        err =
            fl_fail(FL_ERR_INVALID, errstr, errstr_size, "%zu byte(s) left over after the %s value",
                    fl_walk_left(&w), fl_event_desc(v->type)->name);
        goto out;
    }

    avro_value_reset(&v->res.resolved);
    avro_reader_memory_set_source(c->rd, (const char *)d + FL_CODEC_HEADER_SIZE,
                                  (int64_t)(len - FL_CODEC_HEADER_SIZE));
    if (avro_value_read(c->rd, &v->res.resolved)) {
        err = fl_fail(FL_ERR_INVALID, errstr, errstr_size, "%s: %s", fl_event_desc(v->type)->name,
                      avro_strerror());
        goto out;
    }
    err = fl_extract(v, ev, errstr, errstr_size);
out:
    if (err)
        fl_event_clear(ev);
    return err;
}
