/* SPDX-License-Identifier: Apache-2.0 */
/* Learn mode's recorder and its draft network_policy (src/net/learn.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/learn.h"
#include "spec/spec.h"

static struct vb_dns_addr A(const char *s, uint32_t ttl)
{
	struct vb_dns_addr a = { .ttl = ttl };
	a.family = strchr(s, ':') ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(a.family, s, a.addr), 1);
	return a;
}

static void flow(struct vb_learn *l, int proto, const char *addr, uint16_t port, const char *name)
{
	struct vb_dns_addr a = A(addr, 0);
	vb_learn_flow(l, proto, a.family, a.addr, port, name, 1000);
}

static char *draft(const struct vb_learn *l, unsigned indent)
{
	vb_error err = { 0 };
	char *y = vb_learn_yaml(l, indent, &err);
	if (!y)
		fail_msg("%s", err.msg);
	return y;
}

static void test_draft(void **state)
{
	(void)state;
	struct vb_learn *l = vb_learn_new();
	assert_non_null(l);
	struct vb_dns_addr gh[] = { A("140.82.112.6", 60), A("2606:50c0::6", 60) };
	vb_learn_dns(l, "API.GitHub.com.", gh, 2, 0);
	struct vb_dns_addr fastly[] = { A("151.101.0.223", 300) };
	vb_learn_dns(l, "files.pypi.org", fastly, 1, 0);
	vb_learn_dns(l, "pypi.org", fastly, 1, 0);
	vb_learn_dns(l, "unused.example", fastly, 0, 0);
	vb_learn_dns(l, "bad name", fastly, 1, 0); /* not a host name: ignored */
	/* by address: every name that resolved to it; in any order, repeated */
	flow(l, IPPROTO_TCP, "2606:50c0::6", 443, NULL);
	flow(l, IPPROTO_TCP, "140.82.112.6", 443, NULL);
	flow(l, IPPROTO_TCP, "140.82.112.6", 22, NULL);
	/* by server name: only that name, whatever else shares the address */
	flow(l, IPPROTO_TCP, "151.101.0.223", 443, "files.pypi.org");
	/* no name: the address; an IPv4-mapped address is the IPv4 one */
	flow(l, IPPROTO_UDP, "9.9.9.9", 123, NULL);
	flow(l, IPPROTO_TCP, "::ffff:9.9.9.9", 80, NULL);
	flow(l, IPPROTO_TCP, "2001:db8::1", 443, NULL);
	flow(l, IPPROTO_TCP, "1.2.3.4", 80, "not a name");
	flow(l, IPPROTO_TCP, "10.1.2.3", 5432, NULL);
	/* never opened by any policy: said, not drafted */
	flow(l, IPPROTO_TCP, "169.254.169.254", 80, NULL);
	vb_learn_host_port(l, IPPROTO_TCP, 8080);
	vb_learn_host_port(l, IPPROTO_TCP, 3000);
	vb_learn_host_port(l, IPPROTO_TCP, 8080);
	vb_learn_host_port(l, IPPROTO_UDP, 5353);
	char *y = draft(l, 0);
	assert_string_equal(y,
		"network_policy:\n"
		"  allow_domains:\n"
		"    - \"api.github.com\"  # tcp/22, tcp/443\n"
		"    - \"files.pypi.org\"  # tcp/443\n"
		"  allow:\n"
		"    - \"1.2.3.4/32\"  # tcp/80\n"
		"    - \"9.9.9.9/32\"  # tcp/80, udp/123\n"
		"    - \"10.1.2.3/32\"  # tcp/5432\n"
		"    - \"2001:db8::1/128\"  # tcp/443\n"
		"  allow_private: true\n"
		"  host_ports: [3000, 8080]\n"
		"  # host UDP ports reached (host_ports opens TCP only): 5353\n"
		"  # refused whatever the policy: 169.254.169.254  # tcp/80\n"
		"  # resolved, never connected to: pypi.org unused.example\n");
	free(y);
	/* indented to paste under `sandbox:` */
	y = draft(l, 2);
	const char *head = "  network_policy:\n    allow_domains:\n      - \"api";
	assert_true(strncmp(y, head, strlen(head)) == 0);
	free(y);
	vb_learn_free(l);
	vb_learn_free(NULL);
}

