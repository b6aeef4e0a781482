/*
 * train-keyword's shared state (factory.h tells the story): what its step
 * files hand each other. Private to models/train/.
 */
#ifndef ES_KEYWORD_INTERNAL_H
#define ES_KEYWORD_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "augment.h"
#include "factory.h"

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_PHRASE_BYTES ES_KEYWORD_MAX_PHRASE
#define MAX_PHRASE_WORDS ES_KEYWORD_MAX_WORDS
#define MAX_TOKENS 128
#define MAX_CONFUSABLES 256
#define MAX_WORKERS ES_KEYWORD_MAX_WORKERS
#define MAX_MADE_VOICES ES_KEYWORD_MAX_MADE_VOICES /* made_variants() */

/* A run: its settings and whom it tells. */
typedef struct keyword_ctx {
    const es_keyword_params *opt;
    const es_keyword_hooks *hooks;
} keyword_ctx;

void kw_note(const keyword_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int kw_stopped(const keyword_ctx *ctx);
void format_duration(double s, char *buf, size_t size);

/* The false alarms per hour calibration allows on the valid voices (keyword.c). */
float calibration_target(const es_keyword_params *opt);

/* ---- command helpers and voices (keyword_voices.c) ---------------------------------- */

void append_quoted(char *buf, size_t size, const char *text);
char *command_line_output(const char *command);
int tool_exists(const char *name);
void free_list(char **items, int count);

typedef enum engine { ENGINE_ESPEAK = 0, ENGINE_FLITE = 1 } engine;

typedef struct voice {
    engine engine;
    char name[96]; /* espeak "en-us+m3", flite "slt" */
    int split;
    int made; /* a variant of made_variants(): espeak-ng reads it from the work folder */
} voice;

typedef struct voice_list {
    voice *items;
    int count, capacity;
} voice_list;

int made_variants(const char *work, int count, es_rng *rng);
int list_voices(const es_keyword_params *opt, int have_flite, es_rng *rng, voice_list *voices);

/* ---- confusables (keyword_confusables.c) --------------------------------------------- */

/* How a confusable was made, as the model card tallies them (1 + kind is its
 * clips' es_cal_item.near_miss). */
enum {
    CONFUSABLE_WORDS,   /* the phrase's words alone, beside others, swapped */
    CONFUSABLE_PART,    /* its first or last phonemes */
    CONFUSABLE_CHANGED, /* one phoneme substituted */
    CONFUSABLE_DROPPED, /* one phoneme deleted */
    CONFUSABLE_KINDS
};
_Static_assert(CONFUSABLE_KINDS <= ES_CAL_NEAR_MISS_KINDS, "calibrate tallies each kind");
extern const char *const confusable_kind_names[CONFUSABLE_KINDS];

typedef struct confusables {
    char *items[MAX_CONFUSABLES]; /* plain text, or "[[phonemes]]" for espeak */
    unsigned char kinds[MAX_CONFUSABLES];
    int count;
    int text_count;    /* the first text_count are plain text (any engine can say them) */
    int trained_count; /* the first trained_count are words and parts: training negatives */
} confusables;

int phrase_has_word(const char *phrase, const char *word);
const char *other_word(const char *phrase, es_rng *rng);
void make_confusables(const char *phrase, const char *phonemes, es_rng *rng, confusables *out);
void confusables_free(confusables *c);

/* ---- clips (keyword_clips.c) ------------------------------------------------------------ */

/* What a clip is; the manifest's kind of each: keyword, sentence, sentence,
 * noise, speech (real recordings). */
enum { CLIP_POSITIVE = 0, CLIP_CONFUSABLE = 1, CLIP_SENTENCE = 2, CLIP_NOISE = 3, CLIP_SPEECH = 4 };
extern const char *const clip_kinds[];

typedef struct render_job {
    const voice *voice; /* NULL for generated noise */
    int kind, split;
    char *text;
    char path[64];     /* relative to the work folder */
    double duration_s; /* after rendering; 0 = failed or silent */
    int rate;          /* espeak words per minute; flite: duration stretch x 100 */
    int pitch;         /* espeak 0-99; flite: F0 in Hz */
    int confusable;    /* CLIP_CONFUSABLE: its kind (CONFUSABLE_*) */
} render_job;

typedef struct job_list {
    render_job *items;
    int count, capacity;
} job_list;

render_job *job_add(job_list *jobs, const voice *v, int kind, int split, const char *text,
                    es_rng *rng);
int render_all(const keyword_ctx *ctx, job_list *jobs, const char *work, int workers,
               es_error *err);

typedef struct data_clip {
    char *path; /* absolute or relative to the current directory */
    int split;
    int kind; /* CLIP_SENTENCE (sentences, near misses, other keywords), CLIP_SPEECH, CLIP_NOISE */
} data_clip;

typedef struct data_set {
    data_clip *items;
    int count, capacity;
    int excluded; /* sentences that say the phrase */
} data_set;

int load_data_set(const char *data_dir, const char *phrase, data_set *set, es_error *err);
void data_set_free(data_set *set);
void absolute_path(const char *path, char *out, size_t size);
int write_manifest(const char *path, const char *work, const char *phrase, const job_list *jobs,
                   const data_set *data, int last_split, es_error *err);

/* ---- evaluation and card (keyword_card.c) ------------------------------------------------- */

/* As `earshot calibrate --passes` for the shipped model (scripts/train-models.sh). */
#define CALIBRATION_PASSES 4
extern const int smoothing_tried[5];
#define SMOOTHING_COUNT 5

int evaluate_split(const es_model *model, const job_list *jobs, const data_set *data,
                   const char *work, int split, int passes, uint64_t seed, es_cal_stream *stream,
                   es_error *err);
es_cal_counts detect_at(const es_cal_stream *stream, float threshold, int smooth_ms);

typedef struct run_figures {
    const char *phonemes;
    int voices[ES_SPLIT_COUNT];
    int made_voices; /* of the train split's */
    int positives[ES_SPLIT_COUNT];
    int confusable_clips[ES_SPLIT_COUNT];
    int confusable_phrases;
    int confusable_phrases_of_kind[CONFUSABLE_KINDS];
    int data_clips;
    int data_excluded;
    double train_minutes;
    double total_minutes;
    es_cal_result calibrated;                        /* the threshold and smoothing kept */
    es_cal_result smoothing_trials[SMOOTHING_COUNT]; /* every smoothing, on the valid split */
    es_cal_stream *valid, *test;
    es_cal_counts test_at;
} run_figures;

int write_card(const es_keyword_params *opt, const run_figures *f, const char *path, es_error *err);

#endif
