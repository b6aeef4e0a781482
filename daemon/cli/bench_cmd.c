/*
 * `earshot bench [--seconds N] [--format tsv]` — how fast each stage runs here.
 *
 * Every stage processes N seconds of generated audio (or the frames made from
 * it), at least MIN_STAGE_RUNS times and until it has run for
 * MIN_STAGE_WALL_S; the fastest run is reported, because on a shared machine
 * the slower ones measure the neighbours. x-real-time is audio seconds per
 * wall second; ns per frame is wall time per 10 ms feature frame; peak RSS is the
 * process's high-water mark after the stage (getrusage), so it never falls.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "clock.h"
#include "stream.h"
#include "bench_streams.h"
#include "builtin.h"
#include "cli_util.h"
#include "commands.h"

#define MIN_STAGE_WALL_S 0.3
#define MIN_STAGE_RUNS 3
#define MAX_STAGE_RUNS 100000
#define READ_CHUNK_FRAMES 4096
#define BENCH_RNN_UNITS 128
#define BENCH_RNN_LAYERS 2
/* Frames per es_state_step_frames call in the _offline stages: as many as
 * the offline pipeline hands the models at once. */
#define BENCH_BLOCK_FRAMES 32

static const char bench_usage[] =
    "Usage: earshot bench [--seconds N] [--format table|tsv] [--streams N]\n"
    "Measures each stage on this machine with N seconds (default 20) of generated\n"
    "audio: x-real-time, nanoseconds per 10 ms frame, peak memory. Each stage runs\n"
    "several times; the fastest run is reported.\n"
    "\n"
    "Stages:\n"
    "  frontend_16k_mono    decode a 16 kHz mono WAV + log-mel features\n"
    "  frontend_48k_stereo  decode a 48 kHz stereo WAV + downmix, resample, features\n"
    "  gru_2x128            step 2 GRU layers of 128 units on 40 features (+ GFLOP/s)\n"
    "  lstm_2x128           the same with LSTM layers\n"
    "  vad, kws             step the built-in models with float weights\n"
    "  *_int8               the same with int8 weights (as shipped; earshot quantize)\n"
    "                       on the CPU's int8 kernels\n"
    "  *_offline            the model stages stepping 32 frames per call, as\n"
    "                       `earshot file` does (the others step frame by frame,\n"
    "                       as live input does)\n"
    "  pipeline             the whole offline pipeline of `earshot file`, float weights\n"
    "  pipeline_int8        the same with int8 weights, as `earshot file` runs\n"
    "\n"
    "  --seconds N          seconds of audio per stage, 1-3600\n"
    "  --streams N          instead: N live 16 kHz streams fed in real time for\n"
    "                       --seconds, VAD + keywords on one engine thread (and\n"
    "                       1 stream beside it): its CPU load, the delay from a\n"
    "                       frame's audio to its detection, memory per stream\n"
    "  --format tsv         one line per stage: stage, xrt, ns_per_frame, peak_rss_kb\n"
    "  -h, --help           show this help\n";

typedef struct bench_result {
    const char *stage;
    double audio_s;  /* audio processed by the fastest run */
    double wall_s;   /* its wall time */
    uint64_t frames; /* its feature frames */
    double flops;    /* its floating-point operations, 0 if not counted */
    long peak_rss_kb;
} bench_result;

typedef struct bench_context {
    int seconds;
    char wav_16k_mono[64];
    char wav_48k_stereo[64];
    es_frame *features; /* the 16 kHz clip's frames, input of the model stages */
    size_t feature_count;
} bench_context;

/* One run of a stage: returns feature frames handled (0 on failure). */
typedef uint64_t (*stage_run)(const bench_context *ctx, void *state);

static long peak_rss_kb(void) {
    struct rusage usage;
    return getrusage(RUSAGE_SELF, &usage) == 0 ? usage.ru_maxrss : 0;
}

