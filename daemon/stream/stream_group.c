/*
 * Many live pipelines, few engine threads (stream.h, "stream_group").
 *
 * An engine loops over its pipelines in passes. A pass takes every frame
 * waiting in each pipeline's ring (pipeline_engine.h), then steps the models
 * in rounds: round r steps frame r of every pipeline that has one, and the
 * pipelines that share a model step it together, one es_model_step_batch
 * for all of them (a cohort), so each weight is read once per block of
 * streams. Then each pipeline's detectors run over its frames, in order.
 * Each pipeline keeps its own states, detectors, events and latency
 * figures; a frame's arithmetic is the same as es_pipeline_consume's, so
 * the events are too.
 *
 * An engine's lock is held through a pass; adding and removing pipelines
 * take it between passes. An idle engine waits on its condition variable for
 * a poll period, so a new frame waits at most that long.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pipeline_engine.h"
#include "stream.h"

/* An idle engine looks for frames this often: a fraction of a 10 ms hop. */
#define IDLE_POLL_NS 2000000L
/* Model slots of a pipeline: the VAD model, then the keyword models. */
#define MAX_SLOTS (1 + ES_PIPELINE_MAX_KWS_MODELS)

typedef struct member {
    es_pipeline *pipeline;
    es_pipeline_models models;
    es_stream_pass_fn on_pass;
    void *user;
    int taken;                   /* frames taken in this pass */
    int closed;                  /* its input ended and every frame was consumed */
    int failed;                  /* the pipeline's error code that ended it, or 0 */
    unsigned stepped[MAX_SLOTS]; /* the round each model slot last stepped in */
} member;

typedef struct engine {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* members added or closed, or stopping */
    int stopping;
    member *members;
    int count, capacity;
    /* One cohort's batch, room for every member. */
    es_state **states;
    float *inputs;  /* capacity x the widest model input */
    float *outputs; /* capacity x ES_MAX_OUTPUTS */
    int *cohort_member, *cohort_slot;
    int widest_input;
    unsigned round; /* bumped per round; member.stepped compares with it */
    atomic_uint_fast64_t passes, frames, batches, batch_streams;
} engine;

struct es_stream_group {
    int engine_count;
    engine engines[ES_STREAM_GROUP_MAX_ENGINES];
};

/* ---- model slots ---------------------------------------------------------------- */

static int slot_count(const member *m) {
    return 1 + m->models.kws_count;
}

static const es_model *slot_model(const member *m, int slot) {
    return slot == 0 ? m->models.vad_model : m->models.kws_models[slot - 1];
}

static es_state *slot_state(const member *m, int slot) {
    return slot == 0 ? m->models.vad_state : m->models.kws_states[slot - 1];
}

static float *slot_outputs(const member *m, int slot) {
    return slot == 0 ? m->models.vad_outputs : m->models.kws_outputs[slot - 1];
}

/* ---- a pass --------------------------------------------------------------------- */

/* Frame `round` of every member from `first` on that has one and runs
 * `model` in a slot not yet stepped this round: one batched step. */
static void step_cohort(engine *e, int first, const es_model *model, int round) {
    const size_t in = (size_t)es_model_input_size(model), out = (size_t)es_model_output_size(model);
    int n = 0;
    for (int i = first; i < e->count; i++) {
        member *m = &e->members[i];
        if (m->taken <= round) continue;
        for (int s = 0; s < slot_count(m); s++) {
            if (m->stepped[s] == e->round || slot_model(m, s) != model) continue;
            m->stepped[s] = e->round;
            e->states[n] = slot_state(m, s);
            memcpy(e->inputs + (size_t)n * in, m->models.features + (size_t)round * in,
                   in * sizeof(float));
            e->cohort_member[n] = i;
            e->cohort_slot[n] = s;
            n++;
            break; /* a second slot of the same model joins the next cohort */
        }
    }
    es_model_step_batch(model, e->states, e->inputs, e->outputs, n);
    for (int q = 0; q < n; q++) {
        const member *m = &e->members[e->cohort_member[q]];
        memcpy(slot_outputs(m, e->cohort_slot[q]) + (size_t)round * out,
               e->outputs + (size_t)q * out, out * sizeof(float));
    }
    atomic_fetch_add_explicit(&e->batches, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->batch_streams, (uint64_t)n, memory_order_relaxed);
}

