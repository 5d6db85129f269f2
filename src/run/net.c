/* SPDX-License-Identifier: Apache-2.0 */
/* A VM's network in the run's events: refusals, port forwards, traffic. */
#include <stdio.h>
#include <string.h>

#include "run/engine.h"
#include "util/util.h"

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
			const char *dir, struct vb_sandbox_config *cfg)
{
	n->r = r;
	n->stage = stage;
	n->dir = dir;
	if (!cfg->network.enabled)
		return;
	cfg->network.on_event = on_event;
	cfg->network.opaque = n;
	cfg->network.learn = r->opts.net_learn;
}

/* Learn mode's draft: beside the stage's record, and on the notices. */
static void learned(struct vb_run_net *n, vb_sandbox *sb)
{
	vb_error err = { 0 };
	char *y = vb_sandbox_net_learned(sb, 2, &err);
	_cleanup_free_ char *path = n->dir ? vb_strfmt("%s/network_policy.yaml", n->dir) : NULL;
	int saved = 0;
	const char *nl = y && y[0] && y[strlen(y) - 1] != '\n' ? "\n" : "";
	if (y && path) {
		FILE *f = fopen(path, "we");
		saved = f && fputs(y, f) >= 0 && fputs(nl, f) >= 0;
		if (f && fclose(f) != 0)
			saved = 0;
	}
	FILE *out = n->r->opts.notices;
	if (out) {
		if (y)
			fprintf(out, "voidbox: stage %s: learned network policy%s%s%s:\n%s%s",
				n->stage ? n->stage : "?", saved ? " (" : "", saved ? path : "",
				saved ? ")" : "", y, nl);
		else
			fprintf(out, "voidbox: stage %s: no learned network policy: %s\n",
				n->stage ? n->stage : "?", err.msg);
		fflush(out);
	}
	free(y);
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
	if (cfg->network.learn)
		learned(n, sb);
}
