/*
 * Hard negatives (es_train_params.hard_negative_epochs). Every few epochs
 * the model being trained listens to a fresh sample of the train split's
 * keyword-free clips and to the hardest ones of the last round; the clips it
 * finds most keyword-like lead HARD_SHARE of the keyword-free sequences
 * until the next round, cut to end just after their peak. A random draw
 * meets the rare sentence that peaks once in hours (what a false-alarm
 * budget is about) once in many epochs; this meets it every few batches,
 * while the model still finds it hard.
 */
#include <stdlib.h>

#include "clock.h"
#include "train_model_internal.h"

typedef struct hard_candidate {
    int clip;
    float score, peak_s;
} hard_candidate;

/* One scoring thread: candidates first, first + step, ... */
typedef struct hard_scoring {
    const trainer_data *d;
    const es_model *model;
    sequence_builder *builder;
    hard_candidate *candidates;
    int count, first, step;
    int failed;
    pthread_t thread;
} hard_scoring;

#define HARD_LEAD_IN_S 0.5

/* The highest keyword posterior of `frames` outputs and when (seconds into
 * the clip whose time 0 is at `origin_s`). */
static void find_peak(const trainer_data *d, const float *out, int frames, int outputs,
                      double origin_s, hard_candidate *c) {
    c->score = 0.0f;
    c->peak_s = 0.0f;
    for (int t = 0; t < frames; t++)
        for (int k = 1; k < outputs; k++)
            if (out[(size_t)t * outputs + k] > c->score) {
                c->score = out[(size_t)t * outputs + k];
                c->peak_s = (float)((double)t * d->labels.hop_samples / SAMPLE_RATE_HZ - origin_s);
            }
}

/* The clip as the model hears it alone after half a second of faint noise. */
static int score_clip(const trainer_data *d, sequence_builder *b, const es_model *m,
                      hard_candidate *c) {
    sample_buffer *buf = &b->clean;
    buf->count = 0;
    double origin_s = 0.0;
    es_error ignored;
    if (buffer_append(buf, NULL, seconds_to_samples(HARD_LEAD_IN_S)) != 0 ||
        append_clip(buf, &d->mf->clips[c->clip], WHOLE_CLIP, &origin_s, &ignored) != 0)
        return -1;
    es_rng rng;
    es_rng_seed(&rng, (uint64_t)c->clip + 1);
    for (size_t i = 0; i < buf->count; i++)
        buf->data[i] += (float)es_rng_uniform(&rng, -1e-3, 1e-3);
    const int outputs = es_model_output_size(m);
    const int capacity = es_label_frame_count(&d->labels, buf->count);
    int frames = 0;
    float *inputs =
        builder_features(&d->frontend_config, b, buf->data, buf->count, capacity, 0, &frames);
    float *out = malloc(sizeof(float) * (size_t)(capacity + 1) * outputs);
    int rc = inputs && out ? 0 : -1;
    if (rc == 0) rc = es_model_forward_sequence(m, inputs, frames, out) == ES_RNN_OK ? 0 : -1;
    c->score = 0.0f;
    c->peak_s = 0.0f;
    if (rc == 0) find_peak(d, out, frames, outputs, origin_s, c);
    free(inputs);
    free(out);
    return rc;
}

static void *score_candidates(void *user) {
    hard_scoring *job = user;
    for (int i = job->first; i < job->count && !job->failed; i += job->step)
        job->failed = score_clip(job->d, job->builder, job->model, &job->candidates[i]) != 0;
    return NULL;
}

static int harder_first(const void *a, const void *b) {
    const hard_candidate *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return (x->clip > y->clip) - (x->clip < y->clip);
}

/* The last round's hard clips and `fresh` new ones drawn from the train
 * split's keyword-free clips; NULL when out of memory. */
