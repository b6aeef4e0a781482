/*
 * Forward passes: each layer type on a block of frames over the packed
 * weights, the stream state that carries hidden values between frames, and
 * the whole-sequence forward. Stepping one frame, stepping many and the
 * sequence forward all call layer_block(), whose per-frame arithmetic does
 * not depend on the block: that is what makes their results bit-identical.
 */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "layers_int8.h"
#include "model_internal.h"
#include "state_internal.h"

void es_activate(const es_kernels *k, es_activation act, float *x, int n) {
    switch (act) {
    case ES_ACT_LINEAR:
        break;
    case ES_ACT_RELU:
        for (int i = 0; i < n; i++)
            x[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case ES_ACT_SIGMOID:
        k->sigmoid(x, n);
        break;
    case ES_ACT_TANH:
        k->tanh(x, n);
        break;
    case ES_ACT_SOFTMAX: {
        float max = x[0];
        for (int i = 1; i < n; i++)
            max = x[i] > max ? x[i] : max;
        for (int i = 0; i < n; i++)
            x[i] -= max; /* exp never overflows; the largest term is 1 */
        k->exp(x, n);
        float sum = 0.0f;
        for (int i = 0; i < n; i++)
            sum += x[i];
        float inverse = 1.0f / sum;
        for (int i = 0; i < n; i++)
            x[i] *= inverse;
        break;
    }
    }
}

/* y = bias + W v for `count` vectors of `length` floats (v_stride apart),
 * W the first `length` columns of the layer's matrix; y is rows_padded per
 * vector. int8 layers quantise the vectors (layers_int8.c). */
static void input_products(const es_packed_model *packed, const es_packed_layer *pl,
                           const es_packed_direction *d, float *scratch, const float *v,
                           size_t v_stride, int length, int count, float *y) {
    size_t rows = (size_t)pl->rows_padded;
    if (pl->int8) {
        es_int8_input_products(packed, pl, d, scratch, v, v_stride, length, count, y, rows);
        return;
    }
    packed->kernels->matmat(d->panels, (size_t)pl->cols * ES_PANEL_ROWS,
                            pl->rows_padded / ES_PANEL_ROWS, 0, length, v, v_stride, count, d->bias,
                            y, rows);
}

/* The hidden state of one step, as the U h products read it: int8 layers
 * quantise it once for all of them. */
typedef struct hidden_operand {
    const float *h;
    float int8_scale;
} hidden_operand;

/* y = bias + U h over a direction's rows [first_row, first_row + rows); U
 * is the matrix's columns from `in` on. */
static void hidden_products(const es_packed_model *packed, const es_packed_layer *pl,
                            const es_packed_direction *d, float *scratch, hidden_operand h, int in,
                            int first_row, int rows, const float *bias, float *y) {
    if (pl->int8) {
        es_int8_hidden_products(packed, pl, d, scratch, h.int8_scale, first_row, rows, bias, y);
        return;
    }
    size_t stride = (size_t)pl->cols * ES_PANEL_ROWS;
    const float *panels = d->panels + (size_t)(first_row / ES_PANEL_ROWS) * stride;
    packed->kernels->matvec(panels + (size_t)in * ES_PANEL_ROWS, stride, rows / ES_PANEL_ROWS, 0,
                            pl->cols - in, h.h, bias, y);
}

/* The recurrent half of one frame: `gates` holds b + W x (the block's input
 * half), to which U h is added; then h moves on. */
static void recurrent_update(const es_packed_model *packed, float *scratch, const es_layer *layer,
                             const es_packed_layer *pl, const es_packed_direction *d, float *h,
                             float *cell, float *gates, float *n_hidden) {
    int in = layer->input_size, summed = es_recurrent_summed_rows(layer, pl);
    hidden_operand hidden = {h, pl->int8 ? es_int8_quantise_hidden(packed, scratch, h, layer->units)
                                         : 0.0f};
    hidden_products(packed, pl, d, scratch, hidden, in, 0, summed, gates, gates);
    if (summed < pl->rows_padded) /* GRU: U_n h + c_n stays apart (r multiplies it) */
        hidden_products(packed, pl, d, scratch, hidden, in, summed, pl->rows_padded - summed,
                        d->bias_n_hidden, n_hidden);
    es_recurrent_finish(packed->kernels, layer, pl, h, cell, gates, n_hidden);
}

void es_recurrent_finish(const es_kernels *k, const es_layer *layer, const es_packed_layer *pl,
                         float *h, float *cell, float *gates, const float *n_hidden) {
    int u = layer->units, gr = pl->gate_rows;
    switch (layer->type) {
    case ES_LAYER_RNN:
        k->tanh(gates, u);
        memcpy(h, gates, (size_t)u * sizeof(float));
        break;
    case ES_LAYER_GRU:
    case ES_LAYER_BIDIR_GRU: {
        float *z = gates, *r = gates + gr, *n = gates + 2 * gr;
        /* n = tanh(W_n x + b_n + r (U_n h + c_n)) */
        k->sigmoid(z, 2 * gr);
        for (int j = 0; j < u; j++)
            n[j] += r[j] * n_hidden[j];
        k->tanh(n, u);
        for (int j = 0; j < u; j++)
            h[j] = n[j] + z[j] * (h[j] - n[j]); /* (1 - z) n + z h */
        break;
    }
    default: { /* LSTM, BIDIR_LSTM */
        float *i_gate = gates, *f_gate = gates + gr, *g_gate = gates + 2 * gr,
              *o_gate = gates + 3 * gr;
        k->sigmoid(i_gate, 2 * gr); /* i and f */
        k->tanh(g_gate, u);
        k->sigmoid(o_gate, u);
        for (int j = 0; j < u; j++) {
            cell[j] = f_gate[j] * cell[j] + i_gate[j] * g_gate[j];
            g_gate[j] = cell[j]; /* g is spent: reuse it for tanh(c') */
        }
        k->tanh(g_gate, u);
        for (int j = 0; j < u; j++)
            h[j] = o_gate[j] * g_gate[j];
        break;
    }
    }
}

/* A block of `count` <= ES_BLOCK_FRAMES consecutive frames through one layer
 * (direction `dir` for BIDIR, frames last to first when `reverse`): frame t
 * is read at in + t * in_stride, its output written at out + t * out_stride.
 * The input side of every frame is one matmat; only the recurrent half has
 * to wait for the frame before. Each frame's arithmetic is the same whatever
 * the block, which keeps stepping, blocks and whole sequences bit-identical. */
static void layer_block(const es_model *m, int l, int dir, float *scratch, const float *in,
                        size_t in_stride, int count, float *out, size_t out_stride, int reverse) {
    const es_packed_model *packed = m->packed;
    const es_kernels *k = packed->kernels;
    const es_layer *layer = &m->layers[l];
    const es_packed_layer *pl = &packed->layers[l];
    const es_packed_direction *d = &pl->dir[dir];
    size_t rows = (size_t)pl->rows_padded;
    size_t in_size = (size_t)layer->input_size, units = (size_t)layer->units;
    float *gates = scratch + packed->state_block_gates;

    if (layer->type == ES_LAYER_CONV1D) {
        /* The window of frame t is the K frames from t on in [history | block],
         * oldest first, as W's columns are. */
        float *window = scratch + pl->state_history;
        size_t history = (size_t)(layer->kernel - 1) * in_size;
        for (int t = 0; t < count; t++)
            memcpy(window + history + (size_t)t * in_size, in + (size_t)t * in_stride,
                   in_size * sizeof(float));
        input_products(packed, pl, d, scratch, window, in_size, pl->cols, count, gates);
        memmove(window, window + (size_t)count * in_size, history * sizeof(float));
    } else if (layer->type == ES_LAYER_DENSE) {
        input_products(packed, pl, d, scratch, in, in_stride, pl->cols, count, gates);
    }
    if (layer->type == ES_LAYER_DENSE || layer->type == ES_LAYER_CONV1D) {
        for (int t = 0; t < count; t++) {
            float *g = gates + (size_t)t * rows;
            es_activate(k, layer->activation, g, layer->units);
            memcpy(out + (size_t)t * out_stride, g, units * sizeof(float));
        }
        return;
    }

    input_products(packed, pl, d, scratch, in, in_stride, layer->input_size, count, gates);
    float *h = scratch + pl->state_history;
    for (int i = 0; i < count; i++) {
        int t = reverse ? count - 1 - i : i;
        recurrent_update(packed, scratch, layer, pl, d, h, scratch + pl->state_cell,
                         gates + (size_t)t * rows, scratch + packed->state_n_hidden);
        memcpy(out + (size_t)t * out_stride, h, units * sizeof(float));
    }
}

/* ---- streaming state ------------------------------------------------------------- */

int es_state_create(const es_model *m, es_state **out) {
    if (!out) return ES_RNN_ERR_ARG;
    *out = NULL;
    if (!m || !m->packed) return ES_RNN_ERR_ARG;
    if (!es_model_is_streaming(m)) return ES_RNN_ERR_STREAMING;
    es_state *s = calloc(1, sizeof *s);
    if (!s) return ES_RNN_ERR_NOMEM;
    s->model = m;
    s->scratch_floats = ((const es_packed_model *)m->packed)->state_floats;
    s->scratch = es_alloc_floats(s->scratch_floats);
    if (!s->scratch) {
        free(s);
        return ES_RNN_ERR_NOMEM;
    }
    *out = s;
    return ES_RNN_OK;
}

void es_state_destroy(es_state *s) {
    if (!s) return;
    free(s->scratch);
    free(s);
}

void es_state_reset(es_state *s) {
    if (!s) return;
    memset(s->scratch, 0, s->scratch_floats * sizeof(float));
    s->gathered = 0;
}

/* Up to ES_BLOCK_FRAMES steps (in_stride apart) through the layers from
 * `first` on; the last layer writes `outputs` (out_stride apart), the others
 * the state's block buffers. With no layer left, the steps are the outputs. */
static void state_block(es_state *s, int first, const float *in, size_t in_stride, int count,
                        float *outputs, size_t out_stride) {
    const es_model *m = s->model;
    const es_packed_model *packed = m->packed;
    if (first == m->layer_count) {
        for (int t = 0; t < count; t++)
            memcpy(outputs + (size_t)t * out_stride, in + (size_t)t * in_stride,
                   (size_t)m->output_size * sizeof(float));
        return;
    }
    for (int l = first; l < m->layer_count; l++) {
        int last = l + 1 == m->layer_count;
        float *out = last ? outputs : s->scratch + packed->state_block_out[l % 2];
        size_t stride = last ? out_stride : (size_t)m->layers[l].output_size;
        layer_block(m, l, 0, s->scratch, in, in_stride, count, out, stride, 0);
        in = out;
        in_stride = stride;
    }
}

/* Behind a STACK: gathers one frame; the group's step runs once it is whole. */
static const float *gather_frame(es_state *s, const float *frame) {
    const es_model *m = s->model;
    const es_packed_model *packed = m->packed;
    const es_layer *stack = &m->layers[0];
    float *group = s->scratch + packed->layers[0].state_history;
    float *held = s->scratch + packed->state_held;
    memcpy(group + (size_t)s->gathered * (size_t)m->input_size, frame,
           (size_t)m->input_size * sizeof(float));
    if (++s->gathered == stack->kernel) {
        s->gathered = 0;
        state_block(s, 1, group, (size_t)stack->output_size, 1, held, (size_t)m->output_size);
    }
    return held;
}

const float *es_state_step(es_state *s, const float *frame) {
    const es_model *m = s->model;
    if (m->layer_count == 0) return frame;
    if (es_model_has_stack(m)) return gather_frame(s, frame);
    float *out = s->scratch +
                 ((const es_packed_model *)m->packed)->state_block_out[(m->layer_count - 1) % 2];
    state_block(s, 0, frame, (size_t)m->input_size, 1, out, (size_t)m->output_size);
    return out;
}

/* Behind a STACK of K: whole groups in the frames are steps in place (K
 * frames side by side are one row of K times the input), a block of them at
 * a time; each step's outputs go to its group's last frame and are held on
 * the frames before the next one's. Frames of a partial group are gathered
 * one by one. */
static void step_stacked_frames(es_state *s, const float *frames, int count, float *outputs) {
    const es_model *m = s->model;
    const int K = m->layers[0].kernel;
    const size_t in = (size_t)m->input_size, out = (size_t)m->output_size;
    float *held = s->scratch + ((const es_packed_model *)m->packed)->state_held;
    int t = 0;
    while (t < count) {
        if (s->gathered > 0 || count - t < K) {
            memcpy(outputs + (size_t)t * out, gather_frame(s, frames + (size_t)t * in),
                   out * sizeof(float));
            t++;
            continue;
        }
        int steps = (count - t) / K < ES_BLOCK_FRAMES ? (count - t) / K : ES_BLOCK_FRAMES;
        float *first_output = outputs + (size_t)(t + K - 1) * out;
        state_block(s, 1, frames + (size_t)t * in, (size_t)K * in, steps, first_output,
                    (size_t)K * out);
        for (int j = 0; j < steps; j++) {
            const float *before = j == 0 ? held : first_output + (size_t)(j - 1) * K * out;
            for (int f = 0; f + 1 < K; f++)
                memcpy(outputs + (size_t)(t + j * K + f) * out, before, out * sizeof(float));
        }
        memcpy(held, first_output + (size_t)(steps - 1) * K * out, out * sizeof(float));
        t += steps * K;
    }
}

void es_state_step_frames(es_state *s, const float *frames, int count, float *outputs) {
    const es_model *m = s->model;
    if (m->layer_count == 0) {
        memmove(outputs, frames, (size_t)count * (size_t)m->input_size * sizeof(float));
        return;
    }
    if (es_model_has_stack(m)) {
        step_stacked_frames(s, frames, count, outputs);
        return;
    }
    for (int t = 0; t < count; t += ES_BLOCK_FRAMES) {
        int n = count - t < ES_BLOCK_FRAMES ? count - t : ES_BLOCK_FRAMES;
        state_block(s, 0, frames + (size_t)t * (size_t)m->input_size, (size_t)m->input_size, n,
                    outputs + (size_t)t * (size_t)m->output_size, (size_t)m->output_size);
    }
}

/* ---- whole sequence ---------------------------------------------------------------- */

/* Behind a STACK of K: step j's outputs on frames jK+K-1 .. jK+2K-2, zeros
 * before the first step, the last step's after it. */
static void hold_steps(const es_model *m, const float *stepped, int frames, float *outputs) {
    const int K = m->layers[0].kernel;
    const size_t out = (size_t)m->output_size;
    for (int f = 0; f < frames; f++) {
        int step = (f + 1) / K - 1;
        if (step < 0)
            memset(outputs + (size_t)f * out, 0, out * sizeof(float));
        else
            memcpy(outputs + (size_t)f * out, stepped + (size_t)step * out, out * sizeof(float));
    }
}

/* Layer by layer over all frames: a BIDIR layer needs its whole input
 * sequence before its backward pass can start. */
int es_model_forward_sequence(const es_model *m, const float *inputs, int frames, float *outputs) {
    if (!m || !m->packed || frames < 0 || (frames > 0 && (!inputs || !outputs)))
        return ES_RNN_ERR_ARG;
    if (frames == 0) return ES_RNN_OK;
    const es_packed_model *packed = m->packed;
    if (m->layer_count == 0) {
        memmove(outputs, inputs, (size_t)frames * (size_t)m->input_size * sizeof(float));
        return ES_RNN_OK;
    }
    /* Behind a STACK the layers run on whole groups, read in place. */
    const int first = es_model_has_stack(m) ? 1 : 0;
    const int steps = first ? frames / m->layers[0].kernel : frames;
    int widest = 0;
    for (int l = first; l + 1 < m->layer_count; l++)
        widest = m->layers[l].output_size > widest ? m->layers[l].output_size : widest;
    float *scratch = es_alloc_floats(packed->state_floats);
    float *between[2] = {NULL, NULL};
    if (widest > 0) {
        between[0] = es_alloc_floats((size_t)frames * (size_t)widest);
        between[1] = es_alloc_floats((size_t)frames * (size_t)widest);
    }
    float *stepped = first && m->layer_count > 1
                         ? es_alloc_floats((size_t)(steps > 0 ? steps : 1) * m->output_size)
                         : NULL;
    if (!scratch || (widest > 0 && (!between[0] || !between[1])) ||
        (first && m->layer_count > 1 && !stepped)) {
        free(scratch);
        free(between[0]);
        free(between[1]);
        free(stepped);
        return ES_RNN_ERR_NOMEM;
    }

    const float *layer_in = inputs;
    for (int l = first; l < m->layer_count; l++) {
        const es_layer *layer = &m->layers[l];
        float *layer_out = l + 1 < m->layer_count ? between[l % 2] : first ? stepped : outputs;
        size_t in_size = (size_t)layer->input_size, out_size = (size_t)layer->output_size;
        size_t width = (size_t)layer->units; /* per direction */
        for (int dir = 0; dir < packed->layers[l].directions; dir++) {
            memset(scratch, 0, packed->state_floats * sizeof(float));
            for (int done = 0; done < steps; done += ES_BLOCK_FRAMES) {
                int n = steps - done < ES_BLOCK_FRAMES ? steps - done : ES_BLOCK_FRAMES;
                /* backwards: blocks from the end, each one last frame first */
                size_t at = (size_t)(dir == 0 ? done : steps - done - n);
                layer_block(m, l, dir, scratch, layer_in + at * in_size, in_size, n,
                            layer_out + at * out_size + (size_t)dir * width, out_size, dir);
            }
        }
        layer_in = layer_out;
    }
    if (first) hold_steps(m, layer_in, frames, outputs);
    free(scratch);
    free(between[0]);
    free(between[1]);
    free(stepped);
    return ES_RNN_OK;
}
