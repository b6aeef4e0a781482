/*
 * Shared command-line helpers (cli_util.h).
 */
#include "cli_util.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "earshot.h"

_Static_assert(EARSHOT_MAX_KWS_MODELS >= ES_PIPELINE_MAX_KWS_MODELS &&
                   EARSHOT_MAX_KEYWORD_SETTINGS >= ES_KWS_MAX_KEYWORDS,
               "every --kws-model and --kw-threshold-for fits in earshot_params");

void es_cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("earshot: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int es_cli_parse_int(const char *flag, const char *text, long min, long max, int *out) {
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max) {
        es_cli_error("%s: '%s' is not a whole number from %ld to %ld", flag, text, min, max);
        return -1;
    }
    *out = (int)value;
    return 0;
}

int es_cli_parse_float(const char *flag, const char *text, double min, double max, float *out) {
    char *end = NULL;
    errno = 0;
    double value = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(value) || value < min ||
        value > max) {
        es_cli_error("%s: '%s' is not a number from %g to %g", flag, text, min, max);
        return -1;
    }
    *out = (float)value;
    return 0;
}

int es_cli_parse_format(const char *text, es_output_format *out) {
    if (es_output_format_parse(text, out) == 0) return 0;
    es_cli_error("--format: unknown format '%s' (jsonl, rttm, audacity, frames)", text);
    return -1;
}

/* ---- model and detector flags ------------------------------------------------ */

const char es_cli_detector_help[] =
    "Models:\n"
    "  --vad-model PATH         speech model file instead of the built-in one\n"
    "  --kws-model PATH         keyword model file instead of the built-in one\n"
    "                           (repeat for several keyword models)\n"
    "Speech segments:\n"
    "  --vad-threshold P        speech starts when its probability reaches P (0.75)\n"
    "  --vad-offset-threshold P and ends when it falls below P (the onset threshold)\n"
    "  --min-speech-ms MS       drop shorter segments (30)\n"
    "  --min-silence-ms MS      bridge shorter gaps (150)\n"
    "  --max-speech-ms MS       split longer segments, 0 = never (30000)\n"
    "  --speech-pad-ms MS       widen each segment by this on both sides (0)\n"
    "  --speech-start           also send a speech_start event (jsonl only) as soon\n"
    "                           as a segment is long enough to be kept, before its\n"
    "                           speech event: {\"type\":\"speech_start\",\"source\":...,\n"
    "                           \"start\":<its start>,\"time\":<when known>}\n"
    "Keywords:\n"
    "  --kw-threshold P         fire when the smoothed posterior reaches P (0.5)\n"
    "  --kw-threshold-for WORD=P  threshold for one keyword (repeatable)\n"
    "  --kw-smooth-ms MS        posterior smoothing window (50; a model calibrated with\n"
    "                           another, as train-keyword's are, keeps its own)\n"
    "  --refractory-ms MS       quiet time after a keyword fires (1000)\n"
    "  --vad-gate               keywords only inside speech segments\n";

#define MAX_DURATION_MS 3600000L

void es_cli_detector_flags_default(es_cli_detector_flags *flags) {
    memset(flags, 0, sizeof *flags);
    es_vad_config_default(&flags->vad);
    es_kws_config_default(&flags->kws);
}

static int set_keyword_threshold(es_kws_config *kws, const char *arg) {
    const char *flag = "--kw-threshold-for";
    const char *equals = strrchr(arg, '=');
    size_t word_len = equals ? (size_t)(equals - arg) : 0;
    if (!equals || word_len == 0) {
        es_cli_error("%s: '%s' is not WORD=THRESHOLD", flag, arg);
        return -1;
    }
    if (word_len >= sizeof kws->thresholds[0].keyword) {
        es_cli_error("%s: keyword '%.*s' is longer than %zu characters", flag, (int)word_len, arg,
                     sizeof kws->thresholds[0].keyword - 1);
        return -1;
    }
    float threshold;
    if (es_cli_parse_float(flag, equals + 1, 0.0, 1.0, &threshold) != 0) return -1;
    int slot = 0;
    while (slot < kws->threshold_count &&
           !(strncmp(kws->thresholds[slot].keyword, arg, word_len) == 0 &&
             kws->thresholds[slot].keyword[word_len] == '\0'))
        slot++;
    if (slot == ES_KWS_MAX_KEYWORDS) {
        es_cli_error("%s: more than %d keywords", flag, ES_KWS_MAX_KEYWORDS);
        return -1;
    }
    memcpy(kws->thresholds[slot].keyword, arg, word_len);
    kws->thresholds[slot].keyword[word_len] = '\0';
    kws->thresholds[slot].threshold = threshold;
    if (slot == kws->threshold_count) kws->threshold_count++;
    return 0;
}

