/* espeak-ng in process (models/train/synth.c) makes the clip the command line made:
 * `espeak-ng ... -w RAW` then `sox RAW -r 16000 -c 1 -b 16 CLIP silence ...`
 * (same length within 10 ms, same level within 0.5 dB, the same waveform
 * but for resampling); the trimming finds sound, not faint noise; a voice
 * espeak-ng lacks is an error that names it. */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "synth_folder.h"

#include "stream.h"
#include "synth.h"

#define RATE_HZ 16000
#define MAX_SAMPLES (RATE_HZ * 10)

static char folder[PATH_MAX];

static int setup(void **state) {
    (void)state;
    return synth_folder_make(folder, sizeof folder, "synth-test");
}

static int teardown(void **state) {
    (void)state;
    return synth_folder_remove(folder);
}

/* A 16 kHz mono clip into samples; returns its length. */
static size_t read_clip(const char *path, float *samples) {
    es_error audio_err = {0};
    es_audio_file *file = NULL;
    assert_int_equal(es_audio_file_open(path, &file, &audio_err), 0);
    assert_int_equal(es_audio_file_info(file)->sample_rate_hz, RATE_HZ);
    assert_int_equal(es_audio_file_info(file)->channels, 1);
    size_t count = 0;
    long got;
    while ((got = es_audio_file_read(file, samples + count, MAX_SAMPLES - count, &audio_err)) > 0)
        count += (size_t)got;
    assert_true(got == 0);
    es_audio_file_close(file);
    return count;
}

static double rms(const float *x, size_t n) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += (double)x[i] * x[i];
    return sqrt(sum / (double)n);
}

/* The best normalised correlation of a and b over lags of +-max_lag samples. */
static double best_correlation(const float *a, size_t na, const float *b, size_t nb, int max_lag) {
    double best = -1.0;
    for (int lag = -max_lag; lag <= max_lag; lag++) {
        double ab = 0.0, aa = 0.0, bb = 0.0;
        for (size_t i = 0; i < na; i++) {
            const long j = (long)i + lag;
            if (j < 0 || j >= (long)nb) continue;
            ab += (double)a[i] * b[j];
            aa += (double)a[i] * a[i];
            bb += (double)b[j] * b[j];
        }
        const double r = aa > 0.0 && bb > 0.0 ? ab / sqrt(aa * bb) : 0.0;
        best = r > best ? r : best;
    }
    return best;
}

static void test_matches_the_command_line(void **state) {
    (void)state;
    if (folder[0] == '\0') skip();
    char ours[PATH_MAX + 16], theirs[PATH_MAX + 16], command[4 * PATH_MAX + 256];
    snprintf(ours, sizeof ours, "%s/ours.wav", folder);
    snprintf(theirs, sizeof theirs, "%s/theirs.wav", folder);
    /* A voice that needs the language fallback ("en-gb" is no file name) and
     * phoneme input, as train-keyword's confusables use. */
    const char *voice = "en-gb+robosoft", *text = "open [[s'Esa#mi]]";
    assert_int_equal(es_synth_start(NULL), 0);
    assert_int_equal(es_synth_espeak_clip(voice, 130, 60, text, ours, NULL), 0);
    snprintf(command, sizeof command,
             "espeak-ng -v %s -s 130 -p 60 -w '%s/raw.wav' -- \"%s\" && sox -R -G -V1 "
             "'%s/raw.wav' -r 16000 -c 1 -b 16 '%s' silence 1 0.01 -45d reverse silence 1 "
             "0.01 -45d reverse",
             voice, folder, text, folder, theirs);
    assert_int_equal(system(command), 0);

    float *a = malloc(sizeof(float) * MAX_SAMPLES), *b = malloc(sizeof(float) * MAX_SAMPLES);
    assert_non_null(a);
    assert_non_null(b);
    const size_t na = read_clip(ours, a), nb = read_clip(theirs, b);
    const double level_db = 20.0 * log10(rms(a, na) / rms(b, nb));
    const double correlation = best_correlation(a, na, b, nb, 80);
    printf("in process %zu samples, command line %zu; level %+.2f dB; correlation %.4f\n", na, nb,
           level_db, correlation);
    assert_true(na > RATE_HZ / 2);
    assert_true(labs((long)na - (long)nb) <= RATE_HZ / 100);
    assert_true(fabs(level_db) < 0.5);
    assert_true(correlation > 0.99);
    free(a);
    free(b);
}

static void test_trim_finds_sound_not_noise(void **state) {
    (void)state;
    const size_t count = RATE_HZ; /* 0.3 s of -60 dB noise, 0.5 s tone, 0.2 s noise */
    float *x = malloc(sizeof(float) * count);
    assert_non_null(x);
    uint32_t seed = 1;
    for (size_t i = 0; i < count; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = 0.001f * ((float)(seed >> 8) / (float)(1u << 24) * 2.0f - 1.0f);
        if (i >= 4800 && i < 12800) x[i] += 0.1f * sinf(2.0f * 3.14159265f * 440.0f * i / RATE_HZ);
    }
    size_t begin, end;
    es_synth_trim(x, count, &begin, &end);
    assert_in_range(begin, 4800, 4800 + RATE_HZ / 100);
    assert_in_range(end, 12800 - RATE_HZ / 100, 12800);
    for (size_t i = 0; i < count; i++)
        x[i] = i % 2 ? 0.001f : -0.001f; /* -60 dBFS only */
    es_synth_trim(x, count, &begin, &end);
    assert_true(begin == end);
    free(x);
}

static void test_unknown_voice_is_named(void **state) {
    (void)state;
    if (folder[0] == '\0') skip();
    char path[PATH_MAX + 16];
    es_error err = {0};
    snprintf(path, sizeof path, "%s/none.wav", folder);
    assert_int_equal(es_synth_start(&err), 0);
    assert_int_equal(es_synth_espeak_clip("xx-nowhere+m3", 130, 50, "hello", path, &err),
                     ES_SYNTH_ERR_ESPEAK);
    assert_int_equal(err.code, ES_SYNTH_ERR_ESPEAK);
    assert_non_null(strstr(err.why, "xx-nowhere+m3"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_the_command_line),
        cmocka_unit_test(test_trim_finds_sound_not_noise),
        cmocka_unit_test(test_unknown_voice_is_named),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
