/*
 * One stream from samples to events; see stream.h for the two modes.
 *
 * The offline path and the live consumer share run_models(), so both produce
 * the same posteriors and events for the same frames.
 */
#include "clock.h"
#include "stream.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "builtin.h"
#include "pipeline_engine.h"

#define MIN_INPUT_RATE_HZ 8000.0
#define MAX_INPUT_RATE_HZ 96000.0
#define MAX_INPUT_CHANNELS 64
/* The live consumer polls the ring this often while it waits: a fraction of
 * one 10 ms hop, so waiting adds little latency and no busy loop. */
#define CONSUME_POLL_NS 2000000L
/* Frames the models step together: they share each weight load of the
 * networks' input side (es_state_step_frames). Offline runs fill whole blocks;
 * the live consumer takes what the ring holds, so waiting adds nothing. */
#define MODEL_BLOCK_FRAMES 32
/* Resampler tails are short; the bound only guards against a drain that
 * never reports empty. */
#define MAX_DRAIN_CALLS 64

struct es_pipeline {
    es_pipeline_config config; /* config.source points at `source` below */
    char *source;

    /* producer half */
    es_resampler *resampler; /* NULL when the input is already 16 kHz mono */
    float *cleaned;          /* one chunk of input, non-finite samples removed */
    float *resampled;
    size_t resampled_capacity;
    es_frontend *frontend;
    int64_t feed_started_ns; /* monotonic time of the current feed call */
    int finished;            /* offline finish / live close_input happened */

    /* live only: ring and, per frame slot, when the frame's audio was fed */
    es_ring *ring;
    _Atomic int64_t *fed_at_ns;
    size_t fed_at_mask;
    atomic_int input_closed;
    int consumer_done;

    /* consumer half (offline: the pushing thread) */
    es_frame block[MODEL_BLOCK_FRAMES]; /* frames waiting for the models */
    int block_count;
    float *block_features; /* MODEL_BLOCK_FRAMES x mel bands */
    float *vad_outputs;    /* MODEL_BLOCK_FRAMES x the VAD's outputs */
    float *kws_outputs[ES_PIPELINE_MAX_KWS_MODELS];
    es_state *vad_state;
    int vad_speech_output;
    es_vad_detector *vad;
    int kws_model_count;
    es_state *kws_states[ES_PIPELINE_MAX_KWS_MODELS];
    es_kws_detector *kws_detectors[ES_PIPELINE_MAX_KWS_MODELS];
    int keyword_count;
    int *keyword_model;  /* column -> keyword model index */
    int *keyword_output; /* column -> that model's output */
    float *keyword_posteriors;
    int64_t current_frame_time; /* frame being processed, for latency */

    atomic_uint_fast64_t frames_processed;
    atomic_uint_fast64_t input_overflows;
    atomic_uint_fast64_t events;
    atomic_uint_fast64_t latency_count;
    atomic_uint_fast64_t latency_sum_ns;
    atomic_uint_fast64_t latency_max_ns;
};

