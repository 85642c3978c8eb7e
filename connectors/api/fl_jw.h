/*
 * fl_jw.h - a JSON writer for the read API's hot path: feed pages written
 * straight into one growing buffer, without the object tree (and its
 * allocations) that jansson builds first; jansson stays the writer of
 * everything else and the parser of everything read. Output only: strings
 * are escaped as RFC 8259 asks (quote, backslash, control characters) and
 * invalid UTF-8 becomes U+FFFD, so the output is always valid JSON.
 */
#ifndef FL_JW_H
#define FL_JW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fl_jw {
    char *buf; /* NUL-terminated while !oom; the caller takes it */
    size_t len, cap;
    bool oom;
} fl_jw_t;

void fl_jw_init(fl_jw_t *w);
void fl_jw_raw(fl_jw_t *w, const char *s, size_t n); /* appended as is */
void fl_jw_lit(fl_jw_t *w, const char *s);           /* a C string as is */
void fl_jw_str(fl_jw_t *w, const char *s);           /* a JSON string, NULL: null */
void fl_jw_int(fl_jw_t *w, int64_t v);
void fl_jw_id(fl_jw_t *w, int64_t v); /* an id as a JSON string */

/* The document, or NULL when out of memory (then freed). */
char *fl_jw_take(fl_jw_t *w, size_t *len);

#endif