/* Repeats `run` until the stage has taken MIN_STAGE_WALL_S. */
static int time_stage(const bench_context *ctx, const char *stage, stage_run run, void *state,
                      double flops_per_frame, bench_result *result) {
    memset(result, 0, sizeof *result);
    result->stage = stage;
    double started = es_monotonic_s();
    int runs = 0;
    do {
        double run_started = es_monotonic_s();
        uint64_t frames = run(ctx, state);
        double run_s = es_monotonic_s() - run_started;
        if (frames == 0) return -1;
        if (runs == 0 || run_s < result->wall_s) {
            result->wall_s = run_s;
            result->frames = frames;
        }
        runs++;
    } while ((runs < MIN_STAGE_RUNS || es_monotonic_s() - started < MIN_STAGE_WALL_S) &&
             runs < MAX_STAGE_RUNS);
    result->audio_s = ctx->seconds;
    result->flops = flops_per_frame * (double)result->frames;
    result->peak_rss_kb = peak_rss_kb();
    return 0;
}

/* ---- generated audio ------------------------------------------------------------- */

/* Voiced syllables (a 120-220 Hz pulse with harmonics, four a second) over a
 * low noise floor: the front end sees speech-like spectra, not silence. */
float es_bench_generated_sample(int64_t n, int rate_hz, uint32_t *noise) {
    double t = (double)n / rate_hz;
    double pitch_hz = 170.0 + 50.0 * sin(2.0 * M_PI * 0.3 * t);
    double envelope = 0.5 + 0.5 * sin(2.0 * M_PI * 4.0 * t);
    double voiced = 0;
    for (int h = 1; h <= 8; h++)
        voiced += sin(2.0 * M_PI * pitch_hz * h * t) / h;
    *noise = *noise * 1664525u + 1013904223u;
    double hiss = ((double)(*noise >> 8) / (double)(1u << 24) - 0.5) * 0.02;
    return (float)(0.2 * envelope * voiced + hiss);
}

