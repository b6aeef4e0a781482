/* `earshot train-keyword` end to end with a tiny budget: the model it writes
 * loads with the outputs filler and the phrase, carries its calibrated
 * threshold, comes with a model card, and `earshot file` finds the phrase in
 * a clip synthesised here; phrases it cannot use are usage errors (exit 2). */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "synth_folder.h"

#include "commands.h"
#include "stream.h"
#include "rnn.h"

#define PHRASE "hey nova"

static char folder[PATH_MAX];

static int run(const char *command) {
    return system(command);
}

static int setup(void **state) {
    (void)state;
    return synth_folder_make(folder, sizeof folder, "train-keyword-test");
}

static int teardown(void **state) {
    (void)state;
    return synth_folder_remove(folder);
}

static int train_keyword(const char *phrase, const char *model, const char *work) {
    /* A few seconds of keyword-free audio cannot show 0.5 false alarms per
     * hour: the rate allowed here (calibrated at half of it) is one or two
     * alarms, so the threshold stays usable. --small trains a fixed number of epochs:
     * deterministic. Two made voices: the path they take through espeak-ng is tested below. */
    char *argv[] = {"train-keyword",
                    (char *)phrase,
                    "-o",
                    (char *)model,
                    "--small",
                    "--data",
                    "none",
                    "--seed",
                    "2",
                    "--work",
                    (char *)work,
                    "--made-voices",
                    "2",
                    "--max-false-alarms",
                    "600",
                    NULL};
    return es_cmd_train_keyword((int)(sizeof argv / sizeof argv[0]) - 1, argv);
}

static void test_unusable_phrases_are_usage_errors(void **state) {
    (void)state;
    const char *model = "/tmp/earshot-train-keyword-never.esm";
    const char *bad[] = {
        "",                                         /* empty */
        "   ",                                      /* no word */
        "one two three four five six",              /* too many words */
        "supercalifragilisticexpialidocious words", /* too many characters */
        "hey 9",                                    /* digits: numbers must be words */
        "hey, nova",                                /* labels forbid commas */
        "say \"hi\"",                               /* and quotes */
        "back\\slash",                              /* and backslashes */
        "caf\xc3\xa9",                              /* not English letters */
        "filler",                                   /* the filler output's name */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[] = {"train-keyword", (char *)bad[i], "-o", (char *)model, NULL};
        if (es_cmd_train_keyword(4, argv) != 2) fail_msg("phrase \"%s\" was not refused", bad[i]);
    }
    char *no_output[] = {"train-keyword", PHRASE, NULL};
    assert_int_equal(es_cmd_train_keyword(2, no_output), 2);
    char *two_phrases[] = {"train-keyword", "hey", "nova", "-o", (char *)model, NULL};
    assert_int_equal(es_cmd_train_keyword(5, two_phrases), 2);
    char *bad_made[] = {"train-keyword", PHRASE, "-o", (char *)model, "--made-voices", "-1", NULL};
    assert_int_equal(es_cmd_train_keyword(6, bad_made), 2);
    /* --init is checked before any synthesis: a missing model, or the VAD's. */
    char *missing_init[] = {"train-keyword",    PHRASE, "-o", (char *)model, "--init",
                            "/nonexistent.esm", NULL};
    assert_int_equal(es_cmd_train_keyword(6, missing_init), 1);
    char vad_path[PATH_MAX + 32];
    snprintf(vad_path, sizeof vad_path, "%s/vad.esm", folder[0] ? folder : "/tmp");
    es_model *vad = NULL;
    es_error err;
    assert_int_equal(es_pipeline_load_model(NULL, "vad", NULL, &vad, &err), ES_PIPELINE_OK);
    assert_int_equal(es_model_save(vad, vad_path, NULL), ES_RNN_OK);
    es_model_destroy(vad);
    char *vad_init[] = {"train-keyword", PHRASE, "-o", (char *)model, "--init", vad_path, NULL};
    assert_int_equal(es_cmd_train_keyword(6, vad_init), 1);
    remove(vad_path);
    /* --freeze keeps layers of a model to start from: none with --init none,
     * nor with --hidden (from scratch) unless --init names one. */
    char *freeze_none[] = {"train-keyword", PHRASE,     "-o", (char *)model, "--init",
                           "none",          "--freeze", "1",  NULL};
    assert_int_equal(es_cmd_train_keyword(8, freeze_none), 2);
    char *freeze_hidden[] = {"train-keyword", PHRASE, "-o", (char *)model, "--hidden", "32",
                             "--freeze",      "1",    NULL};
    assert_int_equal(es_cmd_train_keyword(8, freeze_hidden), 2);
    char *freeze_far[] = {"train-keyword", PHRASE, "-o", (char *)model, "--freeze", "3", NULL};
    assert_int_equal(es_cmd_train_keyword(6, freeze_far), 2);
    assert_int_not_equal(access(model, F_OK), 0);
}

