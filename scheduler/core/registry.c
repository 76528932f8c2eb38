/* registry.c - see registry.h. */
#include "registry.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "pricing.h"
#include "strutil.h"

#define NIL          UINT32_MAX
#define HOSTNAME_MAX 255

/* Suspect workers whose connection closed wait in LIST_GONE, ordered by
 * when it closed: they go offline after the reconnect grace, sooner than
 * silence alone would take them. */
enum { LIST_ONLINE = 0, LIST_SUSPECT = 1, LIST_GONE = 2, LIST_COUNT = 3 };

typedef struct list {
    uint32_t head, tail;
} list;

/* A worker's neighbours in its liveness list. They sit in an array of
 * their own, by slot: moving a worker to the tail at each heartbeat then
 * touches two small links, not its neighbours' records. */
typedef struct link {
    uint32_t prev, next;
} link;

/* A model claim resolved before, exactly as the agent sent it. */
#define CLAIM_MEMOS 4
#define CLAIM_MAX   48
typedef struct claim_memo {
    char claim[CLAIM_MAX];
    const gpu_model *model; /* NULL: unused */
} claim_memo;

struct registry {
    registry_config cfg;
    /* A fleet names a handful of models and every registration names one
     * again: most are answered by comparing the claim with those seen
     * last, not by normalising, hashing and comparing it in the catalog
     * (which never changes). */
    claim_memo claims[CLAIM_MEMOS];
    unsigned claims_next; /* the memo replaced next */
    registry_observer obs;
    uint64_t suspect_after_ms;
    uint64_t offline_after_ms;
    uint64_t gone_after_ms; /* reconnect grace after a closed connection */
    /* Worker records in chunks of CHUNK: a record never moves (the
     * scheduler holds pointers), and finding one by slot reads the small,
     * hot chunk table, not a pointer per worker. */
    worker **chunks;
    size_t n_chunks, cap_chunks;
    link *links; /* cap entries, by slot */
    size_t n, cap;
    /* ids to slots: open addressing over (hash tag << 32 | slot), with the
     * id itself read from the worker record the caller wants anyway, so a
     * lookup reads 8 bytes of table and no copy of the key. Workers are
     * never removed, so there are no tombstones. */
    uint64_t *by_id;
    size_t by_id_cap; /* power of two, or 0 */
    list lists[LIST_COUNT];
    size_t by_state[4];
    uint64_t gpus_online;
    const gpu_model *cpu_model; /* the catalog's CPU entry, if any */
};

#define CHUNK_BITS 10
#define CHUNK      (1u << CHUNK_BITS)

static worker *slot_at(const registry *r, size_t slot)
{
    return &r->chunks[slot >> CHUNK_BITS][slot & (CHUNK - 1)];
}

static const mu_id *id_at(const void *r, size_t slot)
{
    return &slot_at(r, slot)->id;
}

static const char *const state_names[] = {"new", "online", "suspect", "offline"};

const char *worker_state_name(worker_state s)
{
    return (unsigned)s < 4 ? state_names[s] : "unknown";
}

int worker_state_parse(const char *s, worker_state *out)
{
    for (int i = WORKER_ONLINE; i <= WORKER_OFFLINE; i++) {
        if (s && strcmp(s, state_names[i]) == 0) {
            *out = (worker_state)i;
            return 0;
        }
    }
    return -1;
}

