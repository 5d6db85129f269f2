/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hostile_agent: a stand-in for qemu-system-x86_64 (VOIDBOX_QEMU) that plays
 * a guest agent taken over by its stage: it connects to the control socket
 * QEMU would have connected to, accepts the handshake without checking the
 * secret, answers the first EXEC with EXEC_STARTED and then attacks the host
 * as $HOSTILE_MODE says:
 *
 *   flood-unknown   empty frames of an unknown type for the exec, endlessly
 *   flood-empty     empty EXEC_OUTPUT frames for the exec, endlessly
 *   over-window     64 KiB EXEC_OUTPUT frames, ignoring flow control
 *   unknown-id      an EXEC_OUTPUT for a request the host never made
 *   forged-exit     an EXEC_EXIT (code 42) for a request the host never made
 *   ack-flood       an EXEC_STDIN_ACK for stdin the host never sent
 *   honest-flood    output within the flow-control window, endlessly, and
 *                   every EXEC_SIGNAL ignored (a program that will not die)
 *   mute            never answers the EXEC (a reply withheld)
 *   stream-too-many one guest stream (KIND 0) more than VB_MAX_STREAMS
 *   stream-over-window  a stream (KIND 0) whose 64 KiB STREAM_DATA frames
 *                   ignore its flow-control window
 *   stream-unknown-id   STREAM_DATA for a stream the guest never opened
 *   crash           the agent (PID 1) dies: the kernel's panic line on the
 *                   console, then QEMU exits as with -no-reboot (a stage can
 *                   no longer crash the real agent to test this)
 *
 * $HOSTILE_PIDFILE, if set, receives our pid (the test checks we are gone).
 * Used by tests/integration/test_hostile.sh; never by VoidBox itself.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vb_proto.h"

static int fd = -1;
static const char *console; /* -serial file:PATH */

static int send_buf(struct vb_buf *b)
{
	if (b->oom || vb_msg_end(b) < 0)
		return -1;
	const uint8_t *p = b->data;
	size_t n = b->len;
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pf = { .fd = fd, .events = POLLOUT };
			poll(&pf, 1, 1000);
			continue;
		}
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_full(void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
			struct pollfd pf = { .fd = fd, .events = POLLIN };
			poll(&pf, 1, 1000);
			continue;
		}
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* One frame from the host; payload (caller frees) may be NULL for len 0. */
static int recv_frame(struct vb_hdr *h, uint8_t **payload)
{
	uint8_t raw[VB_FRAME_HDR_LEN];
	if (read_full(raw, sizeof(raw)) < 0 || vb_hdr_decode(raw, h) < 0)
		return -1;
	*payload = malloc(h->len + 1u);
	if (!*payload || read_full(*payload, h->len) < 0)
		return -1;
	return 0;
}

static int send_output(uint32_t id, const void *data, size_t n)
{
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_EXEC_OUTPUT, 0, id);
	vb_msg_put_u64(&b, VB_TAG_STREAM, 1);
	if (n)
		vb_msg_put_bytes(&b, VB_TAG_DATA, data, n);
	int rc = send_buf(&b);
	vb_buf_free(&b);
	return rc;
}

/* Output within the window, forever; acks and signals read as they come. */
static void honest_flood(uint32_t id)
{
	static uint8_t chunk[4096];
	memset(chunk, 'y', sizeof(chunk));
	uint64_t credit = VB_OUTPUT_WINDOW;
	const uint64_t cost = VB_OUTPUT_FRAME_OVERHEAD + sizeof(chunk);
	for (;;) {
		while (credit >= cost) {
			if (send_output(id, chunk, sizeof(chunk)) < 0)
				return;
			credit -= cost;
		}
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		if (poll(&pf, 1, 1000) <= 0)
			continue;
		struct vb_hdr h;
		uint8_t *p = NULL;
		if (recv_frame(&h, &p) < 0)
			return;
		uint64_t n = 0;
		if (h.type == VB_MSG_EXEC_ACK && vb_payload_u64(p, h.len, VB_TAG_COUNT, &n) == 0)
			credit += n;
		free(p); /* EXEC_SIGNAL: a program that will not die */
	}
}

