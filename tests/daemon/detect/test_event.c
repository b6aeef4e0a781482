/*
 * Events as JSON lines, the sinks' line formats, and the shared flag parsers.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli_util.h"
#include "detect.h"
#include "stream.h"

static es_event speech_event(void) {
    es_event e = {0};
    e.type = ES_EVENT_SPEECH;
    e.source = "a.wav";
    e.start_s = 1.23;
    e.end_s = 2.87;
    e.score = 0.97f;
    return e;
}

static es_event keyword_event(void) {
    es_event e = {0};
    e.type = ES_EVENT_KEYWORD;
    e.source = "a.wav";
    e.keyword = "left";
    e.time_s = 3.41;
    e.start_s = 3.02;
    e.end_s = 3.41;
    e.score = 0.93f;
    return e;
}

static es_event speech_start_event(void) {
    es_event e = {0};
    e.type = ES_EVENT_SPEECH_START;
    e.source = "a.wav";
    e.start_s = 1.23;
    e.time_s = 1.30;
    e.end_s = 99.0; /* not part of a speech_start line */
    e.score = 0.5f; /* nor this */
    return e;
}

static void test_json_matches_design(void **state) {
    (void)state;
    char line[256];
    es_event e = speech_event();
    int n = es_event_to_json(&e, line, sizeof line);
    assert_string_equal(line, "{\"type\":\"speech\",\"source\":\"a.wav\",\"start\":1.230,"
                              "\"end\":2.870,\"score\":0.970}\n");
    assert_int_equal(n, (int)strlen(line));

    e = keyword_event();
    es_event_to_json(&e, line, sizeof line);
    assert_string_equal(line, "{\"type\":\"keyword\",\"source\":\"a.wav\",\"keyword\":\"left\","
                              "\"time\":3.410,\"start\":3.020,\"end\":3.410,\"score\":0.930}\n");
}

static void test_json_speech_start(void **state) {
    (void)state;
    char line[256];
    es_event e = speech_start_event();
    int n = es_event_to_json(&e, line, sizeof line);
    assert_string_equal(line, "{\"type\":\"speech_start\",\"source\":\"a.wav\",\"start\":1.230,"
                              "\"time\":1.300}\n");
    assert_int_equal(n, (int)strlen(line));
    /* Live sources carry the wallclock, like every event. */
    e.wallclock_s = 1764077405.1234;
    es_event_to_json(&e, line, sizeof line);
    assert_string_equal(line, "{\"type\":\"speech_start\",\"source\":\"a.wav\",\"start\":1.230,"
                              "\"time\":1.300,\"wallclock\":\"2025-11-25T13:30:05.123Z\"}\n");
}

static void test_json_escapes_strings(void **state) {
    (void)state;
    es_event e = speech_event();
    e.source = "my \"best\"\\take\n\x01.wav";
    char line[256];
    es_event_to_json(&e, line, sizeof line);
    assert_non_null(strstr(line, "\"source\":\"my \\\"best\\\"\\\\take\\u000a\\u0001.wav\""));
    /* UTF-8 passes through untouched. */
    e.source = "caf\xc3\xa9.wav";
    es_event_to_json(&e, line, sizeof line);
    assert_non_null(strstr(line, "\"source\":\"caf\xc3\xa9.wav\""));
    /* A missing source is an empty string, not a crash. */
    e.source = NULL;
    es_event_to_json(&e, line, sizeof line);
    assert_non_null(strstr(line, "\"source\":\"\""));
}

/* File names are bytes, JSON is UTF-8 (issue 35): a byte that starts no valid
 * sequence becomes U+FFFD, valid sequences of every length pass through. */
