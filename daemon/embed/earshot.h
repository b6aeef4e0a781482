/*
 * earshot.h — voice activity and keyword spotting inside your own program.
 *
 * The one public header of libearshot (libearshot.so.0, libearshot.a; build
 * flags from `pkg-config --cflags --libs earshot`). It runs the same stages
 * as `earshot file` — downmix, resample to 16 kHz, log-mel features, the
 * streaming VAD and keyword networks, the detectors — on samples you hand it,
 * and gives back the same events: for the same audio, the events are exactly
 * the ones `earshot file` prints, however the audio is split into feed calls.
 *
 *     earshot_params params = earshot_params_default(); // built-in models
 *     params.vad_threshold = 0.6f;                        // edit what you need
 *     earshot_detector *det;
 *     char why[256];
 *     if (earshot_create(&params, &det, why, sizeof why) < 0) { puts(why); ... }
 *     while (have_audio)
 *         earshot_feed(det, samples, n_frames, 48000, 2);   // any chunk size
 *     earshot_finish(det);                                  // end of input
 *     const earshot_event *ev;
 *     while ((ev = earshot_poll_event(det)))
 *         printf("%s %.2f-%.2f\n", earshot_event_type_name(ev->type), ev->start, ev->end);
 *     earshot_destroy(det);
 *
 * Threads. A detector is one stream of audio. It keeps no global state and
 * takes no lock: one thread at a time may call into a handle (the thread
 * that "owns" it; handing it to another thread needs the caller's own
 * synchronisation), and different handles run in parallel freely.
 *
 * Real-time rules (DESIGN.md). Each function's comment says one of:
 *   [rt]      may run on an audio thread: no allocation, no lock, no I/O,
 *             no blocking system call. earshot_feed() runs the networks on
 *             the calling thread, so its time grows with the chunk (about
 *             n_frames / rate / x-real-time of this machine, see
 *             `earshot bench`); your callbacks run inside it.
 *   [not rt]  allocates, reads files, or frees: call it from a normal thread.
 *
 * Errors. Calls that can fail return 0 (or a count) on success and a negative
 * EARSHOT_ERR_* code on failure; earshot_strerror() names the code and
 * earshot_last_error() tells the detector's last failure in one sentence
 * ("vad model /x.esm: expects 64 mel bands, front end makes 40"). Nothing in
 * the library prints.
 *
 * ABI. The soname is libearshot.so.<EARSHOT_ABI_VERSION>. earshot_params is
 * allocated by the caller, so any change to its layout is a soname bump;
 * earshot_event and earshot_frame are only read through pointers the
 * library hands out, so fields may be appended to them (never removed or
 * reordered) without one. See README, "Embedding (C and Python)".
 */
#ifndef EARSHOT_H
#define EARSHOT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(EARSHOT_BUILDING) && defined(__GNUC__)
#define EARSHOT_API __attribute__((visibility("default")))
#else
#define EARSHOT_API
#endif

/* The release the header comes from (the project's version), and the ABI
 * (the soname's number). */
#define EARSHOT_VERSION_MAJOR 0
#define EARSHOT_VERSION_MINOR 1
#define EARSHOT_VERSION_PATCH 0
#define EARSHOT_ABI_VERSION 0

/* ---- errors -------------------------------------------------------------------- */

enum {
    EARSHOT_OK = 0,
    EARSHOT_ERR_NOMEM = -1,  /* out of memory */
    EARSHOT_ERR_ARG = -2,    /* a NULL handle or pointer, or a params field out of range */
    EARSHOT_ERR_MODEL = -3,  /* a model cannot be read or used (wrong kind, features, bytes) */
    EARSHOT_ERR_FORMAT = -4, /* a sample rate / channel count not taken, or changed mid-stream */
    EARSHOT_ERR_STATE = -5,  /* a feed after earshot_finish() (earshot_reset() starts over) */
};

/* [rt] A static sentence for any code ("unknown error" for others). */
EARSHOT_API const char *earshot_strerror(int code);

/* ---- version ------------------------------------------------------------------- */

