/*
 * augment — training-time transformations of clean clips, drawn afresh for
 * every epoch from a seeded generator, so a run is reproducible.
 *
 * On 16 kHz mono samples: speed (tempo and pitch together, through dsp's
 * whole-clip resampler), reverberation with a synthetic room (convolved by
 * dsp), telephone band limits (dsp's band-pass) with mu-law quantisation,
 * additive noise at a chosen SNR, gain. What is drawn, and how, is decided
 * here; the filtering itself is dsp's. On feature frames:
 * vocal-tract-length warping of the mel axis, smoothing of each frame to its
 * spectral envelope, and SpecAugment masks.
 *
 * The trainer changes speed first, then derives frame labels from the
 * resulting clean clip, then applies the rest (es_augment_audio): labels never
 * see noise or reverberation.
 *
 * Offline only: calls allocate. Threads may augment side by side, each with
 * its own generator (dsp's filters make their FFT plans under its lock).
 */
#ifndef ES_AUGMENT_H
#define ES_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* ---- random numbers --------------------------------------------------------- */

/* xoshiro256** seeded through splitmix64: same seed, same draws, everywhere. */
typedef struct es_rng {
    uint64_t s[4];
} es_rng;

void es_rng_seed(es_rng *rng, uint64_t seed);
uint64_t es_rng_next(es_rng *rng);
double es_rng_uniform(es_rng *rng, double low, double high); /* [low, high) */
int es_rng_below(es_rng *rng, int bound);                    /* [0, bound), bound > 0 */
double es_rng_gaussian(es_rng *rng);                         /* mean 0, variance 1 */

/* ---- samples ------------------------------------------------------------------- */

/* The calls that can fail return one of these and, when `err` is not NULL,
 * say why there (common/error.h). */
enum {
    ES_AUGMENT_OK = 0,
    ES_AUGMENT_ERR_NOMEM = -1,
    ES_AUGMENT_ERR_ARG = -2, /* a factor, time or rate out of range */
};

/* Mean of squares; 0 for an empty buffer. */
double es_mean_power(const float *samples, size_t count);

/* Multiplies by 10^(gain_db/20) and saturates at +-1, as a real input stage would. */
void es_augment_gain(float *samples, size_t count, float gain_db);

/* Adds noise (read cyclically from noise[noise_offset]) scaled so that
 * 10 log10(signal_power / power of the added noise) = snr_db. The caller gives
 * the signal's power (e.g. over its speech frames only, so leading silence
 * does not lower the SNR). A silent noise adds nothing. */
void es_augment_add_noise(float *samples, size_t count, double signal_power, const float *noise,
                          size_t noise_count, size_t noise_offset, float snr_db);

/* Plays the clip `factor` times faster (1.15: 15 % shorter, higher pitch).
 * Writes a new buffer of about count / factor samples to *out (free()). */
int es_augment_speed(const float *samples, size_t count, float factor, int sample_rate_hz,
                     float **out, size_t *out_count, es_error *err);

/* Convolves in place with a synthetic room response: a direct path followed by
 * exponentially decaying Gaussian noise reaching -60 dB after rt60_s. The
 * output keeps the input's length and power. */
int es_augment_reverb(float *samples, size_t count, float rt60_s, int sample_rate_hz, es_rng *rng,
                      es_error *err);

/* A telephone line: 300-3400 Hz band, then 8-bit mu-law quantisation. */
int es_augment_telephone(float *samples, size_t count, int sample_rate_hz, es_error *err);

typedef struct es_augment_config {
    float noise_probability;       /* 0.8 */
    float snr_db_min;              /* -5 */
    float snr_db_max;              /* 30 */
    float gain_db_max;             /* 20: gain drawn in [-max, +max] */
    float speed_max;               /* 0.15: factor drawn in [1 - max, 1 + max] */
    float reverb_probability;      /* 0.3 */
    float rt60_min_s;              /* 0.2 */
    float rt60_max_s;              /* 0.8 */
    float telephone_probability;   /* 0.1 */
    float warp_max;                /* 0.1: mel warp factor in [1 - max, 1 + max] */
    float envelope_probability;    /* 0: share of clips smoothed to their spectral envelope */
    int envelope_min_coefficients; /* 10: ...keeping 10 to */
    int envelope_max_coefficients; /* 20: 20 cepstral coefficients (of 40 bands) */
    int time_masks;                /* 2 */
    int time_mask_max_frames;      /* 15 */
    int freq_masks;                /* 2 */
    int freq_mask_max_bands;       /* 5 */
} es_augment_config;

void es_augment_config_default(es_augment_config *config);

/* A milder copy of `full` for a curriculum: strength 0 is clean (no noise,
 * room, phone line, warp or masks; the SNR floor at snr_db_max), 1 is `full`,
 * in between scaled linearly. Gain and speed stay: they change no content. */
void es_augment_config_scale(const es_augment_config *full, float strength, es_augment_config *out);

/* One clip's draw of every random choice except the speed (drawn first,
 * separately, because labels follow it). NaN snr_db: no noise; 0 rt60_s: dry. */
typedef struct es_augment_draw {
    float gain_db;
    float snr_db;
    float rt60_s;
    int telephone;
    float warp;
} es_augment_draw;

float es_augment_draw_speed(const es_augment_config *config, es_rng *rng);
void es_augment_draw_params(const es_augment_config *config, es_rng *rng, es_augment_draw *draw);

/* The cepstral coefficients one clip keeps (es_augment_envelope), or 0 for
 * none; drawn apart from the rest because only feature augmentation needs
 * it, and drawing nothing when envelope_probability is 0. */
int es_augment_draw_envelope(const es_augment_config *config, es_rng *rng);

/* Reverberation, telephone, noise (from a random offset), gain, in that order,
 * in place. `signal_power` as for es_augment_add_noise. */
int es_augment_audio(const es_augment_draw *draw, es_rng *rng, float *samples, size_t count,
                     double signal_power, const float *noise, size_t noise_count,
                     int sample_rate_hz, es_error *err);

/* ---- features --------------------------------------------------------------------- */

/* Vocal-tract-length warping on log-mel frames (row `stride` floats apart):
 * band b takes the value the unwarped spectrum had at frequency f_b / factor,
 * interpolated between bands on the HTK mel scale of [mel_low_hz, mel_high_hz]. */
void es_augment_warp_mel(float *features, int frames, int bands, int stride, float mel_low_hz,
                         float mel_high_hz, float factor);

/* Keeps of each log-mel frame only its spectral envelope: the first
 * `coefficients` of its cepstrum (an orthonormal DCT-II across the bands, the
 * rest set to 0, transformed back). What goes is the fine detail across
 * bands, which below ~1 kHz is the harmonics of the voice's pitch: the
 * excitation in which synthetic voices, their robot variants and real
 * speakers differ most, and which says little about the word. Coefficient 0
 * (the frame's mean) is always kept; coefficients >= bands leave the frame as
 * it is. ES_AUGMENT_OK, or ES_AUGMENT_ERR_NOMEM (frames untouched). */
int es_augment_envelope(float *features, int frames, int bands, int stride, int coefficients,
                        es_error *err);

/* SpecAugment: `time_masks` runs of up to time_mask_max_frames frames and
 * `freq_masks` runs of up to freq_mask_max_bands bands set to 0 (the mean of
 * normalised features). */
void es_augment_spec_mask(const es_augment_config *config, es_rng *rng, float *features, int frames,
                          int bands, int stride);

#endif
