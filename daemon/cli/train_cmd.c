/*
 * earshot train MANIFEST -o MODEL — trains the VAD or the keyword model from a
 * data manifest (models/MANIFEST.md, made by scripts/data.sh).
 *
 * Every epoch draws fresh training sequences: clips picked at random, framed
 * by lead-in and tail silence (KWS: keyword-free speech may precede a keyword,
 * filler sequences join several clips, and some are noise or music alone),
 * most after a warm-up of other speech that only sets the front end's running
 * mean (its frames are dropped, as a live stream has heard speech before),
 * sped up or slowed down, labelled from the clean result, then reverberated,
 * band-limited, mixed with noise, gain-changed, turned into features by the
 * very front end inference uses, and finally warped and masked. Builder
 * threads make batches ahead of the trainer, each from a generator seeded by
 * its number. KWS with --hard-negatives: every few epochs the model in
 * training picks the keyword-free clips it finds hardest, which then lead a
 * share of the keyword-free sequences. Validation sequences are drawn the
 * same way once, from a fixed seed, from the valid split's voices and noises.
 * The test split is never read.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <soxr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "audio_file.h"
#include "augment.h"
#include "cli_util.h"
#include "commands.h"
#include "dsp.h"
#include "labels.h"
#include "manifest.h"
#include "pipeline.h"
#include "rnn.h"
#include "train.h"

enum { TASK_VAD = 0, TASK_KWS = 1 };

/* The keyword model's outputs: filler first, then these in this order; a
 * manifest's other keyword labels are appended in order of appearance. */
static const char *const standard_keywords[] = {
    "yes",  "no",  "up",  "down",  "left", "right", "on",  "off",   "stop",  "go",
    "zero", "one", "two", "three", "four", "five",  "six", "seven", "eight", "nine"};
#define STANDARD_KEYWORD_COUNT (sizeof standard_keywords / sizeof standard_keywords[0])

#define SAMPLE_RATE_HZ 16000
#define MAX_BATCH 256
#define MAX_CLIP_S 30.0
#define MIN_NOISE_SAMPLES (SAMPLE_RATE_HZ / 2)

/* ---- options ------------------------------------------------------------------ */

typedef struct train_options {
    const char *manifest_path;
    const char *output_path;
    int task;
    int epochs;
    float minutes;
    uint64_t seed;
    int threads;
    int hidden; /* 0: --init's width, else the task's default (recurrent_units) */
    int conv;   /* channels of a CONV1D before the recurrent layers; -1: the task's default */
    int stack;  /* frames a STACK in front joins into one step; 1: none */
    int small;
    int kws_frame_targets;
    int warmup_epochs;          /* KWS max-pool: epochs of frame targets first */
    int manifest_keywords_only; /* KWS outputs: filler + the manifest's keywords (custom models) */
    int clips_per_epoch;
    int valid_clips;
    int batch_size;
    float learning_rate;
    int lr_decay_sequences;     /* 5 % less learning rate per this many sequences; 0: default */
    float keyword_weight;       /* KWS: a keyword frame's weight against a filler frame's */
    int patience;               /* epochs without validation progress before stopping */
    float min_snr_db;           /* the noisiest mix augmentation makes */
    float envelope_probability; /* share of clips smoothed to their spectral envelope */
    float negative_peak_weight; /* KWS: extra weight of each negative's worst frame */
    int augment_ramp_epochs;    /* augmentation grows to full over this many epochs; -1: default */
    int hard_negative_epochs;   /* KWS: epochs between hard-negative rounds; 0: none */
    float average_decay;        /* per-step decay of the running weight average; 0: off */
    int checkpoint_epochs;      /* every N epochs the validated model is also saved; 0: never */
    float recorded_weight;      /* a recorded voice's clip is drawn this many times as often */
    const char *init_path;      /* a model whose matching layers the new one starts from */
} train_options;

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
    "                          its recurrent layer's units\n"
    "      --small             a tiny model and epoch, for smoke tests\n"
    "  -h, --help              this help\n"
    "\n"
    "Default architectures: VAD CONV1D 32 (kernel 3, relu) -> GRU 48 -> DENSE 1 sigmoid,\n"
    "per-frame sigmoid cross-entropy on energy labels of the clean clip; KWS GRU 128 x 2\n"
    "-> DENSE 21 softmax (filler + 20 keywords), per-frame cross-entropy.\n";

static int parse_options(int argc, char **argv, train_options *opt) {
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
        OPT_INIT
    };
    static const struct option options[] = {
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
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    *opt = (train_options){.task = TASK_VAD,
                           .epochs = 0,
                           .seed = 1,
                           .threads = 1,
                           .conv = -1,
                           .stack = 1,
                           .valid_clips = 400,
                           .warmup_epochs = 2,
                           .kws_frame_targets = 1,
                           .batch_size = 32,
                           .learning_rate = 0.002f,
                           .keyword_weight = 0.0f,
                           .augment_ramp_epochs = -1,
                           .patience = 10,
                           .min_snr_db = -5.0f,
                           .recorded_weight = 1.0f};
    int seed = 1;
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
        case OPT_TASK:
            if (strcmp(optarg, "vad") == 0)
                opt->task = TASK_VAD;
            else if (strcmp(optarg, "kws") == 0)
                opt->task = TASK_KWS;
            else {
                es_cli_error("train: --task: '%s' is not vad or kws", optarg);
                rc = -1;
            }
            break;
        case OPT_EPOCHS:
            rc = es_cli_parse_int("--epochs", optarg, 1, 100000, &opt->epochs);
            break;
        case OPT_MINUTES:
            rc = es_cli_parse_float("--minutes", optarg, 0.01, 1e6, &opt->minutes);
            break;
        case OPT_SEED:
            rc = es_cli_parse_int("--seed", optarg, 0, 2147483647, &seed);
            opt->seed = (uint64_t)seed;
            break;
        case OPT_THREADS:
            rc = es_cli_parse_int("--threads", optarg, 1, 64, &opt->threads);
            break;
        case OPT_HIDDEN:
            rc = es_cli_parse_int("--hidden", optarg, 1, 1024, &opt->hidden);
            break;
        case OPT_CONV:
            rc = es_cli_parse_int("--conv", optarg, 0, 1024, &opt->conv);
            break;
        case OPT_STACK:
            rc = es_cli_parse_int("--stack", optarg, 1, 8, &opt->stack);
            break;
        case OPT_SMALL:
            opt->small = 1;
            break;
        case OPT_WARMUP:
            rc = es_cli_parse_int("--warmup-epochs", optarg, 0, 100000, &opt->warmup_epochs);
            break;
        case OPT_MANIFEST_KEYWORDS_ONLY:
            opt->manifest_keywords_only = 1;
            break;
        case OPT_KWS_LOSS:
            if (strcmp(optarg, "maxpool") == 0)
                opt->kws_frame_targets = 0;
            else if (strcmp(optarg, "frames") == 0)
                opt->kws_frame_targets = 1;
            else {
                es_cli_error("train: --kws-loss: '%s' is not maxpool or frames", optarg);
                rc = -1;
            }
            break;
        case OPT_CLIPS:
            rc = es_cli_parse_int("--clips", optarg, 1, 10000000, &opt->clips_per_epoch);
            break;
        case OPT_VALID_CLIPS:
            rc = es_cli_parse_int("--valid-clips", optarg, 1, 1000000, &opt->valid_clips);
            break;
        case OPT_BATCH:
            rc = es_cli_parse_int("--batch", optarg, 1, MAX_BATCH, &opt->batch_size);
            break;
        case OPT_LR:
            rc = es_cli_parse_float("--learning-rate", optarg, 1e-6, 1.0, &opt->learning_rate);
            break;
        case OPT_LR_DECAY:
            rc = es_cli_parse_int("--lr-decay-every", optarg, 1, 1000000000,
                                  &opt->lr_decay_sequences);
            break;
        case OPT_NEGATIVE_PEAK_WEIGHT:
            rc = es_cli_parse_float("--negative-peak-weight", optarg, 0.0, 10000.0,
                                    &opt->negative_peak_weight);
            break;
        case OPT_MIN_SNR:
            rc = es_cli_parse_float("--min-snr", optarg, -30.0, 29.0, &opt->min_snr_db);
            break;
        case OPT_PATIENCE:
            rc = es_cli_parse_int("--patience", optarg, 1, 10000, &opt->patience);
            break;
        case OPT_HARD_NEGATIVES:
            rc = es_cli_parse_int("--hard-negatives", optarg, 0, 10000, &opt->hard_negative_epochs);
            break;
        case OPT_ENVELOPE:
            rc = es_cli_parse_float("--envelope", optarg, 0.0, 1.0, &opt->envelope_probability);
            break;
        case OPT_WEIGHT_AVERAGE:
            rc = es_cli_parse_float("--weight-average", optarg, 0.0, 0.99999, &opt->average_decay);
            break;
        case OPT_CHECKPOINTS:
            rc = es_cli_parse_int("--checkpoints", optarg, 0, 1000000, &opt->checkpoint_epochs);
            break;
        case OPT_INIT:
            opt->init_path = optarg;
            break;
        case OPT_AUGMENT_RAMP:
            rc = es_cli_parse_int("--augment-ramp", optarg, 0, 10000, &opt->augment_ramp_epochs);
            break;
        case OPT_KEYWORD_WEIGHT:
            rc = es_cli_parse_float("--keyword-weight", optarg, 0.01, 1000.0, &opt->keyword_weight);
            break;
        case OPT_RECORDED_WEIGHT:
            rc = es_cli_parse_float("--recorded-weight", optarg, 0.01, 1000.0,
                                    &opt->recorded_weight);
            break;
        default:
            rc = es_cli_bad_option("train", c, argv);
        }
        if (rc < 0) return -1;
    }
    if (!(opt->manifest_path = es_cli_one_operand("train", "MANIFEST", argc, argv))) return -1;
    if (!opt->output_path) {
        es_cli_error("train: -o MODEL is required");
        return -1;
    }
    if (opt->clips_per_epoch == 0) opt->clips_per_epoch = 2000;
    if (opt->epochs == 0) opt->epochs = opt->minutes > 0 ? 100000 : 30;
    /* Keywords are learnt on clean audio first: under full augmentation from
     * the start, the 20-keyword model stayed near chance for 15 epochs of 2000
     * (valid recall at 5 % filler alarms 0.08); on clean audio it reached 0.46
     * in 11 (models/kws.md). */
    if (opt->augment_ramp_epochs < 0) opt->augment_ramp_epochs = opt->task == TASK_KWS ? 30 : 0;
    /* KWS sequences are short and its runs a million of them long. */
    if (opt->lr_decay_sequences == 0)
        opt->lr_decay_sequences = opt->task == TASK_KWS ? 10000 : 4000;
    if (opt->keyword_weight == 0.0f) opt->keyword_weight = opt->task == TASK_KWS ? 3.0f : 1.0f;
    if (opt->conv < 0) opt->conv = opt->task == TASK_VAD ? 32 : 0;
    if (opt->small) {
        opt->hidden = opt->task == TASK_VAD ? 8 : 16;
        if (opt->conv > 0) opt->conv = 8;
        opt->clips_per_epoch = 16;
        opt->valid_clips = 8;
        if (opt->batch_size > 8) opt->batch_size = 8;
    }
    return 0;
}

