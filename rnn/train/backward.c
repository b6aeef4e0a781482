/*
 * Forward and backward passes of every layer type over a slice of a
 * mini-batch (see train_internal.h for the time-major layout).
 *
 * Truncated BPTT: the forward pass always runs over the whole sequence (so
 * the state is carried from chunk to chunk exactly as in streaming); the
 * backward pass cuts the gradient along every time edge that crosses a chunk
 * boundary (a multiple of bptt_frames), in the recurrences and in a
 * convolution's window alike. The gradient is then the one of chunk-by-chunk
 * training with the earlier chunk's state held constant.
 *
 * Padding: frames past a sequence's length are never scored, and causal
 * layers cannot carry them backwards in time. The backward direction of a
 * BIDIR layer would, so it holds its state at zero on padded frames and
 * starts every sequence from zero at its own last frame. The recurrences
 * skip the rows past the last sequence still running at a frame (all of a
 * frame's padding when the slice is sorted longest first, as the trainer
 * sorts it): their state and gradients are zero, as padding's would be.
 */
#include <math.h>
#include <string.h>

#include "train_internal.h"

static int gates_per_unit(es_layer_type type) {
    switch (type) {
    case ES_LAYER_GRU:
    case ES_LAYER_BIDIR_GRU:
        return 3;
    case ES_LAYER_LSTM:
    case ES_LAYER_BIDIR_LSTM:
        return 4;
    default:
        return 1;
    }
}

static int is_recurrent(es_layer_type type) {
    return type != ES_LAYER_DENSE && type != ES_LAYER_CONV1D;
}

static int direction_count(es_layer_type type) {
    return type == ES_LAYER_BIDIR_GRU || type == ES_LAYER_BIDIR_LSTM ? 2 : 1;
}

static int is_gru(es_layer_type type) {
    return type == ES_LAYER_GRU || type == ES_LAYER_BIDIR_GRU;
}

static int is_lstm(es_layer_type type) {
    return type == ES_LAYER_LSTM || type == ES_LAYER_BIDIR_LSTM;
}

/* Width of the matrix W multiplies: the input, or the convolution window. */
static int projected_width(const es_layer *layer) {
    return layer->type == ES_LAYER_CONV1D ? layer->kernel * layer->input_size : layer->input_size;
}

/* The parameter blocks of one direction of a layer. */
typedef struct direction_params {
    size_t w, u, b, c; /* offsets from the layer's start; u, c unused when absent */
    size_t size;
} direction_params;

static direction_params direction_layout(const es_layer *layer) {
    size_t rows = (size_t)gates_per_unit(layer->type) * layer->units;
    direction_params d = {0};
    d.w = 0;
    d.u = rows * projected_width(layer);
    d.b = d.u + (is_recurrent(layer->type) ? rows * layer->units : 0);
    d.c = d.b + rows;
    d.size = d.c + (is_gru(layer->type) ? rows : 0);
    return d;
}

size_t es_train_transposed_layout(const es_model *m, size_t *offsets) {
    size_t total = 0;
    for (int l = 0; l < m->layer_count; l++) {
        const es_layer *layer = &m->layers[l];
        size_t rows = (size_t)gates_per_unit(layer->type) * layer->units;
        for (int d = 0; d < 2; d++) {
            size_t *slot = offsets + ((size_t)l * 2 + d) * 2;
            slot[0] = slot[1] = total;
            if (d >= direction_count(layer->type)) continue;
            total += rows * projected_width(layer);
            slot[1] = total;
            if (is_recurrent(layer->type)) total += rows * layer->units;
        }
    }
    return total;
}

void es_train_transpose_weights(const es_model *m, const size_t *offsets, float *transposed) {
    for (int l = 0; l < m->layer_count; l++) {
        const es_layer *layer = &m->layers[l];
        int rows = gates_per_unit(layer->type) * layer->units;
        direction_params dp = direction_layout(layer);
        for (int d = 0; d < direction_count(layer->type); d++) {
            const float *params = m->params + layer->param_offset + d * dp.size;
            const size_t *slot = offsets + ((size_t)l * 2 + d) * 2;
            es_train_transpose(rows, projected_width(layer), params + dp.w, transposed + slot[0]);
            if (is_recurrent(layer->type))
                es_train_transpose(rows, layer->units, params + dp.u, transposed + slot[1]);
        }
    }
}

