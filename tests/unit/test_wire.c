/* test_wire.c - envelope encoding and the checks every receiver relies on:
 * size cap, protocol version, unknown bodies, garbage, error replies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "alloc.h"
#include "wire.h"

static void encode(const Muster__Envelope *env, uint8_t **buf, size_t *len)
{
    assert_int_equal(wire_encode(env, buf, len), 0);
}

static void test_roundtrip(void **state)
{
    (void)state;
    Muster__Register reg = MUSTER__REGISTER__INIT;
    reg.worker_id = "11111111-1111-4111-8111-111111111111";
    reg.hostname = "node";
    reg.cpu_cores = 16;
    Muster__Envelope env;
    wire_envelope_init(&env, 77);
    env.body_case = MUSTER__ENVELOPE__BODY_REGISTER;
    env.register_ = &reg;
    uint8_t *buf;
    size_t len;
    encode(&env, &buf, &len);
    Muster__Envelope *out;
    Muster__Status st;
    uint64_t rid;
    mu_error err;
    assert_int_equal(wire_decode(buf, len, 4096, &out, &st, &rid, &err), 0);
    assert_int_equal(out->version, WIRE_PROTOCOL_VERSION);
    assert_int_equal(out->request_id, 77);
    assert_int_equal(out->body_case, MUSTER__ENVELOPE__BODY_REGISTER);
    assert_string_equal(out->register_->hostname, "node");
    assert_int_equal(out->register_->cpu_cores, 16);
    assert_string_equal(wire_body_name(out->body_case), "register");
    wire_free(out);
    /* one byte under the cap passes, one over does not */
    assert_int_equal(wire_decode(buf, len, len, &out, &st, &rid, &err), 0);
    wire_free(out);
    assert_int_equal(wire_decode(buf, len, len - 1, &out, &st, &rid, &err), -1);
    assert_int_equal(st, MUSTER__STATUS__STATUS_TOO_LARGE);
    assert_null(out);
    mu_free(buf);
}

static void test_rejections(void **state)
{
    (void)state;
    Muster__Envelope *out;
    Muster__Status st;
    uint64_t rid;
    mu_error err;

    /* garbage: field 1 as a truncated varint */
    const uint8_t garbage[] = {0x08, 0xff, 0xff};
    assert_int_equal(wire_decode(garbage, sizeof(garbage), 4096, &out, &st, &rid, &err), -1);
    assert_int_equal(st, MUSTER__STATUS__STATUS_BAD_REQUEST);

    /* wrong version, request id still echoed */
    Muster__StatusRequest sr = MUSTER__STATUS_REQUEST__INIT;
    Muster__Envelope env;
    wire_envelope_init(&env, 9);
    env.version = 99;
    env.body_case = MUSTER__ENVELOPE__BODY_BROKER_STATUS;
    env.broker_status = &sr;
    uint8_t *buf;
    size_t len;
    encode(&env, &buf, &len);
    assert_int_equal(wire_decode(buf, len, 4096, &out, &st, &rid, &err), -1);
    assert_int_equal(st, MUSTER__STATUS__STATUS_VERSION_MISMATCH);
    assert_int_equal(rid, 9);
    assert_non_null(strstr(err.text, "99"));
    mu_free(buf);

    /* a body this build does not know: version 1, request id 7, field 999 */
    const uint8_t unknown[] = {0x08, 0x01, 0x10, 0x07, 0xba, 0x3e, 0x00};
    assert_int_equal(wire_decode(unknown, sizeof(unknown), 4096, &out, &st, &rid, &err), -1);
    assert_int_equal(st, MUSTER__STATUS__STATUS_UNKNOWN_MESSAGE);
    assert_int_equal(rid, 7);

    /* an error reply has no body: refused as a request, accepted as a reply */
    wire_envelope_init(&env, 5);
    env.status = MUSTER__STATUS__STATUS_NOT_FOUND;
    env.reason = "no such worker";
    encode(&env, &buf, &len);
    assert_int_equal(wire_decode(buf, len, 4096, &out, &st, &rid, &err), -1);
    assert_int_equal(wire_decode_reply(buf, len, 4096, &out, &st, &rid, &err), 0);
    assert_int_equal(out->status, MUSTER__STATUS__STATUS_NOT_FOUND);
    assert_string_equal(out->reason, "no such worker");
    wire_free(out);
    mu_free(buf);

    /* an OK reply without a body is still refused */
    wire_envelope_init(&env, 6);
    encode(&env, &buf, &len);
    assert_int_equal(wire_decode_reply(buf, len, 4096, &out, &st, &rid, &err), -1);
    assert_int_equal(st, MUSTER__STATUS__STATUS_UNKNOWN_MESSAGE);
    mu_free(buf);

    /* the empty message */
    assert_int_equal(wire_decode("", 0, 4096, &out, &st, &rid, &err), -1);
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(wire_status_name(MUSTER__STATUS__STATUS_OK), "ok");
    assert_string_equal(wire_status_name(MUSTER__STATUS__STATUS_UNKNOWN_WORKER), "unknown_worker");
    assert_string_equal(wire_status_name(MUSTER__STATUS__STATUS_WRONG_ENDPOINT), "wrong_endpoint");
    assert_string_equal(wire_status_name((Muster__Status)1234), "unknown");
    /* every status in the .proto has a name */
    for (unsigned i = 0; i < muster__status__descriptor.n_values; i++)
        assert_string_not_equal(
            wire_status_name((Muster__Status)muster__status__descriptor.values[i].value),
            "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
