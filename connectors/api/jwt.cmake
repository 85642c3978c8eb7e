# fl_jwt: the read API's JWT checks and minting (fl_jwt.c), on libcrypto
# for HMAC-SHA256, Ed25519 and base64, and jansson for the JSON. libcrypto
# is found GLOBAL so the tests and the fuzz target can link it too.
pkg_check_modules(LIBCRYPTO REQUIRED IMPORTED_TARGET GLOBAL libcrypto>=3.0)
add_library(fl_jwt STATIC fl_jwt.c)
target_include_directories(fl_jwt PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(fl_jwt PUBLIC fl_topology fl_base PRIVATE PkgConfig::JANSSON PkgConfig::LIBCRYPTO)
