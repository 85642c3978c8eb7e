/*
 * fl_celebrity.h - the records of feedline.celebrities: feedline-fanout
 * publishes an author's celebrity status on every change (key: the
 * author's decimal id; value: JSON {"author_id":A,"celebrity":true|false,
 * "followers":N,"occurred_at":MS}); the sinks read them.
 */
#ifndef FL_CELEBRITY_H
#define FL_CELEBRITY_H

#include "fl_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes a record's value; FL_ERR_INVALID with a message when it is not
 * one (author_id > 0 and a boolean celebrity are required). */
fl_err_t fl_celebrity_decode(const void *val, size_t len, int64_t *author, bool *celebrity,
                             char *errstr, size_t errstr_size);

#endif
