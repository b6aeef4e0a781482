/*
 * Counting heap calls made inside a window on one thread: the check behind
 * "[rt] calls never allocate" (capture callback, detector steps).
 *
 * A thread opens a window, runs the code under test and closes it; every
 * malloc / calloc / realloc / memalign / aligned_alloc / posix_memalign and
 * every free made by that thread in between is counted, whoever calls it
 * (shared libraries too). In plain builds this object replaces malloc and
 * friends (an executable's definitions win over glibc's for every library);
 * under AddressSanitizer or ThreadSanitizer, which own malloc, it installs
 * the sanitizer allocator's hooks instead, so the check runs in every build.
 */
#ifndef ES_ALLOC_COUNT_H
#define ES_ALLOC_COUNT_H

/* Once per process, before the first window (no-op in plain builds). */
void alloc_count_install(void);

/* The calling thread's window. */
void alloc_count_open(void);
void alloc_count_close(void);

/* Totals over all windows since the last reset (any thread may read). */
void alloc_count_reset(void);
long alloc_count_allocations(void);
long alloc_count_frees(void);

#endif
