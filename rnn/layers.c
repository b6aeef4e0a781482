/*
 * Forward passes: one step of each layer type on the packed weights, the
 * stream state that carries hidden values between frames, and the
 * whole-sequence forward. Stepping and the sequence forward call the same
 * layer_step(), which is what makes their results bit-identical.
 */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "model_internal.h"

struct es_state {
    const es_model *model; /* read-only; its packing is looked up each step so a
                              trainer's es_model_refresh() is seen at once */
    float *scratch;        /* every layer's hidden values, histories and gates */
    size_t scratch_floats;
};

static void activate(const es_kernels *k, es_activation act, float *x, int n) {
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

/* matvec over panels [first, first + count) of a direction, columns [c0, c1). */
static void matvec_panels(const es_kernels *k, const es_packed_layer *pl,
                          const es_packed_direction *d, int first_row, int rows, int c0, int c1,
                          const float *v, const float *bias, float *y) {
    size_t stride = (size_t)pl->cols * ES_PANEL_ROWS;
    k->matvec(d->panels + (size_t)(first_row / ES_PANEL_ROWS) * stride, stride,
              rows / ES_PANEL_ROWS, c0, c1, v, bias, y);
}

static void gru_update(const es_kernels *k, const es_layer *layer, const es_packed_layer *pl,
                       const es_packed_direction *d, float *xh, float *gates) {
    int in = layer->input_size, u = layer->units, gr = pl->gate_rows;
    float *h = xh + in;
    float *z = gates, *r = gates + gr, *n = gates + 2 * gr, *n_hidden = gates + 3 * gr;
    matvec_panels(k, pl, d, 0, 2 * gr, 0, pl->cols, xh, d->bias, z);
    matvec_panels(k, pl, d, 2 * gr, gr, 0, in, xh, d->bias + 2 * gr, n);
    matvec_panels(k, pl, d, 2 * gr, gr, in, pl->cols, xh, d->bias_n_hidden, n_hidden);
    k->sigmoid(z, 2 * gr);
    for (int j = 0; j < u; j++)
        n[j] += r[j] * n_hidden[j];
    k->tanh(n, u);
    for (int j = 0; j < u; j++)
        h[j] = n[j] + z[j] * (h[j] - n[j]); /* (1 - z) n + z h */
}

static void lstm_update(const es_kernels *k, const es_layer *layer, const es_packed_layer *pl,
                        const es_packed_direction *d, float *xh, float *gates, float *cell) {
    int u = layer->units, gr = pl->gate_rows;
    float *h = xh + layer->input_size;
    float *i_gate = gates, *f_gate = gates + gr, *g_gate = gates + 2 * gr, *o_gate = gates + 3 * gr;
    matvec_panels(k, pl, d, 0, pl->rows_padded, 0, pl->cols, xh, d->bias, gates);
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
}

/* One frame through one layer (direction `dir` for BIDIR). Returns where the
 * layer's output now is, inside `scratch`. */
static const float *layer_step(const es_kernels *k, const es_layer *layer,
                               const es_packed_layer *pl, int dir, float *scratch,
                               const float *input) {
    const es_packed_direction *d = &pl->dir[dir];
    int in = layer->input_size;
    float *gates = scratch + pl->state_gates;
    switch (layer->type) {
    case ES_LAYER_DENSE:
        matvec_panels(k, pl, d, 0, pl->rows_padded, 0, pl->cols, input, d->bias, gates);
        activate(k, layer->activation, gates, layer->units);
        return gates;
    case ES_LAYER_CONV1D: {
        /* The window holds the last K frames, oldest first, as W's columns do. */
        float *window = scratch + pl->state_input;
        size_t history = (size_t)(layer->kernel - 1) * (size_t)in;
        memmove(window, window + in, history * sizeof(float));
        memcpy(window + history, input, (size_t)in * sizeof(float));
        matvec_panels(k, pl, d, 0, pl->rows_padded, 0, pl->cols, window, d->bias, gates);
        activate(k, layer->activation, gates, layer->units);
        return gates;
    }
    default:
        break;
    }
    float *xh = scratch + pl->state_input;
    memcpy(xh, input, (size_t)in * sizeof(float));
    switch (layer->type) {
    case ES_LAYER_RNN:
        matvec_panels(k, pl, d, 0, pl->rows_padded, 0, pl->cols, xh, d->bias, gates);
        k->tanh(gates, layer->units);
        memcpy(xh + in, gates, (size_t)layer->units * sizeof(float));
        break;
    case ES_LAYER_GRU:
    case ES_LAYER_BIDIR_GRU:
        gru_update(k, layer, pl, d, xh, gates);
        break;
    default: /* LSTM, BIDIR_LSTM */
        lstm_update(k, layer, pl, d, xh, gates, scratch + pl->state_cell);
        break;
    }
    return xh + in;
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
    if (s) memset(s->scratch, 0, s->scratch_floats * sizeof(float));
}

const float *es_state_step(es_state *s, const float *frame) {
    const es_model *m = s->model;
    const es_packed_model *packed = m->packed;
    const float *x = frame;
    for (int l = 0; l < m->layer_count; l++)
        x = layer_step(packed->kernels, &m->layers[l], &packed->layers[l], 0, s->scratch, x);
    return x;
}

/* ---- whole sequence ---------------------------------------------------------------- */

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
    int widest = 0;
    for (int l = 0; l + 1 < m->layer_count; l++)
        widest = m->layers[l].output_size > widest ? m->layers[l].output_size : widest;
    float *scratch = es_alloc_floats(packed->state_floats);
    float *between[2] = {NULL, NULL};
    if (widest > 0) {
        between[0] = es_alloc_floats((size_t)frames * (size_t)widest);
        between[1] = es_alloc_floats((size_t)frames * (size_t)widest);
    }
    if (!scratch || (widest > 0 && (!between[0] || !between[1]))) {
        free(scratch);
        free(between[0]);
        free(between[1]);
        return ES_RNN_ERR_NOMEM;
    }

    const float *layer_in = inputs;
    for (int l = 0; l < m->layer_count; l++) {
        const es_layer *layer = &m->layers[l];
        const es_packed_layer *pl = &packed->layers[l];
        float *layer_out = l + 1 == m->layer_count ? outputs : between[l % 2];
        size_t in_size = (size_t)layer->input_size, out_size = (size_t)layer->output_size;
        size_t width = (size_t)layer->units; /* per direction */
        for (int dir = 0; dir < pl->directions; dir++) {
            memset(scratch, 0, packed->state_floats * sizeof(float));
            for (int i = 0; i < frames; i++) {
                size_t t = (size_t)(dir == 0 ? i : frames - 1 - i);
                const float *y =
                    layer_step(packed->kernels, layer, pl, dir, scratch, layer_in + t * in_size);
                memcpy(layer_out + t * out_size + (size_t)dir * width, y, width * sizeof(float));
            }
        }
        layer_in = layer_out;
    }
    free(scratch);
    free(between[0]);
    free(between[1]);
    return ES_RNN_OK;
}
