/* dsp_bench: speed of the front end (16 kHz mono samples -> normalised
 * log-mel frames) and of the resampler, on one core.
 *
 *   dsp_bench [SECONDS]      (default 60 s of audio per measurement)
 *
 * Prints ns per 10 ms frame and the x-real-time factor (audio seconds per
 * CPU second). Not a test: speed is for benchmarks, not assertions. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dsp.h"

static double cpu_now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void fill_test_audio(float *samples, size_t count, double rate_hz) {
    uint32_t seed = 1;
    for (size_t n = 0; n < count; n++) {
        seed = seed * 1664525u + 1013904223u;
        const double noise = (double)(seed >> 8) / 8388608.0 - 1.0;
        samples[n] = (float)(0.3 * sin(2.0 * M_PI * 440.0 * (double)n / rate_hz) + 0.05 * noise);
    }
}

typedef struct frame_sum {
    size_t frames;
    double checksum; /* keeps the work observable */
} frame_sum;

static void sum_frame(const es_frame *frame, void *user) {
    frame_sum *sum = user;
    sum->frames++;
    sum->checksum += frame->features[0];
}

static int bench_frontend(double seconds) {
    es_frontend_config config;
    es_frontend_config_default(&config);
    es_frontend *fe = NULL;
    int rc = es_frontend_create(&config, &fe);
    if (rc != ES_DSP_OK) {
        fprintf(stderr, "dsp_bench: front end: %s\n", es_dsp_strerror(rc));
        return 1;
    }
    /* One second of audio, pushed again and again in 10 ms callbacks. */
    const size_t block = (size_t)config.sample_rate_hz;
    float *samples = malloc(block * sizeof(float));
    if (!samples) return 1;
    fill_test_audio(samples, block, config.sample_rate_hz);
    frame_sum sum = {0};
    es_frontend_process(fe, samples, block, sum_frame, &sum); /* warm caches */
    sum.frames = 0;
    const double start = cpu_now_s();
    for (double done = 0.0; done < seconds; done += 1.0) {
        for (size_t at = 0; at < block; at += 160) {
            es_frontend_process(fe, samples + at, 160, sum_frame, &sum);
        }
    }
    const double elapsed = cpu_now_s() - start;
    printf("frontend\t%.0f x real time\t%.0f ns/frame\t(%zu frames, checksum %.3g)\n",
           seconds / elapsed, 1e9 * elapsed / (double)sum.frames, sum.frames, sum.checksum);
    free(samples);
    es_frontend_destroy(fe);
    return 0;
}

static int bench_resampler(double rate_hz, int channels, double seconds) {
    const size_t chunk = (size_t)(rate_hz / 100); /* 10 ms callbacks */
    es_resampler *rs = NULL;
    int rc = es_resampler_create(rate_hz, channels, 16000, chunk, &rs);
    if (rc != ES_DSP_OK) {
        fprintf(stderr, "dsp_bench: resampler: %s\n", es_dsp_strerror(rc));
        return 1;
    }
    const size_t bound = es_resampler_output_bound(rs, chunk);
    const size_t frames = (size_t)rate_hz;
    float *input = malloc(frames * (size_t)channels * sizeof(float));
    float *output = malloc(bound * sizeof(float));
    if (!input || !output) return 1;
    fill_test_audio(input, frames * (size_t)channels, rate_hz * channels);
    size_t produced = 0;
    const double start = cpu_now_s();
    for (double done = 0.0; done < seconds; done += 1.0) {
        for (size_t at = 0; at + chunk <= frames; at += chunk) {
            const long got =
                es_resampler_process(rs, input + at * (size_t)channels, chunk, output, bound);
            if (got < 0) return 1;
            produced += (size_t)got;
        }
    }
    const double elapsed = cpu_now_s() - start;
    printf("resample %.0f Hz x %d ch\t%.0f x real time\t%.0f ns per 10 ms of output\n", rate_hz,
           channels, seconds / elapsed, 1e9 * elapsed / ((double)produced / 160.0));
    free(input);
    free(output);
    es_resampler_destroy(rs);
    return 0;
}

int main(int argc, char **argv) {
    const double seconds = argc > 1 ? atof(argv[1]) : 60.0;
    if (!(seconds >= 1.0)) {
        fprintf(stderr, "usage: dsp_bench [SECONDS]   (at least 1)\n");
        return 2;
    }
    int failed = bench_frontend(seconds);
    failed |= bench_resampler(44100, 2, seconds);
    failed |= bench_resampler(48000, 1, seconds);
    failed |= bench_resampler(8000, 1, seconds);
    return failed;
}
