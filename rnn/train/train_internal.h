/*
 * The trainer's inside, shared by train.c (optimiser, threads, run loop),
 * train_layers.c (forward/backward of each layer over a mini-batch),
 * train_loss.c (losses) and train_kernels.c (matrix products).
 *
 * A worker trains on a slice of the mini-batch. Its activations are
 * time-major, [frame][sequence][feature], padded to the slice's longest
 * sequence, so that a frame of every sequence is one matrix (the recurrent
 * products are batched across sequences) and a whole layer's input is one
 * matrix (the input projections are batched across time too).
 */
#ifndef ES_RNN_TRAIN_INTERNAL_H
#define ES_RNN_TRAIN_INTERNAL_H

#include <stddef.h>

#include "kernels.h"
#include "model_internal.h"
#include "train.h"

/* ---- matrix products (train_kernels.c) --------------------------------------- */

/* C[M][N] += A · B with A(m,k) = a[m*a_row + k*a_col] (so A may be read
 * transposed: a_row = 1, a_col = lda), B[K][N] with row stride ldb, C with
 * row stride ldc. Uses the widest vectors the CPU has (AVX-512, AVX2+FMA),
 * as the inference kernels do; AVX-512 and AVX2 give the same bits. */
void es_train_matmul(int M, int N, int K, const float *a, ptrdiff_t a_row, ptrdiff_t a_col,
                     const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc);

/* The product for one instruction set (es_train_matmul picks ES_ISA_AUTO's),
 * or NULL when this CPU lacks it: for tests comparing them. */
typedef void (*es_train_matmul_fn)(int M, int N, int K, const float *a, ptrdiff_t a_row,
                                   ptrdiff_t a_col, const float *b, ptrdiff_t ldb, float *c,
                                   ptrdiff_t ldc);
es_train_matmul_fn es_train_matmul_for(es_isa isa);

/* dst[c][r] = src[r][c] for a rows x cols matrix. */
void es_train_transpose(int rows, int cols, const float *src, float *dst);

/* sum[n] += Σ_m rows[m*ld + n] */
void es_train_add_column_sums(int M, int N, const float *restrict rows, ptrdiff_t ld,
                              float *restrict sum);

void es_train_sigmoid(float *x, int n);
void es_train_tanh(float *x, int n);

/* ---- per-worker activations ---------------------------------------------------- */

typedef struct es_train_direction {
    float *gates;  /* [T][B][G] after their nonlinearity: RNN h, GRU (z,r,n), LSTM (i,f,g,o) */
    float *dgates; /* [T][B][G] gradient before the nonlinearity (input side) */
    float *dhidden_gates; /* GRU: [T][B][3u] gradient of U h + c (n differs by r) */
    float *hidden_n;      /* GRU: [T][B][u] Un h + cn, kept for the backward pass */
    float *cell;          /* LSTM: [T][B][u] c_t */
    float *cell_tanh;     /* LSTM: [T][B][u] tanh(c_t) */
    float *recurrent;     /* [B][G] U h_{t-1} (+ c) of the current step */
    float *dh;            /* [B][u] gradient reaching h_t */
    float *dh_prev;       /* [B][u] gradient reaching h_{t-1} */
    float *dc;            /* LSTM: [B][u] gradient reaching c_t */
} es_train_direction;

typedef struct es_train_layer_cache {
    float *out;     /* [T][B][out] the layer's output (recurrent: its hidden states) */
    float *dout;    /* [T][B][out] gradient of the loss w.r.t. out */
    float *window;  /* CONV1D: [T][B][K*in] the causal input windows */
    float *dwindow; /* CONV1D: [T][B][K*in] */
    es_train_direction dir[2];
} es_train_layer_cache;

/* What a forward/backward pass over one slice needs to know. */
typedef struct es_train_pass {
    const es_model *model;
    const float *transposed;         /* every W and U transposed, see es_train_transposed_layout */
    const size_t *transposed_offset; /* per layer: [dir][W, U] offsets into transposed */
    int frames;                      /* T: the slice's longest sequence */
    int batch;                       /* B: sequences in the slice */
    const int *lengths;              /* B lengths; frames at or past a length are padding */
    int bptt_frames;                 /* gradient cut every bptt_frames frames (0 = never) */
    float *inputs;                   /* [T][B][in] (padding is zeros) */
    es_train_layer_cache layer[ES_MAX_LAYERS];
    float *dinputs;    /* [T][B][in] or NULL when not wanted */
    int frozen_layers; /* the first this many layers get no gradient (unless dinputs
                          is wanted, which needs the whole chain) */
} es_train_pass;

/* Offsets (floats) of layer l's transposed W (and U) of direction d inside
 * the transposed-weights buffer: offsets[(l*2 + d)*2 + 0] for W, + 1 for U.
 * Returns the buffer's size in floats. */
size_t es_train_transposed_layout(const es_model *m, size_t *offsets);
void es_train_transpose_weights(const es_model *m, const size_t *offsets, float *transposed);

/* mask[i] = 1 where params[i] belongs to a matrix (weight decay applies), 0 for biases. */
void es_train_decay_mask(const es_model *m, unsigned char *mask);

/* Assigns every buffer of a pass for T frames and B sequences from `base`
 * (or only counts when base is NULL). Returns the number of floats used. */
size_t es_train_pass_layout(es_train_pass *p, int frames, int batch, int want_dinputs, float *base);

/* Runs every layer forward over the slice; the last layer's out holds the
 * model's outputs. */
void es_train_forward(es_train_pass *p);

/* Back-propagates from the last layer's dout, which must hold the gradient
 * w.r.t. the last layer's pre-activation (the losses fuse softmax/sigmoid),
 * and accumulates parameter gradients into grad (es_model_params layout);
 * down to the first layer not frozen (p->frozen_layers) unless dinputs is
 * wanted, so frozen layers' gradients are left as they were (zero). */
void es_train_backward(es_train_pass *p, float *grad);

/* ---- the trainer's state (train.c) ----------------------------------------------- */

es_model *es_trainer_model(es_trainer *t);
/* Parameters [0, this) belong to frozen layers (es_train_config.frozen_layers): the
 * optimiser and the running average leave them alone. */
size_t es_trainer_frozen_params(const es_trainer *t);
const es_train_config *es_trainer_config(const es_trainer *t);
/* es_trainer_step that tells a malformed batch (its error) from a
 * diverged step (ES_RNN_OK, loss not finite, step skipped). */
int es_trainer_step_checked(es_trainer *t, const es_sequence *batch, int count, float *loss);

/* ---- losses (train_loss.c) ------------------------------------------------------- */

typedef struct es_loss_sum {
    double loss;    /* summed over scored terms */
    double scored;  /* number of scored terms */
    double correct; /* scored terms whose decision (argmax / > 0.5) matches */
} es_loss_sum;

/* Scores the pass's outputs against `seqs` (B of them, in slice order) and
 * writes d(summed loss)/d(pre-activation) into the last layer's dout
 * (when want_gradient). */
void es_train_loss(const es_train_pass *p, const es_train_config *config, const es_sequence *seqs,
                   int want_gradient, es_loss_sum *sum);

#endif
