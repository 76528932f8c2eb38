/*
 * Hardware inventory of a worker, through hwloc: CPU cores, memory and the
 * GPUs on the PCI tree, refined by NVML on NVIDIA hosts. hwloc can also load
 * a topology saved as XML (lstopo --of xml) from another machine, which is how
 * tests exercise multi-GPU layouts on machines without GPUs.
 *
 * This is the only file of muster that includes hwloc.h: everything else sees
 * the plain structs of inventory.h, so hwloc's ABI changes stay contained here.
 */
#include "inventory.h"

#include "nvml.h"
#include "strutil.h"

#include <errno.h>
#include <hwloc.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define FNV1A64_OFFSET_BASIS 0xcbf29ce484222325ull
#define FNV1A64_PRIME        0x00000100000001b3ull

enum {
    PCI_VENDOR_NVIDIA = 0x10de,
    PCI_VENDOR_AMD = 0x1002,
    PCI_VENDOR_INTEL = 0x8086,
    PCI_BASE_CLASS_DISPLAY = 0x03,
};

typedef struct id_range {
    uint16_t first, last;
} id_range;

/* Most Intel display-class devices are client iGPUs and Arc cards, which are
 * not worth scheduling data-centre work on (and every Intel desktop has one);
 * only these data-centre parts count. IDs from the Linux i915/xe PCI tables. */
static const id_range intel_dc_gpus[] = {
    {0x0b69, 0x0b69}, {0x0b6e, 0x0b6e}, {0x0bd0, 0x0bdb}, /* Data Center GPU Max */
    {0x0be0, 0x0be1}, {0x0be5, 0x0be5},                   /* Data Center GPU Max */
    {0x56c0, 0x56c2},                                     /* Data Center GPU Flex */
};

uint64_t inventory_fnv1a64(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= FNV1A64_PRIME;
    }
    return h;
}

static int is_gpu(const struct hwloc_pcidev_attr_s *pci)
{
    if ((pci->class_id >> 8) != PCI_BASE_CLASS_DISPLAY) {
        return 0;
    }
    switch (pci->vendor_id) {
    case PCI_VENDOR_NVIDIA:
    case PCI_VENDOR_AMD:
        return 1;
    case PCI_VENDOR_INTEL:
        for (size_t i = 0; i < sizeof intel_dc_gpus / sizeof intel_dc_gpus[0]; i++) {
            if (pci->device_id >= intel_dc_gpus[i].first &&
                pci->device_id <= intel_dc_gpus[i].last) {
                return 1;
            }
        }
        return 0;
    default:
        return 0;
    }
}

/* GPU OS devices (from hwloc's CUDA/NVML/RSMI/OpenCL/LevelZero plugins, or
 * recorded in an XML taken where those plugins ran) know the model name and
 * memory size that the bare PCI device does not. */
static const char *osdev_info(hwloc_obj_t pcidev, const char *name)
{
    for (hwloc_obj_t c = pcidev->io_first_child; c != NULL; c = c->next_sibling) {
        if (c->type != HWLOC_OBJ_OS_DEVICE) {
            continue;
        }
        const char *v = hwloc_obj_get_info_by_name(c, name);
        if (v != NULL && v[0] != '\0') {
            return v;
        }
    }
    return NULL;
}

static void fill_gpu_from_hwloc(inv_gpu *g, hwloc_obj_t obj)
{
    const struct hwloc_pcidev_attr_s *pci = &obj->attr->pcidev;

    g->pci_vendor_id = pci->vendor_id;
    g->pci_device_id = pci->device_id;
    /* Same form as hwloc's own pci_busid and as nvml_normalise_bus_id(). */
    snprintf(g->pci_bus_id, sizeof g->pci_bus_id, "%04x:%02x:%02x.%x", (unsigned)pci->domain,
             (unsigned)pci->bus, (unsigned)pci->dev, (unsigned)pci->func);
    g->link_speed_gbps = pci->linkspeed;

    const char *name = osdev_info(obj, "GPUModel");
    if (name == NULL) {
        name = hwloc_obj_get_info_by_name(obj, "PCIDevice");
    }
    if (name == NULL) {
        name = obj->name;
    }
    str_copy(g->name, name != NULL ? name : "", sizeof g->name);

    /* Both are in KiB. */
    const char *kib = osdev_info(obj, "CUDAGlobalMemorySize");
    if (kib == NULL) {
        kib = osdev_info(obj, "OpenCLGlobalMemorySize");
    }
    if (kib != NULL) {
        g->vram_mib = (uint64_t)strtoull(kib, NULL, 10) / 1024u;
    }
}

