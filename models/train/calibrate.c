/*
 * calibrate — per-keyword thresholds for a false-alarm budget (factory.h).
 */
#include "factory.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"
#include "augment.h"

#define SR ES_CAL_SAMPLE_RATE_HZ
#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- clips ----------------------------------------------------------------------------- */

/* A clip in memory, 16 kHz mono; NULL on failure or another rate. */
static float *read_clip(const char *path, size_t max_samples, size_t *count) {
    *count = 0;
    es_audio_file *file = NULL;
    if (es_audio_file_open(path, &file, NULL) != 0) return NULL;
    const es_audio_info *info = es_audio_file_info(file);
    float *samples = NULL;
    if (info->sample_rate_hz == SR && info->channels == 1)
        samples = malloc(sizeof(float) * max_samples);
    long got = 0;
    while (samples && *count < max_samples &&
           (got = es_audio_file_read(file, samples + *count, max_samples - *count, NULL)) > 0)
        *count += (size_t)got;
    es_audio_file_close(file);
    if (samples && (got < 0 || *count == 0)) {
        free(samples);
        samples = NULL;
    }
    return samples;
}

int es_cal_noises_add(es_cal_noises *noises, const char *path) {
    if (noises->count == noises->capacity) {
        const int capacity = noises->capacity ? 2 * noises->capacity : 64;
        float **samples = realloc(noises->samples, sizeof(float *) * (size_t)capacity);
        if (!samples) return -1;
        noises->samples = samples;
        size_t *counts = realloc(noises->counts, sizeof(size_t) * (size_t)capacity);
        if (!counts) return -1;
        noises->counts = counts;
        noises->capacity = capacity;
    }
    size_t n = 0;
    float *s = read_clip(path, (size_t)ES_CAL_MAX_NOISE_S * SR, &n);
    if (!s || n < SR / 2) {
        free(s);
        return 0;
    }
    noises->samples[noises->count] = s;
    noises->counts[noises->count++] = n;
    return 1;
}

void es_cal_noises_free(es_cal_noises *noises) {
    for (int i = 0; i < noises->count; i++)
        free(noises->samples[i]);
    free(noises->samples);
    free(noises->counts);
    memset(noises, 0, sizeof *noises);
}

/* ---- the stream ------------------------------------------------------------------------- */

void es_cal_stream_init(es_cal_stream *s, const es_model *model) {
    memset(s, 0, sizeof *s);
    const int outputs = es_model_output_size(model);
    for (int i = 0; i < outputs && s->keyword_count < ES_KWS_MAX_KEYWORDS; i++) {
        const char *label = es_model_label(model, i);
        if (!label || !es_kws_label_is_keyword(label)) continue;
        snprintf(s->labels[s->keyword_count], ES_MAX_LABEL, "%s", label);
        s->outputs[s->keyword_count++] = i;
    }
}

int es_cal_stream_init_labels(es_cal_stream *s, int count, const char *const *labels) {
    memset(s, 0, sizeof *s);
    if (count < 1 || count > ES_KWS_MAX_KEYWORDS) return -1;
    for (int i = 0; i < count; i++) {
        snprintf(s->labels[i], ES_MAX_LABEL, "%s", labels[i]);
        s->outputs[i] = -1;
    }
    s->keyword_count = count;
    return 0;
}

int es_cal_stream_add_frame(es_cal_stream *s, const float *posteriors) {
    const size_t k = (size_t)s->keyword_count;
    if (s->frames == s->capacity) {
        const size_t capacity = s->capacity ? 2 * s->capacity : 65536;
        float *grown = realloc(s->posteriors, sizeof(float) * capacity * (k ? k : 1));
        if (!grown) return -1;
        s->posteriors = grown;
        s->capacity = capacity;
    }
    memcpy(s->posteriors + s->frames * k, posteriors, sizeof(float) * k);
    s->frames++;
    return 0;
}

