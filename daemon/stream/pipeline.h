/*
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
 *
 * The room daemon/stream is this pipeline and what a stream needs around it;
 * its headers are all public (the service and the command line use them):
 *   pipeline.h        samples -> events, offline or live (this file)
 *   audio_file.h      a file or stdin as a source of samples
 *   capture.h         a PortAudio input device
 *   capture_source.h  a capture device feeding a live pipeline ([rt] callback)
 *   sink.h            events and posteriors written as jsonl, rttm, audacity, frames
 */
#ifndef ES_PIPELINE_H
#define ES_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "detect.h"
#include "dsp.h"
#include "event.h"
#include "rnn.h"

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
}
#endif
#endif
