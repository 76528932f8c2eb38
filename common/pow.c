/* pow.c - see pow.h, which specifies the function exactly. */
#include "pow.h"

#include <sodium.h>
#include <string.h>

#include "alloc.h"

#define GOLDEN 0x9e3779b97f4a7c15ull
#define MUL    0xd6e8feb86659fd93ull

/* Domain prefixes: a leaf hash can never be taken for an inner node. */
#define PREFIX_LEAF 0x00
#define PREFIX_NODE 0x01

struct pow_tree {
    uint32_t leaves;
    uint32_t depth;
    /* Heap order, 32 bytes each: node 1 is the root, the children of node
     * n are 2n and 2n+1, leaf i is node L + i; node 0 is unused. */
    uint8_t *nodes;
};

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl64(uint64_t x, unsigned r)
{
    /* (64 - r) & 63 keeps the shift below 64 when r == 0. */
    return (x << r) | (x >> ((64u - r) & 63u));
}

static void put_le32(uint8_t *b, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        b[k] = (uint8_t)(v >> (8 * k));
}

static uint64_t get_le64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--)
        v = v << 8 | b[k];
    return v;
}

int pow_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

void pow_hash(const void *data, size_t len, uint8_t out[POW_HASH_BYTES])
{
    crypto_generichash(out, POW_HASH_BYTES, data, len, NULL, 0);
}

