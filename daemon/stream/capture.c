/*
 * PortAudio input streams (stream.h).
 */
#include "clock.h"
#include "stream.h"

#include <portaudio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Streams given up after their device vanished; PortAudio must then not be
 * terminated (see stream.h). Process-wide like PortAudio itself. */
static atomic_int abandoned_streams;

/* Serialises PortAudio's lifecycle (es_capture_refresh_devices) against
 * opening and closing streams, which workers of several sources may do at
 * once. `open_streams` counts streams opened and not yet closed (abandoned
 * ones included); `initialised` counts es_capture_init calls not yet
 * terminated. Both under `pa_lock`. */
static pthread_mutex_t pa_lock = PTHREAD_MUTEX_INITIALIZER;
static int open_streams;
static int initialised;

/* Above this the pipeline refuses the input anyway (es_pipeline_config). */
#define ES_CAPTURE_MAX_CHANNELS 64
#define ES_CAPTURE_NAME_BYTES 128

struct es_capture {
    PaStream *stream;
    es_capture_fn on_audio;
    void *user;
    uint64_t max_frames;
    double sample_rate_hz;
    int channels;
    char device_name[ES_CAPTURE_NAME_BYTES];
    int alsa; /* the device is ALSA's: a lost stream can be closed */

    int running;                 /* started and not yet stopped by us */
    int lost;                    /* es_capture_check saw the device go */
    atomic_uint_fast64_t frames; /* written by the callback only */
    atomic_uint_fast64_t overflows;
    atomic_int finished;    /* PortAudio's stream-finished callback ran */
    atomic_int abandoned;   /* lost: the callback must not touch the caller's state */
    atomic_int in_callback; /* the callback is running (0 or 1) */

    /* es_capture_check's own memory (one checking thread). */
    uint64_t frames_at_last_check;
    int64_t progress_ns;
};

int es_capture_init(es_error *err) {
    pthread_mutex_lock(&pa_lock);
    PaError pa = Pa_Initialize();
    if (pa == paNoError) initialised++;
    pthread_mutex_unlock(&pa_lock);
    if (pa != paNoError)
        return es_error_set(err, ES_CAPTURE_ERR_PORTAUDIO, "cannot initialise PortAudio: %s",
                            Pa_GetErrorText(pa));
    return ES_CAPTURE_OK;
}

void es_capture_terminate(void) {
    pthread_mutex_lock(&pa_lock);
    if (initialised > 0) {
        initialised--;
        if (atomic_load(&abandoned_streams) == 0) Pa_Terminate();
    }
    pthread_mutex_unlock(&pa_lock);
}

int es_capture_refresh_devices(es_error *err) {
    pthread_mutex_lock(&pa_lock);
    int rc = 0;
    if (initialised != 1 || open_streams > 0 || atomic_load(&abandoned_streams) > 0) {
        rc = 0;
    } else {
        Pa_Terminate();
        PaError pa = Pa_Initialize();
        if (pa == paNoError) {
            rc = 1;
        } else {
            initialised = 0;
            rc = es_error_set(err, ES_CAPTURE_ERR_PORTAUDIO,
                              "cannot initialise PortAudio again: %s", Pa_GetErrorText(pa));
        }
    }
    pthread_mutex_unlock(&pa_lock);
    return rc;
}

/* ---- devices ------------------------------------------------------------------- */

int es_capture_device_count(void) {
    int count = Pa_GetDeviceCount();
    return count < 0 ? ES_CAPTURE_ERR_PORTAUDIO : count;
}

int es_capture_device_get(int index, es_capture_device *device) {
    const PaDeviceInfo *info = index >= 0 ? Pa_GetDeviceInfo(index) : NULL;
    if (!info) return ES_CAPTURE_ERR_NO_DEVICE;
    const PaHostApiInfo *api = Pa_GetHostApiInfo(info->hostApi);
    device->index = index;
    device->name = info->name;
    device->host_api = api ? api->name : "?";
    device->max_input_channels = info->maxInputChannels;
    device->default_rate_hz = info->defaultSampleRate;
    device->default_low_latency_s = info->defaultLowInputLatency;
    device->is_default = index == Pa_GetDefaultInputDevice();
    return info->maxInputChannels > 0;
}

static int parse_index(const char *spec, int *index) {
    if (!spec[0] || strlen(spec) > 6) return 0;
    for (const char *c = spec; *c; c++)
        if (*c < '0' || *c > '9') return 0;
    *index = atoi(spec);
    return 1;
}

