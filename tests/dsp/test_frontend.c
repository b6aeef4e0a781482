/* Front end: FFT power spectrum, mel filterbank, chunk invariance, gain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp_internal.h"
#include "test_signals.h"

#define RATE_HZ 16000

static es_frontend *make_frontend(es_normalisation normalisation) {
    es_frontend_config config;
    es_frontend_config_default(&config);
    config.normalisation = normalisation;
    es_frontend *fe = NULL;
    assert_int_equal(es_frontend_create(&config, &fe), ES_DSP_OK);
    assert_non_null(fe);
    return fe;
}

/* Runs `samples` through a fresh front end in chunks of `chunk` samples. */
static frame_list frames_of(const float *samples, size_t count, size_t chunk,
                            es_normalisation normalisation) {
    es_frontend *fe = make_frontend(normalisation);
    frame_list list = {0};
    for (size_t at = 0; at < count; at += chunk) {
        const size_t n = count - at < chunk ? count - at : chunk;
        es_frontend_process(fe, samples + at, n, collect_frame, &list);
    }
    es_frontend_destroy(fe);
    return list;
}

/* The window the front end applies, in double precision. */
static double hann(int i, int length) {
    return 0.5 - 0.5 * cos(2.0 * M_PI * i / length);
}

/* The front end's float FFT (a complex FFT of half the size, then the step to
 * real bins) against a direct double-precision DFT of the same windowed,
 * zero-padded block. Tolerance: every bin within 1e-5 of the largest bin's
 * power (float FFT rounding is ~1e-7 relative per value). */
static void check_power_spectrum(int fft_size, int mel_bands) {
    es_frontend_config config;
    es_frontend_config_default(&config);
    config.normalisation = ES_NORM_NONE;
    config.fft_size = fft_size;
    config.mel_bands = mel_bands;
    es_frontend *fe = NULL;
    assert_int_equal(es_frontend_create(&config, &fe), ES_DSP_OK);
    const int window = config.window_samples;
    const int bins = fft_size / 2 + 1;
    float samples[800];
    uint32_t seed = 99;
    for (int n = 0; n < 800; n++) {
        samples[n] = 0.5f * (float)sin(2.0 * M_PI * 1000.0 * n / RATE_HZ) +
                     0.1f * test_random_symmetric(&seed);
    }
    frame_list list = {0};
    /* Two frames: at 0 and at one hop, to check the overlap bookkeeping too. */
    es_frontend_process(fe, samples, (size_t)(window + config.hop_samples), collect_frame, &list);
    assert_int_equal(list.count, 2);
    const float *power = es_frontend_last_power_spectrum(fe);
    const float *frame_start = samples + config.hop_samples;

    double *reference = calloc((size_t)bins, sizeof(double));
    assert_non_null(reference);
    double largest = 0.0;
    for (int k = 0; k < bins; k++) {
        double re = 0.0, im = 0.0;
        for (int n = 0; n < window; n++) {
            const double x = frame_start[n] * hann(n, window);
            re += x * cos(2.0 * M_PI * k * n / fft_size);
            im -= x * sin(2.0 * M_PI * k * n / fft_size);
        }
        reference[k] = re * re + im * im;
        if (reference[k] > largest) largest = reference[k];
    }
    double worst = 0.0;
    for (int k = 0; k < bins; k++) {
        const double error = fabs(power[k] - reference[k]) / largest;
        if (error > worst) worst = error;
    }
    printf("power spectrum, %d points: worst bin error %.3g of the peak power %.3g\n", fft_size,
           worst, largest);
    assert_true(worst < 1e-5);
    /* The tone dominates its bin. */
    const int tone_bin = (int)lround(1000.0 * fft_size / RATE_HZ);
    assert_true(power[tone_bin] > 0.1 * largest);
    free(reference);
    free(list.frames);
    es_frontend_destroy(fe);
}

/* The default size, and others: a size that is not a power of two, and one
 * whose half is odd. */
static void power_spectrum_matches_direct_dft(void **state) {
    (void)state;
    check_power_spectrum(512, 40);
    check_power_spectrum(400, 24);
    check_power_spectrum(1030, 40);
}

/* The last frame's features against log(weighted power + floor) in double
 * precision, from the same power spectrum and filterbank: within 4 float ulps
 * (the front end's own vectorised log is within 3 of the exact value). */
