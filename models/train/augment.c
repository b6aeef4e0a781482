#include "augment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dsp.h"

/* ---- random numbers --------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void es_rng_seed(es_rng *rng, uint64_t seed) {
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t es_rng_next(es_rng *rng) {
    uint64_t *s = rng->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double es_rng_uniform(es_rng *rng, double low, double high) {
    const double unit = (double)(es_rng_next(rng) >> 11) * 0x1.0p-53;
    return low + (high - low) * unit;
}

int es_rng_below(es_rng *rng, int bound) {
    return (int)(es_rng_next(rng) % (uint64_t)bound);
}

double es_rng_gaussian(es_rng *rng) {
    /* Box-Muller; 1 - u keeps the log's argument in (0, 1]. */
    const double u = 1.0 - es_rng_uniform(rng, 0.0, 1.0);
    const double v = es_rng_uniform(rng, 0.0, 1.0);
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* ---- samples ------------------------------------------------------------------- */

double es_mean_power(const float *samples, size_t count) {
    if (count == 0) return 0.0;
    double sum = 0.0;
    for (size_t i = 0; i < count; i++)
        sum += (double)samples[i] * samples[i];
    return sum / (double)count;
}

static float saturate(float x) {
    return x > 1.0f ? 1.0f : x < -1.0f ? -1.0f : x;
}

void es_augment_gain(float *samples, size_t count, float gain_db) {
    const float scale = powf(10.0f, gain_db / 20.0f);
    for (size_t i = 0; i < count; i++)
        samples[i] = saturate(samples[i] * scale);
}

/* Walks noise[(offset + i) % noise_count] for i < count, in runs up to the
 * noise's end (no division per sample): adds `scale` times it to samples
 * (when not NULL) and returns the stretch's summed power. */
static double mix_noise_stretch(float *samples, size_t count, const float *noise,
                                size_t noise_count, size_t offset, double scale) {
    double power = 0.0;
    size_t at = offset % noise_count;
    for (size_t i = 0; i < count; at = 0) {
        const size_t run = count - i < noise_count - at ? count - i : noise_count - at;
        for (size_t k = 0; k < run; k++) {
            const double x = noise[at + k];
            power += x * x;
            if (samples) samples[i + k] += (float)(scale * x);
        }
        i += run;
    }
    return power;
}

void es_augment_add_noise(float *samples, size_t count, double signal_power, const float *noise,
                          size_t noise_count, size_t noise_offset, float snr_db) {
    if (count == 0 || noise_count == 0) return;
    /* The power of exactly the stretch of noise that will be added. */
    const double noise_power =
        mix_noise_stretch(NULL, count, noise, noise_count, noise_offset, 0.0) / (double)count;
    if (noise_power <= 0.0 || signal_power <= 0.0) return;
    const double scale = sqrt(signal_power / (noise_power * pow(10.0, snr_db / 10.0)));
    mix_noise_stretch(samples, count, noise, noise_count, noise_offset, scale);
}

/* dsp's failure as one of ours: out of memory stays that, anything else was
 * an argument dsp refused. */
static int dsp_failed(es_error *err, int dsp_code, const es_error *dsp_err) {
    return es_error_set(err,
                        dsp_code == ES_DSP_ERR_NOMEM ? ES_AUGMENT_ERR_NOMEM : ES_AUGMENT_ERR_ARG,
                        "%s", dsp_err->why);
}

int es_augment_speed(const float *samples, size_t count, float factor, int sample_rate_hz,
                     float **out, size_t *out_count, es_error *err) {
    *out = NULL;
    *out_count = 0;
    if (!(factor > 0.25f && factor < 4.0f) || sample_rate_hz <= 0)
        return es_error_set(err, ES_AUGMENT_ERR_ARG,
                            "speed factor %g at %d Hz: the factor must lie in (0.25, 4) and the "
                            "rate be positive",
                            factor, sample_rate_hz);
    /* Read as if recorded at factor x the rate: shorter, and higher by the same ratio.
     * Cubic interpolation: a ±15 % speed change aliases at most 7-8 kHz into
     * 6-7 kHz, near the top mel band's edge, and soxr's filtered qualities took
     * 12 % of a keyword run's training time for it (6 % now). */
    es_error dsp_err;
    const int rc =
        es_resample_clip(samples, count, (double)sample_rate_hz * factor, (double)sample_rate_hz,
                         ES_CLIP_RESAMPLE_QUICK, out, out_count, &dsp_err);
    return rc == ES_DSP_OK ? ES_AUGMENT_OK : dsp_failed(err, rc, &dsp_err);
}

