/*
 * rnn — streaming recurrent networks, their model files, and their trainer.
 *
 * A model is a read-only stack of layers over a fixed-size input vector,
 * with named outputs. Many stream states share one model; each state holds
 * every hidden/cell/convolution history of one stream, so one process can
 * serve many streams. Nothing here knows about audio: the model file merely
 * carries the feature configuration its inputs were made with, as numbers.
 *
 * Layer equations (x: input of this step, h: previous output, ⊙: elementwise,
 * σ: logistic sigmoid; all matrices row-major, one row per output unit):
 *   DENSE   y  = act(W x + b)
 *   RNN     h' = tanh(W x + U h + b)
 *   GRU     z  = σ(Wz x + bz + Uz h + cz)          (gate rows ordered z, r, n;
 *           r  = σ(Wr x + br + Ur h + cr)           "reset after" variant, as
 *           n  = tanh(Wn x + bn + r ⊙ (Un h + cn))  in cuDNN and PyTorch)
 *           h' = (1 - z) ⊙ n + z ⊙ h
 *   LSTM    i, f, g, o = σ(.), σ(.), tanh(.), σ(.) of (W x + U h + b), rows i,f,g,o
 *           c' = f ⊙ c + i ⊙ g ;  h' = o ⊙ tanh(c')
 *   CONV1D  y_t = act(b + Σ_{k=0}^{K-1} W_k x_{t-K+1+k}), causal, K = kernel
 *           (history before the stream starts is zeros)
 *   BIDIR   [forward GRU/LSTM over t = 0..T-1 ; backward one over T-1..0],
 *           outputs concatenated; whole-sequence only (no streaming step).
 * Parameters of a layer are stored in this order: W, U, b (GRU: W, U, b, c).
 * Exact layout per layer (in: input size, u: units, K: kernel), row-major:
 *   DENSE   W[u][in], b[u]
 *   RNN     W[u][in], U[u][u], b[u]
 *   GRU     W[3u][in], U[3u][u], b[3u], c[3u]      (rows z, r, n)
 *   LSTM    W[4u][in], U[4u][u], b[4u]             (rows i, f, g, o)
 *   CONV1D  W[u][K][in], b[u]   (W[j][k] multiplies x_{t-K+1+k}: oldest tap first)
 *   BIDIR_* the forward direction's block (as GRU / LSTM), then the backward one's.
 * A model's parameters are these blocks, layer after layer, in one array.
 * The activation argument applies to DENSE and CONV1D; recurrent layers
 * ignore it (their nonlinearities are fixed by the equations above).
 *
 * Real-time safety: create/load functions allocate and may fail; calls marked
 * [rt] never allocate, lock, log or block.
 */
#ifndef ES_RNN_H
#define ES_RNN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ---------------------------------------------------------------- */

enum {
    ES_RNN_OK = 0,
    ES_RNN_ERR_NOMEM = -1,
    ES_RNN_ERR_ARG = -2,      /* a size, type or count is out of range */
    ES_RNN_ERR_IO = -3,       /* the file could not be opened, read or written */
    ES_RNN_ERR_FORMAT = -4,   /* the bytes are not a valid model (see `why`) */
    ES_RNN_ERR_FEATURES = -5, /* the model expects other features */
    ES_RNN_ERR_STREAMING = -6 /* a BIDIR model cannot step frame by frame */
};
const char *es_rnn_strerror(int code);

/* Functions that can fail for a reason worth telling take one of these. */
typedef struct es_rnn_error {
    int code;
    char why[256]; /* e.g. "layer 2 (GRU): 12 bytes of weights missing at offset 4096" */
} es_rnn_error;

/* ---- models ------------------------------------------------------------------ */

typedef enum es_layer_type {
    ES_LAYER_DENSE = 1,
    ES_LAYER_RNN = 2,
    ES_LAYER_GRU = 3,
    ES_LAYER_LSTM = 4,
    ES_LAYER_CONV1D = 5,
    ES_LAYER_BIDIR_GRU = 6,
    ES_LAYER_BIDIR_LSTM = 7,
} es_layer_type;

typedef enum es_activation {
    ES_ACT_LINEAR = 0,
    ES_ACT_RELU = 1,
    ES_ACT_SIGMOID = 2,
    ES_ACT_TANH = 3,
    ES_ACT_SOFTMAX = 4,
} es_activation;

/* The features a model was trained on; compared field by field on load. */
typedef struct es_feature_spec {
    uint32_t sample_rate_hz;
    uint32_t fft_size;
    uint32_t window_samples;
    uint32_t hop_samples;
    uint32_t mel_bands;
    uint32_t normalisation; /* dsp's es_normalisation value */
} es_feature_spec;

#define ES_MAX_LAYERS 16
#define ES_MAX_OUTPUTS 256
#define ES_MAX_LABEL 32

typedef struct es_model es_model;

/* Building a model in code (trainer, tests). */
int es_model_create(const es_feature_spec *features, int input_size, es_model **out);
/* `units` is the layer's output size (BIDIR: per direction); `kernel` is for CONV1D. */
int es_model_add_layer(es_model *m, es_layer_type type, int units, es_activation act,
                       int kernel);
