/*
 * Losses. The last layer's activation is fused with its loss (softmax with
 * cross-entropy, sigmoid with binary cross-entropy), so the gradient written
 * is the simple, exact p - target w.r.t. the pre-activation.
 *
 * KWS max-pooling (Sun et al. 2016, "Max-pooling loss training of long
 * short-term memory networks for small-footprint keyword spotting"): a
 * keyword's frames are not labelled one by one, since where in the word the
 * model can tell is for the model to find; only the frame of the window
 * where the keyword's posterior peaks is trained towards the keyword.
 */
#include <math.h>
#include <string.h>

#include "train_internal.h"

/* The smallest probability a log is taken of: caps one frame's loss at ~69. */
#define ES_MIN_PROBABILITY 1e-30f

static int argmax(const float *v, int n) {
    int best = 0;
    for (int k = 1; k < n; k++)
        if (v[k] > v[best]) best = k;
    return best;
}

/* Softmax cross-entropy of one frame towards class `target`, counted
 * `weight` times (in the loss, the gradient and the accuracy alike). */
static void score_class(const float *p, int outputs, int target, float weight, float *grad,
                        es_loss_sum *sum) {
    /* (a NaN posterior stays NaN, so a diverged model shows in the loss) */
    float pt = p[target] < ES_MIN_PROBABILITY ? ES_MIN_PROBABILITY : p[target];
    sum->loss -= weight * log(pt);
    sum->scored += weight;
    sum->correct += weight * (argmax(p, outputs) == target);
    if (!grad) return;
    for (int k = 0; k < outputs; k++)
        grad[k] = weight * p[k];
    grad[target] -= weight;
}

static void score_sigmoid(const float *p, const float *target, int outputs, float *grad,
                          es_loss_sum *sum) {
    for (int k = 0; k < outputs; k++) {
        if (isnan(target[k])) continue;
        float q = p[k], y = target[k];
        float on = q < ES_MIN_PROBABILITY ? ES_MIN_PROBABILITY : q;
        float off = 1.0f - q < ES_MIN_PROBABILITY ? ES_MIN_PROBABILITY : 1.0f - q;
        sum->loss -= y * log(on) + (1.0f - y) * log(off);
        sum->scored += 1.0;
        sum->correct += (q > 0.5f) == (y > 0.5f);
        if (grad) grad[k] = q - y;
    }
}

/* The frame of [kw_start, kw_end) where the keyword's posterior peaks. */
static int keyword_peak(const es_train_pass *p, const es_sequence *seq, int b, int outputs) {
    int begin = seq->kw_start > 0 ? seq->kw_start : 0;
    int end = seq->kw_end < seq->frames ? seq->kw_end : seq->frames;
    int best = -1;
    float best_p = -1.0f;
    const float *out = p->layer[p->model->layer_count - 1].out;
    for (int t = begin; t < end; t++) {
        float q = out[((size_t)t * p->batch + b) * outputs + seq->keyword];
        if (q > best_p) best_p = q, best = t;
    }
    return best;
}

/* In a sequence whose targets hold no keyword, the filler frame where the
 * model is surest of some keyword (lowest filler posterior); -1 otherwise. */
static int negative_peak(const es_train_pass *p, const es_sequence *seq, int b, int outputs) {
    if (!seq->class_targets) return -1;
    const float *out = p->layer[p->model->layer_count - 1].out;
    int best = -1;
    float lowest = 2.0f;
    for (int t = 0; t < seq->frames; t++) {
        if (seq->class_targets[t] > 0) return -1;
        if (seq->class_targets[t] < 0) continue;
        const float filler = out[((size_t)t * p->batch + b) * outputs];
        if (filler < lowest) lowest = filler, best = t;
    }
    return best;
}

void es_train_loss(const es_train_pass *p, const es_train_config *config, const es_sequence *seqs,
                   int want_gradient, es_loss_sum *sum) {
    const es_model *m = p->model;
    int outputs = m->output_size;
    const float *out = p->layer[m->layer_count - 1].out;
    float *dout = p->layer[m->layer_count - 1].dout;
    if (want_gradient) memset(dout, 0, sizeof(float) * p->frames * p->batch * outputs);
    for (int b = 0; b < p->batch; b++) {
        const es_sequence *seq = &seqs[b];
        int peak = -1, unscored_begin = 0, unscored_end = 0;
        const int hard_negative =
            config->loss == ES_LOSS_SOFTMAX_CE && config->negative_peak_weight > 0.0f
                ? negative_peak(p, seq, b, outputs)
                : -1;
        if (config->loss == ES_LOSS_KWS_MAXPOOL && seq->keyword >= 0) {
            peak = keyword_peak(p, seq, b, outputs);
            unscored_begin = seq->kw_start - config->kws_margin_frames;
            unscored_end = seq->kw_end + config->kws_margin_frames;
        }
        for (int t = 0; t < seq->frames; t++) {
            size_t row = ((size_t)t * p->batch + b) * outputs;
            float *grad = want_gradient ? dout + row : NULL;
            switch (config->loss) {
            case ES_LOSS_SOFTMAX_CE:
                if (seq->class_targets[t] >= 0)
                    score_class(out + row, outputs, seq->class_targets[t],
                                seq->class_targets[t] > 0 ? config->keyword_weight
                                : t == hard_negative      ? 1.0f + config->negative_peak_weight
                                                          : 1.0f,
                                grad, sum);
                break;
            case ES_LOSS_SIGMOID_CE:
                score_sigmoid(out + row, seq->targets + (size_t)t * outputs, outputs, grad, sum);
                break;
            case ES_LOSS_KWS_MAXPOOL:
                if (t == peak)
                    score_class(out + row, outputs, seq->keyword, config->keyword_weight, grad,
                                sum);
                else if (t < unscored_begin || t >= unscored_end)
                    score_class(out + row, outputs, 0, 1.0f, grad, sum);
                break;
            }
        }
    }
}
