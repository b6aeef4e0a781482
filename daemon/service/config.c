/*
 * The daemon's INI config. inih (as Debian builds it) does not pass line
 * numbers to the handler, so the file is fed to it through our own line
 * reader, which counts lines, refuses overlong ones (inih would silently
 * split them) and sees every section header — inih reports none of them,
 * which would let an empty unknown section pass.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#define CONFIG_FILE_MAX_BYTES (1 << 20)

typedef enum value_kind {
    VALUE_PROBABILITY, /* float in [0, 1] */
    VALUE_INT,         /* decimal integer in [min, max] */
    VALUE_BOOL,        /* yes/no, true/false, on/off, 1/0 */
    VALUE_STRING,      /* non-empty text */
    VALUE_PATH,        /* absolute path */
    VALUE_MODE,        /* octal permission bits */
} value_kind;

typedef struct key_spec {
    const char *section;
    const char *key;
    value_kind kind;
    size_t offset; /* into es_daemon_config */
    size_t size;   /* strings: capacity */
    long min, max; /* VALUE_INT */
} key_spec;

/* The same ranges as the command-line flags (cli_util.c). */
#define MAX_DURATION_MS 3600000L

#define FIELD(f) offsetof(es_daemon_config, f), sizeof(((es_daemon_config *)0)->f)

/* The keys of the fixed sections; [source.NAME], [models] kws and
 * [keywords] threshold.KEYWORD are handled by hand below. */
static const key_spec KEYS[] = {
    {"models", "vad", VALUE_STRING, FIELD(vad_model), 0, 0},
    {"models", "engine_threads", VALUE_INT, FIELD(engine_threads), 1, ES_STREAM_GROUP_MAX_ENGINES},
    {"vad", "threshold", VALUE_PROBABILITY, FIELD(vad.onset_threshold), 0, 0},
    {"vad", "offset_threshold", VALUE_PROBABILITY, FIELD(vad.offset_threshold), 0, 0},
    {"vad", "min_speech_ms", VALUE_INT, FIELD(vad.min_speech_ms), 0, MAX_DURATION_MS},
    {"vad", "min_silence_ms", VALUE_INT, FIELD(vad.min_silence_ms), 0, MAX_DURATION_MS},
    {"vad", "max_speech_ms", VALUE_INT, FIELD(vad.max_speech_ms), 0, MAX_DURATION_MS},
    {"vad", "speech_pad_ms", VALUE_INT, FIELD(vad.pad_ms), 0, 10000},
    {"vad", "speech_start_events", VALUE_BOOL, FIELD(vad.speech_start_events), 0, 0},
    {"keywords", "threshold", VALUE_PROBABILITY, FIELD(kws.default_threshold), 0, 0},
    {"keywords", "smooth_ms", VALUE_INT, FIELD(kws.smooth_ms), 0, ES_KWS_MAX_SMOOTH_MS},
    {"keywords", "refractory_ms", VALUE_INT, FIELD(kws.refractory_ms), 0, MAX_DURATION_MS},
    {"keywords", "vad_gate", VALUE_BOOL, FIELD(kws.vad_gate), 0, 0},
    {"events", "socket", VALUE_PATH, FIELD(events.socket_path), 0, 0},
    {"events", "socket_mode", VALUE_MODE, FIELD(events.socket_mode), 0, 0},
    {"events", "socket_group", VALUE_STRING, FIELD(events.socket_group), 0, 0},
    {"events", "backlog_events", VALUE_INT, FIELD(events.backlog_events), 1, 1000000},
    {"events", "backlog_bytes", VALUE_INT, FIELD(events.backlog_bytes), 1024, 64 << 20},
    {"events", "max_subscribers", VALUE_INT, FIELD(events.max_subscribers), 1, 65536},
    {"events", "stdout", VALUE_BOOL, FIELD(events.to_stdout), 0, 0},
    {"wyoming", "uri", VALUE_STRING, FIELD(wyoming.uri), 0, 0},
    {"wyoming", "max_clients", VALUE_INT, FIELD(wyoming.max_clients), 1, 65536},
    {"wyoming", "client_timeout_ms", VALUE_INT, FIELD(wyoming.client_timeout_ms), 1,
     MAX_DURATION_MS},
    {"wyoming", "language", VALUE_STRING, FIELD(wyoming.language), 0, 0},
    {"mqtt", "host", VALUE_STRING, FIELD(mqtt.host), 0, 0},
    {"mqtt", "port", VALUE_INT, FIELD(mqtt.port), 1, 65535},
    {"mqtt", "node", VALUE_STRING, FIELD(mqtt.node), 0, 0},
    {"mqtt", "topic_prefix", VALUE_STRING, FIELD(mqtt.topic_prefix), 0, 0},
    {"mqtt", "client_id", VALUE_STRING, FIELD(mqtt.client_id), 0, 0},
    {"mqtt", "username", VALUE_STRING, FIELD(mqtt.username), 0, 0},
    {"mqtt", "password", VALUE_STRING, FIELD(mqtt.password), 0, 0},
    {"mqtt", "cafile", VALUE_PATH, FIELD(mqtt.cafile), 0, 0},
    {"mqtt", "capath", VALUE_PATH, FIELD(mqtt.capath), 0, 0},
    {"mqtt", "certfile", VALUE_PATH, FIELD(mqtt.certfile), 0, 0},
    {"mqtt", "keyfile", VALUE_PATH, FIELD(mqtt.keyfile), 0, 0},
    {"mqtt", "tls_insecure", VALUE_BOOL, FIELD(mqtt.tls_insecure), 0, 0},
    {"mqtt", "keepalive_s", VALUE_INT, FIELD(mqtt.keepalive_s), 5, 65535},
    {"mqtt", "queue_events", VALUE_INT, FIELD(mqtt.queue_events), 1, 1000000},
    {"mqtt", "discovery", VALUE_BOOL, FIELD(mqtt.discovery), 0, 0},
    {"mqtt", "discovery_prefix", VALUE_STRING, FIELD(mqtt.discovery_prefix), 0, 0},
};
#define KEY_COUNT (sizeof KEYS / sizeof KEYS[0])