static void test_empty(void **state)
{
	(void)state;
	struct vb_learn *l = vb_learn_new();
	char *y = draft(l, 0);
	assert_string_equal(y, "network_policy:\n"
			       "  allow: []  # nothing was reached: deny all but DNS\n");
	free(y);
	vb_learn_free(l);
}

/* A draft without names pasted under `sandbox:` is a spec that validates,
 * with the policy it says (allow_domains is checked by the spec's own
 * tests once the spec knows it). */
static void test_pastes(void **state)
{
	(void)state;
	struct vb_learn *l = vb_learn_new();
	flow(l, IPPROTO_TCP, "93.184.216.34", 443, NULL);
	flow(l, IPPROTO_TCP, "192.168.1.10", 80, NULL);
	flow(l, IPPROTO_TCP, "2001:db8::1", 443, NULL);
	vb_learn_host_port(l, IPPROTO_TCP, 8080);
	for (int empty = 0; empty < 2; empty++) {
		struct vb_learn *e = vb_learn_new();
		char *y = draft(empty ? e : l, 2);
		char *text = NULL;
		assert_true(asprintf(&text, "api_version: v1\nkind: sandbox\nname: s\nsandbox:\n"
					    "  network: true\n%s", y) > 0);
		vb_error err = { 0 };
		struct vb_spec *spec = vb_spec_load_string(text, strlen(text), "draft.yaml", 1, &err);
		if (!spec)
			fail_msg("%s\n--\n%s", err.msg, text);
		const struct vb_spec_netpolicy *np = &spec->sandbox.network_policy;
		assert_true(np->allow_set);
		if (empty) {
			assert_int_equal(np->n_allow, 0);
		} else {
			assert_int_equal(np->n_allow, 3);
			assert_string_equal(np->allow[0].text.s, "93.184.216.34/32");
			assert_string_equal(np->allow[1].text.s, "192.168.1.10/32");
			assert_true(np->allow_private.v);
			assert_int_equal(np->n_host_ports, 1);
			assert_int_equal(np->host_ports[0].v, 8080);
		}
		vb_spec_free(spec);
		free(text);
		free(y);
		vb_learn_free(e);
	}
	vb_learn_free(l);
}

static void test_bounded(void **state)
{
	(void)state;
	struct vb_learn *l = vb_learn_new();
	char name[64];
	for (int i = 0; i < VB_LEARN_MAX + 10; i++) {
		snprintf(name, sizeof(name), "n%04d.example", i);
		flow(l, IPPROTO_TCP, "192.0.2.1", 443, name);
		uint8_t a[4] = { 198, 51, (uint8_t)(i >> 8), (uint8_t)i };
		vb_learn_flow(l, IPPROTO_TCP, AF_INET, a, 80, NULL, 0);
	}
	for (uint16_t p = 1; p <= 20; p++)
		flow(l, IPPROTO_TCP, "192.0.2.1", p, "n0000.example");
	char *y = draft(l, 0);
	assert_non_null(strstr(y, "\"n0000.example\"  # tcp/1, tcp/2, tcp/3, tcp/4, tcp/5, "
				  "tcp/6, tcp/7, tcp/443, ...\n"));
	assert_non_null(strstr(y, "\"n0511.example\""));
	assert_null(strstr(y, "\"n0512.example\""));
	assert_non_null(strstr(y, "# incomplete: 10 sightings of names and 10 of addresses "
				  "beyond the first 512"));
	free(y);
	vb_learn_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_draft),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_pastes),
		cmocka_unit_test(test_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
