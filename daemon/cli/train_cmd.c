/*
 * earshot train MANIFEST -o MODEL — trains the VAD or the keyword model from a
 * data manifest (models/MANIFEST.md, made by scripts/data.sh).
 *
 * The training itself is a library call (models/train/train_model.h tells
 * its recipe); this file turns the options into es_train_params, prints the
 * run's progress and figures as its hooks report them, and answers SIGINT by
 * asking the run to stop (the best model so far is then written). The same
 * printing serves train-keyword's training step (es_train_cli_hooks).
 */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "factory.h"

/* ---- options ------------------------------------------------------------------ */

static const char usage_text[] =
    "Usage: earshot train MANIFEST -o MODEL [options]\n"
    "Trains a speech (VAD) or keyword (KWS) model from a data manifest\n"
    "(models/MANIFEST.md; scripts/data.sh makes one in data/manifest.tsv).\n"
    "\n"
    "  -o, --output PATH       where to write the model (required)\n"
    "      --task vad|kws      which model (default vad)\n"
    "      --epochs N          at most N epochs (default 30, no limit with --minutes;\n"
    "                          early stopping on the validation set)\n"
    "      --minutes M         stop after about M minutes of training (default: no limit)\n"
    "      --seed S            seed of every random choice (default 1)\n"
    "      --threads T         threads computing gradients, and as many building the\n"
    "                          next batches (default 1: the machine is usually shared)\n"
    "      --hidden H          units of each recurrent layer (VAD 48, KWS 128)\n"
    "      --conv N            a CONV1D of N channels (kernel 3 frames, relu) before\n"
    "                          the recurrent layers; 0: none (VAD 32, KWS 0)\n"
    "      --stack K           the network steps once every K frames, on the K\n"
    "                          frames side by side (a STACK layer in front): 1/K of\n"
    "                          the work per second of audio (default 1: every frame)\n"
    "      --clips N           training sequences per epoch (2000)\n"
    "      --valid-clips N     validation sequences (default 400)\n"
    "      --batch N           sequences per batch (default 32)\n"
    "      --learning-rate LR  Adam's step size (default 0.002)\n"
    "      --lr-decay-every N  the step size falls 5 % every N training sequences\n"
    "                          (KWS 10000, VAD 4000): longer runs want a larger N\n"
    "      --kws-loss frames|maxpool  KWS loss: per-frame targets on the keyword's last\n"
    "                          0.3 s (default), or max-pooling over its window\n"
    "      --keyword-weight W  KWS: a keyword frame counts W filler frames in the loss (3)\n"
    "      --recorded-weight W a clip of a recorded voice (any voice but espeak:,\n"
    "                          flite: and noise:) is drawn W times as often as a\n"
    "                          synthetic one (default 1): a few hundred real speakers\n"
    "                          are otherwise drowned by thousands of synthetic clips\n"
    "      --min-snr DB        noise is mixed in at DB to 30 dB SNR (-5)\n"
    "      --envelope P        a share P of the training clips keep only the spectral\n"
    "                          envelope of each frame (10-20 of the 40 bands' cepstral\n"
    "                          coefficients), hiding the pitch harmonics: voices differ\n"
    "                          there more than words do (0: off, the default)\n"
    "      --patience N        stop after N epochs without validation progress (10)\n"
    "      --negative-peak-weight W  KWS: in keyword-free sequences the frame surest of a\n"
    "                          keyword counts 1 + W frames (0)\n"
    "      --hard-negatives N  KWS: every N epochs the model in training scores 4000\n"
    "                          fresh keyword-free training clips and the hardest so\n"
    "                          far; the 300 it finds most keyword-like lead 30 % of\n"
    "                          the keyword-free sequences that follow (0: off, the\n"
    "                          default; needs a valid split)\n"
    "      --weight-average D  validate and save a running average of the weights,\n"
    "                          D of it kept at each step (e.g. 0.995; 0: off, the default)\n"
    "      --checkpoints N     every N epochs also save the model as validated then,\n"
    "                          MODEL with .epochE before its extension (0: never, the\n"
    "                          default): for choosing an epoch by another measure, such\n"
    "                          as `earshot calibrate`'s recall at a false-alarm budget\n"
    "      --augment-ramp N    augmentation grows from clean to full over the first N\n"
    "                          epochs (KWS 30, VAD 0)\n"
    "      --warmup-epochs N   KWS max-pool: first N epochs on per-frame targets (2)\n"
    "      --manifest-keywords-only  KWS outputs: filler and the manifest's keyword labels\n"
    "                          only, without the 20 standard keywords (custom keywords)\n"
    "      --init MODEL        start from MODEL's weights: its layers from the first on,\n"
    "                          as far as they match the task's architecture ('builtin':\n"
    "                          the built-in model of the task; e.g. the keyword model's\n"
    "                          GRUs under a new output layer); --hidden defaults to\n"
    "                          its recurrent layer's units; with --stack K, a MODEL\n"
    "                          without a STACK gives its first layer's weights split\n"
    "                          over the K frames\n"
    "      --freeze N          with --init: its first N layers are not trained (0)\n"
    "      --small             a tiny model and epoch, for smoke tests\n"
    "  -h, --help              this help\n"
    "\n"
    "Default architectures: VAD CONV1D 32 (kernel 3, relu) -> GRU 48 -> DENSE 1 sigmoid,\n"
    "per-frame sigmoid cross-entropy on energy labels of the clean clip; KWS GRU 128 x 2\n"
    "-> DENSE 21 softmax (filler + 20 keywords), per-frame cross-entropy.\n";

