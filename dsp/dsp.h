/*
 * dsp — samples in, feature frames out.
 *
 * The front end turns 16 kHz mono float samples into one feature frame per
 * 10 ms hop: 25 ms Hann window, FFTW single-precision r2c of 512 points,
 * power spectrum, 40 log-mel bands (HTK mel scale: 2595 log10(1 + f/700)),
 * then a streaming normalisation that removes the input gain.
 *
 * Around it: a streaming resampler (libsoxr) from any rate to 16 kHz with a
 * downmix of interleaved channels, and a lock-free single-producer /
 * single-consumer ring that carries frames between threads.
 *
 * For the model factory (models/train/), whole clips held in memory: a
 * one-shot resampler (speed changes, synthesised speech to 16 kHz), linear
 * convolution and a band-pass filter, both done with FFTs. All FFT and
 * resampling of the project lives here: no other module includes fftw3.h or
 * soxr.h.
 *
 * This module knows samples and frames only: no files, devices, networks or
 * thread policy.
 *
 * Real-time safety: every *_create() may allocate and fail. Every call marked
 * [rt] touches only memory that exists already, never locks, logs or blocks,
 * and may be called from an audio callback.
 */
#ifndef ES_DSP_H
#define ES_DSP_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ------------------------------------------------------------ */

enum {
    ES_DSP_OK = 0,
    ES_DSP_ERR_NOMEM = -1,
    ES_DSP_ERR_CONFIG = -2,    /* a config field is out of its documented range */
    ES_DSP_ERR_RESAMPLER = -3, /* libsoxr refused the conversion */
    ES_DSP_ERR_FULL = -4,      /* ring: no room */
    ES_DSP_ERR_EMPTY = -5,     /* ring: nothing to pop */
    ES_DSP_ERR_CLOSED = -6,    /* ring: producer closed and ring drained */
};

/* A static English sentence for an ES_DSP_* code. */
const char *es_dsp_strerror(int code);

/* FFTW's planner (fftwf_plan_*, fftwf_destroy_plan) is not thread-safe; only
 * fftwf_execute is. Every call here that makes or destroys plans (the front
 * end's create/destroy, the whole-clip filters below) takes this lock, and so
 * must any other code in the process that makes FFTW plans while dsp calls
 * may run on other threads. */
void es_dsp_fftw_planner_lock(void);
void es_dsp_fftw_planner_unlock(void);

/* ---- feature frames ---------------------------------------------------- */

#define ES_MAX_MEL_BANDS 64

/* One 10 ms feature frame. `time_samples` is the index, in 16 kHz samples of
 * stream time, of the first sample of the frame's window. */
typedef struct es_frame {
    int64_t time_samples;
    float features[ES_MAX_MEL_BANDS]; /* first `mel_bands` are used */
} es_frame;

/* ---- front end -----------------------------------------------------------
 *
 * Exactly what a frame holds (defaults in brackets):
 * - window: the last window_samples [400] samples times a periodic Hann
 *   window, 0.5 - 0.5 cos(2 pi n / N), zero-padded at the end to fft_size
 *   [512]; frame k starts at sample k * hop_samples [160].
 * - power: |X[k]|^2 of the unnormalised r2c FFT, bins 0 .. fft_size / 2.
 *   Samples are floats in [-1, 1]; a full-scale sine peaks near 1e4.
 * - mel: mel_bands [40] triangles on the HTK mel scale
 *   m(f) = 2595 log10(1 + f / 700): mel_bands + 2 edges equally spaced in m
 *   from mel_low_hz [20] to mel_high_hz [7600]; band b rises from edge b to
 *   1 at edge b + 1 and falls to 0 at edge b + 2. Normalisation: each band's
 *   weights sum to 1, so a band is the weighted MEAN power of its bins (not
 *   Slaney's equal-area scaling; a constant offset in log either way). Every
 *   bin strictly between mel_low_hz and mel_high_hz has a weight in some band.
 * - log: natural log of (band power + power_floor).
 * - ES_NORM_RUNNING_MEAN: per band, mean = a * mean + (1 - a) * x with
 *   a = exp(-hop / (rate * norm_time_constant_s)), started at the first
 *   frame's value; the feature is x - mean. A constant input gain g adds
 *   2 ln g to every x and so cancels, except where the power floor is not
 *   negligible (tests/dsp/test_frontend.c: -20 dB changes features by ~1e-5
 *   on average and ~1e-3 at most on bands near 1e-7 power).
 * Features [mel_bands .. ES_MAX_MEL_BANDS) of a frame are 0.
 */