/* Names the outputs; count must equal the last layer's output size. */
int es_model_set_labels(es_model *m, int count, const char *const *labels);
/* Glorot-uniform weights, orthogonal-ish recurrent matrices, zero biases
 * (LSTM forget bias 1), from a deterministic seed. */
void es_model_init_weights(es_model *m, uint64_t seed);
void es_model_destroy(es_model *m);

/* Files (format in rnn/model_file.c and README). */
int es_model_save(const es_model *m, const char *path, es_rnn_error *err);
int es_model_load_file(const char *path, es_model **out, es_rnn_error *err);
int es_model_load_memory(const void *bytes, size_t size, es_model **out, es_rnn_error *err);
/* Fails with ES_RNN_ERR_FEATURES and a reason naming the first difference. */
int es_model_check_features(const es_model *m, const es_feature_spec *want, es_rnn_error *err);

int es_model_input_size(const es_model *m);
int es_model_output_size(const es_model *m);
int es_model_layer_count(const es_model *m);
es_layer_type es_model_layer_type(const es_model *m, int layer);
int es_model_layer_units(const es_model *m, int layer);
const char *es_model_label(const es_model *m, int output);
const es_feature_spec *es_model_features(const es_model *m);
size_t es_model_param_count(const es_model *m);
/* Flat view of every parameter, layer by layer, in the order documented above. */
float *es_model_params(es_model *m);
int es_model_is_streaming(const es_model *m); /* no BIDIR layer */
/* Multiply-adds of one step, counted as 2 * rows * cols for each
 * matrix-vector product (BIDIR: both directions, per frame). */
size_t es_model_flops_per_frame(const es_model *m);
/* Which compute kernels the model runs on this CPU: "avx512", "avx2" or "generic". */
const char *es_model_kernel_name(const es_model *m);

/* ---- streaming state ------------------------------------------------------- */

typedef struct es_state es_state;

int es_state_create(const es_model *m, es_state **out);
void es_state_destroy(es_state *s);
void es_state_reset(es_state *s); /* [rt] zero every hidden/cell/history */

/* [rt] One frame in (input_size floats), outputs out (output_size floats,
 * valid until the next call on this state). */
const float *es_state_step(es_state *s, const float *frame);

/* Whole-sequence forward (offline): `frames` x input_size in, frames x
 * output_size out, starting from zero state. For streaming models the result
 * is bit-identical to stepping frame by frame. */
int es_model_forward_sequence(const es_model *m, const float *inputs, int frames,
                              float *outputs);

/* ---- training ------------------------------------------------------------------ */

typedef enum es_loss {
    ES_LOSS_SOFTMAX_CE = 1, /* per frame: class_targets[t], -1 = not scored */
    ES_LOSS_SIGMOID_CE = 2, /* per frame, per output: targets[t*out+k], NaN = not scored */
    ES_LOSS_KWS_MAXPOOL = 3 /* keyword: max over [kw_start,kw_end) of its posterior;
                               elsewhere and in keyword-free sequences: class 0 (filler)
                               per frame; frames in the window's margin are not scored */
} es_loss;

/* One training sequence. Pointers are borrowed for the duration of a call. */
typedef struct es_sequence {
    int frames;
    const float *inputs;      /* frames x input_size */
    const int *class_targets; /* SOFTMAX_CE */
    const float *targets;     /* SIGMOID_CE */
    int keyword;              /* KWS_MAXPOOL: output index, or -1 for none */
    int kw_start, kw_end;     /* KWS_MAXPOOL window, frames */
} es_sequence;

typedef struct es_train_config {
    es_loss loss;
    int batch_size;          /* 32 sequences */
    int bptt_frames;         /* 0 = full BPTT; else truncated to chunks of this length */
    float learning_rate;     /* 1e-3 (Adam) */
    float beta1, beta2, eps; /* 0.9, 0.999, 1e-8 */
    float weight_decay;      /* 0 (decoupled, AdamW) */
    float clip_norm;         /* 5.0: global gradient-norm clip, 0 = off */
    float lr_decay;          /* 1.0: learning rate multiplied by this after each epoch */
    int max_epochs;          /* 30 */
    int patience;            /* 5: epochs without validation improvement before stopping */
    int threads;             /* 2 */
    uint64_t seed;
} es_train_config;

void es_train_config_default(es_train_config *config);

typedef struct es_trainer es_trainer;

int es_trainer_create(es_model *m, const es_train_config *config, es_trainer **out);
void es_trainer_destroy(es_trainer *t);

/* One Adam step on a mini-batch; returns the mean loss per scored frame. */
float es_trainer_step(es_trainer *t, const es_sequence *batch, int count);

/* Mean loss of the sequences under the current weights (no update). */
float es_trainer_loss(es_trainer *t, const es_sequence *seqs, int count);

/* Loss and gradient of every parameter (same layout as es_model_params) for
 * one batch, without updating: for gradient checks. */
float es_trainer_gradient(es_trainer *t, const es_sequence *batch, int count, float *grad);

#ifdef __cplusplus
}
#endif
#endif
