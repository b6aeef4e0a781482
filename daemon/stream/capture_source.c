/*
 * A capture device feeding a live pipeline (stream.h).
 */
#include "stream.h"

#include <stdlib.h>

struct es_capture_source {
    /* Written before the capture starts (es_capture_source_start), only read
     * by the callback: Pa_StartStream orders the two. */
    es_pipeline *pipeline;
    es_capture *capture;
};

void es_capture_source_feed(const float *interleaved, size_t frames, int input_overflow,
                            void *pipeline_slot) {
    es_pipeline *pipeline = *(es_pipeline **)pipeline_slot;
    if (input_overflow) es_pipeline_note_input_overflow(pipeline);
    es_pipeline_feed(pipeline, interleaved, frames);
}

int es_capture_source_open(const es_capture_config *device, es_capture_source **out,
                           es_error *err) {
    es_capture_source *source = calloc(1, sizeof *source);
    if (!source) return es_error_set(err, ES_CAPTURE_ERR_NOMEM, "out of memory");
    es_capture_config config = *device;
    config.on_audio = es_capture_source_feed;
    config.user = &source->pipeline;
    int rc = es_capture_open(&config, &source->capture, err);
    if (rc != ES_CAPTURE_OK) {
        free(source);
        return rc;
    }
    *out = source;
    return ES_CAPTURE_OK;
}

es_capture *es_capture_source_capture(const es_capture_source *source) {
    return source->capture;
}

void es_capture_source_pipeline_input(const es_capture_source *source, es_pipeline_config *config) {
    config->input_rate_hz = es_capture_sample_rate(source->capture);
    config->input_channels = es_capture_channels(source->capture);
    config->ring_policy = ES_RING_DROP_OLDEST;
}

int es_capture_source_start(es_capture_source *source, es_pipeline *pipeline, es_error *err) {
    source->pipeline = pipeline;
    return es_capture_start(source->capture, err);
}

void es_capture_source_end_input(es_capture_source *source) {
    es_capture_stop(source->capture);
    es_pipeline_close_input(source->pipeline);
}

void es_capture_source_close(es_capture_source *source) {
    if (!source) return;
    es_capture_close(source->capture);
    free(source);
}
