/*
 * fl_jwt.c - JWT verification and minting over libcrypto and jansson.
 *
 * A token is refused at the first check it fails, cheapest first: its
 * length (before any byte is read), its shape (exactly three segments of
 * canonical unpadded base64url: no character outside [A-Za-z0-9_-], no
 * '=', no length that leaves 1 character over, no stray bits in the last
 * character, so that one signature has one spelling), the header (a JSON
 * object naming a pinned alg), the signature over the first two segments
 * as sent, and only then the claims. Claims are never parsed for an
 * unsigned or badly signed token.
 *
 * Invariants: after fl_jwt_new() nothing in the handle changes, so calls
 * share it without locks. The HMAC context made at creation is keyed once
 * and only ever duplicated (EVP_MAC_CTX_dup reads it); EVP_PKEYs are only
 * read. OpenSSL keeps its error queue per thread; a failed verification
 * clears what it left there so long-lived workers do not carry stale
 * errors. Decoding uses stack buffers sized by FL_JWT_MAX_BYTES_LIMIT, so
 * the only allocations per call are jansson's and the per-call OpenSSL
 * contexts.
 *
 * Workload: fl_jwt_verify once per API request, tens of thousands a second
 * across worker threads; fl_jwt_new once per process; fl_jwt_mint from
 * `feedline token` and development logins.
 */
#include "fl_jwt.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FL_JWT_MIN_SECRET  32   /* bytes: RFC 7518 3.2, the size of the hash */
#define FL_JWT_MAX_LEEWAY  3600 /* seconds: "a few minutes" is the norm */
#define FL_JWT_HS256_SIG   32
#define FL_JWT_ED25519_SIG 64
#define FL_JWT_B64_CHUNK   256 /* base64 characters mapped at a time, a multiple of 4 */
/* Decoded segments: base64 yields 3 bytes per 4 characters, rounded up. */
#define FL_JWT_BUF     ((FL_JWT_MAX_BYTES_LIMIT + 3) / 4 * 3)
#define FL_JWT_SIG_BUF ((86 + 3) / 4 * 3) /* an Ed25519 signature is 86 characters */

struct fl_jwt {
    unsigned algs;       /* pinned algorithms; each has a verification key */
    EVP_MAC_CTX *hmac;   /* HMAC-SHA256 keyed with the secret; duplicated per call */
    EVP_PKEY *ed_verify; /* the public key, else the private key */
    EVP_PKEY *ed_sign;   /* the private key, or NULL */
    char *issuer;        /* NULL: not checked, not minted */
    char *audience;      /* NULL: tokens must carry no aud */
    int64_t leeway_s;
    size_t max_bytes;
};

static const char *const fl_jwt_status_msgs[FL_JWT__COUNT] = {
    [FL_JWT_OK] = "ok",
    [FL_JWT_MALFORMED] = "malformed token",
    [FL_JWT_OVERSIZED] = "token too long",
    [FL_JWT_ALG] = "token algorithm not accepted",
    [FL_JWT_SIGNATURE] = "bad token signature",
    [FL_JWT_EXPIRED] = "token expired",
    [FL_JWT_NOT_YET] = "token not yet valid",
    [FL_JWT_NO_EXP] = "token has no expiry",
    [FL_JWT_ISSUER] = "token issuer not accepted",
    [FL_JWT_AUDIENCE] = "token audience not accepted",
    [FL_JWT_SUBJECT] = "token subject is not a user id",
};

const char *fl_jwt_status_str(fl_jwt_status_t status)
{
    if ((unsigned)status >= FL_JWT__COUNT)
        return "invalid token";
    return fl_jwt_status_msgs[status];
}

