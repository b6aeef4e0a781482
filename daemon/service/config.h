/*
 * config — the daemon's INI file (DESIGN.md, "Daemon config"), read with inih.
 *
 *   [source.NAME]   device = PortAudio input name or index   | file = path of a file or FIFO
 *   [models]        vad = builtin|PATH    kws = builtin|none|PATH[, PATH...]
 *                   engine_threads
 *   [vad]           threshold offset_threshold min_speech_ms min_silence_ms
 *                   max_speech_ms speech_pad_ms speech_start_events
 *   [keywords]      threshold smooth_ms refractory_ms vad_gate threshold.KEYWORD
 *   [events]        socket socket_mode socket_group backlog_events backlog_bytes
 *                   max_subscribers stdout
 *   [wyoming]       uri max_clients client_timeout_ms language
 *   [mqtt]          host port node topic_prefix client_id username password cafile
 *                   capath certfile keyfile tls_insecure keepalive_s queue_events
 *                   discovery discovery_prefix
 *
 * Every key, its default and its range is documented in
 * systemd/earshot.conf.example. Unknown sections, unknown or repeated keys,
 * malformed or out-of-range values are errors naming the line. Loading only
 * parses and validates: it opens no model, device or socket.
 */
#ifndef ES_CONFIG_H
#define ES_CONFIG_H

#include <stddef.h>

#include "detect.h"
#include "error.h"
#include "service.h" /* ES_SERVICE_SOCKET_PATH_SIZE */
#include "stream.h"

#define ES_CONFIG_MAX_SOURCES 16
#define ES_CONFIG_NAME_MAX 64
/* inih reads lines of at most 200 bytes, so no value can be longer. */
#define ES_CONFIG_VALUE_MAX 256

typedef enum es_source_kind {
    ES_SOURCE_DEVICE = 1, /* a PortAudio input */
    ES_SOURCE_FILE = 2,   /* a file or FIFO carrying a WAV stream */
} es_source_kind;

typedef struct es_source_config {
    char name[ES_CONFIG_NAME_MAX]; /* [source.NAME]: the "source" of its events */
    es_source_kind kind;
    char target[ES_CONFIG_VALUE_MAX]; /* device name/index, or the path */
    int line;                         /* of the section header, for messages */
} es_source_config;

/* [events]: how events leave the daemon. Fixed for the daemon's life (a
 * reload keeps the socket it has). */
typedef struct es_events_config {
    char socket_path[ES_SERVICE_SOCKET_PATH_SIZE]; /* sun_path's size */
    int socket_mode;                               /* permission bits, e.g. 0660 */
    char socket_group[ES_CONFIG_NAME_MAX];         /* "" = leave the group alone */
    int backlog_events;                            /* per subscriber, before it is dropped */
    int backlog_bytes;
    int max_subscribers;
    int to_stdout; /* 1: also print events as JSON lines on stdout */
} es_events_config;

/* [wyoming]: the Wyoming protocol server (service.h), off unless uri is set.
 * Fixed for the daemon's life, models included (a reload keeps it as is). */
typedef struct es_wyoming_service_config {
    char uri[ES_CONFIG_VALUE_MAX]; /* "tcp://HOST:PORT"; "" = no server */
    int max_clients;               /* 64 */
    int client_timeout_ms;         /* 30000 */
    char language[16];             /* "en": listed for every keyword in `info` */
} es_wyoming_service_config;

/* [mqtt]: events to an MQTT broker (mqtt.h), off unless host is set. Fixed
 * for the daemon's life (a reload keeps the connection it has). */
typedef struct es_mqtt_service_config {
    char host[ES_CONFIG_VALUE_MAX]; /* "" = no MQTT */
    int port;                       /* 1883 */
    char node[ES_CONFIG_NAME_MAX];  /* "" = the host name */
    char topic_prefix[ES_CONFIG_NAME_MAX];
    char client_id[ES_CONFIG_NAME_MAX]; /* "" = earshot-NODE */
    char username[ES_CONFIG_VALUE_MAX];
    char password[ES_CONFIG_VALUE_MAX];
    char cafile[ES_CONFIG_VALUE_MAX]; /* TLS when cafile or capath is set */
    char capath[ES_CONFIG_VALUE_MAX];
    char certfile[ES_CONFIG_VALUE_MAX];
    char keyfile[ES_CONFIG_VALUE_MAX];
    int tls_insecure;
    int keepalive_s;
    int queue_events;
    int discovery; /* Home Assistant MQTT discovery */
    char discovery_prefix[ES_CONFIG_NAME_MAX];
} es_mqtt_service_config;

typedef struct es_daemon_config {
    int source_count;
    es_source_config sources[ES_CONFIG_MAX_SOURCES];

    char vad_model[ES_CONFIG_VALUE_MAX]; /* "builtin" or a path */
    int kws_model_count;                 /* 0 when kws = none */
    char kws_models[ES_PIPELINE_MAX_KWS_MODELS][ES_CONFIG_VALUE_MAX];
    /* Threads that step every source's models (es_stream_group), 1 ..
     * ES_STREAM_GROUP_MAX_ENGINES. Fixed for the daemon's life. */
    int engine_threads;

    es_vad_config vad;
    es_kws_config kws;

    es_events_config events;
    es_wyoming_service_config wyoming;
    es_mqtt_service_config mqtt;
} es_daemon_config;

/* The one failure code: the file is unreadable or refused. err->why says
 * which and where: "FILE:LINE: unknown key 'x' in [vad]" when it is about a
 * line, "FILE: REASON" when it is not (e.g. "FILE: No such file or
 * directory"). */
enum { ES_CONFIG_ERR = -1 };

/* Every field at its documented default, with no sources. Unused bytes are
 * zero, so two configs' sections compare with memcmp. */
void es_daemon_config_default(es_daemon_config *config);

/* Parses and validates a config file. Returns 0, or ES_CONFIG_ERR with
 * `err` (may be NULL) filled: the first error in file order. `config` is
 * only written on success. Relative `file =` and model paths are made absolute against the folder
 * of the config file (never the working directory). Only a regular file
 * is read. */
int es_daemon_config_load(const char *path, es_daemon_config *config, es_error *err);

/* The same for text in memory; `name` stands for the file in messages. */
int es_daemon_config_parse(const char *text, size_t size, const char *name,
                           es_daemon_config *config, es_error *err);

/* Index of the source named `name`, or -1. */
int es_daemon_config_find_source(const es_daemon_config *config, const char *name);

#endif
