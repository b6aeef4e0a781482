/*
 * The trainer: splits each mini-batch across worker threads, reduces their
 * gradients in a fixed order, clips by global norm and applies AdamW (or
 * SGD); and es_train_run, the epoch loop with validation, early stopping,
 * learning-rate decay and progress reports.
 *
 * A STACK in front is no layer to train: the trainer computes the layers
 * after it (`net`, a view of the model without it, on the same parameters)
 * over each sequence regrouped as the STACK would (stack_sequences).
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "train_internal.h"

#define ES_MAX_TRAIN_THREADS 64

typedef enum pass_kind {
    PASS_LOSS,          /* forward and loss */
    PASS_GRADIENT,      /* + parameter gradients */
    PASS_INPUT_GRADIENT /* + gradients w.r.t. the inputs */
} pass_kind;

typedef struct worker {
    es_trainer *trainer;
    es_train_pass pass;
    float *arena; /* the pass's buffers */
    size_t arena_floats;
    int *lengths;
    int lengths_capacity;
    float *grad; /* this worker's summed (not yet averaged) gradient */
    const es_sequence *seqs;
    int count;
    pass_kind kind;
    es_loss_sum sum;
    int status;
} worker;

struct es_trainer {
    es_model *model;
    const es_model *net; /* the model, or behind a STACK: stacked_view */
    es_model stacked_view;
    int stride;            /* the STACK's kernel, else 1 */
    int frozen_net_layers; /* config.frozen_layers, counted in `net` */
    size_t frozen_params;  /* their parameters: [0, this) */
    es_train_config config;
    size_t transposed_offset[ES_MAX_LAYERS * 4];
    float *transposed;
    float *grad;
    float *moment1, *moment2;
    unsigned char *decay_mask;
    long steps;
    int skipped_steps;
    float learning_rate;
    float grad_norm;
    int worker_count;
    worker *workers;        /* worker_count of them */
    es_sequence *by_length; /* the batch being run, longest sequence first */
    size_t by_length_capacity;
    es_sequence *stacked; /* behind a STACK: the batch regrouped, and its targets */
    int *stacked_classes;
    float *stacked_targets;
    size_t stacked_capacity, stacked_classes_capacity, stacked_targets_capacity;
};

void es_train_config_default(es_train_config *config) {
    memset(config, 0, sizeof *config);
    config->loss = ES_LOSS_SOFTMAX_CE;
    config->optimizer = ES_OPTIMIZER_ADAMW;
    config->batch_size = 32;
    config->bptt_frames = 0;
    config->learning_rate = 1e-3f;
    config->beta1 = 0.9f;
    config->beta2 = 0.999f;
    config->eps = 1e-8f;
    config->weight_decay = 0.0f;
    config->clip_norm = 5.0f;
    config->lr_decay = 1.0f;
    config->max_epochs = 30;
    config->patience = 5;
    config->threads = 2;
    config->kws_margin_frames = 10;
    config->keyword_weight = 1.0f;
    config->negative_peak_weight = 0.0f;
    config->seed = 1;
}

static int config_fits_model(const es_train_config *c, const es_model *m) {
    if (m->layer_count < 1 || c->threads < 1 || c->threads > ES_MAX_TRAIN_THREADS) return 0;
    if (c->bptt_frames < 0 || c->kws_margin_frames < 0 || c->batch_size < 1) return 0;
    if (!(c->keyword_weight > 0.0f) || !isfinite(c->keyword_weight)) return 0;
    if (!(c->negative_peak_weight >= 0.0f) || !isfinite(c->negative_peak_weight)) return 0;
    if (!(c->average_decay >= 0.0f && c->average_decay < 1.0f)) return 0;
    if (c->frozen_layers < 0) return 0;
    if (!(c->learning_rate > 0.0f) || !(c->clip_norm >= 0.0f) || !(c->weight_decay >= 0.0f))
        return 0;
    const es_layer *last = &m->layers[m->layer_count - 1];
    if (last->type != ES_LAYER_DENSE && last->type != ES_LAYER_CONV1D) return 0;
    switch (c->loss) {
    case ES_LOSS_SOFTMAX_CE:
    case ES_LOSS_KWS_MAXPOOL:
        return last->activation == ES_ACT_SOFTMAX;
    case ES_LOSS_SIGMOID_CE:
        return last->activation == ES_ACT_SIGMOID;
    }
    return 0;
}

