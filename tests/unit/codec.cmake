# Event contract and Avro codec: descriptors, JSON, encode/decode, schema
# evolution, malformed input, and a replay of the fuzz corpus.
fl_criterion_test(test_codec unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_codec.c LIBS fl_schemas)
