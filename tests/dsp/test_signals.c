#include "test_signals.h"

#include <math.h>
#include <stdlib.h>

uint32_t test_random_next(uint32_t *state) {
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

float test_random_symmetric(uint32_t *state) {
    return (float)((double)test_random_next(state) / 2147483648.0 - 1.0);
}

static double band_limit_taper(double hz, double max_hz) {
    const double taper_hz = 300.0;
    if (hz >= max_hz) return 0.0;
    if (hz <= max_hz - taper_hz) return 1.0;
    const double c = cos(0.5 * M_PI * (hz - (max_hz - taper_hz)) / taper_hz);
    return c * c;
}

/* A resonance peak; rational rather than Gaussian to keep rendering cheap in
 * unoptimised sanitizer builds. */
static double formant_gain(double hz, double centre_hz, double width_hz) {
    const double d = (hz - centre_hz) / width_hz;
    return 1.0 / (1.0 + d * d);
}

#define INHARMONIC_PARTIALS 40

void test_render_speech_like(float *out, size_t count, double sample_rate_hz, double max_hz) {
    /* Partials of the noise bed: fixed frequencies and phases, whatever the rate. */
    double partial_hz[INHARMONIC_PARTIALS], partial_phase[INHARMONIC_PARTIALS];
    uint32_t seed = 12345;
    for (int i = 0; i < INHARMONIC_PARTIALS; i++) {
        partial_hz[i] = 60.0 + (7000.0 - 60.0) * (0.5 + 0.5 * test_random_symmetric(&seed));
        partial_phase[i] = M_PI * test_random_symmetric(&seed);
    }
    const double glide_hz = 0.7, pitch_mean_hz = 130.0, pitch_depth_hz = 30.0;
    for (size_t n = 0; n < count; n++) {
        const double t = (double)n / sample_rate_hz;
        /* Phase of f0(t) = mean + depth sin(2 pi glide t), integrated exactly. */
        const double pitch_hz = pitch_mean_hz + pitch_depth_hz * sin(2.0 * M_PI * glide_hz * t);
        const double phase = 2.0 * M_PI * pitch_mean_hz * t +
                             pitch_depth_hz / glide_hz * (1.0 - cos(2.0 * M_PI * glide_hz * t));
        const double f1 = 600.0 + 200.0 * sin(2.0 * M_PI * 1.3 * t);
        const double f2 = 1500.0 + 400.0 * sin(2.0 * M_PI * 0.9 * t + 1.0);
        const double f3 = 2600.0 + 300.0 * sin(2.0 * M_PI * 0.5 * t + 2.0);
        double voiced = 0.0;
        /* sin(h * phase) by the Chebyshev recurrence: one multiply-add each. */
        const double twice_cos = 2.0 * cos(phase);
        double sin_previous = 0.0, sin_current = sin(phase);
        for (int h = 1; pitch_hz * h < max_hz; h++) {
            const double hz = pitch_hz * h;
            const double gain = formant_gain(hz, f1, 150.0) + 0.6 * formant_gain(hz, f2, 200.0) +
                                0.4 * formant_gain(hz, f3, 250.0) + 0.02;
            voiced += gain * band_limit_taper(hz, max_hz) * sin_current / sqrt((double)h);
            const double sin_next = twice_cos * sin_current - sin_previous;
            sin_previous = sin_current;
            sin_current = sin_next;
        }
        double bed = 0.0;
        for (int i = 0; i < INHARMONIC_PARTIALS; i++) {
            bed += band_limit_taper(partial_hz[i], max_hz) *
                   sin(2.0 * M_PI * partial_hz[i] * t + partial_phase[i]);
        }
        const double syllables = 0.55 + 0.45 * sin(2.0 * M_PI * 4.0 * t);
        const double fade_in = t < 0.05 ? 0.5 - 0.5 * cos(M_PI * t / 0.05) : 1.0;
        out[n] = (float)(fade_in * (0.08 * syllables * voiced + 0.002 * bed));
    }
}

void test_render_tones_and_noise(float *out, size_t count, uint32_t seed) {
    for (size_t n = 0; n < count; n++) {
        const double t = (double)n / 16000.0;
        const double tones = 0.3 * sin(2.0 * M_PI * 440.0 * t) +
                             0.2 * sin(2.0 * M_PI * 1234.5 * t + 0.3) +
                             0.1 * sin(2.0 * M_PI * 5555.0 * t + 1.1);
        out[n] = (float)tones + 0.05f * test_random_symmetric(&seed);
    }
}

void collect_frame(const es_frame *frame, void *user) {
    frame_list *list = user;
    if (list->count == list->capacity) {
        list->capacity = list->capacity ? 2 * list->capacity : 256;
        list->frames = realloc(list->frames, list->capacity * sizeof(es_frame));
        if (!list->frames) abort();
    }
    list->frames[list->count++] = *frame;
}
