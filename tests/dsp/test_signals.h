/* Synthetic test signals for the dsp tests: analytic, so the same signal can
 * be rendered at any sample rate, and seeded, so every run is identical. */
#ifndef ES_TEST_SIGNALS_H
#define ES_TEST_SIGNALS_H

#include <stddef.h>
#include <stdint.h>

#include "dsp.h"

/* xorshift32; never returns 0 for a non-zero seed. */
uint32_t test_random_next(uint32_t *state);
/* Uniform in [-1, 1). */
float test_random_symmetric(uint32_t *state);

/* A voiced, speech-like sound: a harmonic series on a gliding 100-160 Hz
 * pitch, shaped by three moving formants and a 4 Hz syllable envelope, over
 * a quiet bed of inharmonic partials. Content above `max_hz` is faded out
 * (a cosine taper over the last 300 Hz) so that versions rendered at
 * different rates can be band-limited alike. The first 50 ms fade in. Peak
 * amplitude stays below 0.5. */
void test_render_speech_like(float *out, size_t count, double sample_rate_hz, double max_hz);

/* Mixed tones plus white noise at 16 kHz from a fixed seed. */
void test_render_tones_and_noise(float *out, size_t count, uint32_t seed);

/* Frames collected from a front end's sink, in order; free(list.frames) after. */
typedef struct frame_list {
    es_frame *frames;
    size_t count;
    size_t capacity;
} frame_list;

/* An es_frame_sink appending to the frame_list `user`; aborts when out of memory. */
void collect_frame(const es_frame *frame, void *user);

#endif
