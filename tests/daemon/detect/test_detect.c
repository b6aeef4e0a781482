/*
 * Detector unit tests: synthetic posterior sequences in, events out.
 * Frames are 10 ms (160 samples at 16 kHz), so frame i starts at i * 0.01 s.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alloc_count.h"
#include "detect.h"

#define RATE_HZ 16000
#define HOP 160
#define MAX_EVENTS 32
#define FRAME_S 0.01

typedef struct recorded {
    es_event events[MAX_EVENTS];
    char keywords[MAX_EVENTS][32];
    int frame_of_event[MAX_EVENTS]; /* frame being fed when the event came */
    int count;
    int current_frame;
} recorded;

static void record(const es_event *event, void *user) {
    recorded *r = user;
    assert_true(r->count < MAX_EVENTS);
    r->events[r->count] = *event;
    if (event->keyword) {
        strncpy(r->keywords[r->count], event->keyword, sizeof r->keywords[0] - 1);
        r->events[r->count].keyword = r->keywords[r->count];
    }
    r->frame_of_event[r->count] = r->current_frame;
    r->count++;
}

/* ---- VAD ---------------------------------------------------------------------- */

/* Fixed knobs, so that these tests check the mechanics, not the tuned
 * defaults (test_vad_defaults checks those). */
static es_vad_config plain_vad_config(void) {
    es_vad_config c;
    es_vad_config_default(&c);
    c.onset_threshold = 0.5f;
    c.offset_threshold = 0.35f;
    c.min_speech_ms = 250;
    c.min_silence_ms = 300;
    c.max_speech_ms = 30000;
    c.pad_ms = 0;
    return c;
}

/* Feeds p[0..n) then flushes. */
static void run_vad(const es_vad_config *config, const float *p, int n, recorded *r) {
    es_vad_detector *d = NULL;
    assert_int_equal(es_vad_detector_create(config, RATE_HZ, HOP, &d), ES_DETECT_OK);
    memset(r, 0, sizeof *r);
    for (int i = 0; i < n; i++) {
        r->current_frame = i;
        es_vad_detector_step(d, (int64_t)i * HOP, p[i], record, r);
    }
    r->current_frame = n;
    es_vad_detector_flush(d, record, r);
    es_vad_detector_destroy(d);
}

static void fill(float *p, int from, int to, float value) {
    for (int i = from; i < to; i++)
        p[i] = value;
}

static void assert_segment(const es_event *e, double start_s, double end_s) {
    assert_int_equal(e->type, ES_EVENT_SPEECH);
    assert_float_equal(e->start_s, start_s, 1e-9);
    assert_float_equal(e->end_s, end_s, 1e-9);
}

static void test_vad_one_segment_and_score(void **state) {
    (void)state;
    float p[200] = {0};
    fill(p, 50, 100, 0.8f);
    fill(p, 100, 150, 0.6f);
    recorded r;
    es_vad_config c = plain_vad_config();
    run_vad(&c, p, 200, &r);
    assert_int_equal(r.count, 1);
    assert_segment(&r.events[0], 0.50, 1.50);
    assert_float_equal(r.events[0].score, 0.7f, 1e-5);
    /* Sent once 300 ms of silence confirmed the end: at frame 150 + 30 - 1. */
    assert_int_equal(r.frame_of_event[0], 179);
}

static void test_vad_hysteresis_dither_stays_one_segment(void **state) {
    (void)state;
    float p[300] = {0};
    p[20] = 0.9f;
    /* Between offset (0.35) and onset (0.5): neither starts nor ends speech. */
    for (int i = 21; i < 200; i++)
        p[i] = (i % 2) ? 0.36f : 0.49f;
    recorded r;
    es_vad_config c = plain_vad_config();
    c.min_silence_ms = 0; /* no bridging: only hysteresis holds it together */
    run_vad(&c, p, 300, &r);
    assert_int_equal(r.count, 1);
    assert_segment(&r.events[0], 0.20, 2.00);

    /* Dithering below the onset never starts a segment. */
    float q[100];
    for (int i = 0; i < 100; i++)
        q[i] = (i % 2) ? 0.2f : 0.49f;
    run_vad(&c, q, 100, &r);
    assert_int_equal(r.count, 0);
}

static void test_vad_min_speech_drops_blip(void **state) {
    (void)state;
    float p[300] = {0};
    fill(p, 10, 30, 0.9f);   /* 200 ms: shorter than 250 ms */
    fill(p, 100, 126, 0.9f); /* 260 ms: kept */
    recorded r;
    es_vad_config c = plain_vad_config();
    run_vad(&c, p, 300, &r);
    assert_int_equal(r.count, 1);
    assert_segment(&r.events[0], 1.00, 1.26);
}

static void test_vad_min_silence_bridges_short_gap(void **state) {
    (void)state;
    float p[400] = {0};
    fill(p, 10, 60, 0.9f);
    fill(p, 89, 140, 0.9f);  /* 290 ms gap: bridged */
    fill(p, 170, 220, 0.9f); /* 300 ms gap: not bridged */
    recorded r;
    es_vad_config c = plain_vad_config();
    run_vad(&c, p, 400, &r);
    assert_int_equal(r.count, 2);
    assert_segment(&r.events[0], 0.10, 1.40);
    assert_segment(&r.events[1], 1.70, 2.20);
    /* The bridged gap's zeros count in the mean: 101 frames of 0.9 over 130. */
    assert_float_equal(r.events[0].score, 0.9 * 101 / 130, 1e-5);
}

static void test_vad_max_speech_splits(void **state) {
    (void)state;
    float p[700] = {0};
    fill(p, 0, 650, 0.9f);
    recorded r;
    es_vad_config c = plain_vad_config();
    c.max_speech_ms = 3000;
    c.pad_ms = 30;
    run_vad(&c, p, 700, &r);
    assert_int_equal(r.count, 3);
    assert_segment(&r.events[0], 0.00, 3.00);
    assert_segment(&r.events[1], 3.00, 6.00);
    assert_segment(&r.events[2], 6.00, 6.53);
    /* A remainder shorter than min speech is still speech: not dropped. */
    fill(p, 0, 700, 0.0f);
    fill(p, 0, 310, 0.9f);
    run_vad(&c, p, 700, &r);
    assert_int_equal(r.count, 2);
    assert_segment(&r.events[1], 3.00, 3.13);
}

