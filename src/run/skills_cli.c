/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A cli: skill in its stage's VM: the host program and its library closure
 * (src/skill/cli.c) written through the sandbox's file requests into
 * ~/.voidbox/cli/NAME/, a launcher ~/.voidbox/cli/bin/NAME, linked from
 * /usr/local/bin (on every agent's PATH; the file requests cannot write
 * outside the sandbox's roots, so a root exec makes the link), and then
 * run once (`NAME --version`) so a tool that cannot start fails the stage
 * before the agent does.  When the stage has images (a root image, image
 * skills) and they put NAME on the guest's PATH, that one is used and
 * nothing is copied (docs/skills.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run/engine.h"
#include "skill/skill.h"
#include "util/term.h"
#include "util/util.h"

#define CLI_ROOT "/home/sandbox/.voidbox/cli"
#define CLI_CHECK_MS 120000 /* a first start under TCG can be slow */

/* The guest has no glibc: a dynamic program runs through its own loader,
 * with its libraries' directory as the only search path, and keeps its
 * name as argv[0]. */
static char *launcher(const struct vb_skill *s, const char *dir)
{
	if (s->n_files < 2)
		return NULL;
	/* only safe names go into the script (the host path could hold
	 * anything) */
	return vb_strfmt("#!/bin/sh\n# cli:%s (VoidBox)\n"
			 "exec %s/%s --library-path %s/lib --argv0 %s %s/%s \"$@\"\n",
			 s->name, dir, s->files[1].rel, dir, s->name, dir, s->name);
}

static int check_start(vb_sandbox *sb, const struct vb_skill *s, vb_error *err)
{
	const char *argv[] = { s->name, "--version", NULL };
	struct vb_exec_params p = { .argv = argv, .timeout_ms = CLI_CHECK_MS };
	struct vb_exec_result res = { 0 };
	if (vb_exec_run(sb, &p, NULL, 0, 4096, &res, err) < 0) {
		vb_error_prefix(err, "does not start in the guest");
		return -1;
	}
	int bad = res.timed_out || res.exit_code == 126 || res.exit_code == 127 || res.signal;
	if (bad) {
		char why[600], st[64];
		vb_term_copy(why, sizeof(why), res.errout ? (const char *)res.errout : "", 0);
		for (size_t n = strlen(why); n && (why[n - 1] == ' ' || why[n - 1] == '\n'); n--)
			why[n - 1] = 0;
		if (res.timed_out)
			snprintf(st, sizeof(st), "timed out after %u s", CLI_CHECK_MS / 1000);
		else
			snprintf(st, sizeof(st), "exit %d", res.exit_code);
		/* VB_E_OK: the stage fails (exit 1), VoidBox did its part */
		vb_error_set(err, VB_E_OK, "does not start in the guest (%s --version: %s): %s",
			     s->name, st, *why ? why : "no output on stderr");
	}
	vb_exec_result_free(&res);
	return bad ? -1 : 0;
}

/* Where the stage's images put NAME on the guest's PATH: `command -v` in
 * the guest (its PATH is the image's, with each image skill's bin dirs:
 * docs/oci.md), accepted when it is in the root image (the whole root
 * is the image's) or under an image skill's mount, not the initramfs's
 * own busybox.  1 with (*found) (a new string), 0 when not there. */
static int from_images(vb_sandbox *sb, const struct vb_skill *s, const struct vb_skill_set *set,
		       char **found, vb_error *err)
{
	const char *argv[] = { "/bin/sh", "-c", "command -v -- \"$1\"", "sh", s->name, NULL };
	struct vb_exec_params p = { .argv = argv, .timeout_ms = CLI_CHECK_MS };
	struct vb_exec_result res = { 0 };
	vb_error ignore = { 0 };
	if (vb_exec_run(sb, &p, NULL, 0, 4096, &res, &ignore) < 0)
		return 0; /* no /bin/sh in the image: nothing found there */
	int ok = res.exit_code == 0 && !res.signal && res.out && res.out[0] == '/';
	_cleanup_free_ char *path = ok ? strndup((const char *)res.out, res.out_len) : NULL;
	vb_exec_result_free(&res);
	if (ok && !path)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (!path)
		return 0;
	path[strcspn(path, "\n")] = 0;
	int mine = set->root_image && strncmp(path, "/.voidbox/", 10);
	for (size_t i = 0; !mine && i < set->n_oci; i++) {
		size_t l = strlen(set->oci[i].mount);
		mine = !strncmp(path, set->oci[i].mount, l) && path[l] == '/';
	}
	if (!mine)
		return 0;
	*found = path;
	path = NULL;
	return 1;
}

int vb_run_skills_cli(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
		      const struct vb_skill_set *set, const struct vb_skill *s, vb_error *err)
{
	if (set->root_image || set->n_oci) {
		_cleanup_free_ char *found = NULL;
		int64_t t0 = vb_now_ms();
		int rc = from_images(sb, s, set, &found, err);
		if (rc < 0)
			return -1;
		if (rc == 1) { /* the image's own: nothing copied */
			if (check_start(sb, s, err) < 0)
				return -1;
			struct vb_event_skill k = { .type = s->type, .name = s->name, .source = found,
						    .path = found, .from = "image" };
			struct vb_event ev = { .type = VB_EV_SKILL_PROVISIONED, .stage = u->name,
					       .skill = &k, .vm_id = u->vm_id,
					       .duration_ms = vb_now_ms() - t0 };
			vb_run_emit(r, &ev);
			return 0;
		}
	}
	if (vb_skill_cli_deferred(s)) {
		char n[80];
		vb_term_copy(n, sizeof(n), s->name, 0);
		return vb_error_set(err, VB_E_USAGE,
				    "program %s is neither on the PATH of the stage's images nor on "
				    "this host's PATH",
				    n);
	}

	_cleanup_free_ char *dir = vb_strfmt(CLI_ROOT "/%s", s->name);
	_cleanup_free_ char *bin = vb_strfmt(CLI_ROOT "/bin/%s", s->name);
	_cleanup_free_ char *sh = launcher(s, dir ? dir : "");
	if (!dir || !bin || (s->n_files > 1 && !sh))
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	int64_t t0 = vb_now_ms();
	if (vb_file_mkdir(sb, "/home/sandbox/.voidbox", 0755, 0, err) < 0 ||
	    vb_file_mkdir(sb, CLI_ROOT, 0755, 0, err) < 0 ||
	    vb_file_mkdir(sb, CLI_ROOT "/bin", 0755, 0, err) < 0)
		return -1;
	if (sh) {
		if (vb_file_mkdir(sb, dir, 0755, 0, err) < 0)
			return -1;
		_cleanup_free_ char *lib = vb_strfmt("%s/lib", dir);
		if (!lib || vb_file_mkdir(sb, lib, 0755, 0, err) < 0)
			return err->kind ? -1 : vb_error_set(err, VB_E_RUNTIME, "out of memory");
		for (size_t i = 0; i < s->n_files; i++) {
			_cleanup_free_ char *path = vb_strfmt("%s/%s", dir, s->files[i].rel);
			if (!path)
				return vb_error_set(err, VB_E_RUNTIME, "out of memory");
			if (vb_file_write(sb, path, s->files[i].data, s->files[i].len, 0755, 0, err) < 0)
				return -1;
		}
		if (vb_file_write(sb, bin, sh, strlen(sh), 0755, 0, err) < 0)
			return -1;
	} else if (vb_file_write(sb, bin, s->files[0].data, s->files[0].len, 0755, 0, err) < 0) {
		return -1; /* static: as it is */
	}
	_cleanup_free_ char *cmd = vb_strfmt("mkdir -p /usr/local/bin && ln -sf %s /usr/local/bin/%s",
					     bin, s->name);
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	struct vb_exec_params p = { .argv = argv, .as_root = 1, .timeout_ms = CLI_CHECK_MS };
	struct vb_exec_result res = { 0 };
	if (!cmd)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (vb_exec_run(sb, &p, NULL, 0, 4096, &res, err) < 0)
		return -1;
	int rc = res.exit_code;
	vb_exec_result_free(&res);
	if (rc != 0)
		return vb_error_set(err, VB_E_RUNTIME, "cannot link it into /usr/local/bin (exit %d)",
				    rc);
	if (check_start(sb, s, err) < 0)
		return -1;
	struct vb_event_skill k = { .type = s->type, .name = s->name, .source = s->source,
				    .sha256 = s->sha256, .path = sh ? dir : bin, .size = s->total,
				    .files = s->n_files, .from = "host" };
	struct vb_event ev = { .type = VB_EV_SKILL_PROVISIONED, .stage = u->name, .skill = &k,
			       .vm_id = u->vm_id, .duration_ms = vb_now_ms() - t0 };
	vb_run_emit(r, &ev);
	return 0;
}
