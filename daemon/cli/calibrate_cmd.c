/*
 * earshot calibrate MODEL --manifest FILE -o OUT — per-keyword detection
 * thresholds of a keyword model for a false-alarm budget, measured on the
 * manifest's valid split (factory.h tells how), written into a copy of the
 * model (format version 2).
 *
 * The work is models/train/factory.h's es_cal_job, step by step; this file
 * turns the options into es_cal_params, tells what each step found, prints
 * the table and maps errors to exit codes.
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

#include "clock.h"
#include "factory.h"
#include "cli_util.h"
#include "commands.h"
#include "progress.h"

typedef struct calibrate_options {
    es_cal_params params;
    const char *output_path;
    const char *excluded_voices[8]; /* --exclude-voice: voice prefixes whose clips are not used */
    int smoothing[8];               /* --smoothing: the detector smoothings tried, in ms */
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
    "      --max-false-alarms R     false alarms per hour of keyword-free audio, all keywords\n"
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
    "      --recorded-weight W      a recorded person's keyword found counts W times a\n"
    "                               synthetic voice's when thresholds are chosen (default\n"
    "                               1): a valid split's synthetic voices outnumber its\n"
    "                               recorded people, whose recall users get. The table's\n"
    "                               last line gives the recall of each apart\n"
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
    opt->params.smoothing_count = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        if (opt->params.smoothing_count == (int)COUNT_OF(opt->smoothing)) {
            es_cli_error("calibrate: --smoothing: at most %d values",
                         (int)COUNT_OF(opt->smoothing));
            return -1;
        }
        if (es_cli_parse_int("--smoothing", item, 10, ES_KWS_MAX_SMOOTH_MS,
                             &opt->smoothing[opt->params.smoothing_count++]) < 0)
            return -1;
    }
    if (opt->params.smoothing_count == 0) {
        es_cli_error("calibrate: --smoothing: no value in '%s'", text);
        return -1;
    }
    return 0;
}

enum {
    OPT_MAX_ALARMS = 0x100,
    OPT_MAX_ALARMS_PER_HOUR, /* the old name of --max-false-alarms, still accepted */
    OPT_HOURS,
    OPT_SEED,
    OPT_EXCLUDE_VOICE,
    OPT_PASSES,
    OPT_SMOOTHING,
    OPT_NEAR_MISSES_PER_HOUR,
    OPT_MAX_NEAR_MISSES,
    OPT_CHECK,
    OPT_EXTRAPOLATE_TAIL,
    OPT_RECORDED_WEIGHT
};

static const struct option long_options[] = {
    {"manifest", required_argument, NULL, 'm'},
    {"output", required_argument, NULL, 'o'},
    {"max-false-alarms", required_argument, NULL, OPT_MAX_ALARMS},
    {"max-alarms-per-hour", required_argument, NULL, OPT_MAX_ALARMS_PER_HOUR},
    {"hours", required_argument, NULL, OPT_HOURS},
    {"passes", required_argument, NULL, OPT_PASSES},
    {"seed", required_argument, NULL, OPT_SEED},
    {"exclude-voice", required_argument, NULL, OPT_EXCLUDE_VOICE},
    {"smoothing", required_argument, NULL, OPT_SMOOTHING},
    {"near-misses-per-hour", no_argument, NULL, OPT_NEAR_MISSES_PER_HOUR},
    {"max-near-misses", required_argument, NULL, OPT_MAX_NEAR_MISSES},
    {"check", no_argument, NULL, OPT_CHECK},
    {"extrapolate-tail", no_argument, NULL, OPT_EXTRAPOLATE_TAIL},
    {"recorded-weight", required_argument, NULL, OPT_RECORDED_WEIGHT},
    {"help", no_argument, NULL, 'h'},
    {0},
};

