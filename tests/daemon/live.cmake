# Detectors (pure state machines: built from their one source so the test does
# not wait on the rest of es_daemon) and live capture.
es_add_test(test_detect SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_detect.c
            ${PROJECT_SOURCE_DIR}/daemon/detect.c LIBS m)
target_include_directories(test_detect PRIVATE ${PROJECT_SOURCE_DIR}/daemon)
