/* SPDX-License-Identifier: Apache-2.0 */
/*
 * After a spec has passed every check: defaults applied, per-box sandbox
 * and llm merged over the top level, host paths made absolute.  Also the
 * small parsers other modules share (CIDR, path resolution) and freeing.
 */
#include "spec/spec_internal.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char default_output_file[] = "/workspace/output.json";
static const char default_output_guest[] = "/workspace/output";
static const char default_input_guest[] = "/workspace/input";

int vb_spec_parse_cidr(const char *text, int *family, uint8_t addr[16], unsigned *prefix)
{
	char buf[INET6_ADDRSTRLEN + 8];
	size_t len = strlen(text);
	if (!len || len >= sizeof(buf))
		return -1;
	memcpy(buf, text, len + 1);
	char *slash = strchr(buf, '/');
	long bits = -1;
	if (slash) {
		*slash = '\0';
		const char *d = slash + 1;
		size_t nd = strlen(d);
		/* Plain decimal, no sign, no leading zeros ("/08" is a typo). */
		if (!nd || nd > 3 || strspn(d, "0123456789") != nd || (nd > 1 && d[0] == '0'))
			return -1;
		bits = strtol(d, NULL, 10);
	}
	memset(addr, 0, 16);
	unsigned max;
	if (inet_pton(AF_INET, buf, addr) == 1) {
		*family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, addr) == 1) {
		*family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	if (bits < 0)
		bits = max;
	if ((unsigned long)bits > max)
		return -1;
	*prefix = (unsigned)bits;
	for (unsigned i = 0; i < 16; i++) {
		unsigned lo = i * 8;
		if (lo >= (unsigned)bits)
			addr[i] = 0;
		else if (lo + 8 > (unsigned)bits)
			addr[i] &= (uint8_t)(0xFF << (8 - ((unsigned)bits - lo)));
	}
	return 0;
}

/* Lexical clean-up: "//", "/./" and "dir/.." collapse (no symlinks are
 * followed: the path may not exist yet). */
static void normalise(char *p)
{
	char *out = p, *in = p;
	size_t root_len = 1;
	while (*in) {
		if (in[0] == '/') {
			while (in[1] == '/')
				in++;
			if (in[1] == '.' && (in[2] == '/' || in[2] == '\0')) {
				in += 2;
				continue;
			}
			if (in[1] == '.' && in[2] == '.' && (in[3] == '/' || in[3] == '\0')) {
				in += 3;
				while (out > p + root_len - 1 && *--out != '/')
					;
				continue;
			}
		}
		*out++ = *in++;
	}
	if (out == p)
		*out++ = '/';
	else if (out > p + 1 && out[-1] == '/')
		out--;
	*out = '\0';
}

static char *join(const char *dir, const char *rel)
{
	size_t a = strlen(dir), b = strlen(rel);
	char *p = malloc(a + b + 2);
	if (!p)
		return NULL;
	memcpy(p, dir, a);
	p[a] = '/';
	memcpy(p + a + 1, rel, b + 1);
	normalise(p);
	return p;
}

char *vb_spec_resolve_path(const char *path, const char *spec_dir, bool *exists)
{
	struct stat st;
	char cwd[PATH_MAX];
	char *p;

	if (path[0] == '/') {
		p = strdup(path);
		if (p)
			normalise(p);
	} else {
		p = join(spec_dir ? spec_dir : ".", path);
		if (p && stat(p, &st) != 0 && getcwd(cwd, sizeof(cwd))) {
			char *q = join(cwd, path);
			if (q && stat(q, &st) == 0) {
				free(p);
				p = q;
			} else {
				free(q);
			}
		}
	}
	if (!p)
		return NULL;
	*exists = stat(p, &st) == 0;
	return p;
}

bool vb_spec_is_provider_credential(const char *name)
{
	static const char *const creds[] = { "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN",
					     "CLAUDE_CODE_OAUTH_TOKEN", "OPENAI_API_KEY", NULL };
	for (size_t i = 0; creds[i]; i++)
		if (strcmp(name, creds[i]) == 0)
			return true;
	return false;
}