static const char *const FIXED_SECTIONS[] = {"models", "vad",     "keywords",
                                             "events", "wyoming", "mqtt"};
#define FIXED_SECTION_COUNT (sizeof FIXED_SECTIONS / sizeof FIXED_SECTIONS[0])
#define SOURCE_PREFIX "source."

typedef struct parser {
    es_daemon_config *config;
    const char *name;
    const char *text;
    size_t size;
    size_t pos;
    int line;

    int current_source; /* index while inside [source.NAME], else -1 */
    unsigned sections_seen;
    uint64_t keys_seen; /* one bit per KEYS entry */
    int kws_seen;
    int key_line[KEY_COUNT];
    int section_line[FIXED_SECTION_COUNT];

    es_error *err; /* never NULL here */
    int failed;
    int failed_line; /* of the error recorded, 0 when it is about no line */
} parser;

static int fail(parser *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records the first error in file order; later ones are dropped. */
static int fail(parser *p, int line, const char *fmt, ...) {
    if (p->failed && (p->failed_line == 0 || p->failed_line <= line)) return 0;
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (line > 0)
        es_error_set(p->err, ES_CONFIG_ERR, "%s:%d: %s", p->name, line, what);
    else
        es_error_set(p->err, ES_CONFIG_ERR, "%s: %s", p->name, what);
    p->failed_line = line;
    p->failed = 1;
    return 0;
}

static int fixed_section_index(const char *section) {
    for (size_t i = 0; i < FIXED_SECTION_COUNT; i++)
        if (strcmp(section, FIXED_SECTIONS[i]) == 0) return (int)i;
    return -1;
}

static int valid_source_name(const char *name) {
    if (!*name || strlen(name) >= ES_CONFIG_NAME_MAX) return 0;
    for (const char *c = name; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.') return 0;
    return 1;
}

static void enter_section(parser *p, const char *section) {
    p->current_source = -1;
    int fixed = fixed_section_index(section);
    if (fixed >= 0) {
        if (p->sections_seen & (1u << fixed)) {
            fail(p, p->line, "section [%s] appears twice", section);
            return;
        }
        p->sections_seen |= 1u << fixed;
        p->section_line[fixed] = p->line;
        return;
    }
    if (strncmp(section, SOURCE_PREFIX, strlen(SOURCE_PREFIX)) != 0) {
        fail(p, p->line,
             "unknown section [%s] (expected [source.NAME], [models], [vad], [keywords], "
             "[events], [wyoming] or [mqtt])",
             section);
        return;
    }
    const char *name = section + strlen(SOURCE_PREFIX);
    if (!valid_source_name(name)) {
        fail(p, p->line, "bad source name '%s' (1 to %d letters, digits, '_', '-' or '.')", name,
             ES_CONFIG_NAME_MAX - 1);
        return;
    }
    if (es_daemon_config_find_source(p->config, name) >= 0) {
        fail(p, p->line, "section [%s] appears twice", section);
        return;
    }
    if (p->config->source_count == ES_CONFIG_MAX_SOURCES) {
        fail(p, p->line, "too many sources (at most %d)", ES_CONFIG_MAX_SOURCES);
        return;
    }
    es_source_config *src = &p->config->sources[p->config->source_count];
    memset(src, 0, sizeof *src);
    snprintf(src->name, sizeof src->name, "%s", name);
    src->line = p->line;
    p->current_source = p->config->source_count++;
}

/* Notices section headers the way inih parses them: '[' after leading
 * blanks, the name up to the first ']' (not trimmed). */
static void look_for_section(parser *p, const char *line) {
    if (p->line == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0) line += 3; /* as inih: a BOM */
    while (*line == ' ' || *line == '\t')
        line++;
    if (*line != '[') return;
    const char *end = strchr(line + 1, ']');
    if (!end) return; /* inih reports the syntax error */
    char section[ES_CONFIG_VALUE_MAX];
    size_t len = (size_t)(end - line - 1);
    if (len >= sizeof section) len = sizeof section - 1;
    memcpy(section, line + 1, len);
    section[len] = '\0';
    enter_section(p, section);
}

static char *read_line(char *out, int capacity, void *stream) {
    parser *p = stream;
    if (p->pos >= p->size) return NULL;
    const char *start = p->text + p->pos;
    const char *newline = memchr(start, '\n', p->size - p->pos);
    size_t len = newline ? (size_t)(newline - start) + 1 : p->size - p->pos;
    p->pos += len;
    p->line++;
    size_t content = len;
    while (content && (start[content - 1] == '\n' || start[content - 1] == '\r'))
        content--;
    /* Only the content is copied: a line may end in any number of '\r', which
     * must not count against inih's buffer (it once overflowed it). */
    if (content + 3 > (size_t)capacity) {
        fail(p, p->line, "line is longer than %d characters", capacity - 3);
        content = 0;
    } else if (memchr(start, '\0', len)) {
        fail(p, p->line, "line contains a NUL byte");
        content = 0;
    }
    memcpy(out, start, content);
    out[content] = '\0';
    look_for_section(p, out);
    return out;
}

/* ---- values ------------------------------------------------------------------ */

static int parse_long(const char *value, int base, long *out) {
    if (!*value) return -1;
    char *end;
    errno = 0;
    long v = strtol(value, &end, base);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *value, int *out) {
    static const char *const yes[] = {"1", "yes", "true", "on"};
    static const char *const no[] = {"0", "no", "false", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(value, yes[i]) == 0) return *out = 1, 0;
        if (strcasecmp(value, no[i]) == 0) return *out = 0, 0;
    }
    return -1;
}

static int parse_probability(const char *value, float *out) {
    if (!*value) return -1;
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || *end || !(v >= 0.0 && v <= 1.0)) return -1;
    *out = (float)v;
    return 0;
}

