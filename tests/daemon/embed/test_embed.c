/*
 * libearshot through its public header only, linked against the shared
 * library as a user's program would be.
 *
 * The contract under test: for the same audio, the events (and per-frame
 * posteriors) are byte for byte what the `earshot` binary prints from
 * `earshot file`, whatever the chunking of the feed calls — float and 16-bit
 * input, mono 16 kHz and a multichannel file at another rate. Then the API's
 * own promises: callbacks and queues see the same events, a preset format
 * makes feeding allocation-free, errors come back as codes with a reason,
 * reset starts over, two detectors on two threads do not interfere, and
 * models loaded once serve detectors on several threads.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sndfile.h>

#include "alloc_count.h"
#include "earshot.h"

#define DEMO_CLIP ES_SOURCE_DIR "/tests/clips/demo.wav"

/* ---- helpers -------------------------------------------------------------------- */

/* A growing text buffer. */
typedef struct text {
    char *data;
    size_t len, cap;
} text;

static void text_add(text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->data = realloc(t->data, t->cap);
        assert_non_null(t->data);
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
}

static void text_printf(text *t, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof line);
    text_add(t, line, (size_t)n);
}

/* What `earshot ARGS` prints on stdout (it must exit 0). */
static char *run_earshot(const char *args) {
    char command[2048];
    snprintf(command, sizeof command, "'%s' %s", EARSHOT_BINARY, args);
    FILE *p = popen(command, "r");
    assert_non_null(p);
    text out = {0};
    text_add(&out, "", 0);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        text_add(&out, buf, n);
    assert_int_equal(pclose(p), 0);
    return out.data;
}

typedef struct audio {
    float *samples;
    int16_t *s16;
    size_t frames;
    int rate, channels;
} audio;

static void read_audio(const char *path, audio *a) {
    SF_INFO info = {0};
    SNDFILE *f = sf_open(path, SFM_READ, &info);
    assert_non_null(f);
    a->frames = (size_t)info.frames;
    a->rate = info.samplerate;
    a->channels = info.channels;
    a->samples = malloc(a->frames * (size_t)a->channels * sizeof *a->samples);
    a->s16 = malloc(a->frames * (size_t)a->channels * sizeof *a->s16);
    assert_non_null(a->samples);
    assert_non_null(a->s16);
    assert_int_equal(sf_readf_float(f, a->samples, info.frames), info.frames);
    sf_seek(f, 0, SEEK_SET);
    assert_int_equal(sf_readf_short(f, a->s16, info.frames), info.frames);
    sf_close(f);
}

static void free_audio(audio *a) {
    free(a->samples);
    free(a->s16);
}

static void take_events(earshot_detector *det, text *json) {
    const earshot_event *ev;
    while ((ev = earshot_poll_event(det))) {
        char line[1024];
        int n = earshot_event_to_json(ev, line, sizeof line);
        assert_true(n > 0 && (size_t)n < sizeof line);
        text_add(json, line, (size_t)n);
    }
}

/* Chunk sizes that are odd, tiny, larger than the pipeline's own split
 * (4096) and a single frame, in turn. */
static const size_t chunk_pattern[] = {1, 7, 333, 4097, 160, 12345, 2, 999};

/* Feeds `a` in the pattern's chunk sizes (starting at `phase`), polling
 * after every feed, and returns the JSON lines of all events. */
static char *events_of(earshot_detector *det, const audio *a, int use_s16, int phase) {
    text json = {0};
    text_add(&json, "", 0);
    size_t done = 0;
    for (int i = phase; done < a->frames; i++) {
        size_t n = chunk_pattern[i % (int)(sizeof chunk_pattern / sizeof *chunk_pattern)];
        if (n > a->frames - done) n = a->frames - done;
        size_t offset = done * (size_t)a->channels;
        int rc = use_s16 ? earshot_feed_s16(det, a->s16 + offset, n, a->rate, a->channels)
                         : earshot_feed(det, a->samples + offset, n, a->rate, a->channels);
        assert_int_equal(rc, EARSHOT_OK);
        take_events(det, &json);
        done += n;
    }
    assert_int_equal(earshot_finish(det), EARSHOT_OK);
    take_events(det, &json);
    return json.data;
}

static earshot_detector *make_detector(const earshot_params *params) {
    earshot_detector *det = NULL;
    char why[256];
    int rc = earshot_create(params, &det, why, sizeof why);
    if (rc != EARSHOT_OK) fail_msg("earshot_create: %s (%s)", why, earshot_strerror(rc));
    return det;
}

