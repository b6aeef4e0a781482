/*
 * Many streams of one model, one frame each, stepped together
 * (es_model_step_batch). Layer by layer, the streams of a block share every
 * matrix product: each packed panel is read from memory once per block of
 * ES_BATCH_STREAMS streams and reused for all of them, which is what lets
 * one core serve many live streams (a frame-by-frame step of one stream
 * streams every weight for a single matrix-vector product). Everything a
 * stream carries between frames stays in its own es_state; the nonlinear
 * half of each step is the single-stream code (state_internal.h) and the
 * products are batched kernels bit-identical to the single-stream ones
 * (batch_kernels.h), so a stream's outputs never depend on its company.
 */
#include <string.h>

#include "batch_kernels.h"
#include "state_internal.h"

/* A block of streams on its way through the layers: where each stream's
 * input to the current layer is, and where the last layer writes. */
typedef struct stream_block {
    const es_model *model;
    const es_packed_model *packed;
    const es_batch_kernels *batch;
    int count;
    es_state *states[ES_BATCH_STREAMS];
    const float *in[ES_BATCH_STREAMS];
    float *out[ES_BATCH_STREAMS];
} stream_block;

/* Each stream's `offset` into its state's scratch. */
static void scratch_at(const stream_block *b, size_t offset, float **at) {
    for (int t = 0; t < b->count; t++)
        at[t] = b->states[t]->scratch + offset;
}

/* The same pointer for every stream: a bias all of them add. */
static void shared(const stream_block *b, const float *p, const float **at) {
    for (int t = 0; t < b->count; t++)
        at[t] = p;
}

/* The input side: gates = b + W x (a CONV1D: over its window of frames). */
static void input_products(const stream_block *b, const es_layer *layer, const es_packed_layer *pl,
                           float **gates) {
    const es_packed_direction *d = &pl->dir[0];
    const size_t stride = (size_t)pl->cols * ES_PANEL_ROWS;
    const float *bias[ES_BATCH_STREAMS];
    shared(b, d->bias, bias);
    if (layer->type != ES_LAYER_CONV1D) {
        int cols = layer->type == ES_LAYER_DENSE ? pl->cols : layer->input_size;
        b->batch->matmat(d->panels, stride, pl->rows_padded / ES_PANEL_ROWS, 0, cols, b->in, bias,
                         gates, b->count);
        return;
    }
    /* As layers.c: the window is [K - 1 frames of history | this frame]. */
    const size_t in_size = (size_t)layer->input_size;
    const size_t history = (size_t)(layer->kernel - 1) * in_size;
    float *window[ES_BATCH_STREAMS];
    scratch_at(b, pl->state_history, window);
    for (int t = 0; t < b->count; t++)
        memcpy(window[t] + history, b->in[t], in_size * sizeof(float));
    b->batch->matmat(d->panels, stride, pl->rows_padded / ES_PANEL_ROWS, 0, pl->cols,
                     (const float *const *)window, bias, gates, b->count);
    for (int t = 0; t < b->count; t++)
        memmove(window[t], window[t] + in_size, history * sizeof(float));
}

/* The recurrent side: U h added to the gates (a GRU's n gate apart), as
 * layers.c's recurrent_update does for one stream. */
static void recurrent_products(const stream_block *b, const es_layer *layer,
                               const es_packed_layer *pl, float **gates, float **h) {
    const es_packed_direction *d = &pl->dir[0];
    const size_t stride = (size_t)pl->cols * ES_PANEL_ROWS;
    const int in = layer->input_size, recurrent_cols = pl->cols - in;
    const int summed = es_recurrent_summed_rows(layer, pl);
    const float *u_panels = d->panels + (size_t)in * ES_PANEL_ROWS;
    b->batch->matvec(u_panels, stride, summed / ES_PANEL_ROWS, 0, recurrent_cols,
                     (const float *const *)h, (const float *const *)gates, gates, b->count);
    if (summed == pl->rows_padded) return;
    float *n_hidden[ES_BATCH_STREAMS];
    const float *bias[ES_BATCH_STREAMS];
    scratch_at(b, b->packed->state_n_hidden, n_hidden);
    shared(b, d->bias_n_hidden, bias);
    b->batch->matvec(u_panels + (size_t)(summed / ES_PANEL_ROWS) * stride, stride,
                     (pl->rows_padded - summed) / ES_PANEL_ROWS, 0, recurrent_cols,
                     (const float *const *)h, bias, n_hidden, b->count);
}