static void test_vad_max_speech_prefers_bridged_gap(void **state) {
    (void)state;
    float p[500] = {0};
    fill(p, 0, 200, 0.9f);
    fill(p, 210, 400, 0.9f); /* 100 ms gap, bridged, then too long */
    recorded r;
    es_vad_config c = plain_vad_config();
    c.max_speech_ms = 3000;
    c.pad_ms = 100;
    run_vad(&c, p, 500, &r);
    assert_int_equal(r.count, 2);
    /* Padding inside the gap is shared: each side gets half of it. */
    assert_segment(&r.events[0], 0.00, 2.05);
    assert_segment(&r.events[1], 2.05, 4.10);
    assert_float_equal(r.events[0].score, 0.9f, 1e-5);
}

static void test_vad_padding(void **state) {
    (void)state;
    float p[300] = {0};
    fill(p, 2, 50, 0.9f);
    fill(p, 100, 150, 0.9f);
    recorded r;
    es_vad_config c = plain_vad_config();
    c.pad_ms = 50;
    run_vad(&c, p, 300, &r);
    assert_int_equal(r.count, 2);
    assert_segment(&r.events[0], 0.00, 0.55); /* start clamped at 0 */
    assert_segment(&r.events[1], 0.95, 1.55);

    /* Padding wider than half the gap: the paddings meet in the middle. */
    c.pad_ms = 400;
    run_vad(&c, p, 300, &r);
    assert_int_equal(r.count, 2);
    assert_segment(&r.events[0], 0.00, 0.75);
    assert_segment(&r.events[1], 0.75, 1.90);

    /* At end of stream the end padding stops at the last frame. */
    run_vad(&c, p, 160, &r);
    assert_int_equal(r.count, 2);
    assert_segment(&r.events[1], 0.75, 1.60);
}

static void test_vad_in_speech(void **state) {
    (void)state;
    es_vad_config c = plain_vad_config();
    es_vad_detector *d = NULL;
    assert_int_equal(es_vad_detector_create(&c, RATE_HZ, HOP, &d), ES_DETECT_OK);
    recorded r = {0};
    es_vad_detector_step(d, 0, 0.1f, record, &r);
    assert_false(es_vad_detector_in_speech(d));
    es_vad_detector_step(d, HOP, 0.9f, record, &r);
    assert_true(es_vad_detector_in_speech(d));
    int i = 2;
    es_vad_detector_step(d, i++ * HOP, 0.1f, record, &r);
    assert_true(es_vad_detector_in_speech(d)); /* a gap that may still be bridged */
    while (i < 40)
        es_vad_detector_step(d, i++ * HOP, 0.1f, record, &r);
    assert_false(es_vad_detector_in_speech(d));
    es_vad_detector_destroy(d);
}

static void test_vad_nan_is_silence(void **state) {
    (void)state;
    float p[100] = {0};
    fill(p, 10, 60, 0.9f);
    p[30] = NAN; /* one bad frame inside speech ends nothing: it is bridged */
    recorded r;
    es_vad_config c = plain_vad_config();
    run_vad(&c, p, 100, &r);
    assert_int_equal(r.count, 1);
    assert_segment(&r.events[0], 0.10, 0.60);
    assert_true(r.events[0].score > 0.8f && r.events[0].score < 0.9f);
}

/* The defaults scripts/tune-detector.sh chose for the shipped VAD. */
static void test_vad_defaults(void **state) {
    (void)state;
    es_vad_config c;
    es_vad_config_default(&c);
    assert_int_equal(es_vad_config_check(&c, NULL), 0);
    assert_float_equal(c.onset_threshold, 0.75f, 1e-6);
    assert_true(c.offset_threshold < 0.0f); /* the onset threshold */
    assert_int_equal(c.min_speech_ms, 30);
    assert_int_equal(c.min_silence_ms, 150);
    assert_int_equal(c.max_speech_ms, 30000);
    assert_int_equal(c.pad_ms, 0);

    /* Speech rising at frame 40 opens a segment there; with no padding its
     * start is that frame's start, and 150 ms of silence send it. */
    float p[200] = {0};
    fill(p, 40, 100, 0.95f);
    fill(p, 100, 113, 0.5f); /* a 130 ms dip: bridged */
    fill(p, 113, 120, 0.95f);
    fill(p, 150, 152, 0.95f); /* 20 ms: shorter than 30 ms, dropped */
    fill(p, 117, 119, 0.7f);  /* below 0.75: a dip too, as the offset is the onset */
    recorded r;
    run_vad(&c, p, 200, &r);
    assert_int_equal(r.count, 1);
    assert_segment(&r.events[0], 0.40, 1.20);
    assert_int_equal(r.frame_of_event[0], 134);

    /* Lowering only the onset threshold lowers the offset with it. */
    c.onset_threshold = 0.4f;
    assert_int_equal(es_vad_config_check(&c, NULL), 0);
    run_vad(&c, p, 200, &r);
    assert_int_equal(r.count, 1);
    assert_segment(&r.events[0], 0.40, 1.20);
    assert_float_equal(r.events[0].score, (0.95 * 60 + 0.5 * 13 + 0.95 * 5 + 0.7 * 2) / 80, 1e-5);
}

/* Feeds p[0..n) and lists the frames after which a segment was confirmed. */
static int run_confirmed(const es_vad_config *config, const float *p, int n, int *frames,
                         double *starts_s, int max) {
    es_vad_detector *d = NULL;
    assert_int_equal(es_vad_detector_create(config, RATE_HZ, HOP, &d), ES_DETECT_OK);
    int count = 0;
    for (int i = 0; i < n; i++) {
        es_vad_detector_step(d, (int64_t)i * HOP, p[i], NULL, NULL);
        int64_t start = -1;
        if (es_vad_detector_confirmed(d, &start)) {
            assert_true(count < max);
            frames[count] = i;
            starts_s[count++] = (double)start / RATE_HZ;
        }
    }
    es_vad_detector_flush(d, NULL, NULL);
    assert_false(es_vad_detector_confirmed(d, NULL));
    es_vad_detector_destroy(d);
    return count;
}

