/* Augmentation: the SNR, gain and speed asked for are the ones delivered, and
 * a seed fixes every random choice. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "augment.h"

enum { RATE_HZ = 16000, CLIP_SAMPLES = 16000 };

static void fill_sine(float *samples, size_t count, float amplitude, float freq_hz) {
    for (size_t i = 0; i < count; i++)
        samples[i] = amplitude * sinf(2.0f * (float)M_PI * freq_hz * (float)i / RATE_HZ);
}

static void fill_noise(float *samples, size_t count, uint64_t seed) {
    es_rng rng;
    es_rng_seed(&rng, seed);
    for (size_t i = 0; i < count; i++)
        samples[i] = (float)(0.1 * es_rng_gaussian(&rng));
}

static double measured_snr_db(const float *clean, const float *mixed, size_t count) {
    double signal = 0.0, added = 0.0;
    for (size_t i = 0; i < count; i++) {
        signal += (double)clean[i] * clean[i];
        const double d = (double)mixed[i] - clean[i];
        added += d * d;
    }
    return 10.0 * log10(signal / added);
}

static void test_noise_mix_hits_requested_snr(void **state) {
    (void)state;
    static float clean[CLIP_SAMPLES], mixed[CLIP_SAMPLES], noise[5000];
    fill_sine(clean, CLIP_SAMPLES, 0.3f, 440.0f);
    fill_noise(noise, 5000, 7);
    const float snrs_db[] = {-5.0f, 0.0f, 10.0f, 30.0f};
    for (size_t k = 0; k < sizeof(snrs_db) / sizeof(snrs_db[0]); k++) {
        memcpy(mixed, clean, sizeof(clean));
        /* An offset and a noise shorter than the clip: the noise wraps around. */
        es_augment_add_noise(mixed, CLIP_SAMPLES, es_mean_power(clean, CLIP_SAMPLES), noise, 5000,
                             1234, snrs_db[k]);
        assert_float_equal(measured_snr_db(clean, mixed, CLIP_SAMPLES), snrs_db[k], 0.5);
    }
}

static void test_silent_noise_adds_nothing(void **state) {
    (void)state;
    float clean[100], mixed[100], silence[10] = {0};
    fill_sine(clean, 100, 0.3f, 440.0f);
    memcpy(mixed, clean, sizeof(clean));
    es_augment_add_noise(mixed, 100, es_mean_power(clean, 100), silence, 10, 0, 0.0f);
    assert_memory_equal(mixed, clean, sizeof(clean));
}

static void test_gain_scales_power_and_saturates(void **state) {
    (void)state;
    static float samples[CLIP_SAMPLES];
    fill_sine(samples, CLIP_SAMPLES, 0.01f, 300.0f);
    const double before = es_mean_power(samples, CLIP_SAMPLES);
    es_augment_gain(samples, CLIP_SAMPLES, 12.0f);
    assert_float_equal(10.0 * log10(es_mean_power(samples, CLIP_SAMPLES) / before), 12.0, 0.01);
    es_augment_gain(samples, CLIP_SAMPLES, -20.0f);
    assert_float_equal(10.0 * log10(es_mean_power(samples, CLIP_SAMPLES) / before), -8.0, 0.01);

    fill_sine(samples, CLIP_SAMPLES, 0.5f, 300.0f);
    es_augment_gain(samples, CLIP_SAMPLES, 20.0f);
    for (size_t i = 0; i < CLIP_SAMPLES; i++)
        assert_true(fabsf(samples[i]) <= 1.0f);
}

/* Zero crossings per second of a sine: twice its frequency. */
static double crossing_rate_hz(const float *samples, size_t count) {
    size_t crossings = 0;
    for (size_t i = 1; i < count; i++)
        crossings += (samples[i - 1] < 0.0f) != (samples[i] < 0.0f);
    return (double)crossings * RATE_HZ / (double)count / 2.0;
}

