/*
 * fuzz_jwt.c - libFuzzer target for fl_jwt_verify().
 *
 * Each input is one token, checked by the corpus's fixture verifier
 * (tests/fuzz/fl_jwt_fixture.h: both algorithms pinned with a fixed
 * secret and a fixed Ed25519 key, issuer, audience, 30 s leeway, 4096
 * bytes) at the fixture's fixed time, so a run is reproducible. Beyond
 * "never crash, never leak" (ASan), every result must be a known status
 * with a message, a refused token must leave the outputs at 0, and an
 * accepted one must name a viewer > 0 whose exp has not passed the
 * leeway. The verifier is built once per process; its key files exist
 * only while it reads them. Seed corpus: tests/fuzz/corpus/jwt (names
 * carry the expected result; tests/unit/test_jwt.c replays it).
 *
 *   ./fuzz_jwt -max_len=5000 tests/fuzz/corpus/jwt
 */
#include "fl_jwt_fixture.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fl_jwt_t *fuzz_jwt(void)
{
    static fl_jwt_t *j;
    char err[512];

    if (j)
        return j;
    j = fl_jwt_fixture_new(err, sizeof(err));
    if (!j) {
        fprintf(stderr, "fuzz_jwt: %s\n", err);
        abort();
    }
    return j;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t viewer = -1, exp = -1;
    fl_jwt_status_t st =
        fl_jwt_verify(fuzz_jwt(), (const char *)data, size, FL_JWT_FIXTURE_NOW, &viewer, &exp);

    if ((unsigned)st >= FL_JWT__COUNT || !fl_jwt_status_str(st)) {
        fprintf(stderr, "unknown status %d\n", (int)st);
        abort();
    }
    if (st != FL_JWT_OK && (viewer != 0 || exp != 0)) {
        fprintf(stderr, "refused (%s) but viewer %lld exp %lld\n", fl_jwt_status_str(st),
                (long long)viewer, (long long)exp);
        abort();
    }
    if (st == FL_JWT_OK &&
        (viewer <= 0 || exp < FL_JWT_FIXTURE_NOW - FL_JWT_FIXTURE_LEEWAY || size > 4096)) {
        fprintf(stderr, "accepted with viewer %lld exp %lld size %zu\n", (long long)viewer,
                (long long)exp, size);
        abort();
    }
    return 0;
}
