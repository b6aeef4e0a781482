/*
 * calibrate — per-keyword detection thresholds for a false-alarm budget,
 * measured on held-out audio through the very pipeline `earshot file` runs.
 *
 * The story, as `earshot calibrate` and `earshot train-keyword` tell it:
 *
 *   1. A calibration stream (es_cal_run_stream): held-out clips in random
 *      order, 0.3-1 s of near-silence between them, a faint noise floor, and
 *      a third of the clips mixed with noise at 5-20 dB SNR, pushed through
 *      es_pipeline with the built-in VAD and the keyword model. Every frame's
 *      keyword posteriors are logged (one column per keyword output, filler
 *      outputs excluded: es_pipeline_keyword_label order). A clip that says a
 *      keyword records a window: from where the keyword starts to half a
 *      second after it ends (ES_CAL_AFTER_S). A near miss (a clip made to
 *      sound like a keyword without saying it: train-keyword's confusables,
 *      a manifest's labelled sentence clips)
 *      records a near-miss window over the whole clip and the same half second.
 *   2. Detection replayed offline (es_cal_detect): for keyword k at
 *      threshold T, the detector `earshot file` runs by default
 *      (es_kws_config_default: smoothing, refractory period; or another
 *      smoothing, which the model then carries) steps over column k alone. A hit is an event of k
 * inside a window of k (each window counts once); a near miss is accepted when an event of k falls
 *      inside its window; a false alarm is an event outside every window,
 *      whichever keyword the windows belong to (an event of k inside another
 *      keyword's window is neither). Rates per hour are over the stream's
 *      seconds outside all windows (es_cal_stream.negative_seconds): near
 *      misses are judged per clip, not per hour, as they are far denser in
 *      the stream than in any real conversation.
 *   3. Thresholds (es_cal_calibrate) on a grid (0.05..0.95 by 0.01, then
 *      0.96 .. 0.999) so that the SUM of false alarms over keywords stays
 *      within the budget (and, if asked, the sum of near misses accepted
 *      within its own). Greedy: every keyword starts at the top of the
 *      grid; a keyword's false alarms at T are taken as the most seen at any
 *      grid threshold >= T (so lowering never looks cheaper than it was on
 *      the way down). Each step lowers one keyword's threshold to a grid
 *      point that keeps the total within budget, choosing the move with the
 *      most extra hits per extra false alarm (moves that add no false alarm
 *      first, the lowest such threshold). When no move gains hits, moves that
 *      only spend budget are taken, cheapest first, until none fits: with one
 *      keyword the result is exactly "the lowest threshold at and above
 *      which the false alarms stay within the budget".
 *   4. Unseen voices (es_cal_budget.extrapolate_tail): thresholds chosen
 *      just above the highest keyword-free peaks a stream happened to hold
 *      fire more often on voices it did not hold. Calibrated on half of the
 *      valid voices, the other half drew 2-4x the budget (models/kws.md). So
 *      a keyword's false alarms are not taken as the few seen: its curve is
 *      measured down to ES_CAL_TAIL_PEAKS of them, their excess over that
 *      level (in logit space) is fitted as an exponential tail, and a
 *      threshold costs at least the alarms the tail expects above it. The
 *      budget then holds for the expected count, and no move is free.
 *
 *   5. The command (es_cal_job, at the end): a manifest's valid split read,
 *      streamed, calibrated and written into a copy of the model.
 *
 * Library code: errors are returned with a reason, never printed.
 */
#ifndef ES_CALIBRATE_H
#define ES_CALIBRATE_H

#include <stddef.h>
#include <stdint.h>

#include "detect.h"
#include "error.h"
#include "manifest.h"
#include "rnn.h"

#define ES_CAL_SAMPLE_RATE_HZ 16000
/* A positive's window reaches this far past the end of its keyword. */
#define ES_CAL_AFTER_S 0.5
/* Clips are read up to this long; noises up to ES_CAL_MAX_NOISE_S. */
#define ES_CAL_MAX_CLIP_S 30
#define ES_CAL_MAX_NOISE_S 60

