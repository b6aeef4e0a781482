/*
 * Compute kernels of the inference path and the packed weight layout they
 * read. Internal to rnn/ (model.c packs, layers.c runs, kernels*.c compute).
 *
 * Packed layout: the rows of a layer's matrices (all gates, then padding)
 * are cut into panels of ES_PANEL_ROWS rows. A panel stores its columns one
 * after the other, each column as ES_PANEL_ROWS consecutive floats, so a
 * matrix-vector product walks memory once, front to back, and every column
 * is one broadcast of the input times one vector load: no horizontal sums.
 * Recurrent layers concatenate [W U] per row, so one pass over the vector
 * [x h] computes every gate. Each gate is padded to a multiple of
 * ES_PANEL_ROWS rows with zeros, so gates start on panel boundaries.
 */
#ifndef ES_RNN_KERNELS_H
#define ES_RNN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "model_internal.h"

#define ES_PANEL_ROWS 16
/* Frames a stream state steps through each layer together: the input-side
 * products of a block share their weight loads (see matmat). */
#define ES_BLOCK_FRAMES 16

static inline int es_round_up_panel(int n) {
    return (n + ES_PANEL_ROWS - 1) / ES_PANEL_ROWS * ES_PANEL_ROWS;
}

typedef struct es_kernels {
    const char *name;
    /* For each of `panel_count` panels p (panel p starts at panels + p *
     * panel_stride floats): y[p*16 + r] = bias[p*16 + r] + sum over columns
     * c in [col_begin, col_end) of panel[c*16 + r] * v[c]. bias may be NULL. */
    void (*matvec)(const float *panels, size_t panel_stride, int panel_count, int col_begin,
                   int col_end, const float *v, const float *bias, float *y);
    /* matvec for `count` vectors at once: vector t is v + t * v_stride, its
     * result y + t * y_stride. Each weight is loaded once for several vectors,
     * which is what makes the input side of a block of frames cheap. Every
     * output is one chain, bias then the columns in order, so a vector's
     * result never depends on `count` or on its place among the others. */
    void (*matmat)(const float *panels, size_t panel_stride, int panel_count, int col_begin,
                   int col_end, const float *v, size_t v_stride, int count, const float *bias,
                   float *y, size_t y_stride);
    /* In place, on n floats. */
    void (*sigmoid)(float *x, int n);
    void (*tanh)(float *x, int n);
    void (*exp)(float *x, int n);
} es_kernels;

/* Vector exp: x = n ln2 + r with |r| <= ln2 / 2, exp(r) by the Cephes expf
 * polynomial (1 + r + r^2 P(r)), then scaled by 2^n. Inputs are clamped so
 * 2^n stays a normal float. Shared by the AVX2 and AVX-512 sets. */
#define ES_EXP_MAX_INPUT 88.0f
#define ES_EXP_MIN_INPUT (-87.0f)
#define ES_LOG2E 1.44269504088896341f
#define ES_LN2_HI 0.693359375f
#define ES_LN2_LO (-2.12194440e-4f)
#define ES_EXP_P0 1.9875691500e-4f
#define ES_EXP_P1 1.3981999507e-3f
#define ES_EXP_P2 8.3334519073e-3f
#define ES_EXP_P3 4.1665795894e-2f
#define ES_EXP_P4 1.6666665459e-1f
#define ES_EXP_P5 5.0000001201e-1f
/* tanh(x) = 1 - 2 / (exp(2x) + 1) loses relative precision near zero, where
 * its Taylor series x - x^3/3 + 2x^5/15 - 17x^7/315 is exact to 3e-10. */
#define ES_TANH_SERIES_BELOW 0.125f
#define ES_TANH_T3 (-1.0f / 3.0f)
#define ES_TANH_T5 (2.0f / 15.0f)
#define ES_TANH_T7 (-17.0f / 315.0f)

