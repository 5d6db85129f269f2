/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_channel.c — the host channel against a hostile guest, no VM: the test
 * plays the guest on the other end of a socketpair.  Every frame the host
 * does not expect kills the channel with "the guest broke the protocol";
 * empty frames cost their header; a request the host gave up on accepts its
 * late frames within a budget, and then nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel/channel.h"
#include "util/util.h"

struct pair {
	struct vb_chan *ch;
	int guest; /* our end */
};

static void guest_send(int fd, uint16_t type, uint32_t id, const void *payload, uint32_t len)
{
	uint8_t raw[VB_FRAME_HDR_LEN];
	struct vb_hdr h = { .len = len, .type = type, .id = id };
	vb_hdr_encode(raw, &h);
	assert_int_equal(write(fd, raw, sizeof(raw)), (ssize_t)sizeof(raw));
	if (len)
		assert_int_equal(write(fd, payload, len), (ssize_t)len);
}

static int setup(void **state)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	/* HELLO_OK waits in the socket before the host asks */
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_HELLO_OK, 0, 0);
	vb_msg_put_u64(&b, VB_TAG_VERSION, VB_PROTO_VERSION);
	assert_int_equal(vb_msg_end(&b), 0);
	assert_int_equal(write(sv[1], b.data, b.len), (ssize_t)b.len);
	vb_buf_free(&b);
	uint8_t secret[VB_SECRET_LEN] = { 1 };
	struct vb_chan_hello hello;
	vb_error err = { 0 };
	struct pair *p = calloc(1, sizeof(*p));
	p->ch = vb_chan_open(sv[0], secret, 5000, -1, -1, &hello, &err);
	assert_non_null(p->ch);
	p->guest = sv[1];
	/* drain the HELLO the host sent */
	uint8_t sink[4096];
	assert_true(read(p->guest, sink, sizeof(sink)) > 0);
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	struct pair *p = *state;
	vb_chan_close(p->ch);
	close(p->guest);
	free(p);
	return 0;
}

/* Wait (bounded) for the reader to kill the channel; return its reason. */
static const char *death(struct vb_chan *ch)
{
	int64_t end = vb_now_ms() + 5000;
	while (!vb_chan_dead(ch) && vb_now_ms() < end)
		poll(NULL, 0, 5);
	assert_true(vb_chan_dead(ch));
	return vb_chan_why(ch);
}

static void settle(void)
{
	poll(NULL, 0, 100); /* let the reader route what we sent */
}

static void expect_violation(struct vb_chan *ch, const char *what)
{
	const char *why = death(ch);
	assert_true(vb_chan_violated(ch));
	assert_non_null(strstr(why, "the guest broke the protocol ("));
	if (!strstr(why, what))
		fail_msg("'%s' lacks '%s'", why, what);
}

static void test_unknown_type_for_a_live_request(void **state)
{
	struct pair *p = *state;
	struct vb_chan_slot s = { .efd = -1 };
	vb_error err;
	assert_int_equal(vb_chan_register(p->ch, &s, &err), 0);
	guest_send(p->guest, 999, s.id, NULL, 0);
	expect_violation(p->ch, "unexpected type-999 frame for request 1");
	/* the caller hears of it as an error, not a frame */
	struct vb_chan_frame *f = NULL;
	assert_int_equal(vb_chan_recv(p->ch, &s, &f, 1000, &err), -1);
	assert_int_equal(err.kind, VB_E_VMDIED);
	vb_chan_unregister(p->ch, &s);
}

static void test_id_never_made(void **state)
{
	struct pair *p = *state;
	guest_send(p->guest, VB_MSG_OK, 7, NULL, 0);
	expect_violation(p->ch, "OK frame for request 7, which the host never made");
}

static void test_handshake_id(void **state)
{
	struct pair *p = *state;
	guest_send(p->guest, VB_MSG_HELLO_OK, 0, NULL, 0);
	expect_violation(p->ch, "for the handshake's id");
}

static void test_reply_after_the_last_frame(void **state)
{
	struct pair *p = *state;
	struct vb_chan_slot s = { .efd = -1 };
	vb_error err;
	assert_int_equal(vb_chan_register(p->ch, &s, &err), 0);
	guest_send(p->guest, VB_MSG_OK, s.id, NULL, 0);
	guest_send(p->guest, VB_MSG_OK, s.id, NULL, 0);
	expect_violation(p->ch, "OK frame for request 1 after its last frame");
	/* what was queued before is not delivered either */
	struct vb_chan_frame *f = NULL;
	assert_int_equal(vb_chan_recv(p->ch, &s, &f, 0, &err), -1);
	vb_chan_unregister(p->ch, &s);
}

static void test_request_already_ended(void **state)
{
	struct pair *p = *state;
	struct vb_chan_slot s = { .efd = -1 };
	vb_error err;
	assert_int_equal(vb_chan_register(p->ch, &s, &err), 0);
	guest_send(p->guest, VB_MSG_OK, s.id, NULL, 0);
	struct vb_chan_frame *f = NULL;
	assert_int_equal(vb_chan_recv(p->ch, &s, &f, 5000, &err), 1);
	free(f);
	vb_chan_unregister(p->ch, &s);
	guest_send(p->guest, VB_MSG_ERROR, 1, NULL, 0);
	expect_violation(p->ch, "ERROR frame for request 1, which had already ended");
}

