/*
 * notify — the service's side of the systemd protocol (sd_notify(3)).
 *
 * Every call is a no-op returning 0 when the process was not started by
 * systemd (no $NOTIFY_SOCKET), so the daemon runs the same by hand.
 *
 * Watchdog: systemd expects WATCHDOG=1 at least every WATCHDOG_USEC; we ping
 * every half of it (sd_watchdog_enabled(3)). A ping must prove the detection
 * engines are alive, not just the main loop, so each source's heartbeat is
 * beaten by the engine thread serving its stream, after each of its passes,
 * and the main loop pings only while every running stream's heartbeat is
 * fresh: a stalled engine stops the pings and systemd restarts the service.
 *
 * Private to daemon/service (service.c and its tests).
 */
#ifndef ES_NOTIFY_H
#define ES_NOTIFY_H

#include <stdatomic.h>
#include <stdint.h>

#include "clock.h" /* es_monotonic_ns, which the heartbeat ages are in */

int es_notify_ready(void);     /* READY=1, once every source runs */
int es_notify_reloading(void); /* RELOADING=1, at the start of a SIGHUP reload */
int es_notify_stopping(void);  /* STOPPING=1 */
/* STATUS=..., one line shown by `systemctl status`. */
int es_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- heartbeats: one per source, beaten by its stream's engine ----------------- */

typedef struct es_heartbeat {
    atomic_int_fast64_t last_beat_ns; /* CLOCK_MONOTONIC */
} es_heartbeat;

void es_heartbeat_init(es_heartbeat *h); /* counts as a beat now */
/* [rt] No allocation, lock or syscall beyond clock_gettime's vDSO. */
void es_heartbeat_beat(es_heartbeat *h);
/* Nanoseconds since the last beat. */
int64_t es_heartbeat_age_ns(const es_heartbeat *h);

/* ---- watchdog ------------------------------------------------------------------ */

typedef struct es_watchdog {
    uint64_t period_usec; /* half of WATCHDOG_USEC; 0 = systemd wants no pings */
    int64_t last_ping_ns;
    uint64_t pings;
} es_watchdog;

/* Reads WATCHDOG_USEC / WATCHDOG_PID (left in the environment). */
void es_watchdog_init(es_watchdog *w);
/* Pings when a period has passed since the last ping and `healthy` is set.
 * Returns how many milliseconds the caller may sleep before calling again
 * (-1: never, the watchdog is off). */
int es_watchdog_service(es_watchdog *w, int healthy);

#endif