registry *registry_create(const registry_config *cfg, const registry_observer *obs, mu_error *errp)
{
    if (!cfg || !cfg->cat || !cfg->regions || !cfg->tiers)
        return errprintf(errp, "registry: catalog, regions and tiers are required"), NULL;
    if (cfg->heartbeat_interval_ms < 10)
        return errprintf(errp, "registry: heartbeat interval must be at least 10 ms"), NULL;
    if (cfg->liveness < 2)
        return errprintf(errp, "registry: liveness must be at least 2 intervals"), NULL;
    registry *r = mu_calloc(1, sizeof(*r));
    if (!r)
        return errprintf(errp, "registry: out of memory"), NULL;
    r->cfg = *cfg;
    if (obs)
        r->obs = *obs;
    r->suspect_after_ms = (uint64_t)cfg->heartbeat_interval_ms * 3 / 2;
    r->offline_after_ms = (uint64_t)cfg->heartbeat_interval_ms * cfg->liveness;
    r->gone_after_ms = cfg->reconnect_grace_ms ? cfg->reconnect_grace_ms
                                               : (uint64_t)cfg->heartbeat_interval_ms * 3 / 2;
    if (r->gone_after_ms > r->offline_after_ms)
        r->gone_after_ms = r->offline_after_ms;
    for (int i = 0; i < LIST_COUNT; i++)
        r->lists[i].head = r->lists[i].tail = NIL;
    r->cpu_model = catalog_find(cfg->cat, "CPU");
    return r;
}

/* Free what a record owns (not the record: it lives in a chunk). */
static void worker_free_strings(worker *w)
{
    mu_free(w->hostname);
    mu_free(w->devices);
    mu_free(w->agent_version);
    w->hostname = w->agent_version = NULL;
    w->devices = NULL;
}

void registry_destroy(registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        worker_free_strings(slot_at(r, i));
    for (size_t c = 0; c < r->n_chunks; c++)
        mu_free(r->chunks[c]);
    mu_free(r->chunks);
    mu_free(r->links);
    mu_free(r->by_id);
    mu_free(r);
}

/* --- liveness lists ------------------------------------------------------- */

static int list_of(const worker *w)
{
    if (w->state == WORKER_SUSPECT)
        return w->gone_at ? LIST_GONE : LIST_SUSPECT;
    return w->state == WORKER_ONLINE ? LIST_ONLINE : -1;
}

static void list_unlink(registry *r, worker *w)
{
    int l = list_of(w);
    if (l < 0)
        return;
    list *li = &r->lists[l];
    link *k = &r->links[w->slot];
    if (k->prev != NIL)
        r->links[k->prev].next = k->next;
    else
        li->head = k->next;
    if (k->next != NIL)
        r->links[k->next].prev = k->prev;
    else
        li->tail = k->prev;
    k->prev = k->next = NIL;
}

static void list_append(registry *r, worker *w)
{
    int l = list_of(w);
    if (l < 0)
        return;
    list *li = &r->lists[l];
    link *k = &r->links[w->slot];
    k->prev = li->tail;
    k->next = NIL;
    if (li->tail != NIL)
        r->links[li->tail].next = w->slot;
    else
        li->head = w->slot;
    li->tail = w->slot;
}

/* Room for one more slot: its record and its links. 0, or -1 (out of
 * memory; what grew stays for the next call). */
static int reserve_slot(registry *r)
{
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 64;
        link *nl = mu_realloc(r->links, ncap * sizeof(*nl));
        if (!nl)
            return -1;
        r->links = nl;
        r->cap = ncap;
    }
    if (r->n == r->n_chunks * CHUNK) {
        if (r->n_chunks == r->cap_chunks) {
            size_t ncap = r->cap_chunks ? r->cap_chunks * 2 : 4;
            worker **nc = mu_realloc(r->chunks, ncap * sizeof(*nc));
            if (!nc)
                return -1;
            r->chunks = nc;
            r->cap_chunks = ncap;
        }
        if (!(r->chunks[r->n_chunks] = mu_calloc(CHUNK, sizeof(worker))))
            return -1;
        r->n_chunks++;
    }
    return 0;
}

static bool is_up(worker_state s)
{
    return s == WORKER_ONLINE || s == WORKER_SUSPECT;
}

/* Bring w's uptime to `now`, crediting the time since the last advance to
 * its current state; an offline change is credited only up to when the
 * worker was last heard from. */
static void advance_uptime(worker *w, uint64_t now, worker_state to)
{
    if (to == WORKER_OFFLINE && is_up(w->state)) {
        uptime_advance(&w->up, w->last_seen, true);
        uptime_advance(&w->up, now, false);
    } else {
        uptime_advance(&w->up, now, is_up(w->state));
    }
    w->uptime = (float)uptime_value(&w->up);
}