/* ---- manifest --------------------------------------------------------------------- */

/* A manifest line as the trainer draws it (its strings are the manifest's). */
typedef struct clip {
    const char *path; /* as the manifest names it, resolved against its folder */
    int split, kind;
    int output; /* KWS output index of the keyword; 0 for everything else */
    double start_s, end_s;
    int recorded; /* a recorded voice, not a synthesiser's */
} clip;

typedef struct manifest {
    es_manifest lines; /* as read (manifest.h) */
    clip *clips;
    int count;
    const char *labels[ES_MAX_OUTPUTS]; /* KWS outputs; [0] = "filler" */
    int label_count;
    int *by_split_kind[ES_SPLIT_COUNT][ES_KIND_COUNT];
    int kind_count[ES_SPLIT_COUNT][ES_KIND_COUNT];
    /* With --recorded-weight: the running sum of the draw weights of
     * by_split_kind's clips, for drawing one in proportion to its weight;
     * NULL when every clip weighs the same (draws then stay those of the
     * shipped recipes, bit for bit). */
    double *cumulative_weight[ES_SPLIT_COUNT][ES_KIND_COUNT];
} manifest;

static void manifest_free(manifest *mf) {
    free(mf->clips);
    for (int s = 0; s < ES_SPLIT_COUNT; s++)
        for (int k = 0; k < ES_KIND_COUNT; k++) {
            free(mf->by_split_kind[s][k]);
            free(mf->cumulative_weight[s][k]);
        }
    es_manifest_free(&mf->lines);
}

/* The KWS output of a keyword label, appended when new; -1 when there is no
 * room for it. Labels point into the manifest's lines. */
static int keyword_output(manifest *mf, const char *label) {
    for (int i = 1; i < mf->label_count; i++)
        if (strcmp(mf->labels[i], label) == 0) return i;
    if (mf->label_count >= ES_MAX_OUTPUTS || strlen(label) >= ES_MAX_LABEL) return -1;
    mf->labels[mf->label_count] = label;
    return mf->label_count++;
}

/* Draw weights of speech clips: recorded voices weigh `recorded_weight`,
 * synthetic ones 1. Noise is drawn evenly whatever it is. */
static int weigh_clips(manifest *mf, float recorded_weight) {
    if (recorded_weight == 1.0f) return 0;
    for (int s = 0; s < ES_SPLIT_COUNT; s++)
        for (int k = 0; k < ES_KIND_COUNT; k++) {
            if (k == ES_KIND_NOISE || mf->kind_count[s][k] == 0) continue;
            double *sum = malloc(sizeof(double) * (size_t)mf->kind_count[s][k]);
            if (!sum) return -1;
            double total = 0.0;
            for (int i = 0; i < mf->kind_count[s][k]; i++) {
                total += mf->clips[mf->by_split_kind[s][k][i]].recorded ? recorded_weight : 1.0;
                sum[i] = total;
            }
            mf->cumulative_weight[s][k] = sum;
        }
    return 0;
}

static int index_clips(manifest *mf, float recorded_weight) {
    for (int s = 0; s < ES_SPLIT_COUNT; s++)
        for (int k = 0; k < ES_KIND_COUNT; k++) {
            mf->by_split_kind[s][k] = malloc(sizeof(int) * (size_t)(mf->count + 1));
            if (!mf->by_split_kind[s][k]) return -1;
        }
    for (int i = 0; i < mf->count; i++) {
        const clip *c = &mf->clips[i];
        mf->by_split_kind[c->split][c->kind][mf->kind_count[c->split][c->kind]++] = i;
    }
    return weigh_clips(mf, recorded_weight);
}

/* Prints `earshot: FILE:LINE: why` for the first bad line and returns -1. */
static int read_manifest(const char *path, int standard_outputs, float recorded_weight,
                         manifest *mf) {
    memset(mf, 0, sizeof(*mf));
    mf->labels[0] = "filler";
    mf->label_count = 1;
    for (size_t i = 0; standard_outputs && i < STANDARD_KEYWORD_COUNT; i++)
        mf->labels[mf->label_count++] = standard_keywords[i];
    es_error err;
    if (es_manifest_read(path, &mf->lines, &err) != ES_MANIFEST_OK) {
        es_cli_error("%s", err.why);
        return -1;
    }
    mf->clips = calloc((size_t)mf->lines.count + 1, sizeof(clip));
    if (!mf->clips) {
        es_cli_error("%s: out of memory", path);
        return -1;
    }
    for (int i = 0; i < mf->lines.count; i++) {
        const es_manifest_clip *line = &mf->lines.clips[i];
        clip *c = &mf->clips[mf->count++];
        *c = (clip){.path = line->path,
                    .split = line->split,
                    .kind = line->kind,
                    .start_s = line->start_s,
                    .end_s = line->end_s,
                    .recorded = line->recorded};
        if (c->kind == ES_KIND_KEYWORD && (c->output = keyword_output(mf, line->label)) < 0) {
            es_cli_error("%s:%ld: keyword label '%s' is too long or one too many", path, line->line,
                         line->label);
            return -1;
        }
    }
    if (index_clips(mf, recorded_weight) != 0) {
        es_cli_error("%s: out of memory", path);
        return -1;
    }
    return 0;
}

/* ---- audio ----------------------------------------------------------------------- */

/* Reads a whole clip as 16 kHz mono (at most MAX_CLIP_S); prints the reason on failure. */
static int load_clip(const char *path, float **out, size_t *out_count) {
    *out = NULL;
    *out_count = 0;
    char why[256];
    es_audio_file *file = NULL;
    if (es_audio_file_open(path, &file, why, sizeof why) != 0) {
        es_cli_error("%s: %s", path, why);
        return -1;
    }
    const es_audio_info *info = es_audio_file_info(file);
    const size_t max_frames = (size_t)(MAX_CLIP_S * info->sample_rate_hz);
    float *mono = malloc(sizeof(float) * max_frames);
    float *chunk = malloc(sizeof(float) * 4096 * (size_t)info->channels);
    size_t count = 0;
    int rc = mono && chunk ? 0 : -1;
    if (rc) es_cli_error("%s: out of memory", path);
    while (rc == 0 && count < max_frames) {
        size_t want = max_frames - count < 4096 ? max_frames - count : 4096;
        const long got = es_audio_file_read(file, chunk, want, why, sizeof why);
        if (got < 0) {
            es_cli_error("%s: %s", path, why);
            rc = -1;
        }
        if (got <= 0) break;
        for (long i = 0; i < got; i++) {
            float sum = 0.0f;
            for (int ch = 0; ch < info->channels; ch++)
                sum += chunk[(size_t)i * info->channels + ch];
            mono[count++] = sum / (float)info->channels;
        }
    }
    const int rate_hz = info->sample_rate_hz;
    free(chunk);
    es_audio_file_close(file);
    if (rc == 0 && rate_hz != SAMPLE_RATE_HZ) {
        /* Manifests from scripts/data.sh are 16 kHz already; others are converted. */
        const size_t capacity = (size_t)((double)count * SAMPLE_RATE_HZ / rate_hz) + 16;
        float *resampled = malloc(sizeof(float) * capacity);
        size_t produced = 0;
        if (!resampled || soxr_oneshot(rate_hz, SAMPLE_RATE_HZ, 1, mono, count, NULL, resampled,
                                       capacity, &produced, NULL, NULL, NULL) != NULL) {
            es_cli_error("%s: cannot resample from %d Hz", path, rate_hz);
            free(resampled);
            rc = -1;
        } else {
            free(mono);
            mono = resampled;
            count = produced;
        }
    }
    if (rc != 0) {
        free(mono);
        return -1;
    }
    *out = mono;
    *out_count = count;
    return 0;
}

/* The noises of one split, in memory: mixed into every sequence of that split. */
typedef struct noise_pool {
    float **samples;
    size_t *counts;
    int count;
} noise_pool;

static void noise_pool_free(noise_pool *pool) {
    for (int i = 0; i < pool->count; i++)
        free(pool->samples[i]);
    free(pool->samples);
    free(pool->counts);
}

