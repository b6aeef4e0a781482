/*
 * Events to an MQTT broker (mqtt.h). Three parties:
 *   publishers (detection threads)  push "SOURCE/TYPE\nJSON" into a lock-free queue;
 *   the collector thread            moves them into the bounded pending queue;
 *   the network thread              connects, publishes, takes PUBACKs, reconnects.
 * libmosquitto runs in the network thread's own poll loop (mosquitto_socket,
 * loop_read/write/misc) rather than mosquitto_loop_start: its loop thread
 * gives up for good after a DNS or TLS error, and a daemon that boots before
 * the network must keep trying.
 */
#define _GNU_SOURCE /* pipe2 */
#include "clock.h"
#include "mqtt.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "detect.h"
#include "event_socket.h"

#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS 30000
/* Events handed to libmosquitto and not yet acknowledged: enough to keep a
 * LAN link busy, few enough that libmosquitto sends them all at once
 * (its own in-flight limit is 20 by default; raised to match). */
#define IN_FLIGHT_MAX 64
#define INCOMING_LINES 4096 /* publishers -> collector, as the hub's queue */
#define TOPIC_MAX 512

typedef struct pending {
    char *topic;
    char *payload;
    int len;
    int mid;    /* libmosquitto's message id once handed over */
    int handed; /* given to libmosquitto (it re-sends it after a reconnect) */
    int acked;
} pending;

struct es_mqtt {
    es_mqtt_config config; /* strings point into `strings` */
    char *strings;
    char base[160]; /* "PREFIX/NODE": each at most 63 bytes (config.h) */
    char availability[192];

    struct mosquitto *mosq;
    es_line_queue *incoming;
    int wake_fd; /* eventfd: the network thread has news (events, stop) */
    pthread_t collector, network;
    int collector_started, network_started;
    atomic_int stopping;

    /* The pending queue: a ring of `capacity` entries, [head, head + count).
     * `lock` guards head and count (the collector appends, on_publish drops
     * from the head) and is never held while calling libmosquitto: see
     * send_pending. head is written only by the network thread. */
    pthread_mutex_t lock;
    pending *ring;
    size_t capacity, head, count;
    size_t handed;        /* entries [head, head + handed) were given to libmosquitto */
    size_t in_flight;     /* of those, not acknowledged yet (handed, in_flight: network thread's) */
    atomic_int connected; /* the network thread's CONNACK state, read for stats */
    atomic_uint_fast64_t delivered, dropped;

    /* The network thread's own. */
    int announce;          /* "online" (and discovery) are due after a CONNACK */
    char last_report[320]; /* the last failure logged: each is said once */
};

/* ---- logging ------------------------------------------------------------------------ */

