/*
 * earshot train-keyword "PHRASE" -o MODEL — a custom keyword model from
 * nothing but the phrase.
 *
 * The work is models/train/keyword.h's es_train_keyword (its header tells
 * the steps); this file turns the options into es_keyword_params, prints
 * the run's notes (and its training step as `earshot train` prints it),
 * answers SIGINT and SIGTERM by asking the run to stop, and maps errors to
 * exit codes.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "factory.h"

/* ---- options ---------------------------------------------------------------- */

static const char usage_text[] =
    "Usage: earshot train-keyword \"PHRASE\" -o MODEL [options]\n"
    "Makes a keyword model for PHRASE from nothing but the phrase: synthesises it with\n"
    "every espeak-ng English voice and variant and flite's kal, kal16 and slt, adds\n"
    "confusable phrases made from its phonemes and keyword-free speech, trains, and\n"
    "calibrates the detection threshold on held-out negative audio. Writes MODEL (with\n"
    "its threshold) and a model card beside it (MODEL without extension + .md).\n"
    "\n"
    "  -o, --output PATH        where to write the model (required)\n"
    "      --minutes M          budget of the whole run (default 15)\n"
    "      --data DIR           scripts/data.sh's output for keyword-free speech and noise\n"
    "                           (default: $EARSHOT_DATA, else ./data when it has a\n"
    "                           manifest.tsv); 'none': synthesise a modest set instead\n"
    "      --max-false-alarms R false alarms per hour of keyword-free speech, music and\n"
    "                           noise the threshold allows (default 0.5; calibrated at half\n"
    "                           that, as unseen voices fire more often); the confusables'\n"
    "                           share that fires is reported apart (model card)\n"
    "      --init MODEL         start from MODEL's GRUs under a new output layer\n"
    "                           (default 'builtin': the built-in 20-keyword model's,\n"
    "                           trained with real speakers); 'none': from scratch\n"
    "      --freeze N           the first N layers --init gives are not trained, only\n"
    "                           those above them (default 1: the built-in model's first\n"
    "                           GRU is a frozen encoder; on real voices saying \"computer\"\n"
    "                           it found 47 % where training from scratch found 0 %:\n"
    "                           models/recipe/keyword/README.md); 0 trains them all\n"
    "      --hidden H           from scratch (implies --init none): units of each of\n"
    "                           the two GRU layers (64)\n"
    "      --made-voices N      also train on N espeak-ng variants made at random (formants,\n"
    "                           pitch, echo, synthesiser; 0-300, default 0): recall on\n"
    "                           unseen voices rose 4-6 points, and so did false alarms\n"
    "                           on unseen audio (models/recipe/keyword/README.md)\n"
    "      --threads T          synthesiser processes and trainer threads (default 2)\n"
    "      --seed S             seed of every random choice (default 1)\n"
    "      --work DIR           keep the clips and manifest in DIR (default: a temporary\n"
    "                           folder, removed at the end)\n"
    "      --small              a few voices, a tiny model from scratch and a fixed 40\n"
    "                           short epochs instead of the budget, for smoke tests\n"
    "  -h, --help               this help\n"
    "\n"
    "PHRASE: 1 to 5 English words of letters (apostrophes and hyphens inside words),\n"
    "at most 31 characters; numbers must be written as words.\n";

/* Where training starts unless told: the built-in model's first GRU frozen
 * under a trained second GRU and output layer (the choice measured on real
 * voices, models/recipe/keyword/README.md). --small (smoke tests: a tiny
 * model) and --hidden train from scratch; --init none does too. */
static int choose_start(es_keyword_params *opt, const char *init, int freeze_given,
                        int hidden_given) {
    if (init && strcmp(init, "none") == 0) {
        if (freeze_given && opt->freeze) {
            es_cli_error("train-keyword: --freeze needs a model to start from (--init)");
            return -1;
        }
        opt->init_path = NULL;
        opt->freeze = 0;
        return 0;
    }
    if (!init && (opt->small || hidden_given)) {
        if (freeze_given && opt->freeze) {
            es_cli_error("train-keyword: --freeze needs --init (the layers it keeps)");
            return -1;
        }
        opt->freeze = 0;
        return 0;
    }
    opt->init_path = init ? init : "builtin";
    if (!freeze_given) opt->freeze = 1;
    return 0;
}