int es_cli_detector_option(es_cli_detector_flags *flags, int option, const char *arg) {
    es_vad_config *vad = &flags->vad;
    es_kws_config *kws = &flags->kws;
    int rc;
    switch (option) {
    case ES_CLI_OPT_VAD_MODEL:
        flags->vad_model_path = arg;
        return 1;
    case ES_CLI_OPT_KWS_MODEL:
        if (flags->kws_model_count == ES_PIPELINE_MAX_KWS_MODELS) {
            es_cli_error("--kws-model: at most %d keyword models", ES_PIPELINE_MAX_KWS_MODELS);
            return -1;
        }
        flags->kws_model_paths[flags->kws_model_count++] = arg;
        return 1;
    case ES_CLI_OPT_VAD_THRESHOLD:
        rc = es_cli_parse_float("--vad-threshold", arg, 0.0, 1.0, &vad->onset_threshold);
        break;
    case ES_CLI_OPT_VAD_OFFSET_THRESHOLD:
        rc = es_cli_parse_float("--vad-offset-threshold", arg, 0.0, 1.0, &vad->offset_threshold);
        break;
    case ES_CLI_OPT_MIN_SPEECH_MS:
        rc = es_cli_parse_int("--min-speech-ms", arg, 0, MAX_DURATION_MS, &vad->min_speech_ms);
        break;
    case ES_CLI_OPT_MIN_SILENCE_MS:
        rc = es_cli_parse_int("--min-silence-ms", arg, 0, MAX_DURATION_MS, &vad->min_silence_ms);
        break;
    case ES_CLI_OPT_MAX_SPEECH_MS:
        rc = es_cli_parse_int("--max-speech-ms", arg, 0, MAX_DURATION_MS, &vad->max_speech_ms);
        break;
    case ES_CLI_OPT_SPEECH_PAD_MS:
        rc = es_cli_parse_int("--speech-pad-ms", arg, 0, 10000, &vad->pad_ms);
        break;
    case ES_CLI_OPT_KW_THRESHOLD:
        rc = es_cli_parse_float("--kw-threshold", arg, 0.0, 1.0, &kws->default_threshold);
        break;
    case ES_CLI_OPT_KW_THRESHOLD_FOR:
        rc = set_keyword_threshold(kws, arg);
        break;
    case ES_CLI_OPT_KW_SMOOTH_MS:
        rc = es_cli_parse_int("--kw-smooth-ms", arg, 0, 1000, &kws->smooth_ms);
        break;
    case ES_CLI_OPT_REFRACTORY_MS:
        rc = es_cli_parse_int("--refractory-ms", arg, 0, MAX_DURATION_MS, &kws->refractory_ms);
        break;
    case ES_CLI_OPT_VAD_GATE:
        kws->vad_gate = 1;
        return 1;
    case ES_CLI_OPT_SPEECH_START:
        vad->speech_start_events = 1;
        return 1;
    default:
        return 0;
    }
    return rc == 0 ? 1 : -1;
}

/* The rules between flags, said in flag names; anything else the detectors
 * refuse is reported in their words. */
