/*
 * Optional NVIDIA Management Library support for the agent's inventory.
 *
 * libnvidia-ml.so.1 ships with the NVIDIA driver, not with muster: it is
 * loaded with dlopen() at run time so that one agent binary runs on hosts
 * with and without NVIDIA GPUs, and builds need no NVIDIA headers.
 */
#ifndef MUSTER_AGENT_NVML_H
#define MUSTER_AGENT_NVML_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct nvml_gpu {
    char name[96];
    char pci_bus_id[32]; /* normalised to "0000:01:00.0" lowercase, matching hwloc */
    uint64_t vram_mib;
    unsigned power_limit_mw;       /* 0 when unknown */
    unsigned pcie_gen, pcie_width; /* 0 when unknown */
} nvml_gpu;

/* Query NVML. Returns the number of GPUs written (<= max), 0 when NVML is absent
 * (not an error: most hosts have none; errp->text is then ""), or -1 with a
 * one-line reason in *errp on invalid arguments or when NVML loaded but failed.
 * errp may be NULL. driver_version (dvlen bytes; may be NULL) gets "" when
 * unknown. A device NVML cannot open (lost, or hidden by cgroups) is skipped
 * rather than failing the query. */
int nvml_query(nvml_gpu *out, int max, char *driver_version, size_t dvlen, mu_error *errp);

/* Rewrite a PCI bus id as hwloc prints it: 4-hex-digit (or wider, if needed)
 * domain, lowercase, e.g. "00000000:0A:00.0" -> "0000:0a:00.0"; a missing
 * domain means 0. Returns 0, or -1 (out set to "") when in is not a bus id
 * or out cannot hold the result.
 * Exposed for tests. */
int nvml_normalise_bus_id(const char *in, char *out, size_t outlen);

#endif /* MUSTER_AGENT_NVML_H */
