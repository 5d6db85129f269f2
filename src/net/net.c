/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libslirp behind the policy (net.h).  Everything here runs on the thread
 * of the caller's loop, except the counters, which other threads read.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <libslirp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/dnsproxy.h"
#include "net/filter.h"
#include "net/frame.h"
#include "net/learn.h"
#include "net/net.h"
#include "util/util.h"

/* net.denied events: a burst, then a few a second, the first of each rule
 * always; the rest are counted */
#define EVENT_BURST 20.0
#define EVENT_RATE 5.0
#define MAX_TIMERS 8
#define MAX_SEEN_RULES 32

struct net_timer {
	SlirpTimerCb cb;
	void *cb_opaque;
	int64_t expire_ms; /* -1: not armed */
	int used;
};

struct vb_net {
	Slirp *slirp;
	struct vb_net_filter *filter;
	struct vb_net_io io;
	void (*on_event)(void *opaque, const struct vb_net_event *ev);
	void *event_opaque;
	struct net_timer timers[MAX_TIMERS];
	unsigned published[VB_NET_MAX_PUBLISH];
	double tokens;
	int64_t tokens_ms;
	const char *seen_rules[MAX_SEEN_RULES]; /* reported once at least: static strings */
	uint64_t suppressed;
	struct vb_learn *learn; /* learn mode's recorder, or NULL */
	struct vb_dnsproxy *dns; /* domain mode's DNS, or NULL */
	long dns_idx;           /* its socket's index in the poll set, -1 if not there */
	pthread_mutex_t learn_mu; /* the loop records, the owner drafts */
	uint64_t bytes_out, bytes_in, frames_out, frames_in, connections, denied, malformed;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void count(uint64_t *ctr, uint64_t v)
{
	__atomic_add_fetch(ctr, v, __ATOMIC_RELAXED);
}

/* ---- libslirp callbacks ----------------------------------------------- */

static ssize_t send_packet(const void *buf, size_t len, void *opaque)
{
	struct vb_net *n = opaque;
	if (len > VB_NET_MAX_FRAME ||
	    vb_net_filter_to_guest(n->filter, buf, len, mono_ms()) < 0)
		return (ssize_t)len; /* dropped: TCP retransmits */
	count(&n->frames_in, 1);
	count(&n->bytes_in, len);
	n->io.to_guest(n->io.opaque, buf, len);
	return (ssize_t)len;
}

static void guest_error(const char *msg, void *opaque)
{
	(void)msg; /* a guest's misbehaviour, worded by libslirp: counted, not printed */
	struct vb_net *n = opaque;
	count(&n->malformed, 1);
}

static int64_t clock_get_ns(void *opaque)
{
	(void)opaque;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct vb_net *n = opaque;
	for (size_t i = 0; i < MAX_TIMERS; i++)
		if (!n->timers[i].used) {
			n->timers[i] = (struct net_timer){ cb, cb_opaque, -1, 1 };
			return &n->timers[i];
		}
	return NULL; /* libslirp's only timer is IPv6's router advertisements */
}

static void timer_free(void *timer, void *opaque)
{
	(void)opaque;
	if (timer)
		memset(timer, 0, sizeof(struct net_timer));
}

static void timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	(void)opaque;
	if (timer)
		((struct net_timer *)timer)->expire_ms = expire_ms;
}

static void poll_fd_noop(int fd, void *opaque)
{
	(void)fd;
	(void)opaque;
}

static void notify(void *opaque)
{
	(void)opaque; /* libslirp is only ever called from the loop's thread */
}

static const SlirpCb callbacks = {
	.send_packet = send_packet,
	.guest_error = guest_error,
	.clock_get_ns = clock_get_ns,
	.timer_new = timer_new,
	.timer_free = timer_free,
	.timer_mod = timer_mod,
	.register_poll_fd = poll_fd_noop,
	.unregister_poll_fd = poll_fd_noop,
	.notify = notify,
};

/* ---- poll integration ------------------------------------------------- */

int vb_net_pollset_add(struct vb_net_pollset *ps, int fd, short events)
{
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 16;
		struct pollfd *f = realloc(ps->fds, cap * sizeof(*f));
		if (!f)
			return -1;
		ps->fds = f;
		ps->cap = cap;
	}
	ps->fds[ps->n] = (struct pollfd){ .fd = fd, .events = events };
	return (int)ps->n++;
}