/* ---- layout -------------------------------------------------------------------- */

typedef struct arena {
    float *base;
    size_t used;
} arena;

/* Every buffer starts on a 64-byte boundary when base does. */
static float *take(arena *a, size_t floats) {
    float *p = a->base ? a->base + a->used : NULL;
    a->used += (floats + 15) / 16 * 16;
    return p;
}

size_t es_train_pass_layout(es_train_pass *p, int frames, int batch, int want_dinputs,
                            float *base) {
    arena a = {base, 0};
    const es_model *m = p->model;
    size_t rows = (size_t)frames * batch;
    p->frames = frames;
    p->batch = batch;
    p->inputs = take(&a, rows * m->input_size);
    p->dinputs = want_dinputs ? take(&a, rows * m->input_size) : NULL;
    for (int l = 0; l < m->layer_count; l++) {
        const es_layer *layer = &m->layers[l];
        es_train_layer_cache *cache = &p->layer[l];
        memset(cache, 0, sizeof *cache);
        cache->out = take(&a, rows * layer->output_size);
        cache->dout = take(&a, rows * layer->output_size);
        if (layer->type == ES_LAYER_CONV1D) {
            cache->window = take(&a, rows * projected_width(layer));
            cache->dwindow = take(&a, rows * projected_width(layer));
        }
        if (!is_recurrent(layer->type)) continue;
        size_t gates = (size_t)gates_per_unit(layer->type) * layer->units;
        for (int d = 0; d < direction_count(layer->type); d++) {
            es_train_direction *dir = &cache->dir[d];
            dir->gates = take(&a, rows * gates);
            dir->dgates = take(&a, rows * gates);
            dir->recurrent = take(&a, (size_t)batch * gates);
            dir->dh = take(&a, (size_t)batch * layer->units);
            dir->dh_prev = take(&a, (size_t)batch * layer->units);
            if (is_gru(layer->type)) {
                dir->dhidden_gates = take(&a, rows * gates);
                dir->hidden_n = take(&a, rows * layer->units);
            }
            if (is_lstm(layer->type)) {
                dir->cell = take(&a, rows * layer->units);
                dir->cell_tanh = take(&a, rows * layer->units);
                dir->dc = take(&a, (size_t)batch * layer->units);
            }
        }
    }
    return a.used;
}

/* ---- activations ----------------------------------------------------------------- */

static void activate_rows(es_activation act, float *y, size_t rows, int width) {
    size_t n = rows * width;
    switch (act) {
    case ES_ACT_LINEAR:
        break;
    case ES_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            y[i] = y[i] > 0.0f ? y[i] : 0.0f;
        break;
    case ES_ACT_SIGMOID:
        es_train_sigmoid(y, (int)n);
        break;
    case ES_ACT_TANH:
        es_train_tanh(y, (int)n);
        break;
    case ES_ACT_SOFTMAX:
        for (size_t r = 0; r < rows; r++) {
            float *row = y + r * width;
            float top = row[0];
            for (int k = 1; k < width; k++)
                top = row[k] > top ? row[k] : top;
            float sum = 0.0f;
            for (int k = 0; k < width; k++) {
                row[k] -= top;
                row[k] = expf(row[k]);
                sum += row[k];
            }
            for (int k = 0; k < width; k++)
                row[k] /= sum;
        }
        break;
    }
}

/* dy (gradient w.r.t. the output y) becomes the gradient w.r.t. the
 * pre-activation, in place. */