enum {
    OPT_TASK = 0x100,
    OPT_EPOCHS,
    OPT_MINUTES,
    OPT_SEED,
    OPT_THREADS,
    OPT_HIDDEN,
    OPT_CONV,
    OPT_STACK,
    OPT_SMALL,
    OPT_CLIPS,
    OPT_VALID_CLIPS,
    OPT_BATCH,
    OPT_LR,
    OPT_LR_DECAY,
    OPT_KWS_LOSS,
    OPT_WARMUP,
    OPT_MANIFEST_KEYWORDS_ONLY,
    OPT_KEYWORD_WEIGHT,
    OPT_RECORDED_WEIGHT,
    OPT_AUGMENT_RAMP,
    OPT_PATIENCE,
    OPT_MIN_SNR,
    OPT_NEGATIVE_PEAK_WEIGHT,
    OPT_HARD_NEGATIVES,
    OPT_WEIGHT_AVERAGE,
    OPT_ENVELOPE,
    OPT_CHECKPOINTS,
    OPT_INIT,
    OPT_FREEZE
};

static const struct option long_options[] = {
    {"output", required_argument, NULL, 'o'},
    {"task", required_argument, NULL, OPT_TASK},
    {"epochs", required_argument, NULL, OPT_EPOCHS},
    {"minutes", required_argument, NULL, OPT_MINUTES},
    {"seed", required_argument, NULL, OPT_SEED},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"hidden", required_argument, NULL, OPT_HIDDEN},
    {"conv", required_argument, NULL, OPT_CONV},
    {"stack", required_argument, NULL, OPT_STACK},
    {"small", no_argument, NULL, OPT_SMALL},
    {"clips", required_argument, NULL, OPT_CLIPS},
    {"valid-clips", required_argument, NULL, OPT_VALID_CLIPS},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"learning-rate", required_argument, NULL, OPT_LR},
    {"lr-decay-every", required_argument, NULL, OPT_LR_DECAY},
    {"kws-loss", required_argument, NULL, OPT_KWS_LOSS},
    {"warmup-epochs", required_argument, NULL, OPT_WARMUP},
    {"manifest-keywords-only", no_argument, NULL, OPT_MANIFEST_KEYWORDS_ONLY},
    {"keyword-weight", required_argument, NULL, OPT_KEYWORD_WEIGHT},
    {"recorded-weight", required_argument, NULL, OPT_RECORDED_WEIGHT},
    {"augment-ramp", required_argument, NULL, OPT_AUGMENT_RAMP},
    {"patience", required_argument, NULL, OPT_PATIENCE},
    {"min-snr", required_argument, NULL, OPT_MIN_SNR},
    {"envelope", required_argument, NULL, OPT_ENVELOPE},
    {"negative-peak-weight", required_argument, NULL, OPT_NEGATIVE_PEAK_WEIGHT},
    {"hard-negatives", required_argument, NULL, OPT_HARD_NEGATIVES},
    {"weight-average", required_argument, NULL, OPT_WEIGHT_AVERAGE},
    {"checkpoints", required_argument, NULL, OPT_CHECKPOINTS},
    {"init", required_argument, NULL, OPT_INIT},
    {"freeze", required_argument, NULL, OPT_FREEZE},
    {"help", no_argument, NULL, 'h'},
    {0},
};

/* The options that set one number of es_train_params, with their ranges. */
typedef struct number_option {
    int id;
    const char *flag;
    int is_float; /* else a whole number */
    double min, max;
    size_t offset; /* of the int or float in es_train_params */
} number_option;

