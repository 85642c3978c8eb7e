/*
 * test_jwt.c - the read API's JWT checks (fl_jwt) against the RFC 8725
 * attack list, minting round trips, configuration errors, and a replay of
 * the fuzz corpus (tests/fuzz/corpus/jwt, names carry the result).
 *
 * Tokens are built here by an independent writer: a plain base64url
 * encoder and OpenSSL's one-shot HMAC and Ed25519 signing, so a forged or
 * tampered token is exactly what an attacker could send. The Ed25519 keys
 * are generated per test into a mkdtemp folder; nothing secret is checked
 * in. Time is always passed explicitly (NOW), so every test is
 * deterministic.
 */
#include "fl_jwt.h"
#include "fl_jwt_fixture.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOW    1767225600LL
#define SECRET "unit-test-hs256-secret-0123456789abcdef"
#define HS     "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define ED     "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}"
#define CLAIMS "{\"sub\":\"42\",\"iat\":1767225600,\"exp\":1767229200}"
/* sub 42, exp an hour after NOW, and more members */
#define WITH(more) "{\"sub\":\"42\",\"exp\":1767229200," more "}"

static char dir[64], pub_path[128], priv_path[128];
static EVP_PKEY *ed_key;
static char *kept[256];
static size_t n_kept;
static fl_jwt_t *handles[8];
static size_t n_handles;
static char err[512];

/* ---- fixture ------------------------------------------------------------- */

static char *keep(char *s)
{
    cr_assert_not_null(s);
    cr_assert_lt(n_kept, sizeof(kept) / sizeof(kept[0]));
    kept[n_kept++] = s;
    return s;
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/fl-test-jwt-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(pub_path, sizeof(pub_path), "%s/pub.pem", dir);
    snprintf(priv_path, sizeof(priv_path), "%s/priv.pem", dir);
    ed_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    cr_assert_not_null(ed_key);
    cr_assert(fl_jwt_fixture_write_pem(ed_key, pub_path, priv_path));
}

static void teardown(void)
{
    while (n_kept)
        free(kept[--n_kept]);
    while (n_handles)
        fl_jwt_free(handles[--n_handles]);
    EVP_PKEY_free(ed_key);
    unlink(pub_path);
    unlink(priv_path);
    rmdir(dir);
}

TestSuite(jwt, .init = setup, .fini = teardown);

/* The policy most tests use: both algorithms, no iss/aud, 30 s leeway. */
static fl_api_cfg_t policy(unsigned algs)
{
    fl_api_cfg_t c = {
        .jwt_algorithms = algs,
        .jwt_secret = SECRET,
        .jwt_public_key_file = pub_path,
        .jwt_leeway_s = 30,
        .jwt_max_bytes = 4096,
    };
    return c;
}

/* A verifier for c, freed at teardown. */
static fl_jwt_t *jwt_new(const fl_api_cfg_t *c)
{
    fl_jwt_t *j = fl_jwt_new(c, err, sizeof(err));
    cr_assert_not_null(j, "fl_jwt_new: %s", err);
    cr_assert_lt(n_handles, sizeof(handles) / sizeof(handles[0]));
    handles[n_handles++] = j;
    return j;
}

static fl_jwt_t *jwt_for(unsigned algs)
{
    fl_api_cfg_t c = policy(algs);
    return jwt_new(&c);
}

/* ---- an independent token writer ----------------------------------------- */

static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64url(const void *data, size_t n)
{
    const unsigned char *d = data;
    char *out = keep(malloc(n / 3 * 4 + 5)), *p = out;

    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) |
                     (i + 2 < n ? d[i + 2] : 0);
        *p++ = abc[v >> 18 & 63];
        *p++ = abc[v >> 12 & 63];
        if (i + 1 < n)
            *p++ = abc[v >> 6 & 63];
        if (i + 2 < n)
            *p++ = abc[v & 63];
    }
    *p = '\0';
    return out;
}

static char *join3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 3;
    char *s = keep(malloc(n));
    snprintf(s, n, "%s.%s.%s", a, b, c);
    return s;
}

static char *signing_input(const char *hdr, const char *claims)
{
    const char *h = b64url(hdr, strlen(hdr)), *c = b64url(claims, strlen(claims));
    size_t n = strlen(h) + strlen(c) + 2;
    char *s = keep(malloc(n));
    snprintf(s, n, "%s.%s", h, c);
    return s;
}

