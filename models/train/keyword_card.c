/*
 * train-keyword's evaluation (factory.h, steps 4-6): the valid and test
 * streams through calibrate.h, and the model card written from their
 * figures.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyword_internal.h"

/* ---- evaluation streams (factory.h) -------------------------------------------------- */

/* Items of one split: this run's clips (positives say the phrase, keyword
 * column 0, over the whole clip; confusables are near misses) and data/'s,
 * noise and music too: alone, as a stream of a quiet room or a radio has them. */
static int collect_items(const job_list *jobs, const data_set *data, const char *work, int split,
                         es_cal_item **items, char ***owned, int *count, int *owned_count) {
    *count = *owned_count = 0;
    const int capacity = jobs->count + (data ? data->count : 0) + 1;
    *items = calloc((size_t)capacity, sizeof(es_cal_item));
    *owned = calloc((size_t)capacity, sizeof(char *));
    if (!*items || !*owned) return -1;
    for (int i = 0; i < jobs->count; i++) {
        const render_job *j = &jobs->items[i];
        if (j->split != split || j->duration_s <= 0) continue;
        char *path = malloc(strlen(work) + strlen(j->path) + 2);
        if (!path) return -1;
        sprintf(path, "%s/%s", work, j->path);
        (*owned)[(*owned_count)++] = path;
        (*items)[(*count)++] =
            (es_cal_item){.path = path,
                          .keyword = j->kind == CLIP_POSITIVE ? 0 : -1,
                          .speed = 1.0f,
                          .near_miss = j->kind == CLIP_CONFUSABLE ? 1 + j->confusable : 0};
    }
    for (int i = 0; data && i < data->count; i++)
        if (data->items[i].split == split)
            (*items)[(*count)++] =
                (es_cal_item){.path = data->items[i].path, .keyword = -1, .speed = 1.0f};
    return 0;
}

#define MAX_NOISES 512

static int load_noises(const job_list *jobs, const data_set *data, const char *work, int split,
                       es_cal_noises *noises) {
    char path[4096 + 80];
    for (int i = 0; i < jobs->count && noises->count < MAX_NOISES; i++) {
        const render_job *j = &jobs->items[i];
        if (j->split != split || j->kind != CLIP_NOISE || j->duration_s <= 0) continue;
        snprintf(path, sizeof path, "%s/%s", work, j->path);
        if (es_cal_noises_add(noises, path) < 0) return -1;
    }
    for (int i = 0; data && i < data->count && noises->count < MAX_NOISES; i++) {
        if (data->items[i].split != split || data->items[i].kind != CLIP_NOISE) continue;
        if (es_cal_noises_add(noises, data->items[i].path) < 0) return -1;
    }
    return 0;
}

/* A split's stream: its speech clips, a third of them mixed with its noises,
 * `passes` times (es_cal_items_replay). */
int evaluate_split(const es_model *model, const job_list *jobs, const data_set *data,
                   const char *work, int split, int passes, uint64_t seed, es_cal_stream *stream,
                   es_error *err) {
    es_cal_item *items = NULL;
    char **owned = NULL;
    int count = 0, owned_count = 0;
    es_cal_noises noises = {0};
    es_error stream_err = {ES_CAL_ERR_NOMEM, "out of memory"};
    int rc = collect_items(jobs, data, work, split, &items, &owned, &count, &owned_count);
    if (rc == 0) rc = es_cal_items_replay(&items, &count, passes, seed ^ 0x73706565ULL);
    if (rc == 0) rc = load_noises(jobs, data, work, split, &noises);
    if (rc == 0)
        rc = es_cal_run_stream(model, items, count, &noises, seed, NULL, NULL, stream, &stream_err);
    if (rc)
        es_error_set(err, ES_KEYWORD_ERR_FAILED, "the %s stream: %s", es_split_names[split],
                     stream_err.why);
    es_cal_noises_free(&noises);
    for (int i = 0; i < owned_count; i++)
        free(owned[i]);
    free(owned);
    free(items);
    return rc;
}

/* The detector's moving average of the posterior, tried from the default up
 * (es_cal_calibrate_smoothing): a phrase of two or three words is said over
 * half a second or more, most keyword-like peaks of other speech are
 * briefer. Chosen on the valid split (the one that found most, of equals the
 * shorter), "hey nova", "computer" and "open sesame" found 8, 4 and 6 more of
 * their 160 test positives than at 50 ms (2026-12-03, README). */
