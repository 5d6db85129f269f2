/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "snap/snap.h"
#include "util/util.h"

#define MANIFEST_MAX (64u * 1024u)
static const char *const file_names[VB_SNAP_FILES_MAX] = { "state", "ram", "secret", "ram.map" };

static void hex(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
	out[2 * n] = '\0';
}

static void put_le64(EVP_MD_CTX *c, uint64_t v)
{
	unsigned char b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	EVP_DigestUpdate(c, b, 8);
}

#define CHUNK VB_SNAP_CHUNK

int vb_snap_digest(const char *path, struct vb_snap_file *f, vb_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return vb_error_errno(err, errno, "%s", path);
	if (!S_ISREG(st.st_mode))
		return vb_error_set(err, VB_E_RUNTIME, "%s is not a regular file", path);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	_cleanup_free_ unsigned char *buf = malloc(CHUNK);
	if (!c || !buf || !EVP_DigestInit_ex(c, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(c);
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	uint64_t size = (uint64_t)st.st_size, data = 0, next = 0; /* next chunk to look at */
	int rc = 0;
	put_le64(c, size);
	while (next * CHUNK < size) {
		/* only chunks that hold some of the file's data extents are
		 * read: a hole reads as zeros, so the layout of holes (a copy
		 * may have more or fewer) does not change the digest */
		off_t start = lseek(fd, (off_t)(next * CHUNK), SEEK_DATA);
		if (start < 0 && errno == ENXIO)
			break;
		off_t end = start < 0 ? -1 : lseek(fd, start, SEEK_HOLE);
		if (start < 0 || end < 0) {
			rc = vb_error_errno(err, errno, "%s", path);
			break;
		}
		for (uint64_t k = (uint64_t)start / CHUNK; k * CHUNK < (uint64_t)end; k++) {
			size_t want = size - k * CHUNK < CHUNK ? (size_t)(size - k * CHUNK) : CHUNK;
			ssize_t n = pread(fd, buf, want, (off_t)(k * CHUNK));
			if (n != (ssize_t)want) {
				rc = n < 0 ? vb_error_errno(err, errno, "%s", path)
					   : vb_error_set(err, VB_E_RUNTIME, "%s: shorter than it was", path);
				break;
			}
			if (vb_is_zero(buf, want))
				continue;
			put_le64(c, k);
			EVP_DigestUpdate(c, buf, want);
			data += want;
		}
		if (rc < 0)
			break;
		next = ((uint64_t)end + CHUNK - 1) / CHUNK;
	}
	unsigned char md[32];
	unsigned mdlen = 0;
	EVP_DigestFinal_ex(c, md, &mdlen);
	EVP_MD_CTX_free(c);
	if (rc < 0)
		return -1;
	hex(md, 32, f->sha256);
	f->size = size;
	f->data = data;
	return 0;
}

static void sha_text(const char *s, char out[VB_SNAP_HEX])
{
	unsigned char md[32];
	unsigned n = 0;
	EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
	hex(md, 32, out);
}

int vb_snap_sources(const char *kernel, const char *initramfs, const char *config_text,
		    struct vb_snap_source *src, vb_error *err)
{
	memset(src, 0, sizeof(*src));
	if (strlen(config_text) >= sizeof(src->config_text))
		return vb_error_set(err, VB_E_RUNTIME, "snapshot config too long");
	snprintf(src->config_text, sizeof(src->config_text), "%s", config_text);
	sha_text(config_text, src->config);
	if (vb_snap_source_digest(kernel, src->kernel, err) < 0 ||
	    vb_snap_source_digest(initramfs, src->initramfs, err) < 0)
		return -1;
	return 0;
}

char *vb_snap_root(vb_error *err)
{
	_cleanup_free_ char *cache = vb_cache_dir(err);
	char *root = cache ? vb_strfmt("%s/snapshots", cache) : NULL;
	if (cache && !root)
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (root && vb_mkdir_p(root, 0700, err) < 0) {
		free(root);
		return NULL;
	}
	return root;
}

char *vb_snap_staging(vb_error *err)
{
	_cleanup_free_ char *root = vb_snap_root(err);
	char rnd[17];
	if (!root || vb_random_hex(rnd, 8, err) < 0)
		return NULL;
	/* staging directories of creates that died (killed, the machine went
	 * down) hold a RAM file each */
	vb_sweep_dead_owners(root, ".tmp-");
	/* the owner's pid lets a later run tell an abandoned one */
	char *d = vb_strfmt("%s/.tmp-%d-%s", root, (int)getpid(), rnd);
	if (!d || mkdir(d, 0700) < 0) {
		vb_error_errno(err, d ? errno : ENOMEM, "cannot create a snapshot directory");
		free(d);
		return NULL;
	}
	return d;
}

void vb_snap_compute_id(const struct vb_snap *s, char id[VB_SNAP_HEX])
{
	/* what the snapshot is, not when or under which name it was taken */
	char text[1536];
	size_t n = (size_t)snprintf(text, sizeof(text), "voidbox-snapshot-%d\n%s\n%s\n%s\n",
				    s->base[0] ? 2 : 1, s->src.kernel, s->src.initramfs, s->src.config);
	/* a diff is its base and its whole RAM as well as its own files */
	if (s->base[0])
		n += (size_t)snprintf(text + n, sizeof(text) - n, "base %s\nfull %llu %llu %s\n",
				      s->base, (unsigned long long)s->full.size,
				      (unsigned long long)s->full.data, s->full.sha256);
	for (int i = 0; i < s->n_files && n < sizeof(text); i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s %llu %llu %s\n",
				      s->files[i].name, (unsigned long long)s->files[i].size,
				      (unsigned long long)s->files[i].data, s->files[i].sha256);
	sha_text(text, id);
}

static int name_ok(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > VB_SNAP_NAME_MAX || n[0] == '.' || n[0] == '-')
		return 0;
	return strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

static int hex_ok(const char *h, size_t want)
{
	return strlen(h) == want && strspn(h, "0123456789abcdef") == want;
}

char *vb_snap_format(const struct vb_snap *s)
{
	json_t *files = json_array();
	for (int i = 0; i < s->n_files; i++)
		json_array_append_new(files, json_pack("{s:s,s:I,s:I,s:s}", "name", s->files[i].name,
						       "size", (json_int_t)s->files[i].size, "data",
						       (json_int_t)s->files[i].data, "sha256",
						       s->files[i].sha256));
	json_t *j = json_pack("{s:i,s:s,s:s,s:I,s:I,s:{s:s,s:s,s:s,s:s},s:o}", "version",
			      s->base[0] ? 2 : 1, "id",
			      s->id, "name", s->name, "created", (json_int_t)s->created, "save_ms",
			      (json_int_t)s->save_ms, "source", "kernel", s->src.kernel, "initramfs",
			      s->src.initramfs, "config", s->src.config, "config_text",
			      s->src.config_text, "files", files);
	if (j && s->base[0]) {
		json_object_set_new(j, "base", json_string(s->base));
		json_object_set_new(j, "full", json_pack("{s:I,s:I,s:s}", "size",
							 (json_int_t)s->full.size, "data",
							 (json_int_t)s->full.data, "sha256",
							 s->full.sha256));
	}
	char *out = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	json_decref(j);
	return out;
}

static int copy_str(json_t *o, const char *key, char *out, size_t len)
{
	const char *v = json_string_value(json_object_get(o, key));
	if (!v || strlen(v) >= len || strlen(v) != json_string_length(json_object_get(o, key)))
		return -1;
	snprintf(out, len, "%s", v);
	return 0;
}

static int get_u64(json_t *o, const char *key, int64_t *out)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = json_integer_value(v);
	return 0;
}

int vb_snap_parse(const char *text, size_t len, struct vb_snap *out, vb_error *err)
{
	memset(out, 0, sizeof(*out));
	if (len > MANIFEST_MAX)
		return vb_error_set(err, VB_E_RUNTIME, "manifest over %u bytes", MANIFEST_MAX);
	json_error_t je;
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return vb_error_set(err, VB_E_RUNTIME, "manifest is not JSON (line %d)", je.line);
	const char *what = NULL;
	json_t *src = json_object_get(j, "source"), *files = json_object_get(j, "files");
	int64_t version = 0;
	json_t *full = json_object_get(j, "full");
	int64_t fsize = 0, fdata = 0;
	if (!json_is_object(j) || get_u64(j, "version", &version) < 0 || version < 1 || version > 2)
		what = "version";
	/* version 2: a diff, with its base and the digest of its whole RAM */
	else if (version == 2 &&
		 (copy_str(j, "base", out->base, sizeof(out->base)) < 0 || !hex_ok(out->base, 64)))
		what = "base";
	else if (version == 1 && (json_object_get(j, "base") || full))
		what = "base";
	else if (version == 2 &&
		 (!json_is_object(full) || get_u64(full, "size", &fsize) < 0 ||
		  get_u64(full, "data", &fdata) < 0 || fdata > fsize ||
		  copy_str(full, "sha256", out->full.sha256, VB_SNAP_HEX) < 0 ||
		  !hex_ok(out->full.sha256, 64)))
		what = "full";
	else if (copy_str(j, "id", out->id, sizeof(out->id)) < 0 || !hex_ok(out->id, 64))
		what = "id";
	else if (copy_str(j, "name", out->name, sizeof(out->name)) < 0 ||
		 (out->name[0] && !name_ok(out->name)))
		what = "name";
	else if (get_u64(j, "created", &out->created) < 0 || get_u64(j, "save_ms", &out->save_ms) < 0)
		what = "created";
	else if (!json_is_object(src) ||
		 copy_str(src, "kernel", out->src.kernel, VB_SNAP_HEX) < 0 ||
		 copy_str(src, "initramfs", out->src.initramfs, VB_SNAP_HEX) < 0 ||
		 copy_str(src, "config", out->src.config, VB_SNAP_HEX) < 0 ||
		 copy_str(src, "config_text", out->src.config_text, sizeof(out->src.config_text)) < 0 ||
		 !hex_ok(out->src.kernel, 64) || !hex_ok(out->src.initramfs, 64) ||
		 !hex_ok(out->src.config, 64))
		what = "source";
	else if (!json_is_array(files) ||
		 json_array_size(files) != (version == 2 ? VB_SNAP_FILES_MAX : VB_SNAP_FILES))
		what = "files";
	out->n_files = version == 2 ? VB_SNAP_FILES_MAX : VB_SNAP_FILES;
	if (version == 2 && !what) {
		snprintf(out->full.name, sizeof(out->full.name), "ram.full");
		out->full.size = (uint64_t)fsize;
		out->full.data = (uint64_t)fdata;
	}
	for (int i = 0; !what && i < out->n_files; i++) {
		json_t *f = json_array_get(files, (size_t)i);
		struct vb_snap_file *sf = &out->files[i];
		int64_t size, data;
		if (!json_is_object(f) || copy_str(f, "name", sf->name, sizeof(sf->name)) < 0 ||
		    strcmp(sf->name, file_names[i]) || get_u64(f, "size", &size) < 0 ||
		    get_u64(f, "data", &data) < 0 || data > size ||
		    copy_str(f, "sha256", sf->sha256, VB_SNAP_HEX) < 0 || !hex_ok(sf->sha256, 64))
			what = "files";
		else {
			sf->size = (uint64_t)size;
			sf->data = (uint64_t)data;
		}
	}
	json_decref(j);
	/* a diff's ram is its whole RAM's size, and its map a bit a page */
	if (!what && version == 2 &&
	    (out->files[1].size != out->full.size ||
	     out->files[3].size !=
		     (out->full.size / VB_SNAP_PAGE + (out->full.size % VB_SNAP_PAGE != 0) + 7) / 8))
		what = "files";
	if (what)
		return vb_error_set(err, VB_E_RUNTIME, "manifest: bad or missing '%s'", what);
	char id[VB_SNAP_HEX];
	vb_snap_compute_id(out, id);
	if (strcmp(id, out->id))
		return vb_error_set(err, VB_E_RUNTIME, "manifest: its id does not match its contents");
	return 0;
}

static int stamp_of(const struct vb_snap *s, const char *dir, char *out, size_t len);
static void write_stamp(const struct vb_snap *s, const char *dir, const char *before);

static int write_manifest(const char *dir, const struct vb_snap *s, vb_error *err)
{
	_cleanup_free_ char *text = vb_snap_format(s);
	_cleanup_free_ char *path = vb_strfmt("%s/manifest.json", dir);
	if (!text || !path)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || vb_write_full(fd, text, strlen(text)) < 0 || vb_write_full(fd, "\n", 1) < 0 ||
	    fsync(fd) < 0)
		return vb_error_errno(err, errno, "%s", path);
	return 0;
}

