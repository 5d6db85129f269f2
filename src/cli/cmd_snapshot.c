/* SPDX-License-Identifier: Apache-2.0 */
/* voidbox snapshot create|list|inspect|delete: saved VMs (docs/snapshots.md). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "run/image.h"
#include "run/vmconf.h"
#include "snap/snap.h"
#include "spec/spec.h"
#include "util/util.h"

static const char usage_text[] =
	"usage: voidbox snapshot create [--name NAME] [--from BASE | --spec FILE] [OPTIONS]\n"
	"                               [--image REF [--pull P]] [-- SETUP-CMD [ARGS...]]\n"
	"       voidbox snapshot list [-o text|json]\n"
	"       voidbox snapshot inspect ID|NAME\n"
	"       voidbox snapshot delete ID|NAME...\n"
	"       voidbox snapshot warm [--memory SIZE] [--cpus N] [--accel A] [--image REF]\n"
	"\n"
	"create   boot a VM, run SETUP-CMD in it as root (if given; it must exit 0),\n"
	"         flush the guest's file systems, pause the VM and store it; prints\n"
	"         the snapshot's id.  `voidbox exec --snapshot ID` starts from it.\n"
	"         --from BASE restores the snapshot BASE instead of booting, and\n"
	"         stores only what differs from it (a diff)\n"
	"list     the stored snapshots, newest first: BASE of a diff, SIZE on disk\n"
	"         (its own), TOTAL (with its bases)\n"
	"inspect  one snapshot's manifest (JSON) and its sizes, its files checked\n"
	"delete   remove snapshots (not a base of diffs: delete those first)\n"
	"warm     make the warm snapshot `voidbox exec` starts from by default (an\n"
	"         exec that finds none makes it in the background); prints its id\n"
	"\n"
	"options (create):\n"
	"  --name NAME           a name to use instead of the id (A-Z a-z 0-9 . _ -)\n"
	"  --from BASE           start from the snapshot BASE (a name or an id);\n"
	"                        memory, vCPUs and image are BASE's\n"
	"  --spec FILE           the VM of FILE's top-level sandbox (memory_mb, vcpus,\n"
	"                        backend; env, network and mounts for SETUP-CMD), so\n"
	"                        that its stages can restore it (sandbox.snapshot);\n"
	"                        options override it\n"
	"  --image REF           the VM's root is the OCI image REF (as exec --image;\n"
	"                        a spec's sandbox.image with --spec); a restore must\n"
	"                        have the very same image and root disk\n"
	"  --pull missing|always|never  with --image: when to pull (default missing)\n"
	"  -m, --memory SIZE     guest memory (default 1024 MiB); a restore must ask\n"
	"                        for the same\n"
	"  --cpus N              vCPUs (default 1)\n"
	"  --timeout SECS        kill SETUP-CMD after SECS (the snapshot is not taken)\n"
	"  -v, --mount HOST:GUEST[:ro|rw]  share a host directory with SETUP-CMD (at\n"
	"                        most 4; default ro); unmounted before the save: the\n"
	"                        snapshot has no mount (a restore takes its own -v)\n"
	VB_CLI_NET_HELP
	"                        (network options: SETUP-CMD's network, taken down\n"
	"                        before the save: the snapshot has no network)\n"
	VB_CLI_ACCEL_HELP
	"  -o, --output FORMAT   list: text (default) or json\n"
	"  -h, --help            this help\n"
	"\n"
	"A snapshot keeps no mount and no network; a restore has at most 4 mounts\n"
	"(one fewer with an image), and may have a network and forwards.\n"
	"Warm snapshots are named warm-...  The store is kept under\n"
	"$VOIDBOX_SNAPSHOT_MAX_BYTES (default 10G; 0 = no bound) by deleting the\n"
	"least recently used snapshots after every save.\n"
	"exit codes: 0 done; 1 no such snapshot; 2 bad usage; 125 the VM or the\n"
	"save failed, or SETUP-CMD did not exit 0.\n";

/* A snapshot that is not there is exit 1, as an image rmi cannot find; not
 * 127, which means a program not found. */