/* Layer l for every stream of the block, outputs to out[t]. */
static void block_layer(const stream_block *b, int l, float **out) {
    const es_layer *layer = &b->model->layers[l];
    const es_packed_layer *pl = &b->packed->layers[l];
    const es_kernels *k = b->packed->kernels;
    const size_t units = (size_t)layer->units;
    float *gates[ES_BATCH_STREAMS];
    scratch_at(b, b->packed->state_block_gates, gates);
    input_products(b, layer, pl, gates);
    if (layer->type == ES_LAYER_DENSE || layer->type == ES_LAYER_CONV1D) {
        for (int t = 0; t < b->count; t++) {
            es_activate(k, layer->activation, gates[t], layer->units);
            memcpy(out[t], gates[t], units * sizeof(float));
        }
        return;
    }
    float *h[ES_BATCH_STREAMS];
    scratch_at(b, pl->state_history, h);
    recurrent_products(b, layer, pl, gates, h);
    for (int t = 0; t < b->count; t++) {
        float *scratch = b->states[t]->scratch;
        es_recurrent_finish(k, layer, pl, h[t], scratch + pl->state_cell, gates[t],
                            scratch + b->packed->state_n_hidden);
        memcpy(out[t], h[t], units * sizeof(float));
    }
}

/* The layers from `first` on, for every stream of the block: b->in in,
 * b->out out, the layers between through each state's block buffers. */
static void block_layers(stream_block *b, int first) {
    const es_model *m = b->model;
    for (int l = first; l < m->layer_count; l++) {
        float *out[ES_BATCH_STREAMS];
        if (l + 1 == m->layer_count)
            memcpy(out, b->out, sizeof(float *) * (size_t)b->count);
        else
            scratch_at(b, b->packed->state_block_out[l % 2], out);
        block_layer(b, l, out);
        for (int t = 0; t < b->count; t++)
            b->in[t] = out[t];
    }
}

/* Behind a STACK: every stream gathers its frame; those whose group is
 * whole step the rest together, into their held outputs, which every
 * stream then reports (as es_state_step does). */
static void block_stacked(stream_block *b, const float *const *frames, float *const *outputs) {
    const es_model *m = b->model;
    const size_t in = (size_t)m->input_size, out = (size_t)m->output_size;
    const int kernel = m->layers[0].kernel;
    const int streams = b->count;
    es_state *all[ES_BATCH_STREAMS];
    memcpy(all, b->states, sizeof(es_state *) * (size_t)streams);
    b->count = 0;
    for (int t = 0; t < streams; t++) {
        es_state *s = all[t];
        float *group = s->scratch + b->packed->layers[0].state_history;
        memcpy(group + (size_t)s->gathered * in, frames[t], in * sizeof(float));
        if (++s->gathered < kernel) continue;
        s->gathered = 0;
        b->states[b->count] = s;
        b->in[b->count] = group;
        b->out[b->count] = s->scratch + b->packed->state_held;
        b->count++;
    }
    if (b->count > 0) block_layers(b, 1);
    for (int t = 0; t < streams; t++)
        memcpy(outputs[t], all[t]->scratch + b->packed->state_held, out * sizeof(float));
}

void es_model_step_batch(const es_model *m, es_state *const *states, const float *inputs,
                         float *outputs, int count) {
    const size_t in = (size_t)m->input_size, out = (size_t)m->output_size;
    if (m->layer_count == 0) {
        memmove(outputs, inputs, (size_t)count * in * sizeof(float));
        return;
    }
    const es_batch_kernels *batch =
        es_batch_kernels_for(((const es_packed_model *)m->packed)->kernels);
    if (es_model_is_quantised(m) || !batch) {
        /* No batched int8 kernels yet, nor NEON ones: each stream steps alone
         * (the same results; only the shared weight loads are missed). */
        for (int t = 0; t < count; t++)
            memcpy(outputs + (size_t)t * out, es_state_step(states[t], inputs + (size_t)t * in),
                   out * sizeof(float));
        return;
    }
    stream_block b = {.model = m, .packed = m->packed, .batch = batch};
    for (int first = 0; first < count; first += ES_BATCH_STREAMS) {
        b.count = count - first < ES_BATCH_STREAMS ? count - first : ES_BATCH_STREAMS;
        for (int t = 0; t < b.count; t++) {
            b.states[t] = states[first + t];
            b.in[t] = inputs + (size_t)(first + t) * in;
            b.out[t] = outputs + (size_t)(first + t) * out;
        }
        if (es_model_has_stack(m)) {
            const float *frames[ES_BATCH_STREAMS];
            float *stacked_out[ES_BATCH_STREAMS];
            memcpy(frames, b.in, sizeof(float *) * (size_t)b.count);
            memcpy(stacked_out, b.out, sizeof(float *) * (size_t)b.count);
            block_stacked(&b, frames, stacked_out);
        } else {
            block_layers(&b, 0);
        }
    }
}