int es_cal_stream_add_window(es_cal_stream *s, int64_t start, int64_t end, int keyword) {
    if ((keyword < 0 && keyword != ES_CAL_NEAR_MISS) || keyword >= s->keyword_count || end <= start)
        return -1;
    if (s->window_count > 0 && start < s->windows[s->window_count - 1].start) return -1;
    if (s->window_count == s->window_capacity) {
        const int capacity = s->window_capacity ? 2 * s->window_capacity : 1024;
        es_cal_window *grown = realloc(s->windows, sizeof(es_cal_window) * (size_t)capacity);
        if (!grown) return -1;
        s->windows = grown;
        s->window_capacity = capacity;
    }
    s->windows[s->window_count++] = (es_cal_window){start, end, keyword, 0, 0, 0};
    if (keyword == ES_CAL_NEAR_MISS)
        s->near_misses++;
    else
        s->positives[keyword]++;
    return 0;
}

void es_cal_stream_finish(es_cal_stream *s, double seconds) {
    s->seconds = seconds;
    free(s->reach);
    s->reach = s->window_count ? malloc(sizeof(int64_t) * (size_t)s->window_count) : NULL;
    /* The union of the windows, clipped to the stream. */
    const int64_t stream_end = (int64_t)llround(seconds * SR);
    int64_t covered = 0, reach = 0;
    for (int i = 0; i < s->window_count; i++) {
        const es_cal_window *w = &s->windows[i];
        int64_t from = w->start > reach ? w->start : reach;
        int64_t to = w->end < stream_end ? w->end : stream_end;
        if (from < 0) from = 0;
        if (to > from) covered += to - from;
        if (w->end > reach) reach = w->end;
        if (s->reach) s->reach[i] = reach;
    }
    s->negative_seconds = seconds - (double)covered / SR;
}

void es_cal_stream_free(es_cal_stream *s) {
    free(s->posteriors);
    free(s->windows);
    free(s->reach);
    memset(s, 0, sizeof *s);
}

typedef struct frame_log {
    es_cal_stream *stream;
    int failed;
} frame_log;

static void log_frame(const es_frame_posteriors *frame, void *user) {
    frame_log *log = user;
    if (log->failed) return;
    if (frame->keyword_count != log->stream->keyword_count ||
        es_cal_stream_add_frame(log->stream, frame->keywords) != 0)
        log->failed = 1;
}

static void shuffle(es_cal_item *items, int count, es_rng *rng) {
    for (int i = count - 1; i > 0; i--) {
        const int k = es_rng_below(rng, i + 1);
        const es_cal_item t = items[i];
        items[i] = items[k];
        items[k] = t;
    }
}

int es_cal_items_replay(es_cal_item **items, int *count, int passes, uint64_t seed) {
    if (passes <= 1 || *count == 0) return 0;
    es_cal_item *grown = realloc(*items, sizeof(es_cal_item) * (size_t)*count * (size_t)passes);
    if (!grown) return -1;
    es_rng rng;
    es_rng_seed(&rng, seed);
    for (int pass = 1; pass < passes; pass++) {
        es_cal_item *copy = grown + (size_t)pass * (size_t)*count;
        memcpy(copy, grown, sizeof(es_cal_item) * (size_t)*count);
        for (int i = 0; i < *count; i++)
            copy[i].speed =
                (float)es_rng_uniform(&rng, ES_CAL_REPLAY_MIN_SPEED, ES_CAL_REPLAY_MAX_SPEED);
    }
    *items = grown;
    *count *= passes;
    return 0;
}

/* The calibration stream under way: the pipeline it is pushed through. */
typedef struct stream_run {
    es_pipeline *pipeline;
    frame_log log;
    float *gap; /* a second of near-silence between clips */
    const es_cal_noises *noises;
    es_rng rng;
    int64_t position; /* samples pushed so far */
} stream_run;

/* Records an item's window at the stream's position: a positive's from its
 * keyword to ES_CAL_AFTER_S past it, a near miss's over the whole clip. */
