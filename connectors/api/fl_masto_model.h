/*
 * fl_masto_model.h - the pure parts of the read API's Mastodon-compatible
 * surface (/api/v1/, README "Mastodon-compatible surface"): how feedline's
 * items map onto Mastodon's entities, with no I/O, so unit tests call them
 * directly. fl_api_mastodon.c does the reads and the JSON.
 *
 * Ids. Status and account ids are feedline's post and user ids as decimal
 * strings. A notification has no id of its own in feedline: its id is its
 * whole position (created_at, kind, actor, post), written as fixed-width
 * decimal fields behind a leading '1' (FL_MASTO_NOTIF_ID_LEN digits), so
 * the ids compare the same as numbers and as strings, in the order of
 * fl_notif_newer, and stay the same for the same notification.
 *
 * Query parameters follow Mastodon: unknown ones are ignored (clients send
 * many this server does not implement); limit is 1..40 (larger values are
 * clamped to 40, as Mastodon does; anything else is an error); max_id,
 * since_id and min_id are kept as the digits the client sent, for the
 * route to read as a post id or a notification id.
 */
#ifndef FL_MASTO_MODEL_H
#define FL_MASTO_MODEL_H

#include "fl_api_model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    FL_MASTO_LIMIT_DEFAULT = 20,
    FL_MASTO_LIMIT_MAX = 40,
    FL_MASTO_NOTIF_ID_LEN = 55, /* 1 + 15 + 1 + 19 + 19 digits */
    FL_MASTO_ID_MAX = 64,       /* the longest id parameter kept, with its NUL */
    FL_MASTO_TIME_MAX = 80,     /* room for any struct tm; 24 used */
};

typedef struct fl_masto_query {
    int limit;   /* 1..40, default 20 */
    bool pinned; /* pinned=true: feedline pins nothing */
    char max_id[FL_MASTO_ID_MAX];
    char since_id[FL_MASTO_ID_MAX];
    char min_id[FL_MASTO_ID_MAX]; /* "" when absent */
} fl_masto_query_t;

void fl_masto_query_init(fl_masto_query_t *q);

/* Applies one parameter; unknown keys are ignored. FL_ERR_INVALID with a
 * message in why for a bad limit or an id that is not digits. */
fl_err_t fl_masto_query_set(fl_masto_query_t *q, const char *key, const char *value, char *why,
                            size_t why_size);

/* The text as Mastodon's plain-text formatting renders it: HTML-escaped
 * (& < > " '), paragraphs (split at blank lines) in <p>, single line
 * breaks as <br />. Caller frees; NULL when out of memory. */
char *fl_masto_html(const char *text);

/* ms since the epoch as ISO 8601 in UTC with milliseconds,
 * "2024-05-01T12:00:00.123Z". */
void fl_masto_time(int64_t ms, char out[FL_MASTO_TIME_MAX]);

/* Status visibility: public -> "public", followers-only -> "private"
 * (Mastodon's followers-only), private (the author only) -> "direct". */
const char *fl_masto_visibility(int vis);

/* A notification's id (FL_MASTO_NOTIF_ID_LEN digits and a NUL). */
void fl_masto_notif_id(const fl_notif_t *n, char out[FL_MASTO_NOTIF_ID_LEN + 1]);

/* Reads an id of fl_masto_notif_id back; false for anything else. */
bool fl_masto_notif_id_parse(const char *s, fl_notif_t *n);

/* Whether a Host header may go into the URLs the API writes (letters,
 * digits, '.', '-', ':', '[' and ']', 1..255 bytes). */
bool fl_masto_host_ok(const char *host);

#endif
