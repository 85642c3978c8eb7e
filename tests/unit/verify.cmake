# `feedline verify`'s feed digests: order-independent, and differences named.
fl_criterion_test(test_digest unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_digest.c
  LIBS fl_connectors)