static void set_err(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    va_list ap;
    if (!errstr || !errstr_size)
        return;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

/* OpenSSL's reason for the last failure on this thread; clears the queue. */
static const char *ossl_reason(void)
{
    const char *r = ERR_reason_error_string(ERR_peek_last_error());
    ERR_clear_error();
    return r ? r : "unknown error";
}

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* ---- base64url onto OpenSSL's base64 --------------------------------------- */

/* The 6-bit value of a base64url character, -1 for any other byte. */
static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* True when s[0..n) is canonical unpadded base64url. */
static bool b64url_canonical(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b64url_value((unsigned char)s[i]) < 0)
            return false;
    switch (n % 4) {
    case 1:
        return false;
    case 2: /* 12 bits for 8: the low 4 bits of the last character are unused */
        return (b64url_value((unsigned char)s[n - 1]) & 0x0f) == 0;
    case 3: /* 18 bits for 16 */
        return (b64url_value((unsigned char)s[n - 1]) & 0x03) == 0;
    default:
        return true;
    }
}

/*
 * Decodes canonical base64url s[0..n) into out (cap bytes) with
 * EVP_DecodeBlock, mapping the alphabet and restoring the padding a chunk
 * at a time. Returns the decoded length, or -1 when it does not fit.
 */
static long b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
    char in[FL_JWT_B64_CHUNK];
    size_t rem = n % 4, o = 0, i = 0;

    /* EVP_DecodeBlock writes 3 bytes for every 4 characters, padding too. */
    if ((n + 3) / 4 * 3 > cap)
        return -1;
    while (i < n) {
        int k = 0, got;
        while (k < FL_JWT_B64_CHUNK && i < n) {
            char c = s[i++];
            in[k++] = c == '-' ? '+' : c == '_' ? '/' : c;
        }
        while (k % 4)
            in[k++] = '=';
        got = EVP_DecodeBlock(out + o, (const unsigned char *)in, k);
        if (got < 0)
            return -1;
        o += (size_t)got;
    }
    return (long)(n / 4 * 3 + (rem ? rem - 1 : 0));
}

/* Writes data as unpadded base64url at p, NUL-terminated; returns the end.
 * p must have room for 4 * ceil(n / 3) + 1 bytes. */
static char *b64url_encode(char *p, const void *data, size_t n)
{
    int len = EVP_EncodeBlock((unsigned char *)p, data, (int)n);
    while (len > 0 && p[len - 1] == '=')
        len--;
    for (int i = 0; i < len; i++)
        p[i] = p[i] == '+' ? '-' : p[i] == '/' ? '_' : p[i];
    p[len] = '\0';
    return p + len;
}

static size_t b64_room(size_t n)
{
    return (n + 2) / 3 * 4 + 1;
}

/* ---- signatures --------------------------------------------------------- */

static bool hs256(const fl_jwt_t *j, const void *data, size_t n, unsigned char mac[32])
{
    EVP_MAC_CTX *c = EVP_MAC_CTX_dup(j->hmac);
    size_t len = 0;
    bool ok = c && EVP_MAC_update(c, data, n) && EVP_MAC_final(c, mac, &len, FL_JWT_HS256_SIG) &&
              len == FL_JWT_HS256_SIG;

    EVP_MAC_CTX_free(c);
    return ok;
}

static bool sig_ok(const fl_jwt_t *j, unsigned alg, const char *data, size_t n,
                   const unsigned char *sig, size_t sig_len)
{
    unsigned char mac[FL_JWT_HS256_SIG];
    EVP_MD_CTX *c = NULL;
    bool ok = false;

    if (alg == FL_JWT_ALG_HS256) {
        ok = sig_len == FL_JWT_HS256_SIG && hs256(j, data, n, mac) &&
             CRYPTO_memcmp(mac, sig, FL_JWT_HS256_SIG) == 0;
        goto out;
    }
    if (sig_len != FL_JWT_ED25519_SIG || !(c = EVP_MD_CTX_new()))
        goto out;
    ok = EVP_DigestVerifyInit(c, NULL, NULL, NULL, j->ed_verify) == 1 &&
         EVP_DigestVerify(c, sig, sig_len, (const unsigned char *)data, n) == 1;
out:
    EVP_MD_CTX_free(c);
    if (!ok)
        ERR_clear_error();
    return ok;
}

