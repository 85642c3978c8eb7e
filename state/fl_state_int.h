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

/* Bytewise comparison with the shorter key first on a common prefix. */
int fl__key_cmp(const void *a, size_t alen, const void *b, size_t blen);

/* Formats into errstr when it is non-NULL and has room. */
void fl__errf(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
