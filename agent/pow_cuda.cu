/* pow_cuda.cu - see pow_cuda.h; the function itself is specified in pow.h.
 *
 * BLAKE2b is written out here (RFC 7693) because the kernel cannot call
 * libsodium; pow_cuda_leaf_host runs this code on the CPU so the tests
 * hold it to libsodium's answers through pow_leaf.
 */
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

extern "C" {
#include "alloc.h"
#include "error.h"
#include "pow_cuda.h"
}

#define HD __host__ __device__

/* Threads per block: any multiple of 32 works; 128 leaves room for the
 * scheduler to hide the latency of the dependent loads. */
#define BLOCK 128u
/* Mixing steps per kernel launch, roughly: a launch stays well under a
 * second on any GPU, so cancellation is quick and watchdogs stay quiet. */
#define STEPS_PER_LAUNCH (1ull << 30)
/* Scratch of one batch: at most half the free memory, and 2 GiB. */
#define MAX_BATCH_BYTES (2ull << 30)

/* --- BLAKE2b-256 (RFC 7693), unkeyed ----------------------------------------- */

HD static inline uint64_t rotr64(uint64_t x, unsigned r)
{
    return (x >> r) | (x << (64u - r));
}

#define B2B_G(a, b, c, d, x, y)                                                                    \
    do {                                                                                           \
        v[a] = v[a] + v[b] + (x);                                                                  \
        v[d] = rotr64(v[d] ^ v[a], 32);                                                            \
        v[c] = v[c] + v[d];                                                                        \
        v[b] = rotr64(v[b] ^ v[c], 24);                                                            \
        v[a] = v[a] + v[b] + (y);                                                                  \
        v[d] = rotr64(v[d] ^ v[a], 16);                                                            \
        v[c] = v[c] + v[d];                                                                        \
        v[b] = rotr64(v[b] ^ v[c], 63);                                                            \
    } while (0)

/* One round with the message schedule written out (sigma of RFC 7693 2.7),
 * so that no table has to live in both host and device memory. */
#define B2B_ROUND(s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15)            \
    do {                                                                                           \
        B2B_G(0, 4, 8, 12, m[s0], m[s1]);                                                          \
        B2B_G(1, 5, 9, 13, m[s2], m[s3]);                                                          \
        B2B_G(2, 6, 10, 14, m[s4], m[s5]);                                                         \
        B2B_G(3, 7, 11, 15, m[s6], m[s7]);                                                         \
        B2B_G(0, 5, 10, 15, m[s8], m[s9]);                                                         \
        B2B_G(1, 6, 11, 12, m[s10], m[s11]);                                                       \
        B2B_G(2, 7, 8, 13, m[s12], m[s13]);                                                        \
        B2B_G(3, 4, 9, 14, m[s14], m[s15]);                                                        \
    } while (0)

#define B2B_IV0 0x6a09e667f3bcc908ull
#define B2B_IV1 0xbb67ae8584caa73bull
#define B2B_IV2 0x3c6ef372fe94f82bull
#define B2B_IV3 0xa54ff53a5f1d36f1ull
#define B2B_IV4 0x510e527fade682d1ull
#define B2B_IV5 0x9b05688c2b3e6c1full
#define B2B_IV6 0x1f83d9abfb41bd6bull
#define B2B_IV7 0x5be0cd19137e2179ull

/* h: the chain value; m: one 128-byte block as 16 little-endian words;
 * t: bytes hashed so far including this block (< 2^64 here). */