static void activation_backward(es_activation act, const float *y, float *dy, size_t rows,
                                int width) {
    size_t n = rows * width;
    switch (act) {
    case ES_ACT_LINEAR:
        break;
    case ES_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case ES_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++)
            dy[i] *= y[i] * (1.0f - y[i]);
        break;
    case ES_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            dy[i] *= 1.0f - y[i] * y[i];
        break;
    case ES_ACT_SOFTMAX:
        for (size_t r = 0; r < rows; r++) {
            const float *yr = y + r * width;
            float *dr = dy + r * width;
            float dot = 0.0f;
            for (int k = 0; k < width; k++)
                dot += dr[k] * yr[k];
            for (int k = 0; k < width; k++)
                dr[k] = yr[k] * (dr[k] - dot);
        }
        break;
    }
}

/* out[r] = bias + x[r] · Wᵀ for `rows` rows. */
static void affine_rows(size_t rows, int in_width, const float *x, const float *w_transposed,
                        const float *bias, int units, float *out) {
    for (size_t r = 0; r < rows; r++)
        memcpy(out + r * units, bias, sizeof(float) * units);
    es_train_matmul((int)rows, units, in_width, x, in_width, 1, w_transposed, units, out, units);
}

static const float *layer_input(const es_train_pass *p, int l) {
    return l == 0 ? p->inputs : p->layer[l - 1].out;
}

static const float *transposed_w(const es_train_pass *p, int l, int d) {
    return p->transposed + p->transposed_offset[((size_t)l * 2 + d) * 2];
}

static const float *transposed_u(const es_train_pass *p, int l, int d) {
    return p->transposed + p->transposed_offset[((size_t)l * 2 + d) * 2 + 1];
}

static void build_windows(const es_train_pass *p, int l) {
    const es_layer *layer = &p->model->layers[l];
    const float *x = layer_input(p, l);
    int in = layer->input_size, kernel = layer->kernel, batch = p->batch;
    float *window = p->layer[l].window;
    for (int t = 0; t < p->frames; t++)
        for (int b = 0; b < batch; b++) {
            float *dst = window + ((size_t)t * batch + b) * kernel * in;
            for (int k = 0; k < kernel; k++) {
                int source = t - kernel + 1 + k;
                if (source < 0)
                    memset(dst + k * in, 0, sizeof(float) * in);
                else
                    memcpy(dst + k * in, x + ((size_t)source * batch + b) * in, sizeof(float) * in);
            }
        }
}

static void feedforward_forward(es_train_pass *p, int l) {
    const es_layer *layer = &p->model->layers[l];
    const float *params = p->model->params + layer->param_offset;
    direction_params dp = direction_layout(layer);
    size_t rows = (size_t)p->frames * p->batch;
    const float *x = layer_input(p, l);
    if (layer->type == ES_LAYER_CONV1D) {
        build_windows(p, l);
        x = p->layer[l].window;
    }
    affine_rows(rows, projected_width(layer), x, transposed_w(p, l, 0), params + dp.b, layer->units,
                p->layer[l].out);
    activate_rows(layer->activation, p->layer[l].out, rows, layer->units);
}

/* Hidden state h of frame t in direction d: a row of the layer's output. */
static float *hidden_row(const es_train_pass *p, int l, int d, int t) {
    const es_layer *layer = &p->model->layers[l];
    return p->layer[l].out + (size_t)t * p->batch * layer->output_size + d * layer->units;
}

/* The frame whose state feeds frame t (−1: none, the sequence starts). */
static int previous_frame(const es_train_pass *p, int d, int t) {
    int prev = d == 0 ? t - 1 : t + 1;
    return prev < 0 || prev >= p->frames ? -1 : prev;
}

/* Is the time edge between frames t and its previous frame cut by truncation? */
static int edge_is_cut(const es_train_pass *p, int d, int t) {
    if (p->bptt_frames <= 0) return 0;
    int later = d == 0 ? t : t + 1;
    return later % p->bptt_frames == 0;
}

static int is_masked(const es_train_pass *p, int d, int t, int b) {
    return d == 1 && t >= p->lengths[b];
}

