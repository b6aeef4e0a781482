/*
 * earshot train-keyword "PHRASE" -o MODEL — a custom keyword model from
 * nothing but the phrase.
 *
 *   1. voices: every espeak-ng English accent with every variant, and flite's
 *      kal, kal16 and slt; split train/valid/test by variant exactly as
 *      scripts/data.sh splits them (models/recipe/plan.pl), so held-out
 *      voices are never heard in training, here or in data/; and on
 *      request, for training only, variants made at random (made_variants());
 *   2. render: each voice speaks the phrase (positives) and confusable
 *      phrases derived from its phonemes (`espeak-ng -q -x`): the phrase's
 *      words alone and beside other words, its first and last parts, and
 *      single-phoneme substitutions and deletions, spoken as phoneme input
 *      (espeak-ng's own voices in process, synth.h; flite and the made
 *      variants through their commands); training voices say only the
 *      words and parts (confusables.trained_count);
 *   3. train: a manifest (models/MANIFEST.md) of those clips plus the
 *      keyword-free sentences, short words, real speech and noise of data/
 *      (scripts/data.sh) when it exists, run through `earshot train`'s code
 *      (es_cmd_train) with the phrase as the only keyword;
 *   4. calibrate: the model runs, through the very pipeline `earshot file`
 *      uses, over a stream of held-out (valid-split) negatives with valid
 *      positives among them; the threshold is the lowest that keeps false
 *      alarms at or under the target rate, with the detector's smoothing and
 *      refractory period (calibrate.h: the same code as `earshot calibrate`);
 *   5. test: the same over test-split voices and negatives: recall on voices
 *      never used in training or calibration, false alarms per hour, and the
 *      share of confusables accepted, in all and by how they were made;
 *   6. write the model with its threshold (rnn.h, es_model_set_thresholds)
 *      and a model card, MODEL.md beside it.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audio_file.h"
#include "augment.h"
#include "calibrate.h"
#include "cli_util.h"
#include "commands.h"
#include "manifest.h"
#include "pipeline.h"
#include "rnn.h"
#include "synth.h"
#include "train_model.h"

#define MAX_PHRASE_BYTES (ES_MAX_LABEL - 1)
#define MAX_PHRASE_WORDS 5
#define MAX_TOKENS 128
#define MAX_CONFUSABLES 256
#define MAX_WORKERS 16
#define MAX_MADE_VOICES 300 /* made_variants() */

enum { SPLIT_TRAIN = 0, SPLIT_VALID = 1, SPLIT_TEST = 2, SPLIT_COUNT = 3 };
static const char *const split_names[SPLIT_COUNT] = {"train", "valid", "test"};

/* ---- options ---------------------------------------------------------------- */

typedef struct keyword_options {
    char phrase[MAX_PHRASE_BYTES + 1];
    const char *output_path;
    const char *data_dir; /* scripts/data.sh output, or NULL */
    const char *work_dir; /* NULL: a temporary folder, removed at the end */
    float minutes;        /* the whole run's budget */
    float max_alarms_per_hour;
    int seed;
    int threads;
    int hidden;
    int made_voices;       /* espeak-ng variants made at random, training only */
    const char *init_path; /* a keyword model whose GRUs training starts from, or NULL */
    int small;
} keyword_options;

/* The false alarms per hour calibration allows on the valid voices: half what
 * was asked for. Voices never heard fire more often than those the threshold
 * is set on (on the test split 1.9-3.5 times as often for "open sesame", in
 * runs whose calibration stream held 0.45-0.48 per hour), and a user's voices
 * are never heard. */
#define CALIBRATION_MARGIN 0.5f

static float calibration_target(const keyword_options *opt) {
    return CALIBRATION_MARGIN * opt->max_alarms_per_hour;
}

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
    "      --hidden H           units of each of the two GRU layers (default 64)\n"
    "      --init MODEL         start from MODEL's GRUs ('builtin': the built-in\n"
    "                           20-keyword model's) under a new output layer; their\n"
    "                           width replaces --hidden\n"
    "      --made-voices N      also train on N espeak-ng variants made at random (formants,\n"
    "                           pitch, echo, synthesiser; 0-300, default 0): recall on\n"
    "                           unseen voices rose 4-6 points, and so did false alarms\n"
    "                           on unseen audio (models/recipe/keyword/README.md)\n"
    "      --threads T          synthesiser processes and trainer threads (default 2)\n"
    "      --seed S             seed of every random choice (default 1)\n"
    "      --work DIR           keep the clips and manifest in DIR (default: a temporary\n"
    "                           folder, removed at the end)\n"
    "      --small              a few voices, a tiny model and a fixed 40 short epochs\n"
    "                           instead of the budget, for smoke tests\n"
    "  -h, --help               this help\n"
    "\n"
    "PHRASE: 1 to 5 English words of letters (apostrophes and hyphens inside words),\n"
    "at most 31 characters; numbers must be written as words.\n";

/* Lower-cases and checks the phrase; prints why and returns -1 when it cannot be used. */
static int normalise_phrase(const char *text, char *phrase) {
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
                es_cli_error("train-keyword: '%c' in \"%s\" cannot be used: a phrase is words of "
                             "letters (apostrophes and hyphens inside words; numbers as words)",
                             ch, text);
            else
                es_cli_error("train-keyword: \"%s\" has a character other than English letters, "
                             "spaces, apostrophes and hyphens (byte 0x%02x)",
                             text, ch);
            return -1;
        }
        if (!in_word) {
            words++;
            if (length > 0 && length < MAX_PHRASE_BYTES + 1) phrase[length++] = ' ';
            in_word = 1;
        }
        if (length < MAX_PHRASE_BYTES + 1) phrase[length++] = (char)(letter ? ch | 0x20 : ch);
    }
    if (words == 0) {
        es_cli_error("train-keyword: the phrase is empty");
        return -1;
    }
    if (length > MAX_PHRASE_BYTES || words > MAX_PHRASE_WORDS) {
        es_cli_error("train-keyword: \"%s\" is too long: at most %d words and %d characters", text,
                     MAX_PHRASE_WORDS, MAX_PHRASE_BYTES);
        return -1;
    }
    phrase[length] = '\0';
    if (phrase[length - 1] == '\'' || phrase[length - 1] == '-') {
        es_cli_error("train-keyword: \"%s\" ends with '%c'", text, phrase[length - 1]);
        return -1;
    }
    if (!es_kws_label_is_keyword(phrase)) {
        es_cli_error("train-keyword: \"%s\" names the filler output, not a keyword", phrase);
        return -1;
    }
    return 0;
}

static const char *default_data_dir(void) {
    const char *env = getenv("EARSHOT_DATA");
    if (env && *env) return env;
    return access("data/manifest.tsv", R_OK) == 0 ? "data" : NULL;
}