HD static void b2b_compress(uint64_t h[8], const uint64_t m[16], uint64_t t, bool last)
{
    uint64_t v[16] = {h[0],    h[1],    h[2],    h[3],    h[4],    h[5],    h[6],    h[7],
                      B2B_IV0, B2B_IV1, B2B_IV2, B2B_IV3, B2B_IV4, B2B_IV5, B2B_IV6, B2B_IV7};
    v[12] ^= t;
    if (last)
        v[14] = ~v[14];
    B2B_ROUND(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    B2B_ROUND(14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3);
    B2B_ROUND(11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4);
    B2B_ROUND(7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8);
    B2B_ROUND(9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13);
    B2B_ROUND(2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9);
    B2B_ROUND(12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11);
    B2B_ROUND(13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10);
    B2B_ROUND(6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5);
    B2B_ROUND(10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0);
    B2B_ROUND(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    B2B_ROUND(14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3);
    for (int k = 0; k < 8; k++)
        h[k] ^= v[k] ^ v[k + 8];
}

/* The parameter block of an unkeyed 32-byte digest: digest length 32, key
 * length 0, fanout 1, depth 1 (RFC 7693 2.5). */
HD static void b2b_init(uint64_t h[8])
{
    h[0] = B2B_IV0 ^ 0x01010020ull;
    h[1] = B2B_IV1;
    h[2] = B2B_IV2;
    h[3] = B2B_IV3;
    h[4] = B2B_IV4;
    h[5] = B2B_IV5;
    h[6] = B2B_IV6;
    h[7] = B2B_IV7;
}

/* --- the leaf, in three steps (pow.h) ----------------------------------------- */

#define GOLDEN 0x9e3779b97f4a7c15ull
#define MUL    0xd6e8feb86659fd93ull

HD static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

HD static inline uint64_t rotl64(uint64_t x, unsigned r)
{
    return (x << r) | (x >> ((64u - r) & 63u));
}

/* The seed as four little-endian words, as BLAKE2b reads it. */
typedef struct seed_words {
    uint64_t w[4];
} seed_words;

/* 1. h = H(S || le32(i) || le32(W) || le32(R)): 44 bytes, one block; then
 * s[j] = mix64(k[j % 4] + (j + 1) * GOLDEN). Word j of this leaf is at
 * s[j * stride]. */
HD static void leaf_expand(const seed_words *seed, uint32_t i, uint32_t w, uint32_t r, uint64_t *s,
                           size_t stride)
{
    uint64_t m[16] = {seed->w[0], seed->w[1], seed->w[2], seed->w[3], (uint64_t)w << 32 | i, r};
    uint64_t h[8];
    b2b_init(h);
    b2b_compress(h, m, 44, true);
    for (uint32_t j = 0; j < w; j++)
        s[j * stride] = mix64(h[j & 3] + (uint64_t)(j + 1) * GOLDEN);
}

/* 2. rounds passes of the mixing; prev is always the last word, so the
 * passes of one leaf can be split across launches and give the same. */
HD static void leaf_mix(uint64_t *s, size_t stride, uint32_t w, uint32_t rounds)
{
    uint64_t prev = s[(size_t)(w - 1) * stride];
    for (uint32_t r = 0; r < rounds; r++) {
        for (uint32_t j = 0; j < w; j++) {
            uint64_t a = ((prev >> 32) * w) >> 32;
            uint64_t x = s[j * stride] + rotl64(s[a * stride] ^ prev, (unsigned)(prev & 63));
            x *= MUL;
            x ^= x >> 29;
            s[j * stride] = x;
            prev = x;
        }
    }
}

/* 3. H(0x00 || le64(s[0]) || ... || le64(s[W-1])): 8W + 1 bytes, so message
 * word q straddles s[q-1] and s[q]. 8W + 1 is odd, never a multiple of the
 * block size: the last block is always partial. */
HD static void leaf_hash(const uint64_t *s, size_t stride, uint32_t w, uint64_t out[4])
{
    const uint64_t len = (uint64_t)w * 8 + 1;
    const uint32_t words = w + 1; /* ceil(len / 8) */
    const uint32_t blocks = (words + 15) / 16;
    uint64_t h[8];
    b2b_init(h);
    for (uint32_t b = 0; b < blocks; b++) {
        uint64_t m[16];
        for (uint32_t k = 0; k < 16; k++) {
            uint32_t q = b * 16 + k;
            uint64_t lo = q == 0 || q > w ? 0 : s[(size_t)(q - 1) * stride] >> 56;
            uint64_t hi = q >= w ? 0 : s[(size_t)q * stride] << 8;
            m[k] = lo | hi;
        }
        bool last = b == blocks - 1;
        b2b_compress(h, m, last ? len : (uint64_t)(b + 1) * 128, last);
    }
    for (int k = 0; k < 4; k++)
        out[k] = h[k];
}

static seed_words seed_of(const pow_params *p)
{
    seed_words sw;
    for (int k = 0; k < 4; k++) {
        uint64_t v = 0;
        for (int b = 7; b >= 0; b--)
            v = v << 8 | p->seed[8 * k + b];
        sw.w[k] = v;
    }
    return sw;
}

static void words_to_bytes(const uint64_t in[4], uint8_t out[POW_HASH_BYTES])
{
    for (int k = 0; k < 32; k++)
        out[k] = (uint8_t)(in[k / 8] >> (8 * (k % 8)));
}

extern "C" void pow_cuda_leaf_host(const pow_params *p, uint32_t i, uint64_t *scratch,
                                   uint8_t out[POW_HASH_BYTES])
{
    seed_words sw = seed_of(p);
    uint64_t h[4];
    leaf_expand(&sw, i, p->leaf_words, p->leaf_rounds, scratch, 1);
    leaf_mix(scratch, 1, p->leaf_words, p->leaf_rounds);
    leaf_hash(scratch, 1, p->leaf_words, h);
    words_to_bytes(h, out);
}

/* --- kernels: thread t of a batch of n leaves starting at `first` ----------- */

__global__ static void k_expand(seed_words seed, uint32_t first, uint32_t n, uint32_t w, uint32_t r,
                                uint64_t *s)
{
    uint32_t t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t < n)
        leaf_expand(&seed, first + t, w, r, s + t, n);
}

__global__ static void k_mix(uint32_t n, uint32_t w, uint32_t rounds, uint64_t *s)
{
    uint32_t t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t < n)
        leaf_mix(s + t, n, w, rounds);
}

