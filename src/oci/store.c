/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The content-addressed store (docs/oci.md, "The store"):
 *
 *   <oci>/blobs/sha256/<hex>           verified blobs, read-only
 *   <oci>/blobs/sha256/<hex>.partial   downloads under way or interrupted
 *   <oci>/refs.json                    reference -> digests, size, last used
 *   <oci>/rootfs/<manifest-hex>.*      root disks derived from a manifest
 *   <oci>/guest/<manifest-hex>/        a guest image's kernel + initramfs
 *
 * Two locks keep concurrent voidbox processes apart: refs.lock around each
 * read-modify-write of refs.json, and gc.lock, held shared by every pull
 * for its whole length and exclusively by whatever deletes blobs (rmi, the
 * GC), so a blob just downloaded is never collected before its reference
 * is recorded.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "oci/oci.h"
#include "util/util.h"

#define MAX_INDEX (16u << 20)
#define MAX_ENTRIES 10000
#define PARTIAL_KEEP_S 3600 /* younger partials may be resumed: the GC leaves them */
#define DEFAULT_BOUND (20ull << 30)

char *vb_oci_dir(vb_error *err)
{
	_cleanup_free_ char *cache = vb_cache_dir(err);
	if (!cache)
		return NULL;
	char *oci = vb_strfmt("%s/oci", cache);
	_cleanup_free_ char *blobs = oci ? vb_strfmt("%s/blobs/sha256", oci) : NULL;
	_cleanup_free_ char *rootfs = oci ? vb_strfmt("%s/rootfs", oci) : NULL;
	if (!blobs || !rootfs) {
		free(oci);
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	if (vb_mkdir_p(blobs, 0755, err) < 0 || vb_mkdir_p(rootfs, 0755, err) < 0) {
		free(oci);
		return NULL;
	}
	return oci;
}

char *vb_oci_blob_path(const char *oci, const char *digest)
{
	if (!vb_oci_digest_valid(digest))
		return NULL;
	return vb_strfmt("%s/blobs/sha256/%s", oci, digest + 7);
}

uint64_t vb_oci_store_bound(void)
{
	return vb_env_bytes("VOIDBOX_OCI_MAX_BYTES", DEFAULT_BOUND);
}

static int lock_file(const char *oci, const char *name, int op, vb_error *err)
{
	_cleanup_free_ char *p = vb_strfmt("%s/%s", oci, name);
	if (!p)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return vb_error_errno(err, errno, "cannot open %s", p);
	while (flock(fd, op) < 0) {
		if (errno == EINTR)
			continue;
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return -2; /* (op) had LOCK_NB and someone holds it */
		return vb_error_errno(err, e, "cannot lock %s", p);
	}
	return fd;
}

int vb_oci_store_lock(const char *oci, int exclusive, vb_error *err)
{
	return lock_file(oci, "gc.lock", exclusive ? LOCK_EX : LOCK_SH, err);
}

/* ---- the index ----------------------------------------------------------- */

void vb_oci_entries_free(struct vb_oci_entry *e, size_t n)
{
	for (size_t i = 0; e && i < n; i++)
		free(e[i].reference);
	free(e);
}

/* refs.json into e[*n]; a missing file is an empty store.  Entries that do
 * not parse are dropped (the file is ours, but a damaged one must not stop
 * every pull). */
static int read_index(const char *oci, struct vb_oci_entry **out, size_t *n, vb_error *err)
{
	*out = NULL;
	*n = 0;
	_cleanup_free_ char *p = vb_strfmt("%s/refs.json", oci);
	if (!p)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	size_t len = 0;
	vb_error e2 = { 0 };
	_cleanup_free_ char *text = vb_read_file(p, MAX_INDEX, &len, &e2);
	if (!text) {
		if (access(p, F_OK) < 0 && errno == ENOENT)
			return 0;
		*err = e2;
		return -1;
	}
	json_t *doc = json_loadb(text, len, 0, NULL);
	size_t k = json_array_size(doc);
	if (k > MAX_ENTRIES)
		k = MAX_ENTRIES;
	struct vb_oci_entry *e = calloc(k + 1, sizeof(*e));
	if (!e) {
		json_decref(doc);
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	size_t m = 0;
	for (size_t i = 0; i < k; i++) {
		const char *ref = NULL, *dg = NULL, *mf = NULL;
		json_int_t size = 0, used = 0;
		if (json_unpack(json_array_get(doc, i), "{s:s, s:s, s:s, s:I, s:I}", "reference", &ref,
				"digest", &dg, "manifest", &mf, "size", &size, "last_used", &used) < 0 ||
		    !vb_oci_digest_valid(dg) || !vb_oci_digest_valid(mf) || size < 0)
			continue;
		if (!(e[m].reference = strdup(ref)))
			break;
		memcpy(e[m].digest, dg, VB_OCI_DIGEST_LEN + 1);
		memcpy(e[m].manifest, mf, VB_OCI_DIGEST_LEN + 1);
		e[m].size = (uint64_t)size;
		e[m].last_used = used;
		m++;
	}
	json_decref(doc);
	*out = e;
	*n = m;
	return 0;
}

static int write_index(const char *oci, const struct vb_oci_entry *e, size_t n, vb_error *err)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:I}", "reference",
						     e[i].reference, "digest", e[i].digest, "manifest",
						     e[i].manifest, "size", (json_int_t)e[i].size,
						     "last_used", (json_int_t)e[i].last_used));
	_cleanup_free_ char *text = arr ? json_dumps(arr, JSON_INDENT(1)) : NULL;
	json_decref(arr);
	_cleanup_free_ char *p = vb_strfmt("%s/refs.json", oci);
	_cleanup_free_ char *tmp = vb_strfmt("%s/refs.json.tmp", oci);
	if (!text || !p || !tmp)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 || vb_write_full(fd, text, strlen(text)) < 0 || vb_write_full(fd, "\n", 1) < 0 ||
	    fsync(fd) < 0 || rename(tmp, p) < 0) {
		int e2 = errno;
		unlink(tmp);
		return vb_error_errno(err, e2, "cannot write %s", p);
	}
	return 0;
}