static void count_lines(const char *s, int *lines) {
    *lines = 0;
    for (; *s; s++)
        *lines += *s == '\n';
}

/* ---- the same events as `earshot file` --------------------------------------------- */

static void check_same_as_file(const char *path, const char *flags, const earshot_params *params) {
    char args[1024];
    snprintf(args, sizeof args, "file %s '%s'", flags, path);
    char *expected = run_earshot(args);
    int lines;
    count_lines(expected, &lines);
    assert_true(lines >= 3); /* the demo has speech and keywords: a real comparison */

    audio a;
    read_audio(path, &a);
    for (int use_s16 = 0; use_s16 < 2; use_s16++)
        for (int phase = 0; phase < 3; phase++) {
            earshot_detector *det = make_detector(params);
            char *got = events_of(det, &a, use_s16, phase);
            assert_string_equal(got, expected);
            free(got);
            earshot_destroy(det);
        }
    free_audio(&a);
    free(expected);
}

static void test_demo_events_match_earshot_file(void **state) {
    (void)state;
    earshot_params params = earshot_params_default();
    params.source = DEMO_CLIP; /* events name it as `earshot file` does */
    check_same_as_file(DEMO_CLIP, "", &params);
}

/* Detector knobs mean what the flags of the same name mean. */
static void test_knobs_match_flags(void **state) {
    (void)state;
    earshot_params params = earshot_params_default();
    params.source = DEMO_CLIP;
    params.vad_threshold = 0.6f;
    params.min_silence_ms = 300;
    params.speech_pad_ms = 50;
    params.speech_start_events = 1;
    params.kw_threshold = 0.4f;
    params.keyword_setting_count = 1;
    params.keyword_settings[0].keyword = "stop";
    params.keyword_settings[0].threshold = 0.9f;
    check_same_as_file(DEMO_CLIP,
                       "--vad-threshold 0.6 --min-silence-ms 300 --speech-pad-ms 50 "
                       "--speech-start --kw-threshold 0.4 --kw-threshold-for stop=0.9",
                       &params);
}

