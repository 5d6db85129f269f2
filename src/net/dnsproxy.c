/* SPDX-License-Identifier: Apache-2.0 */
/* The guest's DNS in domain mode (dnsproxy.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/dns.h"
#include "net/dnsproxy.h"
#include "net/filter.h"

#define PENDING 64
#define PENDING_MS 5000
#define MAX_UDP_PAYLOAD 1472 /* what fits in one 1500-byte frame */

struct pending {
	int used;
	uint16_t up_id;       /* the id the resolver sees: ours, not the guest's */
	uint16_t guest_port;
	uint8_t guest_mac[6], gw_mac[6];
	struct vb_dns_query q; /* as the guest asked (its id) */
	int64_t expires;
};

struct vb_dnsproxy {
	struct vb_domain_list patterns;
	struct vb_nametab *names;
	int fd;
	struct pending pending[PENDING];
	uint16_t next_id;
	int any_name;
	void (*on_answer)(void *opaque, const char *name, const struct vb_dns_addr *addrs, size_t n);
	void *answer_opaque;
};

void vb_dnsproxy_on_answer(struct vb_dnsproxy *p,
			   void (*cb)(void *opaque, const char *name, const struct vb_dns_addr *addrs,
				      size_t n),
			   void *opaque)
{
	p->on_answer = cb;
	p->answer_opaque = opaque;
}

/* $VOIDBOX_DNS_SERVER, else resolv.conf's first IPv4 nameserver. */
static int resolver(struct sockaddr_in *sa, vb_error *err)
{
	*sa = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(53) };
	const char *env = getenv("VOIDBOX_DNS_SERVER");
	if (env && env[0]) {
		char host[64];
		unsigned port = 53;
		const char *colon = strchr(env, ':');
		size_t hl = colon ? (size_t)(colon - env) : strlen(env);
		if (hl >= sizeof(host) || (colon && (sscanf(colon + 1, "%u", &port) != 1 || !port ||
						     port > 65535)))
			return vb_error_set(err, VB_E_USAGE, "VOIDBOX_DNS_SERVER: expected IP or IP:PORT");
		memcpy(host, env, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
			return vb_error_set(err, VB_E_USAGE, "VOIDBOX_DNS_SERVER: expected IP or IP:PORT");
		sa->sin_port = htons((uint16_t)port);
		return 0;
	}
	FILE *f = fopen("/etc/resolv.conf", "re");
	char line[256], addr[64];
	int found = 0;
	while (f && !found && fgets(line, sizeof(line), f))
		found = sscanf(line, " nameserver %63s", addr) == 1 &&
			inet_pton(AF_INET, addr, &sa->sin_addr) == 1;
	if (f)
		fclose(f);
	return found ? 0
		     : vb_error_set(err, VB_E_RUNTIME,
				    "allow_domains: no IPv4 nameserver in /etc/resolv.conf to forward "
				    "the guest's DNS to (set VOIDBOX_DNS_SERVER)");
}

struct vb_dnsproxy *vb_dnsproxy_new(const char *const *patterns, size_t n, int any_name,
				    vb_error *err)
{
	struct vb_dnsproxy *p = calloc(1, sizeof(*p));
	if (!p) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	p->fd = -1;
	p->any_name = any_name;
	for (size_t i = 0; i < n; i++)
		if (vb_domain_list_add_str(&p->patterns, patterns[i], err) < 0) {
			vb_error_prefix(err, "allow_domains");
			goto fail;
		}
	struct sockaddr_in sa;
	if (resolver(&sa, err) < 0)
		goto fail;
	if (!(p->names = vb_nametab_new(0))) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		goto fail;
	}
	p->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0 || connect(p->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		vb_error_errno(err, errno, "cannot reach the DNS resolver");
		goto fail;
	}
	if (getrandom(&p->next_id, sizeof(p->next_id), 0) != sizeof(p->next_id))
		p->next_id = (uint16_t)getpid();
	return p;
fail:
	vb_dnsproxy_free(p);
	return NULL;
}

void vb_dnsproxy_free(struct vb_dnsproxy *p)
{
	if (!p)
		return;
	if (p->fd >= 0)
		close(p->fd);
	vb_domain_list_free(&p->patterns);
	vb_nametab_free(p->names);
	free(p);
}

int vb_dnsproxy_fd(const struct vb_dnsproxy *p)
{
	return p->fd;
}

/* (msg) as a frame from 10.0.2.3:53 to the guest's port of (pd). */
static size_t to_guest(const uint8_t guest_mac[6], const uint8_t gw_mac[6], uint16_t port,
		       const uint8_t *msg, size_t len, uint8_t *out, size_t cap)
{
	return vb_frame_udp(gw_mac, guest_mac, VB_NET_DNS, 53, VB_NET_GUEST, port, msg, len, out,
			    cap);
}

