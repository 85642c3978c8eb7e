# The read API's JWT checks: the RFC 8725 attack list, minting round trips,
# configuration errors, and a replay of the fuzz corpus (with the corpus's
# fixed keys from tests/fuzz/fl_jwt_fixture.c).
fl_criterion_test(test_jwt unit
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_jwt.c ${PROJECT_SOURCE_DIR}/tests/fuzz/fl_jwt_fixture.c
  LIBS fl_jwt PkgConfig::LIBCRYPTO)
target_include_directories(test_jwt PRIVATE ${PROJECT_SOURCE_DIR}/tests/fuzz)
