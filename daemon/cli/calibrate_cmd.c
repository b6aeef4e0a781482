/*
 * earshot calibrate MODEL --manifest FILE -o OUT — per-keyword detection
 * thresholds of a keyword model for a false-alarm budget, measured on the
 * manifest's valid split (calibrate.h tells how), written into a copy of the
 * model (format version 2).
 *
 * From the valid split: keyword clips whose label is one of the model's
 * keyword outputs are positives (their window: start_s to end_s + 0.5 s);
 * sentence and speech clips, and keyword clips of words the model does not
 * know, are keyword-free; noise clips are too (alone, as a quiet room or a
 * radio has them), and are mixed into a third of the clips.
 * --hours bounds the keyword-free audio (a random subset by --seed).
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio_file.h"
#include "augment.h"
#include "calibrate.h"
#include "cli_util.h"
#include "commands.h"
#include "manifest.h"
#include "pipeline.h"
#include "progress.h"

typedef struct calibrate_options {
    const char *model_path;
    const char *manifest_path;
    const char *output_path;
    es_cal_budget budget; /* --max-alarms-per-hour, --max-near-misses, --extrapolate-tail */
    float hours;          /* 0: all */
    int passes;           /* times every clip is streamed; after the first at another speed */
    int seed;
    const char *excluded_voices[8]; /* voice prefixes whose clips are not used */
    int excluded_count;
    int smoothing[8]; /* --smoothing: the detector smoothings tried, in ms */
    int smoothing_count;
    int near_misses_per_hour; /* near-miss clips as keyword-free speech (the earlier way) */
    int check;                /* measure the model's own thresholds, choose none */
} calibrate_options;

static const char usage_text[] =
    "Usage: earshot calibrate MODEL --manifest FILE -o OUT [options]\n"
    "       earshot calibrate MODEL --manifest FILE --check [options]\n"
    "Calibrates the detection threshold of each keyword of MODEL on held-out audio: the\n"
    "valid split of a data manifest (models/MANIFEST.md) streamed through the pipeline of\n"
    "`earshot file` (built-in VAD, default smoothing and refractory period), its keyword\n"
    "clips among keyword-free speech and its noise and music alone, a third of the clips\n"
    "mixed with its noise. Chooses the thresholds so that the false alarms of all keywords\n"
    "together stay within the budget, favouring the keywords that gain most recall per\n"
    "false alarm, and writes OUT: MODEL with those thresholds. Prints a table per keyword\n"
    "on stdout.\n"
    "\n"
    "  -m, --manifest FILE          the data manifest; only its valid split is used (required)\n"
    "  -o, --output PATH            where to write the calibrated model (required)\n"
    "      --max-alarms-per-hour R  false alarms per hour of keyword-free audio, all keywords\n"
    "                               together (default 0.5)\n"
    "      --hours H                use at most H hours of keyword-free clips (default: all)\n"
    "      --passes N               stream every clip N times, after the first each at its\n"
    "                               own speed of 0.9-1.1 (tempo and pitch): more of the rare\n"
    "                               peaks a budget of false alarms per hour is about (1)\n"
    "      --seed S                 order of the clips, noise mixing and --hours subset\n"
    "                               (default 1)\n"
    "      --exclude-voice PREFIX   leave out clips whose voice starts with PREFIX, e.g.\n"
    "                               real:csmash, kept unseen for an evaluation (up to 8)\n"
    "      --smoothing MS[,MS...]   calibrate at each of these detector smoothings (ms, up to\n"
    "                               8) and keep the one that finds the most positives within\n"
    "                               the budget, stored in OUT beside the thresholds (format\n"
    "                               version 3); default: the detector's 50 ms, not stored\n"
    "      --near-misses-per-hour   count the near misses (sentence clips labelled with the\n"
    "                               word they say, such as 'lift' or 'we heard heaven':\n"
    "                               models/MANIFEST.md) as keyword-free speech, their\n"
    "                               false alarms against the hourly budget; by default each\n"
    "                               is judged on its own, its share accepted reported apart:\n"
    "                               made to sound like keywords and said alone or phrase-\n"
    "                               final, they are far denser in the stream than in speech\n"
    "      --max-near-misses SHARE  of those near misses, at most SHARE (0-1) may set off a\n"
    "                               keyword, all keywords together (default 1: no limit)\n"
    "      --extrapolate-tail       count each keyword's false alarms as its tail of\n"
    "                               keyword-free peaks expects them, not only those seen:\n"
    "                               the budget then holds on voices the stream lacks\n"
    "                               (thresholds just above the peaks seen fire 2-4x as\n"
    "                               often on new voices: models/kws.md)\n"
    "      --check                  choose nothing: measure MODEL's own thresholds on the\n"
    "                               stream and print the table (no -o): how a calibrated\n"
    "                               model does on other held-out audio\n"
    "  -h, --help                   this help\n";

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    fputs("earshot: calibrate: ", stderr);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
}