#define PARAM(field) offsetof(es_train_params, field)
static const number_option number_options[] = {
    {OPT_EPOCHS, "--epochs", 0, 1, 100000, PARAM(epochs)},
    {OPT_MINUTES, "--minutes", 1, 0.01, 1e6, PARAM(minutes)},
    {OPT_THREADS, "--threads", 0, 1, 64, PARAM(threads)},
    {OPT_HIDDEN, "--hidden", 0, 1, 1024, PARAM(hidden)},
    {OPT_CONV, "--conv", 0, 0, 1024, PARAM(conv)},
    {OPT_STACK, "--stack", 0, 1, 8, PARAM(stack)},
    {OPT_WARMUP, "--warmup-epochs", 0, 0, 100000, PARAM(warmup_epochs)},
    {OPT_CLIPS, "--clips", 0, 1, 10000000, PARAM(clips_per_epoch)},
    {OPT_VALID_CLIPS, "--valid-clips", 0, 1, 1000000, PARAM(valid_clips)},
    {OPT_BATCH, "--batch", 0, 1, ES_TRAIN_MAX_BATCH, PARAM(batch_size)},
    {OPT_LR, "--learning-rate", 1, 1e-6, 1.0, PARAM(learning_rate)},
    {OPT_LR_DECAY, "--lr-decay-every", 0, 1, 1000000000, PARAM(lr_decay_sequences)},
    {OPT_NEGATIVE_PEAK_WEIGHT, "--negative-peak-weight", 1, 0.0, 10000.0,
     PARAM(negative_peak_weight)},
    {OPT_MIN_SNR, "--min-snr", 1, -30.0, 29.0, PARAM(min_snr_db)},
    {OPT_PATIENCE, "--patience", 0, 1, 10000, PARAM(patience)},
    {OPT_HARD_NEGATIVES, "--hard-negatives", 0, 0, 10000, PARAM(hard_negative_epochs)},
    {OPT_ENVELOPE, "--envelope", 1, 0.0, 1.0, PARAM(envelope_probability)},
    {OPT_WEIGHT_AVERAGE, "--weight-average", 1, 0.0, 0.99999, PARAM(average_decay)},
    {OPT_CHECKPOINTS, "--checkpoints", 0, 0, 1000000, PARAM(checkpoint_epochs)},
    {OPT_AUGMENT_RAMP, "--augment-ramp", 0, 0, 10000, PARAM(augment_ramp_epochs)},
    {OPT_KEYWORD_WEIGHT, "--keyword-weight", 1, 0.01, 1000.0, PARAM(keyword_weight)},
    {OPT_RECORDED_WEIGHT, "--recorded-weight", 1, 0.01, 1000.0, PARAM(recorded_weight)},
    {OPT_FREEZE, "--freeze", 0, 0, 16, PARAM(freeze)},
};

/* A number option into its field: 0, -1 (printed), or 1 when `id` is not one. */
static int set_number(int id, const char *text, es_train_params *params) {
    for (size_t i = 0; i < COUNT_OF(number_options); i++) {
        const number_option *o = &number_options[i];
        if (o->id != id) continue;
        void *field = (char *)params + o->offset;
        return o->is_float ? es_cli_parse_float(o->flag, text, o->min, o->max, field)
                           : es_cli_parse_int(o->flag, text, (long)o->min, (long)o->max, field);
    }
    return 1;
}

/* One option that is not a plain number: 0, or -1 (printed). */
static int set_option(int c, char **argv, es_train_params *params) {
    int seed = 0, rc = 0;
    switch (c) {
    case 'o':
        params->output_path = optarg;
        return 0;
    case OPT_TASK:
        if (strcmp(optarg, "vad") != 0 && strcmp(optarg, "kws") != 0) {
            es_cli_error("train: --task: '%s' is not vad or kws", optarg);
            return -1;
        }
        params->task = strcmp(optarg, "vad") == 0 ? ES_TRAIN_VAD : ES_TRAIN_KWS;
        return 0;
    case OPT_SEED:
        rc = es_cli_parse_int("--seed", optarg, 0, 2147483647, &seed);
        params->seed = (uint64_t)seed;
        return rc;
    case OPT_SMALL:
        params->small = 1;
        return 0;
    case OPT_MANIFEST_KEYWORDS_ONLY:
        params->manifest_keywords_only = 1;
        return 0;
    case OPT_KWS_LOSS:
        if (strcmp(optarg, "maxpool") != 0 && strcmp(optarg, "frames") != 0) {
            es_cli_error("train: --kws-loss: '%s' is not maxpool or frames", optarg);
            return -1;
        }
        params->kws_frame_targets = strcmp(optarg, "frames") == 0;
        return 0;
    case OPT_INIT:
        params->init_path = optarg;
        return 0;
    default:
        rc = set_number(c, optarg, params);
        return rc <= 0 ? rc : es_cli_bad_option("train", c, argv);
    }
}

