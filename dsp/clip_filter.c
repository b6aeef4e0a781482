/*
 * Whole-clip filters by FFT (dsp.h, "whole clips"): linear convolution with
 * an impulse response and a zero-phase band-pass. Both multiply the
 * spectrum of the zero-padded clip by a response and transform back.
 *
 * Plans are made with FFTW_ESTIMATE (no measuring: a clip's length changes
 * from call to call, so a plan is used once) under dsp's planner lock, and
 * buffers come from fftwf_alloc_* for SIMD alignment.
 */
#include "dsp.h"

#include <fftw3.h>
#include <math.h>
#include <string.h>

static size_t next_power_of_two(size_t n) {
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

static int fft_out_of_memory(es_error *err, size_t fft_size) {
    return es_error_set(err, ES_DSP_ERR_NOMEM, "out of memory for a %zu-point FFT", fft_size);
}

/* Multiplies the spectrum of `samples` zero-padded to fft_size points by
 * response[fft_size / 2 + 1] (complex bins) and writes back the first `count`
 * samples of the inverse, scaled by 1 / fft_size. */
static int filter_spectrum(float *samples, size_t count, size_t fft_size,
                           const fftwf_complex *response, es_error *err) {
    const size_t bins = fft_size / 2 + 1;
    float *time = fftwf_alloc_real(fft_size);
    fftwf_complex *freq = fftwf_alloc_complex(bins);
    fftwf_plan forward = NULL, inverse = NULL;
    int rc = ES_DSP_ERR_NOMEM;
    if (!time || !freq) {
        rc = fft_out_of_memory(err, fft_size);
        goto done;
    }
    es_dsp_fftw_planner_lock();
    forward = fftwf_plan_dft_r2c_1d((int)fft_size, time, freq, FFTW_ESTIMATE);
    inverse = fftwf_plan_dft_c2r_1d((int)fft_size, freq, time, FFTW_ESTIMATE);
    es_dsp_fftw_planner_unlock();
    if (!forward || !inverse) {
        rc = fft_out_of_memory(err, fft_size);
        goto done;
    }
    memset(time, 0, sizeof(float) * fft_size);
    memcpy(time, samples, sizeof(float) * count);
    fftwf_execute(forward);
    for (size_t k = 0; k < bins; k++) {
        const float re = freq[k][0] * response[k][0] - freq[k][1] * response[k][1];
        const float im = freq[k][0] * response[k][1] + freq[k][1] * response[k][0];
        freq[k][0] = re;
        freq[k][1] = im;
    }
    fftwf_execute(inverse);
    for (size_t i = 0; i < count; i++)
        samples[i] = time[i] / (float)fft_size;
    rc = ES_DSP_OK;
done:
    es_dsp_fftw_planner_lock();
    if (forward) fftwf_destroy_plan(forward);
    if (inverse) fftwf_destroy_plan(inverse);
    es_dsp_fftw_planner_unlock();
    fftwf_free(time);
    fftwf_free(freq);
    return rc;
}

int es_convolve(float *samples, size_t count, const float *impulse, size_t impulse_count,
                es_error *err) {
    if (impulse_count == 0)
        return es_error_set(err, ES_DSP_ERR_CONFIG, "convolution with an empty impulse response");
    if (count == 0) return ES_DSP_OK;
    /* No wrap-around: the circular convolution of this length is the linear one. */
    const size_t fft_size = next_power_of_two(count + impulse_count);
    const size_t bins = fft_size / 2 + 1;
    float *padded = fftwf_alloc_real(fft_size);
    fftwf_complex *spectrum = fftwf_alloc_complex(bins);
    fftwf_plan plan = NULL;
    int rc = ES_DSP_ERR_NOMEM;
    if (!padded || !spectrum) {
        rc = fft_out_of_memory(err, fft_size);
        goto done;
    }
    es_dsp_fftw_planner_lock();
    plan = fftwf_plan_dft_r2c_1d((int)fft_size, padded, spectrum, FFTW_ESTIMATE);
    es_dsp_fftw_planner_unlock();
    if (!plan) {
        rc = fft_out_of_memory(err, fft_size);
        goto done;
    }
    memset(padded, 0, sizeof(float) * fft_size);
    memcpy(padded, impulse, sizeof(float) * impulse_count);
    fftwf_execute(plan);
    rc = filter_spectrum(samples, count, fft_size, spectrum, err);
done:
    es_dsp_fftw_planner_lock();
    if (plan) fftwf_destroy_plan(plan);
    es_dsp_fftw_planner_unlock();
    fftwf_free(padded);
    fftwf_free(spectrum);
    return rc;
}

int es_band_pass(float *samples, size_t count, double sample_rate_hz, double low_hz, double high_hz,
                 double taper_hz, es_error *err) {
    if (!(sample_rate_hz > 0.0) || !(taper_hz >= 0.0 && taper_hz <= low_hz && low_hz <= high_hz))
        return es_error_set(err, ES_DSP_ERR_CONFIG,
                            "band-pass %g-%g Hz with %g Hz slopes at %g Hz: not 0 <= slope <= "
                            "low <= high",
                            low_hz, high_hz, taper_hz, sample_rate_hz);
    if (count == 0) return ES_DSP_OK;
    /* Twice the length: the brick-wall filter's ringing must not wrap around. */
    const size_t fft_size = next_power_of_two(2 * count);
    const size_t bins = fft_size / 2 + 1;
    fftwf_complex *response = fftwf_alloc_complex(bins);
    if (!response) return fft_out_of_memory(err, fft_size);
    for (size_t k = 0; k < bins; k++) {
        const double f = (double)k * sample_rate_hz / (double)fft_size;
        double gain = 1.0;
        if (f < low_hz - taper_hz || f > high_hz + taper_hz)
            gain = 0.0;
        else if (f < low_hz)
            gain = 0.5 - 0.5 * cos(M_PI * (f - (low_hz - taper_hz)) / taper_hz);
        else if (f > high_hz)
            gain = 0.5 + 0.5 * cos(M_PI * (f - high_hz) / taper_hz);
        response[k][0] = (float)gain;
        response[k][1] = 0.0f;
    }
    const int rc = filter_spectrum(samples, count, fft_size, response, err);
    fftwf_free(response);
    return rc;
}