/* header.claims signed with HMAC-SHA256 under key, whatever alg says. */
static char *hs_token(const char *hdr, const char *claims, const void *key, size_t key_len)
{
    const char *si = signing_input(hdr, claims);
    unsigned char mac[32];
    unsigned int mac_len = 0;
    char *sig;

    cr_assert_not_null(HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)si, strlen(si),
                            mac, &mac_len));
    sig = b64url(mac, mac_len);
    return join3(b64url(hdr, strlen(hdr)), b64url(claims, strlen(claims)), sig);
}

static char *hs(const char *claims)
{
    return hs_token(HS, claims, SECRET, strlen(SECRET));
}

/* header.claims signed with Ed25519 under key, whatever alg says. */
static char *ed_token(const char *hdr, const char *claims, EVP_PKEY *key)
{
    const char *si = signing_input(hdr, claims);
    unsigned char sig[64];
    size_t sig_len = sizeof(sig);
    EVP_MD_CTX *c = EVP_MD_CTX_new();

    cr_assert_eq(EVP_DigestSignInit(c, NULL, NULL, NULL, key), 1);
    cr_assert_eq(EVP_DigestSign(c, sig, &sig_len, (const unsigned char *)si, strlen(si)), 1);
    EVP_MD_CTX_free(c);
    return join3(b64url(hdr, strlen(hdr)), b64url(claims, strlen(claims)), b64url(sig, sig_len));
}

/* The segments of a token, split at its dots (at most four). */
typedef struct parts {
    char *seg[4];
    int n;
} parts_t;

static parts_t split(const char *tok)
{
    parts_t p = {{NULL}, 0};
    char *s = keep(strdup(tok)), *save = NULL;
    for (char *t = strtok_r(s, ".", &save); t && p.n < 4; t = strtok_r(NULL, ".", &save))
        p.seg[p.n++] = t;
    return p;
}

static fl_jwt_status_t verify_at(const fl_jwt_t *j, const char *tok, int64_t now, int64_t *viewer)
{
    int64_t v = -1, exp = -1;
    fl_jwt_status_t st = fl_jwt_verify(j, tok, strlen(tok), now, &v, &exp);
    if (st != FL_JWT_OK)
        cr_assert(v == 0 && exp == 0, "a refused token must leave viewer and exp at 0");
    if (viewer)
        *viewer = v;
    return st;
}

static fl_jwt_status_t verify(const fl_jwt_t *j, const char *tok)
{
    return verify_at(j, tok, NOW, NULL);
}

#define expect(j, tok, want)                                                                       \
    do {                                                                                           \
        fl_jwt_status_t got_ = verify(j, tok);                                                     \
        cr_assert_eq(got_, want, "%s: got %s, want %s", tok, fl_jwt_status_str(got_),              \
                     fl_jwt_status_str(want));                                                     \
    } while (0)

/* ---- accepted tokens ------------------------------------------------------- */

Test(jwt, valid_hs256_accepted)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);
    int64_t viewer = 0, exp = 0;
    const char *tok = hs(CLAIMS);

    cr_assert_eq(fl_jwt_verify(j, tok, strlen(tok), NOW, &viewer, &exp), FL_JWT_OK);
    cr_assert_eq(viewer, 42);
    cr_assert_eq(exp, 1767229200);
    /* typ is optional and case-insensitive */
    expect(j, hs_token("{\"alg\":\"HS256\"}", CLAIMS, SECRET, strlen(SECRET)), FL_JWT_OK);
    expect(j, hs_token("{\"typ\":\"jwt\",\"alg\":\"HS256\"}", CLAIMS, SECRET, strlen(SECRET)),
           FL_JWT_OK);
}

Test(jwt, valid_eddsa_accepted)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_EDDSA);
    int64_t viewer = 0;

    cr_assert_eq(
        verify_at(j, ed_token(ED, "{\"sub\":\"9223372036854775807\",\"exp\":1767229200}", ed_key),
                  NOW, &viewer),
        FL_JWT_OK);
    cr_assert_eq(viewer, INT64_MAX);
}

Test(jwt, only_private_key_file_verifies_eddsa)
{
    fl_api_cfg_t c = policy(FL_JWT_ALG_EDDSA);
    c.jwt_public_key_file = NULL;
    c.jwt_private_key_file = priv_path;
    fl_jwt_t *j = jwt_new(&c);

    expect(j, ed_token(ED, CLAIMS, ed_key), FL_JWT_OK);
}

/* ---- algorithms ------------------------------------------------------------ */