void vb_net_pollset_free(struct vb_net_pollset *ps)
{
	free(ps->fds);
	memset(ps, 0, sizeof(*ps));
}

static int add_poll(int fd, int events, void *opaque)
{
	struct vb_net_pollset *ps = opaque;
	short ev = 0;
	if (events & SLIRP_POLL_IN)
		ev |= POLLIN;
	if (events & SLIRP_POLL_OUT)
		ev |= POLLOUT;
	if (events & SLIRP_POLL_PRI)
		ev |= POLLPRI;
	return vb_net_pollset_add(ps, fd, ev);
}

static int get_revents(int idx, void *opaque)
{
	const struct vb_net_pollset *ps = opaque;
	if (idx < 0 || (size_t)idx >= ps->n)
		return 0;
	short r = ps->fds[idx].revents;
	int out = 0;
	if (r & POLLIN)
		out |= SLIRP_POLL_IN;
	if (r & POLLOUT)
		out |= SLIRP_POLL_OUT;
	if (r & POLLPRI)
		out |= SLIRP_POLL_PRI;
	if (r & (POLLERR | POLLNVAL))
		out |= SLIRP_POLL_ERR;
	if (r & POLLHUP)
		out |= SLIRP_POLL_HUP;
	return out;
}

void vb_net_poll_fill(struct vb_net *n, struct vb_net_pollset *ps, int *timeout_ms)
{
	uint32_t t = *timeout_ms < 0 ? UINT32_MAX : (uint32_t)*timeout_ms;
	n->dns_idx = n->dns ? vb_net_pollset_add(ps, vb_dnsproxy_fd(n->dns), POLLIN) : -1;
	slirp_pollfds_fill(n->slirp, &t, add_poll, ps);
	int64_t now = mono_ms();
	for (size_t i = 0; i < MAX_TIMERS; i++)
		if (n->timers[i].used && n->timers[i].expire_ms >= 0) {
			int64_t left = n->timers[i].expire_ms - now;
			uint32_t l = left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (uint32_t)left;
			if (l < t)
				t = l;
		}
	*timeout_ms = t == UINT32_MAX ? -1 : t > INT32_MAX ? INT32_MAX : (int)t;
}

static void emit_to_guest(void *opaque, const uint8_t *frame, size_t len)
{
	struct vb_net *n = opaque;
	count(&n->frames_in, 1);
	count(&n->bytes_in, len);
	n->io.to_guest(n->io.opaque, frame, len);
}

void vb_net_poll_dispatch(struct vb_net *n, const struct vb_net_pollset *ps, int poll_failed)
{
	if (n->dns_idx >= 0 && !poll_failed && (size_t)n->dns_idx < ps->n &&
	    (ps->fds[n->dns_idx].revents & POLLIN))
		vb_dnsproxy_read(n->dns, mono_ms(), emit_to_guest, n);
	slirp_pollfds_poll(n->slirp, poll_failed, get_revents, (void *)(uintptr_t)ps);
	int64_t now = mono_ms();
	for (size_t i = 0; i < MAX_TIMERS; i++) {
		struct net_timer *t = &n->timers[i];
		if (t->used && t->expire_ms >= 0 && t->expire_ms <= now) {
			t->expire_ms = -1;
			t->cb(t->cb_opaque);
		}
	}
}

/* ---- the policy on the way in ----------------------------------------- */

