/*
 * `earshot mic` and `earshot devices` from outside, through the real
 * PortAudio path with no sound card: the ALSA `file` plugin plays the demo
 * clip (live_fixture.h) as a 48 kHz stereo input.
 *
 * - live output equals the offline analysis of the same samples (`earshot
 *   file`): per-frame posteriors and events, times within one frame;
 * - SIGUSR1 reports the counters, SIGINT stops cleanly with the final report;
 * - bad flags exit 2, a missing device exits 1, each with a message;
 * - `earshot devices` lists the input and marks the default.
 */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "live_fixture.h"

#define DEMO_CLIP ES_SOURCE_DIR "/tests/clips/demo.wav"
#define CLIP_RATE_HZ 48000
#define CLIP_CHANNELS 2
/* Frames are 10 ms: live and offline times may differ by at most one. */
#define FRAME_S 0.01

typedef struct mic_test {
    live_fixture fixture;
    char clip_wav[512]; /* what `earshot file` reads */
    char seconds[32];   /* the clip's exact length, for --seconds */
    char out_path[512];
    char err_path[512];
} mic_test;

/* ---- running the binary ---------------------------------------------------------- */

static pid_t spawn(const mic_test *t, const char *const *args) {
    pid_t pid = live_fixture_spawn(args, t->out_path, t->err_path);
    assert_true(pid > 0);
    return pid;
}

/* The exit status; a hang (60 s: sanitizer builds are slow) fails the test. */
static int wait_exit(pid_t pid) {
    int status = live_fixture_wait(pid, 60.0);
    if (status < 0) fail_msg("earshot did not exit within 60 s");
    return status;
}

static int run(const mic_test *t, const char *const *args) {
    return wait_exit(spawn(t, args));
}

static char *read_whole(const char *path) {
    char *text = live_fixture_read(path);
    assert_non_null(text);
    return text;
}

static int count_substring(const char *text, const char *needle) {
    int count = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        count++;
    return count;
}

/* ---- fixture ------------------------------------------------------------------------ */

static int setup(void **state) {
    mic_test *t = calloc(1, sizeof *t);
    if (!t || live_fixture_create(&t->fixture) != 0) return -1;
    char raw[512], padded[512], command[4096];
    live_fixture_path(&t->fixture, "clip.wav", t->clip_wav, sizeof t->clip_wav);
    live_fixture_path(&t->fixture, "clip.raw", raw, sizeof raw);
    live_fixture_path(&t->fixture, "padded.raw", padded, sizeof padded);
    live_fixture_path(&t->fixture, "stdout.txt", t->out_path, sizeof t->out_path);
    live_fixture_path(&t->fixture, "stderr.txt", t->err_path, sizeof t->err_path);
    /* The device's own format, so ALSA passes the samples through untouched;
     * padded because the file plugin repeats old samples after the end. */
    snprintf(command, sizeof command,
             "sox '%s' -r %d -c %d -e floating-point -b 32 '%s' && sox '%s' -t raw '%s' && "
             "sox '%s' -t raw '%s' pad 0 3",
             DEMO_CLIP, CLIP_RATE_HZ, CLIP_CHANNELS, t->clip_wav, t->clip_wav, raw, t->clip_wav,
             padded);
    if (live_fixture_run(command) != 0) return -1;
    struct stat info;
    if (stat(raw, &info) != 0) return -1;
    long frames = (long)info.st_size / (4 * CLIP_CHANNELS);
    snprintf(t->seconds, sizeof t->seconds, "%.6f", (double)frames / CLIP_RATE_HZ);
    if (live_fixture_use_raw(&t->fixture, padded, CLIP_RATE_HZ, CLIP_CHANNELS) != 0) return -1;
    *state = t;
    return 0;
}

static int teardown(void **state) {
    mic_test *t = *state;
    live_fixture_destroy(&t->fixture);
    free(t);
    return 0;
}

/* ---- comparing outputs ------------------------------------------------------------ */

/* One event line's numbers (absent fields stay NAN) and its type/keyword. */
typedef struct parsed_event {
    char kind[64]; /* "speech" or the keyword */
    double start, end, time;
} parsed_event;

static double json_number(const char *line, const char *key) {
    const char *at = strstr(line, key);
    return at ? atof(at + strlen(key)) : NAN;
}

