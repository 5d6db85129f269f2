/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Schema v1, part one: the top level, sandbox, llm, observe, agent and
 * skills.  Each object checks its field names first (unknown field → did
 * you mean), then reads each field with a type-checked reader.  A bad value
 * is reported and skipped; reading goes on so that one pass finds every
 * problem.
 */
#include "spec/spec_internal.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *const top_fields[] = { "api_version", "kind", "name", "sandbox", "llm",
					  "observe", "agent", "pipeline", "workflow", NULL };
static const char *const kind_names[] = { "agent", "pipeline", "workflow", "sandbox", NULL };

static const char *const sandbox_fields[] = {
	"mode", "backend", "kernel", "initramfs", "memory_mb", "vcpus", "network",
	"network_policy", "ports", "env", "mounts", "image", "guest_image", "snapshot", "limits",
	"allowed_commands", NULL
};
/* A box override is the same minus mode, which holds for the whole spec. */
static const char *const box_sandbox_fields[] = {
	"backend", "kernel", "initramfs", "memory_mb", "vcpus", "network",
	"network_policy", "ports", "env", "mounts", "image", "guest_image", "snapshot", "limits",
	"allowed_commands", NULL
};
static const char *const mode_names[] = { "auto", "local", "mock", NULL };
static const char *const backend_names[] = { "auto", "qemu", "kvm", "tcg", NULL };
static const char *const netpol_fields[] = { "deny", "allow", "allow_domains", "host_ports",
					     "allow_private", "max_connections",
					     "connections_per_sec", NULL };
static const char *const port_fields[] = { "host", "guest", NULL };
static const char *const limits_fields[] = { "nofile", "nproc", "fsize_mb", "timeout_secs",
					      "outputs_mb", NULL };
static const char *const mount_fields[] = { "host", "guest", "mode", NULL };
static const char *const mount_modes[] = { "ro", "rw", NULL };
static const char *const llm_fields[] = { "provider", "model", "base_url", "api_key_env",
					  "agent", "credential_proxy", "budget", NULL };
static const char *const budget_fields[] = { "max_tokens", "max_cost_usd", "max_requests", NULL };
/* lm-studio is an alias of lmstudio: matched below, not listed. */
static const char *const provider_names[] = { "claude", "claude-personal", "codex", "ollama",
					      "lmstudio", "custom", NULL };
static const char *const agent_bin_names[] = { "claude-code", "codex", "builtin", NULL };
static const char *const observe_fields[] = { "traces", "metrics", "logs", "otlp_endpoint",
					      "service_name", "telemetry_buffer_size", NULL };
static const char *const agent_fields[] = { "prompt", "skills", "timeout_secs", "output_file",
					    "mode", "messaging", "max_turns", NULL };
static const char *const agent_modes[] = { "task", "service", "interactive", NULL };
static const char *const messaging_fields[] = { "enabled", "provider_bridge", NULL };
static const char *const skill_types[] = { "agent", "file", "remote", "cli", "mcp", NULL };

#define MAX_SECS 31536000 /* a year: anything longer is a typo */


static const struct node *field(const struct node *map, const char *key, const char *parent,
				char *path)
{
	spec_path(path, parent, key);
	return spec_map_get(map, key);
}

/* The host's memory in MiB: the upper bound for memory_mb. */
static uint64_t host_mem_mb(struct spec_ctx *c)
{
	if (spec_host_mem_override_mb)
		return spec_host_mem_override_mb;
	if (!c->host_mem_mb) {
		long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
		if (pages > 0 && page > 0)
			c->host_mem_mb = (uint64_t)pages / (1048576u / (uint64_t)page);
		else
			c->host_mem_mb = (uint64_t)1 << 20; /* unknown: 1 TiB */
	}
	return c->host_mem_mb;
}

