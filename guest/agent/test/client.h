/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client.h — a minimal single-threaded host side of the control protocol,
 * for the agent's tests (agent_test.c).  Not the product's channel code:
 * it is deliberately independent so that the two can check each other.
 */
#ifndef VB_AGENT_TEST_CLIENT_H
#define VB_AGENT_TEST_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "vb_proto.h"

struct frame {
	struct frame *next;
	struct vb_hdr h;
	uint8_t *p;
};

struct client {
	int fd;
	uint32_t next_id;
	struct frame *stash; /* frames read while waiting for another id */
};

int cl_connect(struct client *cl, const char *sock_path);
void cl_close(struct client *cl);
int cl_send(struct client *cl, struct vb_buf *b);
/* Next frame of any id (stash first), or NULL on timeout/EOF (*eof set). */
struct frame *cl_recv_any(struct client *cl, int timeout_ms, int *eof);
/* Next frame for (id); others are stashed. */
struct frame *cl_recv(struct client *cl, uint32_t id, int timeout_ms);
void frame_free(struct frame *f);
int frame_u64(const struct frame *f, uint16_t tag, uint64_t *v);
int frame_bytes(const struct frame *f, uint16_t tag, const uint8_t **p, size_t *n);
/* MESSAGE of an ERROR frame, NUL-terminated into buf. */
const char *frame_msg(const struct frame *f, char *buf, size_t cap);
/* HELLO with (secret); returns the reply (HELLO_OK or ERROR) or NULL. */
struct frame *cl_hello(struct client *cl, const uint8_t secret[VB_SECRET_LEN], uint64_t version);

uint64_t now_ms(void);

#endif
