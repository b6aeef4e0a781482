/*
 * factory — the room models/train: the model factory, as library calls.
 *
 * `earshot train`, `earshot calibrate`, `earshot train-keyword` and
 * `earshot voices` are thin commands over this header (daemon/cli/); the
 * data recipe (models/recipe/, scripts/data.sh) makes the manifests it reads.
 * Its parts, in the order a model is made: the manifest (the one reader of
 * models/MANIFEST.md), the voices' split rule, training a model from a
 * manifest, calibrating its thresholds for a false-alarm budget, and a custom
 * keyword model from nothing but a phrase (all of the above, in one call).
 * Private to the room (its .c files and their unit tests): labels.h,
 * augment.h, synth.h, keyword_internal.h, train_model_internal.h.
 *
 * Library code: errors are returned (common/error.h), never printed;
 * progress and reports go to the caller's hooks.
 */
#ifndef ES_FACTORY_H
#define ES_FACTORY_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "detect.h"
#include "error.h"
#include "rnn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== manifest ==============================================================
 * manifest — the one reader of the training manifest (models/MANIFEST.md):
 * a UTF-8 TSV file, one clip a line, seven columns (path, split, kind,
 * label, start_s, end_s, voice), `#` comment lines and blank lines skipped.
 *
 * `earshot train`, `earshot calibrate` and `earshot train-keyword` (data/'s
 * manifest) all read it here, so a line means the same to each of them and
 * a bad line is refused with the same reason: "MANIFEST:LINE: why".
 * What each does with the lines (train's outputs and draws, calibrate's
 * valid split) is the caller's.
 *
 * Library code: errors are returned (common/error.h), never printed.
 */

/* Splits are by voice: a voice is in exactly one. */
typedef enum es_split {
    ES_SPLIT_TRAIN = 0,
    ES_SPLIT_VALID = 1, /* model selection and threshold calibration */
    ES_SPLIT_TEST = 2,  /* the reported figures only */
    ES_SPLIT_COUNT = 3
} es_split;

typedef enum es_clip_kind {
    ES_KIND_KEYWORD = 0,  /* a keyword spoken in the clip (label, start_s, end_s) */
    ES_KIND_SENTENCE = 1, /* keyword-free speech; label: its near-miss word, or "-" */
    ES_KIND_SPEECH = 2,   /* real keyword-free speech */
    ES_KIND_NOISE = 3,    /* no speech at all */
    ES_KIND_COUNT = 4
} es_clip_kind;

/* "train", "valid", "test" and "keyword", "sentence", "speech", "noise". */
extern const char *const es_split_names[ES_SPLIT_COUNT];
extern const char *const es_kind_names[ES_KIND_COUNT];

/* One line of a manifest. The three strings share one allocation (path's). */
typedef struct es_manifest_clip {
    char *path;        /* resolved against the manifest's folder (absolute ones kept) */
    const char *label; /* as written: a keyword, a near-miss word or "-" */
    const char *voice; /* as written, never empty */
    es_split split;
    es_clip_kind kind;
    double start_s, end_s; /* keyword clips: 0 <= start_s < end_s; else 0 */
    int recorded;          /* a recorded person (es_voice_is_recorded) */
    long line;             /* its line number in the file, for messages */
} es_manifest_clip;

typedef struct es_manifest {
    es_manifest_clip *clips; /* in the file's order */
    int count, capacity;
} es_manifest;

/* Errors of es_manifest_read. */
enum {
    ES_MANIFEST_OK = 0,
    ES_MANIFEST_ERR_IO = -1,     /* cannot be opened: "PATH: strerror" */
    ES_MANIFEST_ERR_FORMAT = -2, /* a bad line: "PATH:LINE: why" */
    ES_MANIFEST_ERR_NOMEM = -3   /* "PATH: out of memory" */
};

/* Reads the whole manifest at `path` into *out (emptied first); on a bad
 * line stops there and says why. *out is to be freed with
 * es_manifest_free either way. */
int es_manifest_read(const char *path, es_manifest *out, es_error *err);
void es_manifest_free(es_manifest *manifest);

/* Whether a voice tag is a recorded person's, as tools/eval counts them
 * (lib.js isRecorded): anything but "espeak:", "flite:" and "noise:". */
int es_voice_is_recorded(const char *voice);

