/* `earshot train` end to end on a handful of clips synthesised here: one epoch
 * of each task must write a model that loads with the right outputs, and bad
 * input must fail with the documented exit statuses. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "commands.h"
#include "rnn.h"

static char folder[PATH_MAX];

static int run(const char *command) {
    return system(command);
}

/* espeak-ng writes 22050 Hz WAV: the trainer's resampling is exercised too. */
static void speak(const char *voice, const char *text, const char *name) {
    char command[2 * PATH_MAX + 256];
    snprintf(command, sizeof command, "espeak-ng -v %s -w '%s/%s.wav' '%s'", voice, folder, name,
             text);
    assert_int_equal(run(command), 0);
}

static int setup(void **state) {
    (void)state;
    if (run("command -v espeak-ng >/dev/null 2>&1 && command -v sox >/dev/null 2>&1") != 0)
        return 0; /* the tests skip */
    snprintf(folder, sizeof folder, "/tmp/earshot-train-test-XXXXXX");
    if (!mkdtemp(folder)) return -1;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/manifest.tsv", folder);
    FILE *manifest = fopen(path, "w");
    if (!manifest) return -1;
    fprintf(manifest, "# path\tsplit\tkind\tlabel\tstart_s\tend_s\tvoice\n");
    const char *voices[] = {"en-us", "en-us+m3", "en-gb+f2"};
    /* The second voice's tag names a recorded speaker (as real_speech.sh tags
     * Speech Commands'): only --recorded-weight reads that. */
    const char *tags[] = {"espeak:en-us", "sc:0a1b2c3d", "espeak:en-gb+f2"};
    const char *splits[] = {"train", "train", "valid"};
    const char *keywords[] = {"yes", "left", "nine"};
    const char *sentences[] = {"the weather is mild this morning", "please open the window"};
    for (int v = 0; v < 3; v++) {
        char name[64];
        for (int k = 0; k < 3; k++) {
            snprintf(name, sizeof name, "kw-%d-%d", v, k);
            speak(voices[v], keywords[k], name);
            fprintf(manifest, "%s.wav\t%s\tkeyword\t%s\t0.05\t0.40\t%s\n", name, splits[v],
                    keywords[k], tags[v]);
        }
        for (int s = 0; s < 2; s++) {
            snprintf(name, sizeof name, "sent-%d-%d", v, s);
            speak(voices[v], sentences[s], name);
            fprintf(manifest, "%s.wav\t%s\tsentence\t-\t-\t-\t%s\n", name, splits[v], tags[v]);
        }
    }
    char command[PATH_MAX + 128];
    snprintf(command, sizeof command,
             "sox -R -n -r 16000 -c 1 -b 16 '%s/pink.wav' synth 3 pinknoise", folder);
    if (run(command) != 0) return -1;
    fprintf(manifest, "pink.wav\ttrain\tnoise\t-\t-\t-\tnoise:generated\n");
    return fclose(manifest) == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    if (folder[0] == '\0') return 0;
    char command[PATH_MAX + 16];
    snprintf(command, sizeof command, "rm -rf '%s'", folder);
    return run(command) == 0 ? 0 : -1;
}

/* One epoch of the small model; `extra` is one more flag and its value, or NULL. */
static int train_with(const char *manifest_name, const char *task, const char *model_name,
                      const char *extra, const char *extra_value) {
    char manifest[PATH_MAX + 32], model[PATH_MAX + 32];
    snprintf(manifest, sizeof manifest, "%s/%s", folder, manifest_name);
    snprintf(model, sizeof model, "%s/%s", folder, model_name);
    char *argv[] = {
        "train", manifest,  "-o",     model, "--task",      (char *)task,        "--epochs",
        "1",     "--small", "--seed", "3",   (char *)extra, (char *)extra_value, NULL};
    return es_cmd_train(extra ? 13 : 11, argv);
}

static int train(const char *manifest_name, const char *task, const char *model_name) {
    return train_with(manifest_name, task, model_name, NULL, NULL);
}