static int parse_options(int argc, char **argv, keyword_options *opt) {
    enum {
        OPT_MINUTES = 0x100,
        OPT_DATA,
        OPT_MAX_ALARMS,
        OPT_HIDDEN,
        OPT_MADE_VOICES,
        OPT_INIT,
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
        {"threads", required_argument, NULL, OPT_THREADS},
        {"seed", required_argument, NULL, OPT_SEED},
        {"work", required_argument, NULL, OPT_WORK},
        {"small", no_argument, NULL, OPT_SMALL},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    *opt = (keyword_options){.minutes = 15.0f,
                             .max_alarms_per_hour = 0.5f,
                             .seed = 1,
                             .threads = 2,
                             .hidden = 64,
                             .data_dir = default_data_dir()};
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
            break;
        case OPT_MADE_VOICES:
            rc = es_cli_parse_int("--made-voices", optarg, 0, MAX_MADE_VOICES, &opt->made_voices);
            break;
        case OPT_THREADS:
            rc = es_cli_parse_int("--threads", optarg, 1, MAX_WORKERS, &opt->threads);
            break;
        case OPT_SEED:
            rc = es_cli_parse_int("--seed", optarg, 0, 2147483647, &opt->seed);
            break;
        case OPT_INIT:
            opt->init_path = optarg;
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
    if (normalise_phrase(phrase, opt->phrase) != 0) return -1;
    if (!opt->output_path) {
        es_cli_error("train-keyword: -o MODEL is required");
        return -1;
    }
    return 0;
}

/* ---- small helpers -------------------------------------------------------------- */

static void format_duration(double s, char *buf, size_t size) {
    if (!(s >= 0))
        snprintf(buf, size, "?");
    else if (s < 120)
        snprintf(buf, size, "%.0f s", s);
    else
        snprintf(buf, size, "%.1f min", s / 60);
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    fputs("earshot: train-keyword: ", stderr);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
}

/* Appends `text` single-quoted for sh. */
static void append_quoted(char *buf, size_t size, const char *text) {
    size_t n = strlen(buf);
    if (n + 1 < size) buf[n++] = '\'';
    for (const char *c = text; *c && n + 5 < size; c++) {
        if (*c == '\'') {
            memcpy(buf + n, "'\\''", 4);
            n += 4;
        } else
            buf[n++] = *c;
    }
    if (n + 1 < size) buf[n++] = '\'';
    buf[n] = '\0';
}

/* Runs a command and returns its standard output's first line (trailing
 * newline removed), or NULL. */
static char *command_line_output(const char *command) {
    FILE *pipe = popen(command, "r");
    if (!pipe) return NULL;
    char *line = NULL;
    size_t size = 0;
    ssize_t got = getline(&line, &size, pipe);
    while (got >= 0 && fgetc(pipe) != EOF) {
    }
    const int status = pclose(pipe);
    if (got < 0 || status != 0) {
        free(line);
        return NULL;
    }
    line[strcspn(line, "\r\n")] = '\0';
    return line;
}

static int tool_exists(const char *name) {
    char command[128];
    snprintf(command, sizeof command, "command -v %s >/dev/null 2>&1", name);
    return system(command) == 0;
}

/* FNV-1a, 32 bits: models/recipe/plan.pl splits voices with it. */
static uint32_t fnv1a(const char *text) {
    uint32_t h = 2166136261u;
    for (const unsigned char *c = (const unsigned char *)text; *c; c++)
        h = (h ^ *c) * 16777619u;
    return h;
}

/* ---- voices ---------------------------------------------------------------------- */

typedef enum engine { ENGINE_ESPEAK = 0, ENGINE_FLITE = 1 } engine;

typedef struct voice {
    engine engine;
    char name[96]; /* espeak "en-us+m3", flite "slt" */
    int split;
    int made; /* a variant of made_variants(): espeak-ng reads it from the work folder */
} voice;

typedef struct voice_list {
    voice *items;
    int count, capacity;
} voice_list;

static int voice_add(voice_list *list, engine e, const char *name, int split) {
    if (list->count == list->capacity) {
        const int capacity = list->capacity ? 2 * list->capacity : 256;
        voice *grown = realloc(list->items, sizeof(voice) * (size_t)capacity);
        if (!grown) return -1;
        list->items = grown;
        list->capacity = capacity;
    }
    voice *v = &list->items[list->count++];
    *v = (voice){.engine = e, .split = split};
    snprintf(v->name, sizeof v->name, "%s", name);
    return 0;
}

/* The split of an espeak variant, as models/recipe/plan.pl decides it. */
static int variant_split(const char *variant) {
    const uint32_t bucket = fnv1a(variant) % 10;
    return bucket == 0 ? SPLIT_VALID : bucket == 1 ? SPLIT_TEST : SPLIT_TRAIN;
}

/* Reads a column of `espeak-ng --voices=...` lines through a filter; one item per line. */
static char **read_list(const char *command, int *count) {
    *count = 0;
    FILE *pipe = popen(command, "r");
    if (!pipe) return NULL;
    char **items = NULL;
    char line[256];
    while (fgets(line, sizeof line, pipe)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0]) continue;
        char **grown = realloc(items, sizeof(char *) * (size_t)(*count + 1));
        if (!grown) break;
        items = grown;
        items[(*count)++] = strdup(line);
    }
    pclose(pipe);
    return items;
}

static void free_list(char **items, int count) {
    for (int i = 0; i < count; i++)
        free(items[i]);
    free(items);
}

/* Where espeak-ng keeps its data: "... Data at: /usr/lib/.../espeak-ng-data". */
static char *espeak_data_dir(void) {
    char *line = command_line_output("espeak-ng --version");
    const char *at = line ? strstr(line, "Data at: ") : NULL;
    char *dir = at ? strdup(at + strlen("Data at: ")) : NULL;
    free(line);
    return dir;
}

/* Links every entry of folder `from` into `to` but those named `except1` and `except2`. */
static int link_entries(const char *from, const char *to, const char *except1,
                        const char *except2) {
    DIR *dir = opendir(from);
    if (!dir) return -1;
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(dir));) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, except1) == 0 ||
            strcmp(e->d_name, except2) == 0)
            continue;
        char source[4096 + 512], link_path[4096 + 512];
        snprintf(source, sizeof source, "%s/%s", from, e->d_name);
        snprintf(link_path, sizeof link_path, "%s/%s", to, e->d_name);
        rc = symlink(source, link_path) == 0 || errno == EEXIST ? 0 : -1;
    }
    closedir(dir);
    return rc;
}

/* One espeak-ng voice variant drawn at random (espeak-ng's voices.md names the
 * attributes): a vocal tract longer or shorter than the default (all formants
 * scaled together) with each formant's frequency, strength and width jittered,
 * a pitch from deep to child-like over a range from monotone to lively, and at
 * times the Klatt synthesiser, an echo, breathiness or a tilted spectrum.
 * espeak-ng's ~100 own variants are few timbres for a model to learn a phrase
 * from; its held-out ones (robot voices among them) sound like none of them. */
static void write_made_variant(FILE *f, const char *name, es_rng *rng) {
    const double pitch_hz = 60.0 * exp(es_rng_uniform(rng, 0.0, log(240.0 / 60.0)));
    const double swing =
        es_rng_below(rng, 4) == 0 ? es_rng_uniform(rng, 0.0, 0.15) : es_rng_uniform(rng, 0.25, 0.8);
    fprintf(f, "language variant\nname %s\ngender %s\npitch %d %d\n", name,
            pitch_hz > 140 ? "female" : "male", (int)pitch_hz, (int)(pitch_hz * (1.0 + swing)));
    const double tract = es_rng_uniform(rng, 0.88, 1.15);
    for (int k = 0; k <= 8; k++) {
        const int frequency = (int)(100 * tract * es_rng_uniform(rng, 0.95, 1.05));
        const int strength =
            (int)(k <= 5 ? es_rng_uniform(rng, 60, 150) : es_rng_uniform(rng, 0, 120));
        fprintf(f, "formant %d %d %d %d\n", k, frequency, strength,
                (int)es_rng_uniform(rng, 50, 160));
    }
    fprintf(f, "flutter %d\nroughness %d\nvoicing %d\nconsonants %d %d\n", es_rng_below(rng, 31),
            es_rng_below(rng, 31), 60 + es_rng_below(rng, 101), 60 + es_rng_below(rng, 71),
            60 + es_rng_below(rng, 71));
    if (es_rng_below(rng, 3) == 0) fprintf(f, "klatt %d\n", 1 + es_rng_below(rng, 6));
    if (es_rng_below(rng, 3) == 0)
        fprintf(f, "echo %d %d\n", 10 + es_rng_below(rng, 151), 5 + es_rng_below(rng, 36));
    if (es_rng_below(rng, 7) == 0) {
        fputs("breath 0", f);
        for (int k = 1; k <= 8; k++)
            fprintf(f, " %d", es_rng_below(rng, 11));
        fputc('\n', f);
    }
    if (es_rng_below(rng, 3) == 0)
        fprintf(f, "tone %d %d %d %d %d %d\n", 300 + es_rng_below(rng, 501),
                10 + es_rng_below(rng, 246), 1000 + es_rng_below(rng, 1001),
                10 + es_rng_below(rng, 246), 2500 + es_rng_below(rng, 1501),
                10 + es_rng_below(rng, 246));
}

/* An espeak-ng data folder, WORK/espeak/espeak-ng-data, of links to the
 * original's but for its voices: the English accents (lang/gmw) and, as the
 * only variants, `count` made ones, "made0".."made<count-1>"; espeak-ng
 * --path=WORK/espeak speaks them. espeak-ng lists at most 349 voices and,
 * past that, silently speaks every variant as one: so no other language's
 * voice or variant is listed here, and MAX_MADE_VOICES keeps within it. */
