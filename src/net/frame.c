/* SPDX-License-Identifier: Apache-2.0 */
/* Frame parsing and refusal replies (frame.h). */
#include <string.h>

#include "net/frame.h"

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	wr16(p, (uint16_t)(v >> 16));
	wr16(p + 2, (uint16_t)v);
}

uint16_t vb_inet_csum(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *p = data;
	uint64_t s = sum;
	for (; len > 1; p += 2, len -= 2)
		s += rd16(p);
	if (len)
		s += (uint32_t)p[0] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static enum vb_frame_kind parse_ipv4(struct vb_frame *f, size_t avail)
{
	const uint8_t *ip = f->eth + VB_ETH_HLEN;
	if (avail < 20 || ip[0] >> 4 != 4)
		return f->kind = VB_FRAME_MALFORMED;
	size_t hlen = (size_t)(ip[0] & 0x0f) * 4, tot = rd16(ip + 2);
	if (hlen < 20 || hlen > avail || tot < hlen || tot > avail)
		return f->kind = VB_FRAME_MALFORMED;
	f->ip_off = VB_ETH_HLEN;
	f->ip_hlen = hlen;
	f->ip_len = tot;
	f->len = VB_ETH_HLEN + tot; /* Ethernet padding is not part of the packet */
	f->src = rd32(ip + 12);
	f->dst = rd32(ip + 16);
	f->proto = ip[9];
	f->fragment = (rd16(ip + 6) & 0x3fff) != 0; /* MF or an offset */
	f->kind = VB_FRAME_IPV4;
	if (f->fragment)
		return f->kind;
	const uint8_t *l4 = ip + hlen;
	size_t l4len = tot - hlen;
	switch (f->proto) {
	case VB_IPPROTO_TCP: {
		if (l4len < 20)
			return f->kind = VB_FRAME_MALFORMED;
		size_t doff = (size_t)(l4[12] >> 4) * 4;
		if (doff < 20 || doff > l4len)
			return f->kind = VB_FRAME_MALFORMED;
		f->have_ports = 1;
		f->sport = rd16(l4);
		f->dport = rd16(l4 + 2);
		f->seq = rd32(l4 + 4);
		f->ack = rd32(l4 + 8);
		f->tcp_flags = l4[13];
		f->payload_len = l4len - doff;
		break;
	}
	case VB_IPPROTO_UDP:
		if (l4len < 8)
			return f->kind = VB_FRAME_MALFORMED;
		f->have_ports = 1;
		f->sport = rd16(l4);
		f->dport = rd16(l4 + 2);
		f->payload_len = l4len - 8;
		break;
	case VB_IPPROTO_ICMP:
		if (l4len < 8)
			return f->kind = VB_FRAME_MALFORMED;
		f->icmp_type = l4[0];
		f->icmp_code = l4[1];
		break;
	default:
		break;
	}
	return f->kind;
}

enum vb_frame_kind vb_frame_parse(const uint8_t *buf, size_t len, struct vb_frame *f)
{
	memset(f, 0, sizeof(*f));
	f->eth = buf;
	f->len = len;
	if (!buf || len < VB_ETH_HLEN)
		return f->kind = VB_FRAME_MALFORMED;
	uint16_t type = rd16(buf + 12);
	size_t avail = len - VB_ETH_HLEN;
	switch (type) {
	case VB_ETH_P_IP:
		return parse_ipv4(f, avail);
	case VB_ETH_P_ARP:
		/* Ethernet/IPv4 ARP is 28 bytes; libslirp reads that much */
		if (avail < 28 || rd16(buf + 14) != 1 || rd16(buf + 16) != VB_ETH_P_IP ||
		    buf[18] != 6 || buf[19] != 4)
			return f->kind = VB_FRAME_MALFORMED;
		return f->kind = VB_FRAME_ARP;
	case VB_ETH_P_IPV6:
		return f->kind = VB_FRAME_IPV6;
	default:
		return f->kind = VB_FRAME_OTHER;
	}
}

/* Ethernet + IPv4 header (20 bytes, no options) of a reply to (f) (or,
 * with (same_way), of another packet like it), with (payload) bytes after
 * it.  The IPv4 checksum is filled. */
static void headers(const struct vb_frame *f, int same_way, uint32_t src, uint32_t dst,
		    uint8_t proto, size_t payload, uint8_t *out)
{
	memcpy(out, f->eth + (same_way ? 0 : 6), 6);
	memcpy(out + 6, f->eth + (same_way ? 6 : 0), 6);
	wr16(out + 12, VB_ETH_P_IP);
	uint8_t *ip = out + VB_ETH_HLEN;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	wr16(ip + 2, (uint16_t)(20 + payload));
	ip[6] = 0x40; /* DF */
	ip[8] = 64;
	ip[9] = proto;
	wr32(ip + 12, src);
	wr32(ip + 16, dst);
	wr16(ip + 10, vb_inet_csum(ip, 20, 0));
}

static void reply_headers(const struct vb_frame *f, uint32_t src, uint32_t dst, uint8_t proto,
			  size_t payload, uint8_t *out)
{
	headers(f, 0, src, dst, proto, payload, out);
}

/* The checksum of a 20-byte TCP header from (src) to (dst). */
static void tcp_csum(uint8_t *t, uint32_t src, uint32_t dst)
{
	uint32_t sum = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) +
		       VB_IPPROTO_TCP + 20;
	wr16(t + 16, 0);
	wr16(t + 16, vb_inet_csum(t, 20, sum));
}

