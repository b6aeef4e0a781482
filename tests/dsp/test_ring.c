/* Lock-free frame ring: order, loss, overwrite, blocking wrappers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dsp.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

/* 1e7 frames in an optimised build. An unoptimised sanitizer build is ~10x
 * slower: 1e6. ThreadSanitizer makes each of the ~70 atomic accesses per
 * frame far dearer still (1e6 frames took 17 s on a loaded 2-core machine):
 * 3e5, which still interleaves the threads millions of times. */
#if UNDER_TSAN
#define THREADED_FRAMES 300000
#elif !defined(__OPTIMIZE__)
#define THREADED_FRAMES 1000000
#else
#define THREADED_FRAMES 10000000
#endif

/* Every feature holds a value derived from the sequence number, so a torn
 * copy (half old frame, half new) shows. */
static void fill_frame(es_frame *frame, int64_t sequence) {
    frame->time_samples = sequence;
    for (int i = 0; i < ES_MAX_MEL_BANDS; i++)
        frame->features[i] = (float)(sequence % 100003 + i);
}

static bool frame_is_whole(const es_frame *frame) {
    for (int i = 0; i < ES_MAX_MEL_BANDS; i++) {
        if (frame->features[i] != (float)(frame->time_samples % 100003 + i)) return false;
    }
    return true;
}

static es_ring *make_ring(size_t capacity) {
    es_ring *ring = NULL;
    assert_int_equal(es_ring_create(capacity, &ring), ES_DSP_OK);
    assert_non_null(ring);
    return ring;
}

static void capacity_rounds_up_to_a_power_of_two(void **state) {
    (void)state;
    es_ring *ring = make_ring(5);
    assert_int_equal(es_ring_capacity(ring), 8);
    es_ring_destroy(ring);
    ring = make_ring(64);
    assert_int_equal(es_ring_capacity(ring), 64);
    es_ring_destroy(ring);
    assert_int_equal(es_ring_create(0, &ring), ES_DSP_ERR_CONFIG);
    assert_null(ring);
}

static void push_and_pop_in_one_thread(void **state) {
    (void)state;
    es_ring *ring = make_ring(4);
    es_frame frame;
    assert_int_equal(es_ring_pop(ring, &frame), ES_DSP_ERR_EMPTY);
    for (int64_t i = 0; i < 4; i++) {
        fill_frame(&frame, i);
        assert_int_equal(es_ring_push(ring, &frame), ES_DSP_OK);
    }
    assert_int_equal(es_ring_count(ring), 4);
    fill_frame(&frame, 99);
    assert_int_equal(es_ring_push(ring, &frame), ES_DSP_ERR_FULL);
    for (int64_t i = 0; i < 4; i++) {
        assert_int_equal(es_ring_pop(ring, &frame), ES_DSP_OK);
        assert_int_equal(frame.time_samples, i);
        assert_true(frame_is_whole(&frame));
    }
    assert_int_equal(es_ring_pop(ring, &frame), ES_DSP_ERR_EMPTY);
    assert_int_equal(es_ring_dropped(ring), 0);
    es_ring_destroy(ring);
}

/* A consumer that stalls: push_overwrite keeps the newest `capacity` frames. */
static void overwrite_drops_the_oldest(void **state) {
    (void)state;
    es_ring *ring = make_ring(8);
    es_frame frame;
    for (int64_t i = 0; i < 20; i++) {
        fill_frame(&frame, i);
        es_ring_push_overwrite(ring, &frame);
    }
    assert_int_equal(es_ring_dropped(ring), 12);
    assert_int_equal(es_ring_count(ring), 8);
    for (int64_t i = 12; i < 20; i++) {
        assert_int_equal(es_ring_pop(ring, &frame), ES_DSP_OK);
        assert_int_equal(frame.time_samples, i);
        assert_true(frame_is_whole(&frame));
    }
    assert_int_equal(es_ring_pop(ring, &frame), ES_DSP_ERR_EMPTY);
    es_ring_destroy(ring);
}

typedef struct producer_args {
    es_ring *ring;
    int64_t frames;
    enum { PUSH_SPIN, PUSH_OVERWRITE, PUSH_WAIT } mode;
} producer_args;

static void *produce(void *arg) {
    producer_args *args = arg;
    es_frame frame;
    for (int64_t i = 0; i < args->frames; i++) {
        fill_frame(&frame, i);
        switch (args->mode) {
        case PUSH_SPIN:
            while (es_ring_push(args->ring, &frame) != ES_DSP_OK)
                sched_yield();
            break;
        case PUSH_OVERWRITE:
            es_ring_push_overwrite(args->ring, &frame);
            break;
        case PUSH_WAIT:
            if (es_ring_push_wait(args->ring, &frame) != ES_DSP_OK) return NULL;
            break;
        }
    }
    es_ring_close(args->ring);
    return NULL;
}

static void frames_cross_threads_without_loss(void **state) {
    (void)state;
    es_ring *ring = make_ring(256);
    producer_args args = {ring, THREADED_FRAMES, PUSH_SPIN};
    pthread_t producer;
    assert_int_equal(pthread_create(&producer, NULL, produce, &args), 0);
    es_frame frame;
    int64_t expected = 0;
    bool in_order = true, whole = true;
    while (expected < THREADED_FRAMES) {
        if (es_ring_pop(ring, &frame) != ES_DSP_OK) {
            sched_yield();
            continue;
        }
        in_order &= frame.time_samples == expected;
        whole &= frame_is_whole(&frame);
        expected++;
    }
    pthread_join(producer, NULL);
    assert_true(in_order);
    assert_true(whole);
    assert_int_equal(es_ring_pop(ring, &frame), ES_DSP_ERR_EMPTY);
    assert_int_equal(es_ring_dropped(ring), 0);
    printf("%d frames passed between two threads in order\n", THREADED_FRAMES);
    es_ring_destroy(ring);
}

