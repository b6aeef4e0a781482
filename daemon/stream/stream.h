/*
 * stream — the room daemon/stream: one stream end to end.
 *
 * A source (an audio file or stdin through libsndfile, or a PortAudio
 * capture device) feeds the pipeline, which runs the front end (dsp/), the
 * models (rnn/) and the detectors (daemon/detect/) and hands events and
 * per-frame posteriors to sinks (JSON lines, RTTM, Audacity labels, frame
 * CSV). Its parts, in this order: audio files, capture devices, the
 * pipeline, the capture source that joins a device to a pipeline, the
 * stream group that consumes many live pipelines on a few threads, and the
 * sinks. `earshot file`, `mic`, the service, the Wyoming server, libearshot
 * and the trainer's calibration all run streams through here.
 */
#ifndef ES_STREAM_H
#define ES_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "detect.h"
#include "dsp.h"
#include "error.h"
#include "rnn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== audio_file ============================================================
 * audio_file — reads any file libsndfile reads (WAV, FLAC, OGG, ...), or a
 * WAV/AU/... stream on stdin ("-"), as interleaved float frames in chunks.
 *
 * Opening checks what earshot can analyse — 8..96 kHz, 1..64 channels — and
 * explains a refusal in words meant for the user ("empty file", "not an
 * audio file: ...", "sample rate 4 Hz is outside 8000-96000 Hz").
 */

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

/* ==== capture ===============================================================
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

/* ==== pipeline ==============================================================
 * pipeline — one audio stream from samples to events (DESIGN.md, "Data flow").
 *
 *   interleaved float samples, any rate / channel count
 *     -> resampler + downmix to 16 kHz mono (dsp)
 *     -> front end: one feature frame per 10 ms (dsp)
 *     -> [live only: lock-free ring of frames]
 *     -> engine: the VAD model's state and each keyword model's state step
 *        one frame (rnn)
 *     -> detectors: speech segments, keyword hits (detect.h)
 *     -> sinks: the caller's event callback and, optionally, a per-frame
 *        posterior callback (for `--format frames`).
 *
 * Two ways to drive it, chosen at create time:
 *
 *   ES_PIPELINE_OFFLINE — one thread does everything: es_pipeline_push() runs
 *   every stage on the samples it is given before returning (the caller is
 *   the back-pressure), es_pipeline_finish() drains the resampler and flushes
 *   the detectors. Events never depend on how the input was split into push
 *   calls (bit-exact for the same build).
 *
 *   ES_PIPELINE_LIVE — two halves on two threads. The producer half
 *   (es_pipeline_feed) only resamples, makes features and pushes frames into
 *   the ring; with ES_RING_DROP_OLDEST it is [rt] and may be called from a
 *   PortAudio callback. The consumer half (es_pipeline_consume), run by a
 *   thread of the caller's, pops frames, steps the models and runs the
 *   detectors and sinks. Events and posteriors are the same as offline for
 *   the same samples as long as no frame was dropped.
 *
 * Input samples that are NaN or infinite are taken as silence and the rest
 * are clamped to full scale [-1, 1], so no source can poison the front end's
 * normalisation or the recurrent state for the rest of a stream.
 *
 * Several pipelines may live in one process: each owns its states, detectors,
 * buffers and FFTW plan; the models are borrowed and only read, so many
 * pipelines may share one es_model.
 *
 * Errors are returned with a reason (es_error); nothing here prints.
 */

/* ---- errors ------------------------------------------------------------------ */

enum {
    ES_PIPELINE_OK = 0,
    ES_PIPELINE_ERR_NOMEM = -1,
    ES_PIPELINE_ERR_CONFIG = -2, /* a config field is invalid (see `why`) */
    ES_PIPELINE_ERR_MODEL = -3,  /* a model is unusable: bad file, wrong features, outputs */
    ES_PIPELINE_ERR_DSP = -4,    /* the resampler or front end refused (see `why`) */
    ES_PIPELINE_ERR_STATE = -5,  /* call not allowed in this mode / after finish */
    ES_PIPELINE_CLOSED = -6,     /* es_pipeline_consume: input closed, all consumed */
};

const char *es_pipeline_strerror(int code);

/* ---- models ------------------------------------------------------------------ */

/* Loads a model for the pipeline: from the file at `path`, or — when `path` is
 * NULL or "builtin" — the model compiled into the binary under `builtin_name`
 * ("vad" or "kws"), which also names the model's role: a "vad" model must
 * have a "speech" output (or only one output). The model's feature spec is
 * checked against `frontend` (NULL: the default front end); errors name the
 * file. The caller destroys *out with es_model_destroy. */
int es_pipeline_load_model(const char *path, const char *builtin_name,
                           const es_frontend_config *frontend, es_model **out, es_error *err);

/* Whether a model can serve as a keyword model: at least one keyword output,
 * and no "speech" output (a VAD model given as a keyword model would report
 * speech as a keyword). `what` names the model in the reason. Pipelines check
 * it at create; commands call it right after loading to fail before any work. */
int es_pipeline_check_keyword_model(const es_model *m, const char *what, es_error *err);

/* The feature spec a model must carry to be fed by `frontend`. */
void es_pipeline_feature_spec(const es_frontend_config *frontend, es_feature_spec *spec);

/* ---- configuration --------------------------------------------------------- */

typedef enum es_pipeline_mode {
    ES_PIPELINE_OFFLINE = 0,
    ES_PIPELINE_LIVE = 1,
} es_pipeline_mode;

/* What the live producer does when the ring is full. */
typedef enum es_ring_policy {
    ES_RING_DROP_OLDEST = 0, /* capture: never block, count the drop ([rt]) */
    ES_RING_WAIT = 1,        /* file or FIFO read by a thread: wait for room */
    /* With ES_RING_WAIT the consumer must keep consuming until it sees
     * ES_PIPELINE_CLOSED, or a feeding producer waits for room forever. */
} es_ring_policy;

/* One frame's model outputs, before any smoothing. */
typedef struct es_frame_posteriors {
    int64_t time_samples;  /* frame start, 16 kHz samples of stream time */
    double time_s;         /* the same in seconds */
    float speech;          /* the VAD model's speech probability */
    int keyword_count;     /* es_pipeline_keyword_count() */
    const float *keywords; /* keyword posteriors, es_pipeline_keyword_label() order */
} es_frame_posteriors;

typedef void (*es_posterior_sink)(const es_frame_posteriors *frame, void *user);

#define ES_PIPELINE_MAX_KWS_MODELS 8

typedef struct es_pipeline_config {
    es_pipeline_mode mode;
    const char *source; /* "source" of every event; copied at create */

    /* Borrowed, read-only, must outlive the pipeline. The VAD model is
     * required; its speech output is the one labelled "speech", or its only
     * output. Keyword models are optional (0..ES_PIPELINE_MAX_KWS_MODELS);
     * their outputs named "filler", "_filler" or "silence" are not keywords. */
    const es_model *vad_model;
    const es_model *kws_models[ES_PIPELINE_MAX_KWS_MODELS];
    int kws_model_count;

    es_frontend_config frontend;
    es_vad_config vad;
    es_kws_config kws;

    /* The input stream. */
    double input_rate_hz;    /* 8000..96000 */
    int input_channels;      /* 1..64, interleaved */
    size_t max_input_frames; /* largest single push/feed that needs no splitting: 4096 */

    /* Live mode only. */
    size_t ring_capacity_frames; /* 512 (5.12 s of audio) */
    es_ring_policy ring_policy;  /* ES_RING_DROP_OLDEST */
    int wallclock;               /* 1: events carry "wallclock" (default 1 live, 0 offline) */

    /* Sinks, called on the thread that runs the models (offline: the pushing
     * thread; live: the consuming thread). Events are passed with `source`
     * set; their strings live until the callback returns. */
    es_event_sink on_event;
    void *event_user;
    es_posterior_sink on_frame; /* NULL: no per-frame output */
    void *frame_user;
} es_pipeline_config;

/* Fills every field with its default (noted above), detector configs via
 * es_vad_config_default / es_kws_config_default; models, source and sinks
 * are NULL. */
void es_pipeline_config_default(es_pipeline_config *config, es_pipeline_mode mode);

/* ---- lifecycle ----------------------------------------------------------------- */

typedef struct es_pipeline es_pipeline;

/* Validates the config (input format, detector knobs, each model's features
 * against the front end, the VAD model's speech output) and makes every
 * buffer, plan, state and detector. */
int es_pipeline_create(const es_pipeline_config *config, es_pipeline **out, es_error *err);
void es_pipeline_destroy(es_pipeline *p);

/* Keyword columns across all keyword models, filler outputs excluded. */
int es_pipeline_keyword_count(const es_pipeline *p);
const char *es_pipeline_keyword_label(const es_pipeline *p, int index);

/* ---- offline ------------------------------------------------------------------- */

/* Runs every stage on `frames` interleaved frames (any count; larger than
 * max_input_frames is split internally). Sinks are called before it returns. */
int es_pipeline_push(es_pipeline *p, const float *interleaved, size_t frames);

/* End of input: drains the resampler, closes an open speech segment. Further
 * pushes fail with ES_PIPELINE_ERR_STATE. */
int es_pipeline_finish(es_pipeline *p);

/* ---- live: producer half ----------------------------------------------------- */

/* Resamples, makes features and pushes frames into the ring. With
 * ES_RING_DROP_OLDEST: [rt], never fails, a full ring drops its oldest frame.
 * With ES_RING_WAIT: sleeps while the ring is full. `frames` may exceed
 * max_input_frames (split internally). */
void es_pipeline_feed(es_pipeline *p, const float *interleaved, size_t frames);

/* [rt] The caller saw its input overflow (e.g. paInputOverflow). */
void es_pipeline_note_input_overflow(es_pipeline *p);

/* End of input, from the producer's thread once feeding has stopped: drains
 * the resampler into the ring and closes it. */
void es_pipeline_close_input(es_pipeline *p);

/* ---- live: consumer half ----------------------------------------------------- */

/* Processes every frame waiting in the ring; when none is waiting, sleeps in
 * short steps for at most `timeout_ms` (0: do not wait) until one arrives.
 * Returns the number of frames processed (0 on timeout), or
 * ES_PIPELINE_CLOSED once the producer closed the input and every frame was
 * processed — the detectors have then been flushed and their last events sent. */
int es_pipeline_consume(es_pipeline *p, int timeout_ms);

/* ---- counters (any thread, any mode) ------------------------------------------- */

typedef struct es_pipeline_stats {
    uint64_t frames_processed; /* frames the models stepped */
    uint64_t ring_drops;       /* live: frames lost to a full ring */
    uint64_t input_overflows;  /* live: es_pipeline_note_input_overflow calls */
    uint64_t events;           /* events sent to on_event */
    /* Live: from the moment the audio that completed an event's last frame
     * was fed to the moment the event was sent, i.e. queueing + model time. */
    uint64_t latency_count;
    double latency_mean_ms;
    double latency_max_ms;
} es_pipeline_stats;

void es_pipeline_get_stats(const es_pipeline *p, es_pipeline_stats *stats);

/* ==== capture_source ========================================================
 * capture_source — a capture device feeding a live pipeline: the one place
 * where PortAudio's callback meets the pipeline (`earshot mic` and the
 * service's device sources both use it).
 *
 * The device is opened first, because the pipeline is made for the format
 * the device gives (es_capture_source_pipeline_input); the pipeline is then
 * handed over at start. From then on PortAudio's callback thread runs the
 * pipeline's producer half (es_capture_source_feed) and the caller's thread
 * consumes (es_pipeline_consume), watches the device (es_capture_check on
 * es_capture_source_capture) and, to stop, ends the input:
 *
 *     es_capture_source_open(&device, &source, &err);
 *     es_capture_source_pipeline_input(source, &config);  ... es_pipeline_create
 *     es_capture_source_start(source, pipeline, &err);
 *     while (es_pipeline_consume(pipeline, ...) != ES_PIPELINE_CLOSED)
 *         if (stopping) es_capture_source_end_input(source);
 *     es_capture_source_close(source);  then es_pipeline_destroy(pipeline)
 *
 * Real-time rules: the callback only notes an input overflow and calls
 * es_pipeline_feed, which with ES_RING_DROP_OLDEST (what
 * es_capture_source_pipeline_input asks for) neither allocates, locks nor
 * waits: a late consumer costs the oldest frames, counted in the pipeline's
 * ring_drops. PortAudio must be initialised (es_capture_init) around it.
 */

typedef struct es_capture_source es_capture_source;

/* Resolves and opens the device `device` names (its on_audio and user are
 * ignored: the source installs its own callback); the stream does not run
 * yet. Errors as es_capture_open (ES_CAPTURE_ERR_NO_DEVICE, ...). */
int es_capture_source_open(const es_capture_config *device, es_capture_source **out, es_error *err);

/* The device's stream, for its name, format, counters and health
 * (es_capture_check). Owned by the source. */
es_capture *es_capture_source_capture(const es_capture_source *source);

/* Fills the input side of a live pipeline's config for this device: its
 * rate and channel count, and a ring that drops its oldest frame when full
 * (capture never waits). */
void es_capture_source_pipeline_input(const es_capture_source *source, es_pipeline_config *config);

/* Starts feeding `pipeline` (live, borrowed until es_capture_source_close). */
int es_capture_source_start(es_capture_source *source, es_pipeline *pipeline, es_error *err);

/* Stops the capture (buffers still pending are fed first, unless the device
 * is lost) and closes the pipeline's input, so that the consumer drains
 * what is left and sees ES_PIPELINE_CLOSED. Once. */
void es_capture_source_end_input(es_capture_source *source);

/* Stops and closes the device; after it returns the callback never runs
 * again, so the pipeline may be destroyed. The pipeline's input is left as
 * it is (a caller that drains it itself closes it after). NULL is a no-op. */
void es_capture_source_close(es_capture_source *source);

/* [rt] The es_capture_fn every capture source installs. `pipeline_slot`
 * points at the es_pipeline * to feed, set before the capture starts. Public
 * so that tests can watch the very callback the sources run. */
void es_capture_source_feed(const float *interleaved, size_t frames, int input_overflow,
                            void *pipeline_slot);

/* ==== stream_group ==========================================================
 * stream_group — many live pipelines served by a few engine threads, instead
 * of a consumer thread each (a server watching hundreds of calls).
 *
 * A pipeline joins the group once created (live mode) and its producer half
 * is fed as usual; from then on an engine thread of the group is its
 * consumer. Each engine loops over its pipelines: it takes the frames
 * waiting in every ring and steps the models in rounds, frame r of every
 * pipeline that has one together, one batched step (es_model_step_batch)
 * per model for all the pipelines that run it — so each weight is read
 * once per block of streams, not once per stream — then runs each
 * pipeline's detectors over its frames. Every pipeline keeps its own
 * states, detectors, events, counters and latency (es_pipeline_get_stats),
 * and its posteriors and events are bit-identical to those
 * es_pipeline_consume makes. Pipelines of different models (say, across a
 * model reload) may share a group: each model steps its own cohort.
 *
 * One engine per core to use; a pipeline goes to the engine with the
 * fewest. An idle engine looks for frames every 2 ms (one without
 * pipelines sleeps until one joins). The sinks and on_pass run on the
 * engine thread, must not block long (they hold up every stream of the
 * engine) and must not call into the group.
 */

#define ES_STREAM_GROUP_MAX_ENGINES 64

enum {
    ES_STREAM_GROUP_ERR_NOMEM = -1,
    ES_STREAM_GROUP_ERR_ARG = -2,    /* engine count out of range, or an offline pipeline */
    ES_STREAM_GROUP_ERR_THREAD = -3, /* an engine thread could not start */
};

typedef struct es_stream_group es_stream_group;

/* Starts `engines` engine threads (1..ES_STREAM_GROUP_MAX_ENGINES), each
 * named "es-engine" (ps -L, top -H). */
int es_stream_group_create(int engines, es_stream_group **out, es_error *err);
/* Stops the engines. Every pipeline must have been removed. NULL is a no-op. */
void es_stream_group_destroy(es_stream_group *g);

/* Called on the engine thread after each of its passes (at least every few
 * ms, busy or not), e.g. to beat a watchdog's heartbeat. */
typedef void (*es_stream_pass_fn)(void *user);

/* Hands a live pipeline's consumer half to an engine; the caller no longer
 * calls es_pipeline_consume on it. `on_pass` may be NULL. The pipeline
 * stays the caller's, borrowed until es_stream_group_remove. */
int es_stream_group_add(es_stream_group *g, es_pipeline *p, es_stream_pass_fn on_pass, void *user,
                        es_error *err);

/* Takes the pipeline back; after it returns the engine never touches it.
 * With `drain` (its input closed with es_pipeline_close_input first), waits
 * until every frame was consumed and the detectors flushed, their last
 * events sent — what ES_PIPELINE_CLOSED from es_pipeline_consume means.
 * Without, frames still in the ring stay there. A pipeline not in the group
 * is a no-op. Returns 0, or the negative es_pipeline code with which the
 * pipeline refused to be consumed (what es_pipeline_consume would have
 * returned): the engine stopped consuming it then, so a drain still ends. */
int es_stream_group_remove(es_stream_group *g, es_pipeline *p, int drain);

typedef struct es_stream_group_stats {
    int streams;            /* pipelines in the group now */
    uint64_t passes;        /* engine passes so far, all engines */
    uint64_t frames;        /* frames consumed */
    uint64_t batches;       /* batched model steps */
    uint64_t batch_streams; /* streams in them: batch_streams / batches is the mean batch */
    double engine_cpu_s;    /* CPU time the engine threads used */
} es_stream_group_stats;

void es_stream_group_get_stats(es_stream_group *g, es_stream_group_stats *stats);

/* ==== sink ==================================================================
 * Sinks: where `earshot file` (and anyone else) writes a pipeline's results.
 *
 *   jsonl     one event per line (DESIGN.md, "Events"), flushed per event
 *   rttm      speech segments: SPEAKER <file-id> 1 <start> <dur> <NA> <NA> speech <NA> <NA>
 *   audacity  label track: start<TAB>end<TAB>label (speech or the keyword)
 *   frames    CSV: time_s,speech,<keyword>,... one row per frame, raw posteriors
 *
 * speech_start events (opt-in, detect.h) appear only in jsonl; the other
 * formats ignore them.
 *
 * A sink writes to a FILE it borrows; es_sink_attach() points a pipeline
 * config's callbacks at it, so formats that need events get events and
 * `frames` gets posteriors.
 */

typedef enum es_output_format {
    ES_FORMAT_JSONL = 0,
    ES_FORMAT_RTTM = 1,
    ES_FORMAT_AUDACITY = 2,
    ES_FORMAT_FRAMES = 3,
} es_output_format;

/* "jsonl", "rttm", "audacity", "frames"; returns 0, or -1 for another name. */
int es_output_format_parse(const char *name, es_output_format *format);
const char *es_output_format_name(es_output_format format);

typedef struct es_sink es_sink;

/* `file_id` names the recording in RTTM lines (copied; whitespace, control
 * bytes and '%' percent-encoded, e.g. "my file" -> "my%20file", so a line
 * always has its 10 fields). Returns 0 or -1 (no memory). */
int es_sink_create(es_output_format format, FILE *out, const char *file_id, es_sink **sink);
void es_sink_destroy(es_sink *sink);

/* Sets config->on_event / on_frame (and their user pointers) for this format. */
void es_sink_attach(es_sink *sink, es_pipeline_config *config);

/* Writes what comes before the first result: the CSV header for `frames`
 * (keyword columns from the pipeline), nothing for the other formats. */
void es_sink_begin(es_sink *sink, const es_pipeline *pipeline);
/* The same for a caller without an es_pipeline (`earshot file` runs through
 * earshot.h): the keyword columns are keywords[0..count). */
void es_sink_begin_keywords(es_sink *sink, const char *const *keywords, int count);

/* Callbacks (es_event_sink / es_posterior_sink), `user` is the es_sink. */
void es_sink_event(const es_event *event, void *user);
void es_sink_frame(const es_frame_posteriors *frame, void *user);

/* Flushes; returns 0, or -1 when any write failed (disk full, closed pipe). */
int es_sink_end(es_sink *sink);

#ifdef __cplusplus
}
#endif
#endif
