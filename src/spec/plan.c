/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The resolved plan in human form (`voidbox inspect`): what each VM will
 * get and run, with every default made visible.  Environment values are
 * never printed: a spec may carry secrets.  Control characters are left
 * to the terminal boundary (vb_term_write, in `inspect`); only newlines and
 * tabs are escaped here, so that one value stays on one line.
 */
#include "spec/spec_internal.h"

#include <arpa/inet.h>
#include <string.h>

#define LABEL "%-14s"

/* Text for one line: newlines and tabs escaped, long text cut. */
static const char *shown(const char *s, size_t max, char *buf, size_t size)
{
	size_t o = 0, chars = 0;
	for (size_t i = 0; s[i] && o + 8 < size; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch & 0xC0) != 0x80 && chars++ == max) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (ch == '\n' || ch == '\t') {
			buf[o++] = '\\';
			buf[o++] = ch == '\n' ? 'n' : 't';
		} else {
			buf[o++] = (char)ch;
		}
	}
	buf[o] = '\0';
	return buf;
}

/* One argument as a shell would need it (single quotes when unsafe). */
static void print_arg(FILE *out, const char *a)
{
	char buf[256];
	if (*a && strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:=@%+,-") ==
			  strlen(a)) {
		fputs(shown(a, 60, buf, sizeof(buf)), out);
		return;
	}
	fputc('\'', out);
	for (const char *p = shown(a, 60, buf, sizeof(buf)); *p; p++) {
		if (*p == '\'')
			fputs("'\\''", out);
		else
			fputc(*p, out);
	}
	fputc('\'', out);
}

static void print_command(FILE *out, const struct vb_spec_run *run)
{
	print_arg(out, run->program.s ? run->program.s : "");
	for (size_t i = 0; i < run->args.n; i++) {
		fputc(' ', out);
		print_arg(out, run->args.v[i].s);
	}
}

static void print_cidrs(FILE *out, const struct vb_spec_cidr *v, size_t n)
{
	char addr[INET6_ADDRSTRLEN];
	fputc('[', out);
	for (size_t i = 0; i < n; i++) {
		inet_ntop(v[i].family, v[i].addr, addr, sizeof(addr));
		fprintf(out, "%s%s/%u", i ? ", " : "", addr, v[i].prefix);
	}
	fputc(']', out);
}

static void print_llm(FILE *out, const char *ind, const struct vb_spec_llm_eff *e)
{
	static const char *const agents[] = { "default", "claude-code", "codex", "builtin" };
	fprintf(out, "%s" LABEL "%s, agent %s, model %s", ind, "llm:", vb_spec_provider_name(e->provider),
		agents[e->agent], e->model ? e->model : "default");
	if (e->base_url)
		fprintf(out, ", base_url %s", e->base_url);
	if (e->api_key_env)
		fprintf(out, ", key from $%s", e->api_key_env);
	if (e->credential_proxy)
		fputs(", credential_proxy (credentials stay on the host anyway)", out);
	fputc('\n', out);
}

static void print_skills(FILE *out, const char *ind, const struct vb_spec_skills *sk)
{
	char buf[256];
	if (!sk->n) {
		fprintf(out, "%s" LABEL "none\n", ind, "skills:");
		return;
	}
	for (size_t i = 0; i < sk->n; i++) {
		const struct vb_spec_skill *s = &sk->v[i];
		fprintf(out, "%s" LABEL, ind, i ? "" : "skills:");
		switch (s->type) {
		case VB_SPEC_SKILL_FILE:
			fprintf(out, "file %s%s\n", s->path.abs, s->path.exists ? "" : " (missing)");
			break;
		case VB_SPEC_SKILL_OCI:
			fprintf(out, "image %s at %s (%s)\n", s->image.s, s->mount.s,
				s->readonly.v ? "ro" : "rw");
			break;
		case VB_SPEC_SKILL_INLINE:
			fprintf(out, "inline %s (%zu bytes)\n", s->name.s,
				s->content.s ? strlen(s->content.s) : (size_t)0);
			break;
		case VB_SPEC_SKILL_MCP:
			if (s->object_form) {
				fprintf(out, "mcp %s%s", s->name.s ? s->name.s : "", s->name.s ? ": " : "");
				print_arg(out, s->command.s);
				for (size_t a = 0; a < s->args.n; a++) {
					fputc(' ', out);
					print_arg(out, s->args.v[a].s);
				}
				fputc('\n', out);
				break;
			}
			/* fall through */
		default:
			fprintf(out, "%s %s\n", vb_spec_skill_type_name(s->type),
				shown(s->value ? s->value : "", 80, buf, sizeof(buf)));
			break;
		}
	}
}

