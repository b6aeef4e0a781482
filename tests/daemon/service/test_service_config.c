/*
 * The daemon's INI config: what parses, what is refused, and that refusals
 * name the offending line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static int parse(const char *text, es_daemon_config *config, es_error *err) {
    return es_daemon_config_parse(text, strlen(text), "test.conf", config, err);
}

/* The line a "test.conf:LINE: ..." message names; 0 when it names none. */
static int error_line(const es_error *err) {
    const char *prefix = "test.conf:";
    if (strncmp(err->why, prefix, strlen(prefix)) != 0) return 0;
    const char *digits = err->why + strlen(prefix);
    char *end;
    long line = strtol(digits, &end, 10);
    return end > digits && *end == ':' ? (int)line : 0;
}

/* Parses `text`, which must fail on `line` with a message containing `what`. */
static void expect_error(const char *text, int line, const char *what) {
    es_daemon_config config;
    es_error err = {0};
    assert_int_equal(parse(text, &config, &err), -1);
    assert_int_equal(err.code, ES_CONFIG_ERR);
    if (error_line(&err) != line || !strstr(err.why, what))
        fail_msg("expected line %d with '%s', got line %d: %s", line, what, error_line(&err),
                 err.why);
    if (line > 0) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "test.conf:%d: ", line);
        assert_non_null(strstr(err.why, prefix));
    }
}

static void full_config_parses(void **state) {
    (void)state;
    const char *text = "; comment\n"
                       "[source.kitchen]\n"
                       "device = default\n"
                       "[source.door-bell]\n"
                       "file = /run/earshot/door.fifo   ; inline comment\n"
                       "[models]\n"
                       "vad = /usr/share/earshot/vad.esm\n"
                       "kws = /a.esm, /b.esm ,/c.esm\n"
                       "[vad]\n"
                       "threshold = 0.6\n"
                       "offset_threshold = 0.4\n"
                       "min_speech_ms = 200\n"
                       "min_silence_ms = 100\n"
                       "max_speech_ms = 0\n"
                       "speech_pad_ms = 20\n"
                       "speech_start_events = true\n"
                       "[keywords]\n"
                       "threshold = 0.7\n"
                       "smooth_ms = 80\n"
                       "refractory_ms = 500\n"
                       "vad_gate = yes\n"
                       "threshold.left = 0.9\n"
                       "threshold.right = 0.25\n"
                       "[events]\n"
                       "socket = /tmp/x/events.sock\n"
                       "socket_mode = 0640\n"
                       "socket_group = audio\n"
                       "backlog_events = 10\n"
                       "backlog_bytes = 4096\n"
                       "max_subscribers = 3\n"
                       "stdout = off\n";
    es_daemon_config c;
    es_error err = {0};
    assert_int_equal(parse(text, &c, &err), 0);
    assert_int_equal(c.source_count, 2);
    assert_string_equal(c.sources[0].name, "kitchen");
    assert_int_equal(c.sources[0].kind, ES_SOURCE_DEVICE);
    assert_string_equal(c.sources[0].target, "default");
    assert_string_equal(c.sources[1].name, "door-bell");
    assert_int_equal(c.sources[1].kind, ES_SOURCE_FILE);
    assert_string_equal(c.sources[1].target, "/run/earshot/door.fifo");
    assert_int_equal(es_daemon_config_find_source(&c, "door-bell"), 1);
    assert_int_equal(es_daemon_config_find_source(&c, "attic"), -1);
    assert_string_equal(c.vad_model, "/usr/share/earshot/vad.esm");
    assert_int_equal(c.kws_model_count, 3);
    assert_string_equal(c.kws_models[0], "/a.esm");
    assert_string_equal(c.kws_models[1], "/b.esm");
    assert_string_equal(c.kws_models[2], "/c.esm");
    assert_float_equal(c.vad.onset_threshold, 0.6, 1e-6);
    assert_float_equal(c.vad.offset_threshold, 0.4, 1e-6);
    assert_int_equal(c.vad.min_speech_ms, 200);
    assert_int_equal(c.vad.min_silence_ms, 100);
    assert_int_equal(c.vad.max_speech_ms, 0);
    assert_int_equal(c.vad.pad_ms, 20);
    assert_int_equal(c.vad.speech_start_events, 1);
    assert_float_equal(c.kws.default_threshold, 0.7, 1e-6);
    assert_int_equal(c.kws.smooth_ms, 80);
    assert_int_equal(c.kws.refractory_ms, 500);
    assert_int_equal(c.kws.vad_gate, 1);
    assert_int_equal(c.kws.threshold_count, 2);
    assert_string_equal(c.kws.thresholds[0].keyword, "left");
    assert_float_equal(c.kws.thresholds[0].threshold, 0.9, 1e-6);
    assert_string_equal(c.kws.thresholds[1].keyword, "right");
    assert_string_equal(c.events.socket_path, "/tmp/x/events.sock");
    assert_int_equal(c.events.socket_mode, 0640);
    assert_string_equal(c.events.socket_group, "audio");
    assert_int_equal(c.events.backlog_events, 10);
    assert_int_equal(c.events.backlog_bytes, 4096);
    assert_int_equal(c.events.max_subscribers, 3);
    assert_int_equal(c.events.to_stdout, 0);
}

