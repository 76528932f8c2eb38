/* wire.c - see wire.h. */
#include "wire.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

void wire_envelope_init(Muster__Envelope *env, uint64_t request_id)
{
    muster__envelope__init(env);
    env->version = WIRE_PROTOCOL_VERSION;
    env->request_id = request_id;
}

static int decode(const void *buf, size_t len, size_t max_len, Muster__Envelope **out,
                  Muster__Status *status, uint64_t *request_id, bool is_reply, mu_error *errp)
{
    *out = NULL;
    *request_id = 0;
    if (len > max_len) {
        *status = MUSTER__STATUS__STATUS_TOO_LARGE;
        return errprintf(errp, "message of %zu bytes is over the %zu-byte limit", len, max_len);
    }
    if (len == 0) {
        *status = MUSTER__STATUS__STATUS_BAD_REQUEST;
        return errprintf(errp, "empty message");
    }
    Muster__Envelope *env =
        muster__envelope__unpack(mu_protobuf_allocator(), len, (const uint8_t *)buf);
    if (!env) {
        *status = MUSTER__STATUS__STATUS_BAD_REQUEST;
        return errprintf(errp, "message is not a valid muster envelope (%zu bytes)", len);
    }
    *request_id = env->request_id;
    if (env->version != WIRE_PROTOCOL_VERSION) {
        *status = MUSTER__STATUS__STATUS_VERSION_MISMATCH;
        errprintf(errp, "protocol version %u is not supported (this broker speaks %u)",
                  env->version, WIRE_PROTOCOL_VERSION);
        wire_free(env);
        return -1;
    }
    if (env->body_case == MUSTER__ENVELOPE__BODY__NOT_SET &&
        !(is_reply && env->status != MUSTER__STATUS__STATUS_OK)) {
        /* A body field this build does not know decodes as an unknown field
         * and leaves the oneof unset: that is how a newer peer looks. */
        *status = MUSTER__STATUS__STATUS_UNKNOWN_MESSAGE;
        errprintf(errp, "message has no body this broker knows");
        wire_free(env);
        return -1;
    }
    *out = env;
    return 0;
}

int wire_decode(const void *buf, size_t len, size_t max_len, Muster__Envelope **out,
                Muster__Status *status, uint64_t *request_id, mu_error *errp)
{
    return decode(buf, len, max_len, out, status, request_id, false, errp);
}

int wire_decode_reply(const void *buf, size_t len, size_t max_len, Muster__Envelope **out,
                      Muster__Status *status, uint64_t *request_id, mu_error *errp)
{
    return decode(buf, len, max_len, out, status, request_id, true, errp);
}

int wire_encode(const Muster__Envelope *env, uint8_t **buf, size_t *len)
{
    size_t n = muster__envelope__get_packed_size(env);
    uint8_t *b = mu_malloc(n ? n : 1);
    if (!b)
        return -1;
    *len = muster__envelope__pack(env, b);
    *buf = b;
    return 0;
}

void wire_free(Muster__Envelope *env)
{
    if (env)
        muster__envelope__free_unpacked(env, mu_protobuf_allocator());
}

const char *wire_body_name(Muster__Envelope__BodyCase c)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&muster__envelope__descriptor, (unsigned)c);
    return f ? f->name : "none";
}

const char *wire_status_name(Muster__Status s)
{
    /* Indexed by the Status values in proto/muster.proto. */
    static const char *const names[] = {
        "ok",          "bad_request",    "unknown_message", "version_mismatch", "too_large",
        "not_found",   "unknown_worker", "conflict",        "internal",         "permission_denied",
        "unavailable", "wrong_endpoint", "not_met"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}
