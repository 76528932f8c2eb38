/* test_pow.c - the proof-of-work function (common/pow.c), its Merkle tree
 * and spot check, and the agent's prover with its cpu, sim and (when built)
 * cuda backends (agent/prover.c, agent/pow_*.c).
 *
 * Timing: only lower bounds are asserted (a padded sim job cannot end
 * early); waits for results are bounded by a generous poll timeout, never
 * asserted as speeds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "pow.h"
#include "pow_backend.h"
#include "prover.h"
#include "testutil.h"
#ifdef MUSTER_HAVE_CUDA
#include "pow_cuda.h"
#endif

/* How long a test waits for a job before calling it hung. */
#define WAIT_MS 60000

static pow_params params(uint8_t seed_byte, uint32_t leaves, uint32_t words, uint32_t rounds)
{
    pow_params p;
    for (int k = 0; k < POW_SEED_BYTES; k++)
        p.seed[k] = (uint8_t)(seed_byte + k);
    p.leaves = leaves;
    p.leaf_words = words;
    p.leaf_rounds = rounds;
    return p;
}

static uint64_t *scratch_for(const pow_params *p)
{
    uint64_t *s = malloc((size_t)p->leaf_words * sizeof *s);
    assert_non_null(s);
    return s;
}

/* Every leaf hash, computed with pow_leaf (caller frees). */
static uint8_t *all_leaves(const pow_params *p)
{
    uint8_t *h = malloc((size_t)p->leaves * POW_HASH_BYTES);
    assert_non_null(h);
    uint64_t *s = scratch_for(p);
    for (uint32_t i = 0; i < p->leaves; i++)
        pow_leaf(p, i, s, h + (size_t)i * POW_HASH_BYTES);
    free(s);
    return h;
}

static void root_of(const pow_params *p, uint8_t root[POW_HASH_BYTES])
{
    uint8_t *h = all_leaves(p);
    mu_error err;
    pow_tree *t = pow_tree_create(p, h, &err);
    assert_non_null(t);
    pow_tree_root(t, root);
    pow_tree_destroy(t);
    free(h);
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t k = 0; k < n; k++)
        sprintf(out + 2 * k, "%02x", b[k]);
}

/* splitmix64, for test indices chosen "at random" from a fixed seed. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Wait until the prover's fd is readable; fail the test after WAIT_MS. */
static void wait_done(const prover *pv)
{
    struct pollfd pfd = {.fd = prover_fd(pv), .events = POLLIN};
    int n = poll(&pfd, 1, WAIT_MS);
    assert_int_equal(n, 1);
}

static int fd_readable(const prover *pv, int timeout_ms)
{
    struct pollfd pfd = {.fd = prover_fd(pv), .events = POLLIN};
    return poll(&pfd, 1, timeout_ms) == 1;
}

/* ------------------------------------------------------------------------- */

static void test_params_check(void **state)
{
    (void)state;
    mu_error err;
    pow_params p = params(1, 1024, 256, 8);
    assert_int_equal(pow_params_check(&p, &err), 0);
    assert_int_equal(pow_units(&p), 1024ull * 256 * 8);
    assert_int_equal(pow_depth(&p), 10);

    const uint32_t bad_leaves[] = {0, 1, 8, 15, 24, 1000, 65535, 131072, 0x80000000u};
    for (size_t k = 0; k < sizeof bad_leaves / sizeof *bad_leaves; k++) {
        pow_params q = p;
        q.leaves = bad_leaves[k];
        assert_int_equal(pow_params_check(&q, &err), -1);
        assert_non_null(strstr(err.text, "power of two"));
    }
    pow_params q = p;
    q.leaves = 16;
    assert_int_equal(pow_params_check(&q, NULL), 0);
    q.leaves = POW_MAX_LEAVES;
    assert_int_equal(pow_params_check(&q, NULL), 0);
    assert_int_equal(pow_depth(&q), 16);

    const uint32_t bad_words[] = {0, 7, 65537};
    for (size_t k = 0; k < 3; k++) {
        q = p;
        q.leaf_words = bad_words[k];
        assert_int_equal(pow_params_check(&q, &err), -1);
        assert_non_null(strstr(err.text, "leaf words"));
    }
    const uint32_t bad_rounds[] = {0, (1u << 20) + 1};
    for (size_t k = 0; k < 2; k++) {
        q = p;
        q.leaf_rounds = bad_rounds[k];
        assert_int_equal(pow_params_check(&q, &err), -1);
        assert_non_null(strstr(err.text, "leaf rounds"));
    }
    assert_int_equal(pow_params_check(NULL, &err), -1);

    /* The largest challenge's units fit easily. */
    q = params(1, POW_MAX_LEAVES, POW_MAX_WORDS, POW_MAX_ROUNDS);
    assert_int_equal(pow_params_check(&q, NULL), 0);
    assert_true(pow_units(&q) == 1ull << 52);
}

