/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A resolved spec VM turned into a sandbox config and exec environment.
 * Everything is copied, so the result outlives the spec if it must.
 */
#include "run/vmconf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentbin/agentbin.h"
#include "util/util.h"

static char *keep(struct vb_run_vmconf *c, char *s)
{
	if (!s)
		return NULL;
	if (c->n_strs == c->cap_strs) {
		size_t cap = c->cap_strs ? c->cap_strs * 2 : 16;
		char **v = realloc(c->strs, cap * sizeof(*v));
		if (!v) {
			free(s);
			return NULL;
		}
		c->strs = v;
		c->cap_strs = cap;
	}
	c->strs[c->n_strs++] = s;
	return s;
}

char *vb_run_vmconf_keep(struct vb_run_vmconf *c, char *s)
{
	return keep(c, s);
}

static char *copy(struct vb_run_vmconf *c, const char *s)
{
	return keep(c, strdup(s));
}

static int oom(vb_error *err)
{
	return vb_error_set(err, VB_E_RUNTIME, "out of memory");
}

int vb_run_vmconf_add_mount(struct vb_run_vmconf *c, const char *host, const char *guest, int rw,
			    vb_error *err)
{
	if (c->n_mounts == c->cap_mounts) {
		size_t cap = c->cap_mounts ? c->cap_mounts * 2 : 8;
		struct vb_mount *v = realloc(c->mounts_v, cap * sizeof(*v));
		if (!v)
			return oom(err);
		c->mounts_v = v;
		c->cap_mounts = cap;
	}
	char *h = copy(c, host), *g = h ? copy(c, guest) : NULL;
	if (!g)
		return oom(err);
	c->mounts_v[c->n_mounts++] = (struct vb_mount){ .host = h, .guest = g, .rw = rw != 0 };
	c->cfg.mounts = c->mounts_v;
	c->cfg.n_mounts = c->n_mounts;
	return 0;
}

int vb_run_vmconf_add_disk(struct vb_run_vmconf *c, const char *image, const char *guest,
			   vb_error *err)
{
	struct vb_disk_mount *v = realloc(c->disks_v, (c->n_disks + 1) * sizeof(*v));
	if (!v)
		return oom(err);
	c->disks_v = v;
	char *i = copy(c, image), *g = i ? copy(c, guest) : NULL;
	if (!g)
		return oom(err);
	v[c->n_disks++] = (struct vb_disk_mount){ .image = i, .path = g };
	c->cfg.disk_mounts = c->disks_v;
	c->cfg.n_disk_mounts = c->n_disks;
	return 0;
}

int vb_run_vmconf_add_host_mount(struct vb_run_vmconf *c, const char *host, const char *guest,
				 int rw, vb_error *err)
{
	struct stat st;
	if (stat(host, &st) != 0) {
		if (errno != ENOENT || !rw) {
			vb_error_errno(err, errno, "mount %s", host);
			err->kind = VB_E_USAGE;
			return -1;
		}
		if (vb_mkdir_p(host, 0755, err) < 0) {
			vb_error_prefix(err, "creating rw mount directory");
			return -1;
		}
	} else if (!S_ISDIR(st.st_mode)) {
		return vb_error_set(err, VB_E_USAGE, "mount %s: not a directory", host);
	}
	return vb_run_vmconf_add_mount(c, host, guest, rw, err);
}

static int add_spec_mount(struct vb_run_vmconf *c, const struct vb_spec_mount *m, vb_error *err)
{
	if (!m->host.abs || !m->guest.s)
		return vb_error_set(err, VB_E_USAGE, "a mount has no host or guest path");
	return vb_run_vmconf_add_host_mount(c, m->host.abs, m->guest.s,
					    m->mode == VB_SPEC_MOUNT_RW, err);
}

static int set_env(struct vb_run_vmconf *c, const struct vb_spec_vm *vm, vb_error *err)
{
	c->env_v = calloc(vm->n_env + 1, sizeof(*c->env_v));
	if (!c->env_v)
		return oom(err);
	size_t n = 0;
	for (size_t i = 0; i < vm->n_env; i++) {
		const struct vb_spec_kv *kv = vm->env[i];
		if (!kv->key.s)
			continue;
		if (kv->provider_credential) {
			c->notices |= VB_RUN_NOTICE_CREDENTIALS;
			continue;
		}
		const char *val = kv->value.s ? kv->value.s : "";
		if (kv->from_host) {
			val = getenv(kv->key.s);
			if (!val)
				continue;
		}
		char *s = keep(c, vb_strfmt("%s=%s", kv->key.s, val));
		if (!s)
			return oom(err);
		c->env_v[n++] = s;
	}
	c->env_v[n] = NULL;
	c->env = (const char *const *)c->env_v;
	c->n_env = n;
	return 0;
}

