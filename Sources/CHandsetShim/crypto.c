/* Symmetric primitives over mbedTLS 2.28. No key material is ever logged or copied out of caller storage. */
#include "handset_shim.h"

#include <mbedtls/chachapoly.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/gcm.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <stdalign.h>
#include <string.h>
#include <sys/random.h>
#include <errno.h>

typedef struct {
    int alg; /* 0 = empty */
    union {
        mbedtls_gcm_context gcm;
        mbedtls_chachapoly_context chachapoly;
    } u;
} hs_aead_ctx;

size_t hs_aead_ctx_size(void) { return sizeof(hs_aead_ctx); }
size_t hs_aead_ctx_align(void) { return alignof(hs_aead_ctx); }

void hs_aead_wipe(void *ctx) {
    hs_aead_ctx *c = ctx;
    if (c->alg == HS_AEAD_AES_GCM) mbedtls_gcm_free(&c->u.gcm);
    if (c->alg == HS_AEAD_CHACHA20_POLY1305) mbedtls_chachapoly_free(&c->u.chachapoly);
    mbedtls_platform_zeroize(c, sizeof *c);
}

int hs_aead_setkey(void *ctx, int alg, const uint8_t *key, size_t key_len) {
    hs_aead_ctx *c = ctx;
    hs_aead_wipe(c);
    switch (alg) {
    case HS_AEAD_AES_GCM:
        if (key_len != 16 && key_len != 32) return HS_ERR_PARAM;
        mbedtls_gcm_init(&c->u.gcm);
        if (mbedtls_gcm_setkey(&c->u.gcm, MBEDTLS_CIPHER_ID_AES, key, (unsigned)(key_len * 8)) != 0) {
            mbedtls_gcm_free(&c->u.gcm);
            return HS_ERR_CRYPTO;
        }
        break;
    case HS_AEAD_CHACHA20_POLY1305:
        if (key_len != 32) return HS_ERR_PARAM;
        mbedtls_chachapoly_init(&c->u.chachapoly);
        if (mbedtls_chachapoly_setkey(&c->u.chachapoly, key) != 0) {
            mbedtls_chachapoly_free(&c->u.chachapoly);
            return HS_ERR_CRYPTO;
        }
        break;
    default:
        return HS_ERR_PARAM;
    }
    c->alg = alg;
    return HS_OK;
}

static int tag_len_ok(int alg, size_t tag_len) {
    if (alg == HS_AEAD_AES_GCM) return tag_len == 8 || tag_len == 12 || tag_len == 16;
    return tag_len == 16;
}

/* Runs the cipher in either direction and leaves the full 16-byte tag in tag_out. */
static int aead_run(hs_aead_ctx *c, int encrypt, const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
                    const uint8_t *in, uint8_t *out, size_t len, uint8_t tag_out[16]) {
    if (c->alg == HS_AEAD_AES_GCM) {
        int mode = encrypt ? MBEDTLS_GCM_ENCRYPT : MBEDTLS_GCM_DECRYPT;
        return mbedtls_gcm_crypt_and_tag(&c->u.gcm, mode, len, nonce, 12, aad, aad_len, in, out, 16, tag_out) == 0
                   ? HS_OK : HS_ERR_CRYPTO;
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
