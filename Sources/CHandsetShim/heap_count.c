/* Allocation counting through the linker's --wrap: references to malloc & co. in the firmware's objects and static
 * libraries are bound to __wrap_* here, which count and call the real allocator (__real_*). Process-wide counters
 * are the point of this file, so it is the one place in the shim with global state; the firmware is one thread. */
#define _GNU_SOURCE
#include "handset_shim.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef HS_COUNT_ALLOCS
#include <dlfcn.h>

enum { SITES = 32 };
static struct {
    int done;
    uint64_t before, after, frees;
    struct { const void *pc, *caller; uint64_t n; } sites[SITES];
    uint64_t unattributed;
} heap;

/* The caller's caller too where the frame chain is reliable (AArch64 keeps frame records): the allocator's direct
 * caller is mostly swift_allocObject, which says nothing. */
#if defined(__aarch64__)
#pragma GCC diagnostic ignored "-Wframe-address"
#define CALLER() __builtin_return_address(1)
#else
#define CALLER() ((void *)0)
#endif

/* Sites are kept only after start-up: that is where an allocation needs explaining. */
__attribute__((noinline)) static void note(const void *pc, const void *caller) {
    if (!heap.done) { heap.before++; return; }
    heap.after++;
    for (int i = 0; i < SITES; i++) {
        if (heap.sites[i].pc == pc && heap.sites[i].caller == caller) { heap.sites[i].n++; return; }
        if (heap.sites[i].pc == 0) {
            heap.sites[i].pc = pc;
            heap.sites[i].caller = caller;
            heap.sites[i].n = 1;
            return;
        }
    }
    heap.unattributed++;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
int __real_posix_memalign(void **p, size_t align, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
void __real_free(void *p);

void *__wrap_malloc(size_t n) { note(__builtin_return_address(0), CALLER()); return __real_malloc(n); }
void *__wrap_calloc(size_t k, size_t n) { note(__builtin_return_address(0), CALLER()); return __real_calloc(k, n); }
void *__wrap_realloc(void *p, size_t n) { note(__builtin_return_address(0), CALLER()); return __real_realloc(p, n); }
int __wrap_posix_memalign(void **p, size_t align, size_t n) {
    note(__builtin_return_address(0), CALLER());
    return __real_posix_memalign(p, align, n);
}
void *__wrap_aligned_alloc(size_t align, size_t n) {
    note(__builtin_return_address(0), CALLER());
    return __real_aligned_alloc(align, n);
}
void __wrap_free(void *p) { if (p) heap.frees++; __real_free(p); }

int hs_heap_counting(void) { return 1; }
void hs_heap_mark_startup_done(void) { heap.done = 1; }
uint64_t hs_heap_startup_allocations(void) { return heap.before; }
uint64_t hs_heap_later_allocations(void) { return heap.after; }

static void print_address(const void *pc) {
    Dl_info info = {0};
    uintptr_t off = (uintptr_t)pc;
    const char *obj = "?";
    if (dladdr(pc, &info) && info.dli_fbase) {
        off -= (uintptr_t)info.dli_fbase;
        if (info.dli_fname) obj = info.dli_fname;
    }
    printf("%s+0x%lx", obj, (unsigned long)off);
}

void hs_heap_report(void) {
    printf("heap: %llu allocations during start-up, %llu after%s (%llu frees)\n", (unsigned long long)heap.before,
           (unsigned long long)heap.after, heap.done ? "" : " (start-up never finished)", (unsigned long long)heap.frees);
    /* The offset into the object is what addr2line wants (PIE: the link-time address). */
    for (int i = 0; i < SITES && heap.sites[i].pc; i++) {
        printf("heap: site ");
        print_address(heap.sites[i].pc);
        if (heap.sites[i].caller) {
            printf(" from ");
            print_address(heap.sites[i].caller);
        }
        printf(": %llu\n", (unsigned long long)heap.sites[i].n);
    }
    if (heap.unattributed) printf("heap: %llu more at other sites\n", (unsigned long long)heap.unattributed);
    fflush(stdout);
}
#else
int hs_heap_counting(void) { return 0; }
void hs_heap_mark_startup_done(void) {}
uint64_t hs_heap_startup_allocations(void) { return 0; }
uint64_t hs_heap_later_allocations(void) { return 0; }
void hs_heap_report(void) {}
#endif
