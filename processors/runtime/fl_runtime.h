/*
 * fl_runtime.h - the processor runtime every processor binary runs in.
 *
 * It owns all I/O: a Kafka consumer group (range assignor, so the same
 * partition of every input lands on one instance), one task per assigned
 * partition with its RocksDB stores, restore from the changelogs, the
 * batch loop, the dead-letter topic, a transactional producer, metrics
 * over HTTP, signals. Processor logic (fl_proc.h) stays pure.
 *
 * Guarantees (see README "Processing guarantees"): a batch's outputs, its
 * changelog records and its input offsets (with the consumer group's
 * metadata, so a stale member is refused) go into one Kafka transaction;
 * after it commits, each store commits its changes and the same input
 * offsets in one RocksDB WriteBatch. Consumers (downstream processors,
 * restore) read committed only. A crash anywhere loses nothing and
 * duplicates nothing: either the transaction aborted (and the batch is
 * redone from the committed offsets) or it committed, and a store that
 * missed it catches up from its changelog when it is opened.
 */
#ifndef FL_RUNTIME_H
#define FL_RUNTIME_H

#include "fl_proc.h"

/*
 * Parses the command line (--help lists the options), runs the processor
 * until SIGINT/SIGTERM, and returns the process exit status.
 */
int fl_runtime_main(const fl_processor_def_t *def, int argc, char **argv);

#endif
