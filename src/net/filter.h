/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The egress policy, applied to every frame the guest sends before libslirp
 * sees it (libslirp has no per-connection hook), and the TCP connection
 * tracking behind the caps.  No I/O and no clock of its own: the caller
 * passes the time.  docs/network.md says what is allowed and why.
 */
#ifndef VB_NET_FILTER_H
#define VB_NET_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "voidbox/error.h"
#include "voidbox/sandbox.h"

/* The fixed addressing of the user-mode network (host byte order). */
#define VB_NET_ADDR(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))
#define VB_NET_NETWORK VB_NET_ADDR(10, 0, 2, 0)
#define VB_NET_GATEWAY VB_NET_ADDR(10, 0, 2, 2)
#define VB_NET_DNS VB_NET_ADDR(10, 0, 2, 3)
#define VB_NET_GUEST VB_NET_ADDR(10, 0, 2, 15)

enum vb_net_verdict {
	VB_NET_PASS = 0, /* hand it to libslirp */
	VB_NET_DROP,     /* malformed or not carried (IPv6, other ethertypes): dropped quietly */
	VB_NET_REFUSE,   /* the policy said no: answer with (reply) if any, report */
	VB_NET_HOLD,     /* kept by the filter until the TLS server name is known (or a
			  * copy of what it keeps): nothing to do now */
	VB_NET_RELEASE,  /* the server name is allowed: hand libslirp the held frames
			  * (held, in order; this one among them) instead */
};

/* Frames the filter held, in order; valid until the next filter call. */
struct vb_net_held {
	uint8_t *data;
	size_t len;
	size_t n;
	size_t lens[16];
};

struct vb_net_decision {
	enum vb_net_verdict verdict;
	const char *rule;  /* REFUSE: the rule's name (static) */
	const char *proto; /* "tcp", "udp", "icmp", "ip" */
	uint32_t dst;      /* host order */
	unsigned port;
	int host_port;     /* REFUSE: a port of the host's loopback that could be declared */
	int report;        /* REFUSE: worth an event (not every packet of a refused flow is) */
	int new_conn;      /* PASS: a TCP connection the guest opened */
	int learned;       /* PASS in learn mode: a policy would have refused it */
	size_t reply_len;  /* REFUSE: bytes of (reply) to send to the guest, 0 = none */
	/* REFUSE of a connection libslirp has already opened (the SNI check):
	 * an RST for libslirp, as if from the guest, in (reply + 64) */
	size_t net_reply_len;
	uint32_t rst_seq;  /* internal: the sequence number of that RST */
	const struct vb_net_held *held; /* RELEASE */
};

/* Domain mode (network_policy.allow_domains), supplied by the caller, which
 * answers the guest's DNS: an address an allowed name resolved to is
 * reachable, and a TLS connection to it only by the ClientHello's server
 * name of an allowed name that resolved to that address (no domain fronting
 * through a shared address).  Addresses in host order. */
struct vb_net_names {
	/* Some allowed name resolved to (addr) and that answer still holds. */
	int (*resolved)(void *opaque, uint32_t addr, int64_t now_ms);
	/* (name) is allowed and resolved to (addr). */
	int (*sni_ok)(void *opaque, const char *name, uint32_t addr, int64_t now_ms);
	void *opaque;
};

struct vb_net_filter;

/* A filter for (cfg)'s policy (lists copied; its callbacks unused).
 * Errors: VB_E_USAGE for an out-of-range cap, VB_E_RUNTIME (memory). */
struct vb_net_filter *vb_net_filter_new(const struct vb_network *cfg, vb_error *err);
void vb_net_filter_free(struct vb_net_filter *fl);

/* Refuse (addr)/(prefix) (host order) too, under (rule) (static string):
 * e.g. the host's own interface addresses. */
int vb_net_filter_deny(struct vb_net_filter *fl, uint32_t addr, unsigned prefix, const char *rule);

/* Turn domain mode on (copied): default-deny, as with `allow`. */
void vb_net_filter_set_names(struct vb_net_filter *fl, const struct vb_net_names *names);

/* Decide about one frame from the guest at (now_ms).  A refusal may come
 * with a reply frame (TCP RST, ICMP unreachable) written to (reply), which
 * should hold 192 bytes (128 for the guest, 64 for libslirp). */
void vb_net_filter_guest(struct vb_net_filter *fl, const uint8_t *frame, size_t len,
			 int64_t now_ms, uint8_t *reply, size_t reply_cap, struct vb_net_decision *d);

/* Look at one frame libslirp sends to the guest (connection tracking:
 * answers, port-forward connections, ends).  Returns 0 to deliver it, -1 to
 * drop it (the flow table is full). */
int vb_net_filter_to_guest(struct vb_net_filter *fl, const uint8_t *frame, size_t len,
			   int64_t now_ms);

/* Open TCP connections the guest made, as tracked. */
unsigned vb_net_filter_open(const struct vb_net_filter *fl);

/* The built-in rules and the configured ones in words, one per line
 * ("deny 169.254.0.0/16 cloud-metadata"), for `voidbox inspect`.  Caller
 * frees. */
char *vb_net_filter_describe(const struct vb_net_filter *fl);

#endif
