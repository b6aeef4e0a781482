/* The voice split rule (models/train/voices.h) gives every voice the split the
 * data recipe gave it before the rule moved to C (models/recipe/plan.pl's
 * split_of, now deleted): every espeak-ng variant of data/text/variants, and the
 * edge cases of its regular expression /\+(.+)$/ (the first '+', a trailing
 * '+', engines other than "espeak"). A change here moves voices between splits
 * and so changes every model trained afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "factory.h"

/* espeak-ng 1.51's variants (scripts/data.sh: `espeak-ng --voices=variant`). */
static const char *const valid_variants[] = {
    "Alicia", "Michael", "adam", "ed", "edward2", "m6", "robosoft5",
};
static const char *const test_variants[] = {
    "Andy",  "UniRobot", "anikaRobot", "iven4",     "m5",
    "pablo", "robosoft", "robosoft2",  "robosoft8", "steph2",
};
static const char *const train_variants[] = {
    "Alex",        "Andrea",       "Annie",        "AnxiousAndy", "Demonic",  "Denis",
    "Diogo",       "Gene",         "Gene2",        "Henrique",    "Hugo",     "Jacky",
    "Lee",         "Marco",        "Mario",        "Mike",        "Mr",       "Nguyen",
    "RicishayMax", "RicishayMax2", "RicishayMax3", "Storm",       "Tweaky",   "anika",
    "announcer",   "antonio",      "aunty",        "belinda",     "benjamin", "boris",
    "caleb",       "croak",        "david",        "edward",      "f1",       "f2",
    "f3",          "f4",           "f5",           "fast",        "grandma",  "grandpa",
    "gustave",     "iven",         "iven2",        "iven3",       "john",     "kaukovalta",
    "klatt",       "klatt2",       "klatt3",       "klatt4",      "klatt5",   "klatt6",
    "linda",       "m1",           "m2",           "m3",          "m4",       "m7",
    "m8",          "marcelo",      "max",          "michel",      "miguel",   "norbert",
    "paul",        "pedro",        "quincy",       "rob",         "robert",   "robosoft3",
    "robosoft4",   "robosoft6",    "robosoft7",    "sandro",      "shelby",   "steph",
    "steph3",      "travis",       "victor",       "whisper",     "whisperf", "zac",
};

static void check_variants(const char *const *variants, size_t count, es_split want) {
    /* With any accent: the variant alone decides. */
    const char *const accents[] = {"en-us", "en-gb-scotland", "en-029", ""};
    for (size_t a = 0; a < sizeof accents / sizeof accents[0]; a++)
        for (size_t v = 0; v < count; v++) {
            char voice[128];
            snprintf(voice, sizeof voice, "%s+%s", accents[a], variants[v]);
            if (es_voice_split("espeak", voice) != want)
                fail_msg("%s: %s, expected %s", voice,
                         es_split_names[es_voice_split("espeak", voice)], es_split_names[want]);
        }
}

static void test_every_espeak_variant_keeps_its_split(void **state) {
    (void)state;
    check_variants(valid_variants, sizeof valid_variants / sizeof valid_variants[0],
                   ES_SPLIT_VALID);
    check_variants(test_variants, sizeof test_variants / sizeof test_variants[0], ES_SPLIT_TEST);
    check_variants(train_variants, sizeof train_variants / sizeof train_variants[0],
                   ES_SPLIT_TRAIN);
    /* 101 variants, of which 7 valid and 10 test. */
    assert_int_equal(sizeof valid_variants / sizeof valid_variants[0] +
                         sizeof test_variants / sizeof test_variants[0] +
                         sizeof train_variants / sizeof train_variants[0],
                     101);
}

static void test_edge_cases_as_the_recipe_had_them(void **state) {
    (void)state;
    static const struct {
        const char *engine, *voice;
        es_split split;
    } cases[] = {
        {"espeak", "en-us", ES_SPLIT_TRAIN}, /* plain accents train */
        {"espeak", "en-029", ES_SPLIT_TRAIN},
        {"flite", "kal", ES_SPLIT_TRAIN}, /* so does every flite voice... */
        {"flite", "kal16", ES_SPLIT_TRAIN},
        {"flite", "slt", ES_SPLIT_TRAIN},
        {"flite", "x+m5", ES_SPLIT_TRAIN},  /* ...even with an espeak-like name */
        {"Espeak", "x+m5", ES_SPLIT_TRAIN}, /* the engine's name is exact */
        {"espeak", "x+m5", ES_SPLIT_TEST},
        {"espeak", "+m5", ES_SPLIT_TEST},
        {"espeak", "en-us+", ES_SPLIT_TRAIN},            /* an empty variant is none */
        {"espeak", "en-us+m3+robosoft", ES_SPLIT_TRAIN}, /* after the first '+': "m3+robosoft" */
        {"espeak", "x+made5", ES_SPLIT_TEST},            /* train-keyword's made voices */
        {"espeak", "x+made6", ES_SPLIT_VALID},
        {"espeak", "x+made0", ES_SPLIT_TRAIN},
        {"espeak", "x+caf\xc3\xa9", ES_SPLIT_TRAIN}, /* bytes, whatever their encoding */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (es_voice_split(cases[i].engine, cases[i].voice) != cases[i].split)
            fail_msg("%s %s: expected %s", cases[i].engine, cases[i].voice,
                     es_split_names[cases[i].split]);
}

static void test_split_names_are_the_manifests(void **state) {
    (void)state;
    assert_string_equal(es_split_names[ES_SPLIT_TRAIN], "train");
    assert_string_equal(es_split_names[ES_SPLIT_VALID], "valid");
    assert_string_equal(es_split_names[ES_SPLIT_TEST], "test");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_espeak_variant_keeps_its_split),
        cmocka_unit_test(test_edge_cases_as_the_recipe_had_them),
        cmocka_unit_test(test_split_names_are_the_manifests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
