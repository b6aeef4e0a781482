/*
 * audio_file in-process: reasons for refusals, and no descriptor leaked or
 * closed twice whatever happens (a double close under `earshot file -j` would
 * close a file another thread just opened).
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "stream.h"

#define DEMO_CLIP ES_SOURCE_DIR "/tests/clips/demo.wav"

static char temp_dir[64];

static int open_descriptors(void) {
    DIR *dir = opendir("/proc/self/fd");
    assert_non_null(dir);
    int count = 0;
    while (readdir(dir))
        count++;
    closedir(dir);
    return count;
}

static void write_file(const char *name, const void *bytes, size_t size, char *path) {
    snprintf(path, 128, "%s/%s", temp_dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, size, f), size);
    fclose(f);
}

/* A 16-bit PCM WAV header with `channels` and `rate_hz`, and a little silence. */
static void write_wav(const char *name, uint16_t channels, uint32_t rate_hz, char *path) {
    unsigned char wav[44 + 320] = {0};
    uint32_t fields[] = {sizeof wav - 8, 16, rate_hz, rate_hz * channels * 2u, 320};
    memcpy(wav, "RIFF", 4);
    memcpy(wav + 4, &fields[0], 4);
    memcpy(wav + 8, "WAVEfmt ", 8);
    memcpy(wav + 16, &fields[1], 4);
    uint16_t format = 1, block = (uint16_t)(channels * 2), bits = 16;
    memcpy(wav + 20, &format, 2);
    memcpy(wav + 22, &channels, 2);
    memcpy(wav + 24, &fields[2], 4);
    memcpy(wav + 28, &fields[3], 4);
    memcpy(wav + 32, &block, 2);
    memcpy(wav + 34, &bits, 2);
    memcpy(wav + 36, "data", 4);
    memcpy(wav + 40, &fields[4], 4);
    write_file(name, wav, sizeof wav, path);
}

static void expect_refusal(const char *path, const char *reason) {
    es_audio_file *audio = (es_audio_file *)0x1;
    es_error audio_err = {0};
    assert_int_equal(es_audio_file_open(path, &audio, &audio_err), -1);
    assert_null(audio);
    if (!strstr(audio_err.why, reason))
        fail_msg("%s: \"%s\" does not say \"%s\"", path, audio_err.why, reason);
    /* A regular file is not a pipe: no advice about pipes. */
    assert_null(strstr(audio_err.why, "pipe"));
}

static void test_refusals_and_descriptors(void **state) {
    (void)state;
    char text[128], zero_channels[128], wide[128], slow[128], empty[128];
    write_file("text.wav", "just words\n", 11, text);
    write_file("empty.wav", "", 0, empty);
    write_wav("zero.wav", 0, 16000, zero_channels);
    write_wav("wide.wav", 65, 16000, wide);
    write_wav("slow.wav", 1, 4000, slow);
    int before = open_descriptors();
    for (int round = 0; round < 20; round++) {
        expect_refusal(text, "not an audio file");
        expect_refusal(empty, "empty file");
        expect_refusal(zero_channels, "");
        expect_refusal(wide, "65 channels is outside the supported 1-64");
        expect_refusal(slow, "sample rate 4000 Hz is outside the supported 8000-96000 Hz");
        expect_refusal(temp_dir, "is a directory");
        expect_refusal("/nonexistent/x.wav", "No such file");

        es_audio_file *audio = NULL;
        es_error audio_err = {0};
        assert_int_equal(es_audio_file_open(DEMO_CLIP, &audio, &audio_err), 0);
        const es_audio_info *info = es_audio_file_info(audio);
        assert_int_equal(info->sample_rate_hz, 16000);
        assert_int_equal(info->channels, 1);
        assert_true(info->frames > 100000);
        float chunk[4096];
        int64_t total = 0;
        long got;
        while ((got = es_audio_file_read(audio, chunk, 4096, &audio_err)) > 0)
            total += got;
        assert_int_equal(got, 0);
        assert_int_equal(total, info->frames);
        es_audio_file_close(audio);
    }
    assert_int_equal(open_descriptors(), before);
}

static int setup(void **state) {
    (void)state;
    snprintf(temp_dir, sizeof temp_dir, "%s/earshot-audio-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(temp_dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", temp_dir);
    return system(command) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals_and_descriptors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
