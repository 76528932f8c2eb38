/* simtest.h - helpers shared by the simulator's unit tests. */
#ifndef MUSTER_SIMTEST_H
#define MUSTER_SIMTEST_H

#include <stddef.h>

/* Write TEXT to a fresh temporary file; its path goes to path (size n).
 * Fails the test if it cannot. Remove it with unlink. */
void simtest_write_temp(char *path, size_t n, const char *text);

/* Assert that err names PATH:LINE (LINE 0: just "PATH:"). */
void simtest_assert_names(const char *err, const char *path, unsigned line);

#endif
