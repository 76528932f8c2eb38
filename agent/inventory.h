/*
 * The worker's hardware inventory: what muster-agent tells the scheduler it
 * has (CPU cores, memory, GPUs), plus a stable host fingerprint so that the
 * scheduler recognises a worker across restarts and address changes.
 *
 * A plain value struct, so that callers need neither hwloc nor NVML headers.
 */
#ifndef MUSTER_AGENT_INVENTORY_H
#define MUSTER_AGENT_INVENTORY_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* GPUs past this many (in hwloc's PCI order) are left out of the inventory. */
#define INV_MAX_GPUS 16

typedef struct inv_gpu {
    char name[96];          /* marketing name from NVML, or hwloc's PCI name, or "" */
    uint16_t pci_vendor_id; /* e.g. 0x10de */
    uint16_t pci_device_id;
    char pci_bus_id[32];           /* "0000:01:00.0" */
    uint64_t vram_mib;             /* 0 when unknown */
    char driver_version[32];       /* "" when unknown */
    float link_speed_gbps;         /* PCIe link speed from hwloc (GB/s, as hwloc reports linkspeed),
                                    * 0 when unknown */
    unsigned power_limit_mw;       /* NVML's power limit, 0 when unknown */
    unsigned pcie_gen, pcie_width; /* NVML's current PCIe link, 0 when unknown */
} inv_gpu;

typedef struct inventory {
    char hostname[256];
    char fingerprint[17]; /* 16 lowercase hex digits: FNV-1a 64 of /etc/machine-id
                           * (or hostname when absent) + hostname */
    unsigned cpu_cores;   /* physical cores (HWLOC_OBJ_CORE), falling back to PUs */
    uint64_t memory_mib;  /* total machine memory */
    unsigned gpu_count;
    inv_gpu gpus[INV_MAX_GPUS];
} inventory;

/* Fill *inv from this host (topology_xml == NULL) or from an hwloc XML
 * topology file (for tests: real machines' topologies become test data).
 * GPUs are PCI devices of class 0x03xx (display/3D controllers) from vendors
 * NVIDIA 0x10de, AMD 0x1002 and Intel 0x8086 data-centre parts; on the host
 * path, names, VRAM and driver version are then filled from NVML when it can be
 * loaded (see nvml.h); otherwise left as hwloc gives them.
 * Returns 0 (errp->text then ""), or -1 with a one-line reason in *errp and *inv
 * zeroed. errp may be NULL. */
int inventory_probe(inventory *inv, const char *topology_xml, mu_error *errp);

/* FNV-1a 64-bit hash, exposed for tests. seed is the running hash: pass the
 * FNV offset basis 0xcbf29ce484222325 to start, or a previous result to hash
 * a concatenation piecewise. */
uint64_t inventory_fnv1a64(const void *data, size_t len, uint64_t seed);

#endif /* MUSTER_AGENT_INVENTORY_H */
