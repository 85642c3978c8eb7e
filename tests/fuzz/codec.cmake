# fuzz_codec: libFuzzer target for the Avro decoder (clang, -DFL_FUZZ=ON).
# The codec sources are compiled into the target itself rather than linked
# from fl_schemas, so that they carry libFuzzer's coverage instrumentation.
# Run from the repo root: build/fuzz/fuzz_codec tests/fuzz/corpus/codec
if(FL_FUZZ AND CMAKE_C_COMPILER_ID STREQUAL "Clang")
  add_executable(fuzz_codec
    ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_codec.c
    ${PROJECT_SOURCE_DIR}/schemas/fl_event.c
    ${PROJECT_SOURCE_DIR}/schemas/fl_codec.c)
  target_include_directories(fuzz_codec PRIVATE ${PROJECT_SOURCE_DIR}/schemas)
  target_compile_options(fuzz_codec PRIVATE -fsanitize=fuzzer,address)
  target_link_options(fuzz_codec PRIVATE -fsanitize=fuzzer,address)
  target_link_libraries(fuzz_codec PRIVATE fl_schemas PkgConfig::AVRO PkgConfig::JANSSON)
  set_target_properties(fuzz_codec PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
endif()