/* Rows [0, n) of frame t hold every sequence still running there. */
static int running_rows(const es_train_pass *p, int t) {
    int n = p->batch;
    while (n > 0 && p->lengths[n - 1] <= t)
        n--;
    return n;
}

/* Zeroes rows [from, batch) of a [T][B][width] buffer at frame t. */
static void zero_rows(const es_train_pass *p, float *buffer, int t, int from, int width) {
    if (from < p->batch)
        memset(buffer + ((size_t)t * p->batch + from) * width, 0,
               sizeof(float) * (size_t)(p->batch - from) * width);
}

/* The gates and state of frame t, sequence b, from its input projection
 * (already in gates) and recurrent projection rh = U h_{t-1} (+ c). */
static void cell_forward(const es_train_pass *p, int l, int d, int t, int b, const float *rh,
                         const float *hp) {
    const es_layer *layer = &p->model->layers[l];
    const es_train_direction *dir = &p->layer[l].dir[d];
    int units = layer->units, gates = gates_per_unit(layer->type) * units;
    size_t row = (size_t)t * p->batch + b;
    float *g = dir->gates + row * gates;
    float *h = hidden_row(p, l, d, t) + (size_t)b * layer->output_size;
    if (is_gru(layer->type)) {
        float *hidden_n = dir->hidden_n + row * units;
        for (int j = 0; j < 2 * units; j++)
            g[j] += rh[j];
        es_train_sigmoid(g, 2 * units);
        for (int j = 0; j < units; j++) {
            hidden_n[j] = rh[2 * units + j];
            g[2 * units + j] += g[units + j] * hidden_n[j];
        }
        es_train_tanh(g + 2 * units, units);
        for (int j = 0; j < units; j++) {
            float z = g[j], n = g[2 * units + j];
            h[j] = (1.0f - z) * n + (hp ? z * hp[j] : 0.0f);
        }
    } else if (is_lstm(layer->type)) {
        float *cell = dir->cell + row * units;
        float *cell_tanh = dir->cell_tanh + row * units;
        int prev = previous_frame(p, d, t);
        const float *cell_prev =
            prev >= 0 ? dir->cell + ((size_t)prev * p->batch + b) * units : NULL;
        for (int j = 0; j < gates; j++)
            g[j] += rh[j];
        es_train_sigmoid(g, 2 * units);
        es_train_tanh(g + 2 * units, units);
        es_train_sigmoid(g + 3 * units, units);
        for (int j = 0; j < units; j++) {
            float i = g[j], f = g[units + j], gg = g[2 * units + j];
            cell[j] = i * gg + (cell_prev ? f * cell_prev[j] : 0.0f);
            cell_tanh[j] = cell[j];
        }
        es_train_tanh(cell_tanh, units);
        for (int j = 0; j < units; j++)
            h[j] = g[3 * units + j] * cell_tanh[j];
    } else {
        for (int j = 0; j < units; j++)
            g[j] += rh[j];
        es_train_tanh(g, units);
        memcpy(h, g, sizeof(float) * units);
    }
    if (is_masked(p, d, t, b)) {
        memset(h, 0, sizeof(float) * units);
        if (is_lstm(layer->type)) memset(dir->cell + row * units, 0, sizeof(float) * units);
    }
}

