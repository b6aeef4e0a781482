/*
 * service — `earshot daemon` behind its options (service.h; DESIGN.md, "Daemon
 * config"; systemd/earshot.service.in).
 *
 * Threads:
 *   main      signals (signalfd), sd_notify READY/STATUS/WATCHDOG, applies reloads
 *   reload    for each SIGHUP, loads the config and models (never on main,
 *             so that no file read can hold up signals or the watchdog)
 *   per source a worker that opens the input and restarts it (back-off), and
 *             while a stream runs: a pump (input fd -> pipe, interruptible)
 *             and the worker as pipeline producer (audio_file reads the pipe
 *             and feeds the pipeline)
 *   engines   [models] engine_threads (1) threads of one es_stream_group,
 *             shared by every source's stream: they step the models of the
 *             streams whose frames are due together and run each stream's
 *             detectors; no thread per stream
 *   hub       the event socket (event_socket.h); a line writer for stdout
 *   mqtt      [mqtt]: a collector and a network thread (mqtt.h)
 *
 * The pump exists so that every blocking read of a FIFO or file happens in
 * one place that also watches the stop signal: libsndfile retries reads on
 * EINTR and cannot be interrupted otherwise. Closing the pump's end of the
 * pipe is how a stream is told to end; the pipeline then drains through the
 * group, closes any open speech segment and leaves the group.
 *
 * Models and detector settings form an `engine`, shared read-only by every
 * stream and reference-counted; a reload builds a new engine beside the old
 * one and streams switch at their next chunk, so a reload that fails leaves
 * everything as it was.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stream.h"
#include "config.h"
#include "event_socket.h"
#include "mqtt.h"
#include "notify.h"
#include "service.h"
#include "wav_split.h"

#ifndef ES_VERSION
#define ES_VERSION "unknown"
#endif

#define READ_CHUNK_FRAMES 512 /* 32 ms at 16 kHz: latency of a FIFO stream */
#define PUMP_READ_BYTES 16384
#define STATUS_PERIOD_MS 1000
#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS 30000

/* Test-only hook (systemd/README.md, "Test-only hook"): when set, the
 * engine thread that first steps a stream's frames sleeps this many
 * milliseconds once, as a stalled engine would (every stream it serves
 * stalls with it), so that tests can watch the watchdog pings stop. */
#define TEST_STALL_ENV "EARSHOT_TEST_ENGINE_STALL_MS"

/* ---- logging: stderr with sd-daemon priority prefixes --------------------------------- */

enum { LOG_ERR = 3, LOG_WARNING = 4, LOG_INFO = 6 };

