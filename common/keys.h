/* keys.h - CURVE key pairs (ZeroMQ's CurveZMQ), as files and as text.
 *
 * A key is 32 bytes, written as 40 characters of Z85 (ZeroMQ's encoding).
 * A key pair file is a small JSON object,
 *   {"public_key": "<40 chars>", "secret_key": "<40 chars>"}
 * created with mode 0600 and never overwritten. The public key identifies
 * its holder (an account, a worker, the broker); the secret key never
 * leaves the file it was written to.
 */
#ifndef MUSTER_KEYS_H
#define MUSTER_KEYS_H

#include <stdbool.h>

#include "error.h"

#define KEY_TEXT_LEN 41 /* 40 Z85 characters and the terminator */

typedef struct key_pair {
    char public_key[KEY_TEXT_LEN];
    char secret_key[KEY_TEXT_LEN];
} key_pair;

/* A fresh key pair. -1 with a reason when libzmq has no CURVE. */
int key_pair_generate(key_pair *kp, mu_error *errp);
/* Whether s is a well-formed key: 40 Z85 characters. */
bool key_valid(const char *s);
/* Read a key pair file (its public key must match its secret key). */
int key_pair_load(const char *path, key_pair *kp, mu_error *errp);
/* Write a new key pair file (mode 0600); an existing file is an error. */
int key_pair_save(const char *path, const key_pair *kp, mu_error *errp);
/* Load path, or create it with a fresh pair when it does not exist. */
int key_pair_load_or_create(const char *path, key_pair *kp, bool *created, mu_error *errp);

#endif