static void test_json_invalid_utf8_is_replaced(void **state) {
    (void)state;
    const struct {
        const char *source, *json;
    } cases[] = {
        {"bad\xff.wav", "bad\xef\xbf\xbd.wav"},
        {"latin1-caf\xe9.wav", "latin1-caf\xef\xbf\xbd.wav"},       /* é in Latin-1 */
        {"cut-\xe2\x82", "cut-\xef\xbf\xbd\xef\xbf\xbd"},           /* € missing its end */
        {"overlong-\xc0\xaf", "overlong-\xef\xbf\xbd\xef\xbf\xbd"}, /* '/' in 2 bytes */
        {"surrogate-\xed\xa0\x80", "surrogate-\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xe2\x82\xac\xf0\x9f\x8e\xa4\xc3\xa9", "\xe2\x82\xac\xf0\x9f\x8e\xa4\xc3\xa9"},
        {"beyond-\xf4\x90\x80\x80", "beyond-\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        es_event e = speech_event();
        e.source = cases[i].source;
        char line[256], expected[128];
        int n = es_event_to_json(&e, line, sizeof line);
        assert_int_equal(n, (int)strlen(line));
        snprintf(expected, sizeof expected, "\"source\":\"%s\"", cases[i].json);
        if (!strstr(line, expected)) fail_msg("case %zu: %s", i, line);
    }
}

static void test_json_non_finite_is_null(void **state) {
    (void)state;
    es_event e = speech_event();
    e.score = NAN;
    e.end_s = INFINITY;
    char line[256];
    es_event_to_json(&e, line, sizeof line);
    assert_non_null(strstr(line, "\"end\":null"));
    assert_non_null(strstr(line, "\"score\":null"));
}

static void test_json_huge_numbers_stay_valid(void **state) {
    (void)state;
    es_event e = speech_event();
    e.end_s = 1e308;
    char line[1024];
    int n = es_event_to_json(&e, line, sizeof line);
    assert_true(n > 300 && (size_t)n < sizeof line);
    assert_int_equal(line[n - 1], '\n');
    assert_int_equal(line[n - 2], '}');
    assert_non_null(strstr(line, "\"end\":1000"));
    assert_non_null(strstr(line, ".000,\"score\":0.970}"));
}

static void test_json_truncates_like_snprintf(void **state) {
    (void)state;
    es_event e = keyword_event();
    char full[256];
    int needed = es_event_to_json(&e, full, sizeof full);
    for (size_t size = 0; size < (size_t)needed + 2; size++) {
        char small[256];
        memset(small, 'X', sizeof small);
        assert_int_equal(es_event_to_json(&e, small, size), needed);
        if (size > 0) {
            size_t kept = size - 1 < (size_t)needed ? size - 1 : (size_t)needed;
            assert_int_equal(strlen(small), kept);
            assert_memory_equal(small, full, kept);
        }
        assert_int_equal(small[size], 'X'); /* nothing written past size */
    }
    assert_int_equal(es_event_to_json(&e, NULL, 0), needed);
}

static void test_json_wallclock_iso8601(void **state) {
    (void)state;
    es_event e = speech_event();
    e.wallclock_s = 1764077405.1234; /* 2025-11-25T13:30:05.123Z */
    char line[256];
    es_event_to_json(&e, line, sizeof line);
    assert_non_null(strstr(line, ",\"wallclock\":\"2025-11-25T13:30:05.123Z\"}"));
    e.wallclock_s = 0; /* offline: no field */
    es_event_to_json(&e, line, sizeof line);
    assert_null(strstr(line, "wallclock"));
}

/* ---- sinks ---------------------------------------------------------------------- */

static char *sink_output(es_output_format format, const es_event *events, int count) {
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    es_sink *sink = NULL;
    assert_int_equal(es_sink_create(format, out, "meeting", &sink), 0);
    es_pipeline_config config;
    memset(&config, 0, sizeof config);
    es_sink_attach(sink, &config);
    for (int i = 0; i < count; i++)
        if (config.on_event) config.on_event(&events[i], config.event_user);
    assert_int_equal(es_sink_end(sink), 0);
    es_sink_destroy(sink);
    fclose(out);
    return text;
}

static void test_sink_lines(void **state) {
    (void)state;
    es_event events[2] = {speech_event(), keyword_event()};
    char *rttm = sink_output(ES_FORMAT_RTTM, events, 2);
    assert_string_equal(rttm, "SPEAKER meeting 1 1.230 1.640 <NA> <NA> speech <NA> <NA>\n");
    free(rttm);
    char *labels = sink_output(ES_FORMAT_AUDACITY, events, 2);
    assert_string_equal(labels, "1.230\t2.870\tspeech\n3.020\t3.410\tleft\n");
    free(labels);
    char *jsonl = sink_output(ES_FORMAT_JSONL, events, 2);
    assert_int_equal(strncmp(jsonl, "{\"type\":\"speech\"", 16), 0);
    assert_non_null(strstr(jsonl, "}\n{\"type\":\"keyword\""));
    free(jsonl);
    /* The frames format takes posteriors, not events. */
    char *frames = sink_output(ES_FORMAT_FRAMES, events, 2);
    assert_string_equal(frames, "");
    free(frames);
}

/* An RTTM line has 10 fields whatever the file is called (issue 35): the id's
 * whitespace, control bytes and '%' are percent-encoded. */
static void test_sink_rttm_file_id_is_one_field(void **state) {
    (void)state;
    const struct {
        const char *id, *line;
    } cases[] = {
        {"my file", "SPEAKER my%20file 1 "},
        {"two\nlines\tand\r", "SPEAKER two%0Alines%09and%0D 1 "},
        {"100%", "SPEAKER 100%25 1 "},
        {"caf\xc3\xa9\x7f", "SPEAKER caf\xc3\xa9%7F 1 "},
        {"", "SPEAKER <NA> 1 "},
    };
    es_event speech = speech_event();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = NULL;
        size_t size = 0;
        FILE *out = open_memstream(&text, &size);
        es_sink *sink = NULL;
        assert_int_equal(es_sink_create(ES_FORMAT_RTTM, out, cases[i].id, &sink), 0);
        es_pipeline_config config;
        memset(&config, 0, sizeof config);
        es_sink_attach(sink, &config);
        config.on_event(&speech, config.event_user);
        es_sink_destroy(sink);
        fclose(out);
        if (strncmp(text, cases[i].line, strlen(cases[i].line)) != 0)
            fail_msg("case %zu: %s", i, text);
        int fields = 0;
        for (const char *c = text; *c; c++)
            fields += (c == text || c[-1] == ' ') && *c != ' ';
        assert_int_equal(fields, 10);
        assert_int_equal(strchr(text, '\n') - text, (long)strlen(text) - 1);
        free(text);
    }
}