static int noise_pool_load(const manifest *mf, int split, noise_pool *pool) {
    const int n = mf->kind_count[split][ES_KIND_NOISE];
    pool->samples = calloc((size_t)n + 1, sizeof(float *));
    pool->counts = calloc((size_t)n + 1, sizeof(size_t));
    pool->count = 0;
    if (!pool->samples || !pool->counts) return -1;
    for (int i = 0; i < n; i++) {
        const clip *c = &mf->clips[mf->by_split_kind[split][ES_KIND_NOISE][i]];
        if (load_clip(c->path, &pool->samples[pool->count], &pool->counts[pool->count]) != 0)
            return -1;
        /* Noise is read cyclically: a very short effect would repeat into a tone.
         * Short clips still serve the VAD as speech-free sequences. */
        if (pool->counts[pool->count] >= MIN_NOISE_SAMPLES)
            pool->count++;
        else
            free(pool->samples[pool->count]);
    }
    return 0;
}

/* ---- sequences ----------------------------------------------------------------------- */

typedef struct sample_buffer {
    float *data;
    size_t count, capacity;
} sample_buffer;

static int buffer_reserve(sample_buffer *b, size_t more) {
    if (b->count + more <= b->capacity) return 0;
    size_t capacity = b->capacity ? b->capacity : 65536;
    while (capacity < b->count + more)
        capacity *= 2;
    float *grown = realloc(b->data, sizeof(float) * capacity);
    if (!grown) return -1;
    b->data = grown;
    b->capacity = capacity;
    return 0;
}

static int buffer_append(sample_buffer *b, const float *samples, size_t count) {
    if (buffer_reserve(b, count)) return -1;
    if (samples)
        memcpy(b->data + b->count, samples, sizeof(float) * count);
    else
        memset(b->data + b->count, 0, sizeof(float) * count);
    b->count += count;
    return 0;
}

typedef struct built_sequence {
    es_sequence seq;
    float *inputs;
    float *targets;     /* VAD */
    int *class_targets; /* KWS with --kws-loss frames */
} built_sequence;

static void built_free(built_sequence *b) {
    free(b->inputs);
    free(b->targets);
    free(b->class_targets);
    memset(b, 0, sizeof(*b));
}

/* What building a sequence works in: each batch builder has its own. */
typedef struct sequence_builder {
    es_frontend *frontend;
    sample_buffer clean;
    es_augment_config augment; /* what sequences are built with now */
} sequence_builder;

struct trainer_data;

/* A training batch, numbered from the first batch of the first phase. */
typedef struct batch_slot {
    struct trainer_data *owner; /* what its builder thread builds from */
    built_sequence seqs[MAX_BATCH];
    es_sequence views[MAX_BATCH];
    int count;
    long number;
    int claimed; /* built or being built as batch `number`, not yet handed out */
    int building;
    pthread_t thread;
    int status;
} batch_slot;

#define MAX_BUILDERS 8

typedef struct frame_collector {
    float *inputs;
    int frames, capacity, bands;
    int skip; /* frames still to drop before collecting (the warm-up's) */
} frame_collector;

static void collect_frame(const es_frame *frame, void *user) {
    frame_collector *fc = user;
    if (fc->skip > 0) {
        fc->skip--;
        return;
    }
    if (fc->frames >= fc->capacity) return;
    memcpy(fc->inputs + (size_t)fc->frames * fc->bands, frame->features,
           sizeof(float) * (size_t)fc->bands);
    fc->frames++;
}

/* The features of `count` samples through a builder's front end, from its
 * first state, dropping the first `skip` frames and keeping at most
 * `capacity`: a new array (NULL when out of memory), *frames filled. */
static float *builder_features(const es_frontend_config *config, sequence_builder *b,
                               const float *samples, size_t count, int capacity, int skip,
                               int *frames) {
    float *inputs = malloc(sizeof(float) * (size_t)(capacity + 1) * config->mel_bands);
    if (!inputs) return NULL;
    frame_collector fc = {
        .inputs = inputs, .capacity = capacity, .bands = config->mel_bands, .skip = skip};
    es_frontend_reset(b->frontend);
    es_frontend_process(b->frontend, samples, count, collect_frame, &fc);
    *frames = fc.frames;
    return inputs;
}

/* --hard-negatives: how many clips a round scores and keeps, and how often a
 * hard one leads a keyword-free sequence. */
#define HARD_SAMPLE 4000
#define HARD_KEEP 300
#define HARD_SHARE 0.3
#define HARD_MIN_SCORE 0.05f /* a clip that peaks lower is no hard case */

typedef struct trainer_data {
    const train_options *opt;
    const manifest *mf;
    es_frontend_config frontend_config;
    es_augment_config augment_full; /* the curriculum's end, and the validation set's */
    es_speech_label_config labels;
    noise_pool noises[2]; /* train, valid */
    /* Batch n is built by builders[n % builder_count] into slots[n % (builder_count + 1)]:
     * the one handed out, and the next builder_count on their way. */
    sequence_builder builders[MAX_BUILDERS];
    int builder_count;
    batch_slot slots[MAX_BUILDERS + 1];
    /* The cached validation set. */
    built_sequence *valid;
    es_sequence *valid_seqs;
    int valid_count;
    int batches_per_epoch;
    /* Progress. */
    double last_epoch_s;
    int stopped_for_time;
    double started_s; /* the clock at the start of the first phase */
    int epoch_offset; /* epochs run by earlier phases */
    /* --hard-negatives: the clips the model found most keyword-like at the
     * last round, hardest first, with where in each it peaked. */
    int hard_clips[HARD_KEEP];
    float hard_peak_s[HARD_KEEP];
    int hard_count;
    int epochs_validated; /* all phases: which epoch's end this is */
    int hard_failed;      /* a round could not finish: training stops */
} trainer_data;

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig) {
    (void)sig;
    interrupted = 1;
}

/* Sequence recipes: how often each kind leads a sequence. Keyword-free speech
 * dominates the KWS mix on purpose: the prototype's false alarms came from it. */
static int draw_kind(const trainer_data *d, int split, es_rng *rng) {
    static const float vad_weights[ES_KIND_COUNT] = {0.2f, 0.35f, 0.3f, 0.15f};
    /* KWS: noise and music alone too, or the model never learns that they
     * are not speech: custom models fired 6 times an hour on unseen music. */
    static const float kws_weights[ES_KIND_COUNT] = {0.45f, 0.4f, 0.15f, 0.1f};
    const float *w = d->opt->task == TASK_VAD ? vad_weights : kws_weights;
    float total = 0.0f;
    for (int k = 0; k < ES_KIND_COUNT; k++)
        if (d->mf->kind_count[split][k] > 0) total += w[k];
    if (total <= 0.0f) return -1;
    float x = (float)es_rng_uniform(rng, 0.0, total);
    for (int k = 0; k < ES_KIND_COUNT; k++) {
        if (d->mf->kind_count[split][k] == 0 || w[k] == 0.0f) continue;
        if (x < w[k]) return k;
        x -= w[k];
    }
    for (int k = ES_KIND_COUNT - 1; k >= 0; k--)
        if (d->mf->kind_count[split][k] > 0 && w[k] > 0.0f) return k;
    return -1;
}

static const clip *draw_clip(const trainer_data *d, int split, int kind, es_rng *rng) {
    const int n = d->mf->kind_count[split][kind];
    if (n == 0) return NULL;
    const double *sum = d->mf->cumulative_weight[split][kind];
    if (!sum) return &d->mf->clips[d->mf->by_split_kind[split][kind][es_rng_below(rng, n)]];
    /* The first clip whose running sum passes a uniform draw over the total. */
    const double x = es_rng_uniform(rng, 0.0, sum[n - 1]);
    int low = 0, high = n - 1;
    while (low < high) {
        const int mid = low + (high - low) / 2;
        if (sum[mid] > x)
            high = mid;
        else
            low = mid + 1;
    }
    return &d->mf->clips[d->mf->by_split_kind[split][kind][low]];
}

static size_t seconds_to_samples(double s) {
    return (size_t)(s * SAMPLE_RATE_HZ);
}

/* Which part of a clip a sequence takes, in seconds of the clip. */
typedef struct clip_window {
    double from_s, to_s; /* to_s infinite: up to the clip's end; a finite window
                            past a short clip's end slides back into the clip */
    double last_s;       /* > 0: only the clip's last last_s seconds, whatever from/to say */
} clip_window;

static const clip_window WHOLE_CLIP = {0.0, INFINITY, 0.0};

/* Appends the window of a clip and sets *origin_s to where the clip's time 0
 * falls in the buffer (negative when the window skips more of the clip's
 * beginning than the buffer held). Returns 0, or -1 (printed). */
static int append_clip(sample_buffer *b, const clip *c, clip_window w, double *origin_s) {
    float *samples = NULL;
    size_t count = 0;
    if (load_clip(c->path, &samples, &count) != 0) return -1;
    size_t from = seconds_to_samples(w.from_s > 0.0 ? w.from_s : 0.0);
    size_t to = isfinite(w.to_s) ? seconds_to_samples(w.to_s) : count;
    if (w.last_s > 0.0) {
        const size_t last = seconds_to_samples(w.last_s);
        from = count > last ? count - last : 0;
        to = count;
    }
    if (to > count && isfinite(w.to_s)) {
        /* A window past a short clip's end slides back to end with the clip. */
        const size_t length = to - from;
        to = count;
        from = count > length ? count - length : 0;
    }
    if (to > count) to = count;
    if (from > to) from = to;
    *origin_s = ((double)b->count - (double)from) / SAMPLE_RATE_HZ;
    const int rc = buffer_append(b, samples + from, to - from);
    free(samples);
    return rc;
}

/* KWS sequences stay short: a batch costs its longest sequence times its
 * size, and the keyword's own frames are what is scarce. Filler is a random
 * window of each clip; speech before a keyword, only its last moments. */
#define KWS_FILLER_MAX_S 1.6
#define KWS_CONTEXT_MAX_S 0.8
#define KWS_MAX_GAP_S 0.4  /* between the context and the last clip */
#define KWS_MAX_TAIL_S 0.6 /* after the last clip */