static void test_vad_confirmed_onset(void **state) {
    (void)state;
    float p[400] = {0};
    fill(p, 20, 25, 0.9f);   /* 50 ms: never confirmed (and dropped) */
    fill(p, 40, 100, 0.9f);  /* confirmed once 70 ms long: after frame 46 */
    fill(p, 100, 105, 0.0f); /* a bridged gap: no second onset */
    fill(p, 105, 150, 0.9f);
    fill(p, 300, 320, 0.9f); /* a new segment: confirmed after frame 306 */
    es_vad_config c;
    es_vad_config_default(&c);
    c.min_speech_ms = 70;
    c.pad_ms = 30;
    int frames[8];
    double starts[8];
    int count = run_confirmed(&c, p, 400, frames, starts, 8);
    assert_int_equal(count, 2);
    assert_int_equal(frames[0], 46);
    assert_float_equal(starts[0], 0.37, 1e-9); /* padded, as its event will be */
    assert_int_equal(frames[1], 306);
    assert_float_equal(starts[1], 2.97, 1e-9);

    /* The same segments' events carry the same starts. */
    recorded r;
    run_vad(&c, p, 400, &r);
    assert_int_equal(r.count, 2);
    assert_float_equal(r.events[0].start_s, starts[0], 1e-9);
    assert_float_equal(r.events[1].start_s, starts[1], 1e-9);

    /* No minimum: confirmed at the onset frame itself. */
    c.min_speech_ms = 0;
    count = run_confirmed(&c, p, 400, frames, starts, 8);
    assert_int_equal(count, 3);
    assert_int_equal(frames[0], 20);
}

/* ---- speech_start events ------------------------------------------------------ */

/* The invariant of speech_start events, over the events `r` recorded: they
 * alternate speech_start, speech; each pair carries the same start; a
 * speech_start is sent at the end of the frame being fed (`time`), after its
 * start and never after its speech event. Returns the number of pairs. */
static int assert_speech_start_pairs(const recorded *r) {
    int pairs = 0;
    for (int i = 0; i < r->count; i++) {
        const es_event *e = &r->events[i];
        if (i % 2 == 0) {
            if (e->type != ES_EVENT_SPEECH_START)
                fail_msg("event %d: speech without speech_start", i);
            assert_float_equal(e->time_s, (r->frame_of_event[i] + 1) * FRAME_S, 1e-9);
            assert_true(e->start_s < e->time_s);
        } else {
            const es_event *start = &r->events[i - 1];
            if (e->type != ES_EVENT_SPEECH) fail_msg("event %d: two speech_start in a row", i);
            assert_float_equal(e->start_s, start->start_s, 1e-12);
            assert_true(r->frame_of_event[i - 1] <= r->frame_of_event[i]);
            pairs++;
        }
    }
    if (r->count % 2) fail_msg("a speech_start without its speech event");
    return pairs;
}

/* Drops the speech_start events: what the detector sends without the option. */
static void without_speech_starts(const recorded *in, recorded *out) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < in->count; i++) {
        if (in->events[i].type == ES_EVENT_SPEECH_START) continue;
        out->events[out->count] = in->events[i];
        out->frame_of_event[out->count++] = in->frame_of_event[i];
    }
}

static void assert_same_speech_events(const recorded *a, const recorded *b) {
    assert_int_equal(a->count, b->count);
    for (int i = 0; i < a->count; i++) {
        assert_int_equal(a->events[i].type, b->events[i].type);
        assert_true(a->events[i].start_s == b->events[i].start_s);
        assert_true(a->events[i].end_s == b->events[i].end_s);
        assert_true(a->events[i].score == b->events[i].score);
        assert_int_equal(a->frame_of_event[i], b->frame_of_event[i]);
    }
}

static void test_vad_speech_start_at_confirmation(void **state) {
    (void)state;
    float p[400] = {0};
    fill(p, 20, 25, 0.9f);   /* 50 ms: never confirmed, dropped: no speech_start either */
    fill(p, 40, 100, 0.9f);  /* confirmed once 70 ms long: after frame 46 */
    fill(p, 100, 105, 0.0f); /* a bridged gap: no second speech_start */
    fill(p, 105, 150, 0.9f);
    fill(p, 300, 320, 0.9f); /* a new segment: confirmed after frame 306 */
    es_vad_config c;
    es_vad_config_default(&c);
    c.min_speech_ms = 70;
    recorded off, on, stripped;
    run_vad(&c, p, 400, &off);
    assert_int_equal(off.count, 2);
    for (int i = 0; i < off.count; i++)
        assert_int_equal(off.events[i].type, ES_EVENT_SPEECH); /* opt-in */

    c.speech_start_events = 1;
    run_vad(&c, p, 400, &on);
    assert_int_equal(assert_speech_start_pairs(&on), 2);
    assert_int_equal(on.frame_of_event[0], 46);
    assert_float_equal(on.events[0].start_s, 0.40, 1e-9);
    assert_float_equal(on.events[0].time_s, 0.47, 1e-9);
    assert_int_equal(on.frame_of_event[2], 306);
    assert_float_equal(on.events[2].start_s, 3.00, 1e-9);
    assert_float_equal(on.events[2].time_s, 3.07, 1e-9);
    /* The last segment is still open at the end: its speech event comes at flush. */
    assert_int_equal(on.frame_of_event[3], 400 - 80 + 14); /* 150 ms of silence after 320 */
    without_speech_starts(&on, &stripped);
    assert_same_speech_events(&stripped, &off);

    /* ...and the same frames as the confirmed-onset query. */
    int frames[8];
    double starts[8];
    c.pad_ms = 30;
    assert_int_equal(run_confirmed(&c, p, 400, frames, starts, 8), 2);
    run_vad(&c, p, 400, &on);
    assert_int_equal(assert_speech_start_pairs(&on), 2);
    assert_int_equal(on.frame_of_event[0], frames[0]);
    assert_float_equal(on.events[0].start_s, starts[0], 1e-12);
    assert_int_equal(on.frame_of_event[2], frames[1]);
    assert_float_equal(on.events[2].start_s, starts[1], 1e-12);
}

