/*
 * Event fan-out: a lock-free line queue, the subscriber hub and the line writer.
 *
 * The queue is the bounded multi-producer queue of D. Vyukov ("Bounded MPMC
 * queue", 1024cores.net): each slot carries a sequence number telling whether
 * it is free for the producer holding ticket `pos` (seq == pos) or filled for
 * the consumer (seq == pos + 1), so producers only contend on one CAS and
 * never wait for each other or for the consumer.
 */
#define _GNU_SOURCE /* accept4 */
#include "clock.h"
#include "event_socket.h"

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- line queue ------------------------------------------------------------------ */

typedef struct queue_slot {
    atomic_size_t sequence;
    uint32_t len;
    char line[ES_EVENT_LINE_MAX];
} queue_slot;

struct es_line_queue {
    queue_slot *slots;
    size_t mask;
    atomic_size_t enqueue_pos;
    size_t dequeue_pos; /* the consumer's alone */
    atomic_uint_fast64_t lost;
    int wakeup_fd;
};

int es_line_queue_create(size_t capacity_lines, es_line_queue **out) {
    size_t capacity = 2;
    while (capacity < capacity_lines)
        capacity <<= 1;
    es_line_queue *q = calloc(1, sizeof *q);
    if (!q) return -ENOMEM;
    q->slots = calloc(capacity, sizeof *q->slots);
    q->wakeup_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!q->slots || q->wakeup_fd < 0) {
        int code = q->slots ? -errno : -ENOMEM;
        if (q->wakeup_fd >= 0) close(q->wakeup_fd);
        free(q->slots);
        free(q);
        return code;
    }
    q->mask = capacity - 1;
    for (size_t i = 0; i < capacity; i++)
        atomic_init(&q->slots[i].sequence, i);
    atomic_init(&q->enqueue_pos, 0);
    atomic_init(&q->lost, 0);
    *out = q;
    return 0;
}

void es_line_queue_destroy(es_line_queue *q) {
    if (!q) return;
    close(q->wakeup_fd);
    free(q->slots);
    free(q);
}

int es_line_queue_push(es_line_queue *q, const char *line, size_t len) {
    if (len > ES_EVENT_LINE_MAX) {
        atomic_fetch_add_explicit(&q->lost, 1, memory_order_relaxed);
        return -1;
    }
    size_t pos = atomic_load_explicit(&q->enqueue_pos, memory_order_relaxed);
    queue_slot *slot;
    for (;;) {
        slot = &q->slots[pos & q->mask];
        size_t seq = atomic_load_explicit(&slot->sequence, memory_order_acquire);
        intptr_t diff = (intptr_t)seq - (intptr_t)pos;
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->enqueue_pos, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed))
                break;
        } else if (diff < 0) {
            atomic_fetch_add_explicit(&q->lost, 1, memory_order_relaxed);
            return -1;
        } else {
            pos = atomic_load_explicit(&q->enqueue_pos, memory_order_relaxed);
        }
    }
    memcpy(slot->line, line, len);
    slot->len = (uint32_t)len;
    atomic_store_explicit(&slot->sequence, pos + 1, memory_order_release);
    uint64_t one = 1;
    /* Non-blocking eventfd: it can only fail when the counter is near 2^64. */
    ssize_t ignored = write(q->wakeup_fd, &one, sizeof one);
    (void)ignored;
    return 0;
}

long es_line_queue_pop(es_line_queue *q, char *buf) {
    queue_slot *slot = &q->slots[q->dequeue_pos & q->mask];
    size_t seq = atomic_load_explicit(&slot->sequence, memory_order_acquire);
    if (seq != q->dequeue_pos + 1) return -1;
    long len = slot->len;
    memcpy(buf, slot->line, (size_t)len);
    atomic_store_explicit(&slot->sequence, q->dequeue_pos + q->mask + 1, memory_order_release);
    q->dequeue_pos++;
    return len;
}

int es_line_queue_wakeup_fd(const es_line_queue *q) {
    return q->wakeup_fd;
}

