/*
 * query_split.h - hands a raw query string to fl_query_set() the way the
 * HTTP library (libmicrohttpd) hands the server its GET arguments: pairs
 * split on '&' (empty ones skipped), key and value on the first '=', a
 * pair without '=' has a NULL value, and both are URL-decoded ('+' is a
 * space, %XX a byte; a malformed escape stays as it is; a decoded NUL ends
 * the C string). Stops at the first rejected pair, like the server, then
 * runs fl_query_finish(). Shared by fuzz_query.c and the corpus replay in
 * tests/unit/test_api_model.c so both read a query file the same way.
 */
#ifndef FL_TEST_QUERY_SPLIT_H
#define FL_TEST_QUERY_SPLIT_H

#include "fl_api_model.h"

#include <stdlib.h>
#include <string.h>

static inline int fl_test_hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes src[0..n) into a new NUL-terminated string (caller frees). */
static inline char *fl_test_unescape(const char *src, size_t n)
{
    char *dst = malloc(n + 1);
    size_t o = 0;

    if (!dst)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '+') {
            dst[o++] = ' ';
        } else if (src[i] == '%' && i + 2 < n && fl_test_hexval(src[i + 1]) >= 0 &&
                   fl_test_hexval(src[i + 2]) >= 0) {
            dst[o++] = (char)(fl_test_hexval(src[i + 1]) << 4 | fl_test_hexval(src[i + 2]));
            i += 2;
        } else {
            dst[o++] = src[i];
        }
    }
    dst[o] = '\0';
    return dst;
}

/* Applies the query s[0..n) to q (already fl_query_init'ed) for an endpoint
 * taking allowed with cursor kind, then finishes it. */
static inline fl_err_t fl_test_query_apply(const char *s, size_t n, fl_query_t *q, unsigned allowed,
                                           fl_cursor_kind_t kind, char *why, size_t why_size)
{
    size_t i = 0;

    while (i < n) {
        const char *seg = s + i, *amp = memchr(seg, '&', n - i), *eq;
        size_t len = amp ? (size_t)(amp - seg) : n - i;
        char *key, *value = NULL;
        fl_err_t err;

        i += len + 1;
        if (!len)
            continue;
        eq = memchr(seg, '=', len);
        key = fl_test_unescape(seg, eq ? (size_t)(eq - seg) : len);
        if (eq)
            value = fl_test_unescape(eq + 1, len - (size_t)(eq - seg) - 1);
        if (!key || (eq && !value))
            err = FL_ERR_NOMEM;
        else
            err = fl_query_set(q, allowed, kind, key, value, why, why_size);
        free(key);
        free(value);
        if (err != FL_OK)
            return err;
    }
    return fl_query_finish(q, why, why_size);
}

#endif
