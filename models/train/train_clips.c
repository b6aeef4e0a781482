/*
 * The trainer's clips (factory.h): the manifest indexed by split and
 * kind with its keyword outputs and draw weights, clips read as 16 kHz
 * mono, and each split's noises kept in memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"
#include "train_model_internal.h"

/* The keyword model's outputs: filler first, then these in this order; a
 * manifest's other keyword labels are appended in order of appearance. */
static const char *const standard_keywords[] = {
    "yes",  "no",  "up",  "down",  "left", "right", "on",  "off",   "stop",  "go",
    "zero", "one", "two", "three", "four", "five",  "six", "seven", "eight", "nine"};
#define STANDARD_KEYWORD_COUNT (sizeof standard_keywords / sizeof standard_keywords[0])

void train_clips_free(train_clips *mf) {
    free(mf->clips);
    for (int s = 0; s < ES_SPLIT_COUNT; s++)
        for (int k = 0; k < ES_KIND_COUNT; k++) {
            free(mf->by_split_kind[s][k]);
            free(mf->cumulative_weight[s][k]);
        }
    es_manifest_free(&mf->lines);
}

/* The KWS output of a keyword label, appended when new; -1 when there is no
 * room for it. Labels point into the manifest's lines. */
static int keyword_output(train_clips *mf, const char *label) {
    for (int i = 1; i < mf->label_count; i++)
        if (strcmp(mf->labels[i], label) == 0) return i;
    if (mf->label_count >= ES_MAX_OUTPUTS || strlen(label) >= ES_MAX_LABEL) return -1;
    mf->labels[mf->label_count] = label;
    return mf->label_count++;
}

/* Draw weights of speech clips: recorded voices weigh `recorded_weight`,
 * synthetic ones 1. Noise is drawn evenly whatever it is. */
static int weigh_clips(train_clips *mf, float recorded_weight) {
    if (recorded_weight == 1.0f) return 0;
    for (int s = 0; s < ES_SPLIT_COUNT; s++)
        for (int k = 0; k < ES_KIND_COUNT; k++) {
            if (k == ES_KIND_NOISE || mf->kind_count[s][k] == 0) continue;
            double *sum = malloc(sizeof(double) * (size_t)mf->kind_count[s][k]);
            if (!sum) return -1;
            double total = 0.0;
            for (int i = 0; i < mf->kind_count[s][k]; i++) {
                total += mf->clips[mf->by_split_kind[s][k][i]].recorded ? recorded_weight : 1.0;
                sum[i] = total;
            }
            mf->cumulative_weight[s][k] = sum;
        }
    return 0;
}

static int index_clips(train_clips *mf, float recorded_weight) {
    for (int s = 0; s < ES_SPLIT_COUNT; s++)
        for (int k = 0; k < ES_KIND_COUNT; k++) {
            mf->by_split_kind[s][k] = malloc(sizeof(int) * (size_t)(mf->count + 1));
            if (!mf->by_split_kind[s][k]) return -1;
        }
    for (int i = 0; i < mf->count; i++) {
        const clip *c = &mf->clips[i];
        mf->by_split_kind[c->split][c->kind][mf->kind_count[c->split][c->kind]++] = i;
    }
    return weigh_clips(mf, recorded_weight);
}

/* The trainer's view of every line: its keyword's output among them. */
static int take_lines(const char *path, train_clips *mf, es_error *err) {
    for (int i = 0; i < mf->lines.count; i++) {
        const es_manifest_clip *line = &mf->lines.clips[i];
        clip *c = &mf->clips[mf->count++];
        *c = (clip){.path = line->path,
                    .split = line->split,
                    .kind = line->kind,
                    .start_s = line->start_s,
                    .end_s = line->end_s,
                    .recorded = line->recorded};
        if (c->kind == ES_KIND_KEYWORD && (c->output = keyword_output(mf, line->label)) < 0)
            return es_error_set(err, ES_TRAIN_ERR_DATA,
                                "%s:%ld: keyword label '%s' is too long or one too many", path,
                                line->line, line->label);
    }
    return 0;
}

int train_clips_read(const es_train_params *params, train_clips *mf, es_error *err) {
    const char *path = params->manifest_path;
    memset(mf, 0, sizeof(*mf));
    mf->labels[0] = "filler";
    mf->label_count = 1;
    for (size_t i = 0; !params->manifest_keywords_only && i < STANDARD_KEYWORD_COUNT; i++)
        mf->labels[mf->label_count++] = standard_keywords[i];
    es_error read_err;
    if (es_manifest_read(path, &mf->lines, &read_err) != ES_MANIFEST_OK)
        return es_error_set(
            err, read_err.code == ES_MANIFEST_ERR_NOMEM ? ES_TRAIN_ERR_NOMEM : ES_TRAIN_ERR_DATA,
            "%s", read_err.why);
    mf->clips = calloc((size_t)mf->lines.count + 1, sizeof(clip));
    if (!mf->clips) return es_error_set(err, ES_TRAIN_ERR_NOMEM, "%s: out of memory", path);
    if (take_lines(path, mf, err) != 0) return ES_TRAIN_ERR_DATA;
    if (index_clips(mf, params->recorded_weight) != 0)
        return es_error_set(err, ES_TRAIN_ERR_NOMEM, "%s: out of memory", path);
    return 0;
}

