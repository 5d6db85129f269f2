/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest's DNS in domain mode (network_policy.allow_domains): VoidBox
 * answers the guest's queries to 10.0.2.3:53 itself.  A name no pattern
 * allows gets NXDOMAIN at once; an allowed one is forwarded to the host's
 * resolver and its answer's addresses are remembered, with their TTL, in a
 * name table that the filter asks (net/filter.h, struct vb_net_names).
 * One UDP socket towards the resolver, read from the network's loop.
 */
#ifndef VB_NET_DNSPROXY_H
#define VB_NET_DNSPROXY_H

#include <stddef.h>
#include <stdint.h>

#include "net/dns.h"
#include "net/domain.h"
#include "net/frame.h"
#include "voidbox/error.h"

struct vb_dnsproxy;

/* Patterns (allow_domains entries) copied; (any_name): every name is
 * forwarded (learn mode, which records instead of refusing).  The resolver is
 * $VOIDBOX_DNS_SERVER (IP or IP:PORT) if set, else the first IPv4
 * nameserver of /etc/resolv.conf.  Errors: VB_E_USAGE for a bad pattern,
 * VB_E_RUNTIME (no resolver, no socket). */
struct vb_dnsproxy *vb_dnsproxy_new(const char *const *patterns, size_t n, int any_name,
				    vb_error *err);
/* Called with each answer's addresses for the asked name (learn mode). */
void vb_dnsproxy_on_answer(struct vb_dnsproxy *p,
			   void (*cb)(void *opaque, const char *name, const struct vb_dns_addr *addrs,
				      size_t n),
			   void *opaque);
void vb_dnsproxy_free(struct vb_dnsproxy *p);
/* The socket to poll for POLLIN. */
int vb_dnsproxy_fd(const struct vb_dnsproxy *p);

/* The guest's UDP datagram (f) to 10.0.2.3:53.  Writes the immediate
 * answer frame (a refusal, a malformed query's error) to (out) and returns
 * its length, or 0 when there is none (forwarded, or not worth an answer).
 * (denied) is set to the refused name ("" otherwise). */
size_t vb_dnsproxy_query(struct vb_dnsproxy *p, const struct vb_frame *f, int64_t now_ms,
			 uint8_t *out, size_t cap, char denied[VB_DOMAIN_MAX]);

/* The resolver's socket is readable: each answer to a pending query is
 * recorded and handed to (emit) as a frame for the guest. */
void vb_dnsproxy_read(struct vb_dnsproxy *p, int64_t now_ms,
		      void (*emit)(void *opaque, const uint8_t *frame, size_t len), void *opaque);

/* For struct vb_net_names (opaque = the proxy; addresses in host order). */
int vb_dnsproxy_resolved(void *p, uint32_t addr, int64_t now_ms);
int vb_dnsproxy_sni_ok(void *p, const char *name, uint32_t addr, int64_t now_ms);

#endif
