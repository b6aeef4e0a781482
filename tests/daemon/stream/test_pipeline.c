/*
 * The pipeline's promises (stream.h, DESIGN.md "Real-time rules"):
 * results never depend on how the input was chunked; the live producer /
 * consumer halves on two threads give what the offline path gives; bad
 * configurations are refused with a reason; a stream group consuming many
 * live pipelines on one or two engine threads gives each what it gives alone.
 *
 * Input: tests/clips/demo.wav, read once into memory through audio_file.
 */
#include <pthread.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stream.h"

#define DEMO_CLIP ES_SOURCE_DIR "/tests/clips/demo.wav"

typedef struct clip {
    float *samples; /* interleaved */
    size_t frames;
    int rate_hz;
    int channels;
} clip;

typedef struct fixture {
    es_model *vad;
    es_model *kws;
    clip mono_16k;
    clip stereo; /* the same samples as two channels, declared 44.1 kHz */
} fixture;

static void read_clip(const char *path, clip *out) {
    es_error audio_err = {0};
    es_audio_file *audio = NULL;
    assert_int_equal(es_audio_file_open(path, &audio, &audio_err), 0);
    const es_audio_info *info = es_audio_file_info(audio);
    out->rate_hz = info->sample_rate_hz;
    out->channels = info->channels;
    out->frames = 0;
    size_t capacity = 16000;
    out->samples = malloc(capacity * (size_t)out->channels * sizeof *out->samples);
    for (;;) {
        if (out->frames + 4096 > capacity) {
            capacity *= 2;
            out->samples =
                realloc(out->samples, capacity * (size_t)out->channels * sizeof *out->samples);
        }
        long got =
            es_audio_file_read(audio, out->samples + out->frames * out->channels, 4096, &audio_err);
        assert_true(got >= 0);
        if (got == 0) break;
        out->frames += (size_t)got;
    }
    es_audio_file_close(audio);
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    es_error err;
    if (es_pipeline_load_model(NULL, "vad", NULL, &f->vad, &err) != ES_PIPELINE_OK ||
        es_pipeline_load_model(NULL, "kws", NULL, &f->kws, &err) != ES_PIPELINE_OK) {
        fprintf(stderr, "built-in models: %s\n", err.why);
        return -1;
    }
    read_clip(DEMO_CLIP, &f->mono_16k);
    assert_int_equal(f->mono_16k.rate_hz, 16000);
    assert_int_equal(f->mono_16k.channels, 1);

    /* Any samples will do to test chunking through the resampler; a second
     * channel at another level checks that both are mixed, not one taken. */
    clip *st = &f->stereo;
    st->rate_hz = 44100;
    st->channels = 2;
    st->frames = f->mono_16k.frames;
    st->samples = malloc(st->frames * 2 * sizeof *st->samples);
    for (size_t i = 0; i < st->frames; i++) {
        st->samples[2 * i] = f->mono_16k.samples[i];
        st->samples[2 * i + 1] = 0.5f * f->mono_16k.samples[(i * 7) % st->frames];
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    es_model_destroy(f->vad);
    es_model_destroy(f->kws);
    free(f->mono_16k.samples);
    free(f->stereo.samples);
    free(f);
    return 0;
}

/* Set by a test for the runs it makes, then reset. */
static int speech_start_events;
static int live_wallclock;
static int no_keywords;               /* the VAD alone */
static const es_model *keyword_model; /* another keyword model than the fixture's */

static void configure(const fixture *f, const clip *c, es_pipeline_mode mode,
                      es_pipeline_config *config) {
    es_pipeline_config_default(config, mode);
    config->source = "demo.wav";
    config->vad_model = f->vad;
    config->kws_models[0] = f->kws;
    config->kws_model_count = 1;
    config->input_rate_hz = c->rate_hz;
    config->input_channels = c->channels;
    config->wallclock = 0; /* times must compare equal across runs */
    config->vad.speech_start_events = speech_start_events;
    if (mode == ES_PIPELINE_LIVE) config->wallclock = live_wallclock;
    if (keyword_model) config->kws_models[0] = keyword_model;
    config->kws_model_count = no_keywords ? 0 : 1;
}

/* Everything a run wrote: events as JSON lines and the frames CSV. */
typedef struct run_output {
    char *events;
    size_t events_size;
    char *frames;
    size_t frames_size;
} run_output;

static void free_output(run_output *out) {
    free(out->events);
    free(out->frames);
}

typedef struct sinks {
    FILE *events_file;
    FILE *frames_file;
    es_sink *events;
    es_sink *frames;
} sinks;

static void open_sinks(sinks *s, run_output *out, es_pipeline_config *config) {
    memset(out, 0, sizeof *out);
    s->events_file = open_memstream(&out->events, &out->events_size);
    s->frames_file = open_memstream(&out->frames, &out->frames_size);
    assert_non_null(s->events_file);
    assert_non_null(s->frames_file);
    assert_int_equal(es_sink_create(ES_FORMAT_JSONL, s->events_file, "demo", &s->events), 0);
    assert_int_equal(es_sink_create(ES_FORMAT_FRAMES, s->frames_file, "demo", &s->frames), 0);
    config->on_event = es_sink_event;
    config->event_user = s->events;
    config->on_frame = es_sink_frame;
    config->frame_user = s->frames;
}

static void close_sinks(sinks *s) {
    assert_int_equal(es_sink_end(s->events), 0);
    assert_int_equal(es_sink_end(s->frames), 0);
    es_sink_destroy(s->events);
    es_sink_destroy(s->frames);
    fclose(s->events_file);
    fclose(s->frames_file);
}

static void run_offline(const fixture *f, const clip *c, size_t chunk_frames, run_output *out) {
    es_pipeline_config config;
    configure(f, c, ES_PIPELINE_OFFLINE, &config);
    sinks s;
    open_sinks(&s, out, &config);
    es_pipeline *p = NULL;
    es_error err;
    assert_int_equal(es_pipeline_create(&config, &p, &err), ES_PIPELINE_OK);
    es_sink_begin(s.frames, p);
    for (size_t at = 0; at < c->frames; at += chunk_frames) {
        size_t n = c->frames - at < chunk_frames ? c->frames - at : chunk_frames;
        assert_int_equal(es_pipeline_push(p, c->samples + at * c->channels, n), ES_PIPELINE_OK);
    }
    assert_int_equal(es_pipeline_finish(p), ES_PIPELINE_OK);
    /* After finish the stream is over. */
    assert_int_equal(es_pipeline_push(p, c->samples, 1), ES_PIPELINE_ERR_STATE);
    es_pipeline_stats stats;
    es_pipeline_get_stats(p, &stats);
    /* One frame per 10 ms hop once the first 25 ms window is full. */
    double seconds = (double)c->frames / c->rate_hz;
    assert_in_range(stats.frames_processed, (uint64_t)(seconds * 100) - 5,
                    (uint64_t)(seconds * 100) + 2);
    es_pipeline_destroy(p);
    close_sinks(&s);
}

static size_t count_lines(const char *text) {
    size_t lines = 0;
    for (; *text; text++)
        lines += *text == '\n';
    return lines;
}

static void assert_same_output(const run_output *a, const run_output *b) {
    assert_int_equal(a->events_size, b->events_size);
    assert_string_equal(a->events, b->events);
    assert_int_equal(a->frames_size, b->frames_size);
    assert_string_equal(a->frames, b->frames);
}

static void check_chunk_independence(const fixture *f, const clip *c) {
    static const size_t chunk_sizes[] = {4096, 1, 7, 160, 1000000};
    run_output reference;
    run_offline(f, c, chunk_sizes[0], &reference);
    /* A frames CSV with a header and a row per 10 ms; else the test proves nothing. */
    assert_true(count_lines(reference.frames) > 250);
    for (size_t i = 1; i < sizeof chunk_sizes / sizeof chunk_sizes[0]; i++) {
        run_output other;
        run_offline(f, c, chunk_sizes[i], &other);
        assert_same_output(&reference, &other);
        free_output(&other);
    }
    free_output(&reference);
}

static void test_chunking_16k_mono(void **state) {
    const fixture *f = *state;
    check_chunk_independence(f, &f->mono_16k);
    /* The clip has speech: events were compared too, not just nothing. */
    run_output out;
    run_offline(f, &f->mono_16k, 4096, &out);
    assert_true(count_lines(out.events) > 0);
    free_output(&out);
}

static void test_chunking_resampled_stereo(void **state) {
    const fixture *f = *state;
    check_chunk_independence(f, &f->stereo);
}

/* ---- live: producer and consumer threads ---------------------------------------- */

typedef struct producer_args {
    es_pipeline *pipeline;
    const clip *clip;
    size_t chunk_frames;
} producer_args;

static void *producer_main(void *arg) {
    producer_args *a = arg;
    const clip *c = a->clip;
    for (size_t at = 0; at < c->frames; at += a->chunk_frames) {
        size_t n = c->frames - at < a->chunk_frames ? c->frames - at : a->chunk_frames;
        es_pipeline_feed(a->pipeline, c->samples + at * c->channels, n);
    }
    es_pipeline_close_input(a->pipeline);
    return NULL;
}

static void run_live(const fixture *f, const clip *c, run_output *out, es_pipeline_stats *stats) {
    es_pipeline_config config;
    configure(f, c, ES_PIPELINE_LIVE, &config);
    /* A small ring that waits: the threads must hand over many times without
     * losing a frame. */
    config.ring_capacity_frames = 8;
    config.ring_policy = ES_RING_WAIT;
    sinks s;
    open_sinks(&s, out, &config);
    es_pipeline *p = NULL;
    es_error err;
    assert_int_equal(es_pipeline_create(&config, &p, &err), ES_PIPELINE_OK);
    es_sink_begin(s.frames, p);

    producer_args args = {p, c, 441};
    pthread_t producer;
    assert_int_equal(pthread_create(&producer, NULL, producer_main, &args), 0);
    int rc;
    while ((rc = es_pipeline_consume(p, 100)) != ES_PIPELINE_CLOSED)
        assert_true(rc >= 0);
    assert_int_equal(es_pipeline_consume(p, 0), ES_PIPELINE_CLOSED);
    pthread_join(producer, NULL);
    es_pipeline_get_stats(p, stats);
    es_pipeline_destroy(p);
    close_sinks(&s);
}

static void test_live_matches_offline(void **state) {
    const fixture *f = *state;
    run_output offline, live;
    run_offline(f, &f->stereo, 4096, &offline);
    es_pipeline_stats stats;
    run_live(f, &f->stereo, &live, &stats);
    assert_same_output(&offline, &live);
    assert_int_equal(stats.ring_drops, 0);
    assert_int_equal(stats.frames_processed, count_lines(live.frames) - 1);
    assert_int_equal(stats.events, count_lines(live.events));
    free_output(&offline);
    free_output(&live);
}

/* speech_start events (opt-in) come out of a live pipeline as offline, and
 * carry the wall clock like the other live events. */
static void test_speech_start_live_and_offline(void **state) {
    const fixture *f = *state;
    speech_start_events = 1;
    run_output offline, live, plain;
    run_offline(f, &f->stereo, 4096, &offline);
    es_pipeline_stats stats;
    run_live(f, &f->stereo, &live, &stats);
    assert_same_output(&offline, &live);
    assert_int_equal(stats.events, count_lines(live.events));
    size_t starts = 0, speeches = 0;
    for (const char *at = live.events; (at = strstr(at, "{\"type\":\"speech_start\",")); at++)
        starts++;
    for (const char *at = live.events; (at = strstr(at, "{\"type\":\"speech\",")); at++)
        speeches++;
    assert_true(speeches > 0);
    assert_int_equal(starts, speeches);

    live_wallclock = 1;
    run_output stamped;
    run_live(f, &f->stereo, &stamped, &stats);
    assert_int_equal(count_lines(stamped.events), count_lines(live.events));
    for (const char *line = stamped.events; (line = strstr(line, "{\"type\":\"speech_start\","));
         line++) {
        const char *end = strchr(line, '\n');
        const char *clock = strstr(line, ",\"wallclock\":\"");
        assert_non_null(clock);
        assert_true(clock < end);
    }
    live_wallclock = 0;
    speech_start_events = 0;

    /* Off (the default), the same run has no speech_start line. */
    run_offline(f, &f->stereo, 4096, &plain);
    assert_null(strstr(plain.events, "speech_start"));
    assert_int_equal(count_lines(plain.events), count_lines(offline.events) - starts);
    free_output(&offline);
    free_output(&live);
    free_output(&stamped);
    free_output(&plain);
}

/* A live ring that overflows drops frames and counts them, without blocking. */
static void test_live_overflow_counts_drops(void **state) {
    const fixture *f = *state;
    es_pipeline_config config;
    configure(f, &f->mono_16k, ES_PIPELINE_LIVE, &config);
    config.ring_capacity_frames = 16;
    es_pipeline *p = NULL;
    es_error err;
    assert_int_equal(es_pipeline_create(&config, &p, &err), ES_PIPELINE_OK);
    /* One second of audio (100 frames) with nobody consuming. */
    es_pipeline_feed(p, f->mono_16k.samples, 16000);
    es_pipeline_note_input_overflow(p);
    int kept = es_pipeline_consume(p, 0);
    assert_in_range(kept, 1, 16);
    assert_int_equal(es_pipeline_consume(p, 0), 0);
    es_pipeline_stats stats;
    es_pipeline_get_stats(p, &stats);
    assert_int_equal(stats.frames_processed, (uint64_t)kept);
    assert_true(stats.ring_drops >= 80);
    assert_int_equal(stats.input_overflows, 1);
    es_pipeline_close_input(p);
    assert_int_equal(es_pipeline_consume(p, 0), ES_PIPELINE_CLOSED);
    /* Offline calls are refused in live mode. */
    assert_int_equal(es_pipeline_push(p, f->mono_16k.samples, 10), ES_PIPELINE_ERR_STATE);
    es_pipeline_destroy(p);
}

/* ---- stream group ------------------------------------------------------------- */

#define GROUP_STREAMS 7

/* What stream i runs: the fixture's models, the VAD alone, or another
 * keyword model (same weights, another es_model: a cohort of its own), on
 * the 16 kHz clip or the resampled stereo one. */
static const clip *group_variant(const fixture *f, int i, const es_model *other_kws) {
    no_keywords = i % 3 == 1;
    keyword_model = i % 3 == 2 ? other_kws : NULL;
    return i % 2 ? &f->stereo : &f->mono_16k;
}

typedef struct group_stream {
    es_pipeline *pipeline;
    sinks sinks;
    producer_args producer_args;
    pthread_t producer;
} group_stream;

/* `count` (<= GROUP_STREAMS) live pipelines fed at once by their producer
 * threads, each in chunks of its own size, consumed by a group of `engines`
 * threads (a pipeline alone on its engine steps in blocks of frames). */
static void run_group(const fixture *f, int engines, int count, const es_model *other_kws,
                      run_output *outputs) {
    es_stream_group *group = NULL;
    es_error err;
    assert_int_equal(es_stream_group_create(engines, &group, &err), 0);
    group_stream streams[GROUP_STREAMS];
    for (int i = 0; i < count; i++) {
        group_stream *st = &streams[i];
        const clip *c = group_variant(f, i, other_kws);
        es_pipeline_config config;
        configure(f, c, ES_PIPELINE_LIVE, &config);
        config.ring_capacity_frames = 8;
        config.ring_policy = ES_RING_WAIT;
        open_sinks(&st->sinks, &outputs[i], &config);
        assert_int_equal(es_pipeline_create(&config, &st->pipeline, &err), ES_PIPELINE_OK);
        es_sink_begin(st->sinks.frames, st->pipeline);
        assert_int_equal(es_stream_group_add(group, st->pipeline, NULL, NULL, &err), 0);
        st->producer_args = (producer_args){st->pipeline, c, 160 + 97 * (size_t)i};
        assert_int_equal(pthread_create(&st->producer, NULL, producer_main, &st->producer_args), 0);
    }
    no_keywords = 0;
    keyword_model = NULL;
    uint64_t frames = 0;
    for (int i = 0; i < count; i++) {
        pthread_join(streams[i].producer, NULL);
        es_stream_group_remove(group, streams[i].pipeline, 1);
        es_pipeline_stats stats;
        es_pipeline_get_stats(streams[i].pipeline, &stats);
        frames += stats.frames_processed;
        es_pipeline_destroy(streams[i].pipeline);
        close_sinks(&streams[i].sinks);
    }
    es_stream_group_stats stats;
    es_stream_group_get_stats(group, &stats);
    assert_int_equal(stats.streams, 0);
    assert_int_equal(stats.frames, frames);
    /* Every frame steps one VAD and at most one keyword model, in batches. */
    assert_in_range(stats.batch_streams, frames, 2 * frames);
    assert_true(stats.batches > 0 && stats.batches <= stats.batch_streams);
    es_stream_group_destroy(group);
}

static void test_group_matches_offline(void **state) {
    const fixture *f = *state;
    es_model *other_kws = NULL;
    es_error err;
    assert_int_equal(es_pipeline_load_model(NULL, "kws", NULL, &other_kws, &err), ES_PIPELINE_OK);
    run_output offline[GROUP_STREAMS], grouped[GROUP_STREAMS];
    for (int i = 0; i < GROUP_STREAMS; i++)
        run_offline(f, group_variant(f, i, other_kws), 4096, &offline[i]);
    no_keywords = 0;
    keyword_model = NULL;
    for (int engines = 1; engines <= 2; engines++) {
        run_group(f, engines, GROUP_STREAMS, other_kws, grouped);
        for (int i = 0; i < GROUP_STREAMS; i++) {
            assert_same_output(&offline[i], &grouped[i]);
            free_output(&grouped[i]);
        }
    }
    for (int alone = 1; alone <= 2; alone++) { /* one stream; one per engine */
        run_group(f, alone, alone, other_kws, grouped);
        for (int i = 0; i < alone; i++) {
            assert_same_output(&offline[i], &grouped[i]);
            free_output(&grouped[i]);
        }
    }
    for (int i = 0; i < GROUP_STREAMS; i++)
        free_output(&offline[i]);
    es_model_destroy(other_kws);
}

/* A pipeline taken back without draining keeps its waiting frames; offline
 * pipelines and bad engine counts are refused; removing a stranger is a no-op. */
static void test_group_membership(void **state) {
    const fixture *f = *state;
    es_stream_group *group = NULL;
    es_error err;
    assert_int_equal(es_stream_group_create(0, &group, &err), ES_STREAM_GROUP_ERR_ARG);
    assert_null(group);
    assert_int_equal(es_stream_group_create(1, &group, &err), 0);
    es_pipeline_config config;
    configure(f, &f->mono_16k, ES_PIPELINE_OFFLINE, &config);
    es_pipeline *offline = NULL;
    assert_int_equal(es_pipeline_create(&config, &offline, &err), ES_PIPELINE_OK);
    assert_int_equal(es_stream_group_add(group, offline, NULL, NULL, &err),
                     ES_STREAM_GROUP_ERR_ARG);
    es_stream_group_remove(group, offline, 1);
    es_pipeline_destroy(offline);

    configure(f, &f->mono_16k, ES_PIPELINE_LIVE, &config);
    es_pipeline *live = NULL;
    assert_int_equal(es_pipeline_create(&config, &live, &err), ES_PIPELINE_OK);
    assert_int_equal(es_stream_group_add(group, live, NULL, NULL, &err), 0);
    es_stream_group_remove(group, live, 0);
    es_pipeline_feed(live, f->mono_16k.samples, 16000);
    assert_in_range(es_pipeline_consume(live, 0), 95, 100);
    es_pipeline_destroy(live);
    es_stream_group_destroy(group);
}

/* ---- configuration errors ------------------------------------------------------ */

static void expect_refusal(const es_pipeline_config *config, int code, const char *needle) {
    es_pipeline *p = (es_pipeline *)0x1;
    es_error err = {0};
    assert_int_equal(es_pipeline_create(config, &p, &err), code);
    assert_null(p);
    assert_int_equal(err.code, code);
    if (!strstr(err.why, needle))
        fail_msg("reason \"%s\" does not mention \"%s\"", err.why, needle);
}

static void test_bad_configs(void **state) {
    const fixture *f = *state;
    es_pipeline_config config;

    configure(f, &f->mono_16k, ES_PIPELINE_OFFLINE, &config);
    config.input_rate_hz = 4000;
    expect_refusal(&config, ES_PIPELINE_ERR_CONFIG, "4000 Hz");
    config.input_rate_hz = 192000;
    expect_refusal(&config, ES_PIPELINE_ERR_CONFIG, "192000 Hz");

    configure(f, &f->mono_16k, ES_PIPELINE_OFFLINE, &config);
    config.input_channels = 0;
    expect_refusal(&config, ES_PIPELINE_ERR_CONFIG, "channels");
    config.input_channels = 65;
    expect_refusal(&config, ES_PIPELINE_ERR_CONFIG, "channels");

    configure(f, &f->mono_16k, ES_PIPELINE_OFFLINE, &config);
    config.vad_model = NULL;
    expect_refusal(&config, ES_PIPELINE_ERR_CONFIG, "VAD model");

    configure(f, &f->mono_16k, ES_PIPELINE_OFFLINE, &config);
    config.vad.onset_threshold = 2.0f;
    expect_refusal(&config, ES_PIPELINE_ERR_CONFIG, "");

    /* A model made for 64 mel bands cannot take the front end's 40. */
    es_feature_spec spec;
    es_pipeline_feature_spec(NULL, &spec);
    spec.mel_bands = 64;
    es_model *wide = NULL;
    assert_int_equal(es_model_create(&spec, 64, &wide), ES_RNN_OK);
    assert_int_equal(es_model_add_layer(wide, ES_LAYER_DENSE, 1, ES_ACT_SIGMOID, 0), ES_RNN_OK);
    configure(f, &f->mono_16k, ES_PIPELINE_OFFLINE, &config);
    config.vad_model = wide;
    expect_refusal(&config, ES_PIPELINE_ERR_MODEL, "vad model");
    es_model_destroy(wide);

    /* A VAD model with several outputs must say which one is speech. */
    es_pipeline_feature_spec(NULL, &spec);
    es_model *unlabelled = NULL;
    assert_int_equal(es_model_create(&spec, 40, &unlabelled), ES_RNN_OK);
    assert_int_equal(es_model_add_layer(unlabelled, ES_LAYER_DENSE, 2, ES_ACT_SOFTMAX, 0),
                     ES_RNN_OK);
    const char *labels[] = {"quiet", "loud"};
    assert_int_equal(es_model_set_labels(unlabelled, 2, labels), ES_RNN_OK);
    configure(f, &f->mono_16k, ES_PIPELINE_OFFLINE, &config);
    config.vad_model = unlabelled;
    expect_refusal(&config, ES_PIPELINE_ERR_MODEL, "speech");
    es_model_destroy(unlabelled);
}

static void test_load_model_errors(void **state) {
    (void)state;
    es_model *m = (es_model *)0x1;
    es_error err = {0};
    assert_int_equal(es_pipeline_load_model(NULL, "nonesuch", NULL, &m, &err),
                     ES_PIPELINE_ERR_MODEL);
    assert_null(m);
    assert_non_null(strstr(err.why, "nonesuch"));
    assert_int_equal(es_pipeline_load_model("/nonexistent/x.model", "vad", NULL, &m, &err),
                     ES_PIPELINE_ERR_MODEL);
    assert_non_null(strstr(err.why, "/nonexistent/x.model"));
}

/* Samples beyond full scale are clamped to it, and NaN is silence (issue 35):
 * one sample of 3e38 before the speech gives exactly the output of a sample
 * of 1.0 there. Clamped at 1000 instead, it left the front end's running
 * normalisation, and so the detectors, deaf for 2.7 s. */
static void test_samples_are_clamped_to_full_scale(void **state) {
    const fixture *f = *state;
    const clip *c = &f->mono_16k;
    const size_t at = (size_t)(0.5 * c->rate_hz); /* the speech starts at 0.87 s */
    const float spikes[][2] = {{3e38f, 1.0f}, {-1e6f, -1.0f}, {NAN, 0.0f}};
    clip copy = *c;
    copy.samples = malloc(c->frames * sizeof *copy.samples);
    assert_non_null(copy.samples);
    for (size_t i = 0; i < sizeof spikes / sizeof spikes[0]; i++) {
        run_output absurd, clamped;
        memcpy(copy.samples, c->samples, c->frames * sizeof *copy.samples);
        copy.samples[at] = spikes[i][0];
        run_offline(f, &copy, 4096, &absurd);
        copy.samples[at] = spikes[i][1];
        run_offline(f, &copy, 4096, &clamped);
        assert_true(count_lines(clamped.events) > 0);
        assert_same_output(&absurd, &clamped);
        free_output(&absurd);
        free_output(&clamped);
    }
    free(copy.samples);
}

/* A speech model in a keyword model's place would report "speech" as a
 * keyword (issue 35): the pipeline refuses it with the reason. */
static void test_speech_model_is_no_keyword_model(void **state) {
    const fixture *f = *state;
    es_pipeline_config config;
    configure(f, &f->mono_16k, ES_PIPELINE_OFFLINE, &config);
    config.kws_models[0] = f->vad;
    expect_refusal(&config, ES_PIPELINE_ERR_MODEL, "keyword model 1: not a keyword model");
    es_error err = {0};
    assert_int_equal(es_pipeline_check_keyword_model(f->vad, "vad.esm", &err),
                     ES_PIPELINE_ERR_MODEL);
    assert_non_null(strstr(err.why, "vad.esm: not a keyword model: its output \"speech\""));
    assert_int_equal(es_pipeline_check_keyword_model(f->kws, "kws.esm", &err), ES_PIPELINE_OK);
}

static void test_keyword_columns_skip_filler(void **state) {
    const fixture *f = *state;
    es_pipeline_config config;
    configure(f, &f->mono_16k, ES_PIPELINE_OFFLINE, &config);
    es_pipeline *p = NULL;
    es_error err;
    assert_int_equal(es_pipeline_create(&config, &p, &err), ES_PIPELINE_OK);
    int keywords = 0;
    for (int i = 0; i < es_model_output_size(f->kws); i++) {
        const char *label = es_model_label(f->kws, i);
        keywords += strcmp(label, "filler") != 0 && strcmp(label, "_filler") != 0 &&
                    strcmp(label, "silence") != 0;
    }
    assert_true(keywords > 0);
    assert_int_equal(es_pipeline_keyword_count(p), keywords);
    for (int i = 0; i < keywords; i++)
        assert_string_not_equal(es_pipeline_keyword_label(p, i), "filler");
    assert_null(es_pipeline_keyword_label(p, keywords));
    es_pipeline_destroy(p);
}

/* ---- a model's detection settings ---------------------------------------------------- */

typedef struct keyword_run {
    float *posteriors; /* frames x ES_KWS_MAX_KEYWORDS, the first `columns` used */
    int frames, capacity, columns;
    const char *counted; /* the keyword whose events are counted */
    int events;
} keyword_run;

static void log_posteriors(const es_frame_posteriors *frame, void *user) {
    keyword_run *r = user;
    if (r->frames == r->capacity) {
        r->capacity = r->capacity ? 2 * r->capacity : 1024;
        r->posteriors =
            realloc(r->posteriors, sizeof(float) * (size_t)r->capacity * ES_KWS_MAX_KEYWORDS);
        assert_non_null(r->posteriors);
    }
    r->columns = frame->keyword_count;
    memcpy(r->posteriors + (size_t)r->frames * ES_KWS_MAX_KEYWORDS, frame->keywords,
           sizeof(float) * (size_t)frame->keyword_count);
    r->frames++;
}

static void count_keyword(const es_event *event, void *user) {
    keyword_run *r = user;
    r->events += event->type == ES_EVENT_KEYWORD && strcmp(event->keyword, r->counted) == 0;
}

/* The demo through `kws` alone, every keyword at `default_threshold` unless
 * the model or `config_threshold` (for r->counted; 0: none) says otherwise. */
static void run_keywords(const fixture *f, const es_model *kws, float default_threshold,
                         float config_threshold, keyword_run *r) {
    es_pipeline_config config;
    configure(f, &f->mono_16k, ES_PIPELINE_OFFLINE, &config);
    config.kws_models[0] = kws;
    config.kws.default_threshold = default_threshold;
    if (config_threshold > 0.0f) {
        config.kws.threshold_count = 1;
        snprintf(config.kws.thresholds[0].keyword, sizeof config.kws.thresholds[0].keyword, "%s",
                 r->counted);
        config.kws.thresholds[0].threshold = config_threshold;
    }
    config.on_frame = log_posteriors;
    config.frame_user = r;
    config.on_event = count_keyword;
    config.event_user = r;
    r->frames = 0;
    r->events = 0;
    es_pipeline *p = NULL;
    es_error err;
    assert_int_equal(es_pipeline_create(&config, &p, &err), ES_PIPELINE_OK);
    assert_int_equal(es_pipeline_push(p, f->mono_16k.samples, f->mono_16k.frames), ES_PIPELINE_OK);
    assert_int_equal(es_pipeline_finish(p), ES_PIPELINE_OK);
    es_pipeline_destroy(p);
}

/* The highest mean of column k over `n` frames, as the detector takes it. */
static float peak_mean(const keyword_run *r, int k, int n) {
    float peak = 0.0f;
    for (int t = 0; t < r->frames; t++) {
        const int from = t - n + 1 > 0 ? t - n + 1 : 0;
        float sum = 0.0f;
        for (int i = from; i <= t; i++)
            sum += r->posteriors[(size_t)i * ES_KWS_MAX_KEYWORDS + (size_t)k];
        if (sum / (float)(t - from + 1) > peak) peak = sum / (float)(t - from + 1);
    }
    return peak;
}

/* A model that carries a smoothing (train-keyword's calibration) is read
 * through it: a threshold between the keyword's peak under the default 50 ms
 * mean and under a 1 s mean fires with the former and not with the latter,
 * also when the threshold comes from the config rather than the model. */
static void test_model_smoothing_is_applied(void **state) {
    const fixture *f = *state;
    es_model *kws = NULL;
    es_error err;
    assert_int_equal(es_pipeline_load_model(NULL, "kws", NULL, &kws, &err), ES_PIPELINE_OK);
    assert_int_equal(es_model_set_thresholds(kws, NULL), ES_RNN_OK);
    keyword_run r = {0};
    r.counted = "";
    run_keywords(f, kws, 1.0f, 0.0f, &r);
    /* The keyword whose short and long means differ most. */
    int best = -1;
    float short_peak = 0.0f, long_peak = 0.0f;
    for (int k = 0; k < r.columns; k++) {
        const float s5 = peak_mean(&r, k, 5), s100 = peak_mean(&r, k, 100);
        if (best < 0 || s5 - s100 > short_peak - long_peak) {
            best = k;
            short_peak = s5;
            long_peak = s100;
        }
    }
    assert_true(best >= 0 && short_peak - long_peak > 0.1f);
    const float threshold = (short_peak + long_peak) / 2;
    /* Keyword columns are the model's keyword outputs in order. */
    int output = -1;
    for (int o = 0, column = 0; o < es_model_output_size(kws) && output < 0; o++)
        if (es_kws_label_is_keyword(es_model_label(kws, o)) && column++ == best) output = o;
    assert_true(output >= 0);
    r.counted = es_model_label(kws, output);

    float thresholds[ES_MAX_OUTPUTS] = {0};
    int smoothing[ES_MAX_OUTPUTS] = {0};
    thresholds[output] = threshold;
    assert_int_equal(es_model_set_thresholds(kws, thresholds), ES_RNN_OK);
    run_keywords(f, kws, 1.0f, 0.0f, &r);
    assert_true(r.events > 0);
    smoothing[output] = 1000;
    assert_int_equal(es_model_set_smoothing(kws, smoothing), ES_RNN_OK);
    run_keywords(f, kws, 1.0f, 0.0f, &r);
    assert_int_equal(r.events, 0);
    /* The config's threshold for it, the model's smoothing. */
    memset(thresholds, 0, sizeof thresholds);
    assert_int_equal(es_model_set_thresholds(kws, thresholds), ES_RNN_OK);
    run_keywords(f, kws, 1.0f, threshold, &r);
    assert_int_equal(r.events, 0);
    assert_int_equal(es_model_set_smoothing(kws, NULL), ES_RNN_OK);
    run_keywords(f, kws, 1.0f, threshold, &r);
    assert_true(r.events > 0);
    free(r.posteriors);
    es_model_destroy(kws);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunking_16k_mono),
        cmocka_unit_test(test_chunking_resampled_stereo),
        cmocka_unit_test(test_live_matches_offline),
        cmocka_unit_test(test_speech_start_live_and_offline),
        cmocka_unit_test(test_live_overflow_counts_drops),
        cmocka_unit_test(test_group_matches_offline),
        cmocka_unit_test(test_group_membership),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_load_model_errors),
        cmocka_unit_test(test_samples_are_clamped_to_full_scale),
        cmocka_unit_test(test_speech_model_is_no_keyword_model),
        cmocka_unit_test(test_keyword_columns_skip_filler),
        cmocka_unit_test(test_model_smoothing_is_applied),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