/* ==== voices ================================================================
 * voices — which split (train, valid or test) a synthetic voice belongs to.
 *
 * A voice is in exactly one split (models/MANIFEST.md), and the split is a
 * function of the voice's name alone, so that the data recipe
 * (models/recipe/plan.pl, through `earshot voices --split`) and
 * `earshot train-keyword` agree without sharing a table:
 *
 * - espeak-ng voices named ACCENT+VARIANT go by their variant (everything
 *   after the first '+'): FNV-1a (32-bit) of the variant's bytes, mod 10:
 *   0 valid, 1 test, anything else train. Splitting by variant rather than
 *   by voice means a held-out variant is never heard in training with any
 *   accent, so valid and test measure voices the model has not met.
 * - plain accents ("en-us": no variant) and every other engine's voices
 *   (flite's "kal", "slt") train: there are too few of them to hold out.
 *
 * The rule is data: changing it moves voices between splits and so changes
 * every model trained afterwards (tests/models/train/test_voices.c pins it).
 */

/* The split of VOICE of ENGINE ("espeak", "flite"; case matters). */
es_split es_voice_split(const char *engine, const char *voice);

/* ==== train_model ===========================================================
 * train_model — `earshot train` as a library call: a speech (VAD) or keyword
 * (KWS) model trained from a data manifest (models/MANIFEST.md).
 *
 * Every epoch draws fresh training sequences: clips picked at random, framed
 * by lead-in and tail silence (KWS: keyword-free speech may precede a keyword,
 * filler sequences join several clips, and some are noise or music alone),
 * most after a warm-up of other speech that only sets the front end's running
 * mean (its frames are dropped, as a live stream has heard speech before),
 * sped up or slowed down, labelled from the clean result, then reverberated,
 * band-limited, mixed with noise, gain-changed, turned into features by the
 * very front end inference uses, and finally warped and masked. Builder
 * threads make batches ahead of the trainer, each from a generator seeded by
 * its number. KWS with hard negatives: every few epochs the model in
 * training picks the keyword-free clips it finds hardest, which then lead a
 * share of the keyword-free sequences. Validation sequences are drawn the
 * same way once, from a fixed seed, from the valid split's voices and noises.
 * The test split is never read.
 *
 * The stages, one file each: train_clips.c (the manifest's clips, audio and
 * noise pools), train_sequence.c (one sequence), train_batches.c (batches
 * built ahead on threads, the validation set), train_hard.c (hard
 * negatives), train_measure.c (validation figures, checkpoints, progress),
 * train_model.c (the model and the run). train_model_internal.h is their
 * shared state.
 *
 * Library code: es_train_model returns errors (common/error.h) and tells its
 * progress through es_train_hooks; the command line prints both.
 */

typedef enum es_train_task { ES_TRAIN_VAD = 0, ES_TRAIN_KWS = 1 } es_train_task;

/* Every setting of a run: `earshot train`'s options one to one. Fields that
 * say "0: the task's default" are resolved by es_train_model. */
typedef struct es_train_params {
    const char *manifest_path;  /* required */
    const char *output_path;    /* required: where the model is written */
    es_train_task task;         /* ES_TRAIN_VAD */
    int epochs;                 /* at most; 0: 30, or no limit with `minutes` */
    float minutes;              /* stop after about this long; 0: no limit */
    uint64_t seed;              /* of every random choice (1) */
    int threads;                /* gradient threads, and as many batch builders (1) */
    int hidden;                 /* recurrent units; 0: --init's, else VAD 48, KWS 128 */
    int conv;                   /* CONV1D channels before the GRUs; -1: VAD 32, KWS 0 */
    int stack;                  /* frames a STACK layer joins into one step; 1: none */
    int small;                  /* a tiny model and epoch, for smoke tests */
    int kws_frame_targets;      /* KWS loss: 1 per-frame targets (default), 0 max-pooling */
    int warmup_epochs;          /* KWS max-pool: epochs of frame targets first (2) */
    int manifest_keywords_only; /* KWS outputs: filler + the manifest's keywords only */
    int clips_per_epoch;        /* training sequences per epoch; 0: 2000 */
    int valid_clips;            /* validation sequences (400) */
    int batch_size;             /* sequences per batch (32), at most ES_TRAIN_MAX_BATCH */
    float learning_rate;        /* Adam's step size (0.002) */
    int lr_decay_sequences;     /* 5 % less step size per this many sequences; 0: KWS
                                   10000, VAD 4000 */
    float keyword_weight;       /* KWS: a keyword frame's weight; 0: KWS 3, VAD 1 */
    int patience;               /* epochs without validation progress before stopping (10) */
    float min_snr_db;           /* the noisiest mix augmentation makes (-5) */
    float envelope_probability; /* share of clips smoothed to their spectral envelope (0) */
    float negative_peak_weight; /* KWS: extra weight of each negative's worst frame (0) */
    int augment_ramp_epochs;    /* augmentation grows to full over this many; -1: KWS 30,
                                   VAD 0 */
    int hard_negative_epochs;   /* KWS: epochs between hard-negative rounds; 0: none */
    float average_decay;        /* per-step decay of a running weight average; 0: off */
    int checkpoint_epochs;      /* every N epochs the validated model is saved too; 0: never */
    float recorded_weight;      /* a recorded voice's clip is drawn this many times as
                                   often (1) */
    const char *init_path;      /* a model whose matching layers the new one starts from */
    int freeze;                 /* the first this many layers (copied from init_path) are
                                   not trained: a frozen encoder under a new head (0) */
    /* When it becomes nonzero (a signal handler may set it), training ends
     * at the next batch and the best model so far is written; NULL: never. */
    const volatile sig_atomic_t *stop;
} es_train_params;