static void print_vm(FILE *out, const char *ind, const struct vb_spec_vm *vm)
{
	fprintf(out, "%s" LABEL "%u MiB, %u vcpu%s, network %s, backend %s\n", ind, "vm:", vm->memory_mb,
		vm->vcpus, vm->vcpus == 1 ? "" : "s", vm->network ? "on" : "off",
		vb_spec_backend_name(vm->backend));
	if (vm->kernel)
		fprintf(out, "%s" LABEL "%s\n", ind, "kernel:", vm->kernel);
	if (vm->initramfs)
		fprintf(out, "%s" LABEL "%s\n", ind, "initramfs:", vm->initramfs);
	if (vm->image)
		fprintf(out, "%s" LABEL "%s\n", ind, "image:", vm->image);
	if (vm->guest_image)
		fprintf(out, "%s" LABEL "%s\n", ind, "guest_image:", *vm->guest_image ? vm->guest_image : "(none: no auto-pull)");
	if (vm->snapshot)
		fprintf(out, "%s" LABEL "%s\n", ind, "snapshot:",
			!strcmp(vm->snapshot, "none") ? "none (booted cold, never from the warm snapshot)"
						      : vm->snapshot);
	if (vm->network) {
		const struct vb_spec_netpolicy *np = vm->network_policy;
		fprintf(out, "%s" LABEL "built-in denies", ind, "egress:");
		if (np && np->n_deny) {
			fputs(" + ", out);
			print_cidrs(out, np->deny, np->n_deny);
		}
		if (np && np->allow_set) {
			fputs(", allow only ", out);
			print_cidrs(out, np->allow, np->n_allow);
		}
		fputs(", host ports [", out);
		for (size_t i = 0; np && i < np->n_host_ports; i++)
			fprintf(out, "%s%lld", i ? ", " : "", (long long)np->host_ports[i].v);
		fprintf(out, "], private ranges %s, %lld connections, %lld/s\n",
			np && np->allow_private.v ? "allowed" : "denied",
			np && np->max_connections.set ? (long long)np->max_connections.v : 64LL,
			np && np->connections_per_sec.set ? (long long)np->connections_per_sec.v : 50LL);
		if (np && np->allow_domains.n) {
			fprintf(out, "%s" LABEL "", ind, "domains:");
			for (size_t i = 0; i < np->allow_domains.n; i++)
				fprintf(out, "%s%s", i ? ", " : "", np->allow_domains.v[i].s);
			fputs(" (and only what they resolve to)\n", out);
		}
	}
	for (size_t i = 0; i < vm->n_ports; i++) {
		if (vm->ports[i].host.v)
			fprintf(out, "%s" LABEL "127.0.0.1:%lld -> guest port %lld\n", ind,
				i ? "" : "ports:", (long long)vm->ports[i].host.v,
				(long long)vm->ports[i].guest.v);
		else
			fprintf(out, "%s" LABEL "127.0.0.1:(a free port) -> guest port %lld\n", ind,
				i ? "" : "ports:", (long long)vm->ports[i].guest.v);
	}
	if (!vm->n_env)
		fprintf(out, "%s" LABEL "none\n", ind, "env:");
	for (size_t i = 0; i < vm->n_env; i++) {
		const struct vb_spec_kv *kv = vm->env[i];
		fprintf(out, "%s" LABEL "%s%s\n", ind, i ? "" : "env:", kv->key.s,
			kv->provider_credential ? " (stays on the host: used by the LLM gateway)" :
			kv->from_host		? " (from host)" :
						  "");
	}
	if (!vm->n_mounts)
		fprintf(out, "%s" LABEL "none\n", ind, "mounts:");
	for (size_t i = 0; i < vm->n_mounts; i++) {
		const struct vb_spec_mount *m = vm->mounts[i];
		fprintf(out, "%s" LABEL "%s -> %s (%s)%s\n", ind, i ? "" : "mounts:", m->host.abs, m->guest.s,
			m->mode == VB_SPEC_MOUNT_RW ? "rw" : "ro",
			m->host.exists ? "" : m->mode == VB_SPEC_MOUNT_RW ? " (created at run time)" : " (missing)");
	}
	const struct vb_spec_limits *l = vm->limits;
	fprintf(out, "%s" LABEL "nofile %lld, nproc %lld, fsize %lld MiB", ind, "limits:",
		l && l->nofile.set ? (long long)l->nofile.v : 1024LL,
		l && l->nproc.set ? (long long)l->nproc.v : 512LL,
		l && l->fsize_mb.set ? (long long)l->fsize_mb.v : 100LL);
	if (l && l->timeout_secs.set)
		fprintf(out, ", exec timeout %lld s", (long long)l->timeout_secs.v);
	fputc('\n', out);
	fprintf(out, "%s" LABEL, ind, "commands:");
	if (!vm->allowed_commands)
		fputs("all", out);
	for (size_t i = 0; vm->allowed_commands && i < vm->allowed_commands->n; i++)
		fprintf(out, "%s%s", i ? ", " : "only ", vm->allowed_commands->v[i].s);
	if (vm->allowed_commands && !vm->allowed_commands->n)
		fputs("none", out);
	fputc('\n', out);
}