static void match_power(float *samples, size_t count, double target_power) {
    const double power = es_mean_power(samples, count);
    if (power <= 0.0 || target_power <= 0.0) return;
    const float scale = (float)sqrt(target_power / power);
    for (size_t i = 0; i < count; i++)
        samples[i] *= scale;
}

int es_augment_reverb(float *samples, size_t count, float rt60_s, int sample_rate_hz, es_rng *rng,
                      es_error *err) {
    if (!(rt60_s > 0.0f) || sample_rate_hz <= 0)
        return es_error_set(err, ES_AUGMENT_ERR_ARG,
                            "reverberation of %g s at %d Hz: both must be positive", rt60_s,
                            sample_rate_hz);
    if (count == 0) return ES_AUGMENT_OK;
    /* At least the direct path, however short the room. */
    size_t response_count = (size_t)(rt60_s * (float)sample_rate_hz);
    if (response_count == 0) response_count = 1;
    float *response = malloc(sizeof(float) * response_count);
    if (!response) return es_error_set(err, ES_AUGMENT_ERR_NOMEM, "out of memory");
    /* Amplitude falls by 60 dB (a factor 1000) over rt60_s: exp(-ln(1000) t / rt60). */
    const double decay_per_sample = log(1000.0) / ((double)rt60_s * sample_rate_hz);
    const double decay_step = exp(-decay_per_sample);
    double envelope = 0.3; /* the tail's gain */
    response[0] = 1.0f;
    for (size_t i = 1; i < response_count; i++) {
        envelope *= decay_step;
        response[i] = (float)(es_rng_gaussian(rng) * envelope);
    }
    const double power = es_mean_power(samples, count);
    es_error dsp_err;
    const int rc = es_convolve(samples, count, response, response_count, &dsp_err);
    free(response);
    if (rc != ES_DSP_OK) return dsp_failed(err, rc, &dsp_err);
    match_power(samples, count, power);
    return ES_AUGMENT_OK;
}

static float mu_law_round_trip(float x) {
    const float mu = 255.0f;
    const float y = copysignf(log1pf(mu * fminf(fabsf(x), 1.0f)) / log1pf(mu), x);
    const float quantised = roundf(y * 127.0f) / 127.0f;
    return copysignf((powf(1.0f + mu, fabsf(quantised)) - 1.0f) / mu, quantised);
}

int es_augment_telephone(float *samples, size_t count, int sample_rate_hz, es_error *err) {
    if (sample_rate_hz <= 0)
        return es_error_set(err, ES_AUGMENT_ERR_ARG,
                            "telephone line at %d Hz: the rate must be positive", sample_rate_hz);
    if (count == 0) return ES_AUGMENT_OK;
    /* The band of a narrow-band (G.711) line, with 100 Hz slopes. */
    es_error dsp_err;
    const int rc = es_band_pass(samples, count, sample_rate_hz, 300.0, 3400.0, 100.0, &dsp_err);
    if (rc != ES_DSP_OK) return dsp_failed(err, rc, &dsp_err);
    for (size_t i = 0; i < count; i++)
        samples[i] = mu_law_round_trip(samples[i]);
    return ES_AUGMENT_OK;
}

