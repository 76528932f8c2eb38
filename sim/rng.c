/* rng.c - see rng.h. */
#include "rng.h"

#include <math.h>

uint64_t rng_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void seed_from(rng *r, uint64_t st)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = rng_splitmix64(&st);
    /* xoshiro's only bad state is all zeros; splitmix64 cannot produce four
     * zero outputs in a row, but make the guarantee explicit. */
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1;
}

void rng_seed(rng *r, uint64_t seed)
{
    seed_from(r, seed);
}

void rng_seed_stream(rng *r, uint64_t seed, uint64_t stream)
{
    /* Hash seed and stream separately before combining them, so that
     * (seed, stream) and (seed + 1, stream - 1) do not collide. */
    uint64_t a = seed, b = stream ^ 0xd1b54a32d192ed03ull;
    uint64_t ha = rng_splitmix64(&a);
    uint64_t hb = rng_splitmix64(&b);
    seed_from(r, ha ^ (hb * 0x2545f4914f6cdd1dull));
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double rng_uniform(rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

double rng_uniform_pos(rng *r)
{
    /* Centre of one of 2^53 cells: never 0, never 1. */
    return ((double)(rng_next(r) >> 11) + 0.5) * 0x1.0p-53;
}

uint64_t rng_below(rng *r, uint64_t n)
{
    /* Reject the short last block (Lemire's threshold). */
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t x = rng_next(r);
        if (x >= threshold)
            return x % n;
    }
}

double rng_normal(rng *r)
{
    double u1 = rng_uniform_pos(r);
    double u2 = rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

double rng_exponential(rng *r, double mean)
{
    return -mean * log(rng_uniform_pos(r));
}

double rng_weibull(rng *r, double shape, double scale)
{
    return scale * pow(-log(rng_uniform_pos(r)), 1.0 / shape);
}

double rng_lognormal(rng *r, double mu, double sigma)
{
    return exp(mu + sigma * rng_normal(r));
}
