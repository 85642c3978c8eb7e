# `feedline verify`'s feed digests: order-independent, and differences named.
fl_criterion_test(test_digest unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_digest.c
  LIBS fl_connectors)

# The other relations' rows: the fourth column, descriptions, notifications
# at Redis's cap.
fl_criterion_test(test_verify_facts unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_verify_facts.c
  ${PROJECT_SOURCE_DIR}/connectors/fl_verify_facts.c LIBS fl_connectors fl_lag)
