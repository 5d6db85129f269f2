/* SPDX-License-Identifier: Apache-2.0 */
/* DNS wire format: queries in, answers in, refusals out (dns.h). */
#include "net/dns.h"

#include <string.h>
#include <sys/socket.h>

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/*
 * Read the name at *off into (out) (lowercase, dotted, no trailing dot)
 * and, if (asis) is not NULL, into (asis) in the case it was written; move
 * *off past it where it sits (after its first pointer, if any).
 * Every pointer must point before where the labels it ends began (the
 * name's start, or the previous pointer's target), so each jump goes
 * strictly further back and no loop is possible; the jump count is a
 * second bound.
 */
static int read_name(const uint8_t *msg, size_t len, size_t *off, char out[VB_DOMAIN_MAX],
		     char *asis, vb_error *err)
{
	size_t pos = *off, base = *off, o = 0, end = 0;
	bool jumped = false;
	unsigned jumps = 0;
	for (;;) {
		if (pos >= len)
			return vb_error_set(err, VB_E_USAGE, "name runs past the end (offset %zu)", pos);
		uint8_t b = msg[pos];
		if ((b & 0xC0) == 0xC0) {
			if (pos + 1 >= len)
				return vb_error_set(err, VB_E_USAGE, "pointer cut at offset %zu", pos);
			size_t target = (size_t)get16(msg + pos) & 0x3FFF;
			if (target >= base)
				return vb_error_set(err, VB_E_USAGE, "compression pointer at offset %zu "
						    "points forwards or into its own name", pos);
			if (++jumps > VB_DNS_MAX_JUMPS)
				return vb_error_set(err, VB_E_USAGE, "more than %d compression pointers "
						    "in a name", VB_DNS_MAX_JUMPS);
			if (!jumped)
				end = pos + 2;
			jumped = true;
			pos = base = target;
			continue;
		}
		if (b & 0xC0)
			return vb_error_set(err, VB_E_USAGE, "unknown label type 0x%02x at offset %zu",
					    b, pos);
		if (b == 0) {
			if (!jumped)
				end = pos + 1;
			break;
		}
		if (pos + 1 + b > len)
			return vb_error_set(err, VB_E_USAGE, "label runs past the end (offset %zu)", pos);
		/* the text form: labels joined by dots, at most 253 characters */
		if (o + (o ? 1 : 0) + b > VB_DOMAIN_MAX - 1)
			return vb_error_set(err, VB_E_USAGE, "name longer than %d characters",
					    VB_DOMAIN_MAX - 1);
		if (msg[pos + 1] == '-' || msg[pos + b] == '-')
			return vb_error_set(err, VB_E_USAGE, "name label starts or ends with '-' "
					    "(offset %zu)", pos);
		if (o) {
			if (asis)
				asis[o] = '.';
			out[o++] = '.';
		}
		for (size_t i = 0; i < b; i++) {
			uint8_t c = msg[pos + 1 + i];
			if (!vb_domain_char_ok(c))
				return vb_error_set(err, VB_E_USAGE, "byte 0x%02x in a name label "
						    "(offset %zu)", c, pos + 1 + i);
			if (asis)
				asis[o] = (char)c;
			out[o++] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
		}
		pos += 1 + b;
	}
	out[o] = '\0';
	if (asis)
		asis[o] = '\0';
	*off = end;
	return 0;
}

int vb_dns_parse_query(const uint8_t *msg, size_t len, struct vb_dns_query *q, vb_error *err)
{
	memset(q, 0, sizeof(*q));
	q->reply_rcode = -1;
	if (!msg || len < VB_DNS_HEADER)
		return vb_error_set(err, VB_E_USAGE, "DNS query shorter than a header (%zu bytes)",
				    len);
	q->id = get16(msg);
	q->flags = get16(msg + 2);
	if (q->flags & 0x8000)
		return vb_error_set(err, VB_E_USAGE, "a DNS response where a query was expected");
	q->reply_rcode = VB_DNS_FORMERR;
	unsigned opcode = (q->flags >> 11) & 0xF;
	if (opcode != 0) {
		q->reply_rcode = VB_DNS_NOTIMP;
		return vb_error_set(err, VB_E_USAGE, "DNS opcode %u (only QUERY is answered)",
				    opcode);
	}
	uint16_t qd = get16(msg + 4);
	if (qd != 1)
		return vb_error_set(err, VB_E_USAGE, "DNS query with %u questions (expected 1)",
				    qd);
	size_t off = VB_DNS_HEADER;
	if (read_name(msg, len, &off, q->name, q->asked, err) < 0) {
		vb_error_prefix(err, "DNS query");
		q->name[0] = q->asked[0] = '\0';
		return -1;
	}
	if (off + 4 > len)
		return vb_error_set(err, VB_E_USAGE, "DNS question cut after its name");
	q->qtype = get16(msg + off);
	q->qclass = get16(msg + off + 2);
	q->has_question = true;
	q->reply_rcode = 0;
	return 0;
}

