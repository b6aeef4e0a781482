/*
 * One training or validation sequence (factory.h tells the recipe):
 * its clean audio put together from clips (compose_clean), then sped up,
 * labelled, augmented and framed (render_sequence). The order of the random
 * draws is part of the recipe: fixed seeds must give the same models.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train_model_internal.h"

/* ---- buffers and windows ------------------------------------------------------------ */

static int buffer_reserve(sample_buffer *b, size_t more) {
    if (b->count + more <= b->capacity) return 0;
    size_t capacity = b->capacity ? b->capacity : 65536;
    while (capacity < b->count + more)
        capacity *= 2;
    float *grown = realloc(b->data, sizeof(float) * capacity);
    if (!grown) return -1;
    b->data = grown;
    b->capacity = capacity;
    return 0;
}

int buffer_append(sample_buffer *b, const float *samples, size_t count) {
    if (buffer_reserve(b, count)) return -1;
    if (samples)
        memcpy(b->data + b->count, samples, sizeof(float) * count);
    else
        memset(b->data + b->count, 0, sizeof(float) * count);
    b->count += count;
    return 0;
}

void built_free(built_sequence *b) {
    free(b->inputs);
    free(b->targets);
    free(b->class_targets);
    memset(b, 0, sizeof(*b));
}

size_t seconds_to_samples(double s) {
    return (size_t)(s * SAMPLE_RATE_HZ);
}

const clip_window WHOLE_CLIP = {0.0, INFINITY, 0.0};

int append_clip(sample_buffer *b, const clip *c, clip_window w, double *origin_s, es_error *err) {
    float *samples = NULL;
    size_t count = 0;
    const int loaded = load_clip(c->path, &samples, &count, err);
    if (loaded != 0) return loaded;
    size_t from = seconds_to_samples(w.from_s > 0.0 ? w.from_s : 0.0);
    size_t to = isfinite(w.to_s) ? seconds_to_samples(w.to_s) : count;
    if (w.last_s > 0.0) {
        const size_t last = seconds_to_samples(w.last_s);
        from = count > last ? count - last : 0;
        to = count;
    }
    if (to > count && isfinite(w.to_s)) {
        /* A window past a short clip's end slides back to end with the clip. */
        const size_t length = to - from;
        to = count;
        from = count > length ? count - length : 0;
    }
    if (to > count) to = count;
    if (from > to) from = to;
    *origin_s = ((double)b->count - (double)from) / SAMPLE_RATE_HZ;
    const int rc = buffer_append(b, samples + from, to - from);
    free(samples);
    return rc ? es_error_set(err, ES_TRAIN_ERR_NOMEM, "%s: out of memory", c->path) : 0;
}

typedef struct frame_collector {
    float *inputs;
    int frames, capacity, bands;
    int skip; /* frames still to drop before collecting (the warm-up's) */
} frame_collector;

static void collect_frame(const es_frame *frame, void *user) {
    frame_collector *fc = user;
    if (fc->skip > 0) {
        fc->skip--;
        return;
    }
    if (fc->frames >= fc->capacity) return;
    memcpy(fc->inputs + (size_t)fc->frames * fc->bands, frame->features,
           sizeof(float) * (size_t)fc->bands);
    fc->frames++;
}

float *builder_features(const es_frontend_config *config, sequence_builder *b, const float *samples,
                        size_t count, int capacity, int skip, int *frames) {
    float *inputs = malloc(sizeof(float) * (size_t)(capacity + 1) * config->mel_bands);
    if (!inputs) return NULL;
    frame_collector fc = {
        .inputs = inputs, .capacity = capacity, .bands = config->mel_bands, .skip = skip};
    es_frontend_reset(b->frontend);
    es_frontend_process(b->frontend, samples, count, collect_frame, &fc);
    *frames = fc.frames;
    return inputs;
}

/* ---- what a sequence holds ------------------------------------------------------------ */