static void report_to(struct vb_net *n, const char *proto, const char *dst, unsigned port,
		      const char *rule, int host_port, int64_t now)
{
	if (!n->on_event)
		return;
	n->tokens += (double)(now - n->tokens_ms) * EVENT_RATE / 1000.0;
	n->tokens_ms = now;
	if (n->tokens > EVENT_BURST)
		n->tokens = EVENT_BURST;
	/* the first refusal by each rule is always told, so that a flood of
	 * one kind does not hide another */
	int seen = 0;
	size_t i = 0;
	for (; i < MAX_SEEN_RULES && n->seen_rules[i]; i++)
		seen |= n->seen_rules[i] == rule;
	if (!seen && i < MAX_SEEN_RULES)
		n->seen_rules[i] = rule;
	if (seen && n->tokens < 1.0) {
		n->suppressed++;
		return;
	}
	if (n->tokens >= 1.0)
		n->tokens -= 1.0;
	char hint[160];
	if (host_port)
		snprintf(hint, sizeof(hint),
			 "the host's port %u is not declared: allow it with --allow-host-port %u "
			 "or network_policy.host_ports: [%u]",
			 port, port, port);
	struct vb_net_event ev = {
		.kind = VB_NET_EV_DENIED,
		.proto = proto,
		.dst = dst,
		.port = port,
		.rule = rule,
		.hint = host_port ? hint : NULL,
		.suppressed = n->suppressed,
	};
	n->suppressed = 0;
	n->on_event(n->event_opaque, &ev);
}

static void report(struct vb_net *n, const struct vb_net_decision *d, int64_t now)
{
	char dst[INET_ADDRSTRLEN];
	uint32_t a = htonl(d->dst);
	inet_ntop(AF_INET, &a, dst, sizeof(dst));
	report_to(n, d->proto, dst, d->port, d->rule, d->host_port, now);
}

/* Domain mode: the guest's UDP queries to 10.0.2.3:53 are ours to answer.
 * Returns 1 when (frame) was one. */
static int dns_query(struct vb_net *n, const uint8_t *frame, size_t len, int64_t now)
{
	struct vb_frame f;
	if (!n->dns || vb_frame_parse(frame, len, &f) != VB_FRAME_IPV4 || f.fragment ||
	    f.proto != VB_IPPROTO_UDP || f.dst != VB_NET_DNS || f.dport != 53 ||
	    f.src != VB_NET_GUEST)
		return 0;
	uint8_t out[VB_ETH_HLEN + 28 + 600];
	char denied[VB_DOMAIN_MAX];
	count(&n->frames_out, 1);
	count(&n->bytes_out, len);
	size_t olen = vb_dnsproxy_query(n->dns, &f, now, out, sizeof(out), denied);
	if (denied[0]) {
		count(&n->denied, 1);
		report_to(n, "dns", denied, 53, "domain", 0, now);
	}
	if (olen)
		emit_to_guest(n, out, olen);
	return 1;
}

/* Learn mode: what the guest's resolver got (through the DNS proxy). */
static void learned_answer(void *opaque, const char *name, const struct vb_dns_addr *addrs,
			   size_t count_)
{
	struct vb_net *n = opaque;
	pthread_mutex_lock(&n->learn_mu);
	vb_learn_dns(n->learn, name, addrs, count_, mono_ms());
	pthread_mutex_unlock(&n->learn_mu);
}

/* Learn mode: every flow the guest opened (and the refusals no policy
 * could lift, which the draft names in comments). */
static void learn(struct vb_net *n, const struct vb_net_decision *d, int64_t now)
{
	if (!n->learn || (d->verdict == VB_NET_PASS && !d->new_conn && strcmp(d->proto, "udp")))
		return;
	int proto = !strcmp(d->proto, "tcp") ? IPPROTO_TCP : !strcmp(d->proto, "udp") ? IPPROTO_UDP : 0;
	if (!proto || !d->port || d->dst == VB_NET_DNS)
		return;
	if (d->verdict == VB_NET_REFUSE &&
	    (!d->report || (strcmp(d->rule, "cloud-metadata") && strcmp(d->rule, "reserved") &&
			    strcmp(d->rule, "multicast"))))
		return;
	uint32_t a = htonl(d->dst);
	pthread_mutex_lock(&n->learn_mu);
	if (d->dst == VB_NET_GATEWAY)
		vb_learn_host_port(n->learn, proto, (uint16_t)d->port);
	else
		vb_learn_flow(n->learn, proto, AF_INET, (const uint8_t *)&a, (uint16_t)d->port, NULL, now);
	pthread_mutex_unlock(&n->learn_mu);
}