static int find_by_name(const char *spec, int *index, es_error *err) {
    int count = es_capture_device_count();
    int substring_matches = 0;
    int substring_index = -1;
    for (int i = 0; i < count; i++) {
        es_capture_device d;
        if (es_capture_device_get(i, &d) != 1) continue;
        if (strcmp(d.name, spec) == 0) {
            *index = i;
            return ES_CAPTURE_OK;
        }
        if (strstr(d.name, spec)) {
            substring_matches++;
            substring_index = i;
        }
    }
    if (substring_matches == 1) {
        *index = substring_index;
        return ES_CAPTURE_OK;
    }
    if (substring_matches > 1)
        return es_error_set(err, ES_CAPTURE_ERR_NO_DEVICE,
                            "'%s' matches %d input devices; give the full name or the index "
                            "(see earshot devices)",
                            spec, substring_matches);
    return es_error_set(err, ES_CAPTURE_ERR_NO_DEVICE,
                        "no input device named '%s' (see earshot devices)", spec);
}

int es_capture_find_device(const char *spec, int *index, es_error *err) {
    if (!spec || strcmp(spec, "default") == 0) {
        /* An exact "default" device (ALSA's) wins over PortAudio's notion. */
        if (spec && find_by_name(spec, index, NULL) == ES_CAPTURE_OK) return ES_CAPTURE_OK;
        *index = Pa_GetDefaultInputDevice();
        if (*index == paNoDevice)
            return es_error_set(err, ES_CAPTURE_ERR_NO_DEVICE, "there is no default input device");
        return ES_CAPTURE_OK;
    }
    int wanted;
    if (parse_index(spec, &wanted)) {
        es_capture_device d;
        int rc = es_capture_device_get(wanted, &d);
        if (rc < 0)
            return es_error_set(err, ES_CAPTURE_ERR_NO_DEVICE,
                                "no device with index %s (see earshot devices)", spec);
        if (rc == 0)
            return es_error_set(err, ES_CAPTURE_ERR_NO_DEVICE, "device %s (%s) has no inputs", spec,
                                d.name);
        *index = wanted;
        return ES_CAPTURE_OK;
    }
    return find_by_name(spec, index, err);
}

/* ---- streams ------------------------------------------------------------------ */

void es_capture_config_default(es_capture_config *config) {
    memset(config, 0, sizeof *config);
}

static int deliver(es_capture *c, const void *input, unsigned long frames,
                   PaStreamCallbackFlags status) {
    int overflow = (status & paInputOverflow) != 0;
    if (overflow) atomic_fetch_add_explicit(&c->overflows, 1, memory_order_relaxed);
    uint64_t delivered = atomic_load_explicit(&c->frames, memory_order_relaxed);
    uint64_t count = frames;
    if (c->max_frames) {
        if (delivered >= c->max_frames) return paComplete;
        if (count > c->max_frames - delivered) count = c->max_frames - delivered;
    }
    if (input && count > 0) c->on_audio(input, (size_t)count, overflow, c->user);
    atomic_store_explicit(&c->frames, delivered + count, memory_order_release);
    if (c->max_frames && delivered + count >= c->max_frames) return paComplete;
    return paContinue;
}

static int capture_callback(const void *input, void *output, unsigned long frames,
                            const PaStreamCallbackTimeInfo *time_info, PaStreamCallbackFlags status,
                            void *user) {
    (void)output;
    (void)time_info;
    es_capture *c = user;
    /* Sequentially consistent with es_capture_stop's store and load: either
     * it sees this callback running, or this callback sees it abandoned. */
    atomic_store(&c->in_callback, 1);
    int result = atomic_load(&c->abandoned) ? paAbort : deliver(c, input, frames, status);
    atomic_store(&c->in_callback, 0);
    return result;
}

static void stream_finished(void *user) {
    es_capture *c = user;
    atomic_store_explicit(&c->finished, 1, memory_order_release);
}

static int supported(int device, int channels, double rate, PaTime latency_s) {
    PaStreamParameters params = {
        .device = device,
        .channelCount = channels,
        .sampleFormat = paFloat32,
        .suggestedLatency = latency_s,
    };
    return Pa_IsFormatSupported(&params, NULL, rate) == paFormatIsSupported;
}

