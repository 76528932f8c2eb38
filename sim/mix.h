/* mix.h - weighted choices: which GPU model, how many GPUs, which country.
 *
 * Written "NAME:WEIGHT,NAME:WEIGHT,..." (weights need not sum to anything;
 * "RTX 4090:3,A100 80GB:1" is three to one). A mix may allow a third field
 * per entry, "NAME:WEIGHT:EXTRA"; the country mix of the churn generator uses
 * it for the UTC offset in hours ("US:40:-5,DE:30:1,JP:20:9"). Names are
 * trimmed of surrounding blanks and may not contain ':' or ','.
 */
#ifndef MUSTER_SIM_MIX_H
#define MUSTER_SIM_MIX_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

typedef struct mix mix;

/* Parse SPEC. WHAT names the mix in errors ("--gpus"). With allow_extra,
 * entries may carry a third number. Rejects empty specs, weights that are
 * not finite and > 0, empty or duplicate names. Caller destroys. */
mix *mix_parse(const char *spec, bool allow_extra, const char *what, mu_error *errp);
void mix_destroy(mix *m);
/* A mix whose names are whole numbers in 1..max ("1:6,2:3,8:1": GPU or
 * worker counts). */
mix *mix_parse_counts(const char *spec, unsigned long long max, const char *what, mu_error *errp);
/* The name of entry i read as a count (only for mix_parse_counts mixes). */
unsigned mix_count_at(const mix *m, size_t i);

size_t mix_count(const mix *m);
/* Borrowed; valid while m lives. */
const char *mix_name(const mix *m, size_t i);
double mix_weight(const mix *m, size_t i);
/* The third field of entry i, or `otherwise` when it has none. */
double mix_extra(const mix *m, size_t i, double otherwise);

/* The entry that u in [0, 1) falls in, weight-proportionally. */
size_t mix_pick(const mix *m, double u);

#endif