int vb_oci_store_list(const char *oci, struct vb_oci_entry **out, size_t *n, vb_error *err)
{
	_cleanup_close_ int fd = lock_file(oci, "refs.lock", LOCK_SH, err);
	if (fd < 0)
		return -1;
	return read_index(oci, out, n, err);
}

static ssize_t find(const struct vb_oci_entry *e, size_t n, const char *ref)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(e[i].reference, ref))
			return (ssize_t)i;
	return -1;
}

int vb_oci_store_put(const char *oci, const struct vb_oci_entry *ne, vb_error *err)
{
	_cleanup_close_ int fd = lock_file(oci, "refs.lock", LOCK_EX, err);
	if (fd < 0)
		return -1;
	struct vb_oci_entry *e;
	size_t n;
	if (read_index(oci, &e, &n, err) < 0)
		return -1;
	ssize_t i = find(e, n, ne->reference);
	if (i < 0) {
		struct vb_oci_entry *g = realloc(e, (n + 1) * sizeof(*e));
		if (!g) {
			vb_oci_entries_free(e, n);
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		}
		e = g;
		i = (ssize_t)n++;
		e[i].reference = NULL;
	}
	free(e[i].reference);
	e[i] = *ne;
	e[i].reference = strdup(ne->reference);
	int rc = e[i].reference ? write_index(oci, e, n, err)
				: vb_error_set(err, VB_E_RUNTIME, "out of memory");
	vb_oci_entries_free(e, n);
	return rc;
}