static void test_vad_speech_start_at_flush(void **state) {
    (void)state;
    float p[100] = {0};
    fill(p, 50, 100, 0.9f); /* still speaking when the stream ends */
    es_vad_config c = plain_vad_config();
    c.speech_start_events = 1;
    recorded r;
    run_vad(&c, p, 100, &r);
    assert_int_equal(assert_speech_start_pairs(&r), 1);
    assert_int_equal(r.frame_of_event[0], 74); /* 250 ms of speech */
    assert_int_equal(r.frame_of_event[1], 100);
    assert_segment(&r.events[1], 0.50, 1.00);

    /* Ended by the stream before it was long enough: neither event. */
    run_vad(&c, p, 70, &r);
    assert_int_equal(r.count, 0);
}

static void test_vad_speech_start_per_max_speech_split(void **state) {
    (void)state;
    float p[700] = {0};
    fill(p, 0, 650, 0.9f);
    es_vad_config c = plain_vad_config();
    c.max_speech_ms = 3000;
    c.pad_ms = 30;
    c.speech_start_events = 1;
    recorded r;
    run_vad(&c, p, 700, &r);
    assert_int_equal(assert_speech_start_pairs(&r), 3);
    assert_int_equal(r.frame_of_event[0], 24);
    /* A part begun at a split is announced in the frame that split it, right
     * after the part before it. */
    assert_int_equal(r.events[1].type, ES_EVENT_SPEECH);
    assert_int_equal(r.frame_of_event[1], 300);
    assert_int_equal(r.frame_of_event[2], 300);
    assert_float_equal(r.events[2].start_s, 3.00, 1e-9);
    assert_float_equal(r.events[2].time_s, 3.01, 1e-9);
    assert_int_equal(r.frame_of_event[4], 600);
    assert_segment(&r.events[5], 6.00, 6.53);

    /* Split at a bridged gap: the second part starts after the gap, padded
     * up to the first part's padded end. */
    fill(p, 0, 700, 0.0f);
    fill(p, 0, 200, 0.9f);
    fill(p, 210, 400, 0.9f);
    c.pad_ms = 100;
    run_vad(&c, p, 500, &r);
    assert_int_equal(assert_speech_start_pairs(&r), 2);
    assert_float_equal(r.events[2].start_s, r.events[1].end_s, 1e-9);
    assert_int_equal(r.frame_of_event[2], 300);
}

static void test_vad_speech_start_with_padding(void **state) {
    (void)state;
    float p[300] = {0};
    fill(p, 2, 50, 0.9f);
    fill(p, 100, 150, 0.9f);
    es_vad_config c = plain_vad_config();
    c.speech_start_events = 1;
    recorded r;
    /* The padded start is known at confirmation: clamped at 0, and (padding
     * wider than half the gap) at the previous segment's padded end. */
    c.pad_ms = 50;
    run_vad(&c, p, 300, &r);
    assert_int_equal(assert_speech_start_pairs(&r), 2);
    assert_float_equal(r.events[0].start_s, 0.00, 1e-9);
    assert_float_equal(r.events[2].start_s, 0.95, 1e-9);
    c.pad_ms = 400;
    run_vad(&c, p, 300, &r);
    assert_int_equal(assert_speech_start_pairs(&r), 2);
    assert_float_equal(r.events[2].start_s, 0.75, 1e-9);
    /* The first segment was sent at the frame that opened the second (the
     * silence was shorter than 2 x padding); the second is announced after. */
    assert_int_equal(r.frame_of_event[1], 100);
    assert_int_equal(r.frame_of_event[2], 124);
}

/* max_speech barely above min_speech: a part can be cut off before it was
 * ever long enough to be confirmed; it is still announced, right before. */
static void test_vad_speech_start_before_unconfirmed_split(void **state) {
    (void)state;
    float p[200] = {0};
    p[10] = 0.9f;
    fill(p, 11, 18, 0.0f); /* a 70 ms gap, bridged */
    fill(p, 18, 60, 0.9f);
    es_vad_config c = plain_vad_config();
    c.min_speech_ms = 50;
    c.max_speech_ms = 60;
    c.min_silence_ms = 150;
    c.speech_start_events = 1;
    recorded r, off;
    run_vad(&c, p, 200, &r);
    int pairs = assert_speech_start_pairs(&r);
    assert_true(pairs >= 2);
    c.speech_start_events = 0;
    run_vad(&c, p, 200, &off);
    recorded stripped;
    without_speech_starts(&r, &stripped);
    assert_same_speech_events(&stripped, &off);
    assert_int_equal(off.count, pairs);
}

/* Streams random posteriors through many configs: the pairs hold, and the
 * speech events are exactly those sent without the option. */
typedef struct pair_checker {
    int pending; /* a speech_start waits for its speech event */
    double pending_start;
    double last_time;
    int pairs, speeches_off, failures;
    double off_start[4096], off_end[4096];
    int off_count;
} pair_checker;

static void check_pair(const es_event *e, void *user) {
    pair_checker *k = user;
    if (e->type == ES_EVENT_SPEECH_START) {
        if (k->pending || !(e->start_s < e->time_s) || e->time_s < k->last_time) k->failures++;
        k->pending = 1;
        k->pending_start = e->start_s;
        k->last_time = e->time_s;
    } else if (e->type == ES_EVENT_SPEECH) {
        if (!k->pending || e->start_s != k->pending_start) k->failures++;
        if (k->pairs >= k->off_count || e->start_s != k->off_start[k->pairs] ||
            e->end_s != k->off_end[k->pairs])
            k->failures++;
        k->pending = 0;
        k->pairs++;
    }
}

