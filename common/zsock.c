/* zsock.c - see zsock.h. */
#include "zsock.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "wire.h"

void *zs_socket(void *ctx, int type, int64_t max_frame, mu_error *errp)
{
    void *s = zmq_socket(ctx, type);
    if (!s)
        return errprintf(errp, "zmq_socket: %s", zmq_strerror(errno)), NULL;
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    if (max_frame > 0 && zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max_frame, sizeof(max_frame)) < 0) {
        errprintf(errp, "ZMQ_MAXMSGSIZE: %s", zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
}

int zs_bind(void *sock, const char *endpoint, mu_error *errp)
{
    if (zmq_bind(sock, endpoint) < 0)
        return errprintf(errp, "cannot bind %s: %s", endpoint, zmq_strerror(errno));
    return 0;
}

int zs_connect(void *sock, const char *endpoint, mu_error *errp)
{
    if (zmq_connect(sock, endpoint) < 0)
        return errprintf(errp, "cannot connect to %s: %s", endpoint, zmq_strerror(errno));
    return 0;
}

void zs_close(void *sock)
{
    if (sock)
        zmq_close(sock);
}

static bool more(void *sock)
{
    int m = 0;
    size_t sz = sizeof(m);
    zmq_getsockopt(sock, ZMQ_RCVMORE, &m, &sz);
    return m != 0;
}

/* Discard the rest of a multipart message. */
static void drain(void *sock)
{
    while (more(sock)) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        zmq_msg_recv(&m, sock, 0);
        zmq_msg_close(&m);
    }
}

int zs_recv(void *sock, bool router, bool dontwait, zs_msg *msg)
{
    memset(&msg->peer, 0, sizeof(msg->peer));
    msg->bad_framing = false;
    zmq_msg_init(&msg->payload);
    int flags = dontwait ? ZMQ_DONTWAIT : 0;
    if (router) {
        zmq_msg_t id;
        zmq_msg_init(&id);
        if (zmq_msg_recv(&id, sock, flags) < 0) {
            int e = errno;
            zmq_msg_close(&id);
            zmq_msg_close(&msg->payload);
            errno = e;
            return -1;
        }
        size_t n = zmq_msg_size(&id);
        msg->peer.len = (uint8_t)(n > ZS_MAX_PEER_ID ? ZS_MAX_PEER_ID : n);
        memcpy(msg->peer.id, zmq_msg_data(&id), msg->peer.len);
        zmq_msg_close(&id);
        if (!more(sock)) {
            msg->bad_framing = true;
            return 0;
        }
        /* Once the first frame has arrived, the rest of the message is
         * already here: libzmq delivers multipart messages atomically. */
        flags = 0;
    }
    if (zmq_msg_recv(&msg->payload, sock, flags) < 0) {
        int e = errno;
        zmq_msg_close(&msg->payload);
        zmq_msg_init(&msg->payload);
        if (router) { /* routing id without payload: impossible, but be safe */
            msg->bad_framing = true;
            return 0;
        }
        errno = e;
        return -1;
    }
    if (more(sock)) {
        drain(sock);
        msg->bad_framing = true;
    }
    return 0;
}

void zs_msg_close(zs_msg *msg)
{
    zmq_msg_close(&msg->payload);
}

static void free_buf(void *data, void *hint)
{
    (void)hint;
    mu_free(data);
}

static int send_buf(void *sock, uint8_t *buf, size_t len, mu_error *errp)
{
    zmq_msg_t m;
    if (zmq_msg_init_data(&m, buf, len, free_buf, NULL) < 0) {
        mu_free(buf);
        return errprintf(errp, "zmq_msg_init_data: %s", zmq_strerror(errno));
    }
    if (zmq_msg_send(&m, sock, 0) < 0) {
        int e = errno;
        zmq_msg_close(&m);
        return errprintf(errp, "send failed: %s", zmq_strerror(e));
    }
    return 0;
}

static int send_env(void *sock, const Muster__Envelope *env, mu_error *errp)
{
    uint8_t *buf;
    size_t len;
    if (wire_encode(env, &buf, &len) < 0)
        return errprintf(errp, "out of memory encoding a message");
    /* zero-copy: libzmq frees the buffer once sent */
    return send_buf(sock, buf, len, errp);
}

int zs_send_raw(void *sock, const zs_peer *peer, uint8_t *buf, size_t len, mu_error *errp)
{
    if (peer && zmq_send(sock, peer->id, peer->len, ZMQ_SNDMORE) < 0) {
        mu_free(buf);
        return errprintf(errp, "send failed: %s", zmq_strerror(errno));
    }
    return send_buf(sock, buf, len, errp);
}

int zs_publish_raw(void *sock, const char *topic, uint8_t *buf, size_t len, mu_error *errp)
{
    if (zmq_send(sock, topic, strlen(topic), ZMQ_SNDMORE) < 0) {
        mu_free(buf);
        return errprintf(errp, "publish failed: %s", zmq_strerror(errno));
    }
    return send_buf(sock, buf, len, errp);
}

int zs_send(void *sock, const zs_peer *peer, const Muster__Envelope *env, mu_error *errp)
{
    if (peer && zmq_send(sock, peer->id, peer->len, ZMQ_SNDMORE) < 0) {
        /* EHOSTUNREACH only with ZMQ_ROUTER_MANDATORY, which we leave off. */
        return errprintf(errp, "send failed: %s", zmq_strerror(errno));
    }
    return send_env(sock, env, errp);
}

int zs_publish(void *sock, const char *topic, const Muster__Envelope *env, mu_error *errp)
{
    if (zmq_send(sock, topic, strlen(topic), ZMQ_SNDMORE) < 0)
        return errprintf(errp, "publish failed: %s", zmq_strerror(errno));
    return send_env(sock, env, errp);
}

int zs_last_endpoint(void *sock, char *out, size_t n)
{
    size_t sz = n;
    return zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, out, &sz);
}