void es_line_queue_clear_wakeup(es_line_queue *q) {
    uint64_t count;
    ssize_t ignored = read(q->wakeup_fd, &count, sizeof count);
    (void)ignored;
}

uint64_t es_line_queue_lost(const es_line_queue *q) {
    return atomic_load_explicit(&((es_line_queue *)q)->lost, memory_order_relaxed);
}

/* ---- hub ------------------------------------------------------------------------- */

/* Pending bytes of one subscriber: [start, end) of `bytes`, holding `events`
 * whole or partly sent lines (each line ends with its only '\n'). */
typedef struct subscriber {
    int fd;
    long pid; /* the peer's, for messages; 0 when unknown */
    char *bytes;
    size_t allocated, start, end;
    size_t events;
    int input_closed; /* it sends nothing more; it may still read */
} subscriber;

struct es_event_hub {
    es_event_hub_config config; /* socket_path and socket_group point at the copies below */
    /* The hub thread reads the path and group again each time it remakes
     * the socket, for the hub's whole life: the caller's strings may be
     * rewritten meanwhile (the daemon copies a fresh config over its own on
     * every reload, a data race even when the bytes do not change). */
    char config_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char config_group[256];
    char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t socket_dev;
    ino_t socket_ino;
    int listen_fd;
    int64_t next_socket_check_ms;   /* hub thread's alone */
    atomic_int recheck;             /* es_event_hub_recheck: check at the next wake-up */
    char last_socket_report[400];   /* hub thread's: a failure to remake is said once */
    int64_t accept_paused_until_ms; /* hub thread's alone */
    int stop_fd;
    es_line_queue *queue;
    pthread_t thread;

    subscriber *subscribers;
    size_t subscriber_count;
    struct pollfd *pollfds;

    atomic_uint_fast64_t subscribers_now, accepted, rejected, dropped_slow, published;
};

void es_event_hub_config_default(es_event_hub_config *config) {
    config->socket_path = "/run/earshot/events.sock";
    config->socket_mode = 0660;
    config->socket_group = NULL;
    config->backlog_events = 1024;
    config->backlog_bytes = 256 * 1024;
    config->max_subscribers = 256;
    config->queue_lines = 1024;
    config->linger_ms = 200;
    config->on_report = NULL;
    config->on_report_user = NULL;
}

