#include "labels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void es_speech_label_config_default(es_speech_label_config *config) {
    *config = (es_speech_label_config){
        .sample_rate_hz = 16000,
        .window_samples = 400,
        .hop_samples = 160,
        .floor_percentile = 0.05f,
        .above_floor_db = 12.0f,
        .below_peak_db = 40.0f,
        .absolute_min_dbfs = -65.0f,
        .hangover_frames = 5,
        .max_gap_frames = 8,
        .min_speech_frames = 6,
    };
}

int es_label_frame_count(const es_speech_label_config *config, size_t samples) {
    if (samples < (size_t)config->window_samples) return 0;
    return (int)(1 + (samples - (size_t)config->window_samples) / (size_t)config->hop_samples);
}

static int compare_floats(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Sets runs of `value` shorter than `min_run` to the other value; a run that
 * touches either end of the clip is kept when `keep_edges`. */
static void drop_short_runs(uint8_t *labels, int frames, uint8_t value, int min_run,
                            int keep_edges) {
    int t = 0;
    while (t < frames) {
        if (labels[t] != value) {
            t++;
            continue;
        }
        int end = t;
        while (end < frames && labels[end] == value)
            end++;
        const int at_edge = t == 0 || end == frames;
        if (end - t < min_run && !(keep_edges && at_edge))
            memset(labels + t, !value, (size_t)(end - t));
        t = end;
    }
}

int es_speech_labels(const es_speech_label_config *config, const float *samples, size_t count,
                     uint8_t *labels, es_error *err) {
    const int frames = es_label_frame_count(config, count);
    if (frames == 0) return 0;
    float *energy_db = malloc(sizeof(float) * (size_t)frames * 2);
    if (!energy_db)
        return es_error_set(err, ES_LABELS_ERR_NOMEM, "out of memory for %d frames' labels",
                            frames);
    float *sorted = energy_db + frames;
    for (int t = 0; t < frames; t++) {
        const float *window = samples + (size_t)t * config->hop_samples;
        double sum = 0.0;
        for (int i = 0; i < config->window_samples; i++)
            sum += (double)window[i] * window[i];
        energy_db[t] = (float)(10.0 * log10(sum / config->window_samples + 1e-12));
    }
    memcpy(sorted, energy_db, sizeof(float) * (size_t)frames);
    qsort(sorted, (size_t)frames, sizeof(float), compare_floats);
    const float floor_db = sorted[(int)(config->floor_percentile * (float)(frames - 1))];
    const float peak_db = sorted[frames - 1];
    float threshold_db = floor_db + config->above_floor_db;
    threshold_db = fmaxf(threshold_db, peak_db - config->below_peak_db);
    threshold_db = fmaxf(threshold_db, config->absolute_min_dbfs);

    for (int t = 0; t < frames; t++)
        labels[t] = energy_db[t] > threshold_db;
    free(energy_db);
    /* Clicks go before the hangover would lengthen them into speech; pauses are
     * judged on the energy alone, before the hangover shortens them, so that "a
     * pause over 100 ms is not speech" means the same in every split (the
     * evaluation's truth, tools/eval/lib.js speechLabels, is this function). */
    drop_short_runs(labels, frames, 1, config->min_speech_frames, 0);
    drop_short_runs(labels, frames, 0, config->max_gap_frames + 1, 1);
    int quiet_for = config->hangover_frames + 1;
    for (int t = 0; t < frames; t++) {
        quiet_for = labels[t] ? 0 : quiet_for + 1;
        labels[t] = quiet_for <= config->hangover_frames;
    }
    int speech = 0;
    for (int t = 0; t < frames; t++)
        speech += labels[t];
    return speech;
}

void es_keyword_window_frames(const es_speech_label_config *config, double start_s, double end_s,
                              int frames, int *start_frame, int *end_frame) {
    const double hop = config->hop_samples, window = config->window_samples;
    const double start_sample = start_s * config->sample_rate_hz;
    const double end_sample = end_s * config->sample_rate_hz;
    /* Frame t covers samples [t hop, t hop + window). */
    int first = (int)ceil((start_sample - window) / hop);
    int last = (int)ceil(end_sample / hop);
    if (first < 0) first = 0;
    if (last > frames) last = frames;
    if (first > last) first = last;
    *start_frame = first;
    *end_frame = last;
}

void es_keyword_frame_classes(int frames, int keyword, int kw_start, int kw_end, int *classes) {
    for (int t = 0; t < frames; t++)
        classes[t] = 0;
    if (keyword <= 0) return;
    const int first = kw_end + ES_KEYWORD_DECISION_DELAY_FRAMES;
    for (int t = kw_start < 0 ? 0 : kw_start; t < first && t < frames; t++)
        classes[t] = -1;
    for (int t = first < 0 ? 0 : first; t < first + ES_KEYWORD_TARGET_FRAMES && t < frames; t++)
        classes[t] = keyword;
}
