/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Learn mode's recorder (learn.h).  What the guest reached is kept in
 * small fixed tables; the draft is written from them sorted, so the same
 * stage gives the same draft however its flows interleaved.
 */
#include "net/learn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/cidr.h"

struct port {
	uint8_t proto;
	uint16_t port;
};

struct dest {
	char name[VB_DOMAIN_MAX]; /* names; "" for an address */
	int family;
	uint8_t addr[16];
	bool connected;           /* names: a flow went there (else only resolved) */
	size_t nports;
	bool more_ports;
	struct port ports[VB_LEARN_PORTS];
};

struct vb_learn {
	struct vb_nametab *resolved;
	struct dest names[VB_LEARN_MAX], addrs[VB_LEARN_MAX];
	size_t nnames, naddrs;
	unsigned long dropped_names, dropped_addrs;
	uint8_t host_tcp[65536 / 8], host_udp[65536 / 8];
};

struct vb_learn *vb_learn_new(void)
{
	struct vb_learn *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->resolved = vb_nametab_new(4 * VB_LEARN_MAX);
	if (!l->resolved) {
		free(l);
		return NULL;
	}
	return l;
}

void vb_learn_free(struct vb_learn *l)
{
	if (!l)
		return;
	vb_nametab_free(l->resolved);
	free(l);
}

static void add_port(struct dest *d, int proto, uint16_t port)
{
	for (size_t i = 0; i < d->nports; i++)
		if (d->ports[i].proto == proto && d->ports[i].port == port)
			return;
	if (d->nports == VB_LEARN_PORTS) {
		d->more_ports = true;
		return;
	}
	d->ports[d->nports++] = (struct port){ .proto = (uint8_t)proto, .port = port };
}

/* The entry for (name) (normalised), made if new; NULL when full. */
static struct dest *name_entry(struct vb_learn *l, const char *name)
{
	for (size_t i = 0; i < l->nnames; i++)
		if (strcmp(l->names[i].name, name) == 0)
			return &l->names[i];
	if (l->nnames == VB_LEARN_MAX) {
		l->dropped_names++;
		return NULL;
	}
	struct dest *d = &l->names[l->nnames++];
	memset(d, 0, sizeof(*d));
	memcpy(d->name, name, VB_DOMAIN_MAX);
	return d;
}

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF };

static struct dest *addr_entry(struct vb_learn *l, int family, const uint8_t *addr)
{
	uint8_t a[16] = { 0 };
	if (family == AF_INET6 && memcmp(addr, v4mapped, 12) == 0)
		family = AF_INET, addr += 12;
	memcpy(a, addr, family == AF_INET ? 4 : 16);
	for (size_t i = 0; i < l->naddrs; i++)
		if (l->addrs[i].family == family && memcmp(l->addrs[i].addr, a, 16) == 0)
			return &l->addrs[i];
	if (l->naddrs == VB_LEARN_MAX) {
		l->dropped_addrs++;
		return NULL;
	}
	struct dest *d = &l->addrs[l->naddrs++];
	memset(d, 0, sizeof(*d));
	d->family = family;
	memcpy(d->addr, a, 16);
	return d;
}

void vb_learn_dns(struct vb_learn *l, const char *name, const struct vb_dns_addr *addrs,
		  size_t n, int64_t now_ms)
{
	char norm[VB_DOMAIN_MAX];
	if (!l || vb_domain_normalize(name, norm, NULL) < 0)
		return;
	if (!name_entry(l, norm))
		return;
	for (size_t i = 0; i < n; i++)
		vb_nametab_add(l->resolved, norm, addrs[i].family, addrs[i].addr, addrs[i].ttl,
			       now_ms);
}