static void collect_gpus(inventory *inv, hwloc_topology_t topo)
{
    hwloc_obj_t obj = NULL;
    while ((obj = hwloc_get_next_pcidev(topo, obj)) != NULL) {
        if (!is_gpu(&obj->attr->pcidev)) {
            continue;
        }
        /* The wire format and the scheduler size GPU tables by INV_MAX_GPUS;
         * a bigger machine is advertised with its first GPUs only. */
        if (inv->gpu_count == INV_MAX_GPUS) {
            break;
        }
        fill_gpu_from_hwloc(&inv->gpus[inv->gpu_count++], obj);
    }
}

static void read_machine_id(char *buf, size_t len)
{
    buf[0] = '\0';
    FILE *f = fopen("/etc/machine-id", "r");
    if (f == NULL) {
        return;
    }
    if (fgets(buf, (int)len, f) == NULL) {
        buf[0] = '\0';
    }
    fclose(f);
    size_t n = strlen(buf);
    while (n > 0 &&
           (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t')) {
        buf[--n] = '\0';
    }
}

/* A topology loaded from XML describes another machine: its recorded
 * HostName names it, and this host's machine-id must not leak into its
 * fingerprint. Without a HostName the XML is anonymous and this host's
 * identity is used, as documented in inventory.h. */
static int fill_identity(inventory *inv, hwloc_topology_t topo, int from_xml, mu_error *errp)
{
    const char *xml_host = NULL;
    if (from_xml) {
        xml_host = hwloc_obj_get_info_by_name(hwloc_get_root_obj(topo), "HostName");
        if (xml_host != NULL && xml_host[0] == '\0') {
            xml_host = NULL;
        }
    }

    char machine_id[128] = "";
    if (xml_host != NULL) {
        str_copy(inv->hostname, xml_host, sizeof inv->hostname);
    } else {
        if (gethostname(inv->hostname, sizeof inv->hostname) != 0) {
            return errprintf(errp, "gethostname: %s", strerror(errno));
        }
        /* POSIX leaves a truncated name unterminated. */
        inv->hostname[sizeof inv->hostname - 1] = '\0';
        read_machine_id(machine_id, sizeof machine_id);
    }

    /* Containers cloned from one image may share a machine-id; hashing the
     * hostname after it keeps their fingerprints apart. */
    const char *id = machine_id[0] != '\0' ? machine_id : inv->hostname;
    uint64_t h = inventory_fnv1a64(id, strlen(id), FNV1A64_OFFSET_BASIS);
    h = inventory_fnv1a64(inv->hostname, strlen(inv->hostname), h);
    snprintf(inv->fingerprint, sizeof inv->fingerprint, "%016" PRIx64, h);
    return 0;
}

static void fill_cpu_and_memory(inventory *inv, hwloc_topology_t topo, int from_xml)
{
    int n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    if (n <= 0) {
        /* Some platforms (and some VMs) report no cores, only PUs. */
        n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    }
    inv->cpu_cores = n > 0 ? (unsigned)n : 0;

    inv->memory_mib = hwloc_get_root_obj(topo)->total_memory / (1024u * 1024u);
    if (inv->memory_mib == 0 && !from_xml) {
        /* hwloc cannot read NUMA memory on some kernels/containers. */
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        if (pages > 0 && page > 0) {
            inv->memory_mib = (uint64_t)pages * (uint64_t)page / (1024u * 1024u);
        }
    }
}

static int load_topology(hwloc_topology_t topo, const char *xml, mu_error *errp)
{
    /* hwloc drops every I/O object by default; IMPORTANT keeps GPUs, NICs and
     * storage (and the bridges above them) without every PCI function. */
    if (hwloc_topology_set_io_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT) != 0) {
        return errprintf(errp, "hwloc: cannot enable PCI discovery: %s", strerror(errno));
    }
    if (xml != NULL && hwloc_topology_set_xml(topo, xml) != 0) {
        /* With its libxml2 plugin hwloc parses the file here (EINVAL: bad
         * content); its built-in parser waits for load. Loading after this
         * failure must not happen: hwloc would quietly discover this host. */
        int e = errno;
        if (e == EINVAL) {
            return errprintf(errp, "'%s' is not a valid hwloc XML topology", xml);
        }
        return errprintf(errp, "cannot read topology XML '%s': %s", xml, strerror(e));
    }
    if (xml == NULL) {
        /* Plugins that cost more than they give here; blacklisting one that is
         * not installed fails harmlessly. "gl" probes X displays for NVIDIA
         * GPUs, which NVML covers on a headless worker. */
        (void)hwloc_topology_set_components(topo, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "gl");
#ifdef __linux__
        /* hwloc's Linux backend finds the same PCI devices (ids, class, link
         * speed) in sysfs; the libpciaccess plugin only adds pci.ids names,
         * and leaks on every load, which LeakSanitizer reports from an
         * unloaded module that no suppression can name. */
        (void)hwloc_topology_set_components(topo, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "pci");
#endif
    }
    if (hwloc_topology_load(topo) != 0) {
        if (xml != NULL) {
            return errprintf(errp, "'%s' is not a usable hwloc XML topology", xml);
        }
        return errprintf(errp, "hwloc: topology discovery failed: %s", strerror(errno));
    }
    return 0;
}

