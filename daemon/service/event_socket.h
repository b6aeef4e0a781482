/*
 * event_socket — fan-out of event lines to whoever listens.
 *
 * The detection threads must never wait for a reader, so events travel in
 * three steps:
 *
 *   detection thread --es_event_hub_publish--> lock-free queue (bounded; full = event lost
 *   and counted) --hub thread--> one bounded backlog per subscriber --> its socket
 *
 * The hub thread owns a UNIX-domain SOCK_STREAM listener and every
 * subscriber connection, all non-blocking and driven by poll(). A subscriber
 * that does not read fills its backlog (limited in events and in bytes) and
 * is then disconnected; nobody else waits for it. Subscribers receive whole
 * JSON lines only, starting with the first event published after they
 * connected. Whatever a subscriber sends is read and ignored.
 *
 * es_line_writer is the same queue in front of a plain file descriptor
 * (stdout), for sinks that may stall: its own thread waits for the fd, and
 * lines that find the queue full are dropped and counted.
 *
 * Errors are returned with a reason; nothing here prints.
 *
 * Private to daemon/service (service.c and its tests).
 */
#ifndef ES_EVENT_SOCKET_H
#define ES_EVENT_SOCKET_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Longest line that can be published (events are a few hundred bytes). */
#define ES_EVENT_LINE_MAX 1024

/* ---- line queue: many producers, one consumer, lock-free ------------------------ */

typedef struct es_line_queue es_line_queue;

/* `capacity_lines` is rounded up to a power of two. */
int es_line_queue_create(size_t capacity_lines, es_line_queue **out);
void es_line_queue_destroy(es_line_queue *q);
/* Any thread. Never blocks: returns 0, or -1 when the queue is full or the
 * line longer than ES_EVENT_LINE_MAX (the line is then lost and counted). */
int es_line_queue_push(es_line_queue *q, const char *line, size_t len);
/* The one consumer. Copies the oldest line into `buf` (ES_EVENT_LINE_MAX
 * bytes) and returns its length, or -1 when empty. */
long es_line_queue_pop(es_line_queue *q, char *buf);
/* Readable (an eventfd) after a push; the consumer empties it with
 * es_line_queue_clear_wakeup before popping. */
int es_line_queue_wakeup_fd(const es_line_queue *q);
void es_line_queue_clear_wakeup(es_line_queue *q);
uint64_t es_line_queue_lost(const es_line_queue *q);

/* ---- hub ------------------------------------------------------------------------- */

typedef struct es_event_hub_config {
    const char *socket_path;  /* "/run/earshot/events.sock" */
    int socket_mode;          /* 0660; -1 = leave as bind made it */
    const char *socket_group; /* NULL or "" = leave alone; else a group name or number */
    size_t backlog_events;    /* 1024 per subscriber */
    size_t backlog_bytes;     /* 256 KiB per subscriber; also its socket's SO_SNDBUF */
    size_t max_subscribers;   /* 256; more connections are accepted and closed at once */
    size_t queue_lines;       /* 4096 between publishers and the hub thread */
    int linger_ms;            /* 200: on destroy, how long to keep sending backlogs */
    /* NULL, or called on the hub thread with a line for the log: once for
     * each subscriber it disconnects for falling behind (who, how far
     * behind), and when the socket file was deleted or replaced and the hub
     * made it again (or could not). The hub itself prints nothing. */
    void (*on_report)(const char *what, void *user);
    void *on_report_user;
} es_event_hub_config;

void es_event_hub_config_default(es_event_hub_config *config);

typedef struct es_event_hub es_event_hub;

/* Checks, without binding, what es_event_hub_create would refuse first:
 * the socket path's length, its folder (it must exist: the hub creates no
 * folders) and socket_group (it must name a group). 0, or a negative errno
 * value with `err` filled (common/error.h).
 * `earshot daemon --check-config` runs it, as start-up does. */
int es_event_hub_check_config(const es_event_hub_config *config, es_error *err);
/* Binds and listens (a stale socket file nobody answers on is replaced; a
 * live one is an error), applies mode and group, starts the hub thread.
 * 0, or a negative errno value with `err` filled. */
int es_event_hub_create(const es_event_hub_config *config, es_event_hub **out, es_error *err);
/* Makes the hub thread check now (it also does every second) that the
 * socket path still names its socket; a deleted or replaced socket file is
 * made again (a live socket of somebody else is left alone and reported),
 * so that `earshot listen` finds the daemon and a second daemon cannot bind
 * the path. Any thread. */
void es_event_hub_recheck(es_event_hub *hub);
/* Sends what is queued for up to linger_ms, closes every connection, removes
 * the socket file. */
void es_event_hub_destroy(es_event_hub *hub);

/* Any thread, never blocks. `line` is one event ending in '\n'. Returns 0,
 * or -1 when the hub's queue is full (the event is lost and counted). */
int es_event_hub_publish(es_event_hub *hub, const char *line, size_t len);

typedef struct es_event_hub_stats {
    uint64_t subscribers;  /* connected now */
    uint64_t accepted;     /* connections ever accepted */
    uint64_t rejected;     /* closed at once: max_subscribers reached */
    uint64_t dropped_slow; /* disconnected because their backlog was full */
    uint64_t published;    /* lines handed to the hub thread */
    uint64_t lost;         /* lines lost to a full queue */
} es_event_hub_stats;

void es_event_hub_get_stats(const es_event_hub *hub, es_event_hub_stats *stats);

/* ---- line writer: the queue in front of a file descriptor ------------------------ */

typedef struct es_line_writer es_line_writer;

/* Writes every published line to `fd` (not closed) from its own thread,
 * which waits for the fd in poll() and never blocks in a write: a reader
 * that stalls makes the queue fill and lines drop (counted), like a slow
 * subscriber's, and never holds up es_line_writer_destroy for long. */
int es_line_writer_create(int fd, size_t queue_lines, es_line_writer **out, es_error *err);
/* Writes what is queued while the fd keeps taking it (up to 200 ms without
 * room), then stops. Returns the lines lost over the writer's life
 * (es_line_writer_lost), those left unwritten at the end included. */
uint64_t es_line_writer_destroy(es_line_writer *w);
/* Any thread, never blocks; -1 when the queue is full (line lost, counted). */
int es_line_writer_publish(es_line_writer *w, const char *line, size_t len);
/* Lines lost so far: to a full queue, or after the fd refused a write. */
uint64_t es_line_writer_lost(const es_line_writer *w);

#endif