/* A request the host abandoned (a timeout): its late reply is fine, once. */
static void test_late_reply_of_an_abandoned_request(void **state)
{
	struct pair *p = *state;
	struct vb_chan_slot s = { .efd = -1 };
	vb_error err;
	assert_int_equal(vb_chan_register(p->ch, &s, &err), 0);
	vb_chan_unregister(p->ch, &s);
	guest_send(p->guest, VB_MSG_OK, 1, NULL, 0);
	settle();
	assert_false(vb_chan_dead(p->ch));
	guest_send(p->guest, VB_MSG_OK, 1, NULL, 0);
	expect_violation(p->ch, "which had already ended");
}

/* Late frames beyond the abandoned request's budget. */
static void test_late_frames_beyond_the_budget(void **state)
{
	struct pair *p = *state;
	uint64_t out = VB_CHAN_TYPE(VB_MSG_EXEC_OUTPUT) | VB_CHAN_TYPE(VB_MSG_EXEC_EXIT);
	struct vb_chan_slot s = { .efd = -1, .accept = out,
				  .final = VB_CHAN_TYPE(VB_MSG_EXEC_EXIT), .late_budget = 120 };
	vb_error err;
	assert_int_equal(vb_chan_register(p->ch, &s, &err), 0);
	vb_chan_unregister(p->ch, &s);
	for (int i = 0; i < 10; i++) /* 120 bytes: within */
		guest_send(p->guest, VB_MSG_EXEC_OUTPUT, 1, NULL, 0);
	settle();
	assert_false(vb_chan_dead(p->ch));
	guest_send(p->guest, VB_MSG_EXEC_OUTPUT, 1, NULL, 0);
	expect_violation(p->ch, "after the host had finished it");
}

/* Empty frames are not free: each costs its 12-byte header. */
static void test_empty_frames_cost(void **state)
{
	struct pair *p = *state;
	struct vb_chan_slot s = { .efd = -1, .accept = VB_CHAN_TYPE(VB_MSG_EXEC_OUTPUT),
				  .final = VB_CHAN_TYPE(VB_MSG_EXEC_EXIT), .max_queued = 1200 };
	vb_error err;
	assert_int_equal(vb_chan_register(p->ch, &s, &err), 0);
	for (int i = 0; i < 100; i++)
		guest_send(p->guest, VB_MSG_EXEC_OUTPUT, s.id, NULL, 0);
	settle();
	assert_false(vb_chan_dead(p->ch)); /* 100 x 12 = 1200: the budget */
	guest_send(p->guest, VB_MSG_EXEC_OUTPUT, s.id, NULL, 0);
	expect_violation(p->ch, "flow control ignored");
	vb_chan_unregister(p->ch, &s);
}

/* A header announcing more than the budget is refused before its payload. */
static void test_oversized_header(void **state)
{
	struct pair *p = *state;
	struct vb_chan_slot s = { .efd = -1 };
	vb_error err;
	assert_int_equal(vb_chan_register(p->ch, &s, &err), 0);
	uint8_t raw[VB_FRAME_HDR_LEN];
	struct vb_hdr h = { .len = 60u << 20, .type = VB_MSG_OK, .id = s.id };
	vb_hdr_encode(raw, &h);
	assert_int_equal(write(p->guest, raw, sizeof(raw)), (ssize_t)sizeof(raw));
	expect_violation(p->ch, "over its");
	vb_chan_unregister(p->ch, &s);
}

/* A filter's verdict is a violation too, and queued frames keep the efd up. */
static int refuse_second(struct vb_chan_slot *slot, const struct vb_chan_frame *f,
			 const char **why)
{
	(void)f;
	if (slot->opaque) {
		*why = "a second frame";
		return -1;
	}
	slot->opaque = slot;
	return 0;
}

static void test_filter_violation(void **state)
{
	struct pair *p = *state;
	struct vb_chan_slot s = { .efd = -1,
				  .accept = VB_CHAN_TYPE(VB_MSG_EXEC_STARTED),
				  .final = VB_CHAN_TYPE(VB_MSG_EXEC_EXIT),
				  .filter = refuse_second };
	vb_error err;
	assert_int_equal(vb_chan_register(p->ch, &s, &err), 0);
	guest_send(p->guest, VB_MSG_EXEC_STARTED, s.id, NULL, 0);
	settle();
	assert_true(vb_chan_pending(p->ch, &s));
	guest_send(p->guest, VB_MSG_EXEC_STARTED, s.id, NULL, 0);
	expect_violation(p->ch, "a second frame for request 1");
	vb_chan_unregister(p->ch, &s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unknown_type_for_a_live_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_id_never_made, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handshake_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_after_the_last_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_already_ended, setup, teardown),
		cmocka_unit_test_setup_teardown(test_late_reply_of_an_abandoned_request, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_late_frames_beyond_the_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_frames_cost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filter_violation, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