static void defaults_fill_what_is_left_out(void **state) {
    (void)state;
    es_daemon_config c, defaults;
    es_error err = {0};
    assert_int_equal(parse("[source.a]\nfile = /x.wav\n", &c, &err), 0);
    es_daemon_config_default(&defaults);
    assert_string_equal(c.vad_model, "builtin");
    assert_int_equal(c.kws_model_count, 1);
    assert_string_equal(c.kws_models[0], "builtin");
    assert_memory_equal(&c.vad, &defaults.vad, sizeof c.vad);
    assert_memory_equal(&c.kws, &defaults.kws, sizeof c.kws);
    /* speech_start events are opt-in: existing configs stream what they did. */
    assert_int_equal(c.vad.speech_start_events, 0);
    assert_string_equal(c.events.socket_path, "/run/earshot/events.sock");
    assert_int_equal(c.events.socket_mode, 0660);
    assert_string_equal(c.events.socket_group, "");
    assert_int_equal(c.events.to_stdout, 1);
}

static void a_byte_order_mark_is_allowed(void **state) {
    (void)state;
    es_daemon_config c;
    es_error err = {0};
    assert_int_equal(parse("\xEF\xBB\xBF[source.a]\nfile = /x.wav\n", &c, &err), 0);
    assert_string_equal(c.sources[0].name, "a");
    /* ...and the section is known, so a second one is still a duplicate. */
    expect_error("\xEF\xBB\xBF[vad]\n[source.a]\nfile = /x\n[vad]\n", 4, "twice");
}

static void speech_start_events_take_any_boolean_spelling(void **state) {
    (void)state;
    static const char *const yes[] = {"yes", "true", "on", "1", "TRUE"};
    static const char *const no[] = {"no", "false", "off", "0", "No"};
    for (int i = 0; i < 5; i++) {
        for (int want = 0; want <= 1; want++) {
            char text[128];
            snprintf(text, sizeof text,
                     "[source.a]\nfile = /x.wav\n[vad]\nspeech_start_events = %s\n",
                     want ? yes[i] : no[i]);
            es_daemon_config c;
            es_error err = {0};
            assert_int_equal(parse(text, &c, &err), 0);
            assert_int_equal(c.vad.speech_start_events, want);
        }
    }
}

static void kws_none_means_no_keyword_models(void **state) {
    (void)state;
    es_daemon_config c;
    es_error err = {0};
    assert_int_equal(parse("[source.a]\nfile = /x.wav\n[models]\nkws = none\n", &c, &err), 0);
    assert_int_equal(c.kws_model_count, 0);
}

static void the_shipped_example_parses(void **state) {
    (void)state;
    es_daemon_config c;
    es_error err = {0};
    int rc = es_daemon_config_load(ES_SOURCE_DIR "/systemd/earshot.conf.example", &c, &err);
    if (rc != 0) fail_msg("%s", err.why);
    es_daemon_config defaults;
    es_daemon_config_default(&defaults);
    /* The example spells out every default: parsing it must change nothing. */
    assert_memory_equal(&c.vad, &defaults.vad, sizeof c.vad);
    assert_memory_equal(&c.kws, &defaults.kws, sizeof c.kws);
    assert_int_equal(c.events.backlog_events, defaults.events.backlog_events);
    assert_int_equal(c.events.backlog_bytes, defaults.events.backlog_bytes);
    assert_int_equal(c.events.max_subscribers, defaults.events.max_subscribers);
    assert_int_equal(c.events.socket_mode, defaults.events.socket_mode);
    assert_string_equal(c.events.socket_path, defaults.events.socket_path);
    assert_int_equal(c.engine_threads, defaults.engine_threads);
}