/* The device's own rate first: resampling is ours (dsp), never the driver's. */
static int choose_format(const es_capture_config *config, const es_capture_device *d,
                         PaTime latency_s, double *rate, int *channels, es_error *err) {
    double rates[] = {config->sample_rate_hz, d->default_rate_hz, 48000, 44100, 16000};
    int rate_count = config->sample_rate_hz > 0 ? 1 : 5;
    int max = d->max_input_channels;
    int preferred = max < 2 ? max : 2;
    int channel_options[] = {config->channels, preferred, max, 1};
    int channel_count = config->channels > 0 ? 1 : 4;
    for (int r = config->sample_rate_hz > 0 ? 0 : 1; r < rate_count; r++) {
        for (int ch = config->channels > 0 ? 0 : 1; ch < channel_count; ch++) {
            int n = channel_options[ch];
            if (n < 1 || n > ES_CAPTURE_MAX_CHANNELS || n > max) continue;
            if (supported(d->index, n, rates[r], latency_s)) {
                *rate = rates[r];
                *channels = n;
                return ES_CAPTURE_OK;
            }
        }
    }
    if (config->sample_rate_hz > 0 || config->channels > 0)
        return es_error_set(
            err, ES_CAPTURE_ERR_FORMAT,
            "%s cannot capture float samples at %.0f Hz with %d channel(s)", d->name,
            config->sample_rate_hz > 0 ? config->sample_rate_hz : d->default_rate_hz,
            config->channels > 0 ? config->channels : preferred);
    return es_error_set(err, ES_CAPTURE_ERR_FORMAT, "%s supports no float format earshot can use",
                        d->name);
}

static int open_locked(const es_capture_config *config, es_capture **out, es_error *err);

int es_capture_open(const es_capture_config *config, es_capture **out, es_error *err) {
    *out = NULL;
    if (!config->on_audio)
        return es_error_set(err, ES_CAPTURE_ERR_FORMAT, "no audio callback given");
    pthread_mutex_lock(&pa_lock);
    int rc = initialised > 0
                 ? open_locked(config, out, err)
                 : es_error_set(err, ES_CAPTURE_ERR_PORTAUDIO, "PortAudio is not initialised");
    pthread_mutex_unlock(&pa_lock);
    return rc;
}

static void close_locked(es_capture *c);

static int open_locked(const es_capture_config *config, es_capture **out, es_error *err) {
    int index;
    int rc = es_capture_find_device(config->device, &index, err);
    if (rc != ES_CAPTURE_OK) return rc;
    es_capture_device d;
    if (es_capture_device_get(index, &d) < 0)
        return es_error_set(err, ES_CAPTURE_ERR_NO_DEVICE, "no device with index %d", index);
    PaTime latency_s = config->latency_s > 0 ? config->latency_s : d.default_low_latency_s;
    double rate = 0.0;
    int channels = 0;
    rc = choose_format(config, &d, latency_s, &rate, &channels, err);
    if (rc != ES_CAPTURE_OK) return rc;

    es_capture *c = calloc(1, sizeof *c);
    if (!c) return es_error_set(err, ES_CAPTURE_ERR_NOMEM, "out of memory");
    c->on_audio = config->on_audio;
    c->user = config->user;
    c->max_frames = config->max_seconds > 0 ? (uint64_t)(config->max_seconds * rate + 0.5) : 0;
    c->sample_rate_hz = rate;
    c->channels = channels;
    snprintf(c->device_name, sizeof c->device_name, "%s", d.name);
    const PaDeviceInfo *info = Pa_GetDeviceInfo(index);
    const PaHostApiInfo *api = info ? Pa_GetHostApiInfo(info->hostApi) : NULL;
    c->alsa = api && api->type == paALSA;
    atomic_init(&c->frames, 0);
    atomic_init(&c->overflows, 0);
    atomic_init(&c->finished, 0);
    atomic_init(&c->abandoned, 0);
    atomic_init(&c->in_callback, 0);

    PaStreamParameters params = {
        .device = index,
        .channelCount = channels,
        .sampleFormat = paFloat32,
        .suggestedLatency = latency_s,
    };
    unsigned long per_buffer =
        config->frames_per_buffer ? config->frames_per_buffer : paFramesPerBufferUnspecified;
    PaError pa =
        Pa_OpenStream(&c->stream, &params, NULL, rate, per_buffer, paClipOff, capture_callback, c);
    if (pa == paNoError) open_streams++;
    if (pa == paNoError) pa = Pa_SetStreamFinishedCallback(c->stream, stream_finished);
    if (pa != paNoError) {
        es_error_set(err, ES_CAPTURE_ERR_PORTAUDIO, "cannot open %s at %.0f Hz, %d channel(s): %s",
                     d.name, rate, channels, Pa_GetErrorText(pa));
        close_locked(c);
        return ES_CAPTURE_ERR_PORTAUDIO;
    }
    *out = c;
    return ES_CAPTURE_OK;
}

