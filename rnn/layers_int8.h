/*
 * The products of int8 layers, for layers.c and batch.c (internal to rnn/).
 * Their scratch is the stream state's int8 regions (es_packed_model): room
 * for ES_BLOCK_FRAMES quantised vectors and their int32 sums.
 */
#ifndef ES_RNN_LAYERS_INT8_H
#define ES_RNN_LAYERS_INT8_H

#include "kernels_int8.h"

/* The int8 regions of a stream state's scratch. */
static inline int8_t *es_int8_scratch_vectors(const es_packed_model *packed, float *scratch) {
    return (int8_t *)(scratch + packed->state_int8_vectors);
}
static inline int32_t *es_int8_scratch_sums(const es_packed_model *packed, float *scratch) {
    return (int32_t *)(scratch + packed->state_int8_sums);
}

/* Column groups of the vectors a layer's W (hidden 0) or U (hidden 1)
 * multiplies, and the bytes of one such vector quantised. */
static inline int es_int8_operand_groups(const es_packed_layer *pl, int hidden) {
    return hidden ? pl->int8_hidden_groups : pl->int8_input_groups;
}
static inline size_t es_int8_operand_bytes(const es_packed_layer *pl, int hidden) {
    return (size_t)es_int8_operand_groups(pl, hidden) * ES_INT8_GROUP;
}

/* The exact int32 products of `count` quantised vectors (es_int8_operand_bytes
 * apart) with the rows [first_row, first_row + rows) (whole panels) of W
 * (hidden 0) or U (hidden 1): sums[t * rows + r]. */
void es_int8_sums(const es_packed_model *packed, const es_packed_layer *pl,
                  const es_packed_direction *d, int hidden, int first_row, int rows,
                  const int8_t *quantised, int count, int32_t *sums);

/* For `count` <= ES_BLOCK_FRAMES vectors of `length` floats (v_stride
 * apart): y (y_stride apart, rows_padded each) = bias + W v, W the input
 * half of the layer's matrix (all of it for DENSE and CONV1D). */
void es_int8_input_products(const es_packed_model *packed, const es_packed_layer *pl,
                            const es_packed_direction *d, float *scratch, const float *v,
                            size_t v_stride, int length, int count, float *y, size_t y_stride);

/* Quantises one step's hidden state for es_int8_hidden_products; returns its
 * scale. */
float es_int8_quantise_hidden(const es_packed_model *packed, float *scratch, const float *h,
                              int units);
/* y = base + U h over the rows [first_row, first_row + rows) (whole panels),
 * h as es_int8_quantise_hidden left it; base may be NULL or y. */
void es_int8_hidden_products(const es_packed_model *packed, const es_packed_layer *pl,
                             const es_packed_direction *d, float *scratch, float h_scale,
                             int first_row, int rows, const float *base, float *y);

#endif