static int name_taken(const char *name, vb_error *err)
{
	struct vb_snap *all = NULL;
	size_t n = 0;
	if (vb_snap_list(&all, &n, err) < 0)
		return -1;
	int taken = 0;
	for (size_t i = 0; i < n; i++)
		taken |= strcmp(all[i].name, name) == 0;
	free(all);
	return taken;
}

/* Staging's `ram` is the whole RAM of a VM restored from (base_id): keep
 * only what differs from the base's whole RAM, and the digest of the
 * whole in (out->full). */
static int commit_diff(const char *staging, const char *base_id, struct vb_snap *out,
		       vb_error *err)
{
	struct vb_snap base;
	_cleanup_free_ char *bdir = NULL;
	if (!hex_ok(base_id, 64) || vb_snap_open(base_id, &base, &bdir, err) < 0) {
		vb_error_prefix(err, "the base of the diff");
		return -1;
	}
	if (strcmp(base.src.kernel, out->src.kernel) || strcmp(base.src.initramfs, out->src.initramfs) ||
	    strcmp(base.src.config, out->src.config))
		return vb_error_set(err, VB_E_USAGE,
				    "a diff of %.12s must have its kernel, initramfs and configuration",
				    base.id);
	int depth = 1;
	for (struct vb_snap b = base; b.base[0]; depth++) {
		_cleanup_free_ char *d = NULL;
		if (depth >= VB_SNAP_CHAIN_MAX)
			return vb_error_set(err, VB_E_USAGE,
					    "%.12s is a diff %d deep: a diff of it would be too deep "
					    "(at most %d; take a snapshot with no base)",
					    base.id, depth, VB_SNAP_CHAIN_MAX);
		char ref[VB_SNAP_HEX];
		memcpy(ref, b.base, sizeof(ref));
		if (vb_snap_open(ref, &b, &d, err) < 0)
			return -1;
	}
	_cleanup_free_ char *base_ram = vb_snap_ram(&base, bdir, err);
	_cleanup_free_ char *ram = vb_strfmt("%s/ram", staging);
	_cleanup_free_ char *map = vb_strfmt("%s/ram.map", staging);
	if (!base_ram || !ram || !map)
		return base_ram ? vb_error_set(err, VB_E_RUNTIME, "out of memory") : -1;
	if (vb_snap_digest(ram, &out->full, err) < 0)
		return -1;
	snprintf(out->full.name, sizeof(out->full.name), "ram.full");
	uint64_t changed = 0;
	if (vb_snap_make_diff(ram, base_ram, map, &changed, err) < 0)
		return -1;
	snprintf(out->base, sizeof(out->base), "%s", base.id);
	out->n_files = VB_SNAP_FILES_MAX;
	return 0;
}

