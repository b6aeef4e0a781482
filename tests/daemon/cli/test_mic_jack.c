/*
 * `earshot mic` against a JACK server with the dummy backend
 * (/work/shared/TESTING-LIVE.md, recipe 2): audio paced in real time, so
 * this is where the live path meets a clock.
 *
 * - the demo clip played into the capture in real time is processed with no
 *   ring drop; the latency report (decision delay, processing
 *   latency) is printed, not asserted: speed belongs to benchmarks;
 * - killing the server (the "device" vanishes) ends earshot with exit 1 and
 *   a message, promptly instead of hanging; so does stopping it (SIGSTOP: a
 *   driver that hangs), after the 3 s stall timeout.
 *
 * Skipped when jackd2 / jack-tools are not installed, or when the server
 * cannot start. The server has a name of its own, so other JACK users are
 * not disturbed; the name is fixed because jackd keeps a slot of its small
 * server registry (8 entries) for every name whose server died uncleanly,
 * and a fresh name per run would fill it ("Too many servers already
 * active").
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "live_fixture.h"

#define DEMO_CLIP ES_SOURCE_DIR "/tests/clips/demo.wav"
#define TIMEOUT_S 60.0

typedef struct jack_test {
    live_fixture fixture;
    char server[64];
    pid_t server_pid;
    char out_path[512];
    char err_path[512];
} jack_test;

static int have_jack_tools(void) {
    return live_fixture_run("for tool in jackd jack-play jack_connect jack_transport jack_wait "
                            "jack_lsp; do command -v $tool >/dev/null || exit 1; done") == 0;
}

/* Polls until the server answers, or it exits (e.g. "Too many servers
 * already active"), or 20 s pass. */
static int server_ready(jack_test *t) {
    char command[256];
    /* jack_wait -c exits 0 either way; it says "running" or "not running". */
    snprintf(command, sizeof command, "jack_wait -c -s '%s' 2>/dev/null | grep -qx running",
             t->server);
    double give_up = live_fixture_now_s() + 20.0;
    while (live_fixture_now_s() < give_up) {
        if (waitpid(t->server_pid, NULL, WNOHANG) == t->server_pid) {
            t->server_pid = 0;
            return 0;
        }
        if (live_fixture_run(command) == 0) return 1;
        live_fixture_sleep_s(0.1);
    }
    return 0;
}

static int setup(void **state) {
    jack_test *t = calloc(1, sizeof *t);
    if (!t || live_fixture_create(&t->fixture) != 0) return -1;
    *state = t;
    if (!have_jack_tools()) return 0;
    live_fixture_path(&t->fixture, "stdout.txt", t->out_path, sizeof t->out_path);
    live_fixture_path(&t->fixture, "stderr.txt", t->err_path, sizeof t->err_path);
    snprintf(t->server, sizeof t->server, "earshot-test-live");
    setenv("JACK_DEFAULT_SERVER", t->server, 1);
    setenv("JACK_NO_START_SERVER", "1", 1);
    /* -r: no real-time scheduling (containers refuse it); 16 kHz, 256-frame
     * periods, one capture and one playback port. */
    const char *args[] = {"jackd", "-n",  t->server, "-r", "-d", "dummy", "-r", "16000",
                          "-p",    "256", "-C",      "1",  "-P", "1",     NULL};
    char log_path[512];
    live_fixture_path(&t->fixture, "jackd.log", log_path, sizeof log_path);
    t->server_pid = live_fixture_spawn(args, log_path, log_path);
    if (t->server_pid > 0 && server_ready(t)) return 0;
    char *log = live_fixture_read(log_path);
    print_message("jackd did not start; the JACK tests are skipped. Its log:\n%s\n",
                  log ? log : "(none)");
    free(log);
    if (t->server_pid > 0) {
        kill(t->server_pid, SIGKILL);
        live_fixture_wait(t->server_pid, 10.0);
        t->server_pid = 0;
    }
    return 0;
}

static int teardown(void **state) {
    jack_test *t = *state;
    if (t->server_pid > 0) {
        kill(t->server_pid, SIGTERM);
        live_fixture_wait(t->server_pid, 10.0);
    }
    /* The abandoned and killed clients leave their semaphores behind. */
    if (t->server[0]) {
        char command[256];
        snprintf(command, sizeof command, "rm -f /dev/shm/jack_sem.*_%s_*", t->server);
        live_fixture_run(command);
    }
    live_fixture_destroy(&t->fixture);
    free(t);
    return 0;
}

static void skip_without_jack(const jack_test *t) {
    if (t->server_pid <= 0) skip();
}

static char *read_whole(const char *path) {
    char *text = live_fixture_read(path);
    assert_non_null(text);
    return text;
}

/* Starts `earshot mic` on the JACK input and waits until it listens. */
static pid_t start_mic(const jack_test *t, const char *seconds) {
    const char *timed[] = {EARSHOT_BINARY, "mic", "--device", "system", "--seconds", seconds, NULL};
    const char *endless[] = {EARSHOT_BINARY, "mic", "--device", "system", NULL};
    pid_t pid = live_fixture_spawn(seconds ? timed : endless, t->out_path, t->err_path);
    assert_true(pid > 0);
    double give_up = live_fixture_now_s() + TIMEOUT_S;
    for (;;) {
        char *err = live_fixture_read(t->err_path);
        int listening =
            err && strstr(err, "earshot: mic: listening to system (16000 Hz, 1 channel)");
        free(err);
        if (listening) return pid;
        if (live_fixture_now_s() > give_up) {
            kill(pid, SIGKILL);
            fail_msg("earshot mic did not start listening");
        }
        live_fixture_sleep_s(0.05);
    }
}

