/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gen_netfilter_corpus.c — writes the seed corpus of fuzz_netfilter: streams
 * of frames (2-byte length, top bit = towards the guest) a guest and
 * libslirp exchange, and malformed ones.
 *
 *   gcc -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -Itests/unit -o gen tests/fuzz/gen_netfilter_corpus.c src/net/frame.c
 *   ./gen tests/fuzz/corpus/netfilter
 */
#include <stdio.h>
#include <stdlib.h>

#include "net/filter.h"
#include "net_frames.h"

static uint8_t buf[65536];
static size_t len;

static void add(const uint8_t *f, size_t n, int to_guest)
{
	buf[len++] = (uint8_t)((to_guest ? 0x80 : 0) | (n >> 8));
	buf[len++] = (uint8_t)n;
	memcpy(buf + len, f, n);
	len += n;
}

static void save(const char *dir, const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *fp = fopen(path, "wb");
	if (!fp || fwrite(buf, 1, len, fp) != len || fclose(fp) != 0) {
		perror(path);
		exit(1);
	}
	len = 0;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "tests/fuzz/corpus/netfilter";
	uint8_t f[2048];
	uint32_t web = VB_NET_ADDR(93, 184, 216, 34), g = VB_NET_GUEST;
	/* a whole connection: SYN, SYN-ACK, ACK, FIN both ways */
	buf[len++] = 0;
	add(f, tf_tcp(f, g, web, 40000, 80, VB_TCP_SYN, 1, 0), 0);
	add(f, tf_tcp(f, web, g, 80, 40000, VB_TCP_SYN | VB_TCP_ACK, 9, 2), 1);
	add(f, tf_tcp(f, g, web, 40000, 80, VB_TCP_ACK, 2, 10), 0);
	add(f, tf_tcp(f, g, web, 40000, 80, VB_TCP_FIN | VB_TCP_ACK, 2, 10), 0);
	add(f, tf_tcp(f, web, g, 80, 40000, VB_TCP_FIN | VB_TCP_ACK, 10, 3), 1);
	save(dir, "connection");
	/* refusals of every kind */
	buf[len++] = 1;
	add(f, tf_tcp(f, g, VB_NET_ADDR(169, 254, 169, 254), 1, 80, VB_TCP_SYN, 1, 0), 0);
	add(f, tf_tcp(f, g, VB_NET_GATEWAY, 2, 22, VB_TCP_SYN, 1, 0), 0);
	add(f, tf_udp(f, g, VB_NET_GATEWAY, 3, 8080), 0);
	add(f, tf_udp(f, g, VB_NET_DNS, 4, 53), 0);
	add(f, tf_icmp_echo(f, g, VB_NET_ADDR(10, 1, 1, 1)), 0);
	add(f, tf_icmp_echo(f, g, VB_NET_GATEWAY), 0);
	save(dir, "refusals");
	/* more connections than the cap */
	buf[len++] = 0;
	for (uint16_t p = 0; p < 8; p++)
		add(f, tf_tcp(f, g, web, (uint16_t)(1000 + p), 443, VB_TCP_SYN, 1, 0), 0);
	save(dir, "caps");
	/* a port forward into the guest */
	buf[len++] = 0;
	add(f, tf_tcp(f, VB_NET_GATEWAY, g, 50000, 8080, VB_TCP_SYN, 1, 0), 1);
	add(f, tf_tcp(f, g, VB_NET_GATEWAY, 8080, 50000, VB_TCP_SYN | VB_TCP_ACK, 5, 2), 0);
	save(dir, "forward");
	/* malformed: fragments, bad IHL, truncation, IPv6 */
	buf[len++] = 0;
	size_t n = tf_udp(f, g, web, 5, 53);
	tf_put16(f + 14 + 6, 0x2000);
	add(f, n, 0);
	n = tf_tcp(f, g, web, 6, 80, VB_TCP_SYN, 1, 0);
	f[14] = 0x4f;
	add(f, n, 0);
	n = tf_tcp(f, g, web, 7, 80, VB_TCP_SYN, 1, 0);
	add(f, n - 7, 0);
	n = tf_udp(f, g, web, 8, 53);
	tf_put16(f + 12, 0x86dd);
	add(f, n, 0);
	add(f, 5, 0);
	save(dir, "malformed");
	/* domain mode (first byte & 2): a ClientHello in two segments */
	FILE *hf = fopen("tests/fuzz/corpus/sni/python_tls13.bin", "rb");
	uint8_t hello[2048];
	size_t hn = hf ? fread(hello, 1, sizeof(hello), hf) : 0;
	if (hf)
		fclose(hf);
	if (hn > 100) {
		buf[len++] = 2;
		add(f, tf_tcp(f, g, web, 40000, 443, VB_TCP_SYN, 99, 0), 0);
		add(f, tf_tcp(f, web, g, 443, 40000, VB_TCP_SYN | VB_TCP_ACK, 7, 100), 1);
		for (size_t part = 0; part < 2; part++) {
			uint8_t t[1600] = { 0 };
			size_t from = part ? hn / 2 : 0, n2 = part ? hn - hn / 2 : hn / 2;
			tf_put16(t, 40000);
			tf_put16(t + 2, 443);
			tf_put32(t + 4, (uint32_t)(100 + from));
			tf_put32(t + 8, 8);
			t[12] = 5 << 4;
			t[13] = VB_TCP_ACK;
			memcpy(t + 20, hello + from, n2);
			add(f, tf_ipv4(f, g, web, 6, t, 20 + n2), 0);
		}
		save(dir, "sni");
	}
	return 0;
}