/* One clip of the stream: 16 kHz mono (other clips are skipped and counted). */
typedef struct es_cal_item {
    const char *path;
    int keyword;    /* column of the keyword it says, or -1: keyword-free */
    double start_s; /* where in the clip the keyword starts ... */
    double end_s;   /* ... and ends; end_s <= 0: the whole clip */
    float speed;    /* played this many times faster (tempo and pitch); 0 or 1: as
                       recorded. Another realisation of the same voice and words:
                       a few hours of held-out speech show few of the rare peaks a
                       false-alarm budget is about, replays at other speeds more */
    int near_miss;  /* 0, or keyword-free but made to sound like a keyword (keyword -1):
                       1 + the caller's kind of near miss (< ES_CAL_NEAR_MISS_KINDS),
                       which es_cal_counts tallies apart */
} es_cal_item;

/* Noise mixed into a third of the clips. */
typedef struct es_cal_noises {
    float **samples;
    size_t *counts;
    int count, capacity;
} es_cal_noises;

/* Reads a noise clip (16 kHz mono, at least half a second, up to
 * ES_CAL_MAX_NOISE_S): 1 when added, 0 when unusable (skipped), -1 out of memory. */
int es_cal_noises_add(es_cal_noises *noises, const char *path);
void es_cal_noises_free(es_cal_noises *noises);

/* The keyword of a near miss's window. */
#define ES_CAL_NEAR_MISS (-2)
#define ES_CAL_NEAR_MISS_KINDS 4

typedef struct es_cal_window {
    int64_t start, end; /* 16 kHz samples of stream time, end exclusive */
    int keyword;        /* column, or ES_CAL_NEAR_MISS */
    int kind;           /* a near miss's kind (its item's near_miss - 1); else 0 */
    int in_noise;       /* 1 when its clip was one of the third mixed with noise */
} es_cal_window;

typedef struct es_cal_stream {
    int keyword_count;
    char labels[ES_KWS_MAX_KEYWORDS][ES_MAX_LABEL];
    int outputs[ES_KWS_MAX_KEYWORDS]; /* the model output of each column (-1: unknown) */
    float *posteriors;                /* frames x keyword_count, frame t at t x 10 ms */
    size_t frames, capacity;
    es_cal_window *windows; /* in order of start */
    int window_count, window_capacity;
    int64_t *reach; /* reach[i]: the latest end of windows[0..i] */
    int positives[ES_KWS_MAX_KEYWORDS];
    int near_misses;         /* near-miss windows */
    double seconds;          /* the whole stream */
    double negative_seconds; /* outside every window */
    int clips, skipped;      /* clips streamed; clips that could not be read */
} es_cal_stream;

/* The keyword columns of a model (outputs whose label is a keyword, in
 * order): fills labels/outputs; keyword_count 0 when it has none. */
void es_cal_stream_init(es_cal_stream *s, const es_model *model);
/* Building a stream by hand (tests, other sources): columns named `labels`. */
int es_cal_stream_init_labels(es_cal_stream *s, int count, const char *const *labels);
/* Appends one frame's keyword_count posteriors; -1 out of memory. */
int es_cal_stream_add_frame(es_cal_stream *s, const float *posteriors);
/* Records a positive's window, or a near miss's (keyword ES_CAL_NEAR_MISS);
 * starts must not decrease. -1 on a bad argument or out of memory. */
int es_cal_stream_add_window(es_cal_stream *s, int64_t start, int64_t end, int keyword);
/* Closes the stream at `seconds`: negative_seconds, reach. */
void es_cal_stream_finish(es_cal_stream *s, double seconds);
void es_cal_stream_free(es_cal_stream *s);

/* Grows items[0..*count) to `passes` copies of itself: the first as it is,
 * the others each clip at its own random speed of 0.9-1.1 (from `seed`), so
 * the stream shows more of the rare keyword-free peaks a per-hour false-alarm
 * budget is about. Returns 0, or -1 out of memory (*items unchanged). */
#define ES_CAL_REPLAY_MIN_SPEED 0.9
#define ES_CAL_REPLAY_MAX_SPEED 1.1
int es_cal_items_replay(es_cal_item **items, int *count, int passes, uint64_t seed);

/* Errors of the calls below that take an es_error. */
enum {
    ES_CAL_OK = 0,
    ES_CAL_ERR_NOMEM = -1,  /* out of memory */
    ES_CAL_ERR_MODEL = -2,  /* the model cannot be loaded or run */
    ES_CAL_ERR_DATA = -3,   /* the manifest or a clip (the reason names it) */
    ES_CAL_ERR_OUTPUT = -4, /* the calibrated model cannot be written */
};