void vb_learn_flow(struct vb_learn *l, int proto, int family, const uint8_t *addr,
		   uint16_t port, const char *name, int64_t now_ms)
{
	(void)now_ms; /* learn mode credits a name however old its answer */
	char norm[VB_DOMAIN_MAX];
	if (!l || !addr || (family != AF_INET && family != AF_INET6))
		return;
	if (name && vb_domain_normalize(name, norm, NULL) == 0) {
		struct dest *d = name_entry(l, norm);
		if (d) {
			d->connected = true;
			add_port(d, proto, port);
		}
		return;
	}
	const char *names[16];
	size_t n = vb_nametab_names(l->resolved, family, addr, INT64_MIN, names, 16);
	if (n > 16)
		n = 16;
	for (size_t i = 0; i < n; i++) {
		struct dest *d = name_entry(l, names[i]);
		if (d) {
			d->connected = true;
			add_port(d, proto, port);
		}
	}
	if (n == 0) {
		struct dest *d = addr_entry(l, family, addr);
		if (d)
			add_port(d, proto, port);
	}
}

void vb_learn_host_port(struct vb_learn *l, int proto, uint16_t port)
{
	if (!l)
		return;
	uint8_t *map = proto == IPPROTO_UDP ? l->host_udp : l->host_tcp;
	map[port / 8] |= (uint8_t)(1u << (port % 8));
}

/* ---- the draft ---- */

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct dest *)a)->name, ((const struct dest *)b)->name);
}

static int cmp_addr(const void *a, const void *b)
{
	const struct dest *x = a, *y = b;
	if (x->family != y->family)
		return x->family == AF_INET ? -1 : 1;
	return memcmp(x->addr, y->addr, 16);
}

static int cmp_port(const void *a, const void *b)
{
	const struct port *x = a, *y = b;
	if (x->proto != y->proto) /* tcp (6) before udp (17) */
		return (int)x->proto - (int)y->proto;
	return (int)x->port - (int)y->port;
}

static bool in_list(const char *const *cidrs, int family, const uint8_t *addr)
{
	for (size_t i = 0; cidrs[i]; i++) {
		struct vb_cidr c;
		if (vb_cidr_parse(cidrs[i], &c, NULL) == 0 && vb_cidr_contains(&c, family, addr))
			return true;
	}
	return false;
}

/* What no policy opens (the built-in denies that `allow` does not lift). */
static const char *const never[] = { "169.254.0.0/16", "100.100.100.200/32",
				     "fd00:ec2::254/128", "fe80::/10", "127.0.0.0/8", "::1/128",
				     "0.0.0.0/8", NULL };
/* What needs allow_private. */
static const char *const private_ranges[] = { "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
					      "fc00::/7", NULL };

/* A double-quoted YAML scalar; anything but printable ASCII is escaped
 * (names are host names already: this is the second line of defence). */
static void quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7F)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void port_comment(FILE *f, const struct dest *d)
{
	struct port p[VB_LEARN_PORTS];
	memcpy(p, d->ports, d->nports * sizeof(*p));
	qsort(p, d->nports, sizeof(*p), cmp_port);
	for (size_t i = 0; i < d->nports; i++)
		fprintf(f, "%s%s/%u", i ? ", " : "  # ", p[i].proto == IPPROTO_UDP ? "udp" : "tcp",
			p[i].port);
	if (d->more_ports)
		fputs(", ...", f);
}

static size_t ports_of(const uint8_t *map, uint16_t *out)
{
	size_t n = 0;
	for (unsigned p = 1; p < 65536; p++)
		if (map[p / 8] & (1u << (p % 8)))
			out[n++] = (uint16_t)p;
	return n;
}

