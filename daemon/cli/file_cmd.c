/*
 * `earshot file [options] INPUT...` — offline analysis of recorded audio.
 *
 * It runs through libearshot's public API (earshot.h), as a program that
 * embeds earshot would, so the library is what its tests exercise: each
 * input gets its own detector, fed the file's samples chunk by chunk, whose
 * events (or, for --format frames, per-frame posteriors) go to a sink
 * (stream.h). The models are loaded once (earshot_models) and shared
 * read-only by the detectors. With -j N, N threads analyse files at once and
 * each writes into its own memory buffer, which the main thread copies to the
 * output in input order, so the output is the same whatever N is.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stream.h"
#include "cli_util.h"
#include "commands.h"
#include "earshot.h"
#include "progress.h"

#define READ_CHUNK_FRAMES 4096
#define MAX_JOBS 64
/* Shorter runs finish before a bar would be any use. */
#define PROGRESS_MIN_AUDIO_S 60.0

static const char file_usage[] =
    "Usage: earshot file [options] INPUT...\n"
    "Finds speech segments and spoken keywords in recorded audio: any format\n"
    "libsndfile reads (WAV, FLAC, OGG, ...), 8-96 kHz, any channel count.\n"
    "INPUT '-' reads a WAV stream from stdin.\n"
    "\n"
    "Output:\n"
    "  --format FORMAT          jsonl (default): one JSON event per line\n"
    "                           rttm: speech segments as RTTM SPEAKER lines\n"
    "                           audacity: label track (start, end, label)\n"
    "                           frames: CSV of per-frame posteriors, one row per 10 ms\n"
    "                           (a header line starts each input's rows)\n"
    "  -o, --output FILE        write there instead of stdout ('-': stdout); never\n"
    "                           one of the inputs, and replaced only once complete\n"
    "  -j, --jobs N             analyse N files at once (output stays in input order)\n"
    "  -h, --help               show this help\n"
    "\n"
    "%s"
    "\n"
    "Examples:\n"
    "  earshot file meeting.flac\n"
    "  earshot file --format rttm -o segments.rttm *.wav\n"
    "  earshot file --kw-threshold 0.7 --kw-threshold-for stop=0.9 --vad-gate call.wav\n"
    "  sox long.mp3 -t wav - | earshot file -\n"
    "  earshot file --format frames clip.wav > posteriors.csv\n"
    "\n"
    "Exit status: 0 all inputs analysed, 1 an input or model could not be used,\n"
    "2 usage error.\n";

typedef struct file_options {
    es_output_format format;
    const char *output_path;
    int jobs;
    es_cli_detector_flags detector;
} file_options;

/* What every analysis shares: read-only once the workers start. */
typedef struct file_context {
    const file_options *options;
    earshot_params params; /* the flags' knobs and model paths */
    earshot_models *models;
    es_progress *progress;
} file_context;

static void print_usage(FILE *out) {
    fprintf(out, file_usage, es_cli_detector_help);
}

/* Returns -1 to continue, else the exit status. */
static int parse_options(int argc, char **argv, file_options *options) {
    static const struct option long_options[] = {
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"jobs", required_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        ES_CLI_DETECTOR_LONG_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    memset(options, 0, sizeof *options);
    options->format = ES_FORMAT_JSONL;
    options->jobs = 1;
    es_cli_detector_flags_default(&options->detector);
    optind = 0; /* getopt_long may have run before in this process (tests, daemon) */
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":o:j:h", long_options, NULL)) != -1) {
        int handled = es_cli_detector_option(&options->detector, opt, optarg);
        if (handled < 0) return ES_EXIT_USAGE;
        if (handled > 0) continue;
        switch (opt) {
        case 'f':
            if (es_cli_parse_format(optarg, &options->format) != 0) return ES_EXIT_USAGE;
            break;
        case 'o':
            /* "-": stdout, as for `earshot mic` and as "-" reads stdin */
            options->output_path = strcmp(optarg, "-") == 0 ? NULL : optarg;
            break;
        case 'j':
            if (es_cli_parse_int("--jobs", optarg, 1, MAX_JOBS, &options->jobs) != 0)
                return ES_EXIT_USAGE;
            break;
        case 'h':
            print_usage(stdout);
            return ES_EXIT_OK;
        default:
            es_cli_bad_option("file", opt, argv);
            return ES_EXIT_USAGE;
        }
    }
    if (es_cli_detector_check(&options->detector) != 0) return ES_EXIT_USAGE;
    return -1;
}

/* The name events carry, and the RTTM file id (base name, no extension). */
static const char *source_name(const char *path) {
    return strcmp(path, "-") == 0 ? "stdin" : path;
}

