/* zsock.h - the project's one wrapper around libzmq.
 *
 * A muster message is one frame holding one Envelope. On a ROUTER socket it
 * arrives behind the peer's routing id frame; on a DEALER it arrives alone.
 * Anything else (extra frames, a missing payload) is bad framing: the
 * receiver drops it and counts it.
 */
#ifndef MUSTER_ZSOCK_H
#define MUSTER_ZSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "error.h"
#include "muster.pb-c.h"

#define ZS_MAX_PEER_ID 255

typedef struct zs_peer {
    uint8_t len;
    uint8_t id[ZS_MAX_PEER_ID];
} zs_peer;

/* One received message: the routing id (ROUTER only) and the payload. */
typedef struct zs_msg {
    zs_peer peer;
    zmq_msg_t payload;
    bool bad_framing; /* wrong number of frames: payload is empty */
} zs_msg;

/* Create a socket of TYPE with linger 0 and, when max_frame > 0, a hard
 * ZMQ_MAXMSGSIZE of max_frame bytes (libzmq drops the connection of a peer
 * that sends more). NULL with reason on failure. */
void *zs_socket(void *ctx, int type, int64_t max_frame, mu_error *errp);
int zs_bind(void *sock, const char *endpoint, mu_error *errp);
int zs_connect(void *sock, const char *endpoint, mu_error *errp);
void zs_close(void *sock);

/* Receive one message (non-blocking when dontwait). Returns 0, or -1 with
 * errno (EAGAIN when nothing is waiting, EINTR on a signal). On 0 the
 * caller must zs_msg_close(). ROUTER says whether a routing id frame leads. */
int zs_recv(void *sock, bool router, bool dontwait, zs_msg *msg);
void zs_msg_close(zs_msg *msg);

/* Encode ENV and send it, preceded by PEER when not NULL (ROUTER). A ROUTER
 * send to a vanished peer is dropped by libzmq (returns 0): a peer that has
 * gone has no use for a reply. Returns 0 or -1 with reason. */
int zs_send(void *sock, const zs_peer *peer, const Muster__Envelope *env, mu_error *errp);

/* Send an already encoded message (after PEER when not NULL). Takes the
 * buffer, which was allocated with mu_malloc, whatever happens. */
int zs_send_raw(void *sock, const zs_peer *peer, uint8_t *buf, size_t len, mu_error *errp);
/* PUB: TOPIC then an already encoded message; takes the buffer likewise. */
int zs_publish_raw(void *sock, const char *topic, uint8_t *buf, size_t len, mu_error *errp);

/* PUB: send TOPIC then ENV as two frames. */
int zs_publish(void *sock, const char *topic, const Muster__Envelope *env, mu_error *errp);

/* The endpoint a socket actually bound (resolves "tcp://127.0.0.1:*"). */
int zs_last_endpoint(void *sock, char *out, size_t n);

#endif
