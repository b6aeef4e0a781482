/*
 * Model files: save and load give back the same model; every malformed file
 * (truncated, bit-flipped, oversized, non-finite, trailing bytes, bad labels)
 * is refused with ES_RNN_ERR_FORMAT and a reason naming the problem; feature
 * mismatches name the field. Offsets follow the layout in rnn/model_file.c.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_infer_util.h"

#define HEADER_BYTES 44
#define LAYER_RECORD_BYTES 20

/* CRC-32 (IEEE), bit by bit: independent of the library's table version. */
static uint32_t crc32_bitwise(const unsigned char *bytes, size_t size) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++) {
        crc ^= bytes[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void put_u32(unsigned char *at, uint32_t v) {
    for (int i = 0; i < 4; i++)
        at[i] = (unsigned char)(v >> (8 * i));
}

static void fix_crc(unsigned char *bytes, size_t size) {
    put_u32(bytes + size - 4, crc32_bitwise(bytes, size - 4));
}

typedef struct file_image {
    unsigned char *bytes;
    size_t size;
} file_image;

static char *temp_path(void) {
    char *path = strdup("/tmp/es_test_model_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    return path;
}

static file_image save_to_image(const es_model *m) {
    char *path = temp_path();
    es_error err = {0};
    assert_int_equal(es_model_save(m, path, &err), ES_RNN_OK);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    file_image image = {NULL, (size_t)ftell(f)};
    fseek(f, 0, SEEK_SET);
    image.bytes = malloc(image.size + 16);
    assert_int_equal(fread(image.bytes, 1, image.size, f), image.size);
    fclose(f);
    unlink(path);
    free(path);
    return image;
}

/* Loading the (patched) image must fail with `code` and a reason containing
 * `needle` (NULL: any non-empty reason). */
static void expect_rejected(const unsigned char *bytes, size_t size, int code, const char *needle) {
    es_model *m = (es_model *)&m;
    es_error err;
    memset(&err, 0x55, sizeof err);
    assert_int_equal(es_model_load_memory(bytes, size, &m, &err), code);
    assert_null(m);
    assert_int_equal(err.code, code);
    assert_true(strlen(err.why) > 0 && strlen(err.why) < sizeof err.why);
    if (needle && !strstr(err.why, needle))
        fail_msg("reason \"%s\" does not mention \"%s\"", err.why, needle);
}

static const test_layer vad_like[] = TEST_VAD_LIKE;
static const test_layer tiny[] = {{ES_LAYER_GRU, 2, ES_ACT_TANH, 0},
                                  {ES_LAYER_DENSE, 2, ES_ACT_SOFTMAX, 0}};
static const char *const tiny_labels[] = {"filler", "yes"};
static const test_layer stacked[] = {{ES_LAYER_STACK, 80, ES_ACT_LINEAR, 2},
                                     {ES_LAYER_GRU, 6, ES_ACT_TANH, 0},
                                     {ES_LAYER_DENSE, 3, ES_ACT_SOFTMAX, 0}};

static es_model *make_tiny(void) {
    es_model *m = test_make_model(3, tiny, 2, 5);
    assert_non_null(m);
    assert_int_equal(es_model_set_labels(m, 2, tiny_labels), ES_RNN_OK);
    return m;
}

static void assert_same_model(const es_model *a, const es_model *b) {
    assert_memory_equal(es_model_features(a), es_model_features(b), sizeof(es_feature_spec));
    assert_int_equal(es_model_input_size(a), es_model_input_size(b));
    assert_int_equal(es_model_output_size(a), es_model_output_size(b));
    assert_int_equal(es_model_layer_count(a), es_model_layer_count(b));
    for (int l = 0; l < es_model_layer_count(a); l++) {
        assert_int_equal(es_model_layer_type(a, l), es_model_layer_type(b, l));
        assert_int_equal(es_model_layer_units(a, l), es_model_layer_units(b, l));
    }
    for (int i = 0; i < es_model_output_size(a); i++)
        assert_string_equal(es_model_label(a, i), es_model_label(b, i));
    assert_int_equal(es_model_param_count(a), es_model_param_count(b));
    assert_memory_equal(es_model_params((es_model *)a), es_model_params((es_model *)b),
                        sizeof(float) * es_model_param_count(a));
    enum { FRAMES = 30 };
    int out = es_model_output_size(a);
    float *inputs = test_random_inputs(FRAMES, es_model_input_size(a), 3);
    float *ya = malloc(sizeof(float) * FRAMES * out), *yb = malloc(sizeof(float) * FRAMES * out);
    assert_int_equal(es_model_forward_sequence(a, inputs, FRAMES, ya), ES_RNN_OK);
    assert_int_equal(es_model_forward_sequence(b, inputs, FRAMES, yb), ES_RNN_OK);
    assert_memory_equal(ya, yb, sizeof(float) * FRAMES * out);
    free(inputs);
    free(ya);
    free(yb);
}

static void roundtrip(es_model *m) {
    char *path = temp_path();
    es_error err = {0};
    assert_int_equal(es_model_save(m, path, &err), ES_RNN_OK);
    es_model *from_file = NULL;
    assert_int_equal(es_model_load_file(path, &from_file, &err), ES_RNN_OK);
    assert_non_null(from_file);
    assert_same_model(m, from_file);

    file_image image = save_to_image(m);
    es_model *from_memory = NULL;
    assert_int_equal(es_model_load_memory(image.bytes, image.size, &from_memory, &err), ES_RNN_OK);
    assert_same_model(m, from_memory);
    /* Saving what was loaded gives the same bytes. */
    file_image again = save_to_image(from_memory);
    assert_int_equal(again.size, image.size);
    assert_memory_equal(again.bytes, image.bytes, image.size);

    free(again.bytes);
    free(image.bytes);
    es_model_destroy(from_file);
    es_model_destroy(from_memory);
    unlink(path);
    free(path);
}

static void test_save_load_roundtrip(void **state) {
    (void)state;
    es_model *m = test_make_model(40, vad_like, 3, 1);
    assert_non_null(m);
    const char *speech[] = {"speech"};
    assert_int_equal(es_model_set_labels(m, 1, speech), ES_RNN_OK);
    roundtrip(m);
    es_model_destroy(m);

    const test_layer others[] = {{ES_LAYER_LSTM, 19, ES_ACT_TANH, 0},
                                 {ES_LAYER_RNN, 5, ES_ACT_TANH, 0},
                                 {ES_LAYER_BIDIR_GRU, 7, ES_ACT_TANH, 0},
                                 {ES_LAYER_BIDIR_LSTM, 3, ES_ACT_TANH, 0},
                                 {ES_LAYER_DENSE, 3, ES_ACT_LINEAR, 0}};
    m = test_make_model(11, others, 5, 2); /* labels left unset: saved empty */
    assert_non_null(m);
    roundtrip(m);
    es_model_destroy(m);

    m = make_tiny();
    roundtrip(m);
    es_model_destroy(m);

    m = test_make_model(40, stacked, 3, 3);
    assert_non_null(m);
    roundtrip(m);
    es_model_destroy(m);
}

static void test_every_prefix_is_rejected(void **state) {
    (void)state;
    es_model *m = make_tiny();
    file_image image = save_to_image(m);
    for (size_t n = 0; n < image.size; n++)
        expect_rejected(image.bytes, n, ES_RNN_ERR_FORMAT, n < 4 ? "magic" : "truncated");
    free(image.bytes);
    es_model_destroy(m);
}

static void test_every_bit_flip_is_rejected(void **state) {
    (void)state;
    es_model *m = make_tiny();
    file_image image = save_to_image(m);
    for (size_t at = 0; at < image.size; at++) {
        for (int bit = 0; bit < 8; bit += 3) {
            image.bytes[at] ^= (unsigned char)(1u << bit);
            expect_rejected(image.bytes, image.size, ES_RNN_ERR_FORMAT, at < 4 ? "magic" : "CRC");
            image.bytes[at] ^= (unsigned char)(1u << bit);
        }
    }
    free(image.bytes);
    es_model_destroy(m);
}

/* Patches the u32 at `offset`, fixes the CRC, expects a rejection naming `needle`. */
static void expect_patch_rejected(const file_image *image, size_t offset, uint32_t value,
                                  const char *needle) {
    unsigned char *copy = malloc(image->size);
    memcpy(copy, image->bytes, image->size);
    put_u32(copy + offset, value);
    fix_crc(copy, image->size);
    expect_rejected(copy, image->size, ES_RNN_ERR_FORMAT, needle);
    free(copy);
}

static void test_out_of_range_fields_are_rejected(void **state) {
    (void)state;
    es_model *m = test_make_model(40, vad_like, 3, 1);
    assert_non_null(m);
    file_image image = save_to_image(m);
    size_t conv = HEADER_BYTES, gru = HEADER_BYTES + LAYER_RECORD_BYTES;
    expect_patch_rejected(&image, 4, 5, "version");
    expect_patch_rejected(&image, 4, 0, "version");
    expect_patch_rejected(&image, 32, 0, "input size");
    expect_patch_rejected(&image, 32, 100000, "input size");
    expect_patch_rejected(&image, 36, 0, "layer count");
    expect_patch_rejected(&image, 36, ES_MAX_LAYERS + 1, "layer count");
    expect_patch_rejected(&image, 36, 0xFFFFFFFFu, "layer count");
    expect_patch_rejected(&image, 40, ES_MAX_OUTPUTS + 1, "label count");
    expect_patch_rejected(&image, 40, 2, "labels for 1 outputs");
    expect_patch_rejected(&image, gru + 0, 9, "layer 1: unknown type 9");
    expect_patch_rejected(&image, gru + 4, 5000, "layer 1 (GRU): 5000 units");
    expect_patch_rejected(&image, gru + 4, 0, "layer 1 (GRU): 0 units");
    expect_patch_rejected(&image, gru + 8, 7, "layer 1 (GRU): unknown activation");
    expect_patch_rejected(&image, gru + 12, 3, "layer 1 (GRU): kernel 3");
    expect_patch_rejected(&image, conv + 12, 0, "layer 0 (CONV1D): kernel 0");
    expect_patch_rejected(&image, conv + 12, 65, "layer 0 (CONV1D): kernel 65");
    expect_patch_rejected(&image, gru + 16, 1, "weight encoding");
    expect_patch_rejected(&image, gru + 0, ES_LAYER_STACK, "only be the first layer");
    /* The parameter count follows the labels: one empty label here. */
    size_t count_at = HEADER_BYTES + 3 * LAYER_RECORD_BYTES + 1;
    expect_patch_rejected(&image, count_at, 12, "parameter count");
    expect_patch_rejected(&image, count_at + 4, 1, "parameter count");

    /* Valid units and a matching count, but far more weights than the file
     * holds: refused before anything that size is allocated. */
    size_t huge = es_layer_param_count(ES_LAYER_CONV1D, 40, 24, 3) +
                  es_layer_param_count(ES_LAYER_GRU, 24, 4096, 0) +
                  es_layer_param_count(ES_LAYER_DENSE, 4096, 1, 0);
    unsigned char *copy = malloc(image.size);
    memcpy(copy, image.bytes, image.size);
    put_u32(copy + gru + 4, 4096);
    put_u32(copy + count_at, (uint32_t)huge);
    put_u32(copy + count_at + 4, (uint32_t)((uint64_t)huge >> 32));
    fix_crc(copy, image.size);
    expect_rejected(copy, image.size, ES_RNN_ERR_FORMAT, "truncated");
    free(copy);
    free(image.bytes);
    es_model_destroy(m);
}

static void test_stack_fields_are_checked(void **state) {
    (void)state;
    es_model *m = test_make_model(40, stacked, 3, 3);
    assert_non_null(m);
    file_image image = save_to_image(m);
    size_t stack = HEADER_BYTES;
    expect_patch_rejected(&image, stack + 4, 81, "layer 0 (STACK): 81 units, expected kernel 2");
    expect_patch_rejected(&image, stack + 12, 0, "layer 0 (STACK): kernel 0");
    expect_patch_rejected(&image, stack + 12, 4, "80 units, expected kernel 4 x 40 inputs");
    free(image.bytes);
    es_model_destroy(m);
}

static void test_non_finite_weights_are_rejected(void **state) {
    (void)state;
    es_model *m = test_make_model(40, vad_like, 3, 1);
    assert_non_null(m);
    size_t conv_params = es_layer_param_count(ES_LAYER_CONV1D, 40, 24, 3);
    float *p = es_model_params(m);
    p[conv_params + 10] = NAN;
    file_image image = save_to_image(m);
    expect_rejected(image.bytes, image.size, ES_RNN_ERR_FORMAT, "layer 1 (GRU): weight 10 is NaN");
    free(image.bytes);
    p[conv_params + 10] = 0.0f;
    p[es_model_param_count(m) - 1] = -INFINITY;
    image = save_to_image(m);
    expect_rejected(image.bytes, image.size, ES_RNN_ERR_FORMAT,
                    "layer 2 (DENSE): weight 37 is "
                    "infinite");
    free(image.bytes);
    es_model_destroy(m);
}

static void test_trailing_bytes_and_bad_labels_are_rejected(void **state) {
    (void)state;
    es_model *m = make_tiny();
    file_image image = save_to_image(m);
    memset(image.bytes + image.size, 0, 8);
    expect_rejected(image.bytes, image.size + 8, ES_RNN_ERR_FORMAT, "unexpected bytes");
    fix_crc(image.bytes, image.size + 8);
    expect_rejected(image.bytes, image.size + 8, ES_RNN_ERR_FORMAT, "unexpected bytes");
    free(image.bytes);
    es_model_destroy(m);

    /* A 31-character label fills ES_MAX_LABEL with its NUL; without the NUL
     * it runs into the next bytes. */
    const test_layer one[] = {{ES_LAYER_DENSE, 1, ES_ACT_SIGMOID, 0}};
    m = test_make_model(2, one, 1, 9);
    assert_non_null(m);
    const char *longest[] = {"abcdefghijklmnopqrstuvwxyz01234"};
    assert_int_equal(es_model_set_labels(m, 1, longest), ES_RNN_OK);
    image = save_to_image(m);
    size_t label_at = HEADER_BYTES + LAYER_RECORD_BYTES;
    assert_int_equal(image.bytes[label_at + 31], 0);
    image.bytes[label_at + 31] = 'x';
    fix_crc(image.bytes, image.size);
    expect_rejected(image.bytes, image.size, ES_RNN_ERR_FORMAT,
                    "label 0 at offset 64 is not NUL-terminated within 32 bytes");
    image.bytes[label_at + 31] = 0;
    image.bytes[label_at + 3] = '\n';
    fix_crc(image.bytes, image.size);
    expect_rejected(image.bytes, image.size, ES_RNN_ERR_FORMAT, "label 0");
    free(image.bytes);
    es_model_destroy(m);
}

/* Two outputs of one label could not be told apart in events, thresholds or
 * CSV columns (issue 35): the loader refuses such a file, and no model can be
 * given them to save. */
static void test_duplicate_labels_are_rejected(void **state) {
    (void)state;
    const test_layer two[] = {{ES_LAYER_DENSE, 2, ES_ACT_SOFTMAX, 0}};
    es_model *m = test_make_model(2, two, 1, 9);
    assert_non_null(m);
    const char *same[] = {"left", "left"};
    assert_int_equal(es_model_set_labels(m, 2, same), ES_RNN_ERR_ARG);
    const char *differ[] = {"left", "lefT"};
    assert_int_equal(es_model_set_labels(m, 2, differ), ES_RNN_OK);
    file_image image = save_to_image(m);
    size_t label_at = HEADER_BYTES + LAYER_RECORD_BYTES;
    assert_memory_equal(image.bytes + label_at, "left\0lefT\0", 10);
    image.bytes[label_at + 8] = 't';
    fix_crc(image.bytes, image.size);
    expect_rejected(image.bytes, image.size, ES_RNN_ERR_FORMAT,
                    "output 1 repeats the label \"left\"");
    free(image.bytes);
    es_model_destroy(m);
}

static void test_feature_mismatch_names_the_field(void **state) {
    (void)state;
    es_model *m = make_tiny();
    es_error err = {0};
    es_feature_spec want = test_features;
    assert_int_equal(es_model_check_features(m, &want, &err), ES_RNN_OK);
    const char *names[] = {"sample_rate_hz", "fft_size",  "window_samples",
                           "hop_samples",    "mel_bands", "normalisation"};
    for (int field = 0; field < 6; field++) {
        want = test_features;
        uint32_t *fields = &want.sample_rate_hz;
        fields[field] += 1;
        assert_int_equal(es_model_check_features(m, &want, &err), ES_RNN_ERR_FEATURES);
        assert_int_equal(err.code, ES_RNN_ERR_FEATURES);
        if (!strstr(err.why, names[field]))
            fail_msg("reason \"%s\" does not name %s", err.why, names[field]);
    }
    es_model_destroy(m);
}

static void test_io_errors_name_the_file(void **state) {
    (void)state;
    es_model *m = (es_model *)&m;
    es_error err = {0};
    const char *missing = "/nonexistent/earshot/model.esm";
    assert_int_equal(es_model_load_file(missing, &m, &err), ES_RNN_ERR_IO);
    assert_null(m);
    assert_non_null(strstr(err.why, missing));
    assert_int_equal(es_model_load_file("/tmp", &m, &err), ES_RNN_ERR_IO);
    assert_non_null(strstr(err.why, "directory"));
    es_model *tiny_model = make_tiny();
    assert_int_equal(es_model_save(tiny_model, missing, &err), ES_RNN_ERR_IO);
    assert_non_null(strstr(err.why, missing));
    es_model_destroy(tiny_model);

    es_model *empty = NULL;
    assert_int_equal(es_model_create(&test_features, 4, &empty), ES_RNN_OK);
    char *path = temp_path();
    assert_int_equal(es_model_save(empty, path, &err), ES_RNN_ERR_ARG);
    assert_true(strlen(err.why) > 0);
    unlink(path);
    free(path);
    es_model_destroy(empty);
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Issue 35, item 3: a FIFO nobody writes to used to block the loader (and
 * the daemon's main loop) forever, /dev/zero was read for 2 GiB before the
 * size check refused it. Both are refused at once now, and so is a regular
 * file larger than ES_MODEL_FILE_MAX_BYTES (sparse: no disk used). */
static void test_non_regular_and_oversized_files_are_refused_unread(void **state) {
    (void)state;
    es_model *m = NULL;
    es_error err = {0};
    char *fifo = temp_path();
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    /* Without the fix this call never returns: a watchdog alarm turns the
     * hang into a failure. */
    alarm(20);
    double start = seconds_now();
    assert_int_equal(es_model_load_file(fifo, &m, &err), ES_RNN_ERR_IO);
    assert_null(m);
    assert_non_null(strstr(err.why, "not a regular file"));
    assert_non_null(strstr(err.why, fifo));

    assert_int_equal(es_model_load_file("/dev/zero", &m, &err), ES_RNN_ERR_IO);
    assert_non_null(strstr(err.why, "not a regular file"));

    char *big = temp_path();
    int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)ES_MODEL_FILE_MAX_BYTES + 1), 0);
    close(fd);
    assert_int_equal(es_model_load_file(big, &m, &err), ES_RNN_ERR_FORMAT);
    assert_non_null(strstr(err.why, "larger than any model"));
    double took = seconds_now() - start;
    alarm(0);
    printf("FIFO, /dev/zero and a %d MiB + 1 byte file refused in %.3f s\n",
           ES_MODEL_FILE_MAX_BYTES >> 20, took);
    assert_true(took < 1.0);
    unlink(fifo);
    unlink(big);
    free(fifo);
    free(big);
}

/* A fuzzer in miniature that runs in every CI build (ASan, UBSan): random
 * byte changes with the CRC fixed, so they reach the structural checks and
 * model building. Each result either loads and steps or says why not. */
static void test_random_mutations_never_crash(void **state) {
    (void)state;
    const test_layer layers[] = {{ES_LAYER_CONV1D, 3, ES_ACT_RELU, 2},
                                 {ES_LAYER_LSTM, 2, ES_ACT_TANH, 0},
                                 {ES_LAYER_DENSE, 2, ES_ACT_SOFTMAX, 0}};
    es_model *m = test_make_model(4, layers, 3, 3);
    assert_non_null(m);
    file_image image = save_to_image(m);
    unsigned char *copy = malloc(image.size);
    uint64_t rng = 99;
    int loaded = 0;
    float frame[4096] = {0};
    for (int round = 0; round < 3000; round++) {
        memcpy(copy, image.bytes, image.size);
        int changes = 1 + (int)(test_random_next(&rng) % 3);
        for (int c = 0; c < changes; c++) {
            /* Mostly the header, where the sizes and counts live. */
            size_t span = test_random_next(&rng) % 4 ? 120 : image.size - 4;
            size_t at = test_random_next(&rng) % span;
            copy[at] = (unsigned char)test_random_next(&rng);
        }
        fix_crc(copy, image.size);
        es_model *loaded_model = NULL;
        es_error err = {0};
        int rc = es_model_load_memory(copy, image.size, &loaded_model, &err);
        if (rc == ES_RNN_OK) {
            loaded++;
            if (es_model_is_streaming(loaded_model)) {
                es_state *s = NULL;
                assert_int_equal(es_state_create(loaded_model, &s), ES_RNN_OK);
                es_state_step(s, frame);
                es_state_destroy(s);
            }
            es_model_destroy(loaded_model);
        } else {
            assert_null(loaded_model);
            assert_true(strlen(err.why) > 0);
        }
    }
    assert_true(loaded > 0); /* weight-only changes load */
    free(copy);
    free(image.bytes);
    es_model_destroy(m);
}

/* Thresholds make a version-2 file; each is checked like a weight, and a
 * model without them is still written (and read) as version 1. */
static void test_thresholds_travel_with_the_model(void **state) {
    (void)state;
    es_model *m = make_tiny();
    assert_null(es_model_thresholds(m));
    file_image plain = save_to_image(m);
    assert_int_equal(plain.bytes[4], 1);

    const float bad[] = {0.0f, 1.5f}, nan_pair[] = {NAN, 0.5f}, good[] = {0.0f, 0.8125f};
    assert_int_equal(es_model_set_thresholds(m, bad), ES_RNN_ERR_ARG);
    assert_int_equal(es_model_set_thresholds(m, nan_pair), ES_RNN_ERR_ARG);
    assert_null(es_model_thresholds(m));
    assert_int_equal(es_model_set_thresholds(m, good), ES_RNN_OK);
    file_image image = save_to_image(m);
    assert_int_equal(image.bytes[4], 2);
    assert_int_equal(image.size, plain.size + 2 * 4);

    es_model *loaded = NULL;
    es_error err = {0};
    assert_int_equal(es_model_load_memory(image.bytes, image.size, &loaded, &err), ES_RNN_OK);
    assert_same_model(m, loaded);
    const float *thresholds = es_model_thresholds(loaded);
    assert_non_null(thresholds);
    assert_true(thresholds[0] == 0.0f && thresholds[1] == 0.8125f);
    es_model_destroy(loaded);

    /* The thresholds follow the labels "filler" and "yes". */
    size_t at = HEADER_BYTES + 2 * LAYER_RECORD_BYTES + sizeof "filler" + sizeof "yes";
    uint32_t above_one, not_a_number;
    const float above = 1.25f, nan_value = NAN;
    memcpy(&above_one, &above, 4);
    memcpy(&not_a_number, &nan_value, 4);
    expect_patch_rejected(&image, at + 4, above_one, "threshold of output 1");
    expect_patch_rejected(&image, at, not_a_number, "threshold of output 0");
    for (size_t size = 0; size < image.size; size++)
        expect_rejected(image.bytes, size, ES_RNN_ERR_FORMAT, NULL);
    /* A version-1 header over a version-2 body misreads the thresholds as the
     * parameter count, which the loader refuses. */
    expect_patch_rejected(&image, 4, 1, NULL);

    /* Adding a layer changes the outputs' meaning: the thresholds go. */
    assert_int_equal(es_model_set_thresholds(m, NULL), ES_RNN_OK);
    assert_null(es_model_thresholds(m));
    assert_int_equal(es_model_set_thresholds(m, good), ES_RNN_OK);
    assert_int_equal(es_model_add_layer(m, ES_LAYER_DENSE, 2, ES_ACT_SOFTMAX, 0), ES_RNN_OK);
    assert_null(es_model_thresholds(m));
    free(plain.bytes);
    free(image.bytes);
    es_model_destroy(m);
}

/* Smoothing makes a version-3 file, which carries thresholds too (zeros
 * when the model has none); each value is range-checked; a version-2 header
 * over a version-3 body is refused. */
static void test_smoothing_travels_with_the_model(void **state) {
    (void)state;
    es_model *m = make_tiny();
    file_image plain = save_to_image(m);
    assert_null(es_model_smoothing(m));
    const int bad[] = {0, ES_MODEL_MAX_SMOOTH_MS + 1}, negative[] = {-1, 0}, good[] = {0, 300};
    assert_int_equal(es_model_set_smoothing(m, bad), ES_RNN_ERR_ARG);
    assert_int_equal(es_model_set_smoothing(m, negative), ES_RNN_ERR_ARG);
    assert_null(es_model_smoothing(m));
    assert_int_equal(es_model_set_smoothing(m, good), ES_RNN_OK);
    file_image image = save_to_image(m);
    assert_int_equal(image.bytes[4], 3);
    assert_int_equal(image.size, plain.size + 2 * 4 + 2 * 4);

    es_model *loaded = NULL;
    es_error err = {0};
    assert_int_equal(es_model_load_memory(image.bytes, image.size, &loaded, &err), ES_RNN_OK);
    assert_same_model(m, loaded);
    const int *smooth_ms = es_model_smoothing(loaded);
    assert_non_null(smooth_ms);
    assert_true(smooth_ms[0] == 0 && smooth_ms[1] == 300);
    const float *thresholds = es_model_thresholds(loaded);
    assert_non_null(thresholds);
    assert_true(thresholds[0] == 0.0f && thresholds[1] == 0.0f);
    es_model_destroy(loaded);

    /* The smoothing follows the two thresholds. */
    size_t at = HEADER_BYTES + 2 * LAYER_RECORD_BYTES + sizeof "filler" + sizeof "yes" + 2 * 4;
    expect_patch_rejected(&image, at + 4, ES_MODEL_MAX_SMOOTH_MS + 1, "smoothing of output 1");
    expect_patch_rejected(&image, 4, 2, NULL);
    expect_patch_rejected(&image, 4, 5, "format version 5"); /* 4: the same layout, read */
    for (size_t size = 0; size < image.size; size++)
        expect_rejected(image.bytes, size, ES_RNN_ERR_FORMAT, NULL);

    assert_int_equal(es_model_add_layer(m, ES_LAYER_DENSE, 2, ES_ACT_SOFTMAX, 0), ES_RNN_OK);
    assert_null(es_model_smoothing(m));
    free(plain.bytes);
    free(image.bytes);
    es_model_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_load_roundtrip),
        cmocka_unit_test(test_every_prefix_is_rejected),
        cmocka_unit_test(test_every_bit_flip_is_rejected),
        cmocka_unit_test(test_out_of_range_fields_are_rejected),
        cmocka_unit_test(test_stack_fields_are_checked),
        cmocka_unit_test(test_non_finite_weights_are_rejected),
        cmocka_unit_test(test_trailing_bytes_and_bad_labels_are_rejected),
        cmocka_unit_test(test_duplicate_labels_are_rejected),
        cmocka_unit_test(test_feature_mismatch_names_the_field),
        cmocka_unit_test(test_io_errors_name_the_file),
        cmocka_unit_test(test_non_regular_and_oversized_files_are_refused_unread),
        cmocka_unit_test(test_random_mutations_never_crash),
        cmocka_unit_test(test_thresholds_travel_with_the_model),
        cmocka_unit_test(test_smoothing_travels_with_the_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