static void collect_off(const es_event *e, void *user) {
    pair_checker *k = user;
    if (e->type != ES_EVENT_SPEECH || k->off_count == 4096) {
        k->failures++;
        return;
    }
    k->off_start[k->off_count] = e->start_s;
    k->off_end[k->off_count++] = e->end_s;
}

static void test_vad_speech_start_invariant_random(void **state) {
    (void)state;
    static const int min_speech[] = {0, 30, 70, 250};
    static const int min_silence[] = {0, 50, 150, 300};
    static const int pad[] = {0, 30, 100, 400};
    static const int max_speech[] = {0, 100, 400, 3000};
    enum { N = 3000 };
    static float p[N];
    uint32_t seed = 12345;
    int total_pairs = 0;
    for (int run = 0; run < 256; run++) {
        es_vad_config c = plain_vad_config();
        c.min_speech_ms = min_speech[run % 4];
        c.min_silence_ms = min_silence[(run / 4) % 4];
        c.pad_ms = pad[(run / 16) % 4];
        c.max_speech_ms = max_speech[(run / 64) % 4];
        if (c.max_speech_ms != 0 && c.max_speech_ms <= c.min_speech_ms)
            c.max_speech_ms = c.min_speech_ms + 10;
        assert_int_equal(es_vad_config_check(&c, NULL), 0);
        /* Runs of speech and silence 10..600 ms long, probabilities near the thresholds. */
        for (int i = 0; i < N;) {
            seed = seed * 1664525u + 1013904223u;
            int len = 1 + (int)((seed >> 8) % 60);
            int speech = (seed >> 4) & 1;
            for (int j = 0; j < len && i < N; j++, i++) {
                seed = seed * 1664525u + 1013904223u;
                float u = (float)((seed >> 8) & 0xffff) / 65536.0f;
                p[i] = speech ? 0.4f + 0.6f * u : 0.45f * u;
            }
        }
        static pair_checker k;
        memset(&k, 0, sizeof k);
        for (int on = 0; on <= 1; on++) {
            c.speech_start_events = on;
            es_vad_detector *d = NULL;
            assert_int_equal(es_vad_detector_create(&c, RATE_HZ, HOP, &d), ES_DETECT_OK);
            es_event_sink sink = on ? check_pair : collect_off;
            for (int i = 0; i < N; i++)
                es_vad_detector_step(d, (int64_t)i * HOP, p[i], sink, &k);
            es_vad_detector_flush(d, sink, &k);
            es_vad_detector_destroy(d);
        }
        if (k.failures || k.pending || k.pairs != k.off_count)
            fail_msg("run %d (min speech %d, min silence %d, pad %d, max speech %d): %d "
                     "failures, %d pairs, %d speech events without the option",
                     run, c.min_speech_ms, c.min_silence_ms, c.pad_ms, c.max_speech_ms, k.failures,
                     k.pairs, k.off_count);
        total_pairs += k.pairs;
    }
    assert_true(total_pairs > 1000);
}

static void test_vad_config_check(void **state) {
    (void)state;
    es_vad_config c = plain_vad_config();
    assert_int_equal(es_vad_config_check(&c, NULL), 0);
    assert_int_equal(es_vad_config_check(NULL, NULL), ES_DETECT_ERR_CONFIG);

    es_vad_config bad = c;
    bad.onset_threshold = 1.5f;
    assert_int_equal(es_vad_config_check(&bad, NULL), ES_DETECT_ERR_CONFIG);
    bad = c;
    bad.onset_threshold = NAN;
    assert_int_equal(es_vad_config_check(&bad, NULL), ES_DETECT_ERR_CONFIG);
    bad = c;
    bad.offset_threshold = 0.6f; /* above onset */
    assert_int_equal(es_vad_config_check(&bad, NULL), ES_DETECT_ERR_CONFIG);
    bad = c;
    bad.min_speech_ms = -1;
    assert_int_equal(es_vad_config_check(&bad, NULL), ES_DETECT_ERR_CONFIG);
    bad = c;
    bad.min_silence_ms = -5;
    assert_int_equal(es_vad_config_check(&bad, NULL), ES_DETECT_ERR_CONFIG);
    bad = c;
    bad.max_speech_ms = 200; /* not longer than min speech */
    assert_int_equal(es_vad_config_check(&bad, NULL), ES_DETECT_ERR_CONFIG);
    bad = c;
    bad.pad_ms = -1;
    assert_int_equal(es_vad_config_check(&bad, NULL), ES_DETECT_ERR_CONFIG);

    es_vad_detector *d = (es_vad_detector *)&c;
    bad = c;
    bad.onset_threshold = 0.0f;
    assert_int_equal(es_vad_detector_create(&bad, RATE_HZ, HOP, &d), ES_DETECT_ERR_CONFIG);
    assert_null(d);
    assert_int_equal(es_vad_detector_create(&c, RATE_HZ, 0, &d), ES_DETECT_ERR_CONFIG);
    bad = c;
    bad.min_speech_ms = 0;
    bad.max_speech_ms = 5; /* shorter than one hop */
    assert_int_equal(es_vad_detector_create(&bad, RATE_HZ, HOP, &d), ES_DETECT_ERR_CONFIG);
    bad = c;
    bad.speech_start_events = 2; /* a flag: 0 or 1 */
    assert_int_equal(es_vad_config_check(&bad, NULL), ES_DETECT_ERR_CONFIG);
    bad.speech_start_events = 1;
    assert_int_equal(es_vad_config_check(&bad, NULL), 0);
}

/* ---- keywords --------------------------------------------------------------------- */

static const char *const labels3[] = {"filler", "left", "right"};

static es_kws_config plain_kws_config(void) {
    es_kws_config c;
    es_kws_config_default(&c);
    c.smooth_ms = 10; /* one frame: no smoothing unless a test wants it */
    c.peak_wait_ms = 0;
    return c;
}

