/*
 * fl_base.c - error strings and JSON log lines shared by every module.
 *
 * Logging formats into a stack buffer and writes each line with one
 * fwrite so that lines from several threads never interleave.
 */
#include "fl_err.h"
#include "fl_log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const fl_err_names[FL_ERR__COUNT] = {
    [FL_OK] = "ok",
    [FL_ERR_INVALID] = "invalid input",
    [FL_ERR_MAGIC] = "wrong magic byte",
    [FL_ERR_SCHEMA_ID] = "unknown schema id",
    [FL_ERR_TRUNCATED] = "truncated data",
    [FL_ERR_OVERSIZED] = "oversized data",
    [FL_ERR_SCHEMA] = "schema error",
    [FL_ERR_CONFIG] = "configuration error",
    [FL_ERR_NOMEM] = "out of memory",
    [FL_ERR_IO] = "i/o error",
    [FL_ERR_CORRUPT] = "corrupt state",
    [FL_ERR_FENCED] = "fenced by a newer owner",
    [FL_ERR_LOST] = "destination lost its data",
    [FL_ERR_UNAVAILABLE] = "dependency unavailable",
    [FL_ERR_TIMEOUT] = "timed out",
};

const char *fl_err_str(fl_err_t err)
{
    if ((int)err < 0 || err >= FL_ERR__COUNT || !fl_err_names[err])
        return "unknown error";
    return fl_err_names[err];
}

static fl_log_level_t fl_log_min = FL_LOG_INFO;

void fl_log_init(void)
{
    const char *lvl = getenv("FEEDLINE_LOG_LEVEL");
    if (!lvl)
        return;
    if (!strcasecmp(lvl, "debug"))
        fl_log_min = FL_LOG_DEBUG;
    else if (!strcasecmp(lvl, "warn"))
        fl_log_min = FL_LOG_WARN;
    else if (!strcasecmp(lvl, "error"))
        fl_log_min = FL_LOG_ERROR;
}

void fl_log(fl_log_level_t level, const char *component, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char msg[2048], ts[40], line[4096];
    struct timespec now;
    struct tm tm;
    va_list ap;

    if (level < fl_log_min)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t tl = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tl, sizeof(ts) - tl, ".%03ldZ", now.tv_nsec / 1000000L);

    json_t *obj = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "level", names[level], "component",
                            component, "msg", msg);
    char *s = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (s) {
        int n = snprintf(line, sizeof(line), "%s\n", s);
        if (n > 0)
            fwrite(line, 1, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1, stderr);
    }
    free(s);
    json_decref(obj);
}