int vb_oci_store_get(const char *oci, const char *reference, int touch, struct vb_oci_entry *out,
		     vb_error *err)
{
	_cleanup_close_ int fd = lock_file(oci, "refs.lock", touch ? LOCK_EX : LOCK_SH, err);
	if (fd < 0)
		return -1;
	struct vb_oci_entry *e;
	size_t n;
	if (read_index(oci, &e, &n, err) < 0)
		return -1;
	ssize_t i = find(e, n, reference);
	int rc = 1;
	if (i >= 0) {
		rc = 0;
		if (touch) {
			e[i].last_used = time(NULL);
			rc = write_index(oci, e, n, err);
		}
		*out = e[i];
		out->reference = rc == 0 ? strdup(e[i].reference) : NULL;
		if (rc == 0 && !out->reference)
			rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	vb_oci_entries_free(e, n);
	return rc;
}

/* ---- collection ---------------------------------------------------------- */

struct live {
	char (*d)[72];
	size_t n, cap;
	char (*m)[72]; /* manifests (their root disks live) */
	size_t nm, capm;
};

static int add(char (**v)[72], size_t *n, size_t *cap, const char *dg)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		char (*g)[72] = realloc(*v, c * sizeof(**v));
		if (!g)
			return -1;
		*v = g;
		*cap = c;
	}
	memcpy((*v)[(*n)++], dg, 72);
	return 0;
}

static int has(char (*v)[72], size_t n, const char *hex)
{
	for (size_t i = 0; i < n; i++)
		if (!strncmp(v[i] + 7, hex, 64))
			return 1;
	return 0;
}

/* The blobs an entry uses: its digest, its manifest, and the manifest's
 * config and layers. */
static int mark(const char *oci, const struct vb_oci_entry *e, struct live *l)
{
	if (add(&l->d, &l->n, &l->cap, e->digest) < 0 || add(&l->d, &l->n, &l->cap, e->manifest) < 0 ||
	    add(&l->m, &l->nm, &l->capm, e->manifest) < 0)
		return -1;
	_cleanup_free_ char *p = vb_oci_blob_path(oci, e->manifest);
	size_t len = 0;
	vb_error ignore = { 0 };
	_cleanup_free_ char *text = p ? vb_read_file(p, VB_OCI_MAX_MANIFEST, &len, &ignore) : NULL;
	struct vb_oci_manifest m;
	if (!text || vb_oci_manifest_parse(text, len, NULL, &m, &ignore) < 0)
		return 0;
	int rc = add(&l->d, &l->n, &l->cap, m.config.digest);
	for (size_t i = 0; rc == 0 && i < m.n_layers; i++)
		rc = add(&l->d, &l->n, &l->cap, m.layers[i].digest);
	vb_oci_manifest_clear(&m);
	return rc;
}

/* The bytes of the regular files directly in (name) under (dfd): a guest
 * image's directory holds its kernel, its initramfs and a marker. */
static uint64_t dir_bytes(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	uint64_t n = 0;
	struct stat st;
	for (struct dirent *de; (de = readdir(d));)
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			n += (uint64_t)st.st_size;
	closedir(d);
	return n;
}

static uint64_t sweep(const char *dir, struct live *l, int by_manifest, int partials,
		      uint64_t *total)
{
	uint64_t freed = 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	time_t now = time(NULL);
	for (struct dirent *de; (de = readdir(d));) {
		const char *name = de->d_name;
		if (name[0] == '.' || strlen(name) < 64)
			continue;
		struct stat st;
		if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		int partial = strlen(name) == 72 && !strcmp(name + 64, ".partial");
		int keep = by_manifest ? has(l->m, l->nm, name)
			   : partial   ? !partials || now - st.st_mtime < PARTIAL_KEEP_S
				       : strlen(name) == 64 && has(l->d, l->n, name);
		uint64_t size = S_ISDIR(st.st_mode) ? dir_bytes(dirfd(d), name) : (uint64_t)st.st_size;
		if (keep) {
			*total += size;
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			_cleanup_free_ char *p = vb_strfmt("%s/%s", dir, name);
			if (p && vb_rm_rf(p) == 0)
				freed += size;
		} else if (unlinkat(dirfd(d), name, 0) == 0) {
			freed += (uint64_t)st.st_size;
		}
	}
	closedir(d);
	return freed;
}