/* posteriors[i * 3 + k]; in_speech may be NULL (always in speech). */
static void run_kws(const es_kws_config *config, const float *posteriors, const int *in_speech,
                    int n, recorded *r) {
    es_kws_detector *d = NULL;
    assert_int_equal(es_kws_detector_create(config, 3, labels3, RATE_HZ, HOP, &d), ES_DETECT_OK);
    memset(r, 0, sizeof *r);
    for (int i = 0; i < n; i++) {
        r->current_frame = i;
        es_kws_detector_step(d, (int64_t)i * HOP, posteriors + i * 3, in_speech ? in_speech[i] : 1,
                             record, r);
    }
    r->current_frame = n;
    es_kws_detector_flush(d, record, r);
    es_kws_detector_destroy(d);
}

static void set_kw(float *post, int keyword, int from, int to, float value) {
    for (int i = from; i < to; i++)
        post[i * 3 + keyword] = value;
}

static void assert_keyword(const es_event *e, const char *keyword, double time_s) {
    assert_int_equal(e->type, ES_EVENT_KEYWORD);
    assert_string_equal(e->keyword, keyword);
    assert_float_equal(e->time_s, time_s, 1e-9);
}

static void test_kws_fires_once_per_crossing(void **state) {
    (void)state;
    float post[300 * 3] = {0};
    set_kw(post, 0, 0, 300, 0.9f); /* filler: never a keyword */
    set_kw(post, 1, 50, 60, 0.3f);
    set_kw(post, 1, 60, 80, 0.8f); /* one crossing at frame 60 */
    set_kw(post, 2, 200, 205, 0.7f);
    recorded r;
    es_kws_config c = plain_kws_config();
    run_kws(&c, post, NULL, 300, &r);
    assert_int_equal(r.count, 2);
    assert_keyword(&r.events[0], "left", 0.61);          /* end of the crossing frame */
    assert_float_equal(r.events[0].start_s, 0.00, 1e-9); /* speech since the start */
    assert_float_equal(r.events[0].end_s, 0.50, 1e-9);   /* rose above 0.25 */
    assert_float_equal(r.events[0].score, 0.8f, 1e-6);
    assert_int_equal(r.frame_of_event[0], 60);
    assert_keyword(&r.events[1], "right", 2.01);
}

static void test_kws_bounds_from_rise_and_speech_and_score_at_peak(void **state) {
    (void)state;
    float post[300 * 3] = {0};
    int speech[300] = {0};
    for (int i = 30; i < 90; i++)
        speech[i] = 1;
    set_kw(post, 1, 40, 50, 0.2f);
    set_kw(post, 1, 50, 55, 0.4f); /* above half the threshold (0.25) from frame 50 */
    set_kw(post, 1, 55, 57, 0.7f); /* crosses 0.5 at frame 55 */
    set_kw(post, 1, 57, 58, 0.95f);
    set_kw(post, 1, 58, 70, 0.3f);   /* past its peak: the event goes */
    set_kw(post, 2, 160, 250, 0.9f); /* never falls: sent after the peak wait */
    recorded r;
    es_kws_config c = plain_kws_config();
    c.peak_wait_ms = 100;
    run_kws(&c, post, speech, 300, &r);
    assert_int_equal(r.count, 2);
    assert_keyword(&r.events[0], "left", 0.56);
    assert_float_equal(r.events[0].start_s, 0.30, 1e-9); /* the VAD's speech began there */
    assert_float_equal(r.events[0].end_s, 0.50, 1e-9);   /* the posterior rose there */
    assert_float_equal(r.events[0].score, 0.95f, 1e-6);  /* the peak while waiting */
    assert_int_equal(r.frame_of_event[0], 58);
    assert_keyword(&r.events[1], "right", 1.61);
    assert_float_equal(r.events[1].start_s, 0.30, 1e-9); /* the latest speech, 1.3 s before */
    assert_float_equal(r.events[1].end_s, 1.60, 1e-9);
    assert_int_equal(r.frame_of_event[1], 170);

    /* No speech within the look-back: the start is the look-back's limit. */
    int silent[300] = {0};
    run_kws(&c, post, silent, 300, &r);
    assert_int_equal(r.count, 2);
    assert_float_equal(r.events[0].start_s, 0.00, 1e-9); /* clamped to the stream's start */
    assert_float_equal(r.events[1].start_s, (1.60 - ES_KWS_MAX_LOOKBACK_MS / 1000.0), 1e-6);

    /* A keyword still waiting for its peak at the end of the stream is sent by flush. */
    run_kws(&c, post, speech, 165, &r);
    assert_int_equal(r.count, 2);
    assert_float_equal(r.events[1].score, 0.9f, 1e-6);
    assert_int_equal(r.frame_of_event[1], 165);
}

static void test_kws_smoothing(void **state) {
    (void)state;
    float post[100 * 3] = {0};
    set_kw(post, 1, 20, 22, 1.0f); /* 2 frames of 1.0: a 5-frame mean peaks at 0.4 */
    set_kw(post, 2, 50, 53, 1.0f); /* 3 frames: mean reaches 0.6 at frame 52 */
    recorded r;
    es_kws_config c = plain_kws_config();
    c.smooth_ms = 50;
    run_kws(&c, post, NULL, 100, &r);
    assert_int_equal(r.count, 1);
    assert_keyword(&r.events[0], "right", 0.53);
    assert_float_equal(r.events[0].score, 0.6f, 1e-6);

    /* Without smoothing the two-frame spike fires. */
    c.smooth_ms = 0;
    c.refractory_ms = 0;
    run_kws(&c, post, NULL, 100, &r);
    assert_int_equal(r.count, 2);
    assert_keyword(&r.events[0], "left", 0.21);
}

/* A keyword's own smoothing (a model calibrated with it) replaces the
 * config's for that keyword alone; with no threshold of its own, the default
 * threshold applies. */
