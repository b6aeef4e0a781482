/*
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
#ifndef ES_TRAIN_MODEL_H
#define ES_TRAIN_MODEL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "manifest.h"

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

#endif