static void test_speed_changes_duration_and_pitch(void **state) {
    (void)state;
    static float samples[CLIP_SAMPLES];
    fill_sine(samples, CLIP_SAMPLES, 0.5f, 500.0f);
    float *fast = NULL;
    size_t fast_count = 0;
    assert_int_equal(
        es_augment_speed(samples, CLIP_SAMPLES, 1.15f, RATE_HZ, &fast, &fast_count, NULL),
        ES_AUGMENT_OK);
    assert_true(fabs((double)fast_count - CLIP_SAMPLES / 1.15) < 20.0);
    /* Away from the edges, the tone is 15 % higher. */
    assert_float_equal(crossing_rate_hz(fast + 1000, fast_count - 2000), 575.0, 3.0);
    free(fast);
    es_error err = {0};
    assert_int_equal(
        es_augment_speed(samples, CLIP_SAMPLES, 0.0f, RATE_HZ, &fast, &fast_count, &err),
        ES_AUGMENT_ERR_ARG);
    assert_null(fast);
    assert_int_equal(err.code, ES_AUGMENT_ERR_ARG);
    assert_non_null(strstr(err.why, "speed factor 0"));
}

static void test_reverb_keeps_length_and_power_and_smears(void **state) {
    (void)state;
    static float samples[CLIP_SAMPLES];
    memset(samples, 0, sizeof(samples));
    for (int i = 0; i < 800; i++)
        samples[1000 + i] = 0.5f * sinf(0.3f * (float)i);
    const double before = es_mean_power(samples, CLIP_SAMPLES);
    es_rng rng;
    es_rng_seed(&rng, 3);
    assert_int_equal(es_augment_reverb(samples, CLIP_SAMPLES, 0.5f, RATE_HZ, &rng, NULL),
                     ES_AUGMENT_OK);
    assert_float_equal(es_mean_power(samples, CLIP_SAMPLES), before, before * 1e-3);
    /* The tail: energy well after the burst ended, none before it began. */
    assert_true(es_mean_power(samples + 3000, 2000) > 1e-6);
    assert_true(es_mean_power(samples, 900) < 1e-8);
}

static double band_power(const float *samples, size_t count, float freq_hz) {
    /* One DFT bin: the power at one frequency. */
    double re = 0.0, im = 0.0;
    for (size_t i = 0; i < count; i++) {
        const double phase = 2.0 * M_PI * freq_hz * (double)i / RATE_HZ;
        re += samples[i] * cos(phase);
        im += samples[i] * sin(phase);
    }
    return (re * re + im * im) / ((double)count * count);
}

static void test_telephone_removes_out_of_band(void **state) {
    (void)state;
    static float samples[CLIP_SAMPLES], tone[CLIP_SAMPLES];
    fill_sine(samples, CLIP_SAMPLES, 0.2f, 1000.0f);
    fill_sine(tone, CLIP_SAMPLES, 0.2f, 6000.0f);
    for (size_t i = 0; i < CLIP_SAMPLES; i++)
        samples[i] += tone[i];
    const double in_band = band_power(samples, CLIP_SAMPLES, 1000.0f);
    const double out_band = band_power(samples, CLIP_SAMPLES, 6000.0f);
    assert_int_equal(es_augment_telephone(samples, CLIP_SAMPLES, RATE_HZ, NULL), ES_AUGMENT_OK);
    assert_true(band_power(samples, CLIP_SAMPLES, 1000.0f) > 0.5 * in_band);
    assert_true(band_power(samples, CLIP_SAMPLES, 6000.0f) < 1e-3 * out_band);
}

/* The curriculum's ends: strength 0 is clean audio, 1 the full config, and
 * every knob in between lies between the two. */
static void test_config_scale_goes_from_clean_to_full(void **state) {
    (void)state;
    es_augment_config full, clean, half, over;
    es_augment_config_default(&full);
    es_augment_config_scale(&full, 0.0f, &clean);
    assert_true(clean.noise_probability == 0.0f && clean.reverb_probability == 0.0f &&
                clean.telephone_probability == 0.0f && clean.warp_max == 0.0f &&
                clean.envelope_probability == 0.0f);
    assert_int_equal(clean.time_masks + clean.freq_masks, 0);
    assert_true(clean.snr_db_min == full.snr_db_max);
    assert_true(clean.gain_db_max == full.gain_db_max && clean.speed_max == full.speed_max);
    es_augment_config_scale(&full, 1.0f, &over);
    assert_memory_equal(&over, &full, sizeof full);
    es_augment_config_scale(&full, 7.0f, &over); /* clamped */
    assert_memory_equal(&over, &full, sizeof full);
    es_augment_config_scale(&full, 0.5f, &half);
    assert_true(half.noise_probability > 0.0f && half.noise_probability < full.noise_probability);
    assert_true(half.snr_db_min > full.snr_db_min && half.snr_db_min < full.snr_db_max);
}

