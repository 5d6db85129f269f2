/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host end of the control protocol: one authenticated connection to a
 * guest agent, many requests in flight on it.
 *
 * A reader thread owns the receive side and routes every frame by request id
 * to a slot; callers block on their slot (or poll its eventfd).  Everything
 * the guest sends is hostile until checked, and every frame costs: a slot's
 * budget counts whole frames on the wire (header included), so even empty
 * frames run it out.  A frame the host does not expect — a type the request
 * never produces, a request id the host never used or that has already ended,
 * anything after a request's last frame, a queue past its budget, a malformed
 * header — is a protocol violation: the connection dies at once with "the
 * guest broke the protocol (...)" and the VM is treated as hostile.  Nothing
 * is silently dropped in a loop.
 */
#ifndef VB_CHANNEL_H
#define VB_CHANNEL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "vb_proto.h"
#include "voidbox/error.h"

struct vb_chan;

struct vb_chan_frame {
	struct vb_chan_frame *next;
	struct vb_hdr hdr;
	uint8_t payload[]; /* hdr.len bytes */
};

/* What one frame costs a slot's budget: its whole size on the wire. */
#define VB_CHAN_COST(payload_len) ((size_t)VB_FRAME_HDR_LEN + (size_t)(payload_len))
/* The bit of a message type in vb_chan_slot.accept / .final (types < 64). */
#define VB_CHAN_TYPE(t) (1ull << (t))

struct vb_chan_slot;
/* Runs on the reader thread with the channel lock held; returns 1 if it
 * consumed the frame (it must not block), 0 to queue it, -1 if the frame
 * breaks the protocol (then *why names the violation, a static string). */
typedef int (*vb_chan_filter)(struct vb_chan_slot *slot, const struct vb_chan_frame *f,
			      const char **why);

struct vb_chan_slot {
	uint32_t id; /* assigned by vb_chan_register */
	struct vb_chan_frame *head, *tail;
	size_t queued;     /* VB_CHAN_COST of the frames queued */
	size_t max_queued; /* beyond this the guest broke the protocol */
	/* Types the guest may send for this request (VB_CHAN_TYPE bits), and
	 * those that end it; 0 = a plain call: one OK or ERROR. */
	uint64_t accept, final;
	/* Wire bytes the guest may still send after the host gave up on the
	 * request before its last frame (vb_chan_unregister keeps a tombstone
	 * with this budget, discarding late frames until the last one); 0 =
	 * max_queued. */
	size_t late_budget;
	int finished;      /* its last frame arrived (under the lock) */
	int efd;           /* eventfd signalled on every frame, or -1 */
	vb_chan_filter filter;
	void *opaque;
	struct vb_chan_slot *next;
};

struct vb_chan_hello {
	char kernel[128];
	char boot_id[64];
};

/* Authenticate over the connected stream (fd) (owned by the channel from now
 * on, even on failure): send HELLO with (secret), wait up to (timeout_ms) for
 * HELLO_OK.  While waiting, (abort_fd) (e.g. the VMM's pidfd) becoming
 * readable aborts with VB_E_VMDIED, (cancel_fd) with VB_E_CANCELLED (-1 for
 * none).  (cancel_fd) (not owned, never read) must stay open for the
 * channel's life: vb_chan_recv() checks it too. */
struct vb_chan *vb_chan_open(int fd, const uint8_t secret[VB_SECRET_LEN], int timeout_ms,
			     int abort_fd, int cancel_fd, struct vb_chan_hello *hello,
			     vb_error *err);

/* Shut the connection down, join the reader, free.  Safe with NULL. */
void vb_chan_close(struct vb_chan *ch);

/* 1 once the connection is gone (EOF, I/O error or protocol violation). */
int vb_chan_dead(struct vb_chan *ch);
/* Why the connection died ("" while alive). */
const char *vb_chan_why(struct vb_chan *ch);
/* 1 if it died because the guest broke the protocol. */
int vb_chan_violated(struct vb_chan *ch);
/* The layer above found a frame that breaks the protocol (a malformed
 * output frame, a reply out of order): kill the connection with "the guest
 * broke the protocol (WHAT)" (only the first cause is kept), set (err) to it
 * (VB_E_RUNTIME) and return -1.  (what) must not carry guest text. */
