/*
 * fl_api.h - feedline-api, the read API server (README "Read API").
 *
 * fl_api_new() loads what the server needs from the topology (its `api:`
 * section, the endpoints), starts libmicrohttpd's worker threads on
 * endpoints.api and the health thread; requests are served until
 * fl_api_free(). The topology is borrowed and must outlive the server.
 */
#ifndef FL_API_H
#define FL_API_H

#include "fl_topology.h"

#include <stddef.h>

typedef struct fl_api fl_api_t;

/* NULL on failure, with the reason in errstr (a bad key file, a port in
 * use, api.dev_login on without a signing key). openapi_path: the document
 * served at /openapi.json; web_dir: the folder of the live page served at
 * / (index.html, app.css, app.js). Both are read here, once; either may be
 * NULL or missing, and then what it would serve is a 404. */
fl_api_t *fl_api_new(const fl_topology_t *t, const char *openapi_path, const char *web_dir,
                     char *errstr, size_t errstr_size);

/* From now on the health checks measure the sinks' lag over t's topics
 * (a generation switch, `feedline generations switch`); what is served
 * and how stays as it was. t is borrowed and must outlive the server. */
void fl_api_reload(fl_api_t *api, const fl_topology_t *t);

/* Stops serving and frees everything; NULL is fine. */
void fl_api_free(fl_api_t *api);

#endif