/* The model without its STACK: the same parameters (a STACK has none), the
 * layers after it, their input a whole group of frames. */
static void view_behind_stack(const es_model *m, es_model *view) {
    *view = *m;
    view->layer_count = m->layer_count - 1;
    memmove(view->layers, m->layers + 1, sizeof(es_layer) * (size_t)view->layer_count);
    view->input_size = m->layers[0].output_size;
    view->packed = NULL; /* the passes use the trainer's own layout */
}

int es_trainer_create(es_model *m, const es_train_config *config, es_trainer **out) {
    *out = NULL;
    if (!m || !config) return ES_RNN_ERR_ARG;
    es_trainer *t = calloc(1, sizeof *t);
    if (!t) return ES_RNN_ERR_NOMEM;
    t->stride = es_model_frame_stride(m);
    t->net = m;
    if (es_model_has_stack(m) && m->layer_count > 1) {
        view_behind_stack(m, &t->stacked_view);
        t->net = &t->stacked_view;
    }
    /* The last layer always trains (the frozen layers are counted in the
     * model, whose STACK, if any, is not in `net`). */
    if (!config_fits_model(config, t->net) || t->net->layer_count == 0 ||
        config->frozen_layers >= m->layer_count) {
        free(t);
        return ES_RNN_ERR_ARG;
    }
    t->frozen_net_layers = config->frozen_layers - (t->net != m ? 1 : 0);
    if (t->frozen_net_layers < 0) t->frozen_net_layers = 0;
    t->frozen_params = t->frozen_net_layers ? t->net->layers[t->frozen_net_layers].param_offset : 0;
    t->model = m;
    t->config = *config;
    t->learning_rate = config->learning_rate;
    t->worker_count = config->threads;
    size_t n = m->param_count;
    size_t transposed = es_train_transposed_layout(t->net, t->transposed_offset);
    t->transposed = malloc(sizeof(float) * (transposed ? transposed : 1));
    t->grad = calloc(n, sizeof(float));
    t->moment1 = calloc(n, sizeof(float));
    t->moment2 = calloc(n, sizeof(float));
    t->decay_mask = calloc(n, 1);
    t->workers = calloc((size_t)t->worker_count, sizeof *t->workers);
    int ok = t->transposed && t->grad && t->moment1 && t->moment2 && t->decay_mask && t->workers;
    for (int w = 0; w < t->worker_count && ok; w++) {
        t->workers[w].trainer = t;
        t->workers[w].grad = calloc(n, sizeof(float));
        ok = t->workers[w].grad != NULL;
    }
    if (!ok) {
        es_trainer_destroy(t);
        return ES_RNN_ERR_NOMEM;
    }
    es_train_decay_mask(t->net, t->decay_mask);
    *out = t;
    return ES_RNN_OK;
}

void es_trainer_destroy(es_trainer *t) {
    if (!t) return;
    for (int w = 0; t->workers && w < t->worker_count; w++) {
        free(t->workers[w].arena);
        free(t->workers[w].lengths);
        free(t->workers[w].grad);
    }
    free(t->workers);
    free(t->by_length);
    free(t->stacked);
    free(t->stacked_classes);
    free(t->stacked_targets);
    free(t->transposed);
    free(t->grad);
    free(t->moment1);
    free(t->moment2);
    free(t->decay_mask);
    free(t);
}

/* ---- one pass over a batch --------------------------------------------------------- */