static void check_last_frame_features(const es_frontend *fe, const frame_list *list) {
    const es_frontend_config *config = es_frontend_get_config(fe);
    const float *power = es_frontend_last_power_spectrum(fe);
    const float *features = list->frames[list->count - 1].features;
    for (int band = 0; band < config->mel_bands; band++) {
        double sum = 0.0;
        for (int bin = 0; bin < config->fft_size / 2 + 1; bin++)
            sum += (double)es_frontend_mel_weight(fe, band, bin) * power[bin];
        const double expected = log(sum + config->power_floor);
        const double tolerance = 4.0 * FLT_EPSILON * fmax(1.0, fabs(expected));
        if (fabs(features[band] - expected) > tolerance) {
            fail_msg("band %d: feature %.9g, log in double precision %.9g", band,
                     (double)features[band], expected);
        }
    }
}

static void log_mel_matches_double_precision(void **state) {
    (void)state;
    es_frontend *fe = make_frontend(ES_NORM_NONE);
    float samples[400];
    uint32_t seed = 5;
    frame_list list = {0};
    /* Loud, then quiet enough that the floor matters, then digital silence:
     * features from about +10 down to log(1e-10) = -23. */
    const float levels[] = {1.0f, 1e-5f, 0.0f};
    for (size_t level = 0; level < sizeof levels / sizeof levels[0]; level++) {
        es_frontend_reset(fe);
        for (int n = 0; n < 400; n++) {
            samples[n] = levels[level] * (0.5f * (float)sin(2.0 * M_PI * 440.0 * n / RATE_HZ) +
                                          0.3f * test_random_symmetric(&seed));
        }
        es_frontend_process(fe, samples, 400, collect_frame, &list);
        check_last_frame_features(fe, &list);
    }
    free(list.frames);
    es_frontend_destroy(fe);
}

static double hz_to_mel(double hz) {
    return 2595.0 * log10(1.0 + hz / 700.0);
}

static void mel_filterbank_covers_and_normalises(void **state) {
    (void)state;
    es_frontend *fe = make_frontend(ES_NORM_RUNNING_MEAN);
    const es_frontend_config *config = es_frontend_get_config(fe);
    const int bins = config->fft_size / 2 + 1;
    const double bin_hz = (double)config->sample_rate_hz / config->fft_size;

    for (int band = 0; band < config->mel_bands; band++) {
        double sum = 0.0;
        int nonzero = 0;
        for (int bin = 0; bin < bins; bin++) {
            const float w = es_frontend_mel_weight(fe, band, bin);
            assert_true(w >= 0.0f);
            if (w > 0.0f) nonzero++;
            sum += w;
        }
        assert_true(nonzero > 0);
        assert_true(fabs(sum - 1.0) < 1e-5); /* the documented normalisation */
        if (band > 0) {
            const double centre = es_frontend_mel_centre_hz(fe, band);
            const double previous = es_frontend_mel_centre_hz(fe, band - 1);
            assert_true(centre > previous);
            /* HTK mel: centres equally spaced in 2595 log10(1 + f / 700). */
            if (band > 1) {
                const double step = hz_to_mel(centre) - hz_to_mel(previous);
                const double previous_step =
                    hz_to_mel(previous) - hz_to_mel(es_frontend_mel_centre_hz(fe, band - 2));
                assert_true(fabs(step - previous_step) < 1e-6 * step);
            }
        }
    }
    for (int bin = 0; bin < bins; bin++) {
        const double hz = bin * bin_hz;
        float total = 0.0f;
        for (int band = 0; band < config->mel_bands; band++) {
            total += es_frontend_mel_weight(fe, band, bin);
        }
        if (hz > config->mel_low_hz && hz < config->mel_high_hz) {
            assert_true(total > 0.0f); /* no gap in the filterbank */
        } else {
            assert_true(total == 0.0f);
        }
    }
    /* Out-of-range queries are harmless zeros. */
    assert_true(es_frontend_mel_weight(fe, -1, 10) == 0.0f);
    assert_true(es_frontend_mel_weight(fe, config->mel_bands, 10) == 0.0f);
    assert_true(es_frontend_mel_weight(fe, 0, bins + 5) == 0.0f);
    es_frontend_destroy(fe);
}

/* A pure tone lights up the band whose centre is nearest to it. */
static void tone_lands_in_its_band(void **state) {
    (void)state;
    const double tone_hz = 2000.0;
    float samples[400];
    for (int n = 0; n < 400; n++)
        samples[n] = 0.5f * (float)sin(2.0 * M_PI * tone_hz * n / RATE_HZ);
    frame_list list = frames_of(samples, 400, 400, ES_NORM_NONE);
    assert_int_equal(list.count, 1);
    es_frontend *fe = make_frontend(ES_NORM_NONE);
    int loudest = 0, nearest = 0;
    for (int band = 0; band < 40; band++) {
        if (list.frames[0].features[band] > list.frames[0].features[loudest]) loudest = band;
        if (fabs(es_frontend_mel_centre_hz(fe, band) - tone_hz) <
            fabs(es_frontend_mel_centre_hz(fe, nearest) - tone_hz)) {
            nearest = band;
        }
    }
    assert_int_equal(loudest, nearest);
    /* Unused feature slots are zero, so frames compare whole. */
    for (int band = 40; band < ES_MAX_MEL_BANDS; band++) {
        assert_true(list.frames[0].features[band] == 0.0f);
    }
    free(list.frames);
    es_frontend_destroy(fe);
}

