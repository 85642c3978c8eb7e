# The read API's pure model: cursors, query parameters, visibility,
# ordering, ranking, and a replay of the cursor and query fuzz corpora.
fl_criterion_test(test_api_model unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_api_model.c
  LIBS fl_api_model)
# The Mastodon surface's pure mappings: HTML, times, visibility, ids, query.
fl_criterion_test(test_masto_model unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_masto_model.c
  LIBS fl_api_model)
# The hot path's JSON writer, read back by jansson.
fl_criterion_test(test_jw unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_jw.c
  LIBS fl_api_model PkgConfig::JANSSON)