int vb_snap_commit(const char *staging, const char *name, const struct vb_snap_source *src,
		   int64_t save_ms, const char *base, struct vb_snap *out, vb_error *err)
{
	memset(out, 0, sizeof(*out));
	if (name && !name_ok(name))
		return vb_error_set(err, VB_E_USAGE,
				    "snapshot name '%s': 1-64 of A-Z a-z 0-9 . _ -, not starting with . or -",
				    name);
	int t = name ? name_taken(name, err) : 0;
	if (t < 0)
		return -1;
	if (t)
		return vb_error_set(err, VB_E_USAGE, "a snapshot named '%s' exists (voidbox snapshot delete %s)",
				    name, name);
	snprintf(out->name, sizeof(out->name), "%s", name ? name : "");
	out->created = (int64_t)time(NULL);
	out->save_ms = save_ms;
	out->src = *src;
	out->n_files = VB_SNAP_FILES;
	if (base && commit_diff(staging, base, out, err) < 0)
		return -1;
	for (int i = 0; i < out->n_files; i++) {
		_cleanup_free_ char *p = vb_strfmt("%s/%s", staging, file_names[i]);
		snprintf(out->files[i].name, sizeof(out->files[i].name), "%s", file_names[i]);
		if (!p)
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		chmod(p, 0400); /* a snapshot is never written again; before the stamp */
	}
	char before[1024];
	int stamped = stamp_of(out, staging, before, sizeof(before)) == 0;
	for (int i = 0; i < out->n_files; i++) {
		_cleanup_free_ char *p = vb_strfmt("%s/%s", staging, file_names[i]);
		if (!p || vb_snap_digest(p, &out->files[i], err) < 0)
			return -1;
	}
	vb_snap_compute_id(out, out->id);
	if (write_manifest(staging, out, err) < 0)
		return -1;
	_cleanup_free_ char *root = vb_snap_root(err);
	_cleanup_free_ char *dst = root ? vb_strfmt("%s/%s", root, out->id) : NULL;
	if (!dst)
		return -1;
	if (rename(staging, dst) < 0) {
		if (errno == ENOTEMPTY || errno == EEXIST)
			return vb_error_set(err, VB_E_USAGE, "the same snapshot exists already: %.12s",
					    out->id);
		return vb_error_errno(err, errno, "cannot store the snapshot");
	}
	/* the stamp names the id, which was not known before the digests */
	if (stamped) {
		size_t nl = strcspn(before, "\n");
		_cleanup_free_ char *b = vb_strfmt("%s%s", out->id, before + nl);
		if (b)
			write_stamp(out, dst, b);
	}
	/* made is used: the LRU's newest; then the store to its bound (best
	 * effort: the snapshot is stored whatever eviction finds) */
	int ufd = vb_snap_use(dst);
	if (ufd >= 0)
		close(ufd);
	vb_error ign = { 0 };
	vb_snap_evict(vb_snap_max_bytes(), out->id, NULL, &ign);
	return 0;
}

