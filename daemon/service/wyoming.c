/*
 * The Wyoming server (service.h): an accepting thread, and one thread per
 * client that reads events with bounded sizes and a stall timeout, feeds an
 * offline pipeline and writes the pipeline's events back as Wyoming events.
 */
#define _GNU_SOURCE
#include "service.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "detect.h"
#include "wyoming_json.h"

/* How often the accepting thread joins the threads of clients that left. */
#define REAP_PERIOD_MS 200
#define TYPE_MAX 64
#define NAME_MAX_BYTES 64
#define MAX_NAMES 64
/* Every channel of a frame of the widest samples: a chunk may split it. */
#define MAX_FRAME_BYTES (4 * 64)

typedef struct client client;

struct es_wyoming_server {
    es_wyoming_config config;
    char version[64];
    char language[32];
    int listen_fd;
    int stop_fd; /* eventfd: readable once the server stops */
    int port;
    pthread_t acceptor;
    pthread_mutex_t lock; /* the client list */
    client *clients;
    uint64_t next_id;
    atomic_uint_fast64_t connected, accepted, rejected, dropped, detections;
};

struct client {
    es_wyoming_server *server;
    client *next;
    pthread_t thread;
    atomic_int done;
    int fd;
    char peer[80]; /* "127.0.0.1:5555 #3", for the log */

    /* Input: bytes received and not yet taken. */
    unsigned char *rbuf;
    size_t rbuf_size, rpos, rlen;
    char *header; /* the current event's header line, NUL-terminated */
    char *data;   /* its data block */
    char type[TYPE_MAX];
    es_json_value header_json, data_json;
    int has_data;

    /* The audio stream, between audio-start (or a first chunk) and audio-stop. */
    es_pipeline *pipeline;
    int rate, width, channels;
    long long timestamp_base_ms;
    unsigned char partial[MAX_FRAME_BYTES]; /* a frame split across chunks */
    size_t partial_len;
    float *samples;
    size_t samples_capacity; /* floats */
    size_t samples_frames;   /* frames of `channels` samples per push */
    int detected;            /* a detection was sent in this stream */

    /* detect {names}: 0 names = every keyword. */
    int name_count;
    char names[MAX_NAMES][NAME_MAX_BYTES];

    char why[256]; /* why the client is being dropped; "" = it left by itself */
};

/* ---- logging ---------------------------------------------------------------------------- */