static int fail(const vb_error *err)
{
	if (err->kind != VB_E_NOTFOUND)
		return vb_cli_fail(err);
	vb_cli_warn("%s", err->msg);
	return 1;
}

static void print_human_size(char *buf, size_t len, uint64_t b)
{
	if (b >= (1ull << 20))
		snprintf(buf, len, "%.1fM", (double)b / (1 << 20));
	else
		snprintf(buf, len, "%.0fK", (double)b / 1024);
}

/* The word after " key=" in a snapshot's configuration text, or NULL. */
static char *config_word(const char *text, const char *key)
{
	char pat[24];
	snprintf(pat, sizeof(pat), " %s=", key);
	const char *p = strstr(text, pat);
	return p ? strndup(p + strlen(pat), strcspn(p + strlen(pat), " ")) : NULL;
}

/* The snapshot (ref) a diff starts from: its id, and its memory, vCPUs
 * and image where the command line did not give them (a restore must
 * match them). */
static int base_of(const char *ref, struct vb_sandbox_config *cfg, char id[65], char **image,
		   vb_error *err)
{
	struct vb_snap b;
	_cleanup_free_ char *dir = NULL;
	if (vb_snap_open(ref, &b, &dir, err) < 0)
		return -1;
	unsigned mem = 0, cpus = 0;
	if (sscanf(b.src.config_text, "memory=%u vcpus=%u", &mem, &cpus) == 2) {
		if (!cfg->memory_mib)
			cfg->memory_mib = mem;
		if (!cfg->vcpus)
			cfg->vcpus = cpus;
	}
	_cleanup_free_ char *root = config_word(b.src.config_text, "root");
	if (root && !*image)
		*image = config_word(b.src.config_text, "image");
	snprintf(id, 65, "%s", b.id);
	return 0;
}

/* Bytes of (id)'s directory without its assembled RAM (a cache), in
 * (*own), and that cache in (*cache). */
static void own_bytes(const char *root, const char *id, uint64_t *own, uint64_t *cache)
{
	_cleanup_free_ char *dir = vb_strfmt("%s/%s", root, id);
	_cleanup_free_ char *full = vb_strfmt("%s/%s/ram.full", root, id);
	struct stat st;
	*own = dir ? vb_snap_disk_bytes(dir) : 0;
	*cache = full && lstat(full, &st) == 0 ? (uint64_t)st.st_blocks * 512u : 0;
	*own -= *cache < *own ? *cache : *own;
}

/* (s)'s own bytes plus its bases' (what a restore of it needs). */
static uint64_t total_bytes(const char *root, const struct vb_snap *s)
{
	uint64_t own, cache, total = 0;
	struct vb_snap cur = *s;
	for (int depth = 0; depth <= VB_SNAP_CHAIN_MAX; depth++) {
		own_bytes(root, cur.id, &own, &cache);
		total += own;
		_cleanup_free_ char *dir = NULL;
		vb_error ign;
		char ref[VB_SNAP_HEX];
		memcpy(ref, cur.base, sizeof(ref));
		if (!ref[0] || vb_snap_open(ref, &cur, &dir, &ign) < 0)
			break;
	}
	return total;
}

/* --spec FILE: the VM of the spec's top-level sandbox, as its stages would
 * restore it (their memory and vCPUs must match the snapshot's), (cfg)'s
 * options over it; (vc) keeps the setup's environment.  Refused when a
 * restore could not give that VM all it asks. */
static int spec_vm(const char *file, struct vb_sandbox_config *cfg, int accel_set,
		   struct vb_run_vmconf *vc, char **image, vb_error *err)
{
	struct vb_spec *spec = vb_spec_load(file, err);
	if (!spec)
		return -1;
	int rc = vb_run_vm_config(&spec->vm, accel_set ? &cfg->accel : NULL, vc, err);
	if (rc == 0 && spec->vm.image && !*image && !(*image = strdup(spec->vm.image)))
		rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
	vb_spec_free(spec);
	if (rc < 0 || vb_run_vmconf_restorable(vc, "--spec", 0, err) < 0)
		return -1;
	if (!cfg->memory_mib)
		cfg->memory_mib = vc->cfg.memory_mib;
	if (!cfg->vcpus)
		cfg->vcpus = vc->cfg.vcpus;
	cfg->backend = vc->cfg.backend;
	cfg->accel = vc->cfg.accel; /* the option's, when given (above) */
	/* the setup's network and mounts, as a create's options give them */
	cfg->network = vc->cfg.network;
	cfg->mounts = vc->cfg.mounts;
	cfg->n_mounts = vc->cfg.n_mounts;
	return 0;
}