static int load_dir(const char *dir, struct vb_snap *out, vb_error *err)
{
	_cleanup_free_ char *p = vb_strfmt("%s/manifest.json", dir);
	size_t len = 0;
	_cleanup_free_ char *text = p ? vb_read_file(p, MANIFEST_MAX + 1, &len, err) : NULL;
	if (!text)
		return -1;
	if (vb_snap_parse(text, len, out, err) < 0)
		return -1;
	const char *base = strrchr(dir, '/');
	if (strcmp(base ? base + 1 : dir, out->id))
		return vb_error_set(err, VB_E_RUNTIME, "manifest: its id is not its directory's name");
	return 0;
}

static int by_created(const void *a, const void *b)
{
	const struct vb_snap *x = a, *y = b;
	return x->created < y->created ? 1 : x->created > y->created ? -1 : strcmp(x->id, y->id);
}

int vb_snap_list(struct vb_snap **out, size_t *n, vb_error *err)
{
	*out = NULL;
	*n = 0;
	_cleanup_free_ char *root = vb_snap_root(err);
	if (!root)
		return -1;
	DIR *d = opendir(root);
	if (!d)
		return vb_error_errno(err, errno, "%s", root);
	struct dirent *e;
	size_t cap = 0;
	while ((e = readdir(d))) {
		if (!hex_ok(e->d_name, 64))
			continue;
		_cleanup_free_ char *dir = vb_strfmt("%s/%s", root, e->d_name);
		struct vb_snap s;
		vb_error ign;
		if (!dir || load_dir(dir, &s, &ign) < 0)
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 8;
			struct vb_snap *m = realloc(*out, cap * sizeof(**out));
			if (!m) {
				closedir(d);
				free(*out);
				*out = NULL;
				return vb_error_set(err, VB_E_RUNTIME, "out of memory");
			}
			*out = m;
		}
		(*out)[(*n)++] = s;
	}
	closedir(d);
	if (*n)
		qsort(*out, *n, sizeof(**out), by_created);
	return 0;
}

