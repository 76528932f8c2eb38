/* test_registry.c - the worker registry: registration and its validation,
 * liveness transitions in virtual time, lookups, and failure without side
 * effects. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <uuid/uuid.h>
#include <cmocka.h>

#include "registry.h"
#include "testutil.h"

typedef struct transition {
    char id[ID_TEXT_LEN];
    worker_state from, to;
    char reason[64];
} transition;

typedef struct fixture {
    catalog *cat;
    region_table *regions;
    tier_table tiers;
    registry *reg;
    transition seen[64];
    size_t n_seen;
} fixture;

static void observe(void *arg, worker *w, worker_state from, worker_state to, const char *reason)
{
    fixture *f = arg;
    if (f->n_seen == 64)
        return;
    transition *t = &f->seen[f->n_seen++];
    id_format(&w->id, t->id);
    t->from = from;
    t->to = to;
    snprintf(t->reason, sizeof(t->reason), "%s", reason);
}

static int setup(void **state)
{
    fixture *f = test_calloc(1, sizeof(*f));
    f->cat = test_catalog();
    f->regions = test_regions();
    tiers_default(&f->tiers);
    registry_config cfg = {.heartbeat_interval_ms = 1000,
                           .liveness = 3,
                           .cat = f->cat,
                           .regions = f->regions,
                           .tiers = &f->tiers};
    mu_error err;
    registry_observer obs = {observe, NULL, f};
    f->reg = registry_create(&cfg, &obs, &err);
    assert_non_null(f->reg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    registry_destroy(f->reg);
    regions_destroy(f->regions);
    catalog_destroy(f->cat);
    test_free(f);
    return 0;
}

static const char *const ID1 = "11111111-1111-4111-8111-111111111111";
static const char *const ID2 = "22222222-2222-4222-8222-222222222222";
static const char *const ID3 = "22223333-3333-4333-8333-333333333333";

/* A valid spec: N simulated GPUs of MODEL in Germany, medium tier. */
static worker_spec spec_of(const char *id, const char *model, size_t n,
                           worker_device_spec devs[WORKER_MAX_DEVICES])
{
    for (size_t i = 0; i < n; i++)
        devs[i] = (worker_device_spec){.model_claim = model, .vram_mib = 24576};
    return (worker_spec){.id = id,
                         .hostname = "node",
                         .fingerprint = "00112233aabbccdd",
                         .devices = devs,
                         .n_devices = n,
                         .cpu_cores = 16,
                         .memory_mib = 65536,
                         .country = "de",
                         .bw_down_mbps = 500,
                         .bw_up_mbps = 400,
                         .agent_version = "test"};
}

static void test_register_resolves_model_region_tier(void **state)
{
    fixture *f = *state;
    worker_device_spec devs[WORKER_MAX_DEVICES];
    worker_spec s = spec_of(ID1, "NVIDIA GeForce RTX 4090", 2, devs);
    mu_error err;
    const worker *w = registry_register(f->reg, &s, 1000, &err);
    assert_non_null(w);
    assert_string_equal(w->model->name, "RTX 4090");
    assert_int_equal(w->gpu_count, 2);
    assert_string_equal(w->country, "DE");
    assert_string_equal(w->region, "europe");
    assert_int_equal(w->tier, TIER_MEDIUM);
    assert_int_equal(w->state, WORKER_ONLINE);
    assert_int_equal(w->registered_at, 1000);
    assert_int_equal(registry_count(f->reg), 1);
    assert_int_equal(registry_count_state(f->reg, WORKER_ONLINE), 1);
    assert_int_equal(registry_gpus_online(f->reg), 2);
    assert_int_equal(f->n_seen, 1);
    assert_int_equal(f->seen[0].from, WORKER_NEW);
    assert_int_equal(f->seen[0].to, WORKER_ONLINE);
    assert_string_equal(f->seen[0].id, ID1);
}

