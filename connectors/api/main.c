/*
 * main.c - feedline-api: loads the topology, serves the read API on
 * endpoints.api until SIGINT or SIGTERM.
 */
#include "fl_api.h"
#include "fl_log.h"
#include "fl_topology.h"

#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The document to serve when neither --openapi nor $FEEDLINE_OPENAPI names
 * one: the installed copy beside the binary (FL_API_OPENAPI_REL from its
 * folder), else this source tree's, so a build serves it from any working
 * directory. */
static const char *default_openapi(char *buf, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    char *slash;

    if (n > 0) {
        buf[n] = '\0';
        if ((slash = strrchr(buf, '/'))) {
            size_t dir = (size_t)(slash + 1 - buf);
            int len = snprintf(buf + dir, size - dir, "%s", FL_API_OPENAPI_REL);
            if (len > 0 && (size_t)len < size - dir && !access(buf, R_OK))
                return buf;
        }
    }
    return FL_API_OPENAPI_SRC;
}

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
            "  --openapi FILE    the document served at /openapi.json (default\n"
            "                    $FEEDLINE_OPENAPI, else the installed one, else\n"
            "                    %s)\n",
            FL_API_OPENAPI_SRC);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"topology", required_argument, NULL, 't'},
                                       {"openapi", required_argument, NULL, 'o'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *topo_path = fl_topology_default_path();
    char exe[PATH_MAX];
    const char *openapi = getenv("FEEDLINE_OPENAPI") && *getenv("FEEDLINE_OPENAPI")
                              ? getenv("FEEDLINE_OPENAPI")
                              : default_openapi(exe, sizeof(exe));
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
