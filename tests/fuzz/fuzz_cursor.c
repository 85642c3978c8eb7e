/*
 * fuzz_cursor.c - libFuzzer target for fl_cursor_decode().
 *
 * The input, cut at its first NUL, is the cursor string a client sends; it
 * is decoded as every kind. The property: a cursor that decodes re-encodes
 * to exactly the input string (the encoding is canonical, so a client
 * cannot hand the server two spellings of one position), and no string
 * decodes as more than one kind. Seed corpus: tests/fuzz/corpus/cursor
 * (names carry the expected result; tests/unit/test_api_model.c replays
 * it).
 *
 *   ./fuzz_cursor -max_len=128 tests/fuzz/corpus/cursor
 */
#include "fl_api_model.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const fl_cursor_kind_t kinds[] = {FL_CURSOR_CHRONO, FL_CURSOR_RANKED, FL_CURSOR_NOTIF,
                                             FL_CURSOR_FOLLOW};
    char *s = malloc(size + 1), out[FL_CURSOR_MAX];
    int accepted = 0;

    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        fl_cursor_t c;

        if (fl_cursor_decode(s, kinds[k], &c) != FL_OK)
            continue;
        accepted++;
        if (c.kind != kinds[k]) {
            fprintf(stderr, "decoded as '%c' but kind is '%c'\n", kinds[k], c.kind);
            abort();
        }
        fl_cursor_encode(&c, out);
        if (strcmp(out, s)) {
            fprintf(stderr, "'%s' decodes as '%c' but re-encodes as '%s'\n", s, kinds[k], out);
            abort();
        }
    }
    if (accepted > 1) {
        fprintf(stderr, "'%s' decodes as %d kinds\n", s, accepted);
        abort();
    }
    free(s);
    return 0;
}