/* "50,100,300": 0, or -1 (printed). */
static int parse_smoothing(const char *text, calibrate_options *opt) {
    char copy[128];
    if (snprintf(copy, sizeof copy, "%s", text) >= (int)sizeof copy) {
        es_cli_error("calibrate: --smoothing: too long");
        return -1;
    }
    opt->smoothing_count = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        if (opt->smoothing_count == (int)COUNT_OF(opt->smoothing)) {
            es_cli_error("calibrate: --smoothing: at most %d values",
                         (int)COUNT_OF(opt->smoothing));
            return -1;
        }
        if (es_cli_parse_int("--smoothing", item, 10, ES_KWS_MAX_SMOOTH_MS,
                             &opt->smoothing[opt->smoothing_count++]) < 0)
            return -1;
    }
    if (opt->smoothing_count == 0) {
        es_cli_error("calibrate: --smoothing: no value in '%s'", text);
        return -1;
    }
    return 0;
}

/* 1: --help shown; 0: parsed; -1: usage error (printed). */
static int parse_options(int argc, char **argv, calibrate_options *opt) {
    enum {
        OPT_MAX_ALARMS = 0x100,
        OPT_HOURS,
        OPT_SEED,
        OPT_EXCLUDE_VOICE,
        OPT_PASSES,
        OPT_SMOOTHING,
        OPT_NEAR_MISSES_PER_HOUR,
        OPT_MAX_NEAR_MISSES,
        OPT_CHECK,
        OPT_EXTRAPOLATE_TAIL
    };
    static const struct option options[] = {
        {"manifest", required_argument, NULL, 'm'},
        {"output", required_argument, NULL, 'o'},
        {"max-alarms-per-hour", required_argument, NULL, OPT_MAX_ALARMS},
        {"hours", required_argument, NULL, OPT_HOURS},
        {"passes", required_argument, NULL, OPT_PASSES},
        {"seed", required_argument, NULL, OPT_SEED},
        {"exclude-voice", required_argument, NULL, OPT_EXCLUDE_VOICE},
        {"smoothing", required_argument, NULL, OPT_SMOOTHING},
        {"near-misses-per-hour", no_argument, NULL, OPT_NEAR_MISSES_PER_HOUR},
        {"max-near-misses", required_argument, NULL, OPT_MAX_NEAR_MISSES},
        {"check", no_argument, NULL, OPT_CHECK},
        {"extrapolate-tail", no_argument, NULL, OPT_EXTRAPOLATE_TAIL},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    *opt = (calibrate_options){
        .budget = {.max_per_hour = 0.5f, .max_near_miss_share = 1.0f}, .seed = 1, .passes = 1};
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":m:o:h", options, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'm':
            opt->manifest_path = optarg;
            break;
        case 'o':
            opt->output_path = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 1;
        case OPT_MAX_ALARMS:
            rc = es_cli_parse_float("--max-alarms-per-hour", optarg, 0.0, 1e6,
                                    &opt->budget.max_per_hour);
            break;
        case OPT_HOURS:
            rc = es_cli_parse_float("--hours", optarg, 1e-4, 1e5, &opt->hours);
            break;
        case OPT_EXCLUDE_VOICE:
            if (opt->excluded_count == 8 || !*optarg) {
                es_cli_error("calibrate: --exclude-voice: %s", *optarg ? "at most 8" : "empty");
                rc = -1;
            } else {
                opt->excluded_voices[opt->excluded_count++] = optarg;
            }
            break;
        case OPT_PASSES:
            rc = es_cli_parse_int("--passes", optarg, 1, 20, &opt->passes);
            break;
        case OPT_SMOOTHING:
            rc = parse_smoothing(optarg, opt);
            break;
        case OPT_SEED:
            rc = es_cli_parse_int("--seed", optarg, 0, 2147483647, &opt->seed);
            break;
        case OPT_NEAR_MISSES_PER_HOUR:
            opt->near_misses_per_hour = 1;
            break;
        case OPT_CHECK:
            opt->check = 1;
            break;
        case OPT_EXTRAPOLATE_TAIL:
            opt->budget.extrapolate_tail = 1;
            break;
        case OPT_MAX_NEAR_MISSES:
            rc = es_cli_parse_float("--max-near-misses", optarg, 0.0, 1.0,
                                    &opt->budget.max_near_miss_share);
            break;
        default:
            rc = es_cli_bad_option("calibrate", c, argv);
        }
        if (rc < 0) return -1;
    }
    if (!(opt->model_path = es_cli_one_operand("calibrate", "MODEL", argc, argv))) return -1;
    if (!opt->manifest_path) {
        es_cli_error("calibrate: --manifest FILE is required");
        return -1;
    }
    if (opt->output_path && opt->check) {
        es_cli_error("calibrate: --check writes no model: leave out -o");
        return -1;
    }
    if (!opt->output_path && !opt->check) {
        es_cli_error("calibrate: -o OUT is required");
        return -1;
    }
    return 0;
}