static void test_tiny_budget_makes_a_model_that_finds_its_phrase(void **state) {
    (void)state;
    if (folder[0] == '\0') skip();
    char model_path[PATH_MAX + 32], card_path[PATH_MAX + 32];
    snprintf(model_path, sizeof model_path, "%s/hey-nova.esm", folder);
    snprintf(card_path, sizeof card_path, "%s/hey-nova.md", folder);
    char work[PATH_MAX + 32];
    snprintf(work, sizeof work, "%s/work", folder);
    assert_int_equal(train_keyword(PHRASE, model_path, work), 0);

    es_model *m = NULL;
    es_error err;
    assert_int_equal(es_model_load_file(model_path, &m, &err), ES_RNN_OK);
    assert_int_equal(es_model_output_size(m), 2);
    assert_string_equal(es_model_label(m, 0), "filler");
    assert_string_equal(es_model_label(m, 1), PHRASE);
    const float *thresholds = es_model_thresholds(m);
    assert_non_null(thresholds);
    assert_true(thresholds[1] > 0.0f && thresholds[1] <= 1.0f);
    /* ... and the smoothing it was calibrated with, one of those tried. */
    const int *smoothing = es_model_smoothing(m);
    assert_non_null(smoothing);
    assert_int_equal(smoothing[0], 0);
    assert_true(smoothing[1] >= 50 && smoothing[1] <= 300);
    const int smoothing_ms = smoothing[1];
    es_model_destroy(m);

    FILE *card = fopen(card_path, "r");
    assert_non_null(card);
    char text[16384];
    const size_t length = fread(text, 1, sizeof text - 1, card);
    text[length] = '\0';
    fclose(card);
    assert_non_null(strstr(text, "# Keyword model: \"" PHRASE "\""));
    assert_non_null(strstr(text, "false alarms / hour"));
    /* From scratch on synthesised audio alone: no recorded speech to credit
     * (with --init builtin or data/ the card credits Speech Commands, FSDD
     * and Mycroft's recordings). */
    assert_null(strstr(text, "**Credits.**"));
    /* The small run's two made variants train beside espeak-ng's own, and every
     * train voice said all of its positives (8 each in a small run). */
    const char *voices_line = strstr(text, "- Voices: ");
    assert_non_null(voices_line);
    int train_voices = 0, made = 0, train_positives = 0;
    assert_int_equal(sscanf(strchr(voices_line, ':') + 1,
                            "%*[^:]: %d train (%d of them variants made at random", &train_voices,
                            &made),
                     2);
    assert_int_equal(made, 2);
    const char *positives_line = strstr(text, "- Positives ");
    assert_non_null(positives_line);
    assert_int_equal(sscanf(strstr(positives_line, "): ") + 3, "%d train", &train_positives), 1);
    assert_int_equal(train_positives, 8 * train_voices);
    /* The made variants are voices of their own: espeak-ng, given a variant it
     * cannot find or list, speaks the accent's default voice without a word. */
    char speak[6 * PATH_MAX + 512];
    snprintf(speak, sizeof speak,
             "for v in en-us+made0 en-us+made1 en-us; do espeak-ng --path='%s/espeak' -v $v "
             "-w '%s/'$v.wav 'hey nova' || exit 1; done; "
             "! cmp -s '%s/en-us+made0.wav' '%s/en-us+made1.wav' && "
             "! cmp -s '%s/en-us+made0.wav' '%s/en-us.wav'",
             work, folder, folder, folder, folder, folder);
    assert_int_equal(run(speak), 0);
    char chosen[64];
    snprintf(chosen, sizeof chosen, "| %d ms (chosen) |", smoothing_ms);
    assert_non_null(strstr(text, chosen));
    /* The test voices' confusables are judged apart: "accepted/said (share %)". */
    const char *test_row = strstr(text, "| test (voices never used) |");
    assert_non_null(test_row);
    char row[512];
    snprintf(row, sizeof row, "%.*s", (int)strcspn(test_row, "\n"), test_row);
    row[strlen(row) - 1] = '\0'; /* the closing '|' */
    const char *last_cell = strrchr(row, '|');
    assert_non_null(last_cell);
    int accepted = -1, said = -1;
    assert_int_equal(sscanf(last_cell, "| %d/%d (", &accepted, &said), 2);
    assert_true(said > 0 && accepted >= 0 && accepted <= said);
    /* Recall in quiet and in noise: the two cells' positives add up to the row's. */
    const char *const rows[] = {"| calibration (valid split) |", "| test (voices never used) |"};
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        const char *cell = strstr(text, rows[r]);
        assert_non_null(cell);
        cell += strlen(rows[r]);
        int voices = 0, positives = 0, hits[2] = {0, 0}, of[2] = {0, 0};
        double recall = 0;
        assert_int_equal(sscanf(cell, " %d | %d | %lf |", &voices, &positives, &recall), 3);
        for (int skip = 0; skip < 3; skip++)
            cell = strchr(cell, '|') + 1;
        for (int part = 0; part < 2; part++) {
            if (sscanf(cell, " %d/%d (", &hits[part], &of[part]) != 2)
                assert_int_equal(strncmp(cell, " - |", 4), 0); /* none of that kind */
            assert_true(hits[part] >= 0 && hits[part] <= of[part]);
            cell = strchr(cell, '|') + 1;
        }
        assert_int_equal(of[0] + of[1], positives);
        assert_true(of[1] > 0); /* a third of the stream's clips are mixed with noise */
        assert_true(fabs((double)(hits[0] + hits[1]) / positives - recall) < 0.001);
    }
    /* ... and by kind of near miss: the kinds add up to the whole. */
    const char *by_kind = strstr(text, "### Confusables by kind");
    assert_non_null(by_kind);
    const char *kind_row = strstr(by_kind, "|---|");
    assert_non_null(kind_row);
    int kinds = 0, accepted_sum = 0, said_sum = 0;
    for (kind_row = strchr(kind_row, '\n') + 1; kind_row[0] == '|';
         kind_row = strchr(kind_row, '\n') + 1) {
        /* "| kind | phrases | a/b (x %) |": the third cell. */
        const char *share = strchr(strchr(kind_row + 1, '|') + 1, '|');
        assert_non_null(share);
        int a = 0, b = 0;
        if (sscanf(share, "| %d/%d (", &a, &b) == 2) {
            accepted_sum += a;
            said_sum += b;
        }
        kinds++;
    }
    assert_true(kinds >= 2);
    assert_int_equal(said_sum, said);
    assert_int_equal(accepted_sum, accepted);

    /* The phrase twice, by a voice the small run trains on, with pauses. */
    char command[9 * PATH_MAX + 512];
    snprintf(command, sizeof command,
             "espeak-ng -v en-029+Alex -w '%s/say.wav' 'hey nova' && "
             "sox -n -r 22050 -c 1 '%s/pause.wav' trim 0 1.5 && "
             "sox '%s/pause.wav' '%s/say.wav' '%s/pause.wav' '%s/say.wav' '%s/pause.wav' "
             "-r 16000 '%s/clip.wav'",
             folder, folder, folder, folder, folder, folder, folder, folder);
    assert_int_equal(run(command), 0);
    char clip[PATH_MAX + 32], events[PATH_MAX + 32];
    snprintf(clip, sizeof clip, "%s/clip.wav", folder);
    snprintf(events, sizeof events, "%s/events.jsonl", folder);
    char *argv[] = {"file", "--kws-model", model_path, "-o", events, clip, NULL};
    assert_int_equal(es_cmd_file(6, argv), 0);
    FILE *f = fopen(events, "r");
    assert_non_null(f);
    int found = 0;
    char line[1024];
    while (fgets(line, sizeof line, f))
        found += strstr(line, "\"keyword\":\"" PHRASE "\"") != NULL;
    fclose(f);
    if (found < 1) fail_msg("\"%s\" was not found in the synthesised clip", PHRASE);
}

/* argv[1], if given, selects tests by name pattern (keyword.cmake runs the
 * quick ones alone in the sanitizer build). */
int main(int argc, char **argv) {
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unusable_phrases_are_usage_errors),
        cmocka_unit_test(test_tiny_budget_makes_a_model_that_finds_its_phrase),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