static const char *default_data_dir(void) {
    const char *env = getenv("EARSHOT_DATA");
    if (env && *env) return env;
    return access("data/manifest.tsv", R_OK) == 0 ? "data" : NULL;
}

/* Over 80 lines: one case per option, nothing else. */
static int parse_options(int argc, char **argv, es_keyword_params *opt) {
    enum {
        OPT_MINUTES = 0x100,
        OPT_DATA,
        OPT_MAX_ALARMS,
        OPT_HIDDEN,
        OPT_MADE_VOICES,
        OPT_INIT,
        OPT_FREEZE,
        OPT_THREADS,
        OPT_SEED,
        OPT_WORK,
        OPT_SMALL
    };
    static const struct option options[] = {
        {"output", required_argument, NULL, 'o'},
        {"minutes", required_argument, NULL, OPT_MINUTES},
        {"data", required_argument, NULL, OPT_DATA},
        {"max-false-alarms", required_argument, NULL, OPT_MAX_ALARMS},
        {"hidden", required_argument, NULL, OPT_HIDDEN},
        {"made-voices", required_argument, NULL, OPT_MADE_VOICES},
        {"init", required_argument, NULL, OPT_INIT},
        {"freeze", required_argument, NULL, OPT_FREEZE},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"seed", required_argument, NULL, OPT_SEED},
        {"work", required_argument, NULL, OPT_WORK},
        {"small", no_argument, NULL, OPT_SMALL},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    es_keyword_params_default(opt);
    opt->data_dir = default_data_dir();
    const char *init = NULL;
    int freeze_given = 0, hidden_given = 0;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":o:h", options, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'o':
            opt->output_path = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 1;
        case OPT_MINUTES:
            rc = es_cli_parse_float("--minutes", optarg, 0.05, 1e5, &opt->minutes);
            break;
        case OPT_DATA:
            opt->data_dir = strcmp(optarg, "none") == 0 ? NULL : optarg;
            break;
        case OPT_MAX_ALARMS:
            rc = es_cli_parse_float("--max-false-alarms", optarg, 0.0, 1e4,
                                    &opt->max_alarms_per_hour);
            break;
        case OPT_HIDDEN:
            rc = es_cli_parse_int("--hidden", optarg, 4, 512, &opt->hidden);
            hidden_given = 1;
            break;
        case OPT_MADE_VOICES:
            rc = es_cli_parse_int("--made-voices", optarg, 0, ES_KEYWORD_MAX_MADE_VOICES,
                                  &opt->made_voices);
            break;
        case OPT_THREADS:
            rc = es_cli_parse_int("--threads", optarg, 1, ES_KEYWORD_MAX_WORKERS, &opt->threads);
            break;
        case OPT_SEED:
            rc = es_cli_parse_int("--seed", optarg, 0, 2147483647, &opt->seed);
            break;
        case OPT_INIT:
            init = optarg;
            break;
        case OPT_FREEZE:
            rc = es_cli_parse_int("--freeze", optarg, 0, 2, &opt->freeze);
            freeze_given = 1;
            break;
        case OPT_WORK:
            opt->work_dir = optarg;
            break;
        case OPT_SMALL:
            opt->small = 1;
            break;
        default:
            rc = es_cli_bad_option("train-keyword", c, argv);
        }
        if (rc < 0) return -1;
    }
    const char *phrase = es_cli_one_operand("train-keyword", "PHRASE", argc, argv);
    if (!phrase) return -1;
    es_error err;
    if (es_keyword_normalise_phrase(phrase, opt->phrase, &err) != 0) {
        es_cli_error("train-keyword: %s", err.why);
        return -1;
    }
    if (!opt->output_path) {
        es_cli_error("train-keyword: -o MODEL is required");
        return -1;
    }
    if (choose_start(opt, init, freeze_given, hidden_given) != 0) return -1;
    return 0;
}

