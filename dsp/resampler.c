/*
 * Streaming downmix + resampler around libsoxr.
 *
 * Input frames are downmixed to mono (the plain mean of the channels) into a
 * block of fixed length; each full block is handed to soxr_process with a
 * fixed output allowance. soxr therefore sees the same sequence of calls
 * whatever way the caller split the stream, which makes the output
 * independent of the call pattern by construction rather than by trusting
 * soxr's internals. The price is up to one block (10 ms) of extra latency on
 * top of soxr's own (tens of milliseconds; its filters work in chunks).
 *
 * When input and output rates are equal soxr is skipped; the downmix still runs.
 */
#include "dsp.h"

#include <math.h>
#include <soxr.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* One block is this many seconds of input: one 10 ms hop of the front end. */
#define ES_RESAMPLER_BLOCK_S 0.010
/* At least this much input silence primes soxr (see prime_soxr). */
#define ES_RESAMPLER_PRIMING_S 1.0
#define ES_RESAMPLER_PRIMING_OUTPUT_CAPACITY 65536

struct es_resampler {
    int channels;
    double input_rate_hz;
    double output_rate_hz;
    size_t max_input_frames;

    soxr_t soxr;         /* NULL when the rates are equal */
    float *block;        /* downmixed input waiting for soxr */
    size_t block_frames; /* fixed block length */
    size_t block_filled; /* frames in `block` */
    /* Output room given to soxr for each block: soxr emits its output in
     * bursts (its filters run on chunks of several blocks), so this is the
     * largest burst seen while priming plus one block's worth. */
    size_t block_output_allowance;
    /* Output samples that belong to the priming silence, still to discard. */
    size_t priming_output_to_skip;
    bool draining;
};

static bool rate_is_valid(double rate_hz) {
    /* Whole hertz only: priming relies on an exact rational ratio. The range
     * test is also false for NaN. */
    return rate_hz >= 1000.0 && rate_hz <= 1e6 && rate_hz == floor(rate_hz);
}