static void test_kws_per_keyword_smoothing(void **state) {
    (void)state;
    float post[100 * 3] = {0};
    set_kw(post, 1, 20, 22, 1.0f); /* two frames: fires unsmoothed */
    set_kw(post, 2, 50, 52, 1.0f); /* the same spike */
    recorded r;
    es_kws_config c = plain_kws_config();
    c.refractory_ms = 0;
    c.threshold_count = 1;
    strcpy(c.thresholds[0].keyword, "right");
    c.thresholds[0].smooth_ms = 50; /* a 5-frame mean peaks at 0.4: no event */
    run_kws(&c, post, NULL, 100, &r);
    assert_int_equal(r.count, 1);
    assert_keyword(&r.events[0], "left", 0.21);

    c.thresholds[0].threshold = 0.35f; /* its own threshold with its own smoothing */
    run_kws(&c, post, NULL, 100, &r);
    assert_int_equal(r.count, 2);
    assert_keyword(&r.events[1], "right", 0.52);
    assert_float_equal(r.events[1].score, 0.4f, 1e-6);
}

static void test_kws_refractory_suppresses_second(void **state) {
    (void)state;
    float post[400 * 3] = {0};
    set_kw(post, 1, 10, 20, 0.9f);
    set_kw(post, 2, 60, 70, 0.9f);   /* 500 ms later, other keyword: suppressed */
    set_kw(post, 1, 105, 140, 0.9f); /* crossing at frame 105, 950 ms after: suppressed */
    set_kw(post, 2, 120, 130, 0.0f);
    set_kw(post, 2, 200, 210, 0.9f); /* 1.9 s after: fires */
    recorded r;
    es_kws_config c = plain_kws_config();
    run_kws(&c, post, NULL, 400, &r);
    assert_int_equal(r.count, 2);
    assert_keyword(&r.events[0], "left", 0.11);
    assert_keyword(&r.events[1], "right", 2.01);
    /* The suppressed crossing at 1.05 s did not fire later, once the
     * refractory period ended while it was still above threshold. */

    c.refractory_ms = 0;
    run_kws(&c, post, NULL, 400, &r);
    assert_int_equal(r.count, 4);
}

static void test_kws_vad_gate(void **state) {
    (void)state;
    float post[300 * 3] = {0};
    int speech[300] = {0};
    for (int i = 100; i < 200; i++)
        speech[i] = 1;
    set_kw(post, 1, 50, 60, 0.9f);   /* outside speech */
    set_kw(post, 2, 150, 160, 0.9f); /* inside speech */
    recorded r;
    es_kws_config c = plain_kws_config();
    c.vad_gate = 1;
    run_kws(&c, post, speech, 300, &r);
    assert_int_equal(r.count, 1);
    assert_keyword(&r.events[0], "right", 1.51);

    c.vad_gate = 0;
    run_kws(&c, post, speech, 300, &r);
    assert_int_equal(r.count, 2);
}

static void test_kws_per_keyword_threshold(void **state) {
    (void)state;
    float post[300 * 3] = {0};
    set_kw(post, 1, 50, 60, 0.7f);
    set_kw(post, 2, 200, 210, 0.7f);
    recorded r;
    es_kws_config c = plain_kws_config();
    c.threshold_count = 2;
    strcpy(c.thresholds[0].keyword, "left");
    c.thresholds[0].threshold = 0.8f;
    strcpy(c.thresholds[1].keyword, "nosuchword"); /* ignored: another model's */
    c.thresholds[1].threshold = 0.1f;
    run_kws(&c, post, NULL, 300, &r);
    assert_int_equal(r.count, 1);
    assert_keyword(&r.events[0], "right", 2.01);

    c.thresholds[0].threshold = 0.6f;
    c.default_threshold = 0.75f;
    run_kws(&c, post, NULL, 300, &r);
    assert_int_equal(r.count, 1);
    assert_keyword(&r.events[0], "left", 0.51);
}

static void test_kws_labels(void **state) {
    (void)state;
    assert_false(es_kws_label_is_keyword("filler"));
    assert_false(es_kws_label_is_keyword("_filler"));
    assert_false(es_kws_label_is_keyword("silence"));
    assert_true(es_kws_label_is_keyword("left"));

    /* A model with only non-keyword outputs never fires. */
    static const char *const none[] = {"_filler", "silence", "filler"};
    es_kws_config c = plain_kws_config();
    es_kws_detector *d = NULL;
    assert_int_equal(es_kws_detector_create(&c, 3, none, RATE_HZ, HOP, &d), ES_DETECT_OK);
    recorded r = {0};
    const float all[3] = {1.0f, 1.0f, 1.0f};
    for (int i = 0; i < 10; i++)
        es_kws_detector_step(d, i * HOP, all, 1, record, &r);
    es_kws_detector_flush(d, record, &r);
    assert_int_equal(r.count, 0);
    es_kws_detector_destroy(d);
}

