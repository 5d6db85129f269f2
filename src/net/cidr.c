/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CIDR parsing and matching (cidr.h).  The parse is strict on purpose: a
 * spec is the place where "what is this address?" must have one answer, so
 * only inet_pton's spellings are accepted (no 0xA9FEA9FE or 2852039166).
 */
#include "net/cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Whether the bits of (a) beyond (prefix) are all clear. */
static bool host_bits_clear(const uint8_t *a, unsigned prefix, unsigned bits)
{
	for (unsigned i = prefix; i < bits; i++)
		if (a[i / 8] & (0x80u >> (i % 8)))
			return false;
	return true;
}

static void clear_host_bits(uint8_t *a, unsigned prefix, unsigned bits)
{
	for (unsigned i = prefix; i < bits; i++)
		a[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
}

int vb_cidr_parse(const char *text, struct vb_cidr *out, vb_error *err)
{
	if (!text || !*text)
		return vb_error_set(err, VB_E_USAGE, "empty CIDR (expected e.g. 10.0.0.0/8)");
	char buf[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	if (alen == 0)
		return vb_error_set(err, VB_E_USAGE, "'%.60s': no address before '/' (column 1)",
				    text);
	if (alen >= sizeof(buf))
		return vb_error_set(err, VB_E_USAGE,
				    "'%.60s...': address too long to be IPv4 or IPv6", text);
	memcpy(buf, text, alen);
	buf[alen] = '\0';

	struct vb_cidr c = { 0 };
	unsigned max;
	if (inet_pton(AF_INET, buf, c.addr) == 1) {
		c.family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c.addr) == 1) {
		c.family = AF_INET6;
		max = 128;
	} else {
		/* Point at the first character neither family can use. */
		size_t bad = strspn(buf, "0123456789abcdefABCDEF.:");
		if (bad < alen)
			return vb_error_set(err, VB_E_USAGE,
					    "'%.60s': unexpected character at column %zu "
					    "(expected e.g. 10.0.0.0/8 or fd00::/8)",
					    text, bad + 1);
		return vb_error_set(err, VB_E_USAGE,
				    "'%.60s': '%s' is not an IPv4 (dotted a.b.c.d) or IPv6 address",
				    text, buf);
	}
	c.prefix = max;
	if (slash) {
		const char *d = slash + 1;
		size_t nd = strlen(d), ok = strspn(d, "0123456789");
		size_t col = alen + 2;
		if (nd == 0)
			return vb_error_set(err, VB_E_USAGE, "'%.60s': no prefix length after '/' "
					    "(column %zu)", text, col);
		if (ok < nd)
			return vb_error_set(err, VB_E_USAGE, "'%.60s': unexpected character at "
					    "column %zu (the prefix length is decimal)", text, col + ok);
		if (nd > 1 && d[0] == '0')
			return vb_error_set(err, VB_E_USAGE, "'%.60s': leading zero in the prefix "
					    "length (column %zu)", text, col);
		if (nd > 3 || (unsigned)atoi(d) > max)
			return vb_error_set(err, VB_E_USAGE, "'%.60s': prefix length %.8s is more "
					    "than %u (column %zu)", text, d, max, col);
		c.prefix = (unsigned)atoi(d);
	}
	if (!host_bits_clear(c.addr, c.prefix, max)) {
		struct vb_cidr net = c;
		char s[VB_CIDR_STRLEN];
		clear_host_bits(net.addr, net.prefix, max);
		return vb_error_set(err, VB_E_USAGE, "'%.60s' has host bits set (did you mean '%s'?)",
				    text, vb_cidr_format(&net, s, sizeof(s)));
	}
	*out = c;
	return 0;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned whole = prefix / 8, rest = prefix % 8;
	if (memcmp(a, b, whole) != 0)
		return false;
	if (!rest)
		return true;
	uint8_t mask = (uint8_t)(0xFFu << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF };

bool vb_cidr_contains(const struct vb_cidr *c, int family, const uint8_t *addr)
{
	if (!c || !addr)
		return false;
	if (family == AF_INET6 && c->family == AF_INET && memcmp(addr, v4mapped, 12) == 0)
		return prefix_equal(c->addr, addr + 12, c->prefix);
	if (family != c->family || (family != AF_INET && family != AF_INET6))
		return false;
	return prefix_equal(c->addr, addr, c->prefix);
}

char *vb_cidr_format(const struct vb_cidr *c, char *buf, size_t n)
{
	char a[INET6_ADDRSTRLEN];
	if (!n)
		return buf;
	if (!inet_ntop(c->family, c->addr, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	snprintf(buf, n, "%s/%u", a, c->prefix);
	return buf;
}

int vb_cidr_list_add(struct vb_cidr_list *l, const struct vb_cidr *c, vb_error *err)
{
	if (l->n >= VB_CIDR_LIST_MAX)
		return vb_error_set(err, VB_E_USAGE, "more than %d CIDRs in one list",
				    VB_CIDR_LIST_MAX);
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		if (cap > VB_CIDR_LIST_MAX)
			cap = VB_CIDR_LIST_MAX;
		struct vb_cidr *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *c;
	return 0;
}

int vb_cidr_list_add_str(struct vb_cidr_list *l, const char *text, vb_error *err)
{
	struct vb_cidr c;
	if (vb_cidr_parse(text, &c, err) < 0)
		return -1;
	return vb_cidr_list_add(l, &c, err);
}

const struct vb_cidr *vb_cidr_list_find(const struct vb_cidr_list *l, int family,
					const uint8_t *addr)
{
	for (size_t i = 0; l && i < l->n; i++)
		if (vb_cidr_contains(&l->v[i], family, addr))
			return &l->v[i];
	return NULL;
}

void vb_cidr_list_free(struct vb_cidr_list *l)
{
	if (!l)
		return;
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}
