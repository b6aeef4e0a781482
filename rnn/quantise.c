/*
 * es_model_quantise: float weight matrices to int8 with per-row scales
 * (kernels_int8.h says how they run, model_file.c how they are saved).
 */
#include <math.h>
#include <stdlib.h>

#include "kernels_int8.h"
#include "model_internal.h"

/* Scales of one direction's rows (max |w| / 127 over each row of [W U]),
 * then every weight replaced by the value its int8 stands for. */
static void quantise_direction(const es_layer_shape *shape, float *params, float *scales) {
    for (size_t r = 0; r < shape->rows; r++)
        scales[r] = 0.0f;
    for (size_t i = 0; i < shape->matrix_params; i++) {
        size_t row = es_layer_shape_row(shape, i);
        float a = fabsf(params[i]);
        scales[row] = a > scales[row] ? a : scales[row];
    }
    for (size_t r = 0; r < shape->rows; r++)
        scales[r] /= ES_INT8_MAX;
    for (size_t i = 0; i < shape->matrix_params; i++) {
        float scale = scales[es_layer_shape_row(shape, i)];
        params[i] = (float)es_int8_weight(params[i], scale) * scale;
    }
}

int es_model_quantise(es_model *m, es_error *err) {
    if (!m || m->layer_count == 0)
        return es_error_set(err, ES_RNN_ERR_ARG, "no model, or a model without layers");
    for (int l = 0; l < m->layer_count; l++) {
        es_layer *layer = &m->layers[l];
        if (layer->type == ES_LAYER_STACK || layer->quantised) continue;
        es_layer_shape shape;
        es_layer_shape_of(layer->type, layer->input_size, layer->units, layer->kernel, &shape);
        float *scales = malloc((size_t)shape.directions * shape.rows * sizeof *scales);
        if (!scales)
            return es_error_set(err, ES_RNN_ERR_NOMEM, "no memory for the scales of layer %d", l);
        size_t per_direction = layer->param_count / (size_t)shape.directions;
        for (int dir = 0; dir < shape.directions; dir++)
            quantise_direction(&shape,
                               m->params + layer->param_offset + (size_t)dir * per_direction,
                               scales + (size_t)dir * shape.rows);
        layer->row_scales = scales;
        layer->quantised = 1;
    }
    int rc = es_model_refresh(m);
    if (rc != ES_RNN_OK)
        return es_error_set(err, rc, "cannot pack the int8 weights: %s", es_rnn_strerror(rc));
    if (err) {
        err->code = ES_RNN_OK;
        err->why[0] = '\0';
    }
    return ES_RNN_OK;
}

int es_model_dequantise(es_model *m) {
    if (!m) return ES_RNN_ERR_ARG;
    for (int l = 0; l < m->layer_count; l++) {
        free(m->layers[l].row_scales);
        m->layers[l].row_scales = NULL;
        m->layers[l].quantised = 0;
    }
    return es_model_refresh(m);
}