static void log_at(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One write per line, so lines of different threads never interleave. */
static void log_at(int priority, const char *fmt, ...) {
    char line[1024];
    int len = snprintf(line, sizeof line, "<%d>earshot: ", priority);
    va_list ap;
    va_start(ap, fmt);
    len += vsnprintf(line + len, sizeof line - (size_t)len - 1, fmt, ap);
    va_end(ap);
    if (len > (int)sizeof line - 2) len = (int)sizeof line - 2;
    line[len++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, (size_t)len);
    (void)ignored;
}

/* ---- engine: models + detector settings ----------------------------------------------- */

/* What a model file was when it was loaded (all zero for a built-in one),
 * taken after the load: a file changed meanwhile looks changed at the next
 * reload, never the reverse. */
typedef struct model_stamp {
    uint64_t dev, ino, size, mtime_ns;
} model_stamp;

typedef struct engine {
    atomic_int refs;
    es_model *vad;
    es_model *kws[ES_PIPELINE_MAX_KWS_MODELS];
    int kws_count;
    es_vad_config vad_config;
    es_kws_config kws_config;
    model_stamp stamps[1 + ES_PIPELINE_MAX_KWS_MODELS]; /* vad, then kws */
} engine;

static void stamp_model(const char *path, model_stamp *stamp) {
    struct stat st;
    if (strcmp(path, "builtin") == 0 || stat(path, &st) != 0) return;
    *stamp = (model_stamp){.dev = (uint64_t)st.st_dev,
                           .ino = (uint64_t)st.st_ino,
                           .size = (uint64_t)st.st_size,
                           .mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u +
                                       (uint64_t)st.st_mtim.tv_nsec};
}

static void engine_release(engine *e) {
    if (!e || atomic_fetch_sub(&e->refs, 1) != 1) return;
    if (e->vad) es_model_destroy(e->vad);
    for (int k = 0; k < e->kws_count; k++)
        es_model_destroy(e->kws[k]);
    free(e);
}

static engine *engine_acquire(engine *e) {
    atomic_fetch_add(&e->refs, 1);
    return e;
}

static int engine_has_keyword(const engine *e, const char *keyword) {
    for (int k = 0; k < e->kws_count; k++)
        for (int i = 0; i < es_model_output_size(e->kws[k]); i++)
            if (strcmp(es_model_label(e->kws[k], i), keyword) == 0) return 1;
    return 0;
}

/* Loads every model the config names and checks per-keyword thresholds
 * against their labels. */
static int engine_load(const es_daemon_config *c, engine **out, es_error *err) {
    engine *e = calloc(1, sizeof *e);
    if (!e) return es_error_set(err, -ENOMEM, "out of memory");
    atomic_init(&e->refs, 1);
    e->vad_config = c->vad;
    e->kws_config = c->kws;
    es_frontend_config frontend;
    es_frontend_config_default(&frontend);
    int rc = es_pipeline_load_model(c->vad_model, "vad", &frontend, &e->vad, err);
    if (rc != 0) {
        engine_release(e);
        return rc;
    }
    stamp_model(c->vad_model, &e->stamps[0]);
    for (int k = 0; k < c->kws_model_count; k++) {
        rc = es_pipeline_load_model(c->kws_models[k], "kws", &frontend, &e->kws[k], err);
        if (rc != 0) {
            engine_release(e);
            return rc;
        }
        e->kws_count = k + 1;
        stamp_model(c->kws_models[k], &e->stamps[1 + k]);
    }
    for (int i = 0; i < c->kws.threshold_count; i++) {
        if (!engine_has_keyword(e, c->kws.thresholds[i].keyword)) {
            rc = es_error_set(err, -EINVAL,
                              "[keywords] threshold.%s: no keyword model has this label",
                              c->kws.thresholds[i].keyword);
            engine_release(e);
            return rc;
        }
    }
    *out = e;
    return 0;
}

/* ---- the service ---------------------------------------------------------------------- */

typedef struct source source;

struct es_service {
    const char *config_path;
    const char *socket_override; /* --socket */
    es_daemon_config config;

    pthread_mutex_t engine_lock;
    engine *engine; /* current; streams hold their own reference */
    atomic_uint engine_generation;

    es_event_hub *hub;
    es_line_writer *stdout_writer;
    /* [wyoming]: keeps the engine it started with (reloads leave it be). */
    es_wyoming_server *wyoming;
    engine *wyoming_engine;
    es_mqtt *mqtt;           /* [mqtt]: NULL when off */
    es_stream_group *group;  /* the engine threads every source's stream joins */
    int stdout_drops_logged; /* the main thread's: the first drop was logged */

    /* A reload's loading thread (reload_begin) and what it loaded. */
    pthread_t reload_thread;
    int reload_running, reload_again; /* the main thread's */
    int reload_done_fd;               /* eventfd: the loader is done */
    es_daemon_config *reload_config;
    engine *reload_engine;

    source *sources[ES_CONFIG_MAX_SOURCES];
    int source_count;

    int capture_initialised; /* PortAudio, once a device source needs it */
    int test_stall_ms;
    atomic_int test_stall_done;
    atomic_uint_fast64_t events;
    atomic_uint_fast64_t ring_drops; /* frames lost to full rings, all streams so far */
};
typedef struct es_service service;

static engine *current_engine(service *svc, unsigned *generation) {
    pthread_mutex_lock(&svc->engine_lock);
    engine *e = engine_acquire(svc->engine);
    *generation = atomic_load(&svc->engine_generation);
    pthread_mutex_unlock(&svc->engine_lock);
    return e;
}

/* ---- sources -------------------------------------------------------------------------- */

typedef enum source_state {
    SOURCE_STARTING,
    SOURCE_RUNNING,
    SOURCE_RETRYING,
    SOURCE_FINISHED, /* a regular file read to its end */
    SOURCE_FAILED,   /* a regular file that cannot be analysed */
} source_state;

static const char *const SOURCE_STATE_NAMES[] = {"starting", "running", "retrying", "finished",
                                                 "failed"};

struct source {
    service *svc;
    es_source_config config;
    pthread_t worker;
    int stop_fd; /* eventfd: readable once the source must stop */
    atomic_int stopping;
    atomic_int state;
    atomic_int attempted;       /* the first open attempt is over (for READY=1) */
    es_heartbeat heartbeat;     /* beaten by the engine thread after each of its passes */
    atomic_int engines_running; /* the source has a stream in the group */
    atomic_uint_fast64_t stream_ring_drops; /* the running stream's, for STATUS */
    int input_fd; /* file sources: the path, open across streams (worker's alone) */
    int input_is_fifo;
    dev_t input_dev; /* what input_fd is, to notice the path naming another file */
    ino_t input_ino;
    char last_why[320]; /* the last failure reported (worker's alone): each is said once */
    /* The next stream's first bytes, read from a FIFO with the last one's
     * (pump_bytes): its header and the rest of that read. */
    unsigned char carry[ES_WAV_SPLIT_HEADER_BYTES + PUMP_READ_BYTES];
    size_t carry_len;
};

static int wait_for_stop(source *src, int timeout_ms) {
    struct pollfd p = {.fd = src->stop_fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) > 0;
}

/* One stream: a pipeline, consumed by an engine of the service's group. */
typedef struct stream {
    source *src;
    double input_rate_hz;
    int input_channels;
    es_ring_policy ring_policy;
    engine *engine;
    unsigned generation;
    es_pipeline *pipeline;
    double time_offset_s;    /* stream time before the last engine switch */
    uint64_t events;         /* the engine thread's; read once the stream left the group */
    uint64_t frames_stepped; /* the engine thread's: frames seen by stream_pass */
    uint64_t ring_drops;     /* of the pipelines finished so far */
} stream;

static void publish_event(const es_event *event, void *user) {
    stream *st = user;
    es_event shifted = *event;
    shifted.time_s += st->time_offset_s;
    shifted.start_s += st->time_offset_s;
    shifted.end_s += st->time_offset_s;
    char line[ES_EVENT_LINE_MAX];
    int len = es_event_to_json(&shifted, line, sizeof line);
    if (len <= 0 || len >= (int)sizeof line) return;
    service *svc = st->src->svc;
    es_event_hub_publish(svc->hub, line, (size_t)len);
    if (svc->stdout_writer) es_line_writer_publish(svc->stdout_writer, line, (size_t)len);
    if (svc->mqtt)
        es_mqtt_publish(svc->mqtt, st->src->config.name, es_event_type_name(event->type), line,
                        (size_t)len);
    atomic_fetch_add(&svc->events, 1);
    st->events++;
}

static void stall_for_test(stream *st) {
    service *svc = st->src->svc;
    if (!svc->test_stall_ms || atomic_exchange(&svc->test_stall_done, 1)) return;
    log_at(LOG_WARNING, "source %s: test hook %s: engine thread stalls for %d ms",
           st->src->config.name, TEST_STALL_ENV, svc->test_stall_ms);
    for (int slept = 0; slept < svc->test_stall_ms && !atomic_load(&st->src->stopping); slept += 10)
        usleep(10000);
}

/* On the engine thread after each of its passes (every few ms, busy or
 * idle): the heartbeat the watchdog looks at, so an engine that stops
 * passing stops the pings; the ring's drops for STATUS=. */
static void stream_pass(void *user) {
    stream *st = user;
    es_heartbeat_beat(&st->src->heartbeat);
    es_pipeline_stats stats;
    es_pipeline_get_stats(st->pipeline, &stats);
    atomic_store(&st->src->stream_ring_drops, stats.ring_drops);
    if (stats.frames_processed > st->frames_stepped) stall_for_test(st);
    st->frames_stepped = stats.frames_processed;
}

static int stream_start(stream *st, es_error *err) {
    st->engine = current_engine(st->src->svc, &st->generation);
    es_pipeline_config pc;
    es_pipeline_config_default(&pc, ES_PIPELINE_LIVE);
    pc.source = st->src->config.name;
    pc.vad_model = st->engine->vad;
    for (int k = 0; k < st->engine->kws_count; k++)
        pc.kws_models[k] = st->engine->kws[k];
    pc.kws_model_count = st->engine->kws_count;
    pc.vad = st->engine->vad_config;
    pc.kws = st->engine->kws_config;
    pc.input_rate_hz = st->input_rate_hz;
    pc.input_channels = st->input_channels;
    pc.max_input_frames = READ_CHUNK_FRAMES;
    pc.ring_policy = st->ring_policy;
    pc.on_event = publish_event;
    pc.event_user = st;
    int rc = es_pipeline_create(&pc, &st->pipeline, err);
    if (rc != 0) {
        engine_release(st->engine);
        return rc;
    }
    st->frames_stepped = 0;
    es_heartbeat_beat(&st->src->heartbeat);
    atomic_fetch_add(&st->src->engines_running, 1);
    rc = es_stream_group_add(st->src->svc->group, st->pipeline, stream_pass, st, err);
    if (rc != 0) {
        atomic_fetch_sub(&st->src->engines_running, 1);
        es_pipeline_destroy(st->pipeline);
        engine_release(st->engine);
        return rc;
    }
    return 0;
}

/* Ends the input and lets the group's engine process what is left and
 * flush the detectors (their last events go out), then frees the stream. */
static void stream_finish(stream *st) {
    es_pipeline_close_input(st->pipeline);
    int rc = es_stream_group_remove(st->src->svc->group, st->pipeline, 1);
    if (rc < 0)
        log_at(LOG_ERR, "source %s: pipeline: %s", st->src->config.name, es_pipeline_strerror(rc));
    atomic_fetch_sub(&st->src->engines_running, 1);
    es_pipeline_stats stats;
    es_pipeline_get_stats(st->pipeline, &stats);
    st->ring_drops += stats.ring_drops;
    atomic_fetch_add(&st->src->svc->ring_drops, stats.ring_drops);
    atomic_store(&st->src->stream_ring_drops, 0);
    es_pipeline_destroy(st->pipeline);
    engine_release(st->engine);
    st->pipeline = NULL;
    st->engine = NULL;
}

/* ---- pump: input fd -> pipe, watching the stop signal --------------------------------- */

typedef struct pump {
    source *src;
    int in_fd;
    int out_fd; /* non-blocking write end of the pipe */
    int is_fifo;
    atomic_uint_fast64_t bytes; /* read so far; the worker looks before joining */
    int writer_sent_nothing;    /* a FIFO writer came and went without a byte */
    int replaced;               /* the FIFO's path names another file now */
    int discarding;             /* the reader gave up: the stream's bytes are dropped */
    es_wav_split split;         /* where a FIFO's stream ends (wav_split.h) */
    int next_stream;            /* it ended, the next one began: its bytes are carried */
    pthread_t thread;
} pump;

/* Waits until `fd` is ready for `events` or the source stops; 1 when ready. */
static int wait_ready(pump *pu, int fd, short events, int timeout_ms) {
    struct pollfd p[2] = {{.fd = pu->src->stop_fd, .events = POLLIN}, {.fd = fd, .events = events}};
    int n = poll(p, 2, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -1;
    if (p[0].revents) return -1;
    return n > 0;
}

static int write_out(pump *pu, const char *bytes, size_t len) {
    while (len) {
        ssize_t n = write(pu->out_fd, bytes, len);
        if (n > 0) {
            bytes += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            if (wait_ready(pu, pu->out_fd, POLLOUT, -1) < 0) return -1;
            continue;
        }
        return -1; /* EPIPE: the reader gave up on the stream */
    }
    return 0;
}

/* Whether the source's path still names the file its fd reads. */
static int path_replaced(const source *src) {
    struct stat st;
    return stat(src->config.target, &st) != 0 || st.st_dev != src->input_dev ||
           st.st_ino != src->input_ino;
}

/* An idle FIFO's path is checked for a replacement this often. */
#define FIFO_CHECK_MS 1000

/* Passes bytes of the input on to the stream: -1 when the source stops, 1
 * when the next stream begins in them, else 0. A FIFO carries one stream
 * per writer, but a writer that opened it before the last one's end was
 * read shows no end: a stream of declared length is split where the next
 * one's header follows it (wav_split.h), and the next stream's bytes are
 * carried over to the next run. A regular file is one stream. */
static int pump_bytes(pump *pu, const unsigned char *bytes, size_t len) {
    size_t keep = len, used = len;
    int next = pu->is_fifo && es_wav_split_feed(&pu->split, bytes, len, &keep, &used);
    if (!pu->discarding && keep && write_out(pu, (const char *)bytes, keep) != 0) {
        if (atomic_load(&pu->src->stopping)) return -1;
        pu->discarding = 1; /* EPIPE: the reader gave up on the stream */
    }
    if (!next) return 0;
    /* Fits: a read and the header, or fewer than the carried bytes fed. */
    source *src = pu->src;
    memcpy(src->carry, pu->split.header, ES_WAV_SPLIT_HEADER_BYTES);
    memcpy(src->carry + ES_WAV_SPLIT_HEADER_BYTES, bytes + used, len - used);
    src->carry_len = ES_WAV_SPLIT_HEADER_BYTES + len - used;
    return 1;
}

/* Copies one writer's stream into the pipe. The FIFO's fd was opened after
 * the previous writer left (open_input), so the kernel reports a hang-up on
 * it only once a new writer came and went: no polling for writers, and a
 * writer that sent nothing is seen. Once the reader gave up (a stream that
 * is not WAV), the rest of the writer's bytes are read and dropped, so that
 * they cannot become the start of the next writer's stream; a next stream
 * split off them (pump_bytes) is read. */
static void *pump_thread(void *arg) {
    pump *pu = arg;
    unsigned char buf[sizeof pu->src->carry];
    es_wav_split_init(&pu->split);
    /* The bytes the last stream's pump read of this one. */
    size_t carried = pu->src->carry_len;
    memcpy(buf, pu->src->carry, carried);
    pu->src->carry_len = 0;
    atomic_store(&pu->bytes, carried);
    int pumped = carried ? pump_bytes(pu, buf, carried) : 0;
    while (pumped == 0) {
        int idle_fifo = pu->is_fifo && atomic_load(&pu->bytes) == 0;
        int ready = wait_ready(pu, pu->in_fd, POLLIN, idle_fifo ? FIFO_CHECK_MS : -1);
        if (ready < 0) break;
        if (!ready) {
            if (idle_fifo && path_replaced(pu->src)) {
                pu->replaced = 1;
                break;
            }
            continue;
        }
        ssize_t n = read(pu->in_fd, buf, PUMP_READ_BYTES);
        if (n > 0) {
            atomic_fetch_add(&pu->bytes, (uint64_t)n);
            pumped = pump_bytes(pu, buf, (size_t)n);
        } else if (n == 0) {
            pu->writer_sent_nothing = atomic_load(&pu->bytes) == 0;
            break;
        } else if (errno != EINTR && errno != EAGAIN) {
            break;
        }
    }
    pu->next_stream = pumped == 1;
    close(pu->out_fd);
    return NULL;
}

/* ---- file and FIFO sources ------------------------------------------------------------ */

/* How one run of a source ended, and so what its worker does next. */
typedef enum run_end {
    RUN_STOPPED,  /* the source is being stopped */
    RUN_AGAIN,    /* start the next run now: a FIFO's next writer, new settings */
    RUN_FINISHED, /* a regular file read to its end */
    RUN_FATAL,    /* cannot work, and trying again will not help */
    RUN_RETRY,    /* failed (missing path, device gone): try again after a back-off */
} run_end;

static void report_once(source *src, int priority, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A source that keeps failing the same way is reported once; a stream that
 * worked since (run_pipeline) makes the next failure news again. */
static void report_once(source *src, int priority, const char *fmt, ...) {
    char why[sizeof src->last_why];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (strcmp(why, src->last_why) == 0) return;
    snprintf(src->last_why, sizeof src->last_why, "%s", why);
    log_at(priority, "source %s: %s", src->config.name, why);
}

/* Switches the stream to a newer engine at a chunk boundary. */
static void follow_reload(stream *st, uint64_t *frames_fed) {
    if (atomic_load(&st->src->svc->engine_generation) == st->generation) return;
    stream_finish(st);
    st->time_offset_s += (double)*frames_fed / st->input_rate_hz;
    *frames_fed = 0;
    es_error err = {0};
    if (stream_start(st, &err) != 0)
        log_at(LOG_ERR, "source %s: new settings: %s", st->src->config.name, err.why);
}

/* es_audio_file_open and _read, their reason put in `err` (stream.h
 * still reports into a buffer). */
static int open_audio(const char *path, es_audio_file **audio, es_error *err) {
    if (es_audio_file_open(path, audio, err) == 0) return 0;
    err->code = -EINVAL;
    return -EINVAL;
}

static long read_audio(es_audio_file *audio, float *samples, size_t frames, es_error *err) {
    long got = es_audio_file_read(audio, samples, frames, err);
    if (got < 0) err->code = -EIO;
    return got;
}

/* Reads the WAV stream from the pump's pipe into a pipeline until it ends;
 * 0, or a negative code with the reason in `err`. */
static int run_pipeline(source *src, const char *pipe_path, es_error *err) {
    es_audio_file *audio;
    int rc = open_audio(pipe_path, &audio, err);
    if (rc != 0) return rc;
    src->last_why[0] = '\0';
    const es_audio_info *info = es_audio_file_info(audio);
    /* A file or FIFO waits for room: nothing is lost, and the writer is
     * slowed down instead. */
    stream st = {.src = src,
                 .input_rate_hz = info->sample_rate_hz,
                 .input_channels = info->channels,
                 .ring_policy = ES_RING_WAIT};
    rc = stream_start(&st, err);
    if (rc != 0) {
        es_audio_file_close(audio);
        return rc;
    }
    float *samples = malloc(sizeof(float) * READ_CHUNK_FRAMES * (size_t)info->channels);
    uint64_t frames_fed = 0;
    long got = samples ? 0 : -1;
    while (samples && (got = read_audio(audio, samples, READ_CHUNK_FRAMES, err)) > 0) {
        if (st.pipeline) follow_reload(&st, &frames_fed);
        if (!st.pipeline) break;
        es_pipeline_feed(st.pipeline, samples, (size_t)got);
        frames_fed += (uint64_t)got;
    }
    int lost_pipeline = !st.pipeline;
    if (st.pipeline) stream_finish(&st);
    free(samples);
    es_audio_file_close(audio);
    log_at(LOG_INFO, "source %s: stream ended: %.2f s of audio, %llu events, %llu ring drops",
           src->config.name, st.time_offset_s + (double)frames_fed / st.input_rate_hz,
           (unsigned long long)st.events, (unsigned long long)st.ring_drops);
    if (lost_pipeline)
        return es_error_set(err, ES_PIPELINE_ERR_STATE, "the new settings could not be applied");
    return got < 0 ? -EIO : 0;
}

/* Waits until the pump wrote into the pipe or closed it; 0 when it closed
 * it empty: a stop, or a FIFO writer that sent nothing (run_file reports
 * that). Then libsndfile is not asked to open a stream that is not there:
 * its failed opens write its global error text, which several sources
 * stopping at once would race on. */
static int pipe_has_bytes(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, -1) < 0 && errno == EINTR)
        ;
    int waiting = 0;
    return ioctl(fd, FIONREAD, &waiting) != 0 || waiting > 0;
}

/* One stream read from the source's fd (left open) through a pump. */
static int run_stream(source *src, pump *pu, es_error *err) {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0)
        return es_error_set(err, -errno, "pipe: %s", strerror(errno));
    fcntl(pipe_fds[1], F_SETFL, O_NONBLOCK);
    *pu = (pump){
        .src = src, .in_fd = src->input_fd, .out_fd = pipe_fds[1], .is_fifo = src->input_is_fifo};
    atomic_init(&pu->bytes, 0);
    int rc = pthread_create(&pu->thread, NULL, pump_thread, pu);
    if (rc != 0) {
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        return es_error_set(err, -rc, "cannot start a thread: %s", strerror(rc));
    }
    char pipe_path[64];
    snprintf(pipe_path, sizeof pipe_path, "/proc/self/fd/%d", pipe_fds[0]);
    /* A regular file that is empty still gets libsndfile's reason. */
    if (pu->is_fifo && !pipe_has_bytes(pipe_fds[0]))
        rc = 0;
    else
        rc = run_pipeline(src, pipe_path, err);
    /* A FIFO writer whose bytes are no stream is reported now: the pump
     * drops the rest until it closes, which may take a while. */
    if (rc != 0 && pu->is_fifo && atomic_load(&pu->bytes) > 0 && !atomic_load(&src->stopping))
        report_once(src, LOG_WARNING, "%s: a writer sent no WAV stream: %s; its data is dropped",
                    src->config.target, err->why);
    close(pipe_fds[0]); /* a pump still writing gets EPIPE and drops the rest */
    pthread_join(pu->thread, NULL);
    return rc;
}

