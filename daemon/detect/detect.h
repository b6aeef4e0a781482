/*
 * detect — the room daemon/detect: per-frame posteriors in, events out.
 *
 * Its two parts, in this order: the events (what earshot tells the world,
 * and their one JSON line) and the detectors that make them (speech
 * segments, keywords). Pure state machines and pure functions: no
 * allocation after create, no I/O. The pipeline (daemon/stream/) runs the
 * detectors; the service's config and the trainer's calibration set their
 * knobs.
 */
#ifndef ES_DETECT_H
#define ES_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== event =================================================================
 * event — what earshot tells the world (DESIGN.md, "Events").
 *
 * The detectors (below) make events, the pipeline (daemon/stream/)
 * stamps each with its source and, live, a wallclock, and hands it to the
 * caller's es_event_sink; the outlets write it as one JSON line
 * (es_event_to_json): sinks of `earshot file` and `mic`, the service's event
 * socket, stdout and MQTT, and (as Wyoming events) the Wyoming server. So
 * the line format lives here, once. Times are seconds of stream time.
 *
 * Pure functions over caller-owned memory: no allocation, no I/O.
 */

typedef enum es_event_type {
    ES_EVENT_SPEECH = 1,
    ES_EVENT_KEYWORD = 2,
    /* A speech segment has begun and will be kept (opt-in, es_vad_config below):
     * `start_s` is the start its speech event will carry, `time_s` when it
     * was known; no end or score yet. */
    ES_EVENT_SPEECH_START = 3,
} es_event_type;

typedef struct es_event {
    es_event_type type;
    const char *source;  /* filled in by the pipeline; detectors leave NULL */
    const char *keyword; /* keyword events: the model's label */
    double time_s;       /* keyword: when the detector fired; speech_start: when sent */
    double start_s;
    double end_s;
    float score;
    double wallclock_s; /* live sources: Unix time of the event; 0 = offline */
} es_event;

typedef void (*es_event_sink)(const es_event *event, void *user);

/* "speech", "keyword", "speech_start": the event's "type" (and its MQTT
 * topic's last level). */
const char *es_event_type_name(es_event_type type);

/* Formats one event as a JSON line (with '\n'); returns the length, or the
 * length it would need when `size` is too small (like snprintf). */
int es_event_to_json(const es_event *event, char *buf, size_t size);

/* Writes `text` as a JSON string, quotes included, with the same escaping
 * and UTF-8 repair as events (other protocols reuse it, e.g. wyoming.c);
 * returns the length like snprintf. */
int es_json_quote(const char *text, char *buf, size_t size);

/* ==== detect ================================================================
 * Detectors: per-frame posteriors in, events out.
 *
 * The VAD detector turns a speech probability per 10 ms frame into speech
 * segments with hysteresis (onset/offset thresholds), minimum speech and
 * silence durations, a maximum segment length and padding. The keyword
 * detector smooths each keyword's posterior over a short window, fires when it
 * crosses that keyword's threshold, then stays quiet for a refractory period;
 * optionally only while the VAD says speech.
 *
 * Times are in samples of 16 kHz stream time (the frame's start), converted
 * to seconds only in events. Both detectors are pure state machines: no
 * allocation after create, no I/O. [rt] on every step and flush call.
 *
 * Time conventions in events: a frame stamped t covers [t, t + hop). A speech
 * segment runs from its first speech frame's start to the end of its last
 * speech frame, widened by the padding; its score is the mean speech
 * probability over its frames (bridged gaps included, padding not). It is
 * sent once the silence after it reaches max(min_silence, 2 x padding) --
 * then it can neither be bridged nor padded into the next one -- or at flush.
 * With speech_start_events, every speech event is preceded by exactly one
 * speech_start event carrying the same (padded) `start`; its `time` is the
 * stream time at which it was sent: the end of the frame at which the segment
 * became long enough to be kept (min_speech), so it is never taken back. The
 * padded start is already final then (the previous segment has been sent), so
 * both starts are equal with any padding. A segment that begins at a
 * max-speech split is announced at the split (its `time` is the end of the
 * splitting frame); a segment sent without ever being confirmed (possible only
 * when max_speech is barely above min_speech) is announced right before its
 * speech event. Without the option no speech_start event is sent.
 * A keyword's `time` is the end of the frame at which the smoothed posterior
 * first reached the threshold (the crossing frame, not the peak: that is the
 * earliest moment the decision can be made). Keyword models are trained to
 * answer just after the word has ended (labels.h), so `end` is where the
 * smoothed posterior last rose above half the threshold, and `start` where the
 * VAD's latest speech run before it began (at most ES_KWS_MAX_LOOKBACK_MS
 * before `end`, which is also the fallback when the VAD heard no speech then:
 * a word said right after others, with no pause the VAD keeps, gets their
 * start). Its score is the smoothed posterior's peak, awaited for at most
 * peak_wait_ms after `time` (the event is sent at the peak, or then).
 */

enum {
    ES_DETECT_OK = 0,
    ES_DETECT_ERR_CONFIG = -1, /* a config field, rate, hop or label is out of range */
    ES_DETECT_ERR_NOMEM = -2,
};

/* offset_threshold value meaning "the onset threshold" (no hysteresis), so
 * that lowering only the onset threshold needs no second setting. */