static void unknown_sections_and_keys_name_their_line(void **state) {
    (void)state;
    expect_error("[source.a]\nfile = /x\n\n[bogus]\n", 4, "unknown section [bogus]");
    expect_error("[source.a]\nfile = /x\n[vad]\nthreshhold = 0.5\n", 4,
                 "unknown key 'threshhold' in [vad]");
    expect_error("[source.a]\nfile = /x\nspeed = 3\n", 3, "unknown key 'speed'");
    expect_error("stray = 1\n[source.a]\nfile = /x\n", 1, "outside any [section]");
    expect_error("[source.a]\nfile = /x\n[events]\nsocket = /s\n[events]\n", 5, "twice");
    expect_error("[source.a]\nfile = /x\n[vad]\nthreshold = 0.5\nthreshold = 0.6\n", 5,
                 "appears twice");
    expect_error("[source.a]\nfile = /x\n[source.a]\nfile = /y\n", 3, "twice");
    expect_error("[source.bad name]\nfile = /x\n", 1, "bad source name");
    expect_error("[source.a]\nfile = /x\ndevice = hw:0\n", 3, "one of device or file");
    expect_error("[source.a]\n[vad]\n", 1, "needs device = or file =");
    expect_error("[vad]\nthreshold = 0.5\n", 0, "no [source.NAME]");
    expect_error("[source.a]\nfile = /x\n[vad\n", 3, "syntax error");
    expect_error("[source.a]\nfile = /x\njust words\n", 3, "syntax error");
}

static void bad_values_name_their_line(void **state) {
    (void)state;
    expect_error("[source.a]\nfile = /x\n[vad]\nthreshold = 1.5\n", 4, "0 to 1");
    expect_error("[source.a]\nfile = /x\n[vad]\nthreshold = half\n", 4, "'half'");
    expect_error("[source.a]\nfile = /x\n[vad]\nmin_speech_ms = -5\n", 4, "whole number");
    expect_error("[source.a]\nfile = /x\n[vad]\nmin_speech_ms = 12abc\n", 4, "whole number");
    expect_error("[source.a]\nfile = /x\n[keywords]\nvad_gate = maybe\n", 4, "yes or no");
    expect_error("[source.a]\nfile = /x\n[vad]\nspeech_start_events = 2\n", 4, "yes or no");
    expect_error("[source.a]\nfile = /x\n[vad]\nspeech_start_events =\n", 4, "yes or no");
    expect_error("[source.a]\nfile = /x\n[events]\nsocket_mode = 0999\n", 4, "octal");
    expect_error("[source.a]\nfile = /x\n[events]\nsocket = relative.sock\n", 4, "absolute path");
    expect_error("[source.a]\nfile = /x\n[events]\nbacklog_events = 0\n", 4, "1 to");
    expect_error("[source.a]\nfile = /x\n[models]\nkws = /a.esm,,/b.esm\n", 4, "empty entry");
    expect_error("[source.a]\nfile = /x\n[models]\nvad =\n", 4, "empty value");
    expect_error("[source.a]\nfile = /x\n[keywords]\nthreshold.left = 2\n", 4, "0 to 1");
    expect_error("[source.a]\nfile = /x\n[keywords]\nthreshold.left = 0.5\n"
                 "threshold.left = 0.6\n",
                 5, "twice");
    /* Hysteresis the wrong way round names the line that set it. */
    expect_error("[source.a]\nfile = /x\n[vad]\nthreshold = 0.3\noffset_threshold = 0.4\n", 5,
                 "must not exceed");
    expect_error("[source.a]\nfile = /x\n[vad]\noffset_threshold = 0.9\n", 4, "must not exceed");
}

static void overlong_lines_are_refused_not_split(void **state) {
    (void)state;
    char text[600];
    int n = snprintf(text, sizeof text, "[source.a]\nfile = /");
    memset(text + n, 'x', 300);
    snprintf(text + n + 300, sizeof text - (size_t)n - 300, "\n");
    expect_error(text, 2, "longer than");
}

/* Regression (found by fuzz_daemon_config): a short line ending in hundreds
 * of '\r' was copied whole into inih's line buffer, overflowing it. */
