# State stores: key encodings, a model test of the RocksDB and in-memory
# backends against a reference, atomic commit of state + offsets, format
# version, bulk restore; the ordered map behind pending batches.
fl_criterion_test(test_state unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_state.c LIBS fl_state)
fl_criterion_test(test_store unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_store.c LIBS fl_state)
fl_criterion_test(test_skl unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_skl.c LIBS fl_state)
