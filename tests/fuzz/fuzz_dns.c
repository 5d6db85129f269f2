/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_dns.c — libFuzzer target for the policy resolver's DNS parsing
 * (src/net/dns.c): the input is read as a guest's query and as a resolver's
 * response.  Every name that comes out must be a valid host name (or the
 * root); a query that parses must give a reply that parses back as the
 * answer to it, with the same question (its case kept as sent).
 *
 *   make fuzz; build/fuzz/fuzz_dns -max_total_time=600 tests/fuzz/corpus/dns
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "net/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_name(const char *name)
{
	char norm[VB_DOMAIN_MAX];
	if (memchr(name, '\0', VB_DOMAIN_MAX) == NULL)
		abort();
	if (name[0] && (vb_domain_normalize(name, norm, NULL) < 0 || strcmp(norm, name) != 0))
		abort();
}

static void check_answer(const struct vb_dns_answer *a)
{
	check_name(a->name);
	check_name(a->canonical);
	if (a->naddr > VB_DNS_MAX_ADDRS || a->ncname > VB_DNS_MAX_CNAMES)
		abort();
	for (size_t i = 0; i < a->naddr; i++)
		if (a->addr[i].family != AF_INET && a->addr[i].family != AF_INET6)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vb_dns_query q;
	struct vb_dns_answer a;
	uint8_t out[512];
	int qok = vb_dns_parse_query(data, size, &q, NULL) == 0;
	check_name(q.name);
	if (qok) {
		if (strlen(q.asked) != strlen(q.name) || strcasecmp(q.asked, q.name) != 0)
			abort();
		int n = vb_dns_build_reply(&q, VB_DNS_NXDOMAIN, out, sizeof(out));
		if (n < 0 || vb_dns_parse_response(out, (size_t)n, &q, &a, NULL) < 0)
			abort();
		if (a.rcode != VB_DNS_NXDOMAIN || a.naddr || strcmp(a.name, q.name) != 0)
			abort();
	} else if (q.reply_rcode >= 0) {
		int n = vb_dns_build_reply(&q, q.reply_rcode, out, sizeof(out));
		if (n != VB_DNS_HEADER)
			abort();
	}
	if (vb_dns_parse_response(data, size, NULL, &a, NULL) == 0)
		check_answer(&a);
	return 0;
}
