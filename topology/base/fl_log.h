/*
 * fl_log.h - JSON log lines on stderr, one object per line.
 *
 * Every line carries ts (RFC 3339, UTC, milliseconds), level, component
 * and msg; callers add their own fields as a preformatted JSON fragment.
 * The minimum level comes from FEEDLINE_LOG_LEVEL (debug|info|warn|error),
 * read once by fl_log_init(); the level is the one piece of process-wide
 * state here and is set before any thread starts.
 */
#ifndef FL_LOG_H
#define FL_LOG_H

typedef enum { FL_LOG_DEBUG, FL_LOG_INFO, FL_LOG_WARN, FL_LOG_ERROR } fl_log_level_t;

void fl_log_init(void);

/* Logs msg (printf-style) under component. The message text is JSON-escaped. */
void fl_log(fl_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define fl_log_debug(c, ...) fl_log(FL_LOG_DEBUG, c, __VA_ARGS__)
#define fl_log_info(c, ...)  fl_log(FL_LOG_INFO, c, __VA_ARGS__)
#define fl_log_warn(c, ...)  fl_log(FL_LOG_WARN, c, __VA_ARGS__)
#define fl_log_error(c, ...) fl_log(FL_LOG_ERROR, c, __VA_ARGS__)

#endif