static void recurrent_forward(es_train_pass *p, int l, int d) {
    const es_layer *layer = &p->model->layers[l];
    direction_params dp = direction_layout(layer);
    const float *params = p->model->params + layer->param_offset + d * dp.size;
    es_train_direction *dir = &p->layer[l].dir[d];
    int units = layer->units, batch = p->batch, ld = layer->output_size;
    int gates = gates_per_unit(layer->type) * units;
    size_t rows = (size_t)p->frames * batch;

    /* Every frame's input projection in one product; then frame by frame. */
    affine_rows(rows, layer->input_size, layer_input(p, l), transposed_w(p, l, d), params + dp.b,
                gates, dir->gates);
    for (int s = 0; s < p->frames; s++) {
        int t = d == 0 ? s : p->frames - 1 - s;
        int prev = previous_frame(p, d, t);
        const float *h_prev = prev >= 0 ? hidden_row(p, l, d, prev) : NULL;
        float *recurrent = dir->recurrent;
        const int running = running_rows(p, t);
        for (int b = 0; b < running; b++) {
            if (is_gru(layer->type))
                memcpy(recurrent + (size_t)b * gates, params + dp.c, sizeof(float) * gates);
            else
                memset(recurrent + (size_t)b * gates, 0, sizeof(float) * gates);
        }
        if (h_prev && running > 0)
            es_train_matmul(running, gates, units, h_prev, ld, 1, transposed_u(p, l, d), gates,
                            recurrent, gates);
        for (int b = 0; b < running; b++)
            cell_forward(p, l, d, t, b, recurrent + (size_t)b * gates,
                         h_prev ? h_prev + (size_t)b * ld : NULL);
        for (int b = running; b < batch; b++)
            memset(hidden_row(p, l, d, t) + (size_t)b * ld, 0, sizeof(float) * units);
        if (is_lstm(layer->type)) zero_rows(p, dir->cell, t, running, units);
    }
}

void es_train_forward(es_train_pass *p) {
    for (int l = 0; l < p->model->layer_count; l++) {
        const es_layer *layer = &p->model->layers[l];
        if (is_recurrent(layer->type))
            for (int d = 0; d < direction_count(layer->type); d++)
                recurrent_forward(p, l, d);
        else
            feedforward_forward(p, l);
    }
}

/* ---- backward -------------------------------------------------------------------- */

/* Gradients of W and b from the pre-activation gradients dz of every row;
 * dx (if wanted) += dz · W. */
static void affine_backward(size_t rows, int in_width, const float *x, const float *dz, int units,
                            const float *w, float *grad_w, float *grad_b, float *dx) {
    es_train_matmul(units, in_width, (int)rows, dz, 1, units, x, in_width, grad_w, in_width);
    es_train_add_column_sums((int)rows, units, dz, units, grad_b);
    if (dx) es_train_matmul((int)rows, in_width, units, dz, units, 1, w, in_width, dx, in_width);
}

static void scatter_windows(const es_train_pass *p, int l, float *dx) {
    const es_layer *layer = &p->model->layers[l];
    int in = layer->input_size, kernel = layer->kernel, batch = p->batch;
    const float *dwindow = p->layer[l].dwindow;
    for (int t = 0; t < p->frames; t++) {
        int chunk_start = p->bptt_frames > 0 ? t / p->bptt_frames * p->bptt_frames : 0;
        for (int b = 0; b < batch; b++) {
            const float *src = dwindow + ((size_t)t * batch + b) * kernel * in;
            for (int k = 0; k < kernel; k++) {
                int source = t - kernel + 1 + k;
                if (source < chunk_start) continue;
                float *dst = dx + ((size_t)source * batch + b) * in;
                for (int i = 0; i < in; i++)
                    dst[i] += src[k * in + i];
            }
        }
    }
}

static void feedforward_backward(es_train_pass *p, int l, int dout_is_preactivation, float *grad,
                                 float *dx) {
    const es_layer *layer = &p->model->layers[l];
    const float *params = p->model->params + layer->param_offset;
    float *layer_grad = grad + layer->param_offset;
    direction_params dp = direction_layout(layer);
    es_train_layer_cache *cache = &p->layer[l];
    size_t rows = (size_t)p->frames * p->batch;
    int width = projected_width(layer);
    if (!dout_is_preactivation)
        activation_backward(layer->activation, cache->out, cache->dout, rows, layer->units);
    if (layer->type == ES_LAYER_CONV1D) {
        float *dwindow = NULL;
        if (dx) {
            dwindow = cache->dwindow;
            memset(dwindow, 0, sizeof(float) * rows * width);
        }
        affine_backward(rows, width, cache->window, cache->dout, layer->units, params + dp.w,
                        layer_grad + dp.w, layer_grad + dp.b, dwindow);
        if (dx) scatter_windows(p, l, dx);
    } else {
        affine_backward(rows, width, layer_input(p, l), cache->dout, layer->units, params + dp.w,
                        layer_grad + dp.w, layer_grad + dp.b, dx);
    }
}

