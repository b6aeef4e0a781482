/*
 * service — the long-running detection service behind `earshot daemon`
 * (DESIGN.md, "Daemon config"; systemd/earshot.service.in).
 *
 * Every source of the config (files, FIFOs, capture devices) runs as a stream
 * (daemon/stream/) that is restarted with back-off; events go to the event
 * socket (event_socket.h), stdout, MQTT (mqtt.h) and a Wyoming server
 * (wyoming.h) as configured. SIGHUP reloads the config and models beside the
 * running ones (a bad reload is refused and logged); SIGTERM/SIGINT drain and
 * stop. Under systemd it reports READY, STATUS and WATCHDOG (notify.h). The
 * service logs to stderr with sd-daemon priority prefixes; it prints nothing
 * else but events.
 *
 * The room daemon/service: its public headers are this one, config.h (the
 * config file's format; --check-config's options) and wyoming.h (the
 * Wyoming server, also served alone by `earshot wyoming`). Private to the
 * room (its own .c files and their tests): event_socket.h, mqtt.h,
 * notify.h, wyoming_json.h.
 */
#ifndef ES_SERVICE_H
#define ES_SERVICE_H

#include "error.h"

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

#endif
