/*
 * Detectors: VAD segmentation and keyword firing (see detect.h).
 *
 * Both are small state machines over frame times in samples; every buffer is
 * made in *_create so the step and flush calls only touch existing memory.
 */
#include "detect.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Durations above an hour are almost certainly a unit mistake (ms vs s). */
#define ES_DETECT_MAX_DURATION_MS 3600000
#define ES_KWS_MAX_PEAK_WAIT_MS 1000
#define ES_KWS_LABEL_BYTES 64

static int64_t ms_to_samples(int ms, int sample_rate_hz) {
    return (int64_t)ms * sample_rate_hz / 1000;
}

static int64_t min_i64(int64_t a, int64_t b) {
    return a < b ? a : b;
}

static int64_t max_i64(int64_t a, int64_t b) {
    return a > b ? a : b;
}

static int is_probability(float p) {
    return isfinite(p) && p >= 0.0f && p <= 1.0f;
}

static int is_duration_ms(int ms) {
    return ms >= 0 && ms <= ES_DETECT_MAX_DURATION_MS;
}

/* A model may emit NaN after a numerical blow-up; it must not poison sums. */
static float sanitise_probability(float p) {
    if (!(p > 0.0f)) return 0.0f;
    return p > 1.0f ? 1.0f : p;
}

static double samples_to_s(int64_t samples, int sample_rate_hz) {
    return (double)samples / sample_rate_hz;
}

/* ---- VAD ------------------------------------------------------------------- */

/* Chosen on the validation split for the shipped VAD (models/vad.esm) by
 * scripts/tune-detector.sh: the best mean of frame and segment F1 over clean
 * to 0 dB, with onset latency and speech_start latency p90 <= 100 ms, <= 5 %
 * missed onsets, gaps under 150 ms bridged (the truth's own definition of a
 * pause) and segments of at least 30 ms (a click is not speech); among
 * near-ties the one whose events come soonest after speech ends.
 * The model's probability is steep at onsets, so one threshold serves both
 * ways: no hysteresis scored best, and the offset follows the onset threshold
 * unless set. Rerun the script after retraining the VAD. Max speech is not
 * tuned. */
void es_vad_config_default(es_vad_config *config) {
    config->onset_threshold = 0.75f;
    config->offset_threshold = ES_VAD_OFFSET_SAME_AS_ONSET; /* 0.75 */
    config->min_speech_ms = 30;
    config->min_silence_ms = 150;
    config->max_speech_ms = 30000;
    config->pad_ms = 0;
    config->speech_start_events = 0;
}

int es_vad_config_check(const es_vad_config *config, es_error *err) {
    if (!config) return es_error_set(err, ES_DETECT_ERR_CONFIG, "vad config is missing");
    ;
    if (!is_probability(config->onset_threshold) || config->onset_threshold <= 0.0f)
        return es_error_set(err, ES_DETECT_ERR_CONFIG,
                            "vad threshold (onset) must be greater than 0 and at most 1");
    ;
    if (config->offset_threshold < 0.0f) {
        /* ES_VAD_OFFSET_SAME_AS_ONSET */
    } else if (!is_probability(config->offset_threshold) ||
               config->offset_threshold > config->onset_threshold) {
        return es_error_set(err, ES_DETECT_ERR_CONFIG,
                            "vad offset threshold must be between 0 and the onset threshold");
        ;
    }
    if (!is_duration_ms(config->min_speech_ms))
        return es_error_set(err, ES_DETECT_ERR_CONFIG,
                            "min speech must be between 0 and 3600000 ms");
    ;
    if (!is_duration_ms(config->min_silence_ms))
        return es_error_set(err, ES_DETECT_ERR_CONFIG,
                            "min silence must be between 0 and 3600000 ms");
    ;
    if (!is_duration_ms(config->max_speech_ms))
        return es_error_set(err, ES_DETECT_ERR_CONFIG,
                            "max speech must be between 0 (no limit) and 3600000 ms");
    ;
    if (config->max_speech_ms != 0 && config->max_speech_ms <= config->min_speech_ms)
        return es_error_set(err, ES_DETECT_ERR_CONFIG,
                            "max speech must be 0 (no limit) or longer than min speech");
    ;
    if (config->pad_ms < 0 || config->pad_ms > 60000)
        return es_error_set(err, ES_DETECT_ERR_CONFIG, "padding must be between 0 and 60000 ms");
    ;
    if (config->speech_start_events != 0 && config->speech_start_events != 1)
        return es_error_set(err, ES_DETECT_ERR_CONFIG, "speech start events must be 0 or 1");
    ;
    return 0;
}