static int made_variants(const char *work, int count, es_rng *rng) {
    char *system_data = espeak_data_dir();
    if (!system_data) return -1;
    /* Each path is the one before it and a short name. */
    char root[4096 + 16], data[sizeof root + 16], lang[sizeof data + 8], voices[sizeof data + 8];
    char variants[sizeof voices + 8], english[sizeof lang + 8], system_english[4096 + 16];
    snprintf(root, sizeof root, "%s/espeak", work);
    snprintf(data, sizeof data, "%s/espeak-ng-data", root);
    snprintf(lang, sizeof lang, "%s/lang", data);
    snprintf(voices, sizeof voices, "%s/voices", data);
    snprintf(variants, sizeof variants, "%s/!v", voices);
    snprintf(english, sizeof english, "%s/gmw", lang);
    snprintf(system_english, sizeof system_english, "%s/lang/gmw", system_data);
    const char *const folders[] = {root, data, lang, voices, variants};
    int rc = 0;
    for (size_t i = 0; i < COUNT_OF(folders) && rc == 0; i++)
        if (mkdir(folders[i], 0777) != 0 && errno != EEXIST) rc = -1;
    if (rc == 0) rc = link_entries(system_data, data, "voices", "lang");
    if (rc == 0 && symlink(system_english, english) != 0 && errno != EEXIST) rc = -1;
    for (int i = 0; i < count && rc == 0; i++) {
        char path[sizeof variants + 32], name[32];
        snprintf(name, sizeof name, "made%d", i);
        snprintf(path, sizeof path, "%s/%s", variants, name);
        FILE *f = fopen(path, "w");
        if (!f) {
            rc = -1;
            break;
        }
        write_made_variant(f, name, rng);
        rc = fclose(f) == 0 ? 0 : -1;
    }
    free(system_data);
    return rc;
}

/* Every espeak-ng English accent of its own (gmw/) data with every variant,
 * the made variants (made_variants()) and flite's allowed voices; --small keeps
 * a few of each split. */
static int list_voices(const keyword_options *opt, int have_flite, es_rng *rng,
                       voice_list *voices) {
    int accent_count = 0, variant_count = 0;
    char **accents = read_list("espeak-ng --voices=en | awk '$5 ~ /^gmw\\// { print $2 }' | "
                               "sort -u",
                               &accent_count);
    char **variants = read_list("espeak-ng --voices=variant | awk 'NR > 1 { print $5 }' | "
                                "sed -n 's|^!v/\\([A-Za-z0-9_-]*\\)$|\\1|p' | sort -u",
                                &variant_count);
    int wanted[SPLIT_COUNT] = {2, 1, 1}, taken[SPLIT_COUNT] = {0, 0, 0};
    int rc = 0;
    for (int a = 0; a < accent_count && rc == 0; a++) {
        if (!opt->small) rc = voice_add(voices, ENGINE_ESPEAK, accents[a], SPLIT_TRAIN);
        for (int v = 0; v < variant_count && rc == 0; v++) {
            const int split = variant_split(variants[v]);
            if (opt->small && taken[split] >= wanted[split]) continue;
            taken[split]++;
            char name[96];
            snprintf(name, sizeof name, "%s+%s", accents[a], variants[v]);
            rc = voice_add(voices, ENGINE_ESPEAK, name, split);
        }
    }
    /* Each made variant speaks with one accent; training only, so that recall is
     * still measured on espeak-ng's own held-out variants. */
    for (int i = 0; i < opt->made_voices && accent_count > 0 && rc == 0; i++) {
        char name[96];
        snprintf(name, sizeof name, "%s+made%d", accents[es_rng_below(rng, accent_count)], i);
        rc = voice_add(voices, ENGINE_ESPEAK, name, SPLIT_TRAIN);
        if (rc == 0) voices->items[voices->count - 1].made = 1;
    }
    static const char *const flite_voices[] = {"kal", "kal16", "slt"};
    for (int i = 0; have_flite && i < (opt->small ? 1 : 3) && rc == 0; i++)
        rc = voice_add(voices, ENGINE_FLITE, flite_voices[i], SPLIT_TRAIN);
    free_list(accents, accent_count);
    free_list(variants, variant_count);
    return rc;
}

/* ---- phonemes and confusable phrases ------------------------------------------------ */

/* espeak-ng's English phoneme mnemonics, longest first where one begins another. */
static const char *const vowels[] = {
    "aI@", "aU@", "i@3", "eI", "aI", "aU", "OI", "oU", "@U", "i@", "e@", "U@", "O@", "o@",
    "a@",  "A@",  "3:",  "i:", "u:", "A:", "O:", "a#", "@L", "@2", "@5", "I2", "I#", "E2",
    "V",   "U",   "I",   "E",  "a",  "0",  "@",  "3",  "i",  "u",  "O",  "A",  "e",  "o"};
static const char *const consonants[] = {
    "tS", "dZ", "t#", "t2", "d#", "n-", "l/", "r-", "T", "D", "S", "Z", "N", "j", "w", "h",
    "p",  "b",  "t",  "d",  "k",  "g",  "f",  "v",  "s", "z", "m", "n", "l", "r", "x", "?"};
/* Substitutes: a clear vowel for a vowel; a consonant of the same manner. */
static const char *const clear_vowels[] = {"a", "A:", "E", "eI", "I",  "i:", "0",  "O:", "oU",
                                           "U", "u:", "V", "aI", "aU", "OI", "3:", "e@"};
static const char *const manner_groups[][9] = {
    {"p", "b", "t", "d", "k", "g", NULL},
    {"f", "v", "T", "D", "s", "z", "S", "Z", NULL},
    {"m", "n", "N", NULL},
    {"l", "r", "w", "j", NULL},
    {"tS", "dZ", "S", NULL},
};
/* Weak vowels: changing one hardly changes the word, so it would be a positive. */
static const char *const weak_vowels[] = {"@", "3", "@2", "@5", "I2", "I#", "i", "a#", "@L"};

typedef struct token {
    char text[8];
    int is_vowel, is_phoneme; /* stress marks and word breaks are neither */
} token;

static int in_list(const char *s, const char *const *list, size_t count) {
    for (size_t i = 0; i < count; i++)
        if (strcmp(s, list[i]) == 0) return 1;
    return 0;
}

static int match_longest(const char *at, const char *const *list, size_t count) {
    int best = 0;
    for (size_t i = 0; i < count; i++) {
        const int n = (int)strlen(list[i]);
        if (n > best && strncmp(at, list[i], (size_t)n) == 0) best = n;
    }
    return best;
}

static int tokenize(const char *phonemes, token *tokens) {
    int count = 0;
    for (const char *p = phonemes; *p && count < MAX_TOKENS;) {
        token *t = &tokens[count++];
        memset(t, 0, sizeof *t);
        const int v = match_longest(p, vowels, COUNT_OF(vowels));
        const int c = match_longest(p, consonants, COUNT_OF(consonants));
        int n = 1;
        if (v > 0 && v >= c) {
            n = v;
            t->is_vowel = t->is_phoneme = 1;
        } else if (c > 0) {
            n = c;
            t->is_phoneme = 1;
        } else if (*p == ' ' || *p == '_') {
            t->text[0] = ' ';
            p++;
            continue;
        }
        memcpy(t->text, p, (size_t)n);
        t->text[n] = '\0';
        p += n;
    }
    return count;
}

/* How a confusable was made, as the model card tallies them (1 + kind is its
 * clips' es_cal_item.near_miss). */
enum {
    CONFUSABLE_WORDS,   /* the phrase's words alone, beside others, swapped */
    CONFUSABLE_PART,    /* its first or last phonemes */
    CONFUSABLE_CHANGED, /* one phoneme substituted */
    CONFUSABLE_DROPPED, /* one phoneme deleted */
    CONFUSABLE_KINDS
};
_Static_assert(CONFUSABLE_KINDS <= ES_CAL_NEAR_MISS_KINDS, "calibrate tallies each kind");
static const char *const confusable_kind_names[CONFUSABLE_KINDS] = {
    "whole words: its own alone, beside other words or swapped (one-word phrases: other words)",
    "its first or last half or two thirds", "one phoneme changed", "one phoneme dropped"};

typedef struct confusables {
    char *items[MAX_CONFUSABLES]; /* plain text, or "[[phonemes]]" for espeak */
    unsigned char kinds[MAX_CONFUSABLES];
    int count;
    int text_count;    /* the first text_count are plain text (any engine can say them) */
    int trained_count; /* the first trained_count are words and parts: training negatives */
} confusables;

static void confusable_add(confusables *c, const char *text, int kind) {
    if (c->count >= MAX_CONFUSABLES || !text[0]) return;
    for (int i = 0; i < c->count; i++)
        if (strcmp(c->items[i], text) == 0) return;
    char *copy = strdup(text);
    if (!copy) return;
    c->kinds[c->count] = (unsigned char)kind;
    c->items[c->count++] = copy;
}

