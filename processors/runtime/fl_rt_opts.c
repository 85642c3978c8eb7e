/*
 * fl_rt_opts.c - the command line of the processor and sink binaries.
 */
#include "fl_codec.h"
#include "fl_rt_int.h"
#include "fl_topology.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(const fl_processor_def_t *def, bool sink, FILE *out)
{
    if (sink) {
        fprintf(out,
                "usage: feedline-%s-sink [options]\n\n"
                "Runs the %s sink: joins the consumer group of the topology's sink entry,\n"
                "resumes every assigned partition from the offsets kept in the destination and\n"
                "writes batches there with their offsets until SIGINT/SIGTERM.\n\n"
                "Options:\n"
                "  --topology FILE   topology file   (default $FEEDLINE_TOPOLOGY or "
                "topology/feedline.yaml)\n"
                "  --schemas DIR     schema folder   (default $FEEDLINE_SCHEMAS or schemas)\n"
                "  --instance ID     instance id, unique per running instance (default 0)\n"
                "  --metrics H:P     serve /metrics and /healthz on H:P (default off)\n"
                "  --input-until T:P:O,...  read input topic T's partition P up to offset O\n"
                "                    (excluded) and no further (feedline replay --until)\n"
                "  --rebuild         a rebuild from the topics (feedline replay): batches of\n"
                "                    the topology's replay_batch_max_records / _ms\n",
                def->name, def->name);
        return;
    }
    fprintf(out,
            "usage: feedline-%s [options]\n\n"
            "Runs the %s processor: joins consumer group of the topology's processor entry,\n"
            "restores its stores from their changelogs and processes until SIGINT/SIGTERM.\n\n"
            "Options:\n"
            "  --topology FILE   topology file   (default $FEEDLINE_TOPOLOGY or "
            "topology/feedline.yaml)\n"
            "  --schemas DIR     schema folder   (default $FEEDLINE_SCHEMAS or schemas)\n"
            "  --state-dir DIR   local stores    (default $FEEDLINE_STATE_DIR or .state)\n"
            "  --instance ID     instance id, unique per running instance; names the\n"
            "                    transactional producer and the store folder (default 0)\n"
            "  --metrics H:P     serve /metrics and /healthz on H:P (default off)\n"
            "  --max-idle-ms N   how long a task with records of one input waits for another\n"
            "                    input that is caught up, before merging past it (default 0:\n"
            "                    only inputs known to hold records are waited for; -1: never\n"
            "                    wait, not even for those)\n"
            "  --input-until T:P:O,...  read input topic T's partition P up to offset O\n"
            "                    (excluded) and no further: a point-in-time rebuild\n"
            "                    (feedline replay --until)\n"
            "  --rebuild         a rebuild from the topics (feedline replay): batches of\n"
            "                    the topology's replay_batch_max_records / _ms\n",
            def->name, def->name);
}

int fl__rt_parse_opts(const fl_processor_def_t *def, bool sink, int argc, char **argv, rt_opts_t *o)
{
    static const struct option lo[] = {{"topology", required_argument, NULL, 't'},
                                       {"schemas", required_argument, NULL, 's'},
                                       {"state-dir", required_argument, NULL, 'd'},
                                       {"instance", required_argument, NULL, 'i'},
                                       {"metrics", required_argument, NULL, 'm'},
                                       {"max-idle-ms", required_argument, NULL, 'w'},
                                       {"input-until", required_argument, NULL, 'u'},
                                       {"rebuild", no_argument, NULL, 'r'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    int c;
    o->topology_path = fl_topology_default_path();
    o->schemas_dir = fl_codec_default_dir();
    o->state_dir = getenv("FEEDLINE_STATE_DIR") ? getenv("FEEDLINE_STATE_DIR") : ".state";
    o->instance = getenv("FEEDLINE_INSTANCE") ? getenv("FEEDLINE_INSTANCE") : "0";
    o->metrics_addr = NULL;
    o->max_idle_ms = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 't':
            o->topology_path = optarg;
            break;
        case 's':
            o->schemas_dir = optarg;
            break;
        case 'd':
            if (sink)
                goto bad;
            o->state_dir = optarg;
            break;
        case 'i':
            o->instance = optarg;
            break;
        case 'm':
            o->metrics_addr = optarg;
            break;
        case 'w':
            if (sink)
                goto bad;
            o->max_idle_ms = atoi(optarg);
            if (o->max_idle_ms < -1) {
                fprintf(stderr, "--max-idle-ms wants -1 or more\n");
                return 2;
            }
            break;
        case 'u':
            o->input_until = optarg;
            break;
        case 'r':
            o->rebuild = true;
            break;
        case 'h':
            usage(def, sink, stdout);
            return 1;
        default:
            goto bad;
        }
    }
    if (optind == argc)
        return 0;
bad:
    usage(def, sink, stderr);
    return 2;
}
