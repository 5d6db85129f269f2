/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The egress policy without a VM (src/net/filter.c): built-in denies, the
 * host's loopback only on declared ports, private ranges, deny and allow,
 * the caps, and the replies that make a refusal fail fast.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/filter.h"
#include "net/frame.h"
#include "net_frames.h"

#define GUEST VB_NET_GUEST
#define A VB_NET_ADDR

static struct vb_net_decision d;
static uint8_t reply[192];

static void tcp(struct vb_net_filter *fl, uint32_t dst, uint16_t sport, uint16_t dport,
		uint8_t flags, int64_t now)
{
	uint8_t f[128];
	size_t n = tf_tcp(f, GUEST, dst, sport, dport, flags, 100, 0);
	vb_net_filter_guest(fl, f, n, now, reply, sizeof(reply), &d);
}

static void syn(struct vb_net_filter *fl, uint32_t dst, uint16_t dport)
{
	tcp(fl, dst, 40000, dport, VB_TCP_SYN, 1000);
}

static void udp(struct vb_net_filter *fl, uint32_t dst, uint16_t dport)
{
	uint8_t f[128];
	size_t n = tf_udp(f, GUEST, dst, 5353, dport);
	vb_net_filter_guest(fl, f, n, 1000, reply, sizeof(reply), &d);
}

static void refused(const char *rule)
{
	assert_int_equal(d.verdict, VB_NET_REFUSE);
	assert_string_equal(d.rule, rule);
}

static void passed(void)
{
	if (d.verdict != VB_NET_PASS)
		fail_msg("refused: %s", d.rule ? d.rule : "(dropped)");
}

static struct vb_net_filter *filter(const struct vb_network *cfg)
{
	vb_error err = { 0 };
	struct vb_net_filter *fl = vb_net_filter_new(cfg, &err);
	if (!fl)
		fail_msg("%s", err.msg);
	return fl;
}

static struct vb_net_cidr cidr(const char *addr, unsigned prefix)
{
	struct vb_net_cidr c = { .family = AF_INET, .prefix = prefix };
	assert_int_equal(inet_pton(AF_INET, addr, c.addr), 1);
	return c;
}

static void test_builtin_denies(void **state)
{
	(void)state;
	struct vb_network cfg = { .enabled = 1 };
	struct vb_net_filter *fl = filter(&cfg);
	syn(fl, A(169, 254, 169, 254), 80);
	refused("cloud-metadata");
	/* a fast failure in the guest: an RST from the destination */
	struct vb_frame r;
	assert_int_equal(d.reply_len, 54);
	assert_int_equal(vb_frame_parse(reply, d.reply_len, &r), VB_FRAME_IPV4);
	assert_int_equal(r.tcp_flags, VB_TCP_RST | VB_TCP_ACK);
	assert_int_equal(r.src, A(169, 254, 169, 254));
	assert_true(d.report);
	syn(fl, A(169, 254, 1, 1), 443);
	refused("cloud-metadata");
	syn(fl, A(100, 100, 100, 200), 80);
	refused("cloud-metadata");
	syn(fl, A(127, 0, 0, 1), 22); /* a crafted frame: the guest routes 127/8 itself */
	refused("host-loopback");
	syn(fl, A(224, 0, 0, 1), 80);
	refused("multicast");
	syn(fl, A(255, 255, 255, 255), 80);
	refused("reserved");
	syn(fl, A(10, 0, 2, 9), 80);
	refused("voidbox-net");
	syn(fl, A(10, 1, 2, 3), 80);
	refused("private");
	syn(fl, A(172, 16, 0, 1), 80);
	refused("private");
	syn(fl, A(192, 168, 1, 1), 80);
	refused("private");
	syn(fl, A(93, 184, 216, 34), 443);
	passed();
	assert_true(d.new_conn);
	/* DNS at 10.0.2.3:53 only */
	udp(fl, VB_NET_DNS, 53);
	passed();
	udp(fl, VB_NET_DNS, 54);
	refused("dns-only");
	vb_net_filter_free(fl);
}

