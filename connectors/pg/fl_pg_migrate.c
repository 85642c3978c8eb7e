/*
 * fl_pg_migrate.c - versioned schema migrations of the PostgreSQL sink,
 * and the translation of libpq errors (fl_pg_int.h).
 *
 * Migrations are plain SQL files numbered 0001_..., 0002_..., never
 * edited once released: a change to the schema is a new file. Each runs
 * in a transaction that first takes pg_advisory_xact_lock(FL_PG_MIGRATE_LOCK)
 * and then re-reads schema_migrations, so two sinks (or two instances of
 * one) that open at once apply every migration exactly once: the second
 * waits for the first's commit and then finds the version recorded. A
 * database that lists versions this binary does not know is left alone.
 */
#include "fl_pg_int.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "feedmig" in ASCII: the advisory lock key of schema migrations. */
#define FL_PG_MIGRATE_LOCK "28821933775481191"

fl_err_t fl__pg_check(PGconn *c, const PGresult *res, ExecStatusType want, const char *what,
                      char *errstr, size_t errstr_size)
{
    if (res && PQresultStatus(res) == want)
        return FL_OK;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg =
        res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res) : PQerrorMessage(c);
    snprintf(errstr, errstr_size, "%s: %.*s", what, (int)strcspn(msg, "\n"), msg);
    if (PQstatus(c) != CONNECTION_OK || !state)
        return FL_ERR_UNAVAILABLE;
    if (!strncmp(state, "08", 2) || !strncmp(state, "53", 2) || !strncmp(state, "57P", 3))
        return FL_ERR_UNAVAILABLE;
    if (!strcmp(state, "57014") || !strcmp(state, "40001") || !strcmp(state, "40P01") ||
        !strcmp(state, "55P03"))
        return FL_ERR_TIMEOUT;
    return FL_ERR_IO;
}

fl_err_t fl__pg_exec(PGconn *c, const char *sql, char *errstr, size_t errstr_size)
{
    PGresult *res = PQexec(c, sql);
    fl_err_t err = fl__pg_check(c, res, PGRES_COMMAND_OK, sql, errstr, errstr_size);
    PQclear(res);
    return err;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return !stat(path, &st) && S_ISDIR(st.st_mode);
}

const char *fl__pg_migrations_dir(char *buf, size_t size)
{
    const char *env = getenv("FEEDLINE_PG_MIGRATIONS");
    char exe[PATH_MAX];
    ssize_t n;

    if (env && *env) {
        snprintf(buf, size, "%s", env);
        return buf;
    }
    if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(buf, size, "%s/%s", exe, FL_PG_MIGRATIONS_REL);
            if (is_dir(buf))
                return buf;
        }
    }
    snprintf(buf, size, "%s", FL_PG_MIGRATIONS_SRC);
    return buf;
}

/* NNNN_name.sql */
static int migration_version(const char *name)
{
    size_t len = strlen(name);
    for (int i = 0; i < 4; i++)
        if (name[i] < '0' || name[i] > '9')
            return -1;
    if (name[4] != '_' || len < 10 || strcmp(name + len - 4, ".sql"))
        return -1;
    return atoi(name);
}

static int migration_filter(const struct dirent *d)
{
    return migration_version(d->d_name) > 0;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long len;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
        goto out;
    if (!(buf = malloc((size_t)len + 1)))
        goto out;
    if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[len] = '\0';
out:
    fclose(f);
    return buf;
}

/* One migration in one transaction, unless schema_migrations lists it. */
static fl_err_t apply_one(PGconn *c, const char *dir, const char *file, int version, char *errstr,
                          size_t errstr_size)
{
    char path[PATH_MAX], vbuf[16], name[256];
    const char *params[2] = {vbuf, name};
    PGresult *res = NULL;
    char *sql = NULL;
    fl_err_t err;

    snprintf(vbuf, sizeof(vbuf), "%d", version);
    snprintf(name, sizeof(name), "%.*s", (int)(strlen(file) - 9), file + 5);
    if ((err = fl__pg_exec(c, "BEGIN", errstr, errstr_size)))
        return err;
    if ((err = fl__pg_exec(c,
                           "SELECT pg_advisory_xact_lock(" FL_PG_MIGRATE_LOCK ");"
                           "CREATE TABLE IF NOT EXISTS schema_migrations ("
                           " version int PRIMARY KEY, name text NOT NULL,"
                           " applied_at timestamptz NOT NULL)",
                           errstr, errstr_size)))
        goto out;
    res = PQexecParams(c, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, NULL, params,
                       NULL, NULL, 0);
    if ((err = fl__pg_check(c, res, PGRES_TUPLES_OK, "schema_migrations", errstr, errstr_size)))
        goto out;
    if (PQntuples(res) == 0) {
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        if (!(sql = read_file(path))) {
            snprintf(errstr, errstr_size, "cannot read migration %s", path);
            err = FL_ERR_CONFIG;
            goto out;
        }
        if ((err = fl__pg_exec(c, sql, errstr, errstr_size))) {
            /* name the file: the server's message alone does not */
            char msg[512];
            snprintf(msg, sizeof(msg), "migration %s: %s", file, errstr);
            snprintf(errstr, errstr_size, "%s", msg);
            goto out;
        }
        PQclear(res);
        res = PQexecParams(c,
                           "INSERT INTO schema_migrations (version, name, applied_at)"
                           " VALUES ($1, $2, now())",
                           2, NULL, params, NULL, NULL, 0);
        if ((err =
                 fl__pg_check(c, res, PGRES_COMMAND_OK, "schema_migrations", errstr, errstr_size)))
            goto out;
    }
    err = fl__pg_exec(c, "COMMIT", errstr, errstr_size);
out:
    if (err && PQstatus(c) == CONNECTION_OK) {
        PGresult *rb = PQexec(c, "ROLLBACK");
        PQclear(rb);
    }
    PQclear(res);
    free(sql);
    return err;
}

fl_err_t fl__pg_migrate(PGconn *c, const char *dir, char *errstr, size_t errstr_size)
{
    struct dirent **files = NULL;
    fl_err_t err = FL_OK;
    int n = scandir(dir, &files, migration_filter, alphasort);

    if (n <= 0) {
        snprintf(errstr, errstr_size, "no migrations in %s (set FEEDLINE_PG_MIGRATIONS)", dir);
        err = FL_ERR_CONFIG;
        goto out;
    }
    for (int i = 0; i < n && !err; i++) {
        int v = migration_version(files[i]->d_name);
        if (i > 0 && v == migration_version(files[i - 1]->d_name)) {
            snprintf(errstr, errstr_size, "migrations %s and %s share version %d",
                     files[i - 1]->d_name, files[i]->d_name, v);
            err = FL_ERR_CONFIG;
            break;
        }
        err = apply_one(c, dir, files[i]->d_name, v, errstr, errstr_size);
    }
out:
    for (int i = 0; i < n; i++)
        free(files[i]);
    free(files);
    return err;
}