/* Opens the source's path without blocking (a FIFO would wait for a
 * writer). A FIFO is opened afresh after every writer, the new fd before
 * the old one closes: the FIFO never lacks a reader (a writer would get
 * EPIPE), the pump can tell the next writer's hang-up (pump_thread), and a
 * path that now names another FIFO is followed. Returns 0, -1 (it may open
 * later: retry) or -2 (it never will: a directory). */
static int open_input(source *src, es_error *err) {
    int fd = open(src->config.target, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        es_error_set(err, -errno, "%s: %s", src->config.target, strerror(errno));
        if (fd >= 0) close(fd);
        if (src->input_fd >= 0) close(src->input_fd);
        src->input_fd = -1;
        return -1;
    }
    /* Said as it is: read through the pump, a directory would only show up
     * as a stream no format matches. */
    if (S_ISDIR(st.st_mode)) {
        es_error_set(err, -EISDIR, "%s: is a directory, not a file or FIFO of audio",
                     src->config.target);
        close(fd);
        return -2;
    }
    /* Also after a failed open: the path was removed, then made again. */
    if (src->input_ino && (st.st_dev != src->input_dev || st.st_ino != src->input_ino))
        log_at(LOG_INFO, "source %s: %s was replaced; reading the new one", src->config.name,
               src->config.target);
    if (src->input_fd >= 0) close(src->input_fd);
    src->input_fd = fd;
    src->input_is_fifo = S_ISFIFO(st.st_mode);
    src->input_dev = st.st_dev;
    src->input_ino = st.st_ino;
    return 0;
}