static hard_candidate *draw_candidates(const trainer_data *d, int fresh, int pool) {
    const int sentences = d->mf->kind_count[ES_SPLIT_TRAIN][ES_KIND_SENTENCE];
    hard_candidate *candidates = calloc((size_t)(d->hard_count + fresh), sizeof(hard_candidate));
    if (!candidates) return NULL;
    for (int i = 0; i < d->hard_count; i++)
        candidates[i].clip = d->hard_clips[i];
    es_rng rng;
    es_rng_seed(&rng, d->opt->seed ^ (0x68617264ULL * (uint64_t)(d->epochs_validated + 1)));
    for (int i = 0; i < fresh; i++) {
        const int pick = fresh == pool ? i : es_rng_below(&rng, pool);
        candidates[d->hard_count + i].clip =
            pick < sentences
                ? d->mf->by_split_kind[ES_SPLIT_TRAIN][ES_KIND_SENTENCE][pick]
                : d->mf->by_split_kind[ES_SPLIT_TRAIN][ES_KIND_SPEECH][pick - sentences];
    }
    return candidates;
}

/* Scores every candidate on the builders' front ends, one thread each (no
 * batch is being built: hard_round_before keeps them idle). 0, or -1. */
static int score_all(trainer_data *d, const es_model *m, hard_candidate *candidates, int count) {
    hard_scoring jobs[MAX_BUILDERS];
    int started[MAX_BUILDERS] = {0};
    for (int t = 0; t < d->builder_count; t++) {
        jobs[t] = (hard_scoring){.d = d,
                                 .model = m,
                                 .builder = &d->builders[t],
                                 .candidates = candidates,
                                 .count = count,
                                 .first = t,
                                 .step = d->builder_count};
        started[t] =
            t > 0 && pthread_create(&jobs[t].thread, NULL, score_candidates, &jobs[t]) == 0;
    }
    int failed = 0;
    for (int t = 0; t < d->builder_count; t++) {
        /* This thread's share, and that of any thread that could not start. */
        if (started[t])
            pthread_join(jobs[t].thread, NULL);
        else
            score_candidates(&jobs[t]);
        failed |= jobs[t].failed;
    }
    return failed ? -1 : 0;
}

/* Keeps the HARD_KEEP hardest distinct clips of the sorted candidates. */
static void keep_hardest(trainer_data *d, const hard_candidate *candidates, int count) {
    int kept = 0;
    for (int i = 0; i < count && kept < HARD_KEEP && candidates[i].score >= HARD_MIN_SCORE; i++) {
        int seen = 0; /* a fresh draw may repeat a clip */
        for (int k = 0; k < kept && !seen; k++)
            seen = d->hard_clips[k] == candidates[i].clip;
        if (seen) continue;
        d->hard_clips[kept] = candidates[i].clip;
        d->hard_peak_s[kept] = candidates[i].peak_s;
        kept++;
    }
    d->hard_count = kept;
}

int mine_hard_negatives(trainer_data *d, const es_model *m, es_error *err) {
    const int pool = d->mf->kind_count[ES_SPLIT_TRAIN][ES_KIND_SENTENCE] +
                     d->mf->kind_count[ES_SPLIT_TRAIN][ES_KIND_SPEECH];
    if (pool == 0) return 0;
    const double started_s = es_monotonic_s();
    finish_all_building(d);
    /* A manifest with no more than HARD_SAMPLE of them is scored whole. */
    const int fresh = pool < HARD_SAMPLE ? pool : HARD_SAMPLE;
    const int count = d->hard_count + fresh;
    hard_candidate *candidates = draw_candidates(d, fresh, pool);
    if (!candidates) return es_error_set(err, ES_TRAIN_ERR_NOMEM, "hard negatives: out of memory");
    if (score_all(d, m, candidates, count) != 0) {
        free(candidates);
        return es_error_set(err, ES_TRAIN_ERR_NOMEM,
                            "hard negatives: cannot score a clip (out of memory?)");
    }
    qsort(candidates, (size_t)count, sizeof *candidates, harder_first);
    es_train_hard_report report = {.scored = count};
    for (int i = 0; i < count; i++)
        report.above_half += candidates[i].score > 0.5f;
    keep_hardest(d, candidates, count);
    report.kept = d->hard_count;
    if (report.kept) {
        report.hardest = candidates[0].score;
        report.hardest_path = d->mf->clips[d->hard_clips[0]].path;
    }
    report.seconds = es_monotonic_s() - started_s;
    if (d->hooks && d->hooks->hard_negatives) d->hooks->hard_negatives(&report, d->hooks->user);
    free(candidates);
    return 0;
}