/* Move w to state `to` at `now`, keeping lists, counters and uptime right,
 * and tell the observer. */
static void set_state(registry *r, worker *w, worker_state to, uint64_t now, const char *reason)
{
    worker_state from = w->state;
    if (from != WORKER_NEW)
        advance_uptime(w, now, to);
    list_unlink(r, w);
    if (from != WORKER_NEW)
        r->by_state[from]--;
    if (from == WORKER_ONLINE)
        r->gpus_online -= w->gpu_count;
    w->state = to;
    if (to != WORKER_SUSPECT)
        w->gone_at = 0; /* only a suspect waits on its reconnect grace */
    r->by_state[to]++;
    if (to == WORKER_ONLINE)
        r->gpus_online += w->gpu_count;
    list_append(r, w);
    if (r->obs.state && from != to)
        r->obs.state(r->obs.arg, w, from, to, reason);
}

/* --- ids to slots ------------------------------------------------------------ */

#define BY_ID_EMPTY UINT64_MAX

static worker *lookup(const registry *r, const mu_id *id)
{
    if (!r->by_id_cap)
        return NULL;
    uint64_t h = id_hash(id);
    uint32_t tag = (uint32_t)(h >> 32);
    size_t mask = r->by_id_cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint64_t e = r->by_id[i];
        if (e == BY_ID_EMPTY)
            return NULL;
        if ((uint32_t)(e >> 32) == tag) {
            worker *w = slot_at(r, (uint32_t)e);
            if (!memcmp(w->id.b, id->b, 16))
                return w;
        }
    }
}

static void by_id_put(uint64_t *t, size_t cap, const mu_id *id, uint32_t slot)
{
    uint64_t h = id_hash(id);
    size_t i = (size_t)h & (cap - 1);
    while (t[i] != BY_ID_EMPTY)
        i = (i + 1) & (cap - 1);
    t[i] = (h >> 32) << 32 | slot;
}

/* Room for one more id at a load of at most a half. 0, or -1 (ENOMEM,
 * nothing changed). */
static int by_id_reserve(registry *r)
{
    if ((r->n + 1) * 2 <= r->by_id_cap)
        return 0;
    size_t ncap = r->by_id_cap ? r->by_id_cap * 2 : 64;
    uint64_t *t = mu_malloc(ncap * sizeof(*t));
    if (!t)
        return -1;
    memset(t, 0xff, ncap * sizeof(*t));
    for (size_t i = 0; i < r->n; i++)
        by_id_put(t, ncap, &slot_at(r, i)->id, (uint32_t)i);
    mu_free(r->by_id);
    r->by_id = t;
    r->by_id_cap = ncap;
    return 0;
}

/* --- registration ----------------------------------------------------------- */

/* The catalog's model for a claim, remembered when found. */
static const gpu_model *find_claim(registry *r, const char *claim)
{
    size_t len = strnlen(claim, CLAIM_MAX);
    if (len < CLAIM_MAX)
        for (unsigned i = 0; i < CLAIM_MEMOS; i++)
            if (r->claims[i].model && memcmp(r->claims[i].claim, claim, len + 1) == 0)
                return r->claims[i].model;
    const gpu_model *m = catalog_find(r->cfg.cat, claim);
    if (m && len < CLAIM_MAX) {
        claim_memo *o = &r->claims[r->claims_next++ % CLAIM_MEMOS];
        memcpy(o->claim, claim, len + 1);
        o->model = m;
    }
    return m;
}