static void rttm_file_id(const char *path, char *id, size_t size) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : source_name(path);
    snprintf(id, size, "%s", base);
    char *dot = strrchr(id, '.');
    if (dot && dot != id) *dot = '\0';
}

/* The detector's results into the sink, as the sink's own types. */
static void sink_event(const earshot_event *event, void *user) {
    es_event e = {
        .type = (es_event_type)event->type,
        .source = event->source,
        .keyword = event->keyword,
        .time_s = event->time,
        .start_s = event->start,
        .end_s = event->end,
        .score = event->score,
        .wallclock_s = event->wallclock,
    };
    es_sink_event(&e, user);
}

static void sink_frame(const earshot_frame *frame, void *user) {
    es_frame_posteriors row = {
        .time_s = frame->time, /* (time_samples stays 0: the sink prints seconds) */
        .speech = frame->speech,
        .keyword_count = frame->keyword_count,
        .keywords = frame->keywords,
    };
    es_sink_frame(&row, user);
}

/* What comes before the first result (the frames CSV header), with the
 * detector's keyword columns. */
static int begin_output(es_sink *sink, const earshot_detector *det) {
    int count = earshot_keyword_count(det);
    const char **keywords = malloc(((size_t)count + 1) * sizeof *keywords);
    if (!keywords) return -1;
    for (int i = 0; i < count; i++)
        keywords[i] = earshot_keyword_name(det, i);
    es_sink_begin_keywords(sink, keywords, count);
    free(keywords);
    return 0;
}

/* Reads the input in chunks and feeds them to the detector; the end of the
 * input (or a read error) finishes it, which sends what is still pending. */
static int stream_file(const file_context *ctx, es_audio_file *audio, earshot_detector *det,
                       char *error, size_t error_size) {
    const es_audio_info *info = es_audio_file_info(audio);
    float *chunk = malloc((size_t)READ_CHUNK_FRAMES * (size_t)info->channels * sizeof *chunk);
    if (!chunk) {
        snprintf(error, error_size, "out of memory");
        return ES_EXIT_FAILURE;
    }
    int status = ES_EXIT_OK;
    es_error audio_err;
    for (;;) {
        long got = es_audio_file_read(audio, chunk, READ_CHUNK_FRAMES, &audio_err);
        if (got < 0) {
            snprintf(error, error_size, "%s", audio_err.why);
            status = ES_EXIT_FAILURE;
            break;
        }
        if (got == 0) break;
        if (earshot_feed(det, chunk, (size_t)got, info->sample_rate_hz, info->channels) !=
            EARSHOT_OK) {
            snprintf(error, error_size, "%s", earshot_last_error(det));
            status = ES_EXIT_FAILURE;
            break;
        }
        es_progress_add(ctx->progress, (double)got / info->sample_rate_hz);
    }
    if (earshot_finish(det) != EARSHOT_OK && status == ES_EXIT_OK) {
        snprintf(error, error_size, "%s", earshot_last_error(det));
        status = ES_EXIT_FAILURE;
    }
    free(chunk);
    return status;
}

/* Analyses one input, writing results to `out`. On failure returns
 * ES_EXIT_FAILURE with the reason in `error`; the caller prints it after the
 * file's name, which no fixed-size buffer then cuts, nor the reason after it. */
static int analyse_file(const file_context *ctx, const char *path, FILE *out, char *error,
                        size_t error_size) {
    es_error audio_err;
    es_audio_file *audio = NULL;
    if (es_audio_file_open(path, &audio, &audio_err) != 0) {
        snprintf(error, error_size, "%s", audio_err.why);
        return ES_EXIT_FAILURE;
    }
    const es_audio_info *info = es_audio_file_info(audio);

    char file_id[256];
    rttm_file_id(path, file_id, sizeof file_id);
    es_sink *sink = NULL;
    if (es_sink_create(ctx->options->format, out, file_id, &sink) != 0) {
        snprintf(error, error_size, "out of memory");
        es_audio_file_close(audio);
        return ES_EXIT_FAILURE;
    }

    /* The format is known up front, so the detector makes its whole stream
     * at create: a rate or channel count it cannot take fails before any
     * read. `frames` gets posteriors, the other formats events; nothing is
     * queued (the callbacks write as results come). */
    earshot_params params = ctx->params;
    params.source = source_name(path);
    params.sample_rate_hz = info->sample_rate_hz;
    params.channels = info->channels;
    params.event_queue_capacity = 0;
    params.frame_queue_capacity = 0;
    if (ctx->options->format == ES_FORMAT_FRAMES) {
        params.on_frame = sink_frame;
        params.frame_user = sink;
    } else {
        params.on_event = sink_event;
        params.event_user = sink;
    }

    earshot_detector *det = NULL;
    int status = ES_EXIT_OK;
    if (earshot_create_with_models(&params, ctx->models, &det, error, error_size) != EARSHOT_OK) {
        status = ES_EXIT_FAILURE;
    } else if (begin_output(sink, det) != 0) {
        snprintf(error, error_size, "out of memory");
        status = ES_EXIT_FAILURE;
    } else {
        status = stream_file(ctx, audio, det, error, error_size);
    }
    earshot_destroy(det);
    es_sink_end(sink);
    es_sink_destroy(sink);
    es_audio_file_close(audio);
    return status;
}

