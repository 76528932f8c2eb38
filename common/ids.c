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

/* Where each byte's two digits are in the text form. */
static const uint8_t digits_at[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};

/* The form uuid_parse takes (8-4-4-4-12 hex digits, either case), parsed
 * here: every registration, heartbeat and reply names ids, and libuuid's
 * parser goes through strtoul for each group. Each byte's two digits are
 * at a fixed place, so the loop has no branch but the one on bad input. */
int id_parse(const char *text, mu_id *id)
{
    const uint8_t *at = digits_at;
    if (!text || strnlen(text, 37) != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' ||
        text[23] != '-')
        return -1;
    mu_id out;
    unsigned bad = 0;
    for (int k = 0; k < 16; k++) {
        unsigned hi = hex_plus1[(unsigned char)text[at[k]]];
        unsigned lo = hex_plus1[(unsigned char)text[at[k] + 1]];
        bad |= (hi - 1) | (lo - 1); /* a 0 entry wraps to all ones */
        out.b[k] = (uint8_t)((hi - 1) << 4 | (lo - 1));
    }
    if (bad > 15)
        return -1;
    *id = out;
    return 0;
}

void id_format(const mu_id *id, char out[ID_TEXT_LEN])
{
    /* uuid_unparse_lower's form, written here for the same reason, each
     * byte at its fixed place: the simulator formats an id for every
     * registration it sends. */
    static const char hex[] = "0123456789abcdef";
    for (int k = 0; k < 16; k++) {
        out[digits_at[k]] = hex[id->b[k] >> 4];
        out[digits_at[k] + 1] = hex[id->b[k] & 15];
    }
    out[8] = out[13] = out[18] = out[23] = '-';
    out[36] = '\0';
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