static void test_kws_config_check(void **state) {
    (void)state;
    es_kws_config c;
    es_kws_config_default(&c);
    assert_int_equal(es_kws_config_check(&c, NULL), 0);

    es_kws_config bad = c;
    bad.default_threshold = 0.0f;
    assert_int_equal(es_kws_config_check(&bad, NULL), ES_DETECT_ERR_CONFIG);
    bad = c;
    bad.default_threshold = NAN;
    assert_int_equal(es_kws_config_check(&bad, NULL), ES_DETECT_ERR_CONFIG);
    bad = c;
    bad.smooth_ms = -1;
    assert_int_equal(es_kws_config_check(&bad, NULL), ES_DETECT_ERR_CONFIG);
    bad = c;
    bad.refractory_ms = -1;
    assert_int_equal(es_kws_config_check(&bad, NULL), ES_DETECT_ERR_CONFIG);
    bad = c;
    bad.vad_gate = 2;
    assert_int_equal(es_kws_config_check(&bad, NULL), ES_DETECT_ERR_CONFIG);
    bad = c;
    bad.peak_wait_ms = 5000;
    assert_int_equal(es_kws_config_check(&bad, NULL), ES_DETECT_ERR_CONFIG);
    bad = c;
    bad.threshold_count = ES_KWS_MAX_KEYWORDS + 1;
    assert_int_equal(es_kws_config_check(&bad, NULL), ES_DETECT_ERR_CONFIG);
    bad = c;
    bad.threshold_count = 1;
    bad.thresholds[0].threshold = 0.5f; /* empty name */
    assert_int_equal(es_kws_config_check(&bad, NULL), ES_DETECT_ERR_CONFIG);
    strcpy(bad.thresholds[0].keyword, "left");
    assert_int_equal(es_kws_config_check(&bad, NULL), 0);
    bad.thresholds[0].threshold = 1.5f;
    assert_int_equal(es_kws_config_check(&bad, NULL), ES_DETECT_ERR_CONFIG);
    bad.thresholds[0].threshold = 0.0f; /* the default threshold: only beside a smoothing */
    assert_int_equal(es_kws_config_check(&bad, NULL), ES_DETECT_ERR_CONFIG);
    bad.thresholds[0].smooth_ms = 300;
    assert_int_equal(es_kws_config_check(&bad, NULL), 0);
    bad.thresholds[0].smooth_ms = ES_KWS_MAX_SMOOTH_MS + 1;
    assert_int_equal(es_kws_config_check(&bad, NULL), ES_DETECT_ERR_CONFIG);
    bad.thresholds[0].smooth_ms = 0;
    bad.thresholds[0].threshold = 0.5f;
    bad.threshold_count = 2;
    strcpy(bad.thresholds[1].keyword, "left");
    bad.thresholds[1].threshold = 0.6f;
    assert_int_equal(es_kws_config_check(&bad, NULL), ES_DETECT_ERR_CONFIG); /* duplicate */
    bad.threshold_count = 1;
    memset(bad.thresholds[0].keyword, 'x', sizeof bad.thresholds[0].keyword);
    assert_int_equal(es_kws_config_check(&bad, NULL), ES_DETECT_ERR_CONFIG); /* not terminated */

    es_kws_detector *d = NULL;
    assert_int_equal(es_kws_detector_create(&bad, 3, labels3, RATE_HZ, HOP, &d),
                     ES_DETECT_ERR_CONFIG);
    assert_null(d);
    assert_int_equal(es_kws_detector_create(&c, 0, labels3, RATE_HZ, HOP, &d),
                     ES_DETECT_ERR_CONFIG);
    static const char *const with_null[] = {"left", NULL};
    assert_int_equal(es_kws_detector_create(&c, 2, with_null, RATE_HZ, HOP, &d),
                     ES_DETECT_ERR_CONFIG);
}

/* Steps and flushes touch no heap: a long run through every path (onsets,
 * bridges, splits, padding, keyword waits, refractory, flush) inside an
 * allocation-counting window. */
static void test_steps_never_allocate(void **state) {
    (void)state;
    es_vad_config vad_config;
    es_vad_config_default(&vad_config);
    vad_config.max_speech_ms = 2000;
    es_kws_config kws_config;
    es_kws_config_default(&kws_config);
    kws_config.vad_gate = 1;
    kws_config.refractory_ms = 300;
    es_vad_detector *vad = NULL;
    es_kws_detector *kws = NULL;
    assert_int_equal(es_vad_detector_create(&vad_config, RATE_HZ, HOP, &vad), ES_DETECT_OK);
    assert_int_equal(es_kws_detector_create(&kws_config, 3, labels3, RATE_HZ, HOP, &kws),
                     ES_DETECT_OK);
    recorded r = {0};
    int events = 0;
    alloc_count_reset();
    alloc_count_open();
    for (int i = 0; i < 6000; i++) {
        float p_speech = (i % 700) < 500 ? ((i % 37) < 30 ? 0.9f : 0.1f) : 0.0f;
        float posteriors[3] = {0.5f, (i % 250) < 40 ? 0.9f : 0.1f, (i % 410) < 30 ? 0.8f : 0.0f};
        es_vad_detector_step(vad, (int64_t)i * HOP, p_speech, record, &r);
        es_kws_detector_step(kws, (int64_t)i * HOP, posteriors, es_vad_detector_in_speech(vad),
                             record, &r);
        if (r.count > MAX_EVENTS - 4) { /* keep recording, not growing */
            events += r.count;
            r.count = 0;
        }
    }
    es_kws_detector_flush(kws, record, &r);
    es_vad_detector_flush(vad, record, &r);
    alloc_count_close();
    events += r.count;
    assert_true(events > 20);
    assert_int_equal(alloc_count_allocations(), 0);
    assert_int_equal(alloc_count_frees(), 0);
    es_kws_detector_destroy(kws);
    es_vad_detector_destroy(vad);
}

int main(void) {
    alloc_count_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vad_one_segment_and_score),
        cmocka_unit_test(test_vad_hysteresis_dither_stays_one_segment),
        cmocka_unit_test(test_vad_min_speech_drops_blip),
        cmocka_unit_test(test_vad_min_silence_bridges_short_gap),
        cmocka_unit_test(test_vad_max_speech_splits),
        cmocka_unit_test(test_vad_max_speech_prefers_bridged_gap),
        cmocka_unit_test(test_vad_padding),
        cmocka_unit_test(test_vad_in_speech),
        cmocka_unit_test(test_vad_nan_is_silence),
        cmocka_unit_test(test_vad_defaults),
        cmocka_unit_test(test_vad_confirmed_onset),
        cmocka_unit_test(test_vad_speech_start_at_confirmation),
        cmocka_unit_test(test_vad_speech_start_at_flush),
        cmocka_unit_test(test_vad_speech_start_per_max_speech_split),
        cmocka_unit_test(test_vad_speech_start_with_padding),
        cmocka_unit_test(test_vad_speech_start_before_unconfirmed_split),
        cmocka_unit_test(test_vad_speech_start_invariant_random),
        cmocka_unit_test(test_vad_config_check),
        cmocka_unit_test(test_kws_fires_once_per_crossing),
        cmocka_unit_test(test_kws_bounds_from_rise_and_speech_and_score_at_peak),
        cmocka_unit_test(test_kws_smoothing),
        cmocka_unit_test(test_kws_per_keyword_smoothing),
        cmocka_unit_test(test_kws_refractory_suppresses_second),
        cmocka_unit_test(test_kws_vad_gate),
        cmocka_unit_test(test_kws_per_keyword_threshold),
        cmocka_unit_test(test_kws_labels),
        cmocka_unit_test(test_kws_config_check),
        cmocka_unit_test(test_steps_never_allocate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