int vb_run_vmconf_set_env(struct vb_run_vmconf *c, const char *kv, vb_error *err)
{
	const char *eq = strchr(kv, '=');
	if (!eq || eq == kv)
		return vb_error_set(err, VB_E_USAGE, "'%s': expected K=V", kv);
	size_t klen = (size_t)(eq - kv) + 1; /* with the '=' */
	char *s = copy(c, kv);
	if (!s)
		return oom(err);
	for (size_t i = 0; i < c->n_env; i++) {
		if (!strncmp(c->env_v[i], kv, klen)) {
			c->env_v[i] = s;
			return 0;
		}
	}
	char **v = realloc(c->env_v, (c->n_env + 2) * sizeof(*v));
	if (!v)
		return oom(err);
	v[c->n_env++] = s;
	v[c->n_env] = NULL;
	c->env_v = v;
	c->env = (const char *const *)v;
	return 0;
}

static int set_allow(struct vb_run_vmconf *c, const struct vb_spec_strlist *l, vb_error *err)
{
	if (!l || !l->set)
		return 0;
	c->allow_v = calloc(l->n + 1, sizeof(*c->allow_v));
	if (!c->allow_v)
		return oom(err);
	for (size_t i = 0; i < l->n; i++)
		if (!(c->allow_v[i] = copy(c, l->v[i].s ? l->v[i].s : "")))
			return oom(err);
	/* An empty list written as [] allows nothing: keep a non-NULL array. */
	c->cfg.allow = (const char *const *)c->allow_v;
	c->cfg.n_allow = l->n;
	return 0;
}

static uint64_t positive(const struct vb_spec_int *v)
{
	return v->set && v->v > 0 ? (uint64_t)v->v : 0;
}

static int set_limits(struct vb_run_vmconf *c, const struct vb_spec_limits *lim)
{
	if (!lim)
		return 0;
	c->cfg.rlimit_nofile = positive(&lim->nofile);
	c->cfg.rlimit_nproc = positive(&lim->nproc);
	uint64_t mb = positive(&lim->fsize_mb);
	c->cfg.rlimit_fsize = mb > UINT64_MAX / (1024 * 1024) ? UINT64_MAX : mb * 1024 * 1024;
	uint64_t secs = positive(&lim->timeout_secs);
	c->timeout_ms = secs > UINT_MAX / 1000 ? UINT_MAX : (unsigned)(secs * 1000);
	return 0;
}

static int check_unsupported(const struct vb_spec_vm *vm, vb_error *err)
{
	if (!vm->network && vm->n_ports)
		return vb_error_set(err, VB_E_USAGE, "sandbox.ports needs network: true");
	return 0;
}

/* sandbox.snapshot: the spec loader checked its syntax and what a restore
 * cannot give; the run finds it before any VM boots (src/run/boot.c). */
static int set_snapshot(struct vb_run_vmconf *c, const struct vb_spec_vm *vm, vb_error *err)
{
	if (!vm->snapshot)
		return 0;
	if (!strcmp(vm->snapshot, "none")) {
		c->boot = VB_RUN_BOOT_COLD;
		return 0;
	}
	c->boot = VB_RUN_BOOT_SNAPSHOT;
	if (!(c->snapshot = copy(c, vm->snapshot)))
		return oom(err);
	return 0;
}

/* --accel (or $VOIDBOX_ACCEL) over the spec's backend: the user at the
 * keyboard knows this host; the spec was written for any. */
