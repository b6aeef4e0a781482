# Custom keywords: `earshot train-keyword` end to end with a tiny budget
# (synthesises its clips with espeak-ng and sox; skips without them).
es_add_test(test_train_keyword SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_train_keyword.c
            LIBS es_daemon)