typedef enum vad_state {
    VAD_IDLE,   /* no segment open */
    VAD_SPEECH, /* inside speech */
    VAD_GAP,    /* speech stopped at gap_start; bridged if it resumes soon */
} vad_state;

struct es_vad_detector {
    float onset_threshold;
    float offset_threshold;
    int sample_rate_hz;
    int64_t hop;
    int64_t min_speech;
    int64_t min_silence;
    int64_t max_speech;
    int64_t pad;
    /* Silence after which a segment is sent: by then no bridge is possible and
     * the end padding cannot reach the next segment's start. */
    int64_t close_after;
    int speech_start_events;

    vad_state state;
    int64_t start;      /* first frame of the open segment */
    int continued;      /* the segment began at a max-speech split: never dropped */
    int confirmed;      /* the open segment is long enough to be kept */
    int just_confirmed; /* ... and became so in the last step */
    int announced;      /* its speech_start event was sent */
    double sum;         /* probabilities from `start` on, bridged gaps included */
    int64_t frames;
    int64_t gap_start; /* VAD_GAP: first silent frame */
    double gap_sum;
    int64_t gap_frames;

    /* The latest bridged gap of the open segment: the preferred split point. */
    int has_bridge;
    int64_t bridge_start, bridge_end;
    double sum_before_bridge, bridge_sum;
    int64_t frames_before_bridge, bridge_frames;

    int64_t previous_end; /* padded end of the last segment sent */
    int64_t stream_end;   /* end of the last frame fed */
};

int es_vad_detector_create(const es_vad_config *config, int sample_rate_hz, int hop_samples,
                           es_vad_detector **out) {
    *out = NULL;
    if (es_vad_config_check(config, NULL) || sample_rate_hz <= 0 || hop_samples <= 0)
        return ES_DETECT_ERR_CONFIG;
    int64_t max_speech = ms_to_samples(config->max_speech_ms, sample_rate_hz);
    if (max_speech != 0 && max_speech < hop_samples) return ES_DETECT_ERR_CONFIG;
    es_vad_detector *d = calloc(1, sizeof *d);
    if (!d) return ES_DETECT_ERR_NOMEM;
    d->onset_threshold = config->onset_threshold;
    d->offset_threshold =
        config->offset_threshold < 0.0f ? config->onset_threshold : config->offset_threshold;
    d->sample_rate_hz = sample_rate_hz;
    d->hop = hop_samples;
    d->min_speech = ms_to_samples(config->min_speech_ms, sample_rate_hz);
    d->min_silence = ms_to_samples(config->min_silence_ms, sample_rate_hz);
    d->max_speech = max_speech;
    d->pad = ms_to_samples(config->pad_ms, sample_rate_hz);
    d->close_after = max_i64(d->min_silence, 2 * d->pad);
    d->speech_start_events = config->speech_start_events;
    d->state = VAD_IDLE;
    *out = d;
    return ES_DETECT_OK;
}

void es_vad_detector_destroy(es_vad_detector *d) {
    free(d);
}

/* The start a segment's event carries: padded, but never before 0 or into
 * the previous segment (already sent whenever a segment is open). */
static int64_t padded_start(const es_vad_detector *d, int64_t raw_start) {
    return max_i64(max_i64(raw_start - d->pad, d->previous_end), 0);
}

