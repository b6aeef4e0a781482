/*
 * Lock-free single-producer / single-consumer ring of es_frame.
 *
 * Indices are 64-bit counters that only grow (they never wrap in practice);
 * the slot of index i is i & mask. The producer owns write_index, the consumer
 * owns read_index -- except that es_ring_push_overwrite, finding the ring
 * full, moves read_index forward by one to drop the oldest frame. Both sides
 * therefore advance read_index with a compare-and-swap.
 *
 * Why the consumer's copy is safe although the producer may overwrite the
 * slot while it is being read: the consumer copies slot r first and only then
 * claims it with CAS(read_index, r -> r + 1). The producer writes into slot r's
 * storage for a newer frame only after its own CAS has moved read_index past
 * r. So if the consumer's CAS succeeds, no producer CAS came before it, the
 * producer's later slot stores happen after the consumer's loads (the
 * consumer's CAS releases, the producer's CAS acquires), and the copy is
 * whole. If the CAS fails, the frame was dropped under it and the copy,
 * possibly torn, is thrown away. Slot words are read and written with relaxed
 * atomic loads and stores, so that torn-but-discarded copy is not a data race
 * in the C11 model (and ThreadSanitizer agrees); on x86-64 and AArch64 these
 * are plain moves.
 *
 * Blocking wrappers sleep on POSIX semaphores. A sleeper raises its
 * "waiting" flag and re-checks the ring before sleeping; the other side
 * publishes its index and then reads the flag. All four accesses are seq_cst,
 * so at least one side sees the other (the Dekker pattern) and no wake-up is
 * lost. The fast paths only pay a flag load; sem_post is non-blocking (a
 * futex wake at most) and async-signal-safe, so push stays usable from an
 * audio callback even when a consumer sleeps in es_ring_pop_wait.
 */
#include "dsp.h"

#include <errno.h>
#include <semaphore.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define ES_CACHE_LINE 64
#define ES_FRAME_WORDS (sizeof(es_frame) / sizeof(uint64_t))
_Static_assert(sizeof(es_frame) % sizeof(uint64_t) == 0, "es_frame must be whole 64-bit words");

#define ES_RING_MAX_CAPACITY ((size_t)1 << 24)

typedef struct ring_slot {
    _Atomic uint64_t words[ES_FRAME_WORDS];
} ring_slot;

struct es_ring {
    alignas(ES_CACHE_LINE) _Atomic uint64_t write_index;
    alignas(ES_CACHE_LINE) _Atomic uint64_t read_index;
    alignas(ES_CACHE_LINE) _Atomic uint64_t dropped;
    _Atomic int closed;
    _Atomic int consumer_waiting;
    _Atomic int producer_waiting;
    sem_t frame_available;
    sem_t space_available;
    alignas(ES_CACHE_LINE) size_t capacity; /* read-only after create */
    uint64_t index_mask;
    ring_slot *slots;
};

int es_ring_create(size_t capacity, es_ring **out) {
    *out = NULL;
    if (capacity == 0 || capacity > ES_RING_MAX_CAPACITY) return ES_DSP_ERR_CONFIG;
    size_t rounded = 1;
    while (rounded < capacity)
        rounded <<= 1;

    es_ring *ring = aligned_alloc(ES_CACHE_LINE, sizeof(es_ring));
    if (!ring) return ES_DSP_ERR_NOMEM;
    memset(ring, 0, sizeof(*ring));
    ring->slots = calloc(rounded, sizeof(ring_slot));
    if (!ring->slots) {
        free(ring);
        return ES_DSP_ERR_NOMEM;
    }
    ring->capacity = rounded;
    ring->index_mask = rounded - 1;
    atomic_init(&ring->write_index, 0);
    atomic_init(&ring->read_index, 0);
    atomic_init(&ring->dropped, 0);
    atomic_init(&ring->closed, 0);
    atomic_init(&ring->consumer_waiting, 0);
    atomic_init(&ring->producer_waiting, 0);
    if (sem_init(&ring->frame_available, 0, 0) != 0) {
        free(ring->slots);
        free(ring);
        return ES_DSP_ERR_NOMEM;
    }
    if (sem_init(&ring->space_available, 0, 0) != 0) {
        sem_destroy(&ring->frame_available);
        free(ring->slots);
        free(ring);
        return ES_DSP_ERR_NOMEM;
    }
    *out = ring;
    return ES_DSP_OK;
}

void es_ring_destroy(es_ring *ring) {
    if (!ring) return;
    sem_destroy(&ring->frame_available);
    sem_destroy(&ring->space_available);
    free(ring->slots);
    free(ring);
}

static void store_slot(ring_slot *slot, const es_frame *frame) {
    uint64_t words[ES_FRAME_WORDS];
    memcpy(words, frame, sizeof(words));
    for (size_t i = 0; i < ES_FRAME_WORDS; i++) {
        atomic_store_explicit(&slot->words[i], words[i], memory_order_relaxed);
    }
}

static void load_slot(ring_slot *slot, uint64_t words[ES_FRAME_WORDS]) {
    for (size_t i = 0; i < ES_FRAME_WORDS; i++) {
        words[i] = atomic_load_explicit(&slot->words[i], memory_order_relaxed);
    }
}

/* The waking half of the Dekker pattern described at the top; runs after the
 * caller's seq_cst index update. */
static void wake_if_waiting(_Atomic int *waiting, sem_t *sem) {
    if (atomic_load_explicit(waiting, memory_order_seq_cst) &&
        atomic_exchange_explicit(waiting, 0, memory_order_seq_cst)) {
        sem_post(sem);
    }
}

