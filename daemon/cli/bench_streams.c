/*
 * `earshot bench --streams N`: how many live 16 kHz streams one engine
 * thread keeps up with, VAD + keywords (the built-in models), and the delay
 * it adds.
 *
 * N live pipelines join one stream group of one engine thread. The main
 * thread is the audio: every 10 ms (on an absolute schedule) it feeds each
 * stream its next 160 samples of generated speech-like audio, each stream
 * from another place in it, so that the producer halves (front end) run
 * there and the engine sees frames arrive as from N live sources. A
 * frame's delay runs from the moment the audio that completed it was fed
 * to the moment its detectors ran (every event of the frame is sent then);
 * it is what the engine adds, queueing included. The run keeps real time
 * when no frame was dropped, the engine thread was busy less than the whole
 * wall time and the p99 delay stayed under 100 ms. Memory per stream is the growth of the resident
 * set with the N streams, over their own ring, states, front end and detectors.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "bench_streams.h"
#include "cli_util.h"
#include "commands.h"
#include "stream.h"

#define RATE_HZ 16000
#define HOP_SAMPLES 160
#define TICK_NS 10000000L
#define CLIP_SECONDS 30
/* 0.64 s of frames per stream: ample for an engine that keeps up (the
 * service's default of 5.12 s is for one slow consumer per stream). */
#define RING_FRAMES 64
#define FED_SLOTS 256 /* feed times kept per stream, a power of two */
#define DELAY_BUCKET_MS 0.05
#define DELAY_BUCKETS 40000 /* up to 2 s; longer delays go to the last */

typedef struct delays {
    uint64_t count[DELAY_BUCKETS];
    uint64_t total;
    double max_ms;
} delays;

