/*
 * NVML, loaded at run time: names, VRAM, power limits and the driver version of
 * NVIDIA GPUs, which hwloc's PCI view does not know. Nothing here is required:
 * a host without libnvidia-ml.so.1 simply reports no NVML GPUs.
 *
 * The few NVML types used are declared here from NVIDIA's documented ABI so
 * that no NVIDIA header is needed to build.
 */
#include "nvml.h"

#include "strutil.h"

#include <ctype.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

/* nvmlReturn_t is a C enum, passed as int; 0 is NVML_SUCCESS. */
typedef int nvml_ret;
enum { NVML_OK = 0 };

typedef struct nvml_device_st *nvml_device;

/* nvmlMemory_t (v1): all in bytes. */
typedef struct nvml_memory {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvml_memory;

/* nvmlPciInfo_t as filled by nvmlDeviceGetPciInfo_v2 and _v3 (the unversioned
 * v1 call has an older layout with busId first, hence it is never used). */
typedef struct nvml_pci_info {
    char bus_id_legacy[16];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pci_device_id; /* device id << 16 | vendor id */
    unsigned int pci_subsystem_id;
    char bus_id[32];
} nvml_pci_info;

/* NVML_DEVICE_NAME_V2_BUFFER_SIZE and NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE. */
enum { NVML_NAME_LEN = 96, NVML_DRIVER_VERSION_LEN = 80 };

typedef nvml_ret (*nvml_init_fn)(void);
typedef nvml_ret (*nvml_shutdown_fn)(void);
typedef const char *(*nvml_error_string_fn)(nvml_ret);
typedef nvml_ret (*nvml_get_count_fn)(unsigned int *);
typedef nvml_ret (*nvml_get_handle_fn)(unsigned int, nvml_device *);
typedef nvml_ret (*nvml_get_name_fn)(nvml_device, char *, unsigned int);
typedef nvml_ret (*nvml_get_memory_fn)(nvml_device, nvml_memory *);
typedef nvml_ret (*nvml_get_pci_fn)(nvml_device, nvml_pci_info *);
typedef nvml_ret (*nvml_driver_version_fn)(char *, unsigned int);
typedef nvml_ret (*nvml_get_uint_fn)(nvml_device, unsigned int *);

/* One load of the library; lives on the caller's stack, never global. */
typedef struct nvml_api {
    void *lib;
    nvml_init_fn init;
    nvml_shutdown_fn shutdown;
    nvml_error_string_fn error_string;
    nvml_get_count_fn get_count;
    nvml_get_handle_fn get_handle;
    nvml_get_name_fn get_name;
    nvml_get_memory_fn get_memory;
    nvml_get_pci_fn get_pci;
    nvml_driver_version_fn driver_version;
    nvml_get_uint_fn power_limit;
    nvml_get_uint_fn link_gen;
    nvml_get_uint_fn link_width;
} nvml_api;

/* ISO C has no conversion from dlsym's void * to a function pointer (POSIX
 * only guarantees the two share a representation), so the bytes are copied
 * rather than cast, which -Wpedantic would flag. */
static void load_sym(void *lib, const char *name, void *fn_ptr, size_t fn_size)
{
    void *sym = dlsym(lib, name);
    if (sym != NULL && fn_size == sizeof sym) {
        memcpy(fn_ptr, &sym, sizeof sym);
    }
}

#define LOAD_SYM(api, field, name) load_sym((api)->lib, (name), &(api)->field, sizeof(api)->field)

static const char *ret_str(const nvml_api *api, nvml_ret r)
{
    const char *s = api->error_string != NULL ? api->error_string(r) : NULL;
    return s != NULL ? s : "unknown NVML error";
}

/* Reads 1..maxdigits hex digits; returns how many, 0 when there are none. */
static size_t parse_hex(const char *s, size_t maxdigits, unsigned *out)
{
    unsigned v = 0;
    size_t k = 0;
    for (; k < maxdigits && isxdigit((unsigned char)s[k]); k++) {
        char c = (char)tolower((unsigned char)s[k]);
        v = v * 16u + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    *out = v;
    return k;
}

int nvml_normalise_bus_id(const char *in, char *out, size_t outlen)
{
    if (out != NULL && outlen > 0) {
        out[0] = '\0';
    }
    if (in == NULL) {
        return -1;
    }
    /* [domain:]bus:device.function, all hex. NVML pads the domain to 8
     * digits, hwloc to 4; legacy forms drop it. Parsed by hand because
     * sscanf's %x also takes signs, spaces and "0x". */
    unsigned first, second, domain, bus, dev, fn;
    const char *p = in;
    size_t k = parse_hex(p, 8, &first);
    if (k == 0 || p[k] != ':') {
        return -1;
    }
    p += k + 1;
    if ((k = parse_hex(p, 8, &second)) == 0) {
        return -1;
    }
    p += k;
    if (*p == ':') {
        domain = first;
        bus = second;
        p++;
        if ((k = parse_hex(p, 2, &dev)) == 0) {
            return -1;
        }
        p += k;
    } else {
        domain = 0;
        bus = first;
        dev = second;
    }
    if (*p != '.' || (k = parse_hex(p + 1, 1, &fn)) == 0 || p[1 + k] != '\0') {
        return -1;
    }
    if (bus > 0xff || dev > 0x1f || fn > 0x7) {
        return -1;
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%04x:%02x:%02x.%x", domain, bus, dev, fn);
    if (n < 0 || (size_t)n >= outlen) {
        return -1;
    }
    str_copy(out, buf, outlen);
    return 0;
}

static int load_api(nvml_api *api, mu_error *errp)
{
    LOAD_SYM(api, init, "nvmlInit_v2");
    LOAD_SYM(api, shutdown, "nvmlShutdown");
    LOAD_SYM(api, error_string, "nvmlErrorString");
    LOAD_SYM(api, get_count, "nvmlDeviceGetCount_v2");
    LOAD_SYM(api, get_handle, "nvmlDeviceGetHandleByIndex_v2");
    LOAD_SYM(api, get_name, "nvmlDeviceGetName");
    LOAD_SYM(api, get_memory, "nvmlDeviceGetMemoryInfo");
    LOAD_SYM(api, get_pci, "nvmlDeviceGetPciInfo_v3");
    if (api->get_pci == NULL) {
        LOAD_SYM(api, get_pci, "nvmlDeviceGetPciInfo_v2");
    }
    LOAD_SYM(api, driver_version, "nvmlSystemGetDriverVersion");
    LOAD_SYM(api, power_limit, "nvmlDeviceGetPowerManagementLimit");
    LOAD_SYM(api, link_gen, "nvmlDeviceGetCurrPcieLinkGeneration");
    LOAD_SYM(api, link_width, "nvmlDeviceGetCurrPcieLinkWidth");

    /* Without these there is nothing to enumerate; the rest only add detail. */
    const char *missing = api->init == NULL         ? "nvmlInit_v2"
                          : api->shutdown == NULL   ? "nvmlShutdown"
                          : api->get_count == NULL  ? "nvmlDeviceGetCount_v2"
                          : api->get_handle == NULL ? "nvmlDeviceGetHandleByIndex_v2"
                                                    : NULL;
    if (missing != NULL) {
        return errprintf(errp, "libnvidia-ml.so.1 has no %s (driver too old?)", missing);
    }
    return 0;
}

static void query_device(const nvml_api *api, nvml_device dev, nvml_gpu *g)
{
    memset(g, 0, sizeof *g);

    char name[NVML_NAME_LEN] = "";
    if (api->get_name != NULL && api->get_name(dev, name, sizeof name) == NVML_OK) {
        name[sizeof name - 1] = '\0';
        str_copy(g->name, name, sizeof g->name);
    }

    nvml_pci_info pci;
    memset(&pci, 0, sizeof pci);
    if (api->get_pci != NULL && api->get_pci(dev, &pci) == NVML_OK) {
        pci.bus_id[sizeof pci.bus_id - 1] = '\0';
        if (nvml_normalise_bus_id(pci.bus_id, g->pci_bus_id, sizeof g->pci_bus_id) != 0) {
            /* busId unparsable: the numeric fields still locate the device,
             * though they carry no function number (GPUs are function 0). */
            snprintf(g->pci_bus_id, sizeof g->pci_bus_id, "%04x:%02x:%02x.0", pci.domain,
                     pci.bus & 0xffu, pci.device & 0x1fu);
        }
    }

    nvml_memory mem;
    if (api->get_memory != NULL && api->get_memory(dev, &mem) == NVML_OK) {
        g->vram_mib = (uint64_t)(mem.total / (1024ull * 1024ull));
    }

    unsigned v;
    if (api->power_limit != NULL && api->power_limit(dev, &v) == NVML_OK) {
        g->power_limit_mw = v;
    }
    if (api->link_gen != NULL && api->link_gen(dev, &v) == NVML_OK) {
        g->pcie_gen = v;
    }
    if (api->link_width != NULL && api->link_width(dev, &v) == NVML_OK) {
        g->pcie_width = v;
    }
}

/* Runs between nvmlInit and nvmlShutdown, which the caller owns. */
static int query_devices(const nvml_api *api, nvml_gpu *out, int max, char *driver_version,
                         size_t dvlen, mu_error *errp)
{
    char dv[NVML_DRIVER_VERSION_LEN] = "";
    if (api->driver_version != NULL && api->driver_version(dv, sizeof dv) == NVML_OK) {
        dv[sizeof dv - 1] = '\0';
        if (driver_version != NULL) {
            str_copy(driver_version, dv, dvlen);
        }
    }

    unsigned count = 0;
    nvml_ret r = api->get_count(&count);
    if (r != NVML_OK) {
        return errprintf(errp, "nvmlDeviceGetCount_v2: %s", ret_str(api, r));
    }

    int n = 0;
    for (unsigned i = 0; i < count && n < max; i++) {
        nvml_device dev = NULL;
        if (api->get_handle(i, &dev) != NVML_OK) {
            continue;
        }
        query_device(api, dev, &out[n]);
        n++;
    }
    return n;
}

int nvml_query(nvml_gpu *out, int max, char *driver_version, size_t dvlen, mu_error *errp)
{
    if (driver_version != NULL) {
        str_copy(driver_version, "", dvlen);
    }
    if (errp != NULL) {
        errp->text[0] = '\0';
    }
    if (max < 0 || (max > 0 && out == NULL)) {
        return errprintf(errp, "nvml_query: invalid arguments");
    }

    nvml_api api;
    memset(&api, 0, sizeof api);
    /* RTLD_LOCAL: NVML's symbols must not leak into the agent's namespace. */
    api.lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (api.lib == NULL) {
        return 0;
    }

    int n = -1;
    if (load_api(&api, errp) == 0) {
        nvml_ret r = api.init();
        if (r != NVML_OK) {
            errprintf(errp, "nvmlInit_v2: %s", ret_str(&api, r));
        } else {
            n = query_devices(&api, out, max, driver_version, dvlen, errp);
            api.shutdown();
        }
    }
    dlclose(api.lib);
    return n;
}