static void server_log(es_wyoming_server *s, int priority, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void server_log(es_wyoming_server *s, int priority, const char *fmt, ...) {
    if (!s->config.on_log) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->config.on_log(priority, line, s->config.log_user);
}

static int fail(client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records why the client is dropped (the first reason wins); returns -1. */
static int fail(client *c, const char *fmt, ...) {
    if (c->why[0]) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
    if (!c->why[0]) snprintf(c->why, sizeof c->why, "error");
    return -1;
}

/* ---- settings ----------------------------------------------------------------------------- */

void es_wyoming_config_default(es_wyoming_config *config) {
    memset(config, 0, sizeof *config);
    config->uri = ES_WYOMING_DEFAULT_URI;
    es_vad_config_default(&config->vad);
    es_kws_config_default(&config->kws);
    config->max_clients = 64;
    config->client_timeout_ms = 30000;
    config->max_header_bytes = 16384;
    config->max_data_bytes = 65536;
    config->max_payload_bytes = 4u << 20;
    config->language = "en";
}

int es_wyoming_parse_uri(const char *uri, char *host, size_t host_size, int *port, es_error *err) {
    static const char scheme[] = "tcp://";
    if (strncmp(uri, scheme, sizeof scheme - 1) != 0)
        return es_error_set(err, -EINVAL, "'%s': only tcp://HOST:PORT is supported", uri);
    const char *rest = uri + sizeof scheme - 1;
    const char *colon = strrchr(rest, ':');
    if (!colon || colon == rest || (size_t)(colon - rest) >= host_size)
        return es_error_set(err, -EINVAL, "'%s': expected tcp://HOST:PORT", uri);
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno || p < 0 || p > 65535)
        return es_error_set(err, -EINVAL, "'%s': the port must be a number from 0 to 65535", uri);
    memcpy(host, rest, (size_t)(colon - rest));
    host[colon - rest] = '\0';
    *port = (int)p;
    return 0;
}

/* ---- output ------------------------------------------------------------------------------- */

static int send_all(client *c, const char *bytes, size_t len) {
    while (len > 0) {
        ssize_t n = send(c->fd, bytes, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK)
                return fail(c, "did not read what it was sent for %d ms",
                            c->server->config.client_timeout_ms);
            return fail(c, "send: %s", strerror(e));
        }
        bytes += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One event: the header line, then `data` (a JSON object, or NULL). */
static int send_event(client *c, const char *type, const char *data) {
    if (c->why[0]) return -1;
    char header[256];
    size_t data_len = data ? strlen(data) : 0;
    int n = data_len ? snprintf(header, sizeof header,
                                "{\"type\":\"%s\",\"version\":\"%s\",\"data_length\":%zu}\n", type,
                                ES_WYOMING_PROTOCOL_VERSION, data_len)
                     : snprintf(header, sizeof header, "{\"type\":\"%s\",\"version\":\"%s\"}\n",
                                type, ES_WYOMING_PROTOCOL_VERSION);
    if (send_all(c, header, (size_t)n) != 0) return -1;
    return data_len ? send_all(c, data, data_len) : 0;
}

/* Sent before dropping a client for what it sent, so that it can tell why. */
static void send_error(client *c, const char *code) {
    char text[300], data[700];
    es_json_quote(c->why, text, sizeof text);
    snprintf(data, sizeof data, "{\"text\":%s,\"code\":\"%s\"}", text, code);
    char saved[sizeof c->why];
    memcpy(saved, c->why, sizeof saved);
    c->why[0] = '\0'; /* send_event refuses to write for a client being dropped */
    send_event(c, "error", data);
    memcpy(c->why, saved, sizeof saved);
}

/* Appends like snprintf into a growing buffer; returns -1 when out of memory. */
typedef struct text_buffer {
    char *text;
    size_t len, size;
} text_buffer;

static int append(text_buffer *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int append(text_buffer *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n =
            vsnprintf(b->text ? b->text + b->len : NULL, b->text ? b->size - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return -1;
        if (b->text && b->len + (size_t)n < b->size) {
            b->len += (size_t)n;
            return 0;
        }
        size_t size = (b->size ? b->size * 2 : 4096) + (size_t)n;
        char *grown = realloc(b->text, size);
        if (!grown) return -1;
        b->text = grown;
        b->size = size;
    }
}

/* The description of earshot and of one of its keywords share their shape:
 * name, description, attribution, installed, version. */
static int append_artifact(text_buffer *b, const es_wyoming_server *s, const char *name,
                           const char *description) {
    char quoted_name[200], quoted_description[300];
    es_json_quote(name, quoted_name, sizeof quoted_name);
    es_json_quote(description, quoted_description, sizeof quoted_description);
    return append(b,
                  "\"name\":%s,\"description\":%s,\"attribution\":{\"name\":\"earshot\","
                  "\"url\":\"https://github.com/earshot/earshot\"},\"installed\":true,"
                  "\"version\":\"%s\"",
                  quoted_name, quoted_description, s->version);
}

/* info: earshot as the one wake program, every keyword of every keyword
 * model as one of its models (how wyoming-openwakeword lists its models). */
static int send_info(client *c) {
    const es_wyoming_config *cfg = &c->server->config;
    text_buffer b = {0};
    int rc = append(&b, "{\"asr\":[],\"tts\":[],\"handle\":[],\"intent\":[],\"wake\":[{");
    rc |= append_artifact(&b, c->server, "earshot", "offline keyword and speech detector");
    rc |= append(&b, ",\"models\":[");
    int listed = 0;
    for (int m = 0; m < cfg->kws_model_count; m++) {
        for (int i = 0; i < es_model_output_size(cfg->kws_models[m]); i++) {
            const char *label = es_model_label(cfg->kws_models[m], i);
            if (!es_kws_label_is_keyword(label)) continue;
            rc |= append(&b, "%s{", listed++ ? "," : "");
            rc |= append_artifact(&b, c->server, label, label);
            rc |= append(&b, ",\"languages\":[\"%s\"]}", c->server->language);
        }
    }
    rc |= append(&b, "]}]}");
    if (rc != 0) {
        free(b.text);
        return fail(c, "out of memory");
    }
    rc = send_event(c, "info", b.text);
    free(b.text);
    return rc;
}

/* ---- input -------------------------------------------------------------------------------- */

/* Waits for more bytes (at most client_timeout_ms) and appends them. */
static int receive_more(client *c) {
    if (c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    if (c->rlen == c->rbuf_size) return fail(c, "input buffer full");
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int ready;
    do {
        ready = poll(&p, 1, c->server->config.client_timeout_ms);
    } while (ready < 0 && errno == EINTR);
    if (ready == 0)
        return fail(c, "sent nothing for %d ms (stalled)", c->server->config.client_timeout_ms);
    ssize_t n;
    do {
        n = recv(c->fd, c->rbuf + c->rlen, c->rbuf_size - c->rlen, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return fail(c, "recv: %s", strerror(errno));
    if (n == 0) return 0;
    c->rlen += (size_t)n;
    return 1;
}

/* The next header line into c->header: 1, 0 at a clean end of input
 * (nothing pending), -1 on error. */
static int read_header_line(client *c) {
    size_t limit = c->server->config.max_header_bytes;
    for (;;) {
        size_t have = c->rlen - c->rpos;
        unsigned char *start = c->rbuf + c->rpos;
        unsigned char *nl = memchr(start, '\n', have < limit + 1 ? have : limit + 1);
        if (nl) {
            size_t len = (size_t)(nl - start);
            memcpy(c->header, start, len);
            c->header[len] = '\0';
            c->rpos += len + 1;
            return 1;
        }
        if (have > limit) return fail(c, "header line longer than %zu bytes", limit);
        int got = receive_more(c);
        if (got < 0) return -1;
        if (got == 0) {
            if (c->rlen - c->rpos == 0) return 0;
            return fail(c, "disconnected in the middle of a header line");
        }
    }
}

static int read_exact(client *c, char *out, size_t len, const char *what) {
    while (c->rlen - c->rpos < len) {
        int got = receive_more(c);
        if (got < 0) return -1;
        if (got == 0)
            return fail(c, "disconnected after %zu of %zu bytes of %s", c->rlen - c->rpos, len,
                        what);
    }
    memcpy(out, c->rbuf + c->rpos, len);
    c->rpos += len;
    return 0;
}

/* A non-negative integer member no larger than `max` (absent: 0). */
static int length_field(client *c, const char *key, size_t max, size_t *out) {
    es_json_value v;
    double d = 0;
    *out = 0;
    int found = es_json_get(&c->header_json, key, &v);
    if (found <= 0 || v.type == ES_JSON_NULL) return 0;
    if (es_json_number(&v, &d) != 0 || d < 0 || d != floor(d))
        return fail(c, "%s is not a non-negative integer", key);
    if (d > (double)max) return fail(c, "%s %.0f exceeds the limit of %zu bytes", key, d, max);
    *out = (size_t)d;
    return 0;
}

/* A member of the event's data: the data block's (it is merged over the
 * header's, as the reference implementation does), else the header's. */
static int data_get(const client *c, const char *key, es_json_value *out) {
    if (c->has_data && es_json_get(&c->data_json, key, out) == 1) return 1;
    es_json_value inline_data;
    if (es_json_get(&c->header_json, "data", &inline_data) == 1 &&
        es_json_get(&inline_data, key, out) == 1)
        return 1;
    return 0;
}

/* An integer of the data in [min, max]; `fallback` when absent or null
 * (required fields pass a fallback outside the range). */
static int data_int(client *c, const char *key, long long min, long long max, long long fallback,
                    long long *out) {
    es_json_value v;
    double d;
    if (!data_get(c, key, &v) || v.type == ES_JSON_NULL) {
        *out = fallback;
        if (fallback >= min && fallback <= max) return 0;
        return fail(c, "%s: missing \"%s\"", c->type, key);
    }
    if (es_json_number(&v, &d) != 0 || d != floor(d) || d < (double)min || d > (double)max)
        return fail(c, "%s: \"%s\" must be an integer from %lld to %lld", c->type, key, min, max);
    *out = (long long)d;
    return 0;
}

/* Reads one whole event up to its payload (left in the input for the
 * handler). 1, 0 at a clean end, -1 on error. */
static int read_event_head(client *c, size_t *payload_len) {
    int got = read_header_line(c);
    if (got <= 0) return got;
    if (es_json_parse(c->header, strlen(c->header), &c->header_json) != 0 ||
        c->header_json.type != ES_JSON_OBJECT)
        return fail(c, "header is not a JSON object");
    es_json_value type, inline_data;
    if (es_json_get(&c->header_json, "type", &type) != 1 ||
        es_json_string(&type, c->type, sizeof c->type) <= 0)
        return fail(c, "header has no \"type\" string");
    if (es_json_get(&c->header_json, "data", &inline_data) == 1 &&
        inline_data.type != ES_JSON_OBJECT && inline_data.type != ES_JSON_NULL)
        return fail(c, "%s: \"data\" is not an object", c->type);
    size_t data_len;
    const es_wyoming_config *cfg = &c->server->config;
    if (length_field(c, "data_length", cfg->max_data_bytes, &data_len) != 0 ||
        length_field(c, "payload_length", cfg->max_payload_bytes, payload_len) != 0)
        return -1;
    c->has_data = data_len > 0;
    if (c->has_data) {
        if (read_exact(c, c->data, data_len, "data") != 0) return -1;
        if (es_json_parse(c->data, data_len, &c->data_json) != 0 ||
            c->data_json.type != ES_JSON_OBJECT)
            return fail(c, "%s: data is not a JSON object", c->type);
    }
    return 1;
}

/* ---- the audio stream ---------------------------------------------------------------------- */

static long long event_ms(const client *c, double stream_s) {
    return c->timestamp_base_ms + llround(stream_s * 1000.0);
}

/* Wake word names match case-insensitively with '_' as ' ' (how clients
 * spell openWakeWord's model files, e.g. "hey_jarvis"). */
static int same_name(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        int x = *a == '_' ? ' ' : tolower((unsigned char)*a);
        int y = *b == '_' ? ' ' : tolower((unsigned char)*b);
        if (x != y) return 0;
    }
    return *a == *b;
}

static int wanted(const client *c, const char *keyword) {
    if (c->name_count == 0) return 1;
    for (int i = 0; i < c->name_count; i++)
        if (same_name(c->names[i], keyword)) return 1;
    return 0;
}

/* The pipeline's sink, on this client's thread. */
static void on_pipeline_event(const es_event *e, void *user) {
    client *c = user;
    char data[300];
    switch (e->type) {
    case ES_EVENT_KEYWORD: {
        if (!wanted(c, e->keyword)) return;
        char name[200];
        es_json_quote(e->keyword, name, sizeof name);
        snprintf(data, sizeof data, "{\"name\":%s,\"timestamp\":%lld}", name,
                 event_ms(c, e->time_s));
        if (send_event(c, "detection", data) == 0) {
            c->detected = 1;
            atomic_fetch_add(&c->server->detections, 1);
        }
        return;
    }
    case ES_EVENT_SPEECH_START:
        snprintf(data, sizeof data, "{\"timestamp\":%lld}", event_ms(c, e->start_s));
        send_event(c, "voice-started", data);
        return;
    case ES_EVENT_SPEECH:
        snprintf(data, sizeof data, "{\"timestamp\":%lld}", event_ms(c, e->end_s));
        send_event(c, "voice-stopped", data);
        return;
    }
}

static void stream_drop(client *c) {
    es_pipeline_destroy(c->pipeline);
    c->pipeline = NULL;
    c->partial_len = 0;
}

/* The format fields every audio event carries. */
static int read_format(client *c, int *rate, int *width, int *channels) {
    long long r, w, ch;
    if (data_int(c, "rate", 8000, 96000, -1, &r) != 0 || data_int(c, "width", 1, 4, -1, &w) != 0 ||
        data_int(c, "channels", 1, 64, -1, &ch) != 0)
        return -1;
    *rate = (int)r;
    *width = (int)w;
    *channels = (int)ch;
    return 0;
}

static int stream_start(client *c) {
    stream_drop(c);
    long long ts;
    if (read_format(c, &c->rate, &c->width, &c->channels) != 0 ||
        data_int(c, "timestamp", 0, (long long)1 << 53, 0, &ts) != 0)
        return -1;
    c->timestamp_base_ms = ts;
    const es_wyoming_config *cfg = &c->server->config;
    es_pipeline_config pc;
    es_pipeline_config_default(&pc, ES_PIPELINE_OFFLINE);
    pc.source = "wyoming";
    pc.vad_model = cfg->vad_model;
    pc.kws_model_count = cfg->kws_model_count;
    for (int k = 0; k < cfg->kws_model_count; k++)
        pc.kws_models[k] = cfg->kws_models[k];
    pc.vad = cfg->vad;
    pc.vad.speech_start_events = 1;
    pc.kws = cfg->kws;
    pc.input_rate_hz = c->rate;
    pc.input_channels = c->channels;
    pc.on_event = on_pipeline_event;
    pc.event_user = c;
    es_error err = {0};
    if (es_pipeline_create(&pc, &c->pipeline, &err) != 0) return fail(c, "stream: %s", err.why);
    size_t frames = pc.max_input_frames;
    size_t needed = frames * (size_t)c->channels;
    if (needed > c->samples_capacity) {
        free(c->samples);
        c->samples = malloc(needed * sizeof *c->samples);
        c->samples_capacity = c->samples ? needed : 0;
        if (!c->samples) return fail(c, "out of memory");
    }
    c->samples_frames = frames;
    c->detected = 0;
    return 0;
}

/* Little-endian signed PCM of any width to floats in [-1, 1), as libsndfile
 * scales integers (so a client's audio gives `earshot file`'s events). */
static void to_float(const unsigned char *bytes, size_t count, int width, float *out) {
    const double scale = 1.0 / (double)(1u << (8 * width - 1));
    for (size_t i = 0; i < count; i++, bytes += width) {
        uint32_t u = 0;
        for (int b = 0; b < width; b++)
            u |= (uint32_t)bytes[b] << (8 * b);
        int shift = 32 - 8 * width;
        int32_t v = (int32_t)(u << shift) >> shift;
        out[i] = (float)(v * scale);
    }
}

static int push_frames(client *c, const unsigned char *bytes, size_t frames) {
    size_t frame_bytes = (size_t)c->width * (size_t)c->channels;
    while (frames > 0) {
        size_t n = frames < c->samples_frames ? frames : c->samples_frames;
        to_float(bytes, n * (size_t)c->channels, c->width, c->samples);
        int rc = es_pipeline_push(c->pipeline, c->samples, n);
        if (rc != 0) return fail(c, "pipeline: %s", es_pipeline_strerror(rc));
        if (c->why[0]) return -1; /* an event could not be sent */
        bytes += n * frame_bytes;
        frames -= n;
    }
    return 0;
}

/* Payload bytes as they arrive: whole frames go to the pipeline, a frame
 * split across reads or chunks waits in `partial`. */
static int push_bytes(client *c, const unsigned char *bytes, size_t len) {
    size_t frame_bytes = (size_t)c->width * (size_t)c->channels;
    if (c->partial_len > 0) {
        size_t take = frame_bytes - c->partial_len;
        if (take > len) take = len;
        memcpy(c->partial + c->partial_len, bytes, take);
        c->partial_len += take;
        bytes += take;
        len -= take;
        if (c->partial_len < frame_bytes) return 0;
        c->partial_len = 0;
        if (push_frames(c, c->partial, 1) != 0) return -1;
    }
    size_t whole = len / frame_bytes;
    if (push_frames(c, bytes, whole) != 0) return -1;
    c->partial_len = len - whole * frame_bytes;
    memcpy(c->partial, bytes + whole * frame_bytes, c->partial_len);
    return 0;
}

/* Takes `len` payload bytes from the input, giving them to the stream when
 * `to_stream` (else discarding them), without holding the whole payload. */
static int consume_payload(client *c, size_t len, int to_stream) {
    while (len > 0) {
        if (c->rlen == c->rpos) {
            int got = receive_more(c);
            if (got < 0) return -1;
            if (got == 0) return fail(c, "disconnected with %zu bytes of payload unsent", len);
        }
        size_t have = c->rlen - c->rpos;
        size_t n = have < len ? have : len;
        if (to_stream && push_bytes(c, c->rbuf + c->rpos, n) != 0) return -1;
        c->rpos += n;
        len -= n;
    }
    return 0;
}

static int audio_chunk(client *c, size_t payload_len) {
    int rate, width, channels;
    if (read_format(c, &rate, &width, &channels) != 0) return -1;
    if (!c->pipeline) {
        /* A chunk without audio-start begins a stream of its own format. */
        if (stream_start(c) != 0) return -1;
    } else if (rate != c->rate || width != c->width || channels != c->channels) {
        return fail(c,
                    "audio-chunk: format %d Hz/%d bytes/%d channels differs from the "
                    "stream's %d/%d/%d",
                    rate, width, channels, c->rate, c->width, c->channels);
    }
    return consume_payload(c, payload_len, 1);
}

static int audio_stop(client *c) {
    if (!c->pipeline) return send_event(c, "not-detected", NULL);
    int rc = es_pipeline_finish(c->pipeline);
    if (rc != 0) return fail(c, "pipeline: %s", es_pipeline_strerror(rc));
    stream_drop(c);
    if (c->why[0]) return -1;
    return c->detected ? 0 : send_event(c, "not-detected", NULL);
}

static int detect(client *c) {
    c->name_count = 0;
    es_json_value names, item;
    if (!data_get(c, "names", &names) || names.type == ES_JSON_NULL) return 0;
    size_t pos = 0;
    int more;
    while ((more = es_json_array_next(&names, &pos, &item)) == 1) {
        if (c->name_count == MAX_NAMES) return fail(c, "detect: more than %d names", MAX_NAMES);
        if (es_json_string(&item, c->names[c->name_count], NAME_MAX_BYTES) < 0)
            return fail(c, "detect: \"names\" must be strings of at most %d bytes",
                        NAME_MAX_BYTES - 1);
        c->name_count++;
    }
    return more < 0 ? fail(c, "detect: \"names\" is not a list") : 0;
}

static int handle_event(client *c, size_t payload_len) {
    if (strcmp(c->type, "audio-chunk") == 0) return audio_chunk(c, payload_len);
    int rc = consume_payload(c, payload_len, 0);
    if (rc != 0) return rc;
    if (strcmp(c->type, "describe") == 0) return send_info(c);
    if (strcmp(c->type, "detect") == 0) return detect(c);
    if (strcmp(c->type, "audio-start") == 0) return stream_start(c);
    if (strcmp(c->type, "audio-stop") == 0) return audio_stop(c);
    if (strcmp(c->type, "ping") == 0) return send_event(c, "pong", NULL);
    return 0; /* events of other services are none of ours */
}

static void *client_thread(void *arg) {
    client *c = arg;
    es_wyoming_server *s = c->server;
    for (;;) {
        size_t payload_len = 0;
        int got = read_event_head(c, &payload_len);
        if (got <= 0 || handle_event(c, payload_len) != 0) break;
    }
    if (c->why[0]) {
        /* Protocol errors get told; a stalled or vanished peer would not read it. */
        if (!strstr(c->why, "stalled") && !strstr(c->why, "disconnected") &&
            !strstr(c->why, "send:") && !strstr(c->why, "recv:"))
            send_error(c, "bad-event");
        atomic_fetch_add(&s->dropped, 1);
        server_log(s, ES_WYOMING_LOG_WARNING, "wyoming: client %s dropped: %s", c->peer, c->why);
    }
    stream_drop(c);
    shutdown(c->fd, SHUT_RDWR);
    atomic_fetch_sub(&s->connected, 1);
    atomic_store(&c->done, 1);
    return NULL;
}

/* ---- accepting ---------------------------------------------------------------------------- */

static void client_free(client *c) {
    if (c->fd >= 0) close(c->fd);
    free(c->rbuf);
    free(c->header);
    free(c->data);
    free(c->samples);
    free(c);
}

/* Joins the threads of clients that have left. */
static void reap(es_wyoming_server *s, int all) {
    pthread_mutex_lock(&s->lock);
    client **link = &s->clients;
    while (*link) {
        client *c = *link;
        if (all || atomic_load(&c->done)) {
            *link = c->next;
            if (all) shutdown(c->fd, SHUT_RDWR);
            pthread_join(c->thread, NULL);
            client_free(c);
        } else {
            link = &c->next;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

static client *client_new(es_wyoming_server *s, int fd) {
    const es_wyoming_config *cfg = &s->config;
    client *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->fd = fd;
    c->server = s;
    size_t biggest =
        cfg->max_header_bytes > cfg->max_data_bytes ? cfg->max_header_bytes : cfg->max_data_bytes;
    c->rbuf_size = biggest + 4096;
    c->rbuf = malloc(c->rbuf_size);
    c->header = malloc(cfg->max_header_bytes + 2);
    c->data = malloc(cfg->max_data_bytes + 1);
    if (!c->rbuf || !c->header || !c->data) {
        c->fd = -1;
        client_free(c);
        return NULL;
    }
    return c;
}

static void describe_peer(int fd, uint64_t id, char *out, size_t size) {
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    char ip[INET_ADDRSTRLEN] = "?";
    int port = 0;
    if (getpeername(fd, (struct sockaddr *)&addr, &len) == 0 && addr.sin_family == AF_INET) {
        inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof ip);
        port = ntohs(addr.sin_port);
    }
    snprintf(out, size, "%s:%d #%llu", ip, port, (unsigned long long)id);
}

static void accept_one(es_wyoming_server *s) {
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) return;
    uint64_t id = ++s->next_id;
    char peer[80];
    describe_peer(fd, id, peer, sizeof peer);
    if (atomic_load(&s->connected) >= (uint64_t)s->config.max_clients) {
        atomic_fetch_add(&s->rejected, 1);
        server_log(s, ES_WYOMING_LOG_WARNING, "wyoming: client %s refused: %d clients already",
                   peer, s->config.max_clients);
        close(fd);
        return;
    }
    /* Events are small and wanted at once. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {.tv_sec = s->config.client_timeout_ms / 1000,
                         .tv_usec = (s->config.client_timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    client *c = client_new(s, fd);
    if (!c) {
        server_log(s, ES_WYOMING_LOG_ERR, "wyoming: client %s refused: out of memory", peer);
        close(fd);
        return;
    }
    memcpy(c->peer, peer, sizeof peer);
    atomic_fetch_add(&s->connected, 1);
    if (pthread_create(&c->thread, NULL, client_thread, c) != 0) {
        atomic_fetch_sub(&s->connected, 1);
        server_log(s, ES_WYOMING_LOG_ERR, "wyoming: client %s refused: no thread", peer);
        client_free(c);
        return;
    }
    atomic_fetch_add(&s->accepted, 1);
    pthread_mutex_lock(&s->lock);
    c->next = s->clients;
    s->clients = c;
    pthread_mutex_unlock(&s->lock);
}

static void *acceptor_thread(void *arg) {
    es_wyoming_server *s = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = s->listen_fd, .events = POLLIN},
                              {.fd = s->stop_fd, .events = POLLIN}};
        int n = poll(p, 2, REAP_PERIOD_MS);
        if (n > 0 && p[1].revents) break;
        if (n > 0 && p[0].revents) accept_one(s);
        reap(s, 0);
    }
    return NULL;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static int check_config(const es_wyoming_config *c, es_error *err) {
    const char *why = NULL;
    if (!c->vad_model)
        why = "no VAD model";
    else if (c->kws_model_count < 0 || c->kws_model_count > ES_PIPELINE_MAX_KWS_MODELS)
        why = "bad keyword model count";
    else if (c->max_clients < 1)
        why = "max_clients must be at least 1";
    else if (c->client_timeout_ms < 1)
        why = "client_timeout_ms must be at least 1";
    else if (c->max_header_bytes < 256 || c->max_data_bytes < 256 || c->max_payload_bytes < 256)
        why = "header, data and payload limits must be at least 256 bytes";
    if (!why) return 0;
    return es_error_set(err, -EINVAL, "%s", why);
}

static int listen_on(es_wyoming_server *s, const char *uri, es_error *err) {
    char host[256], port_text[16];
    int port;
    int rc =
        es_wyoming_parse_uri(uri ? uri : ES_WYOMING_DEFAULT_URI, host, sizeof host, &port, err);
    if (rc != 0) return rc;
    snprintf(port_text, sizeof port_text, "%d", port);
    struct addrinfo hints = {
        .ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    int gai = getaddrinfo(host, port_text, &hints, &found);
    if (gai != 0) return es_error_set(err, -EINVAL, "%s: %s", uri, gai_strerror(gai));
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (s->listen_fd >= 0) setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (s->listen_fd < 0 || bind(s->listen_fd, found->ai_addr, found->ai_addrlen) != 0 ||
        listen(s->listen_fd, 64) != 0) {
        int e = errno;
        freeaddrinfo(found);
        return es_error_set(err, -e, "%s: %s", uri, strerror(e));
    }
    freeaddrinfo(found);
    struct sockaddr_in bound;
    socklen_t len = sizeof bound;
    getsockname(s->listen_fd, (struct sockaddr *)&bound, &len);
    s->port = ntohs(bound.sin_port);
    return 0;
}

int es_wyoming_server_create(const es_wyoming_config *config, es_wyoming_server **out,
                             es_error *err) {
    *out = NULL;
    int rc = check_config(config, err);
    if (rc != 0) return rc;
    es_wyoming_server *s = calloc(1, sizeof *s);
    if (!s) return es_error_set(err, -ENOMEM, "out of memory");
    s->config = *config;
    snprintf(s->version, sizeof s->version, "%s", config->version ? config->version : "unknown");
    snprintf(s->language, sizeof s->language, "%s", config->language ? config->language : "en");
    s->config.uri = NULL; /* borrowed only while creating: listen_on takes it */
    s->listen_fd = -1;
    s->stop_fd = eventfd(0, EFD_CLOEXEC);
    pthread_mutex_init(&s->lock, NULL);
    if (s->stop_fd < 0)
        rc = es_error_set(err, -errno, "eventfd: %s", strerror(errno));
    else
        rc = listen_on(s, config->uri, err);
    if (rc == 0 && pthread_create(&s->acceptor, NULL, acceptor_thread, s) != 0)
        rc = es_error_set(err, -EAGAIN, "cannot start a thread");
    if (rc != 0) {
        if (s->listen_fd >= 0) close(s->listen_fd);
        if (s->stop_fd >= 0) close(s->stop_fd);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int es_wyoming_server_port(const es_wyoming_server *server) {
    return server->port;
}

void es_wyoming_server_destroy(es_wyoming_server *s) {
    if (!s) return;
    uint64_t one = 1;
    ssize_t ignored = write(s->stop_fd, &one, sizeof one);
    (void)ignored;
    pthread_join(s->acceptor, NULL);
    reap(s, 1);
    close(s->listen_fd);
    close(s->stop_fd);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void es_wyoming_server_get_stats(const es_wyoming_server *s, es_wyoming_stats *stats) {
    stats->clients = atomic_load(&s->connected);
    stats->accepted = atomic_load(&s->accepted);
    stats->rejected = atomic_load(&s->rejected);
    stats->dropped = atomic_load(&s->dropped);
    stats->detections = atomic_load(&s->detections);
}