static void test_host_ports(void **state)
{
	(void)state;
	unsigned ports[] = { 8080 };
	struct vb_network cfg = { .enabled = 1, .host_ports = ports, .n_host_ports = 1 };
	struct vb_net_filter *fl = filter(&cfg);
	syn(fl, VB_NET_GATEWAY, 8080);
	passed();
	syn(fl, VB_NET_GATEWAY, 22);
	refused("host-loopback");
	assert_true(d.host_port); /* worth the hint that says how to declare it */
	assert_int_equal(d.port, 22);
	/* UDP to the host is never declared: ICMP unreachable, not silence */
	udp(fl, VB_NET_GATEWAY, 8080);
	refused("host-loopback");
	assert_false(d.host_port);
	struct vb_frame r;
	assert_true(d.reply_len > 0);
	assert_int_equal(vb_frame_parse(reply, d.reply_len, &r), VB_FRAME_IPV4);
	assert_int_equal(r.proto, VB_IPPROTO_ICMP);
	assert_int_equal(r.icmp_type, 3);
	vb_net_filter_free(fl);
}

static void test_deny_allow_private(void **state)
{
	(void)state;
	struct vb_net_cidr deny[] = { cidr("203.0.113.0", 24) };
	struct vb_network cfg = { .enabled = 1, .deny = deny, .n_deny = 1, .allow_private = 1 };
	struct vb_net_filter *fl = filter(&cfg);
	syn(fl, A(203, 0, 113, 7), 80);
	refused("deny");
	syn(fl, A(192, 168, 1, 1), 80);
	passed();
	syn(fl, A(169, 254, 169, 254), 80); /* allow_private does not open metadata */
	refused("cloud-metadata");
	vb_net_filter_free(fl);

	struct vb_net_cidr allow[] = { cidr("198.51.100.0", 24), cidr("192.168.7.0", 24) };
	struct vb_network only = { .enabled = 1, .allow = allow, .n_allow = 2, .allow_set = 1 };
	fl = filter(&only);
	syn(fl, A(198, 51, 100, 9), 443);
	passed();
	syn(fl, A(192, 168, 7, 1), 80); /* listed: reachable though private */
	passed();
	syn(fl, A(93, 184, 216, 34), 443);
	refused("not-allowed");
	udp(fl, VB_NET_DNS, 53); /* DNS always */
	passed();
	vb_net_filter_free(fl);

	struct vb_network empty = { .enabled = 1, .allow_set = 1 };
	fl = filter(&empty);
	syn(fl, A(1, 1, 1, 1), 443);
	refused("not-allowed");
	vb_net_filter_free(fl);
}

static void test_max_connections(void **state)
{
	(void)state;
	struct vb_network cfg = { .enabled = 1, .max_connections = 2 };
	struct vb_net_filter *fl = filter(&cfg);
	uint32_t dst = A(93, 184, 216, 34);
	tcp(fl, dst, 1001, 80, VB_TCP_SYN, 1000);
	passed();
	tcp(fl, dst, 1002, 80, VB_TCP_SYN, 1000);
	passed();
	tcp(fl, dst, 1001, 80, VB_TCP_SYN, 1001); /* a retransmission is no new flow */
	passed();
	tcp(fl, dst, 1003, 80, VB_TCP_SYN, 1002);
	refused("max_connections");
	assert_true(d.reply_len > 0);
	/* one ends (the guest resets it): room again */
	tcp(fl, dst, 1001, 80, VB_TCP_RST | VB_TCP_ACK, 1003);
	passed();
	tcp(fl, dst, 1003, 80, VB_TCP_SYN, 1004);
	passed();
	assert_int_equal(vb_net_filter_open(fl), 2);
	/* a closed flow (FIN both ways) stops counting */
	uint8_t f[128];
	size_t n = tf_tcp(f, dst, GUEST, 80, 1002, VB_TCP_FIN | VB_TCP_ACK, 1, 1);
	assert_int_equal(vb_net_filter_to_guest(fl, f, n, 1005), 0);
	tcp(fl, dst, 1002, 80, VB_TCP_FIN | VB_TCP_ACK, 1005);
	passed();
	assert_int_equal(vb_net_filter_open(fl), 1);
	/* a SYN nobody answers gives its slot back after 30 s */
	tcp(fl, dst, 1004, 80, VB_TCP_SYN, 1006);
	passed();
	assert_int_equal(vb_net_filter_open(fl), 2);
	tcp(fl, dst, 1005, 80, VB_TCP_SYN, 1006 + 31000);
	passed();
	vb_net_filter_free(fl);
}

