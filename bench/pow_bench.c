/* pow_bench.c - what the proof of work costs on this machine: the CPU
 * backend's throughput, and the broker's spot check against the worker's
 * whole computation (DESIGN.md, verification).
 *
 * For a few leaf sizes (W words of scratch, R rounds) it times the cpu
 * backend computing every leaf of a challenge, in units (mixing steps) per
 * second. The baselines, measured in the same run on the same buffer with
 * the same number of steps:
 *
 *   plain     s[j] = mix(s[j] ^ j * GOLDEN), the same multiply / xor-shift
 *             per step with no dependency between steps: what the ALU does
 *             when nothing waits for anything;
 *   chained   the same chain as the real mixing (each step needs the
 *             previous one) but reading s[j] only, no data-dependent index;
 *
 * so that real / chained is the cost of the data-dependent read, and
 * real / plain the cost of the whole design (chain + random read).
 *
 * Then, on one challenge, it times pow_check_spot (path fold plus one leaf
 * recomputed), the Merkle tree build and a path fold alone, and reports what
 * a broker pays for k spots against what the worker paid for the whole.
 *
 * Timings are reported, never asserted. Exit status 1 only when a spot
 * check of an honest answer fails (a correctness guard).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pow.h"
#include "pow_backend.h"

#define GOLDEN 0x9e3779b97f4a7c15ull
#define MUL    0xd6e8feb86659fd93ull

typedef struct size_case {
    uint32_t words;
    uint32_t rounds;
    const char *what;
} size_case;

/* From a scratch buffer that stays in L1 to one that does not fit L2. */
static const size_case CASES[] = {
    {64, 256, "512 B scratch (L1)"},
    {1024, 64, "8 KiB scratch (L1)"},
    {8192, 16, "64 KiB scratch (L2)"},
    {65536, 4, "512 KiB scratch (L2/L3)"},
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void seed_params(pow_params *p, uint32_t leaves, uint32_t words, uint32_t rounds)
{
    for (int k = 0; k < POW_SEED_BYTES; k++)
        p->seed[k] = (uint8_t)(0x5b ^ k);
    p->leaves = leaves;
    p->leaf_words = words;
    p->leaf_rounds = rounds;
}

/* The baselines leave a word in *out so that the compiler cannot drop
 * them. */
static double baseline_plain(uint64_t *s, uint32_t w, uint64_t steps, volatile uint64_t *out)
{
    for (uint32_t j = 0; j < w; j++)
        s[j] = j;
    double t0 = now_s();
    for (uint64_t done = 0; done < steps; done += w) {
        for (uint32_t j = 0; j < w; j++) {
            uint64_t x = (s[j] ^ (j * GOLDEN)) * MUL;
            s[j] = x ^ (x >> 29);
        }
    }
    double t = now_s() - t0;
    *out = s[w / 2];
    return t;
}

static double baseline_chained(uint64_t *s, uint32_t w, uint64_t steps, volatile uint64_t *out)
{
    for (uint32_t j = 0; j < w; j++)
        s[j] = j;
    uint64_t prev = 1;
    double t0 = now_s();
    for (uint64_t done = 0; done < steps; done += w) {
        for (uint32_t j = 0; j < w; j++) {
            uint64_t x = (s[j] + (prev ^ (prev >> 7))) * MUL;
            x ^= x >> 29;
            s[j] = x;
            prev = x;
        }
    }
    double t = now_s() - t0;
    *out = prev;
    return t;
}

static int usage(FILE *out)
{
    fprintf(out, "usage: pow_bench [--units N] [--json]\n"
                 "  --units N   mixing steps per measurement (default 2^27)\n"
                 "  --json      one JSON object with every figure on stdout\n");
    return out == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
    uint64_t target_units = 1ull << 27;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--units") && i + 1 < argc) {
            target_units = strtoull(argv[++i], NULL, 0);
            if (target_units < (1u << 16))
                target_units = 1u << 16;
        } else if (!strcmp(argv[i], "--help")) {
            return usage(stdout);
        } else {
            return usage(stderr);
        }
    }
    /* As the broker and the agent do: the fastest BLAKE2b. */
    if (pow_init() < 0) {
        fprintf(stderr, "pow_bench: libsodium failed to initialise\n");
        return 1;
    }
    FILE *human = json ? stderr : stdout;
    const pow_backend_ops *cpu = pow_backend_cpu();
    void *ctx = NULL;
    mu_error err;
    if (cpu->create(NULL, &ctx, &err) < 0) {
        fprintf(stderr, "pow_bench: %s\n", err.text);
        return 1;
    }

    enum { NCASES = sizeof CASES / sizeof *CASES };
    double real_ups[NCASES], plain_ups[NCASES], chained_ups[NCASES];
    uint32_t leaves_of[NCASES];
    fprintf(human, "cpu backend, one thread, %" PRIu64 " units per measurement\n", target_units);
    fprintf(human, "%-26s %8s %8s %12s %12s %12s %9s %9s\n", "leaf size", "W", "R", "units/s",
            "chained/s", "plain/s", "vs chain", "vs plain");
    for (int c = 0; c < NCASES; c++) {
        const size_case *sc = &CASES[c];
        uint64_t per_leaf = (uint64_t)sc->words * sc->rounds;
        uint64_t leaves = target_units / per_leaf;
        uint32_t l = POW_MIN_LEAVES;
        while (l < POW_MAX_LEAVES && l * 2 <= leaves)
            l *= 2;
        pow_job job = {.challenge_id = 1, .expected_ms = 0};
        seed_params(&job.params, l, sc->words, sc->rounds);
        uint64_t units = pow_units(&job.params);
        uint8_t *hashes = malloc((size_t)l * POW_HASH_BYTES);
        uint64_t *s = malloc((size_t)sc->words * sizeof *s);
        if (!hashes || !s) {
            fprintf(stderr, "pow_bench: out of memory\n");
            return 1;
        }
        double t0 = now_s();
        if (cpu->compute(ctx, &job, hashes, NULL, &err) < 0) {
            fprintf(stderr, "pow_bench: %s\n", err.text);
            return 1;
        }
        double t_real = now_s() - t0;
        volatile uint64_t sink;
        double t_chained = baseline_chained(s, sc->words, units, &sink);
        double t_plain = baseline_plain(s, sc->words, units, &sink);
        leaves_of[c] = l;
        real_ups[c] = (double)units / t_real;
        chained_ups[c] = (double)units / t_chained;
        plain_ups[c] = (double)units / t_plain;
        fprintf(human, "%-26s %8u %8u %12.3g %12.3g %12.3g %8.1fx %8.1fx\n", sc->what, sc->words,
                sc->rounds, real_ups[c], chained_ups[c], plain_ups[c], t_real / t_chained,
                t_real / t_plain);
        free(s);
        free(hashes);
    }

    /* The broker's side, on the 8 KiB case: a challenge of 4096 leaves. */
    pow_job job = {.challenge_id = 2, .expected_ms = 0};
    seed_params(&job.params, 4096, 1024, 64);
    const pow_params *p = &job.params;
    uint32_t depth = pow_depth(p);
    uint8_t *hashes = malloc((size_t)p->leaves * POW_HASH_BYTES);
    uint64_t *s = malloc((size_t)p->leaf_words * sizeof *s);
    uint8_t *path = malloc((size_t)depth * POW_HASH_BYTES);
    if (!hashes || !s || !path) {
        fprintf(stderr, "pow_bench: out of memory\n");
        return 1;
    }
    double t0 = now_s();
    if (cpu->compute(ctx, &job, hashes, NULL, &err) < 0) {
        fprintf(stderr, "pow_bench: %s\n", err.text);
        return 1;
    }
    double t_whole = now_s() - t0;
    t0 = now_s();
    pow_tree *t = pow_tree_create(p, hashes, &err);
    double t_tree = now_s() - t0;
    if (!t) {
        fprintf(stderr, "pow_bench: %s\n", err.text);
        return 1;
    }
    uint8_t root[POW_HASH_BYTES], reached[POW_HASH_BYTES];
    pow_tree_root(t, root);

    enum { CHECKS = 64, FOLDS = 10000 };
    double t_checks = 0;
    int bad = 0;
    for (uint32_t k = 0; k < CHECKS; k++) {
        uint32_t i = (uint32_t)((k * 2654435761u) % p->leaves);
        pow_tree_path(t, i, path);
        t0 = now_s();
        int rc = pow_check_spot(p, i, pow_tree_leaf(t, i), path, (size_t)depth * POW_HASH_BYTES,
                                root, s, &err);
        t_checks += now_s() - t0;
        if (rc != 0) {
            fprintf(stderr, "pow_bench: honest spot %u failed: %s\n", i, err.text);
            bad = 1;
        }
    }
    pow_tree_path(t, 7, path);
    t0 = now_s();
    for (int k = 0; k < FOLDS; k++)
        pow_path_root(7, pow_tree_leaf(t, 7), path, depth, reached);
    double t_fold = (now_s() - t0) / FOLDS;
    double check_us = t_checks / CHECKS * 1e6;
    double whole_ms = t_whole * 1e3;
    fprintf(human,
            "\nspot check, challenge L=%u W=%u R=%u (%.3g units):\n"
            "  worker: all leaves %.1f ms (cpu backend), Merkle tree %.2f ms\n"
            "  broker: pow_check_spot %.1f us per spot (path fold alone %.2f us)\n"
            "  16 spots cost the broker %.3f%% of the worker's work, 64 spots %.3f%%\n",
            p->leaves, p->leaf_words, p->leaf_rounds, (double)pow_units(p), whole_ms, t_tree * 1e3,
            check_us, t_fold * 1e6, 16 * check_us / 1e3 / whole_ms * 100,
            64 * check_us / 1e3 / whole_ms * 100);

    if (json) {
        printf("{\"units_per_measurement\":%" PRIu64 ",\"sizes\":[", target_units);
        for (int c = 0; c < NCASES; c++)
            printf("%s{\"leaf_words\":%u,\"leaf_rounds\":%u,\"leaves\":%u,\"units_per_s\":%.4g,"
                   "\"chained_baseline_units_per_s\":%.4g,\"plain_baseline_units_per_s\":%.4g}",
                   c ? "," : "", CASES[c].words, CASES[c].rounds, leaves_of[c], real_ups[c],
                   chained_ups[c], plain_ups[c]);
        printf("],\"spot\":{\"leaves\":%u,\"leaf_words\":%u,\"leaf_rounds\":%u,"
               "\"whole_ms\":%.4g,\"tree_ms\":%.4g,\"check_us\":%.4g,\"fold_us\":%.4g,"
               "\"broker_share_16_spots\":%.4g}}\n",
               p->leaves, p->leaf_words, p->leaf_rounds, whole_ms, t_tree * 1e3, check_us,
               t_fold * 1e6, 16 * check_us / 1e3 / whole_ms);
    }
    pow_tree_destroy(t);
    free(path);
    free(s);
    free(hashes);
    cpu->destroy(ctx);
    return bad;
}
