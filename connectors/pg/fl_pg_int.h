/*
 * fl_pg_int.h - what the PostgreSQL sink's files share: the translation
 * of libpq results into fl_err_t and the schema migrations. libpq types
 * stay inside connectors/pg.
 */
#ifndef FL_PG_INT_H
#define FL_PG_INT_H

#include "fl_err.h"

#include <libpq-fe.h>
#include <stddef.h>

/*
 * FL_OK when res has status want; otherwise the error, with the server's
 * message (prefixed by what) in errstr: FL_ERR_UNAVAILABLE when the
 * connection is gone or the server refuses work (SQLSTATE classes 08, 53,
 * 57P), FL_ERR_TIMEOUT for a cancelled statement, a deadlock or a
 * serialization failure, FL_ERR_IO for any other (a statement the schema
 * refuses). res is borrowed (may be NULL).
 */
fl_err_t fl__pg_check(PGconn *c, const PGresult *res, ExecStatusType want, const char *what,
                      char *errstr, size_t errstr_size);

/* Runs sql (a fixed statement without parameters) expecting
 * PGRES_COMMAND_OK; as fl__pg_check. */
fl_err_t fl__pg_exec(PGconn *c, const char *sql, char *errstr, size_t errstr_size);

/*
 * The migrations folder: $FEEDLINE_PG_MIGRATIONS, else the installed one
 * beside the binary (<prefix>/share/feedline/pg/migrations), else the
 * source tree's. Into buf; returns buf.
 */
const char *fl__pg_migrations_dir(char *buf, size_t size);

/*
 * Applies the migrations of dir (files NNNN_name.sql, in version order)
 * that schema_migrations does not list, each in its own transaction under
 * a transaction-scoped advisory lock, so that sinks starting together
 * apply each once. FL_ERR_CONFIG for a folder without migrations or with
 * two files of one version; else as fl__pg_check.
 */
fl_err_t fl__pg_migrate(PGconn *c, const char *dir, char *errstr, size_t errstr_size);

#endif