/* A regular file is one stream; a FIFO one stream per writer, read through
 * a fresh fd each (open_input). */
static run_end run_file(source *src, es_error *err) {
    if (src->input_fd < 0) {
        const int opened = open_input(src, err);
        if (opened != 0) return opened == -2 ? RUN_FATAL : RUN_RETRY;
    }
    atomic_store(&src->state, SOURCE_RUNNING);
    atomic_store(&src->attempted, 1);
    pump pu = {.src = src};
    int rc = run_stream(src, &pu, err);
    if (atomic_load(&src->stopping)) return RUN_STOPPED;
    if (!src->input_is_fifo) return rc == 0 ? RUN_FINISHED : RUN_FATAL;
    /* A next stream came before the end of the last one's writer: read
     * through the same fd, which sees that writer's hang-up (a fresh one
     * would not: open_input). */
    if (pu.next_stream) return RUN_AGAIN;
    if (pu.writer_sent_nothing)
        report_once(src, LOG_WARNING, "%s: a writer opened it and sent nothing",
                    src->config.target);
    if (open_input(src, err) != 0) return RUN_RETRY;
    return RUN_AGAIN; /* the next writer, or the replaced FIFO's */
}

/* ---- device sources ------------------------------------------------------------------- */

#define DEVICE_STALL_MS 3000 /* no audio for this long: the device is gone */
#define DEVICE_POLL_MS 100

/* Opens the source's device. PortAudio's device list is from its
 * initialisation: a device plugged in (or back) since is found only in a
 * fresh one, which is possible while no other stream is open (stream.h). */
static int open_device(source *src, es_capture_source **device, es_error *err) {
    es_capture_config cc;
    es_capture_config_default(&cc);
    cc.device = src->config.target;
    int rc = es_capture_source_open(&cc, device, err);
    if (rc == ES_CAPTURE_ERR_NO_DEVICE && es_capture_refresh_devices(err) == 1) {
        rc = es_capture_source_open(&cc, device, err);
        if (rc == 0)
            log_at(LOG_INFO, "source %s: %s appeared in PortAudio's refreshed device list",
                   src->config.name, src->config.target);
    }
    return rc;
}

/* Watches a running capture until the device is lost, the settings change
 * or the source stops. */
static run_end watch_device(source *src, const stream *st, es_capture *capture, es_error *err) {
    es_error cerr = {0};
    while (!wait_for_stop(src, DEVICE_POLL_MS)) {
        int health = es_capture_check(capture, DEVICE_STALL_MS, &cerr);
        if (health == ES_CAPTURE_ERR_LOST || health == ES_CAPTURE_ERR_STALLED) {
            es_error_set(err, health, "%s: %s", src->config.target, cerr.why);
            return RUN_RETRY;
        }
        /* New settings: a fresh stream (device time restarts; events carry
         * wallclock). */
        if (atomic_load(&src->svc->engine_generation) != st->generation) return RUN_AGAIN;
    }
    return RUN_STOPPED;
}

