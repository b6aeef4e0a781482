/*
 * mqtt — every event published to an MQTT broker (libmosquitto).
 *
 *   detection thread --es_mqtt_publish--> lock-free line queue (never blocks)
 *     --collector thread--> pending queue (bounded by queue_events; full = event
 *     dropped and counted) --network thread--> broker, QoS 1
 *
 * Topic `PREFIX/NODE/SOURCE/TYPE`, payload the event's JSON exactly as on
 * the event socket (without its newline). `PREFIX/NODE/availability` is
 * "online" (retained) once connected, "offline" at a clean stop and, as the
 * broker's last will, when the daemon vanishes.
 *
 * An event leaves the pending queue only when the broker acknowledged it
 * (PUBACK), so a broker that goes away loses nothing within the bound: the
 * network thread reconnects with back-off (1 s doubling to 30 s) and
 * libmosquitto re-sends what was in flight before anything newer goes out.
 * The network thread owns the libmosquitto handle alone (its callbacks run
 * there too); it may block in a connect (DNS, TCP, TLS) without holding up
 * the collector, which keeps the bound exact meanwhile.
 *
 * Errors are returned with a reason; lines for the log go to on_log.
 *
 * Private to daemon/service (service.c; [mqtt] in config.h).
 */
#ifndef ES_MQTT_H
#define ES_MQTT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct es_mqtt_config {
    const char *host;         /* broker; required */
    int port;                 /* 1883 */
    const char *topic_prefix; /* "earshot" */
    const char *node;         /* topic segment naming this daemon; required */
    const char *client_id;    /* NULL or "": "earshot-NODE" */
    const char *username;     /* NULL or "": none */
    const char *password;     /* NULL or "": none */
    const char *cafile;       /* TLS is on when cafile or capath is set */
    const char *capath;
    const char *certfile; /* client certificate, with keyfile */
    const char *keyfile;
    int tls_insecure;    /* 1: do not check the broker's host name */
    int keepalive_s;     /* 60 */
    size_t queue_events; /* 10000: events held while the broker is away */
    int linger_ms;       /* 500: on destroy, how long to keep sending */
    /* Home Assistant MQTT discovery: with a prefix ("homeassistant"), a
     * retained config per source (binary_sensor: speech) and per keyword
     * (event), published at every connect. */
    const char *discovery_prefix; /* NULL or "": no discovery */
    const char *const *sources;   /* names, for discovery */
    int source_count;
    const char *const *keywords; /* labels, for discovery */
    int keyword_count;
    /* Called on the module's threads with one line for the log and its
     * priority (3 error, 4 warning, 6 info). */
    void (*on_log)(int priority, const char *line, void *user);
    void *log_user;
} es_mqtt_config;

void es_mqtt_config_default(es_mqtt_config *config);

typedef struct es_mqtt es_mqtt;

/* Starts the threads and the first connection attempt; a broker that is
 * not there yet is no error (it is logged and retried). A negative errno
 * value with the reason in `err` for what can never work (bad options or
 * TLS files unusable: -EINVAL; no memory: -ENOMEM; no thread: -EAGAIN). */
int es_mqtt_create(const es_mqtt_config *config, es_mqtt **out, es_error *err);
/* Sends what is pending for up to linger_ms while connected, then
 * "offline", disconnects and stops. Returns the events never delivered
 * over the module's life (dropped, or still pending at the end). */
uint64_t es_mqtt_destroy(es_mqtt *mqtt);

/* Any thread, never blocks, never allocates. `json` is one event (a
 * trailing newline is left out of the payload). 0, or -1 when the event
 * was dropped (counted). */
int es_mqtt_publish(es_mqtt *mqtt, const char *source, const char *type, const char *json,
                    size_t len);

typedef struct es_mqtt_stats {
    int connected;      /* 1 while the broker accepts us */
    uint64_t delivered; /* events the broker acknowledged */
    uint64_t pending;   /* held now: not yet acknowledged */
    uint64_t dropped;   /* lost to a full queue */
} es_mqtt_stats;

void es_mqtt_get_stats(const es_mqtt *mqtt, es_mqtt_stats *stats);

#endif