static void test_register_by_pci_id_and_cpu_only(void **state)
{
    fixture *f = *state;
    worker_device_spec devs[WORKER_MAX_DEVICES];
    worker_spec s = spec_of(ID1, "", 1, devs);
    devs[0].pci_vendor_id = 0x10de;
    devs[0].pci_device_id = 0x2330; /* H100 SXM */
    mu_error err;
    const worker *w = registry_register(f->reg, &s, 1, &err);
    assert_non_null(w);
    assert_string_equal(w->model->name, "H100 SXM");

    worker_spec c = spec_of(ID2, NULL, 0, devs);
    w = registry_register(f->reg, &c, 1, &err);
    assert_non_null(w);
    assert_int_equal(w->gpu_count, 0);
    assert_non_null(w->model);
    assert_int_equal(w->model->cls, GPU_CLASS_CPU);
}

/* Every invalid spec is refused with a reason, and leaves no trace. */
static void test_register_rejects_bad_specs(void **state)
{
    fixture *f = *state;
    worker_device_spec devs[WORKER_MAX_DEVICES];
    mu_error err;
    struct {
        worker_spec s;
        const char *needle;
    } cases[20];
    size_t n = 0;
    cases[n].s = spec_of("not-a-uuid", "RTX 4090", 1, devs);
    cases[n++].needle = "not a UUID";
    cases[n].s = spec_of("00000000-0000-0000-0000-000000000000", "RTX 4090", 1, devs);
    cases[n++].needle = "nil UUID";
    cases[n].s = spec_of("6f1c2a9e-4b7d-4c3a-9e2f-0a1b2c3d4e5f0", "RTX 4090", 1, devs);
    cases[n++].needle = "not a UUID"; /* one digit too many */
    cases[n].s = spec_of("6f1c2a9e-4b7d-4c3a-9e2f-0a1b2c3d4e5", "RTX 4090", 1, devs);
    cases[n++].needle = "not a UUID"; /* one too few */
    cases[n].s = spec_of("6f1c2a9e4-b7d-4c3a-9e2f-0a1b2c3d4e5f", "RTX 4090", 1, devs);
    cases[n++].needle = "not a UUID"; /* a hyphen out of place */
    cases[n].s = spec_of("6f1c2a9e-4b7d-4c3a-9e2f-0a1b2c3d4e5g", "RTX 4090", 1, devs);
    cases[n++].needle = "not a UUID"; /* not hex */
    cases[n].s = spec_of(ID1, "RTX 4090", 1, devs);
    cases[n].s.hostname = "evil\nts=forged";
    cases[n++].needle = "hostname";
    cases[n].s = spec_of(ID1, "RTX 4090", 1, devs);
    cases[n].s.agent_version = "v1\x1b[2J";
    cases[n++].needle = "agent version";
    cases[n].s = spec_of(ID1, "RTX 4090", 1, devs);
    cases[n].s.country = "XX";
    cases[n++].needle = "unknown country";
    cases[n].s = spec_of(ID1, "RTX 4090", 1, devs);
    cases[n].s.region = "atlantis";
    cases[n++].needle = "unknown region";
    cases[n].s = spec_of(ID1, "RTX 4090", 1, devs);
    cases[n].s.region = "asia-east";
    cases[n++].needle = "is in region europe";
    cases[n].s = spec_of(ID1, "RTX 4090", 1, devs);
    cases[n].s.hostname = "";
    cases[n++].needle = "hostname";
    cases[n].s = spec_of(ID1, "RTX 4090", WORKER_MAX_DEVICES, devs);
    cases[n].s.n_devices = WORKER_MAX_DEVICES + 1; /* refused before reading devices */
    cases[n++].needle = "at most 16";
    for (size_t i = 0; i < n; i++) {
        memset(&err, 0, sizeof(err));
        assert_null(registry_register(f->reg, &cases[i].s, 1, &err));
        if (!strstr(err.text, cases[i].needle))
            fail_msg("case %zu: reason \"%s\" lacks \"%s\"", i, err.text, cases[i].needle);
    }
    assert_int_equal(registry_count(f->reg), 0);
    assert_int_equal(f->n_seen, 0);
}

