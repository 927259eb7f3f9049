/* Does where the data lie change the time of one AES-128-GCM open of 1,404 bytes (an ESP packet of 1400 B)?
 * Issue 14: SATable open ran 2-9 % over the raw call in wall clock at +0.4 % of the instructions. The answer was the
 * stack: mbedTLS's own open is about 8 % slower in two of the four 16-byte stack phases mod 64 (`stack 16` with
 * GCM_PLACEMENT_MBEDTLS=1), which the shim now avoids by running every GCM step on one fixed placement.
 * One variable moves over a 4 KiB period (the others stay put) and is timed pairwise against the reference
 * layout, as Benchmarks/Sources/BenchSupport/Paired.swift does: batches of 32 opens alternate, and the median
 * over 31 rounds of moved/reference time is printed as a percentage. Opens walk a ring of 32 packets 2,048 bytes
 * apart, payload at offset 16 of each, like the ESPOverhead fixtures. See BENCHMARKS.md for the command.
 *   gcm-placement ctx|in|out|stack|caller [step] [from] [to]
 * caller: the same call from wrappers whose code starts K bytes later (K = step index), data fixed.
 * Opens go through hs_aead_open unless GCM_PLACEMENT_MBEDTLS=1: then mbedtls_gcm_auth_decrypt is called directly,
 * without the shim's fixed stack placement for its GCM steps (found with `stack 16`: BENCHMARKS.md). */
#include "handset_shim.h"
#include <alloca.h>
#include <mbedtls/gcm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <x86intrin.h>

enum { LEN = 1404, BATCH = 32, ROUNDS = 31, STRIDE = 2048, PAGE = 4096 };
static uint8_t *arena, nonce_aad[32], tag[16];
static int direct; /* call mbedTLS itself; the context at arena + ctx is then an mbedtls_gcm_context */

typedef struct { size_t ctx, in, out, stack; int caller; } layout;
typedef int (*open_fn)(void *, const uint8_t *, uint8_t *);

#define WRAP(K)                                                                                           \
    __attribute__((noinline, aligned(256))) static int wrap##K(void *c, const uint8_t *in, uint8_t *out) { \
        __asm__ volatile(".rept " #K "\n nop\n .endr");                                                    \
        if (direct) return mbedtls_gcm_auth_decrypt(c, LEN, nonce_aad, 12, nonce_aad + 12, 8, tag, 16, in, out); \
        return hs_aead_open(c, nonce_aad, nonce_aad + 12, 8, in, out, LEN, tag, 16);                       \
    }
WRAP(0) WRAP(1) WRAP(2) WRAP(3) WRAP(4) WRAP(5) WRAP(6) WRAP(7) WRAP(8) WRAP(12) WRAP(16) WRAP(24) WRAP(32)
WRAP(48) WRAP(64) WRAP(96) WRAP(128) WRAP(192)
static const open_fn wraps[] = { wrap0, wrap1, wrap2, wrap3, wrap4, wrap5, wrap6, wrap7, wrap8, wrap12, wrap16,
                                 wrap24, wrap32, wrap48, wrap64, wrap96, wrap128, wrap192 };
static const int wrapBytes[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192 };
enum { NWRAPS = sizeof wraps / sizeof wraps[0] };

__attribute__((noinline)) static uint64_t batch(layout l) {
    volatile uint8_t *pad = alloca(l.stack + 1);  /* moves the stack of everything called below */
    pad[0] = 0;
    uint64_t t0 = __rdtsc();
    for (int k = 0; k < BATCH; k++) {
        if (wraps[l.caller](arena + l.ctx, arena + l.in + (size_t)k * STRIDE, arena + l.out) != HS_OK) {
            fputs("gcm-placement: open failed\n", stderr);
            exit(1);
        }
    }
    return __rdtsc() - t0;
}

/* Keys the context and seals the ring at the layout's places (same key, nonce, plaintext: same tag). */
static void prepare(layout l) {
    uint8_t key[16];
    for (int i = 0; i < 16; i++) key[i] = (uint8_t)(0x40 + i);
    if (hs_aead_setkey(arena + l.ctx, HS_AEAD_AES_GCM, key, 16) != HS_OK) exit(1);
    for (int k = 0; k < BATCH; k++) {
        uint8_t *p = arena + l.in + (size_t)k * STRIDE;
        for (int i = 0; i < LEN; i++) p[i] = (uint8_t)(i * 7);
        hs_aead_seal(arena + l.ctx, nonce_aad, nonce_aad + 12, 8, p, p, LEN, tag, 16);
    }
    if (direct) {
        hs_aead_wipe(arena + l.ctx);
        mbedtls_gcm_context *g = (mbedtls_gcm_context *)(arena + l.ctx);
        mbedtls_gcm_init(g);
        if (mbedtls_gcm_setkey(g, MBEDTLS_CIPHER_ID_AES, key, 128) != 0) exit(1);
    }
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percent_over(layout ref, layout l) {
    double r[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) {
        uint64_t a, b;
        if (i & 1) { b = batch(l); a = batch(ref); } else { a = batch(ref); b = batch(l); }
        r[i] = (double)b / (double)a;
    }
    qsort(r, ROUNDS, sizeof r[0], by_value);
    return (r[ROUNDS / 2] - 1) * 100;
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "out";
    size_t step = argc > 2 ? strtoul(argv[2], 0, 0) : 64, from = argc > 3 ? strtoul(argv[3], 0, 0) : 0;
    size_t to = argc > 4 ? strtoul(argv[4], 0, 0) : (strcmp(what, "caller") ? PAGE : NWRAPS);
    const char *m = getenv("GCM_PLACEMENT_MBEDTLS");
    direct = m && !strcmp(m, "1");
    if (posix_memalign((void **)&arena, PAGE, 1 << 20)) return 1;
    memset(arena, 0, 1 << 20);
    /* Regions 64 KiB apart: ctx, ring, out, and one spare region per variable that moves. */
    const layout ref = { 0, 16 * PAGE + 16, 48 * PAGE, 0, 0 };
    prepare(ref);
    printf("%s: percent over the reference layout (ctx page offset 0, payload 16, out 0, stack +0)\n", what);
    for (size_t x = from; x < to; x += strcmp(what, "caller") ? step : 1) {
        layout l = ref;
        if (!strcmp(what, "ctx")) l.ctx = 64 * PAGE + x;
        else if (!strcmp(what, "in")) l.in = 80 * PAGE + x;
        else if (!strcmp(what, "out")) l.out = 112 * PAGE + x;
        else if (!strcmp(what, "stack")) l.stack = x;
        else if (!strcmp(what, "caller")) l.caller = (int)x;
        else { fprintf(stderr, "usage: gcm-placement ctx|in|out|stack|caller [step] [from] [to]\n"); return 2; }
        if (l.ctx != ref.ctx || l.in != ref.in) prepare(l);
        printf(" %zu:%+.1f", strcmp(what, "caller") ? x : (size_t)wrapBytes[x], percent_over(ref, l));
        fflush(stdout);
    }
    printf("\n");
    return 0;
}