static int sequence_is_valid(const es_trainer *t, const es_sequence *s) {
    int outputs = t->model->output_size;
    if (s->frames < 1 || !s->inputs) return 0;
    switch (t->config.loss) {
    case ES_LOSS_SOFTMAX_CE:
        if (!s->class_targets) return 0;
        for (int i = 0; i < s->frames; i++)
            if (s->class_targets[i] < -1 || s->class_targets[i] >= outputs) return 0;
        return 1;
    case ES_LOSS_SIGMOID_CE:
        return s->targets != NULL;
    case ES_LOSS_KWS_MAXPOOL:
        return s->keyword == -1 || (s->keyword >= 1 && s->keyword < outputs);
    }
    return 0;
}

static int ensure_worker_memory(worker *w, int frames, int want_dinputs) {
    es_trainer *t = w->trainer;
    w->pass.model = t->net;
    size_t floats = es_train_pass_layout(&w->pass, frames, w->count, want_dinputs, NULL);
    if (floats > w->arena_floats) {
        free(w->arena);
        w->arena = aligned_alloc(64, floats * sizeof(float));
        w->arena_floats = w->arena ? floats : 0;
        if (!w->arena) return ES_RNN_ERR_NOMEM;
    }
    if (w->count > w->lengths_capacity) {
        free(w->lengths);
        w->lengths = malloc(sizeof(int) * w->count);
        w->lengths_capacity = w->lengths ? w->count : 0;
        if (!w->lengths) return ES_RNN_ERR_NOMEM;
    }
    es_train_pass_layout(&w->pass, frames, w->count, want_dinputs, w->arena);
    return ES_RNN_OK;
}

/* Lays the slice's sequences out time-major, zero-padded. */
static void load_inputs(worker *w) {
    es_train_pass *p = &w->pass;
    int in = w->trainer->net->input_size;
    memset(p->inputs, 0, sizeof(float) * p->frames * p->batch * in);
    for (int b = 0; b < p->batch; b++) {
        const es_sequence *s = &w->seqs[b];
        w->lengths[b] = s->frames;
        for (int t = 0; t < s->frames; t++)
            memcpy(p->inputs + ((size_t)t * p->batch + b) * in, s->inputs + (size_t)t * in,
                   sizeof(float) * in);
    }
}

static void *run_worker(void *arg) {
    worker *w = arg;
    es_trainer *t = w->trainer;
    memset(&w->sum, 0, sizeof w->sum);
    if (w->count == 0) return NULL;
    int frames = 0;
    for (int i = 0; i < w->count; i++)
        frames = w->seqs[i].frames > frames ? w->seqs[i].frames : frames;
    w->status = ensure_worker_memory(w, frames, w->kind == PASS_INPUT_GRADIENT);
    if (w->status != ES_RNN_OK) return NULL;
    es_train_pass *p = &w->pass;
    p->transposed = t->transposed;
    p->transposed_offset = t->transposed_offset;
    p->lengths = w->lengths;
    p->bptt_frames = t->config.bptt_frames;
    p->frozen_layers = t->frozen_net_layers;
    load_inputs(w);
    es_train_forward(p);
    es_train_loss(p, &t->config, w->seqs, w->kind != PASS_LOSS, &w->sum);
    if (w->kind != PASS_LOSS) {
        memset(w->grad, 0, sizeof(float) * t->model->param_count);
        es_train_backward(p, w->grad);
    }
    return NULL;
}

/* Gives the workers contiguous slices of about equal frame counts: a fixed
 * function of the batch, so the sums, and the result, are too. */
static void assign_slices(es_trainer *t, const es_sequence *seqs, int count, int workers,
                          pass_kind kind) {
    long long total_frames = 0, frames_before = 0;
    for (int i = 0; i < count; i++)
        total_frames += seqs[i].frames;
    int end = 0;
    for (int i = 0; i < workers; i++) {
        worker *w = &t->workers[i];
        int first = end;
        long long share_end = total_frames * (i + 1) / workers;
        while (end < count &&
               (i == workers - 1 || frames_before + seqs[end].frames / 2 < share_end))
            frames_before += seqs[end++].frames;
        w->seqs = seqs + first;
        w->count = end - first;
        w->kind = kind;
        w->status = ES_RNN_OK;
    }
}

