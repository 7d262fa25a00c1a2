/*
 * LD_PRELOAD shim for `make bench`'s hot-path count: counts the process's
 * heap allocations (malloc, calloc, realloc, posix_memalign) and writes
 * "allocs PID N" to stderr (nginx's error log in a worker) on SIGRTMIN+3,
 * a signal nginx does not use.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static unsigned long allocs;

void *malloc(size_t n) { allocs++; return __libc_malloc(n); }
void *calloc(size_t m, size_t n) { allocs++; return __libc_calloc(m, n); }
void *realloc(void *p, size_t n) { allocs++; return __libc_realloc(p, n); }

int posix_memalign(void **p, size_t align, size_t n)
{
    allocs++;
    *p = __libc_memalign(align, n);
    return *p ? 0 : 12;  /* ENOMEM */
}

static void report(int sig)
{
    char buf[64];
    int len = snprintf(buf, sizeof buf, "allocs %d %lu\n", (int) getpid(),
                       allocs);
    (void) sig;
    (void) !write(2, buf, (size_t) len);
}

__attribute__((constructor)) static void install(void)
{
    signal(SIGRTMIN + 3, report);
}