#define ES_VAD_OFFSET_SAME_AS_ONSET (-1.0f)

/* Defaults (es_vad_config_default) are tuned for the shipped VAD on the
 * validation split by scripts/tune-detector.sh; rerun it for another model. */
typedef struct es_vad_config {
    float onset_threshold;   /* 0.75: speech starts when p >= this */
    float offset_threshold;  /* ES_VAD_OFFSET_SAME_AS_ONSET: and ends when p < this
                                (hysteresis when lower); any value < 0 means the
                                onset threshold */
    int min_speech_ms;       /* 30: shorter segments are dropped */
    int min_silence_ms;      /* 150: shorter gaps are bridged */
    int max_speech_ms;       /* 30000: longer segments are split (at the last bridged gap
                                when there is one, else hard); 0 = no limit */
    int pad_ms;              /* 0: added before start and after end; a start never
                                reaches back before 0 or into the previous segment */
    int speech_start_events; /* 0: when 1, also send ES_EVENT_SPEECH_START (below) */
} es_vad_config;

void es_vad_config_default(es_vad_config *config);
/* 0 when valid; else ES_DETECT_ERR_CONFIG with err->why naming the bad field. */
int es_vad_config_check(const es_vad_config *config, es_error *err);

typedef struct es_vad_detector es_vad_detector;

int es_vad_detector_create(const es_vad_config *config, int sample_rate_hz, int hop_samples,
                           es_vad_detector **out);
void es_vad_detector_destroy(es_vad_detector *d);
/* [rt] Feeds one frame's speech probability; emits finished segments. */
void es_vad_detector_step(es_vad_detector *d, int64_t frame_time_samples, float p_speech,
                          es_event_sink sink, void *user);
/* [rt] Whether the detector is inside a speech segment now, counting a gap
 * that may still be bridged (for the keyword gate). */
int es_vad_detector_in_speech(const es_vad_detector *d);
/* [rt] End of stream: closes an open segment (the end padding does not reach
 * past the last frame). The detector may then be fed a new stream. */
void es_vad_detector_flush(es_vad_detector *d, es_event_sink sink, void *user);
/* [rt] 1 right after the es_vad_detector_step call at which the open segment
 * became long enough (min_speech) to be kept, else 0: the earliest moment a
 * speech onset can be announced without ever being taken back (the segment's
 * own event comes only once it has ended). `*start_samples` (may be NULL)
 * gets the start its event will carry. Segments that begin at a max-speech
 * split are not announced again (unlike speech_start events, which the same
 * step sends when speech_start_events is set, one per speech event). */
int es_vad_detector_confirmed(const es_vad_detector *d, int64_t *start_samples);

#define ES_KWS_MAX_KEYWORDS 64
/* The longest moving average of a keyword's posterior. */
#define ES_KWS_MAX_SMOOTH_MS 1000
/* How far back before the firing frame a keyword's `start` may lie. */
#define ES_KWS_MAX_LOOKBACK_MS 1500

typedef struct es_kws_config {
    int smooth_ms;           /* 50: moving average of each posterior */
    float default_threshold; /* 0.5 */
    int refractory_ms;       /* 1000: after a keyword fires, none fires for this long */
    int vad_gate;            /* 0: when 1, keywords fire only inside speech */
    int peak_wait_ms;        /* 100: how long a fired keyword's event may wait for its
                                smoothed posterior's peak (its score); 0 = send at once */
    int threshold_count;     /* per-keyword overrides, matched by name */
    struct {
        char keyword[32];
        float threshold; /* 0 (with a smoothing of its own): default_threshold */
        int smooth_ms;   /* 0: smooth_ms above; a model calibrated with another
                            smoothing carries it (es_model_smoothing) */
    } thresholds[ES_KWS_MAX_KEYWORDS];
} es_kws_config;

void es_kws_config_default(es_kws_config *config);
/* 0 when valid; else ES_DETECT_ERR_CONFIG with err->why naming the bad field. */
int es_kws_config_check(const es_kws_config *config, es_error *err);

/* 0 for the labels that name no keyword ("filler", "_filler", "silence"). */
int es_kws_label_is_keyword(const char *label);

typedef struct es_kws_detector es_kws_detector;

/* `labels[0..count)` names the model's outputs (copied); outputs named
 * "filler" (or "_filler", "silence") are not keywords. Threshold overrides
 * naming no label of this model are ignored: one config may serve several
 * keyword models. */
int es_kws_detector_create(const es_kws_config *config, int count, const char *const *labels,
                           int sample_rate_hz, int hop_samples, es_kws_detector **out);
void es_kws_detector_destroy(es_kws_detector *d);
/* [rt] Feeds one frame's posteriors (count floats) and the VAD's verdict on
 * the frame (es_vad_detector_in_speech; 1 when there is no VAD); emits keyword
 * events. An event is sent at its score's peak (see peak_wait_ms), so a sink
 * may see it a few frames after the firing frame. */
void es_kws_detector_step(es_kws_detector *d, int64_t frame_time_samples, const float *posteriors,
                          int in_speech, es_event_sink sink, void *user);
/* [rt] End of stream: sends keywords still waiting for their peak. The
 * detector may then be fed a new stream. */
void es_kws_detector_flush(es_kws_detector *d, es_event_sink sink, void *user);

#ifdef __cplusplus
}
#endif
#endif
