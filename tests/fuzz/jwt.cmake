# fuzz_jwt: libFuzzer target for the read API's JWT checks (clang,
# -DFL_FUZZ=ON). fl_jwt.c is compiled into the target itself rather than
# linked from fl_jwt, so that it carries libFuzzer's coverage
# instrumentation. Run from the repo root:
#   build/fuzz/fuzz_jwt -max_len=5000 tests/fuzz/corpus/jwt
if(FL_FUZZ AND CMAKE_C_COMPILER_ID STREQUAL "Clang")
  add_executable(fuzz_jwt
    ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_jwt.c
    ${CMAKE_CURRENT_SOURCE_DIR}/fl_jwt_fixture.c
    ${PROJECT_SOURCE_DIR}/connectors/api/fl_jwt.c)
  target_include_directories(fuzz_jwt PRIVATE ${PROJECT_SOURCE_DIR}/connectors/api)
  target_compile_options(fuzz_jwt PRIVATE -fsanitize=fuzzer,address)
  target_link_options(fuzz_jwt PRIVATE -fsanitize=fuzzer,address)
  target_link_libraries(fuzz_jwt PRIVATE fl_topology PkgConfig::JANSSON PkgConfig::LIBCRYPTO)
  set_target_properties(fuzz_jwt PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
endif()
