/* SPDX-License-Identifier: Apache-2.0 */
/* Frames as a guest would write them, for the network's unit tests and the
 * fuzz corpus. */
#ifndef VB_TEST_NET_FRAMES_H
#define VB_TEST_NET_FRAMES_H

#include <stdint.h>
#include <string.h>

#include "net/frame.h"

static const uint8_t tf_guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t tf_gw_mac[6] = { 0x52, 0x55, 0x0a, 0x00, 0x02, 0x02 };

static inline void tf_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void tf_put32(uint8_t *p, uint32_t v)
{
	tf_put16(p, (uint16_t)(v >> 16));
	tf_put16(p + 2, (uint16_t)v);
}

/* Ethernet + IPv4 (no options) + (l4len) bytes of (l4); returns the length. */
static inline size_t tf_ipv4(uint8_t *out, uint32_t src, uint32_t dst, uint8_t proto,
			     const uint8_t *l4, size_t l4len)
{
	memcpy(out, tf_gw_mac, 6);
	memcpy(out + 6, tf_guest_mac, 6);
	tf_put16(out + 12, 0x0800);
	uint8_t *ip = out + 14;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	tf_put16(ip + 2, (uint16_t)(20 + l4len));
	tf_put16(ip + 6, 0x4000); /* DF */
	ip[8] = 64;
	ip[9] = proto;
	tf_put32(ip + 12, src);
	tf_put32(ip + 16, dst);
	tf_put16(ip + 10, vb_inet_csum(ip, 20, 0));
	memcpy(ip + 20, l4, l4len);
	return 34 + l4len;
}

static inline size_t tf_tcp(uint8_t *out, uint32_t src, uint32_t dst, uint16_t sport,
			    uint16_t dport, uint8_t flags, uint32_t seq, uint32_t ack)
{
	uint8_t t[20] = { 0 };
	tf_put16(t, sport);
	tf_put16(t + 2, dport);
	tf_put32(t + 4, seq);
	tf_put32(t + 8, ack);
	t[12] = 5 << 4;
	t[13] = flags;
	tf_put16(t + 14, 64240);
	return tf_ipv4(out, src, dst, 6, t, sizeof(t));
}

static inline size_t tf_udp(uint8_t *out, uint32_t src, uint32_t dst, uint16_t sport,
			    uint16_t dport)
{
	uint8_t u[12] = { 0 };
	tf_put16(u, sport);
	tf_put16(u + 2, dport);
	tf_put16(u + 4, sizeof(u));
	memcpy(u + 8, "ping", 4);
	return tf_ipv4(out, src, dst, 17, u, sizeof(u));
}

static inline size_t tf_icmp_echo(uint8_t *out, uint32_t src, uint32_t dst)
{
	uint8_t e[16] = { 8, 0 };
	tf_put16(e + 2, vb_inet_csum(e, sizeof(e), 0));
	return tf_ipv4(out, src, dst, 1, e, sizeof(e));
}

#endif
