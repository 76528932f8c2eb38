/* error.h - errors returned with a reason a person can read.
 *
 * Functions that can fail return -1 (or NULL) and, when the caller passed a
 * mu_error, fill it with one line saying what went wrong. errprintf() returns
 * -1 so that error paths read `return errprintf(errp, "...")`.
 */
#ifndef MUSTER_ERROR_H
#define MUSTER_ERROR_H

#include <stddef.h>

typedef struct mu_error {
    char text[256];
} mu_error;

/* Format into errp->text (when errp is not NULL). Always returns -1. */
int errprintf(mu_error *errp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix errp->text with "PREFIX: ", keeping what fits. Returns -1. */
int errprefix(mu_error *errp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