static int copy_string(parser *p, const char *section, const char *key, const char *value,
                       char *dst, size_t capacity) {
    if (!*value) return fail(p, p->line, "[%s] %s: empty value", section, key);
    if (strlen(value) >= capacity)
        return fail(p, p->line, "[%s] %s: value longer than %zu characters", section, key,
                    capacity - 1);
    memcpy(dst, value, strlen(value) + 1);
    return 1;
}

static int apply_key(parser *p, const key_spec *spec, const char *value) {
    char *field = (char *)p->config + spec->offset;
    switch (spec->kind) {
    case VALUE_PROBABILITY: {
        float v;
        if (parse_probability(value, &v))
            return fail(p, p->line, "[%s] %s: '%s' is not a number from 0 to 1", spec->section,
                        spec->key, value);
        memcpy(field, &v, sizeof v);
        return 1;
    }
    case VALUE_INT: {
        long v;
        if (parse_long(value, 10, &v) || v < spec->min || v > spec->max)
            return fail(p, p->line, "[%s] %s: '%s' is not a whole number from %ld to %ld",
                        spec->section, spec->key, value, spec->min, spec->max);
        int i = (int)v;
        memcpy(field, &i, sizeof i);
        return 1;
    }
    case VALUE_BOOL: {
        int v;
        if (parse_bool(value, &v))
            return fail(p, p->line, "[%s] %s: '%s' is not yes or no", spec->section, spec->key,
                        value);
        memcpy(field, &v, sizeof v);
        return 1;
    }
    case VALUE_MODE: {
        long v;
        if (parse_long(value, 8, &v) || v < 0 || v > 0777)
            return fail(p, p->line, "[%s] %s: '%s' is not an octal mode from 0 to 0777",
                        spec->section, spec->key, value);
        int i = (int)v;
        memcpy(field, &i, sizeof i);
        return 1;
    }
    case VALUE_PATH:
        if (value[0] != '/')
            return fail(p, p->line, "[%s] %s: '%s' is not an absolute path", spec->section,
                        spec->key, value);
        return copy_string(p, spec->section, spec->key, value, field, spec->size);
    case VALUE_STRING:
        return copy_string(p, spec->section, spec->key, value, field, spec->size);
    }
    return 0;
}

