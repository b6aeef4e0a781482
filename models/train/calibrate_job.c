/*
 * `earshot calibrate` as library calls (factory.h, es_cal_job): a
 * manifest's valid split read with the one manifest reader, streamed,
 * calibrated, and written into a copy of the model.
 */
#include <stdlib.h>
#include <string.h>

#include "stream.h"
#include "augment.h"
#include "factory.h"

void es_cal_params_default(es_cal_params *params) {
    *params = (es_cal_params){
        .budget = {.max_per_hour = 0.5f, .max_near_miss_share = 1.0f}, .seed = 1, .passes = 1};
}

int es_cal_job_load(es_cal_job *job, const es_cal_params *params, es_error *err) {
    memset(job, 0, sizeof *job);
    es_error load_err;
    if (es_pipeline_load_model(params->model_path, "kws", NULL, &job->model, &load_err) !=
        ES_PIPELINE_OK)
        return es_error_set(err, ES_CAL_ERR_MODEL, "%s", load_err.why);
    es_cal_stream_init(&job->columns, job->model);
    if (job->columns.keyword_count == 0)
        return es_error_set(err, ES_CAL_ERR_MODEL,
                            "%s: the model has no keyword outputs (only filler)",
                            params->model_path);
    return 0;
}

/* ---- the valid split ------------------------------------------------------------------- */

static int clip_add(es_cal_clips *list, const es_manifest_clip *c, int keyword, int near_miss,
                    double seconds) {
    if (list->count == list->capacity) {
        const int capacity = list->capacity ? 2 * list->capacity : 1024;
        es_cal_item *items = realloc(list->items, sizeof(es_cal_item) * (size_t)capacity);
        if (!items) return -1;
        list->items = items;
        double *s = realloc(list->seconds, sizeof(double) * (size_t)capacity);
        if (!s) return -1;
        list->seconds = s;
        list->capacity = capacity;
    }
    list->items[list->count] = (es_cal_item){.path = c->path,
                                             .keyword = keyword,
                                             .start_s = keyword >= 0 ? c->start_s : 0,
                                             .end_s = keyword >= 0 ? c->end_s : 0,
                                             .speed = 1.0f,
                                             .near_miss = near_miss,
                                             .recorded = c->recorded};
    list->seconds[list->count++] = seconds;
    return 0;
}

static void clips_free(es_cal_clips *list) {
    free(list->items);
    free(list->seconds);
}

/* The clip's length in seconds; 0 when it is not 16 kHz mono; -1 when it
 * cannot be opened. */
static double clip_seconds(const char *manifest, const es_manifest_clip *c, es_error *err) {
    es_error audio_err;
    es_audio_file *file = NULL;
    if (es_audio_file_open(c->path, &file, &audio_err) != 0) {
        es_error_set(err, ES_CAL_ERR_DATA, "%s:%ld: %s", manifest, c->line, audio_err.why);
        return -1;
    }
    const es_audio_info *info = es_audio_file_info(file);
    const double seconds =
        info->sample_rate_hz == ES_CAL_SAMPLE_RATE_HZ && info->channels == 1 && info->frames > 0
            ? (double)info->frames / info->sample_rate_hz
            : 0.0;
    es_audio_file_close(file);
    return seconds;
}

static int column_of(const es_cal_stream *columns, const char *label) {
    for (int k = 0; k < columns->keyword_count; k++)
        if (strcmp(columns->labels[k], label) == 0) return k;
    return -1;
}

static int voice_excluded(const es_cal_params *params, const char *voice) {
    for (int i = 0; i < params->excluded_count; i++)
        if (strncmp(voice, params->excluded_voices[i], strlen(params->excluded_voices[i])) == 0)
            return 1;
    return 0;
}

/* Sorts one valid-split line into positives, negatives and noises. */
static int take_clip(es_cal_job *job, const es_cal_params *params, const es_manifest_clip *c,
                     es_error *err) {
    if (c->kind == ES_KIND_NOISE) {
        const char **grown =
            realloc(job->noise_paths, sizeof(char *) * (size_t)(job->noise_count + 1));
        if (!grown) return es_error_set(err, ES_CAL_ERR_NOMEM, "out of memory");
        job->noise_paths = grown;
        job->noise_paths[job->noise_count++] = c->path;
    }
    const double seconds = clip_seconds(params->manifest_path, c, err);
    if (seconds < 0) return ES_CAL_ERR_DATA;
    if (seconds == 0) {
        job->unusable++;
        return 0;
    }
    const int keyword = c->kind == ES_KIND_KEYWORD ? column_of(&job->columns, c->label) : -1;
    /* A sentence clip labelled with a word says that word: a near miss. */
    const int near_miss = !params->near_misses_per_hour && c->kind == ES_KIND_SENTENCE &&
                          strcmp(c->label, "-") != 0 && c->label[0] != '\0';
    es_cal_clips *list = keyword >= 0 ? &job->positives : &job->negatives;
    if (clip_add(list, c, keyword, near_miss, seconds) != 0)
        return es_error_set(err, ES_CAL_ERR_NOMEM, "out of memory");
    *(keyword >= 0 ? &job->positive_s : &job->negative_s) += seconds;
    return 0;
}

int es_cal_job_read(es_cal_job *job, const es_cal_params *params, es_error *err) {
    es_error read_err;
    if (es_manifest_read(params->manifest_path, &job->manifest, &read_err) != ES_MANIFEST_OK)
        return es_error_set(
            err, read_err.code == ES_MANIFEST_ERR_NOMEM ? ES_CAL_ERR_NOMEM : ES_CAL_ERR_DATA, "%s",
            read_err.why);
    for (int i = 0; i < job->manifest.count; i++) {
        const es_manifest_clip *c = &job->manifest.clips[i];
        if (c->split != ES_SPLIT_VALID || voice_excluded(params, c->voice)) continue;
        const int rc = take_clip(job, params, c, err);
        if (rc != 0) return rc;
    }
    return 0;
}