/* Captures until the device is lost, the settings change or the source stops. */
static run_end run_device(source *src, es_error *err) {
    es_capture_source *device;
    es_error cerr = {0};
    int rc = open_device(src, &device, &cerr);
    if (rc != 0) {
        es_error_set(err, rc, "%s: %s", src->config.target, cerr.why);
        return RUN_RETRY;
    }
    es_capture *capture = es_capture_source_capture(device);
    /* Capture never waits: a late engine costs the oldest frames, counted. */
    es_pipeline_config input;
    es_pipeline_config_default(&input, ES_PIPELINE_LIVE);
    es_capture_source_pipeline_input(device, &input);
    stream st = {.src = src,
                 .input_rate_hz = input.input_rate_hz,
                 .input_channels = input.input_channels,
                 .ring_policy = input.ring_policy};
    if (stream_start(&st, err) != 0) {
        es_capture_source_close(device);
        return RUN_FATAL;
    }
    rc = es_capture_source_start(device, st.pipeline, &cerr);
    if (rc != 0) {
        es_error_set(err, rc, "%s: %s", src->config.target, cerr.why);
        es_capture_source_close(device);
        stream_finish(&st);
        return RUN_RETRY;
    }
    atomic_store(&src->state, SOURCE_RUNNING);
    atomic_store(&src->attempted, 1);
    src->last_why[0] = '\0'; /* working: the next failure is news */
    log_at(LOG_INFO, "source %s: capturing from %s (%.0f Hz, %d channels)", src->config.name,
           es_capture_device_name(capture), st.input_rate_hz, st.input_channels);
    run_end end = watch_device(src, &st, capture, err);
    es_capture_source_close(device); /* the callback never runs after this */
    stream_finish(&st);
    return end;
}

/* ---- the worker every source runs ----------------------------------------------------- */

static void *source_worker(void *arg) {
    source *src = arg;
    run_end (*run)(source *, es_error *) =
        src->config.kind == ES_SOURCE_FILE ? run_file : run_device;
    int delay_ms = RETRY_FIRST_MS;
    es_error err = {0};
    while (!atomic_load(&src->stopping)) {
        run_end end = run(src, &err);
        if (end == RUN_STOPPED || atomic_load(&src->stopping)) break;
        int was_running = atomic_load(&src->state) == SOURCE_RUNNING;
        if (end == RUN_AGAIN) continue;
        if (end == RUN_FINISHED) {
            atomic_store(&src->state, SOURCE_FINISHED);
            log_at(LOG_INFO, "source %s: %s read to its end", src->config.name, src->config.target);
            break;
        }
        if (end == RUN_FATAL) {
            atomic_store(&src->state, SOURCE_FAILED);
            log_at(LOG_ERR, "source %s: %s", src->config.name, err.why);
            break;
        }
        /* A source that worked and then failed starts the back-off over. */
        if (was_running) delay_ms = RETRY_FIRST_MS;
        atomic_store(&src->state, SOURCE_RETRYING);
        atomic_store(&src->attempted, 1);
        report_once(src, LOG_WARNING, "%s; retrying with back-off (at most every %d s)", err.why,
                    RETRY_MAX_MS / 1000);
        if (wait_for_stop(src, delay_ms)) break;
        delay_ms = delay_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : delay_ms * 2;
    }
    if (src->input_fd >= 0) close(src->input_fd);
    atomic_store(&src->attempted, 1);
    return NULL;
}

static source *source_start(service *svc, const es_source_config *config) {
    source *src = calloc(1, sizeof *src);
    if (!src) return NULL;
    src->svc = svc;
    src->config = *config;
    atomic_init(&src->state, SOURCE_STARTING);
    es_heartbeat_init(&src->heartbeat);
    src->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    src->input_fd = -1;
    if (src->stop_fd < 0 || pthread_create(&src->worker, NULL, source_worker, src) != 0) {
        if (src->stop_fd >= 0) close(src->stop_fd);
        free(src);
        return NULL;
    }
    return src;
}

static void source_stop(source *src) {
    atomic_store(&src->stopping, 1);
    uint64_t one = 1;
    ssize_t ignored = write(src->stop_fd, &one, sizeof one);
    (void)ignored;
    pthread_join(src->worker, NULL);
    close(src->stop_fd);
    free(src);
}

/* An engine that has not passed over a running stream for a whole watchdog
 * timeout is stuck. */
static int engines_healthy(const service *svc, int64_t max_age_ns) {
    for (int i = 0; i < svc->source_count; i++) {
        source *src = svc->sources[i];
        if (atomic_load(&src->engines_running) > 0 &&
            es_heartbeat_age_ns(&src->heartbeat) > max_age_ns)
            return 0;
    }
    return 1;
}

static int all_sources_attempted(const service *svc) {
    for (int i = 0; i < svc->source_count; i++)
        if (!atomic_load(&svc->sources[i]->attempted)) return 0;
    return 1;
}

/* ---- status --------------------------------------------------------------------------- */

static void send_status(service *svc, char *last, size_t last_size) {
    int running = 0;
    uint64_t ring_drops = atomic_load(&svc->ring_drops);
    for (int i = 0; i < svc->source_count; i++) {
        running += atomic_load(&svc->sources[i]->state) == SOURCE_RUNNING;
        ring_drops += atomic_load(&svc->sources[i]->stream_ring_drops);
    }
    es_event_hub_stats hub;
    es_event_hub_get_stats(svc->hub, &hub);
    uint64_t stdout_lost = svc->stdout_writer ? es_line_writer_lost(svc->stdout_writer) : 0;
    /* A stdout nobody reads fast enough loses events like a slow
     * subscriber does; said once, then counted in STATUS=. */
    if (stdout_lost && !svc->stdout_drops_logged) {
        svc->stdout_drops_logged = 1;
        log_at(LOG_WARNING,
               "stdout: its reader is slow or gone; events to it are dropped and counted "
               "(%llu so far)",
               (unsigned long long)stdout_lost);
    }
    char status[512];
    int len = snprintf(status, sizeof status,
                       "%d/%d sources running; %llu events; %llu subscribers (%llu dropped as "
                       "slow); %llu ring drops",
                       running, svc->source_count, (unsigned long long)atomic_load(&svc->events),
                       (unsigned long long)hub.subscribers, (unsigned long long)hub.dropped_slow,
                       (unsigned long long)ring_drops);
    if (stdout_lost)
        len += snprintf(status + len, sizeof status - (size_t)len, "; %llu stdout lines dropped",
                        (unsigned long long)stdout_lost);
    if (svc->mqtt) {
        es_mqtt_stats mq;
        es_mqtt_get_stats(svc->mqtt, &mq);
        len +=
            snprintf(status + len, sizeof status - (size_t)len,
                     "; mqtt %s, %llu delivered, %llu queued, %llu dropped",
                     mq.connected ? "connected" : "disconnected", (unsigned long long)mq.delivered,
                     (unsigned long long)mq.pending, (unsigned long long)mq.dropped);
    }
    for (int i = 0; i < svc->source_count && len < (int)sizeof status; i++) {
        source *src = svc->sources[i];
        int state = atomic_load(&src->state);
        if (state != SOURCE_RUNNING)
            len += snprintf(status + len, sizeof status - (size_t)len, "; %s %s", src->config.name,
                            SOURCE_STATE_NAMES[state]);
    }
    if (strcmp(status, last) == 0) return;
    snprintf(last, last_size, "%s", status);
    es_notify_status("%s", status);
}

