/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Snapshots of VMs with an image root and read-only disks (docs/snapshots.md,
 * "Image roots and disks").  The guest mounted those disks at its boot and
 * keeps their blocks in its page cache, which is in the snapshot's RAM: a
 * restore is sound only on the very same files, in the same device slots,
 * with the same boot data (the image's Env, WorkingDir, User; the disks'
 * guest paths).  All of that is part of the snapshot's configuration text,
 * whose digest the snapshot's id covers and a restore compares.
 *
 * A file's identity is its stat (device, inode, size, mtime, ctime in ns),
 * never its bytes: a root disk can be hundreds of MB, and the OCI store
 * never rewrites one in place (it is named by its manifest's digest and
 * built into a temporary file renamed over it), so a rebuild is a new
 * inode, and a write through the file system moves the ctime.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "sandbox/sandbox_int.h"
#include "util/term.h"
#include "util/util.h"

#define ID_HEX 16     /* digits of an identity shown in the text */
#define REF_SHOWN 100 /* a reference longer than this is cut (display only) */

unsigned vb_sandbox_snap_slots(const struct vb_sandbox_config *cfg)
{
	size_t disks = (cfg->rootfs != NULL) + cfg->n_disk_mounts;
	return disks >= VB_SNAP_MOUNT_SLOTS ? 0 : VB_SNAP_MOUNT_SLOTS - (unsigned)disks;
}

int vb_sandbox_snap_mounts_check(const struct vb_sandbox_config *cfg, vb_error *err)
{
	unsigned n = vb_sandbox_snap_slots(cfg);
	if (cfg->n_mounts <= n)
		return 0;
	return vb_error_set(err, VB_E_USAGE, "at most %u mounts on a VM restored from a snapshot%s",
			    n, n < VB_SNAP_MOUNT_SLOTS
				       ? " with an image root or disks (each takes a mount's device)"
				       : "");
}

static int add(EVP_MD_CTX *md, const char *s)
{
	/* each field with its NUL: "a","bc" is not "ab","c" */
	return EVP_DigestUpdate(md, s ? s : "", strlen(s ? s : "") + 1) == 1 ? 0 : -1;
}

static int add_file(EVP_MD_CTX *md, const char *what, const char *path, vb_error *err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return vb_error_errno(err, errno, "%s '%s'", what, path);
	char s[200];
	snprintf(s, sizeof(s), "%llu %llu %llu %lld.%09ld %lld.%09ld",
		 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
		 (unsigned long long)st.st_size, (long long)st.st_mtim.tv_sec,
		 st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
	if (add(md, path) < 0 || add(md, s) < 0)
		return vb_error_set(err, VB_E_RUNTIME, "sha256 failed");
	return 0;
}

static void finish(EVP_MD_CTX *md, char out[ID_HEX + 1])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	EVP_DigestFinal_ex(md, d, &n);
	for (unsigned i = 0; i < ID_HEX / 2 && i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The root's identity: its file, and the boot data the agent read from it. */
static int root_id(const struct vb_sandbox_config *cfg, char out[ID_HEX + 1], vb_error *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		return vb_error_set(err, VB_E_RUNTIME, "sha256 failed");
	}
	int rc = add_file(md, "root image", cfg->rootfs, err);
	for (size_t i = 0; rc == 0 && i < cfg->n_root_env; i++)
		rc = add(md, cfg->root_env[i]);
	if (rc == 0)
		rc = add(md, "--") < 0 || add(md, cfg->root_workdir) < 0 || add(md, cfg->root_user) < 0
			     ? vb_error_set(err, VB_E_RUNTIME, "sha256 failed")
			     : 0;
	if (rc == 0)
		finish(md, out);
	EVP_MD_CTX_free(md);
	return rc;
}

static int disks_id(const struct vb_sandbox_config *cfg, char out[ID_HEX + 1], vb_error *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		return vb_error_set(err, VB_E_RUNTIME, "sha256 failed");
	}
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < cfg->n_disk_mounts; i++)
		rc = add(md, cfg->disk_mounts[i].path) < 0
			     ? vb_error_set(err, VB_E_RUNTIME, "sha256 failed")
			     : add_file(md, "disk image", cfg->disk_mounts[i].image, err);
	if (rc == 0)
		finish(md, out);
	EVP_MD_CTX_free(md);
	return rc;
}

/* (ref) as one word of the text: printable, no blanks, cut if long.  It
 * only names the image for people; the identity is root=. */
static void shown_ref(const struct vb_sandbox_config *cfg, char *out, size_t len)
{
	const char *r = cfg->root_ref;
	if (!r || !r[0]) {
		const char *slash = strrchr(cfg->rootfs, '/');
		r = slash ? slash + 1 : cfg->rootfs;
	}
	size_t n = 0;
	for (; *r && n + 1 < len && n < REF_SHOWN; r++)
		out[n++] = (*r > ' ' && *r < 0x7f) ? *r : '_';
	out[n] = '\0';
	if (!n)
		snprintf(out, len, "-");
}