__global__ static void k_hash(uint32_t n, uint32_t w, const uint64_t *s, uint64_t *out)
{
    uint32_t t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t < n)
        leaf_hash(s + t, n, w, out + 4 * (size_t)t);
}

/* --- the backend ---------------------------------------------------------------- */

typedef struct cuda_ctx {
    int device;
} cuda_ctx;

static int cuda_fail(mu_error *errp, const char *what, cudaError_t e)
{
    return errprintf(errp, "CUDA %s: %s", what, cudaGetErrorString(e));
}

static int cuda_create(const pow_sim_opts *opts, void **ctx, mu_error *errp)
{
    (void)opts;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* not sticky, but leave nothing behind */
        return errprintf(errp, "no CUDA device: %s", cudaGetErrorString(e));
    }
    if (n == 0)
        return errprintf(errp, "no CUDA device: the runtime found none");
    if ((e = cudaSetDevice(0)) != cudaSuccess)
        return cuda_fail(errp, "cannot use device 0", e);
    cuda_ctx *c = (cuda_ctx *)mu_calloc(1, sizeof *c);
    if (!c)
        return errprintf(errp, "out of memory");
    c->device = 0;
    *ctx = c;
    return 0;
}

static void cuda_destroy(void *ctx)
{
    mu_free(ctx);
}