/* Sends the open segment's speech_start event, once per segment. */
static void announce_segment(es_vad_detector *d, es_event_sink sink, void *user) {
    if (!d->speech_start_events || d->announced) return;
    d->announced = 1;
    es_event event = {
        .type = ES_EVENT_SPEECH_START,
        .time_s = samples_to_s(d->stream_end, d->sample_rate_hz),
        .start_s = samples_to_s(padded_start(d, d->start), d->sample_rate_hz),
    };
    if (sink) sink(&event, user);
}

/* Sends the open segment (starting at d->start) up to raw_end. */
static void send_segment(es_vad_detector *d, int64_t raw_start, int64_t raw_end, double sum,
                         int64_t frames, int64_t end_pad, int droppable, es_event_sink sink,
                         void *user) {
    if (droppable && raw_end - raw_start < d->min_speech) return;
    /* Normally announced when confirmed; this catches a segment split by
     * max_speech before it was confirmed. */
    announce_segment(d, sink, user);
    int64_t start = padded_start(d, raw_start);
    int64_t end = raw_end + end_pad;
    d->previous_end = end;
    es_event event = {
        .type = ES_EVENT_SPEECH,
        .start_s = samples_to_s(start, d->sample_rate_hz),
        .end_s = samples_to_s(end, d->sample_rate_hz),
        .score = frames > 0 ? (float)(sum / (double)frames) : 0.0f,
    };
    if (sink) sink(&event, user);
}

static void open_segment(es_vad_detector *d, int64_t t, int continued) {
    d->state = VAD_SPEECH;
    d->start = t;
    d->continued = continued;
    d->confirmed = continued;
    d->announced = 0;
    d->sum = 0.0;
    d->frames = 0;
    d->has_bridge = 0;
}

/* Cuts an over-long segment: at its latest bridged gap when the part before it
 * is long enough to stand alone, else right before frame `t`. */
static void split_segment(es_vad_detector *d, int64_t t, es_event_sink sink, void *user) {
    if (d->has_bridge && d->bridge_start - d->start >= d->min_speech) {
        int64_t half_gap = (d->bridge_end - d->bridge_start) / 2;
        send_segment(d, d->start, d->bridge_start, d->sum_before_bridge, d->frames_before_bridge,
                     min_i64(d->pad, half_gap), 0, sink, user);
        double sum_after = d->sum - d->sum_before_bridge - d->bridge_sum;
        int64_t frames_after = d->frames - d->frames_before_bridge - d->bridge_frames;
        open_segment(d, d->bridge_end, 1);
        d->sum = sum_after;
        d->frames = frames_after;
    } else {
        send_segment(d, d->start, t, d->sum, d->frames, 0, 0, sink, user);
        open_segment(d, t, 1);
    }
}

static void add_speech_frame(es_vad_detector *d, int64_t t, float p, es_event_sink sink,
                             void *user) {
    if (d->max_speech > 0 && t + d->hop - d->start > d->max_speech) split_segment(d, t, sink, user);
    d->sum += p;
    d->frames++;
}

static void bridge_gap(es_vad_detector *d, int64_t t) {
    d->has_bridge = 1;
    d->bridge_start = d->gap_start;
    d->bridge_end = t;
    d->sum_before_bridge = d->sum;
    d->frames_before_bridge = d->frames;
    d->bridge_sum = d->gap_sum;
    d->bridge_frames = d->gap_frames;
    d->sum += d->gap_sum;
    d->frames += d->gap_frames;
    d->state = VAD_SPEECH;
}

static void close_segment(es_vad_detector *d, int64_t raw_end, int64_t end_pad, es_event_sink sink,
                          void *user) {
    send_segment(d, d->start, raw_end, d->sum, d->frames, end_pad, !d->continued, sink, user);
    d->state = VAD_IDLE;
}