static void parse_cidrs(struct spec_ctx *c, const struct node *v, const char *path,
			struct vb_spec_cidr **out, size_t *n_out, bool *set)
{
	if (spec_get_seq(c, v, path) <= 0)
		return;
	*set = true;
	if (!v->n)
		return;
	*out = calloc(v->n, sizeof(**out));
	if (!*out) {
		spec_oom(c);
		return;
	}
	for (size_t i = 0; i < v->n; i++) {
		char p[SPEC_PATH_MAX], clip[64];
		struct vb_spec_cidr *cidr = &(*out)[*n_out];
		spec_path_index(p, path, i);
		if (spec_is_null(v->items[i])) {
			spec_diag(c, v->items[i]->pos, p, "expected a CIDR, found null");
			continue;
		}
		if (spec_get_str(c, v->items[i], p, &cidr->text) <= 0)
			continue;
		if (vb_spec_parse_cidr(cidr->text.s, &cidr->family, cidr->addr, &cidr->prefix) < 0) {
			spec_diag(c, cidr->text.pos, p,
				  "'%s' is not a CIDR (expected e.g. 10.0.0.0/8 or fd00::/8)",
				  spec_clip(cidr->text.s, clip, sizeof(clip)));
			free(cidr->text.s);
			cidr->text.s = NULL;
			continue;
		}
		/* Host bits set usually means a typo'd prefix: say what we'd use. */
		uint8_t probe[16];
		int fam;
		unsigned pre;
		char net[INET6_ADDRSTRLEN];
		char *slash = strchr(cidr->text.s, '/');
		if (slash) {
			*slash = '\0';
			vb_spec_parse_cidr(cidr->text.s, &fam, probe, &pre);
			*slash = '/';
			if (memcmp(probe, cidr->addr, 16) != 0) {
				inet_ntop(cidr->family, cidr->addr, net, sizeof(net));
				spec_diag(c, cidr->text.pos, p,
					  "'%s' has host bits set (did you mean '%s/%u'?)",
					  spec_clip(cidr->text.s, clip, sizeof(clip)), net, cidr->prefix);
				free(cidr->text.s);
				cidr->text.s = NULL;
				continue;
			}
		}
		(*n_out)++;
	}
}

static void parse_netpolicy(struct spec_ctx *c, const struct node *v, const char *path,
			    struct vb_spec_netpolicy *np)
{
	char p[SPEC_PATH_MAX];
	if (spec_get_map(c, v, path) <= 0)
		return;
	np->set = true;
	np->pos = v->pos;
	spec_check_fields(c, v, path, "in network_policy", netpol_fields);
	bool deny_set = false;
	parse_cidrs(c, field(v, "deny", path, p), p, &np->deny, &np->n_deny, &deny_set);
	parse_cidrs(c, field(v, "allow", path, p), p, &np->allow, &np->n_allow, &np->allow_set);
	const struct node *ports = field(v, "host_ports", path, p);
	if (spec_get_seq(c, ports, p) > 0 && ports->n) {
		np->host_ports = calloc(ports->n, sizeof(*np->host_ports));
		if (!np->host_ports) {
			spec_oom(c);
		} else {
			for (size_t i = 0; i < ports->n; i++) {
				char pi[SPEC_PATH_MAX];
				spec_path_index(pi, p, i);
				if (spec_is_null(ports->items[i]))
					spec_diag(c, ports->items[i]->pos, pi, "expected a port, found null");
				else if (spec_get_int(c, ports->items[i], pi, 1, 65535,
						      &np->host_ports[np->n_host_ports]) > 0)
					np->n_host_ports++;
			}
		}
	}
	spec_get_bool(c, field(v, "allow_private", path, p), p, &np->allow_private);
	spec_get_strlist(c, field(v, "allow_domains", path, p), p, &np->allow_domains);
	for (size_t i = 0; i < np->allow_domains.n; i++) {
		char pi[SPEC_PATH_MAX], clip[64];
		const char *d = np->allow_domains.v[i].s;
		spec_path_index(pi, p, i);
		/* a name, or "*." and a name: letters, digits, '-', '.' */
		const char *name = strncmp(d, "*.", 2) == 0 ? d + 2 : d;
		int ok = name[0] && strlen(name) <= 253 && name[0] != '.' &&
			 strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") ==
				 strlen(name);
		if (!ok)
			spec_diag(c, np->allow_domains.v[i].pos, pi,
				  "'%s' is not a domain name (or *.name)", spec_clip(d, clip, sizeof(clip)));
	}
	/* the flow table's size (net/filter.c) */
	spec_get_int(c, field(v, "max_connections", path, p), p, 1, 4096, &np->max_connections);
	spec_get_int(c, field(v, "connections_per_sec", path, p), p, 1, 100000,
		     &np->connections_per_sec);
}