static void frames_do_not_depend_on_chunking(void **state) {
    (void)state;
    const size_t count = 3 * RATE_HZ;
    float *samples = malloc(count * sizeof(float));
    assert_non_null(samples);
    test_render_tones_and_noise(samples, count, 2024);
    frame_list reference = frames_of(samples, count, count, ES_NORM_RUNNING_MEAN);
    assert_int_equal(reference.count, 1 + (count - 400) / 160);
    for (size_t i = 0; i < reference.count; i++) {
        assert_int_equal(reference.frames[i].time_samples, (int64_t)(i * 160));
    }
    const size_t chunks[] = {1, 7, 160, 4096};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        frame_list list = frames_of(samples, count, chunks[c], ES_NORM_RUNNING_MEAN);
        assert_int_equal(list.count, reference.count);
        assert_memory_equal(list.frames, reference.frames, list.count * sizeof(es_frame));
        free(list.frames);
    }
    free(reference.frames);
    free(samples);
}

static void reset_restarts_the_stream(void **state) {
    (void)state;
    const size_t count = RATE_HZ / 2;
    float *samples = malloc(count * sizeof(float));
    assert_non_null(samples);
    test_render_tones_and_noise(samples, count, 7);
    es_frontend *fe = make_frontend(ES_NORM_RUNNING_MEAN);
    frame_list first = {0}, second = {0};
    es_frontend_process(fe, samples, count, collect_frame, &first);
    es_frontend_process(fe, samples, 123, collect_frame, &second); /* partial state */
    es_frontend_reset(fe);
    second.count = 0;
    es_frontend_process(fe, samples, count, collect_frame, &second);
    assert_int_equal(first.count, second.count);
    assert_memory_equal(first.frames, second.frames, first.count * sizeof(es_frame));
    free(first.frames);
    free(second.frames);
    free(samples);
    es_frontend_destroy(fe);
}

/* Features of a signal and of the same signal 20 dB quieter. Normalisation
 * subtracts a mean that starts at the first frame, so a constant gain
 * cancels exactly but for the power floor and float rounding. Tolerance, in
 * natural-log units: a feature may differ by 1e-4 (rounding) plus the floor's
 * own share, 2 * floor / band power of the quiet version (the floor is 1e-10;
 * the quietest band here is ~1e-7, so up to ~2e-3 there); the mean
 * difference must stay below 1e-4. */
static void features_ignore_input_gain(void **state) {
    (void)state;
    const size_t count = 3 * RATE_HZ;
    float *loud = malloc(count * sizeof(float));
    float *quiet = malloc(count * sizeof(float));
    assert_non_null(loud);
    assert_non_null(quiet);
    test_render_speech_like(loud, count, RATE_HZ, 7600.0);
    uint32_t seed = 5;
    for (size_t n = 0; n < count; n++) {
        loud[n] += 0.001f * test_random_symmetric(&seed); /* a -60 dB noise floor */
        quiet[n] = loud[n] * 0.1f;
    }
    frame_list a = frames_of(loud, count, 4096, ES_NORM_RUNNING_MEAN);
    frame_list b = frames_of(quiet, count, 4096, ES_NORM_RUNNING_MEAN);
    frame_list raw = frames_of(loud, count, 4096, ES_NORM_NONE);
    frame_list raw_quiet = frames_of(quiet, count, 4096, ES_NORM_NONE);
    assert_int_equal(a.count, b.count);
    double worst = 0.0, sum = 0.0, raw_offset = 0.0;
    size_t worst_frame = 0;
    int worst_band = 0;
    for (size_t i = 0; i < a.count; i++) {
        for (int band = 0; band < 40; band++) {
            const double d = fabs(a.frames[i].features[band] - b.frames[i].features[band]);
            const double floor_share = 2.0 * 1e-10 / exp(raw_quiet.frames[i].features[band]);
            assert_true(d <= 1e-4 + floor_share);
            if (d > worst) {
                worst = d;
                worst_frame = i;
                worst_band = band;
            }
            sum += d;
            raw_offset += raw.frames[i].features[band] - raw_quiet.frames[i].features[band];
        }
    }
    const double mean = sum / (40.0 * (double)a.count);
    raw_offset /= 40.0 * (double)a.count;
    printf("gain -20 dB: normalised features differ by max %.3g (frame %zu band %d, quiet "
           "log-mel %.2f), mean %.3g; unnormalised log-mel offset %.4f, expected %.4f\n",
           worst, worst_frame, worst_band, raw_quiet.frames[worst_frame].features[worst_band], mean,
           raw_offset, log(100.0));
    assert_true(mean < 1e-4);
    /* Without normalisation the gain shows, as ln(100) in every band. */
    assert_true(fabs(raw_offset - log(100.0)) < 0.01);
    free(a.frames);
    free(b.frames);
    free(raw.frames);
    free(raw_quiet.frames);
    free(loud);
    free(quiet);
}

