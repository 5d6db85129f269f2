/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Domain mode's DNS (src/net/dnsproxy.c) against a stand-in resolver on a
 * loopback UDP socket: names not allowed are answered NXDOMAIN and never
 * forwarded; allowed ones are forwarded under another id, their answer goes
 * back to the guest with its own id (checksums valid) and its addresses are
 * remembered; answers that match no pending query are ignored.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/dnsproxy.h"
#include "net/filter.h"
#include "net/frame.h"
#include "net_frames.h"

static int resolver_fd = -1;
static uint8_t emitted[2048];
static size_t emitted_len;

static void emit(void *opaque, const uint8_t *frame, size_t len)
{
	(void)opaque;
	assert_true(len <= sizeof(emitted));
	memcpy(emitted, frame, len);
	emitted_len = len;
}

/* A query for (name) (type A) from the guest's port 5353, id (id). */
static size_t query_frame(uint8_t *f, const char *name, uint16_t id)
{
	uint8_t q[300];
	size_t n = 12;
	memset(q, 0, 12);
	tf_put16(q, id);
	tf_put16(q + 2, 0x0100); /* RD */
	tf_put16(q + 4, 1);
	for (const char *l = name; *l;) {
		size_t len = strcspn(l, ".");
		q[n++] = (uint8_t)len;
		memcpy(q + n, l, len);
		n += len;
		l += len + (l[len] == '.');
	}
	q[n++] = 0;
	tf_put16(q + n, 1);
	tf_put16(q + n + 2, 1);
	n += 4;
	uint8_t u[400];
	tf_put16(u, 5353);
	tf_put16(u + 2, 53);
	tf_put16(u + 4, (uint16_t)(8 + n));
	tf_put16(u + 6, 0);
	memcpy(u + 8, q, n);
	return tf_ipv4(f, VB_NET_GUEST, VB_NET_DNS, 17, u, 8 + n);
}