const char *vb_spec_kind_name(enum vb_spec_kind kind)
{
	static const char *const names[] = { "agent", "pipeline", "workflow", "sandbox" };
	return (unsigned)kind < 4 ? names[kind] : "?";
}

const char *vb_spec_provider_name(enum vb_spec_provider p)
{
	static const char *const names[] = { "claude", "claude-personal", "codex",
					     "ollama", "lmstudio", "custom" };
	return (unsigned)p < 6 ? names[p] : "?";
}

const char *vb_spec_backend_name(enum vb_spec_backend b)
{
	static const char *const names[] = { "auto", "qemu", "kvm", "tcg" };
	return (unsigned)b < 4 ? names[b] : "?";
}

const char *vb_spec_skill_type_name(enum vb_spec_skill_type t)
{
	static const char *const names[] = { "agent", "file", "remote", "cli", "mcp", "oci", "inline" };
	return (unsigned)t < 7 ? names[t] : "?";
}

/* Box fields override top-level fields one by one. */
static int resolve_vm(struct vb_spec_vm *vm, const struct vb_spec_sandbox *top,
		      const struct vb_spec_sandbox *box)
{
	static const struct vb_spec_sandbox none;
	if (!box)
		box = &none;
#define PICK(f) (box->f.set ? &box->f : top->f.set ? &top->f : NULL)
#define PICKS(f) (box->f.s ? box->f.s : top->f.s)
	vm->backend = box->backend_text.s ? box->backend : top->backend;
	vm->mock_requested = top->mock_requested;
#define PICKV(f, def) (box->f.set ? box->f.v : top->f.set ? top->f.v : (def))
	vm->memory_mb = (uint32_t)PICKV(memory_mb, 1024);
	vm->vcpus = (uint32_t)PICKV(vcpus, 1);
	vm->network = PICKV(network, false);
	vm->network_policy = PICK(network_policy);
	vm->ports = box->ports_set ? box->ports : top->ports;
	vm->n_ports = box->ports_set ? box->n_ports : top->n_ports;
	vm->limits = PICK(limits);
	vm->allowed_commands = PICK(allowed_commands);
	vm->kernel = box->kernel.abs ? box->kernel.abs : top->kernel.abs;
	vm->initramfs = box->initramfs.abs ? box->initramfs.abs : top->initramfs.abs;
	vm->image = PICKS(image);
	vm->guest_image = PICKS(guest_image);
	vm->snapshot = PICKS(snapshot);
#undef PICK
#undef PICKS
#undef PICKV

	vm->env = calloc(top->env.n + box->env.n + 1, sizeof(*vm->env));
	vm->mounts = calloc(top->n_mounts + box->n_mounts + 1, sizeof(*vm->mounts));
	if (!vm->env || !vm->mounts)
		return -1;
	for (size_t i = 0; i < top->env.n; i++) {
		bool shadowed = false;
		for (size_t j = 0; j < box->env.n && !shadowed; j++)
			shadowed = !strcmp(top->env.v[i].key.s, box->env.v[j].key.s);
		if (!shadowed)
			vm->env[vm->n_env++] = &top->env.v[i];
	}
	for (size_t j = 0; j < box->env.n; j++)
		vm->env[vm->n_env++] = &box->env.v[j];
	/* A box mount at the same guest path replaces the top-level one. */
	for (size_t i = 0; i < top->n_mounts; i++) {
		bool shadowed = false;
		for (size_t j = 0; j < box->n_mounts && !shadowed; j++)
			shadowed = top->mounts[i].guest.s && box->mounts[j].guest.s &&
				   !strcmp(top->mounts[i].guest.s, box->mounts[j].guest.s);
		if (!shadowed)
			vm->mounts[vm->n_mounts++] = &top->mounts[i];
	}
	for (size_t j = 0; j < box->n_mounts; j++)
		vm->mounts[vm->n_mounts++] = &box->mounts[j];
	return 0;
}