/* Step 1: the stream of `items` (shuffled in place by `seed`) through the
 * pipeline with the built-in VAD and `model`. Item keywords are columns of
 * es_cal_stream_init(model). `noises` may be NULL; `progress` (may be NULL)
 * is called with each clip's seconds once it is analysed. Returns 0, or an
 * ES_CAL_ERR_* code with a reason in `err`. */
typedef void (*es_cal_progress_fn)(double done_s, void *user);
int es_cal_run_stream(const es_model *model, es_cal_item *items, int count,
                      const es_cal_noises *noises, uint64_t seed, es_cal_progress_fn progress,
                      void *progress_user, es_cal_stream *out, es_error *err);

typedef struct es_cal_counts {
    int positives;                         /* windows of the keyword */
    int hits;                              /* of them, with an event of the keyword inside */
    int false_alarms;                      /* events of the keyword outside every window */
    int near_misses;                       /* near-miss windows */
    int accepted;                          /* of them, with an event of the keyword inside */
    int positives_in_noise, hits_in_noise; /* the positives and hits mixed with noise */
    /* The same per kind of near miss */
    int near_misses_of_kind[ES_CAL_NEAR_MISS_KINDS];
    int accepted_of_kind[ES_CAL_NEAR_MISS_KINDS];
} es_cal_counts;

/* Step 2: keyword column `keyword` at `threshold`, its posterior smoothed
 * over `smooth_ms` (0: the detector's default); -1 on a bad argument or out of
 * memory. */
int es_cal_detect(const es_cal_stream *s, int keyword, float threshold, int smooth_ms,
                  es_cal_counts *out);

/* count per hour of `seconds` (NAN when seconds <= 0). */
double es_cal_per_hour(int count, double seconds);

/* What the thresholds may cost: false alarms per hour of keyword-free audio,
 * all keywords together; the share of the near misses accepted (1: no limit);
 * and whether false alarms are counted as seen or as the tail expects (step 4). */
typedef struct es_cal_budget {
    float max_per_hour;
    float max_near_miss_share;
    int extrapolate_tail;
} es_cal_budget;

/* A tail is fitted to this many of a keyword's highest keyword-free peaks ... */
#define ES_CAL_TAIL_PEAKS 20
/* ... when it has at least this many above the grid's foot (else the others' shape). */
#define ES_CAL_TAIL_MIN_FIT 5

typedef struct es_cal_result {
    float thresholds[ES_KWS_MAX_KEYWORDS]; /* per column */
    int smooth_ms;                         /* the smoothing they hold for; 0: the default */
    es_cal_counts counts[ES_KWS_MAX_KEYWORDS];
    int hits, positives, false_alarms; /* totals */
    int near_accepted;                 /* near misses accepted, summed over keywords */
    int allowed;      /* the most false alarms in all the budget allows on this stream */
    int near_allowed; /* the most near misses accepted in all; -1: no limit */
    int met; /* 1 when the totals are within the budgets (0: even the top of the grid exceeds
                them; the thresholds are then the top of the grid) */
    double expected_alarms; /* with extrapolate_tail: the false alarms the tails expect at
                               the thresholds, on a stream as long; else NAN */
} es_cal_result;

/* Steps 3 and 4: thresholds within `budget`, with every posterior smoothed
 * over `smooth_ms` (0: the detector's default). With a near-miss limit, moves
 * are ranked by hits per share of both budgets they spend. Returns 0, or -1
 * out of memory. */
int es_cal_calibrate(const es_cal_stream *s, const es_cal_budget *budget, int smooth_ms,
                     es_cal_result *out);

/* Step 3 with the smoothing chosen too: es_cal_calibrate at each of
 * `smoothing[0..count)` ms, keeping the one that finds the most positives
 * within the budget (of equals, the first: list the preferred first). A
 * keyword said over half a second is told from a brief keyword-like peak
 * better by a longer mean; a short word is not. `trials` (may be NULL) gets
 * count results, one per smoothing. */
int es_cal_calibrate_smoothing(const es_cal_stream *s, const es_cal_budget *budget,
                               const int *smoothing, int count, es_cal_result *out,
                               es_cal_result *trials);