const int smoothing_tried[] = {50, 100, 150, 200, 300};

/* The phrase (column 0) at `threshold`, smoothed over `smooth_ms`. */
es_cal_counts detect_at(const es_cal_stream *stream, float threshold, int smooth_ms) {
    es_cal_counts counts;
    if (es_cal_detect(stream, 0, threshold, smooth_ms, &counts) != 0)
        counts = (es_cal_counts){.positives = stream->positives[0],
                                 .hits = -1,
                                 .false_alarms = -1,
                                 .near_misses = stream->near_misses,
                                 .accepted = -1};
    return counts;
}

/* ---- model card -------------------------------------------------------------------------- */

void es_keyword_card_path(const char *model_path, char *out, size_t size) {
    snprintf(out, size, "%s", model_path);
    char *slash = strrchr(out, '/');
    char *dot = strrchr(out, '.');
    if (dot && (!slash || dot > slash)) *dot = '\0';
    strncat(out, ".md", size - strlen(out) - 1);
}

/* "a/b (x %)", or "-" without any. */
static const char *share_text(int accepted, int of, char *out, size_t size) {
    if (of <= 0 || accepted < 0)
        snprintf(out, size, "-");
    else
        snprintf(out, size, "%d/%d (%.1f %%)", accepted, of, 100.0 * accepted / of);
    return out;
}

static const char *accepted_text(const es_cal_counts *c, char *out, size_t size) {
    return share_text(c->accepted, c->near_misses, out, size);
}

/* Recall on the positives heard in quiet and on those mixed with noise. */
static const char *recall_by_noise_text(const es_cal_counts *c, char *out, size_t size) {
    char quiet[32], noisy[32];
    share_text(c->hits - c->hits_in_noise, c->positives - c->positives_in_noise, quiet,
               sizeof quiet);
    share_text(c->hits_in_noise, c->positives_in_noise, noisy, sizeof noisy);
    snprintf(out, size, "%s | %s", quiet, noisy);
    return out;
}

/* The recorded speech behind the model, whose licences ask for credit: the
 * built-in model's layers (--init builtin) and data/'s real clips. */
static void write_credits(FILE *file, const es_keyword_params *opt) {
    const int builtin = opt->init_path && strcmp(opt->init_path, "builtin") == 0;
    if (!builtin && !opt->data_dir) return;
    fprintf(file,
            "\n**Credits.** %s Speech Commands (Pete Warden, Google; CC-BY-4.0), the Free Spoken "
            "Digit Dataset (Zohar Jackson et al.; CC-BY-SA-4.0) and Mycroft Precise community "
            "data (not-wake-words; public domain)%s.\n",
            builtin ? "Its first layers come from the built-in keyword model (models/kws.md), "
                      "trained with"
                    : "Its keyword-free training audio includes",
            builtin && opt->data_dir ? ", whose clips are also among its keyword-free audio" : "");
    if (opt->init_path && !builtin)
        fprintf(file,
                "\nIts first layers come from %s: its card lists what that was trained "
                "on.\n",
                opt->init_path);
}

/* The options that shaped the model, as the card's command line shows them. */
static const char *model_options_text(const es_keyword_params *opt, char *out, size_t size) {
    if (opt->init_path && opt->freeze)
        snprintf(out, size, " --init %s --freeze %d", opt->init_path, opt->freeze);
    else if (opt->init_path)
        snprintf(out, size, " --init %s", opt->init_path);
    else
        snprintf(out, size, " --hidden %d", opt->hidden);
    if (opt->made_voices)
        snprintf(out + strlen(out), size - strlen(out), " --made-voices %d", opt->made_voices);
    if (opt->small) snprintf(out + strlen(out), size - strlen(out), " --small");
    return out;
}

/* Over 80 lines: the card is one template, kept whole so that the code reads
 * as the card does. */
