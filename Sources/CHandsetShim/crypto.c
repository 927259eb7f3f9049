/* Symmetric primitives over mbedTLS 2.28. No key material is ever logged or copied out of caller storage. */
#include "handset_shim.h"

#include <mbedtls/aes.h>
#include <mbedtls/chachapoly.h>
#include <mbedtls/cipher.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/gcm.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>
#include <stdalign.h>
#include <string.h>
#include <sys/random.h>
#include <errno.h>

#if MBEDTLS_VERSION_NUMBER < 0x021C0000 || MBEDTLS_VERSION_NUMBER >= 0x03000000
#error "hs_aead keys GCM in place against mbedTLS 2.28's public context layout; check gcm_key_in_place on other versions"
#endif

/* The AES key schedule sits beside the GCM context and the GCM cipher context points at it, so keying never touches
 * the heap (mbedtls_gcm_setkey frees and callocs an AES context on every call). Hence a keyed context must not move,
 * and must never reach mbedtls_gcm_free, which would free() the embedded schedule: wiping is zeroizing. */
typedef struct {
    int alg; /* 0 = empty */
    union {
        struct {
            mbedtls_gcm_context ctx;
            mbedtls_aes_context aes;
        } gcm;
        mbedtls_chachapoly_context chachapoly;
    } u;
} hs_aead_ctx;

size_t hs_aead_ctx_size(void) { return sizeof(hs_aead_ctx); }
size_t hs_aead_ctx_align(void) { return alignof(hs_aead_ctx); }

void hs_aead_wipe(void *ctx) {
    /* Both contexts hold only key material and pointers into themselves: nothing to free. */
    mbedtls_platform_zeroize(ctx, sizeof(hs_aead_ctx));
}

/* What mbedtls_gcm_setkey does, minus the allocation: wire an ECB cipher context to the embedded AES context, key it,
 * then derive the hash key H = E_K(0^128) and Shoup's 4-bit table HH/HL[i] = i * H (i as a field element, [MGV]);
 * the CLMUL path reads only entry 8, which is H itself. */
static int gcm_key_in_place(hs_aead_ctx *c, const uint8_t *key, size_t key_len) {
    const mbedtls_cipher_info_t *info =
        mbedtls_cipher_info_from_values(MBEDTLS_CIPHER_ID_AES, (int)(key_len * 8), MBEDTLS_MODE_ECB);
    if (info == NULL) return HS_ERR_PARAM;
    mbedtls_gcm_context *g = &c->u.gcm.ctx;
    mbedtls_gcm_init(g);
    mbedtls_aes_init(&c->u.gcm.aes);
    g->cipher_ctx.cipher_info = info;
    g->cipher_ctx.cipher_ctx = &c->u.gcm.aes;
    if (mbedtls_cipher_setkey(&g->cipher_ctx, key, (int)(key_len * 8), MBEDTLS_ENCRYPT) != 0) return HS_ERR_CRYPTO;

    uint8_t h[16] = {0};
    size_t olen = 0;
    if (mbedtls_cipher_update(&g->cipher_ctx, h, 16, h, &olen) != 0) return HS_ERR_CRYPTO;
    uint64_t vh = 0, vl = 0;
    for (int k = 0; k < 8; k++) {
        vh = vh << 8 | h[k];
        vl = vl << 8 | h[8 + k];
    }
    mbedtls_platform_zeroize(h, sizeof h);
    g->HH[8] = vh;
    g->HL[8] = vl;
    g->HH[0] = g->HL[0] = 0;
    /* 4, 2, 1: each halving of the index is one multiplication by x, reduced by the GCM polynomial (0xE1 << 120). */
    for (int i = 4; i > 0; i >>= 1) {
        uint64_t reduce = (vl & 1) ? (uint64_t)0xE1000000u << 32 : 0;
        vl = vh << 63 | vl >> 1;
        vh = (vh >> 1) ^ reduce;
        g->HH[i] = vh;
        g->HL[i] = vl;
    }
    /* The rest by linearity: (i + j) * H = i * H ^ j * H for j < i, i a power of two. */
    for (int i = 2; i <= 8; i *= 2) {
        for (int j = 1; j < i; j++) {
            g->HH[i + j] = g->HH[i] ^ g->HH[j];
            g->HL[i + j] = g->HL[i] ^ g->HL[j];
        }
    }
    return HS_OK;
}