static void test_register_unknown_model_suggests(void **state)
{
    fixture *f = *state;
    worker_device_spec devs[WORKER_MAX_DEVICES];
    worker_spec s = spec_of(ID1, "RTX 4091", 1, devs);
    mu_error err;
    assert_null(registry_register(f->reg, &s, 1, &err));
    assert_non_null(strstr(err.text, "unknown GPU model \"RTX 4091\""));
    assert_non_null(strstr(err.text, "did you mean \"RTX 4090\""));

    s = spec_of(ID1, "", 1, devs);
    devs[0].pci_vendor_id = 0x10de;
    devs[0].pci_device_id = 0xffff;
    assert_null(registry_register(f->reg, &s, 1, &err));
    assert_non_null(strstr(err.text, "10de:ffff"));
    assert_int_equal(registry_count(f->reg), 0);
}

/* The registry remembers the last model claims it resolved: over more
 * claims than it remembers, in turns, each registration must get what
 * the catalog says of its claim, and a claim the catalog does not know
 * (one character off a remembered one, or longer than any) must fail
 * every time. */
static void test_register_claims_agree_with_catalog(void **state)
{
    fixture *f = *state;
    static const char *const claims[] = {
        "NVIDIA GeForce RTX 4090",
        "RTX 4090",
        "rtx4090",
        "H100 SXM",
        "NVIDIA H100 80GB HBM3",
        "A100 80GB",
        "RTX 4090 ",
        "RTX 409",
        "RTX 40900",
        "h100sxm",
        "NVIDIA GeForce RTX 4090 with a name longer than forty-eight characters",
        "L40S",
    };
    size_t n = sizeof(claims) / sizeof(claims[0]);
    worker_device_spec devs[WORKER_MAX_DEVICES];
    char id[ID_TEXT_LEN];
    unsigned ok = 0, refused = 0;
    for (unsigned round = 0; round < 3; round++) {
        for (size_t i = 0; i < n; i++) {
            size_t k = (i * 5 + round) % n; /* a different order each round */
            snprintf(id, sizeof(id), "%08zx-0000-4000-8000-%012u", k + 1, round);
            worker_spec s = spec_of(id, claims[k], 1, devs);
            mu_error err;
            const gpu_model *want = catalog_find(f->cat, claims[k]);
            const worker *w = registry_register(f->reg, &s, 1 + round, &err);
            if (want) {
                assert_non_null(w);
                assert_ptr_equal(w->model, want);
                ok++;
            } else {
                assert_null(w);
                assert_non_null(strstr(err.text, "unknown GPU model"));
                refused++;
            }
        }
    }
    /* The list holds both kinds, so both paths were taken. */
    assert_true(ok >= 3 * 6);
    assert_true(refused >= 3 * 2);
}

static void test_register_rejects_mixed_models(void **state)
{
    fixture *f = *state;
    worker_device_spec devs[WORKER_MAX_DEVICES];
    worker_spec s = spec_of(ID1, "RTX 4090", 2, devs);
    devs[1].model_claim = "RTX 3090";
    mu_error err;
    assert_null(registry_register(f->reg, &s, 1, &err));
    assert_non_null(strstr(err.text, "mixed GPU models"));
    assert_int_equal(registry_count(f->reg), 0);
}

/* One missed beat (1.5 intervals) makes a worker suspect, `liveness`
 * intervals offline; a heartbeat in between brings it back. */
static void test_liveness_transitions(void **state)
{
    fixture *f = *state;
    worker_device_spec devs[WORKER_MAX_DEVICES];
    worker_spec s = spec_of(ID1, "RTX 4090", 1, devs);
    mu_error err;
    const worker *w = registry_register(f->reg, &s, 10000, &err);
    assert_non_null(w);
    assert_int_equal(registry_next_deadline(f->reg), 11500);
    assert_int_equal(registry_tick(f->reg, 11499), 0);
    assert_int_equal(w->state, WORKER_ONLINE);
    assert_int_equal(registry_tick(f->reg, 11500), 1);
    assert_int_equal(w->state, WORKER_SUSPECT);
    assert_int_equal(registry_gpus_online(f->reg), 0); /* only online workers count */
    assert_int_equal(registry_next_deadline(f->reg), 13000);

    assert_int_equal(registry_touch(f->reg, &w->id, 12000), 0);
    assert_int_equal(w->state, WORKER_ONLINE);
    assert_int_equal(registry_gpus_online(f->reg), 1);
    assert_string_equal(f->seen[f->n_seen - 1].reason, "heard from again");

    assert_int_equal(registry_tick(f->reg, 13499), 0);
    assert_int_equal(registry_tick(f->reg, 15000), 2); /* suspect then offline */
    assert_int_equal(w->state, WORKER_OFFLINE);
    assert_int_equal(registry_gpus_online(f->reg), 0);
    assert_int_equal(registry_next_deadline(f->reg), UINT64_MAX);

    /* An offline worker must register again. */
    assert_int_equal(registry_touch(f->reg, &w->id, 15001), -1);
    assert_int_equal(errno, ESTALE);
    assert_non_null(registry_register(f->reg, &s, 15002, &err));
    assert_int_equal(w->state, WORKER_ONLINE);
    assert_int_equal(w->registered_at, 10000); /* kept */
    assert_int_equal(w->connected_at, 15002);
    assert_string_equal(f->seen[f->n_seen - 1].reason, "re-registered");
    assert_int_equal(registry_count(f->reg), 1);
}

