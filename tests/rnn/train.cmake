# Trainer tests (rnn/train*.c). Tests that run the trainer with threads > 1 carry the
# tsan label so CI also runs them under ThreadSanitizer.
set(ES_TRAIN_TESTS gradcheck loss bptt determinism learn gradient_flow)
foreach(name IN LISTS ES_TRAIN_TESTS)
  es_add_test(test_train_${name} SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_train_${name}.c
              LIBS es_rnn)
endforeach()
set_tests_properties(test_train_gradcheck test_train_determinism test_train_learn
                     PROPERTIES LABELS tsan)
