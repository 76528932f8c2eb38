/* test_catalog.c - the GPU catalog, the region table and the tiers: the
 * shipped data loads and is complete; lookups by name, alias, NVML name and
 * PCI id; and every kind of broken file is refused with a reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "catalog.h"
#include "regions.h"
#include "testutil.h"
#include "tiers.h"

static void test_shipped_catalog_is_complete(void **state)
{
    (void)state;
    catalog *c = test_catalog();
    assert_true(catalog_count(c) >= 25);
    const char *required[] = {
        "H200",     "H100 SXM", "H100 PCIe", "A100 40GB", "A100 80GB",   "L40S",     "A10",
        "V100",     "T4",       "MI300X",    "RTX 5090",  "RTX 4090",    "RTX 4080", "RTX 4070",
        "RTX 3090", "RTX 3080", "RTX 3070",  "RTX 3060",  "RTX 2080 Ti", "M1 Pro",   "M1 Max",
        "M1 Ultra", "M2 Pro",   "M2 Max",    "M2 Ultra",  "M3 Pro",      "M3 Max",   "CPU"};
    int classes[4] = {0};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        const gpu_model *m = catalog_find(c, required[i]);
        if (!m)
            fail_msg("catalog lacks %s", required[i]);
        assert_string_equal(m->name, required[i]);
        assert_true(m->fp16_tflops >= m->fp32_tflops * 0.99 || m->cls == GPU_CLASS_CPU);
        classes[m->cls]++;
    }
    for (int k = 0; k < 4; k++)
        assert_true(classes[k] > 0);
    catalog_destroy(c);
}

/* Every name and every alias finds its own model, in any case and spacing:
 * lookups go through a hash table, and one name lost in it would refuse
 * every agent that claims it. */
static void test_every_name_finds_its_model(void **state)
{
    (void)state;
    catalog *c = test_catalog();
    size_t names = 0;
    for (size_t i = 0; i < catalog_count(c); i++) {
        const gpu_model *m = catalog_at(c, i);
        for (size_t k = 0; k <= m->n_aliases; k++, names++) {
            const char *name = k ? m->aliases[k - 1] : m->name;
            if (catalog_find(c, name) != m)
                fail_msg("\"%s\" does not find %s", name, m->name);
            char loud[128];
            snprintf(loud, sizeof(loud), "  %s ", name);
            for (char *p = loud; *p; p++)
                if (*p >= 'a' && *p <= 'z')
                    *p = (char)(*p - 'a' + 'A');
            if (catalog_find(c, loud) != m)
                fail_msg("\"%s\" does not find %s", loud, m->name);
        }
    }
    assert_true(names > catalog_count(c)); /* aliases were tried too */
    catalog_destroy(c);
}

static void test_lookup_by_alias_nvml_name_and_pci(void **state)
{
    (void)state;
    catalog *c = test_catalog();
    assert_string_equal(catalog_find(c, "NVIDIA GeForce RTX 4090")->name, "RTX 4090");
    assert_string_equal(catalog_find(c, "rtx-4090")->name, "RTX 4090");
    assert_string_equal(catalog_find(c, "RTX4090")->name, "RTX 4090");
    assert_string_equal(catalog_find(c, "NVIDIA A100-SXM4-80GB")->name, "A100 80GB");
    assert_string_equal(catalog_find(c, "Tesla T4")->name, "T4");
    assert_string_equal(catalog_find(c, "H100")->name, "H100 SXM");
    assert_null(catalog_find(c, "RTX 9090"));
    assert_null(catalog_find(c, ""));
    assert_null(catalog_find(c, NULL));
    assert_string_equal(catalog_find_pci(c, 0x10de, 0x2684)->name, "RTX 4090");
    assert_string_equal(catalog_find_pci(c, 0x1002, 0x74a1)->name, "MI300X");
    assert_null(catalog_find_pci(c, 0x10de, 0xffff));
    assert_null(catalog_find_pci(c, 0x1234, 0x2684));
    const gpu_model *m = catalog_find(c, "A10");
    assert_int_equal(catalog_index(c, m), (int)(m - catalog_at(c, 0)));
    assert_int_equal(catalog_index(c, NULL), -1);
    assert_string_equal(gpu_class_name(m->cls), "datacenter");
    catalog_destroy(c);
}

static void test_suggest(void **state)
{
    (void)state;
    catalog *c = test_catalog();
    const gpu_model *sug[3];
    size_t n = catalog_suggest(c, "RTX 4091", sug, 3);
    assert_true(n >= 1);
    assert_string_equal(sug[0]->name, "RTX 4090");
    n = catalog_suggest(c, "A100", sug, 3); /* substring of two names */
    assert_true(n >= 2);
    assert_int_equal(catalog_suggest(c, "zzzzzzzzzzzzzz", sug, 3), 0);
    catalog_destroy(c);
}

