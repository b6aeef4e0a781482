/*
 * The model's inside, shared by the inference code (layers.c, model.c,
 * model_file.c) and the trainer (train*.c). Not part of the public API.
 */
#ifndef ES_RNN_MODEL_INTERNAL_H
#define ES_RNN_MODEL_INTERNAL_H

#include "rnn.h"

typedef struct es_layer {
    es_layer_type type;
    es_activation activation; /* DENSE and CONV1D */
    int input_size;
    int units;           /* per direction for BIDIR */
    int output_size;     /* units, or 2*units for BIDIR */
    int kernel;          /* CONV1D */
    size_t param_offset; /* into es_model.params */
    size_t param_count;
    /* int8 weights (es_model_quantise, format version 4): params then hold
     * the values they stand for, q * row_scales[row], and the packing
     * recovers q exactly. One scale per matrix row ([W U] for recurrent
     * layers), directions x rows of them; biases stay float. */
    int quantised;
    float *row_scales;
} es_layer;

/* The matrices of one direction of a layer: rows (gates x units) of cols
 * columns ([W U] side by side for recurrent layers, K x in for CONV1D),
 * stored as W then U in the parameters, followed by `biases` floats. */
typedef struct es_layer_shape {
    int directions;
    size_t rows, cols, input_cols; /* input_cols: W's columns (all but U's) */
    size_t matrix_params, biases;  /* per direction */
} es_layer_shape;

void es_layer_shape_of(es_layer_type type, int input_size, int units, int kernel,
                       es_layer_shape *shape);
/* The row of the matrix parameter at `index` of one direction (W then U). */
static inline size_t es_layer_shape_row(const es_layer_shape *shape, size_t index) {
    size_t w_params = shape->rows * shape->input_cols;
    return index < w_params ? index / shape->input_cols
                            : (index - w_params) / (shape->cols - shape->input_cols);
}

/* Parameter counts, for layout and validation. */
size_t es_layer_param_count(es_layer_type type, int input_size, int units, int kernel);

struct es_model {
    es_feature_spec features;
    int input_size;
    int output_size;
    int layer_count;
    es_layer layers[ES_MAX_LAYERS];
    int label_count;
    char labels[ES_MAX_OUTPUTS][ES_MAX_LABEL];
    int has_thresholds; /* detection thresholds travel with the model (format version 2) */
    float thresholds[ES_MAX_OUTPUTS];
    int has_smoothing; /* and the smoothing they were calibrated with (format version 3) */
    int smooth_ms[ES_MAX_OUTPUTS];
    float *params; /* every layer's parameters, contiguous, 64-byte aligned */
    size_t param_count;
    size_t param_capacity;
    void *packed; /* inference-only re-layout of params (e.g. for SIMD); owned by model.c */
};

/* Recompute derived inference data after params changed (trainer, loader). */
int es_model_refresh(es_model *m);

/* Upper bounds of model building and loading: a model beyond them is a typo
 * or an attack, not a network this daemon could run in real time. */
#define ES_MAX_UNITS 4096
#define ES_MAX_KERNEL 64

/* es_model_add_layer without the repacking: the loader appends every layer,
 * fills the weights, then calls es_model_refresh once. */
/* Labels end up in JSON events and CSV headers: printable ASCII without
 * '"', '\\' or ','. */
int es_label_is_valid(const char *label);
/* The first output whose label an earlier output already has, or -1: two
 * outputs of one name could not be told apart in events, thresholds or CSV.
 * Unlabelled outputs ("", a model still being built) may be many. */
int es_label_repeated(const char *const *labels, int count);
/* A stored detection threshold: finite, in [0, 1]. */
int es_threshold_is_valid(float threshold);

/* The first layer is a STACK: the rest steps once per its kernel of frames. */
static inline int es_model_has_stack(const es_model *m) {
    return m->layer_count > 0 && m->layers[0].type == ES_LAYER_STACK;
}

int es_model_append_layer(es_model *m, es_layer_type type, int units, es_activation act,
                          int kernel);

#endif
