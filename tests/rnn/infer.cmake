# Inference and model-file tests (the trainer's are in train.cmake).
es_add_test(test_rnn_layers SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_layers.c LIBS es_rnn)
es_add_test(test_rnn_state SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_state.c LIBS es_rnn)
es_add_test(test_rnn_threads SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_threads.c LIBS es_rnn)
set_tests_properties(test_rnn_threads PROPERTIES LABELS tsan)
es_add_test(test_rnn_model_file SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_model_file.c LIBS es_rnn)
es_add_test(test_rnn_builtin SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_builtin.c LIBS es_rnn es_models)
