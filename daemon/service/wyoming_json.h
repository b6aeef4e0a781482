/*
 * wyoming_json — just enough of a JSON reader for Wyoming event headers.
 *
 * Wyoming headers and data blocks are small JSON objects coming from the
 * network, so the reader works in place on the bytes it is given (no
 * allocation), never reads past `len`, and bounds nesting. A value is a
 * span of the text; callers look members up by key and convert spans to
 * numbers or strings when they need them.
 *
 * Every call is a pure function of its input; nothing here prints.
 *
 * Private to daemon/service (wyoming.c and its tests).
 */
#ifndef ES_WYOMING_JSON_H
#define ES_WYOMING_JSON_H

#include <stddef.h>

typedef enum es_json_type {
    ES_JSON_NULL = 0,
    ES_JSON_BOOL,
    ES_JSON_NUMBER,
    ES_JSON_STRING, /* the span includes the quotes */
    ES_JSON_ARRAY,
    ES_JSON_OBJECT,
} es_json_type;

typedef struct es_json_value {
    es_json_type type;
    const char *text;
    size_t len;
} es_json_value;

/* Deeper nesting is refused as malformed: a hostile header cannot exhaust
 * the stack. */
#define ES_JSON_MAX_DEPTH 32

/* Parses the whole of text[0..len) as one JSON value (whitespace around it
 * allowed). 0 and *out set, or -1 when it is not exactly one valid value. */
int es_json_parse(const char *text, size_t len, es_json_value *out);

/* The member `key` of an object: 1 found (*out set), 0 absent, -1 when
 * `object` is not an object. Keys are compared without unescaping. */
int es_json_get(const es_json_value *object, const char *key, es_json_value *out);

/* Iterates an array: start with *pos = 0; 1 and *item set while items
 * remain, 0 at the end, -1 when `array` is not an array. */
int es_json_array_next(const es_json_value *array, size_t *pos, es_json_value *item);

/* A number as a double: 0, or -1 when the value is not a number. */
int es_json_number(const es_json_value *value, double *out);

/* A string unescaped into buf (NUL-terminated; \uXXXX becomes UTF-8, an
 * unpaired surrogate U+FFFD): its length, or -1 when the value is not a
 * string or does not fit in `size` bytes. */
int es_json_string(const es_json_value *value, char *buf, size_t size);

#endif
