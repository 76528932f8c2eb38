/* request.h - from a ClusterSpec on the wire to a match_request for the core.
 *
 * Names become catalog and region indices here, with errors a person can
 * act on ("unknown GPU model \"RTX 4091\" (did you mean \"RTX 4090\"?)");
 * numbers are checked for sense before the core sees them.
 */
#ifndef MUSTERD_REQUEST_H
#define MUSTERD_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"
#include "error.h"
#include "match.h"
#include "muster.pb-c.h"
#include "regions.h"

#define REQUEST_MAX_HOURS (24u * 90u)

/* Fill *rq (and *hours when not NULL) from spec. For a search
 * (for_search), models may be empty and counts, hours and placement are
 * ignored. Returns 0, or -1 with the reason. */
int request_from_spec(const Muster__ClusterSpec *spec, const catalog *cat,
                      const region_table *regions, bool for_search, match_request *rq,
                      uint32_t *hours, mu_error *errp);

/* The accepted request back as a ClusterSpec, with resolved names. The
 * strings point into cat and regions and into the arrays of *storage. */
typedef struct spec_storage {
    char *models[MATCH_MAX_MODELS];
    char *regions[64];
    char *countries[MATCH_MAX_COUNTRIES];
} spec_storage;
void request_to_spec(const match_request *rq, uint32_t hours, const catalog *cat,
                     const region_table *regions, Muster__ClusterSpec *spec, spec_storage *storage);

#endif