static int setup(void **state)
{
	(void)state;
	resolver_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	assert_int_equal(bind(resolver_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(resolver_fd, (struct sockaddr *)&sa, &sl), 0);
	char env[64];
	snprintf(env, sizeof(env), "127.0.0.1:%u", ntohs(sa.sin_port));
	setenv("VOIDBOX_DNS_SERVER", env, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	close(resolver_fd);
	return 0;
}

/* The UDP payload of an emitted frame, with its checksums verified. */
static const uint8_t *payload_of(const uint8_t *f, size_t n, size_t *len, uint16_t *dport)
{
	struct vb_frame p;
	assert_int_equal(vb_frame_parse(f, n, &p), VB_FRAME_IPV4);
	assert_int_equal(p.proto, VB_IPPROTO_UDP);
	assert_int_equal(p.src, VB_NET_DNS);
	assert_int_equal(p.sport, 53);
	assert_int_equal(p.dst, VB_NET_GUEST);
	assert_int_equal(vb_inet_csum(f + 14, 20, 0), 0);
	const uint8_t *u = f + 34;
	size_t ul = p.ip_len - 20;
	uint32_t sum = (p.src >> 16) + (p.src & 0xffff) + (p.dst >> 16) + (p.dst & 0xffff) + 17 +
		       (uint32_t)ul;
	assert_int_equal(vb_inet_csum(u, ul, sum), 0);
	*dport = p.dport;
	*len = p.payload_len;
	return u + 8;
}

static void test_refused_name_answered_locally(void **state)
{
	(void)state;
	const char *pats[] = { "allowed.test", "*.wild.test" };
	vb_error err = { 0 };
	struct vb_dnsproxy *p = vb_dnsproxy_new(pats, 2, 0, &err);
	assert_non_null(p);
	uint8_t f[600], out[700];
	char denied[VB_DOMAIN_MAX];
	size_t n = query_frame(f, "evil.test", 0x1234);
	struct vb_frame fr;
	assert_int_equal(vb_frame_parse(f, n, &fr), VB_FRAME_IPV4);
	size_t on = vb_dnsproxy_query(p, &fr, 1000, out, sizeof(out), denied);
	assert_string_equal(denied, "evil.test");
	assert_true(on > 0);
	size_t pl;
	uint16_t port;
	const uint8_t *msg = payload_of(out, on, &pl, &port);
	assert_int_equal(port, 5353);
	assert_int_equal(msg[0] << 8 | msg[1], 0x1234);
	assert_int_equal(msg[3] & 15, 3); /* NXDOMAIN */
	/* nothing reached the resolver */
	struct pollfd pf = { .fd = resolver_fd, .events = POLLIN };
	assert_int_equal(poll(&pf, 1, 50), 0);
	/* "*.wild.test" is strictly below it */
	n = query_frame(f, "wild.test", 7);
	assert_int_equal(vb_frame_parse(f, n, &fr), VB_FRAME_IPV4);
	assert_true(vb_dnsproxy_query(p, &fr, 1000, out, sizeof(out), denied) > 0);
	assert_string_equal(denied, "wild.test");
	vb_dnsproxy_free(p);
}

static void test_allowed_name_forwarded_and_remembered(void **state)
{
	(void)state;
	const char *pats[] = { "allowed.test" };
	vb_error err = { 0 };
	struct vb_dnsproxy *p = vb_dnsproxy_new(pats, 1, 0, &err);
	assert_non_null(p);
	uint8_t f[600], out[700];
	char denied[VB_DOMAIN_MAX];
	size_t n = query_frame(f, "Allowed.Test", 0xbeef);
	struct vb_frame fr;
	assert_int_equal(vb_frame_parse(f, n, &fr), VB_FRAME_IPV4);
	assert_int_equal(vb_dnsproxy_query(p, &fr, 1000, out, sizeof(out), denied), 0);
	assert_string_equal(denied, "");
	/* the resolver sees it under another id */
	uint8_t q[600];
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	ssize_t qn = recvfrom(resolver_fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
	assert_true(qn > 12);
	uint16_t up = (uint16_t)(q[0] << 8 | q[1]);
	/* a stray answer (another id) is ignored */
	uint8_t a[700];
	memcpy(a, q, (size_t)qn);
	a[2] = 0x81;
	a[3] = 0x80;
	tf_put16(a + 6, 1);
	size_t an = (size_t)qn;
	static const uint8_t rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 51, 100, 7 };
	memcpy(a + an, rr, sizeof(rr));
	an += sizeof(rr);
	tf_put16(a, (uint16_t)(up + 1));
	assert_int_equal(sendto(resolver_fd, a, an, 0, (struct sockaddr *)&from, fl), (ssize_t)an);
	struct pollfd pf = { .fd = vb_dnsproxy_fd(p), .events = POLLIN };
	assert_int_equal(poll(&pf, 1, 1000), 1);
	emitted_len = 0;
	vb_dnsproxy_read(p, 1010, emit, NULL);
	assert_int_equal(emitted_len, 0);
	assert_false(vb_dnsproxy_resolved(p, VB_NET_ADDR(198, 51, 100, 7), 1010));
	/* the real answer goes back with the guest's id */
	tf_put16(a, up);
	assert_int_equal(sendto(resolver_fd, a, an, 0, (struct sockaddr *)&from, fl), (ssize_t)an);
	assert_int_equal(poll(&pf, 1, 1000), 1);
	vb_dnsproxy_read(p, 1020, emit, NULL);
	assert_true(emitted_len > 0);
	size_t pl;
	uint16_t port;
	const uint8_t *msg = payload_of(emitted, emitted_len, &pl, &port);
	assert_int_equal(port, 5353);
	assert_int_equal(msg[0] << 8 | msg[1], 0xbeef);
	assert_int_equal(pl, an);
	/* remembered: the address is reachable, by that name's SNI only */
	assert_true(vb_dnsproxy_resolved(p, VB_NET_ADDR(198, 51, 100, 7), 1030));
	assert_false(vb_dnsproxy_resolved(p, VB_NET_ADDR(198, 51, 100, 8), 1030));
	assert_true(vb_dnsproxy_sni_ok(p, "allowed.test", VB_NET_ADDR(198, 51, 100, 7), 1030));
	assert_false(vb_dnsproxy_sni_ok(p, "shared.test", VB_NET_ADDR(198, 51, 100, 7), 1030));
	/* the answer's TTL (60 s) ends it */
	assert_false(vb_dnsproxy_resolved(p, VB_NET_ADDR(198, 51, 100, 7), 1020 + 61000));
	vb_dnsproxy_free(p);
}

static void test_malformed_query_and_bad_patterns(void **state)
{
	(void)state;
	const char *pats[] = { "allowed.test" };
	vb_error err = { 0 };
	struct vb_dnsproxy *p = vb_dnsproxy_new(pats, 1, 0, &err);
	assert_non_null(p);
	uint8_t f[600], out[700];
	char denied[VB_DOMAIN_MAX];
	size_t n = query_frame(f, "allowed.test", 1);
	tf_put16(f + 34 + 8 + 4, 2); /* two questions: FORMERR */
	struct vb_frame fr;
	assert_int_equal(vb_frame_parse(f, n, &fr), VB_FRAME_IPV4);
	size_t on = vb_dnsproxy_query(p, &fr, 1000, out, sizeof(out), denied);
	assert_true(on > 0);
	size_t pl;
	uint16_t port;
	const uint8_t *msg = payload_of(out, on, &pl, &port);
	assert_int_equal(msg[3] & 15, 1);
	vb_dnsproxy_free(p);
	const char *bad[] = { "a.*.org" };
	assert_null(vb_dnsproxy_new(bad, 1, 0, &err));
	assert_int_equal(err.kind, VB_E_USAGE);
	assert_non_null(strstr(err.msg, "allow_domains"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused_name_answered_locally),
		cmocka_unit_test(test_allowed_name_forwarded_and_remembered),
		cmocka_unit_test(test_malformed_query_and_bad_patterns),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
