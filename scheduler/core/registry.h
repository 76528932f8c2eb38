/* registry.h - the inventory of workers, and their liveness.
 *
 * Pure: no sockets, no files, no clock. Every call that depends on time
 * takes `now` (UNIX milliseconds, never decreasing between calls); state
 * changes are reported to an observer the shell provides, which turns them
 * into logs and events.
 *
 * Liveness follows the Paranoid Pirate pattern: any traffic from a worker
 * counts as a heartbeat. A worker silent for 1.5 heartbeat intervals (one
 * missed beat plus half an interval for jitter) is suspect; silent for
 * `liveness` intervals it is offline. Workers wait in two lists ordered by
 * when they were last heard from, so a tick touches only the workers that
 * actually change state and stops at the first live one.
 */
#ifndef MUSTER_REGISTRY_H
#define MUSTER_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "error.h"
#include "ids.h"
#include "regions.h"
#include "tiers.h"
#include "uptime.h"

/* Values match WorkerState in proto/muster.proto. */
typedef enum worker_state {
    WORKER_NEW = 0, /* only as the `from` of a first registration */
    WORKER_ONLINE = 1,
    WORKER_SUSPECT = 2,
    WORKER_OFFLINE = 3,
} worker_state;

#define WORKER_MAX_DEVICES 16
#define REGION_UNKNOWN     255 /* region_idx of a worker that gave no country */

/* Whether a worker is hired (owned by the scheduler, not the registry). */
typedef enum worker_alloc {
    WORKER_FREE = 0,
    WORKER_ALLOCATED = 1, /* member of a cluster */
    WORKER_RESERVED = 2,  /* held by a reservation, in use by none of its clusters */
} worker_alloc;

typedef struct worker_device {
    uint16_t pci_vendor_id;
    uint16_t pci_device_id;
    float link_speed_gbps;
    uint64_t vram_mib;
    char pci_bus_id[16];
    char driver_version[24];
} worker_device;

/* A registered worker. Read-only outside registry.c; pointers returned by
 * the registry are borrowed and stay valid until registry_destroy. */
typedef struct worker {
    /* The first 128 bytes hold what a heartbeat, a leave, the index and the
     * matcher read, so that these take two or three cache lines, not all
     * four, and the strings stay cold. Records are not aligned to lines
     * on purpose: at a 256-byte stride, every record's hot lines would
     * fall into the same half of each cache's sets. */
    mu_id id;
    uint64_t last_seen;
    uptime up;           /* rolling uptime, see uptime.h */
    float uptime;        /* uptime_value(&up), kept with it */
    uint32_t price_uusd; /* per GPU hour, micro-USD (pricing.h) */
    uint32_t slot;       /* its place in the registry, for good */
    uint32_t bw_down_mbps;
    uint16_t model_idx; /* catalog index of model (0 when model is NULL) */
    uint16_t gpu_count;
    uint8_t region_idx; /* index in the region table, or REGION_UNKNOWN */
    /* Owned by the scheduler (scheduler.c), never touched here: */
    uint8_t alloc;  /* worker_alloc */
    uint8_t vstate; /* verify_state (verify.h), owned by the verifier; 1: passed */
    bool simulated;
    worker_state state;
    tier tier;
    uint64_t gone_at;       /* suspect because its connection closed at; 0: not */
    const gpu_model *model; /* borrowed from the catalog; NULL: no GPU, no CPU entry */
    /* Owned by the scheduler, as alloc: */
    uint32_t cluster;       /* cluster slot while allocated */
    uint32_t resv;          /* reservation slot while held by one (reserved, or allocated to
                             * a cluster carved out of it); UINT32_MAX: none */
    uint64_t registered_at; /* first registration */
    uint64_t connected_at;  /* latest registration */
    uint32_t bw_up_mbps;
    uint32_t cpu_cores;
    uint64_t memory_mib;
    /* Cold: read to show a worker, not to schedule it. */
    const char *region; /* borrowed from the region table, or "unknown" */
    char *hostname;
    worker_device *devices; /* gpu_count entries */
    char *agent_version;
    char fingerprint[17];
    char address[48]; /* the peer's network address as the shell saw it; "" unknown */
    char country[3];  /* "" when the agent did not say */
} worker;

/* A registration as the agent sent it (borrowed strings). */
typedef struct worker_device_spec {
    const char *model_claim; /* NVML name, catalog name or alias; may be "" */
    uint16_t pci_vendor_id;
    uint16_t pci_device_id;
    const char *pci_bus_id;
    uint64_t vram_mib;
    const char *driver_version;
    float link_speed_gbps;
} worker_device_spec;

typedef struct worker_spec {
    const char *id;
    const char *hostname;
    const char *fingerprint;
    const char *address; /* where the registration came from (not from the agent) */
    const worker_device_spec *devices;
    size_t n_devices;
    uint32_t cpu_cores;
    uint64_t memory_mib;
    const char *country;
    const char *region;
    uint32_t bw_down_mbps;
    uint32_t bw_up_mbps;
    const char *agent_version;
    bool simulated;
    uint32_t price_uusd; /* per GPU hour; 0: the default (pricing.h) */
} worker_spec;