/* ---- one file at a time --------------------------------------------------------- */

static int analyse_in_order(const file_context *ctx, char **inputs, int count, FILE *out) {
    int status = ES_EXIT_OK;
    for (int i = 0; i < count; i++) {
        char error[512] = "";
        if (analyse_file(ctx, inputs[i], out, error, sizeof error) != ES_EXIT_OK) {
            es_cli_error("%s: %s", source_name(inputs[i]), error);
            status = ES_EXIT_FAILURE;
        }
    }
    return status;
}

/* ---- -j N: files in parallel, output in input order ------------------------------ */

typedef struct file_job {
    const char *path;
    char *output;
    size_t output_size;
    char error[512];
    int status;
    int done;
} file_job;

typedef struct job_queue {
    const file_context *ctx;
    file_job *jobs;
    int count;
    int next; /* first job no worker has taken */
    pthread_mutex_t lock;
    pthread_cond_t job_done;
} job_queue;

static void run_job(const file_context *ctx, file_job *job) {
    FILE *buffer = open_memstream(&job->output, &job->output_size);
    if (!buffer) {
        snprintf(job->error, sizeof job->error, "out of memory");
        job->status = ES_EXIT_FAILURE;
        return;
    }
    job->status = analyse_file(ctx, job->path, buffer, job->error, sizeof job->error);
    fclose(buffer);
}

static void *worker_main(void *arg) {
    job_queue *queue = arg;
    for (;;) {
        pthread_mutex_lock(&queue->lock);
        int index = queue->next < queue->count ? queue->next++ : -1;
        pthread_mutex_unlock(&queue->lock);
        if (index < 0) return NULL;
        file_job *job = &queue->jobs[index];
        run_job(queue->ctx, job);
        pthread_mutex_lock(&queue->lock);
        job->done = 1;
        pthread_cond_broadcast(&queue->job_done);
        pthread_mutex_unlock(&queue->lock);
    }
}

static int analyse_in_parallel(const file_context *ctx, char **inputs, int count, FILE *out) {
    job_queue queue = {.ctx = ctx, .count = count};
    queue.jobs = calloc((size_t)count, sizeof *queue.jobs);
    if (!queue.jobs) {
        es_cli_error("file: out of memory");
        return ES_EXIT_FAILURE;
    }
    for (int i = 0; i < count; i++)
        queue.jobs[i].path = inputs[i];
    pthread_mutex_init(&queue.lock, NULL);
    pthread_cond_init(&queue.job_done, NULL);

    int workers = ctx->options->jobs < count ? ctx->options->jobs : count;
    pthread_t threads[MAX_JOBS];
    int started = 0;
    while (started < workers && pthread_create(&threads[started], NULL, worker_main, &queue) == 0)
        started++;
    if (started == 0) /* no thread at all: do the work here */
        worker_main(&queue);

    int status = ES_EXIT_OK;
    for (int i = 0; i < count; i++) {
        file_job *job = &queue.jobs[i];
        pthread_mutex_lock(&queue.lock);
        while (!job->done)
            pthread_cond_wait(&queue.job_done, &queue.lock);
        pthread_mutex_unlock(&queue.lock);
        if (job->output_size > 0) {
            fwrite(job->output, 1, job->output_size, out);
            fflush(out);
        }
        free(job->output);
        if (job->status != ES_EXIT_OK) {
            es_cli_error("%s: %s", source_name(job->path), job->error);
            status = ES_EXIT_FAILURE;
        }
    }
    for (int t = 0; t < started; t++)
        pthread_join(threads[t], NULL);
    pthread_cond_destroy(&queue.job_done);
    pthread_mutex_destroy(&queue.lock);
    free(queue.jobs);
    return status;
}

/* ---- the command ---------------------------------------------------------------- */