#define MODEL(name, extra)                                                                         \
    "{\"name\": \"" name "\", \"aliases\": [], \"vendor\": \"nvidia\", "                           \
    "\"pci_vendor_id\": \"0x10de\", \"pci_device_ids\": [\"0x0001\"], \"vram_gib\": 8, "           \
    "\"fp32_tflops\": 1, \"fp16_tflops\": 2, \"class\": \"consumer\", "                            \
    "\"reward_multiplier\": 1, \"min_stake\": 0, \"source\": \"s\"" extra "}"

static void expect_refused(const char *json, const char *needle)
{
    mu_error err = {{0}};
    catalog *c = catalog_parse(json, strlen(json), "test.json", &err);
    if (c) {
        catalog_destroy(c);
        fail_msg("accepted: %s", json);
    }
    if (!strstr(err.text, needle))
        fail_msg("reason \"%s\" lacks \"%s\"", err.text, needle);
}

static void test_broken_catalogs_are_refused(void **state)
{
    (void)state;
    const char *ok =
        "{\"version\": 1, \"sources\": {\"s\": \"x\"}, \"models\": [" MODEL("A", "") "]}";
    mu_error err;
    catalog *c = catalog_parse(ok, strlen(ok), "test.json", &err);
    assert_non_null(c);
    catalog_destroy(c);

    expect_refused("{\"version\": 1, \"models\": [\n" MODEL("A", "") ",\n]}", "test.json:");
    expect_refused("{\"version\": 2, \"models\": [" MODEL("A", "") "]}", "version 2");
    expect_refused("{\"version\": 1, \"models\": []}", "non-empty");
    expect_refused("{\"version\": 1, \"extra\": 1, \"models\": [" MODEL("A", "") "]}",
                   "unknown key \"extra\"");
    expect_refused("{\"version\": 1, \"models\": [" MODEL("A", ", \"colour\": 1") "]}",
                   "unknown key \"colour\"");
    expect_refused("{\"version\": 1, \"models\": [" MODEL("A", "") "," MODEL("a", "") "]}",
                   "names both");
    expect_refused("{\"version\": 1, \"sources\": {}, \"models\": [" MODEL("A", "") "]}",
                   "unknown source");
    /* the same PCI id under two names */
    expect_refused("{\"version\": 1, \"models\": [" MODEL("A", "") "," MODEL("B", "") "]}",
                   "claimed by A and B");
    const char *badclass = "{\"version\": 1, \"models\": [{\"name\": \"A\", \"vendor\": \"v\", "
                           "\"vram_gib\": 1, \"fp32_tflops\": 1, \"fp16_tflops\": 1, "
                           "\"class\": \"toaster\", \"reward_multiplier\": 1, \"min_stake\": 0, "
                           "\"source\": \"s\"}]}";
    expect_refused(badclass, "class \"toaster\"");
    const char *missing = "{\"version\": 1, \"models\": [{\"name\": \"A\", \"vendor\": \"v\", "
                          "\"class\": \"cpu\", \"source\": \"s\"}]}";
    expect_refused(missing, "missing required key");
    expect_refused("{\"version\": 1, \"models\": [" MODEL("A", "") "]} trailing",
                   "unexpected text");
}

static void test_missing_file(void **state)
{
    (void)state;
    mu_error err;
    assert_null(catalog_load_file("/nonexistent/gpus.json", &err));
    assert_non_null(strstr(err.text, "/nonexistent/gpus.json"));
    assert_null(regions_load_file("/nonexistent/regions.json", &err));
    assert_non_null(strstr(err.text, "No such file"));
}

