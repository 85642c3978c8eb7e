/*
 * fl_topics.h - names of the topics and stores the processors' logic
 * refers to. They must match topology/feedline.yaml; the runtime checks at
 * start-up that each processor's topology entry names them.
 */
#ifndef FL_TOPICS_H
#define FL_TOPICS_H

#define FL_TOPIC_POSTS        "posts"
#define FL_TOPIC_FOLLOWS      "follows"
#define FL_TOPIC_LIKES        "likes"
#define FL_TOPIC_TIMELINE_OPS "feedline.timeline-ops"
#define FL_TOPIC_CELEBRITIES  "feedline.celebrities"
#define FL_TOPIC_DLQ          "feedline.dlq"
#define FL_TOPIC_ENGAGEMENT   "feedline.engagement"
#define FL_TOPIC_ENGAGE_EDGES "feedline.engagement-edges"

#define FL_STORE_FANOUT     "fanout-authors"
#define FL_STORE_TIMELINES  "timelines"
#define FL_STORE_ENGAGEMENT "engagement"
#define FL_STORE_AFFINITY   "affinity"

#endif
