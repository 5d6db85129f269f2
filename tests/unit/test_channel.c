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

#include <pthread.h>

#include "channel/channel.h"
#include "sandbox/sandbox_int.h"
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

/* REKEY is host->guest only: a guest that sends one (to make the host
 * re-key, or as a reply) breaks the protocol, on a live request's id and
 * on the handshake's. */
static void test_guest_rekey_for_a_request(void **state)
{
	struct pair *p = *state;
	struct vb_chan_slot s = { .efd = -1 };
	vb_error err;
	assert_int_equal(vb_chan_register(p->ch, &s, &err), 0);
	struct vb_rekey rk = { .n_entropy = VB_REKEY_ENTROPY_MIN };
	struct vb_buf b = { 0 };
	assert_int_equal(vb_rekey_encode(&b, s.id, &rk), 0);
	assert_int_equal(write(p->guest, b.data, b.len), (ssize_t)b.len);
	vb_buf_free(&b);
	expect_violation(p->ch, "unexpected REKEY frame for request 1");
	vb_chan_unregister(p->ch, &s);
}

static void test_guest_rekey_unsolicited(void **state)
{
	struct pair *p = *state;
	struct vb_rekey rk = { .n_entropy = VB_REKEY_ENTROPY_MIN };
	struct vb_buf b = { 0 };
	assert_int_equal(vb_rekey_encode(&b, 0, &rk), 0);
	assert_int_equal(write(p->guest, b.data, b.len), (ssize_t)b.len);
	vb_buf_free(&b);
	expect_violation(p->ch, "REKEY frame for the handshake's id");
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

/* ---- guest-opened streams ------------------------------------------------ */

#define G(n) (VB_GUEST_ID_BIT | (n))

static void guest_frame(int fd, uint16_t type, uint32_t id, uint16_t tag, uint64_t v,
			const void *data, size_t n)
{
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, type, 0, id);
	if (tag)
		vb_msg_put_u64(&b, tag, v);
	if (data)
		vb_msg_put_bytes(&b, VB_TAG_DATA, data, n);
	assert_int_equal(vb_msg_end(&b), 0);
	assert_int_equal(write(fd, b.data, b.len), (ssize_t)b.len);
	vb_buf_free(&b);
}

/* Read one frame the host sent, within 5 s. Returns its payload (free). */
static uint8_t *host_frame(int fd, struct vb_hdr *h)
{
	uint8_t raw[VB_FRAME_HDR_LEN];
	size_t got = 0;
	int64_t end = vb_now_ms() + 5000;
	while (got < sizeof(raw)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		assert_true(vb_now_ms() < end);
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t r = read(fd, raw + got, sizeof(raw) - got);
		assert_true(r > 0);
		got += (size_t)r;
	}
	assert_int_equal(vb_hdr_decode(raw, h), 0);
	uint8_t *pl = malloc(h->len + 1);
	assert_int_equal(vb_read_full(fd, pl, h->len), (ssize_t)h->len);
	return pl;
}

/* Handlers: echo (a thread per connection) and one that never reads. */
static int held[64], n_held;

static void *echo_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[4096];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		assert_int_equal(write(fd, buf, (size_t)n), n);
	shutdown(fd, SHUT_WR);
	char c;
	while (read(fd, &c, 1) > 0)
		;
	close(fd);
	return NULL;
}

static int echo_accept(void *opaque, int fd)
{
	(void)opaque;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, echo_main, (void *)(intptr_t)fd), 0);
	pthread_detach(t);
	return 0;
}

static int hold_accept(void *opaque, int fd)
{
	(void)opaque;
	held[n_held++] = fd;
	return 0;
}

static struct vb_fwd_set *forward(struct pair *p, int (*acc)(void *, int))
{
	struct vb_forward fw = { .guest_port = 8080, .accept = acc };
	vb_error err;
	struct vb_fwd_set *fs = vb_fwd_start(p->ch, &fw, 1, &err);
	assert_non_null(fs);
	return fs;
}

static void unforward(struct pair *p, struct vb_fwd_set *fs)
{
	vb_chan_shutdown(p->ch, "test over");
	vb_fwd_stop(fs);
	while (n_held)
		close(held[--n_held]);
}

static void test_stream_without_forwards(void **state)
{
	struct pair *p = *state;
	guest_frame(p->guest, VB_MSG_STREAM_OPEN, G(1), VB_TAG_KIND, 0, NULL, 0);
	expect_violation(p->ch, "STREAM_OPEN for stream 1, but the host forwards nothing");
}

/* Bytes make the round trip through the handler, with acks for what the
 * host consumed and the half-closes mapped both ways. */