/* Delete what (e[n]) does not use.  (*total) = what stays. */
static int collect(const char *oci, const struct vb_oci_entry *e, size_t n, int partials,
		   uint64_t *freed, uint64_t *total, vb_error *err)
{
	struct live l = { 0 };
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = mark(oci, &e[i], &l);
	if (rc < 0) {
		free(l.d);
		free(l.m);
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	_cleanup_free_ char *blobs = vb_strfmt("%s/blobs/sha256", oci);
	_cleanup_free_ char *rootfs = vb_strfmt("%s/rootfs", oci);
	*total = 0;
	if (blobs)
		*freed += sweep(blobs, &l, 0, partials, total);
	if (rootfs)
		*freed += sweep(rootfs, &l, 1, partials, total);
	/* guest images: <oci>/guest/<manifest-hex>/, by manifest as root disks */
	_cleanup_free_ char *guest = vb_strfmt("%s/guest", oci);
	if (guest)
		*freed += sweep(guest, &l, 1, partials, total);
	free(l.d);
	free(l.m);
	return 0;
}

static int by_last_used(const void *a, const void *b)
{
	const struct vb_oci_entry *x = a, *y = b;
	return (x->last_used > y->last_used) - (x->last_used < y->last_used);
}

int vb_oci_store_gc(const char *oci, uint64_t max_bytes, const char *keep, int wait,
		    uint64_t *freed, vb_error *err)
{
	*freed = 0;
	_cleanup_close_ int gc = -1;
	if (wait) {
		gc = vb_oci_store_lock(oci, 1, err);
	} else if ((gc = lock_file(oci, "gc.lock", LOCK_EX | LOCK_NB, err)) == -2) {
		return 1;
	}
	if (gc < 0)
		return -1;
	_cleanup_close_ int fd = lock_file(oci, "refs.lock", LOCK_EX, err);
	if (fd < 0)
		return -1;
	struct vb_oci_entry *e;
	size_t n;
	if (read_index(oci, &e, &n, err) < 0)
		return -1;
	uint64_t total = 0;
	int rc = collect(oci, e, n, 1, freed, &total, err);
	if (rc == 0 && max_bytes && total > max_bytes) {
		qsort(e, n, sizeof(*e), by_last_used);
		size_t first = 0;
		while (rc == 0 && total > max_bytes && first < n) {
			if (keep && !strcmp(e[first].reference, keep)) {
				/* the one just pulled stays: move it to the end */
				struct vb_oci_entry t = e[first];
				memmove(&e[first], &e[first + 1], (n - first - 1) * sizeof(*e));
				e[n - 1] = t;
				if (first == n - 1)
					break;
				continue;
			}
			free(e[first].reference);
			first++;
			rc = collect(oci, e + first, n - first, 1, freed, &total, err);
		}
		memmove(e, e + first, (n - first) * sizeof(*e));
		n -= first;
		if (rc == 0)
			rc = write_index(oci, e, n, err);
	}
	vb_oci_entries_free(e, n);
	return rc;
}

int vb_oci_store_remove(const char *oci, const char *reference, uint64_t *freed, vb_error *err)
{
	*freed = 0;
	_cleanup_close_ int gc = vb_oci_store_lock(oci, 1, err);
	if (gc < 0)
		return -1;
	_cleanup_close_ int fd = lock_file(oci, "refs.lock", LOCK_EX, err);
	if (fd < 0)
		return -1;
	struct vb_oci_entry *e;
	size_t n;
	if (read_index(oci, &e, &n, err) < 0)
		return -1;
	ssize_t i = find(e, n, reference);
	if (i < 0) {
		vb_oci_entries_free(e, n);
		return 1;
	}
	free(e[i].reference);
	memmove(&e[i], &e[i + 1], (n - (size_t)i - 1) * sizeof(*e));
	n--;
	int rc = write_index(oci, e, n, err);
	uint64_t total = 0;
	/* partials stay: they may belong to an interrupted pull to resume */
	if (rc == 0)
		rc = collect(oci, e, n, 0, freed, &total, err);
	vb_oci_entries_free(e, n);
	return rc;
}