void vb_net_from_guest(struct vb_net *n, const uint8_t *frame, size_t len)
{
	if (len > VB_NET_MAX_FRAME) {
		count(&n->malformed, 1);
		return;
	}
	uint8_t reply[192];
	struct vb_net_decision d;
	int64_t now = mono_ms();
	if (dns_query(n, frame, len, now))
		return;
	vb_net_filter_guest(n->filter, frame, len, now, reply, sizeof(reply), &d);
	switch (d.verdict) {
	case VB_NET_HOLD:
		return;
	case VB_NET_RELEASE: {
		size_t off = 0;
		for (size_t i = 0; i < d.held->n; i++) {
			count(&n->frames_out, 1);
			count(&n->bytes_out, d.held->lens[i]);
			slirp_input(n->slirp, d.held->data + off, (int)d.held->lens[i]);
			off += d.held->lens[i];
		}
		return;
	}
	case VB_NET_PASS:
		count(&n->frames_out, 1);
		count(&n->bytes_out, len);
		if (d.new_conn)
			count(&n->connections, 1);
		learn(n, &d, now);
		slirp_input(n->slirp, frame, (int)len);
		return;
	case VB_NET_DROP:
		count(&n->malformed, 1);
		return;
	case VB_NET_REFUSE:
		count(&n->denied, 1);
		if (d.reply_len) {
			count(&n->frames_in, 1);
			count(&n->bytes_in, d.reply_len);
			n->io.to_guest(n->io.opaque, reply, d.reply_len);
		}
		if (d.net_reply_len) /* libslirp closes its side too */
			slirp_input(n->slirp, reply + 128, (int)d.net_reply_len);
		if (d.report)
			report(n, &d, now);
		learn(n, &d, now);
		return;
	}
}

/* ---- setup ------------------------------------------------------------- */

/* The host's own interface addresses answer like its loopback does (a
 * service bound to 0.0.0.0): refuse them as such. */
