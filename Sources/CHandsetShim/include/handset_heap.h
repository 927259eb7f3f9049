/* Heap accounting for the firmware. Built with -DHS_COUNT_ALLOCS and linked with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=posix_memalign,--wrap=aligned_alloc,--wrap=free
 * (scripts/build-embedded ARCH --count-allocs), every allocation the firmware and its static libraries make is counted,
 * split at the start-up mark. In any other build these are no-ops and hs_heap_counting() is 0. */
#ifndef HANDSET_HEAP_H
#define HANDSET_HEAP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when this binary counts allocations. */
int hs_heap_counting(void);
/* Ends start-up: later allocations count as "after" and are attributed to their call site. Idempotent. */
void hs_heap_mark_startup_done(void);
uint64_t hs_heap_startup_allocations(void);
uint64_t hs_heap_later_allocations(void);
/* Prints "heap: N allocations during start-up, M after" and, for M > 0, one line per call site. */
void hs_heap_report(void);

#ifdef __cplusplus
}
#endif
#endif