/* 1: --help shown; 0: parsed; -1: usage error (printed). */
static int parse_options(int argc, char **argv, es_train_params *params) {
    es_train_params_default(params);
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":o:h", long_options, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage_text, stdout);
            return 1;
        }
        if (set_option(c, argv, params) < 0) return -1;
    }
    if (!(params->manifest_path = es_cli_one_operand("train", "MANIFEST", argc, argv))) return -1;
    if (!params->output_path) {
        es_cli_error("train: -o MODEL is required");
        return -1;
    }
    return 0;
}

/* ---- printing the run --------------------------------------------------------------- */

static const char *task_name(es_train_task task) {
    return task == ES_TRAIN_VAD ? "vad" : "kws";
}

static void print_data(const es_train_data_summary *s, void *user) {
    (void)user;
    const es_train_params *p = s->params;
    fprintf(stderr, "earshot: train: %s task, %d clips in %s:", task_name(p->task), s->clips,
            p->manifest_path);
    for (int split = ES_SPLIT_TRAIN; split <= ES_SPLIT_VALID; split++) {
        fprintf(stderr, " %s", es_split_names[split]);
        for (int k = 0; k < ES_KIND_COUNT; k++)
            fprintf(stderr, " %d %s%s", s->kind_count[split][k], es_kind_names[k],
                    k < ES_KIND_COUNT - 1 ? "," : ";");
    }
    fputc('\n', stderr);
    /* What a draw of each kind of speech hears: recorded voices or synthetic. */
    for (int k = ES_KIND_KEYWORD; k <= ES_KIND_SPEECH; k++) {
        const int n = s->kind_count[ES_SPLIT_TRAIN][k], recorded = s->recorded[k];
        if (n == 0) continue;
        const double weight = recorded * (double)p->recorded_weight;
        fprintf(stderr, "earshot: train: %s: %d of %d train clips recorded, %.1f %% of draws\n",
                es_kind_names[k], recorded, n, 100.0 * weight / (weight + (n - recorded)));
    }
}

static void print_started_from(const char *init_path, int copied, int layers, void *user) {
    (void)user;
    fprintf(stderr, "earshot: train: starting from %s: its first %d of %d layers%s\n", init_path,
            copied, layers, copied == layers ? " (all)" : ", the rest new");
}

static void print_sets(int valid_sequences, int train_sequences, void *user) {
    (void)user;
    fprintf(stderr, "earshot: train: %d validation sequences, %d training sequences per epoch\n",
            valid_sequences, train_sequences);
}

static void print_model(size_t parameters, int outputs, void *user) {
    (void)user;
    fprintf(stderr, "earshot: train: model of %zu parameters, %d outputs\n", parameters, outputs);
}

static void print_phase(int maxpool, int max_epochs, void *user) {
    (void)user;
    fprintf(stderr, "earshot: train: %s loss for up to %d epochs\n",
            maxpool ? "max-pooling" : "per-frame warm-up", max_epochs);
}

static void format_duration(double s, char *buf, size_t size) {
    if (s < 0)
        snprintf(buf, size, "?");
    else if (s < 120)
        snprintf(buf, size, "%.0f s", s);
    else if (s < 7200)
        snprintf(buf, size, "%.1f min", s / 60);
    else
        snprintf(buf, size, "%.1f h", s / 3600);
}

/* On a terminal, the batch count of the epoch under way, on one line. */
static void print_batch(const es_train_epoch_report *r, void *user) {
    (void)user;
    if (isatty(STDERR_FILENO))
        fprintf(stderr, "\rearshot: train: epoch %d batch %d/%d loss %.4f  ", r->epoch, r->batch,
                r->batches, r->train_loss);
}

