/*
 * The live consumer half of a pipeline (stream.h), split in three for an
 * engine that steps many pipelines' models together (stream_group.c):
 * take the waiting frames, let the engine step the models on them, run the
 * detectors. es_pipeline_consume does the same three steps with the
 * pipeline's own models, so a pipeline's posteriors and events do not
 * depend on which of the two consumes it. Private to daemon/stream.
 */
#ifndef ES_PIPELINE_ENGINE_H
#define ES_PIPELINE_ENGINE_H

#include "stream.h"

/* Where the models of a pipeline's taken frames read and write: frame t's
 * features are features + t * bands; the VAD model's outputs of frame t go
 * to vad_outputs + t * its output size, keyword model k's to kws_outputs[k]
 * + t * its output size. Valid as long as the pipeline. */
typedef struct es_pipeline_models {
    const float *features;
    const es_model *vad_model;
    es_state *vad_state;
    float *vad_outputs;
    int kws_count;
    const es_model *const *kws_models;
    es_state *const *kws_states;
    float *const *kws_outputs;
} es_pipeline_models;

/* The most frames one take hands over. */
int es_pipeline_max_take(const es_pipeline *p);

/* Fills `models`; ES_PIPELINE_ERR_STATE for an offline pipeline. */
int es_pipeline_models_of(es_pipeline *p, es_pipeline_models *models);

/* Live only, from the consuming thread: takes up to `max` (at most
 * es_pipeline_max_take) waiting frames and returns how many; once the input
 * is closed and every frame was taken, flushes the detectors (their last
 * events are sent) and returns ES_PIPELINE_CLOSED, then always that. */
int es_pipeline_take_frames(es_pipeline *p, int max);

/* The detectors and sinks over the frames taken, in order, once the models
 * have written their outputs. */
void es_pipeline_detect_taken(es_pipeline *p);

#endif
