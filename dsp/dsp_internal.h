/*
 * dsp internals that tests look at but callers have no business with.
 * Not part of the public API: include dsp.h in other modules.
 */
#ifndef ES_DSP_INTERNAL_H
#define ES_DSP_INTERNAL_H

#include "dsp.h"

/* Power spectrum |X[k]|^2 of the frame emitted last (fft_size / 2 + 1 bins,
 * unnormalised FFT of the Hann-windowed samples); all zeros before the first. */
const float *es_frontend_last_power_spectrum(const es_frontend *fe);

/* The mel filterbank's centre frequency of `band` in Hz. */
double es_frontend_mel_centre_hz(const es_frontend *fe, int band);

#endif
