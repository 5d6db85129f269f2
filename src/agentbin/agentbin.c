/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which agent binaries exist, where they live in the cache, and how one is
 * pulled: pinned version -> registry metadata -> tarball checked against
 * the integrity -> extracted tree, each step skipped when its result is
 * already cached.
 */
#include "agentbin/agentbin.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentbin/fetch.h"
#include "util/util.h"

struct kind {
	const char *name;     /* the spec's llm.agent value */
	const char *program;  /* in the guest's PATH */
	const char *package;  /* npm package */
	const char *version;  /* pinned: exact */
	const char *integrity; /* pinned: the registry's dist.integrity for it */
	const char *env;      /* overrides the version (integrity then from the registry) */
	const char *suffix;   /* appended to an overriding version ("-linux-x64") */
	const char *binary;   /* the program inside package/ */
};

/* Pinned to the versions tested here (docs/agents.md says how to move).
 * codex's platform builds are versions of @openai/codex itself, tagged
 * with the platform; its Linux build is a static musl binary. */
static const struct kind kinds[VB_AGENTBIN_N] = {
	[VB_AGENTBIN_CLAUDE_CODE] = {
		.name = "claude-code",
		.program = "claude",
		.package = "@anthropic-ai/claude-code-linux-x64-musl",
		.version = "2.1.332",
		.integrity = "sha512-QoQzwipnqRAdBKDAJNJ2Qvl37G6x8nCugfOQa+nuMcGIRgGEOLeWoq3pTLMQRScL37estAQBGH9ygR3WFVbIfw==",
		.env = "VOIDBOX_CLAUDE_CODE_VERSION",
		.suffix = "",
		.binary = "claude",
	},
	[VB_AGENTBIN_CODEX] = {
		.name = "codex",
		.program = "codex",
		.package = "@openai/codex",
		.version = "0.171.0-linux-x64",
		.integrity = "sha512-l66NZkQgdk2C3pbcfULDz42yEUB581MVA6I+Y43Wp4OIqEy73HCdmZ0GTjeAHY2ycuH4N00d9VsLrwT1jxshTw==",
		.env = "VOIDBOX_CODEX_VERSION",
		.suffix = "-linux-x64",
		.binary = "vendor/x86_64-unknown-linux-musl/bin/codex",
	},
};

int vb_agentbin_parse(const char *name, enum vb_agentbin_kind *out)
{
	for (int i = 0; i < VB_AGENTBIN_N; i++)
		if (name && !strcmp(name, kinds[i].name)) {
			*out = (enum vb_agentbin_kind)i;
			return 0;
		}
	return -1;
}

const char *vb_agentbin_name(enum vb_agentbin_kind k)
{
	return kinds[k].name;
}

const char *vb_agentbin_program(enum vb_agentbin_kind k)
{
	return kinds[k].program;
}

static int oom(vb_error *err)
{
	return vb_error_set(err, VB_E_RUNTIME, "out of memory");
}

static char *agents_dir(vb_error *err)
{
	_cleanup_free_ char *cache = vb_cache_dir(err);
	char *d = cache ? vb_strfmt("%s/agents", cache) : NULL;
	if (cache && !d)
		oom(err);
	return d;
}

static void to_hex(const unsigned char *d, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * n] = '\0';
}

/* A safe file name for NAME@VERSION: '/' becomes '+'. */
static char *ref_path(const char *dir, const char *package, const char *version)
{
	char *p = vb_strfmt("%s/refs/%s@%s", dir, package, version);
	if (p)
		for (char *c = p + strlen(dir) + 6; *c; c++)
			if (*c == '/')
				*c = '+';
	return p;
}

/* A version from the environment: an npm version has no '/' and no spaces. */
static int sane_version(const char *v)
{
	if (!v[0] || strlen(v) > 100 || v[0] == '.' || v[0] == '-')
		return 0;
	for (const char *c = v; *c; c++)
		if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') ||
		      (*c >= 'A' && *c <= 'Z') || *c == '.' || *c == '-' || *c == '+'))
			return 0;
	return 1;
}