static es_model *load(const char *model_name) {
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", folder, model_name);
    es_model *m = NULL;
    es_error err;
    assert_int_equal(es_model_load_file(path, &m, &err), ES_RNN_OK);
    return m;
}

static void test_vad_one_epoch_writes_a_speech_model(void **state) {
    (void)state;
    if (folder[0] == '\0') skip();
    assert_int_equal(train("manifest.tsv", "vad", "vad.model"), 0);
    es_model *m = load("vad.model");
    assert_int_equal(es_model_input_size(m), 40);
    assert_int_equal(es_model_output_size(m), 1);
    assert_string_equal(es_model_label(m, 0), "speech");
    assert_int_equal(es_model_features(m)->mel_bands, 40);
    assert_int_equal(es_model_features(m)->hop_samples, 160);
    es_model_destroy(m);
}

static void test_kws_one_epoch_writes_filler_and_keywords(void **state) {
    (void)state;
    if (folder[0] == '\0') skip();
    assert_int_equal(train("manifest.tsv", "kws", "kws.model"), 0);
    es_model *m = load("kws.model");
    assert_int_equal(es_model_output_size(m), 21);
    assert_string_equal(es_model_label(m, 0), "filler");
    assert_string_equal(es_model_label(m, 1), "yes");
    assert_string_equal(es_model_label(m, 5), "left");
    assert_string_equal(es_model_label(m, 20), "nine");
    es_model_destroy(m);
}

static void test_kws_frame_targets_train_too(void **state) {
    (void)state;
    if (folder[0] == '\0') skip();
    assert_int_equal(train_with("manifest.tsv", "kws", "kws-frames.model", "--kws-loss", "frames"),
                     0);
    es_model *m = load("kws-frames.model");
    assert_int_equal(es_model_output_size(m), 21);
    es_model_destroy(m);
    assert_int_equal(train_with("manifest.tsv", "kws", "never.model", "--kws-loss", "ctc"), 2);
}

static long read_whole(const char *model_name, unsigned char *buf, long capacity) {
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", folder, model_name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    const long n = (long)fread(buf, 1, (size_t)capacity, f);
    fclose(f);
    return n;
}

/* Batches are built on threads of their own, ahead of the trainer: a seed
 * must still make the same model, byte for byte, whatever their timing. */
static void test_same_seed_same_model_with_builder_threads(void **state) {
    (void)state;
    if (folder[0] == '\0') skip();
    assert_int_equal(train_with("manifest.tsv", "kws", "run-a.model", "--threads", "2"), 0);
    assert_int_equal(train_with("manifest.tsv", "kws", "run-b.model", "--threads", "2"), 0);
    static unsigned char a[1 << 20], b[1 << 20];
    const long na = read_whole("run-a.model", a, sizeof a);
    const long nb = read_whole("run-b.model", b, sizeof b);
    assert_true(na > 0 && na < (long)sizeof a);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, (size_t)na);
}

/* Three KWS epochs of the small model on both kinds of threads, with the
 * NULL-terminated `extra` arguments; what it printed goes to `log_name`.
 * Returns the exit status. */
static int train_kws_logged(const char *model_name, const char *const *extra,
                            const char *log_name) {
    char manifest[PATH_MAX + 32], model[PATH_MAX + 32], log[PATH_MAX + 32];
    snprintf(manifest, sizeof manifest, "%s/manifest.tsv", folder);
    snprintf(model, sizeof model, "%s/%s", folder, model_name);
    snprintf(log, sizeof log, "%s/%s", folder, log_name);
    char *argv[24] = {"train", manifest,  "-o",        model, "--task", "kws", "--epochs",
                      "3",     "--small", "--threads", "2",   "--seed", "3"};
    int argc = 13;
    for (int i = 0; extra && extra[i] && argc < 23; i++)
        argv[argc++] = (char *)extra[i];
    fflush(stderr);
    const int saved = dup(STDERR_FILENO);
    FILE *out = fopen(log, "w");
    assert_non_null(out);
    dup2(fileno(out), STDERR_FILENO);
    const int rc = es_cmd_train(argc, argv);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    fclose(out);
    return rc;
}

