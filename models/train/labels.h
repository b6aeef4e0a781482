/*
 * labels — per-frame training targets from a clean clip.
 *
 * Speech/non-speech: a frame (the front end's window at each hop) is speech
 * when its energy stands above the clip's noise floor; then clicks are
 * dropped, pauses of up to 100 ms (the quiet stretches inside words and
 * between close words) are filled, and speech lasts 50 ms past its last loud
 * frame. The one rule for every split: the evaluation's truth
 * (tools/eval/lib.js, speechLabels) is the same steps. Keyword windows:
 * seconds to frame indices.
 */
#ifndef ES_LABELS_H
#define ES_LABELS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

enum { ES_LABELS_ERR_NOMEM = -1 };

typedef struct es_speech_label_config {
    int sample_rate_hz;      /* 16000 */
    int window_samples;      /* 400: as the front end's */
    int hop_samples;         /* 160 */
    float floor_percentile;  /* 0.05: the noise floor is this quantile of frame energies */
    float above_floor_db;    /* 12: speech is at least this far above the floor... */
    float below_peak_db;     /* 40: ...and within this of the loudest frame... */
    float absolute_min_dbfs; /* -65: ...and above this, whatever the clip */
    int hangover_frames;     /* 5: speech lasts this long after the energy drops */
    int max_gap_frames;      /* 8: non-speech runs between speech this short or shorter
                              * are speech: a 25 ms window fits 7-8 times in a 100 ms
                              * pause, 9 times in 110 ms (pauses over 100 ms are not
                              * speech, issue #33) */
    int min_speech_frames;   /* 6: shorter speech runs are clicks, not speech */
} es_speech_label_config;

void es_speech_label_config_default(es_speech_label_config *config);

/* Frames the front end makes from `samples` samples: one per hop once a full
 * window is in. */
int es_label_frame_count(const es_speech_label_config *config, size_t samples);

/* Writes es_label_frame_count() labels (1 speech, 0 not) to `labels`.
 * Returns the number of speech frames, or ES_LABELS_ERR_NOMEM (with `err`,
 * which may be NULL, filled). */
int es_speech_labels(const es_speech_label_config *config, const float *samples, size_t count,
                     uint8_t *labels, es_error *err);

/* The frames [*start_frame, *end_frame) whose windows overlap [start_s, end_s),
 * clamped to [0, frames]. */
void es_keyword_window_frames(const es_speech_label_config *config, double start_s, double end_s,
                              int frames, int *start_frame, int *end_frame);

/* Per-frame classes for a keyword model's per-frame loss, for a sequence of
 * `frames` frames whose keyword (class `keyword` > 0; <= 0: none) spans the
 * frames [kw_start, kw_end): the keyword on ES_KEYWORD_TARGET_FRAMES frames
 * starting ES_KEYWORD_DECISION_DELAY_FRAMES after its end, -1 (not scored)
 * from its start up to there, 0 (filler) everywhere else.
 *
 * Why after the word: only after its end can a causal model tell "left" from
 * "lefty", "yes" from "yesterday", "four" from "fourth". Asked to fire inside
 * the word, it is taught both answers for the same sound and hedges. The delay
 * gives the next word's onset time to show; the length outlasts the
 * detector's smoothing. */
enum { ES_KEYWORD_DECISION_DELAY_FRAMES = 4, ES_KEYWORD_TARGET_FRAMES = 30 };
void es_keyword_frame_classes(int frames, int keyword, int kw_start, int kw_end, int *classes);

#endif