static void test_stream_echo(void **state)
{
	struct pair *p = *state;
	struct vb_fwd_set *fs = forward(p, echo_accept);
	guest_frame(p->guest, VB_MSG_STREAM_OPEN, G(1), VB_TAG_KIND, 0, NULL, 0);
	guest_frame(p->guest, VB_MSG_STREAM_DATA, G(1), 0, 0, "hello", 5);
	guest_frame(p->guest, VB_MSG_STREAM_SHUT, G(1), 0, 0, NULL, 0);
	int acked = 0, shut = 0;
	char echoed[16] = "";
	size_t n_echoed = 0;
	while (!shut) {
		struct vb_hdr h;
		uint8_t *pl = host_frame(p->guest, &h);
		assert_int_equal(h.id, G(1));
		if (h.type == VB_MSG_STREAM_ACK) {
			uint64_t c = 0;
			assert_int_equal(vb_payload_u64(pl, h.len, VB_TAG_COUNT, &c), 0);
			acked += (int)c;
		} else if (h.type == VB_MSG_STREAM_DATA) {
			struct vb_field f;
			assert_int_equal(vb_payload_find(pl, h.len, VB_TAG_DATA, &f), 0);
			assert_true(n_echoed + f.len < sizeof(echoed));
			memcpy(echoed + n_echoed, f.data, f.len);
			n_echoed += f.len;
			/* credit back, as the agent does */
			guest_frame(p->guest, VB_MSG_STREAM_ACK, G(1), VB_TAG_COUNT,
				    VB_FRAME_HDR_LEN + h.len, NULL, 0);
		} else {
			assert_int_equal(h.type, VB_MSG_STREAM_SHUT);
			shut = 1;
		}
		free(pl);
	}
	assert_int_equal(n_echoed, 5);
	assert_memory_equal(echoed, "hello", 5);
	assert_int_equal(acked, VB_STREAM_FRAME_OVERHEAD + 5); /* the whole frame */
	guest_frame(p->guest, VB_MSG_STREAM_END, G(1), 0, 0, NULL, 0);
	settle();
	assert_false(vb_chan_dead(p->ch));
	/* an ended stream takes nothing more */
	guest_frame(p->guest, VB_MSG_STREAM_DATA, G(1), 0, 0, "x", 1);
	expect_violation(p->ch, "STREAM_DATA frame for stream 1, which had already ended");
	unforward(p, fs);
}

/* A handler that never reads: once the socket between them is full the
 * host stops acknowledging, and the guest may send its window, not a byte
 * more: the host holds at most that. */
static void test_stream_beyond_the_window(void **state)
{
	struct pair *p = *state;
	struct vb_fwd_set *fs = forward(p, hold_accept);
	guest_frame(p->guest, VB_MSG_STREAM_OPEN, G(1), VB_TAG_KIND, 0, NULL, 0);
	static uint8_t chunk[VB_CHUNK_MAX];
	uint64_t unacked = 0, frame = VB_STREAM_FRAME_OVERHEAD + sizeof(chunk);
	for (int quiet = 0; quiet < 3;) {
		struct pollfd pf = { .fd = p->guest, .events = POLLIN };
		if (unacked + frame <= VB_STREAM_WINDOW) {
			guest_frame(p->guest, VB_MSG_STREAM_DATA, G(1), 0, 0, chunk, sizeof(chunk));
			unacked += frame;
		} else if (poll(&pf, 1, 100) <= 0) {
			quiet++; /* the handler's socket is full: no more credit */
			continue;
		}
		while (poll(&pf, 1, 0) > 0) {
			struct vb_hdr h;
			uint64_t c = 0;
			uint8_t *pl = host_frame(p->guest, &h);
			assert_int_equal(h.type, VB_MSG_STREAM_ACK);
			assert_int_equal(vb_payload_u64(pl, h.len, VB_TAG_COUNT, &c), 0);
			unacked -= c;
			quiet = 0;
			free(pl);
		}
	}
	assert_false(vb_chan_dead(p->ch));
	/* the rest of the window is still fine, the frame after it is not */
	while (unacked + frame <= VB_STREAM_WINDOW) {
		guest_frame(p->guest, VB_MSG_STREAM_DATA, G(1), 0, 0, chunk, sizeof(chunk));
		unacked += frame;
	}
	uint64_t rest = VB_STREAM_WINDOW - unacked;
	if (rest > VB_STREAM_FRAME_OVERHEAD) {
		guest_frame(p->guest, VB_MSG_STREAM_DATA, G(1), 0, 0, chunk,
			    rest - VB_STREAM_FRAME_OVERHEAD);
		settle();
		assert_false(vb_chan_dead(p->ch));
	}
	guest_frame(p->guest, VB_MSG_STREAM_DATA, G(1), 0, 0, chunk, 1);
	expect_violation(p->ch, "STREAM_DATA beyond its flow-control window for stream 1");
	unforward(p, fs);
}

