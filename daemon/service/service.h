/*
 * service — the room daemon/service: the long-running detection service
 * behind `earshot daemon`, and the Wyoming server it can run (also served
 * alone by `earshot wyoming`).
 *
 * Its parts, in this order: the service (config file in, events out on the
 * configured outlets, until a signal) and the Wyoming server. Private to the
 * room (its own .c files and their unit tests): config.h (the config file's
 * format and parser), event_socket.h, mqtt.h, notify.h, wyoming_json.h.
 */
#ifndef ES_SERVICE_H
#define ES_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "detect.h"
#include "error.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== service ===============================================================
 * service — the long-running detection service behind `earshot daemon`
 * (DESIGN.md, "Daemon config"; systemd/earshot.service.in).
 *
 * Every source of the config (files, FIFOs, capture devices) runs as a stream
 * (daemon/stream/) that is restarted with back-off; events go to the event
 * socket (event_socket.h), stdout, MQTT (mqtt.h) and a Wyoming server
 * (below) as configured. SIGHUP reloads the config and models beside the
 * running ones (a bad reload is refused and logged); SIGTERM/SIGINT drain and
 * stop. Under systemd it reports READY, STATUS and WATCHDOG (notify.h). The
 * service logs to stderr with sd-daemon priority prefixes; it prints nothing
 * else but events.
 */

/* Longest [events] socket path, with its terminating NUL (sun_path's size):
 * what --socket may name. */
#define ES_SERVICE_SOCKET_PATH_SIZE 108

typedef struct es_service_options {
    const char *config_path;     /* required; borrowed for the service's life */
    const char *socket_override; /* NULL, or an absolute path replacing [events] socket */
    int check_only;              /* load and validate only (a socket folder that systemd
                                    makes is noted through on_note, not refused) */
    /* A remark about the config that is no error (check_only), one sentence
     * without "note: " or newline; NULL: not told. Called from es_service_load. */
    void (*on_note)(const char *note, void *user);
    void *note_user;
} es_service_options;

typedef struct es_service es_service;

/* Reads and validates the config, its event socket's settings and every model
 * it names: everything start-up would refuse. Returns 0, or a negative code
 * with err->why naming the file and the reason. */
int es_service_load(const es_service_options *options, es_service **out, es_error *err);

int es_service_source_count(const es_service *svc);
int es_service_keyword_model_count(const es_service *svc);

/* Runs a loaded service until SIGTERM or SIGINT (blocked and taken by a
 * signalfd here): returns 0 when stopped by a signal, -1 when an output
 * could not be opened or a system call failed (already logged). Once. */
int es_service_run(es_service *svc);

void es_service_destroy(es_service *svc);

/* Logs `why` at error priority, as the running service logs. */
void es_service_log_error(const char *why);

/* ==== wyoming ===============================================================
 * wyoming — earshot as a Wyoming protocol wake-word and VAD service, the
 * protocol Home Assistant's voice pipeline and satellites speak.
 *
 * Framing (rhasspy/wyoming, event.py): every event is one JSON header line
 *   {"type": T, "data": {...}?, "data_length": N?, "payload_length": M?, "version": V?}\n
 * followed by N bytes of JSON data (merged over the header's "data") and M
 * bytes of payload. The events served here:
 *
 *   client -> server                     server -> client
 *   describe                             info (wake: earshot, its keywords as models)
 *   detect {names}                       (names: which keywords to report; null = all)
 *   audio-start {rate,width,channels,timestamp}
 *   audio-chunk {rate,width,channels,timestamp} + PCM payload
 *                                        detection {name,timestamp}    (a keyword)
 *                                        voice-started {timestamp}     (speech began)
 *                                        voice-stopped {timestamp}     (speech ended)
 *   audio-stop {timestamp}               not-detected (when no keyword was reported)
 *   ping                                 pong
 *                                        error {text,code}  (then the client is dropped)
 *
 * Timestamps are milliseconds of the client's audio: the audio-start's
 * timestamp (0 when absent) plus the event's stream time (detection: the
 * keyword event's `time`; voice-started/-stopped: the segment's start/end).
 * PCM is little-endian signed integers of `width` bytes (1 to 4), interleaved,
 * at 8000 to 96000 Hz and 1 to 64 channels; a chunk may end inside a frame.
 *
 * Each client is served by a thread of its own running an offline pipeline
 * (stream.h) per audio stream, so a client's detections are exactly
 * `earshot file`'s on the same audio whatever the chunk sizes, and clients
 * share nothing but the read-only models. A client that sends a malformed
 * header, a length beyond the bounds below or an unusable audio format is
 * sent an `error` event and dropped; one that sends nothing for
 * client_timeout_ms, or does not take what it is sent, is dropped too. Each
 * drop is reported through on_log; the other clients never notice.
 *
 * Library code: errors are returned with a reason, lines for the log go to
 * the caller's on_log; nothing here prints.
 */