static void carriage_returns_do_not_count_against_the_line(void **state) {
    (void)state;
    char text[1200];
    int n = snprintf(text, sizeof text, "[source.a]");
    memset(text + n, '\r', 900);
    snprintf(text + n + 900, sizeof text - (size_t)n - 900, "\nfile = /x.wav\r\n");
    es_daemon_config c;
    es_error err = {0};
    assert_int_equal(parse(text, &c, &err), 0);
    assert_string_equal(c.sources[0].target, "/x.wav");
}

static void the_first_error_in_file_order_wins(void **state) {
    (void)state;
    expect_error("[source.a]\nfile = /x\n[vad]\nthreshold = 7\n[nope]\n", 4, "0 to 1");
    expect_error("[source.a]\nfile = /x\ngarbage\n[vad]\nthreshold = 7\n", 3, "syntax");
}

static void missing_file_is_an_error_naming_it(void **state) {
    (void)state;
    es_daemon_config c;
    es_error err = {0};
    assert_int_equal(es_daemon_config_load("/nonexistent/earshot.conf", &c, &err), -1);
    assert_non_null(strstr(err.why, "/nonexistent/earshot.conf"));
    assert_non_null(strstr(err.why, "No such file"));
}

/* Issue 35, item 11: relative paths name files beside the config, whatever
 * the working directory (systemd starts the daemon in /). */
static void relative_paths_resolve_against_the_config_folder(void **state) {
    (void)state;
    char dir[] = "/tmp/es-config-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/earshot.conf", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("[source.a]\nfile = in.fifo\n[source.b]\nfile = /srv/abs.fifo\n"
          "[source.c]\ndevice = hw0\n[models]\nvad = models/vad.esm\nkws = builtin, k.esm\n",
          f);
    fclose(f);
    es_daemon_config c;
    es_error err = {0};
    assert_int_equal(es_daemon_config_load(path, &c, &err), 0);
    char want[192];
    snprintf(want, sizeof want, "%s/in.fifo", dir);
    assert_string_equal(c.sources[0].target, want);
    assert_string_equal(c.sources[1].target, "/srv/abs.fifo");
    assert_string_equal(c.sources[2].target, "hw0"); /* a device name is not a path */
    snprintf(want, sizeof want, "%s/models/vad.esm", dir);
    assert_string_equal(c.vad_model, want);
    assert_string_equal(c.kws_models[0], "builtin");
    snprintf(want, sizeof want, "%s/k.esm", dir);
    assert_string_equal(c.kws_models[1], want);

    /* A config named relatively: resolved against its folder all the same. */
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir("/tmp"), 0);
    assert_int_equal(es_daemon_config_load(path + strlen("/tmp/"), &c, &err), 0);
    assert_int_equal(chdir(cwd), 0);
    snprintf(want, sizeof want, "%s/in.fifo", dir);
    assert_string_equal(c.sources[0].target, want);
    unlink(path);
    rmdir(dir);
}

/* Issue 35, item 3: a config replaced by a FIFO is refused, not waited on. */
static void a_fifo_config_is_refused_without_blocking(void **state) {
    (void)state;
    char path[] = "/tmp/es-config-fifo-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    assert_int_equal(mkfifo(path, 0600), 0);
    alarm(20); /* before the fix, the load waited for a writer forever */
    es_daemon_config c;
    es_error err = {0};
    assert_int_equal(es_daemon_config_load(path, &c, &err), -1);
    alarm(0);
    assert_non_null(strstr(err.why, "not a regular file"));
    unlink(path);
}

static void too_many_sources_are_refused(void **state) {
    (void)state;
    char text[4096] = "";
    size_t len = 0;
    for (int i = 0; i <= ES_CONFIG_MAX_SOURCES; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "[source.s%d]\nfile = /x\n", i);
    expect_error(text, 2 * ES_CONFIG_MAX_SOURCES + 1, "too many sources");
}

