# Trainer tests (rnn/train*.c). Tests that run the trainer with threads > 1 carry the
# tsan label so CI also runs them under ThreadSanitizer.
set(ES_TRAIN_TESTS gradcheck loss bptt determinism learn gradient_flow run kws inference kernels)
foreach(name IN LISTS ES_TRAIN_TESTS)
  es_add_test(test_train_${name} SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_train_${name}.c
              LIBS es_rnn)
endforeach()
set_tests_properties(test_train_gradcheck test_train_determinism test_train_learn test_train_kws
                     PROPERTIES LABELS tsan)

# Training throughput, run by hand (not a test): build/tests/rnn/train_bench [options].
add_executable(train_bench ${CMAKE_CURRENT_LIST_DIR}/test_train_bench.c)
target_link_libraries(train_bench PRIVATE es_rnn)

# The trainer's kernels against OpenBLAS (only where it is installed; run by hand).
pkg_check_modules(OPENBLAS QUIET IMPORTED_TARGET openblas)
if(OPENBLAS_FOUND)
  add_executable(train_blas_compare ${CMAKE_CURRENT_LIST_DIR}/test_train_blas_compare.c)
  target_link_libraries(train_blas_compare PRIVATE es_rnn PkgConfig::OPENBLAS)
endif()
