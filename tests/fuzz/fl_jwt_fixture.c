/*
 * fl_jwt_fixture.c - the fixed JWT verifier of the fuzz corpus (see
 * fl_jwt_fixture.h). Its key files live only for the duration of
 * fl_jwt_fixture_new(), in a fresh mkdtemp folder under $TMPDIR.
 */
#include "fl_jwt_fixture.h"

#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool fl_jwt_fixture_write_pem(EVP_PKEY *key, const char *pub_path, const char *priv_path)
{
    FILE *pub = fopen(pub_path, "w"), *priv = priv_path ? fopen(priv_path, "w") : NULL;
    bool ok = pub && (!priv_path || priv) && PEM_write_PUBKEY(pub, key) == 1 &&
              (!priv || PEM_write_PrivateKey(priv, key, NULL, NULL, 0, NULL, NULL) == 1);

    if (pub && fclose(pub))
        ok = false;
    if (priv && fclose(priv))
        ok = false;
    return ok;
}

static EVP_PKEY *fixture_key(void)
{
    const char *hex = FL_JWT_FIXTURE_ED25519;
    unsigned char seed[32];

    for (size_t i = 0; i < sizeof(seed); i++)
        sscanf(&hex[2 * i], "%2hhx", &seed[i]);
    return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
}

fl_jwt_t *fl_jwt_fixture_new(char *errstr, size_t errstr_size)
{
    const char *tmp = getenv("TMPDIR");
    char dir[4096], pub[4200], priv[4200];
    EVP_PKEY *key = fixture_key();
    fl_jwt_t *j = NULL;
    bool made = false;
    fl_api_cfg_t cfg = {
        .jwt_algorithms = FL_JWT_ALG_HS256 | FL_JWT_ALG_EDDSA,
        .jwt_secret = FL_JWT_FIXTURE_SECRET,
        .jwt_public_key_file = pub,
        .jwt_private_key_file = priv,
        .jwt_issuer = FL_JWT_FIXTURE_ISSUER,
        .jwt_audience = FL_JWT_FIXTURE_AUDIENCE,
        .jwt_leeway_s = FL_JWT_FIXTURE_LEEWAY,
        .jwt_max_bytes = FL_JWT_FIXTURE_MAX_BYTES,
    };

    snprintf(dir, sizeof(dir), "%s/fl-jwt-fixture-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!key || !(made = mkdtemp(dir))) {
        snprintf(errstr, errstr_size, "cannot make the fixture key or its folder %s", dir);
        goto out;
    }
    snprintf(pub, sizeof(pub), "%s/pub.pem", dir);
    snprintf(priv, sizeof(priv), "%s/priv.pem", dir);
    if (!fl_jwt_fixture_write_pem(key, pub, priv)) {
        snprintf(errstr, errstr_size, "cannot write the fixture keys to %s", dir);
        goto out;
    }
    j = fl_jwt_new(&cfg, errstr, errstr_size);
out:
    if (made) {
        unlink(pub);
        unlink(priv);
        rmdir(dir);
    }
    EVP_PKEY_free(key);
    return j;
}