/* Stereo at 22.05 kHz: downmix and resampler, as `earshot file` runs them. */
static void test_stereo_other_rate_matches_earshot_file(void **state) {
    (void)state;
    audio mono;
    read_audio(DEMO_CLIP, &mono);
    char path[] = "/tmp/earshot-embed-XXXXXX.wav";
    int fd = mkstemps(path, 4);
    assert_true(fd >= 0);
    close(fd);
    SF_INFO info = {.samplerate = 22050, .channels = 2, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    assert_non_null(f);
    int16_t *stereo = malloc(mono.frames * 2 * sizeof *stereo);
    assert_non_null(stereo);
    for (size_t i = 0; i < mono.frames; i++) {
        stereo[2 * i] = mono.s16[i];
        stereo[2 * i + 1] = (int16_t)(mono.s16[i] / 2);
    }
    assert_int_equal(sf_writef_short(f, stereo, (sf_count_t)mono.frames), (sf_count_t)mono.frames);
    sf_close(f);
    free(stereo);
    free_audio(&mono);

    earshot_params params = earshot_params_default();
    params.source = path;
    check_same_as_file(path, "", &params);
    unlink(path);
}

/* Posteriors: earshot_frames() rows printed as `--format frames` prints them. */
static void test_frames_match_format_frames(void **state) {
    (void)state;
    char *expected = run_earshot("file --format frames '" DEMO_CLIP "'");
    audio a;
    read_audio(DEMO_CLIP, &a);
    earshot_params params = earshot_params_default();
    params.frame_queue_capacity = 64; /* smaller than a chunk's frames: polled often */
    earshot_detector *det = make_detector(&params);

    text csv = {0};
    text_printf(&csv, "time_s,speech");
    for (int k = 0; k < earshot_keyword_count(det); k++)
        text_printf(&csv, ",%s", earshot_keyword_name(det, k));
    text_printf(&csv, "\n");
    const int columns = earshot_frame_columns(det);
    assert_int_equal(columns, earshot_keyword_count(det) + 1);
    double times[64];
    float *rows = malloc(64 * (size_t)columns * sizeof *rows);
    assert_non_null(rows);
    size_t done = 0;
    for (int finished = 0; !finished;) {
        size_t n = a.frames - done < 313 ? a.frames - done : 313; /* ~2 frames per feed */
        if (n > 0) {
            assert_int_equal(earshot_feed(det, a.samples + done, n, a.rate, a.channels), 0);
            done += n;
        } else {
            assert_int_equal(earshot_finish(det), 0);
            finished = 1;
        }
        int got;
        while ((got = earshot_frames(det, times, rows, 64)) > 0)
            for (int i = 0; i < got; i++) {
                text_printf(&csv, "%.2f", times[i]);
                for (int c = 0; c < columns; c++)
                    text_printf(&csv, ",%.6f", rows[(size_t)i * (size_t)columns + (size_t)c]);
                text_printf(&csv, "\n");
            }
        assert_int_equal(got, 0);
    }
    assert_int_equal(earshot_dropped_frames(det), 0);
    assert_string_equal(csv.data, expected);
    free(csv.data);
    free(rows);
    earshot_destroy(det);
    free_audio(&a);
    free(expected);
}

/* ---- the API's own promises --------------------------------------------------------- */

typedef struct collected {
    int events, frames;
    char json[8192];
    size_t len;
} collected;

static void collect_event(const earshot_event *ev, void *user) {
    collected *c = user;
    c->events++;
    int n = earshot_event_to_json(ev, c->json + c->len, sizeof c->json - c->len);
    assert_true(n > 0 && (size_t)n < sizeof c->json - c->len);
    c->len += (size_t)n;
}

static void collect_frame(const earshot_frame *frame, void *user) {
    collected *c = user;
    assert_true(frame->keyword_count >= 0);
    assert_true(frame->speech >= 0.0f && frame->speech <= 1.0f);
    c->frames++;
}

/* Callbacks see what the queue sees; a queue of 0 holds nothing; a full
 * queue drops its oldest events and counts them. With the format preset,
 * feeding allocates nothing ([rt]). */
static void test_callbacks_queues_and_rt_feed(void **state) {
    (void)state;
    audio a;
    read_audio(DEMO_CLIP, &a);
    earshot_params params = earshot_params_default();
    params.source = DEMO_CLIP;
    earshot_detector *det = make_detector(&params);
    char *expected = events_of(det, &a, 0, 0);
    earshot_destroy(det);

    collected c = {0};
    params.on_event = collect_event;
    params.event_user = &c;
    params.on_frame = collect_frame;
    params.frame_user = &c;
    params.event_queue_capacity = 0;
    params.sample_rate_hz = a.rate;
    params.channels = a.channels;
    det = make_detector(&params);
    alloc_count_reset();
    alloc_count_open();
    for (size_t done = 0; done < a.frames; done += 480) {
        size_t n = a.frames - done < 480 ? a.frames - done : 480;
        assert_int_equal(earshot_feed(det, a.samples + done, n, a.rate, a.channels), 0);
        assert_null(earshot_poll_event(det));
    }
    assert_int_equal(earshot_finish(det), 0);
    alloc_count_close();
    assert_int_equal(alloc_count_allocations(), 0);
    assert_int_equal(alloc_count_frees(), 0);
    assert_string_equal(c.json, expected);
    /* One per 10 ms hop (the last window needs 25 ms). */
    assert_in_range(c.frames, (int)(a.frames / 160) - 3, (int)(a.frames / 160));
    assert_true(earshot_stream_time(det) == (double)a.frames / a.rate);
    earshot_destroy(det);

    /* The resampling and downmixing path too (44.1 kHz stereo), 16-bit input. */
    params = earshot_params_default();
    params.sample_rate_hz = 44100;
    params.channels = 2;
    params.wallclock = 1;
    params.frame_queue_capacity = 16;
    det = make_detector(&params);
    alloc_count_reset();
    alloc_count_open();
    for (size_t done = 0; done + 1023 <= a.frames; done += 1023)
        assert_int_equal(earshot_feed_s16(det, a.s16 + done, 1023 / 2, 44100, 2), 0);
    while (earshot_poll_event(det))
        ;
    double times[16];
    while (earshot_frames(det, times, NULL, 16) > 0)
        ;
    alloc_count_close();
    assert_int_equal(alloc_count_allocations(), 0);
    assert_int_equal(alloc_count_frees(), 0);
    /* Not in the window: flushing the resampler's filters allocates inside
     * libsoxr, so earshot_finish is [rt] only for 16 kHz mono (above). */
    assert_int_equal(earshot_finish(det), 0);
    earshot_destroy(det);

    params = earshot_params_default();
    params.event_queue_capacity = 2;
    det = make_detector(&params);
    assert_int_equal(earshot_feed(det, a.samples, a.frames, a.rate, a.channels), 0);
    assert_int_equal(earshot_finish(det), 0);
    int lines, kept = 0;
    count_lines(expected, &lines);
    while (earshot_poll_event(det))
        kept++;
    assert_int_equal(kept, 2);
    assert_int_equal(earshot_dropped_events(det), (uint64_t)(lines - 2));
    earshot_destroy(det);
    free(expected);
    free_audio(&a);
}

static void test_errors_and_reset(void **state) {
    (void)state;
    earshot_detector *det = NULL;
    char why[256];
    earshot_params params = earshot_params_default();

    params.vad_model = "/nonexistent/vad.esm";
    assert_int_equal(earshot_create(&params, &det, why, sizeof why), EARSHOT_ERR_MODEL);
    assert_null(det);
    assert_non_null(strstr(why, "/nonexistent/vad.esm"));

    params = earshot_params_default();
    params.kws_models[0] = "builtin";
    params.keyword_setting_count = 1;
    params.keyword_settings[0].keyword = "banana";
    params.keyword_settings[0].threshold = 0.5f;
    assert_int_equal(earshot_create(&params, &det, why, sizeof why), EARSHOT_ERR_ARG);
    assert_non_null(strstr(why, "banana"));

    params = earshot_params_default();
    params.vad_threshold = 1.5f;
    assert_int_equal(earshot_create(&params, &det, NULL, 0), EARSHOT_ERR_ARG);
    params = earshot_params_default();
    params.kws_model_count = 9;
    assert_int_equal(earshot_create(&params, &det, why, sizeof why), EARSHOT_ERR_ARG);
    params = earshot_params_default();
    params.sample_rate_hz = 1000;
    params.channels = 1;
    assert_int_equal(earshot_create(&params, &det, why, sizeof why), EARSHOT_ERR_FORMAT);
    assert_int_equal(earshot_create(NULL, &det, why, sizeof why), EARSHOT_ERR_ARG);

    params = earshot_params_default();
    params.kws_model_count = 0; /* VAD only */
    det = make_detector(&params);
    assert_int_equal(earshot_keyword_count(det), 0);
    assert_null(earshot_keyword_name(det, 0));
    float silence[480] = {0};
    assert_int_equal(earshot_feed(det, silence, 480, 48000, 1), 0);
    assert_int_equal(earshot_feed(det, silence, 240, 48000, 2), EARSHOT_ERR_FORMAT);
    assert_non_null(strstr(earshot_last_error(det), "48000 Hz x 1"));
    assert_int_equal(earshot_feed(det, NULL, 5, 48000, 1), EARSHOT_ERR_ARG);
    assert_int_equal(earshot_feed(det, NULL, 0, 48000, 1), EARSHOT_OK);
    assert_int_equal(earshot_finish(det), 0);
    assert_int_equal(earshot_finish(det), 0);
    assert_int_equal(earshot_feed(det, silence, 480, 48000, 1), EARSHOT_ERR_STATE);
    assert_int_equal(earshot_reset(det), 0);
    assert_true(earshot_stream_time(det) == 0.0);
    assert_int_equal(earshot_feed(det, silence, 240, 48000, 2), 0); /* a new stream */
    earshot_destroy(det);
    earshot_destroy(NULL);

    assert_string_equal(earshot_strerror(EARSHOT_ERR_STATE), "input already finished");
    assert_string_equal(earshot_strerror(-99), "unknown error");
    assert_int_equal(earshot_feed(NULL, silence, 1, 16000, 1), EARSHOT_ERR_ARG);
    assert_null(earshot_poll_event(NULL));
}

/* Reset gives a second stream the first one's events. */
static void test_reset_repeats_stream(void **state) {
    (void)state;
    audio a;
    read_audio(DEMO_CLIP, &a);
    earshot_params params = earshot_params_default();
    earshot_detector *det = make_detector(&params);
    char *first = events_of(det, &a, 0, 1);
    assert_int_equal(earshot_reset(det), 0);
    char *second = events_of(det, &a, 1, 2);
    assert_string_equal(first, second);
    free(first);
    free(second);
    earshot_destroy(det);
    free_audio(&a);
}

typedef struct worker {
    const audio *a;
    int phase;
    char *events;
} worker;

static void *run_worker(void *arg) {
    worker *w = arg;
    earshot_params params = earshot_params_default();
    params.source = DEMO_CLIP;
    earshot_detector *det = NULL;
    if (earshot_create(&params, &det, NULL, 0) != 0) return NULL;
    w->events = events_of(det, w->a, w->phase % 2, w->phase);
    earshot_destroy(det);
    return NULL;
}

/* No global state: detectors on two threads at once agree with one alone. */
static void test_threads_do_not_interfere(void **state) {
    (void)state;
    audio a;
    read_audio(DEMO_CLIP, &a);
    worker w[2] = {{.a = &a, .phase = 0}, {.a = &a, .phase = 1}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, run_worker, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_non_null(w[0].events);
    assert_non_null(w[1].events);
    assert_string_equal(w[0].events, w[1].events);
    char *expected = run_earshot("file '" DEMO_CLIP "'");
    assert_string_equal(w[0].events, expected);
    free(expected);
    free(w[0].events);
    free(w[1].events);
    free_audio(&a);
}

/* ---- shared models ------------------------------------------------------------------ */

typedef struct shared_worker {
    const audio *a;
    earshot_detector *det;
    int phase;
    char *events;
} shared_worker;

static void *run_shared_worker(void *arg) {
    shared_worker *w = arg;
    w->events = events_of(w->det, w->a, w->phase % 2, w->phase);
    earshot_destroy(w->det);
    return NULL;
}

/* One models handle, two detectors on two threads at once (what `earshot
 * file -j 2` does): each sends what `earshot file` prints. The caller's
 * reference is dropped once the detectors are made, while they run: theirs
 * keep the models alive, and the last destroy, on either thread, frees them
 * (ASan and TSan builds check the counting). */
static void test_shared_models_on_two_threads(void **state) {
    (void)state;
    audio a;
    read_audio(DEMO_CLIP, &a);
    earshot_params params = earshot_params_default();
    earshot_models *models = NULL;
    char why[256];
    assert_int_equal(earshot_models_load(&params, &models, why, sizeof why), EARSHOT_OK);
    assert_non_null(models);
    shared_worker w[2] = {{.a = &a, .phase = 0}, {.a = &a, .phase = 1}};
    params.source = DEMO_CLIP;
    for (int i = 0; i < 2; i++)
        assert_int_equal(earshot_create_with_models(&params, models, &w[i].det, why, sizeof why),
                         EARSHOT_OK);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, run_shared_worker, &w[i]), 0);
    earshot_models_release(models);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_non_null(w[0].events);
    assert_non_null(w[1].events);
    char *expected = run_earshot("file '" DEMO_CLIP "'");
    assert_string_equal(w[0].events, expected);
    assert_string_equal(w[1].events, expected);
    free(expected);
    free(w[0].events);
    free(w[1].events);
    free_audio(&a);
}