static void train_kws_threaded(const char *model_name, const char *extra, const char *value,
                               const char *log_name) {
    const char *const extras[] = {extra, value, NULL};
    assert_int_equal(train_kws_logged(model_name, extras, log_name), 0);
}

static int count_in_file(const char *name, const char *needle) {
    static unsigned char text[1 << 16];
    const long n = read_whole(name, text, sizeof text - 1);
    text[n] = '\0';
    int count = 0;
    for (const char *p = (const char *)text; (p = strstr(p, needle)); p++)
        count++;
    return count;
}

/* --hard-negatives 1: a round at the ends of epochs 1 and 2 (none after the
 * last), each keeping the four keyword-free training clips, hardest first;
 * and the same seed still makes the same model, byte for byte. */
static void test_hard_negative_rounds_run_reproducibly(void **state) {
    (void)state;
    if (folder[0] == '\0') skip();
    train_kws_threaded("plain.model", NULL, NULL, "plain.log");
    assert_int_equal(count_in_file("plain.log", "hard negatives:"), 0);
    train_kws_threaded("hard-a.model", "--hard-negatives", "1", "hard-a.log");
    assert_int_equal(count_in_file("hard-a.log", "hard negatives:"), 2);
    assert_int_equal(count_in_file("hard-a.log", ", 4 kept (the hardest 0."), 2);
    train_kws_threaded("hard-b.model", "--hard-negatives", "1", "hard-b.log");
    static unsigned char a[1 << 20], b[1 << 20];
    const long na = read_whole("hard-a.model", a, sizeof a);
    const long nb = read_whole("hard-b.model", b, sizeof b);
    assert_true(na > 0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, (size_t)na);
}

static int same_file(const char *name_a, const char *name_b) {
    static unsigned char a[1 << 20], b[1 << 20];
    const long na = read_whole(name_a, a, sizeof a);
    const long nb = read_whole(name_b, b, sizeof b);
    assert_true(na > 0 && na < (long)sizeof a);
    return na == nb && memcmp(a, b, (size_t)na) == 0;
}

/* --envelope: 0 is off to the last random draw (the model of a run without
 * the option, byte for byte: shipped recipes stay reproducible); on, the
 * training clips change and so does the model. */
static void test_envelope_is_off_to_the_last_draw(void **state) {
    (void)state;
    if (folder[0] == '\0') skip();
    train_kws_threaded("envelope-none.model", NULL, NULL, "envelope-none.log");
    train_kws_threaded("envelope-0.model", "--envelope", "0", "envelope-0.log");
    train_kws_threaded("envelope-1.model", "--envelope", "1", "envelope-1.log");
    assert_true(same_file("envelope-none.model", "envelope-0.model"));
    assert_false(same_file("envelope-none.model", "envelope-1.model"));
}

/* --recorded-weight: 1 draws exactly what a run without it draws (the
 * synthetic-only recipes stay reproducible); 8 makes the recorded speaker's
 * clips 8 times as likely (3 of 6 train keyword clips: 8 * 3 / (8 * 3 + 3),
 * 88.9 % of draws, said in the log), so the model changes. */
static void test_recorded_voices_weigh_as_asked(void **state) {
    (void)state;
    if (folder[0] == '\0') skip();
    train_kws_threaded("recorded-none.model", NULL, NULL, "recorded-none.log");
    train_kws_threaded("recorded-1.model", "--recorded-weight", "1", "recorded-1.log");
    train_kws_threaded("recorded-8.model", "--recorded-weight", "8", "recorded-8.log");
    assert_true(same_file("recorded-none.model", "recorded-1.model"));
    assert_false(same_file("recorded-none.model", "recorded-8.model"));
    assert_int_equal(
        count_in_file("recorded-1.log", "keyword: 3 of 6 train clips recorded, 50.0 %"), 1);
    assert_int_equal(
        count_in_file("recorded-8.log", "keyword: 3 of 6 train clips recorded, 88.9 %"), 1);
}

