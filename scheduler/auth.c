/* auth.c - see auth.h. */
#include "auth.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "alloc.h"
#include "fsutil.h"
#include "jsonutil.h"
#include "log.h"
#include "strutil.h"

struct accounts {
    account *a;
    size_t n;
};

static const char *const role_names[] = {"user", "broker", "operator", "admin"};

const char *account_role_name(account_role r)
{
    return (unsigned)r < 4 ? role_names[r] : "user";
}

static int parse_account(const cJSON *o, size_t i, account *out, const char *path, mu_error *errp)
{
    char where[96];
    snprintf(where, sizeof(where), "%.60s: account %zu", path, i);
    static const char *const keys[] = {"name", "public_key", "role", "max_gpus", "webhook", NULL};
    if (!cJSON_IsObject(o))
        return errprintf(errp, "%s: not an object", where);
    if (json_check_keys(o, keys, where, errp) < 0)
        return -1;
    const char *name = NULL, *key = NULL, *role = "user";
    uint32_t max_gpus = 0;
    if (json_get_string(o, "name", true, &name, where, errp) < 0 ||
        json_get_string(o, "public_key", true, &key, where, errp) < 0 ||
        json_get_string(o, "role", false, &role, where, errp) < 0 ||
        json_get_u32(o, "max_gpus", false, 0, 1000000, &max_gpus, where, errp) < 0)
        return -1;
    size_t len = strlen(name);
    if (!len || len >= ACCOUNT_NAME_MAX)
        return errprintf(errp, "%s: name must be 1..%d characters", where, ACCOUNT_NAME_MAX - 1);
    for (size_t k = 0; k < len; k++) {
        char c = name[k];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return errprintf(errp, "%s: name \"%.40s\": letters, digits, '-', '_', '.' only", where,
                             name);
    }
    if (!key_valid(key))
        return errprintf(errp, "%s (%s): public_key is not 40 characters of Z85", where, name);
    int r = -1;
    for (int k = 0; k < 4; k++)
        if (!strcmp(role, role_names[k]))
            r = k;
    if (r < 0)
        return errprintf(errp, "%s (%s): role \"%.20s\" is not user, broker, operator or admin",
                         where, name, role);
    const cJSON *hook = cJSON_GetObjectItemCaseSensitive(o, "webhook");
    if (hook) {
        static const char *const hook_keys[] = {"url", "secret", NULL};
        const char *url = NULL, *secret = NULL;
        if (!cJSON_IsObject(hook))
            return errprintf(errp, "%s (%s): webhook is not an object {url, secret}", where, name);
        if (json_check_keys(hook, hook_keys, where, errp) < 0 ||
            json_get_string(hook, "url", true, &url, where, errp) < 0 ||
            json_get_string(hook, "secret", true, &secret, where, errp) < 0)
            return -1;
        if ((strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) ||
            strlen(url) >= sizeof(out->webhook_url))
            return errprintf(errp, "%s (%s): webhook url must be http:// or https://", where, name);
        if (strlen(secret) < 16 || strlen(secret) > 64)
            return errprintf(errp, "%s (%s): webhook secret must be 16 to 64 characters", where,
                             name);
        str_copy(out->webhook_url, url, sizeof(out->webhook_url));
        str_copy(out->webhook_secret, secret, sizeof(out->webhook_secret));
    }
    str_copy(out->name, name, sizeof(out->name));
    str_copy(out->public_key, key, sizeof(out->public_key));
    out->role = (account_role)r;
    out->max_gpus = max_gpus;
    return 0;
}

accounts *accounts_load(const char *path, mu_error *errp)
{
    char *text = fs_read_file(path, 4 << 20, NULL, errp);
    if (!text)
        return NULL;
    cJSON *j = cJSON_Parse(text);
    mu_free(text);
    accounts *a = mu_calloc(1, sizeof(*a));
    if (!a) {
        cJSON_Delete(j);
        return errprintf(errp, "out of memory"), NULL;
    }
    if (!j || !cJSON_IsArray(j)) {
        errprintf(errp, "%s: not a JSON array of accounts", path);
        goto error;
    }
    size_t n = (size_t)cJSON_GetArraySize(j);
    if (!(a->a = mu_calloc(n ? n : 1, sizeof(account)))) {
        errprintf(errp, "out of memory");
        goto error;
    }
    for (size_t i = 0; i < n; i++) {
        if (parse_account(cJSON_GetArrayItem(j, (int)i), i, &a->a[i], path, errp) < 0)
            goto error;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(a->a[k].name, a->a[i].name) ||
                !strcmp(a->a[k].public_key, a->a[i].public_key)) {
                errprintf(errp, "%s: accounts %zu and %zu have the same %s", path, k, i,
                          strcmp(a->a[k].name, a->a[i].name) ? "public key" : "name");
                goto error;
            }
        a->n++;
    }
    cJSON_Delete(j);
    return a;