static void augment_once(uint64_t seed, float *samples, size_t count, const float *noise) {
    es_augment_config config;
    es_augment_config_default(&config);
    config.reverb_probability = 1.0f;
    config.noise_probability = 1.0f;
    es_rng rng;
    es_rng_seed(&rng, seed);
    es_augment_draw draw;
    es_augment_draw_params(&config, &rng, &draw);
    assert_int_equal(es_augment_audio(&draw, &rng, samples, count, es_mean_power(samples, count),
                                      noise, 3000, RATE_HZ, NULL),
                     ES_AUGMENT_OK);
}

static void test_same_seed_same_result(void **state) {
    (void)state;
    static float a[4000], b[4000], c[4000], noise[3000];
    fill_sine(a, 4000, 0.2f, 700.0f);
    memcpy(b, a, sizeof(a));
    memcpy(c, a, sizeof(a));
    fill_noise(noise, 3000, 11);
    augment_once(42, a, 4000, noise);
    augment_once(42, b, 4000, noise);
    augment_once(43, c, 4000, noise);
    assert_memory_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, c, sizeof(a));
}

static void test_draws_stay_in_configured_ranges(void **state) {
    (void)state;
    es_augment_config config;
    es_augment_config_default(&config);
    es_rng rng;
    es_rng_seed(&rng, 5);
    int noisy = 0;
    for (int i = 0; i < 1000; i++) {
        es_augment_draw draw;
        es_augment_draw_params(&config, &rng, &draw);
        if (!isnan(draw.snr_db)) {
            noisy++;
            assert_true(draw.snr_db >= -5.0f && draw.snr_db <= 30.0f);
        }
        assert_true(draw.rt60_s == 0.0f || (draw.rt60_s >= 0.2f && draw.rt60_s <= 0.8f));
        assert_true(fabsf(draw.gain_db) <= 20.0f);
        assert_true(draw.warp >= 0.9f && draw.warp <= 1.1f);
        const float speed = es_augment_draw_speed(&config, &rng);
        assert_true(speed >= 0.85f && speed <= 1.15f);
    }
    assert_in_range(noisy, 700, 900);
}

static void test_warp_moves_a_peak_up(void **state) {
    (void)state;
    enum { BANDS = 40 };
    float frame[BANDS] = {0};
    frame[20] = 1.0f;
    /* factor > 1: a longer vocal tract's formant appears higher, at the band whose
     * source frequency (f / factor) is band 20's. */
    es_augment_warp_mel(frame, 1, BANDS, BANDS, 20.0f, 7600.0f, 1.1f);
    int peak = 0;
    for (int b = 1; b < BANDS; b++)
        if (frame[b] > frame[peak]) peak = b;
    assert_in_range(peak, 21, 23);
    float flat[BANDS];
    for (int b = 0; b < BANDS; b++)
        flat[b] = (float)b;
    es_augment_warp_mel(flat, 1, BANDS, BANDS, 20.0f, 7600.0f, 1.0f);
    for (int b = 0; b < BANDS; b++)
        assert_float_equal(flat[b], (float)b, 1e-4);
}

static void test_spec_mask_zeroes_runs(void **state) {
    (void)state;
    enum { FRAMES = 100, BANDS = 40 };
    static float features[FRAMES * BANDS];
    for (int i = 0; i < FRAMES * BANDS; i++)
        features[i] = 1.0f;
    es_augment_config config;
    es_augment_config_default(&config);
    config.time_masks = 1;
    config.freq_masks = 0;
    es_rng rng;
    es_rng_seed(&rng, 9);
    es_augment_spec_mask(&config, &rng, features, FRAMES, BANDS, BANDS);
    int zero_frames = 0;
    for (int t = 0; t < FRAMES; t++) {
        int zeros = 0;
        for (int b = 0; b < BANDS; b++)
            zeros += features[t * BANDS + b] == 0.0f;
        assert_true(zeros == 0 || zeros == BANDS);
        zero_frames += zeros == BANDS;
    }
    assert_in_range(zero_frames, 0, config.time_mask_max_frames);
}