/* --lr-decay-every 16, one epoch of the small model's 16 sequences: the step
 * size falls 5 % an epoch (0.002, 0.0019, 0.0018); by default (10000) it stays. */
static void test_learning_rate_falls_at_the_chosen_pace(void **state) {
    (void)state;
    if (folder[0] == '\0') skip();
    train_kws_threaded("pace-default.model", NULL, NULL, "pace-default.log");
    assert_int_equal(count_in_file("pace-default.log", ", lr 0.002,"), 3);
    train_kws_threaded("pace-fast.model", "--lr-decay-every", "16", "pace-fast.log");
    assert_int_equal(count_in_file("pace-fast.log", ", lr 0.002,"), 1);
    assert_int_equal(count_in_file("pace-fast.log", ", lr 0.0019,"), 1);
    assert_int_equal(count_in_file("pace-fast.log", ", lr 0.0018,"), 1);
}

/* --init: the same architecture starts from every layer, a keyword model of
 * other outputs from its GRUs under a new output layer; a model whose first
 * layer does not fit, or no model, fails rather than train from scratch. */
static void test_init_starts_from_a_trained_model(void **state) {
    (void)state;
    if (folder[0] == '\0') skip();
    train_kws_threaded("base.model", NULL, NULL, "base.log");
    char base[PATH_MAX + 32], vad[PATH_MAX + 32];
    snprintf(base, sizeof base, "%s/base.model", folder);
    snprintf(vad, sizeof vad, "%s/vad-init.model", folder);
    const char *const same[] = {"--init", base, NULL};
    assert_int_equal(train_kws_logged("tuned.model", same, "tuned.log"), 0);
    assert_int_equal(count_in_file("tuned.log", "its first 3 of 3 layers (all)"), 1);
    const char *const new_head[] = {"--init", base, "--manifest-keywords-only", NULL};
    assert_int_equal(train_kws_logged("head.model", new_head, "head.log"), 0);
    assert_int_equal(count_in_file("head.log", "its first 2 of 3 layers, the rest new"), 1);
    es_model *m = load("head.model");
    assert_int_equal(es_model_output_size(m), 4); /* filler, yes, left, nine */
    es_model_destroy(m);

    assert_int_equal(train_with("manifest.tsv", "vad", "vad-init.model", NULL, NULL), 0);
    const char *const misfit[] = {"--init", vad, NULL};
    assert_int_equal(train_kws_logged("never.model", misfit, "misfit.log"), 1);
    assert_int_equal(count_in_file("misfit.log", "does not fit the kws model"), 1);
    const char *const missing[] = {"--init", "/nonexistent/model.esm", NULL};
    assert_int_equal(train_kws_logged("never.model", missing, "missing.log"), 1);
    assert_int_equal(count_in_file("missing.log", "--init: /nonexistent/model.esm: cannot open"),
                     1);
    snprintf(vad, sizeof vad, "%s/never.model", folder);
    assert_int_not_equal(access(vad, F_OK), 0);
}

/* --init from an int8 model (format v4, as the shipped keyword model is)
 * starts from the floats its int8 weights stand for; --freeze 1 keeps the
 * first GRU exactly so while the layers above it train. --freeze without
 * --init, or past the layers --init gives, fails before training. */