static inv_gpu *find_gpu(inventory *inv, const char *bus_id)
{
    for (unsigned i = 0; i < inv->gpu_count; i++) {
        if (strcasecmp(inv->gpus[i].pci_bus_id, bus_id) == 0) {
            return &inv->gpus[i];
        }
    }
    return NULL;
}

/* hwloc's linkspeed formula: GT/s per lane x lanes x line-code efficiency / 8
 * bits, in GB/s; 8b/10b up to gen 2, 128b/130b from gen 3, FLIT from gen 6. */
static float pcie_link_gbps(unsigned gen, unsigned width)
{
    static const float gt_per_s[] = {0.0f, 2.5f, 5.0f, 8.0f, 16.0f, 32.0f, 64.0f};
    if (gen == 0 || gen >= sizeof gt_per_s / sizeof gt_per_s[0] || width == 0) {
        return 0.0f;
    }
    float efficiency = gen <= 2 ? 8.0f / 10.0f : gen <= 5 ? 128.0f / 130.0f : 242.0f / 256.0f;
    return gt_per_s[gen] * (float)width * efficiency / 8.0f;
}

/* NVML refines hwloc's NVIDIA GPUs; it is best effort, so its absence or
 * failure leaves hwloc's view as it is. A GPU NVML reports that hwloc did not
 * see (a container without /sys/bus/pci) is added, so that such a worker
 * still advertises its GPUs; its PCI device id is then unknown (0). */
static void merge_nvml(inventory *inv)
{
    nvml_gpu found[INV_MAX_GPUS];
    char driver[sizeof inv->gpus[0].driver_version];
    /* Best effort: why NVML failed is not reported (errp NULL). */
    int n = nvml_query(found, INV_MAX_GPUS, driver, sizeof driver, NULL);

    for (int i = 0; i < n; i++) {
        const nvml_gpu *f = &found[i];
        if (f->pci_bus_id[0] == '\0') {
            continue;
        }
        inv_gpu *g = find_gpu(inv, f->pci_bus_id);
        if (g == NULL) {
            if (inv->gpu_count == INV_MAX_GPUS) {
                continue;
            }
            g = &inv->gpus[inv->gpu_count++];
            memset(g, 0, sizeof *g);
            g->pci_vendor_id = PCI_VENDOR_NVIDIA;
            str_copy(g->pci_bus_id, f->pci_bus_id, sizeof g->pci_bus_id);
        }
        if (f->name[0] != '\0') {
            str_copy(g->name, f->name, sizeof g->name);
        }
        if (f->vram_mib != 0) {
            g->vram_mib = f->vram_mib;
        }
        /* Set only on GPUs NVML drives: one bound to vfio-pci for a VM is
         * seen by hwloc but does not run this driver. */
        str_copy(g->driver_version, driver, sizeof g->driver_version);
        if (g->link_speed_gbps == 0.0f) {
            g->link_speed_gbps = pcie_link_gbps(f->pcie_gen, f->pcie_width);
        }
        g->power_limit_mw = f->power_limit_mw;
        g->pcie_gen = f->pcie_gen;
        g->pcie_width = f->pcie_width;
    }
}

int inventory_probe(inventory *inv, const char *topology_xml, mu_error *errp)
{
    if (errp != NULL) {
        errp->text[0] = '\0';
    }
    if (inv == NULL) {
        return errprintf(errp, "inventory_probe: no inventory to fill");
    }
    memset(inv, 0, sizeof *inv);

    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0) {
        return errprintf(errp, "hwloc: cannot initialise a topology: %s", strerror(errno));
    }
    int from_xml = topology_xml != NULL;
    int rc = load_topology(topo, topology_xml, errp);
    if (rc == 0) {
        rc = fill_identity(inv, topo, from_xml, errp);
    }
    if (rc == 0) {
        fill_cpu_and_memory(inv, topo, from_xml);
        collect_gpus(inv, topo);
    }
    hwloc_topology_destroy(topo);

    if (rc != 0) {
        memset(inv, 0, sizeof *inv);
        return -1;
    }
    /* An XML topology is another machine: this host's NVML says nothing of it. */
    if (!from_xml) {
        merge_nvml(inv);
    }
    return 0;
}