/* Worker 0 runs on the calling thread, the others on threads of their own. */
static void run_workers(es_trainer *t, int workers) {
    pthread_t threads[ES_MAX_TRAIN_THREADS];
    int started[ES_MAX_TRAIN_THREADS] = {0};
    for (int i = 1; i < workers; i++)
        started[i] = pthread_create(&threads[i], NULL, run_worker, &t->workers[i]) == 0;
    run_worker(&t->workers[0]);
    for (int i = 1; i < workers; i++) {
        if (started[i])
            pthread_join(threads[i], NULL);
        else
            run_worker(&t->workers[i]); /* no thread to be had: same result, more slowly */
    }
}

/* t->grad = (Σ of the workers' gradients, in worker order) * scale. */
static void reduce_gradients(es_trainer *t, int workers, float scale) {
    size_t n = t->model->param_count;
    memset(t->grad, 0, sizeof(float) * n);
    for (int i = 0; i < workers; i++) {
        if (t->workers[i].count == 0) continue; /* its buffer holds an older batch */
        const float *g = t->workers[i].grad;
        for (size_t k = 0; k < n; k++)
            t->grad[k] += g[k];
    }
    for (size_t k = 0; k < n; k++)
        t->grad[k] *= scale;
}

/* *buffer holds at least `count` elements of `size` bytes (grown, contents kept). */
static int grow(void **buffer, size_t *capacity, size_t count, size_t size) {
    if (count <= *capacity) return 1;
    void *grown = realloc(*buffer, count * size);
    if (!grown) return 0;
    *buffer = grown;
    *capacity = count;
    return 1;
}

/* Behind a STACK of K, each sequence as the network steps through it: its
 * frames in place as rows of K frames (a frame-major array read K frames
 * at a time), each step's targets those of its last frame, the frames after
 * the last whole group dropped. NULL when a sequence is shorter than one
 * group (*status ES_RNN_ERR_ARG) or memory runs out. */
static const es_sequence *stack_sequences(es_trainer *t, const es_sequence *seqs, int count,
                                          int *status) {
    const int K = t->stride, outputs = t->model->output_size;
    size_t classes = 0, targets = 0;
    for (int i = 0; i < count; i++) {
        int steps = seqs[i].frames / K;
        if (steps < 1) {
            *status = ES_RNN_ERR_ARG;
            return NULL;
        }
        if (seqs[i].class_targets) classes += (size_t)steps;
        if (seqs[i].targets) targets += (size_t)steps * (size_t)outputs;
    }
    if (!grow((void **)&t->stacked, &t->stacked_capacity, (size_t)count, sizeof *t->stacked) ||
        !grow((void **)&t->stacked_classes, &t->stacked_classes_capacity, classes,
              sizeof *t->stacked_classes) ||
        !grow((void **)&t->stacked_targets, &t->stacked_targets_capacity, targets,
              sizeof *t->stacked_targets)) {
        *status = ES_RNN_ERR_NOMEM;
        return NULL;
    }
    int *class_at = t->stacked_classes;
    float *target_at = t->stacked_targets;
    for (int i = 0; i < count; i++) {
        const es_sequence *s = &seqs[i];
        es_sequence *stacked = &t->stacked[i];
        *stacked = *s;
        stacked->frames = s->frames / K;
        stacked->kw_start = s->kw_start / K;
        stacked->kw_end = s->kw_end / K;
        if (s->class_targets) {
            for (int j = 0; j < stacked->frames; j++)
                class_at[j] = s->class_targets[j * K + K - 1];
            stacked->class_targets = class_at;
            class_at += stacked->frames;
        }
        if (s->targets) {
            for (int j = 0; j < stacked->frames; j++)
                memcpy(target_at + (size_t)j * outputs,
                       s->targets + ((size_t)j * K + K - 1) * outputs, sizeof(float) * outputs);
            stacked->targets = target_at;
            target_at += (size_t)stacked->frames * outputs;
        }
    }
    *status = ES_RNN_OK;
    return t->stacked;
}