/* ---- header and claims --------------------------------------------------- */

static fl_jwt_status_t check_header(const fl_jwt_t *j, const unsigned char *h, size_t n,
                                    unsigned *alg)
{
    json_t *o = json_loadb((const char *)h, n, JSON_REJECT_DUPLICATES, NULL);
    const json_t *typ = json_object_get(o, "typ");
    const char *a;
    fl_jwt_status_t st = FL_JWT_MALFORMED;

    if (!json_is_object(o))
        goto out;
    if (typ && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT")))
        goto out;
    /* No extension is understood here, so any critical one refuses the token. */
    if (json_object_get(o, "crit"))
        goto out;
    st = FL_JWT_ALG;
    a = json_string_value(json_object_get(o, "alg"));
    if (!a)
        goto out;
    if (!strcmp(a, "HS256") && (j->algs & FL_JWT_ALG_HS256))
        *alg = FL_JWT_ALG_HS256;
    else if (!strcmp(a, "EdDSA") && (j->algs & FL_JWT_ALG_EDDSA))
        *alg = FL_JWT_ALG_EDDSA;
    else
        goto out;
    st = FL_JWT_OK;
out:
    json_decref(o);
    return st;
}

static bool aud_ok(const fl_jwt_t *j, const json_t *aud)
{
    size_t i;
    json_t *v;
    bool found = false;

    if (!j->audience)
        return !aud;
    if (json_is_string(aud))
        return !strcmp(json_string_value(aud), j->audience);
    if (!json_is_array(aud))
        return false;
    json_array_foreach(aud, i, v)
    {
        if (!json_is_string(v))
            return false;
        found = found || !strcmp(json_string_value(v), j->audience);
    }
    return found;
}

/* `sub` as a user id: 1 to 19 decimal digits, > 0, at most INT64_MAX. */
static bool parse_sub(const json_t *sub, int64_t *id)
{
    const char *s = json_string_value(sub);
    size_t n = json_string_length(sub);
    uint64_t v = 0;

    if (!s || n < 1 || n > 19)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0'); /* 19 digits fit uint64 */
    }
    if (v == 0 || v > INT64_MAX)
        return false;
    *id = (int64_t)v;
    return true;
}

static fl_jwt_status_t check_claims(const fl_jwt_t *j, const unsigned char *p, size_t n,
                                    int64_t now, int64_t *viewer, int64_t *exp)
{
    json_t *o = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, NULL);
    const json_t *e = json_object_get(o, "exp"), *nbf = json_object_get(o, "nbf");
    const json_t *iat = json_object_get(o, "iat");
    const char *iss;
    fl_jwt_status_t st = FL_JWT_MALFORMED;

    if (!json_is_object(o) || (nbf && !json_is_integer(nbf)) || (iat && !json_is_integer(iat)))
        goto out;
    st = FL_JWT_NO_EXP;
    if (!json_is_integer(e))
        goto out;
    *exp = json_integer_value(e);
    st = FL_JWT_EXPIRED;
    if (sat_add(now, -j->leeway_s) > *exp)
        goto out;
    st = FL_JWT_NOT_YET;
    if (nbf && sat_add(now, j->leeway_s) < json_integer_value(nbf))
        goto out;
    st = FL_JWT_ISSUER;
    iss = json_string_value(json_object_get(o, "iss"));
    if (j->issuer && (!iss || strcmp(iss, j->issuer)))
        goto out;
    st = FL_JWT_AUDIENCE;
    if (!aud_ok(j, json_object_get(o, "aud")))
        goto out;
    st = FL_JWT_SUBJECT;
    if (!parse_sub(json_object_get(o, "sub"), viewer))
        goto out;
    st = FL_JWT_OK;
out:
    json_decref(o);
    return st;
}