#define ES_TRAIN_MAX_BATCH 256

void es_train_params_default(es_train_params *params);

/* The manifest as the run sees it (es_train_hooks.data). */
typedef struct es_train_data_summary {
    const es_train_params *params; /* resolved */
    int clips;
    int kind_count[ES_SPLIT_COUNT][ES_KIND_COUNT];
    int recorded[ES_KIND_COUNT]; /* of the train split's clips, recorded voices' */
} es_train_data_summary;

/* An epoch's end (es_train_hooks.epoch), or a batch of one (.batch: only
 * epoch, batch, batches and train_loss are set). Epochs count from 1
 * across the loss phases of a run. */
typedef struct es_train_epoch_report {
    int epoch, batch, batches;
    float train_loss, valid_loss, valid_accuracy, valid_metric, best_metric;
    int best_epoch;
    float learning_rate;
    double elapsed_s, eta_s; /* eta_s < 0: unknown */
} es_train_epoch_report;

/* A hard-negative round (es_train_hooks.hard_negatives). */
typedef struct es_train_hard_report {
    int above_half, scored, kept;
    float hardest;            /* the hardest kept clip's peak; 0 when none is kept */
    const char *hardest_path; /* NULL when none is kept */
    double seconds;
} es_train_hard_report;

/* Validation figures at the end (threshold 0.5 unless said). */
typedef struct es_train_kws_figures {
    float recall;       /* keyword sequences whose keyword peaks above 0.5 in its window */
    float false_alarms; /* filler sequences where any keyword goes above 0.5 */
    /* The same with the peak posteriors themselves instead of decisions: these
     * move before any decision flips, so early stopping sees early progress. */
    float mean_keyword_peak;
    float mean_filler_peak;
    /* Recall at the threshold that 5 % of filler sequences exceed: free of
     * any fixed threshold, and it rises whenever the two sides separate. */
    float recall_at_5_percent;
} es_train_kws_figures;

typedef struct es_train_vad_figures {
    float accuracy;      /* frames decided right at 0.5 */
    float speech_recall; /* speech frames called speech */
    float false_speech;  /* non-speech frames called speech */
} es_train_vad_figures;

/* How the run ended, before the model is written (es_train_hooks.finished). */
typedef struct es_train_outcome {
    const es_train_params *params; /* resolved */
    int epochs;                    /* run in all */
    int interrupted;               /* params->stop was set */
    int stopped_for_time;          /* params->minutes ran out */
    int validated;                 /* 0: no valid split, no figures */
    es_train_kws_figures kws;      /* ES_TRAIN_KWS */
    es_train_vad_figures vad;      /* ES_TRAIN_VAD */
} es_train_outcome;