enum vb_spec_agent_bin vb_spec_default_agent(enum vb_spec_provider p)
{
	switch (p) {
	case VB_SPEC_PROVIDER_CLAUDE:
	case VB_SPEC_PROVIDER_CLAUDE_PERSONAL:
		return VB_SPEC_AGENT_CLAUDE_CODE;
	case VB_SPEC_PROVIDER_CODEX:
		return VB_SPEC_AGENT_CODEX;
	case VB_SPEC_PROVIDER_OLLAMA:
	case VB_SPEC_PROVIDER_LMSTUDIO:
	case VB_SPEC_PROVIDER_CUSTOM:
		break;
	}
	return VB_SPEC_AGENT_BUILTIN;
}

/* Box llm over top-level llm.  A box that picks another provider starts
 * from that provider's defaults, not from the top level's model. */
static void resolve_llm(struct vb_spec_llm_eff *e, const struct vb_spec_llm *top,
			const struct vb_spec_llm *box)
{
	static const struct vb_spec_llm none;
	if (!box)
		box = &none;
	if (box->provider_text.s && (!top->provider_text.s || box->provider != top->provider))
		top = &none;
	e->provider = box->provider_text.s ? box->provider : top->provider;
	e->model = box->model.s ? box->model.s : top->model.s;
	e->base_url = box->base_url.s ? box->base_url.s : top->base_url.s;
	e->api_key_env = box->api_key_env.s ? box->api_key_env.s : top->api_key_env.s;
	e->agent = box->agent_text.s ? box->agent : top->agent;
	e->agent_explicit = e->agent != VB_SPEC_AGENT_DEFAULT;
	e->budget = box->budget.set ? &box->budget : &top->budget;
	e->credential_proxy = box->credential_proxy.set ? box->credential_proxy.v :
							  top->credential_proxy.v;
	if (e->provider == VB_SPEC_PROVIDER_OLLAMA) {
		if (!e->model)
			e->model = "qwen3-coder:7b";
		if (!e->base_url)
			e->base_url = "http://127.0.0.1:11434";
	} else if (e->provider == VB_SPEC_PROVIDER_LMSTUDIO && !e->base_url) {
		e->base_url = "http://127.0.0.1:1234";
	}
	if (e->agent == VB_SPEC_AGENT_DEFAULT)
		e->agent = vb_spec_default_agent(e->provider);
}

static int set_default(struct vb_spec_str *s, const char *def)
{
	if (s->s)
		return 0;
	s->s = strdup(def);
	return s->s ? 0 : -1;
}

int spec_resolve(struct vb_spec *spec)
{
	if (resolve_vm(&spec->vm, &spec->sandbox, NULL) < 0)
		return -1;
	resolve_llm(&spec->llm_eff, &spec->llm, NULL);
	if (spec->kind == VB_SPEC_AGENT && set_default(&spec->agent.output_file, default_output_file) < 0)
		return -1;
	for (size_t i = 0; i < spec->pipeline.n_boxes; i++) {
		struct vb_spec_box *b = &spec->pipeline.boxes[i];
		if (resolve_vm(&b->vm, &spec->sandbox, &b->sandbox) < 0)
			return -1;
		resolve_llm(&b->llm_eff, &spec->llm, &b->llm);
		if (set_default(&b->output_file, default_output_file) < 0)
			return -1;
		for (size_t o = 0; o < b->n_outputs; o++)
			if (set_default(&b->outputs[o].guest, default_output_guest) < 0)
				return -1;
		for (size_t o = 0; o < b->n_inputs; o++)
			if (set_default(&b->inputs[o].guest, default_input_guest) < 0)
				return -1;
	}
	return 0;
}

void spec_free_strlist(struct vb_spec_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].s);
	free(l->v);
}

void spec_free_env(struct vb_spec_env *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].key.s);
		free(e->v[i].value.s);
	}
	free(e->v);
}

static void free_path(struct vb_spec_path *p)
{
	free(p->text.s);
	free(p->abs);
}

static void free_vm(struct vb_spec_vm *vm)
{
	free(vm->env);
	free(vm->mounts);
}

