/* synth_params.c - the JSON parameter files of the generators (synth.h). */
#include <math.h>
#include <stdio.h>

#include "jsonutil.h"
#include "synth.h"

/* Parameter files are small; this bounds a mistaken path to a huge file. */
#define PARAMS_MAX_BYTES (1 << 20)

int synth_params_load(const char *path, void *p,
                      int (*set)(void *p, const char *key, const char *value, mu_error *errp),
                      mu_error *errp)
{
    cJSON *root = json_load_file(path, PARAMS_MAX_BYTES, errp);
    if (!root)
        return -1;
    int rc = 0;
    if (!cJSON_IsObject(root)) {
        rc = errprintf(errp, "%s: expected a JSON object of parameters", path);
        goto out;
    }
    for (const cJSON *it = root->child; it; it = it->next) {
        char num[40];
        const char *value;
        if (cJSON_IsString(it)) {
            value = it->valuestring;
        } else if (cJSON_IsNumber(it) && isfinite(it->valuedouble)) {
            /* %.17g reads back as the same double; whole numbers print bare,
             * so integer parameters parse as integers. */
            snprintf(num, sizeof(num), "%.17g", it->valuedouble);
            value = num;
        } else {
            rc = errprintf(errp, "%s: \"%s\" must be a number or a string", path, it->string);
            goto out;
        }
        if (set(p, it->string, value, errp) < 0) {
            rc = errprefix(errp, "%s: %s", path, it->string);
            goto out;
        }
    }
out:
    cJSON_Delete(root);
    return rc;
}