int es_capture_start(es_capture *c, es_error *err) {
    c->frames_at_last_check = atomic_load(&c->frames);
    c->progress_ns = es_monotonic_ns();
    PaError pa = Pa_StartStream(c->stream);
    if (pa != paNoError)
        return es_error_set(err, ES_CAPTURE_ERR_PORTAUDIO, "cannot start %s: %s", c->device_name,
                            Pa_GetErrorText(pa));
    c->running = 1;
    return ES_CAPTURE_OK;
}

void es_capture_stop(es_capture *c) {
    if (!c->running) return;
    c->running = 0;
    if (c->lost) {
        /* The callback must not call the caller again; one already past
         * its check is let finish, for a bounded time: ours never blocks. */
        atomic_store(&c->abandoned, 1);
        for (int waited_ms = 0; atomic_load(&c->in_callback) && waited_ms < 500; waited_ms++) {
            struct timespec pause = {0, 1000000};
            nanosleep(&pause, NULL);
        }
        /* No PortAudio call for a lost stream (stream.h), except ALSA's:
         * its stream thread has ended by itself or waits in poll(), and
         * aborting cancels it without waiting on the device. */
        if (c->alsa) Pa_AbortStream(c->stream);
        return;
    }
    /* A stream that ended by itself (max_seconds) has nothing to drain. */
    if (atomic_load_explicit(&c->finished, memory_order_acquire) ||
        Pa_IsStreamActive(c->stream) != 1)
        Pa_AbortStream(c->stream);
    else
        Pa_StopStream(c->stream);
}

static void close_locked(es_capture *c) {
    es_capture_stop(c);
    if (c->lost && !c->alsa) {
        /* PortAudio keeps a pointer to `c`: it stays allocated. */
        atomic_fetch_add(&abandoned_streams, 1);
        return;
    }
    if (c->stream) {
        Pa_CloseStream(c->stream);
        open_streams--;
    }
    free(c);
}

void es_capture_close(es_capture *c) {
    if (!c) return;
    pthread_mutex_lock(&pa_lock);
    close_locked(c);
    pthread_mutex_unlock(&pa_lock);
}

static int lose(es_capture *c, es_error *err, int code, const char *why) {
    c->lost = 1;
    return es_error_set(err, code, "%s %s", c->device_name, why);
}

int es_capture_check(es_capture *c, int stall_timeout_ms, es_error *err) {
    uint64_t frames = atomic_load_explicit(&c->frames, memory_order_acquire);
    if (c->max_frames && frames >= c->max_frames) return ES_CAPTURE_FINISHED;
    if (c->lost) return es_error_set(err, ES_CAPTURE_ERR_LOST, "%s is gone", c->device_name);
    if (!c->running) return ES_CAPTURE_OK;
    PaError active = Pa_IsStreamActive(c->stream);
    if (active < 0) return lose(c, err, ES_CAPTURE_ERR_LOST, Pa_GetErrorText(active));
    if (active == 0 || atomic_load_explicit(&c->finished, memory_order_acquire))
        return lose(c, err, ES_CAPTURE_ERR_LOST,
                    "stopped delivering audio (device unplugged or sound server gone?)");
    int64_t now = es_monotonic_ns();
    if (frames != c->frames_at_last_check) {
        c->frames_at_last_check = frames;
        c->progress_ns = now;
    } else if (stall_timeout_ms > 0 && now - c->progress_ns > (int64_t)stall_timeout_ms * 1000000) {
        char why[64];
        snprintf(why, sizeof why, "delivered no audio for %d ms", stall_timeout_ms);
        return lose(c, err, ES_CAPTURE_ERR_STALLED, why);
    }
    return ES_CAPTURE_OK;
}

double es_capture_sample_rate(const es_capture *c) {
    return c->sample_rate_hz;
}

int es_capture_channels(const es_capture *c) {
    return c->channels;
}

const char *es_capture_device_name(const es_capture *c) {
    return c->device_name;
}

uint64_t es_capture_frames(const es_capture *c) {
    return atomic_load_explicit(&c->frames, memory_order_acquire);
}

uint64_t es_capture_overflows(const es_capture *c) {
    return atomic_load_explicit(&c->overflows, memory_order_relaxed);
}
