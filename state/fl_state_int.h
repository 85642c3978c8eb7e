/*
 * fl_state_int.h - internals shared by the state/ sources; not installed.
 *
 * FL_STATE_CHECK is the release-build assertion for invariants whose
 * violation would corrupt a store (Redis' serverAssert): it logs the
 * failed condition as a JSON error line and aborts, in every build type.
 * Costly checks use FL_STATE_DCHECK, which compiles away under NDEBUG.
 */
#ifndef FL_STATE_INT_H
#define FL_STATE_INT_H

#include <stddef.h>
#include <stdint.h>

void fl__state_panic(const char *file, int line, const char *cond) __attribute__((noreturn));

#define FL_STATE_CHECK(cond)                                                                       \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fl__state_panic(__FILE__, __LINE__, #cond);                                            \
    } while (0)

#ifdef NDEBUG
#define FL_STATE_DCHECK(cond) ((void)0)
#else
#define FL_STATE_DCHECK(cond) FL_STATE_CHECK(cond)
#endif

/* A 64-bit hash of a key, for the hash indexes of the skiplist and the
 * read cache. Not for untrusted adversarial input (no seed). */
static inline uint64_t fl__key_hash(const void *key, size_t n)
{
    const unsigned char *k = key;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
    uint64_t w;
    while (n >= 8) {
        __builtin_memcpy(&w, k, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        k += 8;
        n -= 8;
    }
    w = 0;
    if (n)
        __builtin_memcpy(&w, k, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    return h;
}

/* Bytewise comparison with the shorter key first on a common prefix. */
int fl__key_cmp(const void *a, size_t alen, const void *b, size_t blen);

/* Formats into errstr when it is non-NULL and has room. */
void fl__errf(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