static void parse_limits(struct spec_ctx *c, const struct node *v, const char *path,
			 struct vb_spec_limits *l)
{
	char p[SPEC_PATH_MAX];
	if (spec_get_map(c, v, path) <= 0)
		return;
	l->set = true;
	l->pos = v->pos;
	spec_check_fields(c, v, path, "in limits", limits_fields);
	spec_get_int(c, field(v, "nofile", path, p), p, 1, 1 << 20, &l->nofile);
	spec_get_int(c, field(v, "nproc", path, p), p, 1, 1 << 22, &l->nproc);
	spec_get_int(c, field(v, "fsize_mb", path, p), p, 1, 1 << 24, &l->fsize_mb);
	spec_get_int(c, field(v, "timeout_secs", path, p), p, 1, MAX_SECS, &l->timeout_secs);
	/* an extension: up to 1 TiB of named outputs per box */
	spec_get_int(c, field(v, "outputs_mb", path, p), p, 1, 1 << 20, &l->outputs_mb);
}

static void parse_mounts(struct spec_ctx *c, const struct node *v, const char *path,
			 struct vb_spec_sandbox *sb)
{
	if (spec_get_seq(c, v, path) <= 0)
		return;
	sb->mounts_set = true;
	if (!v->n)
		return;
	sb->mounts = calloc(v->n, sizeof(*sb->mounts));
	if (!sb->mounts) {
		spec_oom(c);
		return;
	}
	for (size_t i = 0; i < v->n; i++) {
		char p[SPEC_PATH_MAX], pf[SPEC_PATH_MAX];
		const struct node *m = v->items[i];
		struct vb_spec_mount *mt = &sb->mounts[sb->n_mounts];
		spec_path_index(p, path, i);
		if (spec_is_null(m)) {
			spec_diag(c, m->pos, p, "expected a map, found null");
			continue;
		}
		if (spec_get_map(c, m, p) <= 0)
			continue;
		mt->pos = m->pos;
		sb->n_mounts++;
		spec_check_fields(c, m, p, "in a mount", mount_fields);
		if (spec_require(c, m, p, "in a mount", "host"))
			spec_get_host_path(c, field(m, "host", p, pf), pf, &mt->host);
		if (spec_require(c, m, p, "in a mount", "guest") &&
		    spec_get_str(c, field(m, "guest", p, pf), pf, &mt->guest) > 0)
			spec_check_guest_path(c, &mt->guest, pf);
		struct vb_spec_str mode = { 0 };
		int idx = 0;
		if (spec_get_enum(c, field(m, "mode", p, pf), pf, mount_modes, &mode, &idx) > 0)
			mt->mode = idx == 1 ? VB_SPEC_MOUNT_RW : VB_SPEC_MOUNT_RO;
		free(mode.s);
	}
}

static void parse_ports(struct spec_ctx *c, const struct node *v, const char *path,
			struct vb_spec_sandbox *sb)
{
	if (spec_get_seq(c, v, path) <= 0)
		return;
	sb->ports_set = true;
	if (!v->n)
		return;
	if (!(sb->ports = calloc(v->n, sizeof(*sb->ports)))) {
		spec_oom(c);
		return;
	}
	for (size_t i = 0; i < v->n; i++) {
		char p[SPEC_PATH_MAX], pf[SPEC_PATH_MAX];
		const struct node *m = v->items[i];
		struct vb_spec_port *pt = &sb->ports[sb->n_ports];
		spec_path_index(p, path, i);
		if (spec_is_null(m)) {
			spec_diag(c, m->pos, p, "expected a map {host, guest}, found null");
			continue;
		}
		if (spec_get_map(c, m, p) <= 0)
			continue;
		pt->pos = m->pos;
		sb->n_ports++;
		spec_check_fields(c, m, p, "in a port", port_fields);
		if (spec_require(c, m, p, "in a port", "host"))
			spec_get_int(c, field(m, "host", p, pf), pf, 0, 65535, &pt->host);
		if (spec_require(c, m, p, "in a port", "guest"))
			spec_get_int(c, field(m, "guest", p, pf), pf, 1, 65535, &pt->guest);
		for (size_t j = 0; j + 1 < sb->n_ports && pt->host.set && pt->host.v; j++)
			if (sb->ports[j].host.set && sb->ports[j].host.v == pt->host.v)
				spec_diag(c, m->pos, p, "host port %lld is published twice",
					  (long long)pt->host.v);
	}
}