int hs_aead_setkey(void *ctx, int alg, const uint8_t *key, size_t key_len) {
    hs_aead_ctx *c = ctx;
    hs_aead_wipe(c);
    int rc = HS_ERR_PARAM;
    switch (alg) {
    case HS_AEAD_AES_GCM:
        if (key_len == 16 || key_len == 32) rc = gcm_key_in_place(c, key, key_len);
        break;
    case HS_AEAD_CHACHA20_POLY1305:
        if (key_len != 32) break;
        mbedtls_chachapoly_init(&c->u.chachapoly);
        rc = mbedtls_chachapoly_setkey(&c->u.chachapoly, key) == 0 ? HS_OK : HS_ERR_CRYPTO;
        break;
    default:
        break;
    }
    if (rc != HS_OK) {
        hs_aead_wipe(c);
        return rc;
    }
    c->alg = alg;
    return HS_OK;
}

static int tag_len_ok(int alg, size_t tag_len) {
    if (alg == HS_AEAD_AES_GCM) return tag_len == 8 || tag_len == 12 || tag_len == 16;
    return tag_len == 16;
}

#if defined(__x86_64__) && defined(__ELF__)
#ifndef HS_STACK_PHASE
#define HS_STACK_PHASE 32
#endif
#define HS_STR2(x) #x
#define HS_STR(x) HS_STR2(x)
/* mbedTLS 2.28's GCM runs each block through buffers on its own stack. On the x86-64 machine here the same open took
 * 8 % longer in half of the stack placements (Benchmarks/gcm-placement: the time follows the stack address mod 64),
 * so two callers at different call depths, or one caller on two threads, ran at different speeds. Each GCM step goes
 * through hs_placed, which calls fn(a..f) (fn is its seventh argument, on the stack) with the stack at a fixed offset
 * from a 64-byte boundary, the one that measured fast. ChaCha20-Poly1305 is called directly: placed, its ESP ratios
 * came out no steadier and its DataPlane seal ratio higher (BENCHMARKS.md). */
int hs_placed(uintptr_t a, uintptr_t b, uintptr_t c, uintptr_t d, uintptr_t e, uintptr_t f, const void *fn);
__asm__(".text\n"
        ".p2align 4\n"
        ".type hs_placed,@function\n"
        "hs_placed:\n"
        "  .cfi_startproc\n"
        "  push %rbp\n"
        "  .cfi_def_cfa_offset 16\n"
        "  .cfi_offset %rbp, -16\n"
        "  mov %rsp, %rbp\n"
        "  .cfi_def_cfa_register %rbp\n"
        "  and $-64, %rsp\n"
        "  sub $" HS_STR(HS_STACK_PHASE) ", %rsp\n"
        "  call *16(%rbp)\n"
        "  leave\n"
        "  .cfi_def_cfa %rsp, 8\n"
        "  ret\n"
        "  .cfi_endproc\n"
        ".size hs_placed, .-hs_placed\n");
#define HS_U(x) ((uintptr_t)(x))
#define PLACED6(fn, a, b, c, d, e, f) hs_placed(HS_U(a), HS_U(b), HS_U(c), HS_U(d), HS_U(e), HS_U(f), (const void *)(fn))
#define GCM_STARTS(g, m, iv, ivl, aad, aadl) PLACED6(mbedtls_gcm_starts, g, m, iv, ivl, aad, aadl)
#define GCM_UPDATE(g, len, in, out) PLACED6(mbedtls_gcm_update, g, len, in, out, 0, 0)
#define GCM_FINISH(g, tag, tagl) PLACED6(mbedtls_gcm_finish, g, tag, tagl, 0, 0, 0)
#else
#define GCM_STARTS mbedtls_gcm_starts
#define GCM_UPDATE mbedtls_gcm_update
#define GCM_FINISH mbedtls_gcm_finish
#endif

/* Runs the cipher in either direction and leaves the full 16-byte tag in tag_out. */
static int aead_run(hs_aead_ctx *c, int encrypt, const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
                    const uint8_t *in, uint8_t *out, size_t len, uint8_t tag_out[16]) {
    if (c->alg == HS_AEAD_AES_GCM) {
        int mode = encrypt ? MBEDTLS_GCM_ENCRYPT : MBEDTLS_GCM_DECRYPT;
        /* mbedtls_gcm_crypt_and_tag, each step placed. */
        if (GCM_STARTS(&c->u.gcm.ctx, mode, nonce, 12, aad, aad_len) != 0) return HS_ERR_CRYPTO;
        if (GCM_UPDATE(&c->u.gcm.ctx, len, in, out) != 0) return HS_ERR_CRYPTO;
        return GCM_FINISH(&c->u.gcm.ctx, tag_out, 16) == 0 ? HS_OK : HS_ERR_CRYPTO;
    }
    if (c->alg == HS_AEAD_CHACHA20_POLY1305) {
        mbedtls_chachapoly_mode_t mode = encrypt ? MBEDTLS_CHACHAPOLY_ENCRYPT : MBEDTLS_CHACHAPOLY_DECRYPT;
        if (mbedtls_chachapoly_starts(&c->u.chachapoly, nonce, mode) != 0) return HS_ERR_CRYPTO;
        if (mbedtls_chachapoly_update_aad(&c->u.chachapoly, aad, aad_len) != 0) return HS_ERR_CRYPTO;
        if (len && mbedtls_chachapoly_update(&c->u.chachapoly, len, in, out) != 0) return HS_ERR_CRYPTO;
        return mbedtls_chachapoly_finish(&c->u.chachapoly, tag_out) == 0 ? HS_OK : HS_ERR_CRYPTO;
    }
    return HS_ERR_PARAM;
}

