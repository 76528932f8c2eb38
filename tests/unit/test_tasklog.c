/* test_tasklog.c - a task's output ring: bounded, offsets that count every
 * byte, reads from any offset, restore from a saved tail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "tasklog.h"

static void test_keeps_the_latest(void **state)
{
    (void)state;
    tasklog *l = tasklog_create(8);
    assert_non_null(l);
    char buf[32];
    uint64_t start;
    assert_int_equal(tasklog_read(l, 0, buf, sizeof(buf), &start), 0);
    tasklog_append(l, "abcde", 5);
    assert_int_equal(tasklog_total(l), 5);
    assert_int_equal(tasklog_first(l), 0);
    assert_int_equal(tasklog_read(l, 2, buf, sizeof(buf), &start), 3);
    assert_int_equal(start, 2);
    assert_memory_equal(buf, "cde", 3);
    tasklog_append(l, "fghij", 5); /* wraps: "cdefghij" kept */
    assert_int_equal(tasklog_total(l), 10);
    assert_int_equal(tasklog_first(l), 2);
    size_t n = tasklog_read(l, 0, buf, sizeof(buf), &start);
    assert_int_equal(start, 2); /* older than kept: from the oldest kept */
    assert_int_equal(n, 8);
    assert_memory_equal(buf, "cdefghij", 8);
    /* A bounded read, from the middle, across the wrap. */
    n = tasklog_read(l, 5, buf, 3, &start);
    assert_int_equal(n, 3);
    assert_int_equal(start, 5);
    assert_memory_equal(buf, "fgh", 3);
    /* Past the end: nothing, at the end. */
    assert_int_equal(tasklog_read(l, 99, buf, sizeof(buf), &start), 0);
    assert_int_equal(start, 10);
    /* A single append larger than the ring keeps its tail. */
    tasklog_append(l, "0123456789ABCDEF", 16);
    assert_int_equal(tasklog_total(l), 26);
    n = tasklog_read(l, 0, buf, sizeof(buf), &start);
    assert_int_equal(n, 8);
    assert_int_equal(start, 18);
    assert_memory_equal(buf, "89ABCDEF", 8);
    tasklog_destroy(l);
}

static void test_restore(void **state)
{
    (void)state;
    tasklog *l = tasklog_create(4);
    tasklog_restore(l, "xyz", 3, 1000);
    assert_int_equal(tasklog_total(l), 1003);
    assert_int_equal(tasklog_first(l), 1000); /* nothing older was restored */
    char buf[8];
    uint64_t start;
    size_t n = tasklog_read(l, 0, buf, sizeof(buf), &start);
    assert_int_equal(start, 1000);
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "xyz", 3);
    tasklog_append(l, "12", 2);
    n = tasklog_read(l, 0, buf, sizeof(buf), &start);
    assert_int_equal(start, 1001);
    assert_memory_equal(buf, "yz12", 4);
    tasklog_destroy(l);
    assert_null(tasklog_create(0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keeps_the_latest),
        cmocka_unit_test(test_restore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