static void parse_basenames(struct spec_ctx *c, const struct node *v, const char *path,
			    struct vb_spec_strlist *l)
{
	spec_get_strlist(c, v, path, l);
	for (size_t i = 0; i < l->n; i++) {
		char p[SPEC_PATH_MAX], clip[64];
		const char *s = l->v[i].s;
		spec_path_index(p, path, i);
		if (!*s || strchr(s, '/') || !strcmp(s, ".") || !strcmp(s, ".."))
			spec_diag(c, l->v[i].pos, p, "'%s' must be a program name without '/'",
				  spec_clip(s, clip, sizeof(clip)));
	}
}

void spec_parse_sandbox(struct spec_ctx *c, const struct node *v, const char *path,
			const char *where, bool is_override, struct vb_spec_sandbox *sb)
{
	char p[SPEC_PATH_MAX];
	int idx;
	if (spec_get_map(c, v, path) <= 0)
		return;
	sb->set = true;
	sb->pos = v->pos;
	spec_check_fields(c, v, path, where, is_override ? box_sandbox_fields : sandbox_fields);
	if (!is_override && spec_get_enum_nocase(c, field(v, "mode", path, p), p, mode_names,
						 &sb->mode_text, &idx) > 0) {
		sb->mode = idx == 1 ? VB_SPEC_MODE_LOCAL : VB_SPEC_MODE_AUTO;
		sb->mock_requested = idx == 2;
	}
	if (spec_get_enum_nocase(c, field(v, "backend", path, p), p, backend_names, &sb->backend_text,
			  &idx) > 0)
		sb->backend = (enum vb_spec_backend)idx;
	spec_get_host_path(c, field(v, "kernel", path, p), p, &sb->kernel);
	spec_get_host_path(c, field(v, "initramfs", path, p), p, &sb->initramfs);

	const struct node *mem = field(v, "memory_mb", path, p);
	struct vb_spec_int probe = { 0 };
	uint64_t host = host_mem_mb(c);
	/* Range-checked in two steps to name the host's limit in the message. */
	if (spec_get_int(c, mem, p, 64, INT64_MAX, &probe) > 0) {
		if ((uint64_t)probe.v > host)
			spec_diag(c, mem->pos, p, "%lld MiB is more than this host's memory (%llu MiB)",
				  (long long)probe.v, (unsigned long long)host);
		else
			sb->memory_mb = probe;
	}
	spec_get_int(c, field(v, "vcpus", path, p), p, 1, 256, &sb->vcpus);
	spec_get_bool(c, field(v, "network", path, p), p, &sb->network);
	parse_netpolicy(c, field(v, "network_policy", path, p), p, &sb->network_policy);
	parse_ports(c, field(v, "ports", path, p), p, sb);
	spec_get_env(c, field(v, "env", path, p), p, &sb->env);
	parse_mounts(c, field(v, "mounts", path, p), p, sb);
	if (spec_get_str(c, field(v, "image", path, p), p, &sb->image) > 0)
		spec_check_image_ref(c, &sb->image, p);
	spec_get_str(c, field(v, "guest_image", path, p), p, &sb->guest_image);
	if (spec_get_str(c, field(v, "snapshot", path, p), p, &sb->snapshot) > 0)
		spec_check_snapshot_ref(c, &sb->snapshot, p);
	parse_limits(c, field(v, "limits", path, p), p, &sb->limits);
	parse_basenames(c, field(v, "allowed_commands", path, p), p, &sb->allowed_commands);
}

static void check_url(struct spec_ctx *c, const struct vb_spec_str *s, const char *path)
{
	char clip[64];
	if (s->s && strncmp(s->s, "http://", 7) != 0 && strncmp(s->s, "https://", 8) != 0)
		spec_diag(c, s->pos, path, "'%s' is not an http:// or https:// URL",
			  spec_clip(s->s, clip, sizeof(clip)));
}

