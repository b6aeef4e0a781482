/*
 * Helpers shared by the subcommands: error messages in the one format
 * (`earshot: <what>: <why>`), number parsing that names the flag, and the
 * model and detector flags that `file`, `mic` and friends all take.
 *
 * Use in a getopt_long loop:
 *
 *     static const struct option options[] = {
 *         {"help", no_argument, NULL, 'h'},
 *         ES_CLI_DETECTOR_LONG_OPTIONS,
 *         {0},
 *     };
 *     ...
 *     int handled = es_cli_detector_option(&flags, opt, optarg);
 *     if (handled < 0) return 2;      // message already printed
 *     if (handled > 0) continue;
 */
#ifndef ES_CLI_UTIL_H
#define ES_CLI_UTIL_H

#include <getopt.h>
#include <stdio.h>

#include "stream.h"

/* Elements of an array (not a pointer). */
#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Exit statuses (DESIGN.md, "Command line"). */
enum { ES_EXIT_OK = 0, ES_EXIT_FAILURE = 1, ES_EXIT_USAGE = 2 };

/* Prints "earshot: " fmt "\n" on stderr. */
void es_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* For getopt_long's ':' (an option without its value) and anything else it
 * does not know: prints "COMMAND: --x needs a value" or "COMMAND: unknown
 * option '--y'", each with a pointer to COMMAND's --help. Returns -1. */
int es_cli_bad_option(const char *command, int getopt_result, char *const *argv);

/* After getopt: the one operand left (its NAME, e.g. "MANIFEST", for the
 * message), or NULL with "COMMAND: expected one NAME" printed. */
const char *es_cli_one_operand(const char *command, const char *name, int argc, char *const *argv);

/* Whole-string numbers within [min, max]; on failure prints
 * "earshot: FLAG: 'TEXT' is not ..." and returns -1. */
int es_cli_parse_int(const char *flag, const char *text, long min, long max, int *out);
int es_cli_parse_float(const char *flag, const char *text, double min, double max, float *out);
/* --format's value; on failure prints the choices and returns -1. */
int es_cli_parse_format(const char *text, es_output_format *out);

/* ---- output files ------------------------------------------------------------ */

/* Before any work: whether `path` can be written as a new or replaced file
 * (not a directory; its folder exists and may be written in). Commands that
 * run for minutes call it first, so a typo in -o costs nothing. Prints
 * "earshot: PATH: why" and returns -1 when it cannot. */
int es_cli_check_output(const char *path);

/* An output file written through a temporary file in the same folder and
 * renamed over `path` only when it is complete: a failed or interrupted run
 * never leaves a half-written file in its place. Devices and FIFOs (e.g.
 * /dev/null, /dev/stdout) are written in place, as there is nothing to rename. */
typedef struct es_cli_output {
    FILE *file;
    char *path;      /* what the user named, for messages */
    char *target;    /* the file renamed over: `path` with symbolic links resolved */
    char *temp_path; /* NULL when written in place */
} es_cli_output;

/* Both print "earshot: PATH: why" and return -1 on failure; commit removes the
 * temporary file when writing or renaming fails. */
int es_cli_output_open(const char *path, es_cli_output *out);
int es_cli_output_commit(es_cli_output *out);
/* Closes and removes the temporary file: the old file at `path` stays. */
void es_cli_output_discard(es_cli_output *out);

/* Seconds on the monotonic clock: for the durations and ETAs commands report. */

/* ---- model and detector flags ------------------------------------------------ */

enum {
    ES_CLI_OPT_VAD_MODEL = 0x1000,
    ES_CLI_OPT_KWS_MODEL,
    ES_CLI_OPT_VAD_THRESHOLD,
    ES_CLI_OPT_VAD_OFFSET_THRESHOLD,
    ES_CLI_OPT_MIN_SPEECH_MS,
    ES_CLI_OPT_MIN_SILENCE_MS,
    ES_CLI_OPT_MAX_SPEECH_MS,
    ES_CLI_OPT_SPEECH_PAD_MS,
    ES_CLI_OPT_KW_THRESHOLD,
    ES_CLI_OPT_KW_THRESHOLD_FOR,
    ES_CLI_OPT_KW_SMOOTH_MS,
    ES_CLI_OPT_REFRACTORY_MS,
    ES_CLI_OPT_VAD_GATE,
    ES_CLI_OPT_SPEECH_START,
};