/* "[[" + tokens[from, to) with `replace` at `at` (NULL: delete it) + "]]". */
static void phoneme_text(const token *tokens, int from, int to, int at, const char *replace,
                         char *out, size_t size) {
    snprintf(out, size, "[[");
    for (int i = from; i < to; i++) {
        const char *piece = i == at ? replace : tokens[i].text;
        if (piece) strncat(out, piece, size - strlen(out) - 3);
    }
    strncat(out, "]]", size - strlen(out) - 1);
}

/* Common words to pair with the phrase's own words and to make keyword-free
 * sentences when data/ is missing. */
static const char *const common_words[] = {
    "the",     "a",      "and",    "you",    "there",  "that",   "this",    "my",     "your",
    "we",      "they",   "it",     "is",     "was",    "will",   "can",     "not",    "with",
    "from",    "about",  "when",   "what",   "where",  "good",   "new",     "old",    "small",
    "big",     "house",  "water",  "light",  "door",   "window", "table",   "music",  "morning",
    "evening", "today",  "friend", "people", "little", "garden", "kitchen", "please", "thanks",
    "maybe",   "always", "never",  "really", "very",   "quite",  "again",   "later",  "soon",
    "come",    "take",   "make",   "look",   "think",  "know",   "want",    "call",   "play",
    "read",    "walk",   "talk",   "open",   "close",  "turn",   "bring",   "paper",  "river",
    "street",  "city",   "yellow", "green",  "quiet",  "happy",  "letter",  "number", "story"};

