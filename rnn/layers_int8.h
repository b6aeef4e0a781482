/*
 * The products of int8 layers, for layers.c (internal to rnn/). Their
 * scratch is the stream state's int8 regions (es_packed_model).
 */
#ifndef ES_RNN_LAYERS_INT8_H
#define ES_RNN_LAYERS_INT8_H

#include "kernels_int8.h"

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