#define ES_CLI_DETECTOR_LONG_OPTIONS                                                               \
    {"vad-model", required_argument, NULL, ES_CLI_OPT_VAD_MODEL},                                  \
        {"kws-model", required_argument, NULL, ES_CLI_OPT_KWS_MODEL},                              \
        {"vad-threshold", required_argument, NULL, ES_CLI_OPT_VAD_THRESHOLD},                      \
        {"vad-offset-threshold", required_argument, NULL, ES_CLI_OPT_VAD_OFFSET_THRESHOLD},        \
        {"min-speech-ms", required_argument, NULL, ES_CLI_OPT_MIN_SPEECH_MS},                      \
        {"min-silence-ms", required_argument, NULL, ES_CLI_OPT_MIN_SILENCE_MS},                    \
        {"max-speech-ms", required_argument, NULL, ES_CLI_OPT_MAX_SPEECH_MS},                      \
        {"speech-pad-ms", required_argument, NULL, ES_CLI_OPT_SPEECH_PAD_MS},                      \
        {"speech-start", no_argument, NULL, ES_CLI_OPT_SPEECH_START},                              \
        {"kw-threshold", required_argument, NULL, ES_CLI_OPT_KW_THRESHOLD},                        \
        {"kw-threshold-for", required_argument, NULL, ES_CLI_OPT_KW_THRESHOLD_FOR},                \
        {"kw-smooth-ms", required_argument, NULL, ES_CLI_OPT_KW_SMOOTH_MS},                        \
        {"refractory-ms", required_argument, NULL, ES_CLI_OPT_REFRACTORY_MS}, {                    \
        "vad-gate", no_argument, NULL, ES_CLI_OPT_VAD_GATE                                         \
    }

/* The --help paragraph for the flags above. */
extern const char es_cli_detector_help[];

typedef struct es_cli_detector_flags {
    const char *vad_model_path; /* NULL: built-in "vad" */
    const char *kws_model_paths[ES_PIPELINE_MAX_KWS_MODELS];
    int kws_model_count; /* 0: built-in "kws" */
    es_vad_config vad;
    es_kws_config kws;
} es_cli_detector_flags;

void es_cli_detector_flags_default(es_cli_detector_flags *flags);

/* Applies one getopt_long result: 1 if it was one of ours, 0 if not, -1 if
 * its value is bad (message printed; exit with ES_EXIT_USAGE). */
int es_cli_detector_option(es_cli_detector_flags *flags, int option, const char *arg);

/* After option parsing: the detector configs as a whole (e.g. offset above
 * onset). Prints and returns -1 when invalid. */
int es_cli_detector_check(const es_cli_detector_flags *flags);

/* The models the flags name, loaded and checked against the front end. */
typedef struct es_cli_models {
    es_model *vad;
    es_model *kws[ES_PIPELINE_MAX_KWS_MODELS];
    int kws_count;
} es_cli_models;

/* Returns ES_EXIT_OK, ES_EXIT_FAILURE (a model cannot be used; printed) or
 * ES_EXIT_USAGE (--kw-threshold-for names no keyword of the models). */
int es_cli_models_load(const es_cli_detector_flags *flags, const es_frontend_config *frontend,
                       es_cli_models *models);
void es_cli_models_destroy(es_cli_models *models);

/* Puts the models and detector configs into a pipeline config. */
void es_cli_models_apply(const es_cli_detector_flags *flags, const es_cli_models *models,
                         es_pipeline_config *config);

/* The flags as libearshot's params (earshot.h), for commands that run through
 * the public API (`earshot file`): the model paths (no --kws-model: the
 * built-in one) and every detector knob; the rest of `params` is left as it
 * is. Strings point into `flags`. */
struct earshot_params;
void es_cli_detector_params(const es_cli_detector_flags *flags, struct earshot_params *params);

#endif