int vb_snap_open(const char *ref, struct vb_snap *out, char **dir, vb_error *err)
{
	*dir = NULL;
	_cleanup_free_ char *root = vb_snap_root(err);
	if (!root)
		return -1;
	size_t rl = strlen(ref);
	int is_hex = rl >= 4 && rl <= 64 && strspn(ref, "0123456789abcdef") == rl;
	DIR *d = opendir(root);
	if (!d)
		return vb_error_errno(err, errno, "%s", root);
	char found[VB_SNAP_HEX] = "";
	int matches = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!hex_ok(e->d_name, 64))
			continue;
		if (is_hex && strncmp(e->d_name, ref, rl) == 0) {
			matches++;
			snprintf(found, sizeof(found), "%.64s", e->d_name);
			continue;
		}
		if (!is_hex || !matches) { /* by name: the manifest says it */
			_cleanup_free_ char *p = vb_strfmt("%s/%s", root, e->d_name);
			struct vb_snap s;
			vb_error ign;
			if (p && load_dir(p, &s, &ign) == 0 && strcmp(s.name, ref) == 0 && !is_hex) {
				matches++;
				snprintf(found, sizeof(found), "%.64s", e->d_name);
			}
		}
	}
	closedir(d);
	if (matches == 0)
		return vb_error_set(err, VB_E_NOTFOUND, "no snapshot '%s' (voidbox snapshot list)", ref);
	if (matches > 1)
		return vb_error_set(err, VB_E_USAGE, "'%s' names %d snapshots: give more of the id",
				    ref, matches);
	*dir = vb_strfmt("%s/%s", root, found);
	if (!*dir)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (load_dir(*dir, out, err) < 0) {
		vb_error_prefix(err, "snapshot %.12s is damaged", found);
		free(*dir);
		*dir = NULL;
		return -1;
	}
	return 0;
}