typedef enum es_normalisation {
    ES_NORM_NONE = 0,         /* plain log-mel (natural log of power + floor) */
    ES_NORM_RUNNING_MEAN = 1, /* subtract a per-band exponential running mean */
} es_normalisation;

typedef struct es_frontend_config {
    int sample_rate_hz; /* 16000 */
    int window_samples; /* 400 (25 ms) */
    int hop_samples;    /* 160 (10 ms) */
    int fft_size;       /* 512 */
    int mel_bands;      /* 40, at most ES_MAX_MEL_BANDS */
    float mel_low_hz;   /* 20 */
    float mel_high_hz;  /* 7600 */
    float power_floor;  /* 1e-10: added before the log, keeps silence finite */
    es_normalisation normalisation;
    float norm_time_constant_s; /* 3.0: memory of the running mean */
} es_frontend_config;

void es_frontend_config_default(es_frontend_config *config);

typedef struct es_frontend es_frontend;

/* Called for each finished frame, in order, from inside es_frontend_process. */
typedef void (*es_frame_sink)(const es_frame *frame, void *user);

/* Builds windows, the mel filterbank and the FFTW plan (plans are made under
 * a process-wide lock, as FFTW's planner is not thread-safe). Returns
 * ES_DSP_ERR_CONFIG for a field out of range or a band so narrow that no
 * FFT bin falls inside it. */
int es_frontend_create(const es_frontend_config *config, es_frontend **out);
void es_frontend_destroy(es_frontend *fe);

/* [rt] Pushes `count` samples (any count, 0 included); emits every frame that
 * is now complete. Frames depend only on the sample sequence, never on how it
 * was split into calls (bit-exact). */
void es_frontend_process(es_frontend *fe, const float *samples, size_t count, es_frame_sink sink,
                         void *user);

/* [rt] Forgets all samples and normalisation state; stream time restarts at 0. */
void es_frontend_reset(es_frontend *fe);

const es_frontend_config *es_frontend_get_config(const es_frontend *fe);

/* The filterbank, for tests and plots: weight of FFT bin `bin` in band `band`. */
float es_frontend_mel_weight(const es_frontend *fe, int band, int bin);

/* ---- resampler + downmix ------------------------------------------------- */

typedef struct es_resampler es_resampler;

/* Converts interleaved float input at `input_rate_hz` with `channels`
 * channels to mono at `output_rate_hz` (libsoxr, high quality, one thread).
 * Rates are whole hertz in [1000, 1e6]; channels 1..64; mono is the plain
 * mean of the channels. Equal rates skip soxr and only downmix.
 * `max_input_frames` bounds one call's input so that all buffers are made
 * here. Creation runs ~1 s of silence through soxr (a few ms of CPU) so that
 * its lazy allocations happen here and not in process; the output stays
 * aligned: output sample j is stream time j / output_rate_hz. */
int es_resampler_create(double input_rate_hz, int channels, double output_rate_hz,
                        size_t max_input_frames, es_resampler **out);
void es_resampler_destroy(es_resampler *rs);

/* [rt] Consumes `input_frames` interleaved frames (<= max_input_frames) and
 * writes mono samples; returns how many it wrote, or a negative ES_DSP_*
 * code. `output_capacity` must be at least
 * es_resampler_output_bound(rs, input_frames), else ES_DSP_ERR_CONFIG is
 * returned and nothing is consumed; so nothing is ever truncated.
 * Input is regrouped in fixed 10 ms blocks internally, so output does not
 * depend on how the input was split into calls. soxr emits in bursts: expect
 * 0 samples from some calls and several blocks' worth from others, and a
 * latency of tens of milliseconds. */
long es_resampler_process(es_resampler *rs, const float *input, size_t input_frames, float *output,
                          size_t output_capacity);

/* End of stream: flushes the last partial block and the filters' tail into
 * `output` (any capacity > 0). Call it until it returns 0; then the stream's
 * total output is its input length times the rate ratio. After the first
 * drain, process is refused. Same return as process. */
long es_resampler_drain(es_resampler *rs, float *output, size_t output_capacity);

/* Most samples one process call with `input_frames` frames can write; it
 * does not depend on earlier calls, so a buffer sized with max_input_frames
 * once serves every call. Generous (soxr's largest burst per 10 ms block). */
size_t es_resampler_output_bound(const es_resampler *rs, size_t input_frames);

