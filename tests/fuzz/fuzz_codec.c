/*
 * fuzz_codec.c - libFuzzer target for fl_codec_decode().
 *
 * Feeds arbitrary bytes to the decoder. Beyond "never crash, never leak"
 * (ASan), it checks two properties of anything that decodes: the event
 * re-encodes with the current schema and decodes back to the same event,
 * and it converts to JSON and back. The codec is built once per process
 * from $FEEDLINE_SCHEMAS, else $FEEDLINE_SOURCE_DIR/schemas, else
 * ./schemas. Seed corpus: tests/fuzz/corpus/codec (names carry the
 * expected result; tests/unit/test_codec.c replays it).
 *
 *   ./fuzz_codec -max_len=4096 tests/fuzz/corpus/codec
 */
#include "fl_codec.h"
#include "fl_event.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_options(void);

/* avro-c allocates each value with a 4-byte refcount in front, so the
 * pointers inside a value are only 4-byte aligned. LSan scans aligned
 * words by default, misses them, and would report the codec's reused
 * scratch strings as leaks after the first input. */
const char *__lsan_default_options(void)
{
    return "use_unaligned=1";
}

static fl_codec_t *fuzz_codec(void)
{
    static fl_codec_t *codec;
    char dir[4096], err[512];
    const char *src;

    if (codec)
        return codec;
    src = getenv("FEEDLINE_SOURCE_DIR");
    if (getenv("FEEDLINE_SCHEMAS"))
        snprintf(dir, sizeof(dir), "%s", fl_codec_default_dir());
    else
        snprintf(dir, sizeof(dir), "%s/schemas", src && *src ? src : ".");
    codec = fl_codec_new(dir, err, sizeof(err));
    if (!codec) {
        fprintf(stderr, "fuzz_codec: %s\n", err);
        abort();
    }
    return codec;
}

static int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static int events_equal(const fl_event_t *a, const fl_event_t *b)
{
    return a->type == b->type && str_eq(a->event_id, b->event_id) &&
           a->occurred_at == b->occurred_at && a->user_id == b->user_id &&
           a->post_id == b->post_id && a->author_id == b->author_id &&
           a->follower_id == b->follower_id && a->followee_id == b->followee_id &&
           a->created_at == b->created_at && a->has_reply_to == b->has_reply_to &&
           a->reply_to == b->reply_to && a->visibility == b->visibility &&
           str_eq(a->handle, b->handle) && str_eq(a->display_name, b->display_name) &&
           str_eq(a->bio, b->bio) && str_eq(a->text, b->text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fl_codec_t *c = fuzz_codec();
    fl_event_t ev = {0}, again = {0}, from_json = {0};
    char err[512];
    const void *out;
    size_t len;
    json_t *j = NULL;

    if (fl_codec_decode(c, data, size, &ev, NULL, err, sizeof(err)) != FL_OK)
        goto out;
    if (fl_codec_encode(c, &ev, &out, &len, err, sizeof(err)) != FL_OK ||
        fl_codec_decode(c, out, len, &again, NULL, err, sizeof(err)) != FL_OK ||
        !events_equal(&ev, &again)) {
        fprintf(stderr, "re-encode round trip failed: %s\n", err);
        abort();
    }
    j = fl_event_to_json(&ev);
    if (!j || fl_event_from_json(j, &from_json, err, sizeof(err)) != FL_OK ||
        !events_equal(&ev, &from_json)) {
        fprintf(stderr, "JSON round trip failed: %s\n", err);
        abort();
    }
    (void)fl_event_validate(&ev, err, sizeof(err));
out:
    json_decref(j);
    fl_event_clear(&ev);
    fl_event_clear(&again);
    fl_event_clear(&from_json);
    return 0;
}