static void publish_frame(es_ring *ring, uint64_t write_index, const es_frame *frame) {
    store_slot(&ring->slots[write_index & ring->index_mask], frame);
    atomic_store_explicit(&ring->write_index, write_index + 1, memory_order_seq_cst);
    wake_if_waiting(&ring->consumer_waiting, &ring->frame_available);
}

int es_ring_push(es_ring *ring, const es_frame *frame) {
    const uint64_t write_index = atomic_load_explicit(&ring->write_index, memory_order_relaxed);
    const uint64_t read_index = atomic_load_explicit(&ring->read_index, memory_order_acquire);
    if (write_index - read_index >= ring->capacity) return ES_DSP_ERR_FULL;
    publish_frame(ring, write_index, frame);
    return ES_DSP_OK;
}

void es_ring_push_overwrite(es_ring *ring, const es_frame *frame) {
    const uint64_t write_index = atomic_load_explicit(&ring->write_index, memory_order_relaxed);
    uint64_t read_index = atomic_load_explicit(&ring->read_index, memory_order_acquire);
    while (write_index - read_index >= ring->capacity) {
        /* On failure the consumer has just taken a frame (read_index is
         * reloaded), so there may be room now: check again. */
        if (atomic_compare_exchange_strong_explicit(&ring->read_index, &read_index, read_index + 1,
                                                    memory_order_seq_cst, memory_order_acquire)) {
            atomic_fetch_add_explicit(&ring->dropped, 1, memory_order_relaxed);
            break;
        }
    }
    publish_frame(ring, write_index, frame);
}

int es_ring_pop(es_ring *ring, es_frame *frame) {
    uint64_t read_index = atomic_load_explicit(&ring->read_index, memory_order_acquire);
    for (;;) {
        const uint64_t write_index = atomic_load_explicit(&ring->write_index, memory_order_acquire);
        if (read_index == write_index) return ES_DSP_ERR_EMPTY;
        uint64_t words[ES_FRAME_WORDS];
        load_slot(&ring->slots[read_index & ring->index_mask], words);
        if (atomic_compare_exchange_strong_explicit(&ring->read_index, &read_index, read_index + 1,
                                                    memory_order_seq_cst, memory_order_acquire)) {
            memcpy(frame, words, sizeof(*frame));
            wake_if_waiting(&ring->producer_waiting, &ring->space_available);
            return ES_DSP_OK;
        }
        /* The producer dropped that frame while we copied it: the copy may be
         * torn. read_index now holds the new oldest frame; try that. */
    }
}

static void sleep_on(sem_t *sem) {
    while (sem_wait(sem) != 0 && errno == EINTR) {
    }
}

static bool ring_has_frames(es_ring *ring) {
    const uint64_t read_index = atomic_load_explicit(&ring->read_index, memory_order_seq_cst);
    return atomic_load_explicit(&ring->write_index, memory_order_seq_cst) != read_index;
}

static bool ring_has_space(es_ring *ring) {
    const uint64_t write_index = atomic_load_explicit(&ring->write_index, memory_order_seq_cst);
    return write_index - atomic_load_explicit(&ring->read_index, memory_order_seq_cst) <
           ring->capacity;
}

static bool ring_is_closed(es_ring *ring) {
    return atomic_load_explicit(&ring->closed, memory_order_seq_cst) != 0;
}

int es_ring_push_wait(es_ring *ring, const es_frame *frame) {
    for (;;) {
        if (ring_is_closed(ring)) return ES_DSP_ERR_CLOSED;
        if (es_ring_push(ring, frame) == ES_DSP_OK) return ES_DSP_OK;
        atomic_store_explicit(&ring->producer_waiting, 1, memory_order_seq_cst);
        if (ring_has_space(ring)) {
            /* A frame left between our push and raising the flag. If the
             * consumer already took the flag, its sem_post only makes a
             * later sleep return early; the loop absorbs that. */
            atomic_store_explicit(&ring->producer_waiting, 0, memory_order_seq_cst);
            continue;
        }
        sleep_on(&ring->space_available);
    }
}

int es_ring_pop_wait(es_ring *ring, es_frame *frame) {
    for (;;) {
        if (es_ring_pop(ring, frame) == ES_DSP_OK) return ES_DSP_OK;
        if (ring_is_closed(ring)) {
            /* Everything pushed before close is visible now. */
            return es_ring_pop(ring, frame) == ES_DSP_OK ? ES_DSP_OK : ES_DSP_ERR_CLOSED;
        }
        atomic_store_explicit(&ring->consumer_waiting, 1, memory_order_seq_cst);
        if (ring_has_frames(ring) || ring_is_closed(ring)) {
            atomic_store_explicit(&ring->consumer_waiting, 0, memory_order_seq_cst);
            continue;
        }
        sleep_on(&ring->frame_available);
    }
}

void es_ring_close(es_ring *ring) {
    atomic_store_explicit(&ring->closed, 1, memory_order_seq_cst);
    wake_if_waiting(&ring->consumer_waiting, &ring->frame_available);
}

size_t es_ring_capacity(const es_ring *ring) {
    return ring->capacity;
}

size_t es_ring_count(const es_ring *ring) {
    /* read_index first: write_index only grows, so the difference is never
     * negative. */
    const uint64_t read_index = atomic_load_explicit(&ring->read_index, memory_order_acquire);
    const uint64_t write_index = atomic_load_explicit(&ring->write_index, memory_order_acquire);
    return (size_t)(write_index - read_index);
}

uint64_t es_ring_dropped(const es_ring *ring) {
    return atomic_load_explicit(&ring->dropped, memory_order_relaxed);
}
