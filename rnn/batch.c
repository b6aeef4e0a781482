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
 * (batch_kernels.h; for int8 layers the int8 kernels' exact integer sums,
 * ES_BLOCK_FRAMES streams per call), so a stream's outputs never depend on
 * its company.
 */
#include <string.h>

#include "batch_kernels.h"
#include "layers_int8.h"
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

/* int8 layers (kernels_int8.h): each stream's vector is quantised with a
 * scale of its own, as es_state_step does, and the streams share the int8
 * products a chunk of ES_BLOCK_FRAMES at a time: the chunk's quantised
 * vectors and int32 sums live in the int8 scratch of its first stream, the
 * room every state keeps for a block of its own frames, so the batched step
 * needs no memory beyond a lone stream's. Each stream's sums are then
 * rescaled by its own scale (the int8 kernel set's rescale). */
typedef struct int8_chunk {
    int first, count; /* streams [first, first + count) of the block */
    int hidden;       /* the vectors U multiplies (else W) */
    int8_t *quantised;
    int32_t *sums;
    float scales[ES_BLOCK_FRAMES];
} int8_chunk;

/* Quantises v[t] (`length` floats) of the chunk's streams from `first` on. */
static void int8_quantise(const stream_block *b, const es_packed_layer *pl, int hidden, int first,
                          const float *const *v, int length, int8_chunk *c) {
    float *scratch = b->states[first]->scratch;
    const size_t bytes = es_int8_operand_bytes(pl, hidden);
    c->first = first;
    c->count = b->count - first < ES_BLOCK_FRAMES ? b->count - first : ES_BLOCK_FRAMES;
    c->hidden = hidden;
    c->quantised = es_int8_scratch_vectors(b->packed, scratch);
    c->sums = es_int8_scratch_sums(b->packed, scratch);
    for (int t = 0; t < c->count; t++)
        c->scales[t] =
            b->packed->int8_kernels->quantise(v[first + t], length, c->quantised + t * bytes);
}

/* y[t] = base[t] + the rows [first_row, first_row + rows) of W (or U) times
 * the chunk's vectors, for each of its streams t. */
static void int8_products(const stream_block *b, const es_packed_layer *pl, const int8_chunk *c,
                          int first_row, int rows, const float *const *base, float *const *y) {
    const es_packed_direction *d = &pl->dir[0];
    es_int8_sums(b->packed, pl, d, c->hidden, first_row, rows, c->quantised, c->count, c->sums);
    for (int t = 0; t < c->count; t++)
        b->packed->int8_kernels->rescale(c->sums + (size_t)t * (size_t)rows,
                                         d->row_scales + first_row, c->scales[t],
                                         base[c->first + t], rows, y[c->first + t]);
}

/* gates[t] = b + W v[t] for every stream of the block, v[t] of `length`
 * floats (W's first `length` columns). */
static void input_product(const stream_block *b, const es_packed_layer *pl, const float *const *v,
                          int length, float **gates) {
    const es_packed_direction *d = &pl->dir[0];
    const float *bias[ES_BATCH_STREAMS];
    shared(b, d->bias, bias);
    if (!pl->int8) {
        b->batch->matmat(d->panels, (size_t)pl->cols * ES_PANEL_ROWS,
                         pl->rows_padded / ES_PANEL_ROWS, 0, length, v, bias, gates, b->count);
        return;
    }
    for (int first = 0; first < b->count; first += ES_BLOCK_FRAMES) {
        int8_chunk c;
        int8_quantise(b, pl, 0, first, v, length, &c);
        int8_products(b, pl, &c, 0, pl->rows_padded, bias, gates);
    }
}

/* The input side: gates = b + W x (a CONV1D: over its window of frames). */
static void input_products(const stream_block *b, const es_layer *layer, const es_packed_layer *pl,
                           float **gates) {
    if (layer->type != ES_LAYER_CONV1D) {
        input_product(b, pl, b->in, layer->type == ES_LAYER_DENSE ? pl->cols : layer->input_size,
                      gates);
        return;
    }
    /* As layers.c: the window is [K - 1 frames of history | this frame]. */
    const size_t in_size = (size_t)layer->input_size;
    const size_t history = (size_t)(layer->kernel - 1) * in_size;
    float *window[ES_BATCH_STREAMS];
    scratch_at(b, pl->state_history, window);
    for (int t = 0; t < b->count; t++)
        memcpy(window[t] + history, b->in[t], in_size * sizeof(float));
    input_product(b, pl, (const float *const *)window, pl->cols, gates);
    for (int t = 0; t < b->count; t++)
        memmove(window[t], window[t] + in_size, history * sizeof(float));
}

/* The recurrent side of an int8 layer: h quantised once per stream for both
 * products, as layers.c's recurrent_update does. */
static void int8_recurrent_products(const stream_block *b, const es_layer *layer,
                                    const es_packed_layer *pl, float **gates, float **h,
                                    float **n_hidden) {
    const int summed = es_recurrent_summed_rows(layer, pl);
    const float *bias_n[ES_BATCH_STREAMS];
    shared(b, pl->dir[0].bias_n_hidden, bias_n);
    for (int first = 0; first < b->count; first += ES_BLOCK_FRAMES) {
        int8_chunk c;
        int8_quantise(b, pl, 1, first, (const float *const *)h, layer->units, &c);
        int8_products(b, pl, &c, 0, summed, (const float *const *)gates, gates);
        if (summed < pl->rows_padded)
            int8_products(b, pl, &c, summed, pl->rows_padded - summed, bias_n, n_hidden);
    }
}

/* The recurrent side: U h added to the gates (a GRU's n gate apart, into
 * each state's n_hidden), as layers.c's recurrent_update does for one
 * stream. */
static void recurrent_products(const stream_block *b, const es_layer *layer,
                               const es_packed_layer *pl, float **gates, float **h) {
    float *n_hidden[ES_BATCH_STREAMS];
    scratch_at(b, b->packed->state_n_hidden, n_hidden);
    if (pl->int8) {
        int8_recurrent_products(b, layer, pl, gates, h, n_hidden);
        return;
    }
    const es_packed_direction *d = &pl->dir[0];
    const size_t stride = (size_t)pl->cols * ES_PANEL_ROWS;
    const int in = layer->input_size, recurrent_cols = pl->cols - in;
    const int summed = es_recurrent_summed_rows(layer, pl);
    const float *u_panels = d->panels + (size_t)in * ES_PANEL_ROWS;
    b->batch->matvec(u_panels, stride, summed / ES_PANEL_ROWS, 0, recurrent_cols,
                     (const float *const *)h, (const float *const *)gates, gates, b->count);
    if (summed == pl->rows_padded) return;
    const float *bias[ES_BATCH_STREAMS];
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

/* Whether every layer with weights is int8: such a model needs no batched
 * float kernels (the int8 kernel sets take many vectors at once). */
static int all_int8(const es_model *m) {
    const es_packed_model *packed = m->packed;
    for (int l = 0; l < m->layer_count; l++)
        if (packed->layers[l].directions > 0 && !packed->layers[l].int8) return 0;
    return 1;
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
    if (!batch && !all_int8(m)) {
        /* No batched float kernels for NEON: each stream steps alone (the
         * same results; only the shared weight loads are missed). */
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