/* kws = builtin | none | PATH[, PATH...] */
static int apply_kws_models(parser *p, const char *value) {
    es_daemon_config *c = p->config;
    if (p->kws_seen) return fail(p, p->line, "[models] kws: key appears twice");
    p->kws_seen = 1;
    c->kws_model_count = 0;
    if (strcmp(value, "none") == 0) return 1;
    const char *item = value;
    for (;;) {
        const char *comma = strchr(item, ',');
        size_t len = comma ? (size_t)(comma - item) : strlen(item);
        while (len && isspace((unsigned char)item[0]))
            item++, len--;
        while (len && isspace((unsigned char)item[len - 1]))
            len--;
        if (!len) return fail(p, p->line, "[models] kws: empty entry in '%s'", value);
        if (c->kws_model_count == ES_PIPELINE_MAX_KWS_MODELS)
            return fail(p, p->line, "[models] kws: more than %d models",
                        ES_PIPELINE_MAX_KWS_MODELS);
        if (len >= ES_CONFIG_VALUE_MAX) return fail(p, p->line, "[models] kws: path too long");
        memcpy(c->kws_models[c->kws_model_count], item, len);
        c->kws_models[c->kws_model_count][len] = '\0';
        c->kws_model_count++;
        if (!comma) return 1;
        item = comma + 1;
    }
}

/* threshold.KEYWORD = probability */
static int apply_keyword_threshold(parser *p, const char *keyword, const char *value) {
    es_kws_config *k = &p->config->kws;
    if (!*keyword || strlen(keyword) >= sizeof k->thresholds[0].keyword)
        return fail(p, p->line, "[keywords] threshold.%s: keyword name must be 1 to %zu characters",
                    keyword, sizeof k->thresholds[0].keyword - 1);
    for (int i = 0; i < k->threshold_count; i++)
        if (strcmp(k->thresholds[i].keyword, keyword) == 0)
            return fail(p, p->line, "[keywords] threshold.%s: key appears twice", keyword);
    if (k->threshold_count == ES_KWS_MAX_KEYWORDS)
        return fail(p, p->line, "[keywords]: more than %d per-keyword thresholds",
                    ES_KWS_MAX_KEYWORDS);
    float v;
    if (parse_probability(value, &v))
        return fail(p, p->line, "[keywords] threshold.%s: '%s' is not a number from 0 to 1",
                    keyword, value);
    snprintf(k->thresholds[k->threshold_count].keyword, sizeof k->thresholds[0].keyword, "%s",
             keyword);
    k->thresholds[k->threshold_count].threshold = v;
    k->threshold_count++;
    return 1;
}

static int apply_source_key(parser *p, const char *section, const char *key, const char *value) {
    if (p->current_source < 0) return 0; /* the header's error is already recorded */
    es_source_config *src = &p->config->sources[p->current_source];
    es_source_kind kind;
    if (strcmp(key, "device") == 0)
        kind = ES_SOURCE_DEVICE;
    else if (strcmp(key, "file") == 0)
        kind = ES_SOURCE_FILE;
    else
        return fail(p, p->line, "unknown key '%s' in [%s] (expected device or file)", key, section);
    if (src->kind) return fail(p, p->line, "[%s]: give one of device or file, once", section);
    src->kind = kind;
    return copy_string(p, section, key, value, src->target, sizeof src->target);
}