/* ---- start, reload, stop -------------------------------------------------------------- */

/* PortAudio is initialised from the main thread (stream.h), the first time
 * a config has a device source. */
static void prepare_capture(service *svc, const es_daemon_config *config) {
    if (svc->capture_initialised) return;
    for (int i = 0; i < config->source_count; i++) {
        if (config->sources[i].kind != ES_SOURCE_DEVICE) continue;
        es_error err = {0};
        if (es_capture_init(&err) != 0) {
            log_at(LOG_ERR, "PortAudio: %s", err.why);
            return;
        }
        svc->capture_initialised = 1;
        return;
    }
}

static int start_sources(service *svc) {
    prepare_capture(svc, &svc->config);
    for (int i = 0; i < svc->config.source_count; i++) {
        source *src = source_start(svc, &svc->config.sources[i]);
        if (!src) {
            log_at(LOG_ERR, "source %s: cannot start a thread", svc->config.sources[i].name);
            return -1;
        }
        svc->sources[svc->source_count++] = src;
    }
    return 0;
}

static int same_source(const es_source_config *a, const es_source_config *b) {
    return a->kind == b->kind && strcmp(a->target, b->target) == 0;
}

/* Zero-filled, so that [events] sections still compare with memcmp. */
static void apply_socket_override(const service *svc, es_daemon_config *config) {
    if (!svc->socket_override) return;
    memset(config->events.socket_path, 0, sizeof config->events.socket_path);
    snprintf(config->events.socket_path, sizeof config->events.socket_path, "%s",
             svc->socket_override);
}

/* Loads a new config and its models; logs why and returns -1 when unusable. */
static int load_fresh(service *svc, es_daemon_config *fresh, engine **e) {
    es_error err = {0};
    if (es_daemon_config_load(svc->config_path, fresh, &err) != 0) {
        log_at(LOG_ERR, "reload refused: %s; keeping the running configuration", err.why);
        return -1;
    }
    apply_socket_override(svc, fresh);
    if (engine_load(fresh, e, &err) != 0) {
        log_at(LOG_ERR, "reload refused: %s; keeping the running configuration and models",
               err.why);
        return -1;
    }
    return 0;
}

/* Sources that are gone or point elsewhere stop; new ones start; the
 * others keep their streams, which switch engines at their next chunk. */
static void apply_sources(service *svc, const es_daemon_config *fresh) {
    int kept = 0;
    for (int i = 0; i < svc->source_count; i++) {
        source *src = svc->sources[i];
        int j = es_daemon_config_find_source(fresh, src->config.name);
        if (j >= 0 && same_source(&src->config, &fresh->sources[j])) {
            svc->sources[kept++] = src;
            continue;
        }
        log_at(LOG_INFO, "source %s: stopped by reload", src->config.name);
        source_stop(src);
    }
    svc->source_count = kept;
    for (int j = 0; j < fresh->source_count; j++) {
        int present = 0;
        for (int i = 0; i < kept; i++)
            present |= strcmp(svc->sources[i]->config.name, fresh->sources[j].name) == 0;
        if (present) continue;
        source *src = source_start(svc, &fresh->sources[j]);
        if (src)
            svc->sources[svc->source_count++] = src;
        else
            log_at(LOG_ERR, "source %s: cannot start a thread", fresh->sources[j].name);
    }
}

/* SIGHUP: everything new is loaded before anything old is touched. The
 * loading (config file, model files) runs in its own thread, so that a slow
 * or hostile file never holds up the main loop: signals are still handled
 * and the watchdog still pinged while it reads. */
static void *reload_loader(void *arg) {
    service *svc = arg;
    if (load_fresh(svc, svc->reload_config, &svc->reload_engine) != 0) svc->reload_engine = NULL;
    uint64_t one = 1;
    ssize_t ignored = write(svc->reload_done_fd, &one, sizeof one);
    (void)ignored;
    return NULL;
}

static void reload_begin(service *svc) {
    es_event_hub_recheck(svc->hub); /* a deleted socket file is made again */
    if (svc->reload_running) {
        svc->reload_again = 1; /* the file may have changed since the load began */
        return;
    }
    es_notify_reloading();
    log_at(LOG_INFO, "reloading %s", svc->config_path);
    svc->reload_config = malloc(sizeof *svc->reload_config);
    svc->reload_engine = NULL;
    int rc =
        svc->reload_config ? pthread_create(&svc->reload_thread, NULL, reload_loader, svc) : -1;
    if (rc != 0) {
        log_at(LOG_ERR, "reload refused: %s; keeping the running configuration",
               rc < 0 ? "out of memory" : strerror(rc));
        free(svc->reload_config);
        svc->reload_config = NULL;
        es_notify_ready();
        return;
    }
    svc->reload_running = 1;
}

/* Whether a reload leaves the models and detector settings as they are:
 * the same paths, each file as it was (model_stamp), the same [vad] and
 * [keywords]. Then the running engine stays, and with it every stream's
 * state (open segments, networks' memory, stream time). The config
 * sections compare with memcmp (config.h). */
static int engine_unchanged(const service *svc, const es_daemon_config *fresh, const engine *e) {
    const es_daemon_config *old = &svc->config;
    return strcmp(old->vad_model, fresh->vad_model) == 0 &&
           old->kws_model_count == fresh->kws_model_count &&
           memcmp(old->kws_models, fresh->kws_models, sizeof old->kws_models) == 0 &&
           memcmp(&old->vad, &fresh->vad, sizeof old->vad) == 0 &&
           memcmp(&old->kws, &fresh->kws, sizeof old->kws) == 0 &&
           memcmp(svc->engine->stamps, e->stamps, sizeof e->stamps) == 0;
}

/* The main thread, once the loader is done: switch to what it loaded. */
static void reload_finish(service *svc) {
    uint64_t count;
    ssize_t ignored = read(svc->reload_done_fd, &count, sizeof count);
    (void)ignored;
    pthread_join(svc->reload_thread, NULL);
    svc->reload_running = 0;
    es_daemon_config *fresh = svc->reload_config;
    engine *e = svc->reload_engine;
    svc->reload_config = NULL;
    svc->reload_engine = NULL;
    if (e) {
        if (memcmp(&svc->config.events, &fresh->events, sizeof fresh->events) != 0)
            log_at(LOG_WARNING, "[events] changes take effect when the service restarts");
        if (memcmp(&svc->config.mqtt, &fresh->mqtt, sizeof fresh->mqtt) != 0)
            log_at(LOG_WARNING, "[mqtt] changes take effect when the service restarts");
        if (svc->config.engine_threads != fresh->engine_threads)
            log_at(LOG_WARNING,
                   "[models] engine_threads changes take effect when the service restarts");
        if (engine_unchanged(svc, fresh, e)) {
            engine_release(e);
            log_at(LOG_INFO, "models and detector settings unchanged: running streams go on");
        } else {
            pthread_mutex_lock(&svc->engine_lock);
            engine *old = svc->engine;
            svc->engine = e;
            atomic_fetch_add(&svc->engine_generation, 1);
            pthread_mutex_unlock(&svc->engine_lock);
            engine_release(old);
        }
        prepare_capture(svc, fresh);
        apply_sources(svc, fresh);
        /* The socket, stdout, the MQTT connection and the engine threads
         * stay as they were opened. */
        fresh->events = svc->config.events;
        fresh->mqtt = svc->config.mqtt;
        fresh->engine_threads = svc->config.engine_threads;
        svc->config = *fresh;
        log_at(LOG_INFO, "reloaded %s: %d sources", svc->config_path, svc->source_count);
    }
    free(fresh);
    es_notify_ready();
    if (svc->reload_again) {
        svc->reload_again = 0;
        reload_begin(svc);
    }
}