static int phrase_has_word(const char *phrase, const char *word) {
    const size_t n = strlen(word);
    for (const char *p = phrase; (p = strstr(p, word)) != NULL; p += n)
        if ((p == phrase || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ')) return 1;
    return 0;
}

static const char *other_word(const char *phrase, es_rng *rng) {
    for (;;) {
        const char *w = common_words[es_rng_below(rng, (int)COUNT_OF(common_words))];
        if (!phrase_has_word(phrase, w)) return w;
    }
}

/* The phrase's words alone and beside other words, its first and last
 * parts, and single-phoneme substitutions and deletions. */
static void make_confusables(const char *phrase, const char *phonemes, es_rng *rng,
                             confusables *out) {
    char words[MAX_PHRASE_WORDS][MAX_PHRASE_BYTES + 1];
    int word_count = 0;
    char copy[MAX_PHRASE_BYTES + 1];
    snprintf(copy, sizeof copy, "%s", phrase);
    for (char *save = NULL, *w = strtok_r(copy, " ", &save); w && word_count < MAX_PHRASE_WORDS;
         w = strtok_r(NULL, " ", &save))
        snprintf(words[word_count++], sizeof words[0], "%s", w);
    char text[256];
    if (word_count > 1) {
        for (int i = 0; i < word_count; i++) {
            confusable_add(out, words[i], CONFUSABLE_WORDS);
            for (int k = 0; k < 3; k++) {
                snprintf(text, sizeof text, "%s %s", words[i], other_word(phrase, rng));
                confusable_add(out, text, CONFUSABLE_WORDS);
                snprintf(text, sizeof text, "%s %s", other_word(phrase, rng), words[i]);
                confusable_add(out, text, CONFUSABLE_WORDS);
            }
        }
        /* The words in another order or with one left out. */
        snprintf(text, sizeof text, "%s %s", words[word_count - 1], words[0]);
        confusable_add(out, text, CONFUSABLE_WORDS);
    } else {
        for (int k = 0; k < 3; k++) {
            snprintf(text, sizeof text, "the %s", other_word(phrase, rng));
            confusable_add(out, text, CONFUSABLE_WORDS);
        }
    }
    out->text_count = out->count;

    token tokens[MAX_TOKENS];
    const int count = tokenize(phonemes, tokens);
    int phoneme_at[MAX_TOKENS], phoneme_count = 0;
    for (int i = 0; i < count; i++)
        if (tokens[i].is_phoneme) phoneme_at[phoneme_count++] = i;
    if (phoneme_count >= 4) {
        /* First and last parts: shared syllables. */
        const int cuts[] = {phoneme_count / 2, (2 * phoneme_count + 2) / 3};
        for (size_t k = 0; k < COUNT_OF(cuts); k++) {
            phoneme_text(tokens, 0, phoneme_at[cuts[k]], -1, NULL, text, sizeof text);
            confusable_add(out, text, CONFUSABLE_PART);
            phoneme_text(tokens, phoneme_at[phoneme_count - cuts[k]], count, -1, NULL, text,
                         sizeof text);
            confusable_add(out, text, CONFUSABLE_PART);
        }
    }
    /* Training voices say only these, the words and parts; the rest are
     * calibration and test material. One phoneme away from the phrase ("open
     * sezame"), a near miss is too close to reject without rejecting the phrase
     * too: trained as negatives, they were still accepted half the time while
     * recall on unseen voices fell ("open sesame" 98.1 % without them, 72.5 %
     * with; in noise 96 % against 50 %; "hey nova" 97.5 % against 85.0 %;
     * README). The model card reports how many of them it accepts. */
    out->trained_count = out->count;
    for (int p = 0; p < phoneme_count; p++) {
        const token *t = &tokens[phoneme_at[p]];
        if (t->is_vowel && in_list(t->text, weak_vowels, COUNT_OF(weak_vowels))) continue;
        for (int k = 0; k < 2; k++) {
            const char *replace = NULL;
            if (t->is_vowel) {
                replace = clear_vowels[es_rng_below(rng, (int)COUNT_OF(clear_vowels))];
            } else {
                for (size_t g = 0; g < COUNT_OF(manner_groups) && !replace; g++) {
                    int n = 0, member = 0;
                    while (manner_groups[g][n]) {
                        member |= strcmp(manner_groups[g][n], t->text) == 0;
                        n++;
                    }
                    if (member) replace = manner_groups[g][es_rng_below(rng, n)];
                }
            }
            if (replace && strcmp(replace, t->text) != 0) {
                phoneme_text(tokens, 0, count, phoneme_at[p], replace, text, sizeof text);
                confusable_add(out, text, CONFUSABLE_CHANGED);
            }
        }
        if (phoneme_count >= 4 && p > 0) {
            phoneme_text(tokens, 0, count, phoneme_at[p], NULL, text, sizeof text);
            confusable_add(out, text, CONFUSABLE_DROPPED);
        }
    }
}

static void confusables_free(confusables *c) {
    for (int i = 0; i < c->count; i++)
        free(c->items[i]);
}

/* ---- rendering -------------------------------------------------------------------------- */

/* What a clip is; the manifest's kind of each: keyword, sentence, sentence,
 * noise, speech (real recordings). */
enum { CLIP_POSITIVE = 0, CLIP_CONFUSABLE = 1, CLIP_SENTENCE = 2, CLIP_NOISE = 3, CLIP_SPEECH = 4 };
static const char *const clip_kinds[] = {"keyword", "sentence", "sentence", "noise", "speech"};

typedef struct render_job {
    const voice *voice; /* NULL for generated noise */
    int kind, split;
    char *text;
    char path[64];     /* relative to the work folder */
    double duration_s; /* after rendering; 0 = failed or silent */
    int rate;          /* espeak words per minute; flite: duration stretch x 100 */
    int pitch;         /* espeak 0-99; flite: F0 in Hz */
    int confusable;    /* CLIP_CONFUSABLE: its kind (CONFUSABLE_*) */
} render_job;

typedef struct job_list {
    render_job *items;
    int count, capacity;
} job_list;

static render_job *job_add(job_list *jobs, const voice *v, int kind, int split, const char *text,
                           es_rng *rng) {
    if (jobs->count == jobs->capacity) {
        const int capacity = jobs->capacity ? 2 * jobs->capacity : 1024;
        render_job *grown = realloc(jobs->items, sizeof(render_job) * (size_t)capacity);
        if (!grown) return NULL;
        jobs->items = grown;
        jobs->capacity = capacity;
    }
    render_job *j = &jobs->items[jobs->count];
    *j = (render_job){.voice = v, .kind = kind, .split = split, .text = strdup(text)};
    if (!j->text) return NULL;
    snprintf(j->path, sizeof j->path, "clips/%05d.wav", jobs->count);
    if (v && v->engine == ENGINE_ESPEAK) {
        j->rate = 120 + es_rng_below(rng, 91);
        j->pitch = 25 + es_rng_below(rng, 51);
    } else if (v) {
        const int f0_hz = strcmp(v->name, "slt") == 0 ? 170 : 105;
        j->rate = 80 + es_rng_below(rng, 46);
        j->pitch = (int)(f0_hz * es_rng_uniform(rng, 0.8, 1.25));
    }
    jobs->count++;
    return j;
}

static void job_command(const render_job *j, const char *work, char *cmd, size_t size) {
    char raw[4096 + 32], out[4096 + 80];
    snprintf(raw, sizeof raw, "%s/%s.raw.wav", work, j->path);
    snprintf(out, sizeof out, "%s/%s", work, j->path);
    cmd[0] = '\0';
    if (!j->voice) {
        /* Generated noise: the text names sox's synth arguments. */
        snprintf(cmd, size, "sox -R -n -r 16000 -c 1 -b 16 ");
        append_quoted(cmd, size, out);
        strncat(cmd, " synth ", size - strlen(cmd) - 1);
        strncat(cmd, j->text, size - strlen(cmd) - 1);
        return;
    }
    if (j->voice->engine == ENGINE_ESPEAK) {
        snprintf(cmd, size, "espeak-ng -v %s -s %d -p %d ", j->voice->name, j->rate, j->pitch);
        if (j->voice->made) {
            strncat(cmd, "--path=", size - strlen(cmd) - 1);
            char espeak_root[4096 + 16];
            snprintf(espeak_root, sizeof espeak_root, "%s/espeak", work);
            append_quoted(cmd, size, espeak_root);
            strncat(cmd, " ", size - strlen(cmd) - 1);
        }
        strncat(cmd, "-w ", size - strlen(cmd) - 1);
        append_quoted(cmd, size, raw);
        strncat(cmd, " -- ", size - strlen(cmd) - 1);
        append_quoted(cmd, size, j->text);
    } else {
        snprintf(cmd, size,
                 "flite -voice %s --setf duration_stretch=%.2f --setf "
                 "int_f0_target_mean=%d -t ",
                 j->voice->name, j->rate / 100.0, j->pitch);
        append_quoted(cmd, size, j->text);
        strncat(cmd, " -o ", size - strlen(cmd) - 1);
        append_quoted(cmd, size, raw);
        strncat(cmd, " >/dev/null", size - strlen(cmd) - 1);
    }
    /* As models/recipe/render.sh: 16 kHz mono 16-bit, silence trimmed at both ends. */
    strncat(cmd, " && sox -R -G -V1 ", size - strlen(cmd) - 1);
    append_quoted(cmd, size, raw);
    strncat(cmd, " -r 16000 -c 1 -b 16 ", size - strlen(cmd) - 1);
    append_quoted(cmd, size, out);
    strncat(cmd, " silence 1 0.01 -45d reverse silence 1 0.01 -45d reverse; status=$?; rm -f ",
            size - strlen(cmd) - 1);
    append_quoted(cmd, size, raw);
    strncat(cmd, "; exit $status", size - strlen(cmd) - 1);
}

static double clip_duration_s(const char *path) {
    char why[256];
    es_audio_file *file = NULL;
    if (es_audio_file_open(path, &file, why, sizeof why) != 0) return 0.0;
    const es_audio_info *info = es_audio_file_info(file);
    const double seconds = info->frames > 0 ? (double)info->frames / info->sample_rate_hz : 0.0;
    es_audio_file_close(file);
    return seconds;
}

/* espeak-ng's own voices speak in a process forked from this one (synth.h);
 * flite, the made variants (their data is in the work folder) and generated
 * noise run as commands. */
static int in_process(const render_job *j) {
    return j->voice && j->voice->engine == ENGINE_ESPEAK && !j->voice->made;
}

/* ---- interruption ------------------------------------------------------------------------ */

/* SIGINT or SIGTERM stops the run at the next clip or step, and the work
 * folder (10-30 MB of clips) is removed on the way out. Only a flag is set
 * here; the folder is removed by the normal exit path, where that is safe. */
/* The training step watches it too (es_train_params.stop): it then ends
 * early, writes the best model so far and says so. */
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

/* The child that makes one clip: exits 0 when it is written. */
static void render_child(const render_job *j, const char *work, const char *cmd) {
    if (in_process(j)) {
        char path[4096 + 80], why[512];
        snprintf(path, sizeof path, "%s/%s", work, j->path);
        if (es_synth_espeak_clip(j->voice->name, j->rate, j->pitch, j->text, path, why,
                                 sizeof why) == 0)
            _exit(0);
        es_cli_error("train-keyword: %s", why); /* as the commands' own errors show */
        _exit(1);
    }
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
}

/* Makes every job's clip, `workers` at a time, reporting progress with an ETA. */
static int render_all(job_list *jobs, const char *work, int workers) {
    const double started = es_cli_monotonic_s();
    char why[256];
    if (es_synth_start(why, sizeof why) != 0) {
        es_cli_error("train-keyword: %s", why);
        return -1;
    }
    pid_t running[MAX_WORKERS] = {0};
    int owner[MAX_WORKERS] = {0};
    int next = 0, done = 0, failed = 0, active = 0;
    const int report_every = jobs->count / 10 > 0 ? jobs->count / 10 : 1;
    char *cmd = malloc(16384);
    if (!cmd) return -1;
    while (done < jobs->count && !stop_signal) {
        while (active < workers && next < jobs->count) {
            if (!in_process(&jobs->items[next])) job_command(&jobs->items[next], work, cmd, 16384);
            fflush(NULL); /* nothing buffered twice */
            const pid_t pid = fork();
            if (pid < 0) {
                es_cli_error("train-keyword: cannot start the synthesiser: %s", strerror(errno));
                free(cmd);
                return -1;
            }
            if (pid == 0) render_child(&jobs->items[next], work, cmd);
            for (int s = 0; s < MAX_WORKERS; s++)
                if (running[s] == 0) {
                    running[s] = pid;
                    owner[s] = next;
                    break;
                }
            active++;
            next++;
        }
        int status = 0;
        const pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int s = 0; s < MAX_WORKERS; s++) {
            if (running[s] != pid) continue;
            running[s] = 0;
            active--;
            done++;
            render_job *j = &jobs->items[owner[s]];
            char path[4096 + 80];
            snprintf(path, sizeof path, "%s/%s", work, j->path);
            const int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            j->duration_s = ok ? clip_duration_s(path) : 0.0;
            if (j->duration_s < 0.1) {
                j->duration_s = 0.0;
                failed++;
            }
            if (done % report_every == 0 || done == jobs->count) {
                const double elapsed = es_cli_monotonic_s() - started;
                char spent[32], eta[32];
                format_duration(elapsed, spent, sizeof spent);
                format_duration(elapsed / done * (jobs->count - done), eta, sizeof eta);
                note("rendered %d/%d clips, %s, ETA %s", done, jobs->count, spent, eta);
            }
        }
    }
    free(cmd);
    if (stop_signal) {
        /* The clips being made finish first (each takes a moment): the
         * folder can only go once nothing writes into it. */
        for (int s = 0; s < MAX_WORKERS; s++)
            while (running[s] > 0 && waitpid(running[s], NULL, 0) < 0 && errno == EINTR)
                ;
        return -1;
    }
    if (failed > jobs->count / 4) {
        es_cli_error("train-keyword: %d of %d clips failed to render (is espeak-ng working?)",
                     failed, jobs->count);
        return -1;
    }
    if (failed) note("%d clips were silent or failed and are left out", failed);
    return 0;
}

/* ---- data/: keyword-free speech and noise from scripts/data.sh ------------------------- */

typedef struct data_clip {
    char *path; /* absolute or relative to the current directory */
    int split;
    int kind; /* CLIP_SENTENCE (sentences, near misses, other keywords), CLIP_SPEECH, CLIP_NOISE */
} data_clip;

typedef struct data_set {
    data_clip *items;
    int count, capacity;
    int excluded; /* sentences that say the phrase */
} data_set;

/* Lower-case letters and single spaces: "Open, Sesame!" -> "open sesame". */
static void plain_words(const char *text, char *out, size_t size) {
    size_t n = 0;
    int space = 1;
    for (const char *c = text; *c && n + 2 < size; c++) {
        char ch = *c;
        if (ch >= 'A' && ch <= 'Z') ch = (char)(ch | 0x20);
        if ((ch >= 'a' && ch <= 'z') || ch == '\'') {
            out[n++] = ch;
            space = 0;
        } else if (!space) {
            out[n++] = ' ';
            space = 1;
        }
    }
    out[n] = '\0';
}

/* Clip paths (data/-relative) of jobs whose text says the phrase, even as the
 * start of a longer word ("computers"): those are not keyword-free. */
static char **clips_saying(const char *data_dir, const char *phrase, int *count) {
    *count = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/text/jobs.tsv", data_dir);
    FILE *file = fopen(path, "r");
    if (!file) return NULL;
    char **found = NULL;
    char *line = NULL;
    size_t line_size = 0;
    char words[4096], needle[MAX_PHRASE_BYTES + 3];
    snprintf(needle, sizeof needle, " %s", phrase);
    while (getline(&line, &line_size, file) != -1) {
        char *fields[7];
        int n = 0;
        for (char *save = NULL, *f = strtok_r(line, "\t", &save); f && n < 7;
             f = strtok_r(NULL, "\t", &save))
            fields[n++] = f;
        if (n < 6) continue;
        words[0] = ' ';
        plain_words(fields[5], words + 1, sizeof words - 1);
        if (!strstr(words, needle)) continue;
        char **grown = realloc(found, sizeof(char *) * (size_t)(*count + 1));
        if (!grown) break;
        found = grown;
        /* As the manifest reader resolves data/'s relative paths. */
        char clip[4096 + 600];
        snprintf(clip, sizeof clip, "%s/clips/%s.wav", data_dir, fields[0]);
        found[(*count)++] = strdup(clip);
    }
    free(line);
    fclose(file);
    return found;
}

/* The clip kind a line of data/ stands for here: its sentences and its own
 * keywords are keyword-free sentences, unless they say the phrase. */
static int data_kind(const es_manifest_clip *c, const char *phrase) {
    switch (c->kind) {
    case ES_KIND_KEYWORD:
        return phrase_has_word(phrase, c->label) ? -1 : CLIP_SENTENCE;
    case ES_KIND_SENTENCE:
        return CLIP_SENTENCE;
    case ES_KIND_SPEECH:
        return CLIP_SPEECH;
    default:
        return CLIP_NOISE;
    }
}

static int data_set_add(data_set *set, const es_manifest_clip *c, int kind) {
    if (set->count == set->capacity) {
        const int capacity = set->capacity ? 2 * set->capacity : 4096;
        data_clip *grown = realloc(set->items, sizeof(data_clip) * (size_t)capacity);
        if (!grown) return -1;
        set->items = grown;
        set->capacity = capacity;
    }
    char *clip_path = strdup(c->path);
    if (!clip_path) return -1;
    set->items[set->count++] = (data_clip){clip_path, (int)c->split, kind};
    return 0;
}

static int load_data_set(const char *data_dir, const char *phrase, data_set *set) {
    memset(set, 0, sizeof *set);
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.tsv", data_dir);
    es_manifest manifest;
    es_error err;
    if (es_manifest_read(path, &manifest, &err) != ES_MANIFEST_OK) {
        es_cli_error("train-keyword: %s", err.why);
        es_manifest_free(&manifest);
        return -1;
    }
    int saying_count = 0;
    char **saying = clips_saying(data_dir, phrase, &saying_count);
    int rc = 0;
    for (int i = 0; i < manifest.count && rc == 0; i++) {
        const es_manifest_clip *c = &manifest.clips[i];
        const int kind = data_kind(c, phrase);
        if (kind < 0) continue;
        int says_phrase = 0;
        for (int k = 0; k < saying_count && !says_phrase; k++)
            says_phrase = strcmp(saying[k], c->path) == 0;
        if (says_phrase) {
            set->excluded++;
            continue;
        }
        rc = data_set_add(set, c, kind);
    }
    es_manifest_free(&manifest);
    free_list(saying, saying_count);
    if (rc) es_cli_error("train-keyword: %s: out of memory", path);
    return rc;
}

static void data_set_free(data_set *set) {
    for (int i = 0; i < set->count; i++)
        free(set->items[i].path);
    free(set->items);
}

/* ---- the training manifest ----------------------------------------------------------------- */

/* Absolute form of `path` (relative to the current directory) for the manifest. */
static void absolute_path(const char *path, char *out, size_t size) {
    if (path[0] == '/') {
        snprintf(out, size, "%s", path);
        return;
    }
    char cwd[2048];
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = '\0';
    snprintf(out, size, "%s/%s", cwd, path);
}

/* Draws of the trainer are uniform over a kind's lines, so line counts set the
 * mix: confusables are repeated until they make up about `share` of the
 * keyword-free sentences of their split. */
static int confusable_repeats(const job_list *jobs, const data_set *data, int split, double share) {
    int confusable = 0, sentences = 0;
    for (int i = 0; i < jobs->count; i++) {
        const render_job *j = &jobs->items[i];
        if (j->split != split || j->duration_s <= 0) continue;
        confusable += j->kind == CLIP_CONFUSABLE;
        sentences += j->kind == CLIP_SENTENCE;
    }
    for (int i = 0; data && i < data->count; i++)
        sentences += data->items[i].split == split && data->items[i].kind == CLIP_SENTENCE;
    if (confusable == 0) return 0;
    const int repeats = (int)lround(share / (1.0 - share) * sentences / confusable);
    return repeats < 1 ? 1 : repeats > 50 ? 50 : repeats;
}

/* Without valid lines the trainer runs every epoch and keeps the last
 * weights: --small does so, as early stopping on a handful of clips would
 * keep an untrained first epoch. */
static int write_manifest(const char *path, const char *work, const char *phrase,
                          const job_list *jobs, const data_set *data, int last_split) {
    FILE *file = fopen(path, "w");
    if (!file) {
        es_cli_error("train-keyword: cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(file, "# earshot training manifest v1 (models/MANIFEST.md), made by "
                  "earshot train-keyword\n# path\tsplit\tkind\tlabel\tstart_s\tend_s\tvoice\n");
    for (int split = SPLIT_TRAIN; split <= last_split; split++) {
        const int repeats = confusable_repeats(jobs, data, split, 0.35);
        for (int i = 0; i < jobs->count; i++) {
            const render_job *j = &jobs->items[i];
            if (j->split != split || j->duration_s <= 0) continue;
            const char *engine = !j->voice                           ? "noise"
                                 : j->voice->engine == ENGINE_ESPEAK ? "espeak"
                                                                     : "flite";
            const char *voice = j->voice ? j->voice->name : "generated";
            if (j->kind == CLIP_POSITIVE)
                fprintf(file, "%s/%s\t%s\tkeyword\t%s\t0.000\t%.3f\t%s:%s\n", work, j->path,
                        split_names[split], phrase, j->duration_s, engine, voice);
            else
                for (int r = 0; r < (j->kind == CLIP_CONFUSABLE ? repeats : 1); r++)
                    fprintf(file, "%s/%s\t%s\t%s\t-\t-\t-\t%s:%s\n", work, j->path,
                            split_names[split], clip_kinds[j->kind], engine, voice);
        }
        for (int i = 0; data && i < data->count; i++) {
            const data_clip *c = &data->items[i];
            if (c->split != split) continue;
            char clip_path[4096];
            absolute_path(c->path, clip_path, sizeof clip_path);
            fprintf(file, "%s\t%s\t%s\t-\t-\t-\tdata:%s\n", clip_path, split_names[split],
                    clip_kinds[c->kind], split_names[split]);
        }
    }
    if (fclose(file) != 0) {
        es_cli_error("train-keyword: cannot write %s", path);
        return -1;
    }
    return 0;
}

/* ---- evaluation streams (calibrate.h) -------------------------------------------------- */

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
/* As `earshot calibrate --passes` for the shipped model (scripts/train-models.sh). */
#define CALIBRATION_PASSES 4

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
static int evaluate_split(const es_model *model, const job_list *jobs, const data_set *data,
                          const char *work, int split, int passes, uint64_t seed,
                          es_cal_stream *stream) {
    es_cal_item *items = NULL;
    char **owned = NULL;
    int count = 0, owned_count = 0;
    es_cal_noises noises = {0};
    es_error err = {ES_CAL_ERR_NOMEM, "out of memory"};
    int rc = collect_items(jobs, data, work, split, &items, &owned, &count, &owned_count);
    if (rc == 0) rc = es_cal_items_replay(&items, &count, passes, seed ^ 0x73706565ULL);
    if (rc == 0) rc = load_noises(jobs, data, work, split, &noises);
    if (rc == 0)
        rc = es_cal_run_stream(model, items, count, &noises, seed, NULL, NULL, stream, &err);
    if (rc) es_cli_error("train-keyword: the %s stream: %s", split_names[split], err.why);
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
static const int smoothing_tried[] = {50, 100, 150, 200, 300};
#define SMOOTHING_COUNT ((int)COUNT_OF(smoothing_tried))

/* The phrase (column 0) at `threshold`, smoothed over `smooth_ms`. */
static es_cal_counts detect_at(const es_cal_stream *stream, float threshold, int smooth_ms) {
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

typedef struct run_figures {
    const char *phonemes;
    int voices[SPLIT_COUNT];
    int made_voices; /* of the train split's */
    int positives[SPLIT_COUNT];
    int confusable_clips[SPLIT_COUNT];
    int confusable_phrases;
    int confusable_phrases_of_kind[CONFUSABLE_KINDS];
    int data_clips;
    int data_excluded;
    double train_minutes;
    double total_minutes;
    es_cal_result calibrated;                        /* the threshold and smoothing kept */
    es_cal_result smoothing_trials[SMOOTHING_COUNT]; /* every smoothing, on the valid split */
    es_cal_stream *valid, *test;
    es_cal_counts test_at;
} run_figures;

static void card_path(const char *model_path, char *out, size_t size) {
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

/* The options that shaped the model, as the card's command line shows them. */
static const char *model_options_text(const keyword_options *opt, char *out, size_t size) {
    if (opt->init_path)
        snprintf(out, size, " --init %s", opt->init_path);
    else
        snprintf(out, size, " --hidden %d", opt->hidden);
    if (opt->made_voices)
        snprintf(out + strlen(out), size - strlen(out), " --made-voices %d", opt->made_voices);
    if (opt->small) snprintf(out + strlen(out), size - strlen(out), " --small");
    return out;
}

static int write_card(const keyword_options *opt, const run_figures *f, const char *path) {
    FILE *file = fopen(path, "w");
    if (!file) {
        es_cli_error("train-keyword: cannot create %s: %s", path, strerror(errno));
        return -1;
    }
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
            f->train_minutes, opt->phrase, opt->phrase, f->voices[SPLIT_VALID], valid_at->positives,
            valid_recall, recall_by_noise_text(valid_at, valid_by_noise, sizeof valid_by_noise),
            valid_at->false_alarms, f->valid->negative_seconds / 3600,
            es_cal_per_hour(valid_at->false_alarms, f->valid->negative_seconds),
            accepted_text(valid_at, valid_accepted, sizeof valid_accepted), f->voices[SPLIT_TEST],
            f->test_at.positives, test_recall,
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
            "All figures are on synthetic voices. Recall on real human speech is not measured "
            "and is expected to be lower (MODEL-NOTES.md: about half of the synthetic figure "
            "for the 20 built-in keywords), and false alarms on real conversation higher.\n",
            f->phonemes, f->voices[SPLIT_TRAIN], f->made_voices, f->voices[SPLIT_VALID],
            f->voices[SPLIT_TEST], f->positives[SPLIT_TRAIN], f->positives[SPLIT_VALID],
            f->positives[SPLIT_TEST], f->confusable_phrases, f->confusable_clips[SPLIT_TRAIN],
            f->confusable_clips[SPLIT_VALID], f->confusable_clips[SPLIT_TEST],
            opt->data_dir ? "scripts/data.sh's sentences, other keywords, real speech and noise"
                          : "synthesised word sequences and generated noise (no data/ found)",
            f->data_clips, f->data_excluded ? "; sentences that say the phrase left out" : "");
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
    return fclose(file) == 0 ? 0 : -1;
}

/* ---- the command --------------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *info, int flag, struct FTW *ftw) {
    (void)info;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Plans the clips: per voice, positives and confusables; word sequences and
 * noise when there is no data/. */
static int plan_jobs(const keyword_options *opt, const voice_list *voices, const confusables *conf,
                     es_rng *rng, job_list *jobs) {
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
        const int choices = flite                     ? conf->text_count
                            : v->split == SPLIT_TRAIN ? conf->trained_count
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
        for (int split = 0; split < SPLIT_COUNT; split++)
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
static int train_model(const keyword_options *opt, const char *manifest, const char *model_path,
                       double minutes) {
    es_train_params params;
    es_train_params_default(&params);
    params.manifest_path = manifest;
    params.output_path = model_path;
    params.task = ES_TRAIN_KWS;
    params.manifest_keywords_only = 1;
    params.kws_frame_targets = 1;
    params.stop = &stop_signal;
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
    es_train_hooks hooks;
    es_train_cli_hooks(&hooks);
    es_error err;
    if (es_train_model(&params, &hooks, &err) != ES_TRAIN_OK) {
        es_train_cli_report_error(&err);
        return ES_EXIT_FAILURE;
    }
    return ES_EXIT_OK;
}

/* --init before the synthesis, not after it: a model the front end can feed,
 * whose first layer is the GRU the keyword model starts with. */
static int check_init_model(const char *path) {
    es_error err = {0};
    es_model *m = NULL;
    if (es_pipeline_load_model(path, "kws", NULL, &m, &err) != ES_PIPELINE_OK) {
        es_cli_error("train-keyword: --init: %s", err.why);
        return -1;
    }
    const int fits = es_model_layer_type(m, 0) == ES_LAYER_GRU;
    if (!fits)
        es_cli_error("train-keyword: --init: %s: its first layer is a %s, not a GRU", path,
                     es_layer_type_name(es_model_layer_type(m, 0)));
    es_model_destroy(m);
    return fits ? 0 : -1;
}

int es_cmd_train_keyword(int argc, char **argv) {
    keyword_options opt;
    const int parsed = parse_options(argc, argv, &opt);
    if (parsed != 0) return parsed > 0 ? ES_EXIT_OK : ES_EXIT_USAGE;
    const double started = es_cli_monotonic_s();
    /* Both outputs before any work: a typo in -o must not cost a whole run. */
    char card[4096 + 8];
    card_path(opt.output_path, card, sizeof card);
    if (es_cli_check_output(opt.output_path) != 0 || es_cli_check_output(card) != 0)
        return ES_EXIT_FAILURE;

    if (!tool_exists("espeak-ng") || !tool_exists("sox")) {
        es_cli_error("train-keyword: espeak-ng and sox are needed (apt install espeak-ng sox)");
        return ES_EXIT_FAILURE;
    }
    if (opt.init_path && check_init_model(opt.init_path) != 0) return ES_EXIT_FAILURE;
    char command[256];
    snprintf(command, sizeof command, "espeak-ng -q -x -v en-us -- ");
    append_quoted(command, sizeof command, opt.phrase);
    char *phonemes = command_line_output(command);
    if (!phonemes || !phonemes[0] || strchr(phonemes, '(')) {
        es_cli_error("train-keyword: espeak-ng cannot say \"%s\" in English (phonemes: %s)",
                     opt.phrase, phonemes ? phonemes : "none");
        free(phonemes);
        return ES_EXIT_USAGE;
    }
    /* Leading spaces and espeak's word-break underscores carry nothing. */
    char *trimmed = phonemes + strspn(phonemes, " ");
    if (opt.data_dir && access(opt.data_dir, R_OK) != 0) {
        es_cli_error("train-keyword: --data %s: %s", opt.data_dir, strerror(errno));
        free(phonemes);
        return ES_EXIT_USAGE;
    }

    char work[4096];
    int own_work = !opt.work_dir;
    stop_handlers handlers;
    stop_handlers_install(&handlers);
    if (own_work) {
        const char *tmp = getenv("TMPDIR");
        snprintf(work, sizeof work, "%s/earshot-train-keyword-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(work)) {
            es_cli_error("train-keyword: cannot make a work folder: %s", strerror(errno));
            stop_handlers_restore(&handlers);
            free(phonemes);
            return ES_EXIT_FAILURE;
        }
    } else {
        absolute_path(opt.work_dir, work, sizeof work);
        mkdir(work, 0777);
    }
    char clips_dir[4096 + 8];
    snprintf(clips_dir, sizeof clips_dir, "%s/clips", work);
    mkdir(clips_dir, 0777);

    int status = ES_EXIT_FAILURE;
    es_rng rng;
    es_rng_seed(&rng, (uint64_t)opt.seed * 0x9E3779B97F4A7C15ULL + 0x6b7764ULL);
    voice_list voices = {0};
    confusables conf = {0};
    job_list jobs = {0};
    data_set data = {0};
    es_model *model = NULL;
    es_cal_stream valid = {0}, test = {0};
    run_figures figures = {.phonemes = trimmed};

    note("\"%s\" [%s]: budget %.1f min, work folder %s", opt.phrase, trimmed, opt.minutes, work);
    if (list_voices(&opt, tool_exists("flite"), &rng, &voices) != 0 || voices.count == 0) {
        es_cli_error("train-keyword: espeak-ng lists no English voices");
        goto done;
    }
    if (opt.made_voices > 0 && made_variants(work, opt.made_voices, &rng) != 0) {
        es_cli_error("train-keyword: cannot make espeak-ng voice variants in %s/espeak: %s", work,
                     strerror(errno));
        goto done;
    }
    make_confusables(opt.phrase, trimmed, &rng, &conf);
    if (opt.data_dir && load_data_set(opt.data_dir, opt.phrase, &data) != 0) goto done;
    if (plan_jobs(&opt, &voices, &conf, &rng, &jobs) != 0) {
        es_cli_error("train-keyword: out of memory");
        goto done;
    }
    for (int i = 0; i < voices.count; i++) {
        figures.voices[voices.items[i].split]++;
        figures.made_voices += voices.items[i].made;
    }
    note("step 1/4: rendering %d clips with %d voices (%d train, %d valid, %d test), %d "
         "confusable phrases; %s",
         jobs.count, voices.count, figures.voices[0], figures.voices[1], figures.voices[2],
         conf.count,
         opt.data_dir ? "keyword-free speech and noise from data/" : "no data/: a modest set");
    if (render_all(&jobs, work, opt.threads) != 0 || stop_signal) goto done;
    for (int i = 0; i < jobs.count; i++) {
        const render_job *j = &jobs.items[i];
        if (j->duration_s <= 0) continue;
        figures.positives[j->split] += j->kind == CLIP_POSITIVE;
        figures.confusable_clips[j->split] += j->kind == CLIP_CONFUSABLE;
    }
    figures.confusable_phrases = conf.count;
    for (int i = 0; i < conf.count; i++)
        figures.confusable_phrases_of_kind[conf.kinds[i]]++;
    figures.data_clips = data.count;
    figures.data_excluded = data.excluded;

    char manifest[4096 + 16], trained[4096 + 16];
    snprintf(manifest, sizeof manifest, "%s/manifest.tsv", work);
    snprintf(trained, sizeof trained, "%s/model.esm", work);
    if (write_manifest(manifest, work, opt.phrase, &jobs, opt.data_dir ? &data : NULL,
                       opt.small ? SPLIT_TRAIN : SPLIT_VALID) != 0)
        goto done;

    /* Whatever the rendering left of the budget, less the evaluation's share:
     * calibration and test took 0.6 minutes with data/ on this 2-core machine. */
    const double spent_min = (es_cli_monotonic_s() - started) / 60.0;
    const double evaluation_min = opt.small ? 0.2 : 1.0;
    double train_min = opt.minutes - spent_min - evaluation_min;
    if (train_min < 0.05) train_min = 0.05;
    char eta[32];
    format_duration((train_min + evaluation_min) * 60, eta, sizeof eta);
    note("step 2/4: training for up to %.1f min (ETA of the whole run: %s)", train_min, eta);
    const double train_started = es_cli_monotonic_s();
    const int trained_status =
        stop_signal ? ES_EXIT_FAILURE : train_model(&opt, manifest, trained, train_min);
    if (stop_signal) goto done;
    if (trained_status != ES_EXIT_OK) {
        status = trained_status;
        goto done;
    }
    figures.train_minutes = (es_cli_monotonic_s() - train_started) / 60.0;

    es_error err;
    if (es_model_load_file(trained, &model, &err) != ES_RNN_OK) {
        es_cli_error("train-keyword: %s: %s", trained, err.why);
        goto done;
    }
    note("step 3/4: calibrating on held-out voices and keyword-free audio (valid split)");
    if (evaluate_split(model, &jobs, opt.data_dir ? &data : NULL, work, SPLIT_VALID,
                       CALIBRATION_PASSES, (uint64_t)opt.seed + 11, &valid) != 0)
        goto done;
    if (stop_signal) goto done;
    const es_cal_budget budget = {calibration_target(&opt), 1.0f, 0};
    if (es_cal_calibrate_smoothing(&valid, &budget, smoothing_tried, SMOOTHING_COUNT,
                                   &figures.calibrated, figures.smoothing_trials) != 0) {
        es_cli_error("train-keyword: calibration: out of memory");
        goto done;
    }
    const es_cal_counts *valid_at = &figures.calibrated.counts[0];
    note("threshold %.3f, smoothing %d ms: %d false alarms in %.2f h of keyword-free audio "
         "(%.2f/h), recall %d/%d, confusables accepted %d/%d",
         (double)figures.calibrated.thresholds[0], figures.calibrated.smooth_ms,
         valid_at->false_alarms, valid.negative_seconds / 3600,
         es_cal_per_hour(valid_at->false_alarms, valid.negative_seconds), valid_at->hits,
         valid_at->positives, valid_at->accepted, valid_at->near_misses);
    if (!figures.calibrated.met)
        note("warning: even threshold %.3f gives more than %.2f false alarms per hour",
             (double)figures.calibrated.thresholds[0], (double)calibration_target(&opt));

    note("step 4/4: testing on voices never used in training or calibration (test split)");
    if (evaluate_split(model, &jobs, opt.data_dir ? &data : NULL, work, SPLIT_TEST, 1,
                       (uint64_t)opt.seed + 23, &test) != 0 ||
        stop_signal)
        goto done;
    figures.test_at =
        detect_at(&test, figures.calibrated.thresholds[0], figures.calibrated.smooth_ms);
    figures.valid = &valid;
    figures.test = &test;

    if (es_cal_apply(model, &valid, &figures.calibrated) != 0) {
        es_cli_error("%s: cannot store the threshold in the model", opt.output_path);
        goto done;
    }
    if (es_model_save(model, opt.output_path, &err) != ES_RNN_OK) {
        es_cli_error("%s: %s", opt.output_path, err.why);
        goto done;
    }
    figures.total_minutes = (es_cli_monotonic_s() - started) / 60.0;
    if (write_card(&opt, &figures, card) != 0) goto done;
    /* One machine-readable line for scripts (scripts/keyword-eval.sh). */
    printf(
        "phrase\t%s\tminutes\t%.1f\trecall\t%.3f\tfalse_alarms_per_hour\t%.2f\t"
        "negative_hours\t%.2f\tthreshold\t%.3f\tpositives\t%d\t"
        "confusables_accepted\t%.3f\tconfusables\t%d\tsmooth_ms\t%d\n",
        opt.phrase, figures.total_minutes,
        figures.test_at.positives ? (double)figures.test_at.hits / figures.test_at.positives : NAN,
        es_cal_per_hour(figures.test_at.false_alarms, test.negative_seconds),
        test.negative_seconds / 3600, (double)figures.calibrated.thresholds[0],
        figures.test_at.positives,
        figures.test_at.near_misses ? (double)figures.test_at.accepted / figures.test_at.near_misses
                                    : NAN,
        figures.test_at.near_misses, figures.calibrated.smooth_ms);
    fflush(stdout);
    note("wrote %s and %s: test recall %d/%d (in noise %d/%d), %d false alarms in %.2f h, "
         "confusables accepted %d/%d, %.1f min in all",
         opt.output_path, card, figures.test_at.hits, figures.test_at.positives,
         figures.test_at.hits_in_noise, figures.test_at.positives_in_noise,
         figures.test_at.false_alarms, test.negative_seconds / 3600, figures.test_at.accepted,
         figures.test_at.near_misses, figures.total_minutes);
    status = ES_EXIT_OK;
done:
    es_model_destroy(model);
    es_cal_stream_free(&valid);
    es_cal_stream_free(&test);
    for (int i = 0; i < jobs.count; i++)
        free(jobs.items[i].text);
    free(jobs.items);
    free(voices.items);
    confusables_free(&conf);
    data_set_free(&data);
    free(phonemes);
    if (own_work) nftw(work, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    stop_handlers_restore(&handlers);
    if (stop_signal && status != ES_EXIT_OK) {
        es_cli_error("train-keyword: stopped (%s)%s", strsignal(stop_signal),
                     own_work ? "; its work folder is removed" : "");
        /* The shell's convention for a command a signal ended. */
        status = 128 + stop_signal;
    }
    return status;
}