/* speech_start is a jsonl event: segment formats wait for the segment. */
static void test_sink_speech_start_only_in_jsonl(void **state) {
    (void)state;
    es_event events[3] = {speech_start_event(), speech_event(), keyword_event()};
    char *rttm = sink_output(ES_FORMAT_RTTM, events, 3);
    assert_string_equal(rttm, "SPEAKER meeting 1 1.230 1.640 <NA> <NA> speech <NA> <NA>\n");
    free(rttm);
    char *labels = sink_output(ES_FORMAT_AUDACITY, events, 3);
    assert_string_equal(labels, "1.230\t2.870\tspeech\n3.020\t3.410\tleft\n");
    free(labels);
    char *frames = sink_output(ES_FORMAT_FRAMES, events, 3);
    assert_string_equal(frames, "");
    free(frames);
    char *jsonl = sink_output(ES_FORMAT_JSONL, events, 3);
    assert_int_equal(
        strncmp(jsonl, "{\"type\":\"speech_start\",\"source\":\"a.wav\",\"start\":1.230", 50), 0);
    assert_non_null(strstr(jsonl, "}\n{\"type\":\"speech\""));
    free(jsonl);
}

static void test_sink_frames_rows(void **state) {
    (void)state;
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    es_sink *sink = NULL;
    assert_int_equal(es_sink_create(ES_FORMAT_FRAMES, out, "x", &sink), 0);
    float keywords[2] = {0.25f, 1.0f};
    es_frame_posteriors row = {.time_samples = 1600,
                               .time_s = 0.1,
                               .speech = 0.5f,
                               .keyword_count = 2,
                               .keywords = keywords};
    es_sink_frame(&row, sink);
    es_sink_end(sink);
    es_sink_destroy(sink);
    fclose(out);
    assert_string_equal(text, "0.10,0.500000,0.250000,1.000000\n");
    free(text);
}

static void test_format_names(void **state) {
    (void)state;
    const char *names[] = {"jsonl", "rttm", "audacity", "frames"};
    for (int i = 0; i < 4; i++) {
        es_output_format f;
        assert_int_equal(es_output_format_parse(names[i], &f), 0);
        assert_string_equal(es_output_format_name(f), names[i]);
    }
    es_output_format f;
    assert_int_equal(es_output_format_parse("JSONL", &f), -1);
    assert_int_equal(es_output_format_parse("", &f), -1);
}

/* ---- flag parsing ------------------------------------------------------------------- */

