# The service: config, event hub, notify glue, units, and the daemon end to end.
# The unit tests build from their own sources so they do not wait on the rest
# of es_daemon.
pkg_check_modules(SERVICE_INIH REQUIRED IMPORTED_TARGET inih)

es_add_test(test_service_config
            SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_service_config.c
                    ${PROJECT_SOURCE_DIR}/daemon/config.c ${PROJECT_SOURCE_DIR}/daemon/detect.c
            LIBS PkgConfig::SERVICE_INIH m)
target_include_directories(test_service_config PRIVATE ${PROJECT_SOURCE_DIR}/daemon
                                                       ${PROJECT_SOURCE_DIR}/dsp
                                                       ${PROJECT_SOURCE_DIR}/rnn)

pkg_check_modules(SERVICE_LIBSYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
es_add_test(test_notify
            SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_notify.c ${PROJECT_SOURCE_DIR}/daemon/notify.c
            LIBS PkgConfig::SERVICE_LIBSYSTEMD)
target_include_directories(test_notify PRIVATE ${PROJECT_SOURCE_DIR}/daemon)

es_add_test(test_event_hub
            SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_event_hub.c
                    ${PROJECT_SOURCE_DIR}/daemon/event_socket.c
            LIBS Threads::Threads)
target_include_directories(test_event_hub PRIVATE ${PROJECT_SOURCE_DIR}/daemon)
set_tests_properties(test_event_hub PROPERTIES LABELS tsan)

# systemd-analyze verify/security on the units generated for this build tree
# (systemd/CMakeLists.txt); verify needs the binary ExecStart names.
es_add_test(test_units SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_units.c)
add_dependencies(test_units earshot)

# The daemon end to end, as a child process: sd_notify, watchdog, signals,
# reload, subscribers vs `earshot file`, churn. Labelled tsan so the TSan
# build runs the (instrumented) daemon's threads too.
# The ALSA fixture of the live-capture tests (live.cmake) keeps PortAudio off
# real hardware when a device source is configured.
# The mqtt group's subscriber is a libmosquitto client.
pkg_check_modules(SERVICE_MOSQUITTO REQUIRED IMPORTED_TARGET libmosquitto)
es_add_test(test_daemon SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_daemon.c
            LIBS es_live_fixture Threads::Threads PkgConfig::SERVICE_MOSQUITTO)
add_dependencies(test_daemon earshot)
# More groups of tests from the same executable (its first group is the
# default), so they run in parallel (~12 s each under TSan); faults: issue 35.
add_test(NAME test_daemon_events COMMAND test_daemon events)
add_test(NAME test_daemon_faults COMMAND test_daemon faults)
# Issue 36: [mqtt] against a mosquitto broker the test starts on loopback.
add_test(NAME test_daemon_mqtt COMMAND test_daemon mqtt)
set_tests_properties(test_daemon test_daemon_events test_daemon_faults test_daemon_mqtt
                     PROPERTIES LABELS tsan)

# libFuzzer target for the config parser (ES_FUZZ=ON with clang).
if(ES_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  add_executable(fuzz_daemon_config ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_daemon_config.c
                                    ${PROJECT_SOURCE_DIR}/daemon/config.c
                                    ${PROJECT_SOURCE_DIR}/daemon/detect.c)
  target_include_directories(fuzz_daemon_config PRIVATE ${PROJECT_SOURCE_DIR}/daemon
                                                        ${PROJECT_SOURCE_DIR}/dsp
                                                        ${PROJECT_SOURCE_DIR}/rnn)
  target_compile_options(fuzz_daemon_config PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_daemon_config PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_daemon_config PRIVATE PkgConfig::SERVICE_INIH m)
endif()

# Soak (issue #6): minutes of audio pushed through a FIFO source as fast as
# the daemon takes it, two `earshot listen` subscribers; exact events, no
# drops, flat RSS, sanitizer-clean. CI runs 5 minutes of audio (also in the
# ASan build); the full hour: SOAK_MINUTES=60 tests/daemon/soak.sh BUILD/daemon/earshot.
add_test(NAME daemon_soak COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/soak.sh $<TARGET_FILE:earshot>)
set_tests_properties(daemon_soak PROPERTIES ENVIRONMENT "SOAK_MINUTES=5" SKIP_RETURN_CODE 77
                                            TIMEOUT 600)
