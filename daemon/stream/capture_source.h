/*
 * capture_source — a capture device feeding a live pipeline: the one place
 * where PortAudio's callback meets the pipeline (`earshot mic` and the
 * service's device sources both use it).
 *
 * The device is opened first, because the pipeline is made for the format
 * the device gives (es_capture_source_pipeline_input); the pipeline is then
 * handed over at start. From then on PortAudio's callback thread runs the
 * pipeline's producer half (es_capture_source_feed) and the caller's thread
 * consumes (es_pipeline_consume), watches the device (es_capture_check on
 * es_capture_source_capture) and, to stop, ends the input:
 *
 *     es_capture_source_open(&device, &source, &err);
 *     es_capture_source_pipeline_input(source, &config);  ... es_pipeline_create
 *     es_capture_source_start(source, pipeline, &err);
 *     while (es_pipeline_consume(pipeline, ...) != ES_PIPELINE_CLOSED)
 *         if (stopping) es_capture_source_end_input(source);
 *     es_capture_source_close(source);  then es_pipeline_destroy(pipeline)
 *
 * Real-time rules: the callback only notes an input overflow and calls
 * es_pipeline_feed, which with ES_RING_DROP_OLDEST (what
 * es_capture_source_pipeline_input asks for) neither allocates, locks nor
 * waits: a late consumer costs the oldest frames, counted in the pipeline's
 * ring_drops. PortAudio must be initialised (es_capture_init) around it.
 */
#ifndef ES_CAPTURE_SOURCE_H
#define ES_CAPTURE_SOURCE_H

#include <stddef.h>

#include "capture.h"
#include "error.h"
#include "pipeline.h"

typedef struct es_capture_source es_capture_source;

/* Resolves and opens the device `device` names (its on_audio and user are
 * ignored: the source installs its own callback); the stream does not run
 * yet. Errors as es_capture_open (ES_CAPTURE_ERR_NO_DEVICE, ...). */
int es_capture_source_open(const es_capture_config *device, es_capture_source **out, es_error *err);

/* The device's stream, for its name, format, counters and health
 * (es_capture_check). Owned by the source. */
es_capture *es_capture_source_capture(const es_capture_source *source);

/* Fills the input side of a live pipeline's config for this device: its
 * rate and channel count, and a ring that drops its oldest frame when full
 * (capture never waits). */
void es_capture_source_pipeline_input(const es_capture_source *source, es_pipeline_config *config);

/* Starts feeding `pipeline` (live, borrowed until es_capture_source_close). */
int es_capture_source_start(es_capture_source *source, es_pipeline *pipeline, es_error *err);

/* Stops the capture (buffers still pending are fed first, unless the device
 * is lost) and closes the pipeline's input, so that the consumer drains
 * what is left and sees ES_PIPELINE_CLOSED. Once. */
void es_capture_source_end_input(es_capture_source *source);

/* Stops and closes the device; after it returns the callback never runs
 * again, so the pipeline may be destroyed. The pipeline's input is left as
 * it is (a caller that drains it itself closes it after). NULL is a no-op. */
void es_capture_source_close(es_capture_source *source);

/* [rt] The es_capture_fn every capture source installs. `pipeline_slot`
 * points at the es_pipeline * to feed, set before the capture starts. Public
 * so that tests can watch the very callback the sources run. */
void es_capture_source_feed(const float *interleaved, size_t frames, int input_overflow,
                            void *pipeline_slot);

#endif