/* The counts of a stream at given per-column thresholds and smoothing (0: the
 * detector's default): how a calibrated model does on other held-out audio.
 * The budget fields of `out` stay 0 (near_allowed -1, met 1). */
int es_cal_measure(const es_cal_stream *s, const float *thresholds, int smooth_ms,
                   es_cal_result *out);

/* Stores `result`'s per-column thresholds in `model` (the model
 * es_cal_stream_init was given): each keyword output gets its column's,
 * filler outputs 0; and, when result->smooth_ms is not 0, that smoothing for
 * every keyword output (es_model_set_smoothing). */
int es_cal_apply(es_model *model, const es_cal_stream *s, const es_cal_result *result);

/* ---- `earshot calibrate` as library calls (calibrate_job.c) ---------------------------
 *
 * A model calibrated on a manifest's valid split (models/MANIFEST.md, read
 * by manifest.h): keyword clips whose label is one of the model's keyword
 * outputs are positives (their window: start_s to end_s + ES_CAL_AFTER_S);
 * sentence and speech clips, and keyword clips of words the model does not
 * know, are keyword-free; noise clips are too (alone, as a quiet room or a
 * radio has them), and are mixed into a third of the clips. A job goes
 * through its steps in order, and the caller tells what each found:
 * es_cal_job_load, _read, _prepare, _stream, _choose, then _write (or not,
 * for a check of the model's own thresholds). */

typedef struct es_cal_params {
    const char *model_path;    /* required */
    const char *manifest_path; /* required; only its valid split is used */
    es_cal_budget budget;      /* default: 0.5 false alarms per hour, no near-miss limit */
    float hours;               /* at most this much keyword-free audio (a seeded subset); 0: all */
    int passes;                /* times every clip is streamed; after the first at another speed */
    int seed;
    const char *const *excluded_voices; /* voice prefixes whose clips are left out */
    int excluded_count;
    const int *smoothing; /* detector smoothings tried (ms); none: the detector's default */
    int smoothing_count;
    int near_misses_per_hour; /* near-miss clips as keyword-free speech (the earlier way) */
    int check;                /* measure the model's own thresholds, choose none */
} es_cal_params;

void es_cal_params_default(es_cal_params *params);

typedef struct es_cal_clips {
    es_cal_item *items;
    double *seconds;
    int count, capacity;
} es_cal_clips;

typedef struct es_cal_job {
    es_model *model;
    es_cal_stream columns;             /* the model's keyword columns (es_cal_stream_init) */
    es_manifest manifest;              /* owns every clip's path */
    es_cal_clips positives, negatives; /* negatives: near misses among them */
    const char **noise_paths;
    int noise_count;
    int unusable;                  /* clips not 16 kHz mono: left out */
    double positive_s, negative_s; /* negative_s: after --hours */
    int near_misses;               /* of the negatives */
    es_cal_noises noises;
    es_cal_item *items; /* positives and negatives, `passes` times */
    int item_count;
    double audio_s; /* all the stream's clips, every pass */
    es_cal_stream stream;
    es_cal_result result;
} es_cal_job;

/* Loads the keyword model; it must have keyword outputs. */
int es_cal_job_load(es_cal_job *job, const es_cal_params *params, es_error *err);
/* Reads the valid split's clips (each is opened for its length). */
int es_cal_job_read(es_cal_job *job, const es_cal_params *params, es_error *err);
/* Keeps --hours of the keyword-free clips, reads the noises and lines the
 * clips up for the passes; there must be keyword-free clips. */
int es_cal_job_prepare(es_cal_job *job, const es_cal_params *params, es_error *err);
/* Streams the clips through the pipeline (step 1). */
int es_cal_job_stream(es_cal_job *job, const es_cal_params *params, es_cal_progress_fn progress,
                      void *progress_user, es_error *err);
/* Steps 2-4, or with params->check the model's own thresholds measured. */
int es_cal_job_choose(es_cal_job *job, const es_cal_params *params, es_error *err);
/* The model with the chosen thresholds, written to `path`. */
int es_cal_job_write(es_cal_job *job, const char *path, es_error *err);
void es_cal_job_free(es_cal_job *job);

#endif