/* ---- whole clips (offline) -------------------------------------------------
 * For clips held in memory, such as training data: every call allocates
 * (and the filters make FFTW plans under the planner lock), so none of them
 * is [rt]. They may run on several threads at once. On failure they return a
 * negative ES_DSP_* code, fill `err` (which may be NULL) and leave their
 * output untouched. */

/* How es_resample_clip trades quality for speed: two of libsoxr's recipes. */
typedef enum es_clip_resample_quality {
    /* Cubic interpolation, no anti-aliasing filter (soxr "QQ"): the cheapest;
     * downsampling folds what lies above the new Nyquist frequency back. */
    ES_CLIP_RESAMPLE_QUICK = 0,
    /* A 16-bit polyphase filter with a wide roll-off (soxr "LQ"; the
     * streaming resampler above uses soxr's 20-bit "HQ"). */
    ES_CLIP_RESAMPLE_LOW = 1,
} es_clip_resample_quality;

/* Resamples `count` mono samples from input_rate_hz to output_rate_hz (any
 * rates > 0, fractional ones included: a speed change plays a clip as if it
 * had been recorded at factor x its rate) in one go, the filter's delay
 * removed. Writes a new buffer of about count * output / input rate samples
 * to *out (release it with free()) and its length to *out_count.
 * ES_DSP_ERR_RESAMPLER for rates libsoxr refuses, ES_DSP_ERR_NOMEM. */
int es_resample_clip(const float *samples, size_t count, double input_rate_hz,
                     double output_rate_hz, es_clip_resample_quality quality, float **out,
                     size_t *out_count, es_error *err);

/* Convolves `samples` in place with impulse[impulse_count] (impulse_count
 * >= 1): samples[i] becomes sum_j impulse[j] * samples[i - j], the linear
 * convolution cut to the input's length (the tail past the end is dropped).
 * Done with single-precision FFTs of the next power of two >= count +
 * impulse_count points, so it costs O(n log n) for long impulses (a room's
 * response is thousands of samples). ES_DSP_ERR_NOMEM. */
int es_convolve(float *samples, size_t count, const float *impulse, size_t impulse_count,
                es_error *err);

/* Band-pass in place: the clip's spectrum (zero-padded to the next power of
 * two >= 2 count points, so that the filter's ringing cannot wrap around onto
 * the start) is multiplied by a real, zero-phase gain: 1 from low_hz to
 * high_hz, raised-cosine slopes taper_hz wide outside both edges (0.5 - 0.5
 * cos), 0 beyond. ES_DSP_ERR_CONFIG unless 0 <= taper_hz <= low_hz <=
 * high_hz and sample_rate_hz > 0; ES_DSP_ERR_NOMEM. */
int es_band_pass(float *samples, size_t count, double sample_rate_hz, double low_hz, double high_hz,
                 double taper_hz, es_error *err);

/* ---- frame ring (lock-free SPSC) -----------------------------------------
 * One producer thread, one consumer thread. push/pop are lock-free; when the
 * other side sleeps in a *_wait call they wake it with sem_post, which never
 * blocks. */

typedef struct es_ring es_ring;

/* `capacity` is rounded up to a power of two. */
int es_ring_create(size_t capacity, es_ring **out);
void es_ring_destroy(es_ring *ring);

/* [rt] Producer side. Returns ES_DSP_OK or ES_DSP_ERR_FULL. */
int es_ring_push(es_ring *ring, const es_frame *frame);

/* [rt] Producer side for live capture: when full, the oldest frame is dropped
 * (the consumer will never see it) and the drop counter grows. Never fails. */
void es_ring_push_overwrite(es_ring *ring, const es_frame *frame);

/* [rt] Consumer side. Returns ES_DSP_OK or ES_DSP_ERR_EMPTY. */
int es_ring_pop(es_ring *ring, es_frame *frame);

/* Blocking wrappers for offline back-pressure: they sleep (never spin) until
 * there is room / a frame. pop returns ES_DSP_ERR_CLOSED once the producer has
 * called es_ring_close and everything is consumed; push returns
 * ES_DSP_ERR_CLOSED after close. es_ring_close is called by the producer when
 * its stream ends; it wakes a sleeping consumer. */
int es_ring_push_wait(es_ring *ring, const es_frame *frame);
int es_ring_pop_wait(es_ring *ring, es_frame *frame);
void es_ring_close(es_ring *ring);

size_t es_ring_capacity(const es_ring *ring);
size_t es_ring_count(const es_ring *ring);     /* frames waiting, approximate */
uint64_t es_ring_dropped(const es_ring *ring); /* frames lost to overwrite */

#ifdef __cplusplus
}
#endif
#endif