/* llm.budget: {max_tokens, max_cost_usd, max_requests}, each >= 0 (0: no limit). */
static void parse_budget(struct spec_ctx *c, const struct node *v, const char *path,
			 struct vb_spec_llm_budget *b)
{
	char p[SPEC_PATH_MAX];
	if (spec_get_map(c, v, path) <= 0)
		return;
	b->set = true;
	b->pos = v->pos;
	spec_check_fields(c, v, path, "in llm.budget", budget_fields);
	spec_get_int(c, field(v, "max_tokens", path, p), p, 0, INT64_MAX, &b->max_tokens);
	spec_get_int(c, field(v, "max_requests", path, p), p, 0, INT64_MAX, &b->max_requests);
	const struct node *cost = field(v, "max_cost_usd", path, p);
	if (cost && !spec_is_null(cost)) {
		char *end = NULL;
		double d = cost->type == NODE_SCALAR ? strtod(cost->str, &end) : -1;
		if (cost->type != NODE_SCALAR || !end || end == cost->str || *end || !(d >= 0) ||
		    d > 1e9)
			spec_diag(c, cost->pos, p, "expected a number of US dollars >= 0, found %s",
				  spec_describe(cost));
		else
			b->max_cost_usd = d;
	}
}

void spec_parse_llm(struct spec_ctx *c, const struct node *v, const char *path,
		    const char *where, struct vb_spec_llm *llm)
{
	char p[SPEC_PATH_MAX];
	int idx;
	if (spec_get_map(c, v, path) <= 0)
		return;
	llm->set = true;
	llm->pos = v->pos;
	spec_check_fields(c, v, path, where, llm_fields);
	const struct node *prov = field(v, "provider", path, p);
	/* void-box compares providers without regard to case (`Claude`) */
	if (prov && prov->type == NODE_SCALAR && !strcasecmp(prov->str, "lm-studio")) {
		spec_get_str(c, prov, p, &llm->provider_text);
		llm->provider = VB_SPEC_PROVIDER_LMSTUDIO;
	} else if (spec_get_enum_nocase(c, prov, p, provider_names, &llm->provider_text, &idx) > 0) {
		llm->provider = (enum vb_spec_provider)idx;
	}
	spec_get_str(c, field(v, "model", path, p), p, &llm->model);
	if (spec_get_str(c, field(v, "base_url", path, p), p, &llm->base_url) > 0)
		check_url(c, &llm->base_url, p);
	if (spec_get_str(c, field(v, "api_key_env", path, p), p, &llm->api_key_env) > 0 &&
	    !spec_env_name_ok(llm->api_key_env.s)) {
		char clip[64];
		spec_diag(c, llm->api_key_env.pos, p, "'%s' is not a valid environment variable name",
			  spec_clip(llm->api_key_env.s, clip, sizeof(clip)));
	}
	if (spec_get_enum(c, field(v, "agent", path, p), p, agent_bin_names, &llm->agent_text,
			  &idx) > 0)
		llm->agent = (enum vb_spec_agent_bin)(idx + 1);
	spec_get_bool(c, field(v, "credential_proxy", path, p), p, &llm->credential_proxy);
	parse_budget(c, field(v, "budget", path, p), p, &llm->budget);
}

static void parse_observe(struct spec_ctx *c, const struct node *v, struct vb_spec_observe *o)
{
	char p[SPEC_PATH_MAX];
	if (spec_get_map(c, v, "observe") <= 0)
		return;
	o->set = true;
	o->pos = v->pos;
	spec_check_fields(c, v, "observe", "in observe", observe_fields);
	spec_get_bool(c, field(v, "traces", "observe", p), p, &o->traces);
	spec_get_bool(c, field(v, "metrics", "observe", p), p, &o->metrics);
	spec_get_bool(c, field(v, "logs", "observe", p), p, &o->logs);
	if (spec_get_str(c, field(v, "otlp_endpoint", "observe", p), p, &o->otlp_endpoint) > 0)
		check_url(c, &o->otlp_endpoint, p);
	spec_get_str(c, field(v, "service_name", "observe", p), p, &o->service_name);
	spec_get_int(c, field(v, "telemetry_buffer_size", "observe", p), p, 1, 1 << 24,
		     &o->telemetry_buffer_size);
}