static void wyoming_section_is_read_and_may_stand_alone(void **state) {
    (void)state;
    es_daemon_config c;
    es_error err = {0};
    assert_int_equal(parse("[wyoming]\nuri = tcp://0.0.0.0:10400\nmax_clients = 8\n"
                           "client_timeout_ms = 5000\nlanguage = de\n",
                           &c, &err),
                     0);
    assert_int_equal(c.source_count, 0);
    assert_string_equal(c.wyoming.uri, "tcp://0.0.0.0:10400");
    assert_int_equal(c.wyoming.max_clients, 8);
    assert_int_equal(c.wyoming.client_timeout_ms, 5000);
    assert_string_equal(c.wyoming.language, "de");

    es_daemon_config_default(&c);
    assert_string_equal(c.wyoming.uri, "");
    assert_int_equal(c.wyoming.max_clients, 64);
    assert_int_equal(c.wyoming.client_timeout_ms, 30000);

    assert_int_equal(parse("[wyoming]\nuri = udp://x:1\n", &c, &err), -1);
    assert_non_null(strstr(err.why, ":2: [wyoming] uri"));
    assert_int_equal(parse("[wyoming]\nmax_clients = 8\n", &c, &err), -1);
    assert_non_null(strstr(err.why, "nothing to listen to"));
    assert_int_equal(parse("[source.a]\nfile = /x\n[wyoming]\nport = 1\n", &c, &err), -1);
    assert_non_null(strstr(err.why, ":4:"));
}

/* How many threads step the sources' models: one by default (every source
 * shares it), 1..ES_STREAM_GROUP_MAX_ENGINES, and a refusal names the file,
 * the line and the range. */
static void engine_threads_is_read_and_bounded(void **state) {
    (void)state;
    es_daemon_config c;
    es_error err = {0};
    assert_int_equal(parse("[source.a]\nfile = /x\n", &c, &err), 0);
    assert_int_equal(c.engine_threads, 1);
    assert_int_equal(parse("[source.a]\nfile = /x\n[models]\nengine_threads = 4\n", &c, &err), 0);
    assert_int_equal(c.engine_threads, 4);
    char text[128];
    snprintf(text, sizeof text, "[source.a]\nfile = /x\n[models]\nengine_threads = %d\n",
             ES_STREAM_GROUP_MAX_ENGINES);
    assert_int_equal(parse(text, &c, &err), 0);
    assert_int_equal(c.engine_threads, ES_STREAM_GROUP_MAX_ENGINES);

    char range[96];
    snprintf(range, sizeof range, "[models] engine_threads: '0' is not a whole number from 1 to %d",
             ES_STREAM_GROUP_MAX_ENGINES);
    expect_error("[source.a]\nfile = /x\n[models]\nengine_threads = 0\n", 4, range);
    snprintf(text, sizeof text, "[source.a]\nfile = /x\n[models]\nengine_threads = %d\n",
             ES_STREAM_GROUP_MAX_ENGINES + 1);
    expect_error(text, 4, "is not a whole number from 1 to");
    expect_error("[source.a]\nfile = /x\n[models]\nengine_threads = two\n", 4, "'two'");
    expect_error("[source.a]\nfile = /x\n[models]\nengine_threads = -1\n", 4, "'-1'");
    expect_error("[source.a]\nfile = /x\n[models]\nengine_threads =\n", 4, "whole number");
    expect_error("[source.a]\nfile = /x\n[models]\nengine_threads = 1\nengine_threads = 2\n", 5,
                 "appears twice");
    expect_error("[source.a]\nfile = /x\n[vad]\nengine_threads = 2\n", 4,
                 "unknown key 'engine_threads' in [vad]");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_config_parses),
        cmocka_unit_test(defaults_fill_what_is_left_out),
        cmocka_unit_test(kws_none_means_no_keyword_models),
        cmocka_unit_test(speech_start_events_take_any_boolean_spelling),
        cmocka_unit_test(a_byte_order_mark_is_allowed),
        cmocka_unit_test(the_shipped_example_parses),
        cmocka_unit_test(unknown_sections_and_keys_name_their_line),
        cmocka_unit_test(bad_values_name_their_line),
        cmocka_unit_test(overlong_lines_are_refused_not_split),
        cmocka_unit_test(carriage_returns_do_not_count_against_the_line),
        cmocka_unit_test(the_first_error_in_file_order_wins),
        cmocka_unit_test(missing_file_is_an_error_naming_it),
        cmocka_unit_test(too_many_sources_are_refused),
        cmocka_unit_test(relative_paths_resolve_against_the_config_folder),
        cmocka_unit_test(a_fifo_config_is_refused_without_blocking),
        cmocka_unit_test(wyoming_section_is_read_and_may_stand_alone),
        cmocka_unit_test(engine_threads_is_read_and_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