/* Takes what is waiting everywhere; returns the most frames one member took. */
static int take_frames(engine *e, uint64_t *frames) {
    int most = 0;
    for (int i = 0; i < e->count; i++) {
        member *m = &e->members[i];
        m->taken = 0;
        if (m->closed) continue;
        int rc = es_pipeline_take_frames(m->pipeline, es_pipeline_max_take(m->pipeline));
        if (rc < 0) { /* ES_PIPELINE_CLOSED, or an error: either way, it is done */
            m->closed = 1;
            m->failed = rc == ES_PIPELINE_CLOSED ? 0 : rc;
            pthread_cond_broadcast(&e->changed);
        } else if (rc > 0) {
            m->taken = rc;
            *frames += (uint64_t)rc;
            most = rc > most ? rc : most;
        }
    }
    return most;
}

/* A pipeline alone on its engine has no company to batch with: its frames
 * go through each model in one block, as es_pipeline_consume steps them
 * (the input side of a block shares each weight load; the same bits as
 * frame by frame). A daemon with one source fed faster than real time ran
 * 15-25 % slower stepping it round by round. */
static void step_alone(engine *e, member *m) {
    for (int s = 0; s < slot_count(m); s++)
        es_state_step_frames(slot_state(m, s), m->models.features, m->taken, slot_outputs(m, s));
    /* Counted as batches of one stream, so the mean batch says it. */
    const uint64_t steps = (uint64_t)m->taken * (uint64_t)slot_count(m);
    atomic_fetch_add_explicit(&e->batches, steps, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->batch_streams, steps, memory_order_relaxed);
}

/* One pass over the engine's members; returns the frames it processed. */
static uint64_t engine_pass(engine *e) {
    uint64_t frames = 0;
    const int rounds = take_frames(e, &frames);
    if (e->count == 1 && rounds > 0) step_alone(e, &e->members[0]);
    for (int round = 0; e->count > 1 && round < rounds; round++) {
        e->round++;
        for (int i = 0; i < e->count; i++) {
            member *m = &e->members[i];
            if (m->taken <= round) continue;
            for (int s = 0; s < slot_count(m); s++)
                if (m->stepped[s] != e->round) step_cohort(e, i, slot_model(m, s), round);
        }
    }
    for (int i = 0; i < e->count; i++) {
        member *m = &e->members[i];
        if (m->taken > 0) es_pipeline_detect_taken(m->pipeline);
        if (m->on_pass) m->on_pass(m->user);
    }
    atomic_fetch_add_explicit(&e->passes, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->frames, frames, memory_order_relaxed);
    return frames;
}