static int handle_key(void *user, const char *section, const char *key, const char *value) {
    parser *p = user;
    if (!*section) return fail(p, p->line, "key '%s' is outside any [section]", key);
    if (strncmp(section, SOURCE_PREFIX, strlen(SOURCE_PREFIX)) == 0)
        return apply_source_key(p, section, key, value);
    if (fixed_section_index(section) < 0) return 0; /* reported at its header */
    if (strcmp(section, "models") == 0 && strcmp(key, "kws") == 0)
        return apply_kws_models(p, value);
    if (strcmp(section, "keywords") == 0 && strncmp(key, "threshold.", 10) == 0)
        return apply_keyword_threshold(p, key + 10, value);
    for (size_t i = 0; i < KEY_COUNT; i++) {
        if (strcmp(KEYS[i].section, section) || strcmp(KEYS[i].key, key)) continue;
        if (p->keys_seen & ((uint64_t)1 << i))
            return fail(p, p->line, "[%s] %s: key appears twice", section, key);
        p->keys_seen |= (uint64_t)1 << i;
        p->key_line[i] = p->line;
        return apply_key(p, &KEYS[i], value);
    }
    return fail(p, p->line, "unknown key '%s' in [%s]", key, section);
}

/* ---- whole-file checks ---------------------------------------------------------- */

static int key_index(const char *section, const char *key) {
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (strcmp(KEYS[i].section, section) == 0 && strcmp(KEYS[i].key, key) == 0) return (int)i;
    return -1;
}

/* A topic level: no wildcards, no '/' (it would add levels), no NUL. */
static int valid_topic_level(const char *text) {
    return strpbrk(text, "/+#") == NULL;
}

static void check_mqtt(parser *p) {
    const es_mqtt_service_config *m = &p->config->mqtt;
    int section = p->section_line[fixed_section_index("mqtt")];
    if (!section) return;
    if (!m->host[0]) {
        fail(p, section, "[mqtt] needs host = (the broker)");
        return;
    }
    if (!valid_topic_level(m->node))
        fail(p, p->key_line[key_index("mqtt", "node")],
             "[mqtt] node '%s' must not contain '/', '+' or '#'", m->node);
    if (strpbrk(m->topic_prefix, "+#") || m->topic_prefix[0] == '/')
        fail(p, p->key_line[key_index("mqtt", "topic_prefix")],
             "[mqtt] topic_prefix '%s' must not contain '+' or '#' nor start with '/'",
             m->topic_prefix);
    if (!valid_topic_level(m->discovery_prefix))
        fail(p, p->key_line[key_index("mqtt", "discovery_prefix")],
             "[mqtt] discovery_prefix '%s' must not contain '/', '+' or '#'", m->discovery_prefix);
    if (!m->certfile[0] != !m->keyfile[0])
        fail(p, section, "[mqtt]: certfile and keyfile go together");
    if (m->certfile[0] && !m->cafile[0] && !m->capath[0])
        fail(p, section, "[mqtt]: certfile needs cafile or capath (TLS)");
    if (m->password[0] && !m->username[0])
        fail(p, p->key_line[key_index("mqtt", "password")], "[mqtt] password needs username");
}

