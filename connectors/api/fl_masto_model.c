/*
 * fl_masto_model.c - the Mastodon surface's pure mappings (fl_masto_model.h):
 * query parameters, the HTML of a status, times, visibility names and
 * notification ids. Everything here is called once per item or parameter
 * of a response; nothing keeps state.
 */
#include "fl_masto_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void fl_masto_query_init(fl_masto_query_t *q)
{
    memset(q, 0, sizeof(*q));
    q->limit = FL_MASTO_LIMIT_DEFAULT;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

fl_err_t fl_masto_query_set(fl_masto_query_t *q, const char *key, const char *value, char *why,
                            size_t why_size)
{
    char *slot = NULL;
    int64_t v;

    if (!value)
        value = "";
    if (!strcmp(key, "limit")) {
        if (!fl_id_parse(value, &v)) {
            snprintf(why, why_size, "limit must be a positive integer");
            return FL_ERR_INVALID;
        }
        q->limit = v > FL_MASTO_LIMIT_MAX ? FL_MASTO_LIMIT_MAX : (int)v;
        return FL_OK;
    }
    if (!strcmp(key, "pinned")) {
        q->pinned = !strcmp(value, "true") || !strcmp(value, "1");
        return FL_OK;
    }
    if (!strcmp(key, "max_id"))
        slot = q->max_id;
    else if (!strcmp(key, "since_id"))
        slot = q->since_id;
    else if (!strcmp(key, "min_id"))
        slot = q->min_id;
    if (!slot)
        return FL_OK;
    if (!all_digits(value) || strlen(value) >= FL_MASTO_ID_MAX) {
        snprintf(why, why_size, "%s must be an id", key);
        return FL_ERR_INVALID;
    }
    strcpy(slot, value);
    return FL_OK;
}

/* ---- status text ---- */

char *fl_masto_html(const char *text)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);

    if (!f)
        return NULL;
    fputs("<p>", f);
    for (const char *p = text ? text : ""; *p; p++) {
        switch (*p) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        case '\r':
            break;
        case '\n': {
            /* a blank line (or more) ends a paragraph; one break is <br /> */
            size_t nl = 0;
            const char *q = p;
            for (; *q == '\n' || *q == '\r'; q++)
                nl += *q == '\n';
            fputs(nl > 1 ? "</p><p>" : "<br />", f);
            p = q - 1;
            break;
        }
        default:
            fputc(*p, f);
            break;
        }
    }
    fputs("</p>", f);
    if (ferror(f)) {
        fclose(f);
        free(s);
        return NULL;
    }
    if (fclose(f)) {
        free(s);
        return NULL;
    }
    return s;
}

void fl_masto_time(int64_t ms, char out[FL_MASTO_TIME_MAX])
{
    int64_t s, frac;
    struct tm tm;
    time_t t;

    /* years 0000..9999 only, so the text keeps its width */
    if (ms < -62167219200000LL)
        ms = -62167219200000LL;
    if (ms > 253402300799999LL)
        ms = 253402300799999LL;
    s = ms / 1000;
    frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        s -= 1;
    }
    t = (time_t)s;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, FL_MASTO_TIME_MAX, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(out, FL_MASTO_TIME_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
}

const char *fl_masto_visibility(int vis)
{
    switch (vis) {
    case FL_VIS_FOLLOWERS:
        return "private";
    case FL_VIS_PRIVATE:
        return "direct";
    default:
        return "public";
    }
}

/* ---- notification ids ---- */

void fl_masto_notif_id(const fl_notif_t *n, char out[FL_MASTO_NOTIF_ID_LEN + 1])
{
    char buf[96]; /* the fields are in range: FL_MASTO_NOTIF_ID_LEN digits */

    snprintf(buf, sizeof(buf), "1%015lld%1d%019lld%019lld",
             (long long)(n->created_at > 0 ? n->created_at % 1000000000000000LL : 0),
             n->kind > 0 && n->kind < 10 ? n->kind : 0,
             (long long)(n->actor_id > 0 ? n->actor_id : 0),
             (long long)(n->post_id > 0 ? n->post_id : 0));
    memcpy(out, buf, FL_MASTO_NOTIF_ID_LEN);
    out[FL_MASTO_NOTIF_ID_LEN] = '\0';
}

/* The decimal field s[0..len) into *v; false past INT64_MAX. */
static bool field(const char *s, size_t len, int64_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        x = x * 10 + (uint64_t)(s[i] - '0');
        if (x > (uint64_t)INT64_MAX)
            return false;
    }
    *v = (int64_t)x;
    return true;
}

bool fl_masto_notif_id_parse(const char *s, fl_notif_t *n)
{
    int64_t kind;

    if (!s || strlen(s) != FL_MASTO_NOTIF_ID_LEN || s[0] != '1' || !all_digits(s))
        return false;
    memset(n, 0, sizeof(*n));
    if (!field(s + 1, 15, &n->created_at) || !field(s + 16, 1, &kind) ||
        !field(s + 17, 19, &n->actor_id) || !field(s + 36, 19, &n->post_id))
        return false;
    n->kind = (int)kind;
    return kind == FL_NOTIF_LIKE || kind == FL_NOTIF_FOLLOW;
}

bool fl_masto_host_ok(const char *host)
{
    size_t n = host ? strlen(host) : 0;

    if (!n || n > 255)
        return false;
    for (const char *p = host; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
            return false;
    }
    return true;
}
