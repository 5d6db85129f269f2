/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The egress policy and TCP connection tracking (filter.h).
 *
 * Decisions are made per frame, on the destination the guest wrote in it;
 * only TCP has state (for the caps, and so that the guest's answers on a
 * port-forwarded connection pass).  IPv4 fragments are refused whatever
 * their destination: a non-first fragment carries no ports, and libslirp
 * reassembles before it looks at them, so overlapping fragments could
 * rewrite the ports of a first fragment we allowed.  Guests set DF on TCP
 * and the MTU is 1500, so nothing legitimate needs them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/filter.h"
#include "net/frame.h"
#include "net/sni.h"
#include "util/util.h"

#define DEFAULT_MAX_CONN 64u
#define DEFAULT_CONN_PER_SEC 50u
#define INBOUND_RESERVE 256u /* port-forward connections tracked on top */
#define SYN_IDLE_MS 30000
#define OPEN_IDLE_MS (2 * 3600 * 1000)
#define CLOSING_MS 10000
#define MAX_RULES 256u
#define MAX_HOLDS 64u /* connections held for their server name at once (~36 KiB each) */

struct rule {
	uint32_t net, mask;
	const char *name;
	int user; /* from the spec (text kept for describe) */
};

enum flow_state { FLOW_FREE = 0, FLOW_SYN, FLOW_OPEN, FLOW_CLOSING };

/* The start of a connection held until its TLS server name is known. */
struct hold {
	uint8_t stream[VB_SNI_MAX_BYTES]; /* the guest's first bytes, in order */
	size_t stream_len;
	struct vb_net_held frames;       /* the frames that carried them */
	size_t cap;
};

struct flow {
	uint8_t state, inbound, fin_guest, fin_net;
	uint8_t sni;                     /* 1: allowed by a name, server name not yet seen */
	uint16_t gport, rport;
	uint32_t raddr;
	uint32_t data_seq;               /* sni: the sequence number of the next byte expected */
	uint32_t first_seq;              /* sni: of the first data byte */
	struct hold *hold;
	int64_t last;
};

struct vb_net_filter {
	struct rule deny[MAX_RULES], allow[MAX_RULES];
	size_t n_deny, n_allow;
	int allow_set, allow_private;
	int learn;
	uint8_t host_port[65536 / 8];
	unsigned max_conn, conn_per_sec;
	struct flow *flows;
	size_t n_flows;
	unsigned open_out, open_in;
	int64_t rate_sec;
	unsigned rate_count;
	int64_t last_sweep;
	struct vb_net_names names;       /* domain mode when names.resolved */
	struct hold *released;           /* handed out by the last RELEASE */
	unsigned n_holds;
};

static uint32_t mask_of(unsigned prefix)
{
	return prefix == 0 ? 0 : prefix >= 32 ? 0xffffffffu : ~0u << (32 - prefix);
}

static int in_rule(const struct rule *r, uint32_t a)
{
	return (a & r->mask) == r->net;
}

static const struct rule builtin[] = {
	{ VB_NET_ADDR(0, 0, 0, 0), 0xff000000u, "reserved", 0 },
	{ VB_NET_ADDR(127, 0, 0, 0), 0xff000000u, "host-loopback", 0 },
	{ VB_NET_ADDR(169, 254, 0, 0), 0xffff0000u, "cloud-metadata", 0 },
	{ VB_NET_ADDR(100, 100, 100, 200), 0xffffffffu, "cloud-metadata", 0 },
	{ VB_NET_ADDR(224, 0, 0, 0), 0xf0000000u, "multicast", 0 },
	{ VB_NET_ADDR(240, 0, 0, 0), 0xf0000000u, "reserved", 0 },
};

