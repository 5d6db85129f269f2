/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DNS messages (RFC 1035) for the policy's resolver (docs/network.md,
 * "Policy building blocks"): the guest's queries, the host resolver's
 * answers, and the refusals VoidBox writes itself.  Both sides are
 * untrusted; every read is bounds-checked, compression pointers must point
 * strictly backwards (so no loop) and at most VB_DNS_MAX_JUMPS of them are
 * followed per name.  Names come out lowercase without the trailing dot,
 * checked by vb_domain_normalize's rules (letters, digits, '-' and '_', no
 * label starting or ending with '-'); any other name is refused.  No I/O, no allocation.
 */
#ifndef VB_NET_DNS_H
#define VB_NET_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/domain.h"
#include "voidbox/error.h"

#define VB_DNS_HEADER 12
#define VB_DNS_MAX_ADDRS 32  /* addresses kept from one answer */
#define VB_DNS_MAX_CNAMES 8  /* CNAME hops followed from the asked name */
#define VB_DNS_MAX_JUMPS 16  /* compression pointers followed in one name */

enum {
	VB_DNS_TYPE_A = 1,
	VB_DNS_TYPE_CNAME = 5,
	VB_DNS_TYPE_AAAA = 28,
	VB_DNS_CLASS_IN = 1,
};

enum {
	VB_DNS_NOERROR = 0,
	VB_DNS_FORMERR = 1,
	VB_DNS_SERVFAIL = 2,
	VB_DNS_NXDOMAIN = 3,
	VB_DNS_NOTIMP = 4,
	VB_DNS_REFUSED = 5,
};

struct vb_dns_query {
	uint16_t id;
	uint16_t flags;            /* as sent; a reply copies the opcode and RD */
	bool has_question;         /* false: only the header was usable */
	char name[VB_DOMAIN_MAX];  /* the question's name; "" is the root */
	char asked[VB_DOMAIN_MAX]; /* the same in the case it was sent (replies echo it) */
	uint16_t qtype, qclass;
	/* When parsing failed: the rcode to answer with (VB_DNS_FORMERR,
	 * VB_DNS_NOTIMP), or -1 when nothing should be answered (shorter than
	 * a header, or a response rather than a query). */
	int reply_rcode;
};

/* Parse a query: a standard QUERY (opcode 0) with exactly one question.
 * Records after the question (e.g. an EDNS OPT) are not read.  Returns 0,
 * or -1 with (err) and q->reply_rcode saying how to answer: build that
 * reply with vb_dns_build_reply (q->has_question is false then). */
int vb_dns_parse_query(const uint8_t *msg, size_t len, struct vb_dns_query *q, vb_error *err);

struct vb_dns_addr {
	int family;       /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* 4 or 16 bytes, network byte order */
	uint32_t ttl;     /* seconds: the least TTL on the way (CNAMEs included) */
};

struct vb_dns_answer {
	uint16_t id;
	int rcode;
	bool truncated;                /* TC: the guest will retry over TCP */
	char name[VB_DOMAIN_MAX];      /* the question's name */
	uint16_t qtype;
	char canonical[VB_DOMAIN_MAX]; /* the end of the CNAME chain (= name if none) */
	unsigned ncname;               /* CNAME hops followed */
	size_t naddr;
	bool more;                     /* more than VB_DNS_MAX_ADDRS addresses: rest dropped */
	struct vb_dns_addr addr[VB_DNS_MAX_ADDRS];
};

/* Parse a response to (q) (NULL: to whatever it asked): the A and AAAA
 * records of the answer section that belong to the asked name, following
 * CNAMEs from it (at most VB_DNS_MAX_CNAMES hops; a longer chain or a loop
 * is refused).  Records of other names are ignored, so an answer cannot
 * speak for a name it was not asked about.  With (q): the id, the question
 * name, type and class must be the query's.  Returns 0, or -1 with (err). */
int vb_dns_parse_response(const uint8_t *msg, size_t len, const struct vb_dns_query *q,
			  struct vb_dns_answer *a, vb_error *err);

/* Write into (out) the reply to (q) with (rcode) and no records (an
 * NXDOMAIN or REFUSED refusal; with VB_DNS_NOERROR an empty "no such
 * record" answer): id, opcode and RD copied, QR and RA set, the question
 * echoed when q->has_question.  Returns the length, or -1 when (cap) is too
 * small or (rcode) is not 0..15. */
int vb_dns_build_reply(const struct vb_dns_query *q, int rcode, uint8_t *out, size_t cap);

#endif
