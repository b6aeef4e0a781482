/*
 * The matrix products of int8 layers (kernels_int8.h): vectors quantised,
 * multiplied by the int8 kernels, the int32 sums turned back into floats.
 * layers.c calls these in place of the float products of such a layer;
 * everything around them (gates, activations, the state) stays float.
 */
#include "layers_int8.h"

/* y[r] = base[r] + sums[r] * row_scales[r] * vector_scale (base may be NULL). */
static void rescale(const int32_t *sums, const float *row_scales, float vector_scale,
                    const float *base, int rows, float *y) {
    for (int r = 0; r < rows; r++) {
        float product = (float)sums[r] * (row_scales[r] * vector_scale);
        y[r] = base ? base[r] + product : product;
    }
}

void es_int8_input_products(const es_packed_model *packed, const es_packed_layer *pl,
                            const es_packed_direction *d, float *scratch, const float *v,
                            size_t v_stride, int length, int count, float *y, size_t y_stride) {
    int8_t *quantised = (int8_t *)(scratch + packed->state_int8_vectors);
    int32_t *sums = (int32_t *)(scratch + packed->state_int8_sums);
    size_t q_stride = (size_t)pl->int8_input_groups * ES_INT8_GROUP;
    float scales[ES_BLOCK_FRAMES];
    for (int t = 0; t < count; t++)
        scales[t] = packed->int8_kernels->quantise(v + (size_t)t * v_stride, length,
                                                   quantised + (size_t)t * q_stride);
    packed->int8_kernels->matmat(d->int8_panels, pl->int8_panel_bytes,
                                 pl->rows_padded / ES_PANEL_ROWS, pl->int8_input_groups, quantised,
                                 q_stride, count, sums, (size_t)pl->rows_padded);
    for (int t = 0; t < count; t++)
        rescale(sums + (size_t)t * pl->rows_padded, d->row_scales, scales[t], d->bias,
                pl->rows_padded, y + (size_t)t * y_stride);
}

float es_int8_quantise_hidden(const es_packed_model *packed, float *scratch, const float *h,
                              int units) {
    return packed->int8_kernels->quantise(h, units,
                                          (int8_t *)(scratch + packed->state_int8_vectors));
}

void es_int8_hidden_products(const es_packed_model *packed, const es_packed_layer *pl,
                             const es_packed_direction *d, float *scratch, float h_scale,
                             int first_row, int rows, const float *base, float *y) {
    const int8_t *quantised = (const int8_t *)(scratch + packed->state_int8_vectors);
    int32_t *sums = (int32_t *)(scratch + packed->state_int8_sums);
    const int8_t *panels = d->int8_panels +
                           (size_t)(first_row / ES_PANEL_ROWS) * pl->int8_panel_bytes +
                           (size_t)pl->int8_input_groups * ES_INT8_GROUP_BYTES;
    packed->int8_kernels->matmat(panels, pl->int8_panel_bytes, rows / ES_PANEL_ROWS,
                                 pl->int8_hidden_groups, quantised, 0, 1, sums, 0);
    rescale(sums, d->row_scales + first_row, h_scale, base, rows, y);
}