/* A snapshot's VM has 4 9p devices (docs/snapshots.md, "Mounts"). */
#define CREATE_MOUNTS 4u

/* -v and the network options of create (SETUP-CMD's, undone before the
 * save: docs/snapshots.md), over the spec's when --spec gave (vc). */
static int setup_io(struct vb_sandbox_config *cfg, struct vb_cli_net *net, const struct vb_mount *m,
		    size_t n, struct vb_run_vmconf *vc, int spec, vb_error *err)
{
	if (net->network)
		vb_cli_net_apply(net, cfg);
	else if (cfg->network.enabled)
		vb_cli_net_events(net, &cfg->network); /* the spec's: refusals said */
	if (!spec) {
		cfg->mounts = m;
		cfg->n_mounts = n;
	}
	for (size_t i = 0; spec && i < n; i++) {
		if (vb_run_vmconf_add_host_mount(vc, m[i].host, m[i].guest, m[i].rw, err) < 0)
			return -1;
		cfg->mounts = vc->cfg.mounts;
		cfg->n_mounts = vc->cfg.n_mounts;
	}
	if (cfg->n_mounts > CREATE_MOUNTS)
		return vb_error_set(err, VB_E_USAGE,
				    "snapshot create: at most %u mounts (-v and the spec's)",
				    CREATE_MOUNTS);
	return 0;
}