/* ---- the manifest's valid split ------------------------------------------------------ */

typedef struct clip_list {
    es_cal_item *items;
    double *seconds;
    int count, capacity;
} clip_list;

static int clip_add(clip_list *list, const char *path, int keyword, int near_miss, double start_s,
                    double end_s, double seconds) {
    if (list->count == list->capacity) {
        const int capacity = list->capacity ? 2 * list->capacity : 1024;
        es_cal_item *items = realloc(list->items, sizeof(es_cal_item) * (size_t)capacity);
        if (!items) return -1;
        list->items = items;
        double *s = realloc(list->seconds, sizeof(double) * (size_t)capacity);
        if (!s) return -1;
        list->seconds = s;
        list->capacity = capacity;
    }
    list->items[list->count] = (es_cal_item){.path = path,
                                             .keyword = keyword,
                                             .start_s = start_s,
                                             .end_s = end_s,
                                             .speed = 1.0f,
                                             .near_miss = near_miss};
    list->seconds[list->count++] = seconds;
    return 0;
}

static void clip_list_free(clip_list *list) {
    free(list->items);
    free(list->seconds);
}

typedef struct valid_split {
    es_manifest manifest;           /* owns every path below */
    clip_list positives, negatives; /* negatives: near misses among them */
    const char **noise_paths;
    int noise_count;
    int unusable; /* not 16 kHz mono: left out */
    double positive_s, negative_s;
} valid_split;

static void valid_split_free(valid_split *v) {
    clip_list_free(&v->positives);
    clip_list_free(&v->negatives);
    free(v->noise_paths);
    es_manifest_free(&v->manifest);
}

/* The clip's length in seconds; 0 when it is not 16 kHz mono; -1 (printed)
 * when it cannot be opened. */
static double clip_seconds(const char *manifest, long line, const char *path) {
    char why[256];
    es_audio_file *file = NULL;
    if (es_audio_file_open(path, &file, why, sizeof why) != 0) {
        es_cli_error("calibrate: %s:%ld: %s", manifest, line, why);
        return -1;
    }
    const es_audio_info *info = es_audio_file_info(file);
    const double seconds =
        info->sample_rate_hz == ES_CAL_SAMPLE_RATE_HZ && info->channels == 1 && info->frames > 0
            ? (double)info->frames / info->sample_rate_hz
            : 0.0;
    es_audio_file_close(file);
    return seconds;
}

static int column_of(const es_cal_stream *columns, const char *label) {
    for (int k = 0; k < columns->keyword_count; k++)
        if (strcmp(columns->labels[k], label) == 0) return k;
    return -1;
}

static int voice_excluded(const calibrate_options *opt, const char *voice) {
    for (int i = 0; i < opt->excluded_count; i++)
        if (strncmp(voice, opt->excluded_voices[i], strlen(opt->excluded_voices[i])) == 0) return 1;
    return 0;
}

/* Sorts one valid-split line into positives, negatives and noises; 0, or -1
 * (printed). */