static void test_region_table(void **state)
{
    (void)state;
    region_table *t = test_regions();
    assert_true(regions_country_count(t) >= 130);
    assert_int_equal(regions_count(t), 10);
    assert_string_equal(regions_of_country(t, "DE"), "europe");
    assert_string_equal(regions_of_country(t, "de"), "europe");
    assert_string_equal(regions_of_country(t, "US"), "north-america");
    assert_string_equal(regions_of_country(t, "BR"), "south-america");
    assert_string_equal(regions_of_country(t, "JP"), "asia-east");
    assert_string_equal(regions_of_country(t, "IN"), "asia-south");
    assert_string_equal(regions_of_country(t, "SG"), "asia-southeast");
    assert_string_equal(regions_of_country(t, "AU"), "oceania");
    assert_string_equal(regions_of_country(t, "NG"), "africa");
    assert_null(regions_of_country(t, "XX"));
    assert_null(regions_of_country(t, "DEU"));
    assert_null(regions_of_country(t, NULL));
    /* Codes are two ASCII letters; the neighbours of 'A', 'Z', 'a' and 'z'
     * in ASCII, and UTF-8 letters, are not. */
    const char *not_codes[] = {"",   "D",  "D1", "@E",       "[E", "`E",
                               "{E", "D@", "D[", "\xc3\x89", " DE"};
    for (size_t i = 0; i < sizeof(not_codes) / sizeof(not_codes[0]); i++) {
        assert_null(regions_of_country(t, not_codes[i]));
        assert_int_equal(regions_index_of_country(t, not_codes[i]), -1);
    }
    int eu = regions_index(t, "europe");
    assert_true(eu >= 0);
    assert_string_equal(regions_name_at(t, (size_t)eu), "europe");
    assert_int_equal(regions_index_of_country(t, "DE"), eu);
    assert_int_equal(regions_index_of_country(t, "dE"), eu);
    assert_int_equal(regions_index_of_country(t, "XX"), -1);
    /* By the table's own pointer, by another copy, in any case. */
    assert_int_equal(regions_index(t, regions_of_country(t, "FR")), eu);
    char copy[16];
    snprintf(copy, sizeof(copy), "EuRoPe");
    assert_int_equal(regions_index(t, copy), eu);
    assert_int_equal(regions_index(t, "atlantis"), -1);
    assert_int_equal(regions_index(t, NULL), -1);
    /* Every code both ways agrees with the table's listing. */
    size_t known = 0;
    for (char a = 'A'; a <= 'Z'; a++) {
        for (char b = 'A'; b <= 'Z'; b++) {
            char up[3] = {a, b, 0}, low[3] = {(char)(a + 32), (char)(b + 32), 0};
            const char *r = regions_of_country(t, up);
            known += r != NULL;
            assert_int_equal(regions_index_of_country(t, low), r ? regions_index(t, r) : -1);
        }
    }
    assert_int_equal(known, regions_country_count(t));
    assert_string_equal(regions_find(t, "Europe"), "europe");
    assert_null(regions_find(t, "atlantis"));
    regions_destroy(t);

    const char *bad[][2] = {
        {"{\"version\": 1, \"regions\": [{\"name\": \"a\"}], \"countries\": "
         "[{\"code\": \"DE\", \"region\": \"b\"}]}",
         "unknown region \"b\""},
        {"{\"version\": 1, \"regions\": [{\"name\": \"a\"}], \"countries\": "
         "[{\"code\": \"DE\", \"region\": \"a\"}, {\"code\": \"DE\", \"region\": \"a\"}]}",
         "listed twice"},
        {"{\"version\": 1, \"regions\": [{\"name\": \"a\"}], \"countries\": "
         "[{\"code\": \"de\", \"region\": \"a\"}]}",
         "two capital letters"},
        {"{\"version\": 1, \"regions\": [{\"name\": \"a\", \"x\": 1}], \"countries\": []}",
         "unknown key \"x\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mu_error err = {{0}};
        region_table *r = regions_parse(bad[i][0], strlen(bad[i][0]), "r.json", &err);
        assert_null(r);
        if (!strstr(err.text, bad[i][1]))
            fail_msg("reason \"%s\" lacks \"%s\"", err.text, bad[i][1]);
    }
}

static void test_tiers(void **state)
{
    (void)state;
    tier_table t;
    tiers_default(&t);
    assert_int_equal(tiers_classify(&t, 0, 0), TIER_NONE);
    assert_int_equal(tiers_classify(&t, 99, 75), TIER_NONE);
    assert_int_equal(tiers_classify(&t, 100, 75), TIER_LOW);
    assert_int_equal(tiers_classify(&t, 400, 299), TIER_LOW); /* both thresholds count */
    assert_int_equal(tiers_classify(&t, 400, 300), TIER_MEDIUM);
    assert_int_equal(tiers_classify(&t, 800, 600), TIER_HIGH);
    assert_int_equal(tiers_classify(&t, 1599, 5000), TIER_HIGH);
    assert_int_equal(tiers_classify(&t, 1600, 1200), TIER_ULTRA);
    assert_int_equal(tiers_classify(&t, 100000, 100000), TIER_ULTRA);
    tier x;
    assert_int_equal(tier_parse("Medium", &x), 0);
    assert_int_equal(x, TIER_MEDIUM);
    assert_int_equal(tier_parse("gold", &x), -1);
    assert_string_equal(tier_name(TIER_ULTRA), "ultra");
    assert_int_equal(tiers_validate(&t, NULL), 0);

    mu_error err;
    cJSON *j = cJSON_Parse("{\"low\": {\"down\": 50, \"up\": 25}}");
    assert_int_equal(tiers_from_json(&t, j, "cfg", &err), 0);
    assert_int_equal(tiers_classify(&t, 60, 30), TIER_LOW);
    cJSON_Delete(j);
    tier_table before = t;
    j = cJSON_Parse("{\"medium\": {\"down\": 10}}"); /* below low */
    assert_int_equal(tiers_from_json(&t, j, "cfg", &err), -1);
    assert_non_null(strstr(err.text, "tier medium"));
    assert_memory_equal(&t, &before, sizeof(t)); /* unchanged on error */
    cJSON_Delete(j);
    j = cJSON_Parse("{\"platinum\": {}}");
    assert_int_equal(tiers_from_json(&t, j, "cfg", &err), -1);
    assert_non_null(strstr(err.text, "platinum"));
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_catalog_is_complete),
        cmocka_unit_test(test_lookup_by_alias_nvml_name_and_pci),
        cmocka_unit_test(test_every_name_finds_its_model),
        cmocka_unit_test(test_suggest),
        cmocka_unit_test(test_broken_catalogs_are_refused),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_region_table),
        cmocka_unit_test(test_tiers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