Test(jwt, alg_none_unsigned_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256 | FL_JWT_ALG_EDDSA);
    const char *none = "{\"alg\":\"none\",\"typ\":\"JWT\"}";

    expect(j, join3(b64url(none, strlen(none)), b64url(CLAIMS, strlen(CLAIMS)), ""), FL_JWT_ALG);
}

Test(jwt, alg_none_with_signature_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256 | FL_JWT_ALG_EDDSA);

    /* signed with the real secret: still refused, none is never pinned */
    expect(j, hs_token("{\"alg\":\"none\",\"typ\":\"JWT\"}", CLAIMS, SECRET, strlen(SECRET)),
           FL_JWT_ALG);
    expect(j, hs_token("{\"alg\":\"None\"}", CLAIMS, SECRET, strlen(SECRET)), FL_JWT_ALG);
}

Test(jwt, alg_not_pinned_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);
    static const char *const hdrs[] = {
        "{\"alg\":\"hs256\"}",   "{\"alg\":\"HS512\"}", "{\"alg\":\"RS256\"}",
        "{\"alg\":\"EdDSA\"}",   "{\"typ\":\"JWT\"}",   "{\"alg\":1}",
        "{\"alg\":[\"HS256\"]}",
    };

    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++)
        expect(j, hs_token(hdrs[i], CLAIMS, SECRET, strlen(SECRET)), FL_JWT_ALG);
}

Test(jwt, eddsa_token_refused_when_only_hs256_pinned)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);

    expect(j, ed_token(ED, CLAIMS, ed_key), FL_JWT_ALG);
}

static const char *public_pem(size_t *len)
{
    FILE *f = fopen(pub_path, "r");
    char *pem = keep(calloc(1, 4096));

    cr_assert_not_null(f);
    *len = fread(pem, 1, 4095, f);
    fclose(f);
    cr_assert_gt(*len, 0);
    return pem;
}

Test(jwt, hs256_with_public_key_as_secret_refused_eddsa_only)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_EDDSA);
    size_t n;
    const char *pem = public_pem(&n);

    expect(j, hs_token(HS, CLAIMS, pem, n), FL_JWT_ALG);
}

Test(jwt, hs256_with_public_key_as_secret_refused_both_pinned)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256 | FL_JWT_ALG_EDDSA);
    size_t n;
    const char *pem = public_pem(&n);

    /* HS256 is pinned, but its key is the secret, never the public key */
    expect(j, hs_token(HS, CLAIMS, pem, n), FL_JWT_SIGNATURE);
    expect(j, hs_token(HS, CLAIMS, pem, n - 1), FL_JWT_SIGNATURE); /* without the newline */
}

/* ---- signatures ------------------------------------------------------------ */

Test(jwt, wrong_key_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256 | FL_JWT_ALG_EDDSA);
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    const char *wrong = "unit-test-hs256-secret-0123456789abcdeF";

    expect(j, hs_token(HS, CLAIMS, wrong, strlen(wrong)), FL_JWT_SIGNATURE);
    expect(j, ed_token(ED, CLAIMS, other), FL_JWT_SIGNATURE);
    EVP_PKEY_free(other);
}

Test(jwt, tampered_payload_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256 | FL_JWT_ALG_EDDSA);
    const char *evil = "{\"sub\":\"1\",\"iat\":1767225600,\"exp\":1767229200}";
    const char *evil64 = b64url(evil, strlen(evil));
    parts_t h = split(hs(CLAIMS)), e = split(ed_token(ED, CLAIMS, ed_key));

    expect(j, join3(h.seg[0], evil64, h.seg[2]), FL_JWT_SIGNATURE);
    expect(j, join3(e.seg[0], evil64, e.seg[2]), FL_JWT_SIGNATURE);
}

Test(jwt, tampered_header_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256 | FL_JWT_ALG_EDDSA);
    const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"other\"}";
    parts_t p = split(hs(CLAIMS));

    expect(j, join3(b64url(hdr, strlen(hdr)), p.seg[1], p.seg[2]), FL_JWT_SIGNATURE);
    /* an EdDSA signature relabelled HS256 */
    p = split(ed_token(ED, CLAIMS, ed_key));
    expect(j, join3(b64url(HS, strlen(HS)), p.seg[1], p.seg[2]), FL_JWT_SIGNATURE);
}

Test(jwt, empty_or_truncated_signature_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256 | FL_JWT_ALG_EDDSA);
    parts_t p = split(hs(CLAIMS));

    expect(j, join3(p.seg[0], p.seg[1], ""), FL_JWT_SIGNATURE);
    p.seg[2][40] = '\0'; /* 30 bytes of 32 */
    expect(j, join3(p.seg[0], p.seg[1], p.seg[2]), FL_JWT_SIGNATURE);
}

