# Detectors (pure state machines: built from their one source so the test does
# not wait on the rest of es_daemon) and live capture.
es_add_test(daemon_detect SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_detect.c
            ${ES_ALLOC_COUNT_SOURCE} ${PROJECT_SOURCE_DIR}/daemon/detect.c LIBS m)
target_include_directories(daemon_detect PRIVATE ${PROJECT_SOURCE_DIR}/daemon)

# Live capture without a sound card: ALSA's `file` plugin through the real
# PortAudio path (live_fixture.h).
add_library(es_live_fixture STATIC ${CMAKE_CURRENT_LIST_DIR}/live_fixture.c)
target_link_libraries(es_live_fixture PUBLIC es_rnn es_dsp)
target_include_directories(es_live_fixture PUBLIC ${CMAKE_CURRENT_LIST_DIR})

# In-process: device lookup, exact samples, no allocation in the callback.
# Threaded (PortAudio's callback thread).
es_add_test(daemon_capture SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_capture.c
            ${ES_ALLOC_COUNT_SOURCE} LIBS es_daemon es_live_fixture m)
set_tests_properties(daemon_capture PROPERTIES LABELS tsan)

# The binary: `earshot mic` against `earshot file`, signals, flags, devices.
es_add_test(daemon_mic SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_mic.c LIBS es_live_fixture m)
target_compile_definitions(daemon_mic PRIVATE EARSHOT_BINARY="$<TARGET_FILE:earshot>")
add_dependencies(daemon_mic earshot)
# The binary runs PortAudio's callback thread and the consumer: TSan-checked too (~12 s there).
set_tests_properties(daemon_mic PROPERTIES LABELS tsan)

# The binary on a JACK dummy server: real-time pacing, latency report, the
# server hanging (SIGSTOP) or vanishing under it: exit 1, no hang. Skips
# without jackd2 / jack-tools or when the server cannot start.
es_add_test(daemon_mic_jack SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_mic_jack.c
            LIBS es_live_fixture)
target_compile_definitions(daemon_mic_jack PRIVATE EARSHOT_BINARY="$<TARGET_FILE:earshot>")
add_dependencies(daemon_mic_jack earshot)
set_tests_properties(daemon_mic_jack PROPERTIES LABELS tsan)