void es_vad_detector_step(es_vad_detector *d, int64_t frame_time_samples, float p_speech,
                          es_event_sink sink, void *user) {
    int64_t t = frame_time_samples;
    float p = sanitise_probability(p_speech);
    d->stream_end = t + d->hop;
    switch (d->state) {
    case VAD_IDLE:
        if (p >= d->onset_threshold) {
            open_segment(d, t, 0);
            add_speech_frame(d, t, p, sink, user);
        }
        break;
    case VAD_SPEECH:
        if (p >= d->offset_threshold) {
            add_speech_frame(d, t, p, sink, user);
        } else {
            d->state = VAD_GAP;
            d->gap_start = t;
            d->gap_sum = p;
            d->gap_frames = 1;
        }
        break;
    case VAD_GAP:
        if (p < d->onset_threshold) {
            d->gap_sum += p;
            d->gap_frames++;
        } else if (t - d->gap_start < d->min_silence) {
            bridge_gap(d, t);
            add_speech_frame(d, t, p, sink, user);
        } else {
            /* Silence was long enough but padding kept the segment unsent:
             * share the gap so the paddings meet and never overlap. */
            close_segment(d, d->gap_start, min_i64(d->pad, (t - d->gap_start) / 2), sink, user);
            open_segment(d, t, 0);
            add_speech_frame(d, t, p, sink, user);
        }
        break;
    }
    if (d->state == VAD_GAP && d->stream_end - d->gap_start >= d->close_after)
        close_segment(d, d->gap_start, d->pad, sink, user);
    d->just_confirmed = 0;
    if (d->state == VAD_SPEECH && !d->confirmed && d->stream_end - d->start >= d->min_speech) {
        d->confirmed = 1;
        d->just_confirmed = 1;
    }
    /* A new confirmed segment, or one begun at a max-speech split. */
    if (d->state != VAD_IDLE && d->confirmed) announce_segment(d, sink, user);
}

int es_vad_detector_confirmed(const es_vad_detector *d, int64_t *start_samples) {
    if (!d->just_confirmed) return 0;
    if (start_samples) *start_samples = padded_start(d, d->start);
    return 1;
}

int es_vad_detector_in_speech(const es_vad_detector *d) {
    if (d->state == VAD_SPEECH) return 1;
    return d->state == VAD_GAP && d->stream_end - d->gap_start < d->min_silence;
}

void es_vad_detector_flush(es_vad_detector *d, es_event_sink sink, void *user) {
    if (d->state == VAD_SPEECH)
        close_segment(d, d->stream_end, 0, sink, user);
    else if (d->state == VAD_GAP)
        close_segment(d, d->gap_start, min_i64(d->pad, d->stream_end - d->gap_start), sink, user);
    d->state = VAD_IDLE;
    d->just_confirmed = 0;
    d->previous_end = 0;
    d->stream_end = 0;
}

/* ---- keywords ---------------------------------------------------------------- */

void es_kws_config_default(es_kws_config *config) {
    memset(config, 0, sizeof *config);
    config->smooth_ms = 50;
    config->default_threshold = 0.5f;
    config->refractory_ms = 1000;
    config->vad_gate = 0;
    config->peak_wait_ms = 100;
    config->threshold_count = 0;
}

static int is_threshold(float threshold) {
    return is_probability(threshold) && threshold > 0.0f;
}

