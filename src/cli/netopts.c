/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The network options of the verbs that boot a VM (exec, shell):
 * --network, --allow-host-port PORT, --publish HOST:GUEST, and what they
 * print on stderr (published ports, refusals, the once-only hint that
 * says how to declare a host port).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "net/domain.h"
#include "util/term.h"

int vb_cli_net_option(struct vb_cli_net *n, int opt, const char *arg, vb_error *err)
{
	unsigned long v, g;
	char *colon;
	switch (opt) {
	case VB_CLI_OPT_NETWORK:
		n->network = 1;
		return 0;
	case VB_CLI_OPT_NET_LEARN:
		n->network = n->learn = 1;
		return 0;
	case VB_CLI_OPT_ALLOW_DOMAIN: {
		struct vb_domain_pattern pat;
		char shown[80];
		if (vb_domain_pattern_parse(arg, &pat, NULL) < 0)
			return vb_error_set(err, VB_E_USAGE,
					    "--allow-domain %s: expected a host name or *.name",
					    vb_term_copy(shown, sizeof(shown), arg, 0));
		if (n->n_domains >= VB_CLI_MAX_DOMAINS)
			return vb_error_set(err, VB_E_USAGE, "--allow-domain: at most %u",
					    VB_CLI_MAX_DOMAINS);
		n->domains[n->n_domains++] = arg;
		n->network = 1;
		return 0;
	}
	case VB_CLI_OPT_ALLOW_HOST_PORT:
		if (vb_cli_parse_uint(arg, 65535, &v) < 0 || v == 0)
			return vb_error_set(err, VB_E_USAGE, "--allow-host-port: expected a port 1..65535");
		if (n->n_host_ports >= VB_CLI_MAX_HOST_PORTS)
			return vb_error_set(err, VB_E_USAGE, "--allow-host-port: at most %u ports",
					    VB_CLI_MAX_HOST_PORTS);
		n->host_ports[n->n_host_ports++] = (unsigned)v;
		n->network = 1;
		return 0;
	case VB_CLI_OPT_PUBLISH: {
		char buf[32];
		if (strlen(arg) >= sizeof(buf))
			return vb_error_set(err, VB_E_USAGE, "--publish: expected HOST:GUEST ports");
		snprintf(buf, sizeof(buf), "%s", arg);
		if (!(colon = strchr(buf, ':')))
			return vb_error_set(err, VB_E_USAGE,
					    "--publish: expected HOST:GUEST ports (HOST 0 = any free port)");
		*colon = '\0';
		if (vb_cli_parse_uint(buf, 65535, &v) < 0 || vb_cli_parse_uint(colon + 1, 65535, &g) < 0 ||
		    g == 0)
			return vb_error_set(err, VB_E_USAGE,
					    "--publish: expected HOST:GUEST ports (HOST 0 = any free port, "
					    "GUEST 1..65535)");
		if (n->n_publish >= VB_NET_MAX_PUBLISH)
			return vb_error_set(err, VB_E_USAGE, "--publish: at most %u", VB_NET_MAX_PUBLISH);
		n->publish[n->n_publish++] = (struct vb_net_publish){ (unsigned)v, (unsigned)g };
		n->network = 1;
		return 0;
	}
	default:
		return vb_error_set(err, VB_E_USAGE, "unknown network option");
	}
}

/* On the network's thread: one stderr line per reported refusal, and the
 * way to declare a host port once per process. */
static void on_event(void *opaque, const struct vb_net_event *ev)
{
	struct vb_cli_net *n = opaque;
	char port[16] = "";
	if (ev->port)
		snprintf(port, sizeof(port), ":%u", ev->port);
	char more[64] = "";
	if (ev->suppressed)
		snprintf(more, sizeof(more), "; %llu more not shown",
			 (unsigned long long)ev->suppressed);
	vb_cli_warn("network: refused %s %s%s (%s)%s", ev->proto, ev->dst, port, ev->rule, more);
	if (ev->hint && !__atomic_exchange_n(&n->hinted, 1, __ATOMIC_RELAXED))
		vb_cli_warn("%s", ev->hint);
}

void vb_cli_net_apply(struct vb_cli_net *n, struct vb_sandbox_config *cfg)
{
	if (!n->network)
		return;
	cfg->network = (struct vb_network){
		.enabled = 1,
		.host_ports = n->host_ports,
		.n_host_ports = n->n_host_ports,
		.publish = n->publish,
		.n_publish = n->n_publish,
		.allow_domains = n->n_domains ? n->domains : NULL,
		.n_allow_domains = n->n_domains,
		.on_event = on_event,
		.opaque = n,
		.learn = n->learn,
	};
}

void vb_cli_net_events(struct vb_cli_net *n, struct vb_network *net)
{
	net->on_event = on_event;
	net->opaque = n;
}

void vb_cli_net_learned(const struct vb_network *net, vb_sandbox *sb)
{
	if (!net->enabled || !net->learn || !sb)
		return;
	vb_error err = { 0 };
	char *y = vb_sandbox_net_learned(sb, 2, &err);
	if (!y) {
		vb_cli_warn("network: no learned policy: %s", err.msg);
		return;
	}
	/* names came through the host-name check and are quoted: safe to print */
	size_t len = strlen(y);
	fprintf(stderr, "voidbox: learned network policy (paste under sandbox:):\n%s%s", y,
		len && y[len - 1] != '\n' ? "\n" : "");
	free(y);
}

void vb_cli_net_published(const struct vb_network *net, vb_sandbox *sb)
{
	for (size_t i = 0; net->enabled && i < net->n_publish; i++)
		vb_cli_warn("published 127.0.0.1:%u -> guest port %u",
			    vb_sandbox_published_port(sb, i), net->publish[i].guest_port);
}