/* One option: 0, or -1 (printed). */
static int set_option(int c, char **argv, calibrate_options *opt) {
    es_cal_params *p = &opt->params;
    switch (c) {
    case 'm':
        p->manifest_path = optarg;
        return 0;
    case 'o':
        opt->output_path = optarg;
        return 0;
    case OPT_MAX_ALARMS:
    case OPT_MAX_ALARMS_PER_HOUR:
        /* One name per meaning, as train-keyword's; the old one keeps scripts working. */
        return es_cli_parse_float(c == OPT_MAX_ALARMS ? "--max-false-alarms"
                                                      : "--max-alarms-per-hour",
                                  optarg, 0.0, 1e6, &p->budget.max_per_hour);
    case OPT_HOURS:
        return es_cli_parse_float("--hours", optarg, 1e-4, 1e5, &p->hours);
    case OPT_EXCLUDE_VOICE:
        if (p->excluded_count == 8 || !*optarg) {
            es_cli_error("calibrate: --exclude-voice: %s", *optarg ? "at most 8" : "empty");
            return -1;
        }
        opt->excluded_voices[p->excluded_count++] = optarg;
        return 0;
    case OPT_PASSES:
        return es_cli_parse_int("--passes", optarg, 1, 20, &p->passes);
    case OPT_SMOOTHING:
        return parse_smoothing(optarg, opt);
    case OPT_SEED:
        return es_cli_parse_int("--seed", optarg, 0, 2147483647, &p->seed);
    case OPT_NEAR_MISSES_PER_HOUR:
        p->near_misses_per_hour = 1;
        return 0;
    case OPT_CHECK:
        p->check = 1;
        return 0;
    case OPT_EXTRAPOLATE_TAIL:
        p->budget.extrapolate_tail = 1;
        return 0;
    case OPT_RECORDED_WEIGHT:
        return es_cli_parse_float("--recorded-weight", optarg, 1.0, 1000.0,
                                  &p->budget.recorded_weight);
    case OPT_MAX_NEAR_MISSES:
        return es_cli_parse_float("--max-near-misses", optarg, 0.0, 1.0,
                                  &p->budget.max_near_miss_share);
    default:
        return es_cli_bad_option("calibrate", c, argv);
    }
}

/* 1: --help shown; 0: parsed; -1: usage error (printed). */
static int parse_options(int argc, char **argv, calibrate_options *opt) {
    memset(opt, 0, sizeof *opt);
    es_cal_params_default(&opt->params);
    opt->params.excluded_voices = opt->excluded_voices;
    opt->params.smoothing = opt->smoothing;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":m:o:h", long_options, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage_text, stdout);
            return 1;
        }
        if (set_option(c, argv, opt) < 0) return -1;
    }
    es_cal_params *p = &opt->params;
    if (!(p->model_path = es_cli_one_operand("calibrate", "MODEL", argc, argv))) return -1;
    if (!p->manifest_path) {
        es_cli_error("calibrate: --manifest FILE is required");
        return -1;
    }
    if (opt->output_path && p->check) {
        es_cli_error("calibrate: --check writes no model: leave out -o");
        return -1;
    }
    if (!opt->output_path && !p->check) {
        es_cli_error("calibrate: -o OUT is required");
        return -1;
    }
    return 0;
}

/* ---- the command ------------------------------------------------------------------------- */

static int output_writable(const char *path) {
    char *copy = strdup(path);
    if (!copy) return 0;
    const int ok = access(dirname(copy), W_OK) == 0;
    free(copy);
    return ok;
}

/* "0.579", or "-" without positives. */
static const char *recall_text(int hits, int positives, char *text, size_t size) {
    if (positives)
        snprintf(text, size, "%.3f", (double)hits / positives);
    else
        snprintf(text, size, "-");
    return text;
}

/* Recorded people apart from synthetic voices, when the stream holds both kinds. */
static void print_voices(const es_cal_result *r) {
    if (r->positives_recorded == 0 || r->positives_recorded == r->positives) return;
    char recorded[16], synthetic[16];
    printf("of the positives: %d of recorded people, recall %s; %d of synthetic voices, recall "
           "%s\n",
           r->positives_recorded,
           recall_text(r->hits_recorded, r->positives_recorded, recorded, sizeof recorded),
           r->positives - r->positives_recorded,
           recall_text(r->hits - r->hits_recorded, r->positives - r->positives_recorded, synthetic,
                       sizeof synthetic));
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
        printf("%-*s  %9.3f  %9d  %6s  %12d  %8.2f", width, s->labels[k], (double)r->thresholds[k],
               c->positives, recall_text(c->hits, c->positives, recall, sizeof recall),
               c->false_alarms, es_cal_per_hour(c->false_alarms, s->negative_seconds));
        if (near) printf("  %20d", c->accepted);
        putchar('\n');
    }
    char recall[16];
    printf("%-*s  %9s  %9d  %6s  %12d  %8.2f", width, "total", "-", r->positives,
           recall_text(r->hits, r->positives, recall, sizeof recall), r->false_alarms,
           es_cal_per_hour(r->false_alarms, s->negative_seconds));
    if (near) printf("  %9d of %-8d", r->near_accepted, s->near_misses);
    if (!budget) {
        printf("  (the model's own thresholds, in %.2f h keyword-free)\n",
               s->negative_seconds / 3600);
        print_voices(r);
        return;
    }
    printf("  (budget %.2f per hour: at most %d in %.2f h keyword-free",
           (double)budget->max_per_hour, r->allowed, s->negative_seconds / 3600);
    if (!isnan(r->expected_alarms)) printf(", %.1f expected from the tails", r->expected_alarms);
    if (r->near_allowed >= 0) printf("; at most %d near misses accepted", r->near_allowed);
    if (budget->recorded_weight > 1.0f)
        printf("; a recorded person's keyword weighs %g", (double)budget->recorded_weight);
    printf("%s)\n", r->met ? "" : "; NOT met");
    print_voices(r);
}