static void test_freeze_keeps_an_int8_encoder(void **state) {
    (void)state;
    if (folder[0] == '\0') skip();
    train_kws_threaded("enc.model", NULL, NULL, "enc.log");
    es_model *m = load("enc.model");
    es_error err;
    assert_int_equal(es_model_quantise(m, &err), ES_RNN_OK);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/enc8.model", folder);
    assert_int_equal(es_model_save(m, path, &err), ES_RNN_OK);
    es_model_destroy(m);
    es_model *enc = load("enc8.model");
    assert_true(es_model_is_quantised(enc));
    const char *const frozen[] = {"--init", path, "--freeze", "1", "--manifest-keywords-only",
                                  NULL};
    assert_int_equal(train_kws_logged("frozen.model", frozen, "frozen.log"), 0);
    es_model *head = load("frozen.model");
    assert_false(es_model_is_quantised(head));
    /* GRU params: W[3u][in], U[3u][u], b[3u], c[3u] (rnn.h) */
    const size_t u = (size_t)es_model_layer_units(enc, 0), in = (size_t)es_model_input_size(enc);
    const size_t first = 3 * u * in + 3 * u * u + 6 * u, second = 3 * u * u * 2 + 6 * u;
    assert_memory_equal(es_model_params(head), es_model_params(enc), first * sizeof(float));
    assert_memory_not_equal(es_model_params(head) + first, es_model_params(enc) + first,
                            second * sizeof(float));
    es_model_destroy(head);
    es_model_destroy(enc);

    const char *const too_many[] = {"--init", path, "--freeze", "3", "--manifest-keywords-only",
                                    NULL};
    assert_int_equal(train_kws_logged("never.model", too_many, "too-many.log"), 1);
    assert_int_equal(count_in_file("too-many.log", "--freeze 3: only the first 2 layers"), 1);
    const char *const no_init[] = {"--freeze", "1", NULL};
    assert_int_not_equal(train_kws_logged("never.model", no_init, "no-init.log"), 0);
    assert_int_equal(count_in_file("no-init.log", "--freeze needs --init"), 1);
}

/* --conv puts a convolution over 3 frames ahead of either task's recurrent
 * layers, or takes the VAD's away. */
static void test_conv_layer_is_chosen(void **state) {
    (void)state;
    if (folder[0] == '\0') skip();
    assert_int_equal(train_with("manifest.tsv", "kws", "kws-conv.model", "--conv", "8"), 0);
    es_model *m = load("kws-conv.model");
    assert_int_equal(es_model_layer_count(m), 4);
    assert_int_equal(es_model_layer_type(m, 0), ES_LAYER_CONV1D);
    assert_int_equal(es_model_layer_type(m, 1), ES_LAYER_GRU);
    assert_int_equal(es_model_layer_units(m, 1), 16); /* --small's width: not the conv's */
    assert_int_equal(es_model_output_size(m), 21);
    es_model_destroy(m);
    assert_int_equal(train_with("manifest.tsv", "vad", "vad-noconv.model", "--conv", "0"), 0);
    m = load("vad-noconv.model");
    assert_int_equal(es_model_layer_count(m), 2);
    assert_int_equal(es_model_layer_type(m, 0), ES_LAYER_GRU);
    es_model_destroy(m);
}

/* --stack K puts a STACK in front: the recurrent layers step once per K
 * frames, at the width they would have had without it. */
static void test_stack_layer_is_chosen(void **state) {
    (void)state;
    if (folder[0] == '\0') skip();
    assert_int_equal(train_with("manifest.tsv", "kws", "kws-stack.model", "--stack", "2"), 0);
    es_model *m = load("kws-stack.model");
    assert_int_equal(es_model_layer_count(m), 4);
    assert_int_equal(es_model_layer_type(m, 0), ES_LAYER_STACK);
    assert_int_equal(es_model_layer_units(m, 0), 2 * 40);
    assert_int_equal(es_model_layer_type(m, 1), ES_LAYER_GRU);
    assert_int_equal(es_model_layer_units(m, 1), 16);
    assert_int_equal(es_model_frame_stride(m), 2);
    es_model_destroy(m);
}

/* A checkpoint is the model as validated at that epoch: with one epoch, the
 * very model the run keeps. */
