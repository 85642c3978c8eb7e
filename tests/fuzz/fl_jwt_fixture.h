/*
 * fl_jwt_fixture.h - the fixed verifier that the JWT fuzz corpus is made
 * for, shared by the fuzz target (tests/fuzz/fuzz_jwt.c), the unit test
 * that replays the corpus (tests/unit/test_jwt.c) and the corpus writer
 * (tests/fuzz/make_jwt_corpus.py, which reads the values below from this
 * file, so they are written once).
 *
 * The Ed25519 key is the first test vector of RFC 8032 (7.1): public, and
 * fixed so that the corpus's EdDSA tokens verify on every run. No key file
 * is checked in; fl_jwt_fixture_new() writes the PEM files to a temporary
 * folder and removes them once the verifier has read them.
 */
#ifndef FL_JWT_FIXTURE_H
#define FL_JWT_FIXTURE_H

#include "fl_jwt.h"

#include <openssl/evp.h>
#include <stdbool.h>

#define FL_JWT_FIXTURE_SECRET    "feedline-jwt-corpus-secret-0123456789"
#define FL_JWT_FIXTURE_ED25519   "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define FL_JWT_FIXTURE_ISSUER    "feedline-corpus"
#define FL_JWT_FIXTURE_AUDIENCE  "feedline-api"
#define FL_JWT_FIXTURE_NOW       1767225600 /* 2026-01-01T00:00:00Z */
#define FL_JWT_FIXTURE_LEEWAY    30
#define FL_JWT_FIXTURE_MAX_BYTES 4096

/*
 * Writes key's public half to pub_path (SubjectPublicKeyInfo PEM) and,
 * when priv_path is not NULL, the private key (unencrypted PKCS#8 PEM).
 */
bool fl_jwt_fixture_write_pem(EVP_PKEY *key, const char *pub_path, const char *priv_path);

/*
 * The corpus's verifier: HS256 and EdDSA pinned with the fixed secret and
 * key, the fixed issuer, audience, leeway and size limit. NULL with a
 * message in errstr on failure. Caller frees with fl_jwt_free().
 */
fl_jwt_t *fl_jwt_fixture_new(char *errstr, size_t errstr_size);

#endif
