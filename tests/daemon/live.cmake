# Detectors (pure state machines: built from their one source so the test does
# not wait on the rest of es_daemon) and live capture.
es_add_test(test_detect SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_detect.c
            ${PROJECT_SOURCE_DIR}/daemon/detect.c LIBS m)
target_include_directories(test_detect PRIVATE ${PROJECT_SOURCE_DIR}/daemon)

# Live capture without a sound card: ALSA's `file` plugin through the real
# PortAudio path (live_fixture.h). Threaded (PortAudio's callback thread).
add_library(es_live_fixture STATIC ${CMAKE_CURRENT_SOURCE_DIR}/live_fixture.c)
target_link_libraries(es_live_fixture PUBLIC es_rnn es_dsp)
target_include_directories(es_live_fixture PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})

es_add_test(test_capture SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_capture.c
            LIBS es_daemon es_live_fixture m)
set_tests_properties(test_capture PROPERTIES LABELS tsan)
