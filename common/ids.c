/* ids.c - see ids.h. */
#include "ids.h"

#include <string.h>
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