static int add_item_window(es_cal_stream *out, const es_cal_item *item, int64_t position, size_t n,
                           double speed, int in_noise, es_error *err) {
    const int64_t after = (int64_t)llround(ES_CAL_AFTER_S * SR);
    if (item->keyword >= 0) {
        const int64_t from = item->end_s > 0 ? (int64_t)llround(item->start_s / speed * SR) : 0;
        int64_t to = item->end_s > 0 ? (int64_t)llround(item->end_s / speed * SR) : (int64_t)n;
        if (to > (int64_t)n) to = (int64_t)n;
        if (from >= to || es_cal_stream_add_window(out, position + from, position + to + after,
                                                   item->keyword) != 0)
            return es_error_set(err, ES_CAL_ERR_DATA,
                                "%s: the keyword's window %.3f-%.3f s is not in the clip",
                                item->path, item->start_s, item->end_s);
        out->windows[out->window_count - 1].in_noise = in_noise;
        out->windows[out->window_count - 1].recorded = item->recorded != 0;
    } else if (item->near_miss) {
        if (es_cal_stream_add_window(out, position, position + (int64_t)n + after,
                                     ES_CAL_NEAR_MISS) != 0)
            return es_error_set(err, ES_CAL_ERR_NOMEM, "out of memory");
        const int kind = item->near_miss - 1;
        out->windows[out->window_count - 1].kind =
            kind >= 0 && kind < ES_CAL_NEAR_MISS_KINDS ? kind : 0;
    }
    return 0;
}

/* One clip into the stream: at its speed, a third of the time in noise, over
 * a faint floor, then a gap. 1 when the clip cannot be read (skipped). */
static int stream_clip(stream_run *r, const es_cal_item *item, es_cal_stream *out, size_t *streamed,
                       es_error *err) {
    size_t n = 0;
    float *samples = read_clip(item->path, (size_t)ES_CAL_MAX_CLIP_S * SR, &n);
    if (!samples) return 1;
    const double speed = item->speed > 0.0f ? item->speed : 1.0;
    if (speed != 1.0) {
        float *sped = NULL;
        size_t sped_count = 0;
        const int failed = es_augment_speed(samples, n, (float)speed, SR, &sped, &sped_count, NULL);
        free(samples);
        if (failed) return es_error_set(err, ES_CAL_ERR_NOMEM, "out of memory");
        samples = sped;
        n = sped_count;
    }
    es_rng *rng = &r->rng;
    const int noise_clips = r->noises ? r->noises->count : 0;
    const double floor_peak = sqrt(3.0) * pow(10.0, es_rng_uniform(rng, -80.0, -60.0) / 20.0);
    const int in_noise = noise_clips > 0 && es_rng_uniform(rng, 0, 1) < 1.0 / 3;
    if (in_noise) {
        const int which = es_rng_below(rng, noise_clips);
        es_augment_add_noise(samples, n, es_mean_power(samples, n), r->noises->samples[which],
                             r->noises->counts[which],
                             (size_t)es_rng_below(rng, (int)r->noises->counts[which]),
                             (float)es_rng_uniform(rng, 5.0, 20.0));
    }
    for (size_t s = 0; s < n; s++)
        samples[s] += (float)es_rng_uniform(rng, -floor_peak, floor_peak);
    const size_t gap_count = (size_t)(es_rng_uniform(rng, 0.3, 1.0) * SR);
    for (size_t s = 0; s < gap_count; s++)
        r->gap[s] = (float)es_rng_uniform(rng, -floor_peak, floor_peak);
    int rc = add_item_window(out, item, r->position, n, speed, in_noise, err);
    if (rc == 0 &&
        (es_pipeline_push(r->pipeline, samples, n) != ES_PIPELINE_OK ||
         es_pipeline_push(r->pipeline, r->gap, gap_count) != ES_PIPELINE_OK || r->log.failed))
        rc = es_error_set(err, ES_CAL_ERR_NOMEM, "the calibration stream failed (out of memory?)");
    r->position += (int64_t)(n + gap_count);
    out->clips++;
    *streamed = n;
    free(samples);
    return rc;
}