void es_augment_config_default(es_augment_config *config) {
    *config = (es_augment_config){
        .noise_probability = 0.8f,
        .snr_db_min = -5.0f,
        .snr_db_max = 30.0f,
        .gain_db_max = 20.0f,
        .speed_max = 0.15f,
        .reverb_probability = 0.3f,
        .rt60_min_s = 0.2f,
        .rt60_max_s = 0.8f,
        .telephone_probability = 0.1f,
        .warp_max = 0.1f,
        .envelope_probability = 0.0f,
        .envelope_min_coefficients = 10,
        .envelope_max_coefficients = 20,
        .time_masks = 2,
        .time_mask_max_frames = 15,
        .freq_masks = 2,
        .freq_mask_max_bands = 5,
    };
}

void es_augment_config_scale(const es_augment_config *full, float strength,
                             es_augment_config *out) {
    const float s = strength < 0.0f ? 0.0f : strength > 1.0f ? 1.0f : strength;
    *out = *full;
    out->noise_probability = s * full->noise_probability;
    out->snr_db_min = full->snr_db_max - s * (full->snr_db_max - full->snr_db_min);
    out->reverb_probability = s * full->reverb_probability;
    out->telephone_probability = s * full->telephone_probability;
    out->warp_max = s * full->warp_max;
    out->envelope_probability = s * full->envelope_probability;
    out->time_masks = (int)lroundf(s * (float)full->time_masks);
    out->freq_masks = (int)lroundf(s * (float)full->freq_masks);
}

float es_augment_draw_speed(const es_augment_config *config, es_rng *rng) {
    return (float)es_rng_uniform(rng, 1.0 - config->speed_max, 1.0 + config->speed_max);
}

static int chance(es_rng *rng, float probability) {
    return es_rng_uniform(rng, 0.0, 1.0) < probability;
}

void es_augment_draw_params(const es_augment_config *config, es_rng *rng, es_augment_draw *draw) {
    /* Every value is drawn whether used or not, so one knob's probability does
     * not shift the others' random streams. */
    const int noisy = chance(rng, config->noise_probability);
    const float snr_db = (float)es_rng_uniform(rng, config->snr_db_min, config->snr_db_max);
    const int reverberant = chance(rng, config->reverb_probability);
    const float rt60_s = (float)es_rng_uniform(rng, config->rt60_min_s, config->rt60_max_s);
    draw->snr_db = noisy ? snr_db : NAN;
    draw->rt60_s = reverberant ? rt60_s : 0.0f;
    draw->telephone = chance(rng, config->telephone_probability);
    draw->gain_db = (float)es_rng_uniform(rng, -config->gain_db_max, config->gain_db_max);
    draw->warp = (float)es_rng_uniform(rng, 1.0 - config->warp_max, 1.0 + config->warp_max);
}

int es_augment_draw_envelope(const es_augment_config *config, es_rng *rng) {
    /* No draw at all when off: a run without it makes every draw it made
     * before the envelope existed, so its models are reproduced bit for bit. */
    if (!(config->envelope_probability > 0.0f)) return 0;
    const int smoothed = chance(rng, config->envelope_probability);
    const int span = config->envelope_max_coefficients - config->envelope_min_coefficients;
    const int coefficients =
        config->envelope_min_coefficients + (span > 0 ? es_rng_below(rng, span + 1) : 0);
    return smoothed ? coefficients : 0;
}

int es_augment_audio(const es_augment_draw *draw, es_rng *rng, float *samples, size_t count,
                     double signal_power, const float *noise, size_t noise_count,
                     int sample_rate_hz, es_error *err) {
    int rc = ES_AUGMENT_OK;
    if (draw->rt60_s > 0.0f) {
        rc = es_augment_reverb(samples, count, draw->rt60_s, sample_rate_hz, rng, err);
        if (rc != ES_AUGMENT_OK) return rc;
    }
    if (draw->telephone) {
        rc = es_augment_telephone(samples, count, sample_rate_hz, err);
        if (rc != ES_AUGMENT_OK) return rc;
    }
    if (!isnan(draw->snr_db) && noise && noise_count > 0) {
        const size_t offset = (size_t)(es_rng_next(rng) % noise_count);
        es_augment_add_noise(samples, count, signal_power, noise, noise_count, offset,
                             draw->snr_db);
    }
    es_augment_gain(samples, count, draw->gain_db);
    return rc;
}

/* ---- features --------------------------------------------------------------------- */