static void check_whole_file(parser *p) {
    es_daemon_config *c = p->config;
    check_mqtt(p);
    /* A Wyoming server alone is a daemon with something to listen to. */
    if (c->source_count == 0 && !c->wyoming.uri[0])
        fail(p, 0, "no [source.NAME] section and no [wyoming] uri: nothing to listen to");
    if (c->wyoming.uri[0] && strncmp(c->wyoming.uri, "tcp://", 6) != 0)
        fail(p, p->key_line[key_index("wyoming", "uri")],
             "[wyoming] uri '%s' must be tcp://HOST:PORT", c->wyoming.uri);
    for (int i = 0; i < c->source_count; i++)
        if (!c->sources[i].kind)
            fail(p, c->sources[i].line, "[source.%s] needs device = or file =", c->sources[i].name);

    if (c->vad.offset_threshold > c->vad.onset_threshold) {
        int line = p->key_line[key_index("vad", "offset_threshold")];
        if (!line) line = p->key_line[key_index("vad", "threshold")];
        fail(p, line, "[vad] offset_threshold (%g) must not exceed threshold (%g)",
             (double)c->vad.offset_threshold, (double)c->vad.onset_threshold);
    }
    if (p->failed) return; /* the detectors' own checks would repeat it less precisely */
    es_error err;
    if (es_vad_config_check(&c->vad, &err) != 0)
        fail(p, p->section_line[fixed_section_index("vad")], "[vad]: %s", err.why);
    if (es_kws_config_check(&c->kws, &err) != 0)
        fail(p, p->section_line[fixed_section_index("keywords")], "[keywords]: %s", err.why);
}

/* ---- public ---------------------------------------------------------------------- */

void es_daemon_config_default(es_daemon_config *config) {
    memset(config, 0, sizeof *config);
    snprintf(config->vad_model, sizeof config->vad_model, "builtin");
    config->kws_model_count = 1;
    snprintf(config->kws_models[0], sizeof config->kws_models[0], "builtin");
    config->engine_threads = 1;
    es_vad_config_default(&config->vad);
    es_kws_config_default(&config->kws);
    snprintf(config->events.socket_path, sizeof config->events.socket_path,
             "/run/earshot/events.sock");
    config->events.socket_mode = 0660;
    config->events.backlog_events = 1024;
    config->events.backlog_bytes = 256 * 1024;
    config->events.max_subscribers = 256;
    config->events.to_stdout = 1;
    config->wyoming.max_clients = 64;
    config->wyoming.client_timeout_ms = 30000;
    snprintf(config->wyoming.language, sizeof config->wyoming.language, "en");
    config->mqtt.port = 1883;
    snprintf(config->mqtt.topic_prefix, sizeof config->mqtt.topic_prefix, "earshot");
    config->mqtt.keepalive_s = 60;
    config->mqtt.queue_events = 10000;
    snprintf(config->mqtt.discovery_prefix, sizeof config->mqtt.discovery_prefix, "homeassistant");
}

int es_daemon_config_find_source(const es_daemon_config *config, const char *name) {
    for (int i = 0; i < config->source_count; i++)
        if (strcmp(config->sources[i].name, name) == 0) return i;
    return -1;
}

int es_daemon_config_parse(const char *text, size_t size, const char *name,
                           es_daemon_config *config, es_error *err) {
    es_error unreported;
    if (!err) err = &unreported;
    es_daemon_config *parsed = malloc(sizeof *parsed);
    if (!parsed) return es_error_set(err, ES_CONFIG_ERR, "%s: out of memory", name);
    es_daemon_config_default(parsed);
    parser p = {.config = parsed,
                .name = name,
                .text = text,
                .size = size,
                .current_source = -1,
                .err = err};
    int syntax_line = ini_parse_stream(read_line, &p, handle_key, &p);
    /* inih returns the first line where it or the handler failed; when the
     * handler failed there, its message is the better one. */
    if (syntax_line > 0 && (!p.failed || syntax_line < p.failed_line))
        fail(&p, syntax_line, "syntax error (expected [section], key = value or a comment)");
    else if (syntax_line < 0 && !p.failed)
        fail(&p, 0, "inih could not parse the file (error %d)", syntax_line);
    if (!p.failed) check_whole_file(&p);
    if (!p.failed) memcpy(config, parsed, sizeof *parsed);
    free(parsed);
    return p.failed ? ES_CONFIG_ERR : 0;
}

/* Makes `path` (capacity ES_CONFIG_VALUE_MAX) absolute against `dir`. */
static int resolve_one(const char *config_path, const char *dir, char *path, int line,
                       es_error *err) {
    if (path[0] == '/') return 0;
    char joined[ES_CONFIG_VALUE_MAX];
    if (snprintf(joined, sizeof joined, "%s/%s", dir, path) >= (int)sizeof joined) {
        char where[32] = "";
        if (line > 0) snprintf(where, sizeof where, ":%d", line);
        return es_error_set(err, ES_CONFIG_ERR,
                            "%s%s: '%s' is longer than %d characters once resolved against %s",
                            config_path, where, path, ES_CONFIG_VALUE_MAX - 1, dir);
    }
    memcpy(path, joined, sizeof joined);
    return 0;
}

