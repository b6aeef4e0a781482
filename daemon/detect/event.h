/*
 * event — what earshot tells the world (DESIGN.md, "Events").
 *
 * The detectors (detect.h) make events, the pipeline (daemon/stream/)
 * stamps each with its source and, live, a wallclock, and hands it to the
 * caller's es_event_sink; the outlets write it as one JSON line
 * (es_event_to_json): sinks of `earshot file` and `mic`, the service's event
 * socket, stdout and MQTT, and (as Wyoming events) the Wyoming server. So
 * the line format lives here, once. Times are seconds of stream time.
 *
 * Pure functions over caller-owned memory: no allocation, no I/O.
 */
#ifndef ES_EVENT_H
#define ES_EVENT_H

#include <stddef.h>

typedef enum es_event_type {
    ES_EVENT_SPEECH = 1,
    ES_EVENT_KEYWORD = 2,
    /* A speech segment has begun and will be kept (opt-in, detect.h):
     * `start_s` is the start its speech event will carry, `time_s` when it
     * was known; no end or score yet. */
    ES_EVENT_SPEECH_START = 3,
} es_event_type;

typedef struct es_event {
    es_event_type type;
    const char *source;  /* filled in by the pipeline; detectors leave NULL */
    const char *keyword; /* keyword events: the model's label */
    double time_s;       /* keyword: when the detector fired; speech_start: when sent */
    double start_s;
    double end_s;
    float score;
    double wallclock_s; /* live sources: Unix time of the event; 0 = offline */
} es_event;

typedef void (*es_event_sink)(const es_event *event, void *user);

/* "speech", "keyword", "speech_start": the event's "type" (and its MQTT
 * topic's last level). */
const char *es_event_type_name(es_event_type type);

/* Formats one event as a JSON line (with '\n'); returns the length, or the
 * length it would need when `size` is too small (like snprintf). */
int es_event_to_json(const es_event *event, char *buf, size_t size);

/* Writes `text` as a JSON string, quotes included, with the same escaping
 * and UTF-8 repair as events (other protocols reuse it, e.g. wyoming.c);
 * returns the length like snprintf. */
int es_json_quote(const char *text, char *buf, size_t size);

#endif