/* ---- printing ------------------------------------------------------------------ */

static void print_note(const char *text, void *user) {
    (void)user;
    fprintf(stderr, "earshot: train-keyword: %s\n", text);
}

/* In the child that could not make a clip, as the commands' own errors show. */
static void print_render_failed(const char *why, void *user) {
    (void)user;
    es_cli_error("train-keyword: %s", why);
}

/* One machine-readable line for scripts (scripts/keyword-eval.sh). */
static void print_result(const es_keyword_result *r, void *user) {
    (void)user;
    printf("phrase\t%s\tminutes\t%.1f\trecall\t%.3f\tfalse_alarms_per_hour\t%.2f\t"
           "negative_hours\t%.2f\tthreshold\t%.3f\tpositives\t%d\t"
           "confusables_accepted\t%.3f\tconfusables\t%d\tsmooth_ms\t%d\n",
           r->phrase, r->minutes, r->recall, r->false_alarms_per_hour, r->negative_hours,
           (double)r->threshold, r->positives, r->confusables_accepted, r->confusables,
           r->smooth_ms);
    fflush(stdout);
}

static void report_error(const es_error *err) {
    if (err->code == ES_KEYWORD_ERR_OUTPUT)
        es_cli_error("%s", err->why);
    else if (err->code > ES_KEYWORD_ERR_FAILED) /* the training step's (factory.h) */
        es_train_cli_report_error(err);
    else
        es_cli_error("train-keyword: %s", err->why);
}

/* ---- interruption ------------------------------------------------------------------------ */

/* SIGINT or SIGTERM stops the run at the next clip or step (training writes
 * its best model so far first), and the work folder (10-30 MB of clips) is
 * removed on the way out. Only a flag is set here: es_train_keyword watches
 * it (es_keyword_params.stop) and cleans up where that is safe. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) {
    if (!stop_signal) stop_signal = sig; /* the first one says why */
}

typedef struct stop_handlers {
    struct sigaction old_int, old_term;
} stop_handlers;

static void stop_handlers_install(stop_handlers *saved) {
    stop_signal = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: waiting for a clip returns at once */
    sigaction(SIGINT, &sa, &saved->old_int);
    sigaction(SIGTERM, &sa, &saved->old_term);
}

static void stop_handlers_restore(const stop_handlers *saved) {
    sigaction(SIGINT, &saved->old_int, NULL);
    sigaction(SIGTERM, &saved->old_term, NULL);
}

/* ---- the command --------------------------------------------------------------------------- */

int es_cmd_train_keyword(int argc, char **argv) {
    es_keyword_params params;
    const int parsed = parse_options(argc, argv, &params);
    if (parsed != 0) return parsed > 0 ? ES_EXIT_OK : ES_EXIT_USAGE;
    /* Both outputs before any work: a typo in -o must not cost a whole run. */
    char card[4096 + 8];
    es_keyword_card_path(params.output_path, card, sizeof card);
    if (es_cli_check_output(params.output_path) != 0 || es_cli_check_output(card) != 0)
        return ES_EXIT_FAILURE;
    es_train_hooks train_hooks;
    es_train_cli_hooks(&train_hooks);
    const es_keyword_hooks hooks = {.note = print_note,
                                    .render_failed = print_render_failed,
                                    .train = &train_hooks,
                                    .result = print_result};
    stop_handlers handlers;
    stop_handlers_install(&handlers);
    params.stop = &stop_signal;
    es_error err;
    const int rc = es_train_keyword(&params, &hooks, &err);
    stop_handlers_restore(&handlers);
    if (rc == ES_KEYWORD_OK) return ES_EXIT_OK;
    if (rc != ES_KEYWORD_ERR_STOPPED) report_error(&err);
    if (stop_signal) {
        es_cli_error("train-keyword: stopped (%s)%s", strsignal(stop_signal),
                     params.work_dir ? "" : "; its work folder is removed");
        /* The shell's convention for a command a signal ended. */
        return 128 + stop_signal;
    }
    return rc == ES_KEYWORD_ERR_USAGE ? ES_EXIT_USAGE : ES_EXIT_FAILURE;
}
