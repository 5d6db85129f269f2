/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCI images: references, manifests, a registry client (the distribution
 * spec's pull side) and a content-addressed store under the cache
 * directory (docs/oci.md).  The public part (vb_oci_pull and the image it
 * fills) is the seam the rest of VoidBox uses; the rest is for src/oci and
 * its tests.
 */
#ifndef VB_OCI_H
#define VB_OCI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "voidbox/error.h"

struct vb_oci_layer {
	char digest[72];  /* "sha256:<64 hex>" of the blob as stored (compressed) */
	char *media_type; /* as the manifest says (OCI or Docker layer types) */
	uint64_t size;
	char *path;       /* the verified blob file in the store */
};

struct vb_oci_image {
	char *reference;          /* normalized: "registry/repo:tag" or "registry/repo@sha256:..." */
	char manifest_digest[72]; /* digest of the platform manifest */
	char *artifact_type;      /* manifest artifactType or config mediaType; NULL if plain image config */
	struct vb_oci_layer *layers;
	size_t n_layers;          /* in application order */
	char *config_path;        /* the config blob in the store */
	/* from the image config's "config" (all may be NULL / 0) */
	char **env;
	size_t n_env;             /* "K=V" */
	char **entrypoint;
	size_t n_entrypoint;
	char **cmd;
	size_t n_cmd;
	char *working_dir, *user;
};

struct vb_oci_pull_opts {
	FILE *progress;  /* NULL = quiet; bars when isatty(fileno(progress)), plain lines otherwise */
	int cached_only; /* 1 = never touch the network: fail if the reference is not in the store */
	/* insecure registries come from $VOIDBOX_INSECURE_REGISTRIES (comma list of host[:port]);
	 * loopback registries may always use plain HTTP */
};

/* What vb_oci_pull (and the registry calls) return, with (err) set, when
 * the image does not exist: the registry answered 404 for it or one of its
 * blobs, or (cached_only) it is not in the store.  Other failures are -1. */
#define VB_OCI_ENOENT (-2)

/* Pull (or find in the store) (ref) for linux/amd64.  Fills *out (free with
 * vb_oci_image_free).  A tag is resolved again on every call unless
 * (o->cached_only); a digest reference already in the store is not.
 * Returns 0, VB_OCI_ENOENT or -1; (err)'s kind is VB_E_USAGE for a
 * malformed reference, else VB_E_RUNTIME. */
int vb_oci_pull(const char *ref, const struct vb_oci_pull_opts *o, struct vb_oci_image **out,
		vb_error *err);
void vb_oci_image_free(struct vb_oci_image *img);
/* ${XDG_CACHE_HOME:-~/.cache}/voidbox/oci  (blobs/sha256/<hex>, refs index, rootfs/ ...) */
char *vb_oci_dir(vb_error *err);

/* ---- references (ref.c) --------------------------------------------------- */

#define VB_OCI_DIGEST_LEN 71 /* "sha256:" + 64 hex */

struct vb_oci_ref {
	char *registry; /* "docker.io", "ghcr.io", "127.0.0.1:5000" */
	char *repo;     /* "library/python" */
	char *tag;      /* NULL when only a digest was given */
	char digest[72]; /* "" or "sha256:<hex>" */
};

/* Parse and normalize (s) as Docker does: "python:3.12" is
 * docker.io/library/python:3.12, the first component is a registry when it
 * has a '.' or ':' or is "localhost", no tag and no digest means ":latest".
 * A bad reference is a VB_E_USAGE error saying what is wrong. */
int vb_oci_ref_parse(const char *s, struct vb_oci_ref *r, vb_error *err);
void vb_oci_ref_clear(struct vb_oci_ref *r);
/* "registry/repo:tag", "registry/repo@sha256:..." or both; caller frees. */
char *vb_oci_ref_string(const struct vb_oci_ref *r);
/* The host to talk to: docker.io is served by registry-1.docker.io. */
const char *vb_oci_ref_api_host(const struct vb_oci_ref *r);
/* 1 if (s) is "sha256:" followed by exactly 64 lowercase hex digits. */
int vb_oci_digest_valid(const char *s);
/* 1 if (host) ("name[:port]") is loopback: localhost, 127.0.0.0/8, [::1]. */
int vb_oci_host_loopback(const char *host);

/* ---- manifests, indexes, configs (manifest.c) ---------------------------- */

#define VB_OCI_MAX_MANIFEST (4u << 20)
#define VB_OCI_MAX_CONFIG (8u << 20)
#define VB_OCI_MAX_LAYERS 256u
#define VB_OCI_MAX_INDEX 1024u

#define VB_OCI_MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define VB_OCI_MT_INDEX "application/vnd.oci.image.index.v1+json"
#define VB_OCI_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define VB_OCI_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define VB_OCI_MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define VB_OCI_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

struct vb_oci_desc {
	char digest[72];
	char *media_type;
	uint64_t size;
	/* index entries only */
	char *os, *arch, *variant;
	int attestation; /* a BuildKit attestation entry (never an image) */
};

struct vb_oci_manifest {
	int is_index;
	char *media_type;    /* as the document (or, failing that, Content-Type) says */
	char *artifact_type; /* manifest artifactType, or NULL */
	struct vb_oci_desc config;
	struct vb_oci_desc *layers; /* manifests[] of an index */
	size_t n_layers;
};

/* Parse a manifest or an index of (len) bytes.  (content_type) (may be
 * NULL) is the registry's Content-Type, used when the document has no
 * mediaType.  Every descriptor is checked: digest syntax, a size, media
 * types that are strings; counts bounded by VB_OCI_MAX_LAYERS/INDEX. */
int vb_oci_manifest_parse(const char *buf, size_t len, const char *content_type,
			  struct vb_oci_manifest *m, vb_error *err);
void vb_oci_manifest_clear(struct vb_oci_manifest *m);
/* The entry of index (m) for (os)/(arch) (attestations skipped), or -1
 * with an error listing the platforms there are. */
int vb_oci_index_select(const struct vb_oci_manifest *m, const char *os, const char *arch,
			vb_error *err);
/* The image config's Env, Entrypoint, Cmd, WorkingDir and User into (img)
 * (which owns them after). */
int vb_oci_config_parse(const char *buf, size_t len, struct vb_oci_image *img, vb_error *err);

/* ---- the registry (registry.c) ------------------------------------------- */

struct vb_oci_reg;

/* A session with (r)'s registry: base URL (https unless loopback or listed
 * in $VOIDBOX_INSECURE_REGISTRIES), credentials from the docker config
 * ($DOCKER_CONFIG/config.json or ~/.docker/config.json, `auths`), the /v2/
 * challenge answered (a bearer token fetched for repository:REPO:pull).
 * (r) must outlive the session.  Thread-safe after creation. */
struct vb_oci_reg *vb_oci_reg_open(const struct vb_oci_ref *r, vb_error *err);
void vb_oci_reg_close(struct vb_oci_reg *g);
/* GET the manifest (what) (a tag or digest): body (caller frees), its
 * Content-Type (caller frees) and sha256 digest of the bytes.  When (what)
 * is a digest the body must match it. */
int vb_oci_reg_manifest(struct vb_oci_reg *g, const char *what, char **body, size_t *len,
			char **content_type, char digest[72], vb_error *err);

/* Called as bytes arrive (from a download thread). */
typedef void (*vb_oci_progress_fn)(void *arg, uint64_t got);
/* GET blob (digest) into the store: the bytes go to (dir)/<hex>.partial
 * (resumed with Range from what is there), hashed as they arrive, at most
 * (size) bytes accepted; renamed to (dir)/<hex> once the digest matches.
 * A mismatch deletes the partial. */
int vb_oci_reg_blob(struct vb_oci_reg *g, const char *digest, uint64_t size, const char *dir,
		    vb_oci_progress_fn fn, void *arg, vb_error *err);

/* ---- the store (store.c) --------------------------------------------------- */

struct vb_oci_entry {
	char *reference;
	char digest[72];   /* what the reference resolved to (may be an index) */
	char manifest[72]; /* the linux/amd64 manifest */
	uint64_t size;     /* manifest + config + layers, as stored */
	int64_t last_used; /* seconds since the epoch */
};

/* The index of references, read under a lock (entries caller-freed with
 * vb_oci_entries_free). */
int vb_oci_store_list(const char *oci, struct vb_oci_entry **out, size_t *n, vb_error *err);
void vb_oci_entries_free(struct vb_oci_entry *e, size_t n);
/* Record (e) (replacing an entry of the same reference). */
int vb_oci_store_put(const char *oci, const struct vb_oci_entry *e, vb_error *err);
/* Find (reference); 0 found, 1 not, -1 error.  (touch) updates last used. */
int vb_oci_store_get(const char *oci, const char *reference, int touch, struct vb_oci_entry *out,
		     vb_error *err);
/* Remove (reference) and the blobs and root disks only it used.  1 if it
 * was not there. (*freed) gets the bytes freed. */
int vb_oci_store_remove(const char *oci, const char *reference, uint64_t *freed, vb_error *err);
/* Delete blobs no reference uses (and partials untouched for an hour),
 * root disks of manifests no reference uses, then least recently used
 * references until the store is at most (max_bytes) (0: no bound).  (keep)
 * (may be NULL) is never evicted.  Without (wait), returns 1 at once when
 * a pull is under way (it holds the GC lock shared).  (*freed) gets the
 * bytes freed. */
int vb_oci_store_gc(const char *oci, uint64_t max_bytes, const char *keep, int wait,
		    uint64_t *freed, vb_error *err);
/* The bound of the automatic GC after a pull: $VOIDBOX_OCI_MAX_BYTES
 * (bytes, or with K/M/G suffix), default 20 GiB; 0 = unbounded. */
uint64_t vb_oci_store_bound(void);
/* A lock held while a pull writes blobs (shared) or a GC deletes them
 * (exclusive); returns an fd to close, or -1. */
int vb_oci_store_lock(const char *oci, int exclusive, vb_error *err);
/* (oci)/blobs/sha256/<hex of digest>; caller frees. */
char *vb_oci_blob_path(const char *oci, const char *digest);

#endif