int es_kws_config_check(const es_kws_config *config, es_error *err) {
    if (!config) return es_error_set(err, ES_DETECT_ERR_CONFIG, "keyword config is missing");
    ;
    if (config->smooth_ms < 0 || config->smooth_ms > ES_KWS_MAX_SMOOTH_MS)
        return es_error_set(err, ES_DETECT_ERR_CONFIG,
                            "keyword smoothing must be between 0 and 1000 ms");
    ;
    if (!is_threshold(config->default_threshold))
        return es_error_set(err, ES_DETECT_ERR_CONFIG,
                            "keyword threshold must be greater than 0 and at most 1");
    ;
    if (!is_duration_ms(config->refractory_ms))
        return es_error_set(err, ES_DETECT_ERR_CONFIG,
                            "keyword refractory period must be between 0 and 3600000 ms");
    ;
    if (config->vad_gate != 0 && config->vad_gate != 1)
        return es_error_set(err, ES_DETECT_ERR_CONFIG, "keyword vad gate must be 0 or 1");
    ;
    if (config->peak_wait_ms < 0 || config->peak_wait_ms > ES_KWS_MAX_PEAK_WAIT_MS)
        return es_error_set(err, ES_DETECT_ERR_CONFIG,
                            "keyword peak wait must be between 0 and 1000 ms");
    ;
    if (config->threshold_count < 0 || config->threshold_count > ES_KWS_MAX_KEYWORDS)
        return es_error_set(err, ES_DETECT_ERR_CONFIG,
                            "too many per-keyword thresholds (at most 64)");
    ;
    for (int i = 0; i < config->threshold_count; i++) {
        const char *name = config->thresholds[i].keyword;
        size_t length = strnlen(name, sizeof config->thresholds[i].keyword);
        if (length == 0)
            return es_error_set(err, ES_DETECT_ERR_CONFIG,
                                "a per-keyword threshold names no keyword");
        ;
        if (length == sizeof config->thresholds[i].keyword)
            return es_error_set(
                err, ES_DETECT_ERR_CONFIG,
                "a per-keyword threshold's keyword name is too long (at most 31 bytes)");
        ;
        const int smooth_ms = config->thresholds[i].smooth_ms;
        if (smooth_ms < 0 || smooth_ms > ES_KWS_MAX_SMOOTH_MS)
            return es_error_set(err, ES_DETECT_ERR_CONFIG,
                                "a per-keyword smoothing must be between 0 and 1000 ms");
        ;
        if (!is_threshold(config->thresholds[i].threshold) &&
            !(config->thresholds[i].threshold == 0.0f && smooth_ms > 0))
            return es_error_set(err, ES_DETECT_ERR_CONFIG,
                                "a per-keyword threshold must be greater than 0 and at most 1");
        ;
        for (int j = 0; j < i; j++)
            if (strcmp(config->thresholds[j].keyword, name) == 0)
                return es_error_set(err, ES_DETECT_ERR_CONFIG,
                                    "a keyword has two per-keyword thresholds");
        ;
    }
    return 0;
}

int es_kws_label_is_keyword(const char *label) {
    return strcmp(label, "filler") != 0 && strcmp(label, "_filler") != 0 &&
           strcmp(label, "silence") != 0;
}

typedef struct keyword_track {
    int output; /* column in the model's posteriors */
    char label[ES_KWS_LABEL_BYTES];
    float threshold;
    int armed;         /* the smoothed posterior was below the threshold */
    int64_t rise_time; /* where it rose above half the threshold; -1 while below */
    int pending;       /* fired, its event waits for the smoothed posterior's peak */
    int64_t fire_time, start, end;
    float peak;
    float *window;     /* the last smooth_frames posteriors, circular */
    int smooth_frames; /* its moving average's length */
    int window_pos;
    int window_filled;
    double window_sum; /* of the window: a long mean costs no more per frame */
} keyword_track;

struct es_kws_detector {
    int sample_rate_hz;
    int64_t hop;
    int64_t refractory;
    int64_t lookback;
    int64_t peak_wait;
    int in_speech;             /* the VAD's verdict on the last frame */
    int64_t last_speech_start; /* where the latest speech run began; -1: none yet */
    int vad_gate;
    int has_fired;
    int64_t refractory_until;
    int64_t stream_end;
    int keyword_count;
    keyword_track *tracks;
    float *windows;
};

