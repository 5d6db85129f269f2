/* SPDX-License-Identifier: Apache-2.0 */
/* A VM's network in the run's events: refusals, port forwards, traffic. */
#include <stdio.h>
#include <string.h>

#include "run/engine.h"

static void on_event(void *opaque, const struct vb_net_event *nev)
{
	struct vb_run_net *n = opaque;
	struct vb_event_net net = {
		.proto = nev->proto,
		.dst = nev->dst,
		.rule = nev->rule,
		.hint = nev->hint,
		.port = nev->port,
		.suppressed = nev->suppressed,
	};
	struct vb_event ev = { .type = VB_EV_NET_DENIED, .stage = n->stage, .net = &net };
	vb_run_emit(n->r, &ev);
	if (nev->hint && n->r->opts.notices && !atomic_exchange(&n->r->net_hinted, 1)) {
		fprintf(n->r->opts.notices, "voidbox: stage %s: %s\n", n->stage ? n->stage : "?",
			nev->hint);
		fflush(n->r->opts.notices);
	}
}

void vb_run_net_prepare(struct vb_run_net *n, struct vb_run *r, const char *stage,
			struct vb_sandbox_config *cfg)
{
	n->r = r;
	n->stage = stage;
	if (!cfg->network.enabled)
		return;
	cfg->network.on_event = on_event;
	cfg->network.opaque = n;
}

void vb_run_net_booted(struct vb_run_net *n, vb_sandbox *sb, const struct vb_sandbox_config *cfg)
{
	for (size_t i = 0; cfg->network.enabled && i < cfg->network.n_publish; i++) {
		struct vb_event_net net = { .host_port = vb_sandbox_published_port(sb, i),
					    .guest_port = cfg->network.publish[i].guest_port };
		struct vb_event ev = { .type = VB_EV_NET_PUBLISHED, .stage = n->stage, .net = &net };
		vb_run_emit(n->r, &ev); /* the progress display shows it */
	}
}

void vb_run_net_summary(struct vb_run_net *n, vb_sandbox *sb, const struct vb_sandbox_config *cfg)
{
	if (!cfg->network.enabled || !sb)
		return;
	struct vb_net_stats st;
	vb_sandbox_net_stats(sb, &st);
	struct vb_event_net net = {
		.bytes_out = st.bytes_out,
		.bytes_in = st.bytes_in,
		.frames_out = st.frames_out,
		.frames_in = st.frames_in,
		.connections = st.connections,
		.denied = st.denied,
		.malformed = st.malformed,
	};
	struct vb_event ev = { .type = VB_EV_NET_SUMMARY, .stage = n->stage, .net = &net };
	vb_run_emit(n->r, &ev);
}
