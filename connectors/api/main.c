/*
 * main.c - feedline-api: loads the topology, serves the read API (and the
 * live page) on endpoints.api until SIGINT or SIGTERM.
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

/* What to serve when neither an option nor a variable names it: the
 * installed copy (rel, from the binary's folder), else this source tree's
 * (src), so a build serves it from any working directory. */
static const char *installed_or_src(const char *rel, const char *src, char *buf, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    char *slash;

    if (n > 0) {
        buf[n] = '\0';
        if ((slash = strrchr(buf, '/'))) {
            size_t dir = (size_t)(slash + 1 - buf);
            int len = snprintf(buf + dir, size - dir, "%s", rel);
            if (len > 0 && (size_t)len < size - dir && !access(buf, R_OK))
                return buf;
        }
    }
    return src;
}

/* $var when set and not empty, else the installed or source copy. */
static const char *env_or_default(const char *var, const char *rel, const char *src, char *buf,
                                  size_t size)
{
    const char *v = getenv(var);
    return v && *v ? v : installed_or_src(rel, src, buf, size);
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
            "                    %s)\n"
            "  --web DIR         the live page's folder, served at / (default\n"
            "                    $FEEDLINE_WEB, else the installed one, else\n"
            "                    %s)\n",
            FL_API_OPENAPI_SRC, FL_API_WEB_SRC);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"topology", required_argument, NULL, 't'},
                                       {"openapi", required_argument, NULL, 'o'},
                                       {"web", required_argument, NULL, 'w'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *topo_path = fl_topology_default_path();
    char exe[PATH_MAX], exe_web[PATH_MAX];
    const char *openapi = env_or_default("FEEDLINE_OPENAPI", FL_API_OPENAPI_REL, FL_API_OPENAPI_SRC,
                                         exe, sizeof(exe));
    const char *web =
        env_or_default("FEEDLINE_WEB", FL_API_WEB_REL, FL_API_WEB_SRC, exe_web, sizeof(exe_web));
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
        case 'w':
            web = optarg;
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
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (!(t = fl_topology_load(topo_path, err, sizeof(err)))) {
        fprintf(stderr, "feedline-api: %s\n", err);
        return 1;
    }
    if (!(api = fl_api_new(t, openapi, web, err, sizeof(err)))) {
        fl_log_error("api", "%s", err);
        fl_topology_free(t);
        return 1;
    }
    /* SIGHUP: the topology file is read again for the health checks (a
     * generation switch renames the sinks' input topics); every topology
     * loaded stays until exit, as the health thread may still read one */
    fl_topology_t *reloaded[64];
    int n_reloaded = 0;
    for (;;) {
        sigwait(&set, &sig);
        if (sig != SIGHUP)
            break;
        fl_topology_t *t2 = n_reloaded < 64 ? fl_topology_load(topo_path, err, sizeof(err)) : NULL;
        if (!t2) {
            fl_log_error("api", "SIGHUP: %s", n_reloaded < 64 ? err : "reloaded 64 times already");
            continue;
        }
        reloaded[n_reloaded++] = t2;
        fl_api_reload(api, t2);
        fl_log_info("api", "SIGHUP: %s read again", topo_path);
    }
    fl_log_info("api", "stopping (signal %d)", sig);
    fl_api_free(api);
    for (int i = 0; i < n_reloaded; i++)
        fl_topology_free(reloaded[i]);
    fl_topology_free(t);
    return 0;
}