static int cuda_compute(void *ctx, const pow_job *job, uint8_t *leaf_hashes,
                        const pow_cancel *cancel, mu_error *errp)
{
    const cuda_ctx *c = (const cuda_ctx *)ctx;
    const pow_params *p = &job->params;
    const uint32_t w = p->leaf_words;
    const seed_words sw = seed_of(p);
    uint64_t *d_s = NULL, *d_out = NULL, *h_out = NULL;
    size_t free_b = 0, total_b = 0;
    uint64_t budget, batch64;
    uint32_t batch, rounds_per_launch;
    int rc = -1;
    cudaError_t e;

    if ((e = cudaSetDevice(c->device)) != cudaSuccess)
        return cuda_fail(errp, "set device", e);
    if ((e = cudaMemGetInfo(&free_b, &total_b)) != cudaSuccess)
        return cuda_fail(errp, "memory info", e);
    budget = free_b / 2 < MAX_BATCH_BYTES ? free_b / 2 : MAX_BATCH_BYTES;
    batch64 = budget / ((uint64_t)w * 8);
    if (batch64 > p->leaves)
        batch64 = p->leaves;
    if (batch64 >= 32)
        batch64 -= batch64 % 32; /* whole warps */
    if (batch64 == 0)
        return errprintf(errp, "CUDA: %zu bytes free, not enough for one leaf of %u words", free_b,
                         w);
    batch = (uint32_t)batch64;
    rounds_per_launch = (uint32_t)(STEPS_PER_LAUNCH / ((uint64_t)batch * w));
    if (rounds_per_launch == 0)
        rounds_per_launch = 1;

    if ((e = cudaMalloc((void **)&d_s, (size_t)batch * w * 8)) != cudaSuccess) {
        cuda_fail(errp, "scratch allocation", e);
        goto out;
    }
    if ((e = cudaMalloc((void **)&d_out, (size_t)batch * 32)) != cudaSuccess) {
        cuda_fail(errp, "output allocation", e);
        goto out;
    }
    h_out = (uint64_t *)mu_malloc((size_t)batch * 32);
    if (!h_out) {
        errprintf(errp, "out of memory");
        goto out;
    }
    for (uint32_t first = 0; first < p->leaves; first += batch) {
        uint32_t n = p->leaves - first < batch ? p->leaves - first : batch;
        unsigned grid = (n + BLOCK - 1) / BLOCK;
        k_expand<<<grid, BLOCK>>>(sw, first, n, w, p->leaf_rounds, d_s);
        for (uint32_t done = 0; done < p->leaf_rounds; done += rounds_per_launch) {
            uint32_t left = p->leaf_rounds - done;
            k_mix<<<grid, BLOCK>>>(n, w, left < rounds_per_launch ? left : rounds_per_launch, d_s);
            if ((e = cudaGetLastError()) != cudaSuccess) {
                cuda_fail(errp, "kernel launch", e);
                goto out;
            }
            if ((e = cudaDeviceSynchronize()) != cudaSuccess) {
                cuda_fail(errp, "kernel", e);
                goto out;
            }
            if (pow_cancel_requested(cancel)) {
                errprintf(errp, "cancelled");
                goto out;
            }
        }
        k_hash<<<grid, BLOCK>>>(n, w, d_s, d_out);
        if ((e = cudaGetLastError()) != cudaSuccess) {
            cuda_fail(errp, "kernel launch", e);
            goto out;
        }
        if ((e = cudaMemcpy(h_out, d_out, (size_t)n * 32, cudaMemcpyDeviceToHost)) != cudaSuccess) {
            cuda_fail(errp, "copy of the leaf hashes", e);
            goto out;
        }
        for (uint32_t t = 0; t < n; t++)
            words_to_bytes(h_out + 4 * (size_t)t,
                           leaf_hashes + ((size_t)first + t) * POW_HASH_BYTES);
    }
    rc = 0;
out:
    mu_free(h_out);
    if (d_out)
        cudaFree(d_out);
    if (d_s)
        cudaFree(d_s);
    return rc;
}

static const pow_backend_ops cuda_ops = {"cuda", cuda_create, cuda_destroy, cuda_compute};

extern "C" const pow_backend_ops *pow_backend_cuda(void)
{
    return &cuda_ops;
}
