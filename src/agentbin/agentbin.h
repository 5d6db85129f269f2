/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Real agent binaries (claude-code, codex) for the guest: fetched once from
 * the npm registry at an exact pinned version, the tarball checked against
 * its published sha512 integrity, cached content-addressed under
 * $XDG_CACHE_HOME/voidbox/agents/, and attached read-only to the VMs that
 * need them (docs/agents.md, "Agent binaries").
 *
 * Cache layout (all below agents/):
 *   tarballs/sha512-HEX.tgz   the verified npm tarball, named by its hash
 *   trees/sha512-HEX/         its extracted "package/" directory plus bin/
 *                             (links to the program), made atomically
 *   refs/NAME@VERSION         the integrity of a version not pinned here
 *   support-HASH/             what the guest needs beside the binaries:
 *                             the musl loader and a static bash
 */
#ifndef VB_AGENTBIN_H
#define VB_AGENTBIN_H

#include <stdio.h>

#include "image/image.h"
#include "voidbox/error.h"

enum vb_agentbin_kind {
	VB_AGENTBIN_CLAUDE_CODE = 0,
	VB_AGENTBIN_CODEX,
	VB_AGENTBIN_N,
};

/* Fixed guest paths.  The agent's tree is mounted at
 * VB_AGENTBIN_GUEST_ROOT/<kind name>; the support directory at
 * VB_AGENTBIN_GUEST_SUPPORT, which the initramfs's /lib/ld-musl-x86_64.so.1
 * and /bin/bash symlinks point into. */
#define VB_AGENTBIN_GUEST_ROOT "/opt/voidbox/agents"
#define VB_AGENTBIN_GUEST_SUPPORT VB_IMAGE_AGENT_SUPPORT

/* "claude-code" / "codex" to (out); -1 for anything else. */
int vb_agentbin_parse(const char *name, enum vb_agentbin_kind *out);
const char *vb_agentbin_name(enum vb_agentbin_kind k);
/* The program's name in the guest's PATH: "claude", "codex". */
const char *vb_agentbin_program(enum vb_agentbin_kind k);

/* What one kind resolves to on this host (owned strings, free with
 * vb_agentbin_info_free). */
struct vb_agentbin_info {
	const char *kind_name;
	char *package;   /* npm package name */
	char *version;   /* exact version: the pinned one or its override */
	int pinned;      /* 1: version and integrity are compiled in */
	char *integrity; /* "sha512-BASE64", or NULL when not known yet */
	char *tree;      /* host directory to mount, NULL unless cached */
	char *tarball;   /* cached tarball path, NULL unless there */
};

/* Resolve (k) without touching the network: version (the pinned one, or
 * $VOIDBOX_CLAUDE_CODE_VERSION / $VOIDBOX_CODEX_VERSION), integrity (pinned
 * or from an earlier pull) and what is cached.  Errors: out of memory, no
 * cache directory. */
int vb_agentbin_info(enum vb_agentbin_kind k, struct vb_agentbin_info *out, vb_error *err);
void vb_agentbin_info_free(struct vb_agentbin_info *i);

/* Flags of vb_agentbin_pull. */
#define VB_AGENTBIN_VERIFY 1u /* re-check a cached tarball's sha512 */

/*
 * Make (k) ready in the cache: when its tree is there nothing is fetched
 * (with VB_AGENTBIN_VERIFY the cached tarball is hashed again first, and
 * a corrupt one is fetched again).  Otherwise the version's metadata comes
 * from the registry ($VOIDBOX_NPM_REGISTRY, else npm's own registry
 * setting, else the public one), its dist.integrity must equal the pinned
 * one, the tarball is downloaded with libcurl (progress lines on
 * (progress), may be NULL), checked, and extracted with path checks.
 * (*tree) (may be NULL) receives the tree's host path.
 * Errors: VB_E_RUNTIME with one message naming the package, the URL and
 * what to do.
 */
int vb_agentbin_pull(enum vb_agentbin_kind k, unsigned flags, FILE *progress, char **tree,
		     vb_error *err);

/*
 * The support directory for agent VMs (the musl loader as
 * ld-musl-x86_64.so.1 and a static bash as bash, from the host's Debian
 * packages musl and bash-static, or $VOIDBOX_MUSL_LOADER and
 * $VOIDBOX_BASH_STATIC), copied into the cache on first use.  Returns the
 * host path (caller frees) or NULL with (err) naming the package to install.
 */
char *vb_agentbin_support(vb_error *err);

/* Without creating anything: NULL when the host has the support files, else
 * the Debian package of the first one missing ("musl", "bash-static"). */
const char *vb_agentbin_support_missing(void);

/* What a VM needs for agent (k): two read-only mounts and the environment.
 * All strings owned; free with vb_agentbin_attach_free. */
struct vb_agentbin_attach {
	char *tree_host, *tree_guest;       /* the agent's tree */
	char *support_host;                 /* at VB_AGENTBIN_GUEST_SUPPORT */
	char *bin_guest;                    /* "<tree_guest>/bin": the program */
	char *path_env;                     /* "PATH=<bin_guest>:<guest default>" */
};

/* The guest agent's own default PATH, which path_env extends. */
#define VB_AGENTBIN_GUEST_PATH "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"

/* Pull (k) if it is not cached (progress as in vb_agentbin_pull), then fill
 * (out). */
int vb_agentbin_attach(enum vb_agentbin_kind k, FILE *progress, struct vb_agentbin_attach *out,
		       vb_error *err);
void vb_agentbin_attach_free(struct vb_agentbin_attach *a);

/* ---- internals shared by the module's files (and unit tests) ----------- */

/* Decode "sha512-BASE64" into (out); -1 if malformed. */
int vb_agentbin_parse_integrity(const char *s, unsigned char out[64]);
/* Extract the gzip'd tar (tgz) into the new directory (dest): only regular
 * files and directories below "package/" (whose prefix is dropped); an
 * absolute path, a ".." component, a link or a device is refused. */
int vb_agentbin_extract(const char *tgz, const char *dest, vb_error *err);

#endif
