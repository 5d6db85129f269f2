/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CIDR blocks for the network policy (docs/network.md, "Policy building
 * blocks"): parsed strictly (inet_pton: dotted-quad IPv4 only, no decimal,
 * hex or octal spellings), matched against addresses in network byte order.
 * No I/O; a list holds at most VB_CIDR_LIST_MAX blocks.
 */
#ifndef VB_NET_CIDR_H
#define VB_NET_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "voidbox/error.h"

#define VB_CIDR_LIST_MAX 4096
/* Longest text vb_cidr_format writes, NUL included. */
#define VB_CIDR_STRLEN 50

struct vb_cidr {
	int family;       /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* network byte order; host bits clear; IPv4 in addr[0..3] */
	unsigned prefix;  /* 0..32 or 0..128 */
};

/* Parse "10.0.0.0/8", "1.2.3.4" (a /32), "fd00:ec2::254/128", "::/0" into
 * (out).  Refused, with a message naming the column: anything inet_pton
 * refuses, a prefix that is not plain decimal or too long, and host bits
 * set below the prefix ("10.0.0.1/8": the message suggests 10.0.0.0/8).
 * Returns 0, or -1 with (err) (VB_E_USAGE). */
int vb_cidr_parse(const char *text, struct vb_cidr *out, vb_error *err);

/* Whether (addr) (4 bytes for AF_INET, 16 for AF_INET6) lies in (c).  An
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d) is also tested as the IPv4
 * address it carries, so that a deny of 169.254.0.0/16 holds for
 * ::ffff:169.254.169.254 too.  Unknown families match nothing. */
bool vb_cidr_contains(const struct vb_cidr *c, int family, const uint8_t *addr);

/* "10.0.0.0/8", "fd00:ec2::254/128" into (buf) (VB_CIDR_STRLEN is enough);
 * returns (buf). */
char *vb_cidr_format(const struct vb_cidr *c, char *buf, size_t n);

/* A growable list of blocks, at most VB_CIDR_LIST_MAX.  Zero-initialise
 * (or use VB_CIDR_LIST_INIT); vb_cidr_list_free releases it. */
struct vb_cidr_list {
	struct vb_cidr *v;
	size_t n, cap;
};
#define VB_CIDR_LIST_INIT { NULL, 0, 0 }

/* Append a copy of (c).  -1 with (err) when the list is full or memory is
 * short. */
int vb_cidr_list_add(struct vb_cidr_list *l, const struct vb_cidr *c, vb_error *err);
/* vb_cidr_parse then vb_cidr_list_add. */
int vb_cidr_list_add_str(struct vb_cidr_list *l, const char *text, vb_error *err);
/* The first block of (l) that contains (addr), or NULL: the policy names
 * it as the rule in a net.denied event. */
const struct vb_cidr *vb_cidr_list_find(const struct vb_cidr_list *l, int family,
					const uint8_t *addr);
static inline bool vb_cidr_list_contains(const struct vb_cidr_list *l, int family,
					 const uint8_t *addr)
{
	return vb_cidr_list_find(l, family, addr) != NULL;
}
void vb_cidr_list_free(struct vb_cidr_list *l);

#endif
