/* test_auth.c - key pair files and accounts files: what is accepted, what
 * is refused (and named), and that nothing is overwritten. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "auth.h"
#include "fsutil.h"
#include "keys.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/muster-auth-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* text with KEYA and KEYB replaced by the keys (no format strings from data). */
static void fill(char *out, size_t cap, const char *tmpl, const char *ka, const char *kb)
{
    size_t o = 0;
    for (const char *p = tmpl; *p && o + 41 < cap;) {
        if (!strncmp(p, "KEYA", 4) || !strncmp(p, "KEYB", 4)) {
            const char *k = p[3] == 'A' ? ka : kb;
            memcpy(out + o, k, strlen(k));
            o += strlen(k);
            p += 4;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

static void test_key_pairs(void **state)
{
    (void)state;
    mu_error err;
    key_pair a, b, c;
    assert_int_equal(key_pair_generate(&a, &err), 0);
    assert_int_equal(key_pair_generate(&b, &err), 0);
    assert_true(key_valid(a.public_key));
    assert_true(key_valid(a.secret_key));
    assert_string_not_equal(a.public_key, b.public_key);
    assert_false(key_valid("short"));
    assert_false(key_valid(NULL));
    char bad[41];
    memcpy(bad, a.public_key, 41);
    bad[3] = '"'; /* not in the Z85 alphabet */
    assert_false(key_valid(bad));

    char path[128];
    snprintf(path, sizeof(path), "%s/k.json", dir);
    assert_int_equal(key_pair_save(path, &a, &err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(key_pair_save(path, &b, &err), -1); /* never overwritten */
    assert_int_equal(key_pair_load(path, &c, &err), 0);
    assert_string_equal(c.public_key, a.public_key);
    assert_string_equal(c.secret_key, a.secret_key);

    bool created;
    assert_int_equal(key_pair_load_or_create(path, &c, &created, &err), 0);
    assert_false(created);
    assert_string_equal(c.public_key, a.public_key);
    char fresh[128];
    snprintf(fresh, sizeof(fresh), "%s/new.json", dir);
    assert_int_equal(key_pair_load_or_create(fresh, &c, &created, &err), 0);
    assert_true(created);
    assert_string_not_equal(c.public_key, a.public_key);

    /* A public key that does not belong to the secret key. */
    char mixed[256], mpath[128];
    fill(mixed, sizeof(mixed), "{\"public_key\": \"KEYB\", \"secret_key\": \"KEYA\"}", a.secret_key,
         b.public_key);
    snprintf(mpath, sizeof(mpath), "%s/mixed.json", dir);
    write_file(mpath, mixed);
    assert_int_equal(key_pair_load(mpath, &c, &err), -1);
    assert_non_null(strstr(err.text, "does not belong"));
    write_file(mpath, "not json");
    assert_int_equal(key_pair_load(mpath, &c, &err), -1);
}

static void test_accounts(void **state)
{
    (void)state;
    mu_error err;
    key_pair a, b;
    assert_int_equal(key_pair_generate(&a, &err), 0);
    assert_int_equal(key_pair_generate(&b, &err), 0);
    char path[128], text[1024];
    snprintf(path, sizeof(path), "%s/accounts.json", dir);
    fill(text, sizeof(text),
         "[{\"name\": \"alice\", \"public_key\": \"KEYA\", \"max_gpus\": 8},"
         " {\"name\": \"ops\", \"public_key\": \"KEYB\", \"role\": \"admin\"}]",
         a.public_key, b.public_key);
    write_file(path, text);
    accounts *acc = accounts_load(path, &err);
    assert_non_null(acc);
    assert_int_equal(accounts_count(acc), 2);
    const account *x = accounts_by_key(acc, a.public_key);
    assert_non_null(x);
    assert_string_equal(x->name, "alice");
    assert_int_equal(x->role, ROLE_USER);
    assert_int_equal(x->max_gpus, 8);
    x = accounts_by_name(acc, "ops");
    assert_non_null(x);
    assert_int_equal(x->role, ROLE_ADMIN);
    assert_null(accounts_by_name(acc, "mallory"));
    assert_null(accounts_by_key(acc, "nope"));
    accounts_destroy(acc);

    /* Each bad file is refused, naming what is wrong. */
    const struct {
        const char *fmt;
        const char *needle;
    } bad[] = {
        {"{\"name\": \"x\"}", "array"},
        {"[{\"name\": \"alice\", \"public_key\": \"KEYA\", \"colour\": \"red\"}]", "colour"},
        {"[{\"name\": \"alice\", \"public_key\": \"tooshort\"}]", "Z85"},
        {"[{\"name\": \"al ice\", \"public_key\": \"KEYA\"}]", "letters"},
        {"[{\"name\": \"alice\", \"public_key\": \"KEYA\", \"role\": \"king\"}]", "king"},
        {"[{\"name\": \"alice\", \"public_key\": \"KEYA\"}, {\"name\": \"alice\", \"public_key\": "
         "\"KEYA\"}]",
         "same name"},
        {"[{\"public_key\": \"KEYA\"}]", "name"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fill(text, sizeof(text), bad[i].fmt, a.public_key, b.public_key);
        write_file(path, text);
        acc = accounts_load(path, &err);
        if (acc)
            fail_msg("case %zu accepted: %s", i, text);
        if (!strstr(err.text, bad[i].needle))
            fail_msg("case %zu: \"KEYA\" does not mention \"KEYA\"", i, err.text, bad[i].needle);
    }
    /* The same key twice. */
    fill(text, sizeof(text),
         "[{\"name\": \"a\", \"public_key\": \"KEYA\"}, {\"name\": \"b\", \"public_key\": "
         "\"KEYA\"}]",
         a.public_key, a.public_key);
    write_file(path, text);
    assert_null(accounts_load(path, &err));
    assert_non_null(strstr(err.text, "public key"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_pairs),
        cmocka_unit_test(test_accounts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