static void attack(const char *mode, uint32_t id)
{
	struct vb_buf b = { 0 };
	if (!strcmp(mode, "flood-unknown") || !strcmp(mode, "flood-empty")) {
		struct vb_hdr h = { .len = 0,
				    .type = !strcmp(mode, "flood-unknown") ? 999 : VB_MSG_EXEC_OUTPUT,
				    .id = id };
		uint8_t raw[VB_FRAME_HDR_LEN * 256];
		for (size_t i = 0; i < 256; i++)
			vb_hdr_encode(raw + i * VB_FRAME_HDR_LEN, &h);
		for (;;)
			if (send(fd, raw, sizeof(raw), MSG_NOSIGNAL) < 0 && errno != EINTR &&
			    errno != EAGAIN)
				return;
	} else if (!strcmp(mode, "over-window")) {
		static uint8_t chunk[VB_CHUNK_MAX];
		memset(chunk, 'o', sizeof(chunk));
		while (send_output(id, chunk, sizeof(chunk)) == 0)
			;
	} else if (!strcmp(mode, "unknown-id")) {
		send_output(id + 1000, "x", 1);
	} else if (!strcmp(mode, "forged-exit")) {
		vb_msg_begin(&b, VB_MSG_EXEC_EXIT, 0, id + 1);
		vb_msg_put_u64(&b, VB_TAG_EXIT_CODE, 42);
		send_buf(&b);
	} else if (!strcmp(mode, "ack-flood")) {
		vb_msg_begin(&b, VB_MSG_EXEC_STDIN_ACK, 0, id);
		vb_msg_put_u64(&b, VB_TAG_COUNT, 1u << 30);
		send_buf(&b);
	} else if (!strcmp(mode, "stream-too-many")) {
		for (uint32_t i = 1; i <= VB_MAX_STREAMS + 1; i++) {
			vb_msg_begin(&b, VB_MSG_STREAM_OPEN, 0, VB_GUEST_ID_BIT | i);
			vb_msg_put_u64(&b, VB_TAG_KIND, 0);
			if (send_buf(&b) < 0)
				break;
		}
	} else if (!strcmp(mode, "stream-over-window")) {
		static uint8_t chunk[VB_CHUNK_MAX];
		vb_msg_begin(&b, VB_MSG_STREAM_OPEN, 0, VB_GUEST_ID_BIT | 1);
		vb_msg_put_u64(&b, VB_TAG_KIND, 0);
		int rc = send_buf(&b);
		while (rc == 0) {
			vb_msg_begin(&b, VB_MSG_STREAM_DATA, 0, VB_GUEST_ID_BIT | 1);
			vb_msg_put_bytes(&b, VB_TAG_DATA, chunk, sizeof(chunk));
			rc = send_buf(&b);
		}
	} else if (!strcmp(mode, "stream-unknown-id")) {
		vb_msg_begin(&b, VB_MSG_STREAM_DATA, 0, VB_GUEST_ID_BIT | 5);
		vb_msg_put_bytes(&b, VB_TAG_DATA, "x", 1);
		send_buf(&b);
	} else if (!strcmp(mode, "honest-flood")) {
		honest_flood(id);
	} else if (!strcmp(mode, "crash")) {
		FILE *f = console ? fopen(console, "a") : NULL;
		if (f) {
			fputs("[    2.000000] Kernel panic - not syncing: Attempted to kill init! "
			      "exitcode=0x0000000b\n", f);
			fclose(f);
		}
		exit(0);
	}
	vb_buf_free(&b);
	pause(); /* the host decides what happens to us */
}

int main(int argc, char **argv)
{
	const char *sock = NULL;
	for (int i = 1; i + 1 < argc; i++) {
		if (!strcmp(argv[i], "-version")) {
			puts("QEMU emulator version 0 (hostile_agent)");
			return 0;
		}
		if (!strcmp(argv[i], "-chardev") && !strncmp(argv[i + 1], "socket,id=vbctl,path=", 21))
			sock = argv[i + 1] + 21;
		if (!strcmp(argv[i], "-serial") && !strncmp(argv[i + 1], "file:", 5))
			console = argv[i + 1] + 5;
	}
	const char *mode = getenv("HOSTILE_MODE");
	const char *pidfile = getenv("HOSTILE_PIDFILE");
	if (!sock || !mode) {
		fprintf(stderr, "hostile_agent: no control socket or no HOSTILE_MODE\n");
		return 2;
	}
	if (pidfile) {
		FILE *f = fopen(pidfile, "w");
		if (f) {
			fprintf(f, "%d\n", (int)getpid());
			fclose(f);
		}
	}
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("hostile_agent: connect");
		return 1;
	}
	struct vb_hdr h;
	uint8_t *p = NULL;
	if (recv_frame(&h, &p) < 0 || h.type != VB_MSG_HELLO)
		return 1;
	free(p);
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_HELLO_OK, 0, 0);
	vb_msg_put_u64(&b, VB_TAG_VERSION, VB_PROTO_VERSION);
	vb_msg_put_str(&b, VB_TAG_KERNEL, "6.1.0-hostile");
	vb_msg_put_str(&b, VB_TAG_BOOT_ID, "00000000-0000-0000-0000-000000000000");
	if (send_buf(&b) < 0)
		return 1;
	for (;;) {
		if (recv_frame(&h, &p) < 0)
			return 0;
		free(p);
		if (h.type == VB_MSG_EXEC && !strcmp(mode, "mute"))
			pause();
		if (h.type == VB_MSG_EXEC) {
			vb_msg_begin(&b, VB_MSG_EXEC_STARTED, 0, h.id);
			vb_msg_put_u64(&b, VB_TAG_PID, 42);
			if (send_buf(&b) < 0)
				return 0;
			attack(mode, h.id);
			return 0;
		}
		if (h.type == VB_MSG_SHUTDOWN) {
			vb_msg_begin(&b, VB_MSG_OK, 0, h.id);
			send_buf(&b);
			return 0;
		}
	}
}
