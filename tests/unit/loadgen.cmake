# The load generator's seeded network: determinism, meaningful events, shape.
fl_criterion_test(test_netgen unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_netgen.c
  LIBS fl_netgen)
