/*
 * `earshot mic` — live detection from a PortAudio input — and
 * `earshot devices`, which lists the inputs.
 *
 * Threads: PortAudio's callback thread runs the pipeline's producer half
 * (resample, features, ring push; [rt]); the main thread is the consumer: it
 * steps the models and detectors, writes events, watches the device and
 * answers signals. Stopping (SIGINT, SIGTERM, --seconds, a lost device)
 * always drains: the capture stops, the input is closed, the frames still in
 * the ring are processed and the detectors flushed, so an open speech segment
 * is still reported.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream.h"
#include "cli_util.h"
#include "commands.h"

/* Audio that stops for this long means the device is gone, even when the
 * driver does not say so (some hang instead of failing). */
#define STALL_TIMEOUT_MS 3000
#define CONSUME_WAIT_MS 20
#define MAX_INPUT_FRAMES 4096

static const char mic_usage[] =
    "Usage: earshot mic [options]\n"
    "Detects speech and spoken keywords live from an input device; prints each\n"
    "event as it happens (JSON lines with \"wallclock\"). Stop with Ctrl-C; SIGUSR1\n"
    "prints the counters to stderr without stopping.\n"
    "\n"
    "Input:\n"
    "  -d, --device NAME|INDEX  input device (default: the default input); see\n"
    "                           'earshot devices'. A name may be a unique substring.\n"
    "  --rate HZ                capture at this rate (default: the device's own)\n"
    "  --channels N             capture this many channels (default: up to 2)\n"
    "  --seconds N              stop after N seconds of audio\n"
    "  --ring-ms N              frames waiting for the models are kept for N ms of\n"
    "                           audio (default 5120); beyond that the oldest are\n"
    "                           dropped and counted\n"
    "  --verbose                keep the sound system's probing messages on stderr\n"
    "\n"
    "Output:\n"
    "  --format FORMAT          jsonl (default), rttm, audacity or frames (CSV of\n"
    "                           per-frame posteriors)\n"
    "  -o, --output FILE        write there instead of stdout\n"
    "  -h, --help               show this help\n"
    "\n"
    "%s"
    "\n"
    "On exit (and on SIGUSR1) stderr gets: frames processed, frames lost to a full\n"
    "ring, input overflows, events, the decision delay (stream time from an event's\n"
    "time -- a speech segment's end -- to the frame that decided it) and the\n"
    "processing latency (from a deciding frame's capture to its event).\n"
    "\n"
    "Examples:\n"
    "  earshot mic\n"
    "  earshot mic --device 'USB Audio' --vad-threshold 0.6 --seconds 60\n"
    "  earshot mic --format frames -o posteriors.csv --seconds 10\n"
    "\n"
    "Exit status: 0 stopped normally, 1 device or model unusable or device lost,\n"
    "2 usage error.\n";

static const char devices_usage[] =
    "Usage: earshot devices [--verbose]\n"
    "Lists the audio input devices PortAudio sees: index, channels,\n"
    "default rate, host API and name; '*' marks the default input.\n"
    "Give the index or the name to 'earshot mic --device'.\n";

typedef struct mic_options {
    es_capture_config capture;
    int ring_ms; /* 0: the pipeline's default */
    es_output_format format;
    const char *output_path;
    int verbose;
    es_cli_detector_flags detector;
} mic_options;

enum {
    OPT_RATE = 0x2000,
    OPT_CHANNELS,
    OPT_SECONDS,
    OPT_VERBOSE,
    OPT_FORMAT,
    OPT_RING_MS,
};

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t stats_requested;

static void on_stop_signal(int signo) {
    (void)signo;
    stop_requested = 1;
}

static void on_stats_signal(int signo) {
    (void)signo;
    stats_requested = 1;
}

static void install_signal(int signo, void (*handler)(int), struct sigaction *previous) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    sigemptyset(&action.sa_mask);
    sigaction(signo, &action, previous);
}

/* alsa-lib and libjack report every card and server they probe on stderr
 * while PortAudio initialises; nothing there is about the device in use. */
static int quiet_stderr_begin(int verbose) {
    if (verbose) return -1;
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (saved < 0 || null_fd < 0) {
        if (saved >= 0) close(saved);
        if (null_fd >= 0) close(null_fd);
        return -1;
    }
    dup2(null_fd, STDERR_FILENO);
    close(null_fd);
    return saved;
}

static void quiet_stderr_end(int saved) {
    if (saved < 0) return;
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
}

