/* daemon/calibrate: exact hit and false-alarm counts on synthetic posteriors
 * (known windows and spikes), thresholds that keep the total of false alarms
 * within the budget (and the greedy's choice between keywords), one keyword
 * = the lowest threshold within budget, thresholds stored in the model; and
 * `earshot calibrate` on a tiny manifest cut from tests/clips/demo.wav at
 * test time, with its bad inputs (exit 1 runtime, 2 usage). */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sndfile.h>

#include "stream.h"
#include "factory.h"
#include "commands.h"
#include "rnn.h"

#define EARSHOT ES_BINARY_DIR "/daemon/earshot"
#define DEMO ES_SOURCE_DIR "/tests/clips/demo.wav"
#define FPS 100 /* frames per second: 10 ms hop */
#define SR ES_CAL_SAMPLE_RATE_HZ

/* ---- synthetic streams ------------------------------------------------------------ */

typedef struct spike {
    int keyword;
    double at_s;
    float height; /* a 200 ms plateau */
} spike;

typedef struct span {
    double start_s, end_s;
    int keyword;
} span;

/* A stream of `seconds` with zero posteriors but for the spikes, and the windows. */
static void make_stream(es_cal_stream *s, int keyword_count, const char *const *labels,
                        double seconds, const spike *spikes, int spike_count, const span *windows,
                        int window_count) {
    assert_int_equal(es_cal_stream_init_labels(s, keyword_count, labels), 0);
    const size_t frames = (size_t)llround(seconds * FPS);
    float *all = calloc(frames * (size_t)keyword_count, sizeof(float));
    assert_non_null(all);
    for (int i = 0; i < spike_count; i++) {
        const size_t first = (size_t)llround(spikes[i].at_s * FPS);
        for (size_t t = first; t < first + 20 && t < frames; t++)
            all[t * (size_t)keyword_count + (size_t)spikes[i].keyword] = spikes[i].height;
    }
    for (size_t t = 0; t < frames; t++)
        assert_int_equal(es_cal_stream_add_frame(s, all + t * (size_t)keyword_count), 0);
    free(all);
    for (int i = 0; i < window_count; i++)
        assert_int_equal(es_cal_stream_add_window(s, llround(windows[i].start_s * SR),
                                                  llround(windows[i].end_s * SR),
                                                  windows[i].keyword),
                         0);
    es_cal_stream_finish(s, seconds);
}

enum { YES = 0, NO = 1 };
static const char *const yes_no[] = {"yes", "no"};

/* Windows of 1 s around each positive's spike (0.2 s before, 0.8 s after);
 * 8 windows = 8 s, so the stream has exactly one hour outside them. Heights
 * sit between grid points (0.01 apart). */
static const spike two_keyword_spikes[] = {
    /* positives of yes: 0.955 0.855 0.755 0.655 0.555 */
    {YES, 100, 0.955f},
    {YES, 200, 0.855f},
    {YES, 300, 0.755f},
    {YES, 400, 0.655f},
    {YES, 500, 0.555f},
    /* positives of no: 0.905 0.705 0.505; yes fires inside the first: neither */
    {NO, 600, 0.905f},
    {YES, 600.5, 0.995f},
    {NO, 700, 0.705f},
    {NO, 800, 0.505f},
    /* false alarms: yes 0.925 0.805 0.605; no 0.885 0.405 */
    {YES, 1000, 0.925f},
    {YES, 1500, 0.805f},
    {YES, 2000, 0.605f},
    {NO, 2500, 0.885f},
    {NO, 3000, 0.405f},
};
static const span two_keyword_windows[] = {
    {99.8, 100.8, YES},  {199.8, 200.8, YES}, {299.8, 300.8, YES}, {399.8, 400.8, YES},
    {499.8, 500.8, YES}, {599.8, 600.8, NO},  {699.8, 700.8, NO},  {799.8, 800.8, NO},
};

static void two_keyword_stream(es_cal_stream *s) {
    make_stream(s, 2, yes_no, 3608.0, two_keyword_spikes,
                (int)(sizeof two_keyword_spikes / sizeof two_keyword_spikes[0]),
                two_keyword_windows,
                (int)(sizeof two_keyword_windows / sizeof two_keyword_windows[0]));
}

static void expect_counts(const es_cal_stream *s, int keyword, float threshold, int positives,
                          int hits, int false_alarms) {
    es_cal_counts c;
    assert_int_equal(es_cal_detect(s, keyword, threshold, 0, &c), 0);
    if (c.positives != positives || c.hits != hits || c.false_alarms != false_alarms)
        fail_msg("%s at %.3f: positives %d hits %d false alarms %d, expected %d %d %d",
                 s->labels[keyword], (double)threshold, c.positives, c.hits, c.false_alarms,
                 positives, hits, false_alarms);
}

static void test_detect_counts_hits_and_false_alarms_exactly(void **state) {
    (void)state;
    es_cal_stream s;
    two_keyword_stream(&s);
    assert_int_equal(s.positives[YES], 5);
    assert_int_equal(s.positives[NO], 3);
    assert_true(fabs(s.negative_seconds - 3600.0) < 1e-6);
    expect_counts(&s, YES, 0.999f, 5, 0, 0);
    /* 0.995 of yes inside a window of no: neither a hit nor a false alarm. */
    expect_counts(&s, YES, 0.97f, 5, 0, 0);
    expect_counts(&s, YES, 0.93f, 5, 1, 0);
    expect_counts(&s, YES, 0.72f, 5, 3, 2);
    expect_counts(&s, YES, 0.30f, 5, 5, 3);
    expect_counts(&s, NO, 0.72f, 3, 1, 1);
    expect_counts(&s, NO, 0.30f, 3, 3, 2);
    es_cal_counts c;
    assert_int_equal(es_cal_detect(&s, 2, 0.5f, 0, &c), -1);
    es_cal_stream_free(&s);
}

