/*
 * The Wyoming server's JSON reader: what headers from the network may look
 * like, well formed or not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wyoming_json.h"

static int parses(const char *text) {
    es_json_value v;
    return es_json_parse(text, strlen(text), &v) == 0;
}

static void test_accepts_wyoming_headers(void **state) {
    (void)state;
    const char *header = "{\"type\": \"audio-chunk\", \"data\": {\"rate\": 16000, \"width\": 2, "
                         "\"channels\": 1, \"timestamp\": null}, \"data_length\": 12, "
                         "\"payload_length\": 320, \"version\": \"1.5.4\"}";
    es_json_value root, v, data;
    assert_int_equal(es_json_parse(header, strlen(header), &root), 0);
    assert_int_equal(root.type, ES_JSON_OBJECT);
    char type[32];
    assert_int_equal(es_json_get(&root, "type", &v), 1);
    assert_int_equal(es_json_string(&v, type, sizeof type), 11);
    assert_string_equal(type, "audio-chunk");
    double d;
    assert_int_equal(es_json_get(&root, "payload_length", &v), 1);
    assert_int_equal(es_json_number(&v, &d), 0);
    assert_true(d == 320);
    assert_int_equal(es_json_get(&root, "data", &data), 1);
    assert_int_equal(es_json_get(&data, "channels", &v), 1);
    assert_int_equal(es_json_number(&v, &d), 0);
    assert_true(d == 1);
    assert_int_equal(es_json_get(&data, "timestamp", &v), 1);
    assert_int_equal(v.type, ES_JSON_NULL);
    assert_int_equal(es_json_get(&data, "type", &v), 0); /* only the object's own members */
    assert_int_equal(es_json_get(&root, "missing", &v), 0);
}

static void test_rejects_malformed(void **state) {
    (void)state;
    const char *bad[] = {"",        "{",          "{\"a\":}",  "{\"a\" 1}",      "{\"a\":1,}",
                         "[1,]",    "{\"a\":01}", "{\"a\":-}", "{\"a\":1.}",     "{\"a\":tru}",
                         "\"\\x\"", "\"abc",      "{} {}",     "{\"a\":\"\n\"}", "\"\\u12g4\"",
                         "nul",     "{a:1}",      "1e"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parses(bad[i])) fail_msg("accepted: %s", bad[i]);
    }
    assert_true(parses(" {\"a\": [1, -2.5e3, true, false, null, \"x\", {}]} \r\n"));
}

static void test_depth_is_bounded(void **state) {
    (void)state;
    char deep[200];
    int n = ES_JSON_MAX_DEPTH + 1;
    for (int i = 0; i < n; i++)
        deep[i] = '[';
    for (int i = 0; i < n; i++)
        deep[n + i] = ']';
    deep[2 * n] = '\0';
    assert_false(parses(deep));
    deep[0] = ' ';
    deep[2 * n - 1] = ' ';
    assert_true(parses(deep));
}

static void test_strings_and_arrays(void **state) {
    (void)state;
    const char *text = "{\"names\": [\"hey_\\u00e9\", \"a\\\"b\\\\c\\n\", \"\\ud83d\\ude00\", "
                       "\"\\udc00\"]}";
    es_json_value root, names, item;
    assert_int_equal(es_json_parse(text, strlen(text), &root), 0);
    assert_int_equal(es_json_get(&root, "names", &names), 1);
    const char *want[] = {"hey_\xc3\xa9", "a\"b\\c\n", "\xf0\x9f\x98\x80", "\xef\xbf\xbd"};
    size_t pos = 0;
    int count = 0;
    char buf[32];
    while (es_json_array_next(&names, &pos, &item) == 1) {
        assert_true(es_json_string(&item, buf, sizeof buf) >= 0);
        assert_string_equal(buf, want[count]);
        count++;
    }
    assert_int_equal(count, 4);
    /* Too long for the buffer: refused, never truncated silently. */
    pos = 0;
    assert_int_equal(es_json_array_next(&names, &pos, &item), 1);
    assert_int_equal(es_json_string(&item, buf, 4), -1);
    assert_int_equal(es_json_array_next(&root, &pos, &item), -1);
    es_json_value empty;
    assert_int_equal(es_json_parse("[ ]", 3, &empty), 0);
    pos = 0;
    assert_int_equal(es_json_array_next(&empty, &pos, &item), 0);
}

static void test_never_reads_past_len(void **state) {
    (void)state;
    /* The span ends inside a valid document: the rest must not be seen. */
    const char *text = "{\"type\":\"describe\"}";
    es_json_value v;
    for (size_t len = 0; len < strlen(text); len++) {
        char *copy = malloc(len ? len : 1);
        memcpy(copy, text, len);
        assert_int_equal(es_json_parse(copy, len, &v), -1);
        free(copy);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_wyoming_headers), cmocka_unit_test(test_rejects_malformed),
        cmocka_unit_test(test_depth_is_bounded),        cmocka_unit_test(test_strings_and_arrays),
        cmocka_unit_test(test_never_reads_past_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