fl_jwt_status_t fl_jwt_verify(const fl_jwt_t *j, const char *token, size_t len, int64_t now_s,
                              int64_t *viewer_id, int64_t *exp_s)
{
    unsigned char buf[FL_JWT_BUF], sig[FL_JWT_SIG_BUF];
    const char *d1, *d2;
    size_t hlen, plen, slen;
    unsigned alg = 0;
    long n;
    int64_t viewer = 0, exp = 0;
    fl_jwt_status_t st = FL_JWT_OVERSIZED;

    if (len > j->max_bytes)
        goto out;
    st = FL_JWT_MALFORMED;
    if (!token || !(d1 = memchr(token, '.', len)) ||
        !(d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token))))
        goto out;
    hlen = (size_t)(d1 - token);
    plen = (size_t)(d2 - d1 - 1);
    slen = len - (size_t)(d2 + 1 - token);
    /* A fourth segment shows up as a '.' outside the alphabet. */
    if (!hlen || !plen || !b64url_canonical(token, hlen) || !b64url_canonical(d1 + 1, plen) ||
        !b64url_canonical(d2 + 1, slen))
        goto out;
    if ((n = b64url_decode(token, hlen, buf, sizeof(buf))) < 0)
        goto out;
    if ((st = check_header(j, buf, (size_t)n, &alg)) != FL_JWT_OK)
        goto out;
    st = FL_JWT_SIGNATURE;
    n = b64url_decode(d2 + 1, slen, sig, sizeof(sig));
    if (n < 0 || !sig_ok(j, alg, token, (size_t)(d2 - token), sig, (size_t)n))
        goto out;
    st = FL_JWT_MALFORMED;
    if ((n = b64url_decode(d1 + 1, plen, buf, sizeof(buf))) < 0)
        goto out;
    st = check_claims(j, buf, (size_t)n, now_s, &viewer, &exp);
out:
    if (st != FL_JWT_OK)
        viewer = exp = 0;
    *viewer_id = viewer;
    if (exp_s)
        *exp_s = exp;
    return st;
}

/* ---- minting --------------------------------------------------------------- */

