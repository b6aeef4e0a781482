# Custom keywords: `earshot train-keyword` end to end (synthesises its clips
# with espeak-ng and sox; skips without them). The smoke run trains a fixed 40
# short epochs: ~30 s in a release build, but many minutes under ASan+UBSan,
# hence no-asan; the phrase checks run alone there too.
es_add_test(test_train_keyword SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_train_keyword.c
            LIBS es_daemon)
set_tests_properties(test_train_keyword PROPERTIES LABELS no-asan)
add_test(NAME test_train_keyword_phrases COMMAND test_train_keyword test_unusable_phrases*)
# Per-keyword thresholds for a false-alarm budget (daemon/calibrate.h) on
# synthetic posteriors, and `earshot calibrate` on clips cut from demo.wav.
es_add_test(test_calibrate SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_calibrate.c LIBS es_daemon)
add_dependencies(test_calibrate earshot)
# espeak-ng in process (daemon/synth.h) against the espeak-ng and sox commands.
es_add_test(test_synth SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_synth.c LIBS es_daemon)