/* [rt] The library's version as "MAJOR.MINOR.PATCH" (static string). */
EARSHOT_API const char *earshot_version_string(void);
/* [rt] MAJOR * 10000 + MINOR * 100 + PATCH, to compare with the header's
 * EARSHOT_VERSION_* macros at run time. */
EARSHOT_API int earshot_version_number(void);

/* ---- events -------------------------------------------------------------------- */

typedef enum earshot_event_type {
    EARSHOT_EVENT_SPEECH = 1,       /* a speech segment [start, end) has ended */
    EARSHOT_EVENT_KEYWORD = 2,      /* a keyword was heard */
    EARSHOT_EVENT_SPEECH_START = 3, /* a segment began and will be kept (opt-in:
                                       params.speech_start_events); no end/score yet */
} earshot_event_type;

/* Times are seconds of stream time: 0 is the first sample fed (since create
 * or earshot_reset), counted in the input's own rate. Read through the
 * pointers the library hands out; fields may be appended in later releases. */
typedef struct earshot_event {
    earshot_event_type type;
    const char *source;  /* params.source; valid until earshot_destroy/earshot_reset */
    const char *keyword; /* keyword events: the model's label (same lifetime); else NULL */
    double time;         /* keyword: when the detector fired; speech_start: when sent;
                            speech: equal to end */
    double start;        /* speech: segment start (padded); keyword: the word's start */
    double end;          /* speech: segment end; keyword: the word's end */
    float score;         /* speech: mean speech probability; keyword: smoothed peak */
    double wallclock;    /* Unix time when the event was made, when params.wallclock;
                            else 0 */
} earshot_event;

/* [rt] "speech", "keyword", "speech_start" (the JSON "type"), or "unknown". */
EARSHOT_API const char *earshot_event_type_name(earshot_event_type type);

/* [rt] The event as one JSON line with '\n', byte for byte what `earshot file`
 * prints for it (DESIGN.md, "Events"). Returns the length, or the length it
 * needs when `size` is too small (like snprintf), or a negative code. */
EARSHOT_API int earshot_event_to_json(const earshot_event *event, char *buf, size_t size);

typedef void (*earshot_event_fn)(const earshot_event *event, void *user);

/* One 10 ms frame's model outputs, before any smoothing (what `earshot file
 * --format frames` prints). Fields may be appended in later releases. */
typedef struct earshot_frame {
    double time;           /* the frame's start, seconds of stream time */
    float speech;          /* the VAD's speech probability */
    int keyword_count;     /* earshot_keyword_count() */
    const float *keywords; /* posteriors in earshot_keyword_name() order */
} earshot_frame;

typedef void (*earshot_frame_fn)(const earshot_frame *frame, void *user);

/* ---- parameters ------------------------------------------------------------------ */

#define EARSHOT_MAX_KWS_MODELS 8
#define EARSHOT_MAX_KEYWORD_SETTINGS 64

/* What a detector is made of. Get the defaults from earshot_params_default()
 * and change fields; strings are copied by earshot_create() (they need not
 * outlive the call). The detector knobs mean what `earshot file`'s flags of
 * the same name mean (`earshot file --help`). Allocated by the caller: its
 * layout is part of the ABI (a change is a soname bump). */