/* "<type>:<value>" */
static void parse_skill_string(struct spec_ctx *c, const struct node *v, const char *path,
			       struct vb_spec_skill *sk)
{
	char clip[64], hint[96] = "";
	struct vb_spec_str s = { 0 };
	if (spec_get_str(c, v, path, &s) <= 0)
		return;
	sk->pos = v->pos;
	char *colon = strchr(s.s, ':');
	if (!colon) {
		const char *sug = vb_spec_suggest(s.s, skill_types);
		if (sug)
			snprintf(hint, sizeof(hint), " (did you mean '%s:...'?)", sug);
		spec_diag(c, v->pos, path,
			  "skill '%s' has no type: expected '<type>:<value>' with type agent, file, remote, cli or mcp%s",
			  spec_clip(s.s, clip, sizeof(clip)), hint);
		goto out;
	}
	*colon = '\0';
	int type = -1;
	for (int i = 0; skill_types[i]; i++)
		if (!strcmp(s.s, skill_types[i]))
			type = i;
	if (type < 0) {
		const char *sug = vb_spec_suggest(s.s, skill_types);
		if (sug)
			snprintf(hint, sizeof(hint), " (did you mean '%s'?)", sug);
		spec_diag(c, v->pos, path,
			  "unknown skill type '%s': expected agent, file, remote, cli or mcp%s",
			  spec_clip(s.s, clip, sizeof(clip)), hint);
		goto out;
	}
	const char *val = colon + 1;
	sk->type = (enum vb_spec_skill_type)type;
	if (!*val) {
		spec_diag(c, v->pos, path, "skill '%s:' has nothing after the ':'", s.s);
		goto out;
	}
	sk->value = spec_strdup(c, val);
	if (!sk->value)
		goto out;
	if (sk->type == VB_SPEC_SKILL_FILE) {
		sk->path.text.s = spec_strdup(c, val);
		sk->path.text.pos = v->pos;
		sk->path.abs = vb_spec_resolve_path(val, c->dir, &sk->path.exists);
		if (!sk->path.abs)
			spec_oom(c);
	} else if (sk->type == VB_SPEC_SKILL_REMOTE) {
		/* owner/repo or owner/repo/skill */
		size_t parts = 1;
		bool empty = !*val || val[strlen(val) - 1] == '/';
		for (const char *q = val; *q; q++) {
			if (*q == '/') {
				parts++;
				empty |= q[1] == '/';
			}
		}
		if (parts < 2 || parts > 3 || empty || *val == '/')
			spec_diag(c, v->pos, path,
				  "remote skill '%s' must be 'owner/repo' or 'owner/repo/skill'",
				  spec_clip(val, clip, sizeof(clip)));
	} else if (sk->type == VB_SPEC_SKILL_CLI && strchr(val, '/')) {
		spec_diag(c, v->pos, path, "cli skill '%s' must be a program name without '/'",
			  spec_clip(val, clip, sizeof(clip)));
	}
out:
	free(s.s);
}

static const char *const oci_skill_fields[] = { "image", "mount", "readonly", NULL };
static const char *const mcp_skill_fields[] = { "name", "command", "args", "env", NULL };
static const char *const inline_skill_fields[] = { "name", "content", NULL };