error:
    cJSON_Delete(j);
    accounts_destroy(a);
    return NULL;
}

void accounts_destroy(accounts *a)
{
    if (!a)
        return;
    mu_free(a->a);
    mu_free(a);
}

size_t accounts_count(const accounts *a)
{
    return a ? a->n : 0;
}

const account *accounts_at(const accounts *a, size_t i)
{
    return a && i < a->n ? &a->a[i] : NULL;
}

const account *accounts_by_name(const accounts *a, const char *name)
{
    for (size_t i = 0; a && name && i < a->n; i++)
        if (!strcmp(a->a[i].name, name))
            return &a->a[i];
    return NULL;
}

const account *accounts_by_key(const accounts *a, const char *public_key)
{
    for (size_t i = 0; a && public_key && i < a->n; i++)
        if (!strcmp(a->a[i].public_key, public_key))
            return &a->a[i];
    return NULL;
}

/* --- ZAP ---------------------------------------------------------------------------------- */

struct zap {
    void *sock;
    const accounts *acc;
};

zap *zap_create(void *ctx, const accounts *acc, mu_error *errp)
{
    zap *z = mu_calloc(1, sizeof(*z));
    if (!z)
        return errprintf(errp, "out of memory"), NULL;
    z->acc = acc;
    int zero = 0;
    if (!(z->sock = zmq_socket(ctx, ZMQ_REP)) ||
        zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
        zmq_bind(z->sock, "inproc://zeromq.zap.01") < 0) {
        errprintf(errp, "ZAP handler: %s", zmq_strerror(errno));
        zap_destroy(z);
        return NULL;
    }
    return z;
}

void zap_destroy(zap *z)
{
    if (!z)
        return;
    if (z->sock)
        zmq_close(z->sock);
    mu_free(z);
}

void *zap_socket(zap *z)
{
    return z->sock;
}

/* One frame of a request into buf (terminated); its size, or -1. */
static int frame(void *sock, char *buf, size_t cap, bool *more)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return -1;
    }
    size_t n = zmq_msg_size(&m);
    size_t k = n < cap - 1 ? n : cap - 1;
    memcpy(buf, zmq_msg_data(&m), k);
    buf[k] = '\0';
    *more = zmq_msg_more(&m);
    zmq_msg_close(&m);
    return (int)n;
}

static void reply(void *sock, const char *req_id, size_t req_id_len, const char *code,
                  const char *text, const char *user)
{
    zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(sock, req_id, req_id_len, ZMQ_SNDMORE);
    zmq_send(sock, code, strlen(code), ZMQ_SNDMORE);
    zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(sock, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(sock, "", 0, 0); /* metadata: none */
}

void zap_handle(zap *z)
{
    for (;;) {
        /* version, request id, domain, address, identity, mechanism, key */
        char parts[7][256];
        int len[7] = {0};
        bool more = true;
        int got = 0;
        while (more && got < 7) {
            len[got] = frame(z->sock, parts[got], sizeof(parts[got]), &more);
            if (len[got] < 0)
                break;
            got++;
        }
        if (got == 0)
            return;    /* nothing waiting */
        while (more) { /* a request with extra frames: drain it */
            char junk[8];
            if (frame(z->sock, junk, sizeof(junk), &more) < 0)
                break;
        }
        size_t rid_len = got > 1 ? (size_t)len[1] : 0;
        if (rid_len > 255)
            rid_len = 255;
        if (got < 7 || strcmp(parts[0], "1.0") || strcmp(parts[5], "CURVE") || len[6] != 32) {
            reply(z->sock, parts[1], rid_len, "400", "CURVE required", "");
            continue;
        }
        char key[KEY_TEXT_LEN];
        if (!zmq_z85_encode(key, (const uint8_t *)parts[6], 32)) {
            reply(z->sock, parts[1], rid_len, "400", "bad key", "");
            continue;
        }
        if (!strcmp(parts[2], "agent")) {
            /* Workers join freely: their key is bound to their id at registration. */
            char user[8 + KEY_TEXT_LEN];
            snprintf(user, sizeof(user), "key:%s", key);
            reply(z->sock, parts[1], rid_len, "200", "OK", user);
            continue;
        }
        const account *a = accounts_by_key(z->acc, key);
        if (a && !strcmp(parts[2], "events") && a->role != ROLE_OPERATOR && a->role != ROLE_ADMIN) {
            /* The PUB socket shows every account's events. */
            reply(z->sock, parts[1], rid_len, "400",
                  "the event socket is for operators and admins: subscribe on the client "
                  "endpoint",
                  "");
            continue;
        }
        if (!a) {
            log_warn("auth.refused",
                     "domain=%s address=%s key=%s reason=\"no account has this key\"", parts[2],
                     parts[3], key);
            reply(z->sock, parts[1], rid_len, "400", "no account has this key", "");
            continue;
        }
        reply(z->sock, parts[1], rid_len, "200", "OK", a->name);
    }
}