/* What the files of (s) in (dir) are on disk, as text: device, inode,
 * size, mtime and ctime (ns) of each.  Any write through the file system
 * changes the ctime (and a copy the inode), which no user can set back. */
static int stamp_of(const struct vb_snap *s, const char *dir, char *out, size_t len)
{
	size_t n = (size_t)snprintf(out, len, "%s\n", s->id);
	for (int i = 0; i < s->n_files && n < len; i++) {
		_cleanup_free_ char *p = vb_strfmt("%s/%s", dir, s->files[i].name);
		struct stat st;
		if (!p || lstat(p, &st) < 0)
			return -1;
		n += (size_t)snprintf(out + n, len - n, "%s %llu %llu %lld %lld.%09ld %lld.%09ld\n",
				      s->files[i].name, (unsigned long long)st.st_dev,
				      (unsigned long long)st.st_ino, (long long)st.st_size,
				      (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
				      (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
	}
	return n < len ? 0 : -1;
}

/* Record (before), the stamp taken before the files were digested, as
 * verified, when they still match it (nothing changed while they were
 * read).  Best effort: without a stamp the next check is a full one. */
static void write_stamp(const struct vb_snap *s, const char *dir, const char *before)
{
	char after[1024];
	_cleanup_free_ char *path = vb_strfmt("%s/verified", dir);
	if (!path || stamp_of(s, dir, after, sizeof(after)) < 0 || strcmp(before, after))
		return;
	/* parallel restores (threads of one process too) may stamp at once */
	vb_write_file_atomic(path, after, strlen(after), 0600);
}

static int verify_all(const struct vb_snap *s, const char *dir, vb_error *err)
{
	for (int i = 0; i < s->n_files; i++) {
		const struct vb_snap_file *want = &s->files[i];
		_cleanup_free_ char *p = vb_strfmt("%s/%s", dir, want->name);
		struct vb_snap_file got;
		vb_error e;
		if (!p)
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		if (vb_snap_digest(p, &got, &e) < 0)
			return vb_error_set(err, VB_E_RUNTIME, "snapshot %.12s is damaged: %s", s->id,
					    e.msg);
		if (got.size != want->size)
			return vb_error_set(err, VB_E_RUNTIME,
					    "snapshot %.12s is damaged: '%s' is %llu bytes, not %llu (truncated?)",
					    s->id, want->name, (unsigned long long)got.size,
					    (unsigned long long)want->size);
		if (got.data != want->data || strcmp(got.sha256, want->sha256))
			return vb_error_set(err, VB_E_RUNTIME,
					    "snapshot %.12s is damaged: '%s' does not match its digest",
					    s->id, want->name);
	}
	return 0;
}

int vb_snap_verify(const struct vb_snap *s, const char *dir, unsigned flags, vb_error *err)
{
	char now[1024];
	_cleanup_free_ char *path = vb_strfmt("%s/verified", dir);
	if (!path)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	int have = stamp_of(s, dir, now, sizeof(now)) == 0;
	if (have && !(flags & VB_SNAP_VERIFY_FULL)) {
		size_t len = 0;
		vb_error ign;
		_cleanup_free_ char *was = vb_read_file(path, sizeof(now), &len, &ign);
		if (was && strcmp(was, now) == 0)
			return 0; /* nothing was written since the last full check */
	}
	unlink(path);
	if (verify_all(s, dir, err) < 0)
		return -1;
	if (have)
		write_stamp(s, dir, now);
	return 0;
}

int vb_snap_check_sources(const struct vb_snap *s, const struct vb_snap_source *now,
			  vb_error *err)
{
	const char *what = strcmp(s->src.kernel, now->kernel)       ? "kernel"
			   : strcmp(s->src.initramfs, now->initramfs) ? "initramfs"
			   : strcmp(s->src.config, now->config)       ? "VM configuration"
								      : NULL;
	if (!what)
		return 0;
	if (strcmp(what, "VM configuration") == 0)
		return vb_error_set(err, VB_E_USAGE,
				    "snapshot %.12s was taken with another VM configuration (%s; now %s)",
				    s->id, s->src.config_text, now->config_text);
	return vb_error_set(err, VB_E_USAGE,
			    "snapshot %.12s was taken with another %s (it was %.12s, now %.12s): "
			    "take a new one",
			    s->id, what, strcmp(what, "kernel") ? s->src.initramfs : s->src.kernel,
			    strcmp(what, "kernel") ? now->initramfs : now->kernel);
}

int vb_snap_dependents(const char *id, struct vb_snap **out, size_t *n, vb_error *err)
{
	struct vb_snap *all = NULL;
	size_t na = 0;
	*out = NULL;
	*n = 0;
	if (vb_snap_list(&all, &na, err) < 0)
		return -1;
	for (size_t i = 0; i < na; i++)
		if (!strcmp(all[i].base, id))
			all[(*n)++] = all[i];
	*out = all;
	return 0;
}

int vb_snap_delete(const struct vb_snap *s, vb_error *err)
{
	_cleanup_free_ char *root = vb_snap_root(err);
	_cleanup_free_ char *dir = root ? vb_strfmt("%s/%s", root, s->id) : NULL;
	if (!dir)
		return -1;
	struct vb_snap *deps = NULL;
	size_t nd = 0;
	if (vb_snap_dependents(s->id, &deps, &nd, err) < 0)
		return -1;
	if (nd) {
		/* a diff is nothing without its base: name them, the user picks */
		char names[512] = "";
		size_t len = 0;
		for (size_t i = 0; i < nd && len < sizeof(names); i++)
			len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%.12s%s%s%s",
						i ? ", " : "", deps[i].id, deps[i].name[0] ? " (" : "",
						deps[i].name, deps[i].name[0] ? ")" : "");
		free(deps);
		return vb_error_set(err, VB_E_USAGE,
				    "snapshot %.12s is the base of %zu diff%s: %s; delete %s first",
				    s->id, nd, nd == 1 ? "" : "s", names, nd == 1 ? "it" : "them");
	}
	free(deps);
	/* made read-only at commit: give the owner write back to remove them */
	chmod(dir, 0700);
	if (vb_rm_rf(dir) < 0)
		return vb_error_errno(err, errno, "cannot delete %s", dir);
	return 0;
}

int vb_snap_retire(const struct vb_snap *s, vb_error *err)
{
	struct vb_snap *deps = NULL;
	size_t nd = 0;
	if (vb_snap_dependents(s->id, &deps, &nd, err) < 0)
		return -1;
	free(deps);
	if (!nd)
		return vb_snap_delete(s, err);
	/* A base of diffs stays, for them to be refused with its reason
	 * rather than as missing; only its name goes, to the replacement.
	 * The name is not part of the id, nor of any digest. */
	_cleanup_free_ char *root = vb_snap_root(err);
	_cleanup_free_ char *dir = root ? vb_strfmt("%s/%s", root, s->id) : NULL;
	_cleanup_free_ char *path = dir ? vb_strfmt("%s/manifest.json", dir) : NULL;
	if (!path)
		return -1;
	struct vb_snap anon = *s;
	anon.name[0] = '\0';
	_cleanup_free_ char *text = vb_snap_format(&anon);
	_cleanup_free_ char *line = text ? vb_strfmt("%s\n", text) : NULL;
	if (!line)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (vb_write_file_atomic(path, line, strlen(line), 0400) < 0)
		return vb_error_errno(err, errno, "cannot rewrite %s", path);
	return 0;
}