static int take_clip(const calibrate_options *opt, const es_cal_stream *columns,
                     const es_manifest_clip *c, valid_split *v) {
    if (c->kind == ES_KIND_NOISE) {
        const char **grown = realloc(v->noise_paths, sizeof(char *) * (size_t)(v->noise_count + 1));
        if (!grown) return -1;
        v->noise_paths = grown;
        v->noise_paths[v->noise_count++] = c->path;
    }
    const double seconds = clip_seconds(opt->manifest_path, c->line, c->path);
    if (seconds < 0) return -1;
    if (seconds == 0) {
        v->unusable++;
        return 0;
    }
    const int keyword = c->kind == ES_KIND_KEYWORD ? column_of(columns, c->label) : -1;
    /* A sentence clip labelled with a word says that word: a near miss. */
    const int near_miss = !opt->near_misses_per_hour && c->kind == ES_KIND_SENTENCE &&
                          strcmp(c->label, "-") != 0 && c->label[0] != '\0';
    clip_list *list = keyword >= 0 ? &v->positives : &v->negatives;
    if (clip_add(list, c->path, keyword, near_miss, keyword >= 0 ? c->start_s : 0,
                 keyword >= 0 ? c->end_s : 0, seconds) != 0)
        return -1;
    *(keyword >= 0 ? &v->positive_s : &v->negative_s) += seconds;
    return 0;
}

/* Reads the valid split; returns ES_EXIT_OK or ES_EXIT_FAILURE (printed). */
static int read_valid_split(const calibrate_options *opt, const es_cal_stream *columns,
                            valid_split *v) {
    memset(v, 0, sizeof *v);
    es_error err;
    if (es_manifest_read(opt->manifest_path, &v->manifest, &err) != ES_MANIFEST_OK) {
        es_cli_error("calibrate: %s", err.why);
        return ES_EXIT_FAILURE;
    }
    for (int i = 0; i < v->manifest.count; i++) {
        const es_manifest_clip *c = &v->manifest.clips[i];
        if (c->split != ES_SPLIT_VALID || voice_excluded(opt, c->voice)) continue;
        if (take_clip(opt, columns, c, v) != 0) return ES_EXIT_FAILURE;
    }
    return ES_EXIT_OK;
}

/* Keeps a random subset of the negatives of about `hours` (seeded). */
static void limit_negatives(clip_list *negatives, double hours, int seed, double *kept_s) {
    es_rng rng;
    es_rng_seed(&rng, (uint64_t)seed * 0x9E3779B97F4A7C15ULL + 0x63616cULL);
    for (int i = negatives->count - 1; i > 0; i--) {
        const int k = es_rng_below(&rng, i + 1);
        const es_cal_item t = negatives->items[i];
        const double s = negatives->seconds[i];
        negatives->items[i] = negatives->items[k];
        negatives->seconds[i] = negatives->seconds[k];
        negatives->items[k] = t;
        negatives->seconds[k] = s;
    }
    double total = 0;
    int keep = 0;
    while (keep < negatives->count && total < hours * 3600)
        total += negatives->seconds[keep++];
    negatives->count = keep;
    *kept_s = total;
}

/* ---- the command ------------------------------------------------------------------------- */

static int output_writable(const char *path) {
    char *copy = strdup(path);
    if (!copy) return 0;
    const int ok = access(dirname(copy), W_OK) == 0;
    free(copy);
    return ok;
}

/* Near misses are shown when the stream judged any: how many each keyword
 * accepted (fired inside), and in all. `budget` NULL: thresholds measured, not
 * chosen (--check). */
