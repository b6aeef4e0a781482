/*
 * Live capture without a sound card (/work/shared/TESTING-LIVE.md, recipe 1):
 * a private ALSA configuration whose only PCM, "default", captures a raw
 * file through the `file` plugin, plus small random-weight models so the
 * tests do not depend on the shipped ones.
 *
 * Capture exactly in the file's format: float32 samples at its rate and
 * channel count. Whenever ALSA's plug has to convert anything (S16 to float,
 * mono to stereo, ...) the plugin chain skips samples once the capture buffer
 * first wraps (e.g. 320 samples lost after sample 640 with 160-frame
 * buffers); without conversion the file arrives sample for sample
 * (test_capture checks it). PortAudio reports the file's rate as the
 * device's default, so a capture at the defaults matches.
 */
#ifndef ES_LIVE_FIXTURE_H
#define ES_LIVE_FIXTURE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rnn.h"

typedef struct live_fixture {
    char dir[256]; /* private temporary directory, removed by destroy */
} live_fixture;

/* Makes the directory. Returns 0 or -1. */
int live_fixture_create(live_fixture *f);
/* Removes the directory and everything in it. */
void live_fixture_destroy(live_fixture *f);

/* `dir`/name into `path`. */
void live_fixture_path(const live_fixture *f, const char *name, char *path, size_t size);

/* Writes the ALSA config capturing `raw_path` (interleaved FLOAT_LE at
 * `rate_hz` with `channels`) and points this process (and
 * its children) at it: ALSA_CONFIG_PATH; JACK_NO_START_SERVER and a JACK
 * server name nobody uses, so PortAudio's JACK probe neither starts a server
 * nor finds one. Call before PortAudio
 * initialises. The file plugin repeats old samples after the end of the
 * file: capture less than its length. Returns 0 or -1. */
int live_fixture_use_raw(live_fixture *f, const char *raw_path, int rate_hz, int channels);

/* Writes float32 samples as a raw file. Returns 0 or -1. */
int live_fixture_write_raw(const char *path, const float *samples, size_t count);

/* A streaming VAD model (one output, "speech") and a keyword model
 * ("filler", "left", "stop") with random weights, fit for the default front
 * end. */
es_model *live_fixture_vad_model(uint64_t seed);
es_model *live_fixture_kws_model(uint64_t seed);

/* Runs a shell command; returns its exit status, or -1 if it did not exit. */
int live_fixture_run(const char *command);

/* ---- child processes -------------------------------------------------------- */

/* Starts `args` (NULL-terminated; args[0] is looked up in PATH) with stdin
 * from /dev/null and stdout / stderr into the files (NULL: /dev/null).
 * Returns the pid, or -1. */
pid_t live_fixture_spawn(const char *const *args, const char *out_path, const char *err_path);

/* Waits for `pid`: its exit status, 128 + the signal that ended it, or -1
 * when it is still running after `timeout_s` (it is then killed). */
int live_fixture_wait(pid_t pid, double timeout_s);

/* A whole file as a NUL-terminated string (malloc'd), or NULL. */
char *live_fixture_read(const char *path);

double live_fixture_now_s(void); /* monotonic clock */
void live_fixture_sleep_s(double seconds);

#endif