/* One resource record of the answer section, bounds already checked. */
struct rr {
	char owner[VB_DOMAIN_MAX];
	uint16_t type, class;
	uint32_t ttl;
	size_t rdata, rdlen; /* offset and length in the message */
};

/* Read the record at *off and move past it. */
static int read_rr(const uint8_t *msg, size_t len, size_t *off, struct rr *r, vb_error *err)
{
	if (read_name(msg, len, off, r->owner, NULL, err) < 0)
		return -1;
	if (*off + 10 > len)
		return vb_error_set(err, VB_E_USAGE, "record cut after its name (offset %zu)", *off);
	const uint8_t *p = msg + *off;
	r->type = get16(p);
	r->class = get16(p + 2);
	r->ttl = get32(p + 4);
	if (r->ttl > 0x7FFFFFFF) /* RFC 2181 8: such a TTL means zero */
		r->ttl = 0;
	r->rdlen = get16(p + 8);
	r->rdata = *off + 10;
	if (r->rdata + r->rdlen > len)
		return vb_error_set(err, VB_E_USAGE, "record data runs past the end (offset %zu)",
				    r->rdata);
	*off = r->rdata + r->rdlen;
	return 0;
}

/* Walk the (n) answer records from (start); for each, call (fn) (if any)
 * until it returns nonzero.  Returns -1 on a malformed record, else 0. */
typedef int (*rr_fn)(const uint8_t *msg, size_t len, const struct rr *r, void *ctx,
		     vb_error *err);
static int walk(const uint8_t *msg, size_t len, size_t start, unsigned n, rr_fn fn, void *ctx,
		vb_error *err)
{
	size_t off = start;
	for (unsigned i = 0; i < n; i++) {
		struct rr r;
		if (read_rr(msg, len, &off, &r, err) < 0)
			return -1;
		int rc = fn ? fn(msg, len, &r, ctx, err) : 0;
		if (rc < 0)
			return -1;
		if (rc > 0)
			break;
	}
	return 0;
}

struct chain {
	char names[VB_DNS_MAX_CNAMES + 1][VB_DOMAIN_MAX];
	uint32_t min_ttl[VB_DNS_MAX_CNAMES + 1]; /* least CNAME TTL on the way to names[i] */
	unsigned n;
	bool found;
	struct vb_dns_answer *a;
};

/* The CNAME whose owner is the chain's last name, if any. */
static int find_cname(const uint8_t *msg, size_t len, const struct rr *r, void *ctx,
		      vb_error *err)
{
	(void)len;
	struct chain *c = ctx;
	if (r->type != VB_DNS_TYPE_CNAME || r->class != VB_DNS_CLASS_IN ||
	    strcmp(r->owner, c->names[c->n - 1]) != 0)
		return 0;
	char target[VB_DOMAIN_MAX];
	size_t off = r->rdata;
	if (read_name(msg, r->rdata + r->rdlen, &off, target, NULL, err) < 0)
		return -1;
	if (off != r->rdata + r->rdlen)
		return vb_error_set(err, VB_E_USAGE, "CNAME data longer than its name");
	for (unsigned i = 0; i < c->n; i++)
		if (strcmp(c->names[i], target) == 0)
			return vb_error_set(err, VB_E_USAGE, "CNAME loop at '%s'", target);
	if (c->n > VB_DNS_MAX_CNAMES)
		return vb_error_set(err, VB_E_USAGE, "CNAME chain longer than %d",
				    VB_DNS_MAX_CNAMES);
	uint32_t ttl = c->min_ttl[c->n - 1];
	c->min_ttl[c->n] = r->ttl < ttl ? r->ttl : ttl;
	memcpy(c->names[c->n++], target, VB_DOMAIN_MAX);
	c->found = true;
	return 1;
}

static int take_addr(const uint8_t *msg, size_t len, const struct rr *r, void *ctx, vb_error *err)
{
	(void)len;
	struct chain *c = ctx;
	struct vb_dns_answer *a = c->a;
	size_t want;
	int family;
	if (r->type == VB_DNS_TYPE_A)
		want = 4, family = AF_INET;
	else if (r->type == VB_DNS_TYPE_AAAA)
		want = 16, family = AF_INET6;
	else
		return 0;
	if (r->class != VB_DNS_CLASS_IN)
		return 0;
	if (r->rdlen != want)
		return vb_error_set(err, VB_E_USAGE, "%s record of %zu bytes",
				    family == AF_INET ? "A" : "AAAA", r->rdlen);
	unsigned i = 0;
	while (i < c->n && strcmp(c->names[i], r->owner) != 0)
		i++;
	if (i == c->n)
		return 0; /* not about the asked name */
	if (a->naddr == VB_DNS_MAX_ADDRS) {
		a->more = true;
		return 0;
	}
	struct vb_dns_addr *d = &a->addr[a->naddr++];
	memset(d, 0, sizeof(*d));
	d->family = family;
	memcpy(d->addr, msg + r->rdata, want);
	d->ttl = r->ttl < c->min_ttl[i] ? r->ttl : c->min_ttl[i];
	return 0;
}