static void print_table(const es_cal_stream *s, const es_cal_result *r,
                        const es_cal_budget *budget) {
    int width = 7;
    for (int k = 0; k < s->keyword_count; k++)
        if ((int)strlen(s->labels[k]) > width) width = (int)strlen(s->labels[k]);
    const int near = s->near_misses > 0;
    printf("%-*s  threshold  positives  recall  false_alarms  per_hour%s\n", width, "keyword",
           near ? "  near_misses_accepted" : "");
    for (int k = 0; k < s->keyword_count; k++) {
        const es_cal_counts *c = &r->counts[k];
        char recall[16];
        if (c->positives)
            snprintf(recall, sizeof recall, "%.3f", (double)c->hits / c->positives);
        else
            snprintf(recall, sizeof recall, "-");
        printf("%-*s  %9.3f  %9d  %6s  %12d  %8.2f", width, s->labels[k], (double)r->thresholds[k],
               c->positives, recall, c->false_alarms,
               es_cal_per_hour(c->false_alarms, s->negative_seconds));
        if (near) printf("  %20d", c->accepted);
        putchar('\n');
    }
    char recall[16];
    if (r->positives)
        snprintf(recall, sizeof recall, "%.3f", (double)r->hits / r->positives);
    else
        snprintf(recall, sizeof recall, "-");
    printf("%-*s  %9s  %9d  %6s  %12d  %8.2f", width, "total", "-", r->positives, recall,
           r->false_alarms, es_cal_per_hour(r->false_alarms, s->negative_seconds));
    if (near) printf("  %9d of %-8d", r->near_accepted, s->near_misses);
    if (!budget) {
        printf("  (the model's own thresholds, in %.2f h keyword-free)\n",
               s->negative_seconds / 3600);
        return;
    }
    printf("  (budget %.2f per hour: at most %d in %.2f h keyword-free",
           (double)budget->max_per_hour, r->allowed, s->negative_seconds / 3600);
    if (!isnan(r->expected_alarms)) printf(", %.1f expected from the tails", r->expected_alarms);
    if (r->near_allowed >= 0) printf("; at most %d near misses accepted", r->near_allowed);
    printf("%s)\n", r->met ? "" : "; NOT met");
}

/* --check: the model's stored thresholds and smoothing measured on the stream. */
static int check_thresholds(const es_model *model, const es_cal_stream *s, es_cal_result *out) {
    const float *stored = es_model_thresholds(model);
    const int *smoothing = es_model_smoothing(model);
    es_kws_config detector;
    es_kws_config_default(&detector);
    float thresholds[ES_KWS_MAX_KEYWORDS];
    for (int k = 0; k < s->keyword_count; k++)
        thresholds[k] = stored && stored[s->outputs[k]] > 0 ? stored[s->outputs[k]]
                                                            : detector.default_threshold;
    /* (calibrate stores one smoothing for every keyword) */
    return es_cal_measure(s, thresholds, smoothing ? smoothing[s->outputs[0]] : 0, out);
}

static void add_progress(double done_s, void *progress) {
    es_progress_add(progress, done_s);
}