static void parse_skill_object(struct spec_ctx *c, const struct node *v, const char *path,
			       struct vb_spec_skill *sk)
{
	char p[SPEC_PATH_MAX];
	sk->pos = v->pos;
	sk->object_form = true;
	if (spec_map_get(v, "image")) {
		sk->type = VB_SPEC_SKILL_OCI;
		spec_check_fields(c, v, path, "in an image skill", oci_skill_fields);
		if (spec_require(c, v, path, "in an image skill", "image"))
			spec_get_str(c, field(v, "image", path, p), p, &sk->image);
		if (spec_require(c, v, path, "in an image skill", "mount") &&
		    spec_get_str(c, field(v, "mount", path, p), p, &sk->mount) > 0)
			spec_check_guest_path(c, &sk->mount, p);
		sk->readonly.v = true;
		spec_get_bool(c, field(v, "readonly", path, p), p, &sk->readonly);
	} else if (spec_map_get(v, "command")) {
		sk->type = VB_SPEC_SKILL_MCP;
		spec_check_fields(c, v, path, "in an MCP skill", mcp_skill_fields);
		spec_get_str(c, field(v, "name", path, p), p, &sk->name);
		spec_check_name(c, &sk->name, p);
		if (spec_require(c, v, path, "in an MCP skill", "command"))
			spec_get_str(c, field(v, "command", path, p), p, &sk->command);
		spec_get_strlist(c, field(v, "args", path, p), p, &sk->args);
		spec_get_env(c, field(v, "env", path, p), p, &sk->env);
	} else if (spec_map_get(v, "content")) {
		sk->type = VB_SPEC_SKILL_INLINE;
		spec_check_fields(c, v, path, "in an inline skill", inline_skill_fields);
		if (spec_require(c, v, path, "in an inline skill", "name") &&
		    spec_get_str(c, field(v, "name", path, p), p, &sk->name) > 0)
			spec_check_name(c, &sk->name, p);
		if (spec_require(c, v, path, "in an inline skill", "content"))
			spec_get_str(c, field(v, "content", path, p), p, &sk->content);
	} else {
		spec_diag(c, v->pos, path,
			  "a skill object needs 'image' (OCI image), 'command' (MCP server) or 'content' (inline skill)");
	}
}

void spec_parse_skills(struct spec_ctx *c, const struct node *v, const char *path,
		       struct vb_spec_skills *out)
{
	if (spec_get_seq(c, v, path) <= 0 || !v->n)
		return;
	out->v = calloc(v->n, sizeof(*out->v));
	if (!out->v) {
		spec_oom(c);
		return;
	}
	for (size_t i = 0; i < v->n; i++) {
		char p[SPEC_PATH_MAX];
		const struct node *it = v->items[i];
		struct vb_spec_skill *sk = &out->v[out->n++];
		spec_path_index(p, path, i);
		if (it->type == NODE_MAP)
			parse_skill_object(c, it, p, sk);
		else if (it->type == NODE_SCALAR && !spec_is_null(it))
			parse_skill_string(c, it, p, sk);
		else
			spec_diag(c, it->pos, p, "expected a skill ('<type>:<value>' or a map), found %s",
				  spec_describe(it));
	}
}

static void parse_agent(struct spec_ctx *c, const struct node *v, struct vb_spec_agent *a)
{
	char p[SPEC_PATH_MAX];
	int idx;
	a->pos = v->pos;
	spec_check_fields(c, v, "agent", "in agent", agent_fields);
	if (spec_get_enum(c, field(v, "mode", "agent", p), p, agent_modes, &a->mode_text, &idx) > 0)
		a->mode = (enum vb_spec_agent_mode)idx;
	const struct node *prompt = field(v, "prompt", "agent", p);
	if (a->mode != VB_SPEC_AGENT_INTERACTIVE)
		spec_require(c, v, "agent", "in agent", "prompt");
	if (spec_get_str(c, prompt, p, &a->prompt) > 0 && !a->prompt.s[strspn(a->prompt.s, " \t\r\n")] &&
	    a->mode != VB_SPEC_AGENT_INTERACTIVE)
		spec_diag(c, a->prompt.pos, p, "prompt is empty");
	spec_parse_skills(c, field(v, "skills", "agent", p), p, &a->skills);
	spec_get_int(c, field(v, "timeout_secs", "agent", p), p, 1, MAX_SECS, &a->timeout_secs);
	spec_get_int(c, field(v, "max_turns", "agent", p), p, 1, VB_SPEC_MAX_TURNS, &a->max_turns);
	if (spec_get_str(c, field(v, "output_file", "agent", p), p, &a->output_file) > 0)
		spec_check_guest_path(c, &a->output_file, p);
	const struct node *msg = field(v, "messaging", "agent", p);
	if (spec_get_map(c, msg, p) > 0) {
		char pm[SPEC_PATH_MAX];
		spec_check_fields(c, msg, p, "in messaging", messaging_fields);
		spec_get_bool(c, field(msg, "enabled", p, pm), pm, &a->messaging_enabled);
		spec_get_str(c, field(msg, "provider_bridge", p, pm), pm, &a->provider_bridge);
	}
	if (a->mode == VB_SPEC_AGENT_SERVICE || a->mode == VB_SPEC_AGENT_INTERACTIVE) {
		const char *m = agent_modes[a->mode];
		if (a->timeout_secs.set)
			spec_diag(c, a->timeout_secs.pos, "agent.timeout_secs",
				  "mode '%s' runs without a timeout: remove timeout_secs", m);
	}
	if (a->mode == VB_SPEC_AGENT_SERVICE && !a->output_file.s && !spec_map_get(v, "output_file"))
		spec_diag(c, a->mode_text.pos, "agent.mode",
			  "mode 'service' needs an output_file (published when the agent writes it)");
}