static const struct rule private_ranges[] = {
	{ VB_NET_ADDR(10, 0, 0, 0), 0xff000000u, "private", 0 },
	{ VB_NET_ADDR(172, 16, 0, 0), 0xfff00000u, "private", 0 },
	{ VB_NET_ADDR(192, 168, 0, 0), 0xffff0000u, "private", 0 },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int add_rule(struct rule *tab, size_t *n, uint32_t addr, unsigned prefix, const char *name,
		    int user)
{
	if (*n >= MAX_RULES || prefix > 32)
		return -1;
	uint32_t m = mask_of(prefix);
	tab[(*n)++] = (struct rule){ addr & m, m, name, user };
	return 0;
}

struct vb_net_filter *vb_net_filter_new(const struct vb_network *cfg, vb_error *err)
{
	unsigned max = cfg->max_connections ? cfg->max_connections : DEFAULT_MAX_CONN;
	unsigned cps = cfg->connections_per_sec ? cfg->connections_per_sec : DEFAULT_CONN_PER_SEC;
	if (max > VB_NET_MAX_CONNECTIONS) {
		vb_error_set(err, VB_E_USAGE, "max_connections: at most %u", VB_NET_MAX_CONNECTIONS);
		return NULL;
	}
	if (cfg->n_deny + 8 > MAX_RULES || cfg->n_allow > MAX_RULES) {
		vb_error_set(err, VB_E_USAGE, "at most %u deny and allow entries", MAX_RULES - 8);
		return NULL;
	}
	struct vb_net_filter *fl = calloc(1, sizeof(*fl));
	if (!fl || !(fl->flows = calloc(max + INBOUND_RESERVE, sizeof(*fl->flows)))) {
		free(fl);
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	fl->n_flows = max + INBOUND_RESERVE;
	fl->max_conn = max;
	fl->conn_per_sec = cps;
	fl->allow_private = cfg->allow_private;
	fl->allow_set = cfg->allow_set;
	fl->learn = cfg->learn;
	fl->rate_sec = -1;
	for (size_t i = 0; i < cfg->n_host_ports; i++)
		if (cfg->host_ports[i] >= 1 && cfg->host_ports[i] <= 65535)
			fl->host_port[cfg->host_ports[i] / 8] |= (uint8_t)(1u << (cfg->host_ports[i] % 8));
	/* IPv6 entries cannot match anything: the guest has no IPv6 */
	for (size_t i = 0; i < cfg->n_deny; i++)
		if (cfg->deny[i].family == AF_INET) {
			uint32_t a;
			memcpy(&a, cfg->deny[i].addr, 4);
			add_rule(fl->deny, &fl->n_deny, ntohl(a), cfg->deny[i].prefix, "deny", 1);
		}
	for (size_t i = 0; i < cfg->n_allow; i++)
		if (cfg->allow[i].family == AF_INET) {
			uint32_t a;
			memcpy(&a, cfg->allow[i].addr, 4);
			add_rule(fl->allow, &fl->n_allow, ntohl(a), cfg->allow[i].prefix, "allow", 1);
		}
	return fl;
}

static void hold_free(struct hold *h)
{
	if (h)
		free(h->frames.data);
	free(h);
}

void vb_net_filter_free(struct vb_net_filter *fl)
{
	if (!fl)
		return;
	for (size_t i = 0; i < fl->n_flows; i++)
		hold_free(fl->flows[i].hold);
	hold_free(fl->released);
	free(fl->flows);
	free(fl);
}

int vb_net_filter_deny(struct vb_net_filter *fl, uint32_t addr, unsigned prefix, const char *rule)
{
	return add_rule(fl->deny, &fl->n_deny, addr, prefix, rule, 0);
}

void vb_net_filter_set_names(struct vb_net_filter *fl, const struct vb_net_names *names)
{
	fl->names = *names;
}

static int host_port_declared(const struct vb_net_filter *fl, unsigned port)
{
	return port < 65536 && (fl->host_port[port / 8] >> (port % 8) & 1);
}

/* The rules a network_policy can open: learn mode lets them through. */
static int policy_could_open(const char *rule, uint8_t proto, uint32_t dst)
{
	if (!strcmp(rule, "host-loopback"))
		return dst == VB_NET_GATEWAY && proto == VB_IPPROTO_TCP;
	return !strcmp(rule, "deny") || !strcmp(rule, "not-allowed") || !strcmp(rule, "private");
}

static const char *rules(const struct vb_net_filter *fl, uint8_t proto, uint32_t dst, long port,
			 uint8_t icmp_type, int *host_port, int *by_name, int64_t now);

/* NULL if (proto, dst, port) may be reached, else the refusing rule's name.
 * (port) < 0: not known (a fragment).  In learn mode (*learned) says that
 * a rule a policy could open was overlooked. */
static const char *policy(const struct vb_net_filter *fl, uint8_t proto, uint32_t dst, long port,
			  uint8_t icmp_type, int *host_port, int *learned, int *by_name, int64_t now)
{
	*by_name = 0;
	const char *rule = rules(fl, proto, dst, port, icmp_type, host_port, by_name, now);
	*learned = 0;
	if (rule && fl->learn && port > 0 && policy_could_open(rule, proto, dst)) {
		*host_port = 0;
		*learned = 1;
		return NULL;
	}
	return rule;
}

static const char *rules(const struct vb_net_filter *fl, uint8_t proto, uint32_t dst, long port,
			 uint8_t icmp_type, int *host_port, int *by_name, int64_t now)
{
	*host_port = 0;
	int echo = proto == VB_IPPROTO_ICMP && icmp_type == 8;
	if (dst == VB_NET_GATEWAY) {
		/* libslirp turns 10.0.2.2 into the host's 127.0.0.1 */
		if (echo) /* answered by libslirp itself */
			return NULL;
		if (proto == VB_IPPROTO_TCP && port >= 0 && host_port_declared(fl, (unsigned)port))
			return NULL;
		*host_port = proto == VB_IPPROTO_TCP && port > 0;
		return "host-loopback";
	}
	if (dst == VB_NET_DNS) {
		/* in domain mode the caller answers UDP queries itself; TCP
		 * would go around it to libslirp's forwarder */
		if (echo || (proto == VB_IPPROTO_UDP && port == 53) ||
		    (proto == VB_IPPROTO_TCP && port == 53 && !fl->names.resolved))
			return NULL;
		return "dns-only";
	}
	if ((dst & 0xffffff00u) == VB_NET_NETWORK)
		return "voidbox-net";
	for (size_t i = 0; i < N(builtin); i++)
		if (in_rule(&builtin[i], dst))
			return builtin[i].name;
	for (size_t i = 0; i < fl->n_deny; i++)
		if (in_rule(&fl->deny[i], dst))
			return fl->deny[i].name;
	if (fl->allow_set || fl->names.resolved) {
		for (size_t i = 0; i < fl->n_allow; i++)
			if (in_rule(&fl->allow[i], dst))
				return NULL; /* listed: private or not, it was asked for */
		if (fl->names.resolved && fl->names.resolved(fl->names.opaque, dst, now)) {
			*by_name = 1;
			return NULL;
		}
		return "not-allowed";
	}
	if (!fl->allow_private)
		for (size_t i = 0; i < N(private_ranges); i++)
			if (in_rule(&private_ranges[i], dst))
				return "private";
	return NULL;
}

static struct flow *flow_find(struct vb_net_filter *fl, uint16_t gport, uint32_t raddr,
			      uint16_t rport)
{
	for (size_t i = 0; i < fl->n_flows; i++) {
		struct flow *f = &fl->flows[i];
		if (f->state != FLOW_FREE && f->gport == gport && f->rport == rport &&
		    f->raddr == raddr)
			return f;
	}
	return NULL;
}

static int flow_counts(const struct flow *f)
{
	return f->state == FLOW_SYN || f->state == FLOW_OPEN;
}

static void flow_set(struct vb_net_filter *fl, struct flow *f, enum flow_state st)
{
	int was = flow_counts(f);
	f->state = (uint8_t)st;
	if (st == FLOW_FREE) {
		if (f->hold)
			fl->n_holds--;
		hold_free(f->hold);
		f->hold = NULL;
		f->sni = 0;
	}
	int now = flow_counts(f);
	unsigned *ctr = f->inbound ? &fl->open_in : &fl->open_out;
	if (was && !now)
		(*ctr)--;
	else if (!was && now)
		(*ctr)++;
}

static struct flow *flow_new(struct vb_net_filter *fl, uint16_t gport, uint32_t raddr,
			     uint16_t rport, int inbound, int64_t now)
{
	for (size_t i = 0; i < fl->n_flows; i++) {
		struct flow *f = &fl->flows[i];
		if (f->state == FLOW_FREE) {
			*f = (struct flow){ .inbound = (uint8_t)inbound, .gport = gport,
					    .rport = rport, .raddr = raddr, .last = now };
			flow_set(fl, f, FLOW_SYN);
			return f;
		}
	}
	return NULL;
}

static void sweep(struct vb_net_filter *fl, int64_t now)
{
	if (now - fl->last_sweep < 1000)
		return;
	fl->last_sweep = now;
	for (size_t i = 0; i < fl->n_flows; i++) {
		struct flow *f = &fl->flows[i];
		int64_t idle = now - f->last;
		if ((f->state == FLOW_SYN && idle > SYN_IDLE_MS) ||
		    (f->state == FLOW_OPEN && idle > OPEN_IDLE_MS) ||
		    (f->state == FLOW_CLOSING && idle > CLOSING_MS))
			flow_set(fl, f, FLOW_FREE);
	}
}

/* FIN/RST bookkeeping common to both directions. */
static void flow_track(struct vb_net_filter *fl, struct flow *f, uint8_t flags, int from_guest,
		       int64_t now)
{
	f->last = now;
	if (flags & VB_TCP_RST) {
		flow_set(fl, f, FLOW_FREE);
		return;
	}
	if (!from_guest && (flags & (VB_TCP_SYN | VB_TCP_ACK)) == (VB_TCP_SYN | VB_TCP_ACK))
		flow_set(fl, f, FLOW_OPEN);
	if (from_guest && f->inbound && (flags & VB_TCP_SYN) && (flags & VB_TCP_ACK))
		flow_set(fl, f, FLOW_OPEN);
	if (flags & VB_TCP_FIN)
		*(from_guest ? &f->fin_guest : &f->fin_net) = 1;
	if (f->fin_guest && f->fin_net && f->state != FLOW_CLOSING)
		flow_set(fl, f, FLOW_CLOSING); /* the last ACKs still pass */
}

static void refuse(struct vb_net_decision *d, const char *rule, int report)
{
	d->verdict = VB_NET_REFUSE;
	d->rule = rule;
	d->report = report;
}

/* A data segment of a connection allowed by a name: keep it until the
 * ClientHello's server name is known. */
static void sni_segment(struct vb_net_filter *fl, struct flow *f, const struct vb_frame *p,
			int64_t now, struct vb_net_decision *d)
{
	d->verdict = VB_NET_HOLD;
	if (p->seq != f->data_seq)
		return; /* a retransmission or out of order: the guest sends it again */
	struct hold *h = f->hold;
	if (!h) {
		if (fl->n_holds >= MAX_HOLDS || !(h = f->hold = calloc(1, sizeof(*h)))) {
			refuse(d, "sni", 1);
			return;
		}
		fl->n_holds++;
	}
	const uint8_t *payload = p->eth + p->len - p->payload_len;
	if (h->frames.n >= sizeof(h->frames.lens) / sizeof(h->frames.lens[0]) ||
	    h->stream_len + p->payload_len > sizeof(h->stream)) {
		refuse(d, "sni", 1); /* no ClientHello is that long */
		return;
	}
	if (h->frames.len + p->len > h->cap) {
		size_t cap = (h->frames.len + p->len) * 2;
		uint8_t *nd = realloc(h->frames.data, cap);
		if (!nd) {
			refuse(d, "sni", 1);
			return;
		}
		h->frames.data = nd;
		h->cap = cap;
	}
	memcpy(h->frames.data + h->frames.len, p->eth, p->len);
	h->frames.len += p->len;
	h->frames.lens[h->frames.n++] = p->len;
	memcpy(h->stream + h->stream_len, payload, p->payload_len);
	h->stream_len += p->payload_len;
	f->data_seq += (uint32_t)p->payload_len;
	char name[VB_DOMAIN_MAX];
	size_t need = 0;
	switch (vb_sni_parse(h->stream, h->stream_len, name, &need)) {
	case VB_SNI_NEED_MORE:
		return;
	case VB_SNI_NOT_TLS: /* a plain protocol to an address an allowed name has */
		break;
	case VB_SNI_FOUND:
		if (fl->names.sni_ok(fl->names.opaque, name, f->raddr, now))
			break;
		/* fall through */
	default:
		refuse(d, "sni", 1);
		return;
	}
	d->verdict = VB_NET_RELEASE;
	hold_free(fl->released);
	fl->released = h;
	f->hold = NULL;
	fl->n_holds--;
	f->sni = 0;
	d->held = &h->frames;
}

static void decide_tcp(struct vb_net_filter *fl, const struct vb_frame *p, int64_t now,
		       struct vb_net_decision *d)
{
	struct flow *f = flow_find(fl, p->sport, p->dst, p->dport);
	if (f) { /* an answer, a retransmitted SYN, a port-forward's reply */
		if (f->sni && p->payload_len > 0 && !(p->tcp_flags & VB_TCP_RST)) {
			sni_segment(fl, f, p, now, d);
			if (d->verdict == VB_NET_REFUSE) {
				/* libslirp has the connection open: end it there too */
				d->net_reply_len = 1; /* built by the caller below */
				d->rst_seq = f->first_seq;
				flow_set(fl, f, FLOW_FREE);
			}
			return;
		}
		flow_track(fl, f, p->tcp_flags, 1, now);
		return;
	}
	int hp = 0, learned = 0, by_name = 0;
	const char *rule = policy(fl, VB_IPPROTO_TCP, p->dst, p->dport, 0, &hp, &learned, &by_name,
				  now);
	int syn = (p->tcp_flags & (VB_TCP_SYN | VB_TCP_ACK | VB_TCP_RST)) == VB_TCP_SYN;
	if (rule) {
		d->host_port = hp;
		refuse(d, rule, syn); /* the rest of a refused flow is noise */
		return;
	}
	if (!syn && by_name) {
		/* no flow we checked: whatever libslirp may still hold for this
		 * connection must not get data past the server-name check */
		refuse(d, "sni", 0);
		d->net_reply_len = 1;
		d->rst_seq = p->seq;
		return;
	}
	if (!syn)
		return; /* libslirp answers a segment of no connection with RST */
	if (fl->open_out >= fl->max_conn) {
		refuse(d, "max_connections", 1);
		return;
	}
	int64_t sec = now / 1000;
	if (sec != fl->rate_sec) {
		fl->rate_sec = sec;
		fl->rate_count = 0;
	}
	if (fl->rate_count >= fl->conn_per_sec) {
		refuse(d, "connections_per_sec", 1);
		return;
	}
	struct flow *nf = flow_new(fl, p->sport, p->dst, p->dport, 0, now);
	if (!nf) {
		refuse(d, "max_connections", 1);
		return;
	}
	if (by_name) {
		nf->sni = 1;
		nf->first_seq = nf->data_seq = p->seq + 1;
	}
	fl->rate_count++;
	d->new_conn = 1;
	d->learned = learned;
}

static const char *proto_name(uint8_t proto)
{
	switch (proto) {
	case VB_IPPROTO_TCP:
		return "tcp";
	case VB_IPPROTO_UDP:
		return "udp";
	case VB_IPPROTO_ICMP:
		return "icmp";
	default:
		return "ip";
	}
}

void vb_net_filter_guest(struct vb_net_filter *fl, const uint8_t *frame, size_t len,
			 int64_t now_ms, uint8_t *reply, size_t reply_cap, struct vb_net_decision *d)
{
	memset(d, 0, sizeof(*d));
	d->proto = "ip";
	struct vb_frame p;
	switch (vb_frame_parse(frame, len, &p)) {
	case VB_FRAME_ARP:
		return; /* libslirp answers for its own addresses only */
	case VB_FRAME_IPV4:
		break;
	default:
		d->verdict = VB_NET_DROP;
		return;
	}
	sweep(fl, now_ms);
	d->proto = proto_name(p.proto);
	d->dst = p.dst;
	d->port = p.have_ports ? p.dport : 0;
	if (p.src != VB_NET_GUEST) { /* a spoofed source would get libslirp to answer elsewhere */
		refuse(d, "source-address", 1);
		return;
	}
	if (p.fragment) {
		refuse(d, "ip-fragment", 1);
		d->reply_len = vb_frame_icmp_unreach(&p, VB_NET_GATEWAY, 13, reply, reply_cap);
		return;
	}
	if (p.proto == VB_IPPROTO_TCP) {
		decide_tcp(fl, &p, now_ms, d);
		if (d->verdict == VB_NET_REFUSE) {
			d->reply_len = vb_frame_tcp_rst(&p, reply, reply_cap > 128 ? 128 : reply_cap);
			if (d->net_reply_len)
				d->net_reply_len = reply_cap >= 192 ? vb_frame_tcp_rst_same_way(
									      &p, d->rst_seq, reply + 128, 64)
								    : 0;
		}
		return;
	}
	int hp = 0, learned = 0, by_name = 0;
	const char *rule = policy(fl, p.proto, p.dst, p.have_ports ? (long)p.dport : -1,
				  p.icmp_type, &hp, &learned, &by_name, now_ms);
	d->learned = learned;
	if (!rule && p.proto != VB_IPPROTO_UDP && p.proto != VB_IPPROTO_ICMP)
		rule = "protocol"; /* libslirp carries nothing else anyway */
	if (rule) {
		refuse(d, rule, 1);
		d->reply_len = vb_frame_icmp_unreach(&p, VB_NET_GATEWAY, 13, reply, reply_cap);
	}
}

int vb_net_filter_to_guest(struct vb_net_filter *fl, const uint8_t *frame, size_t len,
			   int64_t now_ms)
{
	struct vb_frame p;
	if (vb_frame_parse(frame, len, &p) != VB_FRAME_IPV4 || p.proto != VB_IPPROTO_TCP ||
	    !p.have_ports)
		return 0;
	struct flow *f = flow_find(fl, p.dport, p.src, p.sport);
	if (f) {
		flow_track(fl, f, p.tcp_flags, 0, now_ms);
		return 0;
	}
	if ((p.tcp_flags & (VB_TCP_SYN | VB_TCP_ACK)) == VB_TCP_SYN) {
		/* a port forward connecting into the guest */
		sweep(fl, now_ms);
		if (fl->open_in >= INBOUND_RESERVE ||
		    !flow_new(fl, p.dport, p.src, p.sport, 1, now_ms))
			return -1;
	}
	return 0;
}

unsigned vb_net_filter_open(const struct vb_net_filter *fl)
{
	return fl->open_out;
}

static void put_rule(FILE *b, const char *verb, uint32_t net, uint32_t mask, const char *why)
{
	unsigned prefix = (unsigned)__builtin_popcount(mask);
	fprintf(b, "%s %u.%u.%u.%u/%u %s\n", verb, net >> 24, (net >> 16) & 255, (net >> 8) & 255,
		net & 255, prefix, why);
}

char *vb_net_filter_describe(const struct vb_net_filter *fl)
{
	char *text = NULL;
	size_t len = 0;
	FILE *b = open_memstream(&text, &len);
	if (!b)
		return NULL;
	fprintf(b, "allow 10.0.2.3 udp,tcp/53 dns\n");
	fprintf(b, "allow 10.0.2.2 tcp/");
	int any = 0;
	for (unsigned p = 1; p < 65536; p++)
		if (host_port_declared(fl, p)) {
			fprintf(b, "%s%u", any ? "," : "", p);
			any = 1;
		}
	fprintf(b, "%s host-ports\n", any ? "" : "(none)");
	fprintf(b, "deny 10.0.2.0/24 host-loopback, voidbox-net (everything else there)\n");
	for (size_t i = 0; i < N(builtin); i++)
		put_rule(b, "deny", builtin[i].net, builtin[i].mask, builtin[i].name);
	for (size_t i = 0; i < fl->n_deny; i++)
		put_rule(b, "deny", fl->deny[i].net, fl->deny[i].mask, fl->deny[i].name);
	for (size_t i = 0; i < fl->n_allow; i++)
		put_rule(b, "allow", fl->allow[i].net, fl->allow[i].mask, "allow");
	if (fl->allow_set)
		fprintf(b, "deny 0.0.0.0/0 not-allowed\n");
	else if (!fl->allow_private)
		for (size_t i = 0; i < N(private_ranges); i++)
			put_rule(b, "deny", private_ranges[i].net, private_ranges[i].mask, "private");
	fprintf(b, "limit max_connections %u\nlimit connections_per_sec %u\n", fl->max_conn,
		fl->conn_per_sec);
	fprintf(b, "deny ipv6 not-offered\ndeny ip-fragments\n");
	if (fclose(b) != 0) {
		free(text);
		return NULL;
	}
	return text;
}