int es_cmd_calibrate(int argc, char **argv) {
    calibrate_options opt;
    const int parsed = parse_options(argc, argv, &opt);
    if (parsed != 0) return parsed > 0 ? ES_EXIT_OK : ES_EXIT_USAGE;
    const double started = es_cli_monotonic_s();

    es_model *model = NULL;
    es_error perr;
    if (es_pipeline_load_model(opt.model_path, "kws", NULL, &model, &perr) != ES_PIPELINE_OK) {
        es_cli_error("calibrate: %s", perr.why);
        return ES_EXIT_FAILURE;
    }
    es_cal_stream columns;
    es_cal_stream_init(&columns, model);
    if (columns.keyword_count == 0) {
        es_cli_error("calibrate: %s: the model has no keyword outputs (only filler)",
                     opt.model_path);
        es_model_destroy(model);
        return ES_EXIT_FAILURE;
    }
    if (opt.output_path && !output_writable(opt.output_path)) {
        es_cli_error("calibrate: %s: cannot write there: %s", opt.output_path, strerror(errno));
        es_model_destroy(model);
        return ES_EXIT_FAILURE;
    }

    int status = ES_EXIT_FAILURE;
    valid_split v = {0};
    es_cal_noises noises = {0};
    es_cal_stream stream = {0};
    es_cal_item *items = NULL;
    es_progress *progress = NULL;
    if (read_valid_split(&opt, &columns, &v) != ES_EXIT_OK) goto done;
    if (v.unusable) note("%d clips are not 16 kHz mono and are left out", v.unusable);
    if (v.negatives.count == 0) {
        es_cli_error("calibrate: %s: no keyword-free clips (sentence or speech) in the valid "
                     "split: nothing to count false alarms on",
                     opt.manifest_path);
        goto done;
    }
    if (v.positives.count == 0)
        note("warning: %s has no valid-split clips of the model's keywords: recall cannot be "
             "measured, thresholds follow the false alarms alone",
             opt.manifest_path);
    double negative_s = v.negative_s;
    if (opt.hours > 0 && opt.hours * 3600 < v.negative_s)
        limit_negatives(&v.negatives, opt.hours, opt.seed, &negative_s);
    for (int i = 0; i < v.noise_count; i++)
        if (es_cal_noises_add(&noises, v.noise_paths[i]) < 0) {
            es_cli_error("calibrate: out of memory");
            goto done;
        }

    int count = v.positives.count + v.negatives.count;
    items = malloc(sizeof(es_cal_item) * (size_t)count);
    if (!items) {
        es_cli_error("calibrate: out of memory");
        goto done;
    }
    /* (memcpy from NULL is undefined even for 0 bytes: a manifest may have no positives) */
    if (v.positives.count)
        memcpy(items, v.positives.items, sizeof(es_cal_item) * (size_t)v.positives.count);
    memcpy(items + v.positives.count, v.negatives.items,
           sizeof(es_cal_item) * (size_t)v.negatives.count);
    if (es_cal_items_replay(&items, &count, opt.passes,
                            (uint64_t)opt.seed * 0x9E3779B97F4A7C15ULL + 0x73706565ULL) != 0) {
        es_cli_error("calibrate: out of memory");
        goto done;
    }
    const double audio_s = (v.positive_s + negative_s) * opt.passes;
    int near_misses = 0;
    for (int i = 0; i < v.negatives.count; i++)
        near_misses += v.negatives.items[i].near_miss != 0;
    note("%s: %d keywords; valid split of %s: %d keyword clips (%.2f h), %d keyword-free "
         "clips (%.2f h; %d of them near misses, each judged on its own), %d noises; %d pass%s",
         opt.model_path, columns.keyword_count, opt.manifest_path, v.positives.count,
         v.positive_s / 3600, v.negatives.count, negative_s / 3600, near_misses, noises.count,
         opt.passes, opt.passes == 1 ? "" : "es (after the first at another speed)");
    progress = es_progress_create(audio_s, 300);
    char why[512] = "";
    if (es_cal_run_stream(model, items, count, &noises, (uint64_t)opt.seed + 11, add_progress,
                          progress, &stream, why, sizeof why) != 0) {
        es_progress_destroy(progress);
        progress = NULL;
        es_cli_error("calibrate: %s", why);
        goto done;
    }
    es_progress_destroy(progress);
    progress = NULL;
    const double streamed = es_cli_monotonic_s();
    note("streamed %.2f h in %.0f s (%.0fx real time)", stream.seconds / 3600, streamed - started,
         stream.seconds / (streamed - started));

    int positives = 0;
    for (int k = 0; k < stream.keyword_count; k++)
        positives += stream.positives[k];
    note("choosing thresholds: %d keywords, %d positives, %d near misses, %d frames",
         stream.keyword_count, positives, stream.near_misses, (int)stream.frames);
    es_cal_result result;
    const int calibrated = opt.check ? check_thresholds(model, &stream, &result)
                           : opt.smoothing_count > 0
                               ? es_cal_calibrate_smoothing(&stream, &opt.budget, opt.smoothing,
                                                            opt.smoothing_count, &result, NULL)
                               : es_cal_calibrate(&stream, &opt.budget, 0, &result);
    if (calibrated != 0) {
        es_cli_error("calibrate: out of memory");
        goto done;
    }
    if (opt.smoothing_count > 0) note("smoothing %d ms finds the most", result.smooth_ms);
    print_table(&stream, &result, opt.check ? NULL : &opt.budget);
    fflush(stdout);
    if (opt.check) {
        status = ES_EXIT_OK;
        goto done;
    }
    if (!result.met)
        note("warning: even the highest thresholds give %d false alarms in %.2f h (%.2f per "
             "hour), more than %.2f",
             result.false_alarms, stream.negative_seconds / 3600,
             es_cal_per_hour(result.false_alarms, stream.negative_seconds),
             (double)opt.budget.max_per_hour);
    es_error err;
    if (es_cal_apply(model, &stream, &result) != 0) {
        es_cli_error("calibrate: %s: cannot store the thresholds", opt.output_path);
        goto done;
    }
    if (es_model_save(model, opt.output_path, &err) != ES_RNN_OK) {
        es_cli_error("calibrate: %s: %s", opt.output_path, err.why);
        goto done;
    }
    note("wrote %s in %.0f s", opt.output_path, es_cli_monotonic_s() - started);
    status = ES_EXIT_OK;
done:
    es_progress_destroy(progress);
    free(items);
    es_cal_stream_free(&stream);
    es_cal_noises_free(&noises);
    valid_split_free(&v);
    es_model_destroy(model);
    return status;
}