static void print_timeout(FILE *out, const char *ind, const struct vb_spec_int *t, const char *none)
{
	if (t->set)
		fprintf(out, "%s" LABEL "%lld s\n", ind, "timeout:", (long long)t->v);
	else
		fprintf(out, "%s" LABEL "%s\n", ind, "timeout:", none);
}

static void print_box(FILE *out, const char *ind, const struct vb_spec *spec, const struct vb_spec_box *b)
{
	char buf[256];
	if (b->prompt.s) {
		fprintf(out, "%s" LABEL "agent, prompt \"%s\"\n", ind, "runs:", shown(b->prompt.s, 60, buf, sizeof(buf)));
		print_llm(out, ind, &b->llm_eff);
	} else {
		fprintf(out, "%s" LABEL, ind, "runs:");
		print_command(out, &b->run);
		fputc('\n', out);
		if (b->run.stdin_index != SIZE_MAX)
			fprintf(out, "%s" LABEL "output of box %s\n", ind, "stdin:",
				spec->pipeline.boxes[b->run.stdin_index].name.s);
	}
	print_skills(out, ind, &b->skills);
	print_vm(out, ind, &b->vm);
	print_timeout(out, ind, &b->timeout_secs, "none");
	if (b->max_turns.set)
		fprintf(out, "%s" LABEL "%lld\n", ind, "max_turns:", (long long)b->max_turns.v);
	fprintf(out, "%s" LABEL "%s\n", ind, "output_file:", b->output_file.s);
	for (size_t i = 0; i < b->n_outputs; i++)
		fprintf(out, "%s" LABEL "%s -> %s (rw)\n", ind, i ? "" : "outputs:", b->outputs[i].name.s,
			b->outputs[i].guest.s);
	if (b->n_outputs) {
		const struct vb_spec_limits *l = b->vm.limits;
		fprintf(out, "%s" LABEL "at most %lld MiB in all (limits.outputs_mb)\n", ind, "",
			l && l->outputs_mb.set ? (long long)l->outputs_mb.v : 1024LL);
	}
	for (size_t i = 0; i < b->n_inputs; i++)
		fprintf(out, "%s" LABEL "%s -> %s (ro, from box %s)\n", ind, i ? "" : "inputs:",
			b->inputs[i].from.s, b->inputs[i].guest.s,
			spec->pipeline.boxes[b->inputs[i].box_index].name.s);
}

static void print_pipeline(FILE *out, const struct vb_spec *spec)
{
	const struct vb_spec_pipeline *pl = &spec->pipeline;
	fprintf(out, "%zu box%s in %zu stage%s%s; every box runs in a fresh VM\n", pl->n_boxes,
		pl->n_boxes == 1 ? "" : "es", pl->n_stages, pl->n_stages == 1 ? "" : "s",
		pl->stages_implicit ? " (no stages written: one per box, in file order)" : "");
	for (size_t s = 0; s < pl->n_stages; s++) {
		const struct vb_spec_stage *st = &pl->stages[s];
		fputc('\n', out);
		if (st->type == VB_SPEC_STAGE_BOX) {
			fprintf(out, "stage %zu: box %s\n", s + 1, st->names.v[0].s);
			print_box(out, "  ", spec, &pl->boxes[st->box_index[0]]);
			continue;
		}
		fprintf(out, "stage %zu: fan_out of %zu box%s in parallel (outputs passed on as a JSON array)\n",
			s + 1, st->names.n, st->names.n == 1 ? "" : "es");
		for (size_t i = 0; i < st->names.n; i++) {
			fprintf(out, "  box %s\n", st->names.v[i].s);
			print_box(out, "    ", spec, &pl->boxes[st->box_index[i]]);
		}
	}
	for (size_t b = 0; b < pl->n_boxes; b++) {
		bool used = false;
		for (size_t s = 0; s < pl->n_stages && !used; s++)
			for (size_t i = 0; i < pl->stages[s].names.n && !used; i++)
				used = pl->stages[s].box_index[i] == b;
		if (!used)
			fprintf(out, "\nnote: box %s is in no stage and will not run\n", pl->boxes[b].name.s);
	}
}

