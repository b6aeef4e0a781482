/*
 * The trainer's shared state (factory.h tells the story): what the
 * stage files of es_train_model hand each other. Private to models/train/.
 */
#ifndef ES_TRAIN_MODEL_INTERNAL_H
#define ES_TRAIN_MODEL_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "augment.h"
#include "dsp.h"
#include "labels.h"
#include "factory.h"
#include "rnn.h"
#include "train.h"

#define SAMPLE_RATE_HZ 16000
#define MAX_CLIP_S 30.0
#define MIN_NOISE_SAMPLES (SAMPLE_RATE_HZ / 2)
#define MAX_BUILDERS 8

/* ---- clips (train_clips.c) ------------------------------------------------------ */

/* A manifest line as the trainer draws it (its strings are the manifest's). */
typedef struct clip {
    const char *path; /* as the manifest names it, resolved against its folder */
    int split, kind;
    int output; /* KWS output index of the keyword; 0 for everything else */
    double start_s, end_s;
    int recorded; /* a recorded voice, not a synthesiser's */
} clip;

typedef struct train_clips {
    es_manifest lines; /* as read (factory.h) */
    clip *clips;
    int count;
    const char *labels[ES_MAX_OUTPUTS]; /* KWS outputs; [0] = "filler" */
    int label_count;
    int *by_split_kind[ES_SPLIT_COUNT][ES_KIND_COUNT];
    int kind_count[ES_SPLIT_COUNT][ES_KIND_COUNT];
    /* With a recorded weight: the running sum of the draw weights of
     * by_split_kind's clips, for drawing one in proportion to its weight;
     * NULL when every clip weighs the same (draws then stay those of the
     * shipped recipes, bit for bit). */
    double *cumulative_weight[ES_SPLIT_COUNT][ES_KIND_COUNT];
} train_clips;

/* Reads the manifest and indexes its clips by split and kind; the KWS
 * outputs are filler, the 20 standard keywords unless
 * params->manifest_keywords_only, then the manifest's others. */
int train_clips_read(const es_train_params *params, train_clips *out, es_error *err);
void train_clips_free(train_clips *clips);
void train_clips_summary(const es_train_params *params, const train_clips *clips,
                         es_train_data_summary *out);

/* A whole clip as 16 kHz mono (at most MAX_CLIP_S). */
int load_clip(const char *path, float **out, size_t *out_count, es_error *err);

/* The noises of one split, in memory: mixed into every sequence of that split. */
typedef struct noise_pool {
    float **samples;
    size_t *counts;
    int count;
} noise_pool;

int noise_pool_load(const train_clips *clips, int split, noise_pool *pool, es_error *err);
void noise_pool_free(noise_pool *pool);

/* ---- sequences (train_sequence.c) ----------------------------------------------- */

typedef struct sample_buffer {
    float *data;
    size_t count, capacity;
} sample_buffer;

/* Appends `count` samples (NULL: silence). */
int buffer_append(sample_buffer *b, const float *samples, size_t count);

typedef struct built_sequence {
    es_sequence seq;
    float *inputs;
    float *targets;     /* VAD */
    int *class_targets; /* KWS */
} built_sequence;

void built_free(built_sequence *b);

/* What building a sequence works in: each batch builder has its own. */
typedef struct sequence_builder {
    es_frontend *frontend;
    sample_buffer clean;
    es_augment_config augment; /* what sequences are built with now */
} sequence_builder;

struct trainer_data;

/* Which part of a clip a sequence takes, in seconds of the clip. */
typedef struct clip_window {
    double from_s, to_s; /* to_s infinite: up to the clip's end; a finite window
                            past a short clip's end slides back into the clip */
    double last_s;       /* > 0: only the clip's last last_s seconds, whatever from/to say */
} clip_window;

extern const clip_window WHOLE_CLIP;

size_t seconds_to_samples(double s);
/* Appends the window of a clip and sets *origin_s to where the clip's time 0
 * falls in the buffer. */