static void counter_add(atomic_uint_fast64_t *counter, uint64_t n) {
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

static void remove_subscriber(es_event_hub *hub, size_t i) {
    subscriber *s = &hub->subscribers[i];
    close(s->fd);
    free(s->bytes);
    hub->subscribers[i] = hub->subscribers[--hub->subscriber_count];
    atomic_store_explicit(&hub->subscribers_now, hub->subscriber_count, memory_order_relaxed);
}

/* Appends one line; 0, or -1 when the backlog limits would be exceeded. */
static int backlog_append(es_event_hub *hub, subscriber *s, const char *line, size_t len) {
    size_t pending = s->end - s->start;
    if (s->events + 1 > hub->config.backlog_events || pending + len > hub->config.backlog_bytes)
        return -1;
    if (s->end + len > s->allocated) {
        if (s->start) memmove(s->bytes, s->bytes + s->start, pending);
        s->start = 0;
        s->end = pending;
        if (pending + len > s->allocated) {
            size_t grown = s->allocated ? s->allocated : 4096;
            while (grown < pending + len)
                grown *= 2;
            char *bytes = realloc(s->bytes, grown);
            if (!bytes) return -1;
            s->bytes = bytes;
            s->allocated = grown;
        }
    }
    memcpy(s->bytes + s->end, line, len);
    s->end += len;
    s->events++;
    return 0;
}

static size_t count_newlines(const char *bytes, size_t len) {
    size_t count = 0;
    for (const char *p = bytes; (p = memchr(p, '\n', len - (size_t)(p - bytes))) != NULL; p++)
        count++;
    return count;
}

/* Sends as much of the backlog as the socket takes; -1 when the
 * connection is broken. */
static int backlog_flush(subscriber *s) {
    while (s->end > s->start) {
        ssize_t sent =
            send(s->fd, s->bytes + s->start, s->end - s->start, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        s->events -= count_newlines(s->bytes + s->start, (size_t)sent);
        s->start += (size_t)sent;
    }
    s->start = s->end = 0;
    return 0;
}

/* A subscriber that cannot take one more line is disconnected, and the
 * owner told why: a line of log per client, instead of only a count. */
static void drop_slow(es_event_hub *hub, size_t i, size_t len) {
    subscriber *s = &hub->subscribers[i];
    counter_add(&hub->dropped_slow, 1);
    if (hub->config.on_report) {
        char who[32] = "";
        if (s->pid > 0) snprintf(who, sizeof who, " (pid %ld)", s->pid);
        size_t pending = s->end - s->start;
        char why[256];
        if (s->events + 1 > hub->config.backlog_events || pending + len > hub->config.backlog_bytes)
            snprintf(why, sizeof why,
                     "subscriber%s dropped as slow: %zu events (%zu bytes) unread, the backlog "
                     "holds %zu events or %zu bytes",
                     who, s->events, pending, hub->config.backlog_events,
                     hub->config.backlog_bytes);
        else
            snprintf(why, sizeof why, "subscriber%s dropped: no memory for its backlog", who);
        hub->config.on_report(why, hub->config.on_report_user);
    }
    remove_subscriber(hub, i);
}

static void fan_out(es_event_hub *hub, const char *line, size_t len) {
    for (size_t i = 0; i < hub->subscriber_count;) {
        if (backlog_append(hub, &hub->subscribers[i], line, len) == 0)
            i++;
        else
            drop_slow(hub, i, len);
    }
}

static void drain_queue(es_event_hub *hub) {
    char line[ES_EVENT_LINE_MAX];
    long len;
    es_line_queue_clear_wakeup(hub->queue);
    while ((len = es_line_queue_pop(hub->queue, line)) >= 0)
        fan_out(hub, line, (size_t)len);
    for (size_t i = 0; i < hub->subscriber_count;) {
        if (backlog_flush(&hub->subscribers[i]) == 0)
            i++;
        else
            remove_subscriber(hub, i);
    }
}

#define ACCEPT_PAUSE_MS 100

static int64_t now_ms(void);

static void accept_subscribers(es_event_hub *hub) {
    for (;;) {
        int fd = accept4(hub->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            /* Out of fds or memory: the connection stays queued and the
             * listener readable; stop polling it for a moment rather than
             * spin on it. */
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                hub->accept_paused_until_ms = now_ms() + ACCEPT_PAUSE_MS;
            return;
        }
        if (hub->subscriber_count == hub->config.max_subscribers) {
            counter_add(&hub->rejected, 1); /* before the peer can see the close */
            close(fd);
            continue;
        }
        /* The kernel's send buffer is a second backlog in front of the
         * subscriber; bound it too, or a stalled reader would hold a
         * default-sized one (~200 KB) before its own backlog even starts. */
        int sndbuf = (int)hub->config.backlog_bytes;
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        struct ucred peer;
        socklen_t peer_len = sizeof peer;
        long pid = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &peer_len) == 0 ? peer.pid : 0;
        hub->subscribers[hub->subscriber_count++] = (subscriber){.fd = fd, .pid = pid};
        atomic_store_explicit(&hub->subscribers_now, hub->subscriber_count, memory_order_relaxed);
        counter_add(&hub->accepted, 1);
    }
}

/* Reads and discards what a subscriber sent; -1 when the connection broke. */
static int discard_input(subscriber *s) {
    char scratch[512];
    for (;;) {
        ssize_t got = recv(s->fd, scratch, sizeof scratch, MSG_DONTWAIT);
        if (got > 0) continue;
        if (got == 0) {
            /* It shut down its sending side only (`socat -u`, a shell
             * redirect): still a reader. A full close shows as POLLHUP. */
            s->input_closed = 1;
            return 0;
        }
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
}

enum { POLL_STOP, POLL_QUEUE, POLL_LISTEN, POLL_FIXED };

static void serve_subscribers(es_event_hub *hub, size_t polled) {
    /* Walk backwards: removal swaps the last subscriber into the hole. */
    for (size_t i = polled; i-- > 0;) {
        short revents = hub->pollfds[POLL_FIXED + i].revents;
        subscriber *s = &hub->subscribers[i];
        int broken = 0;
        if (revents & (POLLERR | POLLNVAL | POLLHUP)) broken = 1;
        if (!broken && (revents & POLLIN)) broken = discard_input(s) < 0;
        if (!broken && (revents & POLLOUT)) broken = backlog_flush(s) < 0;
        if (broken) remove_subscriber(hub, i);
    }
}

static int64_t now_ms(void) {
    return es_monotonic_ns() / 1000000;
}

/* On the way out: give backlogs up to linger_ms to reach their readers. */
static void linger(es_event_hub *hub) {
    drain_queue(hub);
    int64_t deadline = now_ms() + hub->config.linger_ms;
    for (;;) {
        size_t waiting = 0;
        for (size_t i = 0; i < hub->subscriber_count; i++) {
            subscriber *s = &hub->subscribers[i];
            if (s->end == s->start) continue;
            hub->pollfds[waiting++] = (struct pollfd){.fd = s->fd, .events = POLLOUT};
        }
        int64_t left = deadline - now_ms();
        if (!waiting || left <= 0) return;
        if (poll(hub->pollfds, waiting, (int)left) < 0 && errno != EINTR) return;
        for (size_t i = hub->subscriber_count; i-- > 0;)
            if (backlog_flush(&hub->subscribers[i]) < 0) remove_subscriber(hub, i);
    }
}

static int open_listener(es_event_hub *hub, es_error *err);

#define SOCKET_CHECK_MS 1000

static void report(es_event_hub *hub, const char *what) {
    if (hub->config.on_report) hub->config.on_report(what, hub->config.on_report_user);
}

/* The socket file was deleted (or replaced by something else): nobody can
 * connect, and another daemon could bind the path. Made again, with its
 * mode and group; the subscribers connected so far stay. */
static void check_socket_file(es_event_hub *hub) {
    struct stat st;
    if (stat(hub->socket_path, &st) == 0 && st.st_dev == hub->socket_dev &&
        st.st_ino == hub->socket_ino)
        return;
    int old_fd = hub->listen_fd;
    es_error err = {0};
    char what[sizeof hub->last_socket_report];
    if (open_listener(hub, &err) == 0) {
        close(old_fd);
        snprintf(what, sizeof what, "%s: the socket file was deleted or replaced; made it again",
                 hub->socket_path);
        report(hub, what);
        hub->last_socket_report[0] = '\0';
        return;
    }
    if (hub->listen_fd >= 0 && hub->listen_fd != old_fd) close(hub->listen_fd);
    hub->listen_fd = old_fd;
    snprintf(what, sizeof what, "the socket file is gone and cannot be made again: %s", err.why);
    if (strcmp(what, hub->last_socket_report) != 0) report(hub, what);
    snprintf(hub->last_socket_report, sizeof hub->last_socket_report, "%s", what);
}

static void *hub_thread(void *arg) {
    es_event_hub *hub = arg;
    for (;;) {
        int64_t now = now_ms();
        if (atomic_exchange(&hub->recheck, 0) || now >= hub->next_socket_check_ms) {
            check_socket_file(hub);
            hub->next_socket_check_ms = now + SOCKET_CHECK_MS;
        }
        hub->pollfds[POLL_STOP] = (struct pollfd){.fd = hub->stop_fd, .events = POLLIN};
        hub->pollfds[POLL_QUEUE] =
            (struct pollfd){.fd = es_line_queue_wakeup_fd(hub->queue), .events = POLLIN};
        int accept_paused = now_ms() < hub->accept_paused_until_ms;
        /* A negative fd is skipped by poll(). */
        hub->pollfds[POLL_LISTEN] =
            (struct pollfd){.fd = accept_paused ? -1 : hub->listen_fd, .events = POLLIN};
        size_t polled = hub->subscriber_count;
        for (size_t i = 0; i < polled; i++) {
            subscriber *s = &hub->subscribers[i];
            short events = (s->input_closed ? 0 : POLLIN) | (s->end > s->start ? POLLOUT : 0);
            hub->pollfds[POLL_FIXED + i] = (struct pollfd){.fd = s->fd, .events = events};
        }
        if (poll(hub->pollfds, POLL_FIXED + polled,
                 accept_paused ? ACCEPT_PAUSE_MS : SOCKET_CHECK_MS) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (hub->pollfds[POLL_STOP].revents) break;
        /* Subscribers first: the indices in pollfds are only valid until
         * someone joins or leaves. */
        serve_subscribers(hub, polled);
        if (hub->pollfds[POLL_QUEUE].revents) drain_queue(hub);
        if (hub->pollfds[POLL_LISTEN].revents) accept_subscribers(hub);
    }
    linger(hub);
    return NULL;
}

static int resolve_group(const char *group, gid_t *gid) {
    char *end;
    unsigned long number = strtoul(group, &end, 10);
    if (*group && !*end) {
        *gid = (gid_t)number;
        return 0;
    }
    struct group entry, *found = NULL;
    char buf[4096];
    if (getgrnam_r(group, &entry, buf, sizeof buf, &found) != 0 || !found) return -1;
    *gid = found->gr_gid;
    return 0;
}

/* A socket file left by a daemon that died is replaced; one somebody still
 * answers on is not ours to take. */
static int remove_stale_socket(const struct sockaddr_un *addr, es_error *err) {
    struct stat st;
    if (lstat(addr->sun_path, &st) != 0 || !S_ISSOCK(st.st_mode))
        return es_error_set(err, -EADDRINUSE, "%s: exists and is not a socket", addr->sun_path);
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) return es_error_set(err, -errno, "socket: %s", strerror(errno));
    int rc = connect(probe, (const struct sockaddr *)addr, sizeof *addr);
    int connect_errno = errno;
    close(probe);
    if (rc == 0)
        return es_error_set(err, -EADDRINUSE, "%s: another process is listening on it",
                            addr->sun_path);
    if (connect_errno != ECONNREFUSED)
        return es_error_set(err, -connect_errno, "%s: %s", addr->sun_path, strerror(connect_errno));
    if (unlink(addr->sun_path) != 0)
        return es_error_set(err, -errno, "%s: cannot remove stale socket: %s", addr->sun_path,
                            strerror(errno));
    return 0;
}

int es_event_hub_check_config(const es_event_hub_config *c, es_error *err) {
    struct sockaddr_un addr;
    if (!c->socket_path || !*c->socket_path || strlen(c->socket_path) >= sizeof addr.sun_path)
        return es_error_set(err, -ENAMETOOLONG, "socket path is empty or longer than %zu bytes",
                            sizeof addr.sun_path - 1);
    char folder[sizeof addr.sun_path];
    snprintf(folder, sizeof folder, "%s", c->socket_path);
    char *slash = strrchr(folder, '/');
    if (slash) {
        slash[slash == folder] = '\0'; /* "/x.sock" lives in "/" */
        struct stat st;
        if (stat(folder, &st) != 0)
            return es_error_set(err, -errno, "%s: folder %s: %s", c->socket_path, folder,
                                strerror(errno));
        if (!S_ISDIR(st.st_mode))
            return es_error_set(err, -ENOTDIR, "%s: %s is not a folder", c->socket_path, folder);
    }
    gid_t gid;
    if (c->socket_group && *c->socket_group && resolve_group(c->socket_group, &gid) != 0)
        return es_error_set(err, -EINVAL, "%s: no group named '%s'", c->socket_path,
                            c->socket_group);
    return 0;
}

static int open_listener(es_event_hub *hub, es_error *err) {
    const es_event_hub_config *c = &hub->config;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int rc = es_event_hub_check_config(c, err);
    if (rc != 0) return rc;
    memcpy(addr.sun_path, c->socket_path, strlen(c->socket_path) + 1);
    memcpy(hub->socket_path, addr.sun_path, sizeof addr.sun_path);

    hub->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (hub->listen_fd < 0) return es_error_set(err, -errno, "socket: %s", strerror(errno));
    if (bind(hub->listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        if (errno != EADDRINUSE)
            return es_error_set(err, -errno, "%s: bind: %s", addr.sun_path, strerror(errno));
        if ((rc = remove_stale_socket(&addr, err)) != 0) return rc;
        if (bind(hub->listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0)
            return es_error_set(err, -errno, "%s: bind: %s", addr.sun_path, strerror(errno));
    }
    struct stat st;
    if (stat(addr.sun_path, &st) == 0) {
        hub->socket_dev = st.st_dev;
        hub->socket_ino = st.st_ino;
    }
    /* Nobody can connect before listen(), so the mode and group are in
     * place before the first subscriber. */
    if (c->socket_mode >= 0 && chmod(addr.sun_path, (mode_t)c->socket_mode) != 0)
        return es_error_set(err, -errno, "%s: chmod %04o: %s", addr.sun_path,
                            (unsigned)c->socket_mode, strerror(errno));
    if (c->socket_group && *c->socket_group) {
        gid_t gid;
        if (resolve_group(c->socket_group, &gid) != 0)
            return es_error_set(err, -ENOENT, "%s: no group named '%s'", addr.sun_path,
                                c->socket_group);
        if (chown(addr.sun_path, (uid_t)-1, gid) != 0)
            return es_error_set(err, -errno, "%s: chgrp %s: %s", addr.sun_path, c->socket_group,
                                strerror(errno));
    }
    if (listen(hub->listen_fd, 128) != 0)
        return es_error_set(err, -errno, "%s: listen: %s", addr.sun_path, strerror(errno));
    return 0;
}

/* Removes the socket file only if it is still the one we made. */
static void remove_socket_file(const es_event_hub *hub) {
    struct stat st;
    if (hub->socket_path[0] && stat(hub->socket_path, &st) == 0 && st.st_dev == hub->socket_dev &&
        st.st_ino == hub->socket_ino)
        unlink(hub->socket_path);
}

static void free_hub(es_event_hub *hub) {
    for (size_t i = 0; i < hub->subscriber_count; i++) {
        close(hub->subscribers[i].fd);
        free(hub->subscribers[i].bytes);
    }
    if (hub->listen_fd >= 0) {
        close(hub->listen_fd);
        remove_socket_file(hub);
    }
    if (hub->stop_fd >= 0) close(hub->stop_fd);
    es_line_queue_destroy(hub->queue);
    free(hub->subscribers);
    free(hub->pollfds);
    free(hub);
}

int es_event_hub_create(const es_event_hub_config *config, es_event_hub **out, es_error *err) {
    es_event_hub *hub = calloc(1, sizeof *hub);
    if (!hub) return es_error_set(err, -ENOMEM, "out of memory");
    hub->config = *config;
    hub->listen_fd = hub->stop_fd = -1;
    /* Too long to copy: left pointing at the caller's, which open_listener
     * refuses below (still in the caller's thread). */
    if (config->socket_path && strlen(config->socket_path) < sizeof hub->config_path)
        hub->config.socket_path = strcpy(hub->config_path, config->socket_path);
    if (config->socket_group && strlen(config->socket_group) < sizeof hub->config_group)
        hub->config.socket_group = strcpy(hub->config_group, config->socket_group);
    else if (config->socket_group) {
        free_hub(hub);
        return es_error_set(err, -ENAMETOOLONG, "socket_group is longer than %zu bytes",
                            sizeof hub->config_group - 1);
    }
    if (hub->config.max_subscribers == 0 || hub->config.backlog_events == 0 ||
        hub->config.backlog_bytes < ES_EVENT_LINE_MAX) {
        free_hub(hub);
        return es_error_set(err, -EINVAL, "hub limits must be positive, backlog_bytes >= %d",
                            ES_EVENT_LINE_MAX);
    }
    hub->subscribers = calloc(config->max_subscribers, sizeof *hub->subscribers);
    hub->pollfds = calloc(config->max_subscribers + POLL_FIXED, sizeof *hub->pollfds);
    int rc = es_line_queue_create(config->queue_lines, &hub->queue);
    hub->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!hub->subscribers || !hub->pollfds || rc != 0 || hub->stop_fd < 0) {
        free_hub(hub);
        return es_error_set(err, -ENOMEM, "cannot allocate the hub");
    }
    if ((rc = open_listener(hub, err)) != 0) {
        free_hub(hub);
        return rc;
    }
    if ((rc = pthread_create(&hub->thread, NULL, hub_thread, hub)) != 0) {
        free_hub(hub);
        return es_error_set(err, -rc, "cannot start the hub thread: %s", strerror(rc));
    }
    *out = hub;
    return 0;
}

void es_event_hub_recheck(es_event_hub *hub) {
    atomic_store(&hub->recheck, 1);
    uint64_t one = 1;
    ssize_t ignored = write(es_line_queue_wakeup_fd(hub->queue), &one, sizeof one);
    (void)ignored;
}

void es_event_hub_destroy(es_event_hub *hub) {
    if (!hub) return;
    uint64_t one = 1;
    ssize_t ignored = write(hub->stop_fd, &one, sizeof one);
    (void)ignored;
    pthread_join(hub->thread, NULL);
    free_hub(hub);
}

/* A line must end in its only '\n', or subscribers' event counts and
 * framing would break. */
static int is_one_line(const char *line, size_t len) {
    return len > 0 && line[len - 1] == '\n' && memchr(line, '\n', len - 1) == NULL;
}

int es_event_hub_publish(es_event_hub *hub, const char *line, size_t len) {
    if (!is_one_line(line, len) || es_line_queue_push(hub->queue, line, len) != 0) return -1;
    counter_add(&hub->published, 1);
    return 0;
}

void es_event_hub_get_stats(const es_event_hub *hub, es_event_hub_stats *stats) {
    es_event_hub *h = (es_event_hub *)hub;
    stats->subscribers = atomic_load_explicit(&h->subscribers_now, memory_order_relaxed);
    stats->accepted = atomic_load_explicit(&h->accepted, memory_order_relaxed);
    stats->rejected = atomic_load_explicit(&h->rejected, memory_order_relaxed);
    stats->dropped_slow = atomic_load_explicit(&h->dropped_slow, memory_order_relaxed);
    stats->published = atomic_load_explicit(&h->published, memory_order_relaxed);
    stats->lost = es_line_queue_lost(h->queue);
}

/* ---- line writer ------------------------------------------------------------------ */

/* The writer never sits in a blocking write(): it waits for the fd in poll()
 * beside its stop signal, then writes one line (a pipe takes a line of at
 * most PIPE_BUF whole once poll says it has room; a socket is written with
 * MSG_DONTWAIT). So a reader that stalls costs lines (the queue fills and
 * publishing drops them, counted), never a thread that cannot be stopped.
 * On destroy, queued lines are written for as long as the fd keeps taking
 * them; LINE_WRITER_LINGER_MS without room ends it, and what is left is
 * counted as lost. */
#define LINE_WRITER_LINGER_MS 200

struct es_line_writer {
    int fd;
    int is_socket;
    int stop_fd;
    int broken; /* the fd refused a write: later lines are dropped */
    es_line_queue *queue;
    pthread_t thread;
    atomic_uint_fast64_t abandoned; /* lines dropped after a write error or at the end */
};

/* Writes what the fd takes now of [*done, len); -1 when it is broken. */
static int write_some(es_line_writer *w, const char *bytes, size_t len, size_t *done) {
    while (*done < len) {
        ssize_t n = w->is_socket
                        ? send(w->fd, bytes + *done, len - *done, MSG_NOSIGNAL | MSG_DONTWAIT)
                        : write(w->fd, bytes + *done, len - *done);
        if (n > 0) {
            *done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        return -1;
    }
    return 0;
}

static void *writer_thread(void *arg) {
    es_line_writer *w = arg;
    char line[ES_EVENT_LINE_MAX];
    long len = -1; /* the line being written, or -1 */
    size_t done = 0;
    int stopping = 0;
    for (;;) {
        if (len < 0) {
            es_line_queue_clear_wakeup(w->queue);
            len = es_line_queue_pop(w->queue, line);
            done = 0;
        }
        if (len >= 0 && w->broken) {
            counter_add(&w->abandoned, 1);
            len = -1;
            continue;
        }
        if (len < 0 && stopping) break;
        /* A negative fd is skipped by poll(). */
        struct pollfd fds[3] = {
            {.fd = stopping ? -1 : w->stop_fd, .events = POLLIN},
            {.fd = len < 0 ? es_line_queue_wakeup_fd(w->queue) : -1, .events = POLLIN},
            {.fd = len >= 0 ? w->fd : -1, .events = POLLOUT},
        };
        int n = poll(fds, 3, stopping ? LINE_WRITER_LINGER_MS : -1);
        if (n < 0 && errno != EINTR) break;
        if (n == 0) break; /* stopping, and the fd took nothing for the whole linger */
        if (fds[0].revents) stopping = 1;
        if (fds[2].revents) {
            if (write_some(w, line, (size_t)len, &done) != 0) w->broken = 1;
            if (w->broken || done == (size_t)len) len = -1;
        }
    }
    /* Whatever could not be written in time is lost, and counted. */
    if (len >= 0) counter_add(&w->abandoned, 1);
    while (es_line_queue_pop(w->queue, line) >= 0)
        counter_add(&w->abandoned, 1);
    return NULL;
}

int es_line_writer_create(int fd, size_t queue_lines, es_line_writer **out, es_error *err) {
    es_line_writer *w = calloc(1, sizeof *w);
    if (!w) return es_error_set(err, -ENOMEM, "out of memory");
    w->fd = fd;
    struct stat st;
    w->is_socket = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
    atomic_init(&w->abandoned, 0);
    w->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int rc = es_line_queue_create(queue_lines, &w->queue);
    if (w->stop_fd < 0 || rc != 0) {
        if (w->stop_fd >= 0) close(w->stop_fd);
        es_line_queue_destroy(rc == 0 ? w->queue : NULL);
        free(w);
        return es_error_set(err, -ENOMEM, "cannot allocate the line writer");
    }
    if ((rc = pthread_create(&w->thread, NULL, writer_thread, w)) != 0) {
        close(w->stop_fd);
        es_line_queue_destroy(w->queue);
        free(w);
        return es_error_set(err, -rc, "cannot start the writer thread: %s", strerror(rc));
    }
    *out = w;
    return 0;
}

uint64_t es_line_writer_destroy(es_line_writer *w) {
    if (!w) return 0;
    uint64_t one = 1;
    ssize_t ignored = write(w->stop_fd, &one, sizeof one);
    (void)ignored;
    pthread_join(w->thread, NULL);
    uint64_t lost = es_line_writer_lost(w);
    close(w->stop_fd);
    es_line_queue_destroy(w->queue);
    free(w);
    return lost;
}

int es_line_writer_publish(es_line_writer *w, const char *line, size_t len) {
    return es_line_queue_push(w->queue, line, len);
}

uint64_t es_line_writer_lost(const es_line_writer *w) {
    es_line_writer *writer = (es_line_writer *)w;
    return es_line_queue_lost(w->queue) +
           atomic_load_explicit(&writer->abandoned, memory_order_relaxed);
}