/* The pipeline of `earshot file`, offline, with the built-in VAD and `model`. */
static int open_stream(const es_model *model, stream_run *r, es_model **vad, es_error *err) {
    es_error load_err;
    if (es_pipeline_load_model(NULL, "vad", NULL, vad, &load_err) != ES_PIPELINE_OK)
        return es_error_set(err, ES_CAL_ERR_MODEL, "the built-in VAD model: %s", load_err.why);
    es_pipeline_config config;
    es_pipeline_config_default(&config, ES_PIPELINE_OFFLINE);
    config.source = "calibration";
    config.vad_model = *vad;
    config.kws_models[0] = model;
    config.kws_model_count = 1;
    config.input_rate_hz = SR;
    config.input_channels = 1;
    config.on_frame = log_frame;
    config.frame_user = &r->log;
    if (es_pipeline_create(&config, &r->pipeline, &load_err) != ES_PIPELINE_OK)
        return es_error_set(err, ES_CAL_ERR_MODEL, "cannot run the model: %s", load_err.why);
    if (es_pipeline_keyword_count(r->pipeline) != r->log.stream->keyword_count)
        return es_error_set(err, ES_CAL_ERR_MODEL, "the pipeline sees %d keywords, the model %d",
                            es_pipeline_keyword_count(r->pipeline), r->log.stream->keyword_count);
    r->gap = malloc(sizeof(float) * SR);
    return r->gap ? 0 : es_error_set(err, ES_CAL_ERR_NOMEM, "out of memory");
}

int es_cal_run_stream(const es_model *model, es_cal_item *items, int count,
                      const es_cal_noises *noises, uint64_t seed, es_cal_progress_fn progress,
                      void *progress_user, es_cal_stream *out, es_error *err) {
    es_cal_stream_init(out, model);
    if (out->keyword_count == 0)
        return es_error_set(err, ES_CAL_ERR_MODEL, "the model has no keyword outputs");
    stream_run r = {.log = {out, 0}, .noises = noises};
    es_rng_seed(&r.rng, seed);
    shuffle(items, count, &r.rng);
    es_model *vad = NULL;
    int rc = open_stream(model, &r, &vad, err);
    for (int i = 0; i < count && rc == 0; i++) {
        size_t streamed = 0;
        rc = stream_clip(&r, &items[i], out, &streamed, err);
        if (rc == 1) {
            out->skipped++;
            rc = 0;
            continue;
        }
        if (progress) progress((double)streamed / SR, progress_user);
    }
    if (rc == 0 && (es_pipeline_finish(r.pipeline) != ES_PIPELINE_OK || r.log.failed))
        rc = es_error_set(err, ES_CAL_ERR_NOMEM, "the calibration stream failed (out of memory?)");
    free(r.gap);
    es_pipeline_destroy(r.pipeline);
    es_model_destroy(vad);
    es_cal_stream_finish(out, (double)r.position / SR);
    if (rc == 0 && out->window_count > 0 && !out->reach)
        rc = es_error_set(err, ES_CAL_ERR_NOMEM, "out of memory");
    return rc;
}

/* ---- detection ------------------------------------------------------------------------- */

typedef struct count_state {
    const es_cal_stream *stream;
    int keyword;
    char *hit;
    int false_alarms;
} count_state;

static void count_event(const es_event *event, void *user) {
    count_state *c = user;
    const es_cal_stream *s = c->stream;
    const int64_t at = (int64_t)llround(event->time_s * SR);
    /* Windows are in order of start: the last starting at or before `at`, then
     * back while an earlier one may still reach past it. */
    int low = 0, high = s->window_count - 1, found = -1;
    while (low <= high) {
        const int mid = (low + high) / 2;
        if (s->windows[mid].start <= at) {
            found = mid;
            low = mid + 1;
        } else
            high = mid - 1;
    }
    int inside = 0;
    for (int i = found; i >= 0 && s->reach[i] > at; i--) {
        if (at >= s->windows[i].end) continue;
        inside = 1;
        if (s->windows[i].keyword == c->keyword || s->windows[i].keyword == ES_CAL_NEAR_MISS)
            c->hit[i] = 1;
    }
    if (!inside) c->false_alarms++;
}