int vb_dns_parse_response(const uint8_t *msg, size_t len, const struct vb_dns_query *q,
			  struct vb_dns_answer *a, vb_error *err)
{
	memset(a, 0, sizeof(*a));
	if (!msg || len < VB_DNS_HEADER)
		return vb_error_set(err, VB_E_USAGE, "DNS response shorter than a header (%zu "
				    "bytes)", len);
	uint16_t flags = get16(msg + 2);
	a->id = get16(msg);
	a->rcode = flags & 0xF;
	a->truncated = flags & 0x0200;
	if (!(flags & 0x8000))
		return vb_error_set(err, VB_E_USAGE, "a DNS query where a response was expected");
	if (q && a->id != q->id)
		return vb_error_set(err, VB_E_USAGE, "DNS response id %u does not match the "
				    "query's %u", a->id, q->id);
	uint16_t qd = get16(msg + 4), an = get16(msg + 6);
	if (qd != 1)
		return vb_error_set(err, VB_E_USAGE, "DNS response with %u questions (expected 1)",
				    qd);
	size_t off = VB_DNS_HEADER;
	if (read_name(msg, len, &off, a->name, NULL, err) < 0) {
		vb_error_prefix(err, "DNS response question");
		return -1;
	}
	if (off + 4 > len)
		return vb_error_set(err, VB_E_USAGE, "DNS response question cut after its name");
	a->qtype = get16(msg + off);
	uint16_t qclass = get16(msg + off + 2);
	off += 4;
	if (q && (strcmp(a->name, q->name) != 0 || a->qtype != q->qtype || qclass != q->qclass))
		return vb_error_set(err, VB_E_USAGE, "DNS response is about another question");
	/* first check every answer record, so the walks below cannot fail halfway */
	if (walk(msg, len, off, an, NULL, NULL, err) < 0) {
		vb_error_prefix(err, "DNS answer");
		return -1;
	}
	static const struct chain zero;
	struct chain c = zero;
	memcpy(c.names[0], a->name, VB_DOMAIN_MAX);
	c.min_ttl[0] = UINT32_MAX;
	c.n = 1;
	c.a = a;
	do {
		c.found = false;
		if (walk(msg, len, off, an, find_cname, &c, err) < 0) {
			vb_error_prefix(err, "DNS answer for '%s'", a->name);
			return -1;
		}
	} while (c.found);
	a->ncname = c.n - 1;
	memcpy(a->canonical, c.names[c.n - 1], VB_DOMAIN_MAX);
	if (walk(msg, len, off, an, take_addr, &c, err) < 0) {
		vb_error_prefix(err, "DNS answer for '%s'", a->name);
		return -1;
	}
	return 0;
}

int vb_dns_build_reply(const struct vb_dns_query *q, int rcode, uint8_t *out, size_t cap)
{
	if (!q || !out || rcode < 0 || rcode > 15 || cap < VB_DNS_HEADER)
		return -1;
	/* QR, the query's opcode and RD, RA; then the rcode */
	uint16_t flags = (uint16_t)(0x8000 | (q->flags & 0x7900) | 0x0080 | rcode);
	memset(out, 0, VB_DNS_HEADER);
	put16(out, q->id);
	put16(out + 2, flags);
	size_t o = VB_DNS_HEADER;
	if (!q->has_question)
		return (int)o;
	put16(out + 4, 1);
	/* the name as the guest wrote it: a resolver that randomises the case
	 * of its queries (DNS 0x20) checks that the answer kept it */
	const char *s = q->asked[0] ? q->asked : q->name;
	while (*s) {
		size_t n = strcspn(s, ".");
		if (n == 0 || n > 63 || o + 1 + n > cap)
			return -1;
		out[o++] = (uint8_t)n;
		memcpy(out + o, s, n);
		o += n;
		s += n;
		if (*s == '.')
			s++;
	}
	if (o + 5 > cap)
		return -1;
	out[o++] = 0;
	put16(out + o, q->qtype);
	put16(out + o + 2, q->qclass);
	return (int)(o + 4);
}