/* Resolve one device's model from its claimed name, else its PCI ids. */
static const gpu_model *resolve_device(registry *r, const worker_device_spec *d, mu_error *errp)
{
    const catalog *cat = r->cfg.cat;
    const gpu_model *m = NULL;
    if (!str_is_empty(d->model_claim))
        m = find_claim(r, d->model_claim);
    if (!m && d->pci_vendor_id)
        m = catalog_find_pci(cat, d->pci_vendor_id, d->pci_device_id);
    if (m)
        return m;
    if (!str_is_empty(d->model_claim)) {
        char hint[160];
        catalog_hint(cat, d->model_claim, hint, sizeof(hint));
        return errprintf(errp, "unknown GPU model \"%s\"%s", d->model_claim, hint), NULL;
    }
    return errprintf(errp, "GPU with PCI id %04x:%04x is not in the catalog", d->pci_vendor_id,
                     d->pci_device_id),
           NULL;
}

/* Host names end up in logs, tables and JSON: keep them to what DNS and
 * people use, so no peer can forge a log line or a column. */
static bool hostname_ok(const char *h)
{
    if (str_is_empty(h) || strlen(h) > HOSTNAME_MAX)
        return false;
    for (; *h; h++) {
        char c = *h;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* Shorter than n and printable ASCII only: every string a peer sends is
 * shown on someone's terminal or in a log. */
static bool fits(const char *s, size_t n)
{
    if (!s)
        return true;
    size_t len = 0;
    for (; s[len]; len++)
        if ((unsigned char)s[len] < 0x20 || (unsigned char)s[len] > 0x7e)
            return false;
    return len < n;
}

/* Validate a spec and fill w's own fields from it; the strings and devices
 * it owns (hostname, agent version, devices) are left for the caller, which
 * allocates them for a new worker and keeps equal ones of a re-registering
 * one. 0, or -1 with the reason. */
static int spec_fill(registry *r, const worker_spec *s, worker *w, mu_error *errp)
{
    mu_id id;
    if (id_parse(s->id, &id) < 0 || id_is_null(&id))
        return errprintf(errp, "worker id is not a UUID (or is the nil UUID)"), -1;
    if (!hostname_ok(s->hostname))
        return errprintf(errp,
                         "hostname must be 1..%d characters of letters, digits, '.', '-' "
                         "and '_'",
                         HOSTNAME_MAX),
               -1;
    if (!fits(s->fingerprint, sizeof(((worker *)0)->fingerprint)))
        return errprintf(errp, "host fingerprint must be at most 16 printable characters"), -1;
    if (s->price_uusd > PRICING_MAX_UUSD)
        return errprintf(errp, "price must be at most 1000 USD per GPU hour"), -1;
    if (s->n_devices > WORKER_MAX_DEVICES)
        return errprintf(errp, "%zu GPUs on one worker; at most %d are supported", s->n_devices,
                         WORKER_MAX_DEVICES),
               -1;
    if (!fits(s->agent_version, 65))
        return errprintf(errp, "agent version must be at most 64 printable characters"), -1;
    for (size_t i = 0; i < s->n_devices; i++) {
        if (!fits(s->devices[i].pci_bus_id, sizeof(((worker_device *)0)->pci_bus_id)) ||
            !fits(s->devices[i].driver_version, sizeof(((worker_device *)0)->driver_version)))
            return errprintf(errp,
                             "GPU %zu: PCI bus id or driver version too long or not printable", i),
                   -1;
    }

    const char *region = NULL;
    int ri = -1;
    const char *country = s->country ? s->country : "";
    if (*country) {
        ri = regions_index_of_country(r->cfg.regions, country);
        region = regions_name_at(r->cfg.regions, ri >= 0 ? (size_t)ri : SIZE_MAX);
        if (!region)
            return errprintf(errp,
                             "unknown country code \"%.8s\" (use ISO 3166-1 alpha-2, "
                             "e.g. DE)",
                             country),
                   -1;
    }
    if (!str_is_empty(s->region)) {
        const char *named = regions_find(r->cfg.regions, s->region);
        if (!named)
            return errprintf(errp, "unknown region \"%.40s\"", s->region), -1;
        if (region && region != named)
            return errprintf(errp, "country %s is in region %s, not %s", country, region, named),
                   -1;
        region = named;
        ri = regions_index(r->cfg.regions, named);
    }

    const gpu_model *model = r->cpu_model;
    for (size_t i = 0; i < s->n_devices; i++) {
        const worker_device_spec *d = &s->devices[i], *p = i ? &s->devices[i - 1] : NULL;
        /* The GPUs of one host claim the same model: resolve it once. */
        bool same = p && p->pci_vendor_id == d->pci_vendor_id &&
                    p->pci_device_id == d->pci_device_id &&
                    (p->model_claim == d->model_claim ||
                     (p->model_claim && d->model_claim && !strcmp(p->model_claim, d->model_claim)));
        const gpu_model *m = same ? model : resolve_device(r, d, errp);
        if (!m)
            return -1;
        if (i > 0 && m != model)
            return errprintf(errp,
                             "mixed GPU models on one worker (%s and %s) are not "
                             "supported: run one agent per model",
                             model->name, m->name),
                   -1;
        model = m;
    }

    memset(w, 0, sizeof(*w));
    w->id = id;
    str_copy(w->fingerprint, s->fingerprint ? s->fingerprint : "", sizeof(w->fingerprint));
    str_copy(w->address, s->address ? s->address : "", sizeof(w->address));
    str_copy(w->country, country, sizeof(w->country));
    for (char *c = w->country; *c; c++)
        *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c);
    w->region = region ? region : "unknown";
    w->region_idx = ri >= 0 && ri < REGION_UNKNOWN ? (uint8_t)ri : REGION_UNKNOWN;
    w->model = model;
    int mi = model ? catalog_index(r->cfg.cat, model) : -1;
    w->model_idx = (uint16_t)(mi >= 0 ? mi : 0);
    w->gpu_count = (uint16_t)s->n_devices;
    w->cpu_cores = s->cpu_cores;
    w->memory_mib = s->memory_mib;
    w->bw_down_mbps = s->bw_down_mbps;
    w->bw_up_mbps = s->bw_up_mbps;
    w->tier = tiers_classify(r->cfg.tiers, s->bw_down_mbps, s->bw_up_mbps);
    w->price_uusd = s->price_uusd ? s->price_uusd : pricing_default_uusd(model, w->tier);
    w->simulated = s->simulated;
    w->state = WORKER_NEW;
    w->cluster = NIL;
    w->resv = NIL;
    return 0;
}

/* Copy the spec's devices into o (room for s->n_devices). */
static void fill_devices(worker_device *o, const worker_spec *s)
{
    for (size_t i = 0; i < s->n_devices; i++) {
        const worker_device_spec *d = &s->devices[i];
        o[i] = (worker_device){.pci_vendor_id = d->pci_vendor_id,
                               .pci_device_id = d->pci_device_id,
                               .vram_mib = d->vram_mib,
                               .link_speed_gbps = d->link_speed_gbps};
        str_copy(o[i].pci_bus_id, d->pci_bus_id ? d->pci_bus_id : "", sizeof(o[i].pci_bus_id));
        str_copy(o[i].driver_version, d->driver_version ? d->driver_version : "",
                 sizeof(o[i].driver_version));
    }
}

static const char *version_of(const worker_spec *s)
{
    return s->agent_version ? s->agent_version : "";
}

/* Make the record at w (a free place in a chunk) the worker spec_fill
 * took, with strings and devices of its own. 0, or -1 (out of memory, w
 * left empty). */
static int worker_init(worker *w, const worker *fresh, const worker_spec *s, mu_error *errp)
{
    *w = *fresh;
    w->hostname = mu_strdup(s->hostname);
    w->agent_version = mu_strdup(version_of(s));
    w->devices = mu_calloc(s->n_devices ? s->n_devices : 1, sizeof(worker_device));
    if (!w->hostname || !w->agent_version || !w->devices) {
        worker_free_strings(w);
        return errprintf(errp, "out of memory");
    }
    fill_devices(w->devices, s);
    return 0;
}

/* Take a re-registration into the existing record, so that pointers others
 * hold stay valid. Strings and devices are reallocated only when they
 * changed: an agent that reconnects says the same things again. 0, or -1
 * (out of memory, old unchanged). */
static int reregister(registry *r, worker *old, const worker *fresh, const worker_spec *s,
                      mu_error *errp)
{
    char *host = NULL, *ver = NULL;
    worker_device *devs = NULL;
    bool new_host = strcmp(old->hostname, s->hostname) != 0;
    bool new_ver = strcmp(old->agent_version, version_of(s)) != 0;
    bool new_devs = old->gpu_count != fresh->gpu_count;
    if ((new_host && !(host = mu_strdup(s->hostname))) ||
        (new_ver && !(ver = mu_strdup(version_of(s)))) ||
        (new_devs && !(devs = mu_calloc(s->n_devices ? s->n_devices : 1, sizeof(*devs))))) {
        mu_free(host);
        mu_free(ver);
        return errprintf(errp, "out of memory");
    }
    if (host) {
        mu_free(old->hostname);
        old->hostname = host;
    }
    if (ver) {
        mu_free(old->agent_version);
        old->agent_version = ver;
    }
    if (devs) {
        mu_free(old->devices);
        old->devices = devs;
    }
    fill_devices(old->devices, s);
    if (old->state == WORKER_ONLINE)
        r->gpus_online -= old->gpu_count;
    memcpy(old->fingerprint, fresh->fingerprint, sizeof(old->fingerprint));
    memcpy(old->address, fresh->address, sizeof(old->address));
    memcpy(old->country, fresh->country, sizeof(old->country));
    old->region = fresh->region;
    old->model = fresh->model;
    old->model_idx = fresh->model_idx;
    old->gpu_count = fresh->gpu_count;
    old->cpu_cores = fresh->cpu_cores;
    old->memory_mib = fresh->memory_mib;
    old->bw_down_mbps = fresh->bw_down_mbps;
    old->bw_up_mbps = fresh->bw_up_mbps;
    old->tier = fresh->tier;
    old->simulated = fresh->simulated;
    old->price_uusd = fresh->price_uusd;
    old->region_idx = fresh->region_idx;
    if (old->state == WORKER_ONLINE)
        r->gpus_online += old->gpu_count;
    return 0;
}

const worker *registry_register(registry *r, const worker_spec *spec, uint64_t now, mu_error *errp)
{
    worker fresh;
    if (spec_fill(r, spec, &fresh, errp) < 0)
        return NULL;
    worker *w;
    bool is_new = !(w = lookup(r, &fresh.id));
    if (!is_new) {
        if (reregister(r, w, &fresh, spec, errp) < 0)
            return NULL;
    } else {
        if (reserve_slot(r) < 0 || by_id_reserve(r) < 0)
            return errprintf(errp, "out of memory"), NULL;
        w = slot_at(r, r->n);
        if (worker_init(w, &fresh, spec, errp) < 0)
            return NULL;
        by_id_put(r->by_id, r->by_id_cap, &w->id, (uint32_t)r->n);
        w->slot = (uint32_t)r->n;
        r->links[w->slot] = (link){NIL, NIL};
        r->n++;
        w->registered_at = now;
        uptime_init(&w->up, now);
        w->uptime = (float)uptime_value(&w->up);
    }
    w->connected_at = now;
    w->last_seen = now;
    /* Re-registration of an online worker: move it to the tail (fresh). */
    if (w->state == WORKER_ONLINE) {
        list_unlink(r, w);
        list_append(r, w);
        if (r->obs.updated)
            r->obs.updated(r->obs.arg, w);
    } else {
        set_state(r, w, WORKER_ONLINE, now, is_new ? "registered" : "re-registered");
    }
    return w;
}

const worker *registry_restore(registry *r, const worker_spec *spec, uint64_t registered_at,
                               const uptime *up, mu_error *errp)
{
    worker fresh;
    if (spec_fill(r, spec, &fresh, errp) < 0)
        return NULL;
    if (lookup(r, &fresh.id))
        return errprintf(errp, "worker saved twice"), NULL;
    if (reserve_slot(r) < 0 || by_id_reserve(r) < 0)
        return errprintf(errp, "out of memory"), NULL;
    worker *w = slot_at(r, r->n);
    if (worker_init(w, &fresh, spec, errp) < 0)
        return NULL;
    by_id_put(r->by_id, r->by_id_cap, &w->id, (uint32_t)r->n);
    w->slot = (uint32_t)r->n;
    r->links[w->slot] = (link){NIL, NIL};
    r->n++;
    w->registered_at = registered_at;
    w->up = *up;
    w->uptime = (float)uptime_value(&w->up);
    w->last_seen = up->at;
    w->state = WORKER_OFFLINE;
    r->by_state[WORKER_OFFLINE]++;
    return w;
}

int registry_touch(registry *r, const mu_id *id, uint64_t now)
{
    worker *w = lookup(r, id);
    if (!w) {
        errno = ENOENT;
        return -1;
    }
    if (w->state == WORKER_OFFLINE) {
        errno = ESTALE;
        return -1;
    }
    if (now > w->last_seen)
        w->last_seen = now;
    if (w->state == WORKER_SUSPECT) {
        set_state(r, w, WORKER_ONLINE, now, "heard from again");
    } else {
        list_unlink(r, w);
        list_append(r, w);
        if (now >= w->up.at + REGISTRY_UPTIME_REFRESH_MS) {
            advance_uptime(w, now, WORKER_ONLINE);
            if (r->obs.updated)
                r->obs.updated(r->obs.arg, w);
        }
    }
    return 0;
}

void registry_prefetch(const registry *r, const mu_id *id, uint32_t slot_hint, prefetch_for what,
                       int stage)
{
    if (stage == 0 && r->by_id_cap)
        __builtin_prefetch(&r->by_id[id_hash(id) & (r->by_id_cap - 1)]);
    if (slot_hint >= r->n)
        return;
    const worker *w = slot_at(r, slot_hint);
    /* A heartbeat or a leave reads the record up to its timestamps. */
    size_t len = what == PREFETCH_REGISTER ? sizeof(*w) : offsetof(worker, registered_at);
    if (stage == 0) {
        for (size_t at = 0; at < len; at += 64)
            __builtin_prefetch((const char *)w + at);
        __builtin_prefetch((const char *)w + len - 1);
        __builtin_prefetch(&r->links[slot_hint]);
    } else if (stage == 1 && what == PREFETCH_REGISTER) {
        __builtin_prefetch(w->hostname);
        __builtin_prefetch(w->agent_version);
        __builtin_prefetch(w->devices);
    }
}

int registry_disconnected(registry *r, const mu_id *id, uint64_t now)
{
    worker *w = lookup(r, id);
    if (!w) {
        errno = ENOENT;
        return -1;
    }
    if (w->state == WORKER_OFFLINE || w->gone_at)
        return 0;
    if (w->state == WORKER_SUSPECT) {
        list_unlink(r, w);
        w->gone_at = now ? now : 1;
        list_append(r, w);
    } else {
        /* Unlink from the online list first: list_of follows gone_at. */
        list_unlink(r, w);
        w->gone_at = now ? now : 1;
        r->by_state[WORKER_ONLINE]--;
        r->gpus_online -= w->gpu_count;
        advance_uptime(w, now, WORKER_SUSPECT);
        w->state = WORKER_SUSPECT;
        r->by_state[WORKER_SUSPECT]++;
        list_append(r, w);
        if (r->obs.state)
            r->obs.state(r->obs.arg, w, WORKER_ONLINE, WORKER_SUSPECT, "connection closed");
    }
    return 0;
}

int registry_goodbye(registry *r, const mu_id *id, uint64_t now, const char *reason)
{
    worker *w = lookup(r, id);
    if (!w) {
        errno = ENOENT;
        return -1;
    }
    if (now > w->last_seen)
        w->last_seen = now;
    if (w->state != WORKER_OFFLINE)
        set_state(r, w, WORKER_OFFLINE, now, reason && *reason ? reason : "goodbye");
    return 0;
}

size_t registry_tick(registry *r, uint64_t now)
{
    size_t changes = 0;
    list *on = &r->lists[LIST_ONLINE];
    while (on->head != NIL) {
        worker *w = slot_at(r, on->head);
        if (now < w->last_seen + r->suspect_after_ms)
            break;
        set_state(r, w, WORKER_SUSPECT, now, "missed a heartbeat");
        changes++;
    }
    list *sus = &r->lists[LIST_SUSPECT];
    while (sus->head != NIL) {
        worker *w = slot_at(r, sus->head);
        if (now < w->last_seen + r->offline_after_ms)
            break;
        set_state(r, w, WORKER_OFFLINE, now, "silent past the liveness window");
        changes++;
    }
    list *gone = &r->lists[LIST_GONE];
    while (gone->head != NIL) {
        worker *w = slot_at(r, gone->head);
        if (now < w->gone_at + r->gone_after_ms)
            break;
        set_state(r, w, WORKER_OFFLINE, now, "connection closed, not back within the grace");
        changes++;
    }
    return changes;
}

uint64_t registry_next_deadline(const registry *r)
{
    uint64_t t = UINT64_MAX;
    if (r->lists[LIST_ONLINE].head != NIL)
        t = slot_at(r, r->lists[LIST_ONLINE].head)->last_seen + r->suspect_after_ms;
    if (r->lists[LIST_SUSPECT].head != NIL) {
        uint64_t s = slot_at(r, r->lists[LIST_SUSPECT].head)->last_seen + r->offline_after_ms;
        if (s < t)
            t = s;
    }
    if (r->lists[LIST_GONE].head != NIL) {
        uint64_t g = slot_at(r, r->lists[LIST_GONE].head)->gone_at + r->gone_after_ms;
        if (g < t)
            t = g;
    }
    return t;
}

const worker *registry_get(const registry *r, const mu_id *id)
{
    return lookup(r, id);
}

const worker *registry_find(const registry *r, const char *prefix)
{
    mu_id id;
    if (id_parse(prefix, &id) == 0) {
        const worker *x = lookup(r, &id);
        if (!x)
            errno = ENOENT;
        return x;
    }
    size_t i = id_prefix_search(id_at, r, r->n, prefix);
    return i == SIZE_MAX ? NULL : slot_at(r, i);
}

const catalog *registry_catalog(const registry *r)
{
    return r->cfg.cat;
}

const region_table *registry_regions(const registry *r)
{
    return r->cfg.regions;
}

size_t registry_bytes(const registry *r)
{
    size_t n = sizeof(*r) + r->cap * sizeof(link) + r->by_id_cap * sizeof(uint64_t) +
               r->cap_chunks * sizeof(worker *) + r->n_chunks * CHUNK * sizeof(worker);
    for (size_t i = 0; i < r->n; i++) {
        const worker *w = slot_at(r, i);
        /* malloc rounds small blocks up to 16 bytes and adds 8 of its own */
        n += (strlen(w->hostname) + 1 + 8 + 15) / 16 * 16 +
             (strlen(w->agent_version) + 1 + 8 + 15) / 16 * 16 +
             ((w->gpu_count ? w->gpu_count : 1) * sizeof(worker_device) + 8 + 15) / 16 * 16;
    }
    return n;
}

size_t registry_count(const registry *r)
{
    return r->n;
}

worker *registry_at_mut(registry *r, size_t slot)
{
    return slot < r->n ? slot_at(r, slot) : NULL;
}

const worker *registry_at(const registry *r, size_t slot)
{
    return slot < r->n ? slot_at(r, slot) : NULL;
}

size_t registry_count_state(const registry *r, worker_state s)
{
    return (unsigned)s < 4 ? r->by_state[s] : 0;
}

uint64_t registry_gpus_online(const registry *r)
{
    return r->gpus_online;
}
