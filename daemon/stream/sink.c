/*
 * Output formats for events and per-frame posteriors (stream.h).
 */
#include "stream.h"

#include <stdlib.h>
#include <string.h>

struct es_sink {
    es_output_format format;
    FILE *out;
    char *file_id;
};

static const char *const format_names[] = {
    [ES_FORMAT_JSONL] = "jsonl",
    [ES_FORMAT_RTTM] = "rttm",
    [ES_FORMAT_AUDACITY] = "audacity",
    [ES_FORMAT_FRAMES] = "frames",
};

int es_output_format_parse(const char *name, es_output_format *format) {
    for (size_t i = 0; i < sizeof format_names / sizeof format_names[0]; i++) {
        if (strcmp(name, format_names[i]) == 0) {
            *format = (es_output_format)i;
            return 0;
        }
    }
    return -1;
}

const char *es_output_format_name(es_output_format format) {
    return (size_t)format < sizeof format_names / sizeof format_names[0] ? format_names[format]
                                                                         : "unknown";
}

/* RTTM fields are separated by whitespace and a record is one line, so a file
 * name with a space or newline would shift or split every field after it:
 * such bytes are percent-encoded (as in URLs), '%' too so the encoding can
 * be undone. An empty name becomes RTTM's own "<NA>". */
static int rttm_needs_encoding(unsigned char c) {
    return c <= ' ' || c == 0x7f || c == '%';
}

static char *rttm_encode(const char *id) {
    if (!*id) return strdup("<NA>");
    size_t n = 0;
    for (const unsigned char *c = (const unsigned char *)id; *c; c++)
        n += rttm_needs_encoding(*c) ? 3 : 1;
    char *encoded = malloc(n + 1), *w = encoded;
    if (!encoded) return NULL;
    for (const unsigned char *c = (const unsigned char *)id; *c; c++) {
        if (rttm_needs_encoding(*c))
            w += sprintf(w, "%%%02X", *c);
        else
            *w++ = (char)*c;
    }
    *w = '\0';
    return encoded;
}

int es_sink_create(es_output_format format, FILE *out, const char *file_id, es_sink **sink) {
    *sink = NULL;
    es_sink *s = calloc(1, sizeof *s);
    if (!s || !(s->file_id = rttm_encode(file_id ? file_id : ""))) {
        free(s);
        return -1;
    }
    s->format = format;
    s->out = out;
    *sink = s;
    return 0;
}

void es_sink_destroy(es_sink *sink) {
    if (!sink) return;
    free(sink->file_id);
    free(sink);
}

void es_sink_attach(es_sink *sink, es_pipeline_config *config) {
    int frames = sink->format == ES_FORMAT_FRAMES;
    config->on_event = frames ? NULL : es_sink_event;
    config->event_user = frames ? NULL : sink;
    config->on_frame = frames ? es_sink_frame : NULL;
    config->frame_user = frames ? sink : NULL;
}

void es_sink_begin(es_sink *sink, const es_pipeline *pipeline) {
    if (sink->format != ES_FORMAT_FRAMES) return;
    fputs("time_s,speech", sink->out);
    for (int i = 0; i < es_pipeline_keyword_count(pipeline); i++)
        fprintf(sink->out, ",%s", es_pipeline_keyword_label(pipeline, i));
    fputc('\n', sink->out);
}

void es_sink_begin_keywords(es_sink *sink, const char *const *keywords, int count) {
    if (sink->format != ES_FORMAT_FRAMES) return;
    fputs("time_s,speech", sink->out);
    for (int i = 0; i < count; i++)
        fprintf(sink->out, ",%s", keywords[i]);
    fputc('\n', sink->out);
}

static void write_json(const es_event *event, FILE *out) {
    char line[512];
    int n = es_event_to_json(event, line, sizeof line);
    if (n < 0) return;
    if ((size_t)n < sizeof line) {
        fwrite(line, 1, (size_t)n, out);
        return;
    }
    /* Only a very long source or keyword name gets here. */
    char *big = malloc((size_t)n + 1);
    if (!big) return;
    es_event_to_json(event, big, (size_t)n + 1);
    fwrite(big, 1, (size_t)n, out);
    free(big);
}

void es_sink_event(const es_event *event, void *user) {
    es_sink *sink = user;
    switch (sink->format) {
    case ES_FORMAT_JSONL:
        write_json(event, sink->out);
        break;
    case ES_FORMAT_RTTM:
        /* RTTM describes who speaks when; keywords have no place in it. */
        if (event->type != ES_EVENT_SPEECH) return;
        fprintf(sink->out, "SPEAKER %s 1 %.3f %.3f <NA> <NA> speech <NA> <NA>\n", sink->file_id,
                event->start_s, event->end_s - event->start_s);
        break;
    case ES_FORMAT_AUDACITY:
        /* A label needs an end: the segment's speech event brings it. */
        if (event->type == ES_EVENT_SPEECH_START) return;
        fprintf(sink->out, "%.3f\t%.3f\t%s\n", event->start_s, event->end_s,
                event->type == ES_EVENT_KEYWORD ? event->keyword : "speech");
        break;
    case ES_FORMAT_FRAMES:
        return;
    }
    /* Results are streamed as found: a reader of a pipe sees each at once. */
    fflush(sink->out);
}

void es_sink_frame(const es_frame_posteriors *frame, void *user) {
    es_sink *sink = user;
    fprintf(sink->out, "%.2f,%.6f", frame->time_s, frame->speech);
    for (int i = 0; i < frame->keyword_count; i++)
        fprintf(sink->out, ",%.6f", frame->keywords[i]);
    fputc('\n', sink->out);
}

int es_sink_end(es_sink *sink) {
    int failed = fflush(sink->out) != 0 || ferror(sink->out);
    return failed ? -1 : 0;
}