static void print_epoch(const es_train_epoch_report *r, void *user) {
    (void)user;
    char elapsed[32], eta[32];
    format_duration(r->elapsed_s, elapsed, sizeof elapsed);
    format_duration(r->eta_s, eta, sizeof eta);
    if (isatty(STDERR_FILENO)) fputc('\r', stderr);
    fprintf(stderr,
            "earshot: train: epoch %d: train loss %.4f, valid loss %.4f, accuracy %.3f, "
            "metric %.3f (best %.3f, epoch %d), lr %.2g, %s, ETA %s\n",
            r->epoch, r->train_loss, r->valid_loss, r->valid_accuracy, r->valid_metric,
            r->best_metric, r->best_epoch, r->learning_rate, elapsed, eta);
}

static void print_hard_negatives(const es_train_hard_report *r, void *user) {
    (void)user;
    fprintf(stderr,
            "earshot: train: hard negatives: %d of %d clips peak above 0.5, %d kept (the "
            "hardest %.2f: %s), %.1f s\n",
            r->above_half, r->scored, r->kept, (double)r->hardest,
            r->hardest_path ? r->hardest_path : "-", r->seconds);
}

static void print_checkpoint_failed(const es_error *err, void *user) {
    (void)user;
    es_cli_error("train: %s", err->why);
}

static void print_finished(const es_train_outcome *o, void *user) {
    (void)user;
    if (o->interrupted)
        fprintf(stderr, "earshot: train: interrupted; saving the best model so far\n");
    if (o->stopped_for_time)
        fprintf(stderr, "earshot: train: --minutes %.4g reached after %d epochs\n",
                o->params->minutes, o->epochs);
    if (!o->validated) return;
    if (o->params->task == ES_TRAIN_KWS) {
        const es_train_kws_figures *f = &o->kws;
        fprintf(stderr,
                "earshot: train: valid keyword recall %.3f, filler sequences with a false "
                "alarm %.3f (threshold 0.5); mean peak posterior: keyword %.3f, filler %.3f; "
                "recall at 5 %% filler alarms %.3f\n",
                f->recall, f->false_alarms, f->mean_keyword_peak, f->mean_filler_peak,
                f->recall_at_5_percent);
    } else {
        const es_train_vad_figures *f = &o->vad;
        fprintf(stderr,
                "earshot: train: valid frame accuracy %.4f, speech frames found %.4f, "
                "non-speech frames called speech %.4f (threshold 0.5)\n",
                f->accuracy, f->speech_recall, f->false_speech);
    }
}

static void print_saved(const char *path, void *user) {
    (void)user;
    fprintf(stderr, "earshot: train: wrote %s\n", path);
}

void es_train_cli_hooks(es_train_hooks *hooks) {
    *hooks = (es_train_hooks){.data = print_data,
                              .started_from = print_started_from,
                              .sets = print_sets,
                              .model = print_model,
                              .phase = print_phase,
                              .batch = print_batch,
                              .epoch = print_epoch,
                              .hard_negatives = print_hard_negatives,
                              .checkpoint_failed = print_checkpoint_failed,
                              .finished = print_finished,
                              .saved = print_saved};
}

void es_train_cli_report_error(const es_error *err) {
    /* A data or output error names its file first, as MANIFEST.md shows. */
    if (err->code == ES_TRAIN_ERR_DATA || err->code == ES_TRAIN_ERR_OUTPUT)
        es_cli_error("%s", err->why);
    else
        es_cli_error("train: %s", err->why);
}

/* ---- the command ---------------------------------------------------------------------- */

/* SIGINT during the epochs: the run stops and writes the best model so far. */
static volatile sig_atomic_t interrupted;
static void (*previous_handler)(int);

static void on_interrupt(int sig) {
    (void)sig;
    interrupted = 1;
}

static void answer_sigint(int running, void *user) {
    (void)user;
    if (running)
        previous_handler = signal(SIGINT, on_interrupt);
    else
        signal(SIGINT, previous_handler);
}

int es_cmd_train(int argc, char **argv) {
    es_train_params params;
    interrupted = 0;
    const int parsed = parse_options(argc, argv, &params);
    if (parsed != 0) return parsed > 0 ? ES_EXIT_OK : ES_EXIT_USAGE;
    /* Before any work: a typo in -o must not cost a whole run. */
    if (es_cli_check_output(params.output_path) != 0) return ES_EXIT_FAILURE;
    params.stop = &interrupted;
    es_train_hooks hooks;
    es_train_cli_hooks(&hooks);
    hooks.training = answer_sigint;
    es_error err;
    if (es_train_model(&params, &hooks, &err) != ES_TRAIN_OK) {
        es_train_cli_report_error(&err);
        return ES_EXIT_FAILURE;
    }
    return ES_EXIT_OK;
}
