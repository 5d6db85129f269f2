/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Learn mode's recorder (docs/network.md, "Policy building blocks"): fed
 * what a stage's guest reached, it drafts the `network_policy` block that
 * would let the same stage run with nothing else allowed.  Names go to
 * allow_domains, addresses reached without a name to `allow` as /32 or
 * /128, ports of the host's loopback (at the gateway) to host_ports.  No I/O;
 * bounded: at most VB_LEARN_MAX entries of each kind are kept, and the
 * draft says when some were dropped.
 */
#ifndef VB_NET_LEARN_H
#define VB_NET_LEARN_H

#include <stddef.h>
#include <stdint.h>

#include "net/dns.h"
#include "voidbox/error.h"

#define VB_LEARN_MAX 512     /* names, and addresses, kept */
#define VB_LEARN_PORTS 8     /* ports noted per name or address */

struct vb_learn;

/* NULL when memory is short. */
struct vb_learn *vb_learn_new(void);
void vb_learn_free(struct vb_learn *l);

/* The guest's resolver got (addrs) for (name) (not a host name: ignored).
 * A flow to one of those addresses is then credited to the name; a name
 * resolved but never connected to is only mentioned in a comment. */
void vb_learn_dns(struct vb_learn *l, const char *name, const struct vb_dns_addr *addrs,
		  size_t n, int64_t now_ms);

/* The guest opened a flow (proto: IPPROTO_TCP or IPPROTO_UDP) to
 * (addr):(port).  (name): the host name it was for, when known (the TLS
 * server name); NULL: every name that resolved to (addr) (at any time:
 * learn mode does not expire them), or the address itself if none did.
 * Flows to the gateway's host ports go to vb_learn_host_port instead, and
 * the guest's DNS queries are not flows. */
void vb_learn_flow(struct vb_learn *l, int proto, int family, const uint8_t *addr,
		   uint16_t port, const char *name, int64_t now_ms);

/* The guest reached port (port) of the host's loopback through the gateway. */
void vb_learn_host_port(struct vb_learn *l, int proto, uint16_t port);

/* The draft: a YAML block starting "network_policy:", every line indented
 * by (indent) spaces (2 to paste it under `sandbox:`), entries sorted and
 * without duplicates, each with a comment of the ports seen.  Nothing
 * reached gives `allow: []` (default-deny).  Returns a malloc'd string, or
 * NULL with (err). */
char *vb_learn_yaml(const struct vb_learn *l, unsigned indent, vb_error *err);

#endif