static int create(int argc, char **argv)
{
	enum { OPT_CPUS = 256, OPT_TIMEOUT, OPT_ACCEL, OPT_NAME, OPT_FROM, OPT_SPEC, OPT_IMAGE,
	       OPT_PULL };
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, OPT_NAME },
		{ "image", required_argument, NULL, OPT_IMAGE },
		{ "pull", required_argument, NULL, OPT_PULL },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "spec", required_argument, NULL, OPT_SPEC },
		{ "memory", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "accel", required_argument, NULL, OPT_ACCEL },
		{ "mount", required_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		VB_CLI_NET_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	vb_error err = { 0 };
	struct vb_sandbox_config cfg = { 0 };
	static struct vb_cli_arena arena; /* the -v paths: live until exit */
	static struct vb_cli_net net;     /* its events print through it */
	struct vb_mount mounts[CREATE_MOUNTS];
	size_t n_mounts = 0;
	const char *name = NULL, *from = NULL, *spec = NULL;
	unsigned timeout_ms = 0;
	unsigned long v;
	int c, accel_set = 0, pull = -1;
	_cleanup_free_ char *image = NULL;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:hm:v:", longopts, NULL)) != -1) {
		switch (c) {
		case 'v':
			if (n_mounts >= CREATE_MOUNTS) {
				vb_error_set(&err, VB_E_USAGE, "snapshot create: at most %u mounts (-v)",
					     CREATE_MOUNTS);
				return vb_cli_fail(&err);
			}
			if (vb_cli_add_mount(&arena, mounts, &n_mounts, CREATE_MOUNTS, optarg, &err) < 0)
				return vb_cli_fail(&err);
			break;
		case VB_CLI_OPT_NETWORK:
		case VB_CLI_OPT_ALLOW_HOST_PORT:
		case VB_CLI_OPT_PUBLISH:
		case VB_CLI_OPT_NET_LEARN:
		case VB_CLI_OPT_ALLOW_DOMAIN:
			if (vb_cli_net_option(&net, c, optarg, &err) < 0)
				return vb_cli_fail(&err);
			break;
		case OPT_NAME:
			name = optarg;
			break;
		case OPT_IMAGE:
			free(image);
			image = NULL;
			if (!optarg[0] || !(image = strdup(optarg))) {
				vb_error_set(&err, VB_E_USAGE, "--image: expected a reference");
				return vb_cli_fail(&err);
			}
			break;
		case OPT_PULL:
			if (vb_run_image_pull_parse(optarg, &pull) < 0) {
				vb_error_set(&err, VB_E_USAGE, "--pull: expected missing, always or never");
				return vb_cli_fail(&err);
			}
			break;
		case OPT_FROM:
			from = optarg;
			break;
		case OPT_SPEC:
			spec = optarg;
			break;
		case 'm':
			if (vb_cli_parse_memory("snapshot", optarg, &cfg.memory_mib, &err) < 0)
				return vb_cli_fail(&err);
			break;
		case OPT_CPUS:
			if (vb_cli_parse_uint(optarg, 64, &v) < 0 || v == 0) {
				vb_error_set(&err, VB_E_USAGE, "--cpus: expected 1..64");
				return vb_cli_fail(&err);
			}
			cfg.vcpus = (unsigned)v;
			break;
		case OPT_TIMEOUT:
			if (vb_cli_parse_uint(optarg, 86400, &v) < 0 || v == 0) {
				vb_error_set(&err, VB_E_USAGE, "--timeout: expected 1..86400 seconds");
				return vb_cli_fail(&err);
			}
			timeout_ms = (unsigned)v * 1000u;
			break;
		case OPT_ACCEL:
			if (vb_cli_parse_accel(optarg, &cfg.accel, &err) < 0)
				return vb_cli_fail(&err);
			accel_set = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			vb_cli_getopt_fail("snapshot", c, argv, longopts, &err);
			return vb_cli_fail(&err);
		}
	}
	char **setup = optind < argc ? argv + optind : NULL;
	if (from && spec) {
		vb_error_set(&err, VB_E_USAGE, "--from or --spec: a diff's VM is its base's");
		return vb_cli_fail(&err);
	}
	if (pull >= 0 && !image && !spec) {
		vb_error_set(&err, VB_E_USAGE, "--pull needs --image");
		return vb_cli_fail(&err);
	}
	char base_id[65] = "";
	if (from && base_of(from, &cfg, base_id, &image, &err) < 0)
		return fail(&err);
	struct vb_run_vmconf vc = { 0 };
	struct vb_run_image im = { 0 };
	if ((spec && spec_vm(spec, &cfg, accel_set, &vc, &image, &err) < 0) ||
	    setup_io(&cfg, &net, mounts, n_mounts, &vc, spec != NULL, &err) < 0) {
		vb_run_vmconf_free(&vc);
		return vb_cli_fail(&err);
	}
	/* as exec --image: pulled when missing, progress on stderr */
	if (image && vb_run_image_prepare(image, pull < 0 ? VB_OCI_PULL_MISSING : pull, stderr, &im,
					  &cfg, &err) < 0) {
		vb_error_prefix(&err, "--image");
		vb_run_image_free(&im);
		vb_run_vmconf_free(&vc);
		return vb_cli_fail(&err);
	}
	_cleanup_free_ char *staging = vb_snap_staging(&err);
	if (!staging) {
		vb_run_vmconf_free(&vc);
		vb_run_image_free(&im);
		return vb_cli_fail(&err);
	}
	cfg.save_dir = staging;
	cfg.name = "snapshot";
	int code = 0;
	char id[65] = "";
	vb_sandbox *sb = from ? vb_sandbox_restore(&cfg, base_id, &err) : vb_sandbox_start(&cfg, &err);
	if (!sb) {
		code = vb_cli_fail(&err);
		goto out;
	}
	vb_cli_accel_notice(vb_sandbox_accel_info(sb), stderr);
	vb_cli_net_published(&cfg.network, sb);
	if (setup) {
		struct vb_exec_params p = { .argv = (const char *const *)setup, .as_root = 1,
					    .timeout_ms = timeout_ms, .env = spec ? vc.env : NULL };
		struct vb_exec_result res = { 0 };
		if (vb_exec_run(sb, &p, NULL, 0, 1u << 20, &res, &err) < 0) {
			vb_error_prefix(&err, "setup");
			code = vb_cli_fail(&err);
			goto out;
		}
		vb_cli_write_out(1, res.out, res.out_len);
		vb_cli_write_out(2, res.errout, res.err_len);
		int rc = res.exit_code, to = res.timed_out;
		vb_exec_result_free(&res);
		if (rc != 0) {
			vb_error_set(&err, VB_E_RUNTIME, "setup %s (exit %d): no snapshot taken",
				     to ? "timed out" : "failed", rc);
			code = vb_cli_fail(&err);
			goto out;
		}
	}
	vb_cli_net_learned(&cfg.network, sb); /* before the save takes it down */
	if (vb_sandbox_save(sb, name, id, &err) < 0) {
		vb_error_prefix(&err, "cannot take the snapshot");
		code = vb_cli_fail(&err);
		goto out;
	}
	printf("%s\n", id);