/* Sequence recipes: how often each kind leads a sequence. Keyword-free speech
 * dominates the KWS mix on purpose: the prototype's false alarms came from it. */
static int draw_kind(const trainer_data *d, int split, es_rng *rng) {
    static const float vad_weights[ES_KIND_COUNT] = {0.2f, 0.35f, 0.3f, 0.15f};
    /* KWS: noise and music alone too, or the model never learns that they
     * are not speech: custom models fired 6 times an hour on unseen music. */
    static const float kws_weights[ES_KIND_COUNT] = {0.45f, 0.4f, 0.15f, 0.1f};
    const float *w = d->opt->task == ES_TRAIN_VAD ? vad_weights : kws_weights;
    float total = 0.0f;
    for (int k = 0; k < ES_KIND_COUNT; k++)
        if (d->mf->kind_count[split][k] > 0) total += w[k];
    if (total <= 0.0f) return -1;
    float x = (float)es_rng_uniform(rng, 0.0, total);
    for (int k = 0; k < ES_KIND_COUNT; k++) {
        if (d->mf->kind_count[split][k] == 0 || w[k] == 0.0f) continue;
        if (x < w[k]) return k;
        x -= w[k];
    }
    for (int k = ES_KIND_COUNT - 1; k >= 0; k--)
        if (d->mf->kind_count[split][k] > 0 && w[k] > 0.0f) return k;
    return -1;
}

static const clip *draw_clip(const trainer_data *d, int split, int kind, es_rng *rng) {
    const int n = d->mf->kind_count[split][kind];
    if (n == 0) return NULL;
    const double *sum = d->mf->cumulative_weight[split][kind];
    if (!sum) return &d->mf->clips[d->mf->by_split_kind[split][kind][es_rng_below(rng, n)]];
    /* The first clip whose running sum passes a uniform draw over the total. */
    const double x = es_rng_uniform(rng, 0.0, sum[n - 1]);
    int low = 0, high = n - 1;
    while (low < high) {
        const int mid = low + (high - low) / 2;
        if (sum[mid] > x)
            high = mid;
        else
            low = mid + 1;
    }
    return &d->mf->clips[d->mf->by_split_kind[split][kind][low]];
}

/* KWS sequences stay short: a batch costs its longest sequence times its
 * size, and the keyword's own frames are what is scarce. Filler is a random
 * window of each clip; speech before a keyword, only its last moments. */
#define KWS_FILLER_MAX_S 1.6
#define KWS_CONTEXT_MAX_S 0.8
#define KWS_MAX_GAP_S 0.4  /* between the context and the last clip */
#define KWS_MAX_TAIL_S 0.6 /* after the last clip */

/* How often a sequence (VAD or KWS) has a warm-up, and how long it is: a few
 * running-mean time constants (3 s) would be exact but cost a lot of
 * front-end work. */
#define WARMUP_SHARE 0.7
#define WARMUP_MIN_S 1.0
#define WARMUP_MAX_S 4.0

/* VAD: pauses between utterances and after the last one last up to this long.
 * Live streams pause for seconds; trained on pauses of at most 1.2 s, the VAD
 * scored the noise of longer ones too high (tools/eval/vad-breakdown.js). */
#define VAD_MAX_PAUSE_S 2.5

static clip_window kws_filler_window(es_rng *rng) {
    const double from = es_rng_uniform(rng, 0.0, 2.0);
    return (clip_window){from, from + KWS_FILLER_MAX_S, 0.0};
}

/* A filler window that ends a little after `peak_s`: what made a hard
 * negative hard, with the second of speech that led up to it. */
static clip_window kws_window_before(double peak_s, es_rng *rng) {
    const double to = peak_s + es_rng_uniform(rng, 0.1, 0.5);
    const double from = to - KWS_FILLER_MAX_S;
    return (clip_window){from > 0.0 ? from : 0.0, to, 0.0};
}