static void deny_host_addresses(struct vb_net_filter *fl)
{
	struct ifaddrs *ifa = NULL;
	if (getifaddrs(&ifa) < 0)
		return;
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET) {
			uint32_t a = ntohl(((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr.s_addr);
			if ((a >> 24) != 127)
				vb_net_filter_deny(fl, a, 32, "host-address");
		}
	freeifaddrs(ifa);
}

/* A port nobody listens on now on 127.0.0.1 (the kernel's pick). */
static unsigned free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	unsigned port = 0;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static int publish(struct vb_net *n, const struct vb_network *cfg, vb_error *err)
{
	struct in_addr lo = { htonl(INADDR_LOOPBACK) }, guest = { htonl(VB_NET_GUEST) };
	for (size_t i = 0; i < cfg->n_publish; i++) {
		const struct vb_net_publish *p = &cfg->publish[i];
		if (p->guest_port < 1 || p->guest_port > 65535 || p->host_port > 65535)
			return vb_error_set(err, VB_E_USAGE, "publish %u:%u: ports are 1..65535 (host 0 = any)",
					    p->host_port, p->guest_port);
		/* a picked port may be taken between the pick and the bind: retry */
		for (int tries = 0;; tries++) {
			unsigned hp = p->host_port ? p->host_port : free_port();
			if (hp && slirp_add_hostfwd(n->slirp, 0, lo, (int)hp, guest,
						    (int)p->guest_port) == 0) {
				n->published[i] = hp;
				break;
			}
			if (p->host_port || tries >= 4)
				return vb_error_set(err, VB_E_USAGE,
						    "cannot listen on 127.0.0.1:%u for the guest's port %u "
						    "(in use?)",
						    hp, p->guest_port);
		}
	}
	return 0;
}

struct vb_net *vb_net_new(const struct vb_network *cfg, const struct vb_net_io *io, vb_error *err)
{
	if (cfg->n_publish > VB_NET_MAX_PUBLISH) {
		vb_error_set(err, VB_E_USAGE, "at most %u published ports", VB_NET_MAX_PUBLISH);
		return NULL;
	}
	struct vb_net *n = calloc(1, sizeof(*n));
	if (!n) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	n->io = *io;
	n->on_event = cfg->on_event;
	n->event_opaque = cfg->opaque;
	n->tokens = EVENT_BURST;
	n->tokens_ms = mono_ms();
	pthread_mutex_init(&n->learn_mu, NULL);
	if (cfg->learn && !(n->learn = vb_learn_new())) {
		free(n);
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	if (!(n->filter = vb_net_filter_new(cfg, err))) {
		vb_learn_free(n->learn);
		free(n);
		return NULL;
	}
	deny_host_addresses(n->filter);
	n->dns_idx = -1;
	/* learn mode answers DNS too: the draft names what the guest resolved */
	if (cfg->n_allow_domains || n->learn) {
		vb_error derr = { 0 };
		n->dns = vb_dnsproxy_new(cfg->allow_domains, cfg->n_allow_domains, n->learn != NULL,
					 &derr);
		/* learn mode without a resolver to forward to: addresses only */
		if (!n->dns && cfg->n_allow_domains) {
			if (err)
				*err = derr;
			vb_net_filter_free(n->filter);
			vb_learn_free(n->learn);
			free(n);
			return NULL;
		}
		struct vb_net_names names = { vb_dnsproxy_resolved, vb_dnsproxy_sni_ok, n->dns };
		if (cfg->n_allow_domains && !n->learn)
			vb_net_filter_set_names(n->filter, &names);
		if (n->learn && n->dns)
			vb_dnsproxy_on_answer(n->dns, learned_answer, n);
	}
	SlirpConfig sc = {
		.version = 4,
		.in_enabled = true,
		.vnetwork.s_addr = htonl(VB_NET_NETWORK),
		.vnetmask.s_addr = htonl(0xffffff00u),
		.vhost.s_addr = htonl(VB_NET_GATEWAY),
		.vdhcp_start.s_addr = htonl(VB_NET_GUEST),
		.vnameserver.s_addr = htonl(VB_NET_DNS),
		.in6_enabled = false, /* not offered: the policy is IPv4's */
		.vhostname = "voidbox",
		.if_mtu = 1500,
		.if_mru = 1500,
		.disable_host_loopback = false, /* 10.0.2.2: the declared host ports */
		.enable_emu = false,
		.disable_dhcp = true, /* the agent configures the address itself */
	};
	n->slirp = slirp_new(&sc, &callbacks, n);
	if (!n->slirp) {
		vb_net_filter_free(n->filter);
		vb_learn_free(n->learn);
		vb_dnsproxy_free(n->dns);
		free(n);
		vb_error_set(err, VB_E_RUNTIME, "cannot start libslirp");
		return NULL;
	}
	if (publish(n, cfg, err) < 0) {
		vb_net_free(n);
		return NULL;
	}
	return n;
}

void vb_net_free(struct vb_net *n)
{
	if (!n)
		return;
	if (n->slirp)
		slirp_cleanup(n->slirp);
	vb_net_filter_free(n->filter);
	vb_learn_free(n->learn);
	vb_dnsproxy_free(n->dns);
	pthread_mutex_destroy(&n->learn_mu);
	free(n);
}

char *vb_net_learned(struct vb_net *n, unsigned indent, vb_error *err)
{
	if (!n || !n->learn) {
		vb_error_set(err, VB_E_USAGE, "the VM's network is not in learn mode");
		return NULL;
	}
	pthread_mutex_lock(&n->learn_mu);
	char *y = vb_learn_yaml(n->learn, indent, err);
	pthread_mutex_unlock(&n->learn_mu);
	return y;
}

void vb_net_stats(const struct vb_net *n, struct vb_net_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!n)
		return;
	st->bytes_out = __atomic_load_n(&n->bytes_out, __ATOMIC_RELAXED);
	st->bytes_in = __atomic_load_n(&n->bytes_in, __ATOMIC_RELAXED);
	st->frames_out = __atomic_load_n(&n->frames_out, __ATOMIC_RELAXED);
	st->frames_in = __atomic_load_n(&n->frames_in, __ATOMIC_RELAXED);
	st->connections = __atomic_load_n(&n->connections, __ATOMIC_RELAXED);
	st->denied = __atomic_load_n(&n->denied, __ATOMIC_RELAXED);
	st->malformed = __atomic_load_n(&n->malformed, __ATOMIC_RELAXED);
}

unsigned vb_net_published_port(const struct vb_net *n, size_t i)
{
	return n && i < VB_NET_MAX_PUBLISH ? n->published[i] : 0;
}