char *fl_jwt_mint(const fl_jwt_t *j, unsigned alg, int64_t user_id, int64_t now_s, int64_t ttl_s,
                  char *errstr, size_t errstr_size)
{
    unsigned signing = (j->algs & FL_JWT_ALG_HS256) | (j->ed_sign ? FL_JWT_ALG_EDDSA : 0);
    unsigned char sig[FL_JWT_ED25519_SIG];
    size_t sig_len = sizeof(sig);
    json_t *hdr = NULL, *claims = NULL;
    char *hs = NULL, *cs = NULL, *tok = NULL, *p, *ret = NULL, sub[24];
    EVP_MD_CTX *c = NULL;
    int64_t exp;

    if (!alg)
        alg = signing & FL_JWT_ALG_HS256 ? FL_JWT_ALG_HS256 : signing & FL_JWT_ALG_EDDSA;
    if (!alg || !(signing & alg) || (alg != FL_JWT_ALG_HS256 && alg != FL_JWT_ALG_EDDSA)) {
        set_err(errstr, errstr_size, "no signing key for the %s algorithm",
                alg == FL_JWT_ALG_HS256   ? "HS256"
                : alg == FL_JWT_ALG_EDDSA ? "EdDSA (a private key file is needed)"
                                          : "requested");
        goto out;
    }
    if (user_id <= 0 || ttl_s <= 0 || __builtin_add_overflow(now_s, ttl_s, &exp)) {
        set_err(errstr, errstr_size, "the user id and the lifetime must be > 0");
        goto out;
    }
    snprintf(sub, sizeof(sub), "%lld", (long long)user_id);
    hdr = json_pack("{s:s, s:s}", "alg", alg == FL_JWT_ALG_HS256 ? "HS256" : "EdDSA", "typ", "JWT");
    claims =
        json_pack("{s:s, s:I, s:I}", "sub", sub, "iat", (json_int_t)now_s, "exp", (json_int_t)exp);
    if (claims && j->issuer)
        json_object_set_new(claims, "iss", json_string(j->issuer));
    if (claims && j->audience)
        json_object_set_new(claims, "aud", json_string(j->audience));
    hs = hdr ? json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    cs = claims ? json_dumps(claims, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    tok = hs && cs ? malloc(b64_room(strlen(hs)) + b64_room(strlen(cs)) + b64_room(sizeof(sig)))
                   : NULL;
    if (!tok) {
        set_err(errstr, errstr_size, "out of memory");
        goto out;
    }
    p = b64url_encode(tok, hs, strlen(hs));
    *p++ = '.';
    p = b64url_encode(p, cs, strlen(cs));
    if (alg == FL_JWT_ALG_HS256) {
        sig_len = FL_JWT_HS256_SIG;
        if (!hs256(j, tok, (size_t)(p - tok), sig)) {
            set_err(errstr, errstr_size, "HMAC-SHA256: %s", ossl_reason());
            goto out;
        }
    } else if (!(c = EVP_MD_CTX_new()) ||
               EVP_DigestSignInit(c, NULL, NULL, NULL, j->ed_sign) != 1 ||
               EVP_DigestSign(c, sig, &sig_len, (unsigned char *)tok, (size_t)(p - tok)) != 1) {
        set_err(errstr, errstr_size, "Ed25519 signing: %s", ossl_reason());
        goto out;
    }
    *p++ = '.';
    p = b64url_encode(p, sig, sig_len);
    /* A token this process would refuse is no use to anyone. */
    if ((size_t)(p - tok) > j->max_bytes) {
        set_err(errstr, errstr_size, "the token would be %zu bytes, more than the %zu allowed",
                (size_t)(p - tok), j->max_bytes);
        goto out;
    }
    ret = tok;
    tok = NULL;
out:
    EVP_MD_CTX_free(c);
    json_decref(hdr);
    json_decref(claims);
    free(hs);
    free(cs);
    free(tok);
    return ret;
}

/* ---- creation ------------------------------------------------------------------ */

/* Refuses to prompt for a passphrase: keys for a server are not encrypted. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

/* Reads an Ed25519 key, public (SubjectPublicKeyInfo) or private
 * (PKCS#8), from the PEM file at path. */
static EVP_PKEY *load_ed25519(const char *path, bool private_key, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = NULL;

    if (!f) {
        set_err(errstr, errstr_size, "%s: %s", path, strerror(errno));
        goto out;
    }
    k = private_key ? PEM_read_PrivateKey(f, NULL, no_passphrase, NULL)
                    : PEM_read_PUBKEY(f, NULL, no_passphrase, NULL);
    if (!k) {
        set_err(errstr, errstr_size, "%s: not an unencrypted PEM %s key: %s", path,
                private_key ? "private" : "public", ossl_reason());
        goto out;
    }
    if (EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
        set_err(errstr, errstr_size, "%s: not an Ed25519 key (EdDSA here means Ed25519)", path);
        EVP_PKEY_free(k);
        k = NULL;
    }
out:
    if (f)
        fclose(f);
    return k;
}

static bool hmac_key(fl_jwt_t *j, const char *secret, char *errstr, size_t errstr_size)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    bool ok = mac && (j->hmac = EVP_MAC_CTX_new(mac)) &&
              EVP_MAC_init(j->hmac, (const unsigned char *)secret, strlen(secret), params);

    if (!ok)
        set_err(errstr, errstr_size, "HMAC-SHA256: %s", ossl_reason());
    EVP_MAC_free(mac);
    return ok;
}

