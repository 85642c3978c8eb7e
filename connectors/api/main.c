/*
 * main.c - feedline-api: loads the topology, serves the read API on
 * endpoints.api until SIGINT or SIGTERM.
 */
#include "fl_api.h"
#include "fl_log.h"
#include "fl_topology.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: feedline-api [options]\n\n"
            "Serves the read API (feeds, posts, users, notifications) from Redis, and from\n"
            "PostgreSQL while Redis is down, on the topology's endpoints.api\n"
            "($FEEDLINE_API overrides) until SIGINT/SIGTERM.\n\n"
            "Options:\n"
            "  --topology FILE   topology file (default $FEEDLINE_TOPOLOGY or "
            "topology/feedline.yaml)\n"
            "  --openapi FILE    the document served at /openapi.json\n"
            "                    (default $FEEDLINE_OPENAPI or connectors/api/openapi.json)\n");
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"topology", required_argument, NULL, 't'},
                                       {"openapi", required_argument, NULL, 'o'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *topo_path = fl_topology_default_path();
    const char *openapi =
        getenv("FEEDLINE_OPENAPI") ? getenv("FEEDLINE_OPENAPI") : "connectors/api/openapi.json";
    char err[512];
    fl_topology_t *t;
    fl_api_t *api;
    sigset_t set;
    int c, sig;

    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 't':
            topo_path = optarg;
            break;
        case 'o':
            openapi = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    fl_log_init();
    /* every thread inherits the mask: only sigwait below sees the signals */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (!(t = fl_topology_load(topo_path, err, sizeof(err)))) {
        fprintf(stderr, "feedline-api: %s\n", err);
        return 1;
    }
    if (!(api = fl_api_new(t, openapi, err, sizeof(err)))) {
        fl_log_error("api", "%s", err);
        fl_topology_free(t);
        return 1;
    }
    sigwait(&set, &sig);
    fl_log_info("api", "stopping (signal %d)", sig);
    fl_api_free(api);
    fl_topology_free(t);
    return 0;
}
