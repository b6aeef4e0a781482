/*
 * A validating JSON scanner (RFC 8259 grammar) that records spans instead of
 * building a tree: the Wyoming server only ever asks for a few members.
 */
#include "wyoming_json.h"

#include <stdlib.h>
#include <string.h>

typedef struct scanner {
    const char *p;
    const char *end;
    int depth;
} scanner;

static void skip_space(scanner *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

static int is_hex(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int scan_literal(scanner *s, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) return -1;
    s->p += n;
    return 0;
}

static int scan_string(scanner *s) {
    s->p++; /* the opening quote */
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p++;
        if (c == '"') return 0;
        if (c < 0x20) return -1;
        if (c != '\\') continue;
        if (s->p >= s->end) return -1;
        char e = *s->p++;
        if (e == 'u') {
            for (int i = 0; i < 4; i++, s->p++)
                if (s->p >= s->end || !is_hex(*s->p)) return -1;
        } else if (!strchr("\"\\/bfnrt", e) || e == '\0') {
            return -1;
        }
    }
    return -1;
}

static int scan_digits(scanner *s) {
    const char *start = s->p;
    while (s->p < s->end && is_digit(*s->p))
        s->p++;
    return s->p > start ? 0 : -1;
}

static int scan_number(scanner *s) {
    if (*s->p == '-') s->p++;
    if (s->p >= s->end) return -1;
    if (*s->p == '0')
        s->p++;
    else if (scan_digits(s) != 0)
        return -1;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (scan_digits(s) != 0) return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        if (scan_digits(s) != 0) return -1;
    }
    return 0;
}

static int scan_value(scanner *s, es_json_type *type);

/* Objects and arrays share the walk: members are `"key": value` or `value`. */
static int scan_container(scanner *s, char close, int keyed) {
    if (++s->depth > ES_JSON_MAX_DEPTH) return -1;
    s->p++;
    skip_space(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return 0;
    }
    for (;;) {
        es_json_type type;
        if (keyed) {
            skip_space(s);
            if (s->p >= s->end || *s->p != '"' || scan_string(s) != 0) return -1;
            skip_space(s);
            if (s->p >= s->end || *s->p++ != ':') return -1;
        }
        if (scan_value(s, &type) != 0) return -1;
        skip_space(s);
        if (s->p >= s->end) return -1;
        char c = *s->p++;
        if (c == close) break;
        if (c != ',') return -1;
    }
    s->depth--;
    return 0;
}

static int scan_value(scanner *s, es_json_type *type) {
    skip_space(s);
    if (s->p >= s->end) return -1;
    switch (*s->p) {
    case '{':
        *type = ES_JSON_OBJECT;
        return scan_container(s, '}', 1);
    case '[':
        *type = ES_JSON_ARRAY;
        return scan_container(s, ']', 0);
    case '"':
        *type = ES_JSON_STRING;
        return scan_string(s);
    case 't':
        *type = ES_JSON_BOOL;
        return scan_literal(s, "true");
    case 'f':
        *type = ES_JSON_BOOL;
        return scan_literal(s, "false");
    case 'n':
        *type = ES_JSON_NULL;
        return scan_literal(s, "null");
    default:
        *type = ES_JSON_NUMBER;
        return scan_number(s);
    }
}

/* The value starting at s->p (after whitespace), as a span. */
static int next_value(scanner *s, es_json_value *out) {
    skip_space(s);
    const char *start = s->p;
    if (scan_value(s, &out->type) != 0) return -1;
    out->text = start;
    out->len = (size_t)(s->p - start);
    return 0;
}

int es_json_parse(const char *text, size_t len, es_json_value *out) {
    scanner s = {text, text + len, 0};
    if (next_value(&s, out) != 0) return -1;
    skip_space(&s);
    return s.p == s.end ? 0 : -1;
}

/* Steps over the separator before the next member or item of an already
 * validated container: 1 when one follows, 0 at its end. */
static int next_member(scanner *s, int first) {
    skip_space(s);
    if (first) s->p++; /* the opening bracket */
    skip_space(s);
    if (*s->p == '}' || *s->p == ']') return 0;
    if (!first) {
        s->p++; /* ',' */
        skip_space(s);
    }
    return 1;
}

int es_json_get(const es_json_value *object, const char *key, es_json_value *out) {
    if (object->type != ES_JSON_OBJECT) return -1;
    scanner s = {object->text, object->text + object->len, 0};
    size_t key_len = strlen(key);
    for (int first = 1; next_member(&s, first); first = 0) {
        es_json_value name, value;
        if (next_value(&s, &name) != 0) return -1;
        skip_space(&s);
        s.p++; /* ':' */
        if (next_value(&s, &value) != 0) return -1;
        if (name.len == key_len + 2 && memcmp(name.text + 1, key, key_len) == 0) {
            *out = value;
            return 1;
        }
        skip_space(&s);
    }
    return 0;
}

int es_json_array_next(const es_json_value *array, size_t *pos, es_json_value *item) {
    if (array->type != ES_JSON_ARRAY) return -1;
    scanner s = {array->text + *pos, array->text + array->len, 0};
    if (!next_member(&s, *pos == 0)) return 0;
    if (next_value(&s, item) != 0) return -1;
    skip_space(&s);
    *pos = (size_t)(s.p - array->text);
    return 1;
}

int es_json_number(const es_json_value *value, double *out) {
    if (value->type != ES_JSON_NUMBER || value->len >= 64) return -1;
    char tmp[64];
    memcpy(tmp, value->text, value->len);
    tmp[value->len] = '\0';
    *out = strtod(tmp, NULL);
    return 0;
}

static unsigned hex4(const char *p) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v = v * 16 + (unsigned)(is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

static size_t put_utf8(unsigned cp, char *out) {
    if (cp < 0x80) return out[0] = (char)cp, 1;
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes the escape after a backslash at *p (validated by the scanner). */
static unsigned unescape(const char **p, const char *end) {
    char e = *(*p)++;
    switch (e) {
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    case 'u':
        break;
    default:
        return (unsigned char)e;
    }
    unsigned cp = hex4(*p);
    *p += 4;
    if (cp >= 0xd800 && cp <= 0xdbff && end - *p >= 6 && (*p)[0] == '\\' && (*p)[1] == 'u') {
        unsigned low = hex4(*p + 2);
        if (low >= 0xdc00 && low <= 0xdfff) {
            *p += 6;
            return 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        }
    }
    return (cp >= 0xd800 && cp <= 0xdfff) ? 0xfffd : cp;
}

int es_json_string(const es_json_value *value, char *buf, size_t size) {
    if (value->type != ES_JSON_STRING || size == 0) return -1;
    const char *p = value->text + 1, *end = value->text + value->len - 1;
    size_t n = 0;
    while (p < end) {
        char tmp[4];
        size_t k;
        if (*p == '\\') {
            p++;
            k = put_utf8(unescape(&p, end), tmp);
        } else {
            tmp[0] = *p++;
            k = 1;
        }
        if (n + k >= size) return -1;
        memcpy(buf + n, tmp, k);
        n += k;
    }
    buf[n] = '\0';
    return (int)n;
}