/* ---- time ------------------------------------------------------------------ */

Test(jwt, expired_beyond_leeway_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);

    expect(j, hs("{\"sub\":\"42\",\"exp\":1767225569}"), FL_JWT_EXPIRED); /* NOW - 31 */
    expect(j, hs("{\"sub\":\"42\",\"exp\":-9223372036854775807}"), FL_JWT_EXPIRED);
}

Test(jwt, expired_inside_leeway_accepted)
{
    fl_api_cfg_t c = policy(FL_JWT_ALG_HS256);
    fl_jwt_t *j = jwt_new(&c);

    expect(j, hs("{\"sub\":\"42\",\"exp\":1767225570}"), FL_JWT_OK); /* NOW - 30 */
    expect(j, hs("{\"sub\":\"42\",\"exp\":1767225599}"), FL_JWT_OK);
    c.jwt_leeway_s = 0;
    j = jwt_new(&c);
    expect(j, hs("{\"sub\":\"42\",\"exp\":1767225600}"), FL_JWT_OK); /* exp == now */
    expect(j, hs("{\"sub\":\"42\",\"exp\":1767225599}"), FL_JWT_EXPIRED);
}

Test(jwt, nbf_in_future_beyond_leeway_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);

    expect(j, hs(WITH("\"nbf\":1767225631")), FL_JWT_NOT_YET);
    expect(j, hs(WITH("\"nbf\":9223372036854775807")), FL_JWT_NOT_YET);
    /* inside the leeway */
    expect(j, hs(WITH("\"nbf\":1767225630")), FL_JWT_OK);
}

Test(jwt, missing_exp_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);

    expect(j, hs("{\"sub\":\"42\",\"iat\":1767225600}"), FL_JWT_NO_EXP);
    expect(j, hs("{}"), FL_JWT_NO_EXP);
}

Test(jwt, non_integer_exp_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);
    static const char *const claims[] = {
        "{\"sub\":\"42\",\"exp\":\"1767229200\"}", "{\"sub\":\"42\",\"exp\":1767229200.0}",
        "{\"sub\":\"42\",\"exp\":1.7e10}",         "{\"sub\":\"42\",\"exp\":null}",
        "{\"sub\":\"42\",\"exp\":true}",           "{\"sub\":\"42\",\"exp\":[1767229200]}",
    };

    for (size_t i = 0; i < sizeof(claims) / sizeof(claims[0]); i++)
        expect(j, hs(claims[i]), FL_JWT_NO_EXP);
}

Test(jwt, non_integer_iat_or_nbf_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);

    expect(j, hs(WITH("\"iat\":\"now\"")), FL_JWT_MALFORMED);
    expect(j, hs(WITH("\"nbf\":1.5")), FL_JWT_MALFORMED);
}

/* ---- issuer, audience, subject ------------------------------------------------ */

Test(jwt, wrong_iss_refused)
{
    fl_api_cfg_t c = policy(FL_JWT_ALG_HS256);
    c.jwt_issuer = "https://auth.feedline.dev";
    fl_jwt_t *j = jwt_new(&c);

    expect(j, hs(CLAIMS), FL_JWT_ISSUER);
    expect(j, hs(WITH("\"iss\":\"https://evil.dev\"")), FL_JWT_ISSUER);
    expect(j, hs(WITH("\"iss\":[\"https://auth.feedline.dev\"]")), FL_JWT_ISSUER);
    expect(j, hs(WITH("\"iss\":\"https://auth.feedline.dev\"")), FL_JWT_OK);
}

static fl_jwt_t *jwt_audience(const char *aud)
{
    fl_api_cfg_t c = policy(FL_JWT_ALG_HS256);
    c.jwt_audience = (char *)aud;
    return jwt_new(&c);
}

Test(jwt, wrong_aud_string_refused)
{
    fl_jwt_t *j = jwt_audience("feedline-api");

    expect(j, hs(CLAIMS), FL_JWT_AUDIENCE);
    expect(j, hs(WITH("\"aud\":\"other-api\"")), FL_JWT_AUDIENCE);
    expect(j, hs(WITH("\"aud\":\"feedline-api \"")), FL_JWT_AUDIENCE);
    expect(j, hs(WITH("\"aud\":\"feedline-api\"")), FL_JWT_OK);
}