void spec_free_sandbox(struct vb_spec_sandbox *sb)
{
	free(sb->mode_text.s);
	free(sb->backend_text.s);
	free_path(&sb->kernel);
	free_path(&sb->initramfs);
	for (size_t i = 0; i < sb->network_policy.n_deny; i++)
		free(sb->network_policy.deny[i].text.s);
	free(sb->network_policy.deny);
	for (size_t i = 0; i < sb->network_policy.n_allow; i++)
		free(sb->network_policy.allow[i].text.s);
	free(sb->network_policy.allow);
	free(sb->network_policy.host_ports);
	spec_free_strlist(&sb->network_policy.allow_domains);
	free(sb->ports);
	spec_free_env(&sb->env);
	for (size_t i = 0; i < sb->n_mounts; i++) {
		free_path(&sb->mounts[i].host);
		free(sb->mounts[i].guest.s);
	}
	free(sb->mounts);
	free(sb->image.s);
	free(sb->guest_image.s);
	free(sb->snapshot.s);
	spec_free_strlist(&sb->allowed_commands);
}

void spec_free_skills(struct vb_spec_skills *sk)
{
	for (size_t i = 0; i < sk->n; i++) {
		struct vb_spec_skill *s = &sk->v[i];
		free(s->value);
		free_path(&s->path);
		free(s->name.s);
		free(s->command.s);
		spec_free_strlist(&s->args);
		spec_free_env(&s->env);
		free(s->image.s);
		free(s->mount.s);
		free(s->content.s);
	}
	free(sk->v);
}

static void free_llm(struct vb_spec_llm *l)
{
	free(l->provider_text.s);
	free(l->model.s);
	free(l->base_url.s);
	free(l->api_key_env.s);
	free(l->agent_text.s);
}

static void free_run(struct vb_spec_run *r)
{
	free(r->program.s);
	spec_free_strlist(&r->args);
	free(r->stdin_from.s);
}

void vb_spec_free(struct vb_spec *spec)
{
	if (!spec)
		return;
	free(spec->file);
	free(spec->dir);
	free(spec->api_version.s);
	free(spec->kind_text.s);
	free(spec->name.s);
	spec_free_sandbox(&spec->sandbox);
	free_llm(&spec->llm);
	free(spec->observe.otlp_endpoint.s);
	free(spec->observe.service_name.s);
	free(spec->agent.prompt.s);
	spec_free_skills(&spec->agent.skills);
	free(spec->agent.output_file.s);
	free(spec->agent.mode_text.s);
	free(spec->agent.provider_bridge.s);
	for (size_t i = 0; i < spec->pipeline.n_boxes; i++) {
		struct vb_spec_box *b = &spec->pipeline.boxes[i];
		free(b->name.s);
		free(b->prompt.s);
		free_run(&b->run);
		spec_free_skills(&b->skills);
		free_llm(&b->llm);
		spec_free_sandbox(&b->sandbox);
		for (size_t o = 0; o < b->n_outputs; o++) {
			free(b->outputs[o].name.s);
			free(b->outputs[o].guest.s);
		}
		free(b->outputs);
		for (size_t o = 0; o < b->n_inputs; o++) {
			free(b->inputs[o].from.s);
			free(b->inputs[o].guest.s);
		}
		free(b->inputs);
		free(b->output_file.s);
		free_vm(&b->vm);
	}
	free(spec->pipeline.boxes);
	for (size_t i = 0; i < spec->pipeline.n_stages; i++) {
		spec_free_strlist(&spec->pipeline.stages[i].names);
		free(spec->pipeline.stages[i].box_index);
	}
	free(spec->pipeline.stages);
	for (size_t i = 0; i < spec->workflow.n_steps; i++) {
		struct vb_spec_step *st = &spec->workflow.steps[i];
		free(st->name.s);
		free_run(&st->run);
		spec_free_strlist(&st->depends_on);
		free(st->dep_index);
		free(st->mode_text.s);
	}
	free(spec->workflow.steps);
	free(spec->workflow.output_step.s);
	free_vm(&spec->vm);
	free(spec);
}
