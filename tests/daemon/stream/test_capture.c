/*
 * Live capture through the real PortAudio path, without a sound card: the
 * ALSA `file` plugin feeds a known clip (live_fixture.h).
 *
 * - device lookup by name, index and "default";
 * - the samples the capture callback receives are the clip's, exactly;
 * - the capture callback, running the pipeline's producer half (resampler,
 *   front end, ring push) on real captured audio, never allocates or frees;
 * - a capture source (stream.h) feeds a pipeline made for its
 *   device's format and drains when its input ends;
 * - a device added to the ALSA config after PortAudio initialised is found
 *   once es_capture_refresh_devices() re-reads the list, which it refuses
 *   while a stream is open; a device removed is gone after a refresh.
 *
 * Allocations are counted only on the callback's thread while it is inside
 * our callback (alloc_count.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

#include "alloc_count.h"
#include "stream.h"
#include "live_fixture.h"

/* ---- fixture ------------------------------------------------------------------ */

/* A 48 kHz stereo device, so that captures at the device's defaults run the
 * pipeline's resampler and downmix. */
#define CLIP_RATE_HZ 48000
#define CLIP_CHANNELS 2
#define CLIP_SECONDS 4

typedef struct capture_test {
    live_fixture fixture;
    float *clip; /* CLIP_SECONDS of interleaved audio */
    size_t clip_values;
} capture_test;

/* Speech-like enough to move features: a gliding tone in bursts over a
 * deterministic noise floor (different in each channel), on the 16-bit grid
 * like a recording. */
static void make_clip(float *clip, size_t frames) {
    uint32_t noise = 12345;
    double phase = 0.0;
    for (size_t i = 0; i < frames; i++) {
        double t = (double)i / CLIP_RATE_HZ;
        double burst = fmod(t, 1.0) < 0.6 ? 1.0 : 0.0;
        double frequency_hz = 200.0 + 600.0 * fmod(t, 1.0);
        phase += 2.0 * M_PI * frequency_hz / CLIP_RATE_HZ;
        for (int ch = 0; ch < CLIP_CHANNELS; ch++) {
            noise = noise * 1664525u + 1013904223u;
            double value = 8000.0 * burst * sin(phase) + (double)((int32_t)(noise >> 20) - 2048);
            clip[i * CLIP_CHANNELS + (size_t)ch] = (float)(int16_t)value / 32768.0f;
        }
    }
}

static int setup(void **state) {
    capture_test *t = calloc(1, sizeof *t);
    if (!t || live_fixture_create(&t->fixture) != 0) return -1;
    size_t frames = (size_t)CLIP_RATE_HZ * CLIP_SECONDS;
    t->clip_values = frames * CLIP_CHANNELS;
    t->clip = malloc(t->clip_values * sizeof *t->clip);
    if (!t->clip) return -1;
    make_clip(t->clip, frames);
    char raw_path[512];
    live_fixture_path(&t->fixture, "clip.raw", raw_path, sizeof raw_path);
    if (live_fixture_write_raw(raw_path, t->clip, t->clip_values) != 0 ||
        live_fixture_use_raw(&t->fixture, raw_path, CLIP_RATE_HZ, CLIP_CHANNELS) != 0)
        return -1;
    es_error err = {0};
    if (es_capture_init(&err) != ES_CAPTURE_OK) {
        print_error("%s\n", err.why);
        return -1;
    }
    alloc_count_install();
    *state = t;
    return 0;
}