int vb_chan_violation(struct vb_chan *ch, vb_error *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Register (slot) (zero-initialised by the caller; efd, filter, max_queued,
 * accept and final optional) and assign it a fresh request id. */
int vb_chan_register(struct vb_chan *ch, struct vb_chan_slot *slot, vb_error *err);
/* Remove the slot and free its queued frames.  If its last frame has not
 * arrived, a tombstone keeps the id known: late frames are discarded within
 * late_budget, and anything beyond is a violation. */
void vb_chan_unregister(struct vb_chan *ch, struct vb_chan_slot *slot);

/* Guest-opened streams (ids with VB_GUEST_ID_BIT).  A STREAM_OPEN on a new
 * guest id — greater than every guest id before it — is handed to (fn) on
 * the reader thread with the channel lock held; it must not block.  It
 * returns a slot (zero-initialised, with efd, filter, max_queued, accept
 * and final set; the channel assigns the id and registers it), or NULL
 * with *why set (a static string) to break the protocol, or NULL with *why
 * NULL when the host itself failed (the channel dies, not as a violation).
 * The guest may have at most (max_streams) streams open (OPEN sent, its
 * final frame not yet); more is a violation.  Ending a stream is the
 * owner's: vb_chan_unregister() once its final frame arrived (or the
 * channel died).  Without an opener every STREAM_OPEN breaks the protocol. */
typedef struct vb_chan_slot *(*vb_chan_opener)(void *opaque, const struct vb_chan_frame *open,
					      const char **why);
void vb_chan_set_opener(struct vb_chan *ch, vb_chan_opener fn, void *opaque,
			unsigned max_streams);
/* Kill the connection from the host's side (not a violation): every
 * waiter wakes with VB_E_VMDIED and (why).  For teardown. */
void vb_chan_shutdown(struct vb_chan *ch, const char *why);

/* Send a complete frame built with vb_msg_begin/.../vb_msg_end; the request
 * id in its header is overwritten with (id).  Thread-safe: frames are never
 * interleaved. */
int vb_chan_send(struct vb_chan *ch, struct vb_buf *frame, uint32_t id, vb_error *err);

/* Pop the next frame of (slot); wait up to (timeout_ms) (-1 forever).
 * Returns 1 (caller frees *out with free()), 0 on timeout, -1 if the
 * connection died (VB_E_VMDIED; after a protocol violation even frames
 * already queued are not delivered) or, while waiting, the cancel
 * descriptor became readable (VB_E_CANCELLED, checked every 250 ms).  The
 * slot's eventfd stays signalled while frames remain queued. */
int vb_chan_recv(struct vb_chan *ch, struct vb_chan_slot *slot, struct vb_chan_frame **out,
		 int timeout_ms, vb_error *err);

/* 1 if (slot) has frames queued. */
int vb_chan_pending(struct vb_chan *ch, struct vb_chan_slot *slot);

/* Wait on the channel's condition (for filters' state): the lock is held by
 * the caller via vb_chan_lock(). Returns 0 on wake, 1 on timeout. */
void vb_chan_lock(struct vb_chan *ch);
void vb_chan_unlock(struct vb_chan *ch);
int vb_chan_wait_locked(struct vb_chan *ch, int64_t deadline_ms);
void vb_chan_broadcast_locked(struct vb_chan *ch);

/* Send (req) and wait for its single reply: OK → 0 with *reply set (caller
 * frees), ERROR → -1 with (err) holding the guest's message and *code its
 * VB_ERR_* (code may be NULL). */
int vb_chan_call(struct vb_chan *ch, struct vb_buf *req, int timeout_ms,
		 struct vb_chan_frame **reply, int *code, vb_error *err);

/* Turn an ERROR frame into (err); returns its VB_ERR_* code. */
int vb_chan_error_from(const struct vb_chan_frame *f, vb_error *err);

#endif