typedef struct planner_worker {
    const float *samples;
    size_t count;
    es_frame last_frame;
    int failures;
} planner_worker;

static void keep_last_frame(const es_frame *frame, void *user) {
    ((planner_worker *)user)->last_frame = *frame;
}

/* Front ends made and destroyed on several threads at once (FFTW's planner
 * is serialised inside dsp) all compute the same frames. */
static void *make_and_run_frontends(void *arg) {
    planner_worker *worker = arg;
    es_frontend_config config;
    es_frontend_config_default(&config);
    for (int i = 0; i < 20; i++) {
        es_frontend *fe = NULL;
        if (es_frontend_create(&config, &fe) != ES_DSP_OK) {
            worker->failures++;
            continue;
        }
        es_frontend_process(fe, worker->samples, worker->count, keep_last_frame, worker);
        es_frontend_destroy(fe);
    }
    return NULL;
}

static void frontends_made_on_many_threads_agree(void **state) {
    (void)state;
    enum { THREADS = 4 };
    const size_t count = 4000;
    float *samples = malloc(count * sizeof(float));
    assert_non_null(samples);
    test_render_tones_and_noise(samples, count, 31);
    planner_worker workers[THREADS];
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        workers[t] = (planner_worker){.samples = samples, .count = count};
        assert_int_equal(pthread_create(&threads[t], NULL, make_and_run_frontends, &workers[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(workers[t].failures, 0);
        assert_memory_equal(&workers[t].last_frame, &workers[0].last_frame, sizeof(es_frame));
    }
    free(samples);
}

static void bad_configs_are_refused(void **state) {
    (void)state;
    es_frontend_config good;
    es_frontend_config_default(&good);
    es_frontend_config bad[11];
    for (int i = 0; i < 11; i++)
        bad[i] = good;
    bad[0].mel_bands = 0;
    bad[1].mel_bands = ES_MAX_MEL_BANDS + 1;
    bad[2].mel_high_hz = 9000.0f; /* above Nyquist */
    bad[3].window_samples = 600;  /* longer than the FFT */
    bad[4].hop_samples = 0;
    bad[5].power_floor = 0.0f;
    bad[6].mel_low_hz = NAN;
    bad[7].norm_time_constant_s = -1.0f;
    bad[8].normalisation = (es_normalisation)7;
    bad[9].mel_low_hz = 7600.0f; /* empty range */
    bad[10].fft_size = 511;      /* odd: the FFT is a complex one of half the size */
    for (int i = 0; i < 11; i++) {
        es_frontend *fe = (es_frontend *)&good; /* must be overwritten with NULL */
        assert_int_equal(es_frontend_create(&bad[i], &fe), ES_DSP_ERR_CONFIG);
        assert_null(fe);
    }
    /* Bands narrower than a bin: 64 bands over 20-200 Hz cannot all hold a bin. */
    es_frontend_config narrow = good;
    narrow.mel_bands = 64;
    narrow.mel_high_hz = 200.0f;
    es_frontend *fe = NULL;
    assert_int_equal(es_frontend_create(&narrow, &fe), ES_DSP_ERR_CONFIG);
    assert_string_equal(es_dsp_strerror(ES_DSP_ERR_CONFIG),
                        "invalid front-end or resampler configuration");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(power_spectrum_matches_direct_dft),
        cmocka_unit_test(log_mel_matches_double_precision),
        cmocka_unit_test(mel_filterbank_covers_and_normalises),
        cmocka_unit_test(tone_lands_in_its_band),
        cmocka_unit_test(frames_do_not_depend_on_chunking),
        cmocka_unit_test(reset_restarts_the_stream),
        cmocka_unit_test(features_ignore_input_gain),
        cmocka_unit_test(bad_configs_are_refused),
        cmocka_unit_test(frontends_made_on_many_threads_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