/* What a run tells as it goes, in this order; every hook may be NULL. */
typedef struct es_train_hooks {
    void *user; /* passed to each */
    void (*data)(const es_train_data_summary *summary, void *user);
    /* --init: `copied` of the new model's `layers` layers come from it. */
    void (*started_from)(const char *init_path, int copied, int layers, void *user);
    void (*sets)(int valid_sequences, int train_sequences_per_epoch, void *user);
    void (*model)(size_t parameters, int outputs, void *user);
    /* Called around the epochs (running 1, then 0): a caller that answers
     * SIGINT by setting params->stop may install its handler for them. */
    void (*training)(int running, void *user);
    /* KWS max-pooling runs two loss phases: each is announced. */
    void (*phase)(int maxpool, int max_epochs, void *user);
    void (*batch)(const es_train_epoch_report *report, void *user);
    void (*epoch)(const es_train_epoch_report *report, void *user);
    void (*hard_negatives)(const es_train_hard_report *report, void *user);
    /* A checkpoint could not be written; training goes on. */
    void (*checkpoint_failed)(const es_error *err, void *user);
    void (*finished)(const es_train_outcome *outcome, void *user);
    void (*saved)(const char *path, void *user);
} es_train_hooks;

/* Errors of es_train_model. The reason of a _DATA or _OUTPUT error starts
 * with the file it is about (the manifest, a clip, the model). */
enum {
    ES_TRAIN_OK = 0,
    ES_TRAIN_ERR_DATA = -1,   /* the manifest or a clip it names */
    ES_TRAIN_ERR_MODEL = -2,  /* the model, --init or the trainer */
    ES_TRAIN_ERR_NOMEM = -3,  /* out of memory */
    ES_TRAIN_ERR_OUTPUT = -4, /* the model could not be written */
    ES_TRAIN_ERR_ARG = -5,    /* a setting out of range, or a path missing */
};

/* Trains as `params` says (copied and resolved: see es_train_params), and
 * writes the model to params->output_path: also when params->stop ends the
 * run early (the best model so far). `hooks` may be NULL. Returns
 * ES_TRAIN_OK or an ES_TRAIN_ERR_* code with a reason in `err`. */
int es_train_model(const es_train_params *params, const es_train_hooks *hooks, es_error *err);

/* ==== calibrate =============================================================
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
    int recorded;   /* a recorded person's clip (es_voice_is_recorded), not a synthetic
                       voice's: es_cal_counts tallies its hits apart */
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
    int recorded;       /* 1 when its clip is a recorded person's (es_cal_item.recorded) */
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
    int positives_recorded, hits_recorded; /* the positives and hits of recorded people */
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
    /* A recorded person's hit counts this many times a synthetic voice's when moves
     * are weighed (0 or 1: the same). Synthetic voices outnumber the recorded people
     * in a valid split; a model's recall on real people is what users get. */
    float recorded_weight;
} es_cal_budget;

/* A tail is fitted to this many of a keyword's highest keyword-free peaks ... */
#define ES_CAL_TAIL_PEAKS 20
/* ... when it has at least this many above the grid's foot (else the others' shape). */
#define ES_CAL_TAIL_MIN_FIT 5

typedef struct es_cal_result {
    float thresholds[ES_KWS_MAX_KEYWORDS]; /* per column */
    int smooth_ms;                         /* the smoothing they hold for; 0: the default */
    es_cal_counts counts[ES_KWS_MAX_KEYWORDS];
    int hits, positives, false_alarms;     /* totals */
    int hits_recorded, positives_recorded; /* of them, recorded people's */
    int near_accepted;                     /* near misses accepted, summed over keywords */
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
 * by the manifest reader, above): keyword clips whose label is one of the model's keyword
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

/* ==== keyword ===============================================================
 * keyword — `earshot train-keyword` as a library call: a custom keyword
 * model from nothing but the phrase.
 *
 *   1. voices (keyword_voices.c): every espeak-ng English accent with every
 *      variant, and flite's kal, kal16 and slt; split train/valid/test by
 *      variant exactly as scripts/data.sh splits them (models/recipe/plan.pl),
 *      so held-out voices are never heard in training, here or in data/; and
 *      on request, for training only, variants made at random;
 *   2. render (keyword_confusables.c, keyword_clips.c): each voice speaks the
 *      phrase (positives) and confusable phrases derived from its phonemes
 *      (`espeak-ng -q -x`): the phrase's words alone and beside other words,
 *      its first and last parts, and single-phoneme substitutions and
 *      deletions, spoken as phoneme input (espeak-ng's own voices in process,
 *      synth.h; flite and the made variants through their commands); training
 *      voices say only the words and parts;
 *   3. train: a manifest (models/MANIFEST.md) of those clips plus the
 *      keyword-free sentences, short words, real speech and noise of data/
 *      (scripts/data.sh) when it exists, trained by es_train_model
 *      (es_train_model, above) with the phrase as the only keyword;
 *   4. calibrate (keyword_card.c): the model runs, through the very pipeline
 *      `earshot file` uses, over a stream of held-out (valid-split) negatives
 *      with valid positives among them; the threshold is the lowest that keeps
 *      false alarms at or under the target rate (es_cal_*, above);
 *   5. test: the same over test-split voices and negatives: recall on voices
 *      never used in training or calibration, false alarms per hour, and the
 *      share of confusables accepted, in all and by how they were made;
 *   6. write the model with its threshold and a model card, MODEL.md beside it.
 *
 * Library code: errors are returned (common/error.h); progress is told
 * through es_keyword_hooks. keyword.c runs the steps.
 */