static void test_connections_per_sec(void **state)
{
	(void)state;
	struct vb_network cfg = { .enabled = 1, .connections_per_sec = 3 };
	struct vb_net_filter *fl = filter(&cfg);
	uint32_t dst = A(93, 184, 216, 34);
	for (uint16_t i = 0; i < 3; i++) {
		tcp(fl, dst, (uint16_t)(2000 + i), 80, VB_TCP_SYN, 5000);
		passed();
	}
	tcp(fl, dst, 2003, 80, VB_TCP_SYN, 5500);
	refused("connections_per_sec");
	tcp(fl, dst, 2003, 80, VB_TCP_SYN, 6000); /* the next second */
	passed();
	vb_net_filter_free(fl);
}

static void test_forwarded_connection(void **state)
{
	(void)state;
	struct vb_network cfg = { .enabled = 1 };
	struct vb_net_filter *fl = filter(&cfg);
	/* libslirp connects a published port into the guest from 10.0.2.2 */
	uint8_t f[128];
	size_t n = tf_tcp(f, VB_NET_GATEWAY, GUEST, 50000, 8080, VB_TCP_SYN, 1, 0);
	assert_int_equal(vb_net_filter_to_guest(fl, f, n, 1000), 0);
	/* the guest's answers go to 10.0.2.2:50000, which is not declared */
	tcp(fl, VB_NET_GATEWAY, 8080, 50000, VB_TCP_SYN | VB_TCP_ACK, 1001);
	passed();
	tcp(fl, VB_NET_GATEWAY, 8080, 50000, VB_TCP_ACK, 1002);
	passed();
	/* while a guest-made connection there is still refused */
	tcp(fl, VB_NET_GATEWAY, 8081, 50000, VB_TCP_SYN, 1003);
	refused("host-loopback");
	/* inbound connections do not count against max_connections */
	assert_int_equal(vb_net_filter_open(fl), 0);
	vb_net_filter_free(fl);
}

static void test_not_carried(void **state)
{
	(void)state;
	struct vb_network cfg = { .enabled = 1 };
	struct vb_net_filter *fl = filter(&cfg);
	uint8_t f[128];
	/* a spoofed source */
	size_t n = tf_tcp(f, A(10, 0, 2, 16), A(93, 184, 216, 34), 1, 80, VB_TCP_SYN, 0, 0);
	vb_net_filter_guest(fl, f, n, 0, reply, sizeof(reply), &d);
	refused("source-address");
	/* fragments, whatever their destination */
	n = tf_udp(f, GUEST, A(93, 184, 216, 34), 1, 53);
	tf_put16(f + 14 + 6, 0x2000);
	vb_net_filter_guest(fl, f, n, 0, reply, sizeof(reply), &d);
	refused("ip-fragment");
	/* IPv6 and other ethertypes dropped quietly */
	n = tf_udp(f, GUEST, A(93, 184, 216, 34), 1, 53);
	tf_put16(f + 12, 0x86dd);
	vb_net_filter_guest(fl, f, n, 0, reply, sizeof(reply), &d);
	assert_int_equal(d.verdict, VB_NET_DROP);
	vb_net_filter_guest(fl, f, 3, 0, reply, sizeof(reply), &d);
	assert_int_equal(d.verdict, VB_NET_DROP);
	/* other IP protocols (GRE) to an allowed address */
	uint8_t gre[8] = { 0 };
	n = tf_ipv4(f, GUEST, A(93, 184, 216, 34), 47, gre, sizeof(gre));
	vb_net_filter_guest(fl, f, n, 0, reply, sizeof(reply), &d);
	refused("protocol");
	/* ping the gateway: libslirp answers it itself */
	n = tf_icmp_echo(f, GUEST, VB_NET_GATEWAY);
	vb_net_filter_guest(fl, f, n, 0, reply, sizeof(reply), &d);
	passed();
	vb_net_filter_free(fl);
}

static void test_limits_and_describe(void **state)
{
	(void)state;
	vb_error err = { 0 };
	struct vb_network cfg = { .enabled = 1, .max_connections = VB_NET_MAX_CONNECTIONS + 1 };
	assert_null(vb_net_filter_new(&cfg, &err));
	assert_int_equal(err.kind, VB_E_USAGE);
	unsigned ports[] = { 8080, 11434 };
	struct vb_network ok = { .enabled = 1, .host_ports = ports, .n_host_ports = 2 };
	struct vb_net_filter *fl = filter(&ok);
	char *text = vb_net_filter_describe(fl);
	assert_non_null(text);
	assert_non_null(strstr(text, "allow 10.0.2.2 tcp/8080,11434 host-ports"));
	assert_non_null(strstr(text, "deny 169.254.0.0/16 cloud-metadata"));
	assert_non_null(strstr(text, "deny 192.168.0.0/16 private"));
	free(text);
	vb_net_filter_free(fl);
}