static int longer_first(const void *a, const void *b) {
    const es_sequence *x = a, *y = b;
    return (x->frames < y->frames) - (x->frames > y->frames);
}

/* The batch with its longest sequences first, so that every worker's slice
 * runs out of sequences from its end: the layers skip the rows that have
 * ended (train_layers.c), and a slice of similar lengths pads less. In
 * keyword batches a third of the time went on padding. */
static const es_sequence *longest_first(es_trainer *t, const es_sequence *seqs, int count) {
    if (!grow((void **)&t->by_length, &t->by_length_capacity, (size_t)count, sizeof *seqs))
        return NULL;
    memcpy(t->by_length, seqs, sizeof *seqs * (size_t)count);
    /* Equal lengths keep no particular order: their sums differ in rounding only. */
    qsort(t->by_length, (size_t)count, sizeof *seqs, longer_first);
    return t->by_length;
}

/* Runs the batch split across the workers and sums their losses; for
 * gradient passes, t->grad receives the mean gradient. */
static int run_batch(es_trainer *t, const es_sequence *seqs, int count, pass_kind kind,
                     es_loss_sum *sum) {
    memset(sum, 0, sizeof *sum);
    if (count < 1 || !seqs) return ES_RNN_ERR_ARG;
    for (int i = 0; i < count; i++)
        if (!sequence_is_valid(t, &seqs[i])) return ES_RNN_ERR_ARG;
    if (t->stride > 1) {
        t->stacked_view.params = t->model->params;
        int status;
        seqs = stack_sequences(t, seqs, count, &status);
        if (!seqs) return status;
    }
    seqs = longest_first(t, seqs, count);
    if (!seqs) return ES_RNN_ERR_NOMEM;
    es_train_transpose_weights(t->net, t->transposed_offset, t->transposed);
    int workers = kind == PASS_INPUT_GRADIENT ? 1 : t->worker_count;
    if (workers > count) workers = count;
    assign_slices(t, seqs, count, workers, kind);
    run_workers(t, workers);
    int status = ES_RNN_OK;
    for (int i = 0; i < workers; i++) {
        const worker *w = &t->workers[i];
        if (w->status != ES_RNN_OK) status = w->status;
        sum->loss += w->sum.loss;
        sum->scored += w->sum.scored;
        sum->correct += w->sum.correct;
    }
    if (status != ES_RNN_OK || kind == PASS_LOSS) return status;
    reduce_gradients(t, workers, sum->scored > 0.0 ? (float)(1.0 / sum->scored) : 0.0f);
    return ES_RNN_OK;
}

static float mean_loss(const es_loss_sum *sum) {
    return sum->scored > 0.0 ? (float)(sum->loss / sum->scored) : 0.0f;
}

float es_trainer_gradient(es_trainer *t, const es_sequence *batch, int count, float *grad) {
    es_loss_sum sum;
    if (run_batch(t, batch, count, PASS_GRADIENT, &sum) != ES_RNN_OK) return NAN;
    memcpy(grad, t->grad, sizeof(float) * t->model->param_count);
    return mean_loss(&sum);
}

float es_trainer_loss(es_trainer *t, const es_sequence *seqs, int count, float *accuracy) {
    es_loss_sum sum;
    if (run_batch(t, seqs, count, PASS_LOSS, &sum) != ES_RNN_OK) return NAN;
    if (accuracy) *accuracy = sum.scored > 0.0 ? (float)(sum.correct / sum.scored) : 0.0f;
    return mean_loss(&sum);
}

float es_trainer_input_gradient(es_trainer *t, const es_sequence *seq, float *input_grad) {
    es_loss_sum sum;
    if (run_batch(t, seq, 1, PASS_INPUT_GRADIENT, &sum) != ES_RNN_OK) return NAN;
    const es_train_pass *p = &t->workers[0].pass;
    float scale = sum.scored > 0.0 ? (float)(1.0 / sum.scored) : 0.0f;
    /* batch of one: [T][1][in] is [T][in]; behind a STACK, [T/K][K*in] is
     * the first T/K*K frames, and the frames after them had no effect */
    size_t frames = (size_t)(seq->frames / t->stride * t->stride);
    size_t n = frames * t->model->input_size, all = (size_t)seq->frames * t->model->input_size;
    for (size_t i = 0; i < n; i++)
        input_grad[i] = p->dinputs[i] * scale;
    memset(input_grad + n, 0, sizeof(float) * (all - n));
    return mean_loss(&sum);
}

