/*
 * train-keyword's run (factory.h): the checks, the work folder, then each
 * step in turn (clips, training, calibration, test, outputs), stopping at
 * the next step when asked to.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "keyword_internal.h"
#include "stream.h"

/* The false alarms per hour calibration allows on the valid voices: half what
 * was asked for. Voices never heard fire more often than those the threshold
 * is set on (on the test split 1.9-3.5 times as often for "open sesame", in
 * runs whose calibration stream held 0.45-0.48 per hour), and a user's voices
 * are never heard. */
#define CALIBRATION_MARGIN 0.5f

float calibration_target(const es_keyword_params *opt) {
    return CALIBRATION_MARGIN * opt->max_alarms_per_hour;
}

void es_keyword_params_default(es_keyword_params *params) {
    *params = (es_keyword_params){
        .minutes = 15.0f, .max_alarms_per_hour = 0.5f, .seed = 1, .threads = 2, .hidden = 64};
}

void kw_note(const keyword_ctx *ctx, const char *fmt, ...) {
    if (!ctx->hooks || !ctx->hooks->note) return;
    char text[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(text, sizeof text, fmt, args);
    va_end(args);
    ctx->hooks->note(text, ctx->hooks->user);
}

int kw_stopped(const keyword_ctx *ctx) {
    return ctx->opt->stop && *ctx->opt->stop;
}

void format_duration(double s, char *buf, size_t size) {
    if (!(s >= 0))
        snprintf(buf, size, "?");
    else if (s < 120)
        snprintf(buf, size, "%.0f s", s);
    else
        snprintf(buf, size, "%.1f min", s / 60);
}

int es_keyword_normalise_phrase(const char *text, char *phrase, es_error *err) {
    size_t length = 0;
    int words = 0, in_word = 0;
    for (const char *c = text; *c; c++) {
        const unsigned char ch = (unsigned char)*c;
        if (ch == ' ' || ch == '\t') {
            in_word = 0;
            continue;
        }
        const int letter = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
        if (!letter && !((ch == '\'' || ch == '-') && in_word)) {
            if (ch >= 0x20 && ch < 0x7f)
                es_error_set(err, ES_KEYWORD_ERR_USAGE,
                             "'%c' in \"%s\" cannot be used: a phrase is words of "
                             "letters (apostrophes and hyphens inside words; numbers as words)",
                             ch, text);
            else
                es_error_set(err, ES_KEYWORD_ERR_USAGE,
                             "\"%s\" has a character other than English letters, "
                             "spaces, apostrophes and hyphens (byte 0x%02x)",
                             text, ch);
            return ES_KEYWORD_ERR_USAGE;
        }
        if (!in_word) {
            words++;
            if (length > 0 && length < MAX_PHRASE_BYTES + 1) phrase[length++] = ' ';
            in_word = 1;
        }
        if (length < MAX_PHRASE_BYTES + 1) phrase[length++] = (char)(letter ? ch | 0x20 : ch);
    }
    if (words == 0) {
        es_error_set(err, ES_KEYWORD_ERR_USAGE, "the phrase is empty");
        return ES_KEYWORD_ERR_USAGE;
    }
    if (length > MAX_PHRASE_BYTES || words > MAX_PHRASE_WORDS) {
        es_error_set(err, ES_KEYWORD_ERR_USAGE,
                     "\"%s\" is too long: at most %d words and %d characters", text,
                     MAX_PHRASE_WORDS, MAX_PHRASE_BYTES);
        return ES_KEYWORD_ERR_USAGE;
    }
    phrase[length] = '\0';
    if (phrase[length - 1] == '\'' || phrase[length - 1] == '-') {
        es_error_set(err, ES_KEYWORD_ERR_USAGE, "\"%s\" ends with '%c'", text, phrase[length - 1]);
        return ES_KEYWORD_ERR_USAGE;
    }
    if (!es_kws_label_is_keyword(phrase)) {
        es_error_set(err, ES_KEYWORD_ERR_USAGE, "\"%s\" names the filler output, not a keyword",
                     phrase);
        return ES_KEYWORD_ERR_USAGE;
    }
    return 0;
}

static int remove_entry(const char *path, const struct stat *info, int flag, struct FTW *ftw) {
    (void)info;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Plans the clips: per voice, positives and confusables; word sequences and
 * noise when there is no data/. */
static int plan_jobs(const es_keyword_params *opt, const voice_list *voices,
                     const confusables *conf, es_rng *rng, job_list *jobs) {
    const int per_voice = opt->small ? 8 : 2;
    for (int i = 0; i < voices->count; i++) {
        const voice *v = &voices->items[i];
        const int flite = v->engine == ENGINE_FLITE;
        /* Three flite voices against ~800 espeak ones: each says more. */
        const int positives = flite && !opt->small ? 30 : per_voice;
        const int confusable = flite && !opt->small ? 20 : per_voice;
        for (int k = 0; k < positives; k++)
            if (!job_add(jobs, v, CLIP_POSITIVE, v->split, opt->phrase, rng)) return -1;
        /* flite says plain text only; training voices only what is trained on. */
        const int choices = flite                        ? conf->text_count
                            : v->split == ES_SPLIT_TRAIN ? conf->trained_count
                                                         : conf->count;
        for (int k = 0; k < confusable && choices > 0; k++) {
            const int which = es_rng_below(rng, choices);
            render_job *j = job_add(jobs, v, CLIP_CONFUSABLE, v->split, conf->items[which], rng);
            if (!j) return -1;
            j->confusable = conf->kinds[which];
        }
        /* Made voices say no sentence of data/'s: one of common words each, lest
         * their timbre alone come to mean the phrase. */
        if (!opt->data_dir || v->made) {
            char sentence[256] = "";
            const int words = 5 + es_rng_below(rng, 5);
            for (int w = 0; w < words; w++) {
                strcat(sentence, w ? " " : "");
                strcat(sentence, other_word(opt->phrase, rng));
            }
            if (!job_add(jobs, v, CLIP_SENTENCE, v->split, sentence, rng)) return -1;
        }
    }
    if (!opt->data_dir) {
        static const char *const colours[] = {"whitenoise", "pinknoise", "brownnoise"};
        for (int split = 0; split < ES_SPLIT_COUNT; split++)
            for (size_t c = 0; c < COUNT_OF(colours); c++) {
                char args[96];
                snprintf(args, sizeof args, "20 %s vol 0.3", colours[c]);
                if (!job_add(jobs, NULL, CLIP_NOISE, split, args, rng)) return -1;
            }
    }
    return 0;
}

/* The training step: `earshot train`'s library call on the run's manifest,
 * printed as `earshot train` prints it, stopped by this command's signals. */

/* The training step: es_train_model on the run's manifest, told through
 * the caller's training hooks and stopped by its stop flag. */
static int train_model(const keyword_ctx *ctx, const char *manifest, const char *model_path,
                       double minutes, es_error *err) {
    const es_keyword_params *opt = ctx->opt;
    es_train_params params;
    es_train_params_default(&params);
    params.manifest_path = manifest;
    params.output_path = model_path;
    params.task = ES_TRAIN_KWS;
    params.manifest_keywords_only = 1;
    params.kws_frame_targets = 1;
    params.stop = opt->stop;
    if (!opt->small) {
        /* The budget, not the trainer's default 30 epochs, ends the run (to
         * the hundredth of a minute, as it always was). */
        char minutes_text[32];
        snprintf(minutes_text, sizeof minutes_text, "%.2f", minutes);
        params.minutes = strtof(minutes_text, NULL);
        params.epochs = 1000;
        /* Nor early stopping: one phrase's validation recall moves by several
         * points from epoch to epoch while the model still improves (a run
         * stopped after 1 of its 12.6 minutes at "best" epoch 4). */
        params.patience = 1000;
    }
    params.seed = (uint64_t)opt->seed;
    params.threads = opt->threads;
    params.init_path = opt->init_path;
    params.freeze = opt->freeze;
    if (!opt->init_path) params.hidden = opt->small ? 32 : opt->hidden;
    params.clips_per_epoch = opt->small ? 128 : 1500;
    /* Per-frame targets at a high rate: on "hey nova" they beat the default
     * (0.002, and max-pooling after a warm-up) epoch for epoch in a
     * 15-minute budget (validation metric 0.11 against 0.02 after 6 epochs). */
    params.learning_rate = opt->small ? 0.01f : 0.005f;
    /* Each keyword-free sequence's most keyword-like frame weighs 21 frames, as
     * for the built-in model: on "hey nova" false alarms at threshold 0.5 fell
     * from 83 to 11 per hour of the test stream (confusables counted in) at the
     * same recall (94-96 %), and on data/eval's 5 h of keyword-free audio from
     * 34 to 1 at 0.9. A weight of 50 did no better. */
    params.negative_peak_weight = 20.0f;
    /* Every 10 epochs the sentences the model finds most like the phrase
     * come back more often (hard negatives): the few that set the
     * calibrated threshold are rare in a random draw. */
    params.hard_negative_epochs = 10;
    /* Validate and keep a running average of the weights, not the last
     * step's: the epoch-to-epoch swing of the validation metric fell from
     * 0.055 to 0.018 (hey nova), and on the test split the three phrases
     * went from 74.4 / 88.7 / 65.6 % at 0.68 / 0.46 / 0.45 false alarms per
     * hour to 73.8 / 88.1 / 75.0 % at 0.45 / 0.23 / 0.23, with 2 false
     * alarms instead of 9 on data/eval's unseen 5 hours (README). */
    params.average_decay = 0.995f;
    if (opt->small) {
        /* A fixed amount of work rather than of time: the same model on a busy machine. */
        params.epochs = 40;
        params.batch_size = 16;
    }
    return es_train_model(&params, ctx->hooks ? ctx->hooks->train : NULL, err);
}

/* --init before the synthesis, not after it: a model the front end can feed,
 * whose first layer is the GRU the keyword model starts with. */
static int check_init_model(const char *path, es_error *err) {
    es_error load_err = {0};
    es_model *m = NULL;
    if (es_pipeline_load_model(path, "kws", NULL, &m, &load_err) != ES_PIPELINE_OK)
        return es_error_set(err, ES_KEYWORD_ERR_FAILED, "--init: %s", load_err.why);
    const int fits = es_model_layer_type(m, 0) == ES_LAYER_GRU;
    if (!fits)
        es_error_set(err, ES_KEYWORD_ERR_FAILED, "--init: %s: its first layer is a %s, not a GRU",
                     path, es_layer_type_name(es_model_layer_type(m, 0)));
    es_model_destroy(m);
    return fits ? 0 : ES_KEYWORD_ERR_FAILED;
}

/* ---- the run --------------------------------------------------------------------------- */

/* Everything a run makes, freed at its end. */
typedef struct keyword_run {
    keyword_ctx ctx;
    double started;
    char work[4096];
    int own_work; /* a temporary folder, removed at the end */
    char *phonemes;
    const char *trimmed; /* the phonemes without leading spaces */
    es_rng rng;
    voice_list voices;
    confusables conf;
    job_list jobs;
    data_set data;
    es_model *model;
    es_cal_stream valid, test;
    run_figures figures;
} keyword_run;

/* The tools, --init, the phrase's phonemes and --data, before any work. */
static int check_inputs(keyword_run *r, es_error *err) {
    const es_keyword_params *opt = r->ctx.opt;
    if (!tool_exists("espeak-ng") || !tool_exists("sox"))
        return es_error_set(err, ES_KEYWORD_ERR_FAILED,
                            "espeak-ng and sox are needed (apt install espeak-ng sox)");
    int rc = opt->init_path ? check_init_model(opt->init_path, err) : 0;
    if (rc != 0) return rc;
    char command[256];
    snprintf(command, sizeof command, "espeak-ng -q -x -v en-us -- ");
    append_quoted(command, sizeof command, opt->phrase);
    r->phonemes = command_line_output(command);
    if (!r->phonemes || !r->phonemes[0] || strchr(r->phonemes, '('))
        return es_error_set(err, ES_KEYWORD_ERR_USAGE,
                            "espeak-ng cannot say \"%s\" in English (phonemes: %s)", opt->phrase,
                            r->phonemes ? r->phonemes : "none");
    /* Leading spaces and espeak's word-break underscores carry nothing. */
    r->trimmed = r->phonemes + strspn(r->phonemes, " ");
    if (opt->data_dir && access(opt->data_dir, R_OK) != 0)
        return es_error_set(err, ES_KEYWORD_ERR_USAGE, "--data %s: %s", opt->data_dir,
                            strerror(errno));
    return 0;
}

static int make_work_folder(keyword_run *r, es_error *err) {
    const es_keyword_params *opt = r->ctx.opt;
    r->own_work = !opt->work_dir;
    if (r->own_work) {
        const char *tmp = getenv("TMPDIR");
        snprintf(r->work, sizeof r->work, "%s/earshot-train-keyword-XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(r->work)) {
            r->own_work = 0;
            return es_error_set(err, ES_KEYWORD_ERR_FAILED, "cannot make a work folder: %s",
                                strerror(errno));
        }
    } else {
        absolute_path(opt->work_dir, r->work, sizeof r->work);
        mkdir(r->work, 0777);
    }
    char clips_dir[4096 + 8];
    snprintf(clips_dir, sizeof clips_dir, "%s/clips", r->work);
    mkdir(clips_dir, 0777);
    return 0;
}

/* Voices, confusables, data/ and the jobs that render them. */
static int plan_clips(keyword_run *r, es_error *err) {
    const es_keyword_params *opt = r->ctx.opt;
    if (list_voices(opt, tool_exists("flite"), &r->rng, &r->voices) != 0 || r->voices.count == 0)
        return es_error_set(err, ES_KEYWORD_ERR_FAILED, "espeak-ng lists no English voices");
    if (opt->made_voices > 0 && made_variants(r->work, opt->made_voices, &r->rng) != 0)
        return es_error_set(err, ES_KEYWORD_ERR_FAILED,
                            "cannot make espeak-ng voice variants in %s/espeak: %s", r->work,
                            strerror(errno));
    make_confusables(opt->phrase, r->trimmed, &r->rng, &r->conf);
    int rc = opt->data_dir ? load_data_set(opt->data_dir, opt->phrase, &r->data, err) : 0;
    if (rc != 0) return rc;
    if (plan_jobs(opt, &r->voices, &r->conf, &r->rng, &r->jobs) != 0)
        return es_error_set(err, ES_KEYWORD_ERR_FAILED, "out of memory");
    for (int i = 0; i < r->voices.count; i++) {
        r->figures.voices[r->voices.items[i].split]++;
        r->figures.made_voices += r->voices.items[i].made;
    }
    return 0;
}

/* Step 1: the clips rendered, and what they hold counted for the card. */
static int render_clips(keyword_run *r, es_error *err) {
    const es_keyword_params *opt = r->ctx.opt;
    run_figures *f = &r->figures;
    kw_note(&r->ctx,
            "step 1/4: rendering %d clips with %d voices (%d train, %d valid, %d test), %d "
            "confusable phrases; %s",
            r->jobs.count, r->voices.count, f->voices[0], f->voices[1], f->voices[2], r->conf.count,
            opt->data_dir ? "keyword-free speech and noise from data/" : "no data/: a modest set");
    const int rc = render_all(&r->ctx, &r->jobs, r->work, opt->threads, err);
    if (rc != 0) return rc;
    if (kw_stopped(&r->ctx)) return es_error_set(err, ES_KEYWORD_ERR_STOPPED, "stopped");
    for (int i = 0; i < r->jobs.count; i++) {
        const render_job *j = &r->jobs.items[i];
        if (j->duration_s <= 0) continue;
        f->positives[j->split] += j->kind == CLIP_POSITIVE;
        f->confusable_clips[j->split] += j->kind == CLIP_CONFUSABLE;
    }
    f->confusable_phrases = r->conf.count;
    for (int i = 0; i < r->conf.count; i++)
        f->confusable_phrases_of_kind[r->conf.kinds[i]]++;
    f->data_clips = r->data.count;
    f->data_excluded = r->data.excluded;
    return 0;
}

/* Step 2: the manifest written and the model trained, then loaded. */
static int train_step(keyword_run *r, es_error *err) {
    const es_keyword_params *opt = r->ctx.opt;
    char manifest[4096 + 16], trained[4096 + 16];
    snprintf(manifest, sizeof manifest, "%s/manifest.tsv", r->work);
    snprintf(trained, sizeof trained, "%s/model.esm", r->work);
    int rc =
        write_manifest(manifest, r->work, opt->phrase, &r->jobs, opt->data_dir ? &r->data : NULL,
                       opt->small ? ES_SPLIT_TRAIN : ES_SPLIT_VALID, err);
    if (rc != 0) return rc;
    /* Whatever the rendering left of the budget, less the evaluation's share:
     * calibration and test took 0.6 minutes with data/ on this 2-core machine. */
    const double spent_min = (es_monotonic_s() - r->started) / 60.0;
    const double evaluation_min = opt->small ? 0.2 : 1.0;
    double train_min = opt->minutes - spent_min - evaluation_min;
    if (train_min < 0.05) train_min = 0.05;
    char eta[32];
    format_duration((train_min + evaluation_min) * 60, eta, sizeof eta);
    kw_note(&r->ctx, "step 2/4: training for up to %.1f min (ETA of the whole run: %s)", train_min,
            eta);
    const double train_started = es_monotonic_s();
    if (kw_stopped(&r->ctx)) return es_error_set(err, ES_KEYWORD_ERR_STOPPED, "stopped");
    rc = train_model(&r->ctx, manifest, trained, train_min, err);
    if (kw_stopped(&r->ctx)) return es_error_set(err, ES_KEYWORD_ERR_STOPPED, "stopped");
    if (rc != 0) return rc;
    r->figures.train_minutes = (es_monotonic_s() - train_started) / 60.0;
    es_error load_err;
    if (es_model_load_file(trained, &r->model, &load_err) != ES_RNN_OK)
        return es_error_set(err, ES_KEYWORD_ERR_FAILED, "%s: %s", trained, load_err.why);
    return 0;
}

/* Step 3: the threshold and smoothing chosen on the valid split's stream. */
static int calibrate_step(keyword_run *r, es_error *err) {
    const es_keyword_params *opt = r->ctx.opt;
    run_figures *f = &r->figures;
    kw_note(&r->ctx,
            "step 3/4: calibrating on held-out voices and keyword-free audio (valid split)");
    int rc =
        evaluate_split(r->model, &r->jobs, opt->data_dir ? &r->data : NULL, r->work, ES_SPLIT_VALID,
                       CALIBRATION_PASSES, (uint64_t)opt->seed + 11, &r->valid, err);
    if (rc != 0) return rc;
    if (kw_stopped(&r->ctx)) return es_error_set(err, ES_KEYWORD_ERR_STOPPED, "stopped");
    const es_cal_budget budget = {.max_per_hour = calibration_target(opt),
                                  .max_near_miss_share = 1.0f};
    if (es_cal_calibrate_smoothing(&r->valid, &budget, smoothing_tried, SMOOTHING_COUNT,
                                   &f->calibrated, f->smoothing_trials) != 0)
        return es_error_set(err, ES_KEYWORD_ERR_FAILED, "calibration: out of memory");
    const es_cal_counts *valid_at = &f->calibrated.counts[0];
    kw_note(&r->ctx,
            "threshold %.3f, smoothing %d ms: %d false alarms in %.2f h of keyword-free audio "
            "(%.2f/h), recall %d/%d, confusables accepted %d/%d",
            (double)f->calibrated.thresholds[0], f->calibrated.smooth_ms, valid_at->false_alarms,
            r->valid.negative_seconds / 3600,
            es_cal_per_hour(valid_at->false_alarms, r->valid.negative_seconds), valid_at->hits,
            valid_at->positives, valid_at->accepted, valid_at->near_misses);
    if (!f->calibrated.met)
        kw_note(&r->ctx, "warning: even threshold %.3f gives more than %.2f false alarms per hour",
                (double)f->calibrated.thresholds[0], (double)calibration_target(opt));
    return 0;
}

/* Step 4: the test split's stream at the chosen threshold. */
static int test_step(keyword_run *r, es_error *err) {
    const es_keyword_params *opt = r->ctx.opt;
    kw_note(&r->ctx,
            "step 4/4: testing on voices never used in training or calibration (test split)");
    const int rc = evaluate_split(r->model, &r->jobs, opt->data_dir ? &r->data : NULL, r->work,
                                  ES_SPLIT_TEST, 1, (uint64_t)opt->seed + 23, &r->test, err);
    if (rc != 0) return rc;
    if (kw_stopped(&r->ctx)) return es_error_set(err, ES_KEYWORD_ERR_STOPPED, "stopped");
    run_figures *f = &r->figures;
    f->test_at = detect_at(&r->test, f->calibrated.thresholds[0], f->calibrated.smooth_ms);
    f->valid = &r->valid;
    f->test = &r->test;
    return 0;
}

static void tell_result(const keyword_run *r) {
    const es_cal_counts *t = &r->figures.test_at;
    const es_keyword_result result = {
        .phrase = r->ctx.opt->phrase,
        .minutes = r->figures.total_minutes,
        .recall = t->positives ? (double)t->hits / t->positives : NAN,
        .false_alarms_per_hour = es_cal_per_hour(t->false_alarms, r->test.negative_seconds),
        .negative_hours = r->test.negative_seconds / 3600,
        .threshold = r->figures.calibrated.thresholds[0],
        .positives = t->positives,
        .confusables_accepted = t->near_misses ? (double)t->accepted / t->near_misses : NAN,
        .confusables = t->near_misses,
        .smooth_ms = r->figures.calibrated.smooth_ms};
    if (r->ctx.hooks && r->ctx.hooks->result) r->ctx.hooks->result(&result, r->ctx.hooks->user);
}

/* The model with its threshold, and its card. */
static int write_outputs(keyword_run *r, es_error *err) {
    const es_keyword_params *opt = r->ctx.opt;
    run_figures *f = &r->figures;
    char card[4096 + 8];
    es_keyword_card_path(opt->output_path, card, sizeof card);
    if (es_cal_apply(r->model, &r->valid, &f->calibrated) != 0)
        return es_error_set(err, ES_KEYWORD_ERR_OUTPUT,
                            "%s: cannot store the threshold in the model", opt->output_path);
    es_error save_err;
    if (es_model_save(r->model, opt->output_path, &save_err) != ES_RNN_OK)
        return es_error_set(err, ES_KEYWORD_ERR_OUTPUT, "%s: %s", opt->output_path, save_err.why);
    f->total_minutes = (es_monotonic_s() - r->started) / 60.0;
    const int rc = write_card(opt, f, card, err);
    if (rc != 0) return rc;
    tell_result(r);
    const es_cal_counts *t = &f->test_at;
    kw_note(&r->ctx,
            "wrote %s and %s: test recall %d/%d (in noise %d/%d), %d false alarms in %.2f h, "
            "confusables accepted %d/%d, %.1f min in all",
            opt->output_path, card, t->hits, t->positives, t->hits_in_noise, t->positives_in_noise,
            t->false_alarms, r->test.negative_seconds / 3600, t->accepted, t->near_misses,
            f->total_minutes);
    return 0;
}

static void keyword_run_free(keyword_run *r) {
    es_model_destroy(r->model);
    es_cal_stream_free(&r->valid);
    es_cal_stream_free(&r->test);
    for (int i = 0; i < r->jobs.count; i++)
        free(r->jobs.items[i].text);
    free(r->jobs.items);
    free(r->voices.items);
    confusables_free(&r->conf);
    data_set_free(&r->data);
    free(r->phonemes);
    /* The clips (10-30 MB) go with the folder, also when the run was stopped. */
    if (r->own_work) nftw(r->work, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int es_train_keyword(const es_keyword_params *params, const es_keyword_hooks *hooks,
                     es_error *err) {
    keyword_run r = {.ctx = {params, hooks}, .started = es_monotonic_s()};
    es_rng_seed(&r.rng, (uint64_t)params->seed * 0x9E3779B97F4A7C15ULL + 0x6b7764ULL);
    int rc = check_inputs(&r, err);
    if (rc == 0) rc = make_work_folder(&r, err);
    if (rc == 0) {
        r.figures.phonemes = r.trimmed;
        kw_note(&r.ctx, "\"%s\" [%s]: budget %.1f min, work folder %s", params->phrase, r.trimmed,
                params->minutes, r.work);
    }
    if (rc == 0) rc = plan_clips(&r, err);
    if (rc == 0) rc = render_clips(&r, err);
    if (rc == 0) rc = train_step(&r, err);
    if (rc == 0) rc = calibrate_step(&r, err);
    if (rc == 0) rc = test_step(&r, err);
    if (rc == 0) rc = write_outputs(&r, err);
    keyword_run_free(&r);
    return rc;
}