/* ---- domain mode: the SNI check ---------------------------------------- */

#define SHARED A(198, 51, 100, 7)

static int fake_resolved(void *opaque, uint32_t addr, int64_t now)
{
	(void)opaque;
	(void)now;
	return addr == SHARED;
}

static int fake_sni_ok(void *opaque, const char *name, uint32_t addr, int64_t now)
{
	(void)now;
	return addr == SHARED && !strcmp(name, (const char *)opaque);
}

/* A data segment (payload) from the guest on 40000 -> SHARED:443. */
static size_t data_frame(uint8_t *f, uint32_t seq, const uint8_t *payload, size_t n)
{
	uint8_t t[1600];
	memset(t, 0, 20);
	tf_put16(t, 40000);
	tf_put16(t + 2, 443);
	tf_put32(t + 4, seq);
	tf_put32(t + 8, 5000);
	t[12] = 5 << 4;
	t[13] = VB_TCP_ACK | 0x08;
	memcpy(t + 20, payload, n);
	return tf_ipv4(f, GUEST, SHARED, 6, t, 20 + n);
}

static uint8_t *read_hello(size_t *n)
{
	static uint8_t buf[4096];
	FILE *fp = fopen(VB_SRCDIR "/tests/fuzz/corpus/sni/python_tls13.bin", "rb");
	assert_non_null(fp);
	*n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	assert_true(*n > 100);
	return buf;
}

static struct vb_net_filter *domain_filter(const char *allowed_name)
{
	struct vb_network cfg = { .enabled = 1 };
	struct vb_net_filter *fl = filter(&cfg);
	struct vb_net_names names = { fake_resolved, fake_sni_ok, (void *)(uintptr_t)allowed_name };
	vb_net_filter_set_names(fl, &names);
	return fl;
}

static void guest_frame(struct vb_net_filter *fl, const uint8_t *f, size_t n)
{
	vb_net_filter_guest(fl, f, n, 2000, reply, sizeof(reply), &d);
}

static void test_domain_mode_addresses(void **state)
{
	(void)state;
	struct vb_net_filter *fl = domain_filter("files.pypi.org");
	syn(fl, SHARED, 443); /* resolved from an allowed name */
	passed();
	syn(fl, A(198, 51, 100, 8), 443);
	refused("not-allowed");
	syn(fl, A(169, 254, 169, 254), 80); /* a name resolving there does not help */
	refused("cloud-metadata");
	/* the guest's resolver is VoidBox's, over UDP: TCP to 10.0.2.3 would go around it */
	tcp(fl, VB_NET_DNS, 40001, 53, VB_TCP_SYN, 1000);
	refused("dns-only");
	vb_net_filter_free(fl);
}

static void test_sni_allowed_is_held_then_released(void **state)
{
	(void)state;
	size_t hn;
	uint8_t *hello = read_hello(&hn); /* names Files.PyPI.org */
	struct vb_net_filter *fl = domain_filter("files.pypi.org");
	uint8_t f[2048], f1[2048];
	size_t n = tf_tcp(f, GUEST, SHARED, 40000, 443, VB_TCP_SYN, 99, 0);
	guest_frame(fl, f, n);
	passed();
	/* the ClientHello in two segments: the first is held */
	size_t cut = hn / 2;
	size_t n1 = data_frame(f1, 100, hello, cut);
	guest_frame(fl, f1, n1);
	assert_int_equal(d.verdict, VB_NET_HOLD);
	/* its retransmission is not kept twice */
	guest_frame(fl, f1, n1);
	assert_int_equal(d.verdict, VB_NET_HOLD);
	/* a segment past a gap waits for the retransmission of the gap */
	n = data_frame(f, (uint32_t)(100 + cut + 10), hello + cut, hn - cut);
	guest_frame(fl, f, n);
	assert_int_equal(d.verdict, VB_NET_HOLD);
	n = data_frame(f, (uint32_t)(100 + cut), hello + cut, hn - cut);
	guest_frame(fl, f, n);
	assert_int_equal(d.verdict, VB_NET_RELEASE);
	assert_int_equal(d.held->n, 2);
	assert_int_equal(d.held->lens[0], n1);
	assert_memory_equal(d.held->data, f1, n1);
	assert_memory_equal(d.held->data + n1, f, n);
	/* from then on the connection flows */
	n = data_frame(f, (uint32_t)(100 + hn), (const uint8_t *)"x", 1);
	guest_frame(fl, f, n);
	passed();
	vb_net_filter_free(fl);
}