static void json_string(const char *line, const char *key, char *out, size_t size) {
    out[0] = '\0';
    const char *at = strstr(line, key);
    if (!at) return;
    at += strlen(key);
    size_t n = strcspn(at, "\"");
    snprintf(out, size, "%.*s", (int)(n < size - 1 ? n : size - 1), at);
}

static int parse_events(char *text, parsed_event *events, int capacity) {
    int count = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        assert_true(count < capacity);
        parsed_event *e = &events[count++];
        json_string(line, "\"keyword\":\"", e->kind, sizeof e->kind);
        if (!e->kind[0]) json_string(line, "\"type\":\"", e->kind, sizeof e->kind);
        e->start = json_number(line, "\"start\":");
        e->end = json_number(line, "\"end\":");
        e->time = json_number(line, "\"time\":");
    }
    return count;
}

static void assert_within_frame(double live, double offline) {
    if (isnan(live) && isnan(offline)) return;
    if (!(fabs(live - offline) <= FRAME_S + 1e-9))
        fail_msg("live %.3f s vs offline %.3f s", live, offline);
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_frames_match_offline(void **state) {
    mic_test *t = *state;
    /* A ring for the whole clip: the file plugin is not paced, so audio
     * arrives far faster than real time and a small ring would drop. */
    const char *live[] = {EARSHOT_BINARY, "mic",      "--seconds", t->seconds, "--ring-ms",
                          "20000",        "--format", "frames",    NULL};
    assert_int_equal(run(t, live), 0);
    char *live_csv = read_whole(t->out_path);
    char *report = read_whole(t->err_path);
    assert_non_null(strstr(report, " 0 ring drops"));
    assert_non_null(strstr(report, " 0 input overflows"));

    const char *offline[] = {EARSHOT_BINARY, "file", "--format", "frames", t->clip_wav, NULL};
    assert_int_equal(run(t, offline), 0);
    char *offline_csv = read_whole(t->out_path);

    /* Same samples, same frames: the rows agree exactly (the design asks
     * for bit-exact results however the input is chunked). */
    assert_true(count_substring(offline_csv, "\n") > 800);
    assert_string_equal(live_csv, offline_csv);
    free(live_csv);
    free(report);
    free(offline_csv);
}

static void test_events_match_offline(void **state) {
    mic_test *t = *state;
    const char *live[] = {EARSHOT_BINARY, "mic",   "--seconds", t->seconds,
                          "--ring-ms",    "20000", NULL};
    assert_int_equal(run(t, live), 0);
    char *live_text = read_whole(t->out_path);
    const char *offline[] = {EARSHOT_BINARY, "file", t->clip_wav, NULL};
    assert_int_equal(run(t, offline), 0);
    char *offline_text = read_whole(t->out_path);

    /* Live events carry the device as source and a wallclock. */
    assert_non_null(strstr(live_text, "\"source\":\"default\""));
    assert_int_equal(count_substring(live_text, "\"wallclock\":\""),
                     count_substring(live_text, "\n"));

    parsed_event live_events[64], offline_events[64];
    int live_count = parse_events(live_text, live_events, 64);
    int offline_count = parse_events(offline_text, offline_events, 64);
    assert_true(offline_count > 0);
    assert_int_equal(live_count, offline_count);
    for (int i = 0; i < live_count; i++) {
        assert_string_equal(live_events[i].kind, offline_events[i].kind);
        assert_within_frame(live_events[i].start, offline_events[i].start);
        assert_within_frame(live_events[i].end, offline_events[i].end);
        assert_within_frame(live_events[i].time, offline_events[i].time);
    }
    free(live_text);
    free(offline_text);
}

/* Runs `earshot mic` until it listens, asks for a report with SIGUSR1, then
 * stops it with `stop_signal`: a clean exit with two reports. */
static void check_report_and_stop(const mic_test *t, int stop_signal) {
    const char *args[] = {EARSHOT_BINARY, "mic", "--ring-ms", "1000", NULL};
    pid_t pid = spawn(t, args);
    /* Signals only once it says it listens: before that they would kill it. */
    double give_up = live_fixture_now_s() + 30.0;
    for (;;) {
        char *err = read_whole(t->err_path);
        int listening =
            strstr(err, "earshot: mic: listening to default (48000 Hz, 2 channels)\n") != NULL;
        free(err);
        if (listening) break;
        assert_true(live_fixture_now_s() < give_up);
        live_fixture_sleep_s(0.05);
    }
    live_fixture_sleep_s(0.3);
    kill(pid, SIGUSR1);
    live_fixture_sleep_s(0.5);
    kill(pid, stop_signal);
    assert_int_equal(wait_exit(pid), 0);
    char *report = read_whole(t->err_path);
    /* One report for SIGUSR1, one on exit. */
    assert_int_equal(count_substring(report, "frames processed"), 2);
    assert_int_equal(count_substring(report, "ring drops"), 2);
    assert_int_equal(count_substring(report, "input overflows"), 2);
    free(report);
}

static void test_signals_report_and_stop(void **state) {
    const mic_test *t = *state;
    check_report_and_stop(t, SIGINT);
    check_report_and_stop(t, SIGTERM);
}

static void expect_usage_error(const mic_test *t, const char *const *args, const char *mention) {
    assert_int_equal(run(t, args), 2);
    char *err = read_whole(t->err_path);
    assert_true(strncmp(err, "earshot: ", 9) == 0);
    if (!strstr(err, mention)) fail_msg("'%s' not in: %s", mention, err);
    free(err);
}

static void test_bad_flags_exit_2(void **state) {
    mic_test *t = *state;
    const char *const cases[][6] = {
        {EARSHOT_BINARY, "mic", "--bogus", NULL},
        {EARSHOT_BINARY, "mic", "--seconds", "abc", NULL},
        {EARSHOT_BINARY, "mic", "--seconds", "-1", NULL},
        {EARSHOT_BINARY, "mic", "--rate", "5", NULL},
        {EARSHOT_BINARY, "mic", "--channels", "0", NULL},
        {EARSHOT_BINARY, "mic", "--ring-ms", "x", NULL},
        {EARSHOT_BINARY, "mic", "--format", "xml", NULL},
        {EARSHOT_BINARY, "mic", "--vad-threshold", "2", NULL},
        {EARSHOT_BINARY, "mic", "stray", NULL},
        {EARSHOT_BINARY, "mic", "--device", NULL},
        {EARSHOT_BINARY, "devices", "--bogus", NULL},
        {EARSHOT_BINARY, "devices", "stray", NULL},
    };
    const char *mentions[] = {"--bogus",    "--seconds", "--seconds", "--rate",
                              "--channels", "--ring-ms", "--format",  "threshold",
                              "stray",      "--device",  "--bogus",   "stray"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_usage_error(t, cases[i], mentions[i]);
}

static void test_missing_device_exits_1(void **state) {
    mic_test *t = *state;
    const char *by_name[] = {EARSHOT_BINARY, "mic", "--device", "no such card", NULL};
    assert_int_equal(run(t, by_name), 1);
    char *err = read_whole(t->err_path);
    assert_non_null(strstr(err, "earshot: mic: no input device named 'no such card'"));
    free(err);
    const char *by_index[] = {EARSHOT_BINARY, "mic", "--device", "42", NULL};
    assert_int_equal(run(t, by_index), 1);
    err = read_whole(t->err_path);
    assert_non_null(strstr(err, "42"));
    free(err);
}

static void test_devices_lists_default(void **state) {
    mic_test *t = *state;
    const char *args[] = {EARSHOT_BINARY, "devices", NULL};
    assert_int_equal(run(t, args), 0);
    char *out = read_whole(t->out_path);
    char *err = read_whole(t->err_path);
    assert_non_null(strstr(out, "host_api"));
    /* One input, the default, marked, at the clip's rate. */
    assert_non_null(strstr(out, "*     0"));
    assert_non_null(strstr(out, "48000  ALSA      default\n"));
    /* JACK's probe found no server; its complaints were kept off stderr. */
    assert_null(strstr(err, "Cannot connect"));
    free(out);
    free(err);

    const char *help[] = {EARSHOT_BINARY, "mic", "--help", NULL};
    assert_int_equal(run(t, help), 0);
    out = read_whole(t->out_path);
    assert_non_null(strstr(out, "Usage: earshot mic"));
    assert_non_null(strstr(out, "--vad-threshold"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_match_offline),
        cmocka_unit_test(test_events_match_offline),
        cmocka_unit_test(test_signals_report_and_stop),
        cmocka_unit_test(test_bad_flags_exit_2),
        cmocka_unit_test(test_missing_device_exits_1),
        cmocka_unit_test(test_devices_lists_default),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