static void print_workflow(FILE *out, const struct vb_spec *spec)
{
	const struct vb_spec_workflow *w = &spec->workflow;
	unsigned levels = 0;
	for (size_t i = 0; i < w->n_steps; i++)
		if (w->steps[i].level > levels)
			levels = w->steps[i].level;
	fprintf(out, "%zu step%s in %u level%s; all steps share one VM\n\n", w->n_steps,
		w->n_steps == 1 ? "" : "s", levels, levels == 1 ? "" : "s");
	print_vm(out, "  ", &spec->vm);
	for (unsigned lv = 1; lv <= levels; lv++) {
		for (size_t i = 0; i < w->n_steps; i++) {
			const struct vb_spec_step *st = &w->steps[i];
			if (st->level != lv)
				continue;
			fprintf(out, "\nlevel %u: step %s%s\n", lv, st->name.s, st->service ? " (service)" : "");
			fprintf(out, "  " LABEL, "runs:");
			print_command(out, &st->run);
			fputc('\n', out);
			if (st->run.stdin_index != SIZE_MAX)
				fprintf(out, "  " LABEL "output of step %s\n", "stdin:",
					w->steps[st->run.stdin_index].name.s);
			fprintf(out, "  " LABEL, "depends_on:");
			if (!st->depends_on.n)
				fputs("none", out);
			for (size_t d = 0; d < st->depends_on.n; d++)
				fprintf(out, "%s%s", d ? ", " : "", st->depends_on.v[d].s);
			fputc('\n', out);
			print_timeout(out, "  ", &st->timeout_secs, st->service ? "none (service)" : "none");
		}
	}
	fprintf(out, "\noutput: %s\n",
		w->output_index != SIZE_MAX ? w->steps[w->output_index].name.s : "the last step to finish");
}

static void print_agent(FILE *out, const struct vb_spec *spec)
{
	static const char *const modes[] = { "task", "service", "interactive" };
	const struct vb_spec_agent *a = &spec->agent;
	char buf[256];
	fprintf(out, "one agent in one VM\n\n");
	fprintf(out, "  " LABEL "%s\n", "mode:", modes[a->mode]);
	if (a->prompt.s)
		fprintf(out, "  " LABEL "agent, prompt \"%s\"\n", "runs:", shown(a->prompt.s, 60, buf, sizeof(buf)));
	else
		fprintf(out, "  " LABEL "agent, interactive\n", "runs:");
	print_llm(out, "  ", &spec->llm_eff);
	print_skills(out, "  ", &a->skills);
	print_vm(out, "  ", &spec->vm);
	print_timeout(out, "  ", &a->timeout_secs, a->mode == VB_SPEC_AGENT_TASK ? "none" : "none (by mode)");
	if (a->max_turns.set)
		fprintf(out, "  " LABEL "%lld\n", "max_turns:", (long long)a->max_turns.v);
	fprintf(out, "  " LABEL "%s\n", "output_file:", a->output_file.s);
	if (a->messaging_enabled.set || a->provider_bridge.s)
		fprintf(out, "  " LABEL "%s%s%s\n", "messaging:", a->messaging_enabled.v ? "enabled" : "disabled",
			a->provider_bridge.s ? ", bridge " : "", a->provider_bridge.s ? a->provider_bridge.s : "");
}

int vb_spec_print_plan(const struct vb_spec *spec, FILE *out)
{
	const struct vb_spec_observe *o = &spec->observe;
	fprintf(out, "%s %s (api_version v1)\n", vb_spec_kind_name(spec->kind), spec->name.s);
	if (spec->sandbox.mock_requested)
		fputs("note: sandbox.mode 'mock' is treated as 'auto': every stage here runs in a VM\n", out);
	if (o->set) {
		fprintf(out, "observe: traces %s, metrics %s, logs %s", o->traces.v ? "on" : "off",
			o->metrics.v ? "on" : "off", o->logs.v ? "on" : "off");
		if (o->otlp_endpoint.s)
			fprintf(out, ", endpoint %s", o->otlp_endpoint.s);
		if (o->service_name.s)
			fprintf(out, ", service %s", o->service_name.s);
		fputc('\n', out);
	}
	switch (spec->kind) {
	case VB_SPEC_PIPELINE:
		print_pipeline(out, spec);
		break;
	case VB_SPEC_WORKFLOW:
		print_workflow(out, spec);
		break;
	case VB_SPEC_AGENT:
		print_agent(out, spec);
		break;
	case VB_SPEC_SANDBOX:
		fputs("a VM to attach to (voidbox shell)\n\n", out);
		print_vm(out, "  ", &spec->vm);
		break;
	}
	return ferror(out) ? -1 : 0;
}