typedef enum es_isa {
    ES_ISA_AUTO = 0, /* the fastest this CPU runs */
    ES_ISA_GENERIC = 1,
    ES_ISA_AVX2 = 2,
    ES_ISA_AVX512 = 3, /* int8: AVX-512 VNNI */
    ES_ISA_NEON = 4,   /* aarch64 Advanced SIMD (int8: with dot products where the CPU has them) */
} es_isa;

/* The kernels for `isa`, or NULL when this CPU (or compiler) lacks it. */
const es_kernels *es_kernels_for(es_isa isa);

extern const es_kernels es_kernels_generic;
#if defined(__x86_64__) || defined(__i386__)
#define ES_HAVE_X86_KERNELS 1
extern const es_kernels es_kernels_avx2;
extern const es_kernels es_kernels_avx512;
#endif
#if defined(__aarch64__)
#define ES_HAVE_NEON_KERNELS 1
extern const es_kernels es_kernels_neon;
#endif

/* One direction of one layer, packed. */
typedef struct es_packed_direction {
    float *panels;        /* rows_padded / 16 panels of cols * 16 floats; NULL when int8 */
    int8_t *int8_panels;  /* int8 layers: rows_padded / 16 panels (kernels_int8.h) */
    float *row_scales;    /* int8 layers: rows_padded, 0 on padding rows */
    float *bias;          /* rows_padded: b (GRU: b + c for z and r, b for n) */
    float *bias_n_hidden; /* GRU only: c of the n gate (it sits inside r ⊙ (.)) */
} es_packed_direction;

typedef struct es_packed_layer {
    int gates;       /* rows per unit: 1 (DENSE, CONV1D, RNN), 3 (GRU), 4 (LSTM) */
    int gate_rows;   /* units rounded up to a whole panel */
    int rows_padded; /* gates * gate_rows */
    int cols;        /* DENSE: in; CONV1D: K * in; recurrent: in + units */
    int directions;  /* 2 for BIDIR */
    int int8;        /* int8 weights (kernels_int8.h): */
    int int8_input_groups, int8_hidden_groups; /* column groups of W, of U */
    size_t int8_panel_bytes;
    es_packed_direction dir[2];
    /* Offsets (floats) of what this layer carries between frames, inside a
     * stream state. */
    size_t state_history; /* recurrent: h; CONV1D: the last K - 1 input frames,
                             then room for a block of frames after them; STACK:
                             the frames of the group being gathered */
    size_t state_cell;    /* LSTM cell */
} es_packed_layer;

typedef struct es_packed_model {
    const es_kernels *kernels;
    es_packed_layer layers[ES_MAX_LAYERS];
    /* Offsets of the scratch the layers share, one after the other, inside
     * a stream state: */
    size_t state_block_gates;  /* ES_BLOCK_FRAMES x the widest rows_padded */
    size_t state_n_hidden;     /* GRU: U_n h + c_n of one frame */
    size_t state_block_out[2]; /* ES_BLOCK_FRAMES x the widest output, between layers */
    size_t state_held;         /* behind a STACK: the outputs of the last step */
    size_t state_int8_vectors; /* int8 layers: ES_BLOCK_FRAMES quantised vectors */
    size_t state_int8_sums;    /* and their int32 products, ES_BLOCK_FRAMES x rows */
    size_t state_floats;       /* scratch of one stream state */
    float *storage;            /* every panel and bias, 64-byte aligned */
    int8_t *storage_int8;      /* every int8 panel, 64-byte aligned */
    const struct es_int8_kernels *int8_kernels;
} es_packed_model;

/* Runs `m` on other kernels (tests compare them; benchmarks time them).
 * ES_RNN_ERR_ARG when this CPU lacks the instruction set. */
int es_model_use_isa(es_model *m, es_isa isa);

/* 64-byte aligned allocation of n floats, zeroed; free with free(). */
float *es_alloc_floats(size_t n);

#endif