static int set_accel(struct vb_run_vmconf *c, const struct vb_spec_vm *vm,
		     const enum vb_accel *override, vb_error *err)
{
	const char *env = getenv("VOIDBOX_ACCEL");
	enum vb_accel from_env;
	if (!override && env && env[0]) {
		if (vb_accel_parse(env, &from_env) < 0)
			return vb_error_set(err, VB_E_USAGE,
					    "VOIDBOX_ACCEL=%.40s: expected auto, kvm or tcg", env);
		override = &from_env;
	}
	if (override)
		c->cfg.accel = *override;
	else if (vm->backend == VB_SPEC_BACKEND_KVM)
		c->cfg.accel = VB_ACCEL_KVM;
	else if (vm->backend == VB_SPEC_BACKEND_TCG)
		c->cfg.accel = VB_ACCEL_TCG;
	return 0;
}

static void to_cidr(const struct vb_spec_cidr *in, struct vb_net_cidr *out)
{
	out->family = in->family;
	memcpy(out->addr, in->addr, sizeof(out->addr));
	out->prefix = in->prefix;
}

/* cfg.network from network_policy (NULL: the defaults) and sandbox.ports. */
static int set_network(struct vb_run_vmconf *c, const struct vb_spec_vm *vm, vb_error *err)
{
	if (!vm->network)
		return 0;
	const struct vb_spec_netpolicy *np = vm->network_policy;
	struct vb_network *n = &c->cfg.network;
	n->enabled = 1;
	if (vm->n_ports) {
		if (vm->n_ports > VB_NET_MAX_PUBLISH)
			return vb_error_set(err, VB_E_USAGE, "sandbox.ports: at most %u",
					    VB_NET_MAX_PUBLISH);
		if (!(c->net_publish = calloc(vm->n_ports, sizeof(*c->net_publish))))
			return oom(err);
		for (size_t i = 0; i < vm->n_ports; i++)
			c->net_publish[i] = (struct vb_net_publish){ (unsigned)vm->ports[i].host.v,
								     (unsigned)vm->ports[i].guest.v };
		n->publish = c->net_publish;
		n->n_publish = vm->n_ports;
	}
	if (!np)
		return 0;
	size_t nc = np->n_deny + np->n_allow;
	if ((nc && !(c->net_cidrs = calloc(nc, sizeof(*c->net_cidrs)))) ||
	    (np->n_host_ports && !(c->net_ports = calloc(np->n_host_ports, sizeof(unsigned)))))
		return oom(err);
	for (size_t i = 0; i < np->n_deny; i++)
		to_cidr(&np->deny[i], &c->net_cidrs[i]);
	for (size_t i = 0; i < np->n_allow; i++)
		to_cidr(&np->allow[i], &c->net_cidrs[np->n_deny + i]);
	n->deny = c->net_cidrs;
	n->n_deny = np->n_deny;
	n->allow = c->net_cidrs ? c->net_cidrs + np->n_deny : NULL;
	n->n_allow = np->n_allow;
	n->allow_set = np->allow_set;
	if (np->allow_domains.n) {
		if (!(c->net_domains = calloc(np->allow_domains.n, sizeof(*c->net_domains))))
			return oom(err);
		for (size_t i = 0; i < np->allow_domains.n; i++)
			if (!(c->net_domains[i] = copy(c, np->allow_domains.v[i].s)))
				return oom(err);
		n->allow_domains = (const char *const *)c->net_domains;
		n->n_allow_domains = np->allow_domains.n;
	}
	for (size_t i = 0; i < np->n_host_ports; i++)
		c->net_ports[i] = (unsigned)np->host_ports[i].v;
	n->host_ports = c->net_ports;
	n->n_host_ports = np->n_host_ports;
	n->allow_private = np->allow_private.set && np->allow_private.v;
	n->max_connections = np->max_connections.set ? (unsigned)np->max_connections.v : 0;
	n->connections_per_sec =
		np->connections_per_sec.set ? (unsigned)np->connections_per_sec.v : 0;
	return 0;
}

int vb_run_vm_config(const struct vb_spec_vm *vm, const enum vb_accel *accel,
		     struct vb_run_vmconf *out, vb_error *err)
{
	return vb_run_vm_config_pull(vm, accel, NULL, out, err);
}