/* A fast overwriting producer and a consumer racing it: what the consumer
 * sees is increasing, never torn, and seen + dropped + left = pushed. */
static void overwrite_races_the_consumer_safely(void **state) {
    (void)state;
    es_ring *ring = make_ring(16);
    const int64_t frames = THREADED_FRAMES / 10;
    producer_args args = {ring, frames, PUSH_OVERWRITE};
    pthread_t producer;
    assert_int_equal(pthread_create(&producer, NULL, produce, &args), 0);
    es_frame frame;
    int64_t seen = 0, last = -1;
    bool increasing = true, whole = true;
    for (;;) {
        const int rc = es_ring_pop_wait(ring, &frame);
        if (rc == ES_DSP_ERR_CLOSED) break;
        assert_int_equal(rc, ES_DSP_OK);
        increasing &= frame.time_samples > last;
        whole &= frame_is_whole(&frame);
        last = frame.time_samples;
        seen++;
    }
    pthread_join(producer, NULL);
    assert_true(increasing);
    assert_true(whole);
    assert_int_equal(last, frames - 1); /* the newest frame is never dropped */
    assert_int_equal((uint64_t)seen + es_ring_dropped(ring), (uint64_t)frames);
    printf("overwrite race: %lld seen, %llu dropped of %lld\n", (long long)seen,
           (unsigned long long)es_ring_dropped(ring), (long long)frames);
    es_ring_destroy(ring);
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* Offline back-pressure: the producer is faster than the consumer, nothing
 * is lost, and close() ends the consumer once the ring is drained. */
static void blocking_wrappers_apply_back_pressure(void **state) {
    (void)state;
    es_ring *ring = make_ring(16);
    const int64_t frames = THREADED_FRAMES / 20;
    producer_args args = {ring, frames, PUSH_WAIT};
    pthread_t producer;
    assert_int_equal(pthread_create(&producer, NULL, produce, &args), 0);
    es_frame frame;
    int64_t expected = 0;
    int rc;
    while ((rc = es_ring_pop_wait(ring, &frame)) == ES_DSP_OK) {
        assert_int_equal(frame.time_samples, expected);
        if (expected % (frames / 10) == 0)
            sleep_ms(5); /* let the producer fill the ring and wait */
        expected++;
    }
    assert_int_equal(rc, ES_DSP_ERR_CLOSED);
    assert_int_equal(expected, frames);
    pthread_join(producer, NULL);
    assert_int_equal(es_ring_dropped(ring), 0);
    /* After close the producer is refused, the consumer keeps hearing CLOSED. */
    fill_frame(&frame, 0);
    assert_int_equal(es_ring_push_wait(ring, &frame), ES_DSP_ERR_CLOSED);
    assert_int_equal(es_ring_pop_wait(ring, &frame), ES_DSP_ERR_CLOSED);
    es_ring_destroy(ring);
}

typedef struct waiting_consumer {
    es_ring *ring;
    clockid_t cpu_clock;
    int results[3];
    int64_t times[3];
} waiting_consumer;

static void *consume_three(void *arg) {
    waiting_consumer *consumer = arg;
    for (int i = 0; i < 3; i++) {
        es_frame frame = {0};
        consumer->results[i] = es_ring_pop_wait(consumer->ring, &frame);
        consumer->times[i] = frame.time_samples;
    }
    return NULL;
}

static double cpu_seconds(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A consumer waiting on an empty ring sleeps (uses next to no CPU), wakes
 * for a frame, and wakes with CLOSED when the producer closes. */
static void waiting_consumer_sleeps_and_close_wakes_it(void **state) {
    (void)state;
    waiting_consumer consumer = {.ring = make_ring(4)};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, consume_three, &consumer), 0);
    assert_int_equal(pthread_getcpuclockid(thread, &consumer.cpu_clock), 0);
    const double cpu_before = cpu_seconds(consumer.cpu_clock);
    sleep_ms(500);
    const double cpu_waiting = cpu_seconds(consumer.cpu_clock) - cpu_before;
    es_frame frame;
    fill_frame(&frame, 42);
    assert_int_equal(es_ring_push_wait(consumer.ring, &frame), ES_DSP_OK);
    sleep_ms(50);
    es_ring_close(consumer.ring);
    pthread_join(thread, NULL);
    printf("consumer used %.1f ms of CPU in 500 ms of waiting\n", 1e3 * cpu_waiting);
    /* A spinning consumer would burn most of the 500 ms. */
    assert_true(cpu_waiting < 0.05);
    assert_int_equal(consumer.results[0], ES_DSP_OK);
    assert_int_equal(consumer.times[0], 42);
    assert_int_equal(consumer.results[1], ES_DSP_ERR_CLOSED);
    assert_int_equal(consumer.results[2], ES_DSP_ERR_CLOSED);
    es_ring_destroy(consumer.ring);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(capacity_rounds_up_to_a_power_of_two),
        cmocka_unit_test(push_and_pop_in_one_thread),
        cmocka_unit_test(overwrite_drops_the_oldest),
        cmocka_unit_test(frames_cross_threads_without_loss),
        cmocka_unit_test(overwrite_races_the_consumer_safely),
        cmocka_unit_test(blocking_wrappers_apply_back_pressure),
        cmocka_unit_test(waiting_consumer_sleeps_and_close_wakes_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