int es_cli_detector_check(const es_cli_detector_flags *flags) {
    const es_vad_config *vad = &flags->vad;
    const es_kws_config *kws = &flags->kws;
    if (vad->onset_threshold <= 0.0f) {
        es_cli_error("--vad-threshold: must be greater than 0");
        return -1;
    }
    if (vad->offset_threshold > vad->onset_threshold) {
        es_cli_error("--vad-offset-threshold: %g is above --vad-threshold %g",
                     vad->offset_threshold, vad->onset_threshold);
        return -1;
    }
    if (vad->max_speech_ms != 0 && vad->max_speech_ms <= vad->min_speech_ms) {
        es_cli_error("--max-speech-ms: %d must be 0 (no limit) or longer than --min-speech-ms %d",
                     vad->max_speech_ms, vad->min_speech_ms);
        return -1;
    }
    if (kws->default_threshold <= 0.0f) {
        es_cli_error("--kw-threshold: must be greater than 0");
        return -1;
    }
    for (int i = 0; i < kws->threshold_count; i++) {
        if (kws->thresholds[i].threshold <= 0.0f) {
            es_cli_error("--kw-threshold-for: %s: the threshold must be greater than 0",
                         kws->thresholds[i].keyword);
            return -1;
        }
    }
    es_error err;
    if (es_vad_config_check(vad, &err) != 0 || es_kws_config_check(kws, &err) != 0) {
        es_cli_error("detector options: %s", err.why);
        return -1;
    }
    return 0;
}

static int model_has_keyword(const es_cli_models *models, const char *keyword) {
    for (int k = 0; k < models->kws_count; k++)
        for (int i = 0; i < es_model_output_size(models->kws[k]); i++)
            if (strcmp(es_model_label(models->kws[k], i), keyword) == 0) return 1;
    return 0;
}

int es_cli_models_load(const es_cli_detector_flags *flags, const es_frontend_config *frontend,
                       es_cli_models *models) {
    memset(models, 0, sizeof *models);
    es_error err = {0};
    if (es_pipeline_load_model(flags->vad_model_path, "vad", frontend, &models->vad, &err) !=
        ES_PIPELINE_OK) {
        es_cli_error("%s", err.why);
        return ES_EXIT_FAILURE;
    }
    int count = flags->kws_model_count > 0 ? flags->kws_model_count : 1;
    for (int k = 0; k < count; k++) {
        const char *path = flags->kws_model_count > 0 ? flags->kws_model_paths[k] : NULL;
        int rc = es_pipeline_load_model(path, "kws", frontend, &models->kws[k], &err);
        if (rc == ES_PIPELINE_OK) {
            models->kws_count = k + 1;
            rc = es_pipeline_check_keyword_model(models->kws[k], path ? path : "built-in kws model",
                                                 &err);
        }
        if (rc != ES_PIPELINE_OK) {
            es_cli_error("%s", err.why);
            es_cli_models_destroy(models);
            return ES_EXIT_FAILURE;
        }
    }
    for (int i = 0; i < flags->kws.threshold_count; i++) {
        const char *keyword = flags->kws.thresholds[i].keyword;
        if (!model_has_keyword(models, keyword)) {
            es_cli_error("--kw-threshold-for: '%s' is not a keyword of the keyword model", keyword);
            es_cli_models_destroy(models);
            return ES_EXIT_USAGE;
        }
    }
    return ES_EXIT_OK;
}

void es_cli_models_destroy(es_cli_models *models) {
    if (models->vad) es_model_destroy(models->vad);
    for (int k = 0; k < models->kws_count; k++)
        es_model_destroy(models->kws[k]);
    memset(models, 0, sizeof *models);
}

void es_cli_models_apply(const es_cli_detector_flags *flags, const es_cli_models *models,
                         es_pipeline_config *config) {
    config->vad_model = models->vad;
    for (int k = 0; k < models->kws_count; k++)
        config->kws_models[k] = models->kws[k];
    config->kws_model_count = models->kws_count;
    config->vad = flags->vad;
    config->kws = flags->kws;
}