/* ---- optimiser ------------------------------------------------------------------------ */

static double global_norm(const float *g, size_t n) {
    double sq = 0.0;
    for (size_t i = 0; i < n; i++)
        sq += (double)g[i] * g[i];
    return sqrt(sq);
}

/* Frozen layers' parameters ([0, frozen_params)) are skipped: not a step of
 * zero, which weight decay would still move. */
static void apply_update(es_trainer *t, float grad_scale) {
    const es_train_config *c = &t->config;
    float *params = t->model->params;
    size_t n = t->model->param_count;
    t->steps++;
    float lr = t->learning_rate, decay = t->learning_rate * c->weight_decay;
    if (c->optimizer == ES_OPTIMIZER_SGD) {
        for (size_t i = t->frozen_params; i < n; i++) {
            float g = t->grad[i] * grad_scale;
            t->moment1[i] = c->beta1 * t->moment1[i] + g;
            params[i] -= lr * t->moment1[i] + (t->decay_mask[i] ? decay * params[i] : 0.0f);
        }
        return;
    }
    float correction1 = 1.0f - powf(c->beta1, (float)t->steps);
    float correction2 = 1.0f - powf(c->beta2, (float)t->steps);
    for (size_t i = t->frozen_params; i < n; i++) {
        float g = t->grad[i] * grad_scale;
        t->moment1[i] = c->beta1 * t->moment1[i] + (1.0f - c->beta1) * g;
        t->moment2[i] = c->beta2 * t->moment2[i] + (1.0f - c->beta2) * g * g;
        float m = t->moment1[i] / correction1, v = t->moment2[i] / correction2;
        params[i] -= lr * m / (sqrtf(v) + c->eps) + (t->decay_mask[i] ? decay * params[i] : 0.0f);
    }
}

/* A non-finite gradient (the model diverged, or an input held inf/NaN)
 * would poison every weight through the moments: that step is skipped. */
int es_trainer_step_checked(es_trainer *t, const es_sequence *batch, int count, float *loss) {
    es_loss_sum sum;
    *loss = NAN;
    int status = run_batch(t, batch, count, PASS_GRADIENT, &sum);
    if (status != ES_RNN_OK) return status;
    *loss = mean_loss(&sum);
    double norm = global_norm(t->grad, t->model->param_count);
    t->grad_norm = (float)norm;
    if (!isfinite(norm)) {
        t->skipped_steps++;
        return ES_RNN_OK;
    }
    float scale = 1.0f;
    if (t->config.clip_norm > 0.0f && norm > t->config.clip_norm)
        scale = (float)(t->config.clip_norm / norm);
    apply_update(t, scale);
    return es_model_refresh(t->model);
}

float es_trainer_step(es_trainer *t, const es_sequence *batch, int count) {
    float loss;
    return es_trainer_step_checked(t, batch, count, &loss) == ES_RNN_OK ? loss : NAN;
}

int es_trainer_skipped_steps(const es_trainer *t) {
    return t->skipped_steps;
}

float es_trainer_grad_norm(const es_trainer *t) {
    return t->grad_norm;
}

float es_trainer_learning_rate(const es_trainer *t) {
    return t->learning_rate;
}

void es_trainer_set_learning_rate(es_trainer *t, float learning_rate) {
    t->learning_rate = learning_rate;
}

es_model *es_trainer_model(es_trainer *t) {
    return t->model;
}

size_t es_trainer_frozen_params(const es_trainer *t) {
    return t->frozen_params;
}

const es_train_config *es_trainer_config(const es_trainer *t) {
    return &t->config;
}
