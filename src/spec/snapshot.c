/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sandbox.snapshot (docs/spec.md, docs/snapshots.md "Specs, pipelines and
 * shells"): what it may say, and what a VM restored from a snapshot cannot
 * have, refused where the spec is loaded (`voidbox validate` included)
 * with the position of the snapshot and of what it cannot give.
 *
 * What depends on this host and this build (the snapshot being there, its
 * kernel, a network or forwards on restored VMs) is the run's to check,
 * before any VM boots (src/run/boot.c).
 */
#include "spec/spec_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Devices of a snapshot's VM that a restore can mount on (VB_SNAP_MOUNT_SLOTS
 * in src/sandbox: the spec layer does not include the sandbox's inside). */
#define SNAPSHOT_MOUNTS 4

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	return n >= 1 && n <= 64 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* A directory: absolute, as host paths are (the spec's directory first,
 * then the current one). */
static void absolute(struct spec_ctx *c, struct vb_spec_str *s)
{
	if (s->s[0] == '/')
		return;
	char *in_dir = malloc(strlen(c->dir) + strlen(s->s) + 2);
	if (!in_dir) {
		spec_oom(c);
		return;
	}
	sprintf(in_dir, "%s/%s", c->dir, s->s);
	struct stat st;
	char *abs = in_dir;
	char *here = stat(in_dir, &st) != 0 ? realpath(s->s, NULL) : NULL;
	if (here) {
		free(in_dir);
		abs = here;
	}
	free(s->s);
	s->s = abs;
}

void spec_check_snapshot_ref(struct spec_ctx *c, struct vb_spec_str *s, const char *path)
{
	char clip[80];
	if (!s->s || !strcmp(s->s, "none"))
		return;
	if (strchr(s->s, '/')) {
		absolute(c, s);
		return;
	}
	if (!name_ok(s->s))
		spec_diag(c, s->pos, path,
			  "'%s' is not a snapshot: expected none, a snapshot's name or id (at least "
			  "4 hex digits), or its directory in the store",
			  spec_clip(s->s, clip, sizeof(clip)));
}

/* Where a conflicting field was written, for the message. */
static const char *at(struct vb_spec_pos pos, char *buf, size_t size)
{
	if (pos.line)
		snprintf(buf, size, " (line %u)", pos.line);
	else
		buf[0] = '\0';
	return buf;
}

/* One VM's settings against its snapshot: (top) and (box) as written, (vm)
 * resolved; (path) is the snapshot field's. */
static void check_vm(struct spec_ctx *c, const struct vb_spec_sandbox *top,
		     const struct vb_spec_sandbox *box, const struct vb_spec_vm *vm, size_t extra_mounts,
		     const char *who, const char *name)
{
	static const struct vb_spec_sandbox none;
	if (!box)
		box = &none;
	const struct vb_spec_str *snap = box->snapshot.s ? &box->snapshot : &top->snapshot;
	if (!snap->s || !strcmp(snap->s, "none"))
		return;
	char path[SPEC_PATH_MAX], where[40];
	snprintf(path, sizeof(path), "%s", box->snapshot.s ? who : "sandbox.snapshot");
	const struct vb_spec_str *gimage = box->guest_image.s ? &box->guest_image : &top->guest_image;
	if (gimage->s)
		spec_diag(c, snap->pos, path,
			  "restored from a snapshot: no sandbox.guest_image%s: the kernel is the "
			  "snapshot's",
			  at(gimage->pos, where, sizeof(where)));
	/* boot data the snapshot's agent read at its own boot: a restore
	 * cannot change it, and must not silently drop it */
	const struct vb_spec_limits *lim = box->limits.set ? &box->limits : &top->limits;
	const struct {
		const struct vb_spec_int *v;
		const char *name;
	} limits[] = { { &lim->nofile, "nofile" }, { &lim->nproc, "nproc" },
		       { &lim->fsize_mb, "fsize_mb" } };
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
		if (limits[i].v->set && limits[i].v->v > 0)
			spec_diag(c, snap->pos, path,
				  "restored from a snapshot: sandbox.limits.%s%s cannot apply: the "
				  "snapshot's agent has its own",
				  limits[i].name, at(limits[i].v->pos, where, sizeof(where)));
	if (vm->allowed_commands && vm->allowed_commands->set)
		spec_diag(c, snap->pos, path,
			  "restored from a snapshot: sandbox.allowed_commands%s cannot apply: the "
			  "snapshot's agent allows every command",
			  at(vm->allowed_commands->pos, where, sizeof(where)));
	/* sandbox.image is the snapshot's own image (the run checks that it is
	 * the very same root disk), and its disk takes a mount's device */
	size_t mounts = vm->n_mounts + extra_mounts, max = SNAPSHOT_MOUNTS - (vm->image != NULL);
	if (mounts > max)
		spec_diag(c, snap->pos, path,
			  "restored from a snapshot: at most %zu mounts%s, %s has %zu "
			  "(sandbox.mounts%s)",
			  max, vm->image ? " with sandbox.image" : "", name, mounts,
			  extra_mounts ? ", outputs, inputs" : "");
}

void spec_check_snapshots(struct spec_ctx *c, const struct vb_spec *spec)
{
	if (spec->kind != VB_SPEC_PIPELINE) {
		check_vm(c, &spec->sandbox, NULL, &spec->vm, 0, "sandbox.snapshot", "this one");
		return;
	}
	for (size_t i = 0; i < spec->pipeline.n_boxes; i++) {
		const struct vb_spec_box *b = &spec->pipeline.boxes[i];
		char who[SPEC_PATH_MAX], name[SPEC_NAME_MAX + 8];
		snprintf(who, sizeof(who), "pipeline.boxes[%zu].sandbox.snapshot", i);
		snprintf(name, sizeof(name), "box '%s'", b->name.s ? b->name.s : "?");
		check_vm(c, &spec->sandbox, &b->sandbox, &b->vm, b->n_outputs + b->n_inputs, who,
			 name);
	}
}
