# Training data: augmentation, frame labels, and the `earshot train` driver.
# The unit tests build from their own sources, so they do not wait on the rest
# of es_daemon; es_dsp brings FFTW and libsoxr.
set(ES_TRAIN_DATA_SOURCES ${PROJECT_SOURCE_DIR}/daemon/augment.c
                          ${PROJECT_SOURCE_DIR}/daemon/labels.c)
es_add_test(test_augment SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_augment.c
            ${ES_TRAIN_DATA_SOURCES} LIBS es_dsp m)
es_add_test(test_labels SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_labels.c
            ${ES_TRAIN_DATA_SOURCES} LIBS es_dsp m)
foreach(test test_augment test_labels)
  target_include_directories(${test} PRIVATE ${PROJECT_SOURCE_DIR}/daemon)
endforeach()

# Smoke test of `earshot train`: synthesises its own clips with espeak-ng.
es_add_test(test_train_cmd SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_train_cmd.c LIBS es_daemon)
# Threaded: batches are built ahead of the trainer on threads of their own.
set_tests_properties(test_train_cmd PROPERTIES LABELS tsan)

# The one command that rebuilds the shipped models (scripts/train-models.sh), in its
# --smoke mode on clips synthesised by the test: every step of it runs in CI.
add_test(NAME train_models_smoke COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/train_models_smoke.sh
                                         $<TARGET_FILE:earshot>)
set_tests_properties(train_models_smoke PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)

# The real-speech part of the data recipe (models/recipe/real_speech.sh, word_span.pl) on
# a few of the shared recordings: it runs in CI and cannot rot. Skips without them.
add_test(NAME real_speech_smoke COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/real_speech_smoke.sh)
set_tests_properties(real_speech_smoke PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
