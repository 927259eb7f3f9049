/* CHandsetShim: the handset's only door to the C world.
 * Symmetric crypto over mbedTLS 2.28 and thin wrappers for the few system calls the firmware needs.
 * Every context is caller-owned, fixed-size storage; nothing here keeps global state. */
#ifndef HANDSET_SHIM_H
#define HANDSET_SHIM_H

#include <stddef.h>
#include <stdint.h>

#include "handset_files.h"
#include "handset_app_socket.h"
#include "handset_serial.h"
#include "handset_gpio.h"
#include "handset_heap.h"
#include "handset_tun.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    HS_OK = 0,
    HS_ERR_PARAM = -1,   /* bad key length, tag length or algorithm */
    HS_ERR_AUTH = -2,    /* tag mismatch; output has been zeroed */
    HS_ERR_CRYPTO = -3,  /* mbedTLS reported an internal failure */
    HS_ERR_ENTROPY = -4, /* getrandom failed */
};

enum { HS_AEAD_AES_GCM = 1, HS_AEAD_CHACHA20_POLY1305 = 2 };

/* ---- AEAD (AES-GCM 128/256, ChaCha20-Poly1305). Nonce is always 12 bytes. ---- */
size_t hs_aead_ctx_size(void);
size_t hs_aead_ctx_align(void);
/* Setting an AES key makes mbedTLS allocate its cipher state once; seal/open never allocate. */
int hs_aead_setkey(void *ctx, int alg, const uint8_t *key, size_t key_len);
/* Frees and zeroizes the whole context, key schedule included. Safe on a zeroed or already-freed context. */
void hs_aead_wipe(void *ctx);
/* in and out may be the same buffer. tag_len: 8, 12 or 16 for GCM, 16 for ChaCha20-Poly1305. */
int hs_aead_seal(void *ctx, const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
                 const uint8_t *in, uint8_t *out, size_t len, uint8_t *tag, size_t tag_len);
/* Verifies the tag in constant time; on mismatch zeroes out[0..len) and returns HS_ERR_AUTH. */
int hs_aead_open(void *ctx, const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
                 const uint8_t *in, uint8_t *out, size_t len, const uint8_t *tag, size_t tag_len);

/* ---- HMAC-SHA-256 and HKDF-SHA-256 (RFC 2104, RFC 5869). ---- */
int hs_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t msg_len, uint8_t out[32]);
int hs_hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                   const uint8_t *info, size_t info_len, uint8_t *okm, size_t okm_len);
int hs_sha256(const uint8_t *msg, size_t len, uint8_t out[32]);

/* ---- CTR-DRBG (AES-256) seeded from getrandom(2). ---- */
size_t hs_drbg_ctx_size(void);
size_t hs_drbg_ctx_align(void);
/* Entropy sources: the kernel's, or none at all (a source that always fails, so tests can see what the
 * firmware does when seeding fails). */
enum { HS_ENTROPY_GETRANDOM = 0, HS_ENTROPY_NONE = 1 };
/* Returns HS_OK, HS_ERR_ENTROPY when the source failed, or HS_ERR_CRYPTO. The context is usable only after HS_OK. */
int hs_drbg_seed(void *ctx, const uint8_t *personalization, size_t len, int entropy);
int hs_drbg_fill(void *ctx, uint8_t *out, size_t len);
void hs_drbg_wipe(void *ctx);

/* ---- Constant-time helpers. ---- */
/* 1 when equal, 0 otherwise; time depends only on len. */
int hs_ct_equal(const uint8_t *a, const uint8_t *b, size_t len);
void hs_zeroize(void *p, size_t len);

/* ---- Platform: clocks, output, files (thin, errno-returning wrappers). ---- */
uint64_t hs_monotonic_ms(void);
uint64_t hs_realtime_s(void);
/* Writes all of buf to fd 1 or 2; returns 0 or -errno. */
int hs_write_all(int fd, const void *buf, size_t len);
int hs_errno(void);
/* The C library's message for an errno value ("No such file or directory"), for logs; never NULL. */
const char *hs_strerror(int err);
/* Line-buffers stdout, so a log survives the process being killed. */
void hs_stdout_line_buffered(void);
/* Process arguments, captured at start-up (Embedded Swift has no CommandLine). */
int hs_argc(void);
const char *hs_argv(int i);
/* SIGTERM and SIGINT set a flag instead of killing the process (no SA_RESTART: a blocking poll returns), so the
 * firmware loop can end cleanly. hs_stop_requested() is 1 once either arrived. Returns 0 or -errno. */
int hs_stop_signals_install(void);
int hs_stop_requested(void);
/* No core dumps: RLIMIT_CORE 0 and PR_SET_DUMPABLE 0 (the process holds device and SA keys). 0 or -errno. */
int hs_disable_core_dumps(void);
/* Flushes stdio and ends the process; for the firmware entry, which cannot import Glibc. */
void hs_exit(int code) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif
#endif
