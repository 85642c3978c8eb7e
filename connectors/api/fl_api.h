/*
 * fl_api.h - feedline-api, the read API server (DESIGN "Read API").
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
 * use). openapi_path may be NULL (then /openapi.json is a 404). */
fl_api_t *fl_api_new(const fl_topology_t *t, const char *openapi_path, char *errstr,
                     size_t errstr_size);

/* Stops serving and frees everything; NULL is fine. */
void fl_api_free(fl_api_t *api);

#endif