/* Gradients of the gates of frame t, sequence b, from dh (and dc) reaching
 * h_t (c_t); leaves in dh_prev[b] the part that flows to h_{t-1} directly
 * (not through U) and in dc[b] the part that flows to c_{t-1}. */
static void cell_backward(const es_train_pass *p, int l, int d, int t, int b, const float *hp) {
    const es_layer *layer = &p->model->layers[l];
    const es_train_direction *dir = &p->layer[l].dir[d];
    int units = layer->units, gates = gates_per_unit(layer->type) * units;
    size_t row = (size_t)t * p->batch + b;
    const float *g = dir->gates + row * gates;
    float *dg = dir->dgates + row * gates;
    const float *dh = dir->dh + (size_t)b * units;
    float *dh_prev = dir->dh_prev + (size_t)b * units;
    if (is_gru(layer->type)) {
        const float *hidden_n = dir->hidden_n + row * units;
        float *dhg = dir->dhidden_gates + row * gates;
        for (int j = 0; j < units; j++) {
            float z = g[j], r = g[units + j], n = g[2 * units + j];
            float h_before = hp ? hp[j] : 0.0f;
            float dn = dh[j] * (1.0f - z) * (1.0f - n * n);
            float dz = dh[j] * (h_before - n) * z * (1.0f - z);
            float dr = dn * hidden_n[j] * r * (1.0f - r);
            dg[j] = dhg[j] = dz;
            dg[units + j] = dhg[units + j] = dr;
            dg[2 * units + j] = dn;
            dhg[2 * units + j] = dn * r;
            dh_prev[j] = dh[j] * z;
        }
    } else if (is_lstm(layer->type)) {
        const float *cell_tanh = dir->cell_tanh + row * units;
        int prev = previous_frame(p, d, t);
        const float *cell_prev =
            prev >= 0 ? dir->cell + ((size_t)prev * p->batch + b) * units : NULL;
        float *dc = dir->dc + (size_t)b * units;
        for (int j = 0; j < units; j++) {
            float i = g[j], f = g[units + j], gg = g[2 * units + j], o = g[3 * units + j];
            float tc = cell_tanh[j];
            float dcell = dc[j] + dh[j] * o * (1.0f - tc * tc);
            dg[j] = dcell * gg * i * (1.0f - i);
            dg[units + j] = cell_prev ? dcell * cell_prev[j] * f * (1.0f - f) : 0.0f;
            dg[2 * units + j] = dcell * i * (1.0f - gg * gg);
            dg[3 * units + j] = dh[j] * tc * o * (1.0f - o);
            dc[j] = dcell * f;
            dh_prev[j] = 0.0f;
        }
    } else {
        const float *h = g;
        for (int j = 0; j < units; j++) {
            dg[j] = dh[j] * (1.0f - h[j] * h[j]);
            dh_prev[j] = 0.0f;
        }
    }
}