int append_clip(sample_buffer *b, const clip *c, clip_window w, double *origin_s, es_error *err);
/* The features of `count` samples through a builder's front end, from its
 * first state, dropping the first `skip` frames and keeping at most
 * `capacity`: a new array (NULL when out of memory), *frames filled. */
float *builder_features(const es_frontend_config *config, sequence_builder *b, const float *samples,
                        size_t count, int capacity, int skip, int *frames);
/* Builds one sequence of `split` into *out; `augment_features`: warp and
 * mask its features (training sequences). */
int build_sequence(const struct trainer_data *d, sequence_builder *b, int split, es_rng *rng,
                   int augment_features, built_sequence *out, es_error *err);

/* ---- batches (train_batches.c) --------------------------------------------------- */

/* A training batch, numbered from the first batch of the first phase. */
typedef struct batch_slot {
    struct trainer_data *owner; /* what its builder thread builds from */
    built_sequence seqs[ES_TRAIN_MAX_BATCH];
    es_sequence views[ES_TRAIN_MAX_BATCH];
    int count;
    long number;
    int claimed; /* built or being built as batch `number`, not yet handed out */
    int building;
    pthread_t thread;
    int status;
    es_error error; /* why status is not ES_RNN_OK */
} batch_slot;

/* --hard-negatives: how many clips a round scores and keeps, and how often a
 * hard one leads a keyword-free sequence. */
#define HARD_SAMPLE 4000
#define HARD_KEEP 300
#define HARD_SHARE 0.3
#define HARD_MIN_SCORE 0.05f /* a clip that peaks lower is no hard case */

typedef struct trainer_data {
    const es_train_params *opt; /* resolved */
    const es_train_hooks *hooks;
    const train_clips *mf;
    es_frontend_config frontend_config;
    es_augment_config augment_full; /* the curriculum's end, and the validation set's */
    es_speech_label_config labels;
    noise_pool noises[2]; /* train, valid */
    /* Batch n is built by builders[n % builder_count] into slots[n % (builder_count + 1)]:
     * the one handed out, and the next builder_count on their way. */
    sequence_builder builders[MAX_BUILDERS];
    int builder_count;
    batch_slot slots[MAX_BUILDERS + 1];
    /* The cached validation set. */
    built_sequence *valid;
    es_sequence *valid_seqs;
    int valid_count;
    int batches_per_epoch;
    /* Progress. */
    double last_epoch_s;
    int stopped_for_time;
    double started_s; /* the clock at the start of the first phase */
    int epoch_offset; /* epochs run by earlier phases */
    /* --hard-negatives: the clips the model found most keyword-like at the
     * last round, hardest first, with where in each it peaked. */
    int hard_clips[HARD_KEEP];
    float hard_peak_s[HARD_KEEP];
    int hard_count;
    int epochs_validated; /* all phases: which epoch's end this is */
    int hard_failed;      /* a round could not finish: training stops */
    es_error failure;     /* why a batch or a round failed */
} trainer_data;

/* Whether the caller asked the run to stop (es_train_params.stop). */
int stop_requested(const trainer_data *d);
/* Seconds on a monotonic clock. */

int next_train_batch(void *user, int epoch, int index, const es_sequence **batch, int *count);
int next_valid_batch(void *user, int epoch, int index, const es_sequence **batch, int *count);
/* Whether a hard-negative round runs at the end of the epoch before batch `number`. */
int hard_round_before(const trainer_data *d, long number);
void finish_all_building(trainer_data *d);
int build_valid_set(trainer_data *d, es_error *err);

/* ---- hard negatives (train_hard.c) ----------------------------------------------- */

int mine_hard_negatives(trainer_data *d, const es_model *m, es_error *err);

/* ---- measuring (train_measure.c) ------------------------------------------------- */

es_train_vad_figures vad_measure(const trainer_data *d, es_model *m);
es_train_kws_figures kws_measure(const trainer_data *d, es_model *m);
/* es_train_run's validation metric and progress callbacks (user: trainer_data). */
float validation_metric(es_model *m, void *user);
int report_progress(const es_train_progress *p, void *user);

#endif