int vb_agentbin_info(enum vb_agentbin_kind k, struct vb_agentbin_info *out, vb_error *err)
{
	memset(out, 0, sizeof(*out));
	const struct kind *K = &kinds[k];
	out->kind_name = K->name;
	const char *over = getenv(K->env);
	if (over && over[0]) {
		if (!sane_version(over))
			return vb_error_set(err, VB_E_USAGE, "%s: '%.100s' is not an npm version",
					    K->env, over);
		out->version = vb_strfmt("%s%s", over, K->suffix);
		out->pinned = !strcmp(out->version ? out->version : "", K->version);
	} else {
		out->version = strdup(K->version);
		out->pinned = 1;
	}
	_cleanup_free_ char *dir = agents_dir(err);
	if (!dir)
		return -1;
	if (!(out->package = strdup(K->package)) || !out->version)
		return oom(err);
	if (out->pinned) {
		out->integrity = strdup(K->integrity);
	} else {
		_cleanup_free_ char *ref = ref_path(dir, K->package, out->version);
		vb_error ignore = { 0 };
		out->integrity = ref ? vb_read_file(ref, 256, NULL, &ignore) : NULL;
	}
	unsigned char d[64];
	if (out->integrity && vb_agentbin_parse_integrity(out->integrity, d) == 0) {
		char hex[129];
		to_hex(d, 64, hex);
		char *tree = vb_strfmt("%s/trees/sha512-%.64s", dir, hex);
		char *tar = vb_strfmt("%s/tarballs/sha512-%s.tgz", dir, hex);
		if (!tree || !tar) {
			free(tree);
			free(tar);
			return oom(err);
		}
		if (access(tree, F_OK) == 0)
			out->tree = tree;
		else
			free(tree);
		if (access(tar, F_OK) == 0)
			out->tarball = tar;
		else
			free(tar);
	} else if (out->integrity) {
		free(out->integrity); /* a damaged ref: pulled again */
		out->integrity = NULL;
	}
	return 0;
}

void vb_agentbin_info_free(struct vb_agentbin_info *i)
{
	if (!i)
		return;
	free(i->package);
	free(i->version);
	free(i->integrity);
	free(i->tree);
	free(i->tarball);
	memset(i, 0, sizeof(*i));
}

/* ---- pull ---------------------------------------------------------------- */

/* Check the cached tarball (path) against (want); 1 good, 0 corrupt (said
 * on (progress) and removed), -1 error. */
static int cached_tarball_ok(const char *path, const unsigned char want[64], const char *what,
			     FILE *progress, vb_error *err)
{
	unsigned char got[64];
	if (vb_agentbin_sha512_file(path, got, err) < 0)
		return -1;
	if (!memcmp(got, want, 64))
		return 1;
	if (progress)
		fprintf(progress,
			"voidbox: the cached tarball of %s is corrupt (its sha512 is not the "
			"registry's integrity): removing it and fetching it again\n",
			what);
	if (unlink(path) < 0)
		return vb_error_errno(err, errno, "cannot remove the corrupt %s", path);
	return 0;
}

/* bin/PROGRAM in the unpacked (tmp): a hard link to the binary, since
 * QEMU's 9p server does not follow a host symlink (ELOOP in the guest). */
static int finish_tree(const struct kind *K, const char *tmp, vb_error *err)
{
	_cleanup_free_ char *bin = vb_strfmt("%s/%s", tmp, K->binary);
	_cleanup_free_ char *bindir = vb_strfmt("%s/bin", tmp);
	_cleanup_free_ char *lnk = vb_strfmt("%s/bin/%s", tmp, K->program);
	if (!bin || !bindir || !lnk)
		return oom(err);
	struct stat st;
	if (lstat(bin, &st) < 0 || !S_ISREG(st.st_mode))
		return vb_error_set(err, VB_E_RUNTIME, "the %s package has no %s", K->package,
				    K->binary);
	if (chmod(bin, 0755) < 0 || (mkdir(bindir, 0755) < 0 && errno != EEXIST) ||
	    (access(lnk, F_OK) != 0 && link(bin, lnk) < 0))
		return vb_error_errno(err, errno, "preparing %s", tmp);
	return 0;
}

/* Unpack (tar) into (tree) through a temporary directory, so the tree
 * either is complete or is not there. */
static int make_tree(const struct kind *K, const char *tar, const char *tree, vb_error *err)
{
	_cleanup_free_ char *tmp = vb_strfmt("%s.tmp-%d", tree, (int)getpid());
	if (!tmp)
		return oom(err);
	vb_rm_rf(tmp);
	if (vb_agentbin_extract(tar, tmp, err) < 0 || finish_tree(K, tmp, err) < 0) {
		vb_rm_rf(tmp);
		return -1;
	}
	if (rename(tmp, tree) < 0) {
		int e = errno;
		vb_rm_rf(tmp);
		return vb_error_errno(err, e, "cannot move %s into place", tmp);
	}
	return 0;
}