static void recurrent_backward(es_train_pass *p, int l, int d, float *grad, float *dx) {
    const es_layer *layer = &p->model->layers[l];
    direction_params dp = direction_layout(layer);
    const float *params = p->model->params + layer->param_offset + d * dp.size;
    float *dgrad = grad + layer->param_offset + d * dp.size;
    es_train_direction *dir = &p->layer[l].dir[d];
    int units = layer->units, batch = p->batch, ld = layer->output_size;
    int gates = gates_per_unit(layer->type) * units;
    size_t rows = (size_t)p->frames * batch;
    /* GRU: U h + c gets a gradient of its own (the n gate scales it by r). */
    float *dhidden = is_gru(layer->type) ? dir->dhidden_gates : dir->dgates;

    memset(dir->dh_prev, 0, sizeof(float) * batch * units);
    if (dir->dc) memset(dir->dc, 0, sizeof(float) * batch * units);
    int carry = 0; /* does dh_prev hold a gradient for this frame? */
    for (int s = p->frames - 1; s >= 0; s--) {
        int t = d == 0 ? s : p->frames - 1 - s;
        int prev = previous_frame(p, d, t);
        const float *h_prev = prev >= 0 ? hidden_row(p, l, d, prev) : NULL;
        const float *dout = p->layer[l].dout + (size_t)t * batch * ld + d * units;
        const int running = running_rows(p, t);
        for (int b = 0; b < running; b++) {
            float *dh = dir->dh + (size_t)b * units;
            const float *from_above = dout + (size_t)b * ld;
            const float *from_later = dir->dh_prev + (size_t)b * units;
            for (int j = 0; j < units; j++)
                dh[j] = from_above[j] + (carry ? from_later[j] : 0.0f);
            if (is_masked(p, d, t, b)) {
                memset(dh, 0, sizeof(float) * units);
                if (dir->dc) memset(dir->dc + (size_t)b * units, 0, sizeof(float) * units);
            }
            cell_backward(p, l, d, t, b, h_prev ? h_prev + (size_t)b * ld : NULL);
        }
        zero_rows(p, dir->dgates, t, running, gates);
        if (is_gru(layer->type)) zero_rows(p, dir->dhidden_gates, t, running, gates);
        if (running < batch) {
            const size_t ended = (size_t)(batch - running) * units;
            memset(dir->dh_prev + (size_t)running * units, 0, sizeof(float) * ended);
            if (dir->dc) memset(dir->dc + (size_t)running * units, 0, sizeof(float) * ended);
        }
        carry = h_prev && !edge_is_cut(p, d, t);
        if (carry && running > 0)
            es_train_matmul(running, units, gates, dhidden + (size_t)t * batch * gates, gates, 1,
                            params + dp.u, units, dir->dh_prev, units);
        else if (dir->dc)
            memset(dir->dc, 0, sizeof(float) * batch * units);
    }

    /* W and b from every frame; U from every frame that has a predecessor. */
    affine_backward(rows, layer->input_size, layer_input(p, l), dir->dgates, gates, params + dp.w,
                    dgrad + dp.w, dgrad + dp.b, dx);
    if (p->frames > 1) {
        size_t later = d == 0 ? (size_t)batch : 0, earlier = d == 0 ? 0 : (size_t)batch;
        es_train_matmul(gates, units, (p->frames - 1) * batch, dhidden + later * gates, 1, gates,
                        p->layer[l].out + earlier * ld + d * units, ld, dgrad + dp.u, units);
    }
    /* c is added at every frame, the first included (there h_{t-1} = 0). */
    if (is_gru(layer->type))
        es_train_add_column_sums((int)rows, gates, dhidden, gates, dgrad + dp.c);
}

void es_train_backward(es_train_pass *p, float *grad) {
    const int lowest = p->dinputs ? 0 : p->frozen_layers;
    for (int l = p->model->layer_count - 1; l >= lowest; l--) {
        const es_layer *layer = &p->model->layers[l];
        float *dx = l > lowest ? p->layer[l - 1].dout : l > 0 ? NULL : p->dinputs;
        if (dx) memset(dx, 0, sizeof(float) * p->frames * p->batch * layer->input_size);
        if (is_recurrent(layer->type))
            for (int d = 0; d < direction_count(layer->type); d++)
                recurrent_backward(p, l, d, grad, dx);
        else
            feedforward_backward(p, l, l == p->model->layer_count - 1, grad, dx);
    }
}

void es_train_decay_mask(const es_model *m, unsigned char *mask) {
    for (int l = 0; l < m->layer_count; l++) {
        const es_layer *layer = &m->layers[l];
        direction_params dp = direction_layout(layer);
        for (int d = 0; d < direction_count(layer->type); d++) {
            unsigned char *block = mask + layer->param_offset + d * dp.size;
            memset(block, 1, dp.b);
            memset(block + dp.b, 0, dp.size - dp.b);
        }
    }
}
