/*
 * Unit tests of the agent's hardware inventory (agent/inventory.c) and its
 * optional NVML loader (agent/nvml.c). GPU layouts come from hand-written
 * hwloc XML topologies in tests/data (TEST_DATA_DIR), since test machines
 * have no GPU; the host path is only checked for sane CPU/memory values.
 *
 * tests/data/topo-2gpu.xml: "gpu-node-07", one socket of 4 cores / 8 PUs,
 * 16 GiB, two RTX 4090 (10de:2684, class 0302) and a ConnectX-5 NIC (class
 * 0200) under one host bridge.
 * tests/data/topo-mixed.xml: no HostName, two sockets of 2 cores, 2 x 32 GiB;
 * behind a PCI switch an AMD MI210 (class 0380), an Intel Data Center GPU Max
 * 1550 (class 0380) and an NVIDIA H100 (class 0302) carrying hwloc OS devices
 * (GPUModel, CUDA/OpenCL memory sizes), plus an NVMe drive; on the other
 * socket an Intel client iGPU and a Matrox BMC display, neither a GPU here.
 * The files hold no XML comments: hwloc's built-in parser (used when the
 * libxml2 plugin is not installed, or with HWLOC_LIBXML_IMPORT=0) rejects them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "inventory.h"
#include "nvml.h"
#include "strutil.h"

#ifndef TEST_DATA_DIR
#error "TEST_DATA_DIR must be defined to the absolute path of tests/data"
#endif

#define FNV_BASIS 0xcbf29ce484222325ull

static void data_path(char *buf, size_t len, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", TEST_DATA_DIR, name);
    assert_true(n > 0 && (size_t)n < len);
}

/* Writes text to a fresh temporary file; path receives its name. */
static void write_temp(char *path, size_t len, const char *text)
{
    const char *dir = getenv("TMPDIR");
    if (dir == NULL || dir[0] == '\0') {
        dir = "/tmp";
    }
    int n = snprintf(path, len, "%s/muster-inv-XXXXXX", dir);
    assert_true(n > 0 && (size_t)n < len);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static int is_hex16(const char *s)
{
    if (strlen(s) != 16) {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

static void expected_fingerprint(char out[17], const char *id, const char *host)
{
    uint64_t h = inventory_fnv1a64(id, strlen(id), FNV_BASIS);
    h = inventory_fnv1a64(host, strlen(host), h);
    snprintf(out, 17, "%016" PRIx64, h);
}

static void test_fnv1a64_known_answers(void **state)
{
    (void)state;
    assert_true(inventory_fnv1a64("", 0, FNV_BASIS) == 0xcbf29ce484222325ull);
    assert_true(inventory_fnv1a64("a", 1, FNV_BASIS) == 0xaf63dc4c8601ec8cull);
    assert_true(inventory_fnv1a64("foobar", 6, FNV_BASIS) == 0x85944171f73967e8ull);
    /* The seed chains: hashing in pieces equals hashing the concatenation. */
    uint64_t h = inventory_fnv1a64("foo", 3, FNV_BASIS);
    assert_true(inventory_fnv1a64("bar", 3, h) == 0x85944171f73967e8ull);
    /* Bytes are unsigned: a high byte must not sign-extend into the hash. */
    const unsigned char hi[1] = {0xff};
    assert_true(inventory_fnv1a64(hi, 1, FNV_BASIS) == ((FNV_BASIS ^ 0xffu) * 0x100000001b3ull));
}

static void test_xml_two_gpus(void **state)
{
    (void)state;
    char path[1024];
    mu_error err;
    str_copy(err.text, "x", sizeof err.text);
    data_path(path, sizeof path, "topo-2gpu.xml");
    inventory inv;
    assert_int_equal(inventory_probe(&inv, path, &err), 0);
    assert_string_equal(err.text, "");

    assert_string_equal(inv.hostname, "gpu-node-07");
    char fp[17];
    expected_fingerprint(fp, "gpu-node-07", "gpu-node-07");
    assert_string_equal(inv.fingerprint, fp);

    assert_int_equal(inv.cpu_cores, 4); /* 8 PUs, but cores are what is counted */
    assert_int_equal(inv.memory_mib, 16384);

    /* The ConnectX NIC at 81:00.0 is PCI but not a GPU. */
    assert_int_equal(inv.gpu_count, 2);
    const char *bus_ids[2] = {"0000:01:00.0", "0000:41:00.0"};
    for (unsigned i = 0; i < 2; i++) {
        const inv_gpu *g = &inv.gpus[i];
        assert_int_equal(g->pci_vendor_id, 0x10de);
        assert_int_equal(g->pci_device_id, 0x2684);
        assert_string_equal(g->pci_bus_id, bus_ids[i]);
        assert_string_equal(g->name, "AD102 [GeForce RTX 4090]");
        assert_int_equal(g->vram_mib, 0);           /* bare PCI: hwloc knows no VRAM */
        assert_string_equal(g->driver_version, ""); /* NVML is never asked for XML */
    }
    assert_true(inv.gpus[0].link_speed_gbps > 31.5f && inv.gpus[0].link_speed_gbps < 31.6f);
    assert_true(inv.gpus[1].link_speed_gbps > 15.7f && inv.gpus[1].link_speed_gbps < 15.8f);
}

static void test_xml_vendor_filter_and_osdev_details(void **state)
{
    (void)state;
    char path[1024];
    mu_error err;
    data_path(path, sizeof path, "topo-mixed.xml");
    inventory inv;
    assert_int_equal(inventory_probe(&inv, path, &err), 0);

    assert_int_equal(inv.cpu_cores, 4);
    assert_int_equal(inv.memory_mib, 65536); /* two NUMA nodes of 32 GiB */

    /* No HostName in this XML: the identity is this host's. */
    char host[256];
    assert_int_equal(gethostname(host, sizeof host), 0);
    host[sizeof host - 1] = '\0';
    assert_string_equal(inv.hostname, host);
    assert_true(is_hex16(inv.fingerprint));

    /* The Intel client iGPU and the Matrox BMC display are display-class but
     * are not counted; the three data-centre parts behind the switch are. */
    assert_int_equal(inv.gpu_count, 3);

    assert_int_equal(inv.gpus[0].pci_vendor_id, 0x1002);
    assert_int_equal(inv.gpus[0].pci_device_id, 0x740f);
    assert_string_equal(inv.gpus[0].pci_bus_id, "0000:18:00.0");
    assert_string_equal(inv.gpus[0].name, "AMD Instinct MI210");
    assert_int_equal(inv.gpus[0].vram_mib, 0);

    assert_int_equal(inv.gpus[1].pci_vendor_id, 0x8086);
    assert_int_equal(inv.gpus[1].pci_device_id, 0x0bd5);
    assert_string_equal(inv.gpus[1].pci_bus_id, "0000:19:00.0");
    assert_string_equal(inv.gpus[1].name, "Intel(R) Data Center GPU Max 1550");
    assert_int_equal(inv.gpus[1].vram_mib, 131072);

    assert_int_equal(inv.gpus[2].pci_vendor_id, 0x10de);
    assert_int_equal(inv.gpus[2].pci_device_id, 0x2330);
    assert_string_equal(inv.gpus[2].pci_bus_id, "0000:1a:00.0");
    assert_string_equal(inv.gpus[2].name, "NVIDIA H100 80GB HBM3");
    assert_int_equal(inv.gpus[2].vram_mib, 81559);
    assert_true(inv.gpus[2].link_speed_gbps > 63.0f && inv.gpus[2].link_speed_gbps < 63.1f);
}

/* A machine with more GPUs than INV_MAX_GPUS keeps the first ones in PCI order. */
static void test_xml_gpu_cap(void **state)
{
    (void)state;
    enum { NGPUS = INV_MAX_GPUS + 4 };
    static const char head[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<!DOCTYPE topology SYSTEM \"hwloc2.dtd\">\n"
        "<topology version=\"2.0\">\n"
        "  <object type=\"Machine\" os_index=\"0\" cpuset=\"0x00000001\""
        " complete_cpuset=\"0x00000001\" allowed_cpuset=\"0x00000001\" nodeset=\"0x00000001\""
        " complete_nodeset=\"0x00000001\" allowed_nodeset=\"0x00000001\" gp_index=\"1\">\n"
        "    <info name=\"HostName\" value=\"big-box\"/>\n"
        "    <object type=\"NUMANode\" os_index=\"0\" cpuset=\"0x00000001\""
        " complete_cpuset=\"0x00000001\" nodeset=\"0x00000001\" complete_nodeset=\"0x00000001\""
        " gp_index=\"2\" local_memory=\"1073741824\"/>\n"
        "    <object type=\"PU\" os_index=\"0\" cpuset=\"0x00000001\""
        " complete_cpuset=\"0x00000001\" nodeset=\"0x00000001\" complete_nodeset=\"0x00000001\""
        " gp_index=\"3\"/>\n"
        "    <object type=\"Bridge\" gp_index=\"4\" bridge_type=\"0-1\" depth=\"0\""
        " bridge_pci=\"0000:[00-ff]\">\n";
    static const char tail[] = "    </object>\n  </object>\n</topology>\n";

    char xml[16384];
    size_t used = (size_t)snprintf(xml, sizeof xml, "%s", head);
    for (int i = 0; i < NGPUS; i++) {
        int n = snprintf(xml + used, sizeof xml - used,
                         "      <object type=\"PCIDev\" gp_index=\"%d\""
                         " pci_busid=\"0000:%02x:00.0\""
                         " pci_type=\"0302 [10de:2330] [10de:16c1] a1\""
                         " pci_link_speed=\"0.000000\"/>\n",
                         100 + i, 0x10 + i);
        assert_true(n > 0 && (size_t)n < sizeof xml - used);
        used += (size_t)n;
    }
    int n = snprintf(xml + used, sizeof xml - used, "%s", tail);
    assert_true(n > 0 && (size_t)n < sizeof xml - used);

    char path[1024];
    mu_error err;
    write_temp(path, sizeof path, xml);
    inventory inv;
    int rc = inventory_probe(&inv, path, &err);
    unlink(path);
    assert_int_equal(rc, 0);
    assert_string_equal(inv.hostname, "big-box");
    /* No Core objects in this topology: PUs are counted instead. */
    assert_int_equal(inv.cpu_cores, 1);
    assert_int_equal(inv.memory_mib, 1024);
    assert_int_equal(inv.gpu_count, INV_MAX_GPUS);
    assert_string_equal(inv.gpus[0].pci_bus_id, "0000:10:00.0");
    assert_string_equal(inv.gpus[INV_MAX_GPUS - 1].pci_bus_id, "0000:1f:00.0");
}

static void test_xml_missing_file(void **state)
{
    (void)state;
    char path[1024];
    mu_error err = {""};
    data_path(path, sizeof path, "no-such-topology.xml");
    inventory inv;
    memset(&inv, 0x5a, sizeof inv);
    assert_int_equal(inventory_probe(&inv, path, &err), -1);
    assert_true(strlen(err.text) > 0);
    assert_null(strchr(err.text, '\n'));
    assert_non_null(strstr(err.text, "no-such-topology.xml"));
    assert_int_equal(inv.gpu_count, 0); /* no stale or garbage data on failure */
}

static void test_xml_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "this is not XML at all\n",
        "<?xml version=\"1.0\"?>\n<topology version=\"2.0\">\n  <object type=\"Machine\"",
        "<?xml version=\"1.0\"?>\n<topology version=\"2.0\">\n</topology>\n",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[1024];
        mu_error err = {""};
        write_temp(path, sizeof path, bad[i]);
        inventory inv;
        int rc = inventory_probe(&inv, path, &err);
        unlink(path);
        assert_int_equal(rc, -1);
        assert_true(strlen(err.text) > 0);
        assert_null(strchr(err.text, '\n'));
    }
}

/* A reason longer than mu_error holds is cut and still terminated, and a
 * NULL errp is tolerated. */
static void test_error_reporting(void **state)
{
    (void)state;
    inventory inv;

    /* The reason quotes the path, so a long path makes a long reason. */
    char path[1024];
    int n = snprintf(path, sizeof path, "%s/", TEST_DATA_DIR);
    assert_true(n > 0 && (size_t)n < sizeof path);
    memset(path + n, 'p', sizeof path - (size_t)n - 1);
    path[sizeof path - 1] = '\0';
    mu_error err;
    memset(err.text, 'z', sizeof err.text);
    assert_int_equal(inventory_probe(&inv, path, &err), -1);
    assert_int_equal(strlen(err.text), sizeof err.text - 1);

    data_path(path, sizeof path, "no-such-topology.xml");
    assert_int_equal(inventory_probe(&inv, path, NULL), -1);
    assert_int_equal(inv.gpu_count, 0);

    str_copy(err.text, "", sizeof err.text);
    assert_int_equal(inventory_probe(NULL, NULL, &err), -1);
    assert_true(strlen(err.text) > 0);
}

static void test_host_probe(void **state)
{
    (void)state;
    mu_error err;
    str_copy(err.text, "x", sizeof err.text);
    inventory inv;
    int rc = inventory_probe(&inv, NULL, &err);
    if (rc != 0) {
        print_error("host probe failed: %s\n", err.text);
    }
    assert_int_equal(rc, 0);
    assert_string_equal(err.text, "");
    assert_true(inv.cpu_cores >= 1);
    assert_true(inv.memory_mib > 0);
    assert_true(inv.hostname[0] != '\0');
    assert_true(is_hex16(inv.fingerprint));
    assert_true(inv.gpu_count <= INV_MAX_GPUS);

    /* The fingerprint is stable across probes of the same host. */
    inventory again;
    assert_int_equal(inventory_probe(&again, NULL, &err), 0);
    assert_string_equal(again.fingerprint, inv.fingerprint);
}

/* Test machines have no NVIDIA driver, and then NVML is absent, which is not
 * an error. On a developer's NVIDIA host the real library answers instead. */
static void test_nvml_query(void **state)
{
    (void)state;
    nvml_gpu gpus[INV_MAX_GPUS];
    char dv[32] = "x";
    mu_error err;
    str_copy(err.text, "x", sizeof err.text);
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    int n = nvml_query(gpus, INV_MAX_GPUS, dv, sizeof dv, &err);
    if (lib == NULL) {
        assert_int_equal(n, 0);
        assert_string_equal(dv, "");
        assert_string_equal(err.text, "");
        assert_int_equal(nvml_query(NULL, 0, NULL, 0, NULL), 0);
    } else {
        dlclose(lib);
        assert_true(n >= -1 && n <= INV_MAX_GPUS);
        assert_true(n != -1 || strlen(err.text) > 0);
        for (int i = 0; i < n; i++) {
            char norm[32];
            assert_int_equal(nvml_normalise_bus_id(gpus[i].pci_bus_id, norm, sizeof norm), 0);
            assert_string_equal(norm, gpus[i].pci_bus_id);
        }
    }
    /* Bad arguments are refused before NVML is touched. */
    str_copy(err.text, "", sizeof err.text);
    assert_int_equal(nvml_query(NULL, 2, NULL, 0, &err), -1);
    assert_true(strlen(err.text) > 0);
    assert_int_equal(nvml_query(gpus, -1, NULL, 0, NULL), -1);
}

static void test_nvml_bus_id_normalisation(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(nvml_normalise_bus_id("00000000:01:00.0", out, sizeof out), 0);
    assert_string_equal(out, "0000:01:00.0");
    assert_int_equal(nvml_normalise_bus_id("00000000:C1:00.0", out, sizeof out), 0);
    assert_string_equal(out, "0000:c1:00.0");
    assert_int_equal(nvml_normalise_bus_id("00000001:0A:1F.7", out, sizeof out), 0);
    assert_string_equal(out, "0001:0a:1f.7");
    assert_int_equal(nvml_normalise_bus_id("0000:41:00.0", out, sizeof out), 0);
    assert_string_equal(out, "0000:41:00.0");
    assert_int_equal(nvml_normalise_bus_id("41:00.0", out, sizeof out), 0);
    assert_string_equal(out, "0000:41:00.0");

    assert_int_equal(nvml_normalise_bus_id("", out, sizeof out), -1);
    assert_string_equal(out, "");
    assert_int_equal(nvml_normalise_bus_id("GPU-0", out, sizeof out), -1);
    assert_int_equal(nvml_normalise_bus_id("0000:01:00.0x", out, sizeof out), -1);
    assert_int_equal(nvml_normalise_bus_id("0000:100:00.0", out, sizeof out), -1);
    assert_int_equal(nvml_normalise_bus_id(NULL, out, sizeof out), -1);

    assert_int_equal(nvml_normalise_bus_id("0000:01:00.0 ", out, sizeof out), -1);
    assert_int_equal(nvml_normalise_bus_id("0000:01:00.-0", out, sizeof out), -1);
    assert_int_equal(nvml_normalise_bus_id("0000:01:0x0.0", out, sizeof out), -1);

    /* Too small a buffer is a failure, not a silently truncated id. */
    char tiny[12];
    assert_int_equal(nvml_normalise_bus_id("00000000:01:00.0", tiny, sizeof tiny), -1);
    assert_string_equal(tiny, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fnv1a64_known_answers),
        cmocka_unit_test(test_xml_two_gpus),
        cmocka_unit_test(test_xml_vendor_filter_and_osdev_details),
        cmocka_unit_test(test_xml_gpu_cap),
        cmocka_unit_test(test_xml_missing_file),
        cmocka_unit_test(test_xml_malformed),
        cmocka_unit_test(test_error_reporting),
        cmocka_unit_test(test_host_probe),
        cmocka_unit_test(test_nvml_query),
        cmocka_unit_test(test_nvml_bus_id_normalisation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
