/* error.c - see error.h. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int errprintf(mu_error *errp, const char *fmt, ...)
{
    if (errp) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errp->text, sizeof(errp->text), fmt, ap);
        va_end(ap);
    }
    return -1;
}

int errprefix(mu_error *errp, const char *fmt, ...)
{
    if (errp) {
        char prefix[128];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof(prefix), fmt, ap);
        va_end(ap);
        size_t cap = sizeof(errp->text);
        size_t plen = strlen(prefix);
        if (plen + 2 >= cap)
            plen = cap - 3;
        size_t olen = strnlen(errp->text, cap - 1);
        if (plen + 2 + olen >= cap)
            olen = cap - 1 - plen - 2;
        memmove(errp->text + plen + 2, errp->text, olen);
        memcpy(errp->text, prefix, plen);
        errp->text[plen] = ':';
        errp->text[plen + 1] = ' ';
        errp->text[plen + 2 + olen] = '\0';
    }
    return -1;
}