/* A keyword's threshold and smoothing: its own, else the config's. */
static void settings_for(const es_kws_config *config, const char *label, float *threshold,
                         int *smooth_ms) {
    *threshold = config->default_threshold;
    *smooth_ms = config->smooth_ms;
    for (int i = 0; i < config->threshold_count; i++)
        if (strcmp(config->thresholds[i].keyword, label) == 0) {
            if (config->thresholds[i].threshold > 0.0f)
                *threshold = config->thresholds[i].threshold;
            if (config->thresholds[i].smooth_ms > 0) *smooth_ms = config->thresholds[i].smooth_ms;
        }
}

static int smooth_frames_of(int smooth_ms, int sample_rate_hz, int64_t hop_samples) {
    const int64_t smooth = ms_to_samples(smooth_ms, sample_rate_hz);
    const int frames = (int)((smooth + hop_samples / 2) / hop_samples);
    return frames < 1 ? 1 : frames;
}

static void reset_tracks(es_kws_detector *d) {
    for (int k = 0; k < d->keyword_count; k++) {
        keyword_track *track = &d->tracks[k];
        memset(track->window, 0, sizeof *track->window * (size_t)track->smooth_frames);
        track->window_pos = 0;
        track->window_filled = 0;
        track->window_sum = 0.0;
        track->armed = 1;
        track->rise_time = -1;
        track->pending = 0;
    }
    d->in_speech = 0;
    d->last_speech_start = -1;
    d->has_fired = 0;
    d->stream_end = 0;
}

int es_kws_detector_create(const es_kws_config *config, int count, const char *const *labels,
                           int sample_rate_hz, int hop_samples, es_kws_detector **out) {
    *out = NULL;
    if (es_kws_config_check(config, NULL) || count <= 0 || !labels || sample_rate_hz <= 0 ||
        hop_samples <= 0)
        return ES_DETECT_ERR_CONFIG;
    int keywords = 0;
    for (int i = 0; i < count; i++) {
        if (!labels[i] || strlen(labels[i]) >= ES_KWS_LABEL_BYTES) return ES_DETECT_ERR_CONFIG;
        keywords += es_kws_label_is_keyword(labels[i]);
    }

    es_kws_detector *d = calloc(1, sizeof *d);
    if (!d) return ES_DETECT_ERR_NOMEM;
    d->sample_rate_hz = sample_rate_hz;
    d->hop = hop_samples;
    d->refractory = ms_to_samples(config->refractory_ms, sample_rate_hz);
    d->lookback = ms_to_samples(ES_KWS_MAX_LOOKBACK_MS, sample_rate_hz);
    d->peak_wait = ms_to_samples(config->peak_wait_ms, sample_rate_hz);
    d->vad_gate = config->vad_gate;
    d->keyword_count = keywords;
    /* One extra element keeps calloc meaningful for a filler-only model. */
    d->tracks = calloc((size_t)keywords + 1, sizeof *d->tracks);
    if (!d->tracks) {
        es_kws_detector_destroy(d);
        return ES_DETECT_ERR_NOMEM;
    }
    size_t window_floats = 1;
    int k = 0;
    for (int i = 0; i < count; i++) {
        if (!es_kws_label_is_keyword(labels[i])) continue;
        keyword_track *track = &d->tracks[k++];
        track->output = i;
        strcpy(track->label, labels[i]);
        int smooth_ms;
        settings_for(config, labels[i], &track->threshold, &smooth_ms);
        track->smooth_frames = smooth_frames_of(smooth_ms, sample_rate_hz, hop_samples);
        window_floats += (size_t)track->smooth_frames;
    }
    d->windows = calloc(window_floats, sizeof *d->windows);
    if (!d->windows) {
        es_kws_detector_destroy(d);
        return ES_DETECT_ERR_NOMEM;
    }
    for (size_t at = 0, t = 0; t < (size_t)keywords; at += (size_t)d->tracks[t++].smooth_frames)
        d->tracks[t].window = d->windows + at;
    reset_tracks(d);
    *out = d;
    return ES_DETECT_OK;
}

void es_kws_detector_destroy(es_kws_detector *d) {
    if (!d) return;
    free(d->tracks);
    free(d->windows);
    free(d);
}