int write_card(const es_keyword_params *opt, const run_figures *f, const char *path,
               es_error *err) {
    FILE *file = fopen(path, "w");
    if (!file)
        return es_error_set(err, ES_KEYWORD_ERR_FAILED, "cannot create %s: %s", path,
                            strerror(errno));
    const double test_recall =
        f->test_at.positives ? (double)f->test_at.hits / f->test_at.positives : NAN;
    const es_cal_counts *valid_at = &f->calibrated.counts[0];
    const double valid_recall =
        valid_at->positives ? (double)valid_at->hits / valid_at->positives : NAN;
    char valid_accepted[64], test_accepted[64], valid_by_noise[96], test_by_noise[96];
    char model_options[4096 + 64];
    fprintf(file,
            "# Keyword model: \"%s\"\n\n"
            "Made by `earshot train-keyword \"%s\" -o %s --minutes %g --seed %d%s` "
            "in %.1f minutes (%.1f of them training). Outputs: `filler`, `%s`. The detection "
            "threshold and smoothing travel in the model file; `--kw-threshold-for \"%s=P\"` "
            "overrides the threshold.\n\n"
            "## Figures\n\n"
            "| | voices | positives | recall | in quiet | in noise (5-20 dB) | false alarms | "
            "keyword-free audio | false alarms / hour | confusables accepted |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n"
            "| calibration (valid split) | %d | %d | %.3f | %s | %d | %.2f h | %.2f | %s |\n"
            "| test (voices never used) | %d | %d | %.3f | %s | %d | %.2f h | %.2f | %s |\n\n"
            "Threshold **%.3f** with the posterior smoothed over **%d ms**: the lowest threshold "
            "that keeps false alarms on the calibration stream's keyword-free speech, music and "
            "noise at or under %.2f per hour%s (half the %.2f asked for: voices never heard "
            "fired up to 3.5 times as often as the calibration voices), at the smoothing (of "
            "those below) that finds the "
            "most positives there, and the detector's 1 s refractory period. Both travel in the "
            "model file. A positive counts as "
            "found when the detector fires between the start of its clip and half a second "
            "after its end; *in noise*: the third of the stream's clips mixed with the split's "
            "noise (music, effects, generated) at 5-20 dB SNR. Confusables (near misses made from "
            "the phrase: its words alone, "
            "one-phoneme neighbours) are judged per clip: *accepted* when the detector fires "
            "inside one; their time is not counted as keyword-free audio, as a stream of "
            "nothing but near misses is far denser in them than any conversation. Every other "
            "event is a false alarm.\n\n",
            opt->phrase, opt->phrase, opt->output_path, opt->minutes, opt->seed,
            model_options_text(opt, model_options, sizeof model_options), f->total_minutes,
            f->train_minutes, opt->phrase, opt->phrase, f->voices[ES_SPLIT_VALID],
            valid_at->positives, valid_recall,
            recall_by_noise_text(valid_at, valid_by_noise, sizeof valid_by_noise),
            valid_at->false_alarms, f->valid->negative_seconds / 3600,
            es_cal_per_hour(valid_at->false_alarms, f->valid->negative_seconds),
            accepted_text(valid_at, valid_accepted, sizeof valid_accepted),
            f->voices[ES_SPLIT_TEST], f->test_at.positives, test_recall,
            recall_by_noise_text(&f->test_at, test_by_noise, sizeof test_by_noise),
            f->test_at.false_alarms, f->test->negative_seconds / 3600,
            es_cal_per_hour(f->test_at.false_alarms, f->test->negative_seconds),
            accepted_text(&f->test_at, test_accepted, sizeof test_accepted),
            (double)f->calibrated.thresholds[0], f->calibrated.smooth_ms,
            (double)calibration_target(opt),
            f->calibrated.met ? "" : " (**not met**: even the highest threshold tried exceeds it)",
            (double)opt->max_alarms_per_hour);
    fprintf(file, "### Smoothing tried (calibration stream)\n\n"
                  "| smoothing | threshold | recall | false alarms / hour |\n"
                  "|---|---|---|---|\n");
    for (int i = 0; i < SMOOTHING_COUNT; i++) {
        const es_cal_result *t = &f->smoothing_trials[i];
        fprintf(file, "| %d ms%s | %.3f | %.3f | %.2f |\n", t->smooth_ms,
                t->smooth_ms == f->calibrated.smooth_ms ? " (chosen)" : "",
                (double)t->thresholds[0], t->positives ? (double)t->hits / t->positives : NAN,
                es_cal_per_hour(t->false_alarms, f->valid->negative_seconds));
    }
    fprintf(file, "\n");
    /* Which near misses it takes for the phrase: where a deployment will hear them. */
    fprintf(file, "### Confusables by kind (test split, at the threshold)\n\n"
                  "| kind | phrases | accepted |\n"
                  "|---|---|---|\n");
    for (int k = 0; k < CONFUSABLE_KINDS; k++) {
        if (f->confusable_phrases_of_kind[k] == 0) continue;
        char accepted[64];
        fprintf(file, "| %s | %d | %s |\n", confusable_kind_names[k],
                f->confusable_phrases_of_kind[k],
                share_text(f->test_at.accepted_of_kind[k], f->test_at.near_misses_of_kind[k],
                           accepted, sizeof accepted));
    }
    fprintf(file,
            "\n## Data\n\n"
            "- Phonemes (espeak-ng `-x`): `%s`.\n"
            "- Voices: espeak-ng English accents x variants and flite's allowed voices, split by "
            "variant as scripts/data.sh splits them: %d train (%d of them variants made at "
            "random: formants, pitch, echo, synthesiser), %d valid, %d test.\n"
            "- Positives (the phrase alone, random rate and pitch): %d train, %d valid, %d "
            "test.\n"
            "- Confusables (%d phrases from its words and phonemes: words alone and beside "
            "others, first and last parts, single-phoneme substitutions and deletions): %d "
            "train, %d valid, %d test clips; training has the words and parts alone, the "
            "single-phoneme neighbours are for calibration and test.\n"
            "- Keyword-free speech and noise: %s (%d clips%s).\n"
            "- Calibration and test streams: every clip of the split (noise and music alone "
            "too) in random order, 0.3-1 s apart, a third of them mixed with the split's noise at "
            "5-20 dB SNR, then faint noise; "
            "training adds reverberation, band limits, noise, gain, speed, warping and masks "
            "(`earshot train`).\n\n"
            "## Limits\n\n"
            "All figures above are on synthetic voices: this phrase's real recordings are "
            "not at hand here. Where they are, `scripts/keyword-real-eval.sh \"PHRASE\" "
            "MODEL` measures them. Models made by the default recipe (`--init builtin "
            "--freeze 1`, 2026-12-07) found, of real people's recordings at their calibrated "
            "thresholds, 47 %% of \"computer\" clean and 23 %% at 10 dB SNR, 23 %% and 14 %% "
            "of \"athena\", 73 %% and 55 %% of \"hey chatterbox\" (README, \"Custom "
            "keywords\"), against 90-98 %% of synthetic test voices: expect lower recall on "
            "real voices than the figures above.\n",
            f->phonemes, f->voices[ES_SPLIT_TRAIN], f->made_voices, f->voices[ES_SPLIT_VALID],
            f->voices[ES_SPLIT_TEST], f->positives[ES_SPLIT_TRAIN], f->positives[ES_SPLIT_VALID],
            f->positives[ES_SPLIT_TEST], f->confusable_phrases, f->confusable_clips[ES_SPLIT_TRAIN],
            f->confusable_clips[ES_SPLIT_VALID], f->confusable_clips[ES_SPLIT_TEST],
            opt->data_dir ? "scripts/data.sh's sentences, other keywords, real speech and noise"
                          : "synthesised word sequences and generated noise (no data/ found)",
            f->data_clips, f->data_excluded ? "; sentences that say the phrase left out" : "");
    write_credits(file, opt);
    /* Other thresholds show what a looser false-alarm budget would buy. */
    fprintf(file, "\n## Other thresholds (test split)\n\n"
                  "| threshold | recall | false alarms / hour | confusables accepted |\n"
                  "|---|---|---|---|\n");
    static const float others[] = {0.3f, 0.5f, 0.7f, 0.8f, 0.9f, 0.95f};
    for (size_t i = 0; i < COUNT_OF(others); i++) {
        const es_cal_counts d = detect_at(f->test, others[i], f->calibrated.smooth_ms);
        char accepted[64];
        fprintf(file, "| %.2f | %.3f | %.2f | %s |\n", (double)others[i],
                d.positives ? (double)d.hits / d.positives : NAN,
                es_cal_per_hour(d.false_alarms, f->test->negative_seconds),
                accepted_text(&d, accepted, sizeof accepted));
    }
    if (fclose(file) != 0) return es_error_set(err, ES_KEYWORD_ERR_FAILED, "cannot write %s", path);
    return 0;
}