static clip_window kws_context_window(es_rng *rng) {
    return (clip_window){0.0, INFINITY, es_rng_uniform(rng, 0.2, KWS_CONTEXT_MAX_S)};
}

/* A keyword clip from a little before its keyword: carriers are cut short. */
static clip_window kws_keyword_window(const clip *c, es_rng *rng) {
    return (clip_window){c->start_s - es_rng_uniform(rng, 0.1, KWS_CONTEXT_MAX_S), INFINITY, 0.0};
}

/* The noises of a split (the train split's when it has none). */
static const noise_pool *split_noises(const trainer_data *d, int split) {
    const noise_pool *pool = &d->noises[split == ES_SPLIT_TRAIN ? 0 : 1];
    return pool->count > 0 ? pool : &d->noises[0];
}

/* KWS noise alone: a stretch of one of the split's noises, from the pool in
 * memory (decoding a minute of music for three seconds slowed every batch). */
#define KWS_NOISE_MAX_S 3.0

static int append_pool_noise(sample_buffer *b, const noise_pool *pool, es_rng *rng) {
    const int which = es_rng_below(rng, pool->count);
    const size_t count = pool->counts[which];
    size_t length = seconds_to_samples(KWS_NOISE_MAX_S);
    if (length > count) length = count;
    const size_t from = (size_t)es_rng_below(rng, (int)(count - length + 1));
    return buffer_append(b, pool->samples[which] + from, length);
}

/* ---- the clean audio -------------------------------------------------------------------- */

/* A sequence as its clean audio is put together. */
typedef struct sequence_plan {
    int split, kind, kws;
    size_t warmup_samples;             /* the warm-up speech at the buffer's start */
    size_t content_start, content_end; /* the clips, between lead-in and tail */
    const clip *target;                /* the last clip: the keyword, if any */
    double target_origin_s;            /* where its time 0 falls in the buffer */
    double hard_peak_s;                /* a hard negative's peak: its window is around it */
    const noise_pool *noises;
} sequence_plan;

static int sequence_failed(const trainer_data *d, es_error *err) {
    return es_error_set(err, ES_TRAIN_ERR_DATA,
                        "%s: cannot build a training sequence (out of memory?)",
                        d->opt->manifest_path);
}

/* Warm-up: a live stream's running-mean normalisation has usually heard
 * seconds of speech before any word, so most sequences begin after some;
 * its frames set the mean and are dropped before the network sees them. */
static int append_warmup(const trainer_data *d, sample_buffer *clean, int split, es_rng *rng,
                         es_error *err) {
    if (!(es_rng_uniform(rng, 0.0, 1.0) < WARMUP_SHARE)) return 0;
    const clip *warm = draw_clip(d, split, ES_KIND_SENTENCE, rng);
    if (!warm) warm = draw_clip(d, split, ES_KIND_SPEECH, rng);
    if (!warm) return 0;
    double unused_origin_s;
    const double from = es_rng_uniform(rng, 0.0, 1.0);
    const clip_window w = {from, from + es_rng_uniform(rng, WARMUP_MIN_S, WARMUP_MAX_S), 0.0};
    return append_clip(clean, warm, w, &unused_origin_s, err);
}

/* The clip the sequence is about; KWS keyword-free sequences are led by a
 * hard negative HARD_SHARE of the time once a round has found some. */
static void pick_target(const trainer_data *d, sequence_plan *p, es_rng *rng) {
    p->target = draw_clip(d, p->split, p->kind, rng);
    p->hard_peak_s = -1.0;
    if (p->kws && p->split == ES_SPLIT_TRAIN &&
        (p->kind == ES_KIND_SENTENCE || p->kind == ES_KIND_SPEECH) && d->hard_count > 0 &&
        es_rng_uniform(rng, 0.0, 1.0) < HARD_SHARE) {
        const int which = es_rng_below(rng, d->hard_count);
        p->target = &d->mf->clips[d->hard_clips[which]];
        p->hard_peak_s = d->hard_peak_s[which];
    }
}