/* Positives mixed with noise are tallied apart too (train-keyword's card
 * reports recall in quiet and in noise). */
static void test_positives_in_noise_count_apart(void **state) {
    (void)state;
    es_cal_stream s;
    two_keyword_stream(&s);
    /* yes's 0.955 and 0.655 positives, and no's 0.905, were heard in noise */
    s.windows[0].in_noise = s.windows[3].in_noise = s.windows[5].in_noise = 1;
    es_cal_counts c;
    assert_int_equal(es_cal_detect(&s, YES, 0.72f, 0, &c), 0);
    assert_int_equal(c.positives_in_noise, 2);
    assert_int_equal(c.hits_in_noise, 1); /* 0.955 found, 0.655 not */
    assert_int_equal(c.hits, 3);
    assert_int_equal(es_cal_detect(&s, NO, 0.30f, 0, &c), 0);
    assert_int_equal(c.positives_in_noise, 1);
    assert_int_equal(c.hits_in_noise, 1);
    es_cal_stream_free(&s);
}

/* With a recorded person's hit weighed more, the one false alarm the budget
 * allows goes to the keyword a recorded person said, though the other would
 * find two synthetic voices' keywords with it. */
static void test_recorded_weight_favours_recorded_people(void **state) {
    (void)state;
    es_cal_stream s;
    const spike spikes[] = {{YES, 100, 0.555f},
                            {YES, 200, 0.455f},
                            {NO, 300, 0.505f},
                            {YES, 1000, 0.705f},
                            {NO, 2000, 0.705f}};
    const span windows[] = {{99.8, 100.8, YES}, {199.8, 200.8, YES}, {299.8, 300.8, NO}};
    make_stream(&s, 2, yes_no, 3603.0, spikes, 5, windows, 3);
    s.windows[2].recorded = 1;
    es_cal_result r;
    assert_int_equal(es_cal_calibrate(&s, &(es_cal_budget){1.5f, 1.0f, 0, 1.0f}, 0, &r), 0);
    assert_int_equal(r.allowed, 1);
    assert_int_equal(r.hits, 2);
    assert_int_equal(r.positives_recorded, 1);
    assert_int_equal(r.hits_recorded, 0);
    assert_true(r.thresholds[NO] > 0.705f);
    assert_int_equal(es_cal_calibrate(&s, &(es_cal_budget){1.5f, 1.0f, 0, 3.0f}, 0, &r), 0);
    assert_int_equal(r.hits, 1);
    assert_int_equal(r.hits_recorded, 1);
    assert_int_equal(r.counts[NO].hits_recorded, 1);
    assert_int_equal(r.counts[YES].positives_recorded, 0);
    assert_true(r.thresholds[YES] > 0.705f);
    assert_int_equal(r.false_alarms, 1);
    es_cal_stream_free(&s);
}

static void test_overlapping_windows_each_count_a_hit(void **state) {
    (void)state;
    es_cal_stream s;
    const spike spikes[] = {{YES, 2.7, 0.9f}, {NO, 10.0, 0.9f}, {NO, 20.0, 0.9f}};
    /* The second window starts inside the first; the spike lies in both. */
    const span windows[] = {{1.0, 3.0, YES}, {2.5, 4.0, YES}, {9.9, 11.0, NO}};
    make_stream(&s, 2, yes_no, 60.0, spikes, 3, windows, 3);
    assert_true(fabs(s.negative_seconds - (60.0 - 3.0 - 1.1)) < 1e-6);
    expect_counts(&s, YES, 0.5f, 2, 2, 0);
    expect_counts(&s, NO, 0.5f, 1, 1, 1);
    assert_true(fabs(es_cal_per_hour(1, s.negative_seconds) - 3600.0 / s.negative_seconds) < 1e-9);
    es_cal_stream_free(&s);
}

