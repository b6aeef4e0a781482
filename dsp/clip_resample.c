/*
 * One-shot resampling of a whole clip (dsp.h, "whole clips"): libsoxr's
 * soxr_oneshot with one of two quality recipes.
 *
 * Why not the streaming es_resampler: it is built for audio callbacks (primed
 * with silence, fed in fixed 10 ms blocks, whole-hertz rates, soxr's HQ
 * filter), while a training clip is all in memory, wants a fractional rate
 * for speed changes, and is made thousands of times per epoch, where soxr's
 * cheaper recipes are fast enough and what the shipped models were trained
 * with.
 */
#include "dsp.h"

#include <math.h>
#include <soxr.h>
#include <stdlib.h>

int es_resample_clip(const float *samples, size_t count, double input_rate_hz,
                     double output_rate_hz, es_clip_resample_quality quality, float **out,
                     size_t *out_count, es_error *err) {
    /* Written so that NaN and infinity fail too. */
    if (!(input_rate_hz > 0.0 && input_rate_hz < INFINITY) ||
        !(output_rate_hz > 0.0 && output_rate_hz < INFINITY))
        return es_error_set(err, ES_DSP_ERR_CONFIG, "cannot resample from %g Hz to %g Hz",
                            input_rate_hz, output_rate_hz);
    unsigned long recipe;
    switch (quality) {
    case ES_CLIP_RESAMPLE_QUICK:
        recipe = SOXR_QQ;
        break;
    case ES_CLIP_RESAMPLE_LOW:
        recipe = SOXR_LQ;
        break;
    default:
        return es_error_set(err, ES_DSP_ERR_CONFIG, "unknown resampling quality %d", (int)quality);
    }
    /* soxr writes about count x the ratio; the margin keeps it from ever
     * being cut short. */
    const size_t capacity = (size_t)ceil((double)count * output_rate_hz / input_rate_hz) + 16;
    float *resampled = malloc(sizeof(float) * capacity);
    if (!resampled) return es_error_set(err, ES_DSP_ERR_NOMEM, "out of memory");
    size_t produced = 0;
    const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    const soxr_quality_spec_t quality_spec = soxr_quality_spec(recipe, 0);
    /* One thread: callers run several clips side by side already. */
    const soxr_runtime_spec_t runtime = soxr_runtime_spec(1);
    const soxr_error_t error =
        soxr_oneshot(input_rate_hz, output_rate_hz, 1, samples, count, NULL, resampled, capacity,
                     &produced, &io, &quality_spec, &runtime);
    if (error) {
        free(resampled);
        return es_error_set(err, ES_DSP_ERR_RESAMPLER, "cannot resample from %g Hz to %g Hz: %s",
                            input_rate_hz, output_rate_hz, error);
    }
    *out = resampled;
    *out_count = produced;
    return ES_DSP_OK;
}