/* A relative `file =` or model path names a file beside the config, not in
 * whatever directory the daemon happens to start in (systemd starts it in
 * /, a check by hand runs where the user stands): it is made absolute
 * against the config file's folder, so that --check-config and the service
 * look at the same file. */
static int resolve_relative_paths(const char *config_path, es_daemon_config *c, es_error *err) {
    char folder[PATH_MAX];
    snprintf(folder, sizeof folder, "%s", config_path);
    char *slash = strrchr(folder, '/');
    if (!slash)
        snprintf(folder, sizeof folder, ".");
    else if (slash == folder)
        folder[1] = '\0';
    else
        *slash = '\0';
    char absolute[PATH_MAX];
    const char *dir = realpath(folder, absolute) ? absolute : folder;
    for (int i = 0; i < c->source_count; i++)
        if (c->sources[i].kind == ES_SOURCE_FILE &&
            resolve_one(config_path, dir, c->sources[i].target, c->sources[i].line, err) != 0)
            return ES_CONFIG_ERR;
    if (strcmp(c->vad_model, "builtin") != 0 &&
        resolve_one(config_path, dir, c->vad_model, 0, err) != 0)
        return ES_CONFIG_ERR;
    for (int k = 0; k < c->kws_model_count; k++)
        if (strcmp(c->kws_models[k], "builtin") != 0 &&
            resolve_one(config_path, dir, c->kws_models[k], 0, err) != 0)
            return ES_CONFIG_ERR;
    return 0;
}

/* Reads the whole file into *text (NUL-terminated, the caller frees). The
 * path is opened without blocking and must be a regular file of at most
 * CONFIG_FILE_MAX_BYTES: a FIFO put in its place would otherwise block the
 * reading thread until a writer came, and a device would be read without
 * end. */
static int read_config_text(const char *path, char **text, size_t *size, es_error *err) {
    *text = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return es_error_set(err, ES_CONFIG_ERR, "%s: %s", path, strerror(errno));
    struct stat info;
    int rc = ES_CONFIG_ERR;
    if (fstat(fd, &info) != 0)
        es_error_set(err, ES_CONFIG_ERR, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(info.st_mode))
        es_error_set(err, ES_CONFIG_ERR, "%s: not a regular file", path);
    else if (info.st_size > CONFIG_FILE_MAX_BYTES)
        es_error_set(err, ES_CONFIG_ERR, "%s: larger than %d bytes", path, CONFIG_FILE_MAX_BYTES);
    else if (!(*text = malloc((size_t)info.st_size + 1)))
        es_error_set(err, ES_CONFIG_ERR, "%s: out of memory", path);
    else
        rc = 0;
    /* One byte past the size fstat gave: a file that grew meanwhile is
     * refused, not read without bound. */
    while (rc == 0 && *size <= (size_t)info.st_size) {
        ssize_t n = read(fd, *text + *size, (size_t)info.st_size + 1 - *size);
        if (n == 0) break;
        if (n > 0)
            *size += (size_t)n;
        else if (errno != EINTR)
            rc = es_error_set(err, ES_CONFIG_ERR, "%s: %s", path, strerror(errno));
    }
    close(fd);
    if (rc == 0 && *size > (size_t)info.st_size)
        rc = es_error_set(err, ES_CONFIG_ERR, "%s: changed while being read", path);
    if (rc != 0) {
        free(*text);
        *text = NULL;
    }
    return rc;
}

int es_daemon_config_load(const char *path, es_daemon_config *config, es_error *err) {
    es_error unreported;
    if (!err) err = &unreported;
    char *text;
    size_t size;
    int rc = read_config_text(path, &text, &size, err);
    es_daemon_config *parsed = rc == 0 ? malloc(sizeof *parsed) : NULL;
    if (rc == 0 && !parsed) rc = es_error_set(err, ES_CONFIG_ERR, "%s: out of memory", path);
    if (rc == 0) rc = es_daemon_config_parse(text, size, path, parsed, err);
    if (rc == 0) rc = resolve_relative_paths(path, parsed, err);
    if (rc == 0) memcpy(config, parsed, sizeof *parsed);
    free(parsed);
    free(text);
    return rc;
}