static double hz_to_mel(double hz) {
    return 2595.0 * log10(1.0 + hz / 700.0);
}

static double mel_to_hz(double mel) {
    return 700.0 * (pow(10.0, mel / 2595.0) - 1.0);
}

void es_augment_warp_mel(float *features, int frames, int bands, int stride, float mel_low_hz,
                         float mel_high_hz, float factor) {
    if (bands < 2 || bands > 256 || !(factor > 0.0f)) return;
    const double mel_low = hz_to_mel(mel_low_hz), mel_high = hz_to_mel(mel_high_hz);
    /* Band centres sit at bands + 2 equally spaced mel points, the ends excluded. */
    const double mel_step = (mel_high - mel_low) / (bands + 1);
    double source_band[256];
    for (int b = 0; b < bands; b++) {
        const double centre_hz = mel_to_hz(mel_low + (b + 1) * mel_step);
        double position = (hz_to_mel(centre_hz / factor) - mel_low) / mel_step - 1.0;
        if (position < 0.0) position = 0.0;
        if (position > bands - 1) position = bands - 1;
        source_band[b] = position;
    }
    float row[256];
    for (int t = 0; t < frames; t++) {
        float *frame = features + (size_t)t * stride;
        memcpy(row, frame, sizeof(float) * bands);
        for (int b = 0; b < bands; b++) {
            const int lower = (int)source_band[b];
            const int upper = lower + 1 < bands ? lower + 1 : lower;
            const float weight = (float)(source_band[b] - lower);
            frame[b] = row[lower] * (1.0f - weight) + row[upper] * weight;
        }
    }
}

int es_augment_envelope(float *features, int frames, int bands, int stride, int coefficients,
                        es_error *err) {
    if (bands < 2 || coefficients < 1 || coefficients >= bands) return ES_AUGMENT_OK;
    /* basis[k][b]: the orthonormal DCT-II, so the inverse is its transpose. */
    float *basis = malloc(sizeof(float) * (size_t)coefficients * (size_t)bands);
    float *cepstrum = malloc(sizeof(float) * (size_t)coefficients);
    if (!basis || !cepstrum) {
        free(basis);
        free(cepstrum);
        return es_error_set(err, ES_AUGMENT_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < coefficients; k++) {
        const double scale = sqrt((k == 0 ? 1.0 : 2.0) / bands);
        for (int b = 0; b < bands; b++)
            basis[k * bands + b] = (float)(scale * cos(M_PI * k * (b + 0.5) / bands));
    }
    for (int t = 0; t < frames; t++) {
        float *frame = features + (size_t)t * stride;
        for (int k = 0; k < coefficients; k++) {
            float sum = 0.0f;
            for (int b = 0; b < bands; b++)
                sum += basis[k * bands + b] * frame[b];
            cepstrum[k] = sum;
        }
        for (int b = 0; b < bands; b++) {
            float sum = 0.0f;
            for (int k = 0; k < coefficients; k++)
                sum += basis[k * bands + b] * cepstrum[k];
            frame[b] = sum;
        }
    }
    free(basis);
    free(cepstrum);
    return ES_AUGMENT_OK;
}

void es_augment_spec_mask(const es_augment_config *config, es_rng *rng, float *features, int frames,
                          int bands, int stride) {
    for (int m = 0; m < config->time_masks && frames > 0 && config->time_mask_max_frames > 0; m++) {
        const int width = es_rng_below(rng, config->time_mask_max_frames + 1);
        const int start = es_rng_below(rng, frames);
        for (int t = start; t < start + width && t < frames; t++)
            memset(features + (size_t)t * stride, 0, sizeof(float) * bands);
    }
    for (int m = 0; m < config->freq_masks && bands > 0 && config->freq_mask_max_bands > 0; m++) {
        const int width = es_rng_below(rng, config->freq_mask_max_bands + 1);
        const int start = es_rng_below(rng, bands);
        for (int t = 0; t < frames; t++)
            for (int b = start; b < start + width && b < bands; b++)
                features[(size_t)t * stride + b] = 0.0f;
    }
}
