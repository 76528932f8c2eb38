/* main.c - muster-agent: inventory this host (or simulate GPUs), keep a
 * worker id, register with the broker, heartbeat and run the tasks it sends
 * until stopped (which kills them). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "agentcfg.h"
#include "alloc.h"
#include "catalog.h"
#include "inventory.h"
#include "link.h"
#include "log.h"
#include "pow.h"
#include "strutil.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* Devices of the registration, from the simulated model or the inventory. */
typedef struct reg_devices {
    Muster__Device dev[INV_MAX_GPUS];
    Muster__Device *ptr[INV_MAX_GPUS];
    size_t n;
} reg_devices;

static int simulated_devices(const agent_config *cfg, const catalog *cat, reg_devices *d,
                             mu_error *errp)
{
    const gpu_model *m = catalog_find(cat, cfg->simulate_model);
    if (!m) {
        char hint[160];
        catalog_hint(cat, cfg->simulate_model, hint, sizeof(hint));
        return errprintf(errp, "--simulate-gpu: unknown GPU model \"%s\"%s", cfg->simulate_model,
                         hint);
    }
    if (m->cls == GPU_CLASS_CPU)
        return errprintf(errp, "--simulate-gpu: \"%s\" is not a GPU", m->name);
    for (uint32_t i = 0; i < cfg->simulate_count; i++) {
        Muster__Device *x = &d->dev[i];
        muster__device__init(x);
        x->model = m->name;
        x->pci_vendor_id = m->pci_vendor_id;
        x->pci_device_id = m->n_pci_device_ids ? m->pci_device_ids[0] : 0;
        x->vram_mib = (uint64_t)(m->vram_gib * 1024);
        x->driver_version = (char *)"simulated";
        d->ptr[i] = x;
    }
    d->n = cfg->simulate_count;
    return 0;
}

static void real_devices(inventory *inv, reg_devices *d)
{
    for (unsigned i = 0; i < inv->gpu_count; i++) {
        Muster__Device *x = &d->dev[i];
        inv_gpu *g = &inv->gpus[i];
        muster__device__init(x);
        x->model = g->name;
        x->pci_vendor_id = g->pci_vendor_id;
        x->pci_device_id = g->pci_device_id;
        x->pci_bus_id = g->pci_bus_id;
        x->vram_mib = g->vram_mib;
        x->driver_version = g->driver_version;
        x->link_speed_gbps = g->link_speed_gbps;
        d->ptr[i] = x;
    }
    d->n = inv->gpu_count;
}

int main(int argc, char **argv)
{
    agent_config cfg;
    agent_action action;
    mu_error err;
    int rc = 2;
    catalog *cat = NULL;
    static inventory inv; /* large; not on the stack */
    static reg_devices devs;

    if (agent_config_from_args(&cfg, argc, argv, &action, &err) < 0) {
        fprintf(stderr, "muster-agent: %s\n", err.text);
        return 2;
    }
    if (action == AGENT_HELP) {
        agent_config_usage(stdout);
        return 0;
    }
    if (action == AGENT_VERSION) {
        printf("muster-agent %s (protocol 1)\n", MUSTER_VERSION);
        return 0;
    }
    log_init("muster-agent", cfg.log_level, stderr);
    pow_init(); /* the fast hash for proofs of work */

    /* The catalog lets a bad --simulate-gpu fail here, with suggestions,
     * rather than at the broker; real GPUs are resolved by the broker. */
    char path[AGENT_PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/gpus.json", cfg.data_dir);
    if (cfg.simulate_model[0] && !(cat = catalog_load_file(path, &err))) {
        fprintf(stderr, "muster-agent: %s\n", err.text);
        goto out;
    }
    if (inventory_probe(&inv, cfg.topology[0] ? cfg.topology : NULL, &err) < 0) {
        fprintf(stderr, "muster-agent: inventory: %s\n", err.text);
        rc = 1;
        goto out;
    }
    if (cfg.simulate_model[0]) {
        if (simulated_devices(&cfg, cat, &devs, &err) < 0) {
            fprintf(stderr, "muster-agent: %s\n", err.text);
            goto out;
        }
    } else {
        real_devices(&inv, &devs);
    }
    /* Held (fd kept open) for the life of the process. */
    if (agent_state_lock(cfg.state_dir, &err) < 0) {
        fprintf(stderr, "muster-agent: %s\n", err.text);
        goto out;
    }
    mu_id id;
    bool created;
    if (agent_identity_load(cfg.state_dir, &id, &created, &err) < 0) {
        fprintf(stderr, "muster-agent: %s\n", err.text);
        rc = 1;
        goto out;
    }
    if (cfg.broker_key[0]) {
        bool key_created;
        if (key_pair_load_or_create(cfg.key_path, &cfg.curve, &key_created, &err) < 0) {
            fprintf(stderr, "muster-agent: %s\n", err.text);
            rc = 1;
            goto out;
        }
        log_info(key_created ? "agent.new_key" : "agent.key", "public_key=%s file=%s",
                 cfg.curve.public_key, cfg.key_path);
    }
    char idtext[ID_TEXT_LEN];
    id_format(&id, idtext);
    log_info(created ? "agent.new_worker" : "agent.worker", "id=%s state_dir=%s", idtext,
             cfg.state_dir);
    log_info("agent.inventory", "host=%s cores=%u memory_mib=%llu gpus=%zu simulated=%s",
             cfg.hostname[0] ? cfg.hostname : inv.hostname, inv.cpu_cores,
             (unsigned long long)inv.memory_mib, devs.n, cfg.simulate_model[0] ? "yes" : "no");

    Muster__Register reg = MUSTER__REGISTER__INIT;
    reg.worker_id = idtext;
    reg.hostname = cfg.hostname[0] ? cfg.hostname : inv.hostname;
    reg.host_fingerprint = inv.fingerprint;
    reg.n_devices = devs.n;
    reg.devices = devs.ptr;
    reg.cpu_cores = inv.cpu_cores;
    reg.memory_mib = inv.memory_mib;
    reg.country = cfg.country;
    reg.region = cfg.region;
    reg.bandwidth_down_mbps = cfg.bw_down_mbps;
    reg.bandwidth_up_mbps = cfg.bw_up_mbps;
    reg.agent_version = (char *)MUSTER_VERSION;
    reg.simulated = cfg.simulate_model[0] != '\0';
    reg.price_micro_usd = cfg.price_uusd;

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* The task runner reaps its own children; an ignored SIGCHLD (which a
     * parent can hand down through exec) would reap them first. */
    signal(SIGCHLD, SIG_DFL);

    if (link_run(&cfg, &reg, &inv, &stop_requested, &err) < 0) {
        log_error("agent.failed", "reason=\"%s\"", err.text);
        rc = stop_requested ? 1 : 2;
        goto out;
    }
    rc = 0;
out:
    catalog_destroy(cat);
    return rc;
}