/* ---- the stream's clips ------------------------------------------------------------------ */

/* Keeps a random subset of the negatives of about `hours` (seeded). */
static void limit_negatives(es_cal_clips *negatives, double hours, int seed, double *kept_s) {
    es_rng rng;
    es_rng_seed(&rng, (uint64_t)seed * 0x9E3779B97F4A7C15ULL + 0x63616cULL);
    for (int i = negatives->count - 1; i > 0; i--) {
        const int k = es_rng_below(&rng, i + 1);
        const es_cal_item t = negatives->items[i];
        const double s = negatives->seconds[i];
        negatives->items[i] = negatives->items[k];
        negatives->seconds[i] = negatives->seconds[k];
        negatives->items[k] = t;
        negatives->seconds[k] = s;
    }
    double total = 0;
    int keep = 0;
    while (keep < negatives->count && total < hours * 3600)
        total += negatives->seconds[keep++];
    negatives->count = keep;
    *kept_s = total;
}

/* Positives then negatives, `passes` times (es_cal_items_replay). */
static int line_up_items(es_cal_job *job, const es_cal_params *params) {
    const int positives = job->positives.count, negatives = job->negatives.count;
    job->item_count = positives + negatives;
    job->items = malloc(sizeof(es_cal_item) * (size_t)job->item_count);
    if (!job->items) return -1;
    /* (memcpy from NULL is undefined even for 0 bytes: a manifest may have no positives) */
    if (positives)
        memcpy(job->items, job->positives.items, sizeof(es_cal_item) * (size_t)positives);
    memcpy(job->items + positives, job->negatives.items, sizeof(es_cal_item) * (size_t)negatives);
    return es_cal_items_replay(&job->items, &job->item_count, params->passes,
                               (uint64_t)params->seed * 0x9E3779B97F4A7C15ULL + 0x73706565ULL);
}

int es_cal_job_prepare(es_cal_job *job, const es_cal_params *params, es_error *err) {
    if (job->negatives.count == 0)
        return es_error_set(err, ES_CAL_ERR_DATA,
                            "%s: no keyword-free clips (sentence or speech) in the valid "
                            "split: nothing to count false alarms on",
                            params->manifest_path);
    if (params->hours > 0 && params->hours * 3600 < job->negative_s)
        limit_negatives(&job->negatives, params->hours, params->seed, &job->negative_s);
    for (int i = 0; i < job->noise_count; i++)
        if (es_cal_noises_add(&job->noises, job->noise_paths[i]) < 0)
            return es_error_set(err, ES_CAL_ERR_NOMEM, "out of memory");
    if (line_up_items(job, params) != 0)
        return es_error_set(err, ES_CAL_ERR_NOMEM, "out of memory");
    job->audio_s = (job->positive_s + job->negative_s) * params->passes;
    for (int i = 0; i < job->negatives.count; i++)
        job->near_misses += job->negatives.items[i].near_miss != 0;
    return 0;
}

int es_cal_job_stream(es_cal_job *job, const es_cal_params *params, es_cal_progress_fn progress,
                      void *progress_user, es_error *err) {
    return es_cal_run_stream(job->model, job->items, job->item_count, &job->noises,
                             (uint64_t)params->seed + 11, progress, progress_user, &job->stream,
                             err);
}

/* --check: the model's stored thresholds and smoothing measured on the stream. */
static int check_thresholds(const es_model *model, const es_cal_stream *s, es_cal_result *out) {
    const float *stored = es_model_thresholds(model);
    const int *smoothing = es_model_smoothing(model);
    es_kws_config detector;
    es_kws_config_default(&detector);
    float thresholds[ES_KWS_MAX_KEYWORDS];
    for (int k = 0; k < s->keyword_count; k++)
        thresholds[k] = stored && stored[s->outputs[k]] > 0 ? stored[s->outputs[k]]
                                                            : detector.default_threshold;
    /* (calibrate stores one smoothing for every keyword) */
    return es_cal_measure(s, thresholds, smoothing ? smoothing[s->outputs[0]] : 0, out);
}

int es_cal_job_choose(es_cal_job *job, const es_cal_params *params, es_error *err) {
    const es_cal_stream *s = &job->stream;
    const int rc = params->check ? check_thresholds(job->model, s, &job->result)
                   : params->smoothing_count > 0
                       ? es_cal_calibrate_smoothing(s, &params->budget, params->smoothing,
                                                    params->smoothing_count, &job->result, NULL)
                       : es_cal_calibrate(s, &params->budget, 0, &job->result);
    return rc != 0 ? es_error_set(err, ES_CAL_ERR_NOMEM, "out of memory") : 0;
}

int es_cal_job_write(es_cal_job *job, const char *path, es_error *err) {
    if (es_cal_apply(job->model, &job->stream, &job->result) != 0)
        return es_error_set(err, ES_CAL_ERR_OUTPUT, "%s: cannot store the thresholds", path);
    es_error save_err;
    if (es_model_save(job->model, path, &save_err) != ES_RNN_OK)
        return es_error_set(err, ES_CAL_ERR_OUTPUT, "%s: %s", path, save_err.why);
    return 0;
}

void es_cal_job_free(es_cal_job *job) {
    free(job->items);
    es_cal_stream_free(&job->stream);
    es_cal_noises_free(&job->noises);
    clips_free(&job->positives);
    clips_free(&job->negatives);
    free(job->noise_paths);
    es_manifest_free(&job->manifest);
    es_model_destroy(job->model);
    memset(job, 0, sizeof *job);
}