/* KWS: keyword-free speech in runs of up to 2 clips, noise alone; a keyword
 * after speech now and then. VAD: up to 2 clips, so sequences hold speech
 * ends and restarts. */
static int part_count(const sequence_plan *p, es_rng *rng) {
    int parts = 1;
    if (p->kws && p->kind != ES_KIND_KEYWORD && p->kind != ES_KIND_NOISE)
        parts = 1 + es_rng_below(rng, 2);
    if (p->kws && p->kind == ES_KIND_KEYWORD && es_rng_uniform(rng, 0, 1) < 0.3) parts = 2;
    if (!p->kws && p->kind != ES_KIND_NOISE) parts = 1 + es_rng_below(rng, 2);
    return parts;
}

static clip_window part_window(const sequence_plan *p, const clip *c, int last, es_rng *rng) {
    if (!p->kws) return WHOLE_CLIP;
    if (!last) return kws_context_window(rng);
    return p->kind == ES_KIND_KEYWORD ? kws_keyword_window(c, rng)
           : p->hard_peak_s >= 0.0    ? kws_window_before(p->hard_peak_s, rng)
                                      : kws_filler_window(rng);
}

/* The clips of the sequence, context first and the target last, with gaps. */
static int append_parts(const trainer_data *d, sample_buffer *clean, sequence_plan *p, es_rng *rng,
                        es_error *err) {
    int parts = part_count(p, rng);
    const double max_gap_s = p->kws ? KWS_MAX_GAP_S : VAD_MAX_PAUSE_S;
    if (p->kws && p->kind == ES_KIND_NOISE && p->noises->count > 0) {
        if (append_pool_noise(clean, p->noises, rng) != 0) return sequence_failed(d, err);
        parts = 0; /* noise alone: no clip */
    }
    for (int part = 0; part < parts; part++) {
        const int last = part == parts - 1;
        const clip *c = p->target;
        if (!last) {
            /* Context before the last clip: keyword-free speech. */
            c = draw_clip(d, p->split, ES_KIND_SENTENCE, rng);
            if (!c) c = draw_clip(d, p->split, ES_KIND_SPEECH, rng);
            if (!c) c = p->target;
        }
        double origin_s = 0.0;
        const int rc = append_clip(clean, c, part_window(p, c, last, rng), &origin_s, err);
        if (rc != 0) return rc;
        if (last) p->target_origin_s = origin_s;
        const double gap_s = !last ? es_rng_uniform(rng, 0.05, max_gap_s) : 0.0;
        if (buffer_append(clean, NULL, seconds_to_samples(gap_s))) return sequence_failed(d, err);
    }
    return 0;
}

/* Warm-up, lead-in silence, the clips, tail silence: the clean audio. */
static int compose_clean(const trainer_data *d, sample_buffer *clean, sequence_plan *p, es_rng *rng,
                         es_error *err) {
    p->kind = draw_kind(d, p->split, rng);
    if (p->kind < 0)
        return es_error_set(err, ES_TRAIN_ERR_DATA, "%s: no usable clips in the %s split",
                            d->opt->manifest_path, es_split_names[p->split]);
    p->kws = d->opt->task == ES_TRAIN_KWS;
    p->noises = split_noises(d, p->split);
    clean->count = 0;
    int rc = append_warmup(d, clean, p->split, rng, err);
    if (rc != 0) return rc;
    p->warmup_samples = clean->count;
    /* Lead-in long enough for the running-mean normalisation to settle on the
     * background, as it has in a live stream. */
    if (buffer_append(clean, NULL, seconds_to_samples(es_rng_uniform(rng, 0.3, 1.0))))
        return sequence_failed(d, err);
    p->content_start = clean->count;
    pick_target(d, p, rng);
    if ((rc = append_parts(d, clean, p, rng, err)) != 0) return rc;
    p->content_end = clean->count;
    const double tail_max_s = p->kws ? KWS_MAX_TAIL_S : VAD_MAX_PAUSE_S;
    if (buffer_append(clean, NULL, seconds_to_samples(es_rng_uniform(rng, 0.2, tail_max_s))))
        return sequence_failed(d, err);
    return 0;
}