static void *engine_thread(void *arg) {
    engine *e = arg;
    pthread_mutex_lock(&e->lock);
    while (!e->stopping) {
        if (engine_pass(e) > 0) {
            /* Let adders and removers in between busy passes. */
            pthread_mutex_unlock(&e->lock);
            pthread_mutex_lock(&e->lock);
            continue;
        }
        if (e->count == 0) { /* nothing to look for until a pipeline joins */
            pthread_cond_wait(&e->changed, &e->lock);
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += IDLE_POLL_NS;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&e->changed, &e->lock, &until);
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------ */

static int engine_start(engine *e, es_error *err) {
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->changed, &attr);
    pthread_condattr_destroy(&attr);
    int rc = pthread_create(&e->thread, NULL, engine_thread, e);
    if (rc != 0) {
        pthread_cond_destroy(&e->changed);
        pthread_mutex_destroy(&e->lock);
        return es_error_set(err, ES_STREAM_GROUP_ERR_THREAD, "cannot start an engine thread: %s",
                            strerror(rc));
    }
    pthread_setname_np(e->thread, "es-engine"); /* for top -H, ps -L and tests */
    return 0;
}

static void engine_stop(engine *e) {
    pthread_mutex_lock(&e->lock);
    e->stopping = 1;
    pthread_cond_broadcast(&e->changed);
    pthread_mutex_unlock(&e->lock);
    pthread_join(e->thread, NULL);
    pthread_cond_destroy(&e->changed);
    pthread_mutex_destroy(&e->lock);
    free(e->members);
    free(e->states);
    free(e->inputs);
    free(e->outputs);
    free(e->cohort_member);
    free(e->cohort_slot);
}

int es_stream_group_create(int engines, es_stream_group **out, es_error *err) {
    *out = NULL;
    if (engines < 1 || engines > ES_STREAM_GROUP_MAX_ENGINES)
        return es_error_set(err, ES_STREAM_GROUP_ERR_ARG, "engine threads %d: not in 1..%d",
                            engines, ES_STREAM_GROUP_MAX_ENGINES);
    es_stream_group *g = calloc(1, sizeof *g);
    if (!g) return es_error_set(err, ES_STREAM_GROUP_ERR_NOMEM, "stream group: out of memory");
    for (; g->engine_count < engines; g->engine_count++) {
        int rc = engine_start(&g->engines[g->engine_count], err);
        if (rc != 0) {
            es_stream_group_destroy(g);
            return rc;
        }
    }
    *out = g;
    return 0;
}

void es_stream_group_destroy(es_stream_group *g) {
    if (!g) return;
    for (int i = 0; i < g->engine_count; i++)
        engine_stop(&g->engines[i]);
    free(g);
}

/* Room for one more member and its place in a cohort (under the lock). */
static int engine_reserve(engine *e, int widest_input) {
    if (e->count < e->capacity && widest_input <= e->widest_input) return 0;
    int capacity = e->count < e->capacity ? e->capacity : 2 * e->capacity + 16;
    int widest = widest_input > e->widest_input ? widest_input : e->widest_input;
    member *members = realloc(e->members, sizeof *members * (size_t)capacity);
    if (members) e->members = members;
    es_state **states = realloc(e->states, sizeof *states * (size_t)capacity);
    if (states) e->states = states;
    int *cohort_member = realloc(e->cohort_member, sizeof(int) * (size_t)capacity);
    if (cohort_member) e->cohort_member = cohort_member;
    int *cohort_slot = realloc(e->cohort_slot, sizeof(int) * (size_t)capacity);
    if (cohort_slot) e->cohort_slot = cohort_slot;
    float *inputs = malloc(sizeof(float) * (size_t)capacity * (size_t)widest);
    float *outputs = malloc(sizeof(float) * (size_t)capacity * ES_MAX_OUTPUTS);
    if (!members || !states || !cohort_member || !cohort_slot || !inputs || !outputs) {
        free(inputs);
        free(outputs);
        return ES_STREAM_GROUP_ERR_NOMEM;
    }
    free(e->inputs);
    free(e->outputs);
    e->inputs = inputs;
    e->outputs = outputs;
    e->capacity = capacity;
    e->widest_input = widest;
    return 0;
}

int es_stream_group_add(es_stream_group *g, es_pipeline *p, es_stream_pass_fn on_pass, void *user,
                        es_error *err) {
    member m = {.pipeline = p, .on_pass = on_pass, .user = user};
    if (es_pipeline_models_of(p, &m.models) != ES_PIPELINE_OK)
        return es_error_set(err, ES_STREAM_GROUP_ERR_ARG, "only live pipelines join a group");
    int widest = es_model_input_size(m.models.vad_model);
    for (int k = 0; k < m.models.kws_count; k++)
        if (es_model_input_size(m.models.kws_models[k]) > widest)
            widest = es_model_input_size(m.models.kws_models[k]);
    engine *e = &g->engines[0];
    for (int i = 1; i < g->engine_count; i++)
        if (g->engines[i].count < e->count) e = &g->engines[i];
    pthread_mutex_lock(&e->lock);
    int rc = engine_reserve(e, widest);
    if (rc == 0) e->members[e->count++] = m;
    pthread_cond_broadcast(&e->changed);
    pthread_mutex_unlock(&e->lock);
    return rc ? es_error_set(err, rc, "stream group: out of memory") : 0;
}

/* The engine that runs `p` and its member index, or -1; locks that engine. */
static int find_member(es_stream_group *g, const es_pipeline *p, engine **found) {
    for (int i = 0; i < g->engine_count; i++) {
        engine *e = &g->engines[i];
        pthread_mutex_lock(&e->lock);
        for (int j = 0; j < e->count; j++) {
            if (e->members[j].pipeline != p) continue;
            *found = e;
            return j;
        }
        pthread_mutex_unlock(&e->lock);
    }
    return -1;
}

int es_stream_group_remove(es_stream_group *g, es_pipeline *p, int drain) {
    engine *e = NULL;
    int j = find_member(g, p, &e);
    if (j < 0) return 0;
    /* The member may move while the lock is released in the wait. */
    while (drain && !e->members[j].closed) {
        pthread_cond_wait(&e->changed, &e->lock);
        for (j = 0; e->members[j].pipeline != p; j++)
            ;
    }
    const int failed = e->members[j].failed;
    e->members[j] = e->members[--e->count];
    pthread_mutex_unlock(&e->lock);
    return failed;
}

void es_stream_group_get_stats(es_stream_group *g, es_stream_group_stats *stats) {
    memset(stats, 0, sizeof *stats);
    for (int i = 0; i < g->engine_count; i++) {
        engine *e = &g->engines[i];
        pthread_mutex_lock(&e->lock);
        stats->streams += e->count;
        pthread_mutex_unlock(&e->lock);
        stats->passes += atomic_load(&e->passes);
        stats->frames += atomic_load(&e->frames);
        stats->batches += atomic_load(&e->batches);
        stats->batch_streams += atomic_load(&e->batch_streams);
        clockid_t clock;
        struct timespec ts;
        if (pthread_getcpuclockid(e->thread, &clock) == 0 && clock_gettime(clock, &ts) == 0)
            stats->engine_cpu_s += (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    }
}
