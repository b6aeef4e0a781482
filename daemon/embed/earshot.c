/*
 * libearshot: the public API (earshot.h) over daemon/stream's offline
 * pipeline — the same pipeline `earshot file` drives, so a detector fed the
 * same samples sends the same events, whatever the chunking.
 *
 * A detector holds a reference to its models (an earshot_models, loaded by
 * earshot_create or shared through earshot_create_with_models), its input
 * format once known, and one es_pipeline per stream (made at create when
 * params give the format, else at the first feed; remade by earshot_reset).
 * Events and frames go to the caller's callbacks and into fixed-size queues
 * made at create, so feeding never allocates once the pipeline exists.
 */
#include "earshot.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"
#include "dsp.h"
#include "error.h"
#include "stream.h"
#include "rnn.h"

_Static_assert(EARSHOT_MAX_KWS_MODELS == ES_PIPELINE_MAX_KWS_MODELS,
               "the public model count mirrors the pipeline's");
_Static_assert(EARSHOT_MAX_KEYWORD_SETTINGS == ES_KWS_MAX_KEYWORDS,
               "the public keyword settings mirror es_kws_config's");
_Static_assert((int)EARSHOT_EVENT_SPEECH == (int)ES_EVENT_SPEECH &&
                   (int)EARSHOT_EVENT_KEYWORD == (int)ES_EVENT_KEYWORD &&
                   (int)EARSHOT_EVENT_SPEECH_START == (int)ES_EVENT_SPEECH_START,
               "public event types are the detector's");

#define STR2(x) #x
#define STR(x) STR2(x)
#define VERSION_STRING                                                                             \
    STR(EARSHOT_VERSION_MAJOR) "." STR(EARSHOT_VERSION_MINOR) "." STR(EARSHOT_VERSION_PATCH)

/* The pipeline's own split size (what `earshot file` reads at a time), and
 * how many 16-bit frames are converted to float at once. */
#define MAX_INPUT_FRAMES 4096
#define S16_CHUNK_FRAMES 1024
#define DEFAULT_EVENT_QUEUE 256

/* Read-only once loaded (es_model inference only reads the weights), so
 * shared by detectors on any threads; `references` counts the caller's and
 * each detector's. */
struct earshot_models {
    atomic_int references;
    es_model *vad_model;
    es_model *kws_models[ES_PIPELINE_MAX_KWS_MODELS];
    int kws_model_count;
    const char **keywords; /* keyword columns: labels owned by kws_models */
    int keyword_count;
};

struct earshot_detector {
    /* What create was given, strings copied (they outlive the caller's). */
    es_vad_config vad;
    es_kws_config kws;
    char *source;
    int wallclock;
    earshot_event_fn on_event;
    void *event_user;
    earshot_frame_fn on_frame;
    void *frame_user;
    int params_rate, params_channels; /* 0, 0: the first feed decides */

    earshot_models *models; /* one reference, ours */

    /* The current stream. */
    es_pipeline *pipeline;
    int rate, channels; /* of `pipeline`; 0 before it exists */
    int finished;
    uint64_t frames_fed;
    float *s16_buffer; /* S16_CHUNK_FRAMES x channels, made with the pipeline */

    /* Event queue: a ring of `event_capacity` slots; `polled` is the copy
     * earshot_poll_event last handed out. */
    earshot_event *events;
    int event_capacity, event_head, event_count;
    earshot_event polled;
    uint64_t dropped_events;

    /* Frame queue: times and rows of (1 + keyword_count) posteriors. */
    double *frame_times;
    float *frame_rows;
    int frame_capacity, frame_head, frame_count;
    uint64_t dropped_frames;

    char last_error[256];
};

/* ---- errors and version ------------------------------------------------------------ */

const char *earshot_strerror(int code) {
    switch (code) {
    case EARSHOT_OK:
        return "success";
    case EARSHOT_ERR_NOMEM:
        return "out of memory";
    case EARSHOT_ERR_ARG:
        return "invalid argument";
    case EARSHOT_ERR_MODEL:
        return "model cannot be used";
    case EARSHOT_ERR_FORMAT:
        return "unsupported or changed input format";
    case EARSHOT_ERR_STATE:
        return "input already finished";
    default:
        return "unknown error";
    }
}