static void test_near_misses_are_judged_per_clip_not_per_hour(void **state) {
    (void)state;
    es_cal_stream s;
    /* yes fires in both near misses (0.9 and 0.6) and once outside (0.8). */
    const spike spikes[] = {
        {YES, 10.0, 0.9f}, {YES, 20.0, 0.6f}, {YES, 40.0, 0.8f}, {NO, 30.0, 0.9f}};
    const span windows[] = {
        {9.5, 11.5, ES_CAL_NEAR_MISS}, {19.5, 21.5, ES_CAL_NEAR_MISS}, {29.8, 30.8, NO}};
    make_stream(&s, 2, yes_no, 100.0, spikes, 4, windows, 3);
    assert_int_equal(s.near_misses, 2);
    assert_int_equal(s.positives[YES], 0);
    assert_int_equal(s.positives[NO], 1);
    /* Near misses' time is not keyword-free audio. */
    assert_true(fabs(s.negative_seconds - (100.0 - 2.0 - 2.0 - 1.0)) < 1e-6);
    es_cal_counts c;
    assert_int_equal(es_cal_detect(&s, YES, 0.5f, 0, &c), 0);
    assert_int_equal(c.near_misses, 2);
    assert_int_equal(c.accepted, 2);
    assert_int_equal(c.false_alarms, 1);
    assert_int_equal(c.near_misses_of_kind[0], 2);
    /* Tallied by kind too: the second near miss made another way. */
    s.windows[1].kind = 3;
    assert_int_equal(es_cal_detect(&s, YES, 0.7f, 0, &c), 0);
    assert_int_equal(c.accepted, 1);
    assert_int_equal(c.near_misses_of_kind[0], 1);
    assert_int_equal(c.accepted_of_kind[0], 1);
    assert_int_equal(c.near_misses_of_kind[3], 1);
    assert_int_equal(c.accepted_of_kind[3], 0);
    assert_int_equal(c.false_alarms, 1);
    assert_int_equal(es_cal_detect(&s, YES, 0.85f, 0, &c), 0);
    assert_int_equal(c.accepted, 1);
    assert_int_equal(c.false_alarms, 0);
    assert_int_equal(es_cal_detect(&s, NO, 0.5f, 0, &c), 0);
    assert_int_equal(c.hits, 1);
    assert_int_equal(c.accepted, 0);
    /* The budget counts false alarms only: with none allowed, yes may go as
     * low as 0.81 although it then accepts a near miss. */
    es_cal_result r;
    assert_int_equal(es_cal_calibrate(&s, &(es_cal_budget){0.5f, 1.0f, 0, 1.0f}, 0, &r), 0);
    assert_true(r.met);
    assert_true(fabsf(r.thresholds[YES] - 0.81f) < 1e-6f);
    assert_int_equal(r.counts[YES].near_misses, 2);
    assert_int_equal(r.counts[YES].accepted, 1);
    assert_int_equal(r.near_accepted, 1);
    assert_int_equal(r.near_allowed, -1);
    /* With a limit on near misses too: none may be accepted, so yes stays above the
     * 0.9 one; half of them may, and 0.81 is back. */
    assert_int_equal(es_cal_calibrate(&s, &(es_cal_budget){0.5f, 0.0f, 0, 1.0f}, 0, &r), 0);
    assert_true(r.met);
    assert_int_equal(r.near_allowed, 0);
    assert_true(fabsf(r.thresholds[YES] - 0.91f) < 1e-6f);
    assert_int_equal(r.near_accepted, 0);
    assert_int_equal(es_cal_calibrate(&s, &(es_cal_budget){0.5f, 0.5f, 0, 1.0f}, 0, &r), 0);
    assert_int_equal(r.near_allowed, 1);
    assert_true(fabsf(r.thresholds[YES] - 0.81f) < 1e-6f);
    assert_int_equal(r.near_accepted, 1);
    assert_int_equal(es_cal_stream_add_window(&s, 0, 10, -1), -1);
    es_cal_stream_free(&s);
}

/* A result on two_keyword_stream: each keyword's hits and false alarms, and the totals. */
static void expect_two_keyword_counts(const es_cal_result *r, int yes_hits, int yes_alarms,
                                      int no_hits, int no_alarms) {
    assert_int_equal(r->counts[YES].hits, yes_hits);
    assert_int_equal(r->counts[YES].false_alarms, yes_alarms);
    assert_int_equal(r->counts[NO].hits, no_hits);
    assert_int_equal(r->counts[NO].false_alarms, no_alarms);
    assert_int_equal(r->hits, yes_hits + no_hits);
    assert_int_equal(r->false_alarms, yes_alarms + no_alarms);
    assert_int_equal(r->positives, 8);
}

static void test_thresholds_keep_the_total_within_budget(void **state) {
    (void)state;
    es_cal_stream s;
    two_keyword_stream(&s);
    es_cal_result r;
    /* 2.5 per hour over one hour: two false alarms in all. Free moves take
     * yes to 0.93 and no to 0.89; then no to 0.41 (2 hits for 1 alarm) beats
     * yes to 0.61 (3 for 2) and to 0.81 (1 for 1); yes to 0.81 spends the rest. */
    assert_int_equal(es_cal_calibrate(&s, &(es_cal_budget){2.5f, 1.0f, 0, 1.0f}, 0, &r), 0);
    assert_int_equal(r.met, 1);
    assert_true(fabsf(r.thresholds[YES] - 0.81f) < 1e-6f);
    assert_true(fabsf(r.thresholds[NO] - 0.41f) < 1e-6f);
    expect_two_keyword_counts(&r, 2, 1, 3, 1);
    assert_true(es_cal_per_hour(r.false_alarms, s.negative_seconds) <= 2.5);

    /* One alarm in all: it goes to the keyword that gains most per alarm (no). */
    assert_int_equal(es_cal_calibrate(&s, &(es_cal_budget){1.5f, 1.0f, 0, 1.0f}, 0, &r), 0);
    assert_true(fabsf(r.thresholds[YES] - 0.93f) < 1e-6f);
    assert_true(fabsf(r.thresholds[NO] - 0.41f) < 1e-6f);
    assert_int_equal(r.false_alarms, 1);

    /* Whatever the budget, the total stays within it. */
    for (float budget = 0.0f; budget <= 6.0f; budget += 0.5f) {
        assert_int_equal(es_cal_calibrate(&s, &(es_cal_budget){budget, 1.0f, 0, 1.0f}, 0, &r), 0);
        assert_int_equal(r.met, 1);
        int total = 0;
        for (int k = 0; k < 2; k++) {
            es_cal_counts c;
            assert_int_equal(es_cal_detect(&s, k, r.thresholds[k], 0, &c), 0);
            assert_int_equal(c.false_alarms, r.counts[k].false_alarms);
            assert_int_equal(c.hits, r.counts[k].hits);
            total += c.false_alarms;
        }
        assert_int_equal(total, r.false_alarms);
        if (!(es_cal_per_hour(total, s.negative_seconds) <= budget + 1e-6))
            fail_msg("budget %.1f: %d false alarms", (double)budget, total);
    }
    es_cal_stream_free(&s);
}

/* es_cal_measure: the counts at thresholds given, not chosen (calibrate --check). */
static void test_measure_counts_at_given_thresholds(void **state) {
    (void)state;
    es_cal_stream s;
    two_keyword_stream(&s);
    const float thresholds[] = {0.72f, 0.30f};
    es_cal_result r;
    assert_int_equal(es_cal_measure(&s, thresholds, 0, &r), 0);
    assert_true(r.thresholds[YES] == 0.72f && r.thresholds[NO] == 0.30f);
    /* as test_detect_counts_hits_and_false_alarms_exactly has them one by one */
    expect_two_keyword_counts(&r, 3, 2, 3, 2);
    assert_int_equal(r.near_allowed, -1);
    es_cal_stream_free(&s);
}

