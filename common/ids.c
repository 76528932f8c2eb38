/* ids.c - see ids.h. */
#include "ids.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <uuid/uuid.h>

void id_generate(mu_id *id)
{
    uuid_generate_random(id->b);
}

int id_parse(const char *text, mu_id *id)
{
    if (!text || strlen(text) != 36)
        return -1;
    return uuid_parse(text, id->b) == 0 ? 0 : -1;
}

void id_format(const mu_id *id, char out[ID_TEXT_LEN])
{
    uuid_unparse_lower(id->b, out);
}

bool id_equal(const mu_id *a, const mu_id *b)
{
    return memcmp(a->b, b->b, 16) == 0;
}

bool id_is_null(const mu_id *id)
{
    static const mu_id zero;
    return id_equal(id, &zero);
}

size_t id_prefix_search(void *const *items, size_t n, size_t id_offset, const char *prefix)
{
    size_t len = strlen(prefix);
    if (len < 4) {
        errno = EINVAL;
        return SIZE_MAX;
    }
    size_t found = SIZE_MAX;
    for (size_t i = 0; i < n && len < ID_TEXT_LEN; i++) {
        char text[ID_TEXT_LEN];
        id_format((const mu_id *)((const char *)items[i] + id_offset), text);
        if (strncasecmp(text, prefix, len) == 0) {
            if (found != SIZE_MAX) {
                errno = EEXIST;
                return SIZE_MAX;
            }
            found = i;
        }
    }
    if (found == SIZE_MAX)
        errno = ENOENT;
    return found;
}