typedef struct registry_config {
    uint32_t heartbeat_interval_ms; /* >= 10 */
    uint32_t liveness;              /* >= 2 intervals before offline */
    uint32_t reconnect_grace_ms;    /* closed connection -> offline; 0: 1.5 intervals */
    const catalog *cat;             /* borrowed, required */
    const region_table *regions;    /* borrowed, required */
    const tier_table *tiers;        /* borrowed, required */
} registry_config;

typedef struct registry registry;

/* What the registry tells its owner. Both callbacks are optional. */
typedef struct registry_observer {
    /* Every liveness change; `reason` says why in a few words. */
    void (*state)(void *arg, worker *w, worker_state from, worker_state to, const char *reason);
    /* Attributes changed without a state change: a re-registration of an
     * online worker, or its uptime refreshed. */
    void (*updated)(void *arg, worker *w);
    void *arg;
} registry_observer;

/* How often an online worker's uptime is refreshed on its heartbeats. */
#define REGISTRY_UPTIME_REFRESH_MS (3600u * 1000u)

/* NULL with reason if the config is invalid or memory runs out. The
 * observer (may be NULL) is copied. */
registry *registry_create(const registry_config *cfg, const registry_observer *obs, mu_error *errp);
void registry_destroy(registry *r);

/* Register a new worker or re-register a known one (its registered_at and
 * id are kept; everything else is replaced). Validates the spec against the
 * catalog and region table: on failure returns NULL with a reason a worker
 * operator can act on, and the registry is unchanged. */
const worker *registry_register(registry *r, const worker_spec *spec, uint64_t now, mu_error *errp);

/* A worker saved before a restart: validated like a registration, but
 * offline until heard from, with its first registration time and uptime
 * history. The observer is not called. NULL with a reason (also when the
 * id is already known). */
const worker *registry_restore(registry *r, const worker_spec *spec, uint64_t registered_at,
                               const uptime *up, mu_error *errp);

/* Traffic from a worker: it is alive at `now`. Returns 0, or -1 with errno
 * ENOENT (unknown id) or ESTALE (worker is offline and must register again). */
int registry_touch(registry *r, const mu_id *id, uint64_t now);

/* What a caller will soon do with a worker, which says what to load. */
typedef enum prefetch_for {
    PREFETCH_HEARTBEAT, /* a heartbeat or a leave: the record's first 96 bytes */
    PREFETCH_REGISTER,  /* a registration: all of the record and its strings */
} prefetch_for;

/* A hint with no effect: the caller will soon name the worker with this id
 * (`what` says how), which it last saw at slot_hint (UINT32_MAX: unknown).
 * Starts loading what that call reads, so that a caller holding a queue of
 * them overlaps the memory latency of each worker with the work on the
 * ones before it. Memory is a handful of misses per worker, and a core can
 * wait on only so many at once: loading less for a heartbeat is what lets
 * more of them overlap. Stage 0 loads what the id and slot lead to; stage
 * 1, asked for later, what that in turn points to (the strings and devices
 * of a registration); stage 2 loads nothing here (the index's third stage:
 * sched_prefetch). */
void registry_prefetch(const registry *r, const mu_id *id, uint32_t slot_hint, prefetch_for what,
                       int stage);

/* The worker's connection closed (the shell saw it): it is suspect at once
 * and offline when it is not heard from within the reconnect grace, which
 * is what lets a crashed agent be replaced long before silence alone would
 * tell. Anything heard from it before then (registry_touch) brings it back.
 * 0, or -1 with ENOENT. */
int registry_disconnected(registry *r, const mu_id *id, uint64_t now);

/* A clean goodbye: the worker is offline at once. 0, or -1 with ENOENT. */
int registry_goodbye(registry *r, const mu_id *id, uint64_t now, const char *reason);

/* Advance time to `now`: silent workers become suspect, then offline.
 * Returns the number of state changes. */
size_t registry_tick(registry *r, uint64_t now);

/* Earliest time at which registry_tick could change anything, or UINT64_MAX. */
uint64_t registry_next_deadline(const registry *r);

const worker *registry_get(const registry *r, const mu_id *id);
/* The same worker, writable: for the scheduler that owns the alloc and index
 * fields. NULL when out of range. */
worker *registry_at_mut(registry *r, size_t slot);
/* By full text id, or by a unique prefix of at least 4 characters. Returns
 * the worker, or NULL with errno ENOENT (no match), EEXIST (ambiguous) or
 * EINVAL (prefix too short). */
const worker *registry_find(const registry *r, const char *id_or_prefix);

const catalog *registry_catalog(const registry *r);
const region_table *registry_regions(const registry *r);
size_t registry_count(const registry *r);
/* Bytes the registry holds: records, their strings and devices, maps. */
size_t registry_bytes(const registry *r);
const worker *registry_at(const registry *r, size_t slot);
size_t registry_count_state(const registry *r, worker_state s);
/* GPUs of workers in state online (not suspect, not offline). */
uint64_t registry_gpus_online(const registry *r);

const char *worker_state_name(worker_state s);
/* Parse "online", "suspect", "offline". 0/-1. */
int worker_state_parse(const char *s, worker_state *out);

#endif
