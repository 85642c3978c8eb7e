/*
 * fl_celebrity.c - decoding feedline.celebrities records (fl_celebrity.h).
 */
#include "fl_celebrity.h"

#include <jansson.h>
#include <stdio.h>

fl_err_t fl_celebrity_decode(const void *val, size_t len, int64_t *author, bool *celebrity,
                             char *errstr, size_t errstr_size)
{
    json_error_t jerr;
    json_t *o = val ? json_loadb(val, len, 0, &jerr) : NULL;
    json_t *a = json_object_get(o, "author_id"), *c = json_object_get(o, "celebrity");
    fl_err_t err = FL_OK;
    if (!json_is_integer(a) || json_integer_value(a) <= 0 || !json_is_boolean(c)) {
        snprintf(errstr, errstr_size, "celebrity record: %s",
                 o     ? "needs author_id > 0 and a boolean celebrity"
                 : val ? jerr.text
                       : "no value");
        err = FL_ERR_INVALID;
    } else {
        *author = json_integer_value(a);
        *celebrity = json_is_true(c);
    }
    json_decref(o);
    return err;
}