Test(jwt, wrong_aud_array_refused)
{
    fl_jwt_t *j = jwt_audience("feedline-api");

    expect(j, hs(WITH("\"aud\":[]")), FL_JWT_AUDIENCE);
    expect(j, hs(WITH("\"aud\":[\"a\",\"b\"]")), FL_JWT_AUDIENCE);
    expect(j, hs(WITH("\"aud\":[\"feedline-api\",7]")), FL_JWT_AUDIENCE);
    expect(j, hs(WITH("\"aud\":[\"a\",\"feedline-api\"]")), FL_JWT_OK);
}

Test(jwt, aud_refused_when_no_audience_configured)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);

    /* RFC 7519 4.1.3: a recipient not named in a present aud must refuse */
    expect(j, hs(WITH("\"aud\":\"feedline-api\"")), FL_JWT_AUDIENCE);
}

Test(jwt, missing_sub_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);

    expect(j, hs("{\"exp\":1767229200}"), FL_JWT_SUBJECT);
    expect(j, hs("{\"sub\":null,\"exp\":1767229200}"), FL_JWT_SUBJECT);
}

Test(jwt, non_numeric_sub_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);
    static const char *const subs[] = {
        "\"alice\"", "\"42a\"", "\"-42\"",  "\"+42\"", "\" 42\"", "\"42 \"",
        "\"\"",      "\"4.2\"", "\"0x2a\"", "42",      "42.0",    "[\"42\"]",
    };
    char claims[128];

    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        snprintf(claims, sizeof(claims), "{\"sub\":%s,\"exp\":1767229200}", subs[i]);
        expect(j, hs(claims), FL_JWT_SUBJECT);
    }
}

Test(jwt, sub_zero_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);

    expect(j, hs("{\"sub\":\"0\",\"exp\":1767229200}"), FL_JWT_SUBJECT);
    expect(j, hs("{\"sub\":\"0000000000000000000\",\"exp\":1767229200}"), FL_JWT_SUBJECT);
}

Test(jwt, sub_too_big_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);

    expect(j, hs("{\"sub\":\"9223372036854775808\",\"exp\":1767229200}"), FL_JWT_SUBJECT);
    expect(j, hs("{\"sub\":\"9999999999999999999\",\"exp\":1767229200}"), FL_JWT_SUBJECT);
    expect(j, hs("{\"sub\":\"10000000000000000000\",\"exp\":1767229200}"), FL_JWT_SUBJECT);
    expect(j, hs("{\"sub\":\"9223372036854775807\",\"exp\":1767229200}"), FL_JWT_OK);
}

/* ---- malformed ------------------------------------------------------------- */

Test(jwt, two_segments_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);
    parts_t p = split(hs(CLAIMS));
    char tok[1024];

    snprintf(tok, sizeof(tok), "%s.%s", p.seg[0], p.seg[1]);
    expect(j, tok, FL_JWT_MALFORMED);
    expect(j, p.seg[0], FL_JWT_MALFORMED);
    expect(j, "", FL_JWT_MALFORMED);
}

Test(jwt, four_segments_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);
    char tok[1024];

    snprintf(tok, sizeof(tok), "%s.", hs(CLAIMS));
    expect(j, tok, FL_JWT_MALFORMED);
    snprintf(tok, sizeof(tok), "%s.e30", hs(CLAIMS));
    expect(j, tok, FL_JWT_MALFORMED);
}

Test(jwt, empty_segments_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);
    parts_t p = split(hs(CLAIMS));

    expect(j, "..", FL_JWT_MALFORMED);
    expect(j, join3("", p.seg[1], p.seg[2]), FL_JWT_MALFORMED);
    expect(j, join3(p.seg[0], "", p.seg[2]), FL_JWT_MALFORMED);
}

Test(jwt, non_base64url_characters_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);
    const char *bad = "+/ \n\t*%\x80";
    char *tok = hs(CLAIMS);
    size_t n = strlen(tok);
    int64_t v;

    for (const char *b = bad; *b; b++)
        for (size_t at = 0; at < n; at += 7) {
            char *t = keep(strdup(tok));
            if (t[at] == '.')
                continue;
            t[at] = *b;
            expect(j, t, FL_JWT_MALFORMED);
        }
    /* a NUL inside the given length */
    char *t = keep(strdup(tok));
    t[5] = '\0';
    cr_assert_eq(fl_jwt_verify(j, t, n, NOW, &v, NULL), FL_JWT_MALFORMED);
}

