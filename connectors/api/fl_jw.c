/*
 * fl_jw.c - the hot path's JSON writer (fl_jw.h). Strings are scanned once:
 * runs of plain bytes are copied in one go, escapes and UTF-8 checks only
 * where a byte needs them.
 */
#include "fl_jw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fl_jw_init(fl_jw_t *w)
{
    memset(w, 0, sizeof(*w));
}

static bool grow(fl_jw_t *w, size_t n)
{
    if (w->oom)
        return false;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n + 1)
            cap *= 2;
        char *b = realloc(w->buf, cap);
        if (!b) {
            w->oom = true;
            return false;
        }
        w->buf = b;
        w->cap = cap;
    }
    return true;
}

void fl_jw_raw(fl_jw_t *w, const char *s, size_t n)
{
    if (!grow(w, n))
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

void fl_jw_lit(fl_jw_t *w, const char *s)
{
    fl_jw_raw(w, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned c = p[0];
    if (c >= 0xC2 && c <= 0xDF)
        return (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80 ? 4 : 0;
    }
    return 0;
}

void fl_jw_str(fl_jw_t *w, const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *run;

    if (!s) {
        fl_jw_raw(w, "null", 4);
        return;
    }
    fl_jw_raw(w, "\"", 1);
    for (run = p; *p;) {
        size_t n = 1;
        if (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') {
            p++;
            continue;
        }
        if (*p >= 0x80 && (n = utf8_len(p)) > 0) {
            p += n;
            continue;
        }
        fl_jw_raw(w, (const char *)run, (size_t)(p - run));
        char esc[8];
        switch (*p) {
        case '"':
            fl_jw_raw(w, "\\\"", 2);
            break;
        case '\\':
            fl_jw_raw(w, "\\\\", 2);
            break;
        case '\n':
            fl_jw_raw(w, "\\n", 2);
            break;
        case '\r':
            fl_jw_raw(w, "\\r", 2);
            break;
        case '\t':
            fl_jw_raw(w, "\\t", 2);
            break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", *p);
                fl_jw_raw(w, esc, 6);
            } else {
                fl_jw_raw(w, "\xEF\xBF\xBD", 3); /* an invalid byte: U+FFFD */
            }
            break;
        }
        run = ++p;
    }
    fl_jw_raw(w, (const char *)run, (size_t)(p - run));
    fl_jw_raw(w, "\"", 1);
}

void fl_jw_int(fl_jw_t *w, int64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%lld", (long long)v);
    fl_jw_raw(w, b, (size_t)n);
}

void fl_jw_id(fl_jw_t *w, int64_t v)
{
    char b[26];
    int n = snprintf(b, sizeof(b), "\"%lld\"", (long long)v);
    fl_jw_raw(w, b, (size_t)n);
}

char *fl_jw_take(fl_jw_t *w, size_t *len)
{
    char *b = w->buf;
    if (w->oom || !b) {
        free(w->buf);
        fl_jw_init(w);
        return NULL;
    }
    *len = w->len;
    fl_jw_init(w);
    return b;
}