int es_cal_detect(const es_cal_stream *s, int keyword, float threshold, int smooth_ms,
                  es_cal_counts *out) {
    *out = (es_cal_counts){0};
    if (keyword < 0 || keyword >= s->keyword_count || (s->window_count > 0 && !s->reach)) return -1;
    es_kws_config config;
    es_kws_config_default(&config);
    config.default_threshold = threshold;
    if (smooth_ms > 0) config.smooth_ms = smooth_ms;
    es_frontend_config frontend;
    es_frontend_config_default(&frontend);
    const char *labels[] = {s->labels[keyword]};
    es_kws_detector *detector = NULL;
    if (es_kws_detector_create(&config, 1, labels, frontend.sample_rate_hz, frontend.hop_samples,
                               &detector) != ES_DETECT_OK)
        return -1;
    count_state c = {s, keyword, calloc((size_t)s->window_count + 1, 1), 0};
    if (!c.hit) {
        es_kws_detector_destroy(detector);
        return -1;
    }
    const size_t stride = (size_t)s->keyword_count;
    for (size_t t = 0; t < s->frames; t++)
        es_kws_detector_step(detector, (int64_t)t * frontend.hop_samples,
                             &s->posteriors[t * stride + (size_t)keyword], 1, count_event, &c);
    es_kws_detector_flush(detector, count_event, &c);
    es_kws_detector_destroy(detector);
    for (int i = 0; i < s->window_count; i++) {
        if (s->windows[i].keyword == ES_CAL_NEAR_MISS) {
            out->near_misses++;
            out->accepted += c.hit[i];
            out->near_misses_of_kind[s->windows[i].kind]++;
            out->accepted_of_kind[s->windows[i].kind] += c.hit[i];
        } else if (s->windows[i].keyword == keyword) {
            out->positives++;
            out->hits += c.hit[i];
            out->positives_in_noise += s->windows[i].in_noise;
            out->hits_in_noise += s->windows[i].in_noise && c.hit[i];
            out->positives_recorded += s->windows[i].recorded;
            out->hits_recorded += s->windows[i].recorded && c.hit[i];
        }
    }
    out->false_alarms = c.false_alarms;
    free(c.hit);
    return 0;
}

double es_cal_per_hour(int count, double seconds) {
    return seconds > 0 ? count * 3600.0 / seconds : NAN;
}

/* ---- thresholds ------------------------------------------------------------------------ */

static int make_grid(float *grid) {
    int n = 0;
    for (int i = 5; i <= 95; i++)
        grid[n++] = (float)i / 100.0f;
    static const float top[] = {0.96f, 0.97f, 0.98f, 0.99f, 0.995f, 0.998f, 0.999f};
    for (size_t i = 0; i < COUNT_OF(top); i++)
        grid[n++] = top[i];
    return n;
}

#define GRID_MAX 128
#define UNKNOWN INT_MAX /* below the first grid point over the budget: not measured */
#define NO_NEAR_LIMIT (INT_MAX / 4)

/* One keyword's measurements down the grid, from the top until its own
 * false alarms exceed the whole budget. */
typedef struct curve {
    double hits[GRID_MAX];       /* recorded people's weighted (es_cal_budget.recorded_weight) */
    int at_least[GRID_MAX];      /* the most false alarms at that threshold or any higher
                                    one; UNKNOWN */
    int near_at_least[GRID_MAX]; /* the same of the near misses accepted */
    double alarms[GRID_MAX];     /* the false alarms a move counts: at_least, or with
                                    extrapolate_tail at least the tail's expectation */
    int lowest;                  /* the lowest grid point measured */
} curve;

/* The tail of one keyword's keyword-free peaks, in logit space: `count` peaks at or
 * above x0 (the lowest grid point measured), exceeding it by `mean_excess` on average
 * (NAN when fewer than ES_CAL_TAIL_MIN_FIT). As an exponential tail, count *
 * exp(-(x - x0) / mean_excess) peaks are expected above x on audio of the same length. */
