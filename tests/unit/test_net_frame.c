/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Frame parsing (src/net/frame.c) with what a hostile guest can write:
 * every truncation of a valid frame, bogus IHL and lengths, fragments; and
 * the refusal replies, checked as a peer would (checksums verified).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/filter.h"
#include "net/frame.h"
#include "net_frames.h"

#define GUEST VB_NET_GUEST
#define META VB_NET_ADDR(169, 254, 169, 254)

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The TCP checksum over the pseudo-header verifies to 0 (as ~sum). */
static int tcp_csum_ok(const uint8_t *frame, size_t len)
{
	const uint8_t *ip = frame + 14;
	size_t hl = (size_t)(ip[0] & 15) * 4, tl = rd16(ip + 2) - hl;
	uint32_t s = rd32(ip + 12), d = rd32(ip + 16);
	uint32_t sum = (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + ip[9] + (uint32_t)tl;
	return 14 + hl + tl <= len && vb_inet_csum(ip + hl, tl, sum) == 0;
}

static void test_parse_tcp_syn(void **state)
{
	(void)state;
	uint8_t f[128];
	size_t n = tf_tcp(f, GUEST, META, 40000, 80, VB_TCP_SYN, 1000, 0);
	struct vb_frame p;
	assert_int_equal(vb_frame_parse(f, n, &p), VB_FRAME_IPV4);
	assert_int_equal(p.src, GUEST);
	assert_int_equal(p.dst, META);
	assert_int_equal(p.proto, VB_IPPROTO_TCP);
	assert_true(p.have_ports);
	assert_int_equal(p.sport, 40000);
	assert_int_equal(p.dport, 80);
	assert_int_equal(p.tcp_flags, VB_TCP_SYN);
	assert_int_equal(p.seq, 1000);
	assert_false(p.fragment);
	/* Ethernet padding after the packet is not part of it */
	memset(f + n, 0xee, 10);
	assert_int_equal(vb_frame_parse(f, n + 10, &p), VB_FRAME_IPV4);
	assert_int_equal(p.len, n);
}

/* Every prefix of valid frames parses without reading past it: short ones
 * are malformed, never misread (ASAN checks the reads). */
static void test_every_truncation(void **state)
{
	(void)state;
	size_t lens[4];
	uint8_t frames[4][128];
	lens[0] = tf_tcp(frames[0], GUEST, META, 1, 2, VB_TCP_SYN, 0, 0);
	lens[1] = tf_udp(frames[1], GUEST, VB_NET_DNS, 3, 53);
	lens[2] = tf_icmp_echo(frames[2], GUEST, VB_NET_GATEWAY);
	lens[3] = 14 + 28;
	memset(frames[3], 0, sizeof(frames[3]));
	tf_put16(frames[3] + 12, 0x0806);
	tf_put16(frames[3] + 14, 1);
	tf_put16(frames[3] + 16, 0x0800);
	frames[3][18] = 6;
	frames[3][19] = 4;
	for (int k = 0; k < 4; k++) {
		for (size_t n = 0; n < lens[k]; n++) {
			/* a copy exactly n long, so that ASAN sees any read past it */
			uint8_t *cut = malloc(n ? n : 1);
			assert_non_null(cut);
			memcpy(cut, frames[k], n);
			struct vb_frame p;
			assert_int_equal(vb_frame_parse(cut, n, &p), VB_FRAME_MALFORMED);
			free(cut);
		}
		struct vb_frame p;
		assert_true(vb_frame_parse(frames[k], lens[k], &p) > 0);
	}
}

static void test_bogus_headers(void **state)
{
	(void)state;
	uint8_t f[128];
	struct vb_frame p;
	size_t n = tf_tcp(f, GUEST, META, 1, 2, VB_TCP_SYN, 0, 0);
	uint8_t *ip = f + 14;
	ip[0] = 0x44; /* IHL 4: shorter than a header */
	assert_int_equal(vb_frame_parse(f, n, &p), VB_FRAME_MALFORMED);
	ip[0] = 0x4f; /* IHL 15: 60 bytes, more than the packet */
	assert_int_equal(vb_frame_parse(f, n, &p), VB_FRAME_MALFORMED);
	ip[0] = 0x65; /* version 6 in an IPv4 ethertype */
	assert_int_equal(vb_frame_parse(f, n, &p), VB_FRAME_MALFORMED);
	ip[0] = 0x45;
	tf_put16(ip + 2, 2000); /* total length past the frame */
	assert_int_equal(vb_frame_parse(f, n, &p), VB_FRAME_MALFORMED);
	tf_put16(ip + 2, 10); /* total length shorter than the header */
	assert_int_equal(vb_frame_parse(f, n, &p), VB_FRAME_MALFORMED);
	tf_put16(ip + 2, 40);
	ip[20 + 12] = 0x40; /* TCP data offset 4 */
	assert_int_equal(vb_frame_parse(f, n, &p), VB_FRAME_MALFORMED);
	ip[20 + 12] = 0xf0; /* TCP data offset 15: past the segment */
	assert_int_equal(vb_frame_parse(f, n, &p), VB_FRAME_MALFORMED);
	ip[20 + 12] = 0x50;
	assert_int_equal(vb_frame_parse(f, n, &p), VB_FRAME_IPV4);
	/* other ethertypes are not ours to parse */
	tf_put16(f + 12, 0x86dd);
	assert_int_equal(vb_frame_parse(f, n, &p), VB_FRAME_IPV6);
	tf_put16(f + 12, 0x8100);
	assert_int_equal(vb_frame_parse(f, n, &p), VB_FRAME_OTHER);
}

static void test_fragments(void **state)
{
	(void)state;
	uint8_t f[128];
	struct vb_frame p;
	size_t n = tf_tcp(f, GUEST, META, 1, 2, VB_TCP_SYN, 0, 0);
	tf_put16(f + 14 + 6, 0x2000); /* MF: a first fragment */
	assert_int_equal(vb_frame_parse(f, n, &p), VB_FRAME_IPV4);
	assert_true(p.fragment);
	assert_false(p.have_ports);
	tf_put16(f + 14 + 6, 0x0010); /* offset 128: a later one */
	assert_int_equal(vb_frame_parse(f, n, &p), VB_FRAME_IPV4);
	assert_true(p.fragment);
	assert_false(p.have_ports);
}

static void test_rst_for_syn(void **state)
{
	(void)state;
	uint8_t f[128], r[128];
	size_t n = tf_tcp(f, GUEST, META, 40000, 80, VB_TCP_SYN, 0xfffffffeu, 0);
	struct vb_frame p, q;
	assert_int_equal(vb_frame_parse(f, n, &p), VB_FRAME_IPV4);
	size_t rn = vb_frame_tcp_rst(&p, r, sizeof(r));
	assert_int_equal(rn, 54);
	assert_memory_equal(r, tf_guest_mac, 6); /* to the guest */
	assert_memory_equal(r + 6, tf_gw_mac, 6);
	assert_int_equal(vb_inet_csum(r + 14, 20, 0), 0);
	assert_true(tcp_csum_ok(r, rn));
	assert_int_equal(vb_frame_parse(r, rn, &q), VB_FRAME_IPV4);
	assert_int_equal(q.src, META);
	assert_int_equal(q.dst, GUEST);
	assert_int_equal(q.sport, 80);
	assert_int_equal(q.dport, 40000);
	assert_int_equal(q.tcp_flags, VB_TCP_RST | VB_TCP_ACK);
	assert_int_equal(q.seq, 0);
	assert_int_equal(q.ack, 0xffffffffu); /* the SYN's sequence number + 1 */
	/* never an RST for an RST; short buffers refused */
	assert_int_equal(vb_frame_tcp_rst(&q, r, sizeof(r)), 0);
	assert_int_equal(vb_frame_tcp_rst(&p, r, 53), 0);
}

static void test_rst_for_ack(void **state)
{
	(void)state;
	uint8_t f[128], r[128];
	size_t n = tf_tcp(f, GUEST, META, 40000, 80, VB_TCP_ACK, 5, 777);
	struct vb_frame p, q;
	assert_int_equal(vb_frame_parse(f, n, &p), VB_FRAME_IPV4);
	size_t rn = vb_frame_tcp_rst(&p, r, sizeof(r));
	assert_true(rn > 0);
	assert_true(tcp_csum_ok(r, rn));
	assert_int_equal(vb_frame_parse(r, rn, &q), VB_FRAME_IPV4);
	assert_int_equal(q.tcp_flags, VB_TCP_RST);
	assert_int_equal(q.seq, 777); /* from the segment's ACK */
}

static void test_icmp_unreachable(void **state)
{
	(void)state;
	uint8_t f[128], r[128];
	size_t n = tf_udp(f, GUEST, META, 5000, 53);
	struct vb_frame p, q;
	assert_int_equal(vb_frame_parse(f, n, &p), VB_FRAME_IPV4);
	size_t rn = vb_frame_icmp_unreach(&p, VB_NET_GATEWAY, 13, r, sizeof(r));
	assert_int_equal(rn, 14 + 20 + 8 + 28);
	assert_int_equal(vb_inet_csum(r + 14, 20, 0), 0);
	assert_int_equal(vb_inet_csum(r + 34, rn - 34, 0), 0);
	assert_int_equal(vb_frame_parse(r, rn, &q), VB_FRAME_IPV4);
	assert_int_equal(q.proto, VB_IPPROTO_ICMP);
	assert_int_equal(q.icmp_type, 3);
	assert_int_equal(q.icmp_code, 13);
	assert_int_equal(q.src, VB_NET_GATEWAY);
	assert_int_equal(q.dst, GUEST);
	assert_memory_equal(r + 42, f + 14, 28); /* the quoted header and 8 bytes */
	/* no error about an error */
	assert_int_equal(vb_frame_icmp_unreach(&q, VB_NET_GATEWAY, 13, r, sizeof(r)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_tcp_syn),   cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_bogus_headers),   cmocka_unit_test(test_fragments),
		cmocka_unit_test(test_rst_for_syn),     cmocka_unit_test(test_rst_for_ack),
		cmocka_unit_test(test_icmp_unreachable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
