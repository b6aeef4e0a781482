# CLI, file input, pipeline and sinks: the `earshot` core.

# Events as JSON and the shared flag parsers, in-process.
es_add_test(daemon_event SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_event.c LIBS es_daemon)

# File input: refusal reasons, descriptors neither leaked nor closed twice.
es_add_test(daemon_audio_file SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_audio_file.c LIBS es_daemon)

# Chunking independence, live producer/consumer threads against offline, config errors.
es_add_test(daemon_pipeline SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_pipeline.c LIBS es_daemon)
set_tests_properties(daemon_pipeline PROPERTIES LABELS tsan)

# The built binary from outside: exit codes, messages, formats, stdin, -j, other rates (sox).
# Links es_daemon only to write model files for the --vad-model/--kws-model cases.
es_add_test(daemon_cli SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cli.c LIBS es_daemon util m)
target_compile_definitions(daemon_cli PRIVATE EARSHOT_BINARY="$<TARGET_FILE:earshot>")
add_dependencies(daemon_cli earshot)
# `earshot file -j 3` runs worker threads: that case alone also runs in the TSan build
# (the whole CLI suite takes ~50 s there on a loaded 2-core machine).
add_test(NAME daemon_cli_jobs COMMAND daemon_cli test_parallel_keeps_input_order)
set_tests_properties(daemon_cli_jobs PROPERTIES LABELS tsan)

# libFuzzer target for audio input through the whole offline pipeline (ES_FUZZ=ON, clang):
#   build/tests/daemon/fuzz_audio_input -max_total_time=60 CORPUS tests/fuzz/corpus/audio_input
if(ES_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  add_executable(fuzz_audio_input ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_audio_input.c)
  target_compile_options(fuzz_audio_input PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_audio_input PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_audio_input PRIVATE es_daemon)
endif()

# Failure behaviour on careless or hostile input (issue 35, README "Failure
# behaviour"): output that is an input, odd file names in RTTM and JSON, -o
# checked before training, train-keyword stopped by signals, listen without
# stdout, wrong kinds of model, long paths, a directory as a daemon source.
add_test(NAME daemon_failures COMMAND ${CMAKE_CURRENT_LIST_DIR}/failures.sh $<TARGET_FILE:earshot>)
set_tests_properties(daemon_failures PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
