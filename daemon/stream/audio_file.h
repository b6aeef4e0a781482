/*
 * audio_file — reads any file libsndfile reads (WAV, FLAC, OGG, ...), or a
 * WAV/AU/... stream on stdin ("-"), as interleaved float frames in chunks.
 *
 * Opening checks what earshot can analyse — 8..96 kHz, 1..64 channels — and
 * explains a refusal in words meant for the user ("empty file", "not an
 * audio file: ...", "sample rate 4 Hz is outside 8000-96000 Hz").
 */
#ifndef ES_AUDIO_FILE_H
#define ES_AUDIO_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define ES_AUDIO_MIN_RATE_HZ 8000
#define ES_AUDIO_MAX_RATE_HZ 96000
#define ES_AUDIO_MAX_CHANNELS 64

/* The one failure code: the file cannot be opened, is not audio earshot can
 * analyse, or a read failed; err->why says which, in words for the user. */
#define ES_AUDIO_ERR (-1)

typedef struct es_audio_info {
    int sample_rate_hz;
    int channels;
    int64_t frames; /* -1 when unknown (a pipe) */
} es_audio_info;

typedef struct es_audio_file es_audio_file;

/* `path` "-" is stdin. Returns 0, or ES_AUDIO_ERR with the reason in `err`. */
int es_audio_file_open(const char *path, es_audio_file **out, es_error *err);
void es_audio_file_close(es_audio_file *file);

const es_audio_info *es_audio_file_info(const es_audio_file *file);

/* Reads up to `max_frames` interleaved frames (max_frames * channels floats,
 * full scale +-1). Returns frames read, 0 at the end, or ES_AUDIO_ERR on a
 * read error (reason in `err`). */
long es_audio_file_read(es_audio_file *file, float *interleaved, size_t max_frames, es_error *err);

#endif