typedef struct earshot_params {
    /* Models: a file path, or NULL / "builtin" for the model compiled into
     * the library. kws_model_count 0 turns keyword spotting off; the default
     * is 1 model, the built-in one (as `earshot file`). */
    const char *vad_model;
    const char *kws_models[EARSHOT_MAX_KWS_MODELS];
    int kws_model_count;

    /* VAD: speech segments (--vad-threshold, --vad-offset-threshold,
     * --min-speech-ms, --min-silence-ms, --max-speech-ms, --speech-pad-ms,
     * --speech-start). vad_offset_threshold < 0: the onset threshold. */
    float vad_threshold;
    float vad_offset_threshold;
    int min_speech_ms;
    int min_silence_ms;
    int max_speech_ms; /* 0: no limit */
    int speech_pad_ms;
    int speech_start_events; /* 1: also EARSHOT_EVENT_SPEECH_START events */

    /* Keywords (--kw-threshold, --kw-smooth-ms, --refractory-ms, --vad-gate,
     * --kw-threshold-for KEYWORD=T). peak_wait_ms: how long a fired keyword
     * waits for its score's peak. A keyword setting's threshold 0 keeps the
     * model's calibrated (or the default) threshold, smooth_ms 0 the default
     * smoothing; a keyword that is no output of the models (see
     * earshot_models_has_label) is an error at create. */
    float kw_threshold;
    int kw_smooth_ms;
    int refractory_ms;
    int vad_gate;
    int peak_wait_ms;
    int keyword_setting_count;
    struct {
        const char *keyword;
        float threshold;
        int smooth_ms;
    } keyword_settings[EARSHOT_MAX_KEYWORD_SETTINGS];

    /* The input. 0, 0: the first earshot_feed() decides (and allocates, so
     * that first feed is not [rt]); set both to have everything made by
     * earshot_create(), and every feed of that format is [rt]. */
    int sample_rate_hz; /* 8000..96000 */
    int channels;       /* 1..64, interleaved */

    /* Events: handed to on_event (on the feeding thread, inside
     * earshot_feed/earshot_finish) and/or queued for earshot_poll_event().
     * A full queue drops its oldest event and counts it
     * (earshot_dropped_events). */
    const char *source; /* "source" of every event ("" by default) */
    int wallclock;      /* 1: events carry their Unix time (live sources) */
    earshot_event_fn on_event;
    void *event_user;
    int event_queue_capacity; /* 256; 0: no queue (callback only) */

    /* Per-frame posteriors, on request: handed to on_frame and/or queued
     * (frame_queue_capacity > 0) for earshot_frames(); a full queue drops
     * its oldest frame and counts it (earshot_dropped_frames). */
    earshot_frame_fn on_frame;
    void *frame_user;
    int frame_queue_capacity; /* 0: none queued (default) */
} earshot_params;

/* [rt] The defaults: built-in VAD and keyword models, the detector settings
 * `earshot file` uses with no flags, an event queue of 256, no frames. */
EARSHOT_API earshot_params earshot_params_default(void);

/* [rt] sizeof(earshot_params) in the library: bindings that mirror the
 * struct (python/earshot) check their copy against it. */
EARSHOT_API size_t earshot_params_size(void);

/* ---- detectors --------------------------------------------------------------------- */

typedef struct earshot_detector earshot_detector;

/* [not rt] Loads the models, checks every setting and makes the detector
 * (and, when params gives the input format, everything the stream needs).
 * Returns 0 with *out set, or a negative code with *out NULL and, when
 * `error` is not NULL, the reason in error[0..error_size). */
EARSHOT_API int earshot_create(const earshot_params *params, earshot_detector **out, char *error,
                               size_t error_size);

/* [not rt] Frees everything; NULL is fine. Events and names handed out die. */
EARSHOT_API void earshot_destroy(earshot_detector *det);

/* ---- shared models ------------------------------------------------------------------ */

/* Models loaded once for many detectors: a program analysing several streams
 * at once (`earshot file -j N`) reads and checks the model files once, not
 * per stream, and holds them in memory once.
 *
 * Threads. A models handle is read-only once loaded: detectors made from it
 * may run on any threads at the same time (inference only reads the
 * weights; each detector has its own state), and earshot_models_has_label
 * may be called from any thread, earshot_create_with_models too (several at
 * once). The handle is reference-counted: each detector made with it holds
 * a reference, earshot_models_release drops the caller's, and the last one
 * to go frees the models. So the caller may release its reference once it
 * has made its detectors, before or after destroying them (the count is
 * atomic: detectors on different threads may be destroyed at once); after
 * releasing, the handle is no longer the caller's to use. */
typedef struct earshot_models earshot_models;

/* [not rt] Loads and checks the models params names: vad_model, kws_models
 * and kws_model_count (as earshot_create does; no other field is read).
 * Returns 0 with *out set (holding one reference, the caller's), or a
 * negative code with *out NULL and the reason in error[0..error_size). */
EARSHOT_API int earshot_models_load(const earshot_params *params, earshot_models **out, char *error,
                                    size_t error_size);

