# Processors: the fan-out and timeline rules and the whole fanout ->
# timeline pipeline against an oracle, through the topology test driver.
fl_criterion_test(test_fanout unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_fanout.c LIBS fl_testdriver)
fl_criterion_test(test_timeline unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_timeline.c LIBS fl_testdriver)
fl_criterion_test(test_pipeline unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_pipeline.c LIBS fl_testdriver)
# The same rule tests with three records per batch on RocksDB with
# background writes, as the runtime runs the processors.
foreach(t test_fanout test_timeline)
  fl_criterion_test(${t}_batched unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/${t}.c LIBS fl_testdriver)
  target_compile_definitions(${t}_batched PRIVATE FL_TEST_BATCH=3)
endforeach()
# The test driver itself, and the rule it shares with the runtime: a
# processor rejects a record before writing or forwarding anything.
fl_criterion_test(test_driver unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_driver.c LIBS fl_testdriver)
# Engagement facts and the affinity counts, through the same driver, and
# the codec of fl_engage.h; the engagement rules also batched on RocksDB.
fl_criterion_test(test_engagement unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_engagement.c LIBS fl_testdriver)
fl_criterion_test(test_engagement_batched unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_engagement.c LIBS fl_testdriver)
target_compile_definitions(test_engagement_batched PRIVATE FL_TEST_BATCH=3)
fl_criterion_test(test_affinity unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_affinity.c LIBS fl_testdriver)