/* ---- from clean audio to a sequence ---------------------------------------------------- */

/* The sped-up audio and where the sequence starts in it: at the first frame
 * after the warm-up (frames are one hop apart from the buffer's start, so
 * from there on they are the frames of the buffer cut at that hop). */
typedef struct sped_audio {
    float speed;
    float *samples;
    size_t count;
    int warmup_frames;
    size_t kept_from; /* the first sample of the first kept frame */
    int frames_expected;
} sped_audio;

static int speed_up(const trainer_data *d, sequence_builder *b, const sequence_plan *p, es_rng *rng,
                    sped_audio *out) {
    *out = (sped_audio){.speed = es_augment_draw_speed(&b->augment, rng)};
    const sample_buffer *clean = &b->clean;
    if (es_augment_speed(clean->data, clean->count, out->speed, SAMPLE_RATE_HZ, &out->samples,
                         &out->count, NULL))
        return -1;
    const int hop = d->labels.hop_samples;
    out->warmup_frames = (int)((double)p->warmup_samples / out->speed / hop);
    out->kept_from = (size_t)out->warmup_frames * (size_t)hop;
    const size_t kept_from = out->kept_from < out->count ? out->kept_from : out->count;
    out->frames_expected = es_label_frame_count(&d->labels, out->count - kept_from);
    return 0;
}

/* VAD targets: the clean clip's speech frames (keyword targets come from
 * the window). NULL when out of memory or the labels fail. */
static uint8_t *speech_frames(const trainer_data *d, const sequence_plan *p, const sped_audio *s) {
    uint8_t *speech = malloc((size_t)s->frames_expected + 1);
    if (!speech) return NULL;
    const size_t kept_from = s->kept_from < s->count ? s->kept_from : s->count;
    if (p->kind == ES_KIND_NOISE)
        memset(speech, 0, (size_t)s->frames_expected + 1);
    else if (es_speech_labels(&d->labels, s->samples + kept_from, s->count - kept_from, speech,
                              NULL) < 0) {
        free(speech);
        return NULL;
    }
    return speech;
}

/* Room, band limits, noise and gain (augment.h) over a faint floor. */
static int augment_sped(const sequence_builder *b, const sequence_plan *p, es_rng *rng,
                        double signal_power, sped_audio *s, es_augment_draw *draw) {
    es_augment_draw_params(&b->augment, rng, draw);
    /* A faint floor everywhere: real inputs are never digital silence. Uniform
     * noise (cheaper than Gaussian) of the drawn RMS level. */
    const double floor_peak = sqrt(3.0) * pow(10.0, es_rng_uniform(rng, -85.0, -60.0) / 20.0);
    for (size_t i = 0; i < s->count; i++)
        s->samples[i] += (float)es_rng_uniform(rng, -floor_peak, floor_peak);
    const float *noise_samples = NULL;
    size_t noise_count = 0;
    if (p->noises->count > 0) {
        const int which = es_rng_below(rng, p->noises->count);
        noise_samples = p->noises->samples[which];
        noise_count = p->noises->counts[which];
    }
    return es_augment_audio(draw, rng, s->samples, s->count, signal_power, noise_samples,
                            noise_count, SAMPLE_RATE_HZ, NULL);
}