/* Holds agents/lock: one pull at a time per cache (parallel stages). */
static int lock_cache(const char *dir, vb_error *err)
{
	_cleanup_free_ char *path = vb_strfmt("%s/lock", dir);
	if (!path)
		return oom(err);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return vb_error_errno(err, errno, "cannot open %s", path);
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			return vb_error_errno(err, e, "cannot lock %s", path);
		}
	return fd;
}

static int write_ref(const char *dir, const struct vb_agentbin_info *in, vb_error *err)
{
	_cleanup_free_ char *ref = ref_path(dir, in->package, in->version);
	_cleanup_free_ char *tmp = ref ? vb_strfmt("%s.tmp", ref) : NULL;
	if (!tmp)
		return oom(err);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || vb_write_full(fd, in->integrity, strlen(in->integrity)) < 0 || close(fd) < 0 ||
	    rename(tmp, ref) < 0)
		return vb_error_errno(err, errno, "cannot write %s", ref);
	return 0;
}

/* Under the lock, a partial download or unpacking in (sub) is a leftover
 * of a pull that was killed: remove it. */
static void sweep(const char *dir, const char *sub, const char *marker)
{
	_cleanup_free_ char *path = vb_strfmt("%s/%s", dir, sub);
	DIR *d = path ? opendir(path) : NULL;
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strstr(e->d_name, marker)) {
			_cleanup_free_ char *f = vb_strfmt("%s/%s", path, e->d_name);
			if (f)
				vb_rm_rf(f);
		}
	closedir(d);
}