/* On the way out: a load in progress is waited for (reads are bounded,
 * load_fresh never blocks on a FIFO or device) and thrown away. */
static void reload_abandon(service *svc) {
    if (!svc->reload_running) return;
    pthread_join(svc->reload_thread, NULL);
    svc->reload_running = 0;
    if (svc->reload_engine) engine_release(svc->reload_engine);
    free(svc->reload_config);
    svc->reload_config = NULL;
    svc->reload_engine = NULL;
}

static void stop_everything(service *svc) {
    reload_abandon(svc);
    for (int i = 0; i < svc->source_count; i++)
        source_stop(svc->sources[i]);
    svc->source_count = 0;
    es_stream_group_destroy(svc->group); /* every stream has left it */
    svc->group = NULL;
    /* After the sources: their last events (closed segments) go out too. */
    if (svc->mqtt) {
        uint64_t lost = es_mqtt_destroy(svc->mqtt);
        svc->mqtt = NULL;
        if (lost)
            log_at(LOG_WARNING,
                   "mqtt: %llu events never reached the broker (queue full, or "
                   "pending at exit)",
                   (unsigned long long)lost);
    }
    es_wyoming_server_destroy(svc->wyoming);
    svc->wyoming = NULL;
    if (svc->wyoming_engine) engine_release(svc->wyoming_engine);
    svc->wyoming_engine = NULL;
    es_event_hub_destroy(svc->hub);
    svc->hub = NULL;
    uint64_t stdout_lost = es_line_writer_destroy(svc->stdout_writer);
    svc->stdout_writer = NULL;
    if (stdout_lost)
        log_at(LOG_WARNING, "stdout: %llu events dropped in all (its reader was slow or gone)",
               (unsigned long long)stdout_lost);
    if (svc->capture_initialised) es_capture_terminate();
    svc->capture_initialised = 0;
}

/* ---- main loop ------------------------------------------------------------------------ */

static int open_signals(sigset_t *handled) {
    sigemptyset(handled);
    sigaddset(handled, SIGTERM);
    sigaddset(handled, SIGINT);
    sigaddset(handled, SIGHUP);
    /* Blocked before any thread starts, so every thread inherits the mask
     * and the signals reach only the signalfd. */
    if (pthread_sigmask(SIG_BLOCK, handled, NULL) != 0) return -1;
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, handled, SFD_CLOEXEC);
}

static int serve(service *svc, int signal_fd) {
    es_watchdog watchdog;
    es_watchdog_init(&watchdog);
    int64_t max_engine_silence_ns = (int64_t)watchdog.period_usec * 2000;
    if (max_engine_silence_ns < 1000000000) max_engine_silence_ns = 1000000000;
    int ready = 0;
    char last_status[512] = "";
    int64_t next_status_ns = 0;
    for (;;) {
        if (!ready && all_sources_attempted(svc)) {
            ready = 1;
            es_notify_ready();
            log_at(LOG_INFO, "ready: %d sources on %d engine thread%s, events on %s",
                   svc->source_count, svc->config.engine_threads,
                   svc->config.engine_threads == 1 ? "" : "s", svc->config.events.socket_path);
        }
        int sleep_ms = STATUS_PERIOD_MS;
        if (ready) {
            int watchdog_ms =
                es_watchdog_service(&watchdog, engines_healthy(svc, max_engine_silence_ns));
            if (watchdog_ms >= 0 && watchdog_ms < sleep_ms) sleep_ms = watchdog_ms;
            if (es_monotonic_ns() >= next_status_ns) {
                send_status(svc, last_status, sizeof last_status);
                next_status_ns = es_monotonic_ns() + (int64_t)STATUS_PERIOD_MS * 1000000;
            }
        } else {
            sleep_ms = 10;
        }
        struct pollfd p[2] = {{.fd = signal_fd, .events = POLLIN},
                              {.fd = svc->reload_done_fd, .events = POLLIN}};
        int n = poll(p, 2, sleep_ms);
        if (n < 0 && errno != EINTR) {
            log_at(LOG_ERR, "poll: %s", strerror(errno));
            return -1;
        }
        if (n <= 0) continue;
        if (p[1].revents) {
            reload_finish(svc);
            last_status[0] = '\0';
        }
        if (!p[0].revents) continue;
        struct signalfd_siginfo info;
        if (read(signal_fd, &info, sizeof info) != sizeof info) continue;
        if (info.ssi_signo == SIGHUP) {
            reload_begin(svc);
            continue;
        }
        log_at(LOG_INFO, "%s: stopping", strsignal((int)info.ssi_signo));
        es_notify_stopping();
        return 0;
    }
}

/* The hub thread: a subscriber dropped, the socket file made again. */
static void log_hub_report(const char *what, void *user) {
    (void)user;
    log_at(LOG_WARNING, "%s", what);
}

static void hub_config_from(const es_events_config *events, es_event_hub_config *hc) {
    es_event_hub_config_default(hc);
    hc->on_report = log_hub_report;
    hc->socket_path = events->socket_path;
    hc->socket_mode = events->socket_mode;
    hc->socket_group = events->socket_group;
    hc->backlog_events = (size_t)events->backlog_events;
    hc->backlog_bytes = (size_t)events->backlog_bytes;
    hc->max_subscribers = (size_t)events->max_subscribers;
}

/* The Wyoming server's and the MQTT module's log lines. */
static void log_line(int priority, const char *line, void *user) {
    (void)user;
    log_at(priority, "%s", line);
}

/* The Wyoming server serves the models loaded at start-up. */
static int open_wyoming(service *svc) {
    const es_wyoming_service_config *w = &svc->config.wyoming;
    if (!w->uri[0]) return 0;
    unsigned generation;
    svc->wyoming_engine = current_engine(svc, &generation);
    const engine *e = svc->wyoming_engine;
    es_wyoming_config wc;
    es_wyoming_config_default(&wc);
    wc.uri = w->uri;
    wc.max_clients = w->max_clients;
    wc.client_timeout_ms = w->client_timeout_ms;
    wc.language = w->language;
    wc.version = ES_VERSION;
    wc.vad_model = e->vad;
    wc.kws_model_count = e->kws_count;
    for (int k = 0; k < e->kws_count; k++)
        wc.kws_models[k] = e->kws[k];
    wc.vad = e->vad_config;
    wc.kws = e->kws_config;
    wc.on_log = log_line;
    es_error err = {0};
    if (es_wyoming_server_create(&wc, &svc->wyoming, &err) != 0) {
        log_at(LOG_ERR, "[wyoming] %s", err.why);
        return -1;
    }
    log_at(LOG_INFO, "wyoming: listening on %s (port %d)", w->uri,
           es_wyoming_server_port(svc->wyoming));
    return 0;
}

/* [mqtt]: the node defaults to the host name; discovery lists the sources
 * and the keywords of the models loaded at start-up. */
