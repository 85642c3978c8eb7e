/*
 * fl_api_web.c - what the live page (connectors/api/web/) needs from the
 * server: its three files, and the development login that gives it a
 * token.
 *
 * Files: read once, when the server starts, from one folder (the installed
 * share/feedline/api/web, or --web / $FEEDLINE_WEB; see main.c) and kept in
 * memory with an ETag, a hash of their bytes; no request touches the disk.
 * They go out as they are, with `Cache-Control: no-cache` (a browser asks
 * again each time and gets a bodiless 304 while its copy is current), so a
 * new build of the page is seen at the next load. A file missing at start
 * is a 404 until the next start, with a warning in the log.
 *
 * Development login: POST /dev/login with {"user_id":"N"} answers
 * {"token","token_type","expires_in","user_id"}, a token for user N minted
 * as `feedline token` mints it (fl_jwt_mint: the same key, issuer and
 * audience), valid FL_API_DEV_TOKEN_TTL_S. It lets whoever reaches the API
 * read as anyone, so it answers only while api.dev_login is on (the
 * default is off); otherwise the path is a 404 like any unknown one. The
 * body must be JSON (Content-Type application/json): a cross-site form
 * cannot send that without a CORS preflight, which the API never grants.
 */
#include "fl_api_int.h"
#include "fl_log.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* How long a development token lasts; the page logs in again after. */
#define FL_API_DEV_TOKEN_TTL_S 3600

static const struct web_file {
    const char *path; /* the URL path */
    const char *name; /* the file in the folder */
    const char *type; /* its Content-Type */
} files[FL_API_WEB_FILES] = {
    {"/", "index.html", "text/html; charset=utf-8"},
    {"/app.css", "app.css", "text/css; charset=utf-8"},
    {"/app.js", "app.js", "text/javascript; charset=utf-8"},
};

struct fl_api_web {
    struct {
        char *body; /* NULL: missing at start */
        size_t len;
        char etag[20]; /* "16 hex digits", quotes included */
    } f[FL_API_WEB_FILES];
};

int fl__api_web_file(const char *path)
{
    for (int i = 0; i < FL_API_WEB_FILES; i++)
        if (!strcmp(path, files[i].path))
            return i;
    return -1;
}

fl_api_web_t *fl__api_web_new(const char *dir)
{
    fl_api_web_t *w = calloc(1, sizeof(*w));
    unsigned char sha[SHA256_DIGEST_LENGTH];
    char path[4096];

    if (!w)
        return NULL;
    for (int i = 0; dir && i < FL_API_WEB_FILES; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
        if (!(w->f[i].body = fl__api_slurp(path, &w->f[i].len))) {
            fl_log_warn("api", "cannot read %s: %s answers 404", path, files[i].path);
            continue;
        }
        SHA256((const unsigned char *)w->f[i].body, w->f[i].len, sha);
        snprintf(w->f[i].etag, sizeof(w->f[i].etag), "\"%02x%02x%02x%02x%02x%02x%02x%02x\"", sha[0],
                 sha[1], sha[2], sha[3], sha[4], sha[5], sha[6], sha[7]);
    }
    if (!dir)
        fl_log_warn("api", "no folder of the live page: / answers 404");
    return w;
}

void fl__api_web_free(fl_api_web_t *w)
{
    if (!w)
        return;
    for (int i = 0; i < FL_API_WEB_FILES; i++)
        free(w->f[i].body);
    free(w);
}

void fl__api_web_serve(const fl_api_web_t *w, int i, struct MHD_Connection *conn, fl_api_resp_t *r)
{
    const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");

    if (!w || i < 0 || i >= FL_API_WEB_FILES || !w->f[i].body) {
        fl__api_error(r, 404, "not_found", "the live page is not installed");
        return;
    }
    free(r->body);
    r->etag = w->f[i].etag;
    r->cache_control = "no-cache";
    /* the tags are fixed-width hex: one found inside the list (a weak
     * W/"..." one too, as If-None-Match compares weakly) is that tag */
    if (inm && (!strcmp(inm, "*") || strstr(inm, w->f[i].etag))) {
        r->body = NULL;
        r->len = 0;
        r->code = 304;
        r->borrowed = true;
        return;
    }
    r->body = w->f[i].body;
    r->len = w->f[i].len;
    r->code = 200;
    r->content_type = files[i].type;
    r->borrowed = true;
}

/* ---- the development login ---- */

/* The user id of a {"user_id": "N"} body (a decimal string, as the API
 * writes ids, or a JSON integer), or 0 with a 400 in r. */
static int64_t login_user(const char *body, size_t len, fl_api_resp_t *r)
{
    json_error_t jerr;
    json_t *j = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr), *v;
    const char *key;
    int64_t id = 0;

    if (!json_is_object(j)) {
        fl__api_error(r, 400, "bad_request", "the body must be a JSON object {\"user_id\": \"N\"}");
        goto out;
    }
    json_object_foreach(j, key, v)
    {
        if (strcmp(key, "user_id")) {
            fl__api_error(r, 400, "bad_request", "unknown member '%.40s' (only user_id)", key);
            goto out;
        }
    }
    v = json_object_get(j, "user_id");
    if (json_is_integer(v) && json_integer_value(v) > 0)
        id = (int64_t)json_integer_value(v);
    else if (!json_is_string(v) || !fl_id_parse(json_string_value(v), &id) || id <= 0)
        id = 0;
    if (!id)
        fl__api_error(r, 400, "bad_request", "user_id must be a user id (\"42\" or 42)");
out:
    json_decref(j);
    return id;
}

char *fl__api_dev_token(const fl_api_t *api, int64_t user, char *errstr, size_t errstr_size)
{
    return fl_jwt_mint(api->jwt, 0, user, (int64_t)time(NULL), FL_API_DEV_TOKEN_TTL_S, errstr,
                       errstr_size);
}

void fl__api_dev_login(fl_api_t *api, struct MHD_Connection *conn, const char *method,
                       const char *body, size_t len, fl_api_resp_t *r)
{
    const char *ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    char err[256], *tok;
    int64_t user;

    if (!api->cfg->dev_login) {
        fl__api_error(r, 404, "not_found", "the development login is off (api.dev_login)");
        return;
    }
    if (strcmp(method, "POST")) {
        fl__api_error(r, 405, "method_not_allowed", "the development login answers POST only");
        return;
    }
    if (!ctype || strncasecmp(ctype, "application/json", 16) ||
        (ctype[16] && ctype[16] != ';' && ctype[16] != ' ')) {
        fl__api_error(r, 400, "bad_request", "the body must be sent as application/json");
        return;
    }
    if (!(user = login_user(body, len, r)))
        return;
    if (!(tok = fl__api_dev_token(api, user, err, sizeof(err)))) {
        fl__api_error(r, 500, "internal", "cannot mint a token: %s", err);
        return;
    }
    fl_log_info("api", "development login: a token for user %lld", (long long)user);
    fl__api_json(r,
                 json_pack("{s:s,s:s,s:i,s:o}", "token", tok, "token_type", "Bearer", "expires_in",
                           FL_API_DEV_TOKEN_TTL_S, "user_id", fl__api_id_json(user)));
    free(tok);
}
