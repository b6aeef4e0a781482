/*
 * Kernels of the batched step (batch.c): the products of one layer for many
 * streams at once, each stream's vectors wherever its state keeps them. A
 * block of streams reads each packed panel (kernels.h) once from memory and
 * reuses it from registers and L1 for every stream of the block, where
 * stepping the streams one by one would stream every weight once per stream.
 *
 * Each kernel is bit-identical, stream by stream, to the single-stream
 * kernel it stands for in the same es_kernels set: the same sums in the same
 * order, whatever the number of streams or a stream's place among them.
 * That is what makes a batched step equal to stepping each stream alone.
 * Internal to rnn/.
 */
#ifndef ES_RNN_BATCH_KERNELS_H
#define ES_RNN_BATCH_KERNELS_H

#include "kernels.h"

/* Streams whose products one kernel call computes together; the stepping
 * code cuts larger batches into blocks of this size. Weights are then read
 * from memory once per ES_BATCH_STREAMS streams. */
#define ES_BATCH_STREAMS 64

/* For each stream t < count, what the single-stream kernel would compute
 * with v = v[t], bias = bias[t] (never NULL) and y = y[t]. y[t] may be
 * bias[t]: each panel's bias is read before its result is written. */
typedef void (*es_batch_product)(const float *panels, size_t panel_stride, int panel_count,
                                 int col_begin, int col_end, const float *const *v,
                                 const float *const *bias, float *const *y, int count);

typedef struct es_batch_kernels {
    es_batch_product matmat; /* stands for es_kernels.matmat with count 1 */
    es_batch_product matvec; /* stands for es_kernels.matvec */
} es_batch_kernels;

/* The batched kernels that match `k` (the same sums in the same order), or
 * NULL when there are none (NEON): the caller steps streams one by one. */
const es_batch_kernels *es_batch_kernels_for(const es_kernels *k);

extern const es_batch_kernels es_batch_kernels_generic;
#ifdef ES_HAVE_X86_KERNELS
extern const es_batch_kernels es_batch_kernels_avx2;
extern const es_batch_kernels es_batch_kernels_avx512;
#endif

#endif