size_t vb_frame_tcp_rst_same_way(const struct vb_frame *f, uint32_t seq, uint8_t *out, size_t cap)
{
	const size_t len = VB_ETH_HLEN + 20 + 20;
	if (f->kind != VB_FRAME_IPV4 || f->proto != VB_IPPROTO_TCP || !f->have_ports || cap < len)
		return 0;
	headers(f, 1, f->src, f->dst, VB_IPPROTO_TCP, 20, out);
	uint8_t *t = out + VB_ETH_HLEN + 20;
	memset(t, 0, 20);
	wr16(t, f->sport);
	wr16(t + 2, f->dport);
	wr32(t + 4, seq);
	t[12] = 5 << 4;
	t[13] = VB_TCP_RST;
	tcp_csum(t, f->src, f->dst);
	return len;
}

size_t vb_frame_tcp_rst(const struct vb_frame *f, uint8_t *out, size_t cap)
{
	const size_t len = VB_ETH_HLEN + 20 + 20;
	if (f->kind != VB_FRAME_IPV4 || f->proto != VB_IPPROTO_TCP || !f->have_ports ||
	    (f->tcp_flags & VB_TCP_RST) || cap < len)
		return 0;
	reply_headers(f, f->dst, f->src, VB_IPPROTO_TCP, 20, out);
	uint8_t *t = out + VB_ETH_HLEN + 20;
	memset(t, 0, 20);
	wr16(t, f->dport);
	wr16(t + 2, f->sport);
	/* RFC 793 "Reset Generation": an ACK is answered from its ack number,
	 * anything else with seq 0 and an ACK of all it occupied */
	if (f->tcp_flags & VB_TCP_ACK) {
		wr32(t + 4, f->ack);
		t[13] = VB_TCP_RST;
	} else {
		uint32_t occupied = (uint32_t)f->payload_len + !!(f->tcp_flags & VB_TCP_SYN) +
				    !!(f->tcp_flags & VB_TCP_FIN);
		wr32(t + 8, f->seq + occupied);
		t[13] = VB_TCP_RST | VB_TCP_ACK;
	}
	t[12] = 5 << 4;
	tcp_csum(t, f->dst, f->src);
	return len;
}

size_t vb_frame_udp(const uint8_t from_mac[6], const uint8_t to_mac[6], uint32_t src,
		    uint16_t sport, uint32_t dst, uint16_t dport, const uint8_t *payload,
		    size_t plen, uint8_t *out, size_t cap)
{
	size_t len = VB_ETH_HLEN + 20 + 8 + plen;
	if (cap < len || plen > 65535 - 28)
		return 0;
	memcpy(out, to_mac, 6);
	memcpy(out + 6, from_mac, 6);
	wr16(out + 12, VB_ETH_P_IP);
	uint8_t *ip = out + VB_ETH_HLEN;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	wr16(ip + 2, (uint16_t)(28 + plen));
	ip[6] = 0x40;
	ip[8] = 64;
	ip[9] = VB_IPPROTO_UDP;
	wr32(ip + 12, src);
	wr32(ip + 16, dst);
	wr16(ip + 10, vb_inet_csum(ip, 20, 0));
	uint8_t *u = ip + 20;
	wr16(u, sport);
	wr16(u + 2, dport);
	wr16(u + 4, (uint16_t)(8 + plen));
	wr16(u + 6, 0);
	memcpy(u + 8, payload, plen);
	uint32_t sum = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) +
		       VB_IPPROTO_UDP + (uint32_t)(8 + plen);
	uint16_t c = vb_inet_csum(u, 8 + plen, sum);
	wr16(u + 6, c ? c : 0xffff); /* 0 would mean "no checksum" */
	return len;
}

size_t vb_frame_icmp_unreach(const struct vb_frame *f, uint32_t from, uint8_t code, uint8_t *out,
			     size_t cap)
{
	if (f->kind != VB_FRAME_IPV4)
		return 0;
	/* never an error about an ICMP error (RFC 1122 3.2.2) */
	if (f->proto == VB_IPPROTO_ICMP && !f->fragment &&
	    (f->icmp_type == 3 || f->icmp_type == 11 || f->icmp_type == 12 || f->icmp_type == 5))
		return 0;
	size_t quoted = f->ip_hlen + 8 < f->ip_len ? f->ip_hlen + 8 : f->ip_len;
	size_t len = VB_ETH_HLEN + 20 + 8 + quoted;
	if (cap < len)
		return 0;
	reply_headers(f, from, f->src, VB_IPPROTO_ICMP, 8 + quoted, out);
	uint8_t *ic = out + VB_ETH_HLEN + 20;
	memset(ic, 0, 8);
	ic[0] = 3;
	ic[1] = code;
	memcpy(ic + 8, f->eth + f->ip_off, quoted);
	wr16(ic + 2, vb_inet_csum(ic, 8 + quoted, 0));
	return len;
}