/* How often a sequence (VAD or KWS) has a warm-up, and how long it is: a few
 * running-mean time constants (3 s) would be exact but cost a lot of
 * front-end work. */
#define WARMUP_SHARE 0.7
#define WARMUP_MIN_S 1.0
#define WARMUP_MAX_S 4.0

/* VAD: pauses between utterances and after the last one last up to this long.
 * Live streams pause for seconds; trained on pauses of at most 1.2 s, the VAD
 * scored the noise of longer ones too high (tools/eval/vad-breakdown.js). */
#define VAD_MAX_PAUSE_S 2.5

static clip_window kws_filler_window(es_rng *rng) {
    const double from = es_rng_uniform(rng, 0.0, 2.0);
    return (clip_window){from, from + KWS_FILLER_MAX_S, 0.0};
}

/* A filler window that ends a little after `peak_s`: what made a hard
 * negative hard, with the second of speech that led up to it. */
static clip_window kws_window_before(double peak_s, es_rng *rng) {
    const double to = peak_s + es_rng_uniform(rng, 0.1, 0.5);
    const double from = to - KWS_FILLER_MAX_S;
    return (clip_window){from > 0.0 ? from : 0.0, to, 0.0};
}

static clip_window kws_context_window(es_rng *rng) {
    return (clip_window){0.0, INFINITY, es_rng_uniform(rng, 0.2, KWS_CONTEXT_MAX_S)};
}

/* A keyword clip from a little before its keyword: carriers are cut short. */
static clip_window kws_keyword_window(const clip *c, es_rng *rng) {
    return (clip_window){c->start_s - es_rng_uniform(rng, 0.1, KWS_CONTEXT_MAX_S), INFINITY, 0.0};
}

/* The noises of a split (the train split's when it has none). */
static const noise_pool *split_noises(const trainer_data *d, int split) {
    const noise_pool *pool = &d->noises[split == ES_SPLIT_TRAIN ? 0 : 1];
    return pool->count > 0 ? pool : &d->noises[0];
}

/* KWS noise alone: a stretch of one of the split's noises, from the pool in
 * memory (decoding a minute of music for three seconds slowed every batch). */
#define KWS_NOISE_MAX_S 3.0

static int append_pool_noise(sample_buffer *b, const noise_pool *pool, es_rng *rng) {
    const int which = es_rng_below(rng, pool->count);
    const size_t count = pool->counts[which];
    size_t length = seconds_to_samples(KWS_NOISE_MAX_S);
    if (length > count) length = count;
    const size_t from = (size_t)es_rng_below(rng, (int)(count - length + 1));
    return buffer_append(b, pool->samples[which] + from, length);
}

/* Per-frame classes for --kws-loss frames (labels.h says where and why). */
static int *frame_class_targets(const es_sequence *seq) {
    int *classes = malloc(sizeof(int) * (size_t)seq->frames);
    if (classes)
        es_keyword_frame_classes(seq->frames, seq->keyword, seq->kw_start, seq->kw_end, classes);
    return classes;
}

/* Builds one sequence of `split` into *out. Returns 0, or -1 (printed). */
static int build_sequence(const trainer_data *d, sequence_builder *b, int split, es_rng *rng,
                          int augment_features, built_sequence *out) {
    const int kind = draw_kind(d, split, rng);
    if (kind < 0) {
        es_cli_error("%s: no usable clips in the %s split", d->opt->manifest_path,
                     es_split_names[split]);
        return -1;
    }
    const int kws = d->opt->task == TASK_KWS;
    sample_buffer *clean = &b->clean;
    clean->count = 0;
    /* Warm-up: a live stream's running-mean normalisation has usually heard
     * seconds of speech before any word, so most sequences begin after some;
     * its frames set the mean and are dropped before the network sees them. */
    if (es_rng_uniform(rng, 0.0, 1.0) < WARMUP_SHARE) {
        const clip *warm = draw_clip(d, split, ES_KIND_SENTENCE, rng);
        if (!warm) warm = draw_clip(d, split, ES_KIND_SPEECH, rng);
        if (warm) {
            double unused_origin_s;
            const double from = es_rng_uniform(rng, 0.0, 1.0);
            const clip_window w = {from, from + es_rng_uniform(rng, WARMUP_MIN_S, WARMUP_MAX_S),
                                   0.0};
            if (append_clip(clean, warm, w, &unused_origin_s) != 0) return -1;
        }
    }
    const size_t warmup_samples = clean->count;
    /* Lead-in long enough for the running-mean normalisation to settle on the
     * background, as it has in a live stream. */
    if (buffer_append(clean, NULL, seconds_to_samples(es_rng_uniform(rng, 0.3, 1.0)))) return -1;
    const size_t content_start = clean->count;
    const clip *target = draw_clip(d, split, kind, rng);
    double hard_peak_s = -1.0; /* a hard negative's peak: its window is around it */
    if (kws && split == ES_SPLIT_TRAIN && (kind == ES_KIND_SENTENCE || kind == ES_KIND_SPEECH) &&
        d->hard_count > 0 && es_rng_uniform(rng, 0.0, 1.0) < HARD_SHARE) {
        const int which = es_rng_below(rng, d->hard_count);
        target = &d->mf->clips[d->hard_clips[which]];
        hard_peak_s = d->hard_peak_s[which];
    }
    /* KWS: keyword-free speech in runs of up to 2 clips, noise alone; a keyword
     * after speech now and then.
     * VAD: up to 2 clips, so sequences hold speech ends and restarts. */
    int parts = 1;
    if (kws && kind != ES_KIND_KEYWORD && kind != ES_KIND_NOISE) parts = 1 + es_rng_below(rng, 2);
    if (kws && kind == ES_KIND_KEYWORD && es_rng_uniform(rng, 0, 1) < 0.3) parts = 2;
    if (!kws && kind != ES_KIND_NOISE) parts = 1 + es_rng_below(rng, 2);
    const double max_gap_s = kws ? KWS_MAX_GAP_S : VAD_MAX_PAUSE_S;
    double target_origin_s = 0.0;
    const noise_pool *noises = split_noises(d, split);
    if (kws && kind == ES_KIND_NOISE && noises->count > 0) {
        if (append_pool_noise(clean, noises, rng) != 0) return -1;
        parts = 0; /* noise alone: no clip */
    }
    for (int p = 0; p < parts; p++) {
        const clip *c = target;
        if (p < parts - 1) {
            /* Context before the last clip: keyword-free speech. */
            c = draw_clip(d, split, ES_KIND_SENTENCE, rng);
            if (!c) c = draw_clip(d, split, ES_KIND_SPEECH, rng);
            if (!c) c = target;
        }
        clip_window window = WHOLE_CLIP;
        if (kws && p < parts - 1)
            window = kws_context_window(rng);
        else if (kws)
            window = kind == ES_KIND_KEYWORD ? kws_keyword_window(c, rng)
                     : hard_peak_s >= 0.0    ? kws_window_before(hard_peak_s, rng)
                                             : kws_filler_window(rng);
        double origin_s = 0.0;
        if (append_clip(clean, c, window, &origin_s) != 0) return -1;
        if (p == parts - 1) target_origin_s = origin_s;
        const double gap_s = p < parts - 1 ? es_rng_uniform(rng, 0.05, max_gap_s) : 0.0;
        if (buffer_append(clean, NULL, seconds_to_samples(gap_s))) return -1;
    }
    const size_t content_end = clean->count;
    const double tail_max_s = kws ? KWS_MAX_TAIL_S : VAD_MAX_PAUSE_S;
    if (buffer_append(clean, NULL, seconds_to_samples(es_rng_uniform(rng, 0.2, tail_max_s))))
        return -1;
    const double signal_power =
        es_mean_power(clean->data + content_start, content_end - content_start);

    /* Speed first: the labels below must follow the stretched clip. */
    const float speed = es_augment_draw_speed(&b->augment, rng);
    float *sped = NULL;
    size_t sped_count = 0;
    if (es_augment_speed(clean->data, clean->count, speed, SAMPLE_RATE_HZ, &sped, &sped_count))
        return -1;

    /* The sequence starts at the first frame after the warm-up: frames are one
     * hop apart from the buffer's start, so from there on they are the frames
     * of the buffer cut at that hop. */
    const int hop = d->labels.hop_samples;
    const int warmup_frames = (int)((double)warmup_samples / speed / hop);
    const size_t kept_from = (size_t)warmup_frames * (size_t)hop;
    const float *kept = sped + (kept_from < sped_count ? kept_from : sped_count);
    const size_t kept_count = sped_count - (size_t)(kept - sped);
    const int frames_expected = es_label_frame_count(&d->labels, kept_count);
    /* VAD targets: the clean clip's speech frames (keyword targets come from the window). */
    uint8_t *speech = NULL;
    float *inputs = NULL;
    float *targets = NULL;
    if (!kws) {
        speech = malloc((size_t)frames_expected + 1);
        if (!speech) goto fail;
        if (kind == ES_KIND_NOISE)
            memset(speech, 0, (size_t)frames_expected + 1);
        else if (es_speech_labels(&d->labels, kept, kept_count, speech) < 0)
            goto fail;
    }

    es_augment_draw draw;
    es_augment_draw_params(&b->augment, rng, &draw);
    /* A faint floor everywhere: real inputs are never digital silence. Uniform
     * noise (cheaper than Gaussian) of the drawn RMS level. */
    const double floor_peak = sqrt(3.0) * pow(10.0, es_rng_uniform(rng, -85.0, -60.0) / 20.0);
    for (size_t i = 0; i < sped_count; i++)
        sped[i] += (float)es_rng_uniform(rng, -floor_peak, floor_peak);
    const float *noise_samples = NULL;
    size_t noise_count = 0;
    if (noises->count > 0) {
        const int which = es_rng_below(rng, noises->count);
        noise_samples = noises->samples[which];
        noise_count = noises->counts[which];
    }
    if (es_augment_audio(&draw, rng, sped, sped_count, signal_power, noise_samples, noise_count,
                         SAMPLE_RATE_HZ))
        goto fail;

    const int bands = d->frontend_config.mel_bands;
    int frames = 0;
    inputs = builder_features(&d->frontend_config, b, sped, sped_count, frames_expected,
                              warmup_frames, &frames);
    if (!inputs || frames == 0) goto fail;
    if (augment_features) {
        es_augment_warp_mel(inputs, frames, bands, bands, d->frontend_config.mel_low_hz,
                            d->frontend_config.mel_high_hz, draw.warp);
        if (es_augment_envelope(inputs, frames, bands, bands,
                                es_augment_draw_envelope(&b->augment, rng)) != ES_AUGMENT_OK)
            goto fail;
        es_augment_spec_mask(&b->augment, rng, inputs, frames, bands, bands);
    }

    *out = (built_sequence){.inputs = inputs};
    out->seq.frames = frames;
    out->seq.inputs = inputs;
    out->seq.keyword = -1;
    if (kws) {
        if (kind == ES_KIND_KEYWORD) {
            const double kept_from_s = (double)kept_from / SAMPLE_RATE_HZ;
            es_keyword_window_frames(&d->labels,
                                     (target_origin_s + target->start_s) / speed - kept_from_s,
                                     (target_origin_s + target->end_s) / speed - kept_from_s,
                                     frames, &out->seq.kw_start, &out->seq.kw_end);
            if (out->seq.kw_end > out->seq.kw_start) out->seq.keyword = target->output;
        }
        {
            /* Built for either KWS loss: a max-pool run warms up on them. */
            out->class_targets = frame_class_targets(&out->seq);
            if (!out->class_targets) goto fail;
            out->seq.class_targets = out->class_targets;
        }
    } else {
        targets = malloc(sizeof(float) * (size_t)frames);
        if (!targets) goto fail;
        for (int t = 0; t < frames; t++)
            targets[t] = speech[t];
        out->targets = targets;
        out->seq.targets = targets;
    }
    free(speech);
    free(sped);
    return 0;
fail:
    es_cli_error("%s: cannot build a training sequence (out of memory?)", d->opt->manifest_path);
    free(speech);
    free(sped);
    free(inputs);
    free(targets);
    return -1;
}

