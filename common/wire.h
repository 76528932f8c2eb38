/* wire.h - the project's one wrapper around protobuf-c.
 *
 * Encodes and decodes Envelopes (proto/muster.proto) with the size cap and
 * version check every receiver needs, so no handler ever sees a message that
 * is oversized, undecodable, of another protocol version or without a body.
 */
#ifndef MUSTER_WIRE_H
#define MUSTER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "muster.pb-c.h"

/* The protocol version this build speaks (Envelope.version). */
#define WIRE_PROTOCOL_VERSION 1u
/* Default cap on one message; a peer that sends more gets STATUS_TOO_LARGE. */
#define WIRE_MAX_MESSAGE_DEFAULT (256u * 1024u)

/* Set up an envelope of the current version with REQUEST_ID. */
void wire_envelope_init(Muster__Envelope *env, uint64_t request_id);

/* Decode one message of len bytes. On success returns 0 and *out (the caller
 * frees it with wire_free). On failure returns -1, sets *status to the reply
 * status to send (TOO_LARGE, BAD_REQUEST, VERSION_MISMATCH, UNKNOWN_MESSAGE),
 * *request_id to the request id when the envelope decoded far enough (else
 * 0), and a reason in errp. */
int wire_decode(const void *buf, size_t len, size_t max_len, Muster__Envelope **out,
                Muster__Status *status, uint64_t *request_id, mu_error *errp);

/* As wire_decode, for a message that may be a reply: an error reply
 * (status != OK) may carry no body. */
int wire_decode_reply(const void *buf, size_t len, size_t max_len, Muster__Envelope **out,
                      Muster__Status *status, uint64_t *request_id, mu_error *errp);

/* Encode into a fresh buffer the caller frees with mu_free. 0 or -1 (ENOMEM). */
int wire_encode(const Muster__Envelope *env, uint8_t **buf, size_t *len);

void wire_free(Muster__Envelope *env);

/* Name of a body case for logs ("register", "heartbeat", ...). */
const char *wire_body_name(Muster__Envelope__BodyCase c);

/* Name of a status ("ok", "bad_request", ...). */
const char *wire_status_name(Muster__Status s);

#endif