static void test_one_keyword_gets_the_lowest_threshold_within_budget(void **state) {
    (void)state;
    es_cal_stream s;
    const char *const labels[] = {"hey nova"};
    /* Alarms at 0.905 and 0.705, a positive at 0.305: with one alarm allowed
     * the threshold is 0.71 (not lower, though a hit lies below). */
    const spike spikes[] = {{0, 100, 0.305f}, {0, 1000, 0.905f}, {0, 2000, 0.705f}};
    const span windows[] = {{99.8, 100.8, 0}};
    make_stream(&s, 1, labels, 3601.0, spikes, 3, windows, 1);
    es_cal_result r;
    assert_int_equal(es_cal_calibrate(&s, &(es_cal_budget){1.5f, 1.0f, 0, 1.0f}, 0, &r), 0);
    assert_int_equal(r.met, 1);
    assert_true(fabsf(r.thresholds[0] - 0.71f) < 1e-6f);
    assert_int_equal(r.counts[0].false_alarms, 1);
    assert_int_equal(r.counts[0].hits, 0);
    assert_int_equal(es_cal_calibrate(&s, &(es_cal_budget){0.5f, 1.0f, 0, 1.0f}, 0, &r), 0);
    assert_true(fabsf(r.thresholds[0] - 0.91f) < 1e-6f);
    assert_int_equal(es_cal_calibrate(&s, &(es_cal_budget){10.0f, 1.0f, 0, 1.0f}, 0, &r), 0);
    assert_true(fabsf(r.thresholds[0] - 0.05f) < 1e-6f);
    assert_int_equal(r.counts[0].hits, 1);
    es_cal_stream_free(&s);
}

/* extrapolate_tail: twenty keyword-free peaks spread over 0.105-0.295 say more
 * lie above them, though none was seen; the threshold stays clear of the tail
 * where counting alone goes just above the highest peak. */
static void test_tail_keeps_thresholds_clear_of_unseen_peaks(void **state) {
    (void)state;
    enum { TAIL = 20 };
    spike spikes[TAIL + 2] = {{0, 100, 0.355f}, {0, 200, 0.705f}};
    for (int i = 0; i < TAIL; i++)
        spikes[2 + i] = (spike){0, 400 + 150.0 * i, 0.105f + 0.01f * (float)i};
    const span windows[] = {{99.8, 100.8, 0}, {199.8, 200.8, 0}};
    const char *const labels[] = {"hey nova"};
    es_cal_stream s;
    make_stream(&s, 1, labels, 3602.0, spikes, TAIL + 2, windows, 2);
    es_cal_result seen, tail;
    assert_int_equal(es_cal_calibrate(&s, &(es_cal_budget){0.5f, 1.0f, 0, 1.0f}, 0, &seen), 0);
    assert_true(fabsf(seen.thresholds[0] - 0.30f) < 1e-6f);
    assert_int_equal(seen.counts[0].hits, 2);
    assert_true(isnan(seen.expected_alarms));
    /* The peaks exceed 0.10 by 0.77 on average in logit space: 20 exp(-x / 0.77) falls
     * to 0.5 at x = 2.83, a threshold of 0.654 (0.66 on the grid). */
    assert_int_equal(es_cal_calibrate(&s, &(es_cal_budget){0.5f, 1.0f, 1, 1.0f}, 0, &tail), 0);
    assert_int_equal(tail.met, 1);
    assert_true(fabsf(tail.thresholds[0] - 0.66f) < 1e-6f);
    assert_int_equal(tail.counts[0].hits, 1);
    assert_int_equal(tail.counts[0].false_alarms, 0);
    assert_true(tail.expected_alarms > 0.4 && tail.expected_alarms <= 0.5);
    /* Four per hour: down to 0.28, where the tail expects 3.9 and two were seen. */
    assert_int_equal(es_cal_calibrate(&s, &(es_cal_budget){4.0f, 1.0f, 1, 1.0f}, 0, &tail), 0);
    assert_true(fabsf(tail.thresholds[0] - 0.28f) < 1e-6f);
    assert_int_equal(tail.counts[0].hits, 2);
    assert_int_equal(tail.counts[0].false_alarms, 2);
    es_cal_stream_free(&s);
}

static void test_budget_out_of_reach_keeps_the_top_of_the_grid(void **state) {
    (void)state;
    es_cal_stream s;
    const spike spikes[] = {{YES, 10, 1.0f}, {NO, 20, 0.5f}};
    make_stream(&s, 2, yes_no, 3600.0, spikes, 2, NULL, 0);
    es_cal_result r;
    assert_int_equal(es_cal_calibrate(&s, &(es_cal_budget){0.5f, 1.0f, 0, 1.0f}, 0, &r), 0);
    assert_int_equal(r.met, 0);
    assert_true(fabsf(r.thresholds[YES] - 0.999f) < 1e-6f);
    assert_true(fabsf(r.thresholds[NO] - 0.999f) < 1e-6f);
    assert_int_equal(r.false_alarms, 1);
    es_cal_stream_free(&s);
}

/* Positives held for 0.6 s; false alarms of 0.2 s that peak higher. At the
 * default smoothing (or 200 ms) no threshold within budget finds a positive;
 * a mean of 300 ms finds both, and is chosen. Of equals, the first listed. */
