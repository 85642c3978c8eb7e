/*
 * fl_mock_kafka.c - librdkafka's mock cluster as a process of its own, for
 * the chaos suite: feedline's programs connect to it like to any broker
 * (its bootstrap list is printed on the first line of stdout), and the
 * test drives faults into it through commands on stdin, one per line,
 * each answered by "ok" or "error: ..." on stdout:
 *
 *   topic NAME PARTITIONS            create a topic (the mock has no
 *                                    CreateTopics; replication 1)
 *   errors APIKEY ERR COUNT          the next COUNT requests of APIKEY
 *                                    (numeric, e.g. 26 EndTxn) fail with
 *                                    ERR (numeric, e.g. 15)
 *   broker-errors B APIKEY ERR RTT COUNT  the same on broker B only, each
 *                                    answered after RTT ms
 *   clear APIKEY                     forgets the errors pushed for APIKEY
 *   pending B APIKEY                 "ok N": N of the errors pushed on
 *                                    broker B for APIKEY are still unused
 *   down B / up B                    broker B's listener closes / opens
 *   rtt B MS                         broker B answers every request MS
 *                                    ms late (0: no delay)
 *   leader TOPIC PARTITION B         moves a partition's leader
 *   coordinator txn|group KEY B      moves a coordinator
 *   quit                             (or end of stdin) stops the cluster
 *
 * The mock is not a broker: it keeps aborted records visible to
 * read_committed readers, stores no transactional offset commits and has
 * no compaction (tests/chaos/test_mock_faults.py says what that leaves to
 * check). Everything runs on librdkafka's own threads; this file only
 * parses commands.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int answer(rd_kafka_resp_err_t err)
{
    if (err)
        printf("error: %s\n", rd_kafka_err2str(err));
    else
        printf("ok\n");
    fflush(stdout);
    return err ? 1 : 0;
}

static int push_errors(rd_kafka_mock_cluster_t *mc, int broker, int apikey, int err, int rtt,
                       int count)
{
    if (count <= 0 || count > 100000)
        return answer(RD_KAFKA_RESP_ERR__INVALID_ARG);
    if (broker < 0) {
        rd_kafka_resp_err_t *errs = malloc(sizeof(*errs) * (size_t)count);
        if (!errs)
            return answer(RD_KAFKA_RESP_ERR__CRIT_SYS_RESOURCE);
        for (int i = 0; i < count; i++)
            errs[i] = (rd_kafka_resp_err_t)err;
        rd_kafka_mock_push_request_errors_array(mc, (int16_t)apikey, (size_t)count, errs);
        free(errs);
        return answer(RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    /* The per-broker call takes (error, rtt) pairs as varargs: push them
     * one at a time. */
    for (int i = 0; i < count && !e; i++)
        e = rd_kafka_mock_broker_push_request_error_rtts(mc, broker, (int16_t)apikey, 1,
                                                         (rd_kafka_resp_err_t)err, rtt);
    return answer(e);
}

/* One command line; returns 1 on "quit". */
static int command(rd_kafka_mock_cluster_t *mc, char *line)
{
    char name[256], what[16];
    int a, b, c, d, e;
    if (sscanf(line, "topic %255s %d", name, &a) == 2)
        answer(rd_kafka_mock_topic_create(mc, name, a, 1));
    else if (sscanf(line, "broker-errors %d %d %d %d %d", &a, &b, &c, &d, &e) == 5)
        push_errors(mc, a, b, c, d, e);
    else if (sscanf(line, "errors %d %d %d", &a, &b, &c) == 3)
        push_errors(mc, -1, a, b, 0, c);
    else if (sscanf(line, "pending %d %d", &a, &b) == 2) {
        size_t n = 0;
        rd_kafka_resp_err_t err = rd_kafka_mock_broker_error_stack_cnt(mc, a, (int16_t)b, &n);
        if (err)
            answer(err);
        else {
            printf("ok %zu\n", n);
            fflush(stdout);
        }
    } else if (sscanf(line, "clear %d", &a) == 1) {
        rd_kafka_mock_clear_request_errors(mc, (int16_t)a);
        answer(RD_KAFKA_RESP_ERR_NO_ERROR);
    } else if (sscanf(line, "down %d", &a) == 1)
        answer(rd_kafka_mock_broker_set_down(mc, a));
    else if (sscanf(line, "up %d", &a) == 1)
        answer(rd_kafka_mock_broker_set_up(mc, a));
    else if (sscanf(line, "rtt %d %d", &a, &b) == 2)
        answer(rd_kafka_mock_broker_set_rtt(mc, a, b));
    else if (sscanf(line, "leader %255s %d %d", name, &a, &b) == 3)
        answer(rd_kafka_mock_partition_set_leader(mc, name, a, b));
    else if (sscanf(line, "coordinator %15s %255s %d", what, name, &a) == 3)
        answer(rd_kafka_mock_coordinator_set(mc, what, name, a));
    else if (strncmp(line, "quit", 4) == 0)
        return 1;
    else
        answer(RD_KAFKA_RESP_ERR__INVALID_ARG);
    return 0;
}

int main(int argc, char **argv)
{
    int brokers = argc > 1 ? atoi(argv[1]) : 3;
    char errstr[512];
    if (brokers < 1 || brokers > 16) {
        fprintf(stderr, "usage: %s [BROKERS (1..16, default 3)]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* A handle only to host the cluster; it never connects anywhere. */
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "%s\n", errstr);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "rd_kafka_new: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        fprintf(stderr, "rd_kafka_mock_cluster_new failed\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    char line[1024];
    while (fgets(line, sizeof(line), stdin))
        if (command(mc, line))
            break;
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