/* ---- training batches, built ahead ------------------------------------------------------ */

/* Batches are built on threads of their own, several ahead, while the
 * trainer's workers compute the current one: reading, resampling, augmenting
 * and framing clips costs more than a small model's gradient. Each batch
 * draws from a generator seeded by its number, so what it holds does not
 * depend on the threads or their timing. */
static void build_batch(trainer_data *d, batch_slot *s) {
    sequence_builder *b = &d->builders[s->number % d->builder_count];
    const long epoch = s->number / d->batches_per_epoch;
    const int index = (int)(s->number % d->batches_per_epoch);
    const int ramp = d->opt->augment_ramp_epochs;
    es_augment_config_scale(&d->augment_full,
                            ramp > 0 ? (float)(epoch + 1) / (float)(ramp + 1) : 1.0f, &b->augment);
    es_rng rng;
    es_rng_seed(&rng, d->opt->seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(s->number + 1)));
    const int remaining = d->opt->clips_per_epoch - index * d->opt->batch_size;
    const int n = remaining < d->opt->batch_size ? remaining : d->opt->batch_size;
    s->count = 0;
    s->status = ES_RNN_OK;
    for (int i = 0; i < n; i++) {
        built_free(&s->seqs[i]);
        if (build_sequence(d, b, ES_SPLIT_TRAIN, &rng, 1, &s->seqs[i]) != 0) {
            s->status = ES_RNN_ERR_IO;
            return;
        }
        s->views[i] = s->seqs[i].seq;
        s->count++;
    }
}

static void *batch_builder(void *user) {
    batch_slot *s = user;
    build_batch(s->owner, s);
    return NULL;
}

static void finish_building(batch_slot *s) {
    if (s->building) pthread_join(s->thread, NULL);
    s->building = 0;
}

static void finish_all_building(trainer_data *d) {
    for (int i = 0; i <= d->builder_count; i++)
        finish_building(&d->slots[i]);
}

static batch_slot *slot_of(trainer_data *d, long number) {
    return &d->slots[number % (d->builder_count + 1)];
}

/* Whether a hard-negative round runs at the end of the epoch before batch `number`. */
static int hard_round_before(const trainer_data *d, long number) {
    const int every = d->opt->hard_negative_epochs;
    const long epoch = number / d->batches_per_epoch;
    return every > 0 && number % d->batches_per_epoch == 0 && epoch > 0 && epoch % every == 0;
}

/* Without a thread, the batch is built when it is asked for. */
static void start_building(trainer_data *d, long number) {
    batch_slot *s = slot_of(d, number);
    if (s->claimed && s->number == number) return;
    finish_building(s);
    s->number = number;
    s->owner = d;
    s->building = pthread_create(&s->thread, NULL, batch_builder, s) == 0;
    s->claimed = s->building;
}

static int next_train_batch(void *user, int epoch, int index, const es_sequence **batch,
                            int *count) {
    trainer_data *d = user;
    if (d->hard_failed) return ES_RNN_ERR_NOMEM;
    if (index >= d->batches_per_epoch || interrupted) return 0;
    const long number = (long)(d->epoch_offset + epoch) * d->batches_per_epoch + index;
    batch_slot *s = slot_of(d, number);
    finish_building(s);
    if (!s->claimed || s->number != number) {
        /* Not built ahead (the first batch, or no thread to be had): built
         * here, with no builder busy on another batch that may share its state. */
        finish_all_building(d);
        s->number = number;
        build_batch(d, s);
    }
    s->claimed = 0;
    if (s->status != ES_RNN_OK) return s->status;
    /* The next builder_count batches on their way, in the other slots: the
     * trainer reads this one until the next call. Not past a hard-negative
     * round: the batches after it draw from what it finds. */
    for (long ahead = number + 1; ahead <= number + d->builder_count; ahead++) {
        if (hard_round_before(d, ahead)) break;
        start_building(d, ahead);
    }
    *batch = s->views;
    *count = s->count;
    return 1;
}

static int next_valid_batch(void *user, int epoch, int index, const es_sequence **batch,
                            int *count) {
    trainer_data *d = user;
    (void)epoch;
    const int start = index * d->opt->batch_size;
    if (start >= d->valid_count) return 0;
    const int left = d->valid_count - start;
    *batch = d->valid_seqs + start;
    *count = left < d->opt->batch_size ? left : d->opt->batch_size;
    return 1;
}

static int build_valid_set(trainer_data *d) {
    const int has_valid = d->mf->kind_count[ES_SPLIT_VALID][ES_KIND_KEYWORD] +
                              d->mf->kind_count[ES_SPLIT_VALID][ES_KIND_SENTENCE] +
                              d->mf->kind_count[ES_SPLIT_VALID][ES_KIND_SPEECH] >
                          0;
    if (!has_valid) return 0;
    d->valid = calloc((size_t)d->opt->valid_clips, sizeof(built_sequence));
    d->valid_seqs = calloc((size_t)d->opt->valid_clips, sizeof(es_sequence));
    if (!d->valid || !d->valid_seqs) return -1;
    es_rng rng;
    es_rng_seed(&rng, d->opt->seed ^ 0x76616c6964ULL); /* the same draw whatever the epochs */
    for (int i = 0; i < d->opt->valid_clips; i++) {
        if (build_sequence(d, &d->builders[0], ES_SPLIT_VALID, &rng, 0, &d->valid[i]) != 0)
            return -1;
        d->valid_seqs[i] = d->valid[i].seq;
        d->valid_count++;
    }
    return 0;
}

/* ---- hard negatives (--hard-negatives) ------------------------------------------------- */

/* Every few epochs the model being trained listens to a fresh sample of the
 * train split's keyword-free clips and to the hardest ones of the last
 * round; the clips it finds most keyword-like lead HARD_SHARE of the
 * keyword-free sequences until the next round, cut to end just after their
 * peak. A random draw meets the rare sentence that peaks once in hours (what
 * a false-alarm budget is about) once in many epochs; this meets it every
 * few batches, while the model still finds it hard. */

typedef struct hard_candidate {
    int clip;
    float score, peak_s;
} hard_candidate;

/* One scoring thread: candidates first, first + step, ... */
typedef struct hard_scoring {
    const trainer_data *d;
    const es_model *model;
    sequence_builder *builder;
    hard_candidate *candidates;
    int count, first, step;
    int failed;
    pthread_t thread;
} hard_scoring;

#define HARD_LEAD_IN_S 0.5

/* The clip as the model hears it alone after half a second of faint noise:
 * its highest keyword posterior and when (seconds into the clip). */
static int score_clip(const trainer_data *d, sequence_builder *b, const es_model *m,
                      hard_candidate *c) {
    sample_buffer *buf = &b->clean;
    buf->count = 0;
    double origin_s = 0.0;
    if (buffer_append(buf, NULL, seconds_to_samples(HARD_LEAD_IN_S)) != 0 ||
        append_clip(buf, &d->mf->clips[c->clip], WHOLE_CLIP, &origin_s) != 0)
        return -1;
    es_rng rng;
    es_rng_seed(&rng, (uint64_t)c->clip + 1);
    for (size_t i = 0; i < buf->count; i++)
        buf->data[i] += (float)es_rng_uniform(&rng, -1e-3, 1e-3);
    const int outputs = es_model_output_size(m);
    const int capacity = es_label_frame_count(&d->labels, buf->count);
    int frames = 0;
    float *inputs =
        builder_features(&d->frontend_config, b, buf->data, buf->count, capacity, 0, &frames);
    float *out = malloc(sizeof(float) * (size_t)(capacity + 1) * outputs);
    int rc = inputs && out ? 0 : -1;
    if (rc == 0) rc = es_model_forward_sequence(m, inputs, frames, out) == ES_RNN_OK ? 0 : -1;
    c->score = 0.0f;
    c->peak_s = 0.0f;
    for (int t = 0; rc == 0 && t < frames; t++)
        for (int k = 1; k < outputs; k++)
            if (out[(size_t)t * outputs + k] > c->score) {
                c->score = out[(size_t)t * outputs + k];
                c->peak_s = (float)((double)t * d->labels.hop_samples / SAMPLE_RATE_HZ - origin_s);
            }
    free(inputs);
    free(out);
    return rc;
}