out:
	vb_sandbox_free(sb);
	vb_rm_rf(staging); /* gone already once stored */
	vb_run_vmconf_free(&vc);
	vb_run_image_free(&im);
	return code;
}

static int list(int json)
{
	vb_error err = { 0 };
	struct vb_snap *all = NULL;
	size_t n = 0;
	_cleanup_free_ char *root = vb_snap_root(&err);
	if (!root || vb_snap_list(&all, &n, &err) < 0)
		return vb_cli_fail(&err);
	json_t *arr = json ? json_array() : NULL;
	if (!json)
		printf("%-14s %-24s %-20s %-14s %9s %9s\n", "ID", "NAME", "CREATED", "BASE", "SIZE",
		       "TOTAL");
	for (size_t i = 0; i < n; i++) {
		const struct vb_snap *s = &all[i];
		uint64_t own, cache, total = total_bytes(root, s);
		own_bytes(root, s->id, &own, &cache);
		_cleanup_free_ char *dir = vb_strfmt("%s/%s", root, s->id);
		if (json) {
			json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "id", s->id,
					      "name", s->name, "created", (json_int_t)s->created,
					      "last_used",
					      (json_int_t)(dir ? vb_snap_last_used(s, dir) : s->created),
					      "ram_bytes", (json_int_t)s->files[1].data, "state_bytes",
					      (json_int_t)s->files[0].size, "own_bytes", (json_int_t)own,
					      "cache_bytes", (json_int_t)cache, "total_bytes",
					      (json_int_t)total);
			json_object_set_new(o, "base", s->base[0] ? json_string(s->base) : json_null());
			json_array_append_new(arr, o);
			continue;
		}
		char when[32], size[16], tot[16];
		time_t t = (time_t)s->created;
		struct tm tm;
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
		print_human_size(size, sizeof(size), own);
		print_human_size(tot, sizeof(tot), total);
		/* names are checked to be [A-Za-z0-9._-] when parsed */
		printf("%-14.12s %-24s %-20s %-14.12s %9s %9s\n", s->id, s->name[0] ? s->name : "-",
		       when, s->base[0] ? s->base : "-", size, tot);
	}
	if (json) {
		char *text = json_dumps(arr, JSON_INDENT(2));
		printf("%s\n", text ? text : "[]");
		free(text);
		json_decref(arr);
	}
	free(all);
	return 0;
}

/* "image": what the VM's root was (docs/snapshots.md, "Image roots and
 * disks"): the image's reference and the root disk's identity; null for
 * the initramfs. */
static json_t *image_of(const char *config_text)
{
	_cleanup_free_ char *root = config_word(config_text, "root");
	_cleanup_free_ char *ref = root ? config_word(config_text, "image") : NULL;
	_cleanup_free_ char *disks = config_word(config_text, "disks");
	if (!root)
		return json_null();
	json_t *o = json_pack("{s:s,s:s}", "reference", ref ? ref : "", "root_disk", root);
	if (o && disks)
		json_object_set_new(o, "disks", json_string(disks));
	return o ? o : json_null();
}