int vb_run_vm_config_pull(const struct vb_spec_vm *vm, const enum vb_accel *accel,
			  const struct vb_run_pull *pull, struct vb_run_vmconf *out, vb_error *err)
{
	memset(out, 0, sizeof(*out));
	if (check_unsupported(vm, err) < 0 || set_accel(out, vm, accel, err) < 0 ||
	    set_snapshot(out, vm, err) < 0)
		return -1;
	/* every backend value runs on QEMU: kvm and tcg name its accelerator */
	out->cfg.backend = vm->backend == VB_SPEC_BACKEND_AUTO ? VB_BACKEND_AUTO : VB_BACKEND_QEMU;
	out->cfg.memory_mib = vm->memory_mb;
	out->cfg.vcpus = vm->vcpus;
	if (vm->mock_requested)
		out->notices |= VB_RUN_NOTICE_MOCK;
	if ((vm->kernel && !(out->cfg.kernel = copy(out, vm->kernel))) ||
	    (vm->initramfs && !(out->cfg.initramfs = copy(out, vm->initramfs))))
		return oom(err);
	if (vb_run_guest_image(out, vm, pull, err) < 0)
		return -1;
	for (size_t i = 0; i < vm->n_mounts; i++)
		if (add_spec_mount(out, vm->mounts[i], err) < 0)
			return -1;
	if (set_allow(out, vm->allowed_commands, err) < 0 || set_env(out, vm, err) < 0 ||
	    set_network(out, vm, err) < 0)
		return -1;
	return set_limits(out, vm->limits);
}

int vb_run_vmconf_add_agent(struct vb_run_vmconf *c, int kind, FILE *progress, vb_error *err)
{
	if (kind < 0 || kind >= VB_AGENTBIN_N)
		return vb_error_set(err, VB_E_RUNTIME, "unknown agent binary %d", kind);
	struct vb_agentbin_attach a;
	int rc = vb_agentbin_attach((enum vb_agentbin_kind)kind, progress, &a, err);
	/* PATH replaces the guest's default, so a second agent's bin/ goes
	 * before the first's PATH rather than over it */
	const char *prev = NULL;
	for (size_t i = 0; rc == 0 && i < c->n_env; i++)
		if (!strncmp(c->env_v[i], "PATH=", 5))
			prev = c->env_v[i] + 5;
	_cleanup_free_ char *path =
		rc == 0 ? vb_strfmt("PATH=%s:%s", a.bin_guest, prev ? prev : VB_AGENTBIN_GUEST_PATH)
			: NULL;
	if (rc == 0 && !path)
		rc = oom(err);
	int have_support = 0, have_tree = 0;
	for (size_t i = 0; rc == 0 && i < c->n_mounts; i++) {
		have_support |= !strcmp(c->mounts_v[i].guest, VB_AGENTBIN_GUEST_SUPPORT);
		have_tree |= !strcmp(c->mounts_v[i].guest, a.tree_guest);
	}
	if (have_tree) { /* added before: nothing to do */
		vb_agentbin_attach_free(&a);
		return 0;
	}
	if (rc == 0)
		rc = vb_run_vmconf_add_mount(c, a.tree_host, a.tree_guest, 0, err);
	if (rc == 0 && !have_support)
		rc = vb_run_vmconf_add_mount(c, a.support_host, VB_AGENTBIN_GUEST_SUPPORT, 0, err);
	if (rc == 0)
		rc = vb_run_vmconf_set_env(c, path, err);
	vb_agentbin_attach_free(&a);
	return rc;
}

void vb_run_vmconf_notify(const struct vb_run_vmconf *c, FILE *out)
{
	static atomic_uint printed;
	if (!out || !c)
		return;
	unsigned fresh = c->notices & ~atomic_fetch_or(&printed, c->notices);
	if (fresh & VB_RUN_NOTICE_MOCK)
		fputs("voidbox: note: sandbox.mode 'mock' is treated as 'auto': every stage here "
		      "runs in a VM\n",
		      out);
	if (fresh & VB_RUN_NOTICE_CREDENTIALS)
		fputs("voidbox: note: provider credentials in sandbox.env stay on the host (the LLM "
		      "gateway uses them); they are not passed into the VM\n",
		      out);
}

void vb_run_vmconf_free(struct vb_run_vmconf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_strs; i++)
		free(c->strs[i]);
	free(c->strs);
	free(c->mounts_v);
	free(c->disks_v);
	free(c->allow_v);
	free(c->env_v);
	free(c->net_cidrs);
	free(c->net_ports);
	free(c->net_publish);
	free(c->net_domains);
	memset(c, 0, sizeof(*c));
}