void spec_parse_top(struct spec_ctx *c, const struct node *root, struct vb_spec *spec)
{
	char clip[64];
	int idx = -1;
	if (root->type != NODE_MAP) {
		spec_diag(c, root->pos, "", "expected a map at the top level (api_version, kind, name, ...), found %s",
			  spec_describe(root));
		return;
	}
	spec_check_fields(c, root, "", "at the top level", top_fields);
	if (spec_get_str(c, spec_map_get(root, "api_version"), "api_version", &spec->api_version) > 0 &&
	    strcmp(spec->api_version.s, "v1") != 0)
		spec_diag(c, spec->api_version.pos, "api_version", "unsupported api_version '%s': expected 'v1'",
			  spec_clip(spec->api_version.s, clip, sizeof(clip)));
	bool kind_ok = spec_require(c, root, "", "at the top level", "kind") &&
		       spec_get_enum(c, spec_map_get(root, "kind"), "kind", kind_names,
				     &spec->kind_text, &idx) > 0;
	if (kind_ok)
		spec->kind = (enum vb_spec_kind)idx;
	if (spec_require(c, root, "", "at the top level", "name") &&
	    spec_get_str(c, spec_map_get(root, "name"), "name", &spec->name) > 0)
		spec_check_name(c, &spec->name, "name");
	spec_parse_sandbox(c, spec_map_get(root, "sandbox"), "sandbox", "in sandbox", false,
			   &spec->sandbox);
	spec_parse_llm(c, spec_map_get(root, "llm"), "llm", "in llm", &spec->llm);
	parse_observe(c, spec_map_get(root, "observe"), &spec->observe);

	/* Exactly the section the kind names; with a bad kind, read whatever
	 * sections are there so their problems are found too. */
	static const char *const sections[] = { "agent", "pipeline", "workflow" };
	for (int i = 0; i < 3; i++) {
		const struct node *key = spec_map_key(root, sections[i]);
		const struct node *v = spec_map_get(root, sections[i]);
		if (kind_ok && i != idx) {
			if (key)
				spec_diag(c, key->pos, sections[i],
					  "section '%s' is not allowed with kind '%s'%s", sections[i],
					  kind_names[idx], idx == VB_SPEC_SANDBOX ? " (a sandbox kind takes none)" : "");
			continue;
		}
		if (!key) {
			if (kind_ok)
				spec_diag(c, spec->kind_text.pos, "kind",
					  "kind '%s' needs a '%s' section", kind_names[idx], sections[i]);
			continue;
		}
		if (v->type != NODE_MAP) {
			spec_diag(c, v->pos, sections[i], "expected a map, found %s", spec_describe(v));
			continue;
		}
		if (i == 0)
			parse_agent(c, v, &spec->agent);
		else if (i == 1)
			spec_parse_pipeline(c, v, &spec->pipeline);
		else
			spec_parse_workflow(c, v, &spec->workflow);
	}
	if (kind_ok && idx == VB_SPEC_AGENT && spec->agent.mode == VB_SPEC_AGENT_SERVICE &&
	    spec->llm.credential_proxy.v)
		spec_diag(c, spec->llm.credential_proxy.pos, "llm.credential_proxy",
			  "credential_proxy does not apply to a service-mode agent");
}
