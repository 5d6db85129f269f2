/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A stage's skills, resolved on the host: what each one's files are, read
 * from its source only (a skill directory is walked without following a
 * symlink, bounded in files, bytes and depth), with a safe and unique name.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "skill/skill.h"
#include "voidbox/sandbox.h"
#include "util/term.h"
#include "util/util.h"

void vb_skill_sha256(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
		memset(md, 0, sizeof(md));
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void skill_free(struct vb_skill *s)
{
	free(s->name);
	free(s->description);
	free(s->source);
	for (size_t i = 0; i < s->n_files; i++) {
		free(s->files[i].rel);
		free(s->files[i].data);
	}
	free(s->files);
}

void vb_skill_set_free(struct vb_skill_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		skill_free(&s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
	for (size_t i = 0; i < s->n_mcp; i++)
		vb_skill_mcp_free(&s->mcp[i]);
	free(s->mcp);
	s->mcp = NULL;
	s->n_mcp = 0;
	for (size_t i = 0; i < s->n_oci; i++)
		vb_skill_oci_free(&s->oci[i]);
	free(s->oci);
	s->oci = NULL;
	s->n_oci = 0;
}

static int add_file(struct vb_skill *s, const char *rel, uint8_t *data, size_t len,
		    unsigned mode, vb_error *err)
{
	struct vb_skill_file *f = realloc(s->files, (s->n_files + 1) * sizeof(*f));
	if (!f) {
		free(data);
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	s->files = f;
	f = &s->files[s->n_files];
	*f = (struct vb_skill_file){ .rel = strdup(rel), .data = data, .len = len, .mode = mode };
	if (!f->rel) {
		free(data);
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	s->n_files++;
	s->total += len;
	return 0;
}

static const char *safe(char *buf, size_t n, const char *s)
{
	return vb_term_copy(buf, n, s, 0);
}

static void fmt_size(char *buf, size_t n, uint64_t v)
{
	if (v >= (1u << 20))
		snprintf(buf, n, "%.1f MiB", (double)v / (1 << 20));
	else if (v >= 1024)
		snprintf(buf, n, "%.1f KiB", (double)v / 1024);
	else
		snprintf(buf, n, "%llu bytes", (unsigned long long)v);
}

/* Read the regular file (name) under (dirfd) (AT_FDCWD: a path), never
 * through a symlink, at most (max) bytes; (label) names it in errors. */
static int read_at(int dirfd, const char *name, const char *label, size_t max, int follow,
		   uint8_t **data, size_t *len, unsigned *mode, vb_error *err)
{
	char l[300], a[32], b[32];
	int fd = openat(dirfd, name,
			O_RDONLY | O_CLOEXEC | O_NONBLOCK | (follow ? 0 : O_NOFOLLOW));
	if (fd < 0) /* ELOOP: a symlink where none may be */
		return vb_error_set(err, VB_E_USAGE, "cannot open %s: %s", safe(l, sizeof(l), label),
				    errno == ELOOP ? "a symbolic link" : strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return vb_error_set(err, VB_E_USAGE, "%s is not a regular file",
				    safe(l, sizeof(l), label));
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		fmt_size(a, sizeof(a), (uint64_t)st.st_size);
		fmt_size(b, sizeof(b), max);
		return vb_error_set(err, VB_E_USAGE, "%s is %s: the limit is %s",
				    safe(l, sizeof(l), label), a, b);
	}
	uint8_t *buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	ssize_t got = vb_read_full(fd, buf, (size_t)st.st_size + 1);
	close(fd);
	if (got < 0 || (size_t)got > (size_t)st.st_size) {
		free(buf);
		return got < 0 ? vb_error_errno(err, errno, "cannot read %s", safe(l, sizeof(l), label))
			       : vb_error_set(err, VB_E_USAGE, "%s grew while it was read",
					      safe(l, sizeof(l), label));
	}
	buf[got] = 0; /* SKILL.md is parsed as text */
	*data = buf;
	*len = (size_t)got;
	*mode = (st.st_mode & 0111) ? 0755 : 0644;
	return 0;
}

struct walk {
	struct vb_skill *s;
	const char *root;
	size_t files;
};

/* Add every entry under (dirfd) (relative path (rel), "" at the top). */
static int walk_dir(struct walk *w, int dirfd, const char *rel, int depth, vb_error *err)
{
	char l[300];
	if (depth > VB_SKILL_DIR_DEPTH_MAX)
		return vb_error_set(err, VB_E_USAGE,
				    "%s/%s: a skill directory may be at most %d levels deep",
				    safe(l, sizeof(l), w->root), rel, VB_SKILL_DIR_DEPTH_MAX);
	int dfd = dup(dirfd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return vb_error_errno(err, errno, "cannot read %s", safe(l, sizeof(l), w->root));
	}
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (errno = 0, e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		_cleanup_free_ char *path = *rel ? vb_strfmt("%s/%s", rel, e->d_name)
						 : strdup(e->d_name);
		_cleanup_free_ char *label = path ? vb_strfmt("%s/%s", w->root, path) : NULL;
		if (!label) {
			rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
			break;
		}
		struct stat st;
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = vb_error_errno(err, errno, "cannot stat %s", safe(l, sizeof(l), label));
			break;
		}
		if (S_ISLNK(st.st_mode)) {
			char target[256] = "";
			ssize_t tn = readlinkat(dirfd, e->d_name, target, sizeof(target) - 1);
			target[tn > 0 ? tn : 0] = 0;
			char t[256];
			rc = vb_error_set(err, VB_E_USAGE,
					  "%s is a symbolic link (to %s): a skill directory holds "
					  "regular files and directories only, nothing outside it "
					  "is copied",
					  safe(l, sizeof(l), label), safe(t, sizeof(t), target));
		} else if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd, e->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				rc = vb_error_errno(err, errno, "cannot open %s",
						    safe(l, sizeof(l), label));
			} else {
				rc = walk_dir(w, sub, path, depth + 1, err);
				close(sub);
			}
		} else if (!S_ISREG(st.st_mode)) {
			rc = vb_error_set(err, VB_E_USAGE,
					  "%s is not a regular file or directory",
					  safe(l, sizeof(l), label));
		} else if (!*rel && !strcmp(e->d_name, "SKILL.md")) {
			continue; /* read first, by the caller */
		} else if (++w->files >= VB_SKILL_DIR_FILES_MAX) {
			rc = vb_error_set(err, VB_E_USAGE,
					  "%s: a skill directory may hold at most %d files",
					  safe(l, sizeof(l), w->root), VB_SKILL_DIR_FILES_MAX);
		} else if ((uint64_t)st.st_size > VB_SKILL_DIR_BYTES_MAX - w->s->total) {
			rc = vb_error_set(err, VB_E_USAGE,
					  "%s: a skill directory may hold at most %zu MiB in all",
					  safe(l, sizeof(l), w->root), VB_SKILL_DIR_BYTES_MAX >> 20);
		} else {
			uint8_t *data = NULL;
			size_t len = 0;
			unsigned mode = 0;
			rc = read_at(dirfd, e->d_name, label, VB_SKILL_DIR_BYTES_MAX - w->s->total, 0,
				     &data, &len, &mode, err);
			if (rc == 0)
				rc = add_file(w->s, path, data, len, mode, err);
		}
	}
	if (rc == 0 && errno)
		rc = vb_error_errno(err, errno, "cannot read %s", safe(l, sizeof(l), w->root));
	closedir(d);
	return rc;
}

/* SKILL.md's text (files[0]): frontmatter checked, its name taken unless
 * (fixed) says what it must be; else (fallback). */
static int take_meta(struct vb_skill *s, const char *label, const char *fixed,
		     const char *fallback, vb_error *err)
{
	const struct vb_skill_file *md = &s->files[0];
	char *fm_name = NULL;
	if (vb_skill_frontmatter((const char *)md->data, md->len, label, &fm_name, &s->description,
				 err) < 0)
		return -1;
	char a[80], b[80];
	if (fixed && fm_name && strcmp(fm_name, fixed)) {
		vb_error_set(err, VB_E_USAGE,
			     "its frontmatter names it '%s', but the spec names it '%s'",
			     safe(a, sizeof(a), fm_name), safe(b, sizeof(b), fixed));
		free(fm_name);
		return -1;
	}
	s->name = fm_name ? fm_name : strdup(fixed ? fixed : fallback);
	if (!s->name)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (!vb_skill_name_ok(s->name))
		return vb_error_set(err, VB_E_USAGE,
				    "its name '%s' is not a safe skill name (letters, digits, '-', "
				    "'_', '.'; at most %d); give it one with a frontmatter 'name'",
				    safe(a, sizeof(a), s->name), VB_SKILL_NAME_MAX);
	vb_skill_sha256(md->data, md->len, s->sha256);
	return 0;
}

static char *base_name(const char *path)
{
	_cleanup_free_ char *p = strdup(path);
	if (!p)
		return NULL;
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = 0;
	const char *b = strrchr(p, '/');
	return strdup(b ? b + 1 : p);
}

static int resolve_file(const struct vb_spec_skill *sk, struct vb_skill *s, vb_error *err)
{
	char l[300];
	const char *abs = sk->path.abs;
	s->type = "file";
	if (!(s->source = strdup(abs)))
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	struct stat st;
	if (stat(abs, &st) < 0) /* the path the spec names may be a symlink */
		return vb_error_set(err, VB_E_USAGE, "%s: %s", safe(l, sizeof(l), abs),
				    strerror(errno));
	uint8_t *data = NULL;
	size_t len = 0;
	unsigned mode = 0;
	if (S_ISREG(st.st_mode)) {
		if (read_at(AT_FDCWD, abs, abs, VB_SKILL_MD_MAX, 1, &data, &len, &mode, err) < 0 ||
		    add_file(s, "SKILL.md", data, len, 0644, err) < 0)
			return -1;
		/* .../NAME/SKILL.md is NAME; NAME.md is NAME */
		_cleanup_free_ char *b = base_name(abs);
		_cleanup_free_ char *dir = strdup(abs);
		if (!b || !dir)
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		char *slash = strrchr(dir, '/');
		if (slash)
			*slash = 0;
		_cleanup_free_ char *dname = base_name(*dir ? dir : "/");
		if (!dname)
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		if (strcmp(b, "SKILL.md") && strlen(b) > 3 && !strcmp(b + strlen(b) - 3, ".md"))
			b[strlen(b) - 3] = 0;
		return take_meta(s, abs, NULL, strcmp(b, "SKILL.md") ? b : dname, err);
	}
	if (!S_ISDIR(st.st_mode))
		return vb_error_set(err, VB_E_USAGE, "%s is not a file or a directory",
				    safe(l, sizeof(l), abs));
	int dfd = open(abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return vb_error_errno(err, errno, "cannot open %s", safe(l, sizeof(l), abs));
	_cleanup_free_ char *md_label = vb_strfmt("%s/SKILL.md", abs);
	int rc = md_label ? 0 : vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (rc == 0 && faccessat(dfd, "SKILL.md", F_OK, AT_SYMLINK_NOFOLLOW) < 0)
		rc = vb_error_set(err, VB_E_USAGE, "%s has no SKILL.md", safe(l, sizeof(l), abs));
	if (rc == 0)
		rc = read_at(dfd, "SKILL.md", md_label, VB_SKILL_MD_MAX, 0, &data, &len, &mode, err);
	if (rc == 0)
		rc = add_file(s, "SKILL.md", data, len, 0644, err);
	struct walk w = { .s = s, .root = abs };
	if (rc == 0)
		rc = walk_dir(&w, dfd, "", 1, err);
	close(dfd);
	if (rc < 0)
		return -1;
	_cleanup_free_ char *b = base_name(abs);
	if (!b)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	return take_meta(s, md_label, NULL, b, err);
}

static int resolve_inline(const struct vb_spec_skill *sk, struct vb_skill *s, vb_error *err)
{
	s->type = "inline";
	const char *text = sk->content.s ? sk->content.s : "";
	size_t len = strlen(text);
	char a[32], b[32];
	if (len > VB_SKILL_MD_MAX) {
		fmt_size(a, sizeof(a), len);
		fmt_size(b, sizeof(b), VB_SKILL_MD_MAX);
		return vb_error_set(err, VB_E_USAGE, "its content is %s: the limit is %s", a, b);
	}
	uint8_t *data = (uint8_t *)strdup(text);
	if (!data || !(s->source = strdup("inline")))
		return free(data), vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (add_file(s, "SKILL.md", data, len, 0644, err) < 0)
		return -1;
	_cleanup_free_ char *label = vb_strfmt("inline skill '%s' content", sk->name.s);
	return label ? take_meta(s, label, sk->name.s, NULL, err)
		     : vb_error_set(err, VB_E_RUNTIME, "out of memory");
}

static int resolve_remote(const struct vb_spec_skill *sk, unsigned flags, struct vb_skill *s,
			  vb_error *err)
{
	s->type = "remote";
	/* each part goes into a URL path: a safe component, no "..", no '%' */
	_cleanup_free_ char *parts = strdup(sk->value ? sk->value : "");
	if (!parts)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	for (char *save = NULL, *t = strtok_r(parts, "/", &save); t; t = strtok_r(NULL, "/", &save))
		if (!vb_skill_name_ok(t)) {
			char a[80];
			return vb_error_set(err, VB_E_USAGE,
					    "'%s' is not a safe owner, repository or skill name "
					    "(letters, digits, '-', '_', '.')",
					    safe(a, sizeof(a), t));
		}
	_cleanup_free_ char *base = NULL;
	if (vb_skill_remote_base(&base, err) < 0)
		return -1;
	s->source = vb_skill_remote_url(base, sk->value);
	if (!s->source)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	/* the skill's part of the id, else the repository's */
	const char *last = strrchr(sk->value, '/');
	const char *fallback = last ? last + 1 : sk->value;
	if (flags & VB_SKILL_NO_FETCH) {
		if (!(s->name = strdup(fallback)))
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return 0;
	}
	uint8_t *data = NULL;
	size_t len = 0;
	if (vb_skill_fetch(s->source, &data, &len, err) < 0 ||
	    add_file(s, "SKILL.md", data, len, 0644, err) < 0)
		return -1;
	return take_meta(s, s->source, NULL, fallback, err);
}

/* cli:NAME from the host; when the host has no NAME but the stage has
 * images, the tool is looked for in the guest when its VM is up. */
static int cli_resolve(const char *name, int images, struct vb_skill *s, vb_error *err)
{
	if (vb_skill_cli_resolve(name, s, err) == 0)
		return 0;
	if (!images || !s->name || s->source)
		return -1;
	vb_error_clear(err);
	return 0;
}

/* An MCP server (src/skill/mcp.c), its name unique among the stage's. */
static int resolve_mcp(const struct vb_spec_skill *in, struct vb_skill_set *out, vb_error *err)
{
	struct vb_skill_mcp *m = &out->mcp[out->n_mcp];
	if (vb_skill_mcp_resolve(in, m, err) < 0)
		return -1;
	out->n_mcp++;
	for (size_t j = 0; j + 1 < out->n_mcp; j++)
		if (!strcmp(out->mcp[j].name, m->name))
			return vb_error_set(err, VB_E_USAGE,
					    "another MCP server of this stage is also named '%s': "
					    "server names are unique per stage (name one with "
					    "{name: ..., command: ...})",
					    m->name);
	return 0;
}

/* How the spec wrote (sk), for errors. */
static void describe(const struct vb_spec_skill *sk, char *buf, size_t n)
{
	char v[200];
	if (sk->type == VB_SPEC_SKILL_INLINE)
		snprintf(buf, n, "inline skill '%s'", safe(v, sizeof(v), sk->name.s ? sk->name.s : ""));
	else if (sk->type == VB_SPEC_SKILL_MCP && sk->object_form)
		snprintf(buf, n, "skill '%s'", safe(v, sizeof(v), sk->command.s ? sk->command.s : ""));
	else if (sk->type == VB_SPEC_SKILL_OCI)
		snprintf(buf, n, "skill image '%s'", safe(v, sizeof(v), sk->image.s ? sk->image.s : ""));
	else
		snprintf(buf, n, "skill '%s:%s'", vb_spec_skill_type_name(sk->type),
			 safe(v, sizeof(v), sk->value ? sk->value : ""));
}

int vb_skill_resolve(const struct vb_spec_skills *sk, const char *spec_file, unsigned flags,
		     struct vb_skill_set *out, vb_error *err)
{
	*out = (struct vb_skill_set){ 0 };
	if (!sk || !sk->n)
		return 0;
	out->v = calloc(sk->n, sizeof(*out->v));
	out->mcp = calloc(sk->n, sizeof(*out->mcp));
	out->oci = calloc(sk->n, sizeof(*out->oci));
	if (!out->v || !out->mcp || !out->oci)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	char file[256], what[300];
	safe(file, sizeof(file), spec_file ? spec_file : "");
	/* a cli: tool may come from the stage's images (src/run/skills_cli.c) */
	int images = (flags & VB_SKILL_IMAGES) != 0;
	for (size_t i = 0; i < sk->n; i++)
		images |= sk->v[i].type == VB_SPEC_SKILL_OCI;
	out->root_image = (flags & VB_SKILL_IMAGES) != 0;
	for (size_t i = 0; i < sk->n; i++) {
		const struct vb_spec_skill *in = &sk->v[i];
		describe(in, what, sizeof(what));
		if (in->type == VB_SPEC_SKILL_OCI) {
			/* each is a disk of the VM, and a VM has few */
			if (out->n_oci == VB_SKILL_OCI_MAX) {
				vb_error_set(err, VB_E_USAGE,
					     "%s:%u:%u: %s: a stage may have at most %d image skills "
					     "(each is one of the VM's %u disks)",
					     file, in->pos.line, in->pos.col, what, VB_SKILL_OCI_MAX,
					     VB_SANDBOX_MAX_DISKS);
				goto fail;
			}
			if (vb_skill_oci_check(in, out->oci, out->n_oci, &out->oci[out->n_oci],
					       err) < 0) {
				vb_skill_oci_free(&out->oci[out->n_oci]);
				vb_error_prefix(err, "%s:%u:%u: %s", file, in->pos.line, in->pos.col,
						what);
				goto fail;
			}
			out->n_oci++;
			continue;
		}
		if (in->type == VB_SPEC_SKILL_AGENT)
			continue; /* informational (vb_spec_warnings) */
		if (in->type == VB_SPEC_SKILL_MCP) {
			if (resolve_mcp(in, out, err) < 0) {
				vb_error_prefix(err, "%s:%u:%u: %s", file, in->pos.line, in->pos.col,
						what);
				goto fail;
			}
			continue;
		}
		struct vb_skill *s = &out->v[out->n++];
		int rc = in->type == VB_SPEC_SKILL_CLI	  ? cli_resolve(in->value, images, s, err)
			 : in->type == VB_SPEC_SKILL_FILE	  ? resolve_file(in, s, err)
			 : in->type == VB_SPEC_SKILL_INLINE ? resolve_inline(in, s, err)
							    : resolve_remote(in, flags, s, err);
		if (rc < 0) {
			vb_error_prefix(err, "%s:%u:%u: %s", file, in->pos.line, in->pos.col, what);
			goto fail;
		}
		for (size_t j = 0; j + 1 < out->n; j++)
			if (!strcmp(out->v[j].name, s->name)) {
				char n[80];
				vb_error_set(err, VB_E_USAGE,
					     "%s:%u:%u: %s: another skill of this stage is also named "
					     "'%s': skill names are unique per stage",
					     file, in->pos.line, in->pos.col, what,
					     safe(n, sizeof(n), s->name));
				goto fail;
			}
	}
	return 0;
fail:
	vb_skill_set_free(out);
	return -1;
}

static int check_one(const struct vb_spec_skills *sk, const char *file, const char *box,
		     const struct vb_spec_vm *vm, vb_error *err)
{
	struct vb_skill_set set;
	unsigned flags = VB_SKILL_NO_FETCH | (vm->image ? VB_SKILL_IMAGES : 0);
	if (vb_skill_resolve(sk, file, flags, &set, err) < 0) {
		if (box)
			vb_error_prefix(err, "box '%s'", box);
		return -1;
	}
	vb_skill_set_free(&set);
	return 0;
}

int vb_skill_check_spec(const struct vb_spec *spec, vb_error *err)
{
	if (spec->kind == VB_SPEC_AGENT)
		return check_one(&spec->agent.skills, spec->file, NULL, &spec->vm, err);
	if (spec->kind != VB_SPEC_PIPELINE)
		return 0;
	for (size_t i = 0; i < spec->pipeline.n_boxes; i++) {
		const struct vb_spec_box *b = &spec->pipeline.boxes[i];
		if (check_one(&b->skills, spec->file, b->name.s, &b->vm, err) < 0)
			return -1;
	}
	return 0;
}
