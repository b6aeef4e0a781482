/*
 * sd_notify glue, in-process against a datagram socket standing in for
 * systemd: messages as systemd expects them, the watchdog's period and its
 * refusal to ping while an engine is unhealthy, and silence when the
 * process was not started by systemd.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

static char socket_path[108];

/* Binds a datagram socket and points NOTIFY_SOCKET at it. */
static int listen_as_systemd(void) {
    snprintf(socket_path, sizeof socket_path, "/tmp/es-notify-%ld.sock", (long)getpid());
    unlink(socket_path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    memcpy(addr.sun_path, socket_path, strlen(socket_path) + 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    setenv("NOTIFY_SOCKET", socket_path, 1);
    return fd;
}

static void stop_listening(int fd) {
    close(fd);
    unlink(socket_path);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

/* The next message, or "" when none arrives within `timeout_ms`. */
static const char *receive(int fd, int timeout_ms) {
    static char msg[1024];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    msg[0] = '\0';
    if (poll(&p, 1, timeout_ms) <= 0) return msg;
    ssize_t n = recv(fd, msg, sizeof msg - 1, 0);
    msg[n > 0 ? n : 0] = '\0';
    return msg;
}

static void messages_reach_systemd(void **state) {
    (void)state;
    int fd = listen_as_systemd();
    assert_int_equal(es_notify_ready(), 0);
    assert_string_equal(receive(fd, 1000), "READY=1");
    assert_int_equal(es_notify_status("%d/%d sources running", 2, 3), 0);
    assert_string_equal(receive(fd, 1000), "STATUS=2/3 sources running");
    assert_int_equal(es_notify_reloading(), 0);
    assert_string_equal(receive(fd, 1000), "RELOADING=1");
    assert_int_equal(es_notify_stopping(), 0);
    assert_string_equal(receive(fd, 1000), "STOPPING=1");
    stop_listening(fd);
}

static void without_systemd_nothing_is_sent_or_expected(void **state) {
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    assert_int_equal(es_notify_ready(), 0);
    es_watchdog w;
    es_watchdog_init(&w);
    assert_int_equal(w.period_usec, 0);
    assert_int_equal(es_watchdog_service(&w, 1), -1);
    assert_int_equal(w.pings, 0);
}

static void watchdog_pings_every_half_period_while_healthy(void **state) {
    (void)state;
    int fd = listen_as_systemd();
    setenv("WATCHDOG_USEC", "200000", 1);
    es_watchdog w;
    es_watchdog_init(&w);
    assert_int_equal(w.period_usec, 100000); /* half of WATCHDOG_USEC */

    /* The first call pings at once and asks to be called within the period. */
    int sleep_ms = es_watchdog_service(&w, 1);
    assert_string_equal(receive(fd, 1000), "WATCHDOG=1");
    assert_true(sleep_ms > 0 && sleep_ms <= 100);
    /* Called again early: no second ping. */
    es_watchdog_service(&w, 1);
    assert_string_equal(receive(fd, 0), "");
    assert_int_equal(w.pings, 1);

    /* A period later, unhealthy: still no ping, and it asks to look again soon. */
    usleep(120000);
    sleep_ms = es_watchdog_service(&w, 0);
    assert_string_equal(receive(fd, 0), "");
    assert_true(sleep_ms > 0 && sleep_ms <= 10);
    /* Healthy again: the ping comes right away. */
    es_watchdog_service(&w, 1);
    assert_string_equal(receive(fd, 1000), "WATCHDOG=1");
    assert_int_equal(w.pings, 2);
    stop_listening(fd);
}

static void a_watchdog_meant_for_another_process_is_ignored(void **state) {
    (void)state;
    int fd = listen_as_systemd();
    setenv("WATCHDOG_USEC", "200000", 1);
    char other_pid[32];
    snprintf(other_pid, sizeof other_pid, "%ld", (long)getpid() + 1);
    setenv("WATCHDOG_PID", other_pid, 1);
    es_watchdog w;
    es_watchdog_init(&w);
    assert_int_equal(w.period_usec, 0);
    stop_listening(fd);
}

static void heartbeats_age_until_beaten(void **state) {
    (void)state;
    es_heartbeat h;
    es_heartbeat_init(&h);
    usleep(100000);
    int64_t aged_ns = es_heartbeat_age_ns(&h);
    assert_true(aged_ns >= 100000000);
    es_heartbeat_beat(&h);
    assert_true(es_heartbeat_age_ns(&h) < aged_ns);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(messages_reach_systemd),
        cmocka_unit_test(without_systemd_nothing_is_sent_or_expected),
        cmocka_unit_test(watchdog_pings_every_half_period_while_healthy),
        cmocka_unit_test(a_watchdog_meant_for_another_process_is_ignored),
        cmocka_unit_test(heartbeats_age_until_beaten),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