/* Plays the demo clip into PortAudio's input port from the transport's start. */
static pid_t play_clip(const jack_test *t) {
    (void)t;
    const char *args[] = {"jack-play", "-c", "3", "-t", DEMO_CLIP, NULL};
    pid_t pid = live_fixture_spawn(args, NULL, NULL);
    assert_true(pid > 0);
    char command[512];
    snprintf(command, sizeof command, "jack_lsp | grep -qx 'jack-play-%d:out_1'", (int)pid);
    double give_up = live_fixture_now_s() + TIMEOUT_S;
    while (live_fixture_run(command) != 0) {
        assert_true(live_fixture_now_s() < give_up);
        live_fixture_sleep_s(0.05);
    }
    snprintf(command, sizeof command,
             "jack_connect 'jack-play-%d:out_1' PortAudio:in_0 && "
             "printf 'locate 0\\nplay\\nquit\\n' | jack_transport >/dev/null",
             (int)pid);
    assert_int_equal(live_fixture_run(command), 0);
    return pid;
}

static void test_paced_capture(void **state) {
    jack_test *t = *state;
    skip_without_jack(t);
    double started_s = live_fixture_now_s();
    pid_t mic = start_mic(t, "11");
    pid_t player = play_clip(t);
    assert_int_equal(live_fixture_wait(mic, TIMEOUT_S), 0);
    double wall_s = live_fixture_now_s() - started_s;
    kill(player, SIGTERM);
    live_fixture_wait(player, 10.0);

    char *events = read_whole(t->out_path);
    char *report = read_whole(t->err_path);
    print_message("11 s of paced audio in %.2f s of wall time\n%s", wall_s, report);
    assert_non_null(strstr(report, "11.00 s captured"));
    /* Input overflows are not asserted: PortAudio's JACK host flags one now
     * and then when this shared machine delays its callback thread (seen in
     * sanitizer builds); the ring behind it has seconds of room. */
    assert_non_null(strstr(report, " 0 ring drops"));
    assert_non_null(strstr(events, "{\"type\":\"speech\",\"source\":\"system\""));
    assert_non_null(strstr(report, "processing latency mean"));
    free(events);
    free(report);
}

/* A lost stream is abandoned, not freed or joined (stream.h): no leak
 * report for its memory or for JACK's finished thread. */
static void tolerate_abandoned_stream(void) {
    setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
    const char *tsan = getenv("TSAN_OPTIONS");
    if (tsan && strstr(tsan, "report_thread_leaks=0")) return;
    char tsan_options[512];
    snprintf(tsan_options, sizeof tsan_options, "%s report_thread_leaks=0", tsan ? tsan : "");
    setenv("TSAN_OPTIONS", tsan_options, 1);
}

/* A server that hangs (stopped, not gone) leaves PortAudio's stream active
 * but silent: earshot notices the stall and exits instead of waiting. */
static void test_server_stall_exits_1(void **state) {
    jack_test *t = *state;
    skip_without_jack(t);
    tolerate_abandoned_stream();
    pid_t mic = start_mic(t, NULL);
    live_fixture_sleep_s(0.5);
    kill(t->server_pid, SIGSTOP);
    double stalled_at_s = live_fixture_now_s();
    int status = live_fixture_wait(mic, TIMEOUT_S);
    double exited_after_s = live_fixture_now_s() - stalled_at_s;
    kill(t->server_pid, SIGCONT);
    assert_int_equal(status, 1);
    print_message("earshot exited %.3f s after the server stalled\n", exited_after_s);
    char *err = read_whole(t->err_path);
    assert_non_null(strstr(err, "earshot: mic: system delivered no audio for 3000 ms"));
    assert_non_null(strstr(err, "frames processed"));
    free(err);
}

static void test_server_loss_exits_1(void **state) {
    jack_test *t = *state;
    skip_without_jack(t);
    tolerate_abandoned_stream();
    pid_t mic = start_mic(t, NULL);
    live_fixture_sleep_s(0.5);
    kill(t->server_pid, SIGTERM);
    assert_true(live_fixture_wait(t->server_pid, 20.0) >= 0);
    t->server_pid = 0;
    double lost_at_s = live_fixture_now_s();
    assert_int_equal(live_fixture_wait(mic, TIMEOUT_S), 1);
    print_message("earshot exited %.3f s after the server\n", live_fixture_now_s() - lost_at_s);
    char *err = read_whole(t->err_path);
    assert_non_null(strstr(err, "earshot: mic: system stopped delivering audio"));
    /* It still drained what it had and reported. */
    assert_non_null(strstr(err, "frames processed"));
    free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paced_capture), cmocka_unit_test(test_server_stall_exits_1),
        cmocka_unit_test(test_server_loss_exits_1), /* last: it ends the server */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