#define ES_WYOMING_DEFAULT_URI "tcp://127.0.0.1:10400"
/* The protocol version sent in headers: the reference implementation's
 * release whose event fields this follows. */
#define ES_WYOMING_PROTOCOL_VERSION "1.5.4"

/* Priorities as sd-daemon prefixes them (the daemon's log format). */
enum { ES_WYOMING_LOG_ERR = 3, ES_WYOMING_LOG_WARNING = 4, ES_WYOMING_LOG_INFO = 6 };

typedef struct es_wyoming_config {
    const char *uri; /* "tcp://HOST:PORT"; HOST an IPv4 address or name, PORT 0 = any */

    /* Borrowed, read-only, must outlive the server (as for pipelines). */
    const es_model *vad_model;
    const es_model *kws_models[ES_PIPELINE_MAX_KWS_MODELS];
    int kws_model_count;
    es_vad_config vad; /* speech_start_events is forced on: voice-started needs it */
    es_kws_config kws;

    int max_clients;          /* 64; more connections are closed at once (logged) */
    int client_timeout_ms;    /* 30000: a client silent this long is dropped */
    size_t max_header_bytes;  /* 16384: longest header line */
    size_t max_data_bytes;    /* 65536: largest data_length */
    size_t max_payload_bytes; /* 4194304: largest payload_length */
    const char *version;      /* earshot's, in `info`; NULL = "unknown" */
    const char *language;     /* "en": the language of every keyword in `info` */

    /* Called from the server's threads, one whole line each (no newline). */
    void (*on_log)(int priority, const char *line, void *user);
    void *log_user;
} es_wyoming_config;

/* Every field at its default (noted above); models and on_log NULL. */
void es_wyoming_config_default(es_wyoming_config *config);

/* Splits "tcp://HOST:PORT" (HOST at most host_size - 1 bytes, PORT 0..65535).
 * 0, or -EINVAL with the reason in `err`. */
int es_wyoming_parse_uri(const char *uri, char *host, size_t host_size, int *port, es_error *err);

typedef struct es_wyoming_server es_wyoming_server;

/* Checks the settings, binds and listens, starts the accepting thread. */
int es_wyoming_server_create(const es_wyoming_config *config, es_wyoming_server **out,
                             es_error *err);
/* The port it listens on (the one chosen when the URI said 0). */
int es_wyoming_server_port(const es_wyoming_server *server);
/* Stops accepting, disconnects every client (their streams are dropped
 * unfinished), joins every thread. */
void es_wyoming_server_destroy(es_wyoming_server *server);

typedef struct es_wyoming_stats {
    uint64_t clients;    /* connected now */
    uint64_t accepted;   /* connections ever served */
    uint64_t rejected;   /* closed at once: max_clients reached */
    uint64_t dropped;    /* disconnected for a protocol error or a stall */
    uint64_t detections; /* detection events sent */
} es_wyoming_stats;

void es_wyoming_server_get_stats(const es_wyoming_server *server, es_wyoming_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
