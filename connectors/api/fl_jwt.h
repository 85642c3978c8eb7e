/*
 * fl_jwt.h - the read API's bearer tokens: JWT checks (RFC 7519, RFC 8725)
 * and minting for `feedline token`.
 *
 * Why not libjwt. Debian's libjwt 1.10 takes the algorithm from the token,
 * checks no claims (exp, nbf, iss, aud are the caller's), has no EdDSA,
 * and has had algorithm-confusion bugs (an RSA or EC public key accepted as
 * an HMAC secret). So feedline composes maintained libraries instead:
 * OpenSSL's libcrypto for HMAC-SHA256 (compared with CRYPTO_memcmp, in
 * constant time) and Ed25519 (EVP_DigestVerify, no digest), OpenSSL's
 * base64 decoder, and jansson for the header and the claims. The one piece
 * written here is the mapping of base64url onto base64 and the checks
 * around it.
 *
 * Policy, from the topology's api section (fl_api_cfg_t):
 * - Algorithms are pinned: HS256 when its bit is set (the secret, at least
 *   32 bytes as RFC 7518 3.2 requires), EdDSA (Ed25519) when its bit is set
 *   (the public key file; failing that, the private key file). A pinned
 *   algorithm without its key is a configuration error. The token's `alg`
 *   only selects among the pinned ones; the key is chosen by that pinned
 *   algorithm and nothing else in the token (kid, jwk, jku are ignored),
 *   so a token signed with HS256 and the EdDSA public key as the secret
 *   fails. `none` and every other algorithm are refused.
 * - `exp` is required; `nbf` and `iat` are optional; `iss` and `aud` are
 *   checked when configured (`aud` present while no audience is configured
 *   is refused, as RFC 7519 4.1.3 says); `sub` is the viewer: a user id
 *   written as 1 to 19 decimal digits, > 0, fitting int64.
 * - The struct is taken as given: the topology loader supplies the
 *   defaults (leeway 30 s, max 4096 bytes, algorithms HS256). Here leeway
 *   must be 0..3600 s and max bytes 1..FL_JWT_MAX_BYTES_LIMIT.
 *
 * Threads: an fl_jwt_t is immutable after fl_jwt_new(); fl_jwt_verify()
 * and fl_jwt_mint() may run on any number of threads at once on one
 * handle. Free it once no call is running.
 *
 * Workload: one fl_jwt_verify() per HTTP request, tens of thousands a
 * second. A call decodes into stack buffers, parses two small JSON
 * objects and computes one HMAC (from a keyed context made at creation)
 * or one Ed25519 verification; it never logs and never echoes the token.
 */
#ifndef FL_JWT_H
#define FL_JWT_H

#include "fl_topology.h"

#include <stddef.h>
#include <stdint.h>

/* The largest jwt_max_bytes accepted: tokens are decoded on the stack. */
#define FL_JWT_MAX_BYTES_LIMIT 8192

typedef struct fl_jwt fl_jwt_t;

typedef enum fl_jwt_status {
    FL_JWT_OK = 0,
    FL_JWT_MALFORMED, /* not three base64url segments of JSON objects, bad typ, crit, bad claim type
                       */
    FL_JWT_OVERSIZED, /* longer than jwt_max_bytes; nothing was decoded */
    FL_JWT_ALG,       /* alg missing, none, or not pinned */
    FL_JWT_SIGNATURE, /* the signature does not verify */
    FL_JWT_EXPIRED,   /* now > exp + leeway */
    FL_JWT_NOT_YET,   /* now + leeway < nbf */
    FL_JWT_NO_EXP,    /* exp missing or not an integer */
    FL_JWT_ISSUER,    /* iss missing or not the configured issuer */
    FL_JWT_AUDIENCE,  /* aud missing, or without the configured audience */
    FL_JWT_SUBJECT,   /* sub missing or not a user id */
    FL_JWT__COUNT
} fl_jwt_status_t;

/*
 * Reads the keys the pinned algorithms need and checks the policy. cfg is
 * borrowed for the call only (strings are copied). On failure returns NULL
 * and writes a message to errstr naming the setting or the key file.
 * Caller frees the result with fl_jwt_free().
 */
fl_jwt_t *fl_jwt_new(const fl_api_cfg_t *cfg, char *errstr, size_t errstr_size);

/*
 * Checks token (len bytes, no "Bearer " prefix, need not be NUL-terminated)
 * at time now_s (Unix seconds). On FL_JWT_OK sets *viewer_id to the `sub`
 * user id and *exp_s (may be NULL) to `exp`; on any other status both are
 * set to 0. Order: size, shape and alphabet, header, signature, then
 * claims: no claim is parsed before the signature verifies.
 */
fl_jwt_status_t fl_jwt_verify(const fl_jwt_t *j, const char *token, size_t len, int64_t now_s,
                              int64_t *viewer_id, int64_t *exp_s);

/* A short message for a 401 body; never holds token content. Static. */
const char *fl_jwt_status_str(fl_jwt_status_t status);

/*
 * Mints a token for user_id (> 0) valid from now_s for ttl_s (> 0)
 * seconds: header {"alg","typ":"JWT"}, claims sub (a string), iat, exp,
 * and iss and aud when configured. alg is FL_JWT_ALG_HS256 (signed with the
 * secret), FL_JWT_ALG_EDDSA (signed with the private key) or 0 for the
 * first pinned algorithm that has a signing key. Returns a NUL-terminated
 * string the caller frees with free(), or NULL with a message in errstr.
 */
char *fl_jwt_mint(const fl_jwt_t *j, unsigned alg, int64_t user_id, int64_t now_s, int64_t ttl_s,
                  char *errstr, size_t errstr_size);

/* NULL is fine. */
void fl_jwt_free(fl_jwt_t *j);

#endif