typedef struct tail {
    double x0, count, mean_excess;
} tail;

static double logit(double p) {
    return log(p / (1.0 - p));
}

static tail fit_tail(const curve *c, const float *grid, int n) {
    tail t = {logit(grid[c->lowest]), c->at_least[c->lowest], NAN};
    if (t.count < ES_CAL_TAIL_MIN_FIT) return t;
    /* The peaks that appear between grid points g + 1 and g lie between them:
     * taken at the middle (in logit space); above the top, half a step above. */
    double excess = 0;
    int above = 0;
    for (int g = n - 1; g >= c->lowest; g--) {
        const double upper =
            g + 1 < n ? logit(grid[g + 1]) : 2 * logit(grid[g]) - logit(grid[g - 1]);
        excess += (c->at_least[g] - above) * (0.5 * (logit(grid[g]) + upper) - t.x0);
        above = c->at_least[g];
    }
    t.mean_excess = fmax(excess / t.count, 0.05);
    return t;
}

/* Raises each curve's alarms above its lowest measured point to what its tail
 * expects: a keyword whose peaks run thin above some level gets no free moves
 * there. A keyword with too few peaks to fit takes the others' mean excess
 * (weighted by their peaks), and at least one peak at its lowest point. */
static void expect_tails(curve *curves, int k_count, const float *grid, int n) {
    tail tails[ES_KWS_MAX_KEYWORDS];
    double weighted = 0, weights = 0;
    for (int k = 0; k < k_count; k++) {
        tails[k] = fit_tail(&curves[k], grid, n);
        if (!isnan(tails[k].mean_excess)) {
            weighted += tails[k].mean_excess * tails[k].count;
            weights += tails[k].count;
        }
    }
    for (int k = 0; k < k_count; k++) {
        tail t = tails[k];
        if (isnan(t.mean_excess)) t.mean_excess = weights > 0 ? weighted / weights : 1.0;
        if (t.count < 1) t.count = 1;
        curve *c = &curves[k];
        for (int g = c->lowest; g < n; g++)
            c->alarms[g] =
                fmax(c->alarms[g], t.count * exp(-(logit(grid[g]) - t.x0) / t.mean_excess));
    }
}

/* The best move of one keyword from grid point `from`; 1 when there is one.
 * Its cost weighs the false alarms and near misses it adds by the share of
 * their budgets they take: cost = alarms * near_allowed + near * alarms_allowed
 * (each allowance at least 1). */
typedef struct move {
    int keyword, to;
    double gain, cost;
} move;

/* a better than b? Moves that gain hits first, by hits per cost (false alarms,
 * or with a near-miss limit the weighted sum above; free ones first), then more
 * hits, then the lower threshold; then the others by most hits (least lost),
 * lowest cost, lower threshold. */
static int better(const move *a, const move *b) {
    const int a_gains = a->gain > 0, b_gains = b->gain > 0;
    if (a_gains != b_gains) return a_gains;
    if (a_gains) {
        /* a.gain / a.cost vs b.gain / b.cost, with cost 0 as infinite. */
        const double lhs = a->gain * b->cost, rhs = b->gain * a->cost;
        if (lhs != rhs) return lhs > rhs;
        if (a->gain != b->gain) return a->gain > b->gain;
        return a->to < b->to;
    }
    if (a->gain != b->gain) return a->gain > b->gain;
    if (a->cost != b->cost) return a->cost < b->cost;
    return a->to < b->to;
}

/* out's thresholds, counts and totals at `thresholds`; its budget fields untouched. */
static int measure(const es_cal_stream *s, const float *thresholds, int smooth_ms,
                   es_cal_result *out) {
    out->hits = out->positives = out->false_alarms = out->near_accepted = 0;
    out->hits_recorded = out->positives_recorded = 0;
    for (int k = 0; k < s->keyword_count; k++) {
        out->thresholds[k] = thresholds[k];
        if (es_cal_detect(s, k, thresholds[k], smooth_ms, &out->counts[k]) != 0) return -1;
        out->hits += out->counts[k].hits;
        out->positives += out->counts[k].positives;
        out->hits_recorded += out->counts[k].hits_recorded;
        out->positives_recorded += out->counts[k].positives_recorded;
        out->false_alarms += out->counts[k].false_alarms;
        out->near_accepted += out->counts[k].accepted;
    }
    return 0;
}