static void test_checkpoints_hold_the_validated_model(void **state) {
    (void)state;
    if (folder[0] == '\0') skip();
    assert_int_equal(train_with("manifest.tsv", "kws", "kws-ck.model", "--checkpoints", "1"), 0);
    es_model *kept = load("kws-ck.model");
    es_model *checkpoint = load("kws-ck.epoch1.model");
    assert_int_equal(es_model_param_count(checkpoint), es_model_param_count(kept));
    assert_memory_equal(es_model_params(checkpoint), es_model_params(kept),
                        sizeof(float) * es_model_param_count(kept));
    assert_string_equal(es_model_label(checkpoint, 1), es_model_label(kept, 1));
    es_model_destroy(checkpoint);
    es_model_destroy(kept);
}

static void test_bad_manifest_line_fails(void **state) {
    (void)state;
    if (folder[0] == '\0') skip();
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/bad.tsv", folder);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "kw-0-0.wav\ttrain\tkeyword\tyes\t0.4\t0.1\tespeak:en-us\n"); /* end < start */
    fclose(f);
    assert_int_equal(train("bad.tsv", "vad", "never.model"), 1);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "kw-0-0.wav\ttrain\tkeyword\n");
    fclose(f);
    assert_int_equal(train("bad.tsv", "vad", "never.model"), 1);
    assert_int_equal(train("missing.tsv", "vad", "never.model"), 1);
    snprintf(path, sizeof path, "%s/never.model", folder);
    assert_int_not_equal(access(path, F_OK), 0);
}

static void test_usage_errors(void **state) {
    (void)state;
    char *no_output[] = {"train", "manifest.tsv", NULL};
    assert_int_equal(es_cmd_train(2, no_output), 2);
    char *bad_task[] = {"train", "manifest.tsv", "-o", "x", "--task", "asr", NULL};
    assert_int_equal(es_cmd_train(6, bad_task), 2);
    /* Each of the trainer's numeric knobs is range-checked before any work. */
    const char *bad_values[][2] = {
        {"--min-snr", "31"},          {"--min-snr", "loud"},
        {"--keyword-weight", "0"},    {"--augment-ramp", "-1"},
        {"--patience", "0"},          {"--learning-rate", "2"},
        {"--kws-loss", "ctc"},        {"--clips", "0"},
        {"--hard-negatives", "-1"},   {"--weight-average", "1"},
        {"--weight-average", "-0.5"}, {"--conv", "-1"},
        {"--checkpoints", "-1"},      {"--lr-decay-every", "0"},
        {"--envelope", "1.5"},        {"--envelope", "-0.1"},
        {"--recorded-weight", "0"},   {"--recorded-weight", "x"},
    };
    for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        char *args[] = {"train", "manifest.tsv",           "-o",
                        "x",     (char *)bad_values[i][0], (char *)bad_values[i][1],
                        NULL};
        assert_int_equal(es_cmd_train(6, args), 2);
    }
    char *help[] = {"train", "--help", NULL};
    assert_int_equal(es_cmd_train(2, help), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vad_one_epoch_writes_a_speech_model),
        cmocka_unit_test(test_kws_one_epoch_writes_filler_and_keywords),
        cmocka_unit_test(test_kws_frame_targets_train_too),
        cmocka_unit_test(test_same_seed_same_model_with_builder_threads),
        cmocka_unit_test(test_init_starts_from_a_trained_model),
        cmocka_unit_test(test_freeze_keeps_an_int8_encoder),
        cmocka_unit_test(test_hard_negative_rounds_run_reproducibly),
        cmocka_unit_test(test_learning_rate_falls_at_the_chosen_pace),
        cmocka_unit_test(test_envelope_is_off_to_the_last_draw),
        cmocka_unit_test(test_recorded_voices_weigh_as_asked),
        cmocka_unit_test(test_conv_layer_is_chosen),
        cmocka_unit_test(test_stack_layer_is_chosen),
        cmocka_unit_test(test_checkpoints_hold_the_validated_model),
        cmocka_unit_test(test_bad_manifest_line_fails),
        cmocka_unit_test(test_usage_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
