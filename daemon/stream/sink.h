/*
 * Sinks: where `earshot file` (and anyone else) writes a pipeline's results.
 *
 *   jsonl     one event per line (DESIGN.md, "Events"), flushed per event
 *   rttm      speech segments: SPEAKER <file-id> 1 <start> <dur> <NA> <NA> speech <NA> <NA>
 *   audacity  label track: start<TAB>end<TAB>label (speech or the keyword)
 *   frames    CSV: time_s,speech,<keyword>,... one row per frame, raw posteriors
 *
 * speech_start events (opt-in, detect.h) appear only in jsonl; the other
 * formats ignore them.
 *
 * A sink writes to a FILE it borrows; es_sink_attach() points a pipeline
 * config's callbacks at it, so formats that need events get events and
 * `frames` gets posteriors.
 */
#ifndef ES_SINK_H
#define ES_SINK_H

#include <stdio.h>

#include "event.h"
#include "pipeline.h"

typedef enum es_output_format {
    ES_FORMAT_JSONL = 0,
    ES_FORMAT_RTTM = 1,
    ES_FORMAT_AUDACITY = 2,
    ES_FORMAT_FRAMES = 3,
} es_output_format;

/* "jsonl", "rttm", "audacity", "frames"; returns 0, or -1 for another name. */
int es_output_format_parse(const char *name, es_output_format *format);
const char *es_output_format_name(es_output_format format);

typedef struct es_sink es_sink;

/* `file_id` names the recording in RTTM lines (copied; whitespace, control
 * bytes and '%' percent-encoded, e.g. "my file" -> "my%20file", so a line
 * always has its 10 fields). Returns 0 or -1 (no memory). */
int es_sink_create(es_output_format format, FILE *out, const char *file_id, es_sink **sink);
void es_sink_destroy(es_sink *sink);

/* Sets config->on_event / on_frame (and their user pointers) for this format. */
void es_sink_attach(es_sink *sink, es_pipeline_config *config);

/* Writes what comes before the first result: the CSV header for `frames`
 * (keyword columns from the pipeline), nothing for the other formats. */
void es_sink_begin(es_sink *sink, const es_pipeline *pipeline);
/* The same for a caller without an es_pipeline (`earshot file` runs through
 * earshot.h): the keyword columns are keywords[0..count). */
void es_sink_begin_keywords(es_sink *sink, const char *const *keywords, int count);

/* Callbacks (es_event_sink / es_posterior_sink), `user` is the es_sink. */
void es_sink_event(const es_event *event, void *user);
void es_sink_frame(const es_frame_posteriors *frame, void *user);

/* Flushes; returns 0, or -1 when any write failed (disk full, closed pipe). */
int es_sink_end(es_sink *sink);

#endif