static int write_wav(char *path, size_t path_size, int rate_hz, int channels, int seconds) {
    const char *dir = getenv("TMPDIR");
    snprintf(path, path_size, "%s/earshot-bench-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    SF_INFO info = {
        .samplerate = rate_hz, .channels = channels, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    SNDFILE *sf = sf_open_fd(fd, SFM_WRITE, &info, 1);
    if (!sf) {
        close(fd);
        return -1;
    }
    float block[1024 * 2];
    uint32_t noise = 12345;
    int64_t total = (int64_t)rate_hz * seconds;
    int failed = 0;
    for (int64_t n = 0; n < total && !failed;) {
        int count = 0;
        for (; count < 1024 && n < total; count++, n++) {
            float s = es_bench_generated_sample(n, rate_hz, &noise);
            for (int c = 0; c < channels; c++)
                block[count * channels + c] = c == 0 ? s : 0.8f * s;
        }
        failed = sf_writef_float(sf, block, count) != count;
    }
    return sf_close(sf) != 0 || failed ? -1 : 0;
}

/* ---- front end stages -------------------------------------------------------------- */

typedef struct frontend_bench {
    es_frontend *frontend;
    float *chunk;
    float *resampled;
    size_t resampled_capacity;
    uint64_t frames;
    es_frame *collect; /* when set, frames are also copied here */
    size_t collect_capacity;
} frontend_bench;

static void count_frame(const es_frame *frame, void *user) {
    frontend_bench *fb = user;
    if (fb->collect && fb->frames < fb->collect_capacity) fb->collect[fb->frames] = *frame;
    fb->frames++;
}

/* Decode + (resample) + features of one file. */
static uint64_t run_frontend(const char *path, frontend_bench *fb) {
    es_error audio_err;
    es_audio_file *audio = NULL;
    if (es_audio_file_open(path, &audio, &audio_err) != 0) return 0;
    const es_audio_info *info = es_audio_file_info(audio);
    es_resampler *resampler = NULL;
    if (info->sample_rate_hz != 16000 || info->channels != 1) {
        if (es_resampler_create(info->sample_rate_hz, info->channels, 16000.0, READ_CHUNK_FRAMES,
                                &resampler) != ES_DSP_OK) {
            es_audio_file_close(audio);
            return 0;
        }
    }
    if (resampler) {
        size_t bound = es_resampler_output_bound(resampler, READ_CHUNK_FRAMES);
        float *grown = bound > fb->resampled_capacity
                           ? realloc(fb->resampled, bound * sizeof *fb->resampled)
                           : fb->resampled;
        if (!grown) {
            es_resampler_destroy(resampler);
            es_audio_file_close(audio);
            return 0;
        }
        fb->resampled = grown;
        if (bound > fb->resampled_capacity) fb->resampled_capacity = bound;
    }
    es_frontend_reset(fb->frontend);
    fb->frames = 0;
    long got;
    while ((got = es_audio_file_read(audio, fb->chunk, READ_CHUNK_FRAMES, &audio_err)) > 0) {
        if (!resampler) {
            es_frontend_process(fb->frontend, fb->chunk, (size_t)got, count_frame, fb);
            continue;
        }
        long produced = es_resampler_process(resampler, fb->chunk, (size_t)got, fb->resampled,
                                             fb->resampled_capacity);
        if (produced > 0)
            es_frontend_process(fb->frontend, fb->resampled, (size_t)produced, count_frame, fb);
    }
    if (resampler) es_resampler_destroy(resampler);
    es_audio_file_close(audio);
    return fb->frames;
}

static uint64_t run_frontend_16k(const bench_context *ctx, void *state) {
    return run_frontend(ctx->wav_16k_mono, state);
}

static uint64_t run_frontend_48k(const bench_context *ctx, void *state) {
    return run_frontend(ctx->wav_48k_stereo, state);
}

static int frontend_bench_create(frontend_bench *fb) {
    memset(fb, 0, sizeof *fb);
    es_frontend_config config;
    es_frontend_config_default(&config);
    if (es_frontend_create(&config, &fb->frontend) != ES_DSP_OK) return -1;
    /* Stereo at most; the resampler's buffer grows on first use. */
    fb->chunk = malloc(READ_CHUNK_FRAMES * 2 * sizeof *fb->chunk);
    return fb->chunk ? 0 : -1;
}

static void frontend_bench_destroy(frontend_bench *fb) {
    if (fb->frontend) es_frontend_destroy(fb->frontend);
    free(fb->chunk);
    free(fb->resampled);
}

/* ---- report ------------------------------------------------------------------------ */

static void print_result(const bench_result *r, int tsv) {
    double xrt = r->audio_s / r->wall_s;
    double ns_per_frame = r->wall_s * 1e9 / (double)r->frames;
    if (tsv) {
        printf("%s\t%.1f\t%.1f\t%ld\n", r->stage, xrt, ns_per_frame, r->peak_rss_kb);
        return;
    }
    printf("%-20s %12.1f %12.1f %12ld", r->stage, xrt, ns_per_frame, r->peak_rss_kb);
    if (r->flops > 0) printf(" %9.2f", r->flops / r->wall_s * 1e-9);
    putchar('\n');
    fflush(stdout);
}

/* ---- model stages ------------------------------------------------------------------- */

typedef struct model_bench {
    es_state *state;
    int block;      /* frames per call: 1 steps frame by frame (es_state_step) */
    float *inputs;  /* the clip's features back to back, for blocks */
    float *outputs; /* one block's outputs */
    size_t input_size, output_size;
    float checksum; /* keeps the compiler from dropping the steps */
} model_bench;

static uint64_t run_model(const bench_context *ctx, void *state) {
    model_bench *mb = state;
    es_state_reset(mb->state);
    if (mb->block == 1) {
        for (size_t i = 0; i < ctx->feature_count; i++)
            mb->checksum += es_state_step(mb->state, ctx->features[i].features)[0];
        return ctx->feature_count;
    }
    for (size_t i = 0; i < ctx->feature_count; i += (size_t)mb->block) {
        size_t left = ctx->feature_count - i;
        int count = left < (size_t)mb->block ? (int)left : mb->block;
        es_state_step_frames(mb->state, mb->inputs + i * mb->input_size, count, mb->outputs);
        mb->checksum += mb->outputs[0];
    }
    return ctx->feature_count;
}

static int bench_model(const bench_context *ctx, const char *stage, const es_model *model,
                       int block, bench_result *result) {
    model_bench mb = {.block = block,
                      .input_size = (size_t)es_model_input_size(model),
                      .output_size = (size_t)es_model_output_size(model)};
    int rc = -1;
    mb.inputs = malloc(ctx->feature_count * mb.input_size * sizeof(float));
    mb.outputs = malloc((size_t)block * mb.output_size * sizeof(float));
    if (mb.inputs && mb.outputs && es_state_create(model, &mb.state) == ES_RNN_OK) {
        for (size_t i = 0; i < ctx->feature_count; i++)
            memcpy(mb.inputs + i * mb.input_size, ctx->features[i].features,
                   mb.input_size * sizeof(float));
        rc =
            time_stage(ctx, stage, run_model, &mb, (double)es_model_flops_per_frame(model), result);
    }
    es_state_destroy(mb.state);
    free(mb.inputs);
    free(mb.outputs);
    return rc;
}

static es_model *make_recurrent_model(es_layer_type type) {
    es_feature_spec spec;
    es_pipeline_feature_spec(NULL, &spec);
    es_model *model = NULL;
    if (es_model_create(&spec, (int)spec.mel_bands, &model) != ES_RNN_OK) return NULL;
    for (int layer = 0; layer < BENCH_RNN_LAYERS; layer++) {
        if (es_model_add_layer(model, type, BENCH_RNN_UNITS, ES_ACT_TANH, 0) != ES_RNN_OK) {
            es_model_destroy(model);
            return NULL;
        }
    }
    es_model_init_weights(model, 1);
    return model;
}

/* A model's two stages: frame by frame (live) and in blocks (offline). */
static int bench_model_stages(const bench_context *ctx, const char *stage, const es_model *model,
                              int tsv) {
    char offline[64];
    snprintf(offline, sizeof offline, "%s_offline", stage);
    bench_result result;
    if (bench_model(ctx, stage, model, 1, &result) != 0) return -1;
    print_result(&result, tsv);
    if (bench_model(ctx, offline, model, BENCH_BLOCK_FRAMES, &result) != 0) return -1;
    print_result(&result, tsv);
    return 0;
}

static int bench_recurrent(const bench_context *ctx, const char *stage, es_layer_type type,
                           int tsv) {
    es_model *model = make_recurrent_model(type);
    if (!model) return -1;
    int rc = bench_model_stages(ctx, stage, model, tsv);
    es_model_destroy(model);
    return rc;
}

/* A built-in model with int8 weights (`int8`) or float ones: the shipped
 * int8 model's weights as floats, or a float model quantised. */
static es_model *load_builtin(const char *name, int int8) {
    es_model *model = NULL;
    es_error err;
    if (es_pipeline_load_model(NULL, name, NULL, &model, &err) != ES_PIPELINE_OK) return NULL;
    if ((int8 ? es_model_quantise(model, &err) : es_model_dequantise(model)) != ES_RNN_OK) {
        es_model_destroy(model);
        return NULL;
    }
    return model;
}

static int bench_builtin(const bench_context *ctx, const char *name, int int8, int tsv) {
    es_model *model = load_builtin(name, int8);
    if (!model) return -1;
    char stage[32];
    snprintf(stage, sizeof stage, "%s%s", name, int8 ? "_int8" : "");
    int rc = bench_model_stages(ctx, stage, model, tsv);
    es_model_destroy(model);
    return rc;
}

/* ---- the whole pipeline ----------------------------------------------------------- */

typedef struct pipeline_bench {
    es_pipeline_config config;
    float *chunk;
    uint64_t frames;
    uint64_t events;
} pipeline_bench;

static void count_event(const es_event *event, void *user) {
    (void)event;
    ((pipeline_bench *)user)->events++;
}

static void count_posteriors(const es_frame_posteriors *frame, void *user) {
    (void)frame;
    ((pipeline_bench *)user)->frames++;
}

static uint64_t run_pipeline(const bench_context *ctx, void *state) {
    pipeline_bench *pb = state;
    es_error audio_err;
    es_audio_file *audio = NULL;
    if (es_audio_file_open(ctx->wav_16k_mono, &audio, &audio_err) != 0) return 0;
    es_pipeline *pipeline = NULL;
    if (es_pipeline_create(&pb->config, &pipeline, NULL) != ES_PIPELINE_OK) {
        es_audio_file_close(audio);
        return 0;
    }
    pb->frames = 0;
    long got;
    while ((got = es_audio_file_read(audio, pb->chunk, READ_CHUNK_FRAMES, &audio_err)) > 0)
        es_pipeline_push(pipeline, pb->chunk, (size_t)got);
    es_pipeline_finish(pipeline);
    es_pipeline_destroy(pipeline);
    es_audio_file_close(audio);
    return pb->frames;
}

static int bench_pipeline(const bench_context *ctx, int int8, bench_result *result) {
    es_model *vad = load_builtin("vad", int8), *kws = load_builtin("kws", int8);
    pipeline_bench pb = {0};
    int rc = -1;
    if (!vad || !kws) goto done;
    es_pipeline_config_default(&pb.config, ES_PIPELINE_OFFLINE);
    pb.config.source = "bench";
    pb.config.vad_model = vad;
    pb.config.kws_models[0] = kws;
    pb.config.kws_model_count = 1;
    pb.config.max_input_frames = READ_CHUNK_FRAMES;
    pb.config.on_event = count_event;
    pb.config.event_user = &pb;
    pb.config.on_frame = count_posteriors;
    pb.config.frame_user = &pb;
    pb.chunk = malloc(READ_CHUNK_FRAMES * sizeof *pb.chunk);
    if (pb.chunk)
        rc = time_stage(ctx, int8 ? "pipeline_int8" : "pipeline", run_pipeline, &pb, 0, result);
done:
    free(pb.chunk);
    if (vad) es_model_destroy(vad);
    if (kws) es_model_destroy(kws);
    return rc;
}

/* Makes the two WAV files and the feature frames the model stages step. */
static int prepare(bench_context *ctx) {
    if (write_wav(ctx->wav_16k_mono, sizeof ctx->wav_16k_mono, 16000, 1, ctx->seconds) != 0 ||
        write_wav(ctx->wav_48k_stereo, sizeof ctx->wav_48k_stereo, 48000, 2, ctx->seconds) != 0) {
        es_cli_error("bench: cannot write a temporary WAV file: %s", strerror(errno));
        return -1;
    }
    frontend_bench fb;
    size_t capacity = (size_t)ctx->seconds * 100 + 1;
    ctx->features = malloc(capacity * sizeof *ctx->features);
    if (frontend_bench_create(&fb) != 0 || !ctx->features) {
        es_cli_error("bench: cannot set up the front end");
        frontend_bench_destroy(&fb);
        return -1;
    }
    fb.collect = ctx->features;
    fb.collect_capacity = capacity;
    uint64_t frames = run_frontend(ctx->wav_16k_mono, &fb);
    ctx->feature_count = frames < capacity ? frames : capacity;
    frontend_bench_destroy(&fb);
    return ctx->feature_count > 0 ? 0 : -1;
}

static int run_all(const bench_context *ctx, int tsv) {
    int status = ES_EXIT_OK;
    bench_result result;
    frontend_bench fb;
    if (frontend_bench_create(&fb) != 0) {
        es_cli_error("bench: cannot set up the front end");
        frontend_bench_destroy(&fb);
        return ES_EXIT_FAILURE;
    }
    if (time_stage(ctx, "frontend_16k_mono", run_frontend_16k, &fb, 0, &result) == 0)
        print_result(&result, tsv);
    else
        status = ES_EXIT_FAILURE;
    if (time_stage(ctx, "frontend_48k_stereo", run_frontend_48k, &fb, 0, &result) == 0)
        print_result(&result, tsv);
    else
        status = ES_EXIT_FAILURE;
    frontend_bench_destroy(&fb);

    if (bench_recurrent(ctx, "gru_2x128", ES_LAYER_GRU, tsv) != 0) status = ES_EXIT_FAILURE;
    if (bench_recurrent(ctx, "lstm_2x128", ES_LAYER_LSTM, tsv) != 0) status = ES_EXIT_FAILURE;

    const char *builtin_stages[] = {"vad", "kws"};
    for (int int8 = 0; int8 <= 1; int8++) {
        for (size_t i = 0; i < 2; i++) {
            if (bench_builtin(ctx, builtin_stages[i], int8, tsv) != 0) {
                es_cli_error("bench: %s: the built-in model cannot be loaded%s", builtin_stages[i],
                             int8 ? " or quantised" : "");
                status = ES_EXIT_FAILURE;
            }
        }
    }
    for (int int8 = 0; int8 <= 1; int8++) {
        if (bench_pipeline(ctx, int8, &result) == 0) {
            print_result(&result, tsv);
        } else {
            es_cli_error("bench: pipeline%s: cannot run with the built-in models",
                         int8 ? "_int8" : "");
            status = ES_EXIT_FAILURE;
        }
    }
    if (status != ES_EXIT_OK) es_cli_error("bench: some stages failed");
    return status;
}

int es_cmd_bench(int argc, char **argv) {
    static const struct option long_options[] = {
        {"seconds", required_argument, NULL, 's'},
        {"format", required_argument, NULL, 'f'},
        {"streams", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bench_context ctx = {.seconds = 20};
    int tsv = 0, streams = 0;
    optind = 0;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        switch (opt) {
        case 's':
            if (es_cli_parse_int("--seconds", optarg, 1, 3600, &ctx.seconds) != 0)
                return ES_EXIT_USAGE;
            break;
        case 'f':
            if (strcmp(optarg, "tsv") != 0 && strcmp(optarg, "table") != 0) {
                es_cli_error("--format: unknown format '%s' (table, tsv)", optarg);
                return ES_EXIT_USAGE;
            }
            tsv = strcmp(optarg, "tsv") == 0;
            break;
        case 'n':
            if (es_cli_parse_int("--streams", optarg, 1, 100000, &streams) != 0)
                return ES_EXIT_USAGE;
            break;
        case 'h':
            fputs(bench_usage, stdout);
            return ES_EXIT_OK;
        default:
            es_cli_bad_option("bench", opt, argv);
            return ES_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        es_cli_error("bench: unexpected argument '%s'", argv[optind]);
        return ES_EXIT_USAGE;
    }

    if (streams > 0) return es_bench_streams(streams, ctx.seconds, tsv);
    int status = ES_EXIT_FAILURE;
    if (prepare(&ctx) == 0) {
        if (!tsv)
            printf("%-20s %12s %12s %12s %9s\n", "stage", "x-real-time", "ns/frame", "peak_rss_kB",
                   "GFLOP/s");
        status = run_all(&ctx, tsv);
    }
    if (ctx.wav_16k_mono[0]) unlink(ctx.wav_16k_mono);
    if (ctx.wav_48k_stereo[0]) unlink(ctx.wav_48k_stereo);
    free(ctx.features);
    return status;
}