/* A frame of a voiced sound: a smooth envelope (a formant bump and a tilt)
 * plus the ripple of its pitch harmonics across the low bands. The envelope
 * keeps the first and loses the second, and keeps the frame's mean. */
static void test_envelope_keeps_formants_and_drops_harmonics(void **state) {
    (void)state;
    enum { FRAMES = 3, BANDS = 40 };
    float envelope[BANDS], frames[FRAMES * BANDS];
    for (int b = 0; b < BANDS; b++)
        envelope[b] = 2.0f * expf(-0.5f * powf((b - 12) / 4.0f, 2.0f)) - 0.03f * (float)b;
    for (int t = 0; t < FRAMES; t++)
        for (int b = 0; b < BANDS; b++)
            frames[t * BANDS + b] = envelope[b] + (b < 14 ? (b % 2 ? 0.8f : -0.8f) : 0.0f);
    float mean_before = 0.0f;
    for (int b = 0; b < BANDS; b++)
        mean_before += frames[b] / BANDS;
    assert_int_equal(es_augment_envelope(frames, FRAMES, BANDS, BANDS, 15, NULL), ES_AUGMENT_OK);
    for (int t = 0; t < FRAMES; t++) {
        float mean = 0.0f, worst = 0.0f;
        for (int b = 0; b < BANDS; b++) {
            mean += frames[t * BANDS + b] / BANDS;
            /* The harmonics' ripple was +-0.8; what is left of it and of the
             * envelope's change is a fraction of that. */
            worst = fmaxf(worst, fabsf(frames[t * BANDS + b] - envelope[b]));
        }
        assert_float_equal(mean, mean_before, 1e-4);
        assert_true(worst < 0.35f);
    }
    /* The bump is still where it was. */
    int peak = 0;
    for (int b = 1; b < BANDS; b++)
        if (frames[b] > frames[peak]) peak = b;
    assert_in_range(peak, 11, 13);

    /* As many coefficients as bands (or none asked for) leave the frame alone. */
    float copy[BANDS];
    memcpy(copy, frames, sizeof copy);
    assert_int_equal(es_augment_envelope(frames, 1, BANDS, BANDS, BANDS, NULL), ES_AUGMENT_OK);
    assert_int_equal(es_augment_envelope(frames, 1, BANDS, BANDS, 0, NULL), ES_AUGMENT_OK);
    assert_memory_equal(frames, copy, sizeof copy);
}

/* Off (the default), the envelope draws nothing: runs without it keep every
 * random draw, and their models, as they were. On, it stays in range. */
static void test_envelope_draw_is_silent_when_off(void **state) {
    (void)state;
    es_augment_config config;
    es_augment_config_default(&config);
    es_rng rng, untouched;
    es_rng_seed(&rng, 3);
    untouched = rng;
    assert_int_equal(es_augment_draw_envelope(&config, &rng), 0);
    assert_memory_equal(&rng, &untouched, sizeof rng);
    config.envelope_probability = 0.5f;
    int smoothed = 0;
    for (int i = 0; i < 1000; i++) {
        const int coefficients = es_augment_draw_envelope(&config, &rng);
        if (coefficients) {
            smoothed++;
            assert_in_range(coefficients, config.envelope_min_coefficients,
                            config.envelope_max_coefficients);
        }
    }
    assert_in_range(smoothed, 400, 600);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_noise_mix_hits_requested_snr),
        cmocka_unit_test(test_silent_noise_adds_nothing),
        cmocka_unit_test(test_gain_scales_power_and_saturates),
        cmocka_unit_test(test_speed_changes_duration_and_pitch),
        cmocka_unit_test(test_reverb_keeps_length_and_power_and_smears),
        cmocka_unit_test(test_telephone_removes_out_of_band),
        cmocka_unit_test(test_config_scale_goes_from_clean_to_full),
        cmocka_unit_test(test_same_seed_same_result),
        cmocka_unit_test(test_draws_stay_in_configured_ranges),
        cmocka_unit_test(test_warp_moves_a_peak_up),
        cmocka_unit_test(test_spec_mask_zeroes_runs),
        cmocka_unit_test(test_envelope_keeps_formants_and_drops_harmonics),
        cmocka_unit_test(test_envelope_draw_is_silent_when_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
