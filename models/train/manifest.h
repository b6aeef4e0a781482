/*
 * manifest — the one reader of the training manifest (models/MANIFEST.md):
 * a UTF-8 TSV file, one clip a line, seven columns (path, split, kind,
 * label, start_s, end_s, voice), `#` comment lines and blank lines skipped.
 *
 * `earshot train`, `earshot calibrate` and `earshot train-keyword` (data/'s
 * manifest) all read it here, so a line means the same to each of them and
 * a bad line is refused with the same reason: "MANIFEST:LINE: why".
 * What each does with the lines (train's outputs and draws, calibrate's
 * valid split) is the caller's.
 *
 * Library code: errors are returned (common/error.h), never printed.
 */
#ifndef ES_MANIFEST_H
#define ES_MANIFEST_H

#include "error.h"

/* Splits are by voice: a voice is in exactly one. */
typedef enum es_split {
    ES_SPLIT_TRAIN = 0,
    ES_SPLIT_VALID = 1, /* model selection and threshold calibration */
    ES_SPLIT_TEST = 2,  /* the reported figures only */
    ES_SPLIT_COUNT = 3
} es_split;

typedef enum es_clip_kind {
    ES_KIND_KEYWORD = 0,  /* a keyword spoken in the clip (label, start_s, end_s) */
    ES_KIND_SENTENCE = 1, /* keyword-free speech; label: its near-miss word, or "-" */
    ES_KIND_SPEECH = 2,   /* real keyword-free speech */
    ES_KIND_NOISE = 3,    /* no speech at all */
    ES_KIND_COUNT = 4
} es_clip_kind;

/* "train", "valid", "test" and "keyword", "sentence", "speech", "noise". */
extern const char *const es_split_names[ES_SPLIT_COUNT];
extern const char *const es_kind_names[ES_KIND_COUNT];

/* One line of a manifest. The three strings share one allocation (path's). */
typedef struct es_manifest_clip {
    char *path;        /* resolved against the manifest's folder (absolute ones kept) */
    const char *label; /* as written: a keyword, a near-miss word or "-" */
    const char *voice; /* as written, never empty */
    es_split split;
    es_clip_kind kind;
    double start_s, end_s; /* keyword clips: 0 <= start_s < end_s; else 0 */
    int recorded;          /* a recorded person (es_voice_is_recorded) */
    long line;             /* its line number in the file, for messages */
} es_manifest_clip;

typedef struct es_manifest {
    es_manifest_clip *clips; /* in the file's order */
    int count, capacity;
} es_manifest;

/* Errors of es_manifest_read. */
enum {
    ES_MANIFEST_OK = 0,
    ES_MANIFEST_ERR_IO = -1,     /* cannot be opened: "PATH: strerror" */
    ES_MANIFEST_ERR_FORMAT = -2, /* a bad line: "PATH:LINE: why" */
    ES_MANIFEST_ERR_NOMEM = -3   /* "PATH: out of memory" */
};

/* Reads the whole manifest at `path` into *out (emptied first); on a bad
 * line stops there and says why. *out is to be freed with
 * es_manifest_free either way. */
int es_manifest_read(const char *path, es_manifest *out, es_error *err);
void es_manifest_free(es_manifest *manifest);

/* Whether a voice tag is a recorded person's, as tools/eval counts them
 * (lib.js isRecorded): anything but "espeak:", "flite:" and "noise:". */
int es_voice_is_recorded(const char *voice);

#endif