void train_clips_summary(const es_train_params *params, const train_clips *mf,
                         es_train_data_summary *out) {
    *out = (es_train_data_summary){.params = params, .clips = mf->count};
    memcpy(out->kind_count, mf->kind_count, sizeof out->kind_count);
    for (int k = 0; k < ES_KIND_COUNT; k++)
        for (int i = 0; i < mf->kind_count[ES_SPLIT_TRAIN][k]; i++)
            out->recorded[k] += mf->clips[mf->by_split_kind[ES_SPLIT_TRAIN][k][i]].recorded;
}

/* ---- audio ----------------------------------------------------------------------- */

/* Reads up to `max_frames` frames of an open file, mixed down to mono. */
static int read_mono(es_audio_file *file, const char *path, size_t max_frames, float *mono,
                     size_t *count, es_error *err) {
    const es_audio_info *info = es_audio_file_info(file);
    float *chunk = malloc(sizeof(float) * 4096 * (size_t)info->channels);
    if (!chunk) return es_error_set(err, ES_TRAIN_ERR_NOMEM, "%s: out of memory", path);
    es_error audio_err;
    int rc = 0;
    *count = 0;
    while (*count < max_frames) {
        size_t want = max_frames - *count < 4096 ? max_frames - *count : 4096;
        const long got = es_audio_file_read(file, chunk, want, &audio_err);
        if (got < 0) rc = es_error_set(err, ES_TRAIN_ERR_DATA, "%s: %s", path, audio_err.why);
        if (got <= 0) break;
        for (long i = 0; i < got; i++) {
            float sum = 0.0f;
            for (int ch = 0; ch < info->channels; ch++)
                sum += chunk[(size_t)i * info->channels + ch];
            mono[(*count)++] = sum / (float)info->channels;
        }
    }
    free(chunk);
    return rc;
}

/* Manifests from scripts/data.sh are 16 kHz already; others are converted. */
static int resample_to_16k(const char *path, int rate_hz, float **mono, size_t *count,
                           es_error *err) {
    float *resampled = NULL;
    size_t produced = 0;
    if (es_resample_clip(*mono, *count, rate_hz, SAMPLE_RATE_HZ, ES_CLIP_RESAMPLE_LOW, &resampled,
                         &produced, NULL) != ES_DSP_OK) {
        return es_error_set(err, ES_TRAIN_ERR_DATA, "%s: cannot resample from %d Hz", path,
                            rate_hz);
    }
    free(*mono);
    *mono = resampled;
    *count = produced;
    return 0;
}

int load_clip(const char *path, float **out, size_t *out_count, es_error *err) {
    *out = NULL;
    *out_count = 0;
    es_error audio_err;
    es_audio_file *file = NULL;
    if (es_audio_file_open(path, &file, &audio_err) != 0)
        return es_error_set(err, ES_TRAIN_ERR_DATA, "%s: %s", path, audio_err.why);
    const int rate_hz = es_audio_file_info(file)->sample_rate_hz;
    const size_t max_frames = (size_t)(MAX_CLIP_S * rate_hz);
    float *mono = malloc(sizeof(float) * max_frames);
    size_t count = 0;
    int rc = mono ? read_mono(file, path, max_frames, mono, &count, err)
                  : es_error_set(err, ES_TRAIN_ERR_NOMEM, "%s: out of memory", path);
    es_audio_file_close(file);
    if (rc == 0 && rate_hz != SAMPLE_RATE_HZ)
        rc = resample_to_16k(path, rate_hz, &mono, &count, err);
    if (rc != 0) {
        free(mono);
        return rc;
    }
    *out = mono;
    *out_count = count;
    return 0;
}

void noise_pool_free(noise_pool *pool) {
    for (int i = 0; i < pool->count; i++)
        free(pool->samples[i]);
    free(pool->samples);
    free(pool->counts);
}

int noise_pool_load(const train_clips *mf, int split, noise_pool *pool, es_error *err) {
    const int n = mf->kind_count[split][ES_KIND_NOISE];
    pool->samples = calloc((size_t)n + 1, sizeof(float *));
    pool->counts = calloc((size_t)n + 1, sizeof(size_t));
    pool->count = 0;
    if (!pool->samples || !pool->counts)
        return es_error_set(err, ES_TRAIN_ERR_NOMEM, "noises: out of memory");
    for (int i = 0; i < n; i++) {
        const clip *c = &mf->clips[mf->by_split_kind[split][ES_KIND_NOISE][i]];
        const int rc =
            load_clip(c->path, &pool->samples[pool->count], &pool->counts[pool->count], err);
        if (rc != 0) return rc;
        /* Noise is read cyclically: a very short effect would repeat into a tone.
         * Short clips still serve the VAD as speech-free sequences. */
        if (pool->counts[pool->count] >= MIN_NOISE_SAMPLES)
            pool->count++;
        else
            free(pool->samples[pool->count]);
    }
    return 0;
}
