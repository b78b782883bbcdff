/*
 * kafka-mock: librdkafka's mock Kafka cluster as a stand-alone test service.
 *
 * Usage: kafka-mock [brokers]          (default 3 brokers, ids 1..N)
 *
 * Prints one line `BOOTSTRAP host:port,host:port,...` on stdout, then reads
 * commands on stdin, one per line, and answers each with `OK` or `ERR <msg>`:
 *
 *   topic <name> <partitions> <replication>   rd_kafka_mock_topic_create
 *   broker_down <id>                          rd_kafka_mock_broker_set_down
 *   broker_up <id>                            rd_kafka_mock_broker_set_up
 *   leader <topic> <partition> <broker>       rd_kafka_mock_partition_set_leader
 *   push_errors <apikey> <count> <err...>     rd_kafka_mock_push_request_errors
 *                                             (one err repeats count times;
 *                                             err = number or librdkafka name,
 *                                             e.g. NOT_LEADER_FOR_PARTITION,
 *                                             _TRANSPORT to drop the connection)
 *   clear_errors <apikey>                     rd_kafka_mock_clear_request_errors
 *   rtt <broker> <ms>                         rd_kafka_mock_broker_set_rtt
 *   ping                                      OK
 *   quit                                      exit (as does EOF on stdin)
 *
 * API: librdkafka src/rdkafka_mock.h. The mock has no CreateTopics API, hence
 * the `topic` command. librdkafka's own logs go to stderr.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rdkafka.h"
#include "rdkafka_mock.h"

#define MAX_ARGS 64

static rd_kafka_mock_cluster_t *mcluster;

/* Parses a base-10 integer in [min, max]; returns 0 on success. */
static int parse_long(const char *s, long min, long max, long *out) {
        char *end;
        errno  = 0;
        long v = strtol(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
                return -1;
        *out = v;
        return 0;
}

/* Error code by number or by name as rd_kafka_err2name() spells it. */
static int parse_err(const char *s, rd_kafka_resp_err_t *out) {
        long v;
        if (parse_long(s, INT_MIN, INT_MAX, &v) == 0) {
                *out = (rd_kafka_resp_err_t)v;
                return 0;
        }
        const struct rd_kafka_err_desc *descs;
        size_t cnt;
        rd_kafka_get_err_descs(&descs, &cnt);
        for (size_t i = 0; i < cnt; i++) {
                if (descs[i].name && strcmp(descs[i].name, s) == 0) {
                        *out = descs[i].code;
                        return 0;
                }
        }
        return -1;
}

static void reply(rd_kafka_resp_err_t err) {
        if (err)
                printf("ERR %s: %s\n", rd_kafka_err2name(err),
                       rd_kafka_err2str(err));
        else
                printf("OK\n");
}

#define NEED(n, usage)                                                         \
        do {                                                                   \
                if (argc != (n)) {                                             \
                        printf("ERR usage: %s\n", usage);                      \
                        return;                                                \
                }                                                              \
        } while (0)

#define NUM(var, s, min, max)                                                  \
        long var;                                                              \
        if (parse_long(s, min, max, &var) != 0) {                              \
                printf("ERR not a number in [%ld, %ld]: %s\n", (long)(min),    \
                       (long)(max), s);                                        \
                return;                                                        \
        }

static void run(int argc, char **argv) {
        const char *cmd = argv[0];

        if (!strcmp(cmd, "ping")) {
                printf("OK\n");

        } else if (!strcmp(cmd, "topic")) {
                NEED(4, "topic <name> <partitions> <replication>");
                NUM(partitions, argv[2], 1, 100000);
                NUM(replication, argv[3], 1, 1000);
                reply(rd_kafka_mock_topic_create(mcluster, argv[1],
                                                 (int)partitions,
                                                 (int)replication));

        } else if (!strcmp(cmd, "broker_down")) {
                NEED(2, "broker_down <id>");
                NUM(id, argv[1], -1, INT_MAX);
                reply(rd_kafka_mock_broker_set_down(mcluster, (int32_t)id));

        } else if (!strcmp(cmd, "broker_up")) {
                NEED(2, "broker_up <id>");
                NUM(id, argv[1], -1, INT_MAX);
                reply(rd_kafka_mock_broker_set_up(mcluster, (int32_t)id));

        } else if (!strcmp(cmd, "leader")) {
                NEED(4, "leader <topic> <partition> <broker>");
                NUM(partition, argv[2], 0, INT_MAX);
                NUM(broker, argv[3], -1, INT_MAX);
                reply(rd_kafka_mock_partition_set_leader(
                    mcluster, argv[1], (int32_t)partition, (int32_t)broker));

        } else if (!strcmp(cmd, "push_errors")) {
                if (argc < 4) {
                        printf("ERR usage: push_errors <apikey> <count> "
                               "<errcode...>\n");
                        return;
                }
                NUM(apikey, argv[1], 0, 32767);
                NUM(count, argv[2], 1, 100000);
                int ncodes = argc - 3;
                if (ncodes != 1 && ncodes != count) {
                        printf("ERR give one error code or exactly %ld\n",
                               count);
                        return;
                }
                rd_kafka_resp_err_t *errs = calloc((size_t)count, sizeof(*errs));
                if (!errs) {
                        printf("ERR out of memory\n");
                        return;
                }
                for (long i = 0; i < count; i++) {
                        const char *s = argv[3 + (ncodes == 1 ? 0 : i)];
                        if (parse_err(s, &errs[i]) != 0) {
                                printf("ERR unknown error code: %s\n", s);
                                free(errs);
                                return;
                        }
                }
                rd_kafka_mock_push_request_errors_array(
                    mcluster, (int16_t)apikey, (size_t)count, errs);
                free(errs);
                printf("OK\n");

        } else if (!strcmp(cmd, "clear_errors")) {
                NEED(2, "clear_errors <apikey>");
                NUM(apikey, argv[1], 0, 32767);
                rd_kafka_mock_clear_request_errors(mcluster, (int16_t)apikey);
                printf("OK\n");

        } else if (!strcmp(cmd, "rtt")) {
                NEED(3, "rtt <broker> <ms>");
                NUM(id, argv[1], -1, INT_MAX);
                NUM(ms, argv[2], 0, INT_MAX);
                reply(rd_kafka_mock_broker_set_rtt(mcluster, (int32_t)id,
                                                   (int)ms));

        } else {
                printf("ERR unknown command: %s\n", cmd);
        }
}

int main(int argc, char **argv) {
        long brokers = 3;
        char errstr[512];

        if (argc > 2 ||
            (argc == 2 && parse_long(argv[1], 1, 100, &brokers) != 0)) {
                fprintf(stderr, "usage: %s [brokers (1..100)]\n", argv[0]);
                return 2;
        }

        /* The mock cluster needs an rd_kafka_t for its bookkeeping only. */
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *rk =
            rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "kafka-mock: rd_kafka_new: %s\n", errstr);
                return 1;
        }

        mcluster = rd_kafka_mock_cluster_new(rk, (int)brokers);
        if (!mcluster) {
                fprintf(stderr, "kafka-mock: rd_kafka_mock_cluster_new failed\n");
                rd_kafka_destroy(rk);
                return 1;
        }

        printf("BOOTSTRAP %s\n", rd_kafka_mock_cluster_bootstraps(mcluster));
        fflush(stdout);

        char line[4096];
        while (fgets(line, sizeof(line), stdin)) {
                char *args[MAX_ARGS];
                int n      = 0;
                char *save = NULL;
                for (char *tok = strtok_r(line, " \t\r\n", &save);
                     tok && n < MAX_ARGS; tok = strtok_r(NULL, " \t\r\n", &save))
                        args[n++] = tok;
                if (n == 0)
                        continue; /* blank line: no answer */
                if (!strcmp(args[0], "quit")) {
                        printf("OK\n");
                        fflush(stdout);
                        break;
                }
                run(n, args);
                fflush(stdout);
        }

        rd_kafka_mock_cluster_destroy(mcluster);
        rd_kafka_destroy(rk);
        return 0;
}
