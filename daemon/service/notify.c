/*
 * sd_notify glue. libsystemd does the protocol; here is only the policy of
 * when to say what.
 */
#include "clock.h"
#include "notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include <systemd/sd-daemon.h>

static int notify(const char *state) {
    int rc = sd_notify(0, state);
    return rc < 0 ? rc : 0;
}

int es_notify_ready(void) {
    return notify("READY=1");
}

int es_notify_reloading(void) {
    return notify("RELOADING=1");
}

int es_notify_stopping(void) {
    return notify("STOPPING=1");
}

int es_notify_status(const char *fmt, ...) {
    char state[512] = "STATUS=";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(state + 7, sizeof state - 7, fmt, ap);
    va_end(ap);
    return notify(state);
}

void es_heartbeat_init(es_heartbeat *h) {
    atomic_init(&h->last_beat_ns, es_monotonic_ns());
}

void es_heartbeat_beat(es_heartbeat *h) {
    atomic_store_explicit(&h->last_beat_ns, es_monotonic_ns(), memory_order_relaxed);
}

int64_t es_heartbeat_age_ns(const es_heartbeat *h) {
    es_heartbeat *beat = (es_heartbeat *)h;
    return es_monotonic_ns() - atomic_load_explicit(&beat->last_beat_ns, memory_order_relaxed);
}

void es_watchdog_init(es_watchdog *w) {
    uint64_t usec = 0;
    w->period_usec = sd_watchdog_enabled(0, &usec) > 0 ? usec / 2 : 0;
    w->last_ping_ns = 0;
    w->pings = 0;
}

int es_watchdog_service(es_watchdog *w, int healthy) {
    if (!w->period_usec) return -1;
    int64_t period_ns = (int64_t)w->period_usec * 1000;
    int64_t now = es_monotonic_ns();
    if (healthy && now - w->last_ping_ns >= period_ns) {
        if (notify("WATCHDOG=1") == 0) w->pings++;
        w->last_ping_ns = now;
    }
    int64_t due_ns = w->last_ping_ns + period_ns - now;
    /* Unhealthy: look again soon, so pings resume as soon as engines do. */
    if (!healthy || due_ns < 0) due_ns = period_ns / 10;
    return (int)((due_ns + 999999) / 1000000);
}
