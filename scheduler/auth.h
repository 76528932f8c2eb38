/* auth.h - who is asking: accounts, and the ZAP handler that lets CURVE
 * connections in.
 *
 * With CURVE on (musterd --key), libzmq asks this handler (ZAP, ZeroMQ RFC
 * 27) about every new connection, with the client's public key:
 *   - on the client endpoint (ZAP domain "client"), the key must be an
 *     account's; the connection's User-Id is then the account name;
 *   - on the event (PUB) endpoint (domain "events"), an operator's or an
 *     admin's: the PUB socket shows every account's events (others
 *     subscribe on the client endpoint, rpc_events.c);
 *   - on the agent endpoint (domain "agent"), any key may connect (workers
 *     join freely and prove their GPUs); the User-Id is "key:" and the key,
 *     which the broker binds to the worker id at its first registration.
 * Without CURVE there is no handler, no User-Id, and every client is the
 * anonymous developer of a loopback-only broker.
 *
 * Accounts come from a JSON file (musterd --accounts):
 *   [{"name": "alice", "public_key": "<40 chars Z85>", "role": "user",
 *     "max_gpus": 64}, ...]
 * role: user (sees and changes what it owns), broker (a managed-service
 * broker: the same rights, bigger quotas), operator (sees everything,
 * changes nothing it does not own), admin (everything). max_gpus: the most
 * GPUs its active clusters may hold at once (0: no limit). An account may
 * add "webhook": {"url": "https://...", "secret": "16 to 64 characters"}:
 * the events of its clusters and their tasks are then POSTed there, signed
 * (scheduler/webhook.h).
 */
#ifndef MUSTERD_AUTH_H
#define MUSTERD_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "keys.h"

#define ACCOUNT_NAME_MAX 64

typedef enum account_role { ROLE_USER = 0, ROLE_BROKER, ROLE_OPERATOR, ROLE_ADMIN } account_role;

typedef struct account {
    char name[ACCOUNT_NAME_MAX];
    char public_key[KEY_TEXT_LEN];
    account_role role;
    uint32_t max_gpus;
    /* Where its events are POSTed, signed with the secret ("" none). */
    char webhook_url[2049];
    char webhook_secret[65];
} account;

typedef struct accounts accounts;

/* Read an accounts file: unknown keys, duplicate names or keys, bad keys or
 * roles are errors naming the entry. */
accounts *accounts_load(const char *path, mu_error *errp);
void accounts_destroy(accounts *a);
size_t accounts_count(const accounts *a);
const account *accounts_by_name(const accounts *a, const char *name);
const account *accounts_at(const accounts *a, size_t i);
const account *accounts_by_key(const accounts *a, const char *public_key);
const char *account_role_name(account_role r);

/* The ZAP handler, bound in ctx (inproc://zeromq.zap.01) before any CURVE
 * socket binds. It answers in the broker's loop: poll zap_socket(), then
 * zap_handle(). */
typedef struct zap zap;
zap *zap_create(void *ctx, const accounts *acc, mu_error *errp);
void zap_destroy(zap *z);
void *zap_socket(zap *z);
/* Answer every waiting request; counts refusals (logged). */
void zap_handle(zap *z);

#endif
