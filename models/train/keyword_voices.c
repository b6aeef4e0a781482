/*
 * train-keyword's voices (factory.h, step 1): espeak-ng's English accents
 * and variants split as scripts/data.sh splits them, variants made at random,
 * flite's voices; and the small command helpers the steps share.
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <sys/stat.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyword_internal.h"
#include "factory.h"

/* ---- command helpers -------------------------------------------------------------- */

/* Appends `text` single-quoted for sh. */
void append_quoted(char *buf, size_t size, const char *text) {
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
char *command_line_output(const char *command) {
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

int tool_exists(const char *name) {
    char command[128];
    snprintf(command, sizeof command, "command -v %s >/dev/null 2>&1", name);
    return system(command) == 0;
}

/* ---- voices ---------------------------------------------------------------------- */

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

void free_list(char **items, int count) {
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
int made_variants(const char *work, int count, es_rng *rng) {
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
int list_voices(const es_keyword_params *opt, int have_flite, es_rng *rng, voice_list *voices) {
    int accent_count = 0, variant_count = 0;
    char **accents = read_list("espeak-ng --voices=en | awk '$5 ~ /^gmw\\// { print $2 }' | "
                               "sort -u",
                               &accent_count);
    char **variants = read_list("espeak-ng --voices=variant | awk 'NR > 1 { print $5 }' | "
                                "sed -n 's|^!v/\\([A-Za-z0-9_-]*\\)$|\\1|p' | sort -u",
                                &variant_count);
    int wanted[ES_SPLIT_COUNT] = {2, 1, 1}, taken[ES_SPLIT_COUNT] = {0, 0, 0};
    int rc = 0;
    for (int a = 0; a < accent_count && rc == 0; a++) {
        if (!opt->small) rc = voice_add(voices, ENGINE_ESPEAK, accents[a], ES_SPLIT_TRAIN);
        for (int v = 0; v < variant_count && rc == 0; v++) {
            char name[96];
            snprintf(name, sizeof name, "%s+%s", accents[a], variants[v]);
            const int split = (int)es_voice_split("espeak", name); /* models/train/factory.h */
            if (opt->small && taken[split] >= wanted[split]) continue;
            taken[split]++;
            rc = voice_add(voices, ENGINE_ESPEAK, name, split);
        }
    }
    /* Each made variant speaks with one accent; training only, so that recall is
     * still measured on espeak-ng's own held-out variants. */
    for (int i = 0; i < opt->made_voices && accent_count > 0 && rc == 0; i++) {
        char name[96];
        snprintf(name, sizeof name, "%s+made%d", accents[es_rng_below(rng, accent_count)], i);
        rc = voice_add(voices, ENGINE_ESPEAK, name, ES_SPLIT_TRAIN);
        if (rc == 0) voices->items[voices->count - 1].made = 1;
    }
    static const char *const flite_voices[] = {"kal", "kal16", "slt"};
    for (int i = 0; have_flite && i < (opt->small ? 1 : 3) && rc == 0; i++)
        rc = voice_add(voices, ENGINE_FLITE, flite_voices[i], ES_SPLIT_TRAIN);
    free_list(accents, accent_count);
    free_list(variants, variant_count);
    return rc;
}