/* The sequence's features, warped, smoothed and masked when `augment_features`. */
static float *sequence_features(const trainer_data *d, sequence_builder *b, const sped_audio *s,
                                const es_augment_draw *draw, int augment_features, es_rng *rng,
                                int *frames) {
    const int bands = d->frontend_config.mel_bands;
    float *inputs = builder_features(&d->frontend_config, b, s->samples, s->count,
                                     s->frames_expected, s->warmup_frames, frames);
    if (!inputs || *frames == 0 || !augment_features) return inputs;
    es_augment_warp_mel(inputs, *frames, bands, bands, d->frontend_config.mel_low_hz,
                        d->frontend_config.mel_high_hz, draw->warp);
    if (es_augment_envelope(inputs, *frames, bands, bands,
                            es_augment_draw_envelope(&b->augment, rng), NULL) != ES_AUGMENT_OK) {
        free(inputs);
        return NULL;
    }
    es_augment_spec_mask(&b->augment, rng, inputs, *frames, bands, bands);
    return inputs;
}

/* Targets: KWS per-frame classes (labels.h says where and why; built for
 * either KWS loss, as a max-pool run warms up on them), VAD speech frames. */
static int fill_targets(const trainer_data *d, const sequence_plan *p, const sped_audio *s,
                        const uint8_t *speech, built_sequence *out) {
    es_sequence *seq = &out->seq;
    if (!p->kws) {
        out->targets = malloc(sizeof(float) * (size_t)seq->frames);
        if (!out->targets) return -1;
        for (int t = 0; t < seq->frames; t++)
            out->targets[t] = speech[t];
        seq->targets = out->targets;
        return 0;
    }
    if (p->kind == ES_KIND_KEYWORD) {
        const double kept_from_s = (double)s->kept_from / SAMPLE_RATE_HZ;
        const double origin_s = p->target_origin_s;
        es_keyword_window_frames(&d->labels,
                                 (origin_s + p->target->start_s) / s->speed - kept_from_s,
                                 (origin_s + p->target->end_s) / s->speed - kept_from_s,
                                 seq->frames, &seq->kw_start, &seq->kw_end);
        if (seq->kw_end > seq->kw_start) seq->keyword = p->target->output;
    }
    out->class_targets = malloc(sizeof(int) * (size_t)seq->frames);
    if (!out->class_targets) return -1;
    es_keyword_frame_classes(seq->frames, seq->keyword, seq->kw_start, seq->kw_end,
                             out->class_targets);
    seq->class_targets = out->class_targets;
    return 0;
}

/* Speed first: the labels must follow the stretched clip. */
static int render_sequence(const trainer_data *d, sequence_builder *b, const sequence_plan *p,
                           es_rng *rng, int augment_features, built_sequence *out) {
    const sample_buffer *clean = &b->clean;
    const double signal_power =
        es_mean_power(clean->data + p->content_start, p->content_end - p->content_start);
    sped_audio s;
    if (speed_up(d, b, p, rng, &s) != 0) return -1;
    uint8_t *speech = NULL;
    float *inputs = NULL;
    int rc = -1;
    es_augment_draw draw;
    int frames = 0;
    if ((p->kws || (speech = speech_frames(d, p, &s))) &&
        augment_sped(b, p, rng, signal_power, &s, &draw) == 0 &&
        (inputs = sequence_features(d, b, &s, &draw, augment_features, rng, &frames)) &&
        frames > 0) {
        *out = (built_sequence){.inputs = inputs};
        out->seq = (es_sequence){.frames = frames, .inputs = inputs, .keyword = -1};
        rc = fill_targets(d, p, &s, speech, out);
        if (rc != 0) built_free(out);
    } else {
        free(inputs);
    }
    free(speech);
    free(s.samples);
    return rc;
}

int build_sequence(const trainer_data *d, sequence_builder *b, int split, es_rng *rng,
                   int augment_features, built_sequence *out, es_error *err) {
    sequence_plan plan = {.split = split};
    const int rc = compose_clean(d, &b->clean, &plan, rng, err);
    if (rc != 0) return rc;
    if (render_sequence(d, b, &plan, rng, augment_features, out) != 0)
        return sequence_failed(d, err);
    return 0;
}