char *vb_learn_yaml(const struct vb_learn *l, unsigned indent, vb_error *err)
{
	if (!l) {
		vb_error_set(err, VB_E_RUNTIME, "no learn-mode record");
		return NULL;
	}
	if (indent > 64)
		indent = 64;
	struct dest *names = malloc(sizeof(l->names)), *addrs = malloc(sizeof(l->addrs));
	uint16_t *ports = malloc(65536 * sizeof(*ports));
	char *buf = NULL;
	size_t size = 0;
	FILE *f = names && addrs && ports ? open_memstream(&buf, &size) : NULL;
	if (!f) {
		free(names), free(addrs), free(ports);
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	memcpy(names, l->names, l->nnames * sizeof(*names));
	memcpy(addrs, l->addrs, l->naddrs * sizeof(*addrs));
	qsort(names, l->nnames, sizeof(*names), cmp_name);
	qsort(addrs, l->naddrs, sizeof(*addrs), cmp_addr);
	int in = (int)indent; /* "%*s", in, "": the indent */
	bool any = false, priv = false;

	fprintf(f, "%*snetwork_policy:\n", in, "");
	size_t nconn = 0, nres = 0;
	for (size_t i = 0; i < l->nnames; i++) {
		if (names[i].connected)
			nconn++;
		else
			nres++;
	}
	if (nconn) {
		any = true;
		fprintf(f, "%*s  allow_domains:\n", in, "");
		for (size_t i = 0; i < l->nnames; i++) {
			if (!names[i].connected)
				continue;
			fprintf(f, "%*s    - ", in, "");
			quoted(f, names[i].name);
			port_comment(f, &names[i]);
			fputc('\n', f);
		}
	}
	size_t nallow = 0;
	for (size_t i = 0; i < l->naddrs; i++)
		if (!in_list(never, addrs[i].family, addrs[i].addr))
			nallow++;
	if (nallow) {
		any = true;
		fprintf(f, "%*s  allow:\n", in, "");
		for (size_t i = 0; i < l->naddrs; i++) {
			const struct dest *d = &addrs[i];
			if (in_list(never, d->family, d->addr))
				continue;
			struct vb_cidr c = { .family = d->family,
					     .prefix = d->family == AF_INET ? 32 : 128 };
			char s[VB_CIDR_STRLEN];
			memcpy(c.addr, d->addr, 16);
			fprintf(f, "%*s    - ", in, "");
			quoted(f, vb_cidr_format(&c, s, sizeof(s)));
			port_comment(f, d);
			fputc('\n', f);
			priv = priv || in_list(private_ranges, d->family, d->addr);
		}
	}
	if (priv)
		fprintf(f, "%*s  allow_private: true\n", in, "");
	size_t np = ports_of(l->host_tcp, ports);
	if (np) {
		fprintf(f, "%*s  host_ports: [", in, "");
		for (size_t i = 0; i < np; i++)
			fprintf(f, "%s%u", i ? ", " : "", ports[i]);
		fputs("]\n", f);
	}
	if (!any)
		fprintf(f, "%*s  allow: []  # nothing was reached: deny all but DNS\n", in, "");
	/* what the draft leaves out, said once each so that nothing is silently lost */
	np = ports_of(l->host_udp, ports);
	if (np) {
		fprintf(f, "%*s  # host UDP ports reached (host_ports opens TCP only):", in, "");
		for (size_t i = 0; i < np; i++)
			fprintf(f, " %u", ports[i]);
		fputc('\n', f);
	}
	for (size_t i = 0; i < l->naddrs; i++) {
		const struct dest *d = &addrs[i];
		char a[INET6_ADDRSTRLEN];
		if (!in_list(never, d->family, d->addr))
			continue;
		inet_ntop(d->family, d->addr, a, sizeof(a));
		fprintf(f, "%*s  # refused whatever the policy: %s", in, "", a);
		port_comment(f, d);
		fputc('\n', f);
	}
	if (nres) {
		fprintf(f, "%*s  # resolved, never connected to:", in, "");
		for (size_t i = 0; i < l->nnames; i++)
			if (!names[i].connected)
				fprintf(f, " %s", names[i].name);
		fputc('\n', f);
	}
	if (l->dropped_names || l->dropped_addrs)
		fprintf(f, "%*s  # incomplete: %lu sightings of names and %lu of addresses "
			"beyond the first %d of each were not recorded\n", in, "", l->dropped_names,
			l->dropped_addrs, VB_LEARN_MAX);
	bool bad = ferror(f);
	fclose(f);
	free(names), free(addrs), free(ports);
	if (bad) {
		free(buf);
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	return buf;
}
