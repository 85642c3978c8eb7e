# The processor runtime's parts that run without Kafka: the merge of a
# task's inputs and the rules for a store a task opens.
fl_criterion_test(test_merge unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_merge.c LIBS fl_rt_rules)
fl_criterion_test(test_reconcile unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_reconcile.c LIBS fl_rt_rules)