static void test_sni_other_name_refused_both_ways(void **state)
{
	(void)state;
	size_t hn;
	uint8_t *hello = read_hello(&hn);
	struct vb_net_filter *fl = domain_filter("api.github.com"); /* not the hello's name */
	uint8_t f[2048];
	size_t n = tf_tcp(f, GUEST, SHARED, 40000, 443, VB_TCP_SYN, 99, 0);
	guest_frame(fl, f, n);
	passed();
	n = data_frame(f, 100, hello, hn);
	guest_frame(fl, f, n);
	refused("sni");
	/* the guest gets an RST from the server's address... */
	struct vb_frame r;
	assert_int_equal(vb_frame_parse(reply, d.reply_len, &r), VB_FRAME_IPV4);
	assert_int_equal(r.src, SHARED);
	assert_true(r.tcp_flags & VB_TCP_RST);
	assert_int_equal(r.seq, 5000);
	/* ...and libslirp one from the guest at the first data byte */
	assert_int_equal(d.net_reply_len, 54);
	assert_int_equal(vb_frame_parse(reply + 128, d.net_reply_len, &r), VB_FRAME_IPV4);
	assert_int_equal(r.src, GUEST);
	assert_int_equal(r.dst, SHARED);
	assert_int_equal(r.sport, 40000);
	assert_int_equal(r.tcp_flags, VB_TCP_RST);
	assert_int_equal(r.seq, 100);
	assert_int_equal(vb_inet_csum(reply + 128 + 14, 20, 0), 0);
	/* the flow is gone: nothing more of it passes, not even statelessly
	 * (libslirp must never get data past the check) */
	assert_int_equal(vb_net_filter_open(fl), 0);
	n = data_frame(f, 100 + (uint32_t)hn, (const uint8_t *)"GET /", 5);
	guest_frame(fl, f, n);
	refused("sni");
	assert_int_equal(d.net_reply_len, 54);
	vb_net_filter_free(fl);
}

static void test_sni_plain_protocol_passes(void **state)
{
	(void)state;
	struct vb_net_filter *fl = domain_filter("files.pypi.org");
	uint8_t f[2048];
	size_t n = tf_tcp(f, GUEST, SHARED, 40000, 443, VB_TCP_SYN, 99, 0);
	guest_frame(fl, f, n);
	static const char get[] = "GET / HTTP/1.1\r\nHost: files.pypi.org\r\n\r\n";
	n = data_frame(f, 100, (const uint8_t *)get, sizeof(get) - 1);
	guest_frame(fl, f, n);
	assert_int_equal(d.verdict, VB_NET_RELEASE);
	assert_int_equal(d.held->n, 1);
	/* a TLS record that is no ClientHello with a name is refused */
	n = tf_tcp(f, GUEST, SHARED, 40002, 443, VB_TCP_SYN, 99, 0);
	vb_net_filter_guest(fl, f, n, 2000, reply, sizeof(reply), &d);
	uint8_t t[1600];
	memset(t, 0, 20);
	tf_put16(t, 40002);
	tf_put16(t + 2, 443);
	tf_put32(t + 4, 100);
	t[12] = 5 << 4;
	t[13] = VB_TCP_ACK;
	static const uint8_t bogus[] = { 0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00 };
	memcpy(t + 20, bogus, sizeof(bogus));
	n = tf_ipv4(f, GUEST, SHARED, 6, t, 20 + sizeof(bogus));
	guest_frame(fl, f, n);
	refused("sni");
	vb_net_filter_free(fl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_denies),       cmocka_unit_test(test_host_ports),
		cmocka_unit_test(test_deny_allow_private),   cmocka_unit_test(test_max_connections),
		cmocka_unit_test(test_connections_per_sec),  cmocka_unit_test(test_forwarded_connection),
		cmocka_unit_test(test_not_carried),          cmocka_unit_test(test_limits_and_describe),
		cmocka_unit_test(test_domain_mode_addresses),
		cmocka_unit_test(test_sni_allowed_is_held_then_released),
		cmocka_unit_test(test_sni_other_name_refused_both_ways),
		cmocka_unit_test(test_sni_plain_protocol_passes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
