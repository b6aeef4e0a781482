/*
 * libFuzzer target for audio input: whatever the bytes, opening either fails
 * with a reason, or gives a stream within earshot's limits whose samples go
 * through the offline pipeline (resampler, front end, built-in models,
 * detectors) without a sanitizer report.
 *
 * The bytes are handed over as a file (a memfd) because that is how earshot
 * receives them: libsndfile parses the header from a descriptor.
 * Built by tests/daemon/stream/CMakeLists.txt when ES_FUZZ=ON (clang).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stream.h"

/* Enough audio for a few frames through every stage, little enough to keep
 * each run fast. */
#define MAX_FUZZ_FRAMES 48000
#define CHUNK_FRAMES 1024

static es_model *vad_model, *kws_model;

static void load_models(void) {
    es_error err;
    if (es_pipeline_load_model(NULL, "vad", NULL, &vad_model, &err) != ES_PIPELINE_OK ||
        es_pipeline_load_model(NULL, "kws", NULL, &kws_model, &err) != ES_PIPELINE_OK)
        abort();
}

static void ignore_event(const es_event *event, void *user) {
    (void)event;
    (void)user;
}

static void analyse(es_audio_file *audio) {
    const es_audio_info *info = es_audio_file_info(audio);
    if (info->channels < 1 || info->channels > ES_AUDIO_MAX_CHANNELS ||
        info->sample_rate_hz < ES_AUDIO_MIN_RATE_HZ || info->sample_rate_hz > ES_AUDIO_MAX_RATE_HZ)
        abort(); /* the reader promised these limits */
    es_pipeline_config config;
    es_pipeline_config_default(&config, ES_PIPELINE_OFFLINE);
    config.vad_model = vad_model;
    config.kws_models[0] = kws_model;
    config.kws_model_count = 1;
    config.input_rate_hz = info->sample_rate_hz;
    config.input_channels = info->channels;
    config.max_input_frames = CHUNK_FRAMES;
    config.on_event = ignore_event;
    es_pipeline *pipeline = NULL;
    if (es_pipeline_create(&config, &pipeline, NULL) != ES_PIPELINE_OK) abort();
    float *chunk = malloc(sizeof(float) * CHUNK_FRAMES * (size_t)info->channels);
    if (!chunk) abort();
    es_error audio_err = {0};
    long got;
    long total = 0;
    while (total < MAX_FUZZ_FRAMES &&
           (got = es_audio_file_read(audio, chunk, CHUNK_FRAMES, &audio_err)) > 0) {
        es_pipeline_push(pipeline, chunk, (size_t)got);
        total += got;
    }
    es_pipeline_finish(pipeline);
    es_pipeline_destroy(pipeline);
    free(chunk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!vad_model) load_models();
    int fd = memfd_create("fuzz-audio", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET) != 0) abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    es_audio_file *audio = NULL;
    es_error audio_err = {0};
    if (es_audio_file_open(path, &audio, &audio_err) != 0) {
        /* A refusal always says why. */
        if (audio != NULL || audio_err.why[0] == '\0') abort();
    } else {
        analyse(audio);
        es_audio_file_close(audio);
    }
    close(fd);
    return 0;
}