/* A detector made from shared models is the one earshot_create makes from
 * the same params; params' own model fields are not read; a keyword setting
 * is checked against the shared models' labels. */
static void test_shared_models_rules(void **state) {
    (void)state;
    earshot_params params = earshot_params_default();
    earshot_models *models = NULL;
    earshot_detector *det = NULL;
    char why[256];

    assert_int_equal(earshot_models_load(&params, &models, why, sizeof why), EARSHOT_OK);
    assert_int_equal(earshot_models_has_label(models, "yes"), 1);
    assert_int_equal(earshot_models_has_label(models, "filler"), 1); /* an output, no keyword */
    assert_int_equal(earshot_models_has_label(models, "silence"), 0);
    assert_int_equal(earshot_models_has_label(models, NULL), 0);
    assert_int_equal(earshot_models_has_label(NULL, "yes"), 0);

    earshot_params other = earshot_params_default();
    other.vad_model = "/nonexistent/vad.esm"; /* not read: the models are given */
    other.kws_model_count = 0;
    other.keyword_setting_count = 2;
    other.keyword_settings[0].keyword = "yes";
    other.keyword_settings[0].threshold = 0.9f;
    other.keyword_settings[1].keyword = "filler"; /* accepted, as --kw-threshold-for filler=T */
    other.keyword_settings[1].threshold = 0.5f;
    assert_int_equal(earshot_create_with_models(&other, models, &det, why, sizeof why), EARSHOT_OK);
    earshot_detector *own = make_detector(&params);
    assert_int_equal(earshot_keyword_count(det), earshot_keyword_count(own));
    assert_true(earshot_keyword_count(det) > 0);
    for (int i = 0; i < earshot_keyword_count(det); i++)
        assert_string_equal(earshot_keyword_name(det, i), earshot_keyword_name(own, i));
    earshot_destroy(own);
    earshot_models_release(models); /* the detector's reference keeps them */
    float silence[1600] = {0};
    assert_int_equal(earshot_feed(det, silence, 1600, 16000, 1), EARSHOT_OK);
    assert_int_equal(earshot_finish(det), EARSHOT_OK);
    assert_string_equal(earshot_keyword_name(det, 0), "yes");
    earshot_destroy(det);

    assert_int_equal(earshot_models_load(&params, &models, NULL, 0), EARSHOT_OK);
    other.keyword_settings[1].keyword = "banana";
    det = (earshot_detector *)&det; /* set to NULL on failure */
    assert_int_equal(earshot_create_with_models(&other, models, &det, why, sizeof why),
                     EARSHOT_ERR_ARG);
    assert_null(det);
    assert_non_null(strstr(why, "banana"));
    assert_int_equal(earshot_create_with_models(&params, NULL, &det, why, sizeof why),
                     EARSHOT_ERR_ARG);
    assert_int_equal(earshot_create_with_models(NULL, models, &det, NULL, 0), EARSHOT_ERR_ARG);
    earshot_models_release(models);
    earshot_models_release(NULL);

    /* Load errors: a code and the reason, *out NULL. */
    params.kws_models[0] = ES_SOURCE_DIR "/models/vad.esm";
    models = (earshot_models *)&models;
    assert_int_equal(earshot_models_load(&params, &models, why, sizeof why), EARSHOT_ERR_MODEL);
    assert_null(models);
    assert_non_null(strstr(why, "not a keyword model"));
    params = earshot_params_default();
    params.vad_model = "/nonexistent/vad.esm";
    assert_int_equal(earshot_models_load(&params, &models, why, sizeof why), EARSHOT_ERR_MODEL);
    assert_non_null(strstr(why, "/nonexistent/vad.esm"));
    params = earshot_params_default();
    params.kws_model_count = EARSHOT_MAX_KWS_MODELS + 1;
    assert_int_equal(earshot_models_load(&params, &models, why, sizeof why), EARSHOT_ERR_ARG);
    assert_int_equal(earshot_models_load(NULL, &models, why, sizeof why), EARSHOT_ERR_ARG);
    assert_int_equal(earshot_models_load(&params, NULL, why, sizeof why), EARSHOT_ERR_ARG);
}

