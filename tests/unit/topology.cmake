# Topology loader and validator: the real topology/feedline.yaml, every
# validation error with its line, environment overrides, print round trip.
fl_criterion_test(test_topology unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_topology.c LIBS fl_topology)
