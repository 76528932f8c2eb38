/* rng.h - the simulator's one source of randomness: seeded, deterministic.
 *
 * xoshiro256** (Blackman and Vigna, 2018) seeded through splitmix64, as its
 * authors recommend: fast, 256 bits of state, and the same sequence on every
 * machine for the same seed. Never rand() or time(): a run is reproduced by
 * its seed alone.
 *
 * The state is a plain value (four words), not an opaque object: generators
 * live on the stack, one per node or per stream, and cost no allocation.
 * rng_seed_stream() derives independent streams from one seed, so that node
 * 17's history does not change when node 16 draws one more number or when
 * the node count grows.
 */
#ifndef MUSTER_SIM_RNG_H
#define MUSTER_SIM_RNG_H

#include <stdint.h>

typedef struct rng {
    uint64_t s[4];
} rng;

/* One step of splitmix64 on *state: the seeding function, also handy as a
 * stateless hash of a counter. */
uint64_t rng_splitmix64(uint64_t *state);

/* Seed from one 64-bit value. */
void rng_seed(rng *r, uint64_t seed);
/* Seed stream number STREAM of SEED: streams of one seed are independent
 * for practical purposes (each key is hashed through splitmix64). */
void rng_seed_stream(rng *r, uint64_t seed, uint64_t stream);

/* The next 64 random bits. */
uint64_t rng_next(rng *r);
/* Uniform in [0, 1), 53 bits. */
double rng_uniform(rng *r);
/* Uniform in (0, 1): safe to take the logarithm of. */
double rng_uniform_pos(rng *r);
/* Uniform integer in [0, n) (n > 0), without modulo bias. */
uint64_t rng_below(rng *r, uint64_t n);

/* Standard normal (Box-Muller, one value per call: no cached second value,
 * so the state stays four words and streams stay independent). */
double rng_normal(rng *r);
/* Exponential with the given mean. */
double rng_exponential(rng *r, double mean);
/* Weibull with shape k > 0 and scale lambda > 0 (inversion). */
double rng_weibull(rng *r, double shape, double scale);
/* Lognormal: exp(mu + sigma * N(0,1)). */
double rng_lognormal(rng *r, double mu, double sigma);

#endif