Test(jwt, padding_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);
    /* 27 bytes of header: 36 characters, so padding would be "" - use a
     * 28-byte header to get a segment that standard base64 pads */
    const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\" }";
    parts_t p = split(hs_token(hdr, CLAIMS, SECRET, strlen(SECRET)));
    char padded[256];

    expect(j, join3(p.seg[0], p.seg[1], p.seg[2]), FL_JWT_OK);
    snprintf(padded, sizeof(padded), "%s==", p.seg[0]);
    expect(j, join3(padded, p.seg[1], p.seg[2]), FL_JWT_MALFORMED);
    snprintf(padded, sizeof(padded), "%s=", p.seg[2]); /* 43 characters + '=' */
    expect(j, join3(p.seg[0], p.seg[1], padded), FL_JWT_MALFORMED);
}

Test(jwt, non_canonical_base64url_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);
    parts_t p = split(hs(CLAIMS));
    char sig[64], *last;

    /* The last of 43 characters carries 2 unused bits: setting one keeps
     * the bytes but changes the spelling of the signature. */
    snprintf(sig, sizeof(sig), "%s", p.seg[2]);
    cr_assert_eq(strlen(sig), 43);
    last = &sig[42];
    *last = abc[(strchr(abc, *last) - abc) | 1];
    expect(j, join3(p.seg[0], p.seg[1], sig), FL_JWT_MALFORMED);
    /* 4k+1 characters cannot be base64 */
    snprintf(sig, sizeof(sig), "%sA", p.seg[2]);
    sig[41] = '\0';
    expect(j, join3(p.seg[0], p.seg[1], sig), FL_JWT_MALFORMED);
}

Test(jwt, header_not_json_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);

    expect(j, hs_token("not json", CLAIMS, SECRET, strlen(SECRET)), FL_JWT_MALFORMED);
    expect(j, hs_token("{\"alg\":\"HS256\"", CLAIMS, SECRET, strlen(SECRET)), FL_JWT_MALFORMED);
    expect(j, hs_token("{\"alg\":\"HS256\"} {}", CLAIMS, SECRET, strlen(SECRET)), FL_JWT_MALFORMED);
    expect(j, hs_token("\"HS256\"", CLAIMS, SECRET, strlen(SECRET)), FL_JWT_MALFORMED);
}

Test(jwt, header_json_array_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);

    expect(j, hs_token("[{\"alg\":\"HS256\"}]", CLAIMS, SECRET, strlen(SECRET)), FL_JWT_MALFORMED);
}

Test(jwt, header_typ_crit_and_duplicates_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);
    static const char *const hdrs[] = {
        "{\"alg\":\"HS256\",\"typ\":\"JWS\"}",
        "{\"alg\":\"HS256\",\"typ\":7}",
        "{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}",
        "{\"alg\":\"HS256\",\"crit\":[]}",
        "{\"alg\":\"HS256\",\"b64\":false,\"crit\":[\"b64\"]}",
        "{\"alg\":\"none\",\"alg\":\"HS256\"}",
    };

    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++)
        expect(j, hs_token(hdrs[i], CLAIMS, SECRET, strlen(SECRET)), FL_JWT_MALFORMED);
}

Test(jwt, claims_not_an_object_refused)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256);

    expect(j, hs("[" CLAIMS "]"), FL_JWT_MALFORMED);
    expect(j, hs("not json"), FL_JWT_MALFORMED);
    expect(j, hs("{\"sub\":\"1\",\"sub\":\"42\",\"exp\":1767229200}"), FL_JWT_MALFORMED);
}

Test(jwt, oversized_token_refused)
{
    fl_api_cfg_t c = policy(FL_JWT_ALG_HS256);
    char claims[4096], *big = keep(malloc(8192));
    const char *tok;
    fl_jwt_t *j;
    int64_t v;

    snprintf(claims, sizeof(claims), WITH("\"x\":\"%0*d\""), 2900, 0);
    tok = hs(claims);
    c.jwt_max_bytes = (int64_t)strlen(tok); /* exactly at the limit: accepted */
    j = jwt_new(&c);
    expect(j, tok, FL_JWT_OK);
    snprintf(big, 8192, "%sA", tok);
    expect(j, big, FL_JWT_OVERSIZED);
    /* refused before reading: garbage of that length too */
    memset(big, '!', 8191);
    big[8191] = '\0';
    expect(j, big, FL_JWT_OVERSIZED);
    cr_assert_eq(fl_jwt_verify(j, NULL, 5000, NOW, &v, NULL), FL_JWT_OVERSIZED);
    cr_assert_eq(fl_jwt_verify(j, NULL, 0, NOW, &v, NULL), FL_JWT_MALFORMED);
}

/* ---- minting --------------------------------------------------------------- */

