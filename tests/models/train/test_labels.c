/* Frame labels from a synthetic clip: silence, a "word", a 100 ms pause, a
 * second word, a click, a word, a 120 ms pause, a last word, silence. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "augment.h"
#include "labels.h"

enum { RATE_HZ = 16000 };

static void tone(float *samples, int from_s_ms, int to_ms, float amplitude) {
    for (int i = from_s_ms * 16; i < to_ms * 16; i++)
        samples[i] += amplitude * sinf(0.2f * (float)i);
}

/* The label of the frame whose window starts at `ms`. */
static int label_at(const uint8_t *labels, int ms) {
    return labels[ms / 10];
}

static void test_speech_frames_of_a_synthetic_clip(void **state) {
    (void)state;
    enum { CLIP_MS = 4000, SAMPLES = CLIP_MS * 16 };
    float *samples = calloc(SAMPLES, sizeof(float));
    es_rng rng;
    es_rng_seed(&rng, 1);
    for (int i = 0; i < SAMPLES; i++)
        samples[i] = (float)(1e-4 * es_rng_gaussian(&rng)); /* a -80 dBFS floor */
    tone(samples, 500, 1000, 0.3f);
    tone(samples, 1100, 1500, 0.3f); /* 100 ms pause: bridged */
    tone(samples, 2200, 2210, 0.5f); /* a 10 ms click: dropped */
    tone(samples, 2600, 2900, 0.3f);
    tone(samples, 3020, 3300, 0.3f); /* 120 ms pause: not speech */

    es_speech_label_config config;
    es_speech_label_config_default(&config);
    const int frames = es_label_frame_count(&config, SAMPLES);
    assert_int_equal(frames, 1 + (SAMPLES - 400) / 160);
    uint8_t *labels = malloc((size_t)frames);
    const int speech = es_speech_labels(&config, samples, SAMPLES, labels, NULL);

    assert_false(label_at(labels, 100));
    assert_false(label_at(labels, 400));
    assert_true(label_at(labels, 500));
    assert_true(label_at(labels, 800));
    assert_true(label_at(labels, 1050)); /* the pause */
    assert_true(label_at(labels, 1450));
    assert_true(label_at(labels, 1530)); /* hangover */
    assert_false(label_at(labels, 1700));
    assert_false(label_at(labels, 2200)); /* the click */
    assert_false(label_at(labels, 2500));
    assert_true(label_at(labels, 2880));
    assert_true(label_at(labels, 2920));  /* hangover */
    assert_false(label_at(labels, 2980)); /* the pause's end */
    assert_true(label_at(labels, 3010));  /* the window reaches the word */
    assert_false(label_at(labels, 3500));
    /* 0.5 + 0.1 + 0.4 + 0.3 + 0.28 s of speech, plus window overlap and hangovers. */
    assert_in_range(speech, 170, 185); /* 179 */
    free(labels);
    free(samples);
}

static void test_digital_silence_is_never_speech(void **state) {
    (void)state;
    enum { SAMPLES = 16000 };
    float *samples = calloc(SAMPLES, sizeof(float));
    es_speech_label_config config;
    es_speech_label_config_default(&config);
    const int frames = es_label_frame_count(&config, SAMPLES);
    uint8_t *labels = malloc((size_t)frames);
    assert_int_equal(es_speech_labels(&config, samples, SAMPLES, labels, NULL), 0);
    /* A quiet (-43 dBFS) but clean word between digital silences is speech. */
    tone(samples, 300, 700, 0.01f);
    es_speech_labels(&config, samples, SAMPLES, labels, NULL);
    assert_false(label_at(labels, 200));
    assert_true(label_at(labels, 300));
    assert_true(label_at(labels, 650));
    assert_false(label_at(labels, 900));
    free(labels);
    free(samples);
}

static void test_short_clip_has_no_frames(void **state) {
    (void)state;
    es_speech_label_config config;
    es_speech_label_config_default(&config);
    float samples[399] = {0};
    assert_int_equal(es_label_frame_count(&config, 399), 0);
    assert_int_equal(es_speech_labels(&config, samples, 399, NULL, NULL), 0);
    assert_int_equal(es_label_frame_count(&config, 400), 1);
}

static void test_keyword_window_in_frames(void **state) {
    (void)state;
    es_speech_label_config config;
    es_speech_label_config_default(&config);
    int start = -1, end = -1;
    /* 1.0-1.5 s: windows starting from 0.985 s (frame 98: 0.98 s ends at 1.005 s)
     * to the one starting before 1.5 s (frame 149). */
    es_keyword_window_frames(&config, 1.0, 1.5, 1000, &start, &end);
    assert_int_equal(start, 98);
    assert_int_equal(end, 150);
    es_keyword_window_frames(&config, 0.0, 2.0, 120, &start, &end);
    assert_int_equal(start, 0);
    assert_int_equal(end, 120);
    es_keyword_window_frames(&config, 5.0, 6.0, 120, &start, &end);
    assert_int_equal(start, 120);
    assert_int_equal(end, 120);
}

static void test_keyword_classes_come_after_the_word(void **state) {
    (void)state;
    enum { FRAMES = 120, START = 40, END = 70, KEYWORD = 3 };
    int classes[FRAMES];
    es_keyword_frame_classes(FRAMES, KEYWORD, START, END, classes);
    const int first = END + ES_KEYWORD_DECISION_DELAY_FRAMES;
    for (int t = 0; t < FRAMES; t++) {
        const int expected = t < START                              ? 0
                             : t < first                            ? -1
                             : t < first + ES_KEYWORD_TARGET_FRAMES ? KEYWORD
                                                                    : 0;
        if (classes[t] != expected)
            fail_msg("frame %d: class %d, expected %d", t, classes[t], expected);
    }
    /* Cut by the sequence's end: the keyword's frames stop there. */
    es_keyword_frame_classes(first + 5, KEYWORD, START, END, classes);
    assert_int_equal(classes[first - 1], -1);
    assert_int_equal(classes[first + 4], KEYWORD);
    /* No keyword: filler throughout. */
    es_keyword_frame_classes(FRAMES, 0, START, END, classes);
    for (int t = 0; t < FRAMES; t++)
        assert_int_equal(classes[t], 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_speech_frames_of_a_synthetic_clip),
        cmocka_unit_test(test_digital_silence_is_never_speech),
        cmocka_unit_test(test_short_clip_has_no_frames),
        cmocka_unit_test(test_keyword_window_in_frames),
        cmocka_unit_test(test_keyword_classes_come_after_the_word),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
