/* pow.h - the proof-of-work function, its Merkle commitment and the
 * broker's spot check.
 *
 * The broker proves that a worker has the GPU it claims by sending a fresh
 * seed and a size chosen for that GPU. The agent computes every leaf of the
 * work, commits to all of them with one Merkle root, and the broker then asks
 * for a few leaves chosen at random, with their Merkle paths, and recomputes
 * those leaves itself. A worker that skipped a fraction f of the leaves is
 * caught by each spot with probability f, so k spots miss it with
 * probability (1-f)^k: skipped work is caught, not just slow work. Judging
 * the time taken is the broker's business, not this file's.
 *
 * Pure: no I/O, no clock, no randomness, no global state. The scheduler core
 * (which checks spots) and the agent (which computes leaves) both link it.
 *
 * Hashing is libsodium's crypto_generichash (BLAKE2b) with 32-byte output,
 * unkeyed; this file is the only one that talks to libsodium. It needs no
 * initialisation to be correct: without it libsodium uses its portable
 * BLAKE2b compression function. pow_init() (sodium_init: call it once,
 * early, in main(); it is thread-safe and idempotent) picks the fastest one
 * for the CPU. The results are the same either way.
 *
 * ---------------------------------------------------------------------------
 * The function, exactly (every backend, a CUDA kernel included, must
 * reproduce it bit for bit). All arithmetic is on uint64_t, modulo 2^64;
 * "le32(x)" and "le64(x)" are x's bytes in little-endian order; H(m) is
 * BLAKE2b with 32-byte output, no key, no salt, no personalisation.
 *
 * Parameters: S = seed (32 bytes), L = leaves, W = leaf_words,
 * R = leaf_rounds (ranges in pow_params below).
 *
 *   GOLDEN = 0x9e3779b97f4a7c15
 *   MUL    = 0xd6e8feb86659fd93
 *   mix64(z):              (the splitmix64 finaliser)
 *     z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
 *     z = (z ^ (z >> 27)) * 0x94d049bb133111eb
 *     return z ^ (z >> 31)
 *   rotl(x, r) = (x << r) | (x >> ((64 - r) & 63))      (r in 0..63)
 *
 * Leaf i (0 <= i < L), with a scratch buffer s[0..W-1]:
 *
 *   1. Seed expansion.
 *        h = H(S || le32(i) || le32(W) || le32(R))            (44 bytes)
 *        k[m] = h[8m .. 8m+7] read as little-endian uint64, m = 0..3
 *        s[j] = mix64(k[j % 4] + (j + 1) * GOLDEN)            j = 0..W-1
 *      (W and R are hashed in, so work done for one size is worthless for
 *      another size with the same seed.)
 *
 *   2. Mixing: R passes over s, each step depending on the one before and
 *      reading a word at an index taken from the previous result, so a
 *      step can be neither skipped nor computed out of order:
 *        prev = s[W-1]
 *        repeat R times:
 *          for j = 0 .. W-1:
 *            a = ((prev >> 32) * W) >> 32        (an index in 0..W-1)
 *            x = s[j] + rotl(s[a] ^ prev, prev & 63)
 *            x = x * MUL
 *            x = x ^ (x >> 29)
 *            s[j] = x
 *            prev = x
 *      (a is read after s[j] is read and before s[j] is written; a == j
 *      is allowed. One step is one "unit" of work.)
 *
 *   3. Leaf hash:  leaf[i] = H(0x00 || le64(s[0]) || ... || le64(s[W-1]))
 *
 * Merkle tree over leaf[0..L-1] (L is a power of two, so the tree is
 * perfect): node = H(0x01 || left || right). The prefixes 0x00 and 0x01
 * keep a leaf from passing for an inner node. The root commits to all
 * leaves; the path of leaf i is the depth = log2(L) sibling hashes from the
 * leaf level up to just below the root.
 * ---------------------------------------------------------------------------
 */
#ifndef MUSTER_POW_H
#define MUSTER_POW_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define POW_HASH_BYTES 32
#define POW_SEED_BYTES 32
#define POW_MIN_LEAVES 16u
#define POW_MAX_LEAVES 65536u
#define POW_MIN_WORDS  8u
#define POW_MAX_WORDS  65536u
#define POW_MAX_ROUNDS (1u << 20)
/* The most leaves a broker may ask for in one spot check: 64 spots miss a
 * worker that skipped 10% of its leaves with probability 0.9^64 < 0.12%. */