static void add_progress(double done_s, void *progress) {
    es_progress_add(progress, done_s);
}

/* What the valid split holds, before the stream. */
static void note_clips(const es_cal_params *p, const es_cal_job *job) {
    note("%s: %d keywords; valid split of %s: %d keyword clips (%.2f h), %d keyword-free "
         "clips (%.2f h; %d of them near misses, each judged on its own), %d noises; %d pass%s",
         p->model_path, job->columns.keyword_count, p->manifest_path, job->positives.count,
         job->positive_s / 3600, job->negatives.count, job->negative_s / 3600, job->near_misses,
         job->noises.count, p->passes,
         p->passes == 1 ? "" : "es (after the first at another speed)");
}

/* Reads and prepares the valid split, telling what it holds. */
static int read_clips(const es_cal_params *p, es_cal_job *job, es_error *err) {
    int rc = es_cal_job_read(job, p, err);
    if (rc != 0) return rc;
    if (job->unusable) note("%d clips are not 16 kHz mono and are left out", job->unusable);
    if ((rc = es_cal_job_prepare(job, p, err)) != 0) return rc;
    if (job->positives.count == 0)
        note("warning: %s has no valid-split clips of the model's keywords: recall cannot be "
             "measured, thresholds follow the false alarms alone",
             p->manifest_path);
    note_clips(p, job);
    return 0;
}

/* Streams the clips with a progress line, then chooses (or checks) thresholds. */
static int stream_and_choose(const es_cal_params *p, es_cal_job *job, double started,
                             es_error *err) {
    es_progress *progress = es_progress_create(job->audio_s, 300);
    const int rc = es_cal_job_stream(job, p, add_progress, progress, err);
    es_progress_destroy(progress);
    if (rc != 0) return rc;
    const es_cal_stream *stream = &job->stream;
    const double streamed = es_monotonic_s();
    note("streamed %.2f h in %.0f s (%.0fx real time)", stream->seconds / 3600, streamed - started,
         stream->seconds / (streamed - started));
    int positives = 0;
    for (int k = 0; k < stream->keyword_count; k++)
        positives += stream->positives[k];
    note("choosing thresholds: %d keywords, %d positives, %d near misses, %d frames",
         stream->keyword_count, positives, stream->near_misses, (int)stream->frames);
    return es_cal_job_choose(job, p, err);
}

static int calibrate(const calibrate_options *opt, es_cal_job *job, double started, es_error *err) {
    const es_cal_params *p = &opt->params;
    int rc = es_cal_job_load(job, p, err);
    if (rc != 0) return rc;
    if (opt->output_path && !output_writable(opt->output_path))
        return es_error_set(err, ES_CAL_ERR_OUTPUT, "%s: cannot write there: %s", opt->output_path,
                            strerror(errno));
    if ((rc = read_clips(p, job, err)) != 0 || (rc = stream_and_choose(p, job, started, err)) != 0)
        return rc;
    const es_cal_result *result = &job->result;
    if (p->smoothing_count > 0) note("smoothing %d ms finds the most", result->smooth_ms);
    print_table(&job->stream, result, p->check ? NULL : &p->budget);
    fflush(stdout);
    if (p->check) return 0;
    if (!result->met)
        note("warning: even the highest thresholds give %d false alarms in %.2f h (%.2f per "
             "hour), more than %.2f",
             result->false_alarms, job->stream.negative_seconds / 3600,
             es_cal_per_hour(result->false_alarms, job->stream.negative_seconds),
             (double)p->budget.max_per_hour);
    if ((rc = es_cal_job_write(job, opt->output_path, err)) != 0) return rc;
    note("wrote %s in %.0f s", opt->output_path, es_monotonic_s() - started);
    return 0;
}

int es_cmd_calibrate(int argc, char **argv) {
    calibrate_options opt;
    const int parsed = parse_options(argc, argv, &opt);
    if (parsed != 0) return parsed > 0 ? ES_EXIT_OK : ES_EXIT_USAGE;
    const double started = es_monotonic_s();
    es_cal_job job;
    es_error err;
    const int rc = calibrate(&opt, &job, started, &err);
    if (rc != 0) es_cli_error("calibrate: %s", err.why);
    es_cal_job_free(&job);
    return rc == 0 ? ES_EXIT_OK : ES_EXIT_FAILURE;
}
