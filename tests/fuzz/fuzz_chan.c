/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_chan.c — libFuzzer target for the host channel (src/channel/): the
 * input is everything a guest sends after the handshake.  The host side has
 * an exec-like request (id 1: EXEC_STARTED, EXEC_OUTPUT, EXEC_STDIN_ACK,
 * EXEC_EXIT, ERROR; a 64 KiB budget), a call (id 2) and an exec-like request
 * it gave up on (id 3, a tombstone with 4 KiB of late budget), and one
 * loopback forward (KIND 0; its handler holds each connection without
 * reading) for the streams the guest opens, and drains what gets queued
 * while the input streams in over a socketpair.  Invariants: a slot
 * never holds more than its budget, the channel always ends (EOF or a
 * violation), and a violation's reason is the fixed prefix plus printable
 * ASCII.  ASAN/LSan see every frame freed.
 *
 *   make fuzz; build/fuzz/fuzz_chan -max_total_time=600 tests/fuzz/corpus/chan
 *
 * Seeds in tests/fuzz/corpus/chan: an honest exec and call, floods of empty
 * frames of an unknown type and of EXEC_OUTPUT, an oversized header, a
 * frame for an id never used, frames after EXEC_EXIT, late frames of the
 * abandoned request within and beyond its budget; a whole stream (OPEN,
 * DATA, SHUT, END), more streams than allowed, data beyond a stream's
 * window, for a stream never opened and after STREAM_SHUT, a bogus ack.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel/channel.h"
#include "sandbox/sandbox_int.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                       \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "fuzz_chan: check failed at %s:%d: %s\n", __FILE__, \
				__LINE__, #cond);                                         \
			abort();                                                          \
		}                                                                         \
	} while (0)

static int held[64];
static int n_held;

/* A handler that holds its connection (closed after the input). */
static int hold(void *opaque, int fd)
{
	(void)opaque;
	if (n_held >= 64) {
		close(fd);
		return -1;
	}
	held[n_held++] = fd;
	return 0;
}

/* What the host sends the guest (acks, stream data) must not fill the
 * socket: a stream's pump would wait on it. */
static void drain_host(int fd)
{
	uint8_t sink[65536];
	while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
}

static void drain(struct vb_chan *ch, struct vb_chan_slot *s)
{
	struct vb_chan_frame *f = NULL;
	vb_error err;
	vb_chan_lock(ch);
	CHECK(s->queued <= s->max_queued);
	vb_chan_unlock(ch);
	while (vb_chan_recv(ch, s, &f, 0, &err) > 0) {
		struct vb_field any;
		(void)vb_payload_find(f->payload, f->hdr.len, VB_TAG_DATA, &any);
		free(f);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	signal(SIGPIPE, SIG_IGN);
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_HELLO_OK, 0, 0);
	vb_msg_put_u64(&b, VB_TAG_VERSION, VB_PROTO_VERSION);
	CHECK(vb_msg_end(&b) == 0);
	CHECK(write(sv[1], b.data, b.len) == (ssize_t)b.len);
	vb_buf_free(&b);
	uint8_t secret[VB_SECRET_LEN] = { 0 };
	struct vb_chan_hello hello;
	vb_error err;
	struct vb_chan *ch = vb_chan_open(sv[0], secret, 5000, -1, -1, &hello, &err);
	CHECK(ch);

	struct vb_chan_slot exec = {
		.efd = -1,
		.max_queued = 64 << 10,
		.accept = VB_CHAN_TYPE(VB_MSG_EXEC_STARTED) | VB_CHAN_TYPE(VB_MSG_EXEC_OUTPUT) |
			  VB_CHAN_TYPE(VB_MSG_EXEC_STDIN_ACK) | VB_CHAN_TYPE(VB_MSG_EXEC_EXIT) |
			  VB_CHAN_TYPE(VB_MSG_ERROR),
		.final = VB_CHAN_TYPE(VB_MSG_EXEC_EXIT) | VB_CHAN_TYPE(VB_MSG_ERROR),
	};
	struct vb_chan_slot call = { .efd = -1 };
	struct vb_chan_slot gone = { .efd = -1, .accept = exec.accept, .final = exec.final,
				     .late_budget = 4096 };
	CHECK(vb_chan_register(ch, &exec, &err) == 0 && exec.id == 1);
	CHECK(vb_chan_register(ch, &call, &err) == 0 && call.id == 2);
	CHECK(vb_chan_register(ch, &gone, &err) == 0 && gone.id == 3);
	vb_chan_unregister(ch, &gone);
	struct vb_forward fw = { .guest_port = 8080, .accept = hold };
	struct vb_fwd_set *fs = vb_fwd_start(ch, &fw, 1, &err);
	CHECK(fs);

	size_t off = 0;
	int64_t end = vb_now_ms() + 10000;
	while (off < size && !vb_chan_dead(ch) && vb_now_ms() < end) {
		ssize_t w = send(sv[1], data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0)
			off += (size_t)w;
		else if (w < 0 && errno != EAGAIN && errno != EINTR)
			break;
		drain(ch, &exec);
		drain(ch, &call);
		drain_host(sv[1]);
		if (w <= 0)
			poll(NULL, 0, 1);
	}
	shutdown(sv[1], SHUT_WR); /* EOF: the channel must end */
	while (!vb_chan_dead(ch) && vb_now_ms() < end) {
		drain(ch, &exec);
		drain(ch, &call);
		drain_host(sv[1]);
		poll(NULL, 0, 1);
	}
	CHECK(vb_chan_dead(ch));
	const char *why = vb_chan_why(ch);
	if (vb_chan_violated(ch))
		CHECK(!strncmp(why, "the guest broke the protocol (", 30));
	for (const char *c = why; *c; c++)
		CHECK(*c >= 0x20 && *c < 0x7f);
	drain(ch, &exec);
	drain(ch, &call);
	vb_chan_unregister(ch, &exec);
	vb_chan_unregister(ch, &call);
	vb_chan_shutdown(ch, "done");
	vb_fwd_stop(fs);
	while (n_held)
		close(held[--n_held]);
	vb_chan_close(ch);
	close(sv[1]);
	return 0;
}
