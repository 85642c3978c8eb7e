/*
 * fl_codec.h - Avro codec for feedline events in the Confluent wire format.
 *
 * Wire format: byte 0x00 (magic), 4-byte big-endian schema id, Avro binary
 * body. Schema ids come from the id table schemas/ids.tsv (columns: id,
 * record name, version, file), loaded once by fl_codec_new(). For each
 * event type the highest listed version is the reader ("current") schema;
 * every listed version is a possible writer. Decoding resolves the writer
 * schema named by the record's id against the current one (Avro schema
 * resolution: added fields take their defaults, removed fields are
 * skipped), so records written with an older or newer compatible version
 * decode with the current one.
 *
 * Untrusted input never crashes the decoder and never sizes an allocation:
 * the body is first walked against the writer schema with every length
 * prefix checked against the bytes that remain, and messages above
 * FL_CODEC_MAX_MESSAGE are refused before any decoding. Strings must be
 * UTF-8 without NUL bytes, since they become C strings.
 *
 * A codec is immutable after creation except for its scratch buffers, so
 * use one codec per thread.
 */
#ifndef FL_CODEC_H
#define FL_CODEC_H

#include "fl_err.h"
#include "fl_event.h"

#include <stddef.h>
#include <stdint.h>

#define FL_CODEC_MAGIC       0x00
#define FL_CODEC_HEADER_SIZE 5
#define FL_CODEC_MAX_MESSAGE (1024 * 1024) /* bytes, header included */

typedef struct fl_codec fl_codec_t;

/*
 * Loads schemas_dir/ids.tsv and every schema it names, checks each current
 * schema against the event descriptors (fl_event.h), and builds the
 * resolvers. schemas_dir NULL means fl_codec_default_dir(). NULL with a
 * message in errstr on failure. Free with fl_codec_free() (accepts NULL).
 */
fl_codec_t *fl_codec_new(const char *schemas_dir, char *errstr, size_t errstr_size);

/* The directory feedline uses when none is given: $FEEDLINE_SCHEMAS, else
 * "schemas" relative to the working directory. Static storage. */
const char *fl_codec_default_dir(void);

/*
 * Pins the reader schema of a record name to an older listed version
 * (tests and rolling upgrades); pinning the current version unpins.
 * FL_ERR_SCHEMA when not listed, when that version lacks a required
 * field, or when some listed writer cannot be resolved against it (the
 * reason is logged); the previous reader then stays in place.
 */
fl_err_t fl_codec_set_reader_version(fl_codec_t *c, const char *record_name, int version);

/* Schema id the encoder writes for type (its current version); -1 if none. */
int32_t fl_codec_schema_id(const fl_codec_t *c, fl_event_type_t type);

/*
 * Encodes ev with its type's current schema, framed. On FL_OK *out points
 * to *out_len bytes owned by the codec, valid until the next call on it.
 * FL_ERR_INVALID when ev has no valid type, lacks a required field, has a
 * string that is not UTF-8 or a visibility out of range; FL_ERR_OVERSIZED
 * when the message would exceed FL_CODEC_MAX_MESSAGE (message in errstr).
 */
fl_err_t fl_codec_encode(fl_codec_t *c, const fl_event_t *ev, const void **out, size_t *out_len,
                         char *errstr, size_t errstr_size);

/*
 * Same as fl_codec_encode() with an explicit listed writer version, so
 * tests can produce records "from an older or newer producer". Fields the
 * version lacks are left out. FL_ERR_SCHEMA when the version is not
 * listed or has a field the descriptor does not know.
 */
fl_err_t fl_codec_encode_version(fl_codec_t *c, const fl_event_t *ev, int version, const void **out,
                                 size_t *out_len, char *errstr, size_t errstr_size);

/*
 * Decodes a framed message into ev (which must be cleared or zeroed; on
 * failure it is left cleared). Errors, each with a message in errstr:
 * FL_ERR_OVERSIZED (message above the limit, a length prefix larger than
 * any message within the limit could hold, or array/map blocks counting
 * more items than the message has bytes);
 * FL_ERR_TRUNCATED (empty, shorter than the header, or the data ends
 * before the value does: a cut varint, or a length prefix within the limit
 * but beyond the bytes left); FL_ERR_MAGIC; FL_ERR_SCHEMA_ID;
 * FL_ERR_INVALID (bytes left over, bad enum or union index, overlong
 * varint, negative length, string not UTF-8 or holding NUL, a writer enum
 * symbol the reader cannot map). Checks run in this order: size, empty,
 * magic, header length, id, body. If schema_id is not NULL it receives
 * the writer's id whenever the header could be read.
 */
fl_err_t fl_codec_decode(fl_codec_t *c, const void *data, size_t len, fl_event_t *ev,
                         int32_t *schema_id, char *errstr, size_t errstr_size);

void fl_codec_free(fl_codec_t *c);

#endif