/* Known answers. They pin the wire-visible function: every agent and every
 * broker must compute exactly these, so a change here breaks verification
 * between versions. Change them only together with the protocol version.
 * Computed once with pow.c and matched by an independent implementation of
 * the text of pow.h (Python, hashlib.blake2b). */
#define KAT_LEAF0     "1216bac480c6fbba301f377f7e56983c728e7e5d66642068a0b852ef619bce15"
#define KAT_ROOT      "6abdc32959b97d573cb199bdcb9879ed67af32f5ad978fd42ad2a7a78a9161a4"
#define KAT_LEAF31_W9 "8eb903a817b4a631ecfa170e6f6d7b0b002fec473ea83c9fca80d04062aad00a"

static void test_known_answer(void **state)
{
    (void)state;
    /* The hash itself: BLAKE2b-256("abc"), as Python's hashlib.blake2b gives it. */
    assert_int_equal(pow_init(), 0);
    uint8_t abc[POW_HASH_BYTES];
    char text0[2 * POW_HASH_BYTES + 1];
    pow_hash("abc", 3, abc);
    hex(abc, POW_HASH_BYTES, text0);
    assert_string_equal(text0, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");

    pow_params p = params(0, 16, 64, 4); /* seed 00 01 02 .. 1f */
    uint64_t *s = scratch_for(&p);
    uint8_t leaf[POW_HASH_BYTES], again[POW_HASH_BYTES];
    char text[2 * POW_HASH_BYTES + 1];

    pow_leaf(&p, 0, s, leaf);
    hex(leaf, POW_HASH_BYTES, text);
    assert_string_equal(text, KAT_LEAF0);

    /* The scratch buffer's earlier contents do not matter. */
    memset(s, 0xa5, p.leaf_words * sizeof *s);
    pow_leaf(&p, 0, s, again);
    assert_memory_equal(leaf, again, POW_HASH_BYTES);

    uint8_t root[POW_HASH_BYTES];
    root_of(&p, root);
    hex(root, POW_HASH_BYTES, text);
    assert_string_equal(text, KAT_ROOT);

    /* A leaf with a scratch size that is not a multiple of the BLAKE2b
     * block, and several rounds, is pinned too. */
    pow_params q = params(0x40, 32, 9, 3);
    uint64_t *s9 = scratch_for(&q);
    pow_leaf(&q, 31, s9, leaf);
    hex(leaf, POW_HASH_BYTES, text);
    assert_string_equal(text, KAT_LEAF31_W9);
    free(s9);
    free(s);
}

static void test_leaves_differ(void **state)
{
    (void)state;
    pow_params p = params(7, 64, 32, 2);
    uint64_t *s = scratch_for(&p);
    uint8_t a[POW_HASH_BYTES], b[POW_HASH_BYTES];

    pow_leaf(&p, 3, s, a);
    pow_leaf(&p, 4, s, b);
    assert_memory_not_equal(a, b, POW_HASH_BYTES);

    pow_params q = p;
    q.seed[31] ^= 1;
    pow_leaf(&q, 3, s, b);
    assert_memory_not_equal(a, b, POW_HASH_BYTES);

    q = p;
    q.leaf_rounds = 3;
    pow_leaf(&q, 3, s, b);
    assert_memory_not_equal(a, b, POW_HASH_BYTES);

    q = p;
    q.leaf_words = 31; /* the size is hashed in: no reuse across sizes */
    pow_leaf(&q, 3, s, b);
    assert_memory_not_equal(a, b, POW_HASH_BYTES);

    /* The leaf count is not part of a leaf (only of the tree). */
    q = p;
    q.leaves = 128;
    pow_leaf(&q, 3, s, b);
    assert_memory_equal(a, b, POW_HASH_BYTES);
    free(s);
}

static void test_tree_roundtrip(void **state)
{
    (void)state;
    pow_params p = params(9, 64, 16, 2);
    uint8_t *h = all_leaves(&p);
    mu_error err;
    pow_tree *t = pow_tree_create(&p, h, &err);
    assert_non_null(t);
    assert_int_equal(pow_tree_leaves(t), 64);
    assert_int_equal(pow_tree_depth(t), 6);
    uint8_t root[POW_HASH_BYTES], reached[POW_HASH_BYTES];
    pow_tree_root(t, root);
    uint8_t path[6 * POW_HASH_BYTES];
    uint64_t *s = scratch_for(&p);
    for (uint32_t i = 0; i < 64; i++) {
        assert_memory_equal(pow_tree_leaf(t, i), h + (size_t)i * POW_HASH_BYTES, POW_HASH_BYTES);
        pow_tree_path(t, i, path);
        pow_path_root(i, pow_tree_leaf(t, i), path, 6, reached);
        assert_memory_equal(reached, root, POW_HASH_BYTES);
        assert_int_equal(
            pow_check_spot(&p, i, pow_tree_leaf(t, i), path, sizeof path, root, s, &err), 0);
    }
    assert_null(pow_tree_leaf(t, 64));
    pow_tree_destroy(t);
    pow_tree_destroy(NULL);

    /* Bad input to the tree. */
    pow_params q = p;
    q.leaves = 48;
    assert_null(pow_tree_create(&q, h, &err));
    assert_non_null(strstr(err.text, "power of two"));
    assert_null(pow_tree_create(&p, NULL, &err));
    free(s);
    free(h);
}

static void test_check_spot_rejects(void **state)
{
    (void)state;
    pow_params p = params(11, 64, 16, 2);
    uint8_t *h = all_leaves(&p);
    mu_error err;
    uint64_t *s = scratch_for(&p);
    const uint32_t depth = 6;
    uint8_t root[POW_HASH_BYTES], path[6 * POW_HASH_BYTES], leaf[POW_HASH_BYTES];

    /* A worker that committed to a wrong leaf 17 (its tree is consistent:
     * only recomputing the leaf catches it). */
    uint8_t *bad = malloc((size_t)p.leaves * POW_HASH_BYTES);
    assert_non_null(bad);
    memcpy(bad, h, (size_t)p.leaves * POW_HASH_BYTES);
    pow_sim_garbage(17, bad + 17 * POW_HASH_BYTES);
    pow_tree *t = pow_tree_create(&p, bad, &err);
    assert_non_null(t);
    pow_tree_root(t, root);
    pow_tree_path(t, 17, path);
    assert_int_equal(pow_check_spot(&p, 17, pow_tree_leaf(t, 17), path, sizeof path, root, s, &err),
                     -1);
    assert_string_equal(err.text, "leaf 17 is wrong");
    /* Its honest leaves still pass. */
    pow_tree_path(t, 16, path);
    assert_int_equal(pow_check_spot(&p, 16, pow_tree_leaf(t, 16), path, sizeof path, root, s, &err),
                     0);
    pow_tree_destroy(t);

    /* An honest tree, and tampered answers. */
    t = pow_tree_create(&p, h, &err);
    assert_non_null(t);
    pow_tree_root(t, root);
    pow_tree_path(t, 17, path);
    memcpy(leaf, pow_tree_leaf(t, 17), POW_HASH_BYTES);
    assert_int_equal(pow_check_spot(&p, 17, leaf, path, sizeof path, root, s, &err), 0);

    /* the right leaf, another one claimed */
    leaf[0] ^= 1;
    assert_int_equal(pow_check_spot(&p, 17, leaf, path, sizeof path, root, s, &err), -1);
    assert_string_equal(err.text, "path of leaf 17 does not lead to the committed root");
    leaf[0] ^= 1;

    /* one path hash tampered with, at each level */
    for (uint32_t d = 0; d < depth; d++) {
        path[d * POW_HASH_BYTES + 5] ^= 0x80;
        assert_int_equal(pow_check_spot(&p, 17, leaf, path, sizeof path, root, s, &err), -1);
        assert_string_equal(err.text, "path of leaf 17 does not lead to the committed root");
        path[d * POW_HASH_BYTES + 5] ^= 0x80;
    }

    /* a short path, a long one, a ragged one, none */
    assert_int_equal(
        pow_check_spot(&p, 17, leaf, path, sizeof path - POW_HASH_BYTES, root, s, &err), -1);
    assert_string_equal(err.text, "path has 5 hashes, 6 expected");
    uint8_t longer[7 * POW_HASH_BYTES] = {0};
    memcpy(longer, path, sizeof path);
    assert_int_equal(pow_check_spot(&p, 17, leaf, longer, sizeof longer, root, s, &err), -1);
    assert_string_equal(err.text, "path has 7 hashes, 6 expected");
    assert_int_equal(pow_check_spot(&p, 17, leaf, path, sizeof path - 1, root, s, &err), -1);
    assert_non_null(strstr(err.text, "whole number"));
    assert_int_equal(pow_check_spot(&p, 17, leaf, NULL, 0, root, s, &err), -1);
    assert_string_equal(err.text, "path has 0 hashes, 6 expected");

    /* the path of leaf 18 offered for leaf 17 (with leaf 17's own hash), and
     * leaf 18's whole answer offered as leaf 17's */
    uint8_t path18[6 * POW_HASH_BYTES];
    pow_tree_path(t, 18, path18);
    assert_int_equal(pow_check_spot(&p, 17, leaf, path18, sizeof path18, root, s, &err), -1);
    assert_string_equal(err.text, "path of leaf 17 does not lead to the committed root");
    assert_int_equal(
        pow_check_spot(&p, 17, pow_tree_leaf(t, 18), path18, sizeof path18, root, s, &err), -1);
    assert_string_equal(err.text, "path of leaf 17 does not lead to the committed root");
    /* ... and for its own index it is fine */
    assert_int_equal(
        pow_check_spot(&p, 18, pow_tree_leaf(t, 18), path18, sizeof path18, root, s, &err), 0);

    /* another root */
    uint8_t other[POW_HASH_BYTES];
    memcpy(other, root, POW_HASH_BYTES);
    other[31] ^= 1;
    assert_int_equal(pow_check_spot(&p, 17, leaf, path, sizeof path, other, s, &err), -1);
    assert_string_equal(err.text, "path of leaf 17 does not lead to the committed root");

    /* another challenge's parameters (other seed): the path holds, the leaf
     * does not */
    pow_params q = p;
    q.seed[0] ^= 0xff;
    assert_int_equal(pow_check_spot(&q, 17, leaf, path, sizeof path, root, s, &err), -1);
    assert_string_equal(err.text, "leaf 17 is wrong");

    /* out of range, bad parameters, missing buffers */
    assert_int_equal(pow_check_spot(&p, 64, leaf, path, sizeof path, root, s, &err), -1);
    assert_string_equal(err.text, "leaf 64 is out of range (64 leaves)");
    q = p;
    q.leaf_rounds = 0;
    assert_int_equal(pow_check_spot(&q, 17, leaf, path, sizeof path, root, s, &err), -1);
    assert_non_null(strstr(err.text, "leaf rounds"));
    assert_int_equal(pow_check_spot(&p, 17, leaf, path, sizeof path, root, NULL, &err), -1);
    assert_int_equal(pow_check_spot(&p, 17, NULL, path, sizeof path, root, s, NULL), -1);

    pow_tree_destroy(t);
    free(bad);
    free(s);
    free(h);
}

/* ------------------------------------------------------------------------- */

static prover *make_prover(const char *backend, double speed, double skip, uint32_t jitter)
{
    prover_config cfg = {
        .backend = backend, .sim_speed = speed, .sim_skip = skip, .sim_jitter_ms = jitter};
    mu_error err = {""};
    prover *pv = prover_create(&cfg, &err);
    if (!pv)
        fail_msg("prover_create(%s): %s", backend, err.text);
    return pv;
}

static void test_prover_background(void **state)
{
    (void)state;
    prover *pv = make_prover("cpu", 0, 0, 0);
    assert_string_equal(prover_backend_name(pv), "cpu");
    mu_error err;
    uint64_t id = 0;
    uint8_t root[POW_HASH_BYTES], want[POW_HASH_BYTES];
    uint32_t ms = 0;

    /* Nothing yet. */
    assert_int_equal(prover_take(pv, &id, root, &ms, &err), 0);
    assert_false(fd_readable(pv, 0));

    pow_params p = params(21, 256, 512, 8);
    assert_int_equal(prover_start(pv, 42, &p, 100, &err), 0);
    wait_done(pv);
    assert_int_equal(prover_take(pv, &id, root, &ms, &err), 1);
    assert_int_equal(id, 42);
    root_of(&p, want);
    assert_memory_equal(root, want, POW_HASH_BYTES);
    /* Taken: the fd is quiet again and there is nothing more to take. */
    assert_false(fd_readable(pv, 0));
    assert_int_equal(prover_take(pv, &id, root, &ms, &err), 0);

    /* The broker's spot check, as it would run it. */
    const uint32_t depth = pow_depth(&p);
    uint32_t idx[POW_MAX_SPOT];
    uint64_t rs = 99;
    for (size_t k = 0; k < POW_MAX_SPOT; k++)
        idx[k] = (uint32_t)(next_rand(&rs) % p.leaves);
    idx[0] = 0;
    idx[1] = p.leaves - 1;
    uint8_t *leaves = malloc(POW_MAX_SPOT * POW_HASH_BYTES);
    uint8_t *paths = malloc((size_t)POW_MAX_SPOT * depth * POW_HASH_BYTES);
    assert_non_null(leaves);
    assert_non_null(paths);
    assert_int_equal(prover_spots(pv, 42, idx, POW_MAX_SPOT, leaves, paths, &err), 0);
    uint64_t *s = scratch_for(&p);
    for (size_t k = 0; k < POW_MAX_SPOT; k++) {
        if (pow_check_spot(&p, idx[k], leaves + k * POW_HASH_BYTES,
                           paths + k * depth * POW_HASH_BYTES, (size_t)depth * POW_HASH_BYTES, root,
                           s, &err) != 0)
            fail_msg("spot %u: %s", idx[k], err.text);
    }
    /* Refusals, with nothing written. */
    memset(leaves, 0x5a, POW_HASH_BYTES);
    assert_int_equal(prover_spots(pv, 41, idx, 1, leaves, paths, &err), -1);
    assert_non_null(strstr(err.text, "not the last one finished"));
    assert_int_equal(leaves[0], 0x5a);
    uint32_t out_of_range[2] = {3, 256};
    assert_int_equal(prover_spots(pv, 42, out_of_range, 2, leaves, paths, &err), -1);
    assert_string_equal(err.text, "spot 256 is out of range (256 leaves)");
    assert_int_equal(leaves[0], 0x5a);
    assert_int_equal(prover_spots(pv, 42, idx, POW_MAX_SPOT + 1, leaves, paths, &err), -1);
    assert_int_equal(prover_spots(pv, 42, idx, 0, NULL, NULL, &err), 0);

    /* Bad parameters: refused, and the last result stays answerable. */
    pow_params bad = p;
    bad.leaves = 100;
    assert_int_equal(prover_start(pv, 43, &bad, 100, &err), -1);
    assert_non_null(strstr(err.text, "power of two"));
    assert_int_equal(prover_spots(pv, 42, idx, 1, leaves, paths, &err), 0);

    free(s);
    free(paths);
    free(leaves);
    prover_destroy(pv);
    prover_destroy(NULL);
}

static void test_prover_cancel(void **state)
{
    (void)state;
    prover *pv = make_prover("cpu", 0, 0, 0);
    mu_error err;
    uint64_t id = 0;
    uint8_t root[POW_HASH_BYTES], want[POW_HASH_BYTES];
    uint32_t ms = 0;

    /* Job 1 would take hours; job 2 replaces it at once. */
    pow_params huge = params(31, POW_MAX_LEAVES, 4096, 1024);
    pow_params small = params(32, 16, 64, 4);
    assert_int_equal(prover_start(pv, 1, &huge, 1000, &err), 0);
    clock_sleep_ms(20, NULL); /* let it get going */
    assert_int_equal(prover_take(pv, &id, root, &ms, &err), 0);
    assert_int_equal(prover_start(pv, 2, &small, 10, &err), 0);
    wait_done(pv);
    assert_int_equal(prover_take(pv, &id, root, &ms, &err), 1);
    assert_int_equal(id, 2);
    root_of(&small, want);
    assert_memory_equal(root, want, POW_HASH_BYTES);
    /* Nothing of job 1 ever arrives, and its spots are refused. */
    assert_false(fd_readable(pv, 100));
    uint32_t i0 = 0;
    uint8_t leaf[POW_HASH_BYTES], path[16 * POW_HASH_BYTES];
    assert_int_equal(prover_spots(pv, 1, &i0, 1, leaf, path, &err), -1);
    assert_int_equal(prover_spots(pv, 2, &i0, 1, leaf, path, &err), 0);

    /* A result not taken before the next start is dropped. */
    pow_params small3 = params(33, 16, 64, 4);
    assert_int_equal(prover_start(pv, 3, &small3, 10, &err), 0);
    wait_done(pv);
    assert_int_equal(prover_start(pv, 4, &small, 10, &err), 0);
    wait_done(pv);
    assert_int_equal(prover_take(pv, &id, root, &ms, &err), 1);
    assert_int_equal(id, 4);
    assert_memory_equal(root, want, POW_HASH_BYTES);
    /* The tree kept is job 4's. */
    assert_int_equal(prover_spots(pv, 3, &i0, 1, leaf, path, &err), -1);
    assert_int_equal(prover_spots(pv, 4, &i0, 1, leaf, path, &err), 0);

    /* Destroying a prover in the middle of a long job returns promptly
     * (the job notices between leaves). */
    assert_int_equal(prover_start(pv, 5, &huge, 1000, &err), 0);
    clock_sleep_ms(20, NULL);
    prover_destroy(pv);
}

static void test_prover_config(void **state)
{
    (void)state;
    mu_error err;
    prover_config cfg = {.backend = "gpu"};
    assert_null(prover_create(&cfg, &err));
    assert_non_null(strstr(err.text, "unknown proof-of-work backend \"gpu\""));

    cfg = (prover_config){.backend = "sim", .sim_speed = -1};
    assert_null(prover_create(&cfg, &err));
    assert_non_null(strstr(err.text, "speed"));
    cfg = (prover_config){.backend = "sim", .sim_skip = 1.0};
    assert_null(prover_create(&cfg, &err));
    assert_non_null(strstr(err.text, "skip"));

    /* "auto" (and NULL: auto) always gives a prover: cuda or cpu. */
    prover *pv = prover_create(NULL, &err);
    assert_non_null(pv);
    const char *name = prover_backend_name(pv);
    assert_true(strcmp(name, "cpu") == 0 || strcmp(name, "cuda") == 0);
    prover_destroy(pv);

#ifndef MUSTER_HAVE_CUDA
    cfg = (prover_config){.backend = "cuda"};
    assert_null(prover_create(&cfg, &err));
    assert_non_null(strstr(err.text, "not built in"));
#endif
}

/* A cheater that skipped half its leaves: the spot checks of exactly the
 * skipped spots fail. */
static void test_sim_skip(void **state)
{
    (void)state;
    prover *pv = make_prover("sim", 1.0, 0.5, 0);
    assert_string_equal(prover_backend_name(pv), "sim");
    pow_params p = params(41, 64, 32, 2);
    mu_error err;
    uint64_t id;
    uint8_t root[POW_HASH_BYTES];
    uint32_t ms;
    assert_int_equal(prover_start(pv, 7, &p, 0, &err), 0);
    wait_done(pv);
    assert_int_equal(prover_take(pv, &id, root, &ms, &err), 1);
    assert_int_equal(id, 7);

    /* The skipped set is a function of the seed: about half. */
    unsigned skipped = 0;
    for (uint32_t i = 0; i < p.leaves; i++)
        skipped += pow_sim_skipped(&p, 0.5, i);
    assert_in_range(skipped, 16, 48);
    assert_false(pow_sim_skipped(&p, 0, 5));

    /* 16 spots from a fixed seed; each fails exactly when it was skipped,
     * and for this seed some were (so the cheater is caught). */
    enum { SPOTS = 16 };
    const uint32_t depth = pow_depth(&p);
    uint32_t idx[SPOTS];
    uint64_t rs = 2024;
    for (int k = 0; k < SPOTS; k++)
        idx[k] = (uint32_t)(next_rand(&rs) % p.leaves);
    uint8_t leaves[SPOTS * POW_HASH_BYTES], paths[SPOTS * 6 * POW_HASH_BYTES];
    assert_int_equal(depth, 6);
    assert_int_equal(prover_spots(pv, 7, idx, SPOTS, leaves, paths, &err), 0);
    uint64_t *s = scratch_for(&p);
    unsigned failed = 0, expected = 0;
    for (int k = 0; k < SPOTS; k++) {
        bool skip = pow_sim_skipped(&p, 0.5, idx[k]);
        int rc = pow_check_spot(&p, idx[k], leaves + k * POW_HASH_BYTES,
                                paths + (size_t)k * depth * POW_HASH_BYTES,
                                (size_t)depth * POW_HASH_BYTES, root, s, &err);
        assert_int_equal(rc, skip ? -1 : 0);
        if (skip) {
            char want[64];
            snprintf(want, sizeof want, "leaf %u is wrong", idx[k]);
            assert_string_equal(err.text, want);
        }
        failed += rc != 0;
        expected += skip;
    }
    assert_int_equal(failed, expected);
    assert_true(failed > 0);
    free(s);
    prover_destroy(pv);
}

/* A spoofer at half the claimed speed takes at least twice the honest time
 * (lower bounds only: the machine may be slower, never faster). */
static void test_sim_speed(void **state)
{
    (void)state;
    prover *pv = make_prover("sim", 0.5, 0, 0);
    pow_params p = params(51, 16, 16, 1);
    mu_error err;
    uint64_t id;
    uint8_t root[POW_HASH_BYTES], want[POW_HASH_BYTES];
    uint32_t ms = 0;
    uint64_t t0 = clock_mono_ms();
    assert_int_equal(prover_start(pv, 8, &p, 40, &err), 0);
    wait_done(pv);
    uint64_t waited = clock_mono_ms() - t0;
    assert_int_equal(prover_take(pv, &id, root, &ms, &err), 1);
    assert_true(ms >= 80);
    assert_true(waited >= 80);
    root_of(&p, want); /* skip 0: the real work */
    assert_memory_equal(root, want, POW_HASH_BYTES);
    prover_destroy(pv);

    /* Jitter only adds. */
    pv = make_prover("sim", 1.0, 0, 30);
    assert_int_equal(prover_start(pv, 9, &p, 40, &err), 0);
    wait_done(pv);
    assert_int_equal(prover_take(pv, &id, root, &ms, &err), 1);
    assert_true(ms >= 40);
    prover_destroy(pv);
}

/* Every allocation failing in turn: pow_tree_create, prover_create and a
 * job fail with a reason and leak nothing (ASan's leak check watches). */
static void test_alloc_failures(void **state)
{
    (void)state;
    mu_error err;
    pow_params p = params(61, 16, 16, 1);
    uint8_t *h = all_leaves(&p);
    size_t n;
    for (n = 1;; n++) {
        test_fail_alloc_after(n);
        pow_tree *t = pow_tree_create(&p, h, &err);
        test_fail_alloc_after(0);
        if (t) {
            pow_tree_destroy(t);
            break;
        }
        assert_non_null(strstr(err.text, "out of memory"));
    }
    assert_int_equal(n, 3);

    prover_config cfg = {.backend = "sim"};
    for (n = 1;; n++) {
        test_fail_alloc_after(n);
        prover *pv = prover_create(&cfg, &err);
        test_fail_alloc_after(0);
        if (pv) {
            prover_destroy(pv);
            break;
        }
        assert_non_null(strstr(err.text, "out of memory"));
    }
    assert_true(n > 1);

    /* Inside the job (on the prover's thread): leaf buffer, scratch, tree. */
    uint8_t want[POW_HASH_BYTES], root[POW_HASH_BYTES];
    root_of(&p, want);
    prover *pv = make_prover("cpu", 0, 0, 0);
    uint64_t id;
    uint32_t ms;
    assert_int_equal(prover_start(pv, 99, &p, 0, &err), 0);
    wait_done(pv);
    assert_int_equal(prover_take(pv, &id, root, &ms, &err), 1);
    for (n = 1;; n++) {
        test_fail_alloc_after(n);
        assert_int_equal(prover_start(pv, 100 + n, &p, 0, &err), 0);
        wait_done(pv);
        int rc = prover_take(pv, &id, root, &ms, &err);
        test_fail_alloc_after(0);
        assert_int_equal(id, 100 + n);
        if (rc == 1) {
            assert_memory_equal(root, want, POW_HASH_BYTES);
            break;
        }
        assert_int_equal(rc, -1);
        assert_non_null(strstr(err.text, "out of memory"));
        /* A failed job leaves no tree to answer from, and the one before
         * it is gone too. */
        uint32_t i0 = 0;
        uint8_t leaf[POW_HASH_BYTES], path[4 * POW_HASH_BYTES];
        assert_int_equal(prover_spots(pv, 100 + n, &i0, 1, leaf, path, &err), -1);
        assert_int_equal(prover_spots(pv, 99, &i0, 1, leaf, path, &err), -1);
    }
    assert_int_equal(n, 5);
    prover_destroy(pv);
    free(h);
}

/* The CUDA kernel's code, run on the host, against pow_leaf; and on a
 * device when there is one. */
static void test_cuda(void **state)
{
    (void)state;
#ifndef MUSTER_HAVE_CUDA
    printf("skipped: the CUDA backend is not built\n");
    skip();
#else
    const pow_params cases[] = {
        params(0, 16, 64, 4), params(0x40, 32, 9, 3), params(3, 16, 8, 1),   params(4, 16, 15, 2),
        params(5, 16, 16, 5), params(6, 16, 17, 1),   params(7, 16, 100, 7), params(8, 16, 1000, 2),
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const pow_params *p = &cases[c];
        uint64_t *s = scratch_for(p);
        for (uint32_t i = 0; i < p->leaves; i += 5) {
            uint8_t a[POW_HASH_BYTES], b[POW_HASH_BYTES];
            pow_leaf(p, i, s, a);
            pow_cuda_leaf_host(p, i, s, b);
            assert_memory_equal(a, b, POW_HASH_BYTES);
        }
        free(s);
    }

    const pow_backend_ops *ops = pow_backend_cuda();
    void *ctx = NULL;
    mu_error err;
    if (ops->create(NULL, &ctx, &err) < 0) {
        assert_non_null(strstr(err.text, "no CUDA device"));
        /* Asked for by name, the prover says why. */
        prover_config cfg = {.backend = "cuda"};
        assert_null(prover_create(&cfg, &err));
        assert_non_null(strstr(err.text, "no CUDA device"));
        printf("skipped: no CUDA device (%s)\n", err.text);
        skip();
        return;
    }
    pow_job job = {.challenge_id = 1, .params = params(12, 1024, 300, 16), .expected_ms = 0};
    uint8_t *gpu = malloc((size_t)job.params.leaves * POW_HASH_BYTES);
    assert_non_null(gpu);
    assert_int_equal(ops->compute(ctx, &job, gpu, NULL, &err), 0);
    uint8_t *cpu = all_leaves(&job.params);
    assert_memory_equal(gpu, cpu, (size_t)job.params.leaves * POW_HASH_BYTES);
    free(cpu);
    free(gpu);
    ops->destroy(ctx);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_check),       cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_leaves_differ),      cmocka_unit_test(test_tree_roundtrip),
        cmocka_unit_test(test_check_spot_rejects), cmocka_unit_test(test_prover_background),
        cmocka_unit_test(test_prover_cancel),      cmocka_unit_test(test_prover_config),
        cmocka_unit_test(test_sim_skip),           cmocka_unit_test(test_sim_speed),
        cmocka_unit_test(test_alloc_failures),     cmocka_unit_test(test_cuda),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