static int teardown(void **state) {
    capture_test *t = *state;
    es_capture_terminate();
    live_fixture_destroy(&t->fixture);
    free(t->clip);
    free(t);
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Polls until the capture delivered its max_seconds (or fails the test
 * after a generous bound: the file plugin is not paced, so this is quick). */
static void wait_finished(es_capture *capture) {
    double give_up = now_s() + 20.0;
    es_error err = {0};
    int health;
    while ((health = es_capture_check(capture, 0, &err)) == ES_CAPTURE_OK) {
        assert_true(now_s() < give_up);
        struct timespec pause = {0, 2000000};
        nanosleep(&pause, NULL);
    }
    assert_int_equal(health, ES_CAPTURE_FINISHED);
}

/* ---- tests --------------------------------------------------------------------- */

static void test_device_lookup(void **state) {
    (void)state;
    int index = -1;
    es_error err = {0};
    assert_int_equal(es_capture_find_device("default", &index, &err), ES_CAPTURE_OK);
    es_capture_device device;
    assert_int_equal(es_capture_device_get(index, &device), 1);
    assert_string_equal(device.name, "default");
    assert_true(device.max_input_channels >= 1);

    int by_null = -1;
    assert_int_equal(es_capture_find_device(NULL, &by_null, &err), ES_CAPTURE_OK);
    char spec[16];
    snprintf(spec, sizeof spec, "%d", index);
    int by_index = -1;
    assert_int_equal(es_capture_find_device(spec, &by_index, &err), ES_CAPTURE_OK);
    assert_int_equal(by_index, index);
    int by_substring = -1;
    assert_int_equal(es_capture_find_device("defau", &by_substring, &err), ES_CAPTURE_OK);
    assert_int_equal(by_substring, index);

    assert_int_equal(es_capture_find_device("99999", &by_index, &err), ES_CAPTURE_ERR_NO_DEVICE);
    assert_non_null(strstr(err.why, "99999"));
    assert_int_equal(es_capture_find_device("no such card", &by_index, &err),
                     ES_CAPTURE_ERR_NO_DEVICE);
    assert_non_null(strstr(err.why, "no such card"));
}

typedef struct sample_sink {
    size_t channels;
    float *samples;
    size_t capacity;
    size_t count;
    long callbacks;
} sample_sink;

static void copy_samples(const float *interleaved, size_t frames, int input_overflow, void *user) {
    (void)input_overflow;
    sample_sink *sink = user;
    size_t values = frames * sink->channels;
    for (size_t i = 0; i < values && sink->count < sink->capacity; i++)
        sink->samples[sink->count++] = interleaved[i];
    sink->callbacks++;
}

/* At the device's defaults (its rate, up to 2 channels), 1.5 s arrive
 * exactly: every value of every frame is the clip's. */
static void test_captured_samples_are_the_clip(void **state) {
    const capture_test *t = *state;
    sample_sink sink = {.channels = CLIP_CHANNELS, .capacity = t->clip_values};
    sink.samples = calloc(sink.capacity, sizeof *sink.samples);
    assert_non_null(sink.samples);

    es_capture_config config;
    es_capture_config_default(&config);
    config.max_seconds = 1.5;
    config.on_audio = copy_samples;
    config.user = &sink;
    es_capture *capture = NULL;
    es_error err = {0};
    assert_int_equal(es_capture_open(&config, &capture, &err), ES_CAPTURE_OK);
    assert_float_equal(es_capture_sample_rate(capture), CLIP_RATE_HZ, 0);
    assert_int_equal(es_capture_channels(capture), CLIP_CHANNELS);
    assert_int_equal(es_capture_start(capture, &err), ES_CAPTURE_OK);
    wait_finished(capture);
    assert_int_equal(es_capture_overflows(capture), 0);
    es_capture_close(capture);

    assert_int_equal(sink.count, (size_t)CLIP_RATE_HZ * 3 / 2 * CLIP_CHANNELS);
    assert_true(sink.callbacks > 1);
    size_t mismatches = 0;
    for (size_t i = 0; i < sink.count; i++)
        mismatches += sink.samples[i] != t->clip[i];
    free(sink.samples);
    assert_int_equal(mismatches, 0);
}

typedef struct counted_feed {
    es_pipeline *pipeline;
    atomic_long callbacks;
} counted_feed;

/* The capture callback of every capture source (`earshot mic`, the service's
 * device sources), with the allocation window open. */
static void counted_feed_pipeline(const float *interleaved, size_t frames, int input_overflow,
                                  void *user) {
    counted_feed *feed = user;
    alloc_count_open();
    es_capture_source_feed(interleaved, frames, input_overflow, &feed->pipeline);
    alloc_count_close();
    atomic_fetch_add(&feed->callbacks, 1);
}

static void test_counter_counts(void **state) {
    (void)state;
    alloc_count_reset();
    alloc_count_open();
    void *volatile p = malloc(64);
    free(p);
    alloc_count_close();
    assert_int_equal(alloc_count_allocations(), 1);
    assert_int_equal(alloc_count_frees(), 1);
}

static void test_callback_never_allocates(void **state) {
    (void)state;
    es_model *vad = live_fixture_vad_model(1);
    es_model *kws = live_fixture_kws_model(2);
    assert_non_null(vad);
    assert_non_null(kws);

    /* The device's own rate and channel count, 48 kHz stereo: the pipeline's
     * resampler and downmix both run. */
    counted_feed feed = {0};
    es_capture_config capture_config;
    es_capture_config_default(&capture_config);
    capture_config.max_seconds = 3.0;
    capture_config.on_audio = counted_feed_pipeline;
    capture_config.user = &feed;
    es_capture *capture = NULL;
    es_error cerr = {0};
    assert_int_equal(es_capture_open(&capture_config, &capture, &cerr), ES_CAPTURE_OK);

    es_pipeline_config config;
    es_pipeline_config_default(&config, ES_PIPELINE_LIVE);
    config.source = "test";
    config.vad_model = vad;
    config.kws_models[0] = kws;
    config.kws_model_count = 1;
    config.input_rate_hz = es_capture_sample_rate(capture);
    config.input_channels = es_capture_channels(capture);
    es_error perr = {0};
    assert_int_equal(es_pipeline_create(&config, &feed.pipeline, &perr), ES_PIPELINE_OK);

    alloc_count_reset();
    assert_int_equal(es_capture_start(capture, &cerr), ES_CAPTURE_OK);
    double give_up = now_s() + 20.0;
    int input_open = 1;
    int consumed;
    while ((consumed = es_pipeline_consume(feed.pipeline, 10)) != ES_PIPELINE_CLOSED) {
        assert_true(consumed >= 0);
        assert_true(now_s() < give_up);
        if (input_open && es_capture_check(capture, 0, &cerr) == ES_CAPTURE_FINISHED) {
            es_capture_stop(capture);
            es_pipeline_close_input(feed.pipeline);
            input_open = 0;
        }
    }

    es_pipeline_stats stats;
    es_pipeline_get_stats(feed.pipeline, &stats);
    print_message("device rate %.0f Hz, %d channel(s): %ld callbacks, %llu frames, "
                  "%llu drops\n",
                  es_capture_sample_rate(capture), es_capture_channels(capture),
                  atomic_load(&feed.callbacks), (unsigned long long)stats.frames_processed,
                  (unsigned long long)stats.ring_drops);
    assert_true(atomic_load(&feed.callbacks) > 10);
    /* 3 s of audio: 300 hops, minus the window's tail at the end. */
    assert_in_range(stats.frames_processed + stats.ring_drops, 290, 301);
    assert_int_equal(alloc_count_allocations(), 0);
    assert_int_equal(alloc_count_frees(), 0);

    es_capture_close(capture);
    es_pipeline_destroy(feed.pipeline);
    es_model_destroy(kws);
    es_model_destroy(vad);
}

/* The capture source end to end: the pipeline takes the device's format,
 * is fed for max_seconds of audio, and drains once the input ends. */
static void test_capture_source_feeds_pipeline(void **state) {
    (void)state;
    es_model *vad = live_fixture_vad_model(1);
    assert_non_null(vad);
    es_capture_config device;
    es_capture_config_default(&device);
    device.max_seconds = 2.0;
    es_capture_source *source = NULL;
    es_error err = {0};
    assert_int_equal(es_capture_source_open(&device, &source, &err), ES_CAPTURE_OK);
    es_capture *capture = es_capture_source_capture(source);

    es_pipeline_config config;
    es_pipeline_config_default(&config, ES_PIPELINE_LIVE);
    config.ring_policy = ES_RING_WAIT;
    es_capture_source_pipeline_input(source, &config);
    assert_int_equal(config.ring_policy, ES_RING_DROP_OLDEST);
    assert_true(config.input_rate_hz == CLIP_RATE_HZ);
    assert_int_equal(config.input_channels, CLIP_CHANNELS);
    config.source = "test";
    config.vad_model = vad;
    es_pipeline *pipeline = NULL;
    assert_int_equal(es_pipeline_create(&config, &pipeline, &err), ES_PIPELINE_OK);

    assert_int_equal(es_capture_source_start(source, pipeline, &err), ES_CAPTURE_OK);
    double give_up = now_s() + 20.0;
    int input_open = 1;
    int consumed;
    while ((consumed = es_pipeline_consume(pipeline, 10)) != ES_PIPELINE_CLOSED) {
        assert_true(consumed >= 0);
        assert_true(now_s() < give_up);
        if (input_open && es_capture_check(capture, 0, &err) == ES_CAPTURE_FINISHED) {
            es_capture_source_end_input(source);
            input_open = 0;
        }
    }
    es_pipeline_stats stats;
    es_pipeline_get_stats(pipeline, &stats);
    /* 2 s of audio: 200 hops, minus the window's tail at the end. */
    assert_in_range(stats.frames_processed + stats.ring_drops, 190, 201);

    es_capture_source_close(source);
    es_pipeline_destroy(pipeline);
    es_model_destroy(vad);
}

#define REPLUGGED "earshot_replugged"

/* Rewrites the fixture's ALSA config with or without a second capture PCM
 * (the same clip) and moves its mtime on, so that alsa-lib, which reloads
 * its config only when a file's mtime changed, reads it again even within
 * the same second. */
static void write_alsa_config(const capture_test *t, int with_replugged) {
    static int generation;
    char config_path[512], raw_path[512];
    live_fixture_path(&t->fixture, "asound.conf", config_path, sizeof config_path);
    live_fixture_path(&t->fixture, "clip.raw", raw_path, sizeof raw_path);
    assert_int_equal(
        live_fixture_use_raw((live_fixture *)&t->fixture, raw_path, CLIP_RATE_HZ, CLIP_CHANNELS),
        0);
    if (with_replugged) {
        FILE *f = fopen(config_path, "a");
        assert_non_null(f);
        fprintf(
            f,
            "pcm." REPLUGGED " {\n"
            "  type plug\n"
            "  slave {\n"
            "    pcm { type file  slave.pcm { type null }  file \"/dev/null\"  infile \"%s\" }\n"
            "    format FLOAT_LE  rate %d  channels %d\n"
            "  }\n"
            "  hint { show on description \"plugged in later\" }\n"
            "}\n",
            raw_path, CLIP_RATE_HZ, CLIP_CHANNELS);
        assert_int_equal(fclose(f), 0);
    }
    struct timeval times[2];
    gettimeofday(&times[0], NULL);
    times[1] = times[0];
    times[1].tv_sec += 10 * ++generation;
    assert_int_equal(utimes(config_path, times), 0);
}

static void test_refresh_finds_a_device_plugged_in_later(void **state) {
    const capture_test *t = *state;
    int index = -1;
    es_error err = {0};
    assert_int_equal(es_capture_find_device(REPLUGGED, &index, &err), ES_CAPTURE_ERR_NO_DEVICE);

    write_alsa_config(t, 1);
    /* PortAudio's list is the one from initialisation... */
    assert_int_equal(es_capture_find_device(REPLUGGED, &index, &err), ES_CAPTURE_ERR_NO_DEVICE);
    /* ...and cannot be re-read under an open stream. */
    sample_sink sink = {.channels = CLIP_CHANNELS, .capacity = t->clip_values};
    sink.samples = calloc(sink.capacity, sizeof *sink.samples);
    assert_non_null(sink.samples);
    es_capture_config config;
    es_capture_config_default(&config);
    config.max_seconds = 0.5;
    config.on_audio = copy_samples;
    config.user = &sink;
    es_capture *capture = NULL;
    assert_int_equal(es_capture_open(&config, &capture, &err), ES_CAPTURE_OK);
    assert_int_equal(es_capture_refresh_devices(&err), 0);
    es_capture_close(capture);

    assert_int_equal(es_capture_refresh_devices(&err), 1);
    assert_int_equal(es_capture_find_device(REPLUGGED, &index, &err), ES_CAPTURE_OK);
    config.device = REPLUGGED;
    assert_int_equal(es_capture_open(&config, &capture, &err), ES_CAPTURE_OK);
    assert_string_equal(es_capture_device_name(capture), REPLUGGED);
    assert_int_equal(es_capture_start(capture, &err), ES_CAPTURE_OK);
    wait_finished(capture);
    es_capture_close(capture);
    assert_int_equal(sink.count, (size_t)CLIP_RATE_HZ / 2 * CLIP_CHANNELS);
    size_t mismatches = 0;
    for (size_t i = 0; i < sink.count; i++)
        mismatches += sink.samples[i] != t->clip[i];
    free(sink.samples);
    assert_int_equal(mismatches, 0);

    /* Unplugged again: gone after the next refresh; "default" stays. */
    write_alsa_config(t, 0);
    assert_int_equal(es_capture_refresh_devices(&err), 1);
    assert_int_equal(es_capture_find_device(REPLUGGED, &index, &err), ES_CAPTURE_ERR_NO_DEVICE);
    assert_int_equal(es_capture_find_device("default", &index, &err), ES_CAPTURE_OK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_counts),
        cmocka_unit_test(test_device_lookup),
        cmocka_unit_test(test_captured_samples_are_the_clip),
        cmocka_unit_test(test_callback_never_allocates),
        cmocka_unit_test(test_capture_source_feeds_pipeline),
        cmocka_unit_test(test_refresh_finds_a_device_plugged_in_later),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