static int open_mqtt(service *svc) {
    const es_mqtt_service_config *c = &svc->config.mqtt;
    if (!c->host[0]) return 0;
    char node[ES_CONFIG_NAME_MAX];
    if (c->node[0]) {
        snprintf(node, sizeof node, "%s", c->node);
    } else if (gethostname(node, sizeof node) != 0 || !node[0]) {
        snprintf(node, sizeof node, "earshot");
    }
    node[sizeof node - 1] = '\0';
    for (char *ch = node; *ch; ch++) /* a host name never has these; be sure */
        if (*ch == '/' || *ch == '+' || *ch == '#') *ch = '_';
    const char *sources[ES_CONFIG_MAX_SOURCES];
    for (int i = 0; i < svc->config.source_count; i++)
        sources[i] = svc->config.sources[i].name;
    const char *keywords[ES_PIPELINE_MAX_KWS_MODELS * 64];
    int keyword_count = 0;
    const engine *e = svc->engine;
    for (int k = 0; k < e->kws_count; k++)
        for (int i = 0; i < es_model_output_size(e->kws[k]); i++) {
            const char *label = es_model_label(e->kws[k], i);
            int seen = 0;
            for (int j = 0; j < keyword_count; j++)
                seen |= strcmp(keywords[j], label) == 0;
            if (!seen && es_kws_label_is_keyword(label) &&
                keyword_count < (int)(sizeof keywords / sizeof keywords[0]))
                keywords[keyword_count++] = label;
        }
    es_mqtt_config mc;
    es_mqtt_config_default(&mc);
    mc.host = c->host;
    mc.port = c->port;
    mc.topic_prefix = c->topic_prefix;
    mc.node = node;
    mc.client_id = c->client_id;
    mc.username = c->username;
    mc.password = c->password;
    mc.cafile = c->cafile;
    mc.capath = c->capath;
    mc.certfile = c->certfile;
    mc.keyfile = c->keyfile;
    mc.tls_insecure = c->tls_insecure;
    mc.keepalive_s = c->keepalive_s;
    mc.queue_events = (size_t)c->queue_events;
    mc.discovery_prefix = c->discovery ? c->discovery_prefix : NULL;
    mc.sources = sources;
    mc.source_count = svc->config.source_count;
    mc.keywords = keywords;
    mc.keyword_count = keyword_count;
    mc.on_log = log_line;
    log_at(LOG_INFO, "mqtt: publishing events to %s:%d as %s/%s/SOURCE/TYPE (QoS 1, queue %d)",
           c->host, c->port, c->topic_prefix, node, c->queue_events);
    es_error err = {0};
    if (es_mqtt_create(&mc, &svc->mqtt, &err) != 0) {
        log_at(LOG_ERR, "[mqtt] %s", err.why);
        return -1;
    }
    return 0;
}

/* The engine threads every source's stream joins. */
static int open_engines(service *svc) {
    es_error err = {0};
    if (es_stream_group_create(svc->config.engine_threads, &svc->group, &err) != 0) {
        log_at(LOG_ERR, "[models] engine_threads: %s", err.why);
        return -1;
    }
    return 0;
}

static int open_outputs(service *svc) {
    es_event_hub_config hc;
    hub_config_from(&svc->config.events, &hc);
    es_error err = {0};
    if (es_event_hub_create(&hc, &svc->hub, &err) != 0) {
        log_at(LOG_ERR, "event socket: %s", err.why);
        return -1;
    }
    if (svc->config.events.to_stdout &&
        es_line_writer_create(STDOUT_FILENO, 4096, &svc->stdout_writer, &err) != 0) {
        log_at(LOG_ERR, "stdout: %s", err.why);
        return -1;
    }
    return 0;
}

/* [events] as --check-config sees it: a socket folder under /run/earshot
 * is made by the units' RuntimeDirectory= as the service starts, so a
 * check run before that is told so (a note), not refused. */
static int check_events(service *svc, const es_service_options *options, es_error *err) {
    es_event_hub_config hc;
    hub_config_from(&svc->config.events, &hc);
    es_error herr = {0};
    if (es_event_hub_check_config(&hc, &herr) == 0) return 0;
    int made_by_systemd = strncmp(hc.socket_path, "/run/earshot/", 13) == 0;
    if (!options->check_only || !made_by_systemd || herr.code != -ENOENT)
        return es_error_set(err, -EINVAL, "%s: [events] %s", svc->config_path, herr.why);
    if (options->on_note) {
        char note[sizeof herr.why + 160];
        snprintf(note, sizeof note,
                 "%s; systemd creates /run/earshot (RuntimeDirectory=) when the service "
                 "starts; started by hand, the daemon needs it to exist",
                 herr.why);
        options->on_note(note, options->note_user);
    }
    return 0;
}

/* The config, its event socket's settings and its models: everything
 * start-up refuses, so that --check-config (which runs this too) passes
 * only what the service will take. */
static int load_config(service *svc, const es_service_options *options, es_error *err) {
    int rc = es_daemon_config_load(svc->config_path, &svc->config, err);
    if (rc != 0) return rc;
    apply_socket_override(svc, &svc->config);
    rc = check_events(svc, options, err);
    if (rc != 0) return rc;
    char host[256];
    int port;
    es_error inner = {0};
    if (svc->config.wyoming.uri[0] &&
        (rc = es_wyoming_parse_uri(svc->config.wyoming.uri, host, sizeof host, &port, &inner)) != 0)
        return es_error_set(err, rc, "%s: [wyoming] uri %s", svc->config_path, inner.why);
    rc = engine_load(&svc->config, &svc->engine, &inner);
    if (rc != 0) return es_error_set(err, rc, "%s: %s", svc->config_path, inner.why);
    return 0;
}

/* ---- the service's entry points (service.h) ---------------------------------------- */

int es_service_load(const es_service_options *options, es_service **out, es_error *err) {
    service *svc = calloc(1, sizeof *svc);
    if (!svc) return es_error_set(err, -ENOMEM, "out of memory");
    svc->config_path = options->config_path;
    svc->socket_override = options->socket_override;
    int rc = load_config(svc, options, err);
    if (rc != 0) {
        free(svc);
        return rc;
    }
    *out = svc;
    return 0;
}

int es_service_source_count(const es_service *svc) {
    return svc->config.source_count;
}

int es_service_keyword_model_count(const es_service *svc) {
    return svc->engine->kws_count;
}

void es_service_log_error(const char *why) {
    log_at(LOG_ERR, "%s", why);
}

int es_service_run(es_service *svc) {
    const char *stall = getenv(TEST_STALL_ENV);
    svc->test_stall_ms = stall ? atoi(stall) : 0;
    pthread_mutex_init(&svc->engine_lock, NULL);

    int status = -1;
    sigset_t handled;
    int signal_fd = open_signals(&handled);
    svc->reload_done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (signal_fd < 0 || svc->reload_done_fd < 0) {
        log_at(LOG_ERR, "signalfd/eventfd: %s", strerror(errno));
    } else if (open_outputs(svc) == 0 && open_mqtt(svc) == 0 && open_wyoming(svc) == 0 &&
               open_engines(svc) == 0 && start_sources(svc) == 0) {
        status = serve(svc, signal_fd);
    }
    stop_everything(svc);
    if (status == 0) log_at(LOG_INFO, "stopped");
    if (signal_fd >= 0) close(signal_fd);
    if (svc->reload_done_fd >= 0) close(svc->reload_done_fd);
    pthread_mutex_destroy(&svc->engine_lock);
    return status;
}

void es_service_destroy(es_service *svc) {
    if (!svc) return;
    engine_release(svc->engine);
    free(svc);
}