static void round_trip(fl_jwt_t *j, unsigned alg, const char *want_alg)
{
    int64_t viewer = 0, exp = 0;
    char *tok = keep(fl_jwt_mint(j, alg, 1234567, NOW, 3600, err, sizeof(err)));
    parts_t p = split(tok);
    unsigned char hdr[128] = {0};
    int n = EVP_DecodeBlock(hdr, (const unsigned char *)p.seg[0], (int)strlen(p.seg[0]));

    cr_assert_eq(p.n, 3);
    cr_assert_gt(n, 0);
    cr_assert(strstr((char *)hdr, want_alg), "%s", hdr);
    cr_assert_eq(fl_jwt_verify(j, tok, strlen(tok), NOW, &viewer, &exp), FL_JWT_OK, "%s", tok);
    cr_assert_eq(viewer, 1234567);
    cr_assert_eq(exp, NOW + 3600);
    /* and it lapses when its lifetime and the leeway are over */
    cr_assert_eq(verify_at(j, tok, NOW + 3630, NULL), FL_JWT_OK);
    cr_assert_eq(verify_at(j, tok, NOW + 3631, NULL), FL_JWT_EXPIRED);
}

Test(jwt, mint_verify_round_trip_hs256)
{
    fl_api_cfg_t c = policy(FL_JWT_ALG_HS256 | FL_JWT_ALG_EDDSA);
    c.jwt_issuer = "feedline";
    c.jwt_audience = "feedline-api";
    fl_jwt_t *j = jwt_new(&c);

    round_trip(j, FL_JWT_ALG_HS256, "\"HS256\"");
    round_trip(j, 0, "\"HS256\""); /* the first pinned algorithm with a key */
}

Test(jwt, mint_verify_round_trip_eddsa)
{
    fl_api_cfg_t c = policy(FL_JWT_ALG_EDDSA);
    c.jwt_private_key_file = priv_path;
    c.jwt_issuer = "feedline";
    fl_jwt_t *j = jwt_new(&c);

    round_trip(j, FL_JWT_ALG_EDDSA, "\"EdDSA\"");
    round_trip(j, 0, "\"EdDSA\"");
}

Test(jwt, mint_errors)
{
    fl_jwt_t *j = jwt_for(FL_JWT_ALG_HS256 | FL_JWT_ALG_EDDSA);

    cr_assert_null(fl_jwt_mint(j, FL_JWT_ALG_EDDSA, 42, NOW, 60, err, sizeof(err)));
    cr_assert(strstr(err, "private key"), "%s", err);
    cr_assert_null(fl_jwt_mint(j, 4, 42, NOW, 60, err, sizeof(err)));
    cr_assert_null(fl_jwt_mint(j, FL_JWT_ALG_HS256, 0, NOW, 60, err, sizeof(err)));
    cr_assert_null(fl_jwt_mint(j, FL_JWT_ALG_HS256, 42, NOW, 0, err, sizeof(err)));
    cr_assert_null(fl_jwt_mint(j, FL_JWT_ALG_HS256, 42, INT64_MAX - 5, 60, err, sizeof(err)));
}

/* ---- configuration --------------------------------------------------------- */

static void new_fails(const fl_api_cfg_t *c, const char *needle)
{
    err[0] = '\0';
    cr_assert_null(fl_jwt_new(c, err, sizeof(err)), "loaded; wanted an error with %s", needle);
    cr_assert(strstr(err, needle), "\"%s\" does not mention %s", err, needle);
}

Test(jwt, config_errors)
{
    fl_api_cfg_t c = policy(FL_JWT_ALG_HS256 | FL_JWT_ALG_EDDSA);
    char bad[160];

    c.jwt_algorithms = 0;
    new_fails(&c, "algorithms");
    c.jwt_algorithms = 4;
    new_fails(&c, "algorithms");
    c = policy(FL_JWT_ALG_HS256);
    c.jwt_secret = "short";
    new_fails(&c, "32 bytes");
    c.jwt_secret = NULL;
    new_fails(&c, "secret");
    c = policy(FL_JWT_ALG_HS256);
    c.jwt_max_bytes = 0;
    new_fails(&c, "max_bytes");
    c.jwt_max_bytes = FL_JWT_MAX_BYTES_LIMIT + 1;
    new_fails(&c, "max_bytes");
    c = policy(FL_JWT_ALG_HS256);
    c.jwt_leeway_s = -1;
    new_fails(&c, "leeway");
    c = policy(FL_JWT_ALG_EDDSA);
    c.jwt_public_key_file = NULL;
    new_fails(&c, "key file");
    snprintf(bad, sizeof(bad), "%s/missing.pem", dir);
    c.jwt_public_key_file = bad;
    new_fails(&c, bad);
    c.jwt_public_key_file = priv_path; /* a private key is not a public key file */
    new_fails(&c, priv_path);
    c.jwt_public_key_file = NULL;
    c.jwt_private_key_file = pub_path;
    new_fails(&c, pub_path);
}