static int inspect(const char *ref)
{
	vb_error err = { 0 };
	struct vb_snap s;
	_cleanup_free_ char *dir = NULL;
	if (vb_snap_open(ref, &s, &dir, &err) < 0 || vb_snap_verify(&s, dir, VB_SNAP_VERIFY_FULL, &err) < 0)
		return fail(&err);
	/* a diff's base is checked too: what a restore of it would need */
	_cleanup_free_ char *ram = vb_snap_ram(&s, dir, &err);
	if (!ram)
		return fail(&err);
	_cleanup_free_ char *root = vb_snap_root(&err);
	_cleanup_free_ char *manifest = vb_snap_format(&s);
	json_t *j = manifest ? json_loads(manifest, 0, NULL) : NULL;
	uint64_t own = 0, cache = 0;
	if (root)
		own_bytes(root, s.id, &own, &cache);
	if (j)
		json_object_set_new(j, "disk",
				    json_pack("{s:I,s:I,s:I,s:I}", "own_bytes", (json_int_t)own,
					      "cache_bytes", (json_int_t)cache, "total_bytes",
					      (json_int_t)(root ? total_bytes(root, &s) : own),
					      "last_used", (json_int_t)vb_snap_last_used(&s, dir)));
	if (j)
		json_object_set_new(j, "image", image_of(s.src.config_text));
	_cleanup_free_ char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	json_decref(j);
	if (!text) {
		vb_error_set(&err, VB_E_RUNTIME, "out of memory");
		return vb_cli_fail(&err);
	}
	/* the config text names the VMM binary's path: made terminal-safe */
	vb_term_printf(stdout, VB_TERM_LINES, "%s\n", text);
	return 0;
}

static int delete(int argc, char **argv)
{
	int code = 0;
	for (int i = 1; i < argc; i++) {
		vb_error err = { 0 };
		struct vb_snap s;
		_cleanup_free_ char *dir = NULL;
		if (vb_snap_open(argv[i], &s, &dir, &err) < 0) {
			/* a damaged snapshot is still deleted by its full id */
			if (strlen(argv[i]) != 64 || err.kind == VB_E_NOTFOUND) {
				code = fail(&err);
				continue;
			}
			snprintf(s.id, sizeof(s.id), "%.64s", argv[i]);
		}
		if (vb_snap_delete(&s, &err) < 0)
			code = vb_cli_fail(&err);
		else
			printf("deleted %.12s\n", s.id);
	}
	return code;
}

int vb_cmd_snapshot(int argc, char **argv)
{
	vb_error err = { 0 };
	if (argc < 2) {
		fputs(usage_text, stderr);
		return 2;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
		fputs(usage_text, stdout);
		return 0;
	}
	static const char *const subs[] = { "create", "list", "inspect", "delete", "warm" };
	if (!strcmp(sub, "create"))
		return create(argc - 1, argv + 1);
	if (!strcmp(sub, "warm"))
		return vb_cli_snapshot_warm(argc - 1, argv + 1);
	if (!strcmp(sub, "list")) {
		int json = 0;
		for (int i = 2; i < argc; i++) {
			const char *fmt = NULL;
			if ((!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) && i + 1 < argc)
				fmt = argv[++i];
			else if (!strncmp(argv[i], "--output=", 9))
				fmt = argv[i] + 9;
			if (!fmt || (strcmp(fmt, "json") && strcmp(fmt, "text"))) {
				vb_error_set(&err, VB_E_USAGE, "snapshot list: expected -o text|json");
				return vb_cli_fail(&err);
			}
			json = !strcmp(fmt, "json");
		}
		return list(json);
	}
	if (!strcmp(sub, "inspect") || !strcmp(sub, "delete")) {
		if (argc < 3 || (!strcmp(sub, "inspect") && argc != 3)) {
			vb_error_set(&err, VB_E_USAGE, "snapshot %s: expected %s", sub,
				     strcmp(sub, "inspect") ? "ID|NAME..." : "one ID|NAME");
			return vb_cli_fail(&err);
		}
		return !strcmp(sub, "inspect") ? inspect(argv[2]) : delete(argc - 1, argv + 1);
	}
	if (sub[0] == '-')
		vb_cli_unknown_option("snapshot", sub, NULL, &err);
	else
		vb_cli_unknown_command("snapshot", sub, subs, 5, &err);
	return vb_cli_fail(&err);
}
