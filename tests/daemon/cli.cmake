# CLI, file input, pipeline and sinks: the `earshot` core.

# Events as JSON and the shared flag parsers, in-process.
es_add_test(daemon_event SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_event.c LIBS es_daemon)

# Chunking independence, live producer/consumer threads against offline, config errors.
es_add_test(daemon_pipeline SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_pipeline.c LIBS es_daemon)
set_tests_properties(daemon_pipeline PROPERTIES LABELS tsan)

# The built binary from outside: exit codes, messages, formats, stdin, -j, other rates (sox).
es_add_test(daemon_cli SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cli.c LIBS m)
target_compile_definitions(daemon_cli PRIVATE EARSHOT_BINARY="$<TARGET_FILE:earshot>")
add_dependencies(daemon_cli earshot)
