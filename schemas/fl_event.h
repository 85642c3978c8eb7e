/*
 * fl_event.h - feedline's input events as one plain C struct.
 *
 * Every input event of the contract (README "Event contract") decodes
 * into fl_event_t: a type tag plus the union of all event fields, flat, so
 * that processor logic reads ev->post_id without touching Avro. A static
 * descriptor table (fl_event_types) says, per type, its topic, its key
 * field and which fields it carries; the codec and the JSON conversion are
 * both driven by that table, so a field is declared in exactly one place
 * (plus its .avsc file, which the codec checks against the table on load).
 *
 * Ownership: string fields are malloc'd and owned by the event; free them
 * with fl_event_clear(). A zeroed fl_event_t is a valid empty event.
 */
#ifndef FL_EVENT_H
#define FL_EVENT_H

#include "fl_err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum fl_event_type {
    FL_EV_NONE = 0,
    FL_EV_USER_REGISTERED,
    FL_EV_USER_UPDATED,
    FL_EV_POST_CREATED,
    FL_EV_POST_DELETED,
    FL_EV_FOLLOW_ADDED,
    FL_EV_FOLLOW_REMOVED,
    FL_EV_LIKE_ADDED,
    FL_EV_LIKE_REMOVED,
    FL_EV__COUNT
} fl_event_type_t;

typedef enum fl_visibility {
    FL_VIS_PUBLIC = 0,
    FL_VIS_FOLLOWERS = 1,
    FL_VIS_PRIVATE = 2,
} fl_visibility_t;

typedef struct fl_event {
    fl_event_type_t type;
    char *event_id;      /* every type; unique per event */
    int64_t occurred_at; /* every type; epoch milliseconds */
    int64_t user_id;     /* UserRegistered, UserUpdated, LikeAdded, LikeRemoved */
    int64_t post_id;     /* Post*, Like* */
    int64_t author_id;   /* Post*, Like* (the liked post's author) */
    int64_t follower_id; /* Follow* */
    int64_t followee_id; /* Follow* */
    int64_t created_at;  /* PostCreated; authoritative for ordering */
    int64_t reply_to;    /* PostCreated, optional: valid when has_reply_to */
    bool has_reply_to;
    fl_visibility_t visibility; /* PostCreated */
    char *handle;               /* UserRegistered */
    char *display_name;         /* UserRegistered; optional (NULL = unchanged) in UserUpdated */
    char *bio;                  /* UserUpdated, optional */
    char *text;                 /* PostCreated */
} fl_event_t;

/* How a field is represented; drives Avro, JSON and validation alike. */
typedef enum fl_field_kind {
    FL_FIELD_LONG,       /* Avro long */
    FL_FIELD_TIMESTAMP,  /* Avro long, logicalType timestamp-millis */
    FL_FIELD_STRING,     /* Avro string, required */
    FL_FIELD_OPT_STRING, /* Avro ["null","string"], default null */
    FL_FIELD_OPT_LONG,   /* Avro ["null","long"], default null */
    FL_FIELD_VISIBILITY, /* Avro enum Visibility {PUBLIC,FOLLOWERS,PRIVATE} */
} fl_field_kind_t;

typedef struct fl_field_desc {
    const char *name; /* Avro and JSON field name */
    fl_field_kind_t kind;
    size_t offset;     /* offsetof(fl_event_t, ...) of the value */
    size_t has_offset; /* FL_FIELD_OPT_LONG: offsetof the presence flag */
} fl_field_desc_t;

#define FL_EVENT_MAX_FIELDS 12

typedef struct fl_event_desc {
    fl_event_type_t type;
    const char *name;      /* Avro record name, also the JSON "type" value */
    const char *topic;     /* input topic this type is published to */
    const char *key_field; /* field whose decimal value is the record key */
    size_t n_fields;
    fl_field_desc_t fields[FL_EVENT_MAX_FIELDS];
} fl_event_desc_t;

/* Descriptor of a type; NULL for FL_EV_NONE or out of range. */
const fl_event_desc_t *fl_event_desc(fl_event_type_t type);

/* Type by its name ("PostCreated"); FL_EV_NONE when unknown. */
fl_event_type_t fl_event_type_by_name(const char *name);

/* True when events of this type belong on topic. */
bool fl_event_type_on_topic(fl_event_type_t type, const char *topic);

/* The record key of ev: decimal string of its key field, into buf (>= 21 bytes). */
void fl_event_key(const fl_event_t *ev, char *buf, size_t size);

/* Symbol of a visibility ("PUBLIC", "FOLLOWERS", "PRIVATE"): the Avro enum
 * symbol and the JSON spelling. NULL when v is out of range. Static storage. */
const char *fl_visibility_name(fl_visibility_t v);

/* Visibility by its symbol; -1 when unknown. */
int fl_visibility_by_name(const char *name);

/* Frees the strings of ev and zeroes it. Accepts NULL. */
void fl_event_clear(fl_event_t *ev);

/*
 * JSON conversion. fl_event_from_json() takes an object with a "type"
 * member and the type's fields; required fields must be present with the
 * right JSON type, optional ones may be missing or null, unknown members
 * are an error. ev must be cleared or zeroed (it is overwritten, not
 * freed). On failure returns FL_ERR_INVALID (FL_ERR_NOMEM if allocation
 * failed) with a message naming the field in errstr, and ev is left
 * cleared. Visibility is required and spelled as its symbol.
 * fl_event_to_json() returns a new object (caller decrefs) with "type"
 * first, then the fields in schema order; optional fields that are absent
 * are written as null. NULL when ev has no valid type, a string is not
 * valid UTF-8, or allocation fails.
 */
fl_err_t fl_event_from_json(const json_t *obj, fl_event_t *ev, char *errstr, size_t errstr_size);
json_t *fl_event_to_json(const fl_event_t *ev);

/* Checks semantic validity beyond types: non-empty event_id, positive ids,
 * non-negative timestamps. FL_ERR_INVALID with a message otherwise. */
fl_err_t fl_event_validate(const fl_event_t *ev, char *errstr, size_t errstr_size);

#endif