static void say(es_mqtt *m, int priority, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(es_mqtt *m, int priority, const char *fmt, ...) {
    if (!m->config.on_log) return;
    char line[600];
    int len = snprintf(line, sizeof line, "mqtt: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + len, sizeof line - (size_t)len, fmt, ap);
    va_end(ap);
    m->config.on_log(priority, line, m->config.log_user);
}

/* A broker that stays away, or keeps refusing us, is reported once until
 * a connection works again. */
static void report_once(es_mqtt *m, int priority, const char *why) {
    if (strcmp(why, m->last_report) == 0) return;
    snprintf(m->last_report, sizeof m->last_report, "%s", why);
    say(m, priority,
        "%s:%d: %s; events are queued (at most %zu) and the connection retried "
        "with back-off (%d s to %d s)",
        m->config.host, m->config.port, why, m->config.queue_events, RETRY_FIRST_MS / 1000,
        RETRY_MAX_MS / 1000);
}

static void wake(es_mqtt *m) {
    uint64_t one = 1;
    ssize_t ignored = write(m->wake_fd, &one, sizeof one);
    (void)ignored;
}

/* ---- the pending queue ---------------------------------------------------------------- */

static pending *entry(es_mqtt *m, size_t i) {
    return &m->ring[(m->head + i) % m->capacity];
}

/* Collector: one "SOURCE/TYPE\nJSON" line into the queue, or dropped. */
static void enqueue(es_mqtt *m, const char *line, size_t len) {
    const char *split = memchr(line, '\n', len);
    if (!split) return;
    size_t topic_len = (size_t)(split - line);
    size_t payload_len = len - topic_len - 1;
    if (payload_len && split[payload_len] == '\n') payload_len--; /* the event's own newline */
    pending e = {.topic = malloc(strlen(m->base) + topic_len + 2),
                 .payload = malloc(payload_len + 1),
                 .len = (int)payload_len};
    pthread_mutex_lock(&m->lock);
    int room = m->count < m->capacity && e.topic && e.payload;
    if (room) {
        sprintf(e.topic, "%s/%.*s", m->base, (int)topic_len, line);
        memcpy(e.payload, split + 1, payload_len);
        e.payload[payload_len] = '\0';
        *entry(m, m->count++) = e;
    }
    pthread_mutex_unlock(&m->lock);
    if (room) return;
    free(e.topic);
    free(e.payload);
    uint64_t before = atomic_fetch_add(&m->dropped, 1);
    /* The first loss of a run is news; the rest are counted (STATUS=, exit). */
    if (before == 0)
        say(m, 4,
            "queue full (%zu events pending while the broker is away): events are now "
            "dropped and counted",
            m->config.queue_events);
}

static void *collector_thread(void *arg) {
    es_mqtt *m = arg;
    char line[ES_EVENT_LINE_MAX];
    struct pollfd p = {.fd = es_line_queue_wakeup_fd(m->incoming), .events = POLLIN};
    while (!atomic_load(&m->stopping)) {
        if (poll(&p, 1, 100) <= 0) continue;
        es_line_queue_clear_wakeup(m->incoming);
        long len;
        int moved = 0;
        while ((len = es_line_queue_pop(m->incoming, line)) >= 0) {
            enqueue(m, line, (size_t)len);
            moved = 1;
        }
        if (moved) wake(m);
    }
    long len; /* what came before the stop still counts */
    while ((len = es_line_queue_pop(m->incoming, line)) >= 0)
        enqueue(m, line, (size_t)len);
    return NULL;
}

/* ---- libmosquitto callbacks (network thread) ------------------------------------------ */

static void on_connect(struct mosquitto *mosq, void *user, int rc) {
    (void)mosq;
    es_mqtt *m = user;
    if (rc != 0) {
        char why[300];
        snprintf(why, sizeof why, "the broker refused the connection: %s%s",
                 mosquitto_connack_string(rc),
                 rc == 4 || rc == 5 ? " (check [mqtt] username and password)" : "");
        report_once(m, 3, why);
        return;
    }
    atomic_store(&m->connected, 1);
    m->announce = 1;
    m->last_report[0] = '\0';
    say(m, 6, "connected to %s:%d; publishing to %s/...", m->config.host, m->config.port, m->base);
}

/* PUBACK: the event is the broker's now. Acknowledgements come in order in
 * practice, but the queue only shrinks from its head either way. */
static void on_publish(struct mosquitto *mosq, void *user, int mid) {
    (void)mosq;
    es_mqtt *m = user;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->handed; i++) {
        pending *e = entry(m, i);
        if (e->mid != mid || e->acked) continue;
        e->acked = 1;
        m->in_flight--;
        break;
    }
    while (m->handed && entry(m, 0)->acked) {
        pending *e = entry(m, 0);
        free(e->topic);
        free(e->payload);
        m->head = (m->head + 1) % m->capacity;
        m->count--;
        m->handed--;
        atomic_fetch_add(&m->delivered, 1);
    }
    pthread_mutex_unlock(&m->lock);
}

static const char *nonempty(const char *s) {
    return s && s[0] ? s : NULL;
}

/* ---- network thread ------------------------------------------------------------------- */

static int publish_text(es_mqtt *m, const char *topic, const char *text, int *mid) {
    return mosquitto_publish(m->mosq, mid, topic, (int)strlen(text), text, 1, true);
}

/* Object ids of discovery topics: letters, digits, '_' and '-' only. */
static void object_id(char *out, size_t size, const char *node, const char *source) {
    snprintf(out, size, "earshot_%s_%s", node, source);
    for (char *c = out; *c; c++)
        if (*c == '.') *c = '_';
}

/* Home Assistant MQTT discovery: per source, a binary sensor that is on for
 * 2 s after each speech segment (events arrive when a segment ends) and an
 * event entity whose event types are the keywords. */
static void publish_discovery(es_mqtt *m) {
    const es_mqtt_config *c = &m->config;
    char device[700], types[2048] = "", id[200], topic[TOPIC_MAX], payload[4096];
    snprintf(device, sizeof device,
             "\"device\":{\"identifiers\":[\"earshot_%s\"],\"name\":\"earshot %s\","
             "\"manufacturer\":\"earshot\",\"model\":\"earshot daemon\"},"
             "\"availability_topic\":\"%s\"",
             c->node, c->node, m->availability);
    size_t used = 0;
    for (int k = 0; k < c->keyword_count && used < sizeof types - 200; k++) {
        if (k) types[used++] = ',';
        used += (size_t)es_json_quote(c->keywords[k], types + used, sizeof types - used);
    }
    for (int s = 0; s < c->source_count; s++) {
        object_id(id, sizeof id, c->node, c->sources[s]);
        snprintf(topic, sizeof topic, "%s/binary_sensor/%s/speech/config", c->discovery_prefix, id);
        snprintf(payload, sizeof payload,
                 "{\"name\":\"%s speech\",\"unique_id\":\"%s_speech\",\"device_class\":\"sound\","
                 "\"state_topic\":\"%s/%s/speech\",\"value_template\":\"ON\",\"off_delay\":2,%s}",
                 c->sources[s], id, m->base, c->sources[s], device);
        publish_text(m, topic, payload, NULL);
        snprintf(topic, sizeof topic, "%s/event/%s/keyword/config", c->discovery_prefix, id);
        snprintf(payload, sizeof payload,
                 "{\"name\":\"%s keyword\",\"unique_id\":\"%s_keyword\","
                 "\"state_topic\":\"%s/%s/keyword\",\"event_types\":[%s],"
                 "\"value_template\":\"{{ {'event_type': value_json.keyword, 'score': "
                 "value_json.score} | to_json }}\",%s}",
                 c->sources[s], id, m->base, c->sources[s], types, device);
        publish_text(m, topic, payload, NULL);
    }
}

/* Whether mosquitto_publish's `rc` leaves the message with libmosquitto
 * all the same. It queues a QoS 1 message before writing it, so a write
 * that fails because the connection has just gone (the broker's FIN not
 * read yet: EPIPE, ECONNRESET) returns an error for a message it keeps and
 * re-sends after the reconnect, under the same message id. Publishing it
 * again would deliver it twice. Only the checks made before the queueing
 * (bad topic, payload size, out of memory) leave it ours. */
static int kept_by_libmosquitto(int rc) {
    return rc == MOSQ_ERR_SUCCESS || rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST ||
           rc == MOSQ_ERR_ERRNO || rc == MOSQ_ERR_TLS;
}

/* Hands pending events to libmosquitto, oldest first, up to IN_FLIGHT_MAX.
 * Never with `lock` held: libmosquitto calls on_publish (which takes it)
 * with its own mutexes held, so holding it around mosquitto_publish would
 * take the two in both orders, a potential deadlock. The lock only guards
 * the queue's bounds against the collector, which appends past `count` and
 * never touches an entry below it; the entries handed and their mid, handed
 * and in_flight are the network thread's alone (on_publish runs on it). */
static void send_pending(es_mqtt *m) {
    while (m->in_flight < IN_FLIGHT_MAX) {
        pthread_mutex_lock(&m->lock);
        pending *e = m->handed < m->count ? entry(m, m->handed) : NULL;
        pthread_mutex_unlock(&m->lock);
        if (!e) break;
        int rc = mosquitto_publish(m->mosq, &e->mid, e->topic, e->len, e->payload, 1, false);
        if (!kept_by_libmosquitto(rc)) break; /* tried again on the next round */
        e->handed = 1;
        m->handed++;
        m->in_flight++;
        if (rc != MOSQ_ERR_SUCCESS) break; /* the connection went: the rest after the reconnect */
    }
}

static int64_t now_ms(void) {
    return es_monotonic_ns() / 1000000;
}

/* Waits up to `timeout_ms` for the socket and the wake-up; runs libmosquitto. */
static void service_socket(es_mqtt *m, int timeout_ms) {
    int sock = mosquitto_socket(m->mosq);
    struct pollfd p[2] = {{.fd = m->wake_fd, .events = POLLIN}, {.fd = sock, .events = POLLIN}};
    if (mosquitto_want_write(m->mosq)) p[1].events |= POLLOUT;
    int n = poll(p, sock >= 0 ? 2 : 1, timeout_ms);
    if (n > 0 && p[0].revents) {
        uint64_t count;
        ssize_t ignored = read(m->wake_fd, &count, sizeof count);
        (void)ignored;
    }
    if (sock >= 0 && n > 0 && (p[1].revents & (POLLIN | POLLERR | POLLHUP)))
        mosquitto_loop_read(m->mosq, 1);
    if (mosquitto_socket(m->mosq) >= 0 && mosquitto_want_write(m->mosq))
        mosquitto_loop_write(m->mosq, 1);
    if (mosquitto_socket(m->mosq) >= 0) mosquitto_loop_misc(m->mosq); /* keep-alive */
}

/* One connection attempt (the first a connect, the others a reconnect,
 * which keeps the messages in flight for re-sending). 0 once the socket is
 * open: the CONNACK comes later. */
static int try_connect(es_mqtt *m, int *first) {
    int rc = *first
                 ? mosquitto_connect(m->mosq, m->config.host, m->config.port, m->config.keepalive_s)
                 : mosquitto_reconnect(m->mosq);
    if (rc == MOSQ_ERR_SUCCESS) {
        *first = 0;
        return 0;
    }
    char why[300];
    snprintf(why, sizeof why, "cannot connect to the broker: %s",
             rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
    report_once(m, *first ? 3 : 4, why);
    return -1;
}

/* Waits before the next connection attempt, 1 s doubling to 30 s. */
static void back_off(es_mqtt *m, int *delay_ms) {
    int64_t until = now_ms() + *delay_ms;
    while (!atomic_load(&m->stopping) && now_ms() < until)
        service_socket(m, (int)(until - now_ms()));
    *delay_ms = *delay_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : *delay_ms * 2;
}

/* Until stopped: connect, publish, reconnect with back-off. A refused
 * CONNACK (wrong password) closes the socket like a lost connection. */
static void run_connection(es_mqtt *m) {
    int first = 1, delay_ms = RETRY_FIRST_MS;
    while (!atomic_load(&m->stopping)) {
        if (mosquitto_socket(m->mosq) < 0) {
            if (atomic_exchange(&m->connected, 0))
                report_once(m, 4, "lost the connection to the broker");
            if (try_connect(m, &first) != 0) {
                back_off(m, &delay_ms);
                continue;
            }
        }
        service_socket(m, 1000);
        int open = mosquitto_socket(m->mosq) >= 0;
        if (!atomic_load(&m->connected)) {
            if (!open) back_off(m, &delay_ms);
            continue;
        }
        if (!open) continue; /* lost: reported and retried at the top */
        delay_ms = RETRY_FIRST_MS;
        if (m->announce) {
            m->announce = 0;
            publish_text(m, m->availability, "online", NULL);
            if (nonempty(m->config.discovery_prefix)) publish_discovery(m);
        }
        send_pending(m);
    }
}

/* On the way out: what is pending goes out while the broker takes it (up
 * to linger_ms), then "offline" replaces the retained "online" and the
 * connection closes cleanly (so the will is not sent as well). */
static void finish_connection(es_mqtt *m) {
    if (!atomic_load(&m->connected)) return;
    int64_t end = now_ms() + m->config.linger_ms;
    for (;;) {
        send_pending(m);
        pthread_mutex_lock(&m->lock);
        size_t left = m->count;
        pthread_mutex_unlock(&m->lock);
        if (!left || now_ms() >= end || mosquitto_socket(m->mosq) < 0) break;
        service_socket(m, 10);
    }
    int mid = -1;
    if (publish_text(m, m->availability, "offline", &mid) == MOSQ_ERR_SUCCESS) {
        end = now_ms() + 200;
        while (now_ms() < end && mosquitto_socket(m->mosq) >= 0 && mosquitto_want_write(m->mosq))
            service_socket(m, 10);
        /* Its PUBACK is not awaited: the bytes are out, the broker handles
         * them before the DISCONNECT that follows on the same connection. */
    }
    mosquitto_disconnect(m->mosq);
    while (mosquitto_socket(m->mosq) >= 0 && mosquitto_want_write(m->mosq) && now_ms() < end)
        service_socket(m, 10);
}

static void *network_thread(void *arg) {
    es_mqtt *m = arg;
    run_connection(m);
    finish_connection(m);
    return NULL;
}

/* ---- public --------------------------------------------------------------------------- */

void es_mqtt_config_default(es_mqtt_config *config) {
    memset(config, 0, sizeof *config);
    config->port = 1883;
    config->topic_prefix = "earshot";
    config->keepalive_s = 60;
    config->queue_events = 10000;
    config->linger_ms = 500;
}

/* Copies the config's strings into one block the module owns. */
static int own_strings(es_mqtt *m, const es_mqtt_config *c) {
    const char **fields[] = {&m->config.host,      &m->config.topic_prefix,    &m->config.node,
                             &m->config.client_id, &m->config.username,        &m->config.password,
                             &m->config.cafile,    &m->config.capath,          &m->config.certfile,
                             &m->config.keyfile,   &m->config.discovery_prefix};
    const size_t count = sizeof fields / sizeof fields[0];
    m->config = *c;
    size_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += *fields[i] ? strlen(*fields[i]) + 1 : 0;
    m->strings = malloc(total + 1);
    if (!m->strings) return -1;
    char *at = m->strings;
    for (size_t i = 0; i < count; i++) {
        if (!*fields[i]) continue;
        size_t len = strlen(*fields[i]) + 1;
        memcpy(at, *fields[i], len);
        *fields[i] = at;
        at += len;
    }
    /* Discovery names are used at every connect, long after create returns. */
    m->config.sources = NULL;
    m->config.keywords = NULL;
    return 0;
}

/* Everything libmosquitto is told before the first connect. */
static int configure_client(es_mqtt *m, es_error *err) {
    const es_mqtt_config *c = &m->config;
    char id[256];
    if (nonempty(c->client_id))
        snprintf(id, sizeof id, "%s", c->client_id);
    else
        snprintf(id, sizeof id, "earshot-%s", c->node);
    /* A clean session: what was in flight is re-sent by us (libmosquitto
     * keeps it), not by the broker's memory of a previous session. */
    m->mosq = mosquitto_new(id, true, m);
    if (!m->mosq) return es_error_set(err, -errno, "cannot create a client: %s", strerror(errno));
    mosquitto_connect_callback_set(m->mosq, on_connect);
    mosquitto_publish_callback_set(m->mosq, on_publish);
    mosquitto_int_option(m->mosq, MOSQ_OPT_SEND_MAXIMUM, IN_FLIGHT_MAX);
    int rc = mosquitto_will_set(m->mosq, m->availability, 7, "offline", 1, true);
    if (rc == MOSQ_ERR_SUCCESS && nonempty(c->username))
        rc = mosquitto_username_pw_set(m->mosq, c->username, nonempty(c->password));
    if (rc != MOSQ_ERR_SUCCESS) return es_error_set(err, -EINVAL, "%s", mosquitto_strerror(rc));
    if (nonempty(c->cafile) || nonempty(c->capath)) {
        rc = mosquitto_tls_set(m->mosq, nonempty(c->cafile), nonempty(c->capath),
                               nonempty(c->certfile), nonempty(c->keyfile), NULL);
        if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_tls_insecure_set(m->mosq, c->tls_insecure);
        if (rc != MOSQ_ERR_SUCCESS)
            return es_error_set(err, -EINVAL, "TLS: %s (cafile/capath, certfile, keyfile)",
                                rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
    }
    return 0;
}

/* Discovery's names, copied: the caller's arrays need not outlive create. */
static int own_names(const char *const *names, int count, char ***out) {
    *out = calloc((size_t)count + 1, sizeof **out);
    if (!*out) return -1;
    for (int i = 0; i < count; i++)
        if (!((*out)[i] = strdup(names[i]))) return -1;
    return 0;
}

static void free_names(char **names) {
    for (int i = 0; names && names[i]; i++)
        free(names[i]);
    free(names);
}

int es_mqtt_create(const es_mqtt_config *config, es_mqtt **out, es_error *err) {
    if (!nonempty(config->host) || !nonempty(config->node) || !config->queue_events)
        return es_error_set(err, -EINVAL, "host, node and queue_events are required");
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, (void (*)(void))mosquitto_lib_init);
    es_mqtt *m = calloc(1, sizeof *m);
    if (!m) return es_error_set(err, -ENOMEM, "out of memory");
    m->wake_fd = -1;
    pthread_mutex_init(&m->lock, NULL);
    char **sources = NULL, **keywords = NULL;
    int ok = own_strings(m, config) == 0 &&
             own_names(config->sources, config->source_count, &sources) == 0 &&
             own_names(config->keywords, config->keyword_count, &keywords) == 0;
    m->config.sources = (const char *const *)sources;
    m->config.keywords = (const char *const *)keywords;
    m->capacity = config->queue_events;
    m->ring = ok ? calloc(m->capacity, sizeof *m->ring) : NULL;
    m->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int rc = 0;
    if (!m->ring || m->wake_fd < 0 || es_line_queue_create(INCOMING_LINES, &m->incoming) != 0)
        rc = es_error_set(err, -ENOMEM, "out of memory");
    if (rc == 0) {
        snprintf(m->base, sizeof m->base, "%s/%s", m->config.topic_prefix, m->config.node);
        snprintf(m->availability, sizeof m->availability, "%s/availability", m->base);
        rc = configure_client(m, err);
    }
    if (rc == 0) {
        m->collector_started = pthread_create(&m->collector, NULL, collector_thread, m) == 0;
        m->network_started =
            m->collector_started && pthread_create(&m->network, NULL, network_thread, m) == 0;
        if (!m->network_started) rc = es_error_set(err, -EAGAIN, "cannot start a thread");
    }
    if (rc != 0) {
        es_mqtt_destroy(m);
        return rc;
    }
    *out = m;
    return 0;
}

uint64_t es_mqtt_destroy(es_mqtt *m) {
    if (!m) return 0;
    atomic_store(&m->stopping, 1);
    if (m->collector_started) pthread_join(m->collector, NULL);
    if (m->network_started) {
        wake(m);
        pthread_join(m->network, NULL);
    }
    uint64_t undelivered = atomic_load(&m->dropped) + m->count;
    for (size_t i = 0; i < m->count; i++) {
        free(entry(m, i)->topic);
        free(entry(m, i)->payload);
    }
    if (m->mosq) mosquitto_destroy(m->mosq);
    es_line_queue_destroy(m->incoming);
    if (m->wake_fd >= 0) close(m->wake_fd);
    free_names((char **)m->config.sources);
    free_names((char **)m->config.keywords);
    free(m->ring);
    free(m->strings);
    pthread_mutex_destroy(&m->lock);
    free(m);
    return undelivered;
}

int es_mqtt_publish(es_mqtt *m, const char *source, const char *type, const char *json,
                    size_t len) {
    char line[ES_EVENT_LINE_MAX];
    int prefix = snprintf(line, sizeof line, "%s/%s\n", source, type);
    if (prefix <= 0 || (size_t)prefix + len > sizeof line) {
        atomic_fetch_add(&m->dropped, 1);
        return -1;
    }
    memcpy(line + prefix, json, len);
    if (es_line_queue_push(m->incoming, line, (size_t)prefix + len) != 0) {
        atomic_fetch_add(&m->dropped, 1);
        return -1;
    }
    return 0;
}

void es_mqtt_get_stats(const es_mqtt *mqtt, es_mqtt_stats *stats) {
    es_mqtt *m = (es_mqtt *)mqtt;
    pthread_mutex_lock(&m->lock);
    stats->pending = m->count;
    pthread_mutex_unlock(&m->lock);
    stats->connected = atomic_load(&m->connected);
    stats->delivered = atomic_load(&m->delivered);
    stats->dropped = atomic_load(&m->dropped);
}
