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

/* Each hex digit's value plus one; 0: not a hex digit. A table, not
 * comparisons: the digits of random ids are letters or numbers at random,
 * and branches on them are mispredicted half the time. */
static const uint8_t hex_plus1[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

static int hex_digit(char c)
{
    return (int)hex_plus1[(unsigned char)c] - 1;
}

/* The form uuid_parse takes (8-4-4-4-12 hex digits, either case), parsed
 * here: every registration, heartbeat and reply names ids, and libuuid's
 * parser goes through strtoul for each group. */
int id_parse(const char *text, mu_id *id)
{
    if (!text)
        return -1;
    mu_id out;
    size_t k = 0;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-')
                return -1;
            continue;
        }
        int hi = hex_digit(text[i]);
        int lo = hi < 0 ? -1 : hex_digit(text[++i]);
        if (lo < 0)
            return -1;
        out.b[k++] = (uint8_t)(hi << 4 | lo);
    }
    if (text[36])
        return -1;
    *id = out;
    return 0;
}

void id_format(const mu_id *id, char out[ID_TEXT_LEN])
{
    uuid_unparse_lower(id->b, out);
}

uint64_t id_hash(const mu_id *id)
{
    uint64_t a, b;
    memcpy(&a, id->b, 8);
    memcpy(&b, id->b + 8, 8);
    uint64_t h = a ^ (b * 0x9e3779b97f4a7c15ull); /* then splitmix64's finaliser */
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    return h ^ (h >> 31);
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

size_t id_prefix_search(const mu_id *(*id_at)(const void *set, size_t i), const void *set, size_t n,
                        const char *prefix)
{
    size_t len = strlen(prefix);
    if (len < 4) {
        errno = EINVAL;
        return SIZE_MAX;
    }
    size_t found = SIZE_MAX;
    for (size_t i = 0; i < n && len < ID_TEXT_LEN; i++) {
        char text[ID_TEXT_LEN];
        id_format(id_at(set, i), text);
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
