/*
 * Heap-call counting windows (alloc_count.h).
 */
#include "alloc_count.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>

/* volatile: the compiler assumes malloc reads no user memory and would drop
 * the flag's stores around a bare malloc call. */
static _Thread_local volatile int window_open;
static atomic_long allocations;
static atomic_long frees;

static void count_allocation(void) {
    if (window_open) atomic_fetch_add(&allocations, 1);
}

static void count_free(void) {
    if (window_open) atomic_fetch_add(&frees, 1);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));

static void malloc_hook(const volatile void *pointer, size_t size) {
    (void)pointer;
    (void)size;
    count_allocation();
}

static void free_hook(const volatile void *pointer) {
    (void)pointer;
    count_free();
}

void alloc_count_install(void) {
    __sanitizer_install_malloc_and_free_hooks(malloc_hook, free_hook);
}
#else
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void *pointer);

void *malloc(size_t size) {
    count_allocation();
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    count_allocation();
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    count_allocation();
    return __libc_realloc(pointer, size);
}

void *memalign(size_t alignment, size_t size) {
    count_allocation();
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    count_allocation();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    count_allocation();
    *out = __libc_memalign(alignment, size);
    return *out ? 0 : ENOMEM;
}

void free(void *pointer) {
    if (pointer) count_free();
    __libc_free(pointer);
}

void alloc_count_install(void) {}
#endif

void alloc_count_open(void) {
    window_open = 1;
}

void alloc_count_close(void) {
    window_open = 0;
}

void alloc_count_reset(void) {
    atomic_store(&allocations, 0);
    atomic_store(&frees, 0);
}

long alloc_count_allocations(void) {
    return atomic_load(&allocations);
}

long alloc_count_frees(void) {
    return atomic_load(&frees);
}