int es_cal_measure(const es_cal_stream *s, const float *thresholds, int smooth_ms,
                   es_cal_result *out) {
    memset(out, 0, sizeof *out);
    out->smooth_ms = smooth_ms;
    out->near_allowed = -1;
    out->met = 1;
    out->expected_alarms = NAN;
    return s->keyword_count < 1 ? -1 : measure(s, thresholds, smooth_ms, out);
}

/* What a recorded person's hit adds beyond a synthetic voice's in the choice. */
static double recorded_extra(const es_cal_budget *budget) {
    return budget->recorded_weight > 1.0f ? budget->recorded_weight - 1.0 : 0.0;
}

/* Over 80 lines: the greedy search of calibrate.h step 3 in one piece, as its
 * comment there tells it. */
int es_cal_calibrate(const es_cal_stream *s, const es_cal_budget *budget, int smooth_ms,
                     es_cal_result *out) {
    memset(out, 0, sizeof *out);
    out->smooth_ms = smooth_ms;
    const int k_count = s->keyword_count;
    if (k_count < 1) return -1;
    const float max_per_hour = budget->max_per_hour;
    float grid[GRID_MAX];
    const int n = make_grid(grid);
    /* The most false alarms in all that the budget allows. */
    int allowed = (int)floor(max_per_hour * s->negative_seconds / 3600.0);
    if (allowed < 0) allowed = 0;
    while (es_cal_per_hour(allowed + 1, s->negative_seconds) <= max_per_hour)
        allowed++;
    while (allowed > 0 && !(es_cal_per_hour(allowed, s->negative_seconds) <= max_per_hour))
        allowed--;
    /* Expected false alarms need not be whole. */
    const double alarms_allowed =
        budget->extrapolate_tail ? max_per_hour * s->negative_seconds / 3600.0 : allowed;
    /* And the most near misses accepted, all keywords together. */
    const float share = budget->max_near_miss_share;
    const int near_limited = share >= 0.0f && share < 1.0f;
    const int near_allowed =
        near_limited ? (int)floor(share * s->near_misses + 1e-9) : NO_NEAR_LIMIT;
    /* Without a limit a move costs its false alarms, as it always did. */
    const double alarm_weight = near_limited && near_allowed > 0 ? near_allowed : 1;
    const double near_weight = near_limited ? (allowed > 0 ? allowed : 1) : 0;
    const double recorded = recorded_extra(budget);

    out->allowed = allowed;
    out->near_allowed = near_limited ? near_allowed : -1;
    curve *curves = malloc(sizeof(curve) * (size_t)k_count);
    if (!curves) return -1;
    int cur[ES_KWS_MAX_KEYWORDS];
    for (int k = 0; k < k_count; k++) {
        curve *c = &curves[k];
        int most = 0, near_most = 0;
        c->lowest = n - 1;
        for (int g = n - 1; g >= 0; g--) {
            /* Down to where the budget is spent; a tail needs its peaks. */
            const int needed = (most <= allowed && near_most <= near_allowed) ||
                               (budget->extrapolate_tail && most < ES_CAL_TAIL_PEAKS);
            if (!needed) {
                c->hits[g] = 0;
                c->at_least[g] = c->near_at_least[g] = UNKNOWN;
                c->alarms[g] = INFINITY;
                continue;
            }
            es_cal_counts counts;
            if (es_cal_detect(s, k, grid[g], smooth_ms, &counts) != 0) {
                free(curves);
                return -1;
            }
            c->hits[g] = counts.hits + recorded * counts.hits_recorded;
            if (counts.false_alarms > most) most = counts.false_alarms;
            if (counts.accepted > near_most) near_most = counts.accepted;
            c->at_least[g] = most;
            c->near_at_least[g] = near_most;
            c->alarms[g] = most;
            c->lowest = g;
        }
    }
    if (budget->extrapolate_tail) expect_tails(curves, k_count, grid, n);
    double total = 0;
    long long near_total = 0;
    for (int k = 0; k < k_count; k++) {
        cur[k] = n - 1;
        total += curves[k].alarms[n - 1];
        near_total += curves[k].near_at_least[n - 1];
    }
    out->met = total <= alarms_allowed + 1e-9 && near_total <= near_allowed;
    while (out->met) {
        move best = {-1, 0, 0.0, 0.0};
        for (int k = 0; k < k_count; k++) {
            const curve *c = &curves[k];
            for (int g = cur[k] - 1; g >= 0; g--) {
                if (c->at_least[g] == UNKNOWN) break;
                const double alarms = c->alarms[g] - c->alarms[cur[k]];
                const int near = c->near_at_least[g] - c->near_at_least[cur[k]];
                /* and lower ones cost as much or more */
                if (total + alarms > alarms_allowed + 1e-9 || near_total + near > near_allowed)
                    break;
                const move m = {k, g, c->hits[g] - c->hits[cur[k]],
                                alarms * alarm_weight + near * near_weight};
                if (best.keyword < 0 || better(&m, &best)) best = m;
            }
        }
        if (best.keyword < 0) break;
        const curve *c = &curves[best.keyword];
        total += c->alarms[best.to] - c->alarms[cur[best.keyword]];
        near_total += c->near_at_least[best.to] - c->near_at_least[cur[best.keyword]];
        cur[best.keyword] = best.to;
    }
    out->expected_alarms = budget->extrapolate_tail ? total : NAN;
    free(curves);
    float thresholds[ES_KWS_MAX_KEYWORDS];
    for (int k = 0; k < k_count; k++)
        thresholds[k] = grid[cur[k]];
    /* Measured again at the thresholds for the whole breakdown (by kind of
     * near miss, in noise), which the curves do not keep. */
    return measure(s, thresholds, smooth_ms, out);
}

