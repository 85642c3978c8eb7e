/*
 * fl_kafka_admin.h - creating the topology's topics.
 */
#ifndef FL_KAFKA_ADMIN_H
#define FL_KAFKA_ADMIN_H

#include "fl_kafka.h"
#include "fl_topology.h"

#include <stdio.h>

/*
 * Creates every topic of the topology that does not exist, with the
 * configuration of its kind (input and dlq: unlimited retention;
 * changelog: compacted; internal: 7 days). Existing topics are checked:
 * a partition count that differs from the topology is FL_ERR_CONFIG.
 * One line per topic goes to report (may be NULL).
 */
fl_err_t fl_kafka_create_topics(rd_kafka_t *rk, const fl_topology_t *t, FILE *report, char *errstr,
                                size_t errstr_size);

#endif