/* The purge touches only expired workers: the ones that beat on time are
 * left alone however many there are, and order of expiry is respected. */
static void test_tick_expires_in_order(void **state)
{
    fixture *f = *state;
    worker_device_spec devs[WORKER_MAX_DEVICES];
    mu_error err;
    char ids[100][ID_TEXT_LEN];
    for (int i = 0; i < 100; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%08x-0000-4000-8000-000000000000", i + 1);
        worker_spec s = spec_of(ids[i], "T4", 1, devs);
        assert_non_null(registry_register(f->reg, &s, (uint64_t)i * 10, &err));
    }
    /* Workers 50..99 keep beating; 0..49 fall silent. */
    for (int i = 50; i < 100; i++) {
        mu_id id;
        id_parse(ids[i], &id);
        assert_int_equal(registry_touch(f->reg, &id, 2000), 0);
    }
    f->n_seen = 0;
    /* Silent worker i was last heard from at i*10, so it is suspect from
     * i*10 + 1500 <= 1990; the others beat at 2000 and are due at 3500. */
    assert_int_equal(registry_tick(f->reg, 2495), 50);
    assert_int_equal(registry_count_state(f->reg, WORKER_SUSPECT), 50);
    for (size_t k = 0; k < 50; k++)
        assert_string_equal(f->seen[k].id, ids[k]); /* oldest first */
    assert_int_equal(registry_count_state(f->reg, WORKER_ONLINE), 50);
}

/* A prefetch is a hint: on an empty registry, for unknown ids and for any
 * slot, it reads only what is there and changes nothing. */
static void test_prefetch_is_only_a_hint(void **state)
{
    fixture *f = *state;
    worker_device_spec devs[WORKER_MAX_DEVICES];
    mu_error err;
    mu_id id1, id2;
    assert_int_equal(id_parse(ID1, &id1), 0);
    assert_int_equal(id_parse(ID2, &id2), 0);
    for (int stage = 0; stage < 3; stage++) {
        for (int what = 0; what < 2; what++) {
            registry_prefetch(f->reg, &id1, 0, (prefetch_for)what, stage);
            registry_prefetch(f->reg, &id1, UINT32_MAX, (prefetch_for)what, stage);
        }
    }
    worker_spec s = spec_of(ID1, "T4", 2, devs);
    const worker *w = registry_register(f->reg, &s, 10, &err);
    assert_non_null(w);
    worker before = *w;
    size_t seen = f->n_seen;
    uint32_t slots[] = {w->slot, w->slot + 1, 1000000, UINT32_MAX};
    for (int stage = 0; stage < 3; stage++) {
        for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
            registry_prefetch(f->reg, &id1, slots[i], PREFETCH_HEARTBEAT, stage);
            registry_prefetch(f->reg, &id2, slots[i], PREFETCH_REGISTER, stage);
        }
    }
    assert_memory_equal(&before, registry_get(f->reg, &id1), sizeof(before));
    assert_null(registry_get(f->reg, &id2));
    assert_int_equal(registry_count(f->reg), 1);
    assert_int_equal(f->n_seen, seen);
}

