/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image skills {image, mount, readonly: true}, checked on the host before
 * anything is pulled: what `voidbox validate` can say without the network.
 * The pull and the disk are the run engine's (src/run/skills_oci.c).
 */
#include <stdlib.h>
#include <string.h>

#include "oci/oci.h"
#include "skill/skill.h"
#include "util/term.h"
#include "util/util.h"

/* Where VoidBox, the agent or the guest's system live: an image mounted
 * over (or around) one of them would hide what the stage needs.  The
 * image's own tools reach PATH without a mount there (docs/oci.md). */
static const char *const reserved[] = {
	"/bin",	 "/sbin", "/lib",	"/lib32",	"/lib64", "/libx32", "/usr",
	"/etc",	 "/dev",  "/proc",	"/sys",		"/run",	  "/tmp",    "/var",
	"/root", "/home", "/workspace", "/opt/voidbox", "/boot",  "/.voidbox", "/.vbroot",
	NULL,
};

int vb_skill_paths_overlap(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	while (la > 1 && a[la - 1] == '/')
		la--;
	while (lb > 1 && b[lb - 1] == '/')
		lb--;
	size_t n = la < lb ? la : lb;
	if (strncmp(a, b, n))
		return 0;
	if (la == lb)
		return 1;
	/* the shorter is a prefix: a parent only if a '/' follows it */
	return (la < lb ? b[n] : a[n]) == '/' || n == 1;
}

static int mount_ok(const char *m, const struct vb_skill_oci *prev, size_t n_prev, vb_error *err)
{
	char a[200], b[200];
	vb_term_copy(a, sizeof(a), m, 0);
	if (m[0] != '/')
		return vb_error_set(err, VB_E_USAGE, "mount '%s' must be an absolute guest path", a);
	if (!strcmp(m, "/") || strspn(m, "/") == strlen(m))
		return vb_error_set(err, VB_E_USAGE,
				    "mount '/' would hide the stage's own root: mount the image at "
				    "a directory such as /opt/NAME (or use sandbox.image for a root)");
	for (const char *p = m; *p;) {
		while (*p == '/')
			p++;
		size_t l = strcspn(p, "/");
		if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
			return vb_error_set(err, VB_E_USAGE,
					    "mount '%s' must not have '.' or '..' components", a);
		p += l;
	}
	for (size_t i = 0; reserved[i]; i++)
		if (vb_skill_paths_overlap(m, reserved[i]))
			return vb_error_set(err, VB_E_USAGE,
					    "mount '%s' clashes with %s, which the guest or VoidBox "
					    "uses: mount the image elsewhere, e.g. /opt/NAME or "
					    "/skills/NAME",
					    a, reserved[i]);
	for (size_t i = 0; i < n_prev; i++)
		if (vb_skill_paths_overlap(m, prev[i].mount)) {
			vb_term_copy(b, sizeof(b), prev[i].image, 0);
			return vb_error_set(err, VB_E_USAGE,
					    "mount '%s' clashes with the mount of skill image '%s' "
					    "(line %u): each image needs a path of its own, neither "
					    "inside the other",
					    a, b, prev[i].pos.line);
		}
	return 0;
}

int vb_skill_oci_check(const struct vb_spec_skill *in, const struct vb_skill_oci *prev,
		       size_t n_prev, struct vb_skill_oci *out, vb_error *err)
{
	memset(out, 0, sizeof(*out));
	out->pos = in->pos;
	if (in->readonly.set && !in->readonly.v)
		return vb_error_set(err, VB_E_USAGE,
				    "readonly: false is not supported: an image skill is a "
				    "read-only disk (write to /workspace or an output instead)");
	if (!in->image.s || !in->image.s[0])
		return vb_error_set(err, VB_E_USAGE, "it needs an image reference");
	if (!in->mount.s || !in->mount.s[0])
		return vb_error_set(err, VB_E_USAGE, "it needs a mount path");
	struct vb_oci_ref ref;
	if (vb_oci_ref_parse(in->image.s, &ref, err) < 0) {
		err->kind = VB_E_USAGE;
		return -1;
	}
	vb_oci_ref_clear(&ref);
	if (mount_ok(in->mount.s, prev, n_prev, err) < 0)
		return -1;
	out->image = strdup(in->image.s);
	out->mount = strdup(in->mount.s);
	if (!out->image || !out->mount)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	/* "/opt/x/" and "/opt/x" are one mount */
	for (size_t l = strlen(out->mount); l > 1 && out->mount[l - 1] == '/'; l--)
		out->mount[l - 1] = 0;
	return 0;
}

void vb_skill_oci_free(struct vb_skill_oci *o)
{
	if (!o)
		return;
	free(o->image);
	free(o->mount);
	free(o->reference);
	free(o->disk);
	memset(o, 0, sizeof(*o));
}