int hs_aead_seal(void *ctx, const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
                 const uint8_t *in, uint8_t *out, size_t len, uint8_t *tag, size_t tag_len) {
    hs_aead_ctx *c = ctx;
    if (!tag_len_ok(c->alg, tag_len)) return HS_ERR_PARAM;
    uint8_t full[16];
    int rc = aead_run(c, 1, nonce, aad, aad_len, in, out, len, full);
    if (rc == HS_OK) memcpy(tag, full, tag_len);
    mbedtls_platform_zeroize(full, sizeof full);
    return rc;
}

int hs_aead_open(void *ctx, const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
                 const uint8_t *in, uint8_t *out, size_t len, const uint8_t *tag, size_t tag_len) {
    hs_aead_ctx *c = ctx;
    if (!tag_len_ok(c->alg, tag_len)) return HS_ERR_PARAM;
    uint8_t full[16];
    int rc = aead_run(c, 0, nonce, aad, aad_len, in, out, len, full);
    if (rc == HS_OK && !hs_ct_equal(full, tag, tag_len)) rc = HS_ERR_AUTH;
    if (rc != HS_OK) mbedtls_platform_zeroize(out, len);
    mbedtls_platform_zeroize(full, sizeof full);
    return rc;
}

int hs_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t msg_len, uint8_t out[32]) {
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    return mbedtls_md_hmac(md, key, key_len, msg, msg_len, out) == 0 ? HS_OK : HS_ERR_CRYPTO;
}

int hs_hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                   const uint8_t *info, size_t info_len, uint8_t *okm, size_t okm_len) {
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    if (okm_len > 255 * 32) return HS_ERR_PARAM;
    return mbedtls_hkdf(md, salt, salt_len, ikm, ikm_len, info, info_len, okm, okm_len) == 0 ? HS_OK : HS_ERR_CRYPTO;
}

int hs_sha256(const uint8_t *msg, size_t len, uint8_t out[32]) {
    return mbedtls_sha256_ret(msg, len, out, 0) == 0 ? HS_OK : HS_ERR_CRYPTO;
}

static int getrandom_entropy(void *unused, unsigned char *out, size_t len) {
    (void)unused;
    while (len > 0) {
        ssize_t n = getrandom(out, len, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
        }
        out += n;
        len -= (size_t)n;
    }
    return 0;
}

size_t hs_drbg_ctx_size(void) { return sizeof(mbedtls_ctr_drbg_context); }
size_t hs_drbg_ctx_align(void) { return alignof(mbedtls_ctr_drbg_context); }

static int no_entropy(void *unused, unsigned char *out, size_t len) {
    (void)unused;
    (void)out;
    (void)len;
    return MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
}

int hs_drbg_seed(void *ctx, const uint8_t *personalization, size_t len, int entropy) {
    mbedtls_ctr_drbg_init(ctx);
    int (*source)(void *, unsigned char *, size_t) = entropy == HS_ENTROPY_NONE ? no_entropy : getrandom_entropy;
    int rc = mbedtls_ctr_drbg_seed(ctx, source, NULL, personalization, len);
    if (rc == MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED) return HS_ERR_ENTROPY;
    return rc == 0 ? HS_OK : HS_ERR_CRYPTO;
}

int hs_drbg_fill(void *ctx, uint8_t *out, size_t len) {
    while (len > 0) {
        size_t chunk = len < MBEDTLS_CTR_DRBG_MAX_REQUEST ? len : MBEDTLS_CTR_DRBG_MAX_REQUEST;
        if (mbedtls_ctr_drbg_random(ctx, out, chunk) != 0) return HS_ERR_CRYPTO;
        out += chunk;
        len -= chunk;
    }
    return HS_OK;
}

void hs_drbg_wipe(void *ctx) { mbedtls_ctr_drbg_free(ctx); }

int hs_ct_equal(const uint8_t *a, const uint8_t *b, size_t len) {
    volatile uint8_t diff = 0;
    for (size_t i = 0; i < len; i++) diff |= (uint8_t)(a[i] ^ b[i]);
    return diff == 0;
}

void hs_zeroize(void *p, size_t len) { mbedtls_platform_zeroize(p, len); }