static int fail_about(es_error *err, int code, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "WHAT: REASON", where WHAT (a model's path) may be long: when both do not
 * fit, the middle of WHAT gives way, never the reason. */
static int fail_about(es_error *err, int code, const char *what, const char *fmt, ...) {
    if (!err) return code;
    char why[sizeof err->why];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    const size_t what_len = strlen(what), why_len = strlen(why), size = sizeof err->why;
    const size_t room = size - 1 > why_len + 2 ? size - 1 - why_len - 2 : 0; /* for WHAT */
    if (what_len <= room || room < 16) return es_error_set(err, code, "%s: %s", what, why);
    const int head = (int)(room - 3) / 2, tail = (int)(room - 3) - head;
    return es_error_set(err, code, "%.*s...%s: %s", head, what, what + what_len - (size_t)tail,
                        why);
}

const char *es_pipeline_strerror(int code) {
    switch (code) {
    case ES_PIPELINE_OK:
        return "success";
    case ES_PIPELINE_ERR_NOMEM:
        return "out of memory";
    case ES_PIPELINE_ERR_CONFIG:
        return "invalid pipeline configuration";
    case ES_PIPELINE_ERR_MODEL:
        return "unusable model";
    case ES_PIPELINE_ERR_DSP:
        return "audio processing setup failed";
    case ES_PIPELINE_ERR_STATE:
        return "call not allowed in this pipeline state";
    case ES_PIPELINE_CLOSED:
        return "input closed";
    default:
        return "unknown pipeline error";
    }
}

static double unix_time_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- models ------------------------------------------------------------------ */

void es_pipeline_feature_spec(const es_frontend_config *frontend, es_feature_spec *spec) {
    es_frontend_config defaults;
    if (!frontend) {
        es_frontend_config_default(&defaults);
        frontend = &defaults;
    }
    memset(spec, 0, sizeof *spec);
    spec->sample_rate_hz = (uint32_t)frontend->sample_rate_hz;
    spec->fft_size = (uint32_t)frontend->fft_size;
    spec->window_samples = (uint32_t)frontend->window_samples;
    spec->hop_samples = (uint32_t)frontend->hop_samples;
    spec->mel_bands = (uint32_t)frontend->mel_bands;
    spec->normalisation = (uint32_t)frontend->normalisation;
}

static int find_speech_output(const es_model *m);

/* Whether a model fits the front end and can run frame by frame. */
static int check_model(const es_model *m, const es_frontend_config *frontend, const char *what,
                       es_error *err) {
    es_feature_spec spec;
    es_pipeline_feature_spec(frontend, &spec);
    es_error rnn_err = {0};
    if (es_model_check_features(m, &spec, &rnn_err) != ES_RNN_OK)
        return fail_about(err, ES_PIPELINE_ERR_MODEL, what, "%s",
                          rnn_err.why[0] ? rnn_err.why : es_rnn_strerror(rnn_err.code));
    if (es_model_input_size(m) != (int)spec.mel_bands)
        return fail_about(err, ES_PIPELINE_ERR_MODEL, what,
                          "takes %d inputs, the front end makes %u", es_model_input_size(m),
                          spec.mel_bands);
    if (!es_model_is_streaming(m))
        return fail_about(err, ES_PIPELINE_ERR_MODEL, what,
                          "has a bidirectional layer and cannot run frame by frame");
    return ES_PIPELINE_OK;
}

int es_pipeline_load_model(const char *path, const char *builtin_name,
                           const es_frontend_config *frontend, es_model **out, es_error *err) {
    *out = NULL;
    es_model *m = NULL;
    es_error rnn_err = {0};
    int rc;
    char builtin_what[64];
    const char *what = builtin_what;
    if (!path || strcmp(path, "builtin") == 0) {
        size_t size = 0;
        const unsigned char *bytes = builtin_name ? es_builtin_model(builtin_name, &size) : NULL;
        if (!bytes)
            return es_error_set(err, ES_PIPELINE_ERR_MODEL, "no built-in model named \"%s\"",
                                builtin_name ? builtin_name : "(none)");
        rc = es_model_load_memory(bytes, size, &m, &rnn_err);
        snprintf(builtin_what, sizeof builtin_what, "built-in %s model", builtin_name);
    } else {
        rc = es_model_load_file(path, &m, &rnn_err);
        /* The path leads the message, as every earshot error names its file. */
        what = path;
    }
    if (rc != ES_RNN_OK)
        return fail_about(err, ES_PIPELINE_ERR_MODEL, what, "%s",
                          rnn_err.why[0] ? rnn_err.why : es_rnn_strerror(rc));
    rc = check_model(m, frontend, what, err);
    if (rc == ES_PIPELINE_OK && builtin_name && strcmp(builtin_name, "vad") == 0 &&
        find_speech_output(m) < 0)
        rc = fail_about(err, ES_PIPELINE_ERR_MODEL, what,
                        "not a speech model: %d outputs and none is labelled \"speech\"",
                        es_model_output_size(m));
    if (rc != ES_PIPELINE_OK) {
        es_model_destroy(m);
        return rc;
    }
    *out = m;
    return ES_PIPELINE_OK;
}

int es_pipeline_check_keyword_model(const es_model *m, const char *what, es_error *err) {
    int keywords = 0;
    for (int i = 0; i < es_model_output_size(m); i++) {
        const char *label = es_model_label(m, i);
        if (strcmp(label, "speech") == 0)
            return fail_about(err, ES_PIPELINE_ERR_MODEL, what,
                              "not a keyword model: its output \"speech\" makes it a speech "
                              "(VAD) model");
        keywords += es_kws_label_is_keyword(label);
    }
    if (keywords == 0)
        return fail_about(err, ES_PIPELINE_ERR_MODEL, what,
                          "not a keyword model: none of its %d outputs is a keyword",
                          es_model_output_size(m));
    return ES_PIPELINE_OK;
}

static int find_speech_output(const es_model *m) {
    int outputs = es_model_output_size(m);
    if (outputs == 1) return 0;
    for (int i = 0; i < outputs; i++)
        if (strcmp(es_model_label(m, i), "speech") == 0) return i;
    return -1;
}

/* ---- configuration --------------------------------------------------------- */

void es_pipeline_config_default(es_pipeline_config *config, es_pipeline_mode mode) {
    memset(config, 0, sizeof *config);
    config->mode = mode;
    es_frontend_config_default(&config->frontend);
    es_vad_config_default(&config->vad);
    es_kws_config_default(&config->kws);
    config->input_rate_hz = 16000.0;
    config->input_channels = 1;
    config->max_input_frames = 4096;
    config->ring_capacity_frames = 512;
    config->ring_policy = ES_RING_DROP_OLDEST;
    config->wallclock = mode == ES_PIPELINE_LIVE;
}

static int check_config(const es_pipeline_config *c, es_error *err) {
    if (c->mode != ES_PIPELINE_OFFLINE && c->mode != ES_PIPELINE_LIVE)
        return es_error_set(err, ES_PIPELINE_ERR_CONFIG, "unknown pipeline mode %d", (int)c->mode);
    if (!(c->input_rate_hz >= MIN_INPUT_RATE_HZ && c->input_rate_hz <= MAX_INPUT_RATE_HZ))
        return es_error_set(err, ES_PIPELINE_ERR_CONFIG,
                            "sample rate %.0f Hz is outside the supported %.0f-%.0f Hz",
                            c->input_rate_hz, MIN_INPUT_RATE_HZ, MAX_INPUT_RATE_HZ);
    if (c->input_channels < 1 || c->input_channels > MAX_INPUT_CHANNELS)
        return es_error_set(err, ES_PIPELINE_ERR_CONFIG,
                            "%d channels is outside the supported 1-%d", c->input_channels,
                            MAX_INPUT_CHANNELS);
    if (c->max_input_frames == 0)
        return es_error_set(err, ES_PIPELINE_ERR_CONFIG, "max_input_frames must be at least 1");
    if (c->mode == ES_PIPELINE_LIVE && c->ring_capacity_frames < 2)
        return es_error_set(err, ES_PIPELINE_ERR_CONFIG, "ring capacity must be at least 2 frames");
    if (!c->vad_model) return es_error_set(err, ES_PIPELINE_ERR_CONFIG, "a VAD model is required");
    if (c->kws_model_count < 0 || c->kws_model_count > ES_PIPELINE_MAX_KWS_MODELS)
        return es_error_set(err, ES_PIPELINE_ERR_CONFIG, "%d keyword models (at most %d)",
                            c->kws_model_count, ES_PIPELINE_MAX_KWS_MODELS);
    if (es_vad_config_check(&c->vad, err) != 0 || es_kws_config_check(&c->kws, err) != 0) {
        if (err) err->code = ES_PIPELINE_ERR_CONFIG;
        return ES_PIPELINE_ERR_CONFIG;
    }
    return ES_PIPELINE_OK;
}

/* ---- lifecycle ----------------------------------------------------------------- */

static int create_input_stages(es_pipeline *p, es_error *err) {
    const es_pipeline_config *c = &p->config;
    int rc = es_frontend_create(&c->frontend, &p->frontend);
    if (rc != ES_DSP_OK)
        return es_error_set(err, ES_PIPELINE_ERR_DSP, "front end: %s", es_dsp_strerror(rc));
    p->cleaned = malloc(c->max_input_frames * (size_t)c->input_channels * sizeof *p->cleaned);
    if (!p->cleaned) return es_error_set(err, ES_PIPELINE_ERR_NOMEM, "input buffer: out of memory");
    if (c->input_channels == 1 && c->input_rate_hz == (double)c->frontend.sample_rate_hz)
        return ES_PIPELINE_OK;
    rc = es_resampler_create(c->input_rate_hz, c->input_channels, c->frontend.sample_rate_hz,
                             c->max_input_frames, &p->resampler);
    if (rc != ES_DSP_OK)
        return es_error_set(err, ES_PIPELINE_ERR_DSP, "resampler from %.0f Hz, %d channels: %s",
                            c->input_rate_hz, c->input_channels, es_dsp_strerror(rc));
    p->resampled_capacity = es_resampler_output_bound(p->resampler, c->max_input_frames);
    p->resampled = malloc(p->resampled_capacity * sizeof *p->resampled);
    if (!p->resampled)
        return es_error_set(err, ES_PIPELINE_ERR_NOMEM, "resampler buffer: out of memory");
    return ES_PIPELINE_OK;
}

static int create_ring(es_pipeline *p, es_error *err) {
    if (p->config.mode != ES_PIPELINE_LIVE) return ES_PIPELINE_OK;
    int rc = es_ring_create(p->config.ring_capacity_frames, &p->ring);
    if (rc != ES_DSP_OK)
        return es_error_set(err, ES_PIPELINE_ERR_DSP, "frame ring: %s", es_dsp_strerror(rc));
    /* One arrival time per ring slot: a slot is reused only once its frame
     * left the ring, so the time read for a popped frame is its own. */
    size_t slots = es_ring_capacity(p->ring);
    p->fed_at_mask = slots - 1;
    p->fed_at_ns = calloc(slots, sizeof *p->fed_at_ns);
    if (!p->fed_at_ns) return es_error_set(err, ES_PIPELINE_ERR_NOMEM, "frame ring: out of memory");
    return ES_PIPELINE_OK;
}

static int create_vad(es_pipeline *p, es_error *err) {
    const es_pipeline_config *c = &p->config;
    int rc = check_model(c->vad_model, &c->frontend, "vad model", err);
    if (rc != ES_PIPELINE_OK) return rc;
    p->vad_speech_output = find_speech_output(c->vad_model);
    if (p->vad_speech_output < 0)
        return es_error_set(err, ES_PIPELINE_ERR_MODEL,
                            "vad model: %d outputs and none is labelled \"speech\"",
                            es_model_output_size(c->vad_model));
    p->block_features = malloc(MODEL_BLOCK_FRAMES * (size_t)c->frontend.mel_bands * sizeof(float));
    p->vad_outputs =
        malloc(MODEL_BLOCK_FRAMES * (size_t)es_model_output_size(c->vad_model) * sizeof(float));
    if (!p->block_features || !p->vad_outputs ||
        es_state_create(c->vad_model, &p->vad_state) != ES_RNN_OK)
        return es_error_set(err, ES_PIPELINE_ERR_NOMEM, "vad model state: out of memory");
    if (es_vad_detector_create(&c->vad, c->frontend.sample_rate_hz, c->frontend.hop_samples,
                               &p->vad) != 0)
        return es_error_set(err, ES_PIPELINE_ERR_CONFIG, "vad detector: cannot be created");
    return ES_PIPELINE_OK;
}

/* A model's calibrated thresholds and smoothing (rnn.h) become per-keyword
 * settings. A threshold the config already gives that keyword wins (flags and
 * config files); the smoothing it was calibrated with still applies. */
_Static_assert(ES_MODEL_MAX_SMOOTH_MS <= ES_KWS_MAX_SMOOTH_MS,
               "a smoothing a model file may carry must be one the detector takes");
static void add_model_settings(const es_model *m, es_kws_config *kws) {
    const float *thresholds = es_model_thresholds(m);
    const int *smoothing = es_model_smoothing(m);
    for (int i = 0; i < es_model_output_size(m); i++) {
        const float threshold = thresholds ? thresholds[i] : 0.0f;
        const int smooth_ms = smoothing ? smoothing[i] : 0;
        const char *label = es_model_label(m, i);
        if ((threshold <= 0.0f && smooth_ms <= 0) ||
            strlen(label) >= sizeof kws->thresholds[0].keyword)
            continue;
        int j = 0;
        while (j < kws->threshold_count && strcmp(kws->thresholds[j].keyword, label) != 0)
            j++;
        if (j < kws->threshold_count) {
            if (kws->thresholds[j].smooth_ms == 0) kws->thresholds[j].smooth_ms = smooth_ms;
            continue;
        }
        if (kws->threshold_count >= ES_KWS_MAX_KEYWORDS) continue;
        snprintf(kws->thresholds[j].keyword, sizeof kws->thresholds[0].keyword, "%s", label);
        kws->thresholds[j].threshold = threshold;
        kws->thresholds[j].smooth_ms = smooth_ms;
        kws->threshold_count++;
    }
}

static int create_kws(es_pipeline *p, es_error *err) {
    const es_pipeline_config *c = &p->config;
    int columns = 0;
    for (int k = 0; k < c->kws_model_count; k++) {
        const es_model *m = c->kws_models[k];
        char what[32];
        snprintf(what, sizeof what, "keyword model %d", k + 1);
        if (!m) return es_error_set(err, ES_PIPELINE_ERR_CONFIG, "%s is missing", what);
        int rc = check_model(m, &c->frontend, what, err);
        if (rc == ES_PIPELINE_OK) rc = es_pipeline_check_keyword_model(m, what, err);
        if (rc != ES_PIPELINE_OK) return rc;
        columns += es_model_output_size(m);
    }
    p->keyword_model = calloc((size_t)columns + 1, sizeof *p->keyword_model);
    p->keyword_output = calloc((size_t)columns + 1, sizeof *p->keyword_output);
    p->keyword_posteriors = calloc((size_t)columns + 1, sizeof *p->keyword_posteriors);
    if (!p->keyword_model || !p->keyword_output || !p->keyword_posteriors)
        return es_error_set(err, ES_PIPELINE_ERR_NOMEM, "keyword columns: out of memory");

    for (int k = 0; k < c->kws_model_count; k++) {
        const es_model *m = c->kws_models[k];
        int outputs = es_model_output_size(m);
        const char *labels[ES_MAX_OUTPUTS];
        for (int i = 0; i < outputs; i++) {
            labels[i] = es_model_label(m, i);
            if (!es_kws_label_is_keyword(labels[i])) continue;
            p->keyword_model[p->keyword_count] = k;
            p->keyword_output[p->keyword_count] = i;
            p->keyword_count++;
        }
        p->kws_outputs[k] = malloc(MODEL_BLOCK_FRAMES * (size_t)outputs * sizeof(float));
        if (!p->kws_outputs[k] || es_state_create(m, &p->kws_states[k]) != ES_RNN_OK) {
            free(p->kws_outputs[k]);
            p->kws_outputs[k] = NULL;
            return es_error_set(err, ES_PIPELINE_ERR_NOMEM, "keyword model state: out of memory");
        }
        es_kws_config kws = c->kws;
        add_model_settings(m, &kws);
        if (es_kws_detector_create(&kws, outputs, labels, c->frontend.sample_rate_hz,
                                   c->frontend.hop_samples, &p->kws_detectors[k]) != 0)
            return es_error_set(err, ES_PIPELINE_ERR_CONFIG,
                                "keyword detector for model %d: cannot be created", k + 1);
        p->kws_model_count = k + 1;
    }
    return ES_PIPELINE_OK;
}

int es_pipeline_create(const es_pipeline_config *config, es_pipeline **out, es_error *err) {
    *out = NULL;
    if (err) {
        err->code = ES_PIPELINE_OK;
        err->why[0] = '\0';
    }
    int rc = check_config(config, err);
    if (rc != ES_PIPELINE_OK) return rc;
    es_pipeline *p = calloc(1, sizeof *p);
    if (!p) return es_error_set(err, ES_PIPELINE_ERR_NOMEM, "pipeline: out of memory");
    p->config = *config;
    const char *source = config->source ? config->source : "";
    size_t source_len = strlen(source);
    p->source = malloc(source_len + 1);
    if (!p->source) {
        free(p);
        return es_error_set(err, ES_PIPELINE_ERR_NOMEM, "pipeline: out of memory");
    }
    memcpy(p->source, source, source_len + 1);
    p->config.source = p->source;
    atomic_init(&p->input_closed, 0);

    rc = create_input_stages(p, err);
    if (rc == ES_PIPELINE_OK) rc = create_ring(p, err);
    if (rc == ES_PIPELINE_OK) rc = create_vad(p, err);
    if (rc == ES_PIPELINE_OK) rc = create_kws(p, err);
    if (rc != ES_PIPELINE_OK) {
        es_pipeline_destroy(p);
        return rc;
    }
    *out = p;
    return ES_PIPELINE_OK;
}

void es_pipeline_destroy(es_pipeline *p) {
    if (!p) return;
    for (int k = 0; k < p->kws_model_count; k++) {
        es_kws_detector_destroy(p->kws_detectors[k]);
        es_state_destroy(p->kws_states[k]);
        free(p->kws_outputs[k]);
    }
    free(p->block_features);
    free(p->vad_outputs);
    free(p->keyword_model);
    free(p->keyword_output);
    free(p->keyword_posteriors);
    if (p->vad) es_vad_detector_destroy(p->vad);
    if (p->vad_state) es_state_destroy(p->vad_state);
    if (p->ring) es_ring_destroy(p->ring);
    free((void *)p->fed_at_ns);
    if (p->resampler) es_resampler_destroy(p->resampler);
    free(p->cleaned);
    free(p->resampled);
    if (p->frontend) es_frontend_destroy(p->frontend);
    free(p->source);
    free(p);
}

int es_pipeline_keyword_count(const es_pipeline *p) {
    return p->keyword_count;
}

const char *es_pipeline_keyword_label(const es_pipeline *p, int index) {
    if (index < 0 || index >= p->keyword_count) return NULL;
    return es_model_label(p->config.kws_models[p->keyword_model[index]], p->keyword_output[index]);
}

/* ---- engine and detectors (offline thread / live consumer) ------------------- */

static void record_latency(es_pipeline *p) {
    int64_t hop = p->config.frontend.hop_samples;
    size_t slot = (size_t)(p->current_frame_time / hop) & p->fed_at_mask;
    int64_t fed_at = atomic_load_explicit(&p->fed_at_ns[slot], memory_order_relaxed);
    int64_t latency = es_monotonic_ns() - fed_at;
    if (fed_at <= 0 || latency < 0) return;
    atomic_fetch_add_explicit(&p->latency_count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->latency_sum_ns, (uint64_t)latency, memory_order_relaxed);
    if ((uint64_t)latency > atomic_load_explicit(&p->latency_max_ns, memory_order_relaxed))
        atomic_store_explicit(&p->latency_max_ns, (uint64_t)latency, memory_order_relaxed);
}

static void emit_event(const es_event *event, void *user) {
    es_pipeline *p = user;
    es_event stamped = *event;
    stamped.source = p->source;
    if (p->config.wallclock) stamped.wallclock_s = unix_time_s();
    if (p->ring) record_latency(p);
    atomic_fetch_add_explicit(&p->events, 1, memory_order_relaxed);
    if (p->config.on_event) p->config.on_event(&stamped, p->config.event_user);
}

/* The detectors on frame t of the block the models just stepped. */
static void detect_frame(es_pipeline *p, const es_frame *frame, int t) {
    p->current_frame_time = frame->time_samples;
    int vad_outputs = es_model_output_size(p->config.vad_model);
    float speech = p->vad_outputs[(size_t)t * (size_t)vad_outputs + (size_t)p->vad_speech_output];
    es_vad_detector_step(p->vad, frame->time_samples, speech, emit_event, p);
    int in_speech = es_vad_detector_in_speech(p->vad);

    int column = 0;
    for (int k = 0; k < p->kws_model_count; k++) {
        size_t outputs = (size_t)es_model_output_size(p->config.kws_models[k]);
        const float *posteriors = p->kws_outputs[k] + (size_t)t * outputs;
        es_kws_detector_step(p->kws_detectors[k], frame->time_samples, posteriors, in_speech,
                             emit_event, p);
        while (column < p->keyword_count && p->keyword_model[column] == k) {
            p->keyword_posteriors[column] = posteriors[p->keyword_output[column]];
            column++;
        }
    }

    if (p->config.on_frame) {
        es_frame_posteriors row = {
            .time_samples = frame->time_samples,
            .time_s = (double)frame->time_samples / p->config.frontend.sample_rate_hz,
            .speech = speech,
            .keyword_count = p->keyword_count,
            .keywords = p->keyword_posteriors,
        };
        p->config.on_frame(&row, p->config.frame_user);
    }
    atomic_fetch_add_explicit(&p->frames_processed, 1, memory_order_relaxed);
}

static void gather_features(es_pipeline *p) {
    size_t bands = (size_t)p->config.frontend.mel_bands;
    for (int t = 0; t < p->block_count; t++)
        memcpy(p->block_features + (size_t)t * bands, p->block[t].features, bands * sizeof(float));
}

void es_pipeline_detect_taken(es_pipeline *p) {
    for (int t = 0; t < p->block_count; t++)
        detect_frame(p, &p->block[t], t);
    p->block_count = 0;
}

/* The waiting block through every model, then each frame through the
 * detectors, in order. */
static void run_models(es_pipeline *p) {
    int count = p->block_count;
    if (count == 0) return;
    gather_features(p);
    es_state_step_frames(p->vad_state, p->block_features, count, p->vad_outputs);
    for (int k = 0; k < p->kws_model_count; k++)
        es_state_step_frames(p->kws_states[k], p->block_features, count, p->kws_outputs[k]);
    es_pipeline_detect_taken(p);
}

/* Keywords still waiting for their end are sent too: at the end of a file
 * the word cannot get any longer. */
static void flush_detectors(es_pipeline *p) {
    es_vad_detector_flush(p->vad, emit_event, p);
    for (int k = 0; k < p->kws_model_count; k++)
        es_kws_detector_flush(p->kws_detectors[k], emit_event, p);
}

/* ---- producer stages --------------------------------------------------------- */

/* Any source can deliver anything (a float file, a FIFO): one NaN or
 * infinity would poison every later frame through the resampler, the front
 * end's running normalisation and the networks' recurrent state, so it
 * becomes silence. Magnitudes are clamped to full scale: audio never goes
 * beyond it, and one absurd sample (3e38, or even 1000) would otherwise
 * dominate the running normalisation and leave the detectors deaf for
 * seconds (2.7 s for one sample of 3e38 when the clamp was at 1000). */
#define MAX_SAMPLE_MAGNITUDE 1.0f

static const float *clean_input(es_pipeline *p, const float *interleaved, size_t count) {
    /* Branch-free, so that GCC vectorises it (with isfinite and an if it
     * stayed a scalar loop: 3 % of `earshot file`'s time). NaN fails both
     * comparisons of |s|, infinity the second. */
    for (size_t i = 0; i < count; i++) {
        float s = interleaved[i], magnitude = fabsf(s);
        float clamped = s > 0.0f ? MAX_SAMPLE_MAGNITUDE : -MAX_SAMPLE_MAGNITUDE;
        p->cleaned[i] = magnitude <= MAX_SAMPLE_MAGNITUDE ? s
                        : magnitude <= FLT_MAX            ? clamped
                                                          : 0.0f;
    }
    return p->cleaned;
}

/* Resamples (when needed) and makes features from at most max_input_frames
 * frames, handing each finished feature frame to `sink`. */
static void make_features(es_pipeline *p, const float *interleaved, size_t frames,
                          es_frame_sink sink) {
    const float *input = clean_input(p, interleaved, frames * (size_t)p->config.input_channels);
    if (!p->resampler) {
        es_frontend_process(p->frontend, input, frames, sink, p);
        return;
    }
    long produced =
        es_resampler_process(p->resampler, input, frames, p->resampled, p->resampled_capacity);
    if (produced > 0) es_frontend_process(p->frontend, p->resampled, (size_t)produced, sink, p);
}

static void drain_resampler(es_pipeline *p, es_frame_sink sink) {
    if (!p->resampler) return;
    for (int i = 0; i < MAX_DRAIN_CALLS; i++) {
        long produced = es_resampler_drain(p->resampler, p->resampled, p->resampled_capacity);
        if (produced <= 0) break;
        es_frontend_process(p->frontend, p->resampled, (size_t)produced, sink, p);
    }
}

static void for_each_chunk(es_pipeline *p, const float *interleaved, size_t frames,
                           es_frame_sink sink) {
    size_t channels = (size_t)p->config.input_channels;
    while (frames > 0) {
        size_t n = frames < p->config.max_input_frames ? frames : p->config.max_input_frames;
        make_features(p, interleaved, n, sink);
        interleaved += n * channels;
        frames -= n;
    }
}

/* ---- offline ------------------------------------------------------------------- */

static void offline_frame(const es_frame *frame, void *user) {
    es_pipeline *p = user;
    p->block[p->block_count++] = *frame;
    if (p->block_count == MODEL_BLOCK_FRAMES) run_models(p);
}

/* Every frame a push made has its events out when the push returns. */
int es_pipeline_push(es_pipeline *p, const float *interleaved, size_t frames) {
    if (p->config.mode != ES_PIPELINE_OFFLINE || p->finished) return ES_PIPELINE_ERR_STATE;
    for_each_chunk(p, interleaved, frames, offline_frame);
    run_models(p);
    return ES_PIPELINE_OK;
}

int es_pipeline_finish(es_pipeline *p) {
    if (p->config.mode != ES_PIPELINE_OFFLINE || p->finished) return ES_PIPELINE_ERR_STATE;
    drain_resampler(p, offline_frame);
    run_models(p);
    flush_detectors(p);
    p->finished = 1;
    return ES_PIPELINE_OK;
}

/* ---- live: producer half ----------------------------------------------------- */

static void live_frame(const es_frame *frame, void *user) {
    es_pipeline *p = user;
    size_t slot = (size_t)(frame->time_samples / p->config.frontend.hop_samples) & p->fed_at_mask;
    atomic_store_explicit(&p->fed_at_ns[slot], p->feed_started_ns, memory_order_relaxed);
    if (p->config.ring_policy == ES_RING_WAIT)
        es_ring_push_wait(p->ring, frame);
    else
        es_ring_push_overwrite(p->ring, frame);
}

void es_pipeline_feed(es_pipeline *p, const float *interleaved, size_t frames) {
    if (p->config.mode != ES_PIPELINE_LIVE || p->finished) return;
    p->feed_started_ns = es_monotonic_ns();
    for_each_chunk(p, interleaved, frames, live_frame);
}

void es_pipeline_note_input_overflow(es_pipeline *p) {
    atomic_fetch_add_explicit(&p->input_overflows, 1, memory_order_relaxed);
}

void es_pipeline_close_input(es_pipeline *p) {
    if (p->config.mode != ES_PIPELINE_LIVE || p->finished) return;
    p->feed_started_ns = es_monotonic_ns();
    drain_resampler(p, live_frame);
    p->finished = 1;
    es_ring_close(p->ring);
    atomic_store_explicit(&p->input_closed, 1, memory_order_release);
}

/* ---- live: consumer half ----------------------------------------------------- */

static int consume_waiting(es_pipeline *p) {
    /* Bounded so that a producer faster than the models cannot keep one call
     * from returning. */
    size_t limit = es_ring_capacity(p->ring);
    int processed = 0;
    while ((size_t)processed < limit) {
        while (p->block_count < MODEL_BLOCK_FRAMES &&
               es_ring_pop(p->ring, &p->block[p->block_count]) == ES_DSP_OK)
            p->block_count++;
        if (p->block_count == 0) break;
        processed += p->block_count;
        run_models(p);
    }
    return processed;
}

int es_pipeline_consume(es_pipeline *p, int timeout_ms) {
    if (p->config.mode != ES_PIPELINE_LIVE) return ES_PIPELINE_ERR_STATE;
    if (p->consumer_done) return ES_PIPELINE_CLOSED;
    int64_t deadline_ns = es_monotonic_ns() + (int64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000;
    for (;;) {
        /* Read the flag before popping: if it was set, every frame was already
         * in the ring, so an empty pop afterwards means the end. */
        int closed = atomic_load_explicit(&p->input_closed, memory_order_acquire);
        int processed = consume_waiting(p);
        if (processed > 0) return processed;
        if (closed) {
            flush_detectors(p);
            p->consumer_done = 1;
            return ES_PIPELINE_CLOSED;
        }
        int64_t left_ns = deadline_ns - es_monotonic_ns();
        if (left_ns <= 0) return 0;
        struct timespec nap = {0, left_ns < CONSUME_POLL_NS ? (long)left_ns : CONSUME_POLL_NS};
        nanosleep(&nap, NULL);
    }
}

/* ---- live: consumer half, for an engine of many pipelines ----------------------- */

int es_pipeline_max_take(const es_pipeline *p) {
    (void)p;
    return MODEL_BLOCK_FRAMES;
}

int es_pipeline_models_of(es_pipeline *p, es_pipeline_models *models) {
    if (p->config.mode != ES_PIPELINE_LIVE) return ES_PIPELINE_ERR_STATE;
    *models = (es_pipeline_models){
        .features = p->block_features,
        .vad_model = p->config.vad_model,
        .vad_state = p->vad_state,
        .vad_outputs = p->vad_outputs,
        .kws_count = p->kws_model_count,
        .kws_models = p->config.kws_models,
        .kws_states = p->kws_states,
        .kws_outputs = p->kws_outputs,
    };
    return ES_PIPELINE_OK;
}

int es_pipeline_take_frames(es_pipeline *p, int max) {
    if (p->config.mode != ES_PIPELINE_LIVE) return ES_PIPELINE_ERR_STATE;
    if (p->consumer_done) return ES_PIPELINE_CLOSED;
    if (max > MODEL_BLOCK_FRAMES) max = MODEL_BLOCK_FRAMES;
    /* As in es_pipeline_consume: the flag first, then the ring. */
    int closed = atomic_load_explicit(&p->input_closed, memory_order_acquire);
    while (p->block_count < max && es_ring_pop(p->ring, &p->block[p->block_count]) == ES_DSP_OK)
        p->block_count++;
    if (p->block_count == 0 && closed) {
        flush_detectors(p);
        p->consumer_done = 1;
        return ES_PIPELINE_CLOSED;
    }
    gather_features(p);
    return p->block_count;
}

/* ---- counters ------------------------------------------------------------------- */

void es_pipeline_get_stats(const es_pipeline *p, es_pipeline_stats *stats) {
    es_pipeline *mp = (es_pipeline *)p; /* atomics are read only */
    memset(stats, 0, sizeof *stats);
    stats->frames_processed = atomic_load(&mp->frames_processed);
    stats->ring_drops = p->ring ? es_ring_dropped(p->ring) : 0;
    stats->input_overflows = atomic_load(&mp->input_overflows);
    stats->events = atomic_load(&mp->events);
    stats->latency_count = atomic_load(&mp->latency_count);
    if (stats->latency_count > 0)
        stats->latency_mean_ms =
            (double)atomic_load(&mp->latency_sum_ns) / (double)stats->latency_count / 1e6;
    stats->latency_max_ms = (double)atomic_load(&mp->latency_max_ns) / 1e6;
}
