/*
 * espeak-ng in process (synth.h): synthesis to a buffer, dsp's whole-clip
 * resampler to 16 kHz, the silence trimmed, libsndfile to write the clip.
 */
#include "synth.h"

#include "dsp.h"

#include <espeak-ng/speak_lib.h>
#include <math.h>
#include <sndfile.h>
#include <stdlib.h>
#include <string.h>

#define CLIP_RATE_HZ 16000
#define TRIM_THRESHOLD_DBFS -45.0
#define TRIM_RUN_S 0.01    /* sox silence's duration */
#define TRIM_WINDOW_S 0.02 /* sox silence's RMS window */

static int synth_rate_hz; /* espeak-ng's output rate; 0 until es_synth_start */

int es_synth_start(es_error *err) {
    if (synth_rate_hz > 0) return 0;
    const int rate =
        espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, NULL, espeakINITIALIZE_DONT_EXIT);
    if (rate <= 0)
        return es_error_set(err, ES_SYNTH_ERR_ESPEAK,
                            "espeak-ng cannot load its data (is espeak-ng-data installed?)");
    synth_rate_hz = rate;
    return 0;
}

typedef struct sample_list {
    short *data;
    size_t count, capacity;
    int failed;
} sample_list;

static int collect_samples(short *wav, int count, espeak_EVENT *events) {
    sample_list *list = events ? events->user_data : NULL;
    if (!list || !wav || count <= 0) return 0;
    if (list->count + (size_t)count > list->capacity) {
        const size_t capacity = (list->count + (size_t)count) * 2;
        short *grown = realloc(list->data, sizeof *grown * capacity);
        if (!grown) {
            list->failed = 1;
            return 1; /* stops the synthesis */
        }
        list->data = grown;
        list->capacity = capacity;
    }
    memcpy(list->data + list->count, wav, sizeof *wav * (size_t)count);
    list->count += (size_t)count;
    return 0;
}

/* As `espeak-ng -v NAME`: a voice by name, else by language ("en-gb"). */
static int select_voice(const char *name) {
    if (espeak_SetVoiceByName(name) == EE_OK) return 0;
    espeak_VOICE wanted;
    memset(&wanted, 0, sizeof wanted);
    wanted.languages = name;
    return espeak_SetVoiceByProperties(&wanted) == EE_OK ? 0 : -1;
}

/* How many samples from the start (step 1) or the end (step -1) the first
 * TRIM_RUN_S run whose causal RMS over TRIM_WINDOW_S stays above the
 * threshold begins; `count` when there is none. */
static size_t first_sound(const float *samples, size_t count, int step) {
    const size_t window = (size_t)(TRIM_WINDOW_S * CLIP_RATE_HZ);
    const size_t run = (size_t)(TRIM_RUN_S * CLIP_RATE_HZ);
    const double threshold = pow(10.0, TRIM_THRESHOLD_DBFS / 20.0);
    const double energy_above = threshold * threshold * (double)window;
    double energy = 0.0;
    size_t above = 0;
    for (size_t n = 0; n < count; n++) {
        const float x = samples[step > 0 ? n : count - 1 - n];
        energy += (double)x * x;
        if (n >= window) {
            const float old = samples[step > 0 ? n - window : count - 1 - (n - window)];
            energy -= (double)old * old;
        }
        above = energy > energy_above ? above + 1 : 0;
        if (above >= run) return n + 1 - run;
    }
    return count;
}

void es_synth_trim(const float *samples, size_t count, size_t *begin, size_t *end) {
    *begin = first_sound(samples, count, 1);
    if (*begin >= count) {
        *begin = *end = count;
        return;
    }
    *end = count - first_sound(samples, count, -1);
}

static int write_clip(const char *path, const float *samples, size_t count, es_error *err) {
    SF_INFO info = {
        .samplerate = CLIP_RATE_HZ, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    SNDFILE *file = sf_open(path, SFM_WRITE, &info);
    if (!file) return es_error_set(err, ES_SYNTH_ERR_IO, "%s: %s", path, sf_strerror(NULL));
    const sf_count_t written = sf_write_float(file, samples, (sf_count_t)count);
    const int closed = sf_close(file);
    if (written != (sf_count_t)count || closed != 0)
        return es_error_set(err, ES_SYNTH_ERR_IO, "%s: cannot write the clip", path);
    return 0;
}

int es_synth_espeak_clip(const char *voice, int rate, int pitch, const char *text, const char *path,
                         es_error *err) {
    if (synth_rate_hz <= 0)
        return es_error_set(err, ES_SYNTH_ERR_ESPEAK, "espeak-ng is not started (es_synth_start)");
    if (select_voice(voice) != 0)
        return es_error_set(err, ES_SYNTH_ERR_ESPEAK, "espeak-ng has no voice %s", voice);
    espeak_SetParameter(espeakRATE, rate, 0);
    espeak_SetParameter(espeakPITCH, pitch, 0);
    espeak_SetSynthCallback(collect_samples);
    sample_list said = {0};
    /* The flags `espeak-ng` itself speaks with: [[phonemes]] and a closing pause. */
    const espeak_ERROR spoken =
        espeak_Synth(text, strlen(text) + 1, 0, POS_CHARACTER, 0,
                     espeakCHARS_AUTO | espeakPHONEMES | espeakENDPAUSE, NULL, &said);
    if (spoken != EE_OK || espeak_Synchronize() != EE_OK || said.failed) {
        free(said.data);
        return es_error_set(err, ES_SYNTH_ERR_ESPEAK, "espeak-ng cannot say \"%s\" with %s", text,
                            voice);
    }

    /* espeak-ng's 16-bit samples as floats at full scale 1 (exact: a power of two). */
    float *spoken_samples = malloc(sizeof(float) * (said.count > 0 ? said.count : 1));
    float *clip = NULL;
    size_t produced = 0;
    int rc = ES_SYNTH_ERR_NOMEM;
    if (!spoken_samples) {
        es_error_set(err, rc, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < said.count; i++)
        spoken_samples[i] = (float)said.data[i] / 32768.0f;
    es_error dsp_err;
    const int resampled = es_resample_clip(spoken_samples, said.count, synth_rate_hz, CLIP_RATE_HZ,
                                           ES_CLIP_RESAMPLE_LOW, &clip, &produced, &dsp_err);
    if (resampled != ES_DSP_OK) {
        rc = resampled == ES_DSP_ERR_NOMEM ? ES_SYNTH_ERR_NOMEM : ES_SYNTH_ERR_ESPEAK;
        es_error_set(err, rc, "espeak-ng's %d Hz: %s", synth_rate_hz, dsp_err.why);
        goto done;
    }
    /* sox -G: lower the level rather than clip what resampling overshot. */
    float peak = 0.0f;
    for (size_t i = 0; i < produced; i++)
        peak = fabsf(clip[i]) > peak ? fabsf(clip[i]) : peak;
    if (peak > 32767.0f / 32768.0f)
        for (size_t i = 0; i < produced; i++)
            clip[i] *= 32767.0f / 32768.0f / peak;
    size_t begin, end;
    es_synth_trim(clip, produced, &begin, &end);
    rc = write_clip(path, clip + begin, end - begin, err);
done:
    free(said.data);
    free(spoken_samples);
    free(clip);
    return rc;
}
