/*
 * Events as JSON lines (DESIGN.md, "Events"). Times in seconds with
 * millisecond resolution: frames are 10 ms apart, so no digit is lost.
 */
#include "detect.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Appends like snprintf: counts everything, writes what fits, keeps the
 * buffer NUL-terminated. */
typedef struct json_writer {
    char *buf;
    size_t size;
    size_t len;
} json_writer;

static void put_bytes(json_writer *w, const char *text, size_t n) {
    if (w->len < w->size) {
        size_t room = w->size - w->len - 1;
        memcpy(w->buf + w->len, text, n < room ? n : room);
        w->buf[w->len + (n < room ? n : room)] = '\0';
    }
    w->len += n;
}

static void put_format(json_writer *w, const char *fmt, ...) {
    char tmp[400]; /* "%.3f" of the largest double is 313 characters */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) put_bytes(w, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Length of the well-formed UTF-8 sequence at `c` (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0 when it is not one. */
static size_t utf8_sequence_length(const unsigned char *c) {
    size_t n;
    unsigned char min = 0x80, max = 0xbf; /* the second byte's range */
    if (c[0] >= 0xc2 && c[0] <= 0xdf) {
        n = 2;
    } else if (c[0] >= 0xe0 && c[0] <= 0xef) {
        n = 3;
        if (c[0] == 0xe0) min = 0xa0;
        if (c[0] == 0xed) max = 0x9f;
    } else if (c[0] >= 0xf0 && c[0] <= 0xf4) {
        n = 4;
        if (c[0] == 0xf0) min = 0x90;
        if (c[0] == 0xf4) max = 0x8f;
    } else {
        return 0;
    }
    if (c[1] < min || c[1] > max) return 0;
    for (size_t i = 2; i < n; i++)
        if (c[i] < 0x80 || c[i] > 0xbf) return 0; /* the NUL ends a string too early too */
    return n;
}

/* A JSON string: quotes, backslashes and control characters escaped. Names
 * come from the file system, which allows any bytes, but JSON text must be
 * UTF-8: a byte that starts no valid sequence becomes U+FFFD, as a decoder
 * replaces it, so parsers accept every line. */
static void put_string(json_writer *w, const char *text) {
    put_bytes(w, "\"", 1);
    const unsigned char *c = (const unsigned char *)(text ? text : "");
    while (*c) {
        if (*c == '"' || *c == '\\') {
            char escaped[2] = {'\\', (char)*c};
            put_bytes(w, escaped, 2);
        } else if (*c < 0x20) {
            put_format(w, "\\u%04x", *c);
        } else if (*c < 0x80) {
            put_bytes(w, (const char *)c, 1);
        } else {
            size_t n = utf8_sequence_length(c);
            if (n > 0) {
                put_bytes(w, (const char *)c, n);
                c += n;
                continue;
            }
            put_bytes(w, "\xef\xbf\xbd", 3); /* U+FFFD REPLACEMENT CHARACTER */
        }
        c++;
    }
    put_bytes(w, "\"", 1);
}

/* JSON has no NaN or infinity; a broken score must not break the line. */
static void put_number(json_writer *w, const char *key, double value) {
    put_format(w, ",\"%s\":", key);
    if (isfinite(value))
        put_format(w, "%.3f", value);
    else
        put_bytes(w, "null", 4);
}

static void put_wallclock(json_writer *w, double unix_s) {
    time_t seconds = (time_t)floor(unix_s);
    int millis = (int)((unix_s - (double)seconds) * 1000.0);
    if (millis > 999) millis = 999;
    struct tm utc;
    char text[32];
    if (!gmtime_r(&seconds, &utc) || strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc) == 0)
        return;
    put_format(w, ",\"wallclock\":\"%s.%03dZ\"", text, millis);
}

int es_json_quote(const char *text, char *buf, size_t size) {
    json_writer w = {buf, size, 0};
    if (size > 0) buf[0] = '\0';
    put_string(&w, text);
    return (int)w.len;
}

const char *es_event_type_name(es_event_type type) {
    return type == ES_EVENT_KEYWORD        ? "keyword"
           : type == ES_EVENT_SPEECH_START ? "speech_start"
                                           : "speech";
}

int es_event_to_json(const es_event *event, char *buf, size_t size) {
    json_writer w = {buf, size, 0};
    if (size > 0) buf[0] = '\0';
    int keyword = event->type == ES_EVENT_KEYWORD;
    int speech_start = event->type == ES_EVENT_SPEECH_START;
    put_format(&w, "{\"type\":\"%s\",\"source\":", es_event_type_name(event->type));
    put_string(&w, event->source);
    if (speech_start) {
        /* The segment has begun; its end and score come with its speech event. */
        put_number(&w, "start", event->start_s);
        put_number(&w, "time", event->time_s);
    } else if (keyword) {
        put_bytes(&w, ",\"keyword\":", 11);
        put_string(&w, event->keyword);
        put_number(&w, "time", event->time_s);
    }
    if (!speech_start) {
        put_number(&w, "start", event->start_s);
        put_number(&w, "end", event->end_s);
        put_number(&w, "score", event->score);
    }
    if (event->wallclock_s > 0) put_wallclock(&w, event->wallclock_s);
    put_bytes(&w, "}\n", 2);
    return (int)w.len;
}