static void *score_candidates(void *user) {
    hard_scoring *job = user;
    for (int i = job->first; i < job->count && !job->failed; i += job->step)
        job->failed = score_clip(job->d, job->builder, job->model, &job->candidates[i]) != 0;
    return NULL;
}

static int harder_first(const void *a, const void *b) {
    const hard_candidate *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return (x->clip > y->clip) - (x->clip < y->clip);
}

/* A round: scores the last round's hard clips and HARD_SAMPLE fresh ones on
 * the builders' front ends (no batch is being built: hard_round_before keeps
 * them idle), keeps the HARD_KEEP hardest. Returns 0, or -1 (printed). */
static int mine_hard_negatives(trainer_data *d, const es_model *m) {
    const int sentences = d->mf->kind_count[ES_SPLIT_TRAIN][ES_KIND_SENTENCE];
    const int speech = d->mf->kind_count[ES_SPLIT_TRAIN][ES_KIND_SPEECH];
    if (sentences + speech == 0) return 0;
    const double started_s = es_cli_monotonic_s();
    finish_all_building(d);
    /* A manifest with no more than HARD_SAMPLE of them is scored whole. */
    const int pool = sentences + speech;
    const int fresh = pool < HARD_SAMPLE ? pool : HARD_SAMPLE;
    const int count = d->hard_count + fresh;
    hard_candidate *candidates = calloc((size_t)count, sizeof(hard_candidate));
    if (!candidates) {
        es_cli_error("train: hard negatives: out of memory");
        return -1;
    }
    for (int i = 0; i < d->hard_count; i++)
        candidates[i].clip = d->hard_clips[i];
    es_rng rng;
    es_rng_seed(&rng, d->opt->seed ^ (0x68617264ULL * (uint64_t)(d->epochs_validated + 1)));
    for (int i = 0; i < fresh; i++) {
        const int pick = fresh == pool ? i : es_rng_below(&rng, pool);
        candidates[d->hard_count + i].clip =
            pick < sentences
                ? d->mf->by_split_kind[ES_SPLIT_TRAIN][ES_KIND_SENTENCE][pick]
                : d->mf->by_split_kind[ES_SPLIT_TRAIN][ES_KIND_SPEECH][pick - sentences];
    }
    hard_scoring jobs[MAX_BUILDERS];
    int started[MAX_BUILDERS] = {0};
    for (int t = 0; t < d->builder_count; t++) {
        jobs[t] = (hard_scoring){.d = d,
                                 .model = m,
                                 .builder = &d->builders[t],
                                 .candidates = candidates,
                                 .count = count,
                                 .first = t,
                                 .step = d->builder_count};
        started[t] =
            t > 0 && pthread_create(&jobs[t].thread, NULL, score_candidates, &jobs[t]) == 0;
    }
    int failed = 0;
    for (int t = 0; t < d->builder_count; t++) {
        /* This thread's share, and that of any thread that could not start. */
        if (started[t])
            pthread_join(jobs[t].thread, NULL);
        else
            score_candidates(&jobs[t]);
        failed |= jobs[t].failed;
    }
    if (failed) {
        free(candidates);
        es_cli_error("train: hard negatives: cannot score a clip (out of memory?)");
        return -1;
    }
    qsort(candidates, (size_t)count, sizeof *candidates, harder_first);
    int kept = 0, above_half = 0;
    for (int i = 0; i < count; i++)
        above_half += candidates[i].score > 0.5f;
    for (int i = 0; i < count && kept < HARD_KEEP && candidates[i].score >= HARD_MIN_SCORE; i++) {
        int seen = 0; /* a fresh draw may repeat a clip */
        for (int k = 0; k < kept && !seen; k++)
            seen = d->hard_clips[k] == candidates[i].clip;
        if (seen) continue;
        d->hard_clips[kept] = candidates[i].clip;
        d->hard_peak_s[kept] = candidates[i].peak_s;
        kept++;
    }
    d->hard_count = kept;
    fprintf(stderr,
            "earshot: train: hard negatives: %d of %d clips peak above 0.5, %d kept (the "
            "hardest %.2f: %s), %.1f s\n",
            above_half, count, kept, kept ? (double)candidates[0].score : 0.0,
            kept ? d->mf->clips[d->hard_clips[0]].path : "-", es_cli_monotonic_s() - started_s);
    free(candidates);
    return 0;
}

/* ---- validation metric and progress --------------------------------------------------- */

typedef struct kws_figures {
    float recall;       /* keyword sequences whose keyword peaks above 0.5 in its window */
    float false_alarms; /* filler sequences where any keyword goes above 0.5 */
    /* The same with the peak posteriors themselves instead of decisions: these
     * move before any decision flips, so early stopping sees early progress. */
    float mean_keyword_peak;
    float mean_filler_peak;
    /* Recall at the threshold that 5 % of filler sequences exceed: free of
     * any fixed threshold, and it rises whenever the two sides separate. */
    float recall_at_5_percent;
} kws_figures;

typedef struct vad_figures {
    float accuracy;      /* frames decided right at 0.5 */
    float speech_recall; /* speech frames called speech */
    float false_speech;  /* non-speech frames called speech */
} vad_figures;

static vad_figures vad_measure(const trainer_data *d, es_model *m) {
    long counts[2][2] = {{0, 0}, {0, 0}}; /* [truth][decision] */
    for (int i = 0; i < d->valid_count; i++) {
        const es_sequence *s = &d->valid_seqs[i];
        float *out = malloc(sizeof(float) * (size_t)s->frames);
        if (!out || es_model_forward_sequence(m, s->inputs, s->frames, out) != ES_RNN_OK) {
            free(out);
            return (vad_figures){NAN, NAN, NAN};
        }
        for (int t = 0; t < s->frames; t++)
            counts[s->targets[t] > 0.5f][out[t] > 0.5f]++;
        free(out);
    }
    const long speech = counts[1][0] + counts[1][1], other = counts[0][0] + counts[0][1];
    return (vad_figures){
        .accuracy =
            (float)(counts[0][0] + counts[1][1]) / (float)(speech + other > 0 ? speech + other : 1),
        .speech_recall = speech ? (float)counts[1][1] / (float)speech : NAN,
        .false_speech = other ? (float)counts[0][1] / (float)other : NAN,
    };
}

