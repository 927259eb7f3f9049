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
    struct { const void *pc; uint64_t n; } sites[SITES];
    uint64_t unattributed;
} heap;

/* Sites are kept only after start-up: that is where an allocation needs explaining. */
static void note(const void *pc) {
    if (!heap.done) { heap.before++; return; }
    heap.after++;
    for (int i = 0; i < SITES; i++) {
        if (heap.sites[i].pc == pc) { heap.sites[i].n++; return; }
        if (heap.sites[i].pc == 0) { heap.sites[i].pc = pc; heap.sites[i].n = 1; return; }
    }
    heap.unattributed++;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
int __real_posix_memalign(void **p, size_t align, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
void __real_free(void *p);

void *__wrap_malloc(size_t n) { note(__builtin_return_address(0)); return __real_malloc(n); }
void *__wrap_calloc(size_t k, size_t n) { note(__builtin_return_address(0)); return __real_calloc(k, n); }
void *__wrap_realloc(void *p, size_t n) { note(__builtin_return_address(0)); return __real_realloc(p, n); }
int __wrap_posix_memalign(void **p, size_t align, size_t n) {
    note(__builtin_return_address(0));
    return __real_posix_memalign(p, align, n);
}
void *__wrap_aligned_alloc(size_t align, size_t n) {
    note(__builtin_return_address(0));
    return __real_aligned_alloc(align, n);
}
void __wrap_free(void *p) { if (p) heap.frees++; __real_free(p); }

int hs_heap_counting(void) { return 1; }
void hs_heap_mark_startup_done(void) { heap.done = 1; }
uint64_t hs_heap_startup_allocations(void) { return heap.before; }
uint64_t hs_heap_later_allocations(void) { return heap.after; }

void hs_heap_report(void) {
    printf("heap: %llu allocations during start-up, %llu after%s (%llu frees)\n", (unsigned long long)heap.before,
           (unsigned long long)heap.after, heap.done ? "" : " (start-up never finished)", (unsigned long long)heap.frees);
    /* The offset into the object is what addr2line wants (PIE: the link-time address). */
    for (int i = 0; i < SITES && heap.sites[i].pc; i++) {
        Dl_info info = {0};
        const char *obj = "?", *sym = "?";
        uintptr_t off = (uintptr_t)heap.sites[i].pc;
        if (dladdr(heap.sites[i].pc, &info) && info.dli_fbase) {
            off -= (uintptr_t)info.dli_fbase;
            if (info.dli_fname) obj = info.dli_fname;
            if (info.dli_sname) sym = info.dli_sname;
        }
        printf("heap: site %s+0x%lx (%s): %llu\n", obj, (unsigned long)off, sym, (unsigned long long)heap.sites[i].n);
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
