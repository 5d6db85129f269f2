/* SPDX-License-Identifier: Apache-2.0 */
/* The resolved plan as JSON (`voidbox inspect --output json`): the same
 * facts as the text plan, for tools.  Environment values are left out. */
#include "spec/spec_internal.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <string.h>

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *cidrs(const struct vb_spec_cidr *v, size_t n)
{
	json_t *a = json_array();
	char addr[INET6_ADDRSTRLEN + 8];
	for (size_t i = 0; a && i < n; i++) {
		inet_ntop(v[i].family, v[i].addr, addr, INET6_ADDRSTRLEN);
		size_t len = strlen(addr);
		snprintf(addr + len, sizeof(addr) - len, "/%u", v[i].prefix);
		json_array_append_new(a, json_string(addr));
	}
	return a;
}

static json_t *strlist(const struct vb_spec_strlist *l)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < l->n; i++)
		json_array_append_new(a, json_string(l->v[i].s));
	return a;
}

static json_t *vm_json(const struct vb_spec_vm *vm)
{
	const struct vb_spec_netpolicy *np = vm->network_policy;
	const struct vb_spec_limits *l = vm->limits;
	json_t *env = json_array(), *mounts = json_array(), *ports = json_array();
	json_t *fwd = json_array();
	for (size_t i = 0; i < vm->n_ports; i++)
		json_array_append_new(fwd, json_pack("{s:I, s:I}", "host", (json_int_t)vm->ports[i].host.v,
						     "guest", (json_int_t)vm->ports[i].guest.v));
	for (size_t i = 0; i < vm->n_env; i++)
		json_array_append_new(env, json_pack("{s:s, s:b, s:b}", "name", vm->env[i]->key.s,
						     "from_host", vm->env[i]->from_host, "host_only",
						     vm->env[i]->provider_credential));
	for (size_t i = 0; i < vm->n_mounts; i++)
		json_array_append_new(mounts, json_pack("{s:s, s:s, s:s, s:b}", "host", vm->mounts[i]->host.abs,
							"guest", vm->mounts[i]->guest.s, "mode",
							vm->mounts[i]->mode == VB_SPEC_MOUNT_RW ? "rw" : "ro",
							"exists", vm->mounts[i]->host.exists));
	for (size_t i = 0; np && i < np->n_host_ports; i++)
		json_array_append_new(ports, json_integer(np->host_ports[i].v));
	json_t *builtin = json_pack("[s, s, s, s, s]", "169.254.0.0/16", "100.100.100.200/32",
				    "127.0.0.0/8 and the host's own addresses",
				    "10.0.2.2 except host_ports", "multicast and reserved ranges");
	json_t *policy = json_pack("{s:o, s:o, s:o, s:o, s:o, s:b, s:I, s:I}",
				   "builtin_deny", builtin,
				   "allow_domains", np && np->allow_domains.set ? strlist(&np->allow_domains) : json_null(),
				   "deny", np ? cidrs(np->deny, np->n_deny) : json_array(),
				   "allow", np && np->allow_set ? cidrs(np->allow, np->n_allow) : json_null(),
				   "host_ports", ports,
				   "allow_private", np && np->allow_private.v,
				   "max_connections", (json_int_t)(np && np->max_connections.set ? np->max_connections.v : 64),
				   "connections_per_sec",
				   (json_int_t)(np && np->connections_per_sec.set ? np->connections_per_sec.v : 50));
	json_t *limits = json_pack("{s:I, s:I, s:I, s:o, s:I}",
				   "nofile", (json_int_t)(l && l->nofile.set ? l->nofile.v : 1024),
				   "nproc", (json_int_t)(l && l->nproc.set ? l->nproc.v : 512),
				   "fsize_mb", (json_int_t)(l && l->fsize_mb.set ? l->fsize_mb.v : 100),
				   "timeout_secs", l && l->timeout_secs.set ? json_integer(l->timeout_secs.v) : json_null(),
				   "outputs_mb", (json_int_t)(l && l->outputs_mb.set ? l->outputs_mb.v : 1024));
	return json_pack("{s:I, s:I, s:b, s:s, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
			 "memory_mb", (json_int_t)vm->memory_mb, "vcpus", (json_int_t)vm->vcpus,
			 "network", vm->network, "backend", vb_spec_backend_name(vm->backend),
			 "mock_requested", vm->mock_requested,
			 "kernel", str_or_null(vm->kernel), "initramfs", str_or_null(vm->initramfs),
			 "image", str_or_null(vm->image), "guest_image", str_or_null(vm->guest_image),
			 "snapshot", str_or_null(vm->snapshot), "network_policy", policy, "ports", fwd,
			 "env", env, "mounts", mounts, "limits", limits,
			 "allowed_commands", vm->allowed_commands ? strlist(vm->allowed_commands) : json_null());
}

static json_t *llm_json(const struct vb_spec_llm_eff *e)
{
	static const char *const agents[] = { "default", "claude-code", "codex", "builtin" };
	return json_pack("{s:s, s:s, s:o, s:o, s:o, s:b}", "provider", vb_spec_provider_name(e->provider),
			 "agent", agents[e->agent], "model", str_or_null(e->model),
			 "base_url", str_or_null(e->base_url), "api_key_env", str_or_null(e->api_key_env),
			 "credential_proxy", e->credential_proxy);
}

