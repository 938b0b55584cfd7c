// LD_PRELOAD allocation counter for bench/throughput.sh: counts malloc, calloc, realloc,
// aligned allocations and frees of the process, and every 100 ms writes
// "<allocations> <frees>" to $MALLOC_COUNT_FILE (atomically, through a rename), so a benchmark
// can take the difference over a run and divide it by the packets carried.
// Build: cc -O2 -shared -fPIC -o malloc-count.so malloc-count.c -ldl -lpthread
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static _Atomic unsigned long allocations, frees;
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

void *malloc(size_t n) { atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed); return __libc_malloc(n); }
void *calloc(size_t c, size_t n) { atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed); return __libc_calloc(c, n); }
void *realloc(void *p, size_t n) { atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed); return __libc_realloc(p, n); }
void free(void *p) { if (p) atomic_fetch_add_explicit(&frees, 1, memory_order_relaxed); __libc_free(p); }
void *memalign(size_t a, size_t n) { atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { return memalign(a, n); }
int posix_memalign(void **out, size_t a, size_t n) {
    void *p = memalign(a, n);
    if (!p) return 12;  // ENOMEM
    *out = p;
    return 0;
}

static void *writer(void *unused) {
    (void)unused;
    const char *path = getenv("MALLOC_COUNT_FILE");
    if (!path) return NULL;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    struct timespec pause = {0, 100 * 1000 * 1000};
    for (;;) {
        FILE *f = fopen(tmp, "w");
        if (f) {
            fprintf(f, "%lu %lu\n", atomic_load(&allocations), atomic_load(&frees));
            fclose(f);
            rename(tmp, path);
        }
        nanosleep(&pause, NULL);
    }
    return NULL;
}

__attribute__((constructor)) static void start(void) {
    pthread_t t;
    if (getenv("MALLOC_COUNT_FILE")) pthread_create(&t, NULL, writer, NULL);
}