void es_cli_detector_params(const es_cli_detector_flags *flags, earshot_params *params) {
    params->vad_model = flags->vad_model_path;
    params->kws_model_count = flags->kws_model_count > 0 ? flags->kws_model_count : 1;
    for (int k = 0; k < params->kws_model_count; k++)
        params->kws_models[k] = flags->kws_model_count > 0 ? flags->kws_model_paths[k] : NULL;

    const es_vad_config *vad = &flags->vad;
    params->vad_threshold = vad->onset_threshold;
    params->vad_offset_threshold = vad->offset_threshold;
    params->min_speech_ms = vad->min_speech_ms;
    params->min_silence_ms = vad->min_silence_ms;
    params->max_speech_ms = vad->max_speech_ms;
    params->speech_pad_ms = vad->pad_ms;
    params->speech_start_events = vad->speech_start_events;

    const es_kws_config *kws = &flags->kws;
    params->kw_threshold = kws->default_threshold;
    params->kw_smooth_ms = kws->smooth_ms;
    params->refractory_ms = kws->refractory_ms;
    params->vad_gate = kws->vad_gate;
    params->peak_wait_ms = kws->peak_wait_ms;
    params->keyword_setting_count = kws->threshold_count;
    for (int i = 0; i < kws->threshold_count; i++) {
        params->keyword_settings[i].keyword = kws->thresholds[i].keyword;
        params->keyword_settings[i].threshold = kws->thresholds[i].threshold;
        params->keyword_settings[i].smooth_ms = kws->thresholds[i].smooth_ms;
    }
}

int es_cli_bad_option(const char *command, int getopt_result, char *const *argv) {
    if (getopt_result == ':')
        es_cli_error("%s: %s needs a value (try 'earshot %s --help')", command, argv[optind - 1],
                     command);
    else
        es_cli_error("%s: unknown option '%s' (try 'earshot %s --help')", command, argv[optind - 1],
                     command);
    return -1;
}

const char *es_cli_one_operand(const char *command, const char *name, int argc, char *const *argv) {
    if (optind == argc - 1) return argv[optind];
    es_cli_error("%s: expected one %s (try 'earshot %s --help')", command, name, command);
    return NULL;
}

/* ---- output files ------------------------------------------------------------ */

/* The folder a file named `path` lives in: "." for a bare name. */
static char *folder_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *folder = malloc(n + 1);
    if (!folder) return NULL;
    memcpy(folder, path, n);
    folder[n] = '\0';
    return folder;
}

int es_cli_check_output(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            es_cli_error("%s: is a directory, not a file to write", path);
            return -1;
        }
        if (access(path, W_OK) != 0) {
            es_cli_error("%s: cannot write: %s", path, strerror(errno));
            return -1;
        }
        if (!S_ISREG(st.st_mode)) return 0; /* a device or FIFO is written in place */
    } else if (errno != ENOENT) {
        es_cli_error("%s: %s", path, strerror(errno));
        return -1;
    }
    char *folder = folder_of(path);
    if (!folder) {
        es_cli_error("%s: out of memory", path);
        return -1;
    }
    int rc = 0;
    if (stat(folder, &st) != 0) {
        es_cli_error("%s: folder %s: %s", path, folder, strerror(errno));
        rc = -1;
    } else if (!S_ISDIR(st.st_mode)) {
        es_cli_error("%s: %s is not a folder", path, folder);
        rc = -1;
    } else if (access(folder, W_OK | X_OK) != 0) {
        es_cli_error("%s: cannot write in folder %s: %s", path, folder, strerror(errno));
        rc = -1;
    }
    free(folder);
    return rc;
}

/* Ctrl-C or SIGTERM while a command writes its -o must not leave the
 * temporary file behind. The handler needs the path without a pointer to
 * pass it: one output at a time per process is all the commands open. */
static const char *volatile signal_temp_path;
static struct sigaction saved_int, saved_term;

static void remove_temp_then_die(int sig) {
    const char *path = signal_temp_path;
    if (path) unlink(path); /* async-signal-safe */
    /* Then end as the signal would have: the parent sees how it ended. */
    signal(sig, SIG_DFL);
    raise(sig);
}