/* The locked part of a pull: (in) is re-read under the lock. */
static int pull_locked(enum vb_agentbin_kind k, const char *dir, unsigned flags, FILE *progress,
		       struct vb_agentbin_info *in, vb_error *err)
{
	const struct kind *K = &kinds[k];
	_cleanup_free_ char *what = vb_strfmt("%s %s", K->name, in->version);
	if (!what)
		return oom(err);
	if (in->tree && !(flags & VB_AGENTBIN_VERIFY))
		return 0;
	/* Without a pinned integrity, the registry is asked even when the
	 * version was pulled before, so that a pull shows what it serves. */
	_cleanup_free_ char *registry = vb_agentbin_registry();
	_cleanup_free_ char *url = NULL;
	if (!registry)
		return vb_error_set(err, VB_E_RUNTIME,
				    "%s: no npm registry is configured: set VOIDBOX_NPM_REGISTRY, or "
				    "install npm (its configured registry is used)",
				    K->name);
	if (!in->tree || !in->integrity) {
		_cleanup_free_ char *integ = NULL;
		if (vb_agentbin_metadata(registry, K->package, in->version, &integ, &url, err) < 0) {
			vb_error_prefix(err, "%s %s@%s (check the version, the network, or "
					     "VOIDBOX_NPM_REGISTRY)",
					K->name, K->package, in->version);
			return -1;
		}
		if (in->integrity && strcmp(in->integrity, integ) != 0)
			return vb_error_set(err, VB_E_RUNTIME,
					    "%s@%s: the registry %s publishes integrity %.100s, not the "
					    "%s one (%.100s): refusing it",
					    K->package, in->version, registry, integ,
					    in->pinned ? "pinned" : "recorded", in->integrity);
		if (!in->integrity)
			in->integrity = integ, integ = NULL;
	}
	unsigned char want[64];
	if (vb_agentbin_parse_integrity(in->integrity, want) < 0)
		return vb_error_set(err, VB_E_RUNTIME, "%s: malformed integrity '%.100s'", what,
				    in->integrity);
	char hex[129];
	to_hex(want, 64, hex);
	_cleanup_free_ char *tardir = vb_strfmt("%s/tarballs", dir);
	_cleanup_free_ char *treedir = vb_strfmt("%s/trees", dir);
	_cleanup_free_ char *refdir = vb_strfmt("%s/refs", dir);
	_cleanup_free_ char *tar = vb_strfmt("%s/tarballs/sha512-%s.tgz", dir, hex);
	_cleanup_free_ char *tree = vb_strfmt("%s/trees/sha512-%.64s", dir, hex);
	if (!tardir || !treedir || !refdir || !tar || !tree)
		return oom(err);
	if (vb_mkdir_p(tardir, 0755, err) < 0 || vb_mkdir_p(treedir, 0755, err) < 0 ||
	    vb_mkdir_p(refdir, 0755, err) < 0)
		return -1;
	sweep(dir, "tarballs", ".part-");
	sweep(dir, "trees", ".tmp-");
	int have = 0;
	if (access(tar, F_OK) == 0 && (have = cached_tarball_ok(tar, want, what, progress, err)) < 0)
		return -1;
	if (have && access(tree, F_OK) == 0)
		return in->pinned ? 0 : write_ref(dir, in, err);
	if (!have) {
		if (!url) {
			_cleanup_free_ char *integ = NULL;
			if (vb_agentbin_metadata(registry, K->package, in->version, &integ, &url,
						 err) < 0)
				return -1;
			if (strcmp(integ, in->integrity) != 0)
				return vb_error_set(err, VB_E_RUNTIME,
						    "%s@%s: the registry now publishes integrity "
						    "%.100s, not %.100s: refusing it",
						    K->package, in->version, integ, in->integrity);
		}
		_cleanup_free_ char *part = vb_strfmt("%s.part-%d", tar, (int)getpid());
		if (!part)
			return oom(err);
		if (progress)
			fprintf(progress, "voidbox: fetching %s (%s@%s)\n", what, K->package,
				in->version);
		unsigned char got[64];
		if (vb_agentbin_download(url, part, got, progress, what, err) < 0) {
			unlink(part);
			vb_error_prefix(err, "fetching %s", what);
			return -1;
		}
		if (memcmp(got, want, 64) != 0) {
			unlink(part);
			return vb_error_set(err, VB_E_RUNTIME,
					    "%s: the downloaded tarball does not match its published "
					    "integrity (sha512): refusing it (a proxy or mirror "
					    "altered it, or the download was damaged; try again)",
					    what);
		}
		if (rename(part, tar) < 0) {
			int e = errno;
			unlink(part);
			return vb_error_errno(err, e, "cannot move %s into place", part);
		}
	}
	/* a tree made from a tarball that was corrupt may be wrong too */
	if (access(tree, F_OK) == 0 && vb_rm_rf(tree) < 0)
		return vb_error_errno(err, errno, "cannot remove %s", tree);
	if (progress)
		fprintf(progress, "voidbox: unpacking %s\n", what);
	if (make_tree(K, tar, tree, err) < 0) {
		vb_error_prefix(err, "%s", what);
		return -1;
	}
	free(in->tree);
	in->tree = strdup(tree);
	return !in->tree ? oom(err) : in->pinned ? 0 : write_ref(dir, in, err);
}

int vb_agentbin_pull(enum vb_agentbin_kind k, unsigned flags, FILE *progress, char **tree,
		     vb_error *err)
{
	if (tree)
		*tree = NULL;
	struct vb_agentbin_info in;
	if (vb_agentbin_info(k, &in, err) < 0) {
		vb_agentbin_info_free(&in);
		return -1;
	}
	int rc = 0;
	if (!in.tree || (flags & VB_AGENTBIN_VERIFY)) {
		_cleanup_free_ char *dir = agents_dir(err);
		int lock = dir && vb_mkdir_p(dir, 0755, err) == 0 ? lock_cache(dir, err) : -1;
		if (lock < 0) {
			rc = -1;
		} else {
			/* another process may have pulled it while we waited */
			vb_agentbin_info_free(&in);
			rc = vb_agentbin_info(k, &in, err);
			if (rc == 0)
				rc = pull_locked(k, dir, flags, progress, &in, err);
			close(lock);
		}
	}
	if (rc == 0 && tree) {
		*tree = in.tree;
		in.tree = NULL;
	}
	vb_agentbin_info_free(&in);
	return rc;
}

/* ---- what the guest needs beside the binary ------------------------------ */

struct support_file {
	const char *env, *path, *package, *name;
};

static const struct support_file support_files[] = {
	{ "VOIDBOX_MUSL_LOADER", "/lib/x86_64-linux-musl/libc.so", "musl", "ld-musl-x86_64.so.1" },
	{ "VOIDBOX_BASH_STATIC", "/bin/bash-static", "bash-static", "bash" },
};
#define N_SUPPORT (sizeof(support_files) / sizeof(support_files[0]))

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 0x100000001b3ull;
	return h;
}