/* Returns -1 to continue, else the exit status. */
static int parse_mic_options(int argc, char **argv, mic_options *options) {
    static const struct option long_options[] = {
        {"device", required_argument, NULL, 'd'},
        {"rate", required_argument, NULL, OPT_RATE},
        {"channels", required_argument, NULL, OPT_CHANNELS},
        {"seconds", required_argument, NULL, OPT_SECONDS},
        {"verbose", no_argument, NULL, OPT_VERBOSE},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"ring-ms", required_argument, NULL, OPT_RING_MS},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        ES_CLI_DETECTOR_LONG_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    memset(options, 0, sizeof *options);
    es_capture_config_default(&options->capture);
    options->format = ES_FORMAT_JSONL;
    es_cli_detector_flags_default(&options->detector);
    optind = 0; /* getopt_long may have run before in this process */
    opterr = 0;
    int opt;
    float value;
    while ((opt = getopt_long(argc, argv, ":d:o:h", long_options, NULL)) != -1) {
        int handled = es_cli_detector_option(&options->detector, opt, optarg);
        if (handled < 0) return ES_EXIT_USAGE;
        if (handled > 0) continue;
        switch (opt) {
        case 'd':
            options->capture.device = optarg;
            break;
        case OPT_RATE:
            if (es_cli_parse_float("--rate", optarg, 8000, 192000, &value) != 0)
                return ES_EXIT_USAGE;
            options->capture.sample_rate_hz = value;
            break;
        case OPT_CHANNELS:
            if (es_cli_parse_int("--channels", optarg, 1, 64, &options->capture.channels) != 0)
                return ES_EXIT_USAGE;
            break;
        case OPT_SECONDS:
            if (es_cli_parse_float("--seconds", optarg, 0.01, 1e7, &value) != 0)
                return ES_EXIT_USAGE;
            options->capture.max_seconds = value;
            break;
        case OPT_RING_MS:
            if (es_cli_parse_int("--ring-ms", optarg, 100, 600000, &options->ring_ms) != 0)
                return ES_EXIT_USAGE;
            break;
        case OPT_VERBOSE:
            options->verbose = 1;
            break;
        case OPT_FORMAT:
            if (es_cli_parse_format(optarg, &options->format) != 0) return ES_EXIT_USAGE;
            break;
        case 'o':
            options->output_path = optarg;
            break;
        case 'h':
            printf(mic_usage, es_cli_detector_help);
            return ES_EXIT_OK;
        default:
            es_cli_bad_option("mic", opt, argv);
            return ES_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        es_cli_error("mic: unexpected argument '%s' (the device goes after --device)",
                     argv[optind]);
        return ES_EXIT_USAGE;
    }
    if (es_cli_detector_check(&options->detector) != 0) return ES_EXIT_USAGE;
    return -1;
}

/* ---- the run ---------------------------------------------------------------- */

/* Consumer-thread bookkeeping for the decision delay; the sinks are wrapped
 * to see each frame and event first. */
typedef struct mic_run {
    es_sink *sink;
    es_output_format format;
    int sample_rate_hz;
    int hop_samples;
    int64_t last_frame_time; /* last frame handed to the frame sink, -1 before any */
    uint64_t delay_count;
    double delay_sum_s;
    double delay_max_s;
} mic_run;

static void on_frame(const es_frame_posteriors *frame, void *user) {
    mic_run *run = user;
    run->last_frame_time = frame->time_samples;
    if (run->format == ES_FORMAT_FRAMES) es_sink_frame(frame, run->sink);
}

static void on_event(const es_event *event, void *user) {
    mic_run *run = user;
    /* The pipeline runs the detectors before the frame sink, so the deciding
     * frame is the one after the last frame seen; its end is when it was
     * complete. Events of the final flush count from the last frame. */
    /* speech_start events are sent at the frame that decided them (their
     * `time`): they would only dilute the end-of-speech delay measured here. */
    if (run->last_frame_time >= 0 && event->type != ES_EVENT_SPEECH_START) {
        double decided_s =
            (double)(run->last_frame_time + 2 * run->hop_samples) / run->sample_rate_hz;
        double said_s = event->type == ES_EVENT_KEYWORD ? event->time_s : event->end_s;
        double delay_s = decided_s - said_s;
        if (delay_s >= 0) {
            run->delay_count++;
            run->delay_sum_s += delay_s;
            if (delay_s > run->delay_max_s) run->delay_max_s = delay_s;
        }
    }
    if (run->format != ES_FORMAT_FRAMES) es_sink_event(event, run->sink);
}

static void print_stats(const es_pipeline *pipeline, const es_capture *capture,
                        const mic_run *run) {
    es_pipeline_stats stats;
    es_pipeline_get_stats(pipeline, &stats);
    fprintf(stderr,
            "earshot: mic: %s: %.2f s captured, %llu frames processed, %llu ring drops, "
            "%llu input overflows, %llu events\n",
            es_capture_device_name(capture),
            (double)es_capture_frames(capture) / es_capture_sample_rate(capture),
            (unsigned long long)stats.frames_processed, (unsigned long long)stats.ring_drops,
            (unsigned long long)stats.input_overflows, (unsigned long long)stats.events);
    if (run->delay_count > 0)
        fprintf(stderr,
                "earshot: mic: decision delay mean %.1f ms, max %.1f ms; processing latency "
                "mean %.2f ms, max %.2f ms (%llu events)\n",
                1e3 * run->delay_sum_s / (double)run->delay_count, 1e3 * run->delay_max_s,
                stats.latency_mean_ms, stats.latency_max_ms,
                (unsigned long long)stats.latency_count);
    fflush(stderr);
}

/* Consumes until the input is closed and drained. Returns the exit status. */
static int run_until_stopped(es_pipeline *pipeline, es_capture_source *source, const mic_run *run) {
    es_capture *capture = es_capture_source_capture(source);
    int status = ES_EXIT_OK;
    int input_open = 1;
    for (;;) {
        int consumed = es_pipeline_consume(pipeline, CONSUME_WAIT_MS);
        if (consumed == ES_PIPELINE_CLOSED) break;
        if (consumed < 0) {
            es_cli_error("mic: %s", es_pipeline_strerror(consumed));
            status = ES_EXIT_FAILURE;
            break;
        }
        if (stats_requested) {
            stats_requested = 0;
            print_stats(pipeline, capture, run);
        }
        if (!input_open) continue;
        es_error cerr = {0};
        int health = es_capture_check(capture, STALL_TIMEOUT_MS, &cerr);
        if (health < 0) {
            es_cli_error("mic: %s", cerr.why);
            status = ES_EXIT_FAILURE;
        }
        if (health != ES_CAPTURE_OK || stop_requested) {
            es_capture_source_end_input(source);
            input_open = 0;
        }
    }
    return status;
}

static int open_output(const mic_options *options, FILE **out) {
    *out = stdout;
    if (!options->output_path || strcmp(options->output_path, "-") == 0) return ES_EXIT_OK;
    *out = fopen(options->output_path, "w");
    if (!*out) {
        es_cli_error("%s: cannot write: %s", options->output_path, strerror(errno));
        return ES_EXIT_FAILURE;
    }
    return ES_EXIT_OK;
}

static int create_pipeline(const mic_options *options, const es_cli_models *models,
                           const es_capture_source *source, mic_run *run, es_pipeline **pipeline) {
    const es_capture *capture = es_capture_source_capture(source);
    es_pipeline_config config;
    es_pipeline_config_default(&config, ES_PIPELINE_LIVE);
    es_cli_models_apply(&options->detector, models, &config);
    config.source = es_capture_device_name(capture);
    es_capture_source_pipeline_input(source, &config);
    config.max_input_frames = MAX_INPUT_FRAMES;
    if (options->ring_ms > 0)
        config.ring_capacity_frames = (size_t)options->ring_ms *
                                      (size_t)config.frontend.sample_rate_hz / 1000 /
                                      (size_t)config.frontend.hop_samples;
    config.on_event = on_event;
    config.event_user = run;
    config.on_frame = on_frame;
    config.frame_user = run;
    run->sample_rate_hz = config.frontend.sample_rate_hz;
    run->hop_samples = config.frontend.hop_samples;
    run->last_frame_time = -1;
    es_error err = {0};
    if (es_pipeline_create(&config, pipeline, &err) != ES_PIPELINE_OK) {
        es_cli_error("mic: %s: %s", es_capture_device_name(capture), err.why);
        return ES_EXIT_FAILURE;
    }
    return ES_EXIT_OK;
}

/* Initialises PortAudio and opens the device, the sound system's probing
 * kept off stderr (quiet_stderr_begin). */
static int open_device(const mic_options *options, es_capture_source **source) {
    es_error err = {0};
    int quiet = quiet_stderr_begin(options->verbose);
    int rc = es_capture_init(&err);
    if (rc == ES_CAPTURE_OK) {
        rc = es_capture_source_open(&options->capture, source, &err);
        if (rc != ES_CAPTURE_OK) es_capture_terminate();
    }
    quiet_stderr_end(quiet);
    if (rc != ES_CAPTURE_OK) {
        es_cli_error("mic: %s", err.why);
        return ES_EXIT_FAILURE;
    }
    return ES_EXIT_OK;
}

/* Starts the capture and consumes until stopped; prints the final counters. */
static int capture_and_consume(const mic_options *options, es_capture_source *source,
                               es_pipeline *pipeline, mic_run *run) {
    const es_capture *capture = es_capture_source_capture(source);
    es_sink_begin(run->sink, pipeline);
    es_error err = {0};
    int status;
    if (es_capture_source_start(source, pipeline, &err) != ES_CAPTURE_OK) {
        es_cli_error("mic: %s", err.why);
        status = ES_EXIT_FAILURE;
    } else {
        fprintf(stderr, "earshot: mic: listening to %s (%.0f Hz, %d channel%s)\n",
                es_capture_device_name(capture), es_capture_sample_rate(capture),
                es_capture_channels(capture), es_capture_channels(capture) == 1 ? "" : "s");
        status = run_until_stopped(pipeline, source, run);
        print_stats(pipeline, capture, run);
    }
    if (es_sink_end(run->sink) != 0 && status == ES_EXIT_OK) {
        es_cli_error("mic: %s: write failed",
                     options->output_path ? options->output_path : "stdout");
        status = ES_EXIT_FAILURE;
    }
    return status;
}

/* Captures into a live pipeline until stopped; returns the exit status. */
static int run_mic(const mic_options *options, const es_cli_models *models, FILE *out) {
    es_capture_source *source = NULL;
    int status = open_device(options, &source);
    if (status != ES_EXIT_OK) return status;

    es_pipeline *pipeline = NULL;
    mic_run run = {.format = options->format};
    const char *device_name = es_capture_device_name(es_capture_source_capture(source));
    if (es_sink_create(options->format, out, device_name, &run.sink) != 0) {
        es_cli_error("mic: out of memory");
        status = ES_EXIT_FAILURE;
    } else {
        status = create_pipeline(options, models, source, &run, &pipeline);
    }
    if (status == ES_EXIT_OK) status = capture_and_consume(options, source, pipeline, &run);

    es_capture_source_close(source); /* stops the callback before the pipeline goes */
    es_pipeline_destroy(pipeline);
    es_sink_destroy(run.sink);
    es_capture_terminate();
    return status;
}

/* Loads the models and runs; the signals are ours from the start, so a
 * SIGUSR1 or SIGINT while models load or the device opens is not fatal. */
static int load_and_run(const mic_options *options) {
    es_frontend_config frontend;
    es_frontend_config_default(&frontend);
    es_cli_models models;
    memset(&models, 0, sizeof models);
    int status = es_cli_models_load(&options->detector, &frontend, &models);
    if (status != ES_EXIT_OK) return status;
    FILE *out = NULL;
    status = open_output(options, &out);
    if (status == ES_EXIT_OK) {
        status = run_mic(options, &models, out);
        if (out != stdout && fclose(out) != 0 && status == ES_EXIT_OK) {
            es_cli_error("%s: cannot write: %s", options->output_path, strerror(errno));
            status = ES_EXIT_FAILURE;
        }
    }
    es_cli_models_destroy(&models);
    return status;
}

int es_cmd_mic(int argc, char **argv) {
    mic_options options;
    int status = parse_mic_options(argc, argv, &options);
    if (status >= 0) return status;
    struct sigaction old_int, old_term, old_usr1;
    stop_requested = 0;
    stats_requested = 0;
    install_signal(SIGINT, on_stop_signal, &old_int);
    install_signal(SIGTERM, on_stop_signal, &old_term);
    install_signal(SIGUSR1, on_stats_signal, &old_usr1);
    status = load_and_run(&options);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGUSR1, &old_usr1, NULL);
    return status;
}

