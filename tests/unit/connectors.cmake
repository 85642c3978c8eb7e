fl_criterion_test(test_partition unit
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_partition.c
  LIBS fl_base)
