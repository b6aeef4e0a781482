/* The manifest reader (factory.h): models/MANIFEST.md's rules, once. */
#include "factory.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const es_split_names[ES_SPLIT_COUNT] = {"train", "valid", "test"};
const char *const es_kind_names[ES_KIND_COUNT] = {"keyword", "sentence", "speech", "noise"};

#define COLUMNS 7

int es_voice_is_recorded(const char *voice) {
    return strncmp(voice, "espeak:", 7) != 0 && strncmp(voice, "flite:", 6) != 0 &&
           strncmp(voice, "noise:", 6) != 0;
}

static int name_index(const char *name, const char *const *names, int count) {
    for (int i = 0; i < count; i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

static int parse_seconds(const char *text, double *out) {
    char *end = NULL;
    errno = 0;
    const double value = strtod(text, &end);
    if (errno || end == text || *end != '\0' || !isfinite(value) || value < 0.0) return -1;
    *out = value;
    return 0;
}

/* Splits `line` at tabs into at most `max` fields; returns how many (max + 1
 * when there are more). */
static int split_fields(char *line, char **fields, int max) {
    int n = 0;
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        char *tab = strchr(p, '\t');
        if (!tab) break;
        *tab = '\0';
        p = tab + 1;
    }
    return strchr(p, '\t') ? max + 1 : n;
}

/* Checks the columns of one line; writes the reason to `why` when they are bad. */
static int check_fields(char **f, es_manifest_clip *out, char *why, size_t why_size) {
    const int split = name_index(f[1], es_split_names, ES_SPLIT_COUNT);
    const int kind = name_index(f[2], es_kind_names, ES_KIND_COUNT);
    if (f[0][0] == '\0')
        snprintf(why, why_size, "empty path");
    else if (split < 0)
        snprintf(why, why_size, "split '%s' is not train, valid or test", f[1]);
    else if (kind < 0)
        snprintf(why, why_size, "kind '%s' is not keyword, sentence, speech or noise", f[2]);
    else if (f[6][0] == '\0')
        snprintf(why, why_size, "empty voice");
    else if (kind == ES_KIND_KEYWORD &&
             (parse_seconds(f[4], &out->start_s) || parse_seconds(f[5], &out->end_s) ||
              out->end_s <= out->start_s))
        snprintf(why, why_size, "keyword start_s '%s' and end_s '%s' are not 0 <= start < end",
                 f[4], f[5]);
    else {
        out->split = (es_split)split;
        out->kind = (es_clip_kind)kind;
        out->recorded = es_voice_is_recorded(f[6]);
        return 0;
    }
    return -1;
}

/* Parses one data line into *out: its path resolved against `folder`, with
 * the label and voice in the same allocation. */
static int parse_line(char *line, const char *folder, es_manifest_clip *out, char *why,
                      size_t why_size) {
    char *f[COLUMNS + 1];
    const int n = split_fields(line, f, COLUMNS);
    if (n != COLUMNS) {
        snprintf(why, why_size, "expected 7 tab-separated columns, found %d", n);
        return -1;
    }
    *out = (es_manifest_clip){0};
    if (check_fields(f, out, why, why_size) != 0) return -1;
    if (out->kind != ES_KIND_KEYWORD) out->start_s = out->end_s = 0.0;
    const size_t path_size = strlen(folder) + strlen(f[0]) + 2;
    const size_t label_size = strlen(f[3]) + 1;
    out->path = malloc(path_size + label_size + strlen(f[6]) + 1);
    if (!out->path) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    if (f[0][0] == '/')
        snprintf(out->path, path_size, "%s", f[0]);
    else
        snprintf(out->path, path_size, "%s/%s", folder, f[0]);
    char *label = out->path + path_size;
    memcpy(label, f[3], label_size);
    strcpy(label + label_size, f[6]);
    out->label = label;
    out->voice = label + label_size;
    return 0;
}

static int grow(es_manifest *m) {
    if (m->count < m->capacity) return 0;
    const int capacity = m->capacity ? 2 * m->capacity : 1024;
    es_manifest_clip *grown = realloc(m->clips, sizeof(es_manifest_clip) * (size_t)capacity);
    if (!grown) return -1;
    m->clips = grown;
    m->capacity = capacity;
    return 0;
}

/* The folder relative paths are resolved against: the manifest's own. */
static void manifest_folder(const char *path, char *folder, size_t size) {
    snprintf(folder, size, "%s", path);
    char *slash = strrchr(folder, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(folder, size, ".");
}

int es_manifest_read(const char *path, es_manifest *out, es_error *err) {
    memset(out, 0, sizeof *out);
    FILE *file = fopen(path, "r");
    if (!file) return es_error_set(err, ES_MANIFEST_ERR_IO, "%s: %s", path, strerror(errno));
    char folder[4096];
    manifest_folder(path, folder, sizeof folder);
    char *line = NULL;
    size_t line_size = 0;
    long line_number = 0;
    int rc = ES_MANIFEST_OK;
    while (rc == ES_MANIFEST_OK && getline(&line, &line_size, file) != -1) {
        line_number++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0') continue;
        char why[256];
        if (grow(out) != 0) {
            rc = es_error_set(err, ES_MANIFEST_ERR_NOMEM, "%s: out of memory", path);
        } else if (parse_line(line, folder, &out->clips[out->count], why, sizeof why) != 0) {
            rc = es_error_set(err, ES_MANIFEST_ERR_FORMAT, "%s:%ld: %s", path, line_number, why);
        } else {
            out->clips[out->count++].line = line_number;
        }
    }
    free(line);
    fclose(file);
    return rc;
}

void es_manifest_free(es_manifest *manifest) {
    for (int i = 0; i < manifest->count; i++)
        free(manifest->clips[i].path);
    free(manifest->clips);
    memset(manifest, 0, sizeof *manifest);
}