static uint64_t greatest_common_divisor(uint64_t a, uint64_t b) {
    while (b != 0) {
        const uint64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/* soxr allocates parts of its working memory lazily, during the first
 * several hundred milliseconds of soxr_process calls (up to ~10 allocations;
 * soxr_clear frees them again, so priming and then clearing does not help).
 * So the stream is primed with silence and soxr is left in that state: the
 * real stream simply follows the silence. The silence is a whole number of
 * resampling periods long, so it ends exactly on an output sample and the
 * filter phase is the one a fresh stream would have; the output that still
 * belongs to it is skipped in process. tests/dsp/test_dsp_alloc.c checks that
 * process then never allocates. */
static int prime_soxr(es_resampler *rs) {
    const uint64_t input_rate = (uint64_t)rs->input_rate_hz;
    const uint64_t output_rate = (uint64_t)rs->output_rate_hz;
    const uint64_t period_frames = input_rate / greatest_common_divisor(input_rate, output_rate);
    const uint64_t minimum_frames = (uint64_t)ceil(rs->input_rate_hz * ES_RESAMPLER_PRIMING_S);
    const uint64_t priming_frames =
        (minimum_frames + period_frames - 1) / period_frames * period_frames;

    float *scratch_output = malloc(sizeof(float) * ES_RESAMPLER_PRIMING_OUTPUT_CAPACITY);
    if (!scratch_output) return ES_DSP_ERR_NOMEM;
    memset(rs->block, 0, sizeof(float) * rs->block_frames);
    uint64_t produced_total = 0;
    size_t largest_burst = 0;
    for (uint64_t fed = 0; fed < priming_frames;) {
        size_t frames = rs->block_frames;
        if (priming_frames - fed < frames) frames = (size_t)(priming_frames - fed);
        size_t consumed = 0, produced = 0;
        if (soxr_process(rs->soxr, rs->block, frames, &consumed, scratch_output,
                         ES_RESAMPLER_PRIMING_OUTPUT_CAPACITY, &produced) != NULL ||
            consumed != frames) {
            free(scratch_output);
            return ES_DSP_ERR_RESAMPLER;
        }
        fed += frames;
        produced_total += produced;
        if (produced > largest_burst) largest_burst = produced;
    }
    free(scratch_output);

    const uint64_t priming_output =
        priming_frames / period_frames *
        (output_rate / greatest_common_divisor(input_rate, output_rate));
    if (produced_total > priming_output) return ES_DSP_ERR_RESAMPLER;
    rs->priming_output_to_skip = (size_t)(priming_output - produced_total);
    rs->block_output_allowance =
        largest_burst +
        (size_t)ceil((double)rs->block_frames * rs->output_rate_hz / rs->input_rate_hz) + 64;
    return ES_DSP_OK;
}

int es_resampler_create(double input_rate_hz, int channels, double output_rate_hz,
                        size_t max_input_frames, es_resampler **out) {
    *out = NULL;
    if (!rate_is_valid(input_rate_hz) || !rate_is_valid(output_rate_hz)) return ES_DSP_ERR_CONFIG;
    if (channels < 1 || channels > 64 || max_input_frames == 0) return ES_DSP_ERR_CONFIG;
    if (max_input_frames > ((size_t)1 << 28)) return ES_DSP_ERR_CONFIG;

    es_resampler *rs = calloc(1, sizeof(*rs));
    if (!rs) return ES_DSP_ERR_NOMEM;
    rs->channels = channels;
    rs->input_rate_hz = input_rate_hz;
    rs->output_rate_hz = output_rate_hz;
    rs->max_input_frames = max_input_frames;
    if (input_rate_hz == output_rate_hz) {
        *out = rs;
        return ES_DSP_OK;
    }

    rs->block_frames = (size_t)ceil(input_rate_hz * ES_RESAMPLER_BLOCK_S);
    rs->block = malloc(sizeof(float) * rs->block_frames);
    if (!rs->block) {
        es_resampler_destroy(rs);
        return ES_DSP_ERR_NOMEM;
    }

    const soxr_io_spec_t io_spec = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    const soxr_quality_spec_t quality_spec = soxr_quality_spec(SOXR_HQ, 0);
    /* One thread: soxr must not start an OpenMP team inside an audio callback. */
    const soxr_runtime_spec_t runtime_spec = soxr_runtime_spec(1);
    soxr_error_t error = NULL;
    rs->soxr = soxr_create(input_rate_hz, output_rate_hz, 1, &error, &io_spec, &quality_spec,
                           &runtime_spec);
    if (!rs->soxr || error) {
        es_resampler_destroy(rs);
        return ES_DSP_ERR_RESAMPLER;
    }
    int rc = prime_soxr(rs);
    if (rc != ES_DSP_OK) {
        es_resampler_destroy(rs);
        return rc;
    }
    *out = rs;
    return ES_DSP_OK;
}

void es_resampler_destroy(es_resampler *rs) {
    if (!rs) return;
    if (rs->soxr) soxr_delete(rs->soxr);
    free(rs->block);
    free(rs);
}

/* Drops output that still belongs to the priming silence from the front of
 * `output`; returns how many samples remain. */
static size_t skip_priming_output(es_resampler *rs, float *output, size_t produced) {
    if (rs->priming_output_to_skip == 0) return produced;
    size_t skip = rs->priming_output_to_skip;
    if (skip > produced) skip = produced;
    memmove(output, output + skip, sizeof(float) * (produced - skip));
    rs->priming_output_to_skip -= skip;
    return produced - skip;
}

/* Mono is the plain mean of the channels (a 5.1 LFE channel counts like any
 * other: speech lives in the others, and simple beats clever here). */
static void downmix(const float *input, size_t frames, int channels, float *mono) {
    if (frames == 0) return; /* input may then be NULL, which memcpy must not see */
    if (channels == 1) {
        memcpy(mono, input, sizeof(float) * frames);
        return;
    }
    const float scale = 1.0f / (float)channels;
    for (size_t i = 0; i < frames; i++) {
        const float *frame = input + i * (size_t)channels;
        float sum = 0.0f;
        for (int c = 0; c < channels; c++)
            sum += frame[c];
        mono[i] = sum * scale;
    }
}

size_t es_resampler_output_bound(const es_resampler *rs, size_t input_frames) {
    if (!rs->soxr) return input_frames;
    /* Up to block_frames - 1 frames may wait from earlier calls. */
    const size_t blocks = (rs->block_frames - 1 + input_frames) / rs->block_frames;
    return blocks * rs->block_output_allowance;
}

long es_resampler_process(es_resampler *rs, const float *input, size_t input_frames, float *output,
                          size_t output_capacity) {
    if (input_frames > rs->max_input_frames || rs->draining) return ES_DSP_ERR_CONFIG;
    if (output_capacity < es_resampler_output_bound(rs, input_frames)) return ES_DSP_ERR_CONFIG;
    if (!rs->soxr) {
        downmix(input, input_frames, rs->channels, output);
        return (long)input_frames;
    }

    size_t written = 0;
    while (input_frames > 0) {
        size_t take = rs->block_frames - rs->block_filled;
        if (take > input_frames) take = input_frames;
        downmix(input, take, rs->channels, rs->block + rs->block_filled);
        rs->block_filled += take;
        input += take * (size_t)rs->channels;
        input_frames -= take;
        if (rs->block_filled < rs->block_frames) break;

        rs->block_filled = 0;
        size_t consumed = 0, produced = 0;
        if (soxr_process(rs->soxr, rs->block, rs->block_frames, &consumed, output + written,
                         rs->block_output_allowance, &produced) != NULL ||
            consumed != rs->block_frames) {
            return ES_DSP_ERR_RESAMPLER;
        }
        written += skip_priming_output(rs, output + written, produced);
    }
    return (long)written;
}

long es_resampler_drain(es_resampler *rs, float *output, size_t output_capacity) {
    rs->draining = true;
    if (!rs->soxr) return 0;
    if (output_capacity == 0) return ES_DSP_ERR_CONFIG;
    for (;;) {
        size_t consumed = 0, produced = 0;
        if (rs->block_filled > 0) {
            /* The last, partial block; output that does not fit stays in soxr. */
            if (soxr_process(rs->soxr, rs->block, rs->block_filled, &consumed, output,
                             output_capacity, &produced) != NULL ||
                (consumed == 0 && produced == 0)) {
                return ES_DSP_ERR_RESAMPLER;
            }
            memmove(rs->block, rs->block + consumed, sizeof(float) * (rs->block_filled - consumed));
            rs->block_filled -= consumed;
        } else {
            /* A NULL input tells soxr the stream has ended: it flushes its filters. */
            if (soxr_process(rs->soxr, NULL, 0, NULL, output, output_capacity, &produced) != NULL) {
                return ES_DSP_ERR_RESAMPLER;
            }
            if (produced == 0) return 0;
        }
        const size_t kept = skip_priming_output(rs, output, produced);
        if (kept > 0) return (long)kept;
    }
}