static void test_parse_numbers(void **state) {
    (void)state;
    int i = -1;
    float x = -1;
    assert_int_equal(es_cli_parse_int("--n", "42", 0, 100, &i), 0);
    assert_int_equal(i, 42);
    assert_int_equal(es_cli_parse_int("--n", "101", 0, 100, &i), -1);
    assert_int_equal(es_cli_parse_int("--n", "4x", 0, 100, &i), -1);
    assert_int_equal(es_cli_parse_int("--n", "", 0, 100, &i), -1);
    assert_int_equal(es_cli_parse_int("--n", "99999999999999999999", 0, 100, &i), -1);
    assert_int_equal(i, 42); /* untouched on failure */
    assert_int_equal(es_cli_parse_float("--p", "0.25", 0, 1, &x), 0);
    assert_true(x == 0.25f);
    assert_int_equal(es_cli_parse_float("--p", "inf", 0, 1e9, &x), -1);
    assert_int_equal(es_cli_parse_float("--p", "nan", 0, 1, &x), -1);
    assert_int_equal(es_cli_parse_float("--p", "1.5", 0, 1, &x), -1);
    assert_true(x == 0.25f);
}

static void test_keyword_thresholds(void **state) {
    (void)state;
    es_cli_detector_flags flags;
    es_cli_detector_flags_default(&flags);
    assert_int_equal(es_cli_detector_option(&flags, ES_CLI_OPT_KW_THRESHOLD_FOR, "stop=0.9"), 1);
    assert_int_equal(es_cli_detector_option(&flags, ES_CLI_OPT_KW_THRESHOLD_FOR, "left=0.7"), 1);
    /* The same word again replaces its threshold. */
    assert_int_equal(es_cli_detector_option(&flags, ES_CLI_OPT_KW_THRESHOLD_FOR, "stop=0.8"), 1);
    assert_int_equal(flags.kws.threshold_count, 2);
    assert_string_equal(flags.kws.thresholds[0].keyword, "stop");
    assert_true(flags.kws.thresholds[0].threshold == 0.8f);
    assert_string_equal(flags.kws.thresholds[1].keyword, "left");
    assert_int_equal(es_cli_detector_option(&flags, ES_CLI_OPT_KW_THRESHOLD_FOR, "stop"), -1);
    assert_int_equal(es_cli_detector_option(&flags, ES_CLI_OPT_KW_THRESHOLD_FOR, "=0.5"), -1);
    assert_int_equal(es_cli_detector_option(&flags, ES_CLI_OPT_KW_THRESHOLD_FOR,
                                            "averyveryverylongkeywordthatdoesnotfit=0.5"),
                     -1);
    assert_int_equal(flags.kws.threshold_count, 2);
    /* Not ours: left for the caller. */
    assert_int_equal(es_cli_detector_option(&flags, 'o', "x"), 0);
    assert_int_equal(es_cli_detector_option(&flags, ES_CLI_OPT_VAD_GATE, NULL), 1);
    assert_int_equal(flags.kws.vad_gate, 1);
    assert_int_equal(flags.vad.speech_start_events, 0); /* opt-in */
    assert_int_equal(es_cli_detector_option(&flags, ES_CLI_OPT_SPEECH_START, NULL), 1);
    assert_int_equal(flags.vad.speech_start_events, 1);
    assert_non_null(strstr(es_cli_detector_help, "--speech-start"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_matches_design),
        cmocka_unit_test(test_json_speech_start),
        cmocka_unit_test(test_json_escapes_strings),
        cmocka_unit_test(test_json_invalid_utf8_is_replaced),
        cmocka_unit_test(test_json_non_finite_is_null),
        cmocka_unit_test(test_json_huge_numbers_stay_valid),
        cmocka_unit_test(test_json_truncates_like_snprintf),
        cmocka_unit_test(test_json_wallclock_iso8601),
        cmocka_unit_test(test_sink_lines),
        cmocka_unit_test(test_sink_rttm_file_id_is_one_field),
        cmocka_unit_test(test_sink_speech_start_only_in_jsonl),
        cmocka_unit_test(test_sink_frames_rows),
        cmocka_unit_test(test_format_names),
        cmocka_unit_test(test_parse_numbers),
        cmocka_unit_test(test_keyword_thresholds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