/* ---- devices ------------------------------------------------------------------ */

int es_cmd_devices(int argc, char **argv) {
    static const struct option long_options[] = {
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int verbose = 0;
    optind = 0;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        switch (opt) {
        case 'v':
            verbose = 1;
            break;
        case 'h':
            fputs(devices_usage, stdout);
            return ES_EXIT_OK;
        default:
            es_cli_bad_option("devices", opt, argv);
            return ES_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        es_cli_error("devices: unexpected argument '%s'", argv[optind]);
        return ES_EXIT_USAGE;
    }

    es_error err = {0};
    int quiet = quiet_stderr_begin(verbose);
    int rc = es_capture_init(&err);
    quiet_stderr_end(quiet);
    if (rc != ES_CAPTURE_OK) {
        es_cli_error("devices: %s", err.why);
        return ES_EXIT_FAILURE;
    }
    int count = es_capture_device_count();
    int inputs = 0;
    int api_width = (int)strlen("host_api");
    for (int i = 0; i < count; i++) {
        es_capture_device d;
        if (es_capture_device_get(i, &d) != 1) continue;
        inputs++;
        if ((int)strlen(d.host_api) > api_width) api_width = (int)strlen(d.host_api);
    }
    printf("  index  channels  rate_hz  %-*s  name\n", api_width, "host_api");
    for (int i = 0; i < count; i++) {
        es_capture_device d;
        if (es_capture_device_get(i, &d) != 1) continue;
        printf("%c %5d  %8d  %7.0f  %-*s  %s\n", d.is_default ? '*' : ' ', d.index,
               d.max_input_channels, d.default_rate_hz, api_width, d.host_api, d.name);
    }
    if (inputs == 0)
        printf("(no input devices)\n");
    else
        printf("* default input\n");
    es_capture_terminate();
    return ES_EXIT_OK;
}