static void test_smoothing_is_chosen_for_the_most_hits(void **state) {
    (void)state;
    es_cal_stream s;
    const char *const labels[] = {"hey nova"};
    const spike spikes[] = {{0, 100, 0.8f},   {0, 100.2, 0.8f}, {0, 100.4, 0.8f}, {0, 200, 0.8f},
                            {0, 200.2, 0.8f}, {0, 200.4, 0.8f}, {0, 1000, 0.95f}, {0, 2000, 0.95f}};
    const span windows[] = {{99.8, 101.0, 0}, {199.8, 201.0, 0}};
    make_stream(&s, 1, labels, 3602.4, spikes, 8, windows, 2);
    es_cal_result r;
    assert_int_equal(es_cal_calibrate(&s, &(es_cal_budget){0.5f, 1.0f, 0, 1.0f}, 50, &r), 0);
    assert_int_equal(r.counts[0].hits, 0);
    const int smoothing[] = {50, 300, 200};
    es_cal_result trials[3];
    assert_int_equal(es_cal_calibrate_smoothing(&s, &(es_cal_budget){0.5f, 1.0f, 0, 1.0f},
                                                smoothing, 3, &r, trials),
                     0);
    assert_int_equal(r.smooth_ms, 300);
    assert_int_equal(r.met, 1);
    assert_int_equal(r.counts[0].hits, 2);
    assert_int_equal(r.counts[0].false_alarms, 0);
    assert_int_equal(trials[0].smooth_ms, 50);
    assert_int_equal(trials[0].hits, 0);
    assert_int_equal(trials[2].smooth_ms, 200);
    assert_int_equal(trials[2].hits, 0);
    const int equals[] = {400, 300};
    assert_int_equal(
        es_cal_calibrate_smoothing(&s, &(es_cal_budget){0.5f, 1.0f, 0, 1.0f}, equals, 2, &r, NULL),
        0);
    assert_int_equal(r.smooth_ms, 400);
    assert_int_equal(r.counts[0].hits, 2);
    assert_int_equal(
        es_cal_calibrate_smoothing(&s, &(es_cal_budget){0.5f, 1.0f, 0, 1.0f}, equals, 0, &r, NULL),
        -1);
    es_cal_stream_free(&s);
}

/* ---- models ------------------------------------------------------------------------- */

static es_model *tiny_model(int count, const char *const *labels) {
    es_frontend_config frontend;
    es_frontend_config_default(&frontend);
    es_feature_spec spec;
    es_pipeline_feature_spec(&frontend, &spec);
    es_model *m = NULL;
    assert_int_equal(es_model_create(&spec, frontend.mel_bands, &m), ES_RNN_OK);
    assert_int_equal(es_model_add_layer(m, ES_LAYER_GRU, 8, ES_ACT_TANH, 0), ES_RNN_OK);
    assert_int_equal(es_model_add_layer(m, ES_LAYER_DENSE, count,
                                        count > 1 ? ES_ACT_SOFTMAX : ES_ACT_SIGMOID, 0),
                     ES_RNN_OK);
    assert_int_equal(es_model_set_labels(m, count, labels), ES_RNN_OK);
    es_model_init_weights(m, 7);
    return m;
}

static void test_apply_stores_thresholds_by_output(void **state) {
    (void)state;
    const char *const labels[] = {"yes", "filler", "no"};
    es_model *m = tiny_model(3, labels);
    es_cal_stream s;
    es_cal_stream_init(&s, m);
    assert_int_equal(s.keyword_count, 2);
    assert_string_equal(s.labels[0], "yes");
    assert_string_equal(s.labels[1], "no");
    es_cal_result r = {.thresholds = {0.3f, 0.6f}};
    assert_int_equal(es_cal_apply(m, &s, &r), 0);
    const float *stored = es_model_thresholds(m);
    assert_non_null(stored);
    assert_true(stored[0] == 0.3f && stored[1] == 0.0f && stored[2] == 0.6f);
    assert_null(es_model_smoothing(m)); /* calibrated with the detector's default */
    /* Calibrated with another smoothing, every keyword carries it. */
    r.smooth_ms = 200;
    assert_int_equal(es_cal_apply(m, &s, &r), 0);
    const int *smoothing = es_model_smoothing(m);
    assert_non_null(smoothing);
    assert_true(smoothing[0] == 200 && smoothing[1] == 0 && smoothing[2] == 200);
    es_model_destroy(m);
}

/* ---- the command --------------------------------------------------------------------- */

static char folder[PATH_MAX];

static int setup(void **state) {
    (void)state;
    snprintf(folder, sizeof folder, "/tmp/earshot-calibrate-test-XXXXXX");
    return mkdtemp(folder) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char command[PATH_MAX + 16];
    snprintf(command, sizeof command, "rm -rf '%s'", folder);
    return system(command) == 0 ? 0 : -1;
}