static int compare_floats(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static kws_figures kws_measure(const trainer_data *d, es_model *m) {
    const int outputs = es_model_output_size(m);
    int keyword_seqs = 0, hits = 0, filler_seqs = 0, alarms = 0;
    double keyword_peaks = 0.0, filler_peaks = 0.0;
    float *keyword_peak = malloc(sizeof(float) * (size_t)(d->valid_count + 1));
    float *filler_peak = malloc(sizeof(float) * (size_t)(d->valid_count + 1));
    const kws_figures failed = {NAN, NAN, NAN, NAN, NAN};
    if (!keyword_peak || !filler_peak) {
        free(keyword_peak);
        free(filler_peak);
        return failed;
    }
    for (int i = 0; i < d->valid_count; i++) {
        const es_sequence *s = &d->valid_seqs[i];
        float *out = malloc(sizeof(float) * (size_t)s->frames * outputs);
        if (!out || es_model_forward_sequence(m, s->inputs, s->frames, out) != ES_RNN_OK) {
            free(out);
            free(keyword_peak);
            free(filler_peak);
            return failed;
        }
        if (s->keyword > 0) {
            keyword_seqs++;
            /* Up to the end of the frames the loss labels with the keyword. */
            const int labelled_end =
                s->kw_end + ES_KEYWORD_DECISION_DELAY_FRAMES + ES_KEYWORD_TARGET_FRAMES;
            const int end = labelled_end < s->frames ? labelled_end : s->frames;
            float peak = 0.0f;
            for (int t = s->kw_start; t < end; t++)
                peak = fmaxf(peak, out[(size_t)t * outputs + s->keyword]);
            hits += peak > 0.5f;
            keyword_peaks += peak;
            keyword_peak[keyword_seqs - 1] = peak;
        } else {
            filler_seqs++;
            float peak = 0.0f;
            for (int t = 0; t < s->frames; t++)
                for (int k = 1; k < outputs; k++)
                    peak = fmaxf(peak, out[(size_t)t * outputs + k]);
            alarms += peak > 0.5f;
            filler_peaks += peak;
            filler_peak[filler_seqs - 1] = peak;
        }
        free(out);
    }
    float recall_at_5_percent = 0.0f;
    if (filler_seqs > 0 && keyword_seqs > 0) {
        qsort(filler_peak, (size_t)filler_seqs, sizeof(float), compare_floats);
        const float threshold = filler_peak[(int)(0.95 * (filler_seqs - 1))];
        int above = 0;
        for (int i = 0; i < keyword_seqs; i++)
            above += keyword_peak[i] > threshold;
        recall_at_5_percent = (float)above / (float)keyword_seqs;
    }
    free(keyword_peak);
    free(filler_peak);
    return (kws_figures){
        .recall_at_5_percent = recall_at_5_percent,
        .recall = keyword_seqs ? (float)hits / keyword_seqs : 0.0f,
        .false_alarms = filler_seqs ? (float)alarms / filler_seqs : 0.0f,
        .mean_keyword_peak = keyword_seqs ? (float)(keyword_peaks / keyword_seqs) : 0.0f,
        .mean_filler_peak = filler_seqs ? (float)(filler_peaks / filler_seqs) : 0.0f,
    };
}

/* MODEL.esm -> MODEL.epochE.esm (no extension: MODEL.epochE). */
static int checkpoint_path(const char *model_path, int epoch, char *out, size_t size) {
    const char *slash = strrchr(model_path, '/');
    const char *dot = strrchr(model_path, '.');
    if (!dot || (slash && dot < slash) || dot == (slash ? slash + 1 : model_path))
        dot = model_path + strlen(model_path);
    const int n =
        snprintf(out, size, "%.*s.epoch%d%s", (int)(dot - model_path), model_path, epoch, dot);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

static void save_checkpoint(const trainer_data *d, const es_model *m) {
    char path[4096];
    es_error err;
    if (checkpoint_path(d->opt->output_path, d->epochs_validated, path, sizeof path) != 0)
        es_cli_error("train: %s: the checkpoint's name is too long", d->opt->output_path);
    else if (es_model_save(m, path, &err) != ES_RNN_OK)
        es_cli_error("train: %s: %s", path, err.why);
}

static float validation_metric(es_model *m, void *user) {
    trainer_data *d = user;
    /* An epoch's end, and the model as trained so far: the time for a round. */
    d->epochs_validated++;
    if (d->opt->checkpoint_epochs > 0 && d->epochs_validated % d->opt->checkpoint_epochs == 0)
        save_checkpoint(d, m);
    if (d->opt->task == TASK_KWS && d->epochs_validated < d->opt->epochs &&
        hard_round_before(d, (long)d->epochs_validated * d->batches_per_epoch) &&
        mine_hard_negatives(d, m) != 0)
        d->hard_failed = 1;
    if (d->valid_count == 0) return NAN;
    if (d->opt->task == TASK_VAD) return vad_measure(d, m).accuracy;
    return kws_measure(d, m).recall_at_5_percent;
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

static int report_progress(const es_train_progress *p, void *user) {
    trainer_data *d = user;
    const double budget_s = d->opt->minutes > 0 ? d->opt->minutes * 60.0 : INFINITY;
    const double total_elapsed_s = es_cli_monotonic_s() - d->started_s;
    char elapsed[32], eta[32];
    format_duration(total_elapsed_s, elapsed, sizeof elapsed);
    /* The time budget ends a run sooner than its epoch limit would. */
    format_duration(fmin(p->eta_s, budget_s - total_elapsed_s), eta, sizeof eta);
    if (!p->epoch_done) {
        if (isatty(STDERR_FILENO))
            fprintf(stderr, "\rearshot: train: epoch %d batch %d/%d loss %.4f  ",
                    d->epoch_offset + p->epoch + 1, p->batch, p->batches_per_epoch, p->train_loss);
        /* A budget overrun by more than an epoch's worth stops mid-epoch. */
        return interrupted || total_elapsed_s > budget_s + d->last_epoch_s;
    }
    if (isatty(STDERR_FILENO)) fputc('\r', stderr);
    fprintf(stderr,
            "earshot: train: epoch %d: train loss %.4f, valid loss %.4f, accuracy %.3f, "
            "metric %.3f (best %.3f, epoch %d), lr %.2g, %s, ETA %s\n",
            d->epoch_offset + p->epoch + 1, p->train_loss, p->valid_loss, p->valid_accuracy,
            p->valid_metric, p->best_metric, d->epoch_offset + p->best_epoch + 1, p->learning_rate,
            elapsed, eta);
    d->last_epoch_s = p->elapsed_s / (p->epoch + 1);
    if (total_elapsed_s + d->last_epoch_s > budget_s) {
        d->stopped_for_time = 1;
        return 1;
    }
    return interrupted;
}

/* ---- model ------------------------------------------------------------------------------- */

/* Units of each recurrent layer: --hidden, else those of --init's model's
 * first recurrent layer, else the task's default. */
static int recurrent_units(const train_options *opt, const es_model *init) {
    if (opt->hidden) return opt->hidden;
    for (int l = 0; init && l < es_model_layer_count(init); l++)
        if (es_model_layer_type(init, l) != ES_LAYER_CONV1D &&
            es_model_layer_type(init, l) != ES_LAYER_DENSE &&
            es_model_layer_type(init, l) != ES_LAYER_STACK)
            return es_model_layer_units(init, l);
    return opt->task == TASK_VAD ? 48 : 128;
}

static int build_model(const train_options *opt, const manifest *mf,
                       const es_frontend_config *frontend, const es_model *init, es_model **out) {
    const int hidden = recurrent_units(opt, init);
    es_feature_spec spec;
    es_pipeline_feature_spec(frontend, &spec);
    es_model *m = NULL;
    int rc = es_model_create(&spec, frontend->mel_bands, &m);
    if (rc != ES_RNN_OK) return rc;
    if (opt->stack > 1 &&
        (rc = es_model_add_layer(m, ES_LAYER_STACK, opt->stack * frontend->mel_bands, ES_ACT_LINEAR,
                                 opt->stack))) {
        es_model_destroy(m);
        return rc;
    }
    if (opt->conv > 0 && (rc = es_model_add_layer(m, ES_LAYER_CONV1D, opt->conv, ES_ACT_RELU, 3))) {
        es_model_destroy(m);
        return rc;
    }
    if (opt->task == TASK_VAD) {
        const char *labels[] = {"speech"};
        if ((rc = es_model_add_layer(m, ES_LAYER_GRU, hidden, ES_ACT_TANH, 0)) ||
            (rc = es_model_add_layer(m, ES_LAYER_DENSE, 1, ES_ACT_SIGMOID, 0)) ||
            (rc = es_model_set_labels(m, 1, labels))) {
            es_model_destroy(m);
            return rc;
        }
    } else {
        if ((rc = es_model_add_layer(m, ES_LAYER_GRU, hidden, ES_ACT_TANH, 0)) ||
            (rc = es_model_add_layer(m, ES_LAYER_GRU, hidden, ES_ACT_TANH, 0)) ||
            (rc = es_model_add_layer(m, ES_LAYER_DENSE, mf->label_count, ES_ACT_SOFTMAX, 0)) ||
            (rc = es_model_set_labels(m, mf->label_count, mf->labels))) {
            es_model_destroy(m);
            return rc;
        }
    }
    es_model_init_weights(m, opt->seed);
    *out = m;
    return ES_RNN_OK;
}

/* --init: the model to start from, checked against the front end. */
static es_model *load_init_model(const train_options *opt, const es_frontend_config *frontend) {
    es_error err = {0};
    es_model *init = NULL;
    const char *role = opt->task == TASK_VAD ? "vad" : "kws";
    if (es_pipeline_load_model(opt->init_path, role, frontend, &init, &err) != ES_PIPELINE_OK) {
        es_cli_error("train: --init: %s", err.why);
        return NULL;
    }
    return init;
}

/* Copies the matching layers of --init's model into the new one; none
 * matching is an error, since the run would silently start from scratch. */
static int start_from(const train_options *opt, es_model *m, const es_model *init) {
    const int copied = es_model_copy_matching_layers(m, init);
    if (copied < 0) {
        es_cli_error("train: --init: %s", es_rnn_strerror(copied));
        return -1;
    }
    if (copied == 0) {
        es_cli_error("train: --init: %s: its first layer (%s %d) does not fit the %s model's "
                     "(%s %d)",
                     opt->init_path, es_layer_type_name(es_model_layer_type(init, 0)),
                     es_model_layer_units(init, 0), opt->task == TASK_VAD ? "vad" : "kws",
                     es_layer_type_name(es_model_layer_type(m, 0)), es_model_layer_units(m, 0));
        return -1;
    }
    fprintf(stderr, "earshot: train: starting from %s: its first %d of %d layers%s\n",
            opt->init_path, copied, es_model_layer_count(m),
            copied == es_model_layer_count(m) ? " (all)" : ", the rest new");
    return 0;
}

/* Per-band mean and standard deviation of the features of a few training
 * sequences (their own draw: the training draw stays what it was), folded
 * into the first layer so training starts on standardised inputs. */
static int standardise_model_inputs(trainer_data *d, es_model *m) {
    enum { STATS_SEQUENCES = 64 };
    const int bands = d->frontend_config.mel_bands;
    double sum[ES_MAX_MEL_BANDS] = {0}, sum_sq[ES_MAX_MEL_BANDS] = {0};
    long frames = 0;
    es_rng rng;
    es_rng_seed(&rng, d->opt->seed ^ 0x7374617473ULL);
    for (int i = 0; i < STATS_SEQUENCES; i++) {
        built_sequence b = {0};
        if (build_sequence(d, &d->builders[0], ES_SPLIT_TRAIN, &rng, 1, &b) != 0) return -1;
        for (int t = 0; t < b.seq.frames; t++)
            for (int k = 0; k < bands; k++) {
                const double x = b.inputs[(size_t)t * bands + k];
                sum[k] += x;
                sum_sq[k] += x * x;
            }
        frames += b.seq.frames;
        built_free(&b);
    }
    float mean[ES_MAX_MEL_BANDS], std[ES_MAX_MEL_BANDS];
    for (int k = 0; k < bands; k++) {
        mean[k] = (float)(sum[k] / (double)frames);
        const double variance = sum_sq[k] / (double)frames - (double)mean[k] * mean[k];
        std[k] = (float)sqrt(variance > 1e-6 ? variance : 1e-6);
    }
    if (es_model_standardise_inputs(m, mean, std) != ES_RNN_OK) {
        es_cli_error("train: cannot standardise the model's inputs");
        return -1;
    }
    return 0;
}

/* ---- the command ------------------------------------------------------------------------- */

static void trainer_data_free(trainer_data *d) {
    finish_all_building(d);
    for (int s = 0; s <= d->builder_count; s++)
        for (int i = 0; i < MAX_BATCH; i++)
            built_free(&d->slots[s].seqs[i]);
    for (int i = 0; i < d->valid_count; i++)
        built_free(&d->valid[i]);
    free(d->valid);
    free(d->valid_seqs);
    noise_pool_free(&d->noises[0]);
    noise_pool_free(&d->noises[1]);
    for (int i = 0; i < d->builder_count; i++) {
        free(d->builders[i].clean.data);
        es_frontend_destroy(d->builders[i].frontend);
    }
}

static void print_data_summary(const train_options *opt, const manifest *mf) {
    fprintf(stderr,
            "earshot: train: %s task, %d clips in %s:", opt->task == TASK_VAD ? "vad" : "kws",
            mf->count, opt->manifest_path);
    for (int s = ES_SPLIT_TRAIN; s <= ES_SPLIT_VALID; s++) {
        fprintf(stderr, " %s", es_split_names[s]);
        for (int k = 0; k < ES_KIND_COUNT; k++)
            fprintf(stderr, " %d %s%s", mf->kind_count[s][k], es_kind_names[k],
                    k < ES_KIND_COUNT - 1 ? "," : ";");
    }
    fputc('\n', stderr);
    /* What a draw of each kind of speech hears: recorded voices or synthetic. */
    for (int k = ES_KIND_KEYWORD; k <= ES_KIND_SPEECH; k++) {
        const int n = mf->kind_count[ES_SPLIT_TRAIN][k];
        if (n == 0) continue;
        int recorded = 0;
        for (int i = 0; i < n; i++)
            recorded += mf->clips[mf->by_split_kind[ES_SPLIT_TRAIN][k][i]].recorded;
        const double weight = recorded * (double)opt->recorded_weight;
        fprintf(stderr, "earshot: train: %s: %d of %d train clips recorded, %.1f %% of draws\n",
                es_kind_names[k], recorded, n, 100.0 * weight / (weight + (n - recorded)));
    }
}

int es_train_was_interrupted(void) {
    return interrupted;
}

int es_cmd_train(int argc, char **argv) {
    train_options opt;
    interrupted = 0;
    const int parsed = parse_options(argc, argv, &opt);
    if (parsed != 0) return parsed > 0 ? ES_EXIT_OK : ES_EXIT_USAGE;
    /* Before any work: a typo in -o must not cost a whole run. */
    if (es_cli_check_output(opt.output_path) != 0) return ES_EXIT_FAILURE;

    manifest mf;
    if (read_manifest(opt.manifest_path, !opt.manifest_keywords_only, opt.recorded_weight, &mf) !=
        0) {
        manifest_free(&mf);
        return ES_EXIT_FAILURE;
    }
    print_data_summary(&opt, &mf);

    trainer_data d = {.opt = &opt, .mf = &mf};
    es_model *model = NULL, *init = NULL;
    es_trainer *trainer = NULL;
    int status = ES_EXIT_FAILURE;
    es_frontend_config_default(&d.frontend_config);
    /* The model before the data work: a wrong --init fails at once. */
    if (opt.init_path && !(init = load_init_model(&opt, &d.frontend_config))) goto done;
    int rc = build_model(&opt, &mf, &d.frontend_config, init, &model);
    if (rc != ES_RNN_OK) {
        es_cli_error("train: cannot build the model: %s", es_rnn_strerror(rc));
        goto done;
    }
    if (init && start_from(&opt, model, init) != 0) goto done;
    es_augment_config_default(&d.augment_full);
    d.augment_full.snr_db_min = opt.min_snr_db;
    d.augment_full.envelope_probability = opt.envelope_probability;
    es_speech_label_config_default(&d.labels);
    d.labels.sample_rate_hz = d.frontend_config.sample_rate_hz;
    d.labels.window_samples = d.frontend_config.window_samples;
    d.labels.hop_samples = d.frontend_config.hop_samples;
    d.batches_per_epoch = (opt.clips_per_epoch + opt.batch_size - 1) / opt.batch_size;

    const int kws_trainable = mf.kind_count[ES_SPLIT_TRAIN][ES_KIND_KEYWORD] > 0;
    if (opt.task == TASK_KWS && !kws_trainable) {
        es_cli_error("%s: no keyword clips in the train split", opt.manifest_path);
        goto done;
    }
    d.builder_count = opt.threads < MAX_BUILDERS ? opt.threads : MAX_BUILDERS;
    for (int i = 0; i < d.builder_count; i++) {
        d.builders[i].augment = d.augment_full;
        if (es_frontend_create(&d.frontend_config, &d.builders[i].frontend) != ES_DSP_OK) {
            es_cli_error("train: cannot create the front end");
            goto done;
        }
    }
    if (noise_pool_load(&mf, ES_SPLIT_TRAIN, &d.noises[0]) != 0 ||
        noise_pool_load(&mf, ES_SPLIT_VALID, &d.noises[1]) != 0)
        goto done;
    if (build_valid_set(&d) != 0) goto done;
    fprintf(stderr, "earshot: train: %d validation sequences, %d training sequences per epoch\n",
            d.valid_count, opt.clips_per_epoch);

    /* A copied first layer carries its own input standardisation. */
    if (!init && standardise_model_inputs(&d, model) != 0) goto done;
    fprintf(stderr, "earshot: train: model of %zu parameters, %d outputs\n",
            es_model_param_count(model), es_model_output_size(model));

    /* KWS with max-pooling starts from per-frame targets: the max-pool loss
     * scores one keyword frame per sequence, which barely moves an untrained
     * model (Sun et al. 2016 also start from a cross-entropy model). */
    es_loss losses[2];
    int phase_epochs[2], phases = 1;
    losses[0] = opt.task == TASK_VAD ? ES_LOSS_SIGMOID_CE : ES_LOSS_SOFTMAX_CE;
    phase_epochs[0] = opt.epochs;
    if (opt.task == TASK_KWS && !opt.kws_frame_targets) {
        const int warmup = opt.warmup_epochs < opt.epochs ? opt.warmup_epochs : opt.epochs - 1;
        phase_epochs[0] = warmup;
        losses[1] = ES_LOSS_KWS_MAXPOOL;
        phase_epochs[1] = opt.epochs - warmup;
        phases = 2;
    }
    const es_train_data train_data = {next_train_batch, &d, d.batches_per_epoch};
    const es_train_data valid_data = {next_valid_batch, &d, 0};
    void (*previous_handler)(int) = signal(SIGINT, on_interrupt);
    d.started_s = es_cli_monotonic_s();
    for (int phase = 0; phase < phases && rc >= 0; phase++) {
        if (phase_epochs[phase] <= 0) continue;
        if (interrupted || d.stopped_for_time) break;
        es_train_config config;
        es_train_config_default(&config);
        config.loss = losses[phase];
        config.batch_size = opt.batch_size;
        config.learning_rate = opt.learning_rate;
        config.keyword_weight = opt.keyword_weight;
        config.negative_peak_weight = opt.negative_peak_weight;
        config.patience = opt.patience;
        config.average_decay = opt.average_decay;
        /* 5 % less per opt.lr_decay_sequences, whatever the epoch size. */
        config.lr_decay = (float)pow(0.95, (double)opt.clips_per_epoch / opt.lr_decay_sequences);
        config.max_epochs = phase_epochs[phase];
        config.threads = opt.threads;
        config.seed = opt.seed + (uint64_t)phase;
        if (phases > 1)
            fprintf(stderr, "earshot: train: %s loss for up to %d epochs\n",
                    config.loss == ES_LOSS_KWS_MAXPOOL ? "max-pooling" : "per-frame warm-up",
                    config.max_epochs);
        es_trainer_destroy(trainer);
        trainer = NULL;
        rc = es_trainer_create(model, &config, &trainer);
        if (rc != ES_RNN_OK) {
            es_cli_error("train: cannot create the trainer: %s", es_rnn_strerror(rc));
            signal(SIGINT, previous_handler);
            goto done;
        }
        rc = es_train_run(trainer, &train_data, d.valid_count ? &valid_data : NULL,
                          d.valid_count ? validation_metric : NULL, report_progress, &d);
        if (rc > 0) d.epoch_offset += rc;
    }
    finish_all_building(&d);
    signal(SIGINT, previous_handler);
    if (rc < 0) {
        es_cli_error("train: training failed: %s", es_rnn_strerror(rc));
        goto done;
    }
    rc = d.epoch_offset;
    if (interrupted) fprintf(stderr, "earshot: train: interrupted; saving the best model so far\n");
    if (d.stopped_for_time)
        fprintf(stderr, "earshot: train: --minutes %.4g reached after %d epochs\n", opt.minutes,
                rc);
    if (d.valid_count && opt.task == TASK_KWS) {
        const kws_figures f = kws_measure(&d, model);
        fprintf(stderr,
                "earshot: train: valid keyword recall %.3f, filler sequences with a false "
                "alarm %.3f (threshold 0.5); mean peak posterior: keyword %.3f, filler %.3f; "
                "recall at 5 %% filler alarms %.3f\n",
                f.recall, f.false_alarms, f.mean_keyword_peak, f.mean_filler_peak,
                f.recall_at_5_percent);
    } else if (d.valid_count) {
        const vad_figures f = vad_measure(&d, model);
        fprintf(stderr,
                "earshot: train: valid frame accuracy %.4f, speech frames found %.4f, "
                "non-speech frames called speech %.4f (threshold 0.5)\n",
                f.accuracy, f.speech_recall, f.false_speech);
    }
    es_error err;
    if (es_model_save(model, opt.output_path, &err) != ES_RNN_OK) {
        es_cli_error("%s: %s", opt.output_path, err.why);
        goto done;
    }
    fprintf(stderr, "earshot: train: wrote %s\n", opt.output_path);
    status = ES_EXIT_OK;
done:
    es_trainer_destroy(trainer);
    es_model_destroy(model);
    es_model_destroy(init);
    trainer_data_free(&d);
    manifest_free(&mf);
    return status;
}
