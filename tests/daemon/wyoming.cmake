# The Wyoming server (issue 36): its JSON reader as a unit, and the
# `earshot wyoming` command end to end with a Python (standard library only)
# client on loopback.
es_add_test(test_wyoming_json SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_wyoming_json.c
                                      ${PROJECT_SOURCE_DIR}/daemon/wyoming_json.c)
target_include_directories(test_wyoming_json PRIVATE ${PROJECT_SOURCE_DIR}/daemon)

find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME wyoming_protocol
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/wyoming_client.py
                   $<TARGET_FILE:earshot> ${PROJECT_SOURCE_DIR}/tests/clips/demo.wav)
  set_tests_properties(wyoming_protocol PROPERTIES TIMEOUT 300 LABELS tsan)
endif()
if(Python3_Interpreter_FOUND)
  # The same server inside `earshot daemon` ([wyoming] section, no source).
  add_test(NAME wyoming_daemon
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/wyoming_client.py
                   $<TARGET_FILE:earshot> ${PROJECT_SOURCE_DIR}/tests/clips/demo.wav --daemon)
  set_tests_properties(wyoming_daemon PROPERTIES TIMEOUT 300 LABELS tsan)
endif()