/* Seconds of audio in the inputs whose length is known without reading them. */
static double known_audio_seconds(char **inputs, int count) {
    double total_s = 0;
    for (int i = 0; i < count; i++) {
        /* Only regular files: opening a FIFO here would eat its stream. */
        struct stat st;
        if (strcmp(inputs[i], "-") == 0 || stat(inputs[i], &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        es_audio_file *audio = NULL;
        if (es_audio_file_open(inputs[i], &audio, NULL) != 0) continue;
        const es_audio_info *info = es_audio_file_info(audio);
        if (info->frames > 0) total_s += (double)info->frames / info->sample_rate_hz;
        es_audio_file_close(audio);
    }
    return total_s;
}

/* The output must not be one of the inputs (another name or a symbolic link
 * included): writing there would destroy the audio before or while it is
 * read. Checked before anything is opened for writing. */
static int check_output_not_input(const char *output_path, char **inputs, int count) {
    struct stat out_st;
    if (output_path ? stat(output_path, &out_st) != 0 : fstat(STDOUT_FILENO, &out_st) != 0)
        return ES_EXIT_OK;                           /* a file still to be made is no input */
    if (!S_ISREG(out_st.st_mode)) return ES_EXIT_OK; /* /dev/null may be both */
    for (int i = 0; i < count; i++) {
        struct stat in_st;
        int is_stdin = strcmp(inputs[i], "-") == 0;
        if ((is_stdin ? fstat(STDIN_FILENO, &in_st) : stat(inputs[i], &in_st)) != 0) continue;
        if (in_st.st_dev != out_st.st_dev || in_st.st_ino != out_st.st_ino) continue;
        es_cli_error("%s: is also the input %s: refusing to write over it (name another output)",
                     output_path ? output_path : "stdout", source_name(inputs[i]));
        return ES_EXIT_USAGE;
    }
    return ES_EXIT_OK;
}

static int check_inputs(char **inputs, int count) {
    if (count == 0) {
        es_cli_error("file: no input given (try 'earshot file --help')");
        return ES_EXIT_USAGE;
    }
    int stdin_count = 0;
    for (int i = 0; i < count; i++)
        stdin_count += strcmp(inputs[i], "-") == 0;
    if (stdin_count > 1) {
        es_cli_error("file: stdin ('-') can be read only once");
        return ES_EXIT_USAGE;
    }
    return ES_EXIT_OK;
}

/* The models every input shares, loaded once; each file's detector takes a
 * reference. Returns ES_EXIT_OK, ES_EXIT_FAILURE (a model cannot be used) or
 * ES_EXIT_USAGE (--kw-threshold-for names no output of the keyword models),
 * with the message printed. */
static int load_models(const es_cli_detector_flags *flags, file_context *ctx) {
    ctx->params = earshot_params_default();
    es_cli_detector_params(flags, &ctx->params);
    char why[512];
    if (earshot_models_load(&ctx->params, &ctx->models, why, sizeof why) != EARSHOT_OK) {
        es_cli_error("%s", why);
        return ES_EXIT_FAILURE;
    }
    for (int i = 0; i < flags->kws.threshold_count; i++) {
        const char *keyword = flags->kws.thresholds[i].keyword;
        if (!earshot_models_has_label(ctx->models, keyword)) {
            es_cli_error("--kw-threshold-for: '%s' is not a keyword of the keyword model", keyword);
            earshot_models_release(ctx->models);
            ctx->models = NULL;
            return ES_EXIT_USAGE;
        }
    }
    return ES_EXIT_OK;
}

int es_cmd_file(int argc, char **argv) {
    file_options options;
    int status = parse_options(argc, argv, &options);
    if (status >= 0) return status;
    char **inputs = argv + optind;
    int count = argc - optind;
    status = check_inputs(inputs, count);
    if (status == ES_EXIT_OK) status = check_output_not_input(options.output_path, inputs, count);
    if (status != ES_EXIT_OK) return status;

    file_context ctx = {.options = &options};
    status = load_models(&options.detector, &ctx);
    if (status != ES_EXIT_OK) return status;

    FILE *out = stdout;
    es_cli_output output = {0};
    if (options.output_path) {
        if (es_cli_output_open(options.output_path, &output) != 0) {
            earshot_models_release(ctx.models);
            return ES_EXIT_FAILURE;
        }
        out = output.file;
    }
    /* Measuring the inputs costs an open each: only worth it when a bar can show. */
    if (isatty(STDERR_FILENO))
        ctx.progress = es_progress_create(known_audio_seconds(inputs, count), PROGRESS_MIN_AUDIO_S);

    if (options.jobs > 1 && count > 1)
        status = analyse_in_parallel(&ctx, inputs, count, out);
    else
        status = analyse_in_order(&ctx, inputs, count, out);

    es_progress_destroy(ctx.progress);
    /* An input that failed still leaves the others' results, as on stdout. */
    if (options.output_path) {
        if (es_cli_output_commit(&output) != 0) status = ES_EXIT_FAILURE;
    } else if (fflush(stdout) != 0 || ferror(stdout)) {
        es_cli_error("stdout: write failed");
        status = ES_EXIT_FAILURE;
    }
    earshot_models_release(ctx.models);
    return status;
}
