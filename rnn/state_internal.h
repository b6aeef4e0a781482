/*
 * The stream state's inside and the per-stream halves of a step that the
 * single-stream path (layers.c) and the batched one (batch.c) share, so that
 * both do the very same arithmetic: the matrix products differ only in how
 * many streams read each weight, never in the order of a sum. Internal to
 * rnn/.
 */
#ifndef ES_RNN_STATE_INTERNAL_H
#define ES_RNN_STATE_INTERNAL_H

#include "kernels.h"
#include "model_internal.h"

struct es_state {
    const es_model *model; /* read-only; its packing is looked up each step so a
                              trainer's es_model_refresh() is seen at once */
    float *scratch;        /* every layer's hidden values, histories and gates */
    size_t scratch_floats;
    int gathered; /* behind a STACK: frames of the group so far */
};

/* In place, on n floats: a DENSE or CONV1D layer's activation. */
void es_activate(const es_kernels *k, es_activation act, float *x, int n);

/* Rows of a recurrent layer to which U h is added in place, from row 0: all
 * of them, except a GRU's n gate, whose U_n h + c_n stays apart (n_hidden)
 * because r multiplies it. */
static inline int es_recurrent_summed_rows(const es_layer *layer, const es_packed_layer *pl) {
    return layer->type == ES_LAYER_GRU || layer->type == ES_LAYER_BIDIR_GRU ? 2 * pl->gate_rows
                                                                            : pl->rows_padded;
}

/* The nonlinear half of a recurrent step, once `gates` holds W x + U h + b
 * (GRU: n_hidden holds U_n h + c_n): the gates, then h (and the LSTM cell)
 * move on. */
void es_recurrent_finish(const es_kernels *k, const es_layer *layer, const es_packed_layer *pl,
                         float *h, float *cell, float *gates, const float *n_hidden);

#endif