static int is_pow2(uint32_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

int pow_params_check(const pow_params *p, mu_error *errp)
{
    if (!p)
        return errprintf(errp, "no proof-of-work parameters");
    if (!is_pow2(p->leaves) || p->leaves < POW_MIN_LEAVES || p->leaves > POW_MAX_LEAVES)
        return errprintf(errp, "leaves must be a power of two from %u to %u, not %u",
                         POW_MIN_LEAVES, POW_MAX_LEAVES, p->leaves);
    if (p->leaf_words < POW_MIN_WORDS || p->leaf_words > POW_MAX_WORDS)
        return errprintf(errp, "leaf words must be from %u to %u, not %u", POW_MIN_WORDS,
                         POW_MAX_WORDS, p->leaf_words);
    if (p->leaf_rounds < 1 || p->leaf_rounds > POW_MAX_ROUNDS)
        return errprintf(errp, "leaf rounds must be from 1 to %u, not %u", POW_MAX_ROUNDS,
                         p->leaf_rounds);
    return 0;
}

uint64_t pow_units(const pow_params *p)
{
    return (uint64_t)p->leaves * p->leaf_words * p->leaf_rounds;
}

uint32_t pow_depth(const pow_params *p)
{
    uint32_t d = 0;
    while (d < 32 && (1u << d) < p->leaves)
        d++;
    return d;
}

void pow_leaf(const pow_params *p, uint32_t i, uint64_t *s, uint8_t out[POW_HASH_BYTES])
{
    const uint32_t w = p->leaf_words;

    /* 1. Seed expansion. */
    uint8_t in[POW_SEED_BYTES + 12];
    memcpy(in, p->seed, POW_SEED_BYTES);
    put_le32(in + POW_SEED_BYTES, i);
    put_le32(in + POW_SEED_BYTES + 4, w);
    put_le32(in + POW_SEED_BYTES + 8, p->leaf_rounds);
    uint8_t h[POW_HASH_BYTES];
    pow_hash(in, sizeof in, h);
    uint64_t k[4];
    for (int m = 0; m < 4; m++)
        k[m] = get_le64(h + 8 * m);
    for (uint32_t j = 0; j < w; j++)
        s[j] = mix64(k[j & 3] + (uint64_t)(j + 1) * GOLDEN);

    /* 2. Mixing: one dependent chain of W * R steps. */
    uint64_t prev = s[w - 1];
    for (uint32_t r = 0; r < p->leaf_rounds; r++) {
        for (uint32_t j = 0; j < w; j++) {
            uint64_t a = ((prev >> 32) * w) >> 32;
            uint64_t x = s[j] + rotl64(s[a] ^ prev, (unsigned)(prev & 63));
            x *= MUL;
            x ^= x >> 29;
            s[j] = x;
            prev = x;
        }
    }

    /* 3. Leaf hash over the words in little-endian order: on a big-endian
     * host swap them in place first (scratch is ours to spoil). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (uint32_t j = 0; j < w; j++)
        s[j] = __builtin_bswap64(s[j]);
#endif
    const uint8_t prefix = PREFIX_LEAF;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, POW_HASH_BYTES);
    crypto_generichash_update(&st, &prefix, 1);
    crypto_generichash_update(&st, (const unsigned char *)s, (unsigned long long)w * 8u);
    crypto_generichash_final(&st, out, POW_HASH_BYTES);
}

static void hash_node(const uint8_t *left, const uint8_t *right, uint8_t out[POW_HASH_BYTES])
{
    uint8_t in[1 + 2 * POW_HASH_BYTES];
    in[0] = PREFIX_NODE;
    memcpy(in + 1, left, POW_HASH_BYTES);
    memcpy(in + 1 + POW_HASH_BYTES, right, POW_HASH_BYTES);
    pow_hash(in, sizeof in, out);
}

pow_tree *pow_tree_create(const pow_params *p, const uint8_t *leaf_hashes, mu_error *errp)
{
    if (pow_params_check(p, errp) < 0)
        return NULL;
    if (!leaf_hashes) {
        errprintf(errp, "no leaf hashes");
        return NULL;
    }
    pow_tree *t = mu_calloc(1, sizeof *t);
    if (!t)
        goto nomem;
    t->leaves = p->leaves;
    t->depth = pow_depth(p);
    t->nodes = mu_malloc((size_t)2 * p->leaves * POW_HASH_BYTES);
    if (!t->nodes)
        goto nomem;
    size_t l = p->leaves;
    memset(t->nodes, 0, POW_HASH_BYTES); /* node 0, unused */
    memcpy(t->nodes + l * POW_HASH_BYTES, leaf_hashes, l * POW_HASH_BYTES);
    for (size_t n = l - 1; n >= 1; n--)
        hash_node(t->nodes + 2 * n * POW_HASH_BYTES, t->nodes + (2 * n + 1) * POW_HASH_BYTES,
                  t->nodes + n * POW_HASH_BYTES);
    return t;
nomem:
    pow_tree_destroy(t);
    errprintf(errp, "out of memory for a Merkle tree of %u leaves", p->leaves);
    return NULL;
}

void pow_tree_destroy(pow_tree *t)
{
    if (!t)
        return;
    mu_free(t->nodes);
    mu_free(t);
}

void pow_tree_root(const pow_tree *t, uint8_t root[POW_HASH_BYTES])
{
    memcpy(root, t->nodes + POW_HASH_BYTES, POW_HASH_BYTES);
}

uint32_t pow_tree_leaves(const pow_tree *t)
{
    return t->leaves;
}

uint32_t pow_tree_depth(const pow_tree *t)
{
    return t->depth;
}

const uint8_t *pow_tree_leaf(const pow_tree *t, uint32_t i)
{
    if (i >= t->leaves)
        return NULL;
    return t->nodes + ((size_t)t->leaves + i) * POW_HASH_BYTES;
}

void pow_tree_path(const pow_tree *t, uint32_t i, uint8_t *path)
{
    size_t n = (size_t)t->leaves + i;
    for (uint32_t d = 0; d < t->depth; d++, n /= 2)
        memcpy(path + (size_t)d * POW_HASH_BYTES, t->nodes + (n ^ 1) * POW_HASH_BYTES,
               POW_HASH_BYTES);
}

void pow_path_root(uint32_t i, const uint8_t leaf[POW_HASH_BYTES], const uint8_t *path,
                   uint32_t depth, uint8_t root[POW_HASH_BYTES])
{
    uint8_t h[POW_HASH_BYTES];
    memcpy(h, leaf, POW_HASH_BYTES);
    for (uint32_t d = 0; d < depth; d++) {
        const uint8_t *sib = path + (size_t)d * POW_HASH_BYTES;
        /* Bit d of i says whether this node is a right child. */
        if ((i >> d) & 1)
            hash_node(sib, h, h);
        else
            hash_node(h, sib, h);
    }
    memcpy(root, h, POW_HASH_BYTES);
}

int pow_check_spot(const pow_params *p, uint32_t i, const uint8_t leaf[POW_HASH_BYTES],
                   const uint8_t *path, size_t path_len_bytes, const uint8_t root[POW_HASH_BYTES],
                   uint64_t *scratch, mu_error *errp)
{
    if (pow_params_check(p, errp) < 0)
        return -1;
    if (!leaf || !root || !scratch || (!path && path_len_bytes > 0))
        return errprintf(errp, "spot check of leaf %u without its leaf, path, root or scratch", i);
    if (i >= p->leaves)
        return errprintf(errp, "leaf %u is out of range (%u leaves)", i, p->leaves);
    uint32_t depth = pow_depth(p);
    if (path_len_bytes % POW_HASH_BYTES != 0)
        return errprintf(errp,
                         "path of leaf %u has %zu bytes, not a whole number of %d-byte hashes", i,
                         path_len_bytes, POW_HASH_BYTES);
    if (path_len_bytes / POW_HASH_BYTES != depth)
        return errprintf(errp, "path has %zu hashes, %u expected", path_len_bytes / POW_HASH_BYTES,
                         depth);
    /* The path first: it costs depth hashes, the leaf W * R steps. */
    uint8_t reached[POW_HASH_BYTES];
    pow_path_root(i, leaf, path, depth, reached);
    if (memcmp(reached, root, POW_HASH_BYTES) != 0)
        return errprintf(errp, "path of leaf %u does not lead to the committed root", i);
    uint8_t mine[POW_HASH_BYTES];
    pow_leaf(p, i, scratch, mine);
    if (memcmp(mine, leaf, POW_HASH_BYTES) != 0)
        return errprintf(errp, "leaf %u is wrong", i);
    return 0;
}