/* Takes the frame's posterior into the keyword's window; their mean. */
static float smooth(keyword_track *track, float posterior) {
    track->window_sum += (double)posterior - track->window[track->window_pos];
    track->window[track->window_pos] = posterior;
    track->window_pos = (track->window_pos + 1) % track->smooth_frames;
    if (track->window_filled < track->smooth_frames) track->window_filled++;
    const double mean = track->window_sum / track->window_filled;
    return mean > 0.0 ? (float)mean : 0.0f; /* rounding must not leave a faint negative */
}

static int may_fire(const es_kws_detector *d, int64_t fire_time, int in_speech) {
    if (d->vad_gate && !in_speech) return 0;
    return !d->has_fired || fire_time >= d->refractory_until;
}

static void send_keyword(const es_kws_detector *d, keyword_track *track, es_event_sink sink,
                         void *user) {
    track->pending = 0;
    es_event event = {
        .type = ES_EVENT_KEYWORD,
        .keyword = track->label,
        .time_s = samples_to_s(track->fire_time, d->sample_rate_hz),
        .start_s = samples_to_s(track->start, d->sample_rate_hz),
        .end_s = samples_to_s(track->end, d->sample_rate_hz),
        .score = track->peak,
    };
    if (sink) sink(&event, user);
}

/* The model's posterior rises once the word has ended (the trainer's targets
 * follow the word): the rise bounds the word's end, the speech the VAD heard
 * last before it bounds its start. */
static void fire(es_kws_detector *d, keyword_track *track, int64_t fire_time, float smoothed,
                 es_event_sink sink, void *user) {
    track->end = track->rise_time >= 0 ? track->rise_time : fire_time;
    const int64_t earliest = max_i64(track->end - d->lookback, 0);
    track->start = d->last_speech_start >= earliest && d->last_speech_start < track->end
                       ? d->last_speech_start
                       : earliest;
    track->fire_time = fire_time;
    track->peak = smoothed;
    track->pending = 1;
    d->has_fired = 1;
    d->refractory_until = fire_time + d->refractory;
    if (d->peak_wait == 0) send_keyword(d, track, sink, user);
}

/* One keyword, one frame: `t` is the frame's start, `s` its smoothed posterior. */
static void track_step(es_kws_detector *d, keyword_track *track, int64_t t, float s, int in_speech,
                       es_event_sink sink, void *user) {
    if (track->pending) {
        if (s < track->peak || d->stream_end - track->fire_time >= d->peak_wait)
            send_keyword(d, track, sink, user);
        else
            track->peak = s;
    }
    if (s >= track->threshold * 0.5f) {
        if (track->rise_time < 0) track->rise_time = t;
    } else {
        track->rise_time = -1;
    }
    if (s < track->threshold) {
        track->armed = 1;
        return;
    }
    if (!track->armed) return;
    /* A crossing is used up whether it fires or is suppressed. */
    track->armed = 0;
    if (may_fire(d, d->stream_end, in_speech)) fire(d, track, d->stream_end, s, sink, user);
}

void es_kws_detector_step(es_kws_detector *d, int64_t frame_time_samples, const float *posteriors,
                          int in_speech, es_event_sink sink, void *user) {
    d->stream_end = frame_time_samples + d->hop;
    if (in_speech && !d->in_speech) d->last_speech_start = frame_time_samples;
    d->in_speech = in_speech;
    for (int k = 0; k < d->keyword_count; k++) {
        keyword_track *track = &d->tracks[k];
        const float s = smooth(track, sanitise_probability(posteriors[track->output]));
        track_step(d, track, frame_time_samples, s, in_speech, sink, user);
    }
}

void es_kws_detector_flush(es_kws_detector *d, es_event_sink sink, void *user) {
    for (int k = 0; k < d->keyword_count; k++)
        if (d->tracks[k].pending) send_keyword(d, &d->tracks[k], sink, user);
    reset_tracks(d);
}
