# fuzz_cursor, fuzz_query: libFuzzer targets for the read API's cursors and
# query parameters (clang, -DFL_FUZZ=ON). fl_api_model.c is compiled into
# each target rather than linked from fl_api_model, so that it carries
# libFuzzer's coverage instrumentation.
# Run from the repo root: build/fuzz/fuzz_cursor tests/fuzz/corpus/cursor
if(FL_FUZZ AND CMAKE_C_COMPILER_ID STREQUAL "Clang")
  foreach(target fuzz_cursor fuzz_query)
    add_executable(${target}
      ${CMAKE_CURRENT_SOURCE_DIR}/${target}.c
      ${PROJECT_SOURCE_DIR}/connectors/api/fl_api_model.c)
    target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/connectors/api
      ${CMAKE_CURRENT_SOURCE_DIR})
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer,address,undefined
      -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(${target} PRIVATE fl_base m)
    set_target_properties(${target} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
  endforeach()
endif()