#define POW_MAX_SPOT 64u

/* Let libsodium pick the fastest BLAKE2b for this CPU (sodium_init). Not
 * needed for correctness; call it once early in main(). 0, or -1 when
 * libsodium could not initialise (hashing still works, only slower). */
int pow_init(void);

/* H(data): BLAKE2b with a 32-byte digest, as everywhere in this file. */
void pow_hash(const void *data, size_t len, uint8_t out[POW_HASH_BYTES]);

/* One challenge's parameters, as the broker sends them. */
typedef struct pow_params {
    uint8_t seed[POW_SEED_BYTES]; /* fresh for every challenge */
    uint32_t leaves;              /* L: a power of two, POW_MIN_LEAVES..POW_MAX_LEAVES */
    uint32_t leaf_words;          /* W: 64-bit words of one leaf's scratch, 8..65536 */
    uint32_t leaf_rounds;         /* R: passes over that buffer, 1..POW_MAX_ROUNDS */
} pow_params;

/* 0 when *p is in range, else -1 with the reason in *errp (which may be
 * NULL). Every other function here expects checked parameters; the ones
 * that can fail check them again. */
int pow_params_check(const pow_params *p, mu_error *errp);

/* The work of the whole challenge in mixing steps: L * W * R (at most 2^52,
 * so it never overflows). */
uint64_t pow_units(const pow_params *p);

/* log2(L): the number of hashes in one Merkle path. */
uint32_t pow_depth(const pow_params *p);

/* Compute leaf i (i < L) into out. scratch holds W words; its contents
 * afterwards are unspecified. Costs W * R mixing steps and two BLAKE2b
 * calls. p must have passed pow_params_check (not checked here: this is the
 * inner loop). */
void pow_leaf(const pow_params *p, uint32_t i, uint64_t *scratch, uint8_t out[POW_HASH_BYTES]);

/* A Merkle tree over L leaf hashes (opaque; about 64 * L bytes). */
typedef struct pow_tree pow_tree;

/* Build the tree over leaf_hashes (L * 32 bytes, leaf 0 first), which is
 * copied. NULL with a reason when *p is out of range or memory runs out.
 * Free with pow_tree_destroy. */
pow_tree *pow_tree_create(const pow_params *p, const uint8_t *leaf_hashes, mu_error *errp);

/* Free the tree (NULL is fine). */
void pow_tree_destroy(pow_tree *t);

/* Copy the root hash into root. */
void pow_tree_root(const pow_tree *t, uint8_t root[POW_HASH_BYTES]);

/* The tree's number of leaves (L) and its depth (log2(L), the hashes in
 * one path). */
uint32_t pow_tree_leaves(const pow_tree *t);
uint32_t pow_tree_depth(const pow_tree *t);

/* Leaf i's hash, borrowed from the tree (valid until pow_tree_destroy);
 * NULL when i >= L. */
const uint8_t *pow_tree_leaf(const pow_tree *t, uint32_t i);

/* Write leaf i's path into path: depth * 32 bytes, the sibling of the leaf
 * first and the sibling just below the root last. i must be < L. */
void pow_tree_path(const pow_tree *t, uint32_t i, uint8_t *path);

/* Fold a path: the root reached from leaf hash `leaf` at index i through
 * path (depth hashes, as pow_tree_path writes them). Costs depth hashes. */
void pow_path_root(uint32_t i, const uint8_t leaf[POW_HASH_BYTES], const uint8_t *path,
                   uint32_t depth, uint8_t root[POW_HASH_BYTES]);

/* The broker's check of one spot. The worker claimed that leaf i is `leaf`
 * and that `path` (path_len_bytes bytes) leads from it to `root`, the root
 * it committed to before it knew which leaves would be asked for. Checks
 * the path first (cheap: depth hashes), then recomputes leaf i (W * R
 * steps, in scratch: W words) and compares. Returns 0 when both hold, else
 * -1 with the reason in *errp, e.g. "leaf 17 is wrong", "path of leaf 17
 * does not lead to the committed root", "path has 9 hashes, 10 expected",
 * "leaf 70000 is out of range (1024 leaves)", or the parameter error. */
int pow_check_spot(const pow_params *p, uint32_t i, const uint8_t leaf[POW_HASH_BYTES],
                   const uint8_t *path, size_t path_len_bytes, const uint8_t root[POW_HASH_BYTES],
                   uint64_t *scratch, mu_error *errp);

#ifdef __cplusplus
}
#endif

#endif