/* demo.wav's samples [from_s, to_s) into folder/name (16 kHz mono WAV). */
static void cut(const float *demo, size_t count, double from_s, double to_s, const char *name) {
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    SF_INFO info = {.samplerate = SR, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    assert_non_null(f);
    size_t from = (size_t)(from_s * SR), to = (size_t)(to_s * SR);
    if (to > count) to = count;
    assert_int_equal(sf_writef_float(f, demo + from, (sf_count_t)(to - from)),
                     (sf_count_t)(to - from));
    sf_close(f);
}

static void write_text(const char *name, const char *text) {
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Clips cut from demo.wav (tests/clips/demo.truth.tsv: a read sentence,
 * then "left" 4.59-5.06, "stop" 5.96-6.48, "seven" 7.38-7.92) and a model
 * that knows left, stop and go (no clips of go). */
static void make_fixture(void) {
    static int made;
    if (made) return;
    es_audio_file *file = NULL;
    es_error audio_err = {0};
    assert_int_equal(es_audio_file_open(DEMO, &file, &audio_err), 0);
    const size_t max = 10 * SR;
    float *demo = malloc(sizeof(float) * max);
    assert_non_null(demo);
    size_t count = 0;
    long got;
    while (count < max &&
           (got = es_audio_file_read(file, demo + count, max - count, &audio_err)) > 0)
        count += (size_t)got;
    es_audio_file_close(file);
    cut(demo, count, 0.0, 2.2, "sentence-a.wav");
    cut(demo, count, 2.2, 4.3, "sentence-b.wav");
    cut(demo, count, 4.3, 5.5, "left.wav");   /* left at 0.29-0.76 */
    cut(demo, count, 5.7, 6.8, "stop.wav");   /* stop at 0.26-0.78 */
    cut(demo, count, 7.1, 8.3, "seven.wav");  /* a word the model does not know */
    cut(demo, count, 8.0, 8.72, "quiet.wav"); /* the end: near silence, as noise */
    free(demo);
    write_text("manifest.tsv", "# path\tsplit\tkind\tlabel\tstart_s\tend_s\tvoice\n"
                               "sentence-a.wav\tvalid\tspeech\t-\t-\t-\tlibrivox:demo\n"
                               "sentence-b.wav\tvalid\tsentence\t-\t-\t-\tlibrivox:demo\n"
                               "left.wav\tvalid\tkeyword\tleft\t0.29\t0.76\tsynth:demo\n"
                               "stop.wav\tvalid\tkeyword\tstop\t0.26\t0.78\tsynth:demo\n"
                               "seven.wav\tvalid\tkeyword\tseven\t0.28\t0.82\tsynth:demo\n"
                               "quiet.wav\tvalid\tnoise\t-\t-\t-\tnoise:demo\n"
                               "missing-train-clip.wav\ttrain\tsentence\t-\t-\t-\tx\n");
    /* A synthetic voice's keyword and a recorded person's, told apart in the table. */
    write_text("mixed.tsv", "sentence-a.wav\tvalid\tspeech\t-\t-\t-\tlibrivox:demo\n"
                            "left.wav\tvalid\tkeyword\tleft\t0.29\t0.76\tespeak:demo\n"
                            "stop.wav\tvalid\tkeyword\tstop\t0.26\t0.78\tsc:demo\n");
    /* sentence-b labelled with the word it says: a near miss. */
    write_text("near.tsv", "sentence-a.wav\tvalid\tspeech\t-\t-\t-\tlibrivox:demo\n"
                           "sentence-b.wav\tvalid\tsentence\tlift\t-\t-\tlibrivox:demo\n"
                           "left.wav\tvalid\tkeyword\tleft\t0.29\t0.76\tsynth:demo\n"
                           "quiet.wav\tvalid\tnoise\t-\t-\t-\tnoise:demo\n");
    write_text("positives-only.tsv", "left.wav\tvalid\tkeyword\tleft\t0.29\t0.76\tsynth:demo\n"
                                     "sentence-a.wav\ttrain\tspeech\t-\t-\t-\tlibrivox:demo\n");
    write_text("missing-clip.tsv", "sentence-a.wav\tvalid\tspeech\t-\t-\t-\tlibrivox:demo\n"
                                   "gone.wav\tvalid\tsentence\t-\t-\t-\tx\n");
    write_text("bad-line.tsv", "sentence-a.wav\tvalid\tspeech\t-\t-\n");
    write_text("bad-times.tsv", "sentence-a.wav\tvalid\tspeech\t-\t-\t-\tx\n"
                                "left.wav\tvalid\tkeyword\tleft\t0.8\t0.3\tx\n");
    const char *const labels[] = {"filler", "left", "stop", "go"};
    es_model *m = tiny_model(4, labels);
    char path[PATH_MAX + 64];
    es_error err;
    snprintf(path, sizeof path, "%s/model.esm", folder);
    assert_int_equal(es_model_save(m, path, &err), ES_RNN_OK);
    es_model_destroy(m);
    const char *const filler_only[] = {"filler"};
    m = tiny_model(1, filler_only);
    snprintf(path, sizeof path, "%s/filler.esm", folder);
    assert_int_equal(es_model_save(m, path, &err), ES_RNN_OK);
    es_model_destroy(m);
    made = 1;
}

static int run(const char *args, const char *out_name) {
    char command[4 * PATH_MAX];
    snprintf(command, sizeof command, "cd '%s' && '%s' calibrate %s >'%s' 2>'%s.err'", folder,
             EARSHOT, args, out_name, out_name);
    const int status = system(command);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *slurp(const char *name) {
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char text[16384];
    const size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static void test_command_calibrates_a_tiny_manifest(void **state) {
    (void)state;
    make_fixture();
    assert_int_equal(run("model.esm --manifest manifest.tsv -o out.esm --seed 3", "table.txt"), 0);
    const char *table = slurp("table.txt");
    assert_non_null(strstr(table, "keyword  threshold  positives  recall  false_alarms  per_hour"));
    float t_left = 0, t_stop = 0, t_go = 0;
    int p_left = -1, p_stop = -1, p_go = -1;
    for (const char *line = table; line && *line; line = strchr(line, '\n'), line += !!line) {
        char word[32], recall[16];
        float t;
        int positives, alarms;
        if (sscanf(line, "%31s %f %d %15s %d", word, &t, &positives, recall, &alarms) != 5)
            continue;
        if (!strcmp(word, "left")) t_left = t, p_left = positives;
        if (!strcmp(word, "stop")) t_stop = t, p_stop = positives;
        if (!strcmp(word, "go")) {
            t_go = t, p_go = positives;
            assert_string_equal(recall, "-"); /* no clips of go */
        }
    }
    assert_int_equal(p_left, 1);
    assert_int_equal(p_stop, 1);
    assert_int_equal(p_go, 0);
    assert_non_null(strstr(table, "\ntotal "));
    assert_null(strstr(table, "NOT met"));

    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/out.esm", folder);
    es_model *m = NULL;
    es_error err;
    assert_int_equal(es_model_load_file(path, &m, &err), ES_RNN_OK);
    const float *stored = es_model_thresholds(m);
    assert_non_null(stored);
    assert_true(stored[0] == 0.0f);
    assert_true(fabsf(stored[1] - t_left) < 1e-3f);
    assert_true(fabsf(stored[2] - t_stop) < 1e-3f);
    assert_true(fabsf(stored[3] - t_go) < 1e-3f);
    for (int i = 1; i < 4; i++)
        assert_true(stored[i] >= 0.05f && stored[i] <= 0.999f);
    es_model_destroy(m);

    /* The same seed gives the same model; --hours takes a subset. */
    assert_int_equal(run("model.esm -m manifest.tsv -o again.esm --seed 3", "again.txt"), 0);
    char command[3 * PATH_MAX];
    snprintf(command, sizeof command, "cmp -s '%s/out.esm' '%s/again.esm'", folder, folder);
    assert_int_equal(system(command), 0);
    assert_int_equal(
        run("model.esm -m manifest.tsv -o hour.esm --hours 0.0001 --max-false-alarms 100",
            "hour.txt"),
        0);
    assert_non_null(strstr(slurp("hour.txt.err"), "1 keyword-free clips"));
    /* --exclude-voice: a voice kept for an evaluation is not heard at all. */
    assert_int_equal(
        run("model.esm -m manifest.tsv -o excl.esm --exclude-voice synth:", "excl.txt"), 0);
    assert_non_null(strstr(slurp("excl.txt.err"), " 0 keyword clips"));
    /* Keyword-free: the two sentences and the noise, heard alone too. */
    assert_non_null(strstr(slurp("excl.txt.err"), "3 keyword-free clips"));
    /* --recorded-weight: the recall of recorded people and of synthetic voices apart. */
    assert_int_equal(run("model.esm -m mixed.tsv -o mixed.esm --recorded-weight 4", "mixed.txt"),
                     0);
    assert_non_null(strstr(slurp("mixed.txt"), "a recorded person's keyword weighs 4"));
    assert_non_null(strstr(slurp("mixed.txt"), "of the positives: 1 of recorded people, recall "));
    assert_non_null(strstr(slurp("mixed.txt"), "; 1 of synthetic voices, recall "));
    assert_int_equal(run("model.esm -m mixed.tsv -o x.esm --recorded-weight 0.5", "w.txt"), 2);
    /* --passes 3: every clip three times (twice at another speed), each a positive. */
    assert_int_equal(run("model.esm -m manifest.tsv -o passes.esm --passes 3", "passes.txt"), 0);
    assert_non_null(strstr(slurp("passes.txt.err"), "3 passes"));
    int p3_left = -1;
    for (const char *line = slurp("passes.txt"); line && *line;
         line = strchr(line, '\n'), line += !!line) {
        char word[32];
        float t;
        int positives;
        if (sscanf(line, "%31s %f %d", word, &t, &positives) == 3 && !strcmp(word, "left"))
            p3_left = positives;
    }
    assert_int_equal(p3_left, 3);
    /* --smoothing: one of those tried is kept and stored, and said. */
    assert_int_equal(
        run("model.esm -m manifest.tsv -o smooth.esm --smoothing 50,300", "smooth.txt"), 0);
    const char *said = strstr(slurp("smooth.txt.err"), "smoothing ");
    assert_non_null(said);
    int chosen = 0;
    assert_int_equal(sscanf(said, "smoothing %d ms", &chosen), 1);
    assert_true(chosen == 50 || chosen == 300);
    snprintf(path, sizeof path, "%s/smooth.esm", folder);
    assert_int_equal(es_model_load_file(path, &m, &err), ES_RNN_OK);
    const int *smoothing = es_model_smoothing(m);
    assert_non_null(smoothing);
    assert_true(smoothing[0] == 0 && smoothing[1] == chosen && smoothing[3] == chosen);
    es_model_destroy(m);
}

/* The table's rows of the keywords (lines from a keyword to the total). */
static void expect_status(const char *args, int status, const char *message);

static void keyword_rows(const char *table, char *rows, size_t size) {
    const char *from = strstr(table, "\nleft ");
    const char *to = from ? strstr(from, "\ntotal ") : NULL;
    assert_non_null(to);
    snprintf(rows, size, "%.*s", (int)(to - from), from);
}

/* --check measures a calibrated model's own thresholds: on the stream it was
 * calibrated on (same manifest and seed), the very rows calibrate printed. */
static void test_command_checks_a_calibrated_model(void **state) {
    (void)state;
    make_fixture();
    assert_int_equal(run("model.esm -m manifest.tsv -o checked.esm --seed 3 "
                         "--max-false-alarms 100",
                         "chosen.txt"),
                     0);
    assert_int_equal(run("checked.esm -m manifest.tsv --check --seed 3", "check.txt"), 0);
    char chosen[4096], checked[4096];
    keyword_rows(slurp("chosen.txt"), chosen, sizeof chosen);
    keyword_rows(slurp("check.txt"), checked, sizeof checked);
    assert_string_equal(checked, chosen);
    assert_non_null(strstr(slurp("check.txt"), "the model's own thresholds"));
    /* --extrapolate-tail says what the tails expect. */
    assert_int_equal(run("model.esm -m manifest.tsv -o tail.esm --extrapolate-tail", "tail.txt"),
                     0);
    assert_non_null(strstr(slurp("tail.txt"), "expected from the tails"));
    expect_status("checked.esm -m manifest.tsv --check -o x.esm", 2, "leave out -o");
}

/* A manifest's near miss (a sentence clip labelled with its word) is judged on its
 * own, and the table says how many near misses each keyword set off;
 * --near-misses-per-hour: the earlier way, as keyword-free speech. */
static void test_command_judges_manifest_near_misses_per_clip(void **state) {
    (void)state;
    make_fixture();
    assert_int_equal(run("model.esm -m near.tsv -o near.esm", "near.txt"), 0);
    assert_non_null(strstr(slurp("near.txt.err"), "1 of them near misses"));
    const char *table = slurp("near.txt");
    assert_non_null(strstr(table, "near_misses_accepted"));
    assert_non_null(strstr(table, " of 1 "));
    assert_int_equal(
        run("model.esm -m near.tsv -o hourly.esm --near-misses-per-hour", "hourly.txt"), 0);
    assert_non_null(strstr(slurp("hourly.txt.err"), "0 of them near misses"));
    assert_null(strstr(slurp("hourly.txt"), "near_misses_accepted"));
}

static void expect_status(const char *args, int status, const char *message) {
    const int got = run(args, "bad.txt");
    const char *err = slurp("bad.txt.err");
    if (got != status || !strstr(err, message))
        fail_msg("calibrate %s: exit %d (expected %d), stderr: %s", args, got, status, err);
}

static void test_command_refuses_bad_input(void **state) {
    (void)state;
    make_fixture();
    /* Usage errors: exit 2. */
    expect_status("", 2, "expected one MODEL");
    expect_status("model.esm -o x.esm", 2, "--manifest FILE is required");
    expect_status("model.esm -m manifest.tsv", 2, "-o OUT is required");
    expect_status("model.esm -m manifest.tsv -o x.esm --hours -1", 2, "--hours");
    expect_status("model.esm -m manifest.tsv -o x.esm --passes 0", 2, "--passes");
    expect_status("model.esm -m manifest.tsv -o x.esm --passes 21", 2, "--passes");
    expect_status("model.esm -m manifest.tsv -o x.esm --max-false-alarms x", 2,
                  "--max-false-alarms");
    /* The old name of --max-false-alarms stays accepted (scripts use it). */
    expect_status("model.esm -m manifest.tsv -o x.esm --max-alarms-per-hour x", 2,
                  "--max-alarms-per-hour");
    expect_status("model.esm -m manifest.tsv -o x.esm --bogus", 2, "unknown option '--bogus'");
    expect_status("a.esm b.esm -m manifest.tsv -o x.esm", 2, "expected one MODEL");
    expect_status("model.esm -m manifest.tsv -o x.esm --exclude-voice ''", 2, "--exclude-voice");
    expect_status("model.esm -m manifest.tsv -o x.esm --smoothing 5", 2, "--smoothing");
    expect_status("model.esm -m manifest.tsv -o x.esm --smoothing 50,x", 2, "--smoothing");
    expect_status("model.esm -m manifest.tsv -o x.esm --smoothing ,", 2, "--smoothing");
    expect_status("model.esm -m manifest.tsv -o x.esm --smoothing 10,20,30,40,50,60,70,80,90", 2,
                  "at most 8");
    /* Runtime failures: exit 1, naming the file. */
    expect_status("missing.esm -m manifest.tsv -o x.esm", 1, "missing.esm");
    expect_status("manifest.tsv -m manifest.tsv -o x.esm", 1, "manifest.tsv");
    expect_status("filler.esm -m manifest.tsv -o x.esm", 1, "no keyword outputs");
    expect_status("model.esm -m missing.tsv -o x.esm", 1, "missing.tsv");
    expect_status("model.esm -m positives-only.tsv -o x.esm", 1, "no keyword-free clips");
    expect_status("model.esm -m missing-clip.tsv -o x.esm", 1, "missing-clip.tsv:2");
    expect_status("model.esm -m bad-line.tsv -o x.esm", 1, "bad-line.tsv:1: expected 7");
    expect_status("model.esm -m bad-times.tsv -o x.esm", 1, "bad-times.tsv:2");
    expect_status("model.esm -m manifest.tsv -o no-such-folder/x.esm", 1, "no-such-folder");
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/x.esm", folder);
    assert_int_not_equal(access(path, F_OK), 0);
    /* --help: exit 0 with the usage on stdout. */
    assert_int_equal(run("--help", "help.txt"), 0);
    assert_non_null(strstr(slurp("help.txt"), "Usage: earshot calibrate MODEL"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect_counts_hits_and_false_alarms_exactly),
        cmocka_unit_test(test_positives_in_noise_count_apart),
        cmocka_unit_test(test_recorded_weight_favours_recorded_people),
        cmocka_unit_test(test_overlapping_windows_each_count_a_hit),
        cmocka_unit_test(test_near_misses_are_judged_per_clip_not_per_hour),
        cmocka_unit_test(test_thresholds_keep_the_total_within_budget),
        cmocka_unit_test(test_measure_counts_at_given_thresholds),
        cmocka_unit_test(test_one_keyword_gets_the_lowest_threshold_within_budget),
        cmocka_unit_test(test_tail_keeps_thresholds_clear_of_unseen_peaks),
        cmocka_unit_test(test_budget_out_of_reach_keeps_the_top_of_the_grid),
        cmocka_unit_test(test_smoothing_is_chosen_for_the_most_hits),
        cmocka_unit_test(test_apply_stores_thresholds_by_output),
        cmocka_unit_test(test_command_calibrates_a_tiny_manifest),
        cmocka_unit_test(test_command_checks_a_calibrated_model),
        cmocka_unit_test(test_command_judges_manifest_near_misses_per_clip),
        cmocka_unit_test(test_command_refuses_bad_input),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