/* Records the reason in the detector (when there is one) and returns `code`. */
static int fail(earshot_detector *det, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(earshot_detector *det, int code, const char *fmt, ...) {
    if (det) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(det->last_error, sizeof det->last_error, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *earshot_last_error(const earshot_detector *det) {
    return det ? det->last_error : "no detector";
}

const char *earshot_version_string(void) {
    return VERSION_STRING;
}

int earshot_version_number(void) {
    return EARSHOT_VERSION_MAJOR * 10000 + EARSHOT_VERSION_MINOR * 100 + EARSHOT_VERSION_PATCH;
}

const char *earshot_event_type_name(earshot_event_type type) {
    switch (type) {
    case EARSHOT_EVENT_SPEECH:
    case EARSHOT_EVENT_KEYWORD:
    case EARSHOT_EVENT_SPEECH_START:
        return es_event_type_name((es_event_type)type);
    default:
        return "unknown";
    }
}

int earshot_event_to_json(const earshot_event *event, char *buf, size_t size) {
    if (!event || (!buf && size > 0)) return EARSHOT_ERR_ARG;
    es_event e = {
        .type = (es_event_type)event->type,
        .source = event->source ? event->source : "",
        .keyword = event->keyword,
        .time_s = event->time,
        .start_s = event->start,
        .end_s = event->end,
        .score = event->score,
        .wallclock_s = event->wallclock,
    };
    return es_event_to_json(&e, buf, size);
}

/* ---- params ------------------------------------------------------------------------- */

earshot_params earshot_params_default(void) {
    earshot_params p;
    memset(&p, 0, sizeof p);
    es_vad_config vad;
    es_vad_config_default(&vad);
    es_kws_config kws;
    es_kws_config_default(&kws);
    p.vad_model = NULL;
    p.kws_model_count = 1; /* kws_models[0] NULL: the built-in one, as `earshot file` */
    p.vad_threshold = vad.onset_threshold;
    p.vad_offset_threshold = vad.offset_threshold;
    p.min_speech_ms = vad.min_speech_ms;
    p.min_silence_ms = vad.min_silence_ms;
    p.max_speech_ms = vad.max_speech_ms;
    p.speech_pad_ms = vad.pad_ms;
    p.speech_start_events = vad.speech_start_events;
    p.kw_threshold = kws.default_threshold;
    p.kw_smooth_ms = kws.smooth_ms;
    p.refractory_ms = kws.refractory_ms;
    p.vad_gate = kws.vad_gate;
    p.peak_wait_ms = kws.peak_wait_ms;
    p.event_queue_capacity = DEFAULT_EVENT_QUEUE;
    return p;
}

size_t earshot_params_size(void) {
    return sizeof(earshot_params);
}

/* The params' knobs as the detectors' configs, checked by their own rules. */
static int set_detector_configs(earshot_detector *det, const earshot_params *p) {
    es_vad_config_default(&det->vad);
    det->vad.onset_threshold = p->vad_threshold;
    det->vad.offset_threshold = p->vad_offset_threshold;
    det->vad.min_speech_ms = p->min_speech_ms;
    det->vad.min_silence_ms = p->min_silence_ms;
    det->vad.max_speech_ms = p->max_speech_ms;
    det->vad.pad_ms = p->speech_pad_ms;
    det->vad.speech_start_events = p->speech_start_events != 0;
    es_error err;
    if (es_vad_config_check(&det->vad, &err) != 0) return fail(det, EARSHOT_ERR_ARG, "%s", err.why);

    es_kws_config_default(&det->kws);
    det->kws.default_threshold = p->kw_threshold;
    det->kws.smooth_ms = p->kw_smooth_ms;
    det->kws.refractory_ms = p->refractory_ms;
    det->kws.vad_gate = p->vad_gate != 0;
    det->kws.peak_wait_ms = p->peak_wait_ms;
    if (p->keyword_setting_count < 0 || p->keyword_setting_count > EARSHOT_MAX_KEYWORD_SETTINGS)
        return fail(det, EARSHOT_ERR_ARG, "keyword_setting_count must be 0..%d",
                    EARSHOT_MAX_KEYWORD_SETTINGS);
    for (int i = 0; i < p->keyword_setting_count; i++) {
        const char *word = p->keyword_settings[i].keyword;
        if (!word || !word[0] || strlen(word) >= sizeof det->kws.thresholds[i].keyword)
            return fail(det, EARSHOT_ERR_ARG, "keyword setting %d: keyword must be 1..%zu bytes",
                        i + 1, sizeof det->kws.thresholds[i].keyword - 1);
        snprintf(det->kws.thresholds[i].keyword, sizeof det->kws.thresholds[i].keyword, "%s", word);
        det->kws.thresholds[i].threshold = p->keyword_settings[i].threshold;
        det->kws.thresholds[i].smooth_ms = p->keyword_settings[i].smooth_ms;
    }
    det->kws.threshold_count = p->keyword_setting_count;
    if (es_kws_config_check(&det->kws, &err) != 0) return fail(det, EARSHOT_ERR_ARG, "%s", err.why);
    return EARSHOT_OK;
}

/* ---- models ------------------------------------------------------------------------- */

/* Writes a reason into a caller's buffer, which may be NULL or empty. */
static void say(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *buf, size_t size, const char *fmt, ...) {
    if (!buf || size == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

/* The start of every call that makes something: the error text cleared and
 * the arguments it needs there (`what` names them for the message). */
static int check_arguments(int present, const char *what, char *error, size_t error_size) {
    if (error && error_size > 0) error[0] = '\0';
    if (present) return EARSHOT_OK;
    say(error, error_size, "%s required", what);
    return EARSHOT_ERR_ARG;
}

static void models_free(earshot_models *m) {
    if (m->vad_model) es_model_destroy(m->vad_model);
    for (int k = 0; k < m->kws_model_count; k++)
        es_model_destroy(m->kws_models[k]);
    free(m->keywords);
    free(m);
}

/* The keyword columns in the pipeline's order (es_pipeline_keyword_label):
 * models in order, each model's keyword outputs in order. */
static int list_keywords(earshot_models *m) {
    int total = 0;
    for (int k = 0; k < m->kws_model_count; k++)
        total += es_model_output_size(m->kws_models[k]);
    m->keywords = calloc((size_t)total + 1, sizeof *m->keywords);
    if (!m->keywords) return EARSHOT_ERR_NOMEM;
    for (int k = 0; k < m->kws_model_count; k++)
        for (int i = 0; i < es_model_output_size(m->kws_models[k]); i++) {
            const char *label = es_model_label(m->kws_models[k], i);
            if (es_kws_label_is_keyword(label)) m->keywords[m->keyword_count++] = label;
        }
    return EARSHOT_OK;
}

/* The models params names, in a new handle holding one reference; a
 * failure's reason goes to why[0..why_size) in the pipeline's words. */
static int load_models(const earshot_params *p, earshot_models **out, char *why, size_t why_size) {
    *out = NULL;
    earshot_models *m = calloc(1, sizeof *m);
    if (!m) {
        say(why, why_size, "out of memory");
        return EARSHOT_ERR_NOMEM;
    }
    atomic_init(&m->references, 1);
    es_frontend_config frontend;
    es_frontend_config_default(&frontend);
    es_error err = {0};
    int rc = EARSHOT_OK;
    if (es_pipeline_load_model(p->vad_model, "vad", &frontend, &m->vad_model, &err) != 0)
        rc = EARSHOT_ERR_MODEL;
    else if (p->kws_model_count < 0 || p->kws_model_count > EARSHOT_MAX_KWS_MODELS)
        rc = es_error_set(&err, EARSHOT_ERR_ARG, "kws_model_count must be 0..%d",
                          EARSHOT_MAX_KWS_MODELS);
    for (int k = 0; rc == EARSHOT_OK && k < p->kws_model_count; k++) {
        const char *path = p->kws_models[k];
        int loaded = es_pipeline_load_model(path, "kws", &frontend, &m->kws_models[k], &err);
        if (loaded == 0) {
            m->kws_model_count = k + 1;
            loaded = es_pipeline_check_keyword_model(
                m->kws_models[k],
                path && strcmp(path, "builtin") != 0 ? path : "built-in kws model", &err);
        }
        if (loaded != 0) rc = EARSHOT_ERR_MODEL;
    }
    if (rc == EARSHOT_OK && list_keywords(m) != EARSHOT_OK)
        rc = es_error_set(&err, EARSHOT_ERR_NOMEM, "keyword list: out of memory");
    if (rc != EARSHOT_OK) {
        say(why, why_size, "%s", err.why);
        models_free(m);
        return rc;
    }
    *out = m;
    return EARSHOT_OK;
}

int earshot_models_load(const earshot_params *params, earshot_models **out, char *error,
                        size_t error_size) {
    if (out) *out = NULL;
    int rc = check_arguments(params && out, "params and out are", error, error_size);
    return rc != EARSHOT_OK ? rc : load_models(params, out, error, error_size);
}

static void models_retain(earshot_models *m) {
    atomic_fetch_add_explicit(&m->references, 1, memory_order_relaxed);
}

void earshot_models_release(earshot_models *models) {
    if (!models) return;
    /* acq_rel: whichever thread frees sees every other holder's last use. */
    if (atomic_fetch_sub_explicit(&models->references, 1, memory_order_acq_rel) == 1)
        models_free(models);
}

int earshot_models_has_label(const earshot_models *models, const char *label) {
    if (!models || !label) return 0;
    for (int k = 0; k < models->kws_model_count; k++)
        for (int i = 0; i < es_model_output_size(models->kws_models[k]); i++)
            if (strcmp(es_model_label(models->kws_models[k], i), label) == 0) return 1;
    return 0;
}

/* As `earshot file --kw-threshold-for`: a setting for a label no model has
 * is a mistake (a typo would silently change nothing). */
static int check_keyword_settings(earshot_detector *det) {
    for (int i = 0; i < det->kws.threshold_count; i++)
        if (!earshot_models_has_label(det->models, det->kws.thresholds[i].keyword))
            return fail(det, EARSHOT_ERR_ARG,
                        "keyword setting: '%s' is not a keyword of the models",
                        det->kws.thresholds[i].keyword);
    return EARSHOT_OK;
}

/* ---- queues and the pipeline's sinks ----------------------------------------------- */

/* The label the detector's models own for a keyword the pipeline names (its
 * strings die with the pipeline; the models' live until destroy). */
static const char *own_keyword(const earshot_detector *det, const char *keyword) {
    if (!keyword) return NULL;
    for (int c = 0; c < det->models->keyword_count; c++)
        if (strcmp(det->models->keywords[c], keyword) == 0) return det->models->keywords[c];
    return NULL;
}

static void on_pipeline_event(const es_event *e, void *user) {
    earshot_detector *det = user;
    earshot_event event = {
        .type = (earshot_event_type)e->type,
        .source = det->source,
        .keyword = e->type == ES_EVENT_KEYWORD ? own_keyword(det, e->keyword) : NULL,
        .time = e->type == ES_EVENT_SPEECH ? e->end_s : e->time_s,
        .start = e->start_s,
        .end = e->end_s,
        .score = e->score,
        .wallclock = e->wallclock_s,
    };
    if (det->on_event) det->on_event(&event, det->event_user);
    if (det->event_capacity == 0) return;
    if (det->event_count == det->event_capacity) { /* full: the oldest goes */
        det->event_head = (det->event_head + 1) % det->event_capacity;
        det->event_count--;
        det->dropped_events++;
    }
    det->events[(det->event_head + det->event_count) % det->event_capacity] = event;
    det->event_count++;
}

static void on_pipeline_frame(const es_frame_posteriors *f, void *user) {
    earshot_detector *det = user;
    if (det->on_frame) {
        earshot_frame frame = {
            .time = f->time_s,
            .speech = f->speech,
            .keyword_count = f->keyword_count,
            .keywords = f->keywords,
        };
        det->on_frame(&frame, det->frame_user);
    }
    if (det->frame_capacity == 0) return;
    if (det->frame_count == det->frame_capacity) {
        det->frame_head = (det->frame_head + 1) % det->frame_capacity;
        det->frame_count--;
        det->dropped_frames++;
    }
    const int keyword_count = det->models->keyword_count;
    const size_t columns = (size_t)keyword_count + 1;
    const int slot = (det->frame_head + det->frame_count) % det->frame_capacity;
    det->frame_times[slot] = f->time_s;
    float *row = det->frame_rows + (size_t)slot * columns;
    row[0] = f->speech;
    memcpy(row + 1, f->keywords, (size_t)keyword_count * sizeof *row);
    det->frame_count++;
}

static int make_queues(earshot_detector *det, const earshot_params *p) {
    if (p->event_queue_capacity < 0 || p->frame_queue_capacity < 0)
        return fail(det, EARSHOT_ERR_ARG, "queue capacities must be 0 or more");
    det->event_capacity = p->event_queue_capacity;
    det->frame_capacity = p->frame_queue_capacity;
    const size_t columns = (size_t)det->models->keyword_count + 1;
    if (det->event_capacity > 0)
        det->events = calloc((size_t)det->event_capacity, sizeof *det->events);
    if (det->frame_capacity > 0) {
        det->frame_times = calloc((size_t)det->frame_capacity, sizeof *det->frame_times);
        det->frame_rows = calloc((size_t)det->frame_capacity * columns, sizeof *det->frame_rows);
    }
    if ((det->event_capacity > 0 && !det->events) ||
        (det->frame_capacity > 0 && (!det->frame_times || !det->frame_rows)))
        return fail(det, EARSHOT_ERR_NOMEM, "event and frame queues: out of memory");
    return EARSHOT_OK;
}

/* ---- the stream's pipeline ------------------------------------------------------------- */

static void drop_pipeline(earshot_detector *det) {
    es_pipeline_destroy(det->pipeline);
    det->pipeline = NULL;
    free(det->s16_buffer);
    det->s16_buffer = NULL;
    det->rate = det->channels = 0;
}

/* The offline pipeline `earshot file` makes for a file of this format, with
 * our queues as its sinks. */
static int make_pipeline(earshot_detector *det, int rate, int channels) {
    es_pipeline_config config;
    es_pipeline_config_default(&config, ES_PIPELINE_OFFLINE);
    config.source = det->source;
    config.vad_model = det->models->vad_model;
    for (int k = 0; k < det->models->kws_model_count; k++)
        config.kws_models[k] = det->models->kws_models[k];
    config.kws_model_count = det->models->kws_model_count;
    config.vad = det->vad;
    config.kws = det->kws;
    config.input_rate_hz = rate;
    config.input_channels = channels;
    config.max_input_frames = MAX_INPUT_FRAMES;
    config.wallclock = det->wallclock;
    config.on_event = on_pipeline_event;
    config.event_user = det;
    if (det->on_frame || det->frame_capacity > 0) {
        config.on_frame = on_pipeline_frame;
        config.frame_user = det;
    }
    es_error err = {0};
    int rc = es_pipeline_create(&config, &det->pipeline, &err);
    if (rc != 0) {
        det->pipeline = NULL;
        int code = rc == ES_PIPELINE_ERR_NOMEM   ? EARSHOT_ERR_NOMEM
                   : rc == ES_PIPELINE_ERR_MODEL ? EARSHOT_ERR_MODEL
                                                 : EARSHOT_ERR_FORMAT;
        return fail(det, code, "%s", err.why);
    }
    det->s16_buffer = malloc((size_t)S16_CHUNK_FRAMES * (size_t)channels * sizeof(float));
    if (!det->s16_buffer) {
        drop_pipeline(det);
        return fail(det, EARSHOT_ERR_NOMEM, "sample buffer: out of memory");
    }
    det->rate = rate;
    det->channels = channels;
    return EARSHOT_OK;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static int copy_text(earshot_detector *det, const char *text, char **out) {
    const char *from = text ? text : "";
    *out = malloc(strlen(from) + 1);
    if (!*out) return fail(det, EARSHOT_ERR_NOMEM, "out of memory");
    memcpy(*out, from, strlen(from) + 1);
    return EARSHOT_OK;
}

/* earshot_create and earshot_create_with_models: the settings are copied
 * and checked, then the models loaded (or `shared` taken), then what the
 * stream needs made. */
static int create_detector(const earshot_params *params, earshot_models *shared,
                           earshot_detector **out, char *error, size_t error_size) {
    earshot_detector *det = calloc(1, sizeof *det);
    if (!det) {
        say(error, error_size, "out of memory");
        return EARSHOT_ERR_NOMEM;
    }
    det->wallclock = params->wallclock != 0;
    det->on_event = params->on_event;
    det->event_user = params->event_user;
    det->on_frame = params->on_frame;
    det->frame_user = params->frame_user;
    det->params_rate = params->sample_rate_hz;
    det->params_channels = params->channels;

    int rc = copy_text(det, params->source, &det->source);
    if (rc == EARSHOT_OK) rc = set_detector_configs(det, params);
    if (rc == EARSHOT_OK && shared) {
        models_retain(shared);
        det->models = shared;
    } else if (rc == EARSHOT_OK) {
        rc = load_models(params, &det->models, det->last_error, sizeof det->last_error);
    }
    if (rc == EARSHOT_OK) rc = check_keyword_settings(det);
    if (rc == EARSHOT_OK) rc = make_queues(det, params);
    if (rc == EARSHOT_OK && (det->params_rate != 0 || det->params_channels != 0))
        rc = make_pipeline(det, det->params_rate, det->params_channels);
    if (rc != EARSHOT_OK) {
        say(error, error_size, "%s", det->last_error);
        earshot_destroy(det);
        return rc;
    }
    *out = det;
    return EARSHOT_OK;
}

int earshot_create(const earshot_params *params, earshot_detector **out, char *error,
                   size_t error_size) {
    if (out) *out = NULL;
    int rc = check_arguments(params && out, "params and out are", error, error_size);
    return rc != EARSHOT_OK ? rc : create_detector(params, NULL, out, error, error_size);
}

int earshot_create_with_models(const earshot_params *params, earshot_models *models,
                               earshot_detector **out, char *error, size_t error_size) {
    if (out) *out = NULL;
    int rc =
        check_arguments(params && models && out, "params, models and out are", error, error_size);
    return rc != EARSHOT_OK ? rc : create_detector(params, models, out, error, error_size);
}

void earshot_destroy(earshot_detector *det) {
    if (!det) return;
    drop_pipeline(det);
    earshot_models_release(det->models);
    free(det->events);
    free(det->frame_times);
    free(det->frame_rows);
    free(det->source);
    free(det);
}

int earshot_reset(earshot_detector *det) {
    if (!det) return EARSHOT_ERR_ARG;
    drop_pipeline(det);
    det->finished = 0;
    det->frames_fed = 0;
    det->event_head = det->event_count = 0;
    det->frame_head = det->frame_count = 0;
    det->dropped_events = det->dropped_frames = 0;
    det->last_error[0] = '\0';
    if (det->params_rate != 0 || det->params_channels != 0)
        return make_pipeline(det, det->params_rate, det->params_channels);
    return EARSHOT_OK;
}

/* ---- feeding ------------------------------------------------------------------------------ */

/* The pipeline for a feed of this format: the existing one when the format
 * matches, a new one on the stream's first feed. */
static int stream_for(earshot_detector *det, int rate, int channels) {
    if (det->finished)
        return fail(det, EARSHOT_ERR_STATE, "the input was finished (earshot_reset starts over)");
    if (det->pipeline) {
        if (rate == det->rate && channels == det->channels) return EARSHOT_OK;
        return fail(det, EARSHOT_ERR_FORMAT,
                    "this stream is %d Hz x %d channels; a feed of %d Hz x %d does not fit "
                    "(earshot_reset starts a new stream)",
                    det->rate, det->channels, rate, channels);
    }
    return make_pipeline(det, rate, channels);
}

int earshot_feed(earshot_detector *det, const float *samples, size_t n_frames, int rate,
                 int channels) {
    if (!det) return EARSHOT_ERR_ARG;
    if (!samples && n_frames > 0) return fail(det, EARSHOT_ERR_ARG, "samples is NULL");
    int rc = stream_for(det, rate, channels);
    if (rc != EARSHOT_OK) return rc;
    if (n_frames == 0) return EARSHOT_OK;
    if (es_pipeline_push(det->pipeline, samples, n_frames) != 0)
        return fail(det, EARSHOT_ERR_STATE, "the pipeline refused the samples");
    det->frames_fed += n_frames;
    return EARSHOT_OK;
}

int earshot_feed_s16(earshot_detector *det, const int16_t *samples, size_t n_frames, int rate,
                     int channels) {
    if (!det) return EARSHOT_ERR_ARG;
    if (!samples && n_frames > 0) return fail(det, EARSHOT_ERR_ARG, "samples is NULL");
    int rc = stream_for(det, rate, channels);
    if (rc != EARSHOT_OK) return rc;
    const size_t ch = (size_t)channels;
    while (n_frames > 0) {
        size_t n = n_frames < S16_CHUNK_FRAMES ? n_frames : S16_CHUNK_FRAMES;
        for (size_t i = 0; i < n * ch; i++)
            det->s16_buffer[i] = (float)samples[i] / 32768.0f;
        rc = earshot_feed(det, det->s16_buffer, n, rate, channels);
        if (rc != EARSHOT_OK) return rc;
        samples += n * ch;
        n_frames -= n;
    }
    return EARSHOT_OK;
}

int earshot_finish(earshot_detector *det) {
    if (!det) return EARSHOT_ERR_ARG;
    if (det->finished) return EARSHOT_OK;
    det->finished = 1;
    if (det->pipeline && es_pipeline_finish(det->pipeline) != 0)
        return fail(det, EARSHOT_ERR_STATE, "the pipeline could not finish");
    return EARSHOT_OK;
}

/* ---- results ------------------------------------------------------------------------------- */

const earshot_event *earshot_poll_event(earshot_detector *det) {
    if (!det || det->event_count == 0) return NULL;
    det->polled = det->events[det->event_head];
    det->event_head = (det->event_head + 1) % det->event_capacity;
    det->event_count--;
    return &det->polled;
}

int earshot_frames(earshot_detector *det, double *times_s, float *posteriors, size_t max_frames) {
    if (!det) return EARSHOT_ERR_ARG;
    const size_t columns = (size_t)det->models->keyword_count + 1;
    int taken = 0;
    while (det->frame_count > 0 && (size_t)taken < max_frames && taken < INT32_MAX) {
        if (times_s) times_s[taken] = det->frame_times[det->frame_head];
        if (posteriors)
            memcpy(posteriors + (size_t)taken * columns,
                   det->frame_rows + (size_t)det->frame_head * columns, columns * sizeof(float));
        det->frame_head = (det->frame_head + 1) % det->frame_capacity;
        det->frame_count--;
        taken++;
    }
    return taken;
}

int earshot_frame_columns(const earshot_detector *det) {
    return det ? det->models->keyword_count + 1 : EARSHOT_ERR_ARG;
}

int earshot_keyword_count(const earshot_detector *det) {
    return det ? det->models->keyword_count : EARSHOT_ERR_ARG;
}

const char *earshot_keyword_name(const earshot_detector *det, int index) {
    if (!det || index < 0 || index >= det->models->keyword_count) return NULL;
    return det->models->keywords[index];
}

double earshot_stream_time(const earshot_detector *det) {
    if (!det || det->rate == 0) return 0.0;
    return (double)det->frames_fed / det->rate;
}

uint64_t earshot_dropped_events(const earshot_detector *det) {
    return det ? det->dropped_events : 0;
}

uint64_t earshot_dropped_frames(const earshot_detector *det) {
    return det ? det->dropped_frames : 0;
}