static void test_goodbye(void **state)
{
    fixture *f = *state;
    worker_device_spec devs[WORKER_MAX_DEVICES];
    worker_spec s = spec_of(ID1, "A100 80GB", 8, devs);
    mu_error err;
    const worker *w = registry_register(f->reg, &s, 1, &err);
    assert_non_null(w);
    assert_int_equal(registry_goodbye(f->reg, &w->id, 2, "agent stopped"), 0);
    assert_int_equal(w->state, WORKER_OFFLINE);
    assert_string_equal(f->seen[f->n_seen - 1].reason, "agent stopped");
    assert_int_equal(registry_gpus_online(f->reg), 0);
    mu_id unknown;
    id_parse(ID2, &unknown);
    assert_int_equal(registry_goodbye(f->reg, &unknown, 3, NULL), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(registry_touch(f->reg, &unknown, 3), -1);
    assert_int_equal(errno, ENOENT);
}

/* Re-registering an online worker with new hardware updates it in place. */
static void test_reregister_updates(void **state)
{
    fixture *f = *state;
    worker_device_spec devs[WORKER_MAX_DEVICES];
    worker_spec s = spec_of(ID1, "RTX 4090", 2, devs);
    mu_error err;
    const worker *w = registry_register(f->reg, &s, 1, &err);
    assert_int_equal(registry_gpus_online(f->reg), 2);
    s = spec_of(ID1, "RTX 3090", 4, devs);
    s.country = "US";
    s.bw_down_mbps = 2000;
    s.bw_up_mbps = 2000;
    const worker *w2 = registry_register(f->reg, &s, 5, &err);
    assert_ptr_equal(w, w2);
    assert_string_equal(w->model->name, "RTX 3090");
    assert_int_equal(w->gpu_count, 4);
    assert_string_equal(w->region, "north-america");
    assert_int_equal(w->tier, TIER_ULTRA);
    assert_int_equal(registry_gpus_online(f->reg), 4);
    assert_int_equal(registry_count(f->reg), 1);

    /* Said again the same way: the record keeps its strings. Said
     * differently, in upper case: the same worker, the new strings. */
    const char *host = w->hostname, *version = w->agent_version;
    assert_ptr_equal(registry_register(f->reg, &s, 6, &err), w);
    assert_ptr_equal(w->hostname, host);
    assert_ptr_equal(w->agent_version, version);
    char upper[ID_TEXT_LEN];
    for (size_t i = 0; i < sizeof(upper); i++)
        upper[i] = (char)(ID1[i] >= 'a' && ID1[i] <= 'f' ? ID1[i] - 32 : ID1[i]);
    s.id = upper;
    s.hostname = "renamed-host";
    s.agent_version = "muster-agent 9.9";
    devs[3].pci_bus_id = "0000:41:00.0";
    assert_ptr_equal(registry_register(f->reg, &s, 7, &err), w);
    assert_string_equal(w->hostname, "renamed-host");
    assert_string_equal(w->agent_version, "muster-agent 9.9");
    assert_string_equal(w->devices[3].pci_bus_id, "0000:41:00.0");
    assert_int_equal(registry_count(f->reg), 1);
}

static void test_find_by_prefix(void **state)
{
    fixture *f = *state;
    worker_device_spec devs[WORKER_MAX_DEVICES];
    mu_error err;
    const char *ids[] = {ID1, ID2, ID3};
    for (int i = 0; i < 3; i++) {
        worker_spec s = spec_of(ids[i], "T4", 1, devs);
        assert_non_null(registry_register(f->reg, &s, 1, &err));
    }
    const worker *w = registry_find(f->reg, "1111");
    assert_non_null(w);
    char text[ID_TEXT_LEN];
    id_format(&w->id, text);
    assert_string_equal(text, ID1);
    assert_non_null(registry_find(f->reg, ID2));
    assert_null(registry_find(f->reg, "2222")); /* ID2 and ID3 */
    assert_int_equal(errno, EEXIST);
    assert_non_null(registry_find(f->reg, "22223"));
    assert_null(registry_find(f->reg, "111"));
    assert_int_equal(errno, EINVAL);
    assert_null(registry_find(f->reg, "9999"));
    assert_int_equal(errno, ENOENT);
}

static void test_create_rejects_bad_config(void **state)
{
    fixture *f = *state;
    mu_error err;
    registry_config cfg = {.heartbeat_interval_ms = 5,
                           .liveness = 3,
                           .cat = f->cat,
                           .regions = f->regions,
                           .tiers = &f->tiers};
    assert_null(registry_create(&cfg, NULL, &err));
    cfg.heartbeat_interval_ms = 1000;
    cfg.liveness = 1;
    assert_null(registry_create(&cfg, NULL, &err));
    cfg.liveness = 3;
    cfg.cat = NULL;
    assert_null(registry_create(&cfg, NULL, &err));
}

/* Fail each allocation of a registration in turn: it must fail cleanly
 * (no leak, registry unchanged) until enough allocations succeed. */
static void test_register_allocation_failures(void **state)
{
    fixture *f = *state;
    worker_device_spec devs[WORKER_MAX_DEVICES];
    worker_spec s = spec_of(ID1, "RTX 4090", 2, devs);
    mu_error err;
    size_t n;
    for (n = 1; n < 100; n++) {
        test_fail_alloc_after(n);
        const worker *w = registry_register(f->reg, &s, 1, &err);
        test_fail_alloc_after(0);
        if (w)
            break;
        assert_non_null(strstr(err.text, "out of memory"));
        assert_int_equal(registry_count(f->reg), 0);
        assert_int_equal(f->n_seen, 0);
    }
    assert_true(n > 1 && n < 100);
    assert_int_equal(registry_count(f->reg), 1);
}

/* ids.c parses and writes ids itself: it must agree with libuuid on every
 * id, in either case, and refuse whatever libuuid's form is not. */
static void test_id_text_agrees_with_libuuid(void **state)
{
    (void)state;
    for (int i = 0; i < 2000; i++) {
        uuid_t u;
        uuid_generate_random(u);
        char lower[ID_TEXT_LEN], upper[ID_TEXT_LEN], ours[ID_TEXT_LEN];
        uuid_unparse_lower(u, lower);
        uuid_unparse_upper(u, upper);
        mu_id id;
        memcpy(id.b, u, 16);
        id_format(&id, ours);
        assert_string_equal(ours, lower);
        mu_id a, b;
        assert_int_equal(id_parse(lower, &a), 0);
        assert_int_equal(id_parse(upper, &b), 0);
        assert_memory_equal(a.b, u, 16);
        assert_memory_equal(b.b, u, 16);
    }
    const char *good = "0123abcd-4567-89ef-ABCD-0123456789af";
    mu_id id, before;
    assert_int_equal(id_parse(good, &id), 0);
    before = id;
    /* Every position spoiled in turn: a digit that is no hex digit, a
     * dash where a digit goes, a digit where a dash goes. */
    for (size_t i = 0; i < 36; i++) {
        char bad[40];
        memcpy(bad, good, 37);
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        const char *subst = dash ? "0g/" : "g-G/:@`\x80";
        for (const char *c = subst; *c; c++) {
            bad[i] = *c;
            assert_int_equal(id_parse(bad, &id), -1);
        }
    }
    char longer[40], shorter[40];
    snprintf(longer, sizeof(longer), "%s0", good);
    snprintf(shorter, sizeof(shorter), "%.35s", good);
    assert_int_equal(id_parse(longer, &id), -1);
    assert_int_equal(id_parse(shorter, &id), -1);
    assert_int_equal(id_parse("", &id), -1);
    assert_int_equal(id_parse(NULL, &id), -1);
    assert_memory_equal(id.b, before.b, 16); /* a refusal writes nothing */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_register_resolves_model_region_tier, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_by_pci_id_and_cpu_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_rejects_bad_specs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_unknown_model_suggests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_claims_agree_with_catalog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_rejects_mixed_models, setup, teardown),
        cmocka_unit_test_setup_teardown(test_liveness_transitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tick_expires_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_goodbye, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reregister_updates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_by_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefetch_is_only_a_hint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_rejects_bad_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_allocation_failures, setup, teardown),
        cmocka_unit_test(test_id_text_agrees_with_libuuid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
