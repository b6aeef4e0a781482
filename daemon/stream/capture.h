/*
 * capture — live audio from a PortAudio input device.
 *
 * Opens an input device (by name or index) at its native sample rate and a
 * channel count it supports, as interleaved paFloat32, and hands every buffer
 * to the caller's function on PortAudio's callback thread. Input overflows
 * are counted and reported with the buffer; a stream that stops by itself or
 * stops delivering audio (device unplugged, sound server gone) is reported by
 * es_capture_check() so the caller can quit instead of hanging.
 *
 * PortAudio is initialised once per process with es_capture_init() (it is
 * reference counted; not thread-safe: call it from the main thread). Its
 * host APIs probe every ALSA card and try to reach a JACK server while
 * initialising, and alsa-lib and libjack print what they find on stderr.
 * This library never touches the process's stderr; a command-line front end
 * may redirect it around es_capture_init() (earshot mic and devices do unless
 * --verbose is given).
 *
 * A lost stream (ES_CAPTURE_ERR_LOST or _STALLED from es_capture_check) of
 * any host API but ALSA is abandoned, not closed: PortAudio's JACK host
 * waits ten minutes for a dead server when a stream is stopped or closed,
 * then aborts the process. So after such a loss es_capture_stop/close make
 * no PortAudio call (the callback is told never to call the caller again),
 * the stream's few hundred bytes stay allocated, and es_capture_terminate
 * leaves PortAudio initialised. A lost ALSA stream (device unplugged) is
 * aborted and closed: PortAudio's ALSA stream thread has then ended or waits
 * in poll(), which aborting cancels.
 *
 * Device list: PortAudio enumerates devices once, when it initialises. A
 * device plugged in (or back) later is seen only after
 * es_capture_refresh_devices(), which re-initialises PortAudio; it can do so
 * only while no stream is open in the process (re-initialising invalidates
 * every stream) and nothing was abandoned — the one-device-per-process case
 * of earshot@.service. Opening, closing and refreshing are serialised by a
 * process-wide lock; es_capture_device_get's strings are PortAudio's and
 * become invalid at a refresh.
 *
 * Real-time safety: the callback this module installs only counts, checks a
 * limit and calls the caller's es_capture_fn; that function must itself be
 * [rt] (e.g. es_pipeline_feed with ES_RING_DROP_OLDEST).
 */
#ifndef ES_CAPTURE_H
#define ES_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

enum {
    ES_CAPTURE_OK = 0,
    ES_CAPTURE_ERR_PORTAUDIO = -1, /* PortAudio refused (see `why`) */
    ES_CAPTURE_ERR_NO_DEVICE = -2, /* no input device matches the name or index */
    ES_CAPTURE_ERR_FORMAT = -3,    /* no usable rate / channel count */
    ES_CAPTURE_ERR_NOMEM = -4,
    ES_CAPTURE_ERR_LOST = -5,    /* the stream stopped by itself: device gone */
    ES_CAPTURE_ERR_STALLED = -6, /* no audio for longer than the stall timeout */
    ES_CAPTURE_FINISHED = 1,     /* es_capture_check: the frame limit was reached */
};

/* Initialises / releases PortAudio (reference counted). */
int es_capture_init(es_error *err);
void es_capture_terminate(void);

/* Re-reads the device list (Pa_Terminate + Pa_Initialize), so that a device
 * plugged in since initialisation can be found. Returns 1 when the list was
 * re-read; 0 when it could not be because a stream is open (or was
 * abandoned) in this process or es_capture_init was called more than once
 * (nothing changed); ES_CAPTURE_ERR_PORTAUDIO if PortAudio failed to
 * initialise again (it is then uninitialised; es_capture_open fails). */
int es_capture_refresh_devices(es_error *err);

/* ---- devices --------------------------------------------------------------- */

typedef struct es_capture_device {
    int index;
    const char *name;     /* owned by PortAudio, valid until es_capture_terminate */
    const char *host_api; /* "ALSA", "JACK Audio Connection Kit", ... */
    int max_input_channels;
    double default_rate_hz;
    double default_low_latency_s;
    int is_default; /* the default input device */
} es_capture_device;

/* Number of PortAudio devices (inputs and outputs), or a negative code. */
int es_capture_device_count(void);
/* Fills `device` for PortAudio device `index`; returns 1 if it has inputs,
 * 0 if it is output-only, a negative code if `index` is invalid. */
int es_capture_device_get(int index, es_capture_device *device);

/* Resolves a device spec: NULL or "default" is the default input; a decimal
 * number is a device index; anything else is a name, matched exactly, else
 * as a substring of exactly one input device's name. */
int es_capture_find_device(const char *spec, int *index, es_error *err);

/* ---- streams --------------------------------------------------------------- */

/* [rt] Called on PortAudio's callback thread with `frames` interleaved
 * frames; `input_overflow` is 1 when audio before this buffer was lost. */
typedef void (*es_capture_fn)(const float *interleaved, size_t frames, int input_overflow,
                              void *user);

typedef struct es_capture_config {
    const char *device;              /* spec as in es_capture_find_device; NULL = default */
    double sample_rate_hz;           /* 0: the device's default rate */
    int channels;                    /* 0: up to 2, as the device allows */
    unsigned long frames_per_buffer; /* 0: let PortAudio choose */
    double latency_s;                /* 0: the device's default low input latency */
    double max_seconds;              /* 0: unlimited; else deliver exactly this much audio
                                        (rounded to frames), then finish */
    es_capture_fn on_audio;
    void *user;
} es_capture_config;

void es_capture_config_default(es_capture_config *config);

typedef struct es_capture es_capture;

/* Resolves the device and opens the stream (not started). */
int es_capture_open(const es_capture_config *config, es_capture **out, es_error *err);
/* Stops a running stream (pending buffers are delivered first, unless the
 * device is lost) and closes it. */
void es_capture_close(es_capture *c);

int es_capture_start(es_capture *c, es_error *err);
/* Stops delivering; after it returns the callback never runs again. */
void es_capture_stop(es_capture *c);

/* Health, from any non-callback thread, polled regularly: ES_CAPTURE_OK while
 * audio flows, ES_CAPTURE_FINISHED once max_seconds were delivered, or
 * ES_CAPTURE_ERR_LOST / ES_CAPTURE_ERR_STALLED (no callback for
 * `stall_timeout_ms`; 0 disables that check) with a reason in `err`. */
int es_capture_check(es_capture *c, int stall_timeout_ms, es_error *err);

double es_capture_sample_rate(const es_capture *c);
int es_capture_channels(const es_capture *c);
const char *es_capture_device_name(const es_capture *c);
uint64_t es_capture_frames(const es_capture *c);    /* frames delivered so far */
uint64_t es_capture_overflows(const es_capture *c); /* buffers flagged paInputOverflow */

#endif
