/*
 * Building a model in code, its accessors, weight initialisation, and the
 * packing of its parameters into the layout the kernels read (kernels.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "kernels_int8.h"
#include "model_internal.h"

const char *es_rnn_strerror(int code) {
    switch (code) {
    case ES_RNN_OK:
        return "success";
    case ES_RNN_ERR_NOMEM:
        return "out of memory";
    case ES_RNN_ERR_ARG:
        return "argument out of range";
    case ES_RNN_ERR_IO:
        return "input/output error";
    case ES_RNN_ERR_FORMAT:
        return "not a valid model file";
    case ES_RNN_ERR_FEATURES:
        return "model expects other features";
    case ES_RNN_ERR_STREAMING:
        return "bidirectional model cannot run frame by frame";
    }
    return "unknown error";
}

static int is_bidirectional(es_layer_type type) {
    return type == ES_LAYER_BIDIR_GRU || type == ES_LAYER_BIDIR_LSTM;
}

/* Rows per unit of the layer's matrices: its gates. */
static int gate_count(es_layer_type type) {
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

static int has_kernel(es_layer_type type) {
    return type == ES_LAYER_CONV1D || type == ES_LAYER_STACK;
}

static int is_recurrent(es_layer_type type) {
    return type == ES_LAYER_RNN || type == ES_LAYER_GRU || type == ES_LAYER_LSTM ||
           is_bidirectional(type);
}

/* Columns of the (packed) matrix: what one step multiplies. */
static size_t matrix_cols(es_layer_type type, int input_size, int units, int kernel) {
    if (type == ES_LAYER_CONV1D) return (size_t)kernel * (size_t)input_size;
    if (is_recurrent(type)) return (size_t)input_size + (size_t)units;
    return (size_t)input_size;
}

void es_layer_shape_of(es_layer_type type, int input_size, int units, int kernel,
                       es_layer_shape *shape) {
    shape->directions = is_bidirectional(type) ? 2 : 1;
    shape->rows = (size_t)gate_count(type) * (size_t)units;
    shape->cols = matrix_cols(type, input_size, units, kernel);
    shape->input_cols = is_recurrent(type) ? (size_t)input_size : shape->cols;
    shape->matrix_params = shape->rows * shape->cols;
    size_t per_direction =
        es_layer_param_count(type, input_size, units, kernel) / (size_t)shape->directions;
    shape->biases = per_direction - shape->matrix_params;
}

size_t es_layer_param_count(es_layer_type type, int input_size, int units, int kernel) {
    if (type < ES_LAYER_DENSE || type > ES_LAYER_BIDIR_LSTM || input_size <= 0 || units <= 0)
        return 0; /* STACK has none */
    if (type == ES_LAYER_CONV1D && kernel <= 0) return 0;
    size_t rows = (size_t)gate_count(type) * (size_t)units;
    size_t biases = type == ES_LAYER_GRU || type == ES_LAYER_BIDIR_GRU ? 2 * rows : rows;
    size_t one_direction = rows * matrix_cols(type, input_size, units, kernel) + biases;
    return is_bidirectional(type) ? 2 * one_direction : one_direction;
}

int es_model_create(const es_feature_spec *features, int input_size, es_model **out) {
    if (!out) return ES_RNN_ERR_ARG;
    *out = NULL;
    if (input_size <= 0 || input_size > ES_MAX_UNITS) return ES_RNN_ERR_ARG;
    es_model *m = calloc(1, sizeof *m);
    if (!m) return ES_RNN_ERR_NOMEM;
    if (features) m->features = *features;
    m->input_size = input_size;
    m->output_size = input_size;
    *out = m;
    return ES_RNN_OK;
}

static void free_packed(es_model *m) {
    es_packed_model *packed = m->packed;
    if (packed) {
        free(packed->storage);
        free(packed->storage_int8);
    }
    free(packed);
    m->packed = NULL;
}

void es_model_destroy(es_model *m) {
    if (!m) return;
    free_packed(m);
    for (int l = 0; l < m->layer_count; l++)
        free(m->layers[l].row_scales);
    free(m->params);
    free(m);
}

int es_model_append_layer(es_model *m, es_layer_type type, int units, es_activation act,
                          int kernel) {
    if (!m || m->layer_count >= ES_MAX_LAYERS) return ES_RNN_ERR_ARG;
    if (type < ES_LAYER_DENSE || type > ES_LAYER_STACK) return ES_RNN_ERR_ARG;
    if (units <= 0 || units > ES_MAX_UNITS) return ES_RNN_ERR_ARG;
    if (act < ES_ACT_LINEAR || act > ES_ACT_SOFTMAX) return ES_RNN_ERR_ARG;
    if (has_kernel(type) && (kernel <= 0 || kernel > ES_MAX_KERNEL)) return ES_RNN_ERR_ARG;
    if (!has_kernel(type)) kernel = 0;
    if (type == ES_LAYER_STACK) {
        /* Only the first layer can change the rate the rest step at. */
        if (m->layer_count > 0 || units != kernel * m->output_size) return ES_RNN_ERR_ARG;
        act = ES_ACT_LINEAR;
    }
    int output_size = is_bidirectional(type) ? 2 * units : units;
    if (output_size > ES_MAX_UNITS) return ES_RNN_ERR_ARG;

    size_t count = es_layer_param_count(type, m->output_size, units, kernel);
    size_t needed = m->param_count + count;
    if (needed > m->param_capacity) {
        size_t capacity = m->param_capacity * 2 > needed ? m->param_capacity * 2 : needed;
        float *grown = es_alloc_floats(capacity);
        if (!grown) return ES_RNN_ERR_NOMEM;
        if (m->param_count) memcpy(grown, m->params, m->param_count * sizeof(float));
        free(m->params);
        m->params = grown;
        m->param_capacity = capacity;
    }
    if (count) memset(m->params + m->param_count, 0, count * sizeof(float));

    es_layer *layer = &m->layers[m->layer_count++];
    layer->type = type;
    layer->activation = act;
    layer->input_size = m->output_size;
    layer->units = units;
    layer->output_size = output_size;
    layer->kernel = kernel;
    layer->param_offset = m->param_count;
    layer->param_count = count;
    layer->quantised = 0;
    layer->row_scales = NULL;
    m->param_count = needed;
    m->output_size = output_size;
    m->label_count = 0; /* the outputs changed meaning */
    m->has_thresholds = 0;
    m->has_smoothing = 0;
    return ES_RNN_OK;
}

int es_model_add_layer(es_model *m, es_layer_type type, int units, es_activation act, int kernel) {
    int rc = es_model_append_layer(m, type, units, act, kernel);
    return rc ? rc : es_model_refresh(m);
}

int es_model_set_labels(es_model *m, int count, const char *const *labels) {
    if (!m || !labels || m->layer_count == 0 || count != m->output_size || count > ES_MAX_OUTPUTS)
        return ES_RNN_ERR_ARG;
    for (int i = 0; i < count; i++)
        if (!labels[i] || strlen(labels[i]) >= ES_MAX_LABEL || !es_label_is_valid(labels[i]))
            return ES_RNN_ERR_ARG;
    if (es_label_repeated(labels, count) >= 0) return ES_RNN_ERR_ARG;
    for (int i = 0; i < count; i++) {
        memset(m->labels[i], 0, ES_MAX_LABEL);
        memcpy(m->labels[i], labels[i], strlen(labels[i]));
    }
    m->label_count = count;
    return ES_RNN_OK;
}

int es_threshold_is_valid(float threshold) {
    return isfinite(threshold) && threshold >= 0.0f && threshold <= 1.0f;
}

int es_model_set_thresholds(es_model *m, const float *thresholds) {
    if (!m || m->layer_count == 0) return ES_RNN_ERR_ARG;
    if (!thresholds) {
        m->has_thresholds = 0;
        return ES_RNN_OK;
    }
    for (int i = 0; i < m->output_size; i++)
        if (!es_threshold_is_valid(thresholds[i])) return ES_RNN_ERR_ARG;
    memcpy(m->thresholds, thresholds, sizeof(float) * (size_t)m->output_size);
    m->has_thresholds = 1;
    return ES_RNN_OK;
}

const float *es_model_thresholds(const es_model *m) {
    return m && m->has_thresholds ? m->thresholds : NULL;
}

int es_model_set_smoothing(es_model *m, const int *smooth_ms) {
    if (!m || m->layer_count == 0) return ES_RNN_ERR_ARG;
    if (!smooth_ms) {
        m->has_smoothing = 0;
        return ES_RNN_OK;
    }
    for (int i = 0; i < m->output_size; i++)
        if (smooth_ms[i] < 0 || smooth_ms[i] > ES_MODEL_MAX_SMOOTH_MS) return ES_RNN_ERR_ARG;
    memcpy(m->smooth_ms, smooth_ms, sizeof(int) * (size_t)m->output_size);
    m->has_smoothing = 1;
    return ES_RNN_OK;
}

const int *es_model_smoothing(const es_model *m) {
    return m && m->has_smoothing ? m->smooth_ms : NULL;
}

int es_label_is_valid(const char *label) {
    for (const char *c = label; *c; c++)
        if (*c < 0x20 || *c > 0x7e || *c == '"' || *c == '\\' || *c == ',') return 0;
    return 1;
}

int es_label_repeated(const char *const *labels, int count) {
    for (int i = 1; i < count; i++)
        for (int j = 0; j < i; j++)
            if (labels[i][0] && strcmp(labels[i], labels[j]) == 0) return i;
    return -1;
}

/* ---- initialisation ---------------------------------------------------------- */

/* splitmix64: tiny, seedable, good enough for weight initialisation. */
static uint64_t next_random(uint64_t *seed) {
    uint64_t z = (*seed += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *seed) {
    return (double)(next_random(seed) >> 11) * (1.0 / 9007199254740992.0);
}

static double normal(uint64_t *seed) {
    double u1 = uniform01(seed), u2 = uniform01(seed);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static void fill_glorot(float *w, size_t rows, size_t cols, uint64_t *seed) {
    double limit = sqrt(6.0 / (double)(rows + cols));
    for (size_t i = 0; i < rows * cols; i++)
        w[i] = (float)((2.0 * uniform01(seed) - 1.0) * limit);
}

/* Orthogonal-ish n x n block (row stride `stride`): Gaussian rows made
 * orthonormal by modified Gram-Schmidt, which keeps the recurrence's gain
 * near 1 at the start of training. Beyond a size where O(n^3) would stall
 * model creation, scaled Gaussian rows are nearly orthogonal anyway. */
#define ES_ORTHOGONAL_MAX_UNITS 512
static void fill_orthogonal(float *w, size_t stride, int n, uint64_t *seed) {
    double *q = malloc((size_t)n * (size_t)n * sizeof *q);
    int exact = q && n <= ES_ORTHOGONAL_MAX_UNITS;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            double g = normal(seed);
            if (exact)
                q[(size_t)i * n + j] = g;
            else
                w[(size_t)i * stride + j] = (float)(g / sqrt((double)n));
        }
    }
    if (exact) {
        for (int i = 0; i < n; i++) {
            double *row = q + (size_t)i * n;
            for (int k = 0; k < i; k++) {
                const double *prev = q + (size_t)k * n;
                double dot = 0;
                for (int j = 0; j < n; j++)
                    dot += row[j] * prev[j];
                for (int j = 0; j < n; j++)
                    row[j] -= dot * prev[j];
            }
            double norm = 0;
            for (int j = 0; j < n; j++)
                norm += row[j] * row[j];
            norm = sqrt(norm);
            for (int j = 0; j < n; j++) {
                row[j] = norm > 0 ? row[j] / norm : 0.0; /* later rows project onto it */
                w[(size_t)i * stride + j] = (float)row[j];
            }
        }
    }
    free(q);
}

static void init_direction(const es_layer *layer, float *p, uint64_t *seed) {
    int u = layer->units, in = layer->input_size, gates = gate_count(layer->type);
    size_t rows = (size_t)gates * (size_t)u;
    if (layer->type == ES_LAYER_DENSE) {
        fill_glorot(p, (size_t)u, (size_t)in, seed);
        return; /* biases stay zero */
    }
    if (layer->type == ES_LAYER_CONV1D) {
        /* Glorot over the whole receptive field. */
        double limit = sqrt(6.0 / ((double)layer->kernel * in + u));
        for (size_t i = 0; i < (size_t)u * layer->kernel * in; i++)
            p[i] = (float)((2.0 * uniform01(seed) - 1.0) * limit);
        return;
    }
    /* W per gate, then U per gate. */
    for (int g = 0; g < gates; g++)
        fill_glorot(p + (size_t)g * u * in, (size_t)u, (size_t)in, seed);
    float *recurrent = p + rows * (size_t)in;
    for (int g = 0; g < gates; g++)
        fill_orthogonal(recurrent + (size_t)g * u * u, (size_t)u, u, seed);
    float *bias = recurrent + rows * (size_t)u;
    if (layer->type == ES_LAYER_LSTM || layer->type == ES_LAYER_BIDIR_LSTM)
        for (int j = 0; j < u; j++)
            bias[u + j] = 1.0f; /* forget gate open: remember by default */
    if (layer->type == ES_LAYER_GRU || layer->type == ES_LAYER_BIDIR_GRU)
        for (int j = 0; j < u; j++)
            bias[j] = 1.0f; /* update gate leaning to keep h: a 16-unit GRU learns a
                               50-frame recall in ~150 steps instead of not at all */
}

void es_model_init_weights(es_model *m, uint64_t seed) {
    if (!m) return;
    memset(m->params, 0, m->param_count * sizeof(float));
    for (int l = 0; l < m->layer_count; l++) {
        const es_layer *layer = &m->layers[l];
        float *p = m->params + layer->param_offset;
        if (layer->type == ES_LAYER_STACK) continue; /* no weights */
        if (is_bidirectional(layer->type)) {
            init_direction(layer, p, &seed);
            init_direction(layer, p + layer->param_count / 2, &seed);
        } else {
            init_direction(layer, p, &seed);
        }
    }
    /* Packing only fails for lack of memory; the old packing then stays. */
    (void)es_model_refresh(m);
}

/* `to` is `from` stepping on K stacked frames instead of one (a STACK of K
 * in front of it, `from` without): the same layer but for K times the inputs. */
static int is_stacked_twin(const es_layer *to, const es_layer *from, int k) {
    return to->type == from->type && !is_bidirectional(to->type) && has_kernel(to->type) == 0 &&
           to->input_size == k * from->input_size && to->units == from->units &&
           to->activation == from->activation;
}

/* Copies `from` into its stacked twin: each row of W becomes K copies of
 * itself divided by K, so the layer first sees the mean of the K frames it
 * is given; U and the biases as they are. */
static void copy_stacked(const es_model *dst, const es_layer *to, const es_model *src,
                         const es_layer *from, int k) {
    es_layer_shape shape;
    es_layer_shape_of(from->type, from->input_size, from->units, from->kernel, &shape);
    const float *w = src->params + from->param_offset;
    float *stacked = dst->params + to->param_offset;
    for (size_t r = 0; r < shape.rows; r++)
        for (int copy = 0; copy < k; copy++)
            for (size_t c = 0; c < shape.input_cols; c++)
                stacked[(r * (size_t)k + (size_t)copy) * shape.input_cols + c] =
                    w[r * shape.input_cols + c] / (float)k;
    const size_t w_params = shape.rows * shape.input_cols;
    memcpy(stacked + (size_t)k * w_params, w + w_params,
           (from->param_count - w_params) * sizeof(float));
}

int es_model_copy_matching_layers(es_model *dst, const es_model *src) {
    if (!dst || !src || dst->input_size != src->input_size) return 0;
    int copied = 0, skew = 0; /* skew: dst's STACK, which src does not have */
    if (dst->layer_count > 1 && src->layer_count > 0 && dst->layers[0].type == ES_LAYER_STACK &&
        src->layers[0].type != ES_LAYER_STACK &&
        is_stacked_twin(&dst->layers[1], &src->layers[0], dst->layers[0].kernel)) {
        copy_stacked(dst, &dst->layers[1], src, &src->layers[0], dst->layers[0].kernel);
        copied = 2;
        skew = 1;
    }
    while (copied < dst->layer_count && copied - skew < src->layer_count) {
        const es_layer *to = &dst->layers[copied], *from = &src->layers[copied - skew];
        if (to->type != from->type || to->input_size != from->input_size ||
            to->units != from->units || to->activation != from->activation ||
            to->kernel != from->kernel)
            break;
        memcpy(dst->params + to->param_offset, src->params + from->param_offset,
               to->param_count * sizeof(float));
        copied++;
    }
    if (copied) {
        const int rc = es_model_refresh(dst);
        if (rc != ES_RNN_OK) return rc;
    }
    return copied;
}

/* Folds (x - mean) / std into one direction of the first layer: each input
 * column of W is divided by std, and the bias takes -W' mean, so the layer
 * computes what it did on standardised inputs. */
static void standardise_direction(const es_layer *layer, int model_inputs, float *p,
                                  const float *mean, const float *std) {
    const int in = layer->input_size, taps = layer->type == ES_LAYER_CONV1D ? layer->kernel : 1;
    const size_t rows = (size_t)gate_count(layer->type) * (size_t)layer->units;
    const size_t cols = (size_t)taps * (size_t)in;
    const size_t period = (size_t)model_inputs;
    float *bias = p + rows * cols + (is_recurrent(layer->type) ? rows * (size_t)layer->units : 0);
    for (size_t r = 0; r < rows; r++) {
        float *w = p + r * cols;
        double shift = 0.0;
        for (size_t c = 0; c < cols; c++) {
            w[c] /= std[c % period];
            shift += (double)w[c] * mean[c % period];
        }
        bias[r] -= (float)shift;
    }
}

int es_model_standardise_inputs(es_model *m, const float *mean, const float *std) {
    if (!m || !mean || !std || m->layer_count == 0) return ES_RNN_ERR_ARG;
    for (int i = 0; i < m->input_size; i++)
        if (!(std[i] > 0.0f) || !isfinite(std[i]) || !isfinite(mean[i])) return ES_RNN_ERR_ARG;
    /* Behind a STACK the first weighted layer sees every input K times over;
     * standardise_direction reads mean and std modulo the input size. */
    const int stacked = es_model_has_stack(m);
    if (stacked && m->layer_count < 2) return ES_RNN_ERR_ARG;
    const es_layer *first = &m->layers[stacked ? 1 : 0];
    float *p = m->params + first->param_offset;
    standardise_direction(first, m->input_size, p, mean, std);
    if (is_bidirectional(first->type))
        standardise_direction(first, m->input_size, p + first->param_count / 2, mean, std);
    return es_model_refresh(m);
}

/* ---- packing ------------------------------------------------------------------ */

static void layout_layer(const es_layer *layer, es_packed_layer *pl) {
    pl->gates = gate_count(layer->type);
    pl->gate_rows = es_round_up_panel(layer->units);
    pl->rows_padded = pl->gates * pl->gate_rows;
    pl->cols = (int)matrix_cols(layer->type, layer->input_size, layer->units, layer->kernel);
    pl->directions = is_bidirectional(layer->type) ? 2 : 1;
    pl->int8 = layer->quantised;
    if (pl->int8) {
        int hidden = is_recurrent(layer->type) ? layer->units : 0;
        pl->int8_input_groups = es_int8_groups(pl->cols - hidden);
        pl->int8_hidden_groups = es_int8_groups(hidden);
        pl->int8_panel_bytes =
            (size_t)(pl->int8_input_groups + pl->int8_hidden_groups) * ES_INT8_GROUP_BYTES;
    }
}

/* Floats of packed storage for one direction: panels, bias, the GRU's n-gate
 * hidden bias; each a multiple of 16 floats, so each stays 64-byte aligned. */
static size_t direction_floats(const es_packed_layer *pl) {
    /* int8: the row scales in place of the float panels */
    size_t panels = pl->int8 ? (size_t)pl->rows_padded : (size_t)pl->rows_padded * pl->cols;
    return panels + (size_t)pl->rows_padded + (size_t)pl->gate_rows;
}

/* Where column c of row `lane` sits in an int8 panel: the input half's
 * columns, then U's from a group of their own, four to a group
 * (kernels_int8.h). */
static size_t int8_slot(const es_packed_layer *pl, int input_cols, int c, int lane) {
    int hidden = c >= input_cols;
    int column = hidden ? c - input_cols : c;
    int group = (hidden ? pl->int8_input_groups : 0) + column / ES_INT8_GROUP;
    return (size_t)group * ES_INT8_GROUP_BYTES + (size_t)lane * ES_INT8_GROUP +
           (size_t)(column % ES_INT8_GROUP);
}

static void pack_direction(const es_layer *layer, const es_packed_layer *pl, const float *p,
                           const float *row_scales, es_packed_direction *d) {
    int u = layer->units, in = layer->input_size, cols = pl->cols;
    int recurrent = is_recurrent(layer->type);
    size_t rows = (size_t)pl->gates * (size_t)u;
    const float *w = p;                                         /* [rows][in or K*in] */
    const float *uw = recurrent ? p + rows * (size_t)in : NULL; /* [rows][u] */
    const float *b = recurrent ? uw + rows * (size_t)u : p + rows * (size_t)cols;
    int gru = layer->type == ES_LAYER_GRU || layer->type == ES_LAYER_BIDIR_GRU;

    for (int padded_row = 0; padded_row < pl->rows_padded; padded_row++) {
        int gate = padded_row / pl->gate_rows, unit = padded_row % pl->gate_rows;
        size_t panel_index = (size_t)(padded_row / ES_PANEL_ROWS);
        int lane = padded_row % ES_PANEL_ROWS;
        if (unit >= u) continue; /* padding rows stay zero */
        size_t row = (size_t)gate * u + unit;
        if (pl->int8) d->row_scales[padded_row] = row_scales[row];
        for (int c = 0; c < cols; c++) {
            float value = recurrent && c >= in ? uw[row * u + (c - in)]
                                               : w[row * (recurrent ? in : cols) + c];
            if (pl->int8)
                d->int8_panels[panel_index * pl->int8_panel_bytes +
                               int8_slot(pl, recurrent ? in : cols, c, lane)] =
                    es_int8_weight(value, row_scales[row]);
            else
                d->panels[panel_index * (size_t)cols * ES_PANEL_ROWS + (size_t)c * ES_PANEL_ROWS +
                          lane] = value;
        }
        float bias = b[row];
        if (gru && gate < 2) bias += b[rows + row]; /* z, r: b + c can be summed up front */
        d->bias[padded_row] = bias;
        if (gru && gate == 2) d->bias_n_hidden[unit] = b[rows + row];
    }
}

/* State scratch: 64-byte aligned regions, so kernels see aligned vectors. */
static size_t take_state(size_t *cursor, size_t floats) {
    size_t at = *cursor;
    *cursor += (floats + 15) / 16 * 16;
    return at;
}

/* Lays out every layer and the scratch of a stream state; returns the
 * floats and int8 bytes of packed storage the layers need. */
static void layout_model(const es_model *m, es_packed_model *packed, size_t *storage_floats,
                         size_t *storage_int8) {
    size_t state_cursor = 0;
    int widest_rows = 0, widest_gate = 0, widest_output = 0, widest_int8_groups = 0;
    *storage_floats = *storage_int8 = 0;
    for (int l = 0; l < m->layer_count; l++) {
        const es_layer *layer = &m->layers[l];
        es_packed_layer *pl = &packed->layers[l];
        if (layer->type == ES_LAYER_STACK) {
            /* no weights: the frames of the group being gathered, and the
             * outputs the model holds until the group is whole */
            pl->state_history = take_state(&state_cursor, (size_t)layer->output_size);
            packed->state_held = take_state(&state_cursor, (size_t)m->output_size);
            continue;
        }
        layout_layer(layer, pl);
        *storage_floats += (size_t)pl->directions * direction_floats(pl);
        if (pl->int8) {
            *storage_int8 += (size_t)pl->directions * (size_t)(pl->rows_padded / ES_PANEL_ROWS) *
                             pl->int8_panel_bytes;
            int groups = pl->int8_input_groups > pl->int8_hidden_groups ? pl->int8_input_groups
                                                                        : pl->int8_hidden_groups;
            widest_int8_groups = groups > widest_int8_groups ? groups : widest_int8_groups;
        }
        if (is_recurrent(layer->type))
            pl->state_history = take_state(&state_cursor, (size_t)layer->units);
        if (pl->gates == 4) pl->state_cell = take_state(&state_cursor, (size_t)pl->gate_rows);
        if (layer->type == ES_LAYER_CONV1D)
            pl->state_history = take_state(
                &state_cursor, (size_t)(layer->kernel - 1 + ES_BLOCK_FRAMES) * layer->input_size);
        widest_rows = pl->rows_padded > widest_rows ? pl->rows_padded : widest_rows;
        widest_gate = pl->gate_rows > widest_gate ? pl->gate_rows : widest_gate;
        widest_output = layer->output_size > widest_output ? layer->output_size : widest_output;
    }
    packed->state_block_gates =
        take_state(&state_cursor, (size_t)ES_BLOCK_FRAMES * (size_t)widest_rows);
    packed->state_n_hidden = take_state(&state_cursor, (size_t)widest_gate);
    for (int i = 0; i < 2; i++)
        packed->state_block_out[i] =
            take_state(&state_cursor, (size_t)ES_BLOCK_FRAMES * (size_t)widest_output);
    /* int8 layers: a block of quantised vectors (4 bytes to a float), and
     * their int32 sums (one float each) */
    packed->state_int8_vectors =
        take_state(&state_cursor, (size_t)ES_BLOCK_FRAMES * (size_t)widest_int8_groups);
    packed->state_int8_sums = take_state(
        &state_cursor, widest_int8_groups ? (size_t)ES_BLOCK_FRAMES * (size_t)widest_rows : 0);
    packed->state_floats = state_cursor;
}

int es_model_refresh(es_model *m) {
    if (!m) return ES_RNN_ERR_ARG;
    es_packed_model *packed = calloc(1, sizeof *packed);
    if (!packed) return ES_RNN_ERR_NOMEM;
    const es_packed_model *previous = m->packed;
    packed->kernels = previous ? previous->kernels : es_kernels_for(ES_ISA_AUTO);
    packed->int8_kernels = previous ? previous->int8_kernels : es_int8_kernels_for(ES_ISA_AUTO);

    size_t storage_floats, storage_int8;
    layout_model(m, packed, &storage_floats, &storage_int8);
    packed->storage = es_alloc_floats(storage_floats);
    packed->storage_int8 = storage_int8 ? (int8_t *)es_alloc_floats((storage_int8 + 3) / 4) : NULL;
    if (!packed->storage || (storage_int8 && !packed->storage_int8)) {
        free(packed->storage);
        free(packed);
        return ES_RNN_ERR_NOMEM;
    }

    size_t cursor = 0, cursor_int8 = 0;
    for (int l = 0; l < m->layer_count; l++) {
        const es_layer *layer = &m->layers[l];
        es_packed_layer *pl = &packed->layers[l];
        if (pl->directions == 0) continue; /* STACK */
        size_t direction_params = layer->param_count / (size_t)pl->directions;
        size_t panels = (size_t)(pl->rows_padded / ES_PANEL_ROWS);
        for (int dir = 0; dir < pl->directions; dir++) {
            es_packed_direction *d = &pl->dir[dir];
            if (pl->int8) {
                /* panel bytes are a multiple of 64: every panel stays aligned */
                d->int8_panels = packed->storage_int8 + cursor_int8;
                cursor_int8 += panels * pl->int8_panel_bytes;
                d->row_scales = packed->storage + take_state(&cursor, (size_t)pl->rows_padded);
            } else {
                d->panels =
                    packed->storage + take_state(&cursor, (size_t)pl->rows_padded * pl->cols);
            }
            d->bias = packed->storage + take_state(&cursor, (size_t)pl->rows_padded);
            d->bias_n_hidden = packed->storage + take_state(&cursor, (size_t)pl->gate_rows);
            const float *scales =
                pl->int8 ? layer->row_scales + (size_t)dir * pl->gates * layer->units : NULL;
            pack_direction(layer, pl,
                           m->params + layer->param_offset + (size_t)dir * direction_params, scales,
                           d);
        }
    }
    free_packed(m);
    m->packed = packed;
    return ES_RNN_OK;
}

int es_model_use_isa(es_model *m, es_isa isa) {
    const es_kernels *kernels = es_kernels_for(isa);
    const es_int8_kernels *int8_kernels = es_int8_kernels_for(isa);
    if (!m || !m->packed || !kernels || (es_model_is_quantised(m) && !int8_kernels))
        return ES_RNN_ERR_ARG;
    es_packed_model *packed = m->packed;
    packed->kernels = kernels;
    if (int8_kernels) packed->int8_kernels = int8_kernels;
    return ES_RNN_OK;
}

/* ---- accessors ------------------------------------------------------------------ */

int es_model_input_size(const es_model *m) {
    return m ? m->input_size : 0;
}

int es_model_output_size(const es_model *m) {
    return m ? m->output_size : 0;
}

int es_model_layer_count(const es_model *m) {
    return m ? m->layer_count : 0;
}

es_layer_type es_model_layer_type(const es_model *m, int layer) {
    return m && layer >= 0 && layer < m->layer_count ? m->layers[layer].type : (es_layer_type)0;
}

int es_model_layer_units(const es_model *m, int layer) {
    return m && layer >= 0 && layer < m->layer_count ? m->layers[layer].units : 0;
}

const char *es_model_label(const es_model *m, int output) {
    if (!m || output < 0 || output >= m->output_size || m->layer_count == 0) return NULL;
    return output < m->label_count ? m->labels[output] : "";
}

const es_feature_spec *es_model_features(const es_model *m) {
    return m ? &m->features : NULL;
}

size_t es_model_param_count(const es_model *m) {
    return m ? m->param_count : 0;
}

float *es_model_params(es_model *m) {
    return m ? m->params : NULL;
}

int es_model_frame_stride(const es_model *m) {
    return m && es_model_has_stack(m) ? m->layers[0].kernel : 1;
}

int es_model_is_streaming(const es_model *m) {
    if (!m) return 0;
    for (int l = 0; l < m->layer_count; l++)
        if (is_bidirectional(m->layers[l].type)) return 0;
    return 1;
}

size_t es_model_flops_per_frame(const es_model *m) {
    if (!m) return 0;
    size_t flops = 0;
    for (int l = 0; l < m->layer_count; l++) {
        const es_layer *layer = &m->layers[l];
        size_t rows = (size_t)gate_count(layer->type) * (size_t)layer->units;
        size_t cols = matrix_cols(layer->type, layer->input_size, layer->units, layer->kernel);
        if (layer->type != ES_LAYER_STACK)
            flops += 2 * rows * cols * (is_bidirectional(layer->type) ? 2 : 1);
    }
    size_t stride = (size_t)es_model_frame_stride(m);
    return (flops + stride - 1) / stride;
}

const char *es_model_kernel_name(const es_model *m) {
    if (!m || !m->packed) return "none";
    const es_packed_model *packed = m->packed;
    return es_model_is_quantised(m) ? packed->int8_kernels->name : packed->kernels->name;
}

int es_model_is_quantised(const es_model *m) {
    for (int l = 0; m && l < m->layer_count; l++)
        if (m->layers[l].quantised) return 1;
    return 0;
}