int vb_sandbox_snap_devices(const struct vb_sandbox_config *cfg, char *buf, size_t len,
			    vb_error *err)
{
	size_t disks = (cfg->rootfs != NULL) + cfg->n_disk_mounts;
	int n;
	if (!disks) {
		/* as before disks existed: the same warm names and snapshots */
		n = snprintf(buf, len, "devices=ctl,rng,net,9p*%u", VB_SNAP_MOUNT_SLOTS);
	} else {
		if (disks > VB_SNAP_MOUNT_SLOTS)
			return vb_error_set(err, VB_E_USAGE, "at most %u disks on a VM to be "
				     "snapshotted", VB_SNAP_MOUNT_SLOTS);
		char rid[ID_HEX + 1] = "", did[ID_HEX + 1] = "", ref[REF_SHOWN + 1] = "";
		if ((cfg->rootfs && root_id(cfg, rid, err) < 0) ||
		    (cfg->n_disk_mounts && disks_id(cfg, did, err) < 0))
			return -1;
		if (cfg->rootfs)
			shown_ref(cfg, ref, sizeof(ref));
		/* the disks come first in QEMU's device order (vmm_qemu.c),
		 * then the 9p devices, tags vbm0.. */
		n = snprintf(buf, len, "devices=ctl,rng,net,blk*%zu,9p*%u%s%s%s%s%s%s", disks,
			     vb_sandbox_snap_slots(cfg), cfg->rootfs ? " root=" : "", rid,
			     cfg->rootfs ? " image=" : "", ref, cfg->n_disk_mounts ? " disks=" : "",
			     did);
		if (n >= 0 && (size_t)n < len && cfg->n_disk_mounts)
			n += snprintf(buf + n, len - (size_t)n, ":%zu", cfg->n_disk_mounts);
	}
	if (n < 0 || (size_t)n >= len)
		return vb_error_set(err, VB_E_RUNTIME, "snapshot configuration too long");
	return 0;
}

/* The value of " key=" in (text), into (out) ("" when absent). */
static void field(const char *text, const char *key, char *out, size_t len)
{
	out[0] = '\0';
	char pat[24];
	snprintf(pat, sizeof(pat), " %s=", key);
	const char *p = strstr(text, pat);
	if (!p)
		return;
	p += strlen(pat);
	size_t n = strcspn(p, " ");
	snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), p);
}

int vb_sandbox_snap_image_check(const char *id, const char *then, const char *now,
				char *ref, size_t ref_len, vb_error *err)
{
	char r0[ID_HEX + 8], r1[ID_HEX + 8], i0[REF_SHOWN + 8], i1[REF_SHOWN + 8];
	char d0[ID_HEX + 16], d1[ID_HEX + 16], s0[80], s1[80], t0[40], t1[40];
	field(then, "root", r0, sizeof(r0));
	field(now, "root", r1, sizeof(r1));
	field(then, "image", i0, sizeof(i0));
	field(now, "image", i1, sizeof(i1));
	field(then, "disks", d0, sizeof(d0));
	field(now, "disks", d1, sizeof(d1));
	/* the image names reach a terminal: already printable words, but
	 * they come from a file the user may have edited */
	vb_term_copy(s0, sizeof(s0), i0, 0);
	vb_term_copy(s1, sizeof(s1), i1, 0);
	vb_term_copy(t0, sizeof(t0), d0[0] ? d0 : "none", 0);
	vb_term_copy(t1, sizeof(t1), d1[0] ? d1 : "none", 0);
	snprintf(ref, ref_len, "%s", i1);
	if (!r0[0] && r1[0])
		return vb_error_set(err, VB_E_USAGE,
				    "snapshot %.12s was taken without an image root, this VM has "
				    "image %s: boot it cold, or take a snapshot with that image",
				    id, s1);
	if (r0[0] && !r1[0])
		return vb_error_set(err, VB_E_USAGE,
				    "snapshot %.12s was taken on image %s: restore it with that "
				    "image (--image or sandbox.image)",
				    id, s0);
	if (strcmp(r0, r1)) {
		if (!strcmp(i0, i1))
			return vb_error_set(err, VB_E_USAGE,
					    "snapshot %.12s was taken on another root disk of image "
					    "%s (the image was pulled again, or its disk rebuilt "
					    "or changed since): take a new one",
					    id, s0);
		return vb_error_set(err, VB_E_USAGE,
				    "snapshot %.12s was taken on image %s, not %s: restore it "
				    "with that image, or take a new one",
				    id, s0, s1);
	}
	if (strcmp(d0, d1))
		return vb_error_set(err, VB_E_USAGE,
				    "snapshot %.12s was taken with other read-only disks (%s; "
				    "now %s): the very same disk files are needed",
				    id, t0, t1);
	/* the same root file under another name (a tag and its digest): the
	 * snapshot's name for it, so that the configurations compare equal */
	snprintf(ref, ref_len, "%s", i0);
	return 0;
}
