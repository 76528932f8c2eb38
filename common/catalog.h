/* catalog.h - the GPU catalog (data/gpus.json).
 *
 * What spoof detection checks claims against and what matching resolves
 * model names with: each model's name and aliases, PCI ids, VRAM, expected
 * throughput, device class, reward multiplier and minimum stake. Loaded once
 * by a shell; the core only looks things up in it (pure, read-only).
 */
#ifndef MUSTER_CATALOG_H
#define MUSTER_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum gpu_class {
    GPU_CLASS_DATACENTER = 0,
    GPU_CLASS_CONSUMER,
    GPU_CLASS_APPLE,
    GPU_CLASS_CPU,
} gpu_class;

typedef struct gpu_model {
    char *name;
    char **aliases;
    size_t n_aliases;
    char *vendor;
    uint16_t pci_vendor_id; /* 0: none (Apple, CPU) */
    uint16_t *pci_device_ids;
    size_t n_pci_device_ids;
    double vram_gib;
    double fp32_tflops;
    double fp16_tflops;
    gpu_class cls;
    double reward_multiplier;
    uint32_t min_stake;
} gpu_model;

typedef struct catalog catalog;

/* Parse a catalog from JSON text (len bytes). WHERE names it in errors.
 * Rejects unknown keys, missing fields, duplicate names or aliases (after
 * normalisation) and PCI ids claimed by two models. Caller destroys. */
catalog *catalog_parse(const char *text, size_t len, const char *where, mu_error *errp);
catalog *catalog_load_file(const char *path, mu_error *errp);
void catalog_destroy(catalog *cat);

size_t catalog_count(const catalog *cat);
/* Borrowed; valid while cat lives. NULL when i is out of range. */
const gpu_model *catalog_at(const catalog *cat, size_t i);
/* Index of m in the catalog, or -1. */
int catalog_index(const catalog *cat, const gpu_model *m);

/* Look up by name or alias, ignoring case, spaces, '-' and '_'. NULL if none. */
const gpu_model *catalog_find(const catalog *cat, const char *name);
/* Look up by PCI vendor and device id. NULL if none. */
const gpu_model *catalog_find_pci(const catalog *cat, uint16_t vendor, uint16_t device);

/* Up to max model names closest to NAME (edit distance over names and
 * aliases, then substring matches), best first, for "did you mean". Returns
 * the count written. */
size_t catalog_suggest(const catalog *cat, const char *name, const gpu_model **out, size_t max);

/* Write " (did you mean "A", "B"?)" for NAME into out, or "" when nothing is
 * close: the tail of an "unknown GPU model" error. */
void catalog_hint(const catalog *cat, const char *name, char *out, size_t n);

const char *gpu_class_name(gpu_class cls);

#endif
