/* muster/client.h - the C client library: talk to musterd's client endpoint.
 *
 * A client is one DEALER socket to the broker. Each call sends one Envelope
 * and waits for the reply carrying the same request id (replies to earlier,
 * timed-out calls are skipped). Messages are the generated protobuf-c types
 * of proto/muster.proto, so everything the wire can say, the library can.
 *
 * Not thread-safe: one client per thread.
 */
#ifndef MUSTER_CLIENT_H
#define MUSTER_CLIENT_H

#include "error.h"
#include "muster.pb-c.h"

typedef struct muster_client muster_client;

/* Connect to ENDPOINT (e.g. "tcp://127.0.0.1:7701"); calls wait at most
 * timeout_ms for a reply. Connecting does not wait for the broker: a broker
 * that is not there shows up as a timeout on the first call. NULL with a
 * reason on failure. */
muster_client *muster_client_create(const char *endpoint, int timeout_ms, mu_error *errp);
void muster_client_destroy(muster_client *c);

/* Send REQ (its version and request id are set here) and wait for the reply.
 * Returns 0 and *reply, which the caller frees with wire_free and which may
 * carry an error status with its reason; or -1 with a reason when no reply
 * came (errno ETIMEDOUT) or the reply could not be decoded (EPROTO). */
int muster_client_call(muster_client *c, Muster__Envelope *req, Muster__Envelope **reply,
                       mu_error *errp);

/* Convenience calls: each returns 0 and a reply whose status is OK and
 * whose body is the expected one; -1 with a reason otherwise (errno
 * ETIMEDOUT, EPROTO, or EREMOTEIO when the broker answered with an error,
 * whose status is then in *status when status is not NULL). */
int muster_list_workers(muster_client *c, const Muster__ListWorkersRequest *q,
                        Muster__Envelope **reply, Muster__Status *status, mu_error *errp);
int muster_get_worker(muster_client *c, const char *id, Muster__Envelope **reply,
                      Muster__Status *status, mu_error *errp);
int muster_broker_status(muster_client *c, Muster__Envelope **reply, Muster__Status *status,
                         mu_error *errp);

#endif
