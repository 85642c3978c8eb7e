# The processor runtime's parts that run without Kafka: the merge of a
# task's inputs.
fl_criterion_test(test_merge unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_merge.c LIBS fl_merge)
