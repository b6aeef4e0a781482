/*
 * The matrix products of int8 layers (kernels_int8.h): vectors quantised,
 * multiplied by the int8 kernels, the int32 sums turned back into floats.
 * layers.c calls these in place of the float products of such a layer;
 * everything around them (gates, activations, the state) stays float.
 * batch.c builds its products for many streams from the same pieces
 * (es_int8_sums and the kernel set's quantise and rescale), which keeps
 * both paths bit-identical.
 */
#include "layers_int8.h"

void es_int8_sums(const es_packed_model *packed, const es_packed_layer *pl,
                  const es_packed_direction *d, int hidden, int first_row, int rows,
                  const int8_t *quantised, int count, int32_t *sums) {
    const int8_t *panels = d->int8_panels +
                           (size_t)(first_row / ES_PANEL_ROWS) * pl->int8_panel_bytes +
                           (hidden ? (size_t)pl->int8_input_groups * ES_INT8_GROUP_BYTES : 0);
    packed->int8_kernels->matmat(panels, pl->int8_panel_bytes, rows / ES_PANEL_ROWS,
                                 es_int8_operand_groups(pl, hidden), quantised,
                                 es_int8_operand_bytes(pl, hidden), count, sums, (size_t)rows);
}

void es_int8_input_products(const es_packed_model *packed, const es_packed_layer *pl,
                            const es_packed_direction *d, float *scratch, const float *v,
                            size_t v_stride, int length, int count, float *y, size_t y_stride) {
    int8_t *quantised = es_int8_scratch_vectors(packed, scratch);
    int32_t *sums = es_int8_scratch_sums(packed, scratch);
    size_t q_stride = es_int8_operand_bytes(pl, 0);
    float scales[ES_BLOCK_FRAMES];
    for (int t = 0; t < count; t++)
        scales[t] = packed->int8_kernels->quantise(v + (size_t)t * v_stride, length,
                                                   quantised + (size_t)t * q_stride);
    es_int8_sums(packed, pl, d, 0, 0, pl->rows_padded, quantised, count, sums);
    for (int t = 0; t < count; t++)
        packed->int8_kernels->rescale(sums + (size_t)t * pl->rows_padded, d->row_scales, scales[t],
                                      d->bias, pl->rows_padded, y + (size_t)t * y_stride);
}

float es_int8_quantise_hidden(const es_packed_model *packed, float *scratch, const float *h,
                              int units) {
    return packed->int8_kernels->quantise(h, units, es_int8_scratch_vectors(packed, scratch));
}

void es_int8_hidden_products(const es_packed_model *packed, const es_packed_layer *pl,
                             const es_packed_direction *d, float *scratch, float h_scale,
                             int first_row, int rows, const float *base, float *y) {
    int32_t *sums = es_int8_scratch_sums(packed, scratch);
    es_int8_sums(packed, pl, d, 1, first_row, rows, es_int8_scratch_vectors(packed, scratch), 1,
                 sums);
    packed->int8_kernels->rescale(sums, d->row_scales + first_row, h_scale, base, rows, y);
}