static json_t *skills_json(const struct vb_spec_skills *sk)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < sk->n; i++) {
		const struct vb_spec_skill *s = &sk->v[i];
		json_t *o = json_pack("{s:s}", "type", vb_spec_skill_type_name(s->type));
		if (!o)
			continue;
		if (s->value)
			json_object_set_new(o, "value", json_string(s->value));
		if (s->path.abs) {
			json_object_set_new(o, "path", json_string(s->path.abs));
			json_object_set_new(o, "exists", json_boolean(s->path.exists));
		}
		if (s->name.s)
			json_object_set_new(o, "name", json_string(s->name.s));
		if (s->command.s) {
			json_object_set_new(o, "command", json_string(s->command.s));
			json_object_set_new(o, "args", strlist(&s->args));
		}
		if (s->type == VB_SPEC_SKILL_OCI) {
			json_object_set_new(o, "image", json_string(s->image.s));
			json_object_set_new(o, "mount", json_string(s->mount.s));
			json_object_set_new(o, "readonly", json_boolean(s->readonly.v));
		}
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *run_json(const struct vb_spec_run *r, const char *stdin_name)
{
	return json_pack("{s:s, s:s, s:o, s:o}", "type", "command", "program", r->program.s,
			 "args", strlist(&r->args), "stdin_from", str_or_null(stdin_name));
}

static json_t *timeout_json(const struct vb_spec_int *t)
{
	return t->set ? json_integer(t->v) : json_null();
}

static json_t *box_json(const struct vb_spec *spec, const struct vb_spec_box *b)
{
	json_t *outs = json_array(), *ins = json_array();
	for (size_t i = 0; i < b->n_outputs; i++)
		json_array_append_new(outs, json_pack("{s:s, s:s}", "name", b->outputs[i].name.s, "guest",
						      b->outputs[i].guest.s));
	for (size_t i = 0; i < b->n_inputs; i++)
		json_array_append_new(ins, json_pack("{s:s, s:s, s:s}", "from", b->inputs[i].from.s, "guest",
						     b->inputs[i].guest.s, "box",
						     spec->pipeline.boxes[b->inputs[i].box_index].name.s));
	json_t *runs = b->prompt.s ? json_pack("{s:s, s:s}", "type", "agent", "prompt", b->prompt.s) :
		       run_json(&b->run, b->run.stdin_index != SIZE_MAX ?
						 spec->pipeline.boxes[b->run.stdin_index].name.s : NULL);
	json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:o}", "name", b->name.s, "runs", runs,
			 "llm", b->prompt.s ? llm_json(&b->llm_eff) : json_null(), "skills", skills_json(&b->skills),
			 "vm", vm_json(&b->vm), "timeout_secs", timeout_json(&b->timeout_secs),
			 "output_file", b->output_file.s, "outputs", outs, "inputs", ins);
	if (o && b->max_turns.set) /* an extension: only when written */
		json_object_set_new(o, "max_turns", json_integer(b->max_turns.v));
	return o;
}

void *vb_spec_plan_json(const struct vb_spec *spec)
{
	json_t *plan = json_pack("{s:s, s:s, s:s, s:b}", "name", spec->name.s, "kind",
				 vb_spec_kind_name(spec->kind), "api_version", "v1", "mock_requested",
				 spec->sandbox.mock_requested);
	if (!plan)
		return NULL;
	if (spec->kind == VB_SPEC_PIPELINE) {
		json_t *stages = json_array();
		for (size_t s = 0; s < spec->pipeline.n_stages; s++) {
			const struct vb_spec_stage *st = &spec->pipeline.stages[s];
			json_t *boxes = json_array();
			for (size_t i = 0; i < st->names.n; i++)
				json_array_append_new(boxes, box_json(spec, &spec->pipeline.boxes[st->box_index[i]]));
			json_array_append_new(stages, json_pack("{s:s, s:o}", "type",
								st->type == VB_SPEC_STAGE_BOX ? "box" : "fan_out",
								"boxes", boxes));
		}
		json_object_set_new(plan, "stages", stages);
	} else if (spec->kind == VB_SPEC_WORKFLOW) {
		const struct vb_spec_workflow *w = &spec->workflow;
		json_t *steps = json_array();
		for (size_t i = 0; i < w->n_steps; i++) {
			const struct vb_spec_step *st = &w->steps[i];
			json_array_append_new(steps, json_pack(
				"{s:s, s:I, s:o, s:o, s:b, s:o}", "name", st->name.s, "level", (json_int_t)st->level,
				"run", run_json(&st->run, st->run.stdin_index != SIZE_MAX ?
								  w->steps[st->run.stdin_index].name.s : NULL),
				"depends_on", strlist(&st->depends_on), "service", st->service,
				"timeout_secs", timeout_json(&st->timeout_secs)));
		}
		json_object_set_new(plan, "vm", vm_json(&spec->vm));
		json_object_set_new(plan, "steps", steps);
		json_object_set_new(plan, "output_step",
				    str_or_null(w->output_index != SIZE_MAX ? w->steps[w->output_index].name.s : NULL));
	} else if (spec->kind == VB_SPEC_AGENT) {
		static const char *const modes[] = { "task", "service", "interactive" };
		const struct vb_spec_agent *a = &spec->agent;
		json_t *ao = json_pack(
			"{s:s, s:o, s:o, s:o, s:o, s:s}", "mode", modes[a->mode], "prompt", str_or_null(a->prompt.s),
			"llm", llm_json(&spec->llm_eff), "skills", skills_json(&a->skills),
			"timeout_secs", timeout_json(&a->timeout_secs), "output_file", a->output_file.s);
		if (ao && a->max_turns.set) /* an extension: only when written */
			json_object_set_new(ao, "max_turns", json_integer(a->max_turns.v));
		json_object_set_new(plan, "agent", ao);
		json_object_set_new(plan, "vm", vm_json(&spec->vm));
	} else {
		json_object_set_new(plan, "vm", vm_json(&spec->vm));
	}
	return plan;
}