typedef struct live_stream {
    es_pipeline *pipeline;
    size_t offset;             /* where in the clip it starts */
    int64_t fed_ns[FED_SLOTS]; /* per hop fed: when */
    delays *delays;
} live_stream;

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long resident_kb(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* On the engine thread: the frame's delay since the hop that completed it
 * (its window of window_samples ends in hop ceil((start + window) / hop) - 1). */
static void record_delay(const es_frame_posteriors *frame, void *user) {
    live_stream *st = user;
    es_frontend_config frontend;
    es_frontend_config_default(&frontend);
    int64_t hop = (frame->time_samples + frontend.window_samples + HOP_SAMPLES - 1) / HOP_SAMPLES;
    int64_t fed = st->fed_ns[(size_t)(hop - 1) & (FED_SLOTS - 1)];
    double ms = (double)(es_monotonic_ns() - fed) / 1e6;
    size_t bucket = (size_t)(ms / DELAY_BUCKET_MS);
    st->delays->count[bucket < DELAY_BUCKETS ? bucket : DELAY_BUCKETS - 1]++;
    st->delays->total++;
    if (ms > st->delays->max_ms) st->delays->max_ms = ms;
}

static double delay_percentile(const delays *d, double fraction) {
    uint64_t want = (uint64_t)((double)d->total * fraction), seen = 0;
    for (size_t b = 0; b < DELAY_BUCKETS; b++)
        if ((seen += d->count[b]) > want) return (double)(b + 1) * DELAY_BUCKET_MS;
    return d->max_ms;
}

typedef struct run_figures {
    int streams;
    double wall_s, engine_cpu_s, feeder_cpu_s;
    uint64_t frames, drops, events, batches, batch_streams;
    double p50_ms, p99_ms, max_ms;
    double kb_per_stream;
} run_figures;

static void count_event(const es_event *event, void *user) {
    (void)event;
    (void)user;
}

/* Every 10 ms each stream's next hop; returns the feeder's CPU seconds. */
static double feed_in_real_time(live_stream *streams, int count, const float *clip,
                                size_t clip_samples, int seconds) {
    const double cpu_started = thread_cpu_s();
    int64_t tick_at = es_monotonic_ns();
    const int64_t ticks = (int64_t)seconds * 1000000000 / TICK_NS;
    for (int64_t tick = 0; tick < ticks; tick++) {
        for (int i = 0; i < count; i++) {
            live_stream *st = &streams[i];
            size_t at = (st->offset + (size_t)tick * HOP_SAMPLES) % (clip_samples - HOP_SAMPLES);
            st->fed_ns[(size_t)tick & (FED_SLOTS - 1)] = es_monotonic_ns();
            es_pipeline_feed(st->pipeline, clip + at, HOP_SAMPLES);
        }
        tick_at += TICK_NS;
        struct timespec until = {tick_at / 1000000000, tick_at % 1000000000};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
    }
    return thread_cpu_s() - cpu_started;
}

static int make_stream(const es_pipeline_config *base, live_stream *st, delays *d, size_t offset,
                       es_error *err) {
    es_pipeline_config config = *base;
    config.frame_user = st;
    st->delays = d;
    st->offset = offset;
    return es_pipeline_create(&config, &st->pipeline, err);
}

static int run_streams(const es_pipeline_config *base, int count, const float *clip,
                       size_t clip_samples, int seconds, run_figures *fig) {
    memset(fig, 0, sizeof *fig);
    fig->streams = count;
    delays *d = calloc(1, sizeof *d);
    live_stream *streams = calloc((size_t)count, sizeof *streams);
    es_stream_group *group = NULL;
    es_error err = {0};
    int made = 0, rc = d && streams ? es_stream_group_create(1, &group, &err) : -1;
    const long rss_before = resident_kb();
    for (; rc == 0 && made < count; made++) {
        size_t offset = (size_t)made * 7919 * HOP_SAMPLES % (clip_samples - HOP_SAMPLES);
        rc = make_stream(base, &streams[made], d, offset, &err);
        if (rc == 0) rc = es_stream_group_add(group, streams[made].pipeline, NULL, NULL, &err);
        if (rc != 0) es_pipeline_destroy(streams[made].pipeline);
    }
    if (rc == 0) {
        const double started = es_monotonic_s();
        fig->feeder_cpu_s = feed_in_real_time(streams, count, clip, clip_samples, seconds);
        fig->wall_s = es_monotonic_s() - started;
        fig->kb_per_stream = (double)(resident_kb() - rss_before) / count;
        es_stream_group_stats gs;
        es_stream_group_get_stats(group, &gs);
        fig->engine_cpu_s = gs.engine_cpu_s;
        fig->batches = gs.batches;
        fig->batch_streams = gs.batch_streams;
    } else {
        es_cli_error("bench --streams: %s", err.why[0] ? err.why : "out of memory");
        made = made > 0 ? made - 1 : 0;
    }
    for (int i = 0; i < made; i++) {
        es_pipeline_close_input(streams[i].pipeline);
        es_stream_group_remove(group, streams[i].pipeline, 1);
        es_pipeline_stats stats;
        es_pipeline_get_stats(streams[i].pipeline, &stats);
        fig->frames += stats.frames_processed;
        fig->drops += stats.ring_drops;
        fig->events += stats.events;
        es_pipeline_destroy(streams[i].pipeline);
    }
    es_stream_group_destroy(group);
    if (d) {
        fig->p50_ms = delay_percentile(d, 0.50);
        fig->p99_ms = delay_percentile(d, 0.99);
        fig->max_ms = d->max_ms;
    }
    free(d);
    free(streams);
    return rc;
}

/* A p99 delay beyond this means the engine fell behind (or was not given
 * the CPU), even when the ring was deep enough to drop nothing. */
#define REAL_TIME_MAX_P99_MS 100.0

static int keeps_real_time(const run_figures *f) {
    return f->drops == 0 && f->engine_cpu_s < f->wall_s && f->p99_ms <= REAL_TIME_MAX_P99_MS;
}

static void print_figures(const run_figures *f, int tsv) {
    const double load = f->engine_cpu_s / f->wall_s;
    const double mean_batch = f->batches ? (double)f->batch_streams / (double)f->batches : 0;
    /* The engine's CPU per frame it stepped: what one stream costs it, and
     * a figure other jobs on the machine disturb less than the load. */
    const double us_per_frame = f->frames ? 1e6 * f->engine_cpu_s / (double)f->frames : 0;
    if (tsv) {
        printf("streams_%d\t%.3f\t%.3f\t%.2f\t%.2f\t%.2f\t%" PRIu64 "\t%.0f\t%.1f\t%.2f\t%d\n",
               f->streams, load, f->feeder_cpu_s / f->wall_s, f->p50_ms, f->p99_ms, f->max_ms,
               f->drops, f->kb_per_stream, mean_batch, us_per_frame, keeps_real_time(f));
        return;
    }
    printf("%8d %11.1f%% %11.1f%% %9.2f %9.2f %9.2f %8" PRIu64 " %10.0f %8.1f %9.2f %9" PRIu64
           " %s\n",
           f->streams, 100.0 * load, 100.0 * f->feeder_cpu_s / f->wall_s, f->p50_ms, f->p99_ms,
           f->max_ms, f->drops, f->kb_per_stream, mean_batch, us_per_frame, f->events,
           keeps_real_time(f) ? "yes" : "NO");
}

/* CLIP_SECONDS of generated audio, every stream reading it from its own place. */
static float *generate_clip(size_t *samples) {
    *samples = (size_t)CLIP_SECONDS * RATE_HZ;
    float *clip = malloc(*samples * sizeof *clip);
    uint32_t noise = 4242;
    for (size_t n = 0; clip && n < *samples; n++)
        clip[n] = es_bench_generated_sample((int64_t)n, RATE_HZ, &noise);
    return clip;
}

int es_bench_streams(int streams, int seconds, int tsv) {
    es_model *vad = NULL, *kws = NULL;
    es_error err;
    size_t clip_samples = 0;
    float *clip = generate_clip(&clip_samples);
    int status = ES_EXIT_FAILURE;
    if (!clip || es_pipeline_load_model(NULL, "vad", NULL, &vad, &err) != ES_PIPELINE_OK ||
        es_pipeline_load_model(NULL, "kws", NULL, &kws, &err) != ES_PIPELINE_OK) {
        es_cli_error("bench --streams: the built-in models cannot be loaded");
        goto done;
    }
    es_pipeline_config base;
    es_pipeline_config_default(&base, ES_PIPELINE_LIVE);
    base.source = "bench";
    base.vad_model = vad;
    base.kws_models[0] = kws;
    base.kws_model_count = 1;
    base.input_rate_hz = RATE_HZ;
    base.input_channels = 1;
    base.ring_capacity_frames = RING_FRAMES;
    base.on_event = count_event;
    base.on_frame = record_delay;
    if (tsv)
        puts("run\tengine_load\tfeeder_load\tp50_ms\tp99_ms\tmax_ms\tdrops\tkB_per_stream\tmean_"
             "batch\tengine_us_per_frame\trealtime");
    else
        printf("%8s %12s %12s %9s %9s %9s %8s %10s %8s %9s %9s %s\n", "streams", "engine_cpu",
               "feeder_cpu", "p50_ms", "p99_ms", "max_ms", "drops", "kB/stream", "batch",
               "us/frame", "events", "real-time");
    status = ES_EXIT_OK;
    const int runs[2] = {1, streams};
    for (int r = streams == 1 ? 1 : 0; r < 2; r++) {
        run_figures fig;
        if (run_streams(&base, runs[r], clip, clip_samples, seconds, &fig) != 0) {
            status = ES_EXIT_FAILURE;
            break;
        }
        print_figures(&fig, tsv);
        fflush(stdout);
    }
done:
    free(clip);
    es_model_destroy(vad);
    es_model_destroy(kws);
    return status;
}