size_t vb_dnsproxy_query(struct vb_dnsproxy *p, const struct vb_frame *f, int64_t now_ms,
			 uint8_t *out, size_t cap, char denied[VB_DOMAIN_MAX])
{
	denied[0] = '\0';
	const uint8_t *msg = f->eth + f->len - f->payload_len;
	struct vb_dns_query q;
	uint8_t reply[600];
	int rlen;
	if (vb_dns_parse_query(msg, f->payload_len, &q, NULL) < 0) {
		if (q.reply_rcode < 0 || (rlen = vb_dns_build_reply(&q, q.reply_rcode, reply,
								    sizeof(reply))) < 0)
			return 0;
		return to_guest(f->eth + 6, f->eth, f->sport, reply, (size_t)rlen, out, cap);
	}
	if (!p->any_name && !vb_domain_list_match(&p->patterns, q.name)) {
		snprintf(denied, VB_DOMAIN_MAX, "%s", q.name[0] ? q.name : ".");
		rlen = vb_dns_build_reply(&q, VB_DNS_NXDOMAIN, reply, sizeof(reply));
		return rlen < 0 ? 0 : to_guest(f->eth + 6, f->eth, f->sport, reply, (size_t)rlen, out, cap);
	}
	/* forward it under an id of ours; the oldest pending query gives way */
	struct pending *slot = &p->pending[0];
	for (size_t i = 0; i < PENDING; i++) {
		struct pending *c = &p->pending[i];
		if (!c->used || c->expires <= now_ms) {
			slot = c;
			break;
		}
		if (c->expires < slot->expires)
			slot = c;
	}
	uint16_t id = p->next_id++;
	uint8_t fwd[MAX_UDP_PAYLOAD];
	if (f->payload_len > sizeof(fwd))
		return 0;
	memcpy(fwd, msg, f->payload_len);
	fwd[0] = (uint8_t)(id >> 8);
	fwd[1] = (uint8_t)id;
	if (send(p->fd, fwd, f->payload_len, MSG_DONTWAIT) < 0) {
		rlen = vb_dns_build_reply(&q, VB_DNS_SERVFAIL, reply, sizeof(reply));
		return rlen < 0 ? 0 : to_guest(f->eth + 6, f->eth, f->sport, reply, (size_t)rlen, out, cap);
	}
	*slot = (struct pending){ .used = 1, .up_id = id, .guest_port = f->sport, .q = q,
				  .expires = now_ms + PENDING_MS };
	memcpy(slot->guest_mac, f->eth + 6, 6);
	memcpy(slot->gw_mac, f->eth, 6);
	return 0;
}

static void answer(struct vb_dnsproxy *p, struct pending *pd, uint8_t *msg, size_t len,
		   int64_t now_ms, void (*emit)(void *, const uint8_t *, size_t), void *opaque)
{
	struct vb_dns_query asked = pd->q;
	asked.id = pd->up_id;
	struct vb_dns_answer a;
	uint8_t reply[600];
	int rlen = -1;
	if (vb_dns_parse_response(msg, len, &asked, &a, NULL) < 0) {
		rlen = vb_dns_build_reply(&pd->q, VB_DNS_SERVFAIL, reply, sizeof(reply));
	} else {
		for (size_t i = 0; i < a.naddr; i++) /* only the asked, allowed name's */
			vb_nametab_add(p->names, pd->q.name, a.addr[i].family, a.addr[i].addr,
				       a.addr[i].ttl, now_ms);
		if (p->on_answer && a.naddr)
			p->on_answer(p->answer_opaque, pd->q.name, a.addr, a.naddr);
		if (len > MAX_UDP_PAYLOAD) {
			/* more than one frame: say "truncated" (TCP to 10.0.2.3 is
			 * refused in domain mode, so the guest gets no more) */
			rlen = vb_dns_build_reply(&pd->q, VB_DNS_NOERROR, reply, sizeof(reply));
			if (rlen > 2)
				reply[2] |= 0x02;
		} else {
			msg[0] = (uint8_t)(pd->q.id >> 8);
			msg[1] = (uint8_t)pd->q.id;
		}
	}
	uint8_t frame[VB_ETH_HLEN + 28 + MAX_UDP_PAYLOAD];
	size_t fl = rlen >= 0 ? to_guest(pd->guest_mac, pd->gw_mac, pd->guest_port, reply,
					 (size_t)rlen, frame, sizeof(frame))
			      : to_guest(pd->guest_mac, pd->gw_mac, pd->guest_port, msg, len, frame,
					 sizeof(frame));
	pd->used = 0;
	if (fl)
		emit(opaque, frame, fl);
}

void vb_dnsproxy_read(struct vb_dnsproxy *p, int64_t now_ms,
		      void (*emit)(void *opaque, const uint8_t *frame, size_t len), void *opaque)
{
	uint8_t msg[4096];
	for (int i = 0; i < 64; i++) { /* a bounded batch per wake-up */
		ssize_t n = recv(p->fd, msg, sizeof(msg), MSG_DONTWAIT);
		if (n < 0)
			return;
		if (n < VB_DNS_HEADER)
			continue;
		uint16_t id = (uint16_t)(msg[0] << 8 | msg[1]);
		for (size_t k = 0; k < PENDING; k++) {
			struct pending *pd = &p->pending[k];
			if (pd->used && pd->up_id == id && pd->expires > now_ms) {
				answer(p, pd, msg, (size_t)n, now_ms, emit, opaque);
				break;
			}
		}
	}
}

int vb_dnsproxy_resolved(void *opaque, uint32_t addr, int64_t now_ms)
{
	struct vb_dnsproxy *p = opaque;
	uint32_t be = htonl(addr);
	return vb_nametab_names(p->names, AF_INET, (const uint8_t *)&be, now_ms, NULL, 0) > 0;
}

int vb_dnsproxy_sni_ok(void *opaque, const char *name, uint32_t addr, int64_t now_ms)
{
	struct vb_dnsproxy *p = opaque;
	uint32_t be = htonl(addr);
	return (p->any_name || vb_domain_list_match(&p->patterns, name)) &&
	       vb_nametab_valid(p->names, name, AF_INET, (const uint8_t *)&be, now_ms);
}