static void test_stream_too_many(void **state)
{
	struct pair *p = *state;
	struct vb_fwd_set *fs = forward(p, hold_accept);
	for (uint32_t i = 1; i <= VB_MAX_STREAMS; i++)
		guest_frame(p->guest, VB_MSG_STREAM_OPEN, G(i), VB_TAG_KIND, 0, NULL, 0);
	settle();
	assert_false(vb_chan_dead(p->ch));
	/* one ends: room for one more */
	guest_frame(p->guest, VB_MSG_STREAM_END, G(3), 0, 0, NULL, 0);
	guest_frame(p->guest, VB_MSG_STREAM_OPEN, G(40), VB_TAG_KIND, 0, NULL, 0);
	settle();
	assert_false(vb_chan_dead(p->ch));
	guest_frame(p->guest, VB_MSG_STREAM_OPEN, G(41), VB_TAG_KIND, 0, NULL, 0);
	expect_violation(p->ch, "STREAM_OPEN for stream 41 beyond 16 open streams");
	unforward(p, fs);
}

static void test_stream_never_opened(void **state)
{
	struct pair *p = *state;
	struct vb_fwd_set *fs = forward(p, hold_accept);
	guest_frame(p->guest, VB_MSG_STREAM_OPEN, G(2), VB_TAG_KIND, 0, NULL, 0);
	settle();
	guest_frame(p->guest, VB_MSG_STREAM_DATA, G(9), 0, 0, "x", 1);
	expect_violation(p->ch, "STREAM_DATA frame for stream 9, which the guest never opened");
	unforward(p, fs);
}

/* Ids only go up: an OPEN that reuses a lower one is for an ended stream. */
static void test_stream_id_reused(void **state)
{
	struct pair *p = *state;
	struct vb_fwd_set *fs = forward(p, hold_accept);
	guest_frame(p->guest, VB_MSG_STREAM_OPEN, G(5), VB_TAG_KIND, 0, NULL, 0);
	guest_frame(p->guest, VB_MSG_STREAM_OPEN, G(4), VB_TAG_KIND, 0, NULL, 0);
	expect_violation(p->ch, "STREAM_OPEN frame for stream 4, which had already ended");
	unforward(p, fs);
}

static void test_stream_bad_frames(void **state)
{
	struct pair *p = *state;
	struct vb_fwd_set *fs = forward(p, hold_accept);
	guest_frame(p->guest, VB_MSG_STREAM_OPEN, G(1), VB_TAG_KIND, 7, NULL, 0);
	expect_violation(p->ch, "a STREAM_OPEN of an unknown KIND for stream 1");
	unforward(p, fs);
}

static void test_stream_bogus_ack(void **state)
{
	struct pair *p = *state;
	struct vb_fwd_set *fs = forward(p, hold_accept);
	guest_frame(p->guest, VB_MSG_STREAM_OPEN, G(1), VB_TAG_KIND, 0, NULL, 0);
	guest_frame(p->guest, VB_MSG_STREAM_ACK, G(1), VB_TAG_COUNT, 100, NULL, 0);
	expect_violation(p->ch, "STREAM_ACK for data never sent");
	unforward(p, fs);
}

static void test_stream_data_after_shut(void **state)
{
	struct pair *p = *state;
	struct vb_fwd_set *fs = forward(p, hold_accept);
	guest_frame(p->guest, VB_MSG_STREAM_OPEN, G(1), VB_TAG_KIND, 0, NULL, 0);
	guest_frame(p->guest, VB_MSG_STREAM_SHUT, G(1), 0, 0, NULL, 0);
	guest_frame(p->guest, VB_MSG_STREAM_DATA, G(1), 0, 0, "x", 1);
	expect_violation(p->ch, "STREAM_DATA after STREAM_SHUT");
	unforward(p, fs);
}

/* The host's request ids never take the guest's half. */
static void test_host_ids_stay_below_the_guest_bit(void **state)
{
	struct pair *p = *state;
	struct vb_chan_slot s = { .efd = -1 };
	vb_error err;
	assert_int_equal(vb_chan_register(p->ch, &s, &err), 0);
	assert_int_equal(s.id & VB_GUEST_ID_BIT, 0);
	vb_chan_unregister(p->ch, &s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unknown_type_for_a_live_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_id_never_made, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handshake_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_rekey_for_a_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_rekey_unsolicited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_after_the_last_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_already_ended, setup, teardown),
		cmocka_unit_test_setup_teardown(test_late_reply_of_an_abandoned_request, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_late_frames_beyond_the_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_frames_cost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filter_violation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_without_forwards, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_echo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_beyond_the_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_too_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_never_opened, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_id_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_bad_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_bogus_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_data_after_shut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_ids_stay_below_the_guest_bit, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