static void test_version_and_layout(void **state) {
    (void)state;
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", EARSHOT_VERSION_MAJOR, EARSHOT_VERSION_MINOR,
             EARSHOT_VERSION_PATCH);
    assert_string_equal(earshot_version_string(), expected);
    assert_int_equal(earshot_version_number(), EARSHOT_VERSION_MAJOR * 10000 +
                                                   EARSHOT_VERSION_MINOR * 100 +
                                                   EARSHOT_VERSION_PATCH);
    assert_int_equal(earshot_params_size(), sizeof(earshot_params));
    assert_string_equal(earshot_event_type_name(EARSHOT_EVENT_KEYWORD), "keyword");
    assert_string_equal(earshot_event_type_name((earshot_event_type)42), "unknown");
    earshot_event ev = {.type = EARSHOT_EVENT_SPEECH, .start = 1, .end = 2, .score = 0.5f};
    char small[8];
    int need = earshot_event_to_json(&ev, small, sizeof small);
    assert_true(need > (int)sizeof small);
    assert_int_equal(strlen(small), sizeof small - 1);
}

int main(int argc, char **argv) {
    alloc_count_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_events_match_earshot_file),
        cmocka_unit_test(test_knobs_match_flags),
        cmocka_unit_test(test_stereo_other_rate_matches_earshot_file),
        cmocka_unit_test(test_frames_match_format_frames),
        cmocka_unit_test(test_callbacks_queues_and_rt_feed),
        cmocka_unit_test(test_errors_and_reset),
        cmocka_unit_test(test_reset_repeats_stream),
        cmocka_unit_test(test_threads_do_not_interfere),
        cmocka_unit_test(test_shared_models_on_two_threads),
        cmocka_unit_test(test_shared_models_rules),
        cmocka_unit_test(test_version_and_layout),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