/* The hits a choice counts: recorded people's weighted as in the budget. */
static double weighted_hits(const es_cal_result *r, const es_cal_budget *budget) {
    return r->hits + recorded_extra(budget) * r->hits_recorded;
}

int es_cal_calibrate_smoothing(const es_cal_stream *s, const es_cal_budget *budget,
                               const int *smoothing, int count, es_cal_result *out,
                               es_cal_result *trials) {
    if (count < 1) return -1;
    es_cal_result *trial = malloc(sizeof *trial);
    if (!trial) return -1;
    int rc = 0;
    for (int i = 0; i < count && rc == 0; i++) {
        rc = es_cal_calibrate(s, budget, smoothing[i], trial);
        const int better =
            i == 0 || (trial->met && !out->met) ||
            (trial->met == out->met && weighted_hits(trial, budget) > weighted_hits(out, budget));
        if (rc == 0 && better) *out = *trial;
        if (rc == 0 && trials) trials[i] = *trial;
    }
    free(trial);
    return rc;
}

int es_cal_apply(es_model *model, const es_cal_stream *s, const es_cal_result *result) {
    float thresholds[ES_MAX_OUTPUTS] = {0};
    int smoothing[ES_MAX_OUTPUTS] = {0};
    const int outputs = es_model_output_size(model);
    if (outputs > ES_MAX_OUTPUTS) return -1;
    for (int k = 0; k < s->keyword_count; k++) {
        const int o = s->outputs[k];
        if (o < 0 || o >= outputs || strcmp(es_model_label(model, o), s->labels[k]) != 0) return -1;
        thresholds[o] = result->thresholds[k];
        smoothing[o] = result->smooth_ms;
    }
    if (es_model_set_thresholds(model, thresholds) != ES_RNN_OK) return -1;
    return es_model_set_smoothing(model, result->smooth_ms > 0 ? smoothing : NULL) == ES_RNN_OK
               ? 0
               : -1;
}
