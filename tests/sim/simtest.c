/* simtest.c - see simtest.h. */
#include "simtest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

void simtest_write_temp(char *path, size_t n, const char *text)
{
    snprintf(path, n, "%s", "/tmp/muster-sim-test-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        fail_msg("mkstemp failed");
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len)
        fail_msg("write failed");
    close(fd);
}

void simtest_assert_names(const char *err, const char *path, unsigned line)
{
    char want[512];
    if (line)
        snprintf(want, sizeof(want), "%s:%u:", path, line);
    else
        snprintf(want, sizeof(want), "%s:", path);
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not name \"%s\"", err, want);
}