#define ES_KEYWORD_MAX_PHRASE (ES_MAX_LABEL - 1) /* bytes */
#define ES_KEYWORD_MAX_WORDS 5
#define ES_KEYWORD_MAX_WORKERS 16
#define ES_KEYWORD_MAX_MADE_VOICES 300

typedef struct es_keyword_params {
    char phrase[ES_KEYWORD_MAX_PHRASE + 1]; /* es_keyword_normalise_phrase's */
    const char *output_path;                /* required; the card goes beside it */
    const char *data_dir;                   /* scripts/data.sh output, or NULL */
    const char *work_dir;                   /* NULL: a temporary folder, removed at the end */
    float minutes;                          /* the whole run's budget (15) */
    float max_alarms_per_hour;              /* false alarms per hour allowed (0.5) */
    int seed;                               /* (1) */
    int threads;                            /* synthesiser processes, trainer threads (2) */
    int hidden;                             /* GRU units (64) */
    int made_voices;                        /* espeak-ng variants made at random, training only */
    const char *init_path; /* a keyword model whose GRUs training starts from, or NULL */
    int freeze;            /* the first this many of init_path's layers are not trained (0) */
    int small;             /* a few voices, a tiny model, a fixed 40 short epochs */
    /* When it becomes nonzero (a signal handler may set it) the run stops
     * at the next clip or step (training writes its best model so far
     * first); es_train_keyword then returns ES_KEYWORD_ERR_STOPPED. */
    const volatile sig_atomic_t *stop;
} es_keyword_params;

void es_keyword_params_default(es_keyword_params *params);

/* Lower-cases and checks a phrase into params->phrase: 1 to 5 English words
 * of letters (apostrophes and hyphens inside words), at most
 * ES_KEYWORD_MAX_PHRASE characters, not the filler output's name. */
int es_keyword_normalise_phrase(const char *text, char *phrase, es_error *err);

/* MODEL.esm -> MODEL.md: where the model card is written. */
void es_keyword_card_path(const char *model_path, char *out, size_t size);

/* The figures of the machine-readable summary (es_keyword_hooks.result). */
typedef struct es_keyword_result {
    const char *phrase;
    double minutes, recall, false_alarms_per_hour, negative_hours;
    float threshold;
    int positives;
    double confusables_accepted; /* share */
    int confusables, smooth_ms;
} es_keyword_result;

typedef struct es_keyword_hooks {
    void *user;
    /* A line of progress (without the command's name). */
    void (*note)(const char *text, void *user);
    /* A clip that espeak-ng could not make: called in the child process
     * that made it, which then exits. */
    void (*render_failed)(const char *why, void *user);
    const es_train_hooks *train; /* the training step's (may be NULL) */
    void (*result)(const es_keyword_result *result, void *user);
} es_keyword_hooks;

/* Errors of es_train_keyword: its own below, or the training step's
 * ES_TRAIN_ERR_* (above) as es_train_model returned them. */
enum {
    ES_KEYWORD_OK = 0,
    ES_KEYWORD_ERR_FAILED = -101,  /* the run failed (the reason says why) */
    ES_KEYWORD_ERR_USAGE = -102,   /* the phrase or --data cannot be used */
    ES_KEYWORD_ERR_OUTPUT = -103,  /* the model cannot be written (the reason names it) */
    ES_KEYWORD_ERR_STOPPED = -104, /* params->stop was set */
};

int es_train_keyword(const es_keyword_params *params, const es_keyword_hooks *hooks, es_error *err);

#ifdef __cplusplus
}
#endif
#endif
