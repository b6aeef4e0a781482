/*
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
 *      (train_model.h) with the phrase as the only keyword;
 *   4. calibrate (keyword_card.c): the model runs, through the very pipeline
 *      `earshot file` uses, over a stream of held-out (valid-split) negatives
 *      with valid positives among them; the threshold is the lowest that keeps
 *      false alarms at or under the target rate (calibrate.h);
 *   5. test: the same over test-split voices and negatives: recall on voices
 *      never used in training or calibration, false alarms per hour, and the
 *      share of confusables accepted, in all and by how they were made;
 *   6. write the model with its threshold and a model card, MODEL.md beside it.
 *
 * Library code: errors are returned (common/error.h); progress is told
 * through es_keyword_hooks. keyword.c runs the steps.
 */
#ifndef ES_KEYWORD_H
#define ES_KEYWORD_H

#include <signal.h>
#include <stddef.h>

#include "error.h"
#include "rnn.h"
#include "train_model.h"

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
 * ES_TRAIN_ERR_* (train_model.h) as es_train_model returned them. */
enum {
    ES_KEYWORD_OK = 0,
    ES_KEYWORD_ERR_FAILED = -101,  /* the run failed (the reason says why) */
    ES_KEYWORD_ERR_USAGE = -102,   /* the phrase or --data cannot be used */
    ES_KEYWORD_ERR_OUTPUT = -103,  /* the model cannot be written (the reason names it) */
    ES_KEYWORD_ERR_STOPPED = -104, /* params->stop was set */
};

int es_train_keyword(const es_keyword_params *params, const es_keyword_hooks *hooks, es_error *err);

#endif
