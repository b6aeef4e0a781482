/*
 * rnn/train — the trainer of rnn.h's networks: back-propagation through time,
 * the losses, the optimiser and the training loop. Inference needs none of
 * this; the model factory (models/train/) and the trainer's tests do.
 */
#ifndef ES_RNN_TRAIN_H
#define ES_RNN_TRAIN_H

#include "rnn.h"

#ifdef __cplusplus
extern "C" {
#endif
/*
 * Back-propagation through time on mini-batches of variable-length
 * sequences. The last layer must be DENSE or CONV1D with the activation its
 * loss expects (SOFTMAX for SOFTMAX_CE and KWS_MAXPOOL, SIGMOID for
 * SIGMOID_CE): the trainer fuses the two. Losses are means over the scored
 * terms of the whole batch (a term is a frame; for SIGMOID_CE a frame and
 * output), so batches of any length mix fairly.
 *
 * Sequences are given frame by frame as the model is stepped. Behind a
 * STACK of K, the network steps on whole groups of K frames and each step is
 * scored against the targets of its group's last frame (the frame whose
 * output it is); frames after the last whole group are not scored, and a
 * KWS_MAXPOOL window covers the steps whose last frame it covers.
 *
 * Determinism: for a given seed, model, data and `threads`, the weights after
 * any number of steps are bit-identical from run to run (each worker sums its
 * own sequences' gradients; workers' sums are added in a fixed order).
 *
 * Threads and memory: each call that runs a batch splits it into `threads`
 * contiguous slices of about equal frames, runs one on the calling thread and
 * the others on threads it starts and joins (no spinning, so a busy core
 * slows a step but never stalls it). Every activation of a slice is kept for
 * the backward pass, also with truncated BPTT (memory grows with the longest
 * sequence; the buffers are reused from call to call). No training call is
 * [rt]; a trainer is used by one thread at a time.
 */

typedef enum es_loss {
    /* per frame: class_targets[t] in [0, outputs), -1 = not scored */
    ES_LOSS_SOFTMAX_CE = 1,
    /* per frame, per output: targets[t*outputs+k] in [0, 1], NaN = not scored */
    ES_LOSS_SIGMOID_CE = 2,
    /* Streaming keyword spotting with a softmax over {0: filler, 1..: keywords}
     * (max-pooling loss, Sun et al. 2016). In a sequence with keyword k >= 1,
     * only the one frame of [kw_start, kw_end) where output k peaks is trained
     * towards k (cross-entropy); frames within kws_margin_frames of the window,
     * and its other frames, are not scored; every other frame is trained
     * towards filler (0). A sequence with keyword -1 is filler on every frame. */
    ES_LOSS_KWS_MAXPOOL = 3
} es_loss;

/* One training sequence. Pointers are borrowed for the duration of a call. */
typedef struct es_sequence {
    int frames;
    const float *inputs;      /* frames x input_size */
    const int *class_targets; /* SOFTMAX_CE: frames */
    const float *targets;     /* SIGMOID_CE: frames x output_size */
    int keyword;              /* KWS_MAXPOOL: output index, or -1 for none */
    int kw_start, kw_end;     /* KWS_MAXPOOL window, frames */
} es_sequence;

typedef enum es_optimizer {
    ES_OPTIMIZER_ADAMW = 0, /* Adam with decoupled weight decay (Loshchilov & Hutter) */
    ES_OPTIMIZER_SGD = 1    /* plain SGD with momentum beta1 (for comparisons) */
} es_optimizer;

typedef struct es_train_config {
    es_loss loss;
    es_optimizer optimizer;     /* ADAMW */
    int batch_size;             /* 32: what a data source should give (steps take any count) */
    int bptt_frames;            /* 0 = full BPTT; else the gradient is cut every this many
                                   frames (the state still carries forward) */
    float learning_rate;        /* 1e-3 (Adam) */
    float beta1, beta2, eps;    /* 0.9, 0.999, 1e-8 */
    float weight_decay;         /* 0; decoupled (AdamW), applied to matrices, not biases */
    float clip_norm;            /* 5.0: global gradient-norm clip, 0 = off */
    float lr_decay;             /* 1.0: learning rate multiplied by this after each epoch */
    int max_epochs;             /* 30 */
    int patience;               /* 5: epochs without validation improvement before stopping */
    int threads;                /* 2: each batch is split across this many workers */
    int kws_margin_frames;      /* 10: KWS_MAXPOOL frames left unscored around the window */
    float keyword_weight;       /* 1: weight of a keyword term against a filler one (class 0):
                                   SOFTMAX_CE frames of class > 0 and the KWS_MAXPOOL peak,
                                   since a word's few frames compete with hundreds of filler */
    float negative_peak_weight; /* 0: SOFTMAX_CE, in a sequence without keyword frames, the
                                   filler frame where the model is surest of a keyword
                                   counts 1 + this: each negative's worst moment, which
                                   is what a false alarm is made of */
    float average_decay;        /* 0: off. Else es_train_run validates, keeps and returns
                                   an exponential moving average of the weights after each
                                   step (Polyak averaging), this decay per step: it smooths
                                   the step-to-step noise of small, augmented batches */
    uint64_t seed;              /* for anything random the trainer does (nothing yet but
                                   es_train_run's data callbacks may read it) */
    int frozen_layers;          /* 0: the model's first this many layers (a STACK counts) are
                                   not trained: their weights stay bit-identical, in the
                                   running average too, and the backward pass stops above
                                   them (a frozen encoder under a trained head, as when a
                                   keyword model starts from another's GRUs) */
} es_train_config;

void es_train_config_default(es_train_config *config);

typedef struct es_trainer es_trainer;

/* The trainer borrows `m` and updates its params in place (calling
 * es_model_refresh after each step). ES_RNN_ERR_ARG when the config or the
 * model's last layer does not fit the loss. */
int es_trainer_create(es_model *m, const es_train_config *config, es_trainer **out);
void es_trainer_destroy(es_trainer *t);

/* One optimiser step on a mini-batch; returns the mean loss per scored term
 * before the step, or NaN (no step taken) when the batch is malformed
 * (a target out of range, no frames) or memory ran out. A step whose
 * gradient is not finite is skipped (the weights stay as they were) and
 * counted: see es_trainer_skipped_steps. */
float es_trainer_step(es_trainer *t, const es_sequence *batch, int count);
int es_trainer_skipped_steps(const es_trainer *t);

/* Mean loss of the sequences under the current weights (no update); when
 * accuracy is not NULL, the fraction of scored terms decided right
 * (argmax, or > 0.5 for SIGMOID_CE). */
float es_trainer_loss(es_trainer *t, const es_sequence *seqs, int count, float *accuracy);

/* Loss and gradient of every parameter (same layout as es_model_params) for
 * one batch, without updating: for gradient checks. */
float es_trainer_gradient(es_trainer *t, const es_sequence *batch, int count, float *grad);

/* Loss of one sequence and its gradient w.r.t. the inputs (frames x
 * input_size), e.g. to measure how far back gradients reach. */
float es_trainer_input_gradient(es_trainer *t, const es_sequence *seq, float *input_grad);

/* Global norm of the last step's gradient, before clipping. */
float es_trainer_grad_norm(const es_trainer *t);
float es_trainer_learning_rate(const es_trainer *t);
void es_trainer_set_learning_rate(es_trainer *t, float learning_rate);

/* ---- training loop ---- */

/* A source of batches. `next` fills *batch with *count sequences (by
 * convention config.batch_size) for batch number `index` of `epoch`; they
 * stay valid until the next call. Returns 1 when it gave a batch, 0 when the epoch is
 * over, or a negative ES_RNN_ERR_* to stop training. Being called anew each
 * epoch lets it shuffle and re-augment. A validation source is read after
 * each training epoch, with that epoch's number; it would usually give the
 * same sequences every time. */
typedef struct es_train_data {
    int (*next)(void *user, int epoch, int index, const es_sequence **batch, int *count);
    void *user;
    int batches_per_epoch; /* for the ETA; 0 = unknown */
} es_train_data;

typedef struct es_train_progress {
    int epoch;             /* 0-based */
    int batch;             /* batches done in this epoch */
    int batches_per_epoch; /* 0 = unknown */
    int epoch_done;        /* 1 on the report that ends an epoch (validation filled in) */
    float train_loss;      /* mean over this epoch's batches so far */
    float valid_loss;      /* NaN until the first validation */
    float valid_accuracy;  /* fraction of scored terms decided right */
    float valid_metric;    /* what early stopping follows: higher is better */
    float best_metric;
    int best_epoch;
    float learning_rate;
    int skipped_steps; /* so far, for a non-finite gradient (see es_trainer_step) */
    double elapsed_s;
    double eta_s; /* to max_epochs; < 0 = unknown */
} es_train_progress;

/* Returns nonzero to stop training (e.g. on Ctrl-C). */
typedef int (*es_train_progress_fn)(const es_train_progress *progress, void *user);

/* Optional validation metric, higher is better (default: -validation loss). */
typedef float (*es_train_metric_fn)(es_model *m, void *user);

/* Trains for up to max_epochs, validating after each: stops after `patience`
 * epochs without improvement, or when progress asks, and leaves the model
 * with the best-validating weights (the last ones when valid is NULL and
 * metric is NULL). With config.average_decay, the weights validated (and
 * seen by metric) and left are the running average, not the last step's. progress and metric may be
 * NULL; `user` goes to both. Returns the number of whole epochs run (one stopped by progress midway
 * is neither counted nor validated), or a negative ES_RNN_ERR_*. */
int es_train_run(es_trainer *t, const es_train_data *train, const es_train_data *valid,
                 es_train_metric_fn metric, es_train_progress_fn progress, void *user);

#ifdef __cplusplus
}
#endif
#endif