fl_jwt_t *fl_jwt_new(const fl_api_cfg_t *cfg, char *errstr, size_t errstr_size)
{
    const unsigned known = FL_JWT_ALG_HS256 | FL_JWT_ALG_EDDSA;
    fl_jwt_t *j = NULL, *ret = NULL;

    if (!cfg->jwt_algorithms || (cfg->jwt_algorithms & ~known)) {
        set_err(errstr, errstr_size, "api.jwt.algorithms: pin HS256, EdDSA or both");
        goto out;
    }
    if (cfg->jwt_max_bytes < 1 || cfg->jwt_max_bytes > FL_JWT_MAX_BYTES_LIMIT) {
        set_err(errstr, errstr_size, "api.jwt.max_bytes: %lld is not in 1..%d",
                (long long)cfg->jwt_max_bytes, FL_JWT_MAX_BYTES_LIMIT);
        goto out;
    }
    if (cfg->jwt_leeway_s < 0 || cfg->jwt_leeway_s > FL_JWT_MAX_LEEWAY) {
        set_err(errstr, errstr_size, "api.jwt.leeway: %lld s is not in 0..%d",
                (long long)cfg->jwt_leeway_s, FL_JWT_MAX_LEEWAY);
        goto out;
    }
    if (!(j = calloc(1, sizeof(*j)))) {
        set_err(errstr, errstr_size, "out of memory");
        goto out;
    }
    j->algs = cfg->jwt_algorithms;
    j->leeway_s = cfg->jwt_leeway_s;
    j->max_bytes = (size_t)cfg->jwt_max_bytes;
    if (j->algs & FL_JWT_ALG_HS256) {
        if (!cfg->jwt_secret || strlen(cfg->jwt_secret) < FL_JWT_MIN_SECRET) {
            set_err(errstr, errstr_size,
                    "api.jwt.secret: HS256 is pinned and needs a secret of at least %d bytes "
                    "(or FEEDLINE_JWT_SECRET)",
                    FL_JWT_MIN_SECRET);
            goto out;
        }
        if (!hmac_key(j, cfg->jwt_secret, errstr, errstr_size))
            goto out;
    }
    if (j->algs & FL_JWT_ALG_EDDSA) {
        if (!cfg->jwt_public_key_file && !cfg->jwt_private_key_file) {
            set_err(errstr, errstr_size,
                    "api.jwt.public_key_file: EdDSA is pinned and needs a key file");
            goto out;
        }
        if (cfg->jwt_public_key_file &&
            !(j->ed_verify = load_ed25519(cfg->jwt_public_key_file, false, errstr, errstr_size)))
            goto out;
        if (cfg->jwt_private_key_file &&
            !(j->ed_sign = load_ed25519(cfg->jwt_private_key_file, true, errstr, errstr_size)))
            goto out;
        if (j->ed_verify && j->ed_sign && EVP_PKEY_eq(j->ed_verify, j->ed_sign) != 1) {
            set_err(errstr, errstr_size, "%s: not the public key of %s", cfg->jwt_public_key_file,
                    cfg->jwt_private_key_file);
            ERR_clear_error();
            goto out;
        }
        if (!j->ed_verify) {
            if (!EVP_PKEY_up_ref(j->ed_sign)) {
                set_err(errstr, errstr_size, "%s: %s", cfg->jwt_private_key_file, ossl_reason());
                goto out;
            }
            j->ed_verify = j->ed_sign;
        }
    }
    if ((cfg->jwt_issuer && !(j->issuer = strdup(cfg->jwt_issuer))) ||
        (cfg->jwt_audience && !(j->audience = strdup(cfg->jwt_audience)))) {
        set_err(errstr, errstr_size, "out of memory");
        goto out;
    }
    ret = j;
    j = NULL;
out:
    fl_jwt_free(j);
    return ret;
}

void fl_jwt_free(fl_jwt_t *j)
{
    if (!j)
        return;
    EVP_MAC_CTX_free(j->hmac);
    EVP_PKEY_free(j->ed_verify);
    EVP_PKEY_free(j->ed_sign);
    free(j->issuer);
    free(j->audience);
    free(j);
}
