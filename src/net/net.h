/* SPDX-License-Identifier: Apache-2.0 */
/*
 * User-mode networking for one VM: libslirp behind the egress policy
 * (net/filter.h), in the VoidBox process (docs/network.md).
 *
 * vb_net does no I/O of its own besides libslirp's sockets: Ethernet frames
 * come in through vb_net_from_guest() and go out through a callback; the
 * caller owns the poll loop (vb_net_poll_fill / vb_net_poll_dispatch) and
 * calls everything from that one thread.  vb_net_stream is the adapter for
 * QEMU's `-netdev stream` (a socket carrying each frame behind a 4-byte
 * big-endian length) with the thread that runs that loop; a native VMM's
 * virtio-net would be another adapter over the same vb_net.
 */
#ifndef VB_NET_NET_H
#define VB_NET_NET_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "voidbox/error.h"
#include "voidbox/sandbox.h"

/* The largest frame either way: virtio-net without offloads sends at most
 * MTU + Ethernet header; anything longer than this is not a frame. */
#define VB_NET_MAX_FRAME 65535u

struct vb_net_io {
	/* A frame for the guest.  May drop it (TCP retransmits). */
	void (*to_guest)(void *opaque, const uint8_t *frame, size_t len);
	void *opaque;
};

struct vb_net;

/* A network for (cfg) (copied; cfg->enabled is not looked at), publishing
 * cfg->publish on 127.0.0.1.  Errors: VB_E_USAGE for a bad policy or a
 * host port that cannot be bound, VB_E_RUNTIME. */
struct vb_net *vb_net_new(const struct vb_network *cfg, const struct vb_net_io *io, vb_error *err);
void vb_net_free(struct vb_net *n);

/* One frame from the guest: the policy first, then libslirp. */
void vb_net_from_guest(struct vb_net *n, const uint8_t *frame, size_t len);

/* The caller's poll set: its own descriptors first, then vb_net's. */
struct vb_net_pollset {
	struct pollfd *fds;
	size_t n, cap;
};
/* Append (fd, events); returns its index or -1 (out of memory). */
int vb_net_pollset_add(struct vb_net_pollset *ps, int fd, short events);
void vb_net_pollset_free(struct vb_net_pollset *ps);

/* Before poll(): append libslirp's descriptors and lower (*timeout_ms)
 * (-1 = none) to its next timer. */
void vb_net_poll_fill(struct vb_net *n, struct vb_net_pollset *ps, int *timeout_ms);
/* After poll(): let libslirp serve what is ready and run due timers. */
void vb_net_poll_dispatch(struct vb_net *n, const struct vb_net_pollset *ps, int poll_failed);

/* Counters (safe from any thread). */
void vb_net_stats(const struct vb_net *n, struct vb_net_stats *st);
/* The host port of cfg->publish[i], 0 if none. */
unsigned vb_net_published_port(const struct vb_net *n, size_t i);
/* Learn mode's draft (net/learn.h; safe from any thread).  Caller frees;
 * NULL with (err) when not in learn mode. */
char *vb_net_learned(struct vb_net *n, unsigned indent, vb_error *err);

/* ---- the QEMU stream adapter ------------------------------------------ */

struct vb_net_stream;
/* Start the network for (cfg) on its own thread.  (*vmm_fd) gets the VMM's
 * end of the frame socket (close-on-exec; the caller closes it once the VMM
 * has its copy).  Errors as vb_net_new(). */
/* (stats_path), if not NULL (copied), gets the counters as JSON
 * ({"bytes_out":..,"bytes_in":..,"connections":..,"denied":..}) about once
 * a second while they change, replaced whole (for `voidbox ps`). */
struct vb_net_stream *vb_net_stream_start(const struct vb_network *cfg, const char *stats_path,
					  int *vmm_fd, vb_error *err);
/* Stop the thread, close every socket of the network.  Safe with NULL. */
void vb_net_stream_stop(struct vb_net_stream *s);
void vb_net_stream_stats(const struct vb_net_stream *s, struct vb_net_stats *st);
unsigned vb_net_stream_published_port(const struct vb_net_stream *s, size_t i);
char *vb_net_stream_learned(struct vb_net_stream *s, unsigned indent, vb_error *err);

#endif