/* [not rt] Drops the caller's reference (the last one frees); NULL is fine. */
EARSHOT_API void earshot_models_release(earshot_models *models);

/* [rt] 1 when `label` is an output of one of the keyword models, the labels
 * params.keyword_settings may name (a filler output's label included: its
 * setting is accepted and changes nothing, as with `earshot file
 * --kw-threshold-for`); 0 otherwise, or for NULL arguments. */
EARSHOT_API int earshot_models_has_label(const earshot_models *models, const char *label);

/* [not rt] earshot_create with the models of `models` in place of the ones
 * params names (params' vad_model, kws_models and kws_model_count are not
 * read). The detector takes its own reference to `models`. */
EARSHOT_API int earshot_create_with_models(const earshot_params *params, earshot_models *models,
                                           earshot_detector **out, char *error, size_t error_size);

/* [rt] once the stream's format is set (see earshot_params.sample_rate_hz),
 * else the first call allocates. Runs `n_frames` frames of interleaved
 * samples (float in [-1, 1]; NaN/inf read as silence, the rest clamped)
 * through every stage; events and frames they complete are delivered or
 * queued before it returns. Any chunk size (0 included); the result never
 * depends on the chunking. `rate` and `channels` must stay the same for the
 * whole stream (EARSHOT_ERR_FORMAT otherwise). */
EARSHOT_API int earshot_feed(earshot_detector *det, const float *samples, size_t n_frames, int rate,
                             int channels);

/* [rt] (same as earshot_feed) 16-bit samples, read as sample / 32768 — what
 * libsndfile gives `earshot file` for 16-bit audio, so results are the same. */
EARSHOT_API int earshot_feed_s16(earshot_detector *det, const int16_t *samples, size_t n_frames,
                                 int rate, int channels);

/* End of input: runs the resampler's tail, closes an open speech segment,
 * sends keywords still waiting for their peak. Feeds then fail with
 * EARSHOT_ERR_STATE until earshot_reset(). Calling it twice is harmless.
 * [rt] for 16 kHz mono input only: when the input is resampled, flushing the
 * resampler's filters allocates (inside libsoxr), so it is [not rt] then. */
EARSHOT_API int earshot_finish(earshot_detector *det);

/* [not rt] Starts a new stream at time 0 with the same models and settings:
 * forgets the recurrent state, the detectors, queued events and frames, and
 * the input format (params' format, when set there, is kept). */
EARSHOT_API int earshot_reset(earshot_detector *det);

/* [rt] The oldest queued event, or NULL when none is waiting. The event
 * stays valid until the next earshot_poll_event/feed/finish/reset/destroy. */
EARSHOT_API const earshot_event *earshot_poll_event(earshot_detector *det);

/* [rt] Takes up to `max_frames` queued frames, oldest first: times_s[i] is
 * frame i's start, posteriors[i * earshot_frame_columns() + c] its column c
 * (0 speech, 1.. keywords); either array may be NULL to skip it. Returns the
 * number taken (0 when none waits), or a negative code. */
EARSHOT_API int earshot_frames(earshot_detector *det, double *times_s, float *posteriors,
                               size_t max_frames);

/* [rt] Columns of earshot_frames(): 1 + earshot_keyword_count(). */
EARSHOT_API int earshot_frame_columns(const earshot_detector *det);

/* [rt] The keywords the models listen for (filler outputs excluded), in
 * frame order; names live until earshot_destroy. NULL out of range. */
EARSHOT_API int earshot_keyword_count(const earshot_detector *det);
EARSHOT_API const char *earshot_keyword_name(const earshot_detector *det, int index);

/* [rt] Seconds of input fed since create / reset. */
EARSHOT_API double earshot_stream_time(const earshot_detector *det);

/* [rt] Events / frames a full queue had to drop since create / reset. */
EARSHOT_API uint64_t earshot_dropped_events(const earshot_detector *det);
EARSHOT_API uint64_t earshot_dropped_frames(const earshot_detector *det);

/* [rt] The detector's last failure as one sentence ("" when none). */
EARSHOT_API const char *earshot_last_error(const earshot_detector *det);

#ifdef __cplusplus
}
#endif
#endif