static void guard_temp(const char *path) {
    if (signal_temp_path) return; /* another output holds the guard */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = remove_temp_then_die;
    sigemptyset(&sa.sa_mask);
    signal_temp_path = path;
    sigaction(SIGINT, &sa, &saved_int);
    sigaction(SIGTERM, &sa, &saved_term);
}

static void unguard_temp(const char *path) {
    if (!path || signal_temp_path != path) return;
    sigaction(SIGINT, &saved_int, NULL);
    sigaction(SIGTERM, &saved_term, NULL);
    signal_temp_path = NULL;
}

static void output_free(es_cli_output *out) {
    unguard_temp(out->temp_path);
    free(out->path);
    free(out->target);
    free(out->temp_path);
    memset(out, 0, sizeof *out);
}

/* A new file gets the mode fopen would give it; a replaced one keeps its own. */
static mode_t new_file_mode(const struct stat *existing) {
    if (existing) return existing->st_mode & 07777;
    mode_t mask = umask(0);
    umask(mask);
    return 0666 & ~mask;
}

int es_cli_output_open(const char *path, es_cli_output *out) {
    memset(out, 0, sizeof *out);
    struct stat st;
    int exists = stat(path, &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) {
        es_cli_error("%s: is a directory, not a file to write", path);
        return -1;
    }
    out->path = strdup(path);
    /* Through a symbolic link, the file it points at is replaced, not the link. */
    out->target = exists ? realpath(path, NULL) : strdup(path);
    if (!out->path || !out->target) {
        es_cli_error("%s: %s", path, exists ? strerror(errno) : "out of memory");
        output_free(out);
        return -1;
    }
    if (exists && !S_ISREG(st.st_mode)) {
        if (!(out->file = fopen(path, "w"))) {
            es_cli_error("%s: cannot write: %s", path, strerror(errno));
            output_free(out);
            return -1;
        }
        return 0;
    }
    char *folder = folder_of(out->target);
    size_t size = (folder ? strlen(folder) : 0) + sizeof "/.earshot-XXXXXX";
    out->temp_path = folder ? malloc(size) : NULL;
    if (!out->temp_path) {
        free(folder);
        es_cli_error("%s: out of memory", path);
        output_free(out);
        return -1;
    }
    snprintf(out->temp_path, size, "%s/.earshot-XXXXXX", folder);
    free(folder);
    int fd = mkstemp(out->temp_path);
    if (fd < 0) {
        es_cli_error("%s: cannot write: %s", path, strerror(errno));
        output_free(out);
        return -1;
    }
    if (fchmod(fd, new_file_mode(exists ? &st : NULL)) != 0 || !(out->file = fdopen(fd, "w"))) {
        es_cli_error("%s: cannot write: %s", path, strerror(errno));
        close(fd);
        unlink(out->temp_path);
        output_free(out);
        return -1;
    }
    guard_temp(out->temp_path);
    return 0;
}

int es_cli_output_commit(es_cli_output *out) {
    int failed = fflush(out->file) != 0 || ferror(out->file);
    /* On disk before it replaces the old file, so a crash leaves one or the other. */
    if (!failed && out->temp_path && fsync(fileno(out->file)) != 0) failed = 1;
    if (fclose(out->file) != 0) failed = 1;
    out->file = NULL;
    if (failed) {
        es_cli_error("%s: write failed", out->path);
    } else if (out->temp_path && rename(out->temp_path, out->target) != 0) {
        es_cli_error("%s: cannot replace it: %s", out->path, strerror(errno));
        failed = 1;
    } else if (out->temp_path) {
        unguard_temp(out->temp_path); /* renamed: nothing left to remove */
        free(out->temp_path);
        out->temp_path = NULL;
    }
    if (failed && out->temp_path) unlink(out->temp_path);
    output_free(out);
    return failed ? -1 : 0;
}

void es_cli_output_discard(es_cli_output *out) {
    if (out->file) fclose(out->file);
    if (out->temp_path) unlink(out->temp_path);
    output_free(out);
}
