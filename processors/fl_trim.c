/*
 * fl_trim.c - dropping the oldest entries of a capped key family (see
 * fl_trim.h). Runs once per insert into a full outbox or timeline, so it
 * touches only the entries it deletes.
 */
#include "fl_trim.h"

fl_err_t fl_trim_oldest(fl_store_t *s, fl_store_iter_t *it, bool newest_first, const fl_key_t *k,
                        int64_t drop, bool *keep, fl_trim_fn *on_drop, void *arg)
{
    fl_err_t err = FL_OK;

    *keep = true;
    while (drop > 0 && fl_store_iter_valid(it)) {
        size_t klen;
        const void *key = fl_store_iter_key(it, &klen);
        int c = fl_key_cmp(k->buf, k->len, key, klen);
        if (*keep && (newest_first ? c > 0 : c < 0)) {
            *keep = false; /* k is older than the oldest left: it goes first */
            drop--;
            continue;
        }
        if (on_drop && (err = on_drop(arg, key, klen)))
            break;
        if ((err = fl_store_delete(s, key, klen)))
            break;
        drop--;
        if (newest_first)
            fl_store_iter_prev(it);
        else
            fl_store_iter_next(it);
    }
    if (!err)
        err = fl_store_iter_status(it);
    if (!err && drop > 0)
        err = FL_ERR_CORRUPT; /* the count promised more entries than exist */
    return err;
}