Test(jwt, config_rejects_foreign_or_mismatched_keys)
{
    fl_api_cfg_t c = policy(FL_JWT_ALG_EDDSA);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    char ec_path[160], other_path[160];

    snprintf(ec_path, sizeof(ec_path), "%s/ec.pem", dir);
    snprintf(other_path, sizeof(other_path), "%s/other.pem", dir);
    cr_assert(fl_jwt_fixture_write_pem(ec, ec_path, NULL));
    cr_assert(fl_jwt_fixture_write_pem(other, other_path, NULL));
    c.jwt_public_key_file = ec_path;
    new_fails(&c, "not an Ed25519 key");
    c.jwt_public_key_file = other_path;
    c.jwt_private_key_file = priv_path;
    new_fails(&c, "not the public key");
    unlink(ec_path);
    unlink(other_path);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(other);
    fl_jwt_free(NULL);
}

Test(jwt, status_strings_are_distinct)
{
    for (int a = 0; a < FL_JWT__COUNT; a++) {
        cr_assert_not_null(fl_jwt_status_str(a));
        for (int b = a + 1; b < FL_JWT__COUNT; b++)
            cr_assert_str_neq(fl_jwt_status_str(a), fl_jwt_status_str(b));
    }
    cr_assert_not_null(fl_jwt_status_str(FL_JWT__COUNT));
}

/* ---- the fuzz corpus ------------------------------------------------------- */

static const char *source_dir(void)
{
    const char *d = getenv("FEEDLINE_SOURCE_DIR");
    return d && *d ? d : ".";
}

Test(jwt, corpus_replay_matches_file_names)
{
    static const struct {
        const char *prefix;
        fl_jwt_status_t st;
    } classes[] = {
        {"ok-", FL_JWT_OK},
        {"401-malformed", FL_JWT_MALFORMED},
        {"401-oversized", FL_JWT_OVERSIZED},
        {"401-alg", FL_JWT_ALG},
        {"401-signature", FL_JWT_SIGNATURE},
        {"401-expired", FL_JWT_EXPIRED},
        {"401-not-yet", FL_JWT_NOT_YET},
        {"401-no-exp", FL_JWT_NO_EXP},
        {"401-issuer", FL_JWT_ISSUER},
        {"401-audience", FL_JWT_AUDIENCE},
        {"401-subject", FL_JWT_SUBJECT},
    };
    size_t n_classes = sizeof(classes) / sizeof(classes[0]), files = 0, oks = 0;
    fl_jwt_t *j = fl_jwt_fixture_new(err, sizeof(err));
    char path[4096];
    DIR *dp;
    struct dirent *de;

    cr_assert_not_null(j, "%s", err);
    snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/jwt", source_dir());
    dp = opendir(path);
    cr_assert_not_null(dp, "%s", path);
    while ((de = readdir(dp))) {
        char file[8192], *data = keep(malloc(16384));
        size_t k, n;
        int64_t viewer;
        FILE *f;
        fl_jwt_status_t got;

        if (de->d_name[0] == '.')
            continue;
        for (k = 0; k < n_classes; k++)
            if (!strncmp(de->d_name, classes[k].prefix, strlen(classes[k].prefix)))
                break;
        cr_assert_lt(k, n_classes, "corpus file %s: name must start with ok- or 401-<status>",
                     de->d_name);
        snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
        f = fopen(file, "rb");
        cr_assert_not_null(f, "%s", file);
        n = fread(data, 1, 16384, f);
        fclose(f);
        got = fl_jwt_verify(j, data, n, FL_JWT_FIXTURE_NOW, &viewer, NULL);
        cr_assert_eq(got, classes[k].st, "%s: got %s", de->d_name, fl_jwt_status_str(got));
        if (got == FL_JWT_OK) {
            cr_assert_gt(viewer, 0);
            oks++;
        }
        files++;
    }
    closedir(dp);
    fl_jwt_free(j);
    cr_assert_geq(files, 25, "corpus has only %zu files", files);
    cr_assert_geq(oks, 3, "corpus has only %zu ok- files", oks);
}