static int write_file(const char *path, const char *data, size_t len, vb_error *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (fd < 0 || vb_write_full(fd, data, len) < 0 || close(fd) < 0)
		return vb_error_errno(err, errno, "cannot write %s", path);
	return 0;
}

static const char *support_source(const struct support_file *f)
{
	const char *p = getenv(f->env);
	return p && p[0] ? p : f->path;
}

const char *vb_agentbin_support_missing(void)
{
	for (size_t i = 0; i < N_SUPPORT; i++)
		if (access(support_source(&support_files[i]), R_OK) != 0)
			return support_files[i].package;
	return NULL;
}

/* Write the support files (data) into the new directory (tmp). */
static int write_support(const char *tmp, char *const *data, const size_t *len, vb_error *err)
{
	if (vb_mkdir_p(tmp, 0755, err) < 0)
		return -1;
	for (size_t i = 0; i < N_SUPPORT; i++) {
		_cleanup_free_ char *f = vb_strfmt("%s/%s", tmp, support_files[i].name);
		if (!f)
			return oom(err);
		if (write_file(f, data[i], len[i], err) < 0)
			return -1;
	}
	return 0;
}

/* The cache directory for these support files, made if missing. */
static char *support_dir(char *const *data, const size_t *len, uint64_t h, vb_error *err)
{
	_cleanup_free_ char *dir = agents_dir(err);
	if (!dir)
		return NULL;
	char *path = vb_strfmt("%s/support-%016llx", dir, (unsigned long long)h);
	_cleanup_free_ char *tmp = path ? vb_strfmt("%s.tmp-%d", path, (int)getpid()) : NULL;
	if (!tmp) {
		free(path);
		oom(err);
		return NULL;
	}
	if (access(path, F_OK) == 0)
		return path;
	vb_rm_rf(tmp);
	int rc = write_support(tmp, data, len, err);
	/* a parallel first use may have won: theirs is the same */
	if (rc == 0 && rename(tmp, path) < 0 && access(path, F_OK) != 0)
		rc = vb_error_errno(err, errno, "cannot move %s into place", tmp);
	vb_rm_rf(tmp);
	if (rc < 0) {
		free(path);
		return NULL;
	}
	return path;
}

char *vb_agentbin_support(vb_error *err)
{
	char *data[N_SUPPORT] = { 0 };
	size_t len[N_SUPPORT];
	char *ret = NULL;
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i = 0;
	for (; i < N_SUPPORT; i++) {
		const struct support_file *f = &support_files[i];
		if (!(data[i] = vb_read_file(support_source(f), 64u << 20, &len[i], err))) {
			vb_error_prefix(err, "agent VMs need %s (install Debian's %s, or set %s)",
					f->name, f->package, f->env);
			break;
		}
		h = fnv1a(h, data[i], len[i]);
	}
	if (i == N_SUPPORT)
		ret = support_dir(data, len, h, err);
	for (i = 0; i < N_SUPPORT; i++)
		free(data[i]);
	return ret;
}

/* ---- attach -------------------------------------------------------------- */

int vb_agentbin_attach(enum vb_agentbin_kind k, FILE *progress, struct vb_agentbin_attach *out,
		       vb_error *err)
{
	memset(out, 0, sizeof(*out));
	if (vb_agentbin_pull(k, 0, progress, &out->tree_host, err) < 0)
		return -1;
	if (!(out->support_host = vb_agentbin_support(err)))
		return -1;
	out->tree_guest = vb_strfmt("%s/%s", VB_AGENTBIN_GUEST_ROOT, kinds[k].name);
	out->bin_guest = vb_strfmt("%s/%s/bin", VB_AGENTBIN_GUEST_ROOT, kinds[k].name);
	out->path_env = out->bin_guest
				? vb_strfmt("PATH=%s:" VB_AGENTBIN_GUEST_PATH, out->bin_guest)
				: NULL;
	if (!out->tree_guest || !out->path_env)
		return oom(err);
	return 0;
}

void vb_agentbin_attach_free(struct vb_agentbin_attach *a)
{
	if (!a)
		return;
	free(a->tree_host);
	free(a->tree_guest);
	free(a->support_host);
	free(a->bin_guest);
	free(a->path_env);
	memset(a, 0, sizeof(*a));
}
