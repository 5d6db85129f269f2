/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCI layers applied to an in-memory tree (unpack.h says what is kept,
 * skipped and refused).  Nothing here touches the host's filesystem but
 * reading the layer blobs: a hostile layer can only make a tree that is
 * refused, never a file outside it.
 */
#include "oci/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/term.h"
#include "util/util.h"

#define MAX_PATH 4095 /* a normalized entry name, as the guest's PATH_MAX */
#define MAX_NAME 255  /* one component, as ext4's */

struct ino {
	mode_t mode; /* type and permission bits */
	uid_t uid;
	gid_t gid;
	int64_t mtime;
	uint64_t size;
	char *link;		/* symlink target */
	unsigned layer, entry;	/* a regular file's bytes */
	unsigned refs;		/* names in the tree */
	unsigned mark;		/* walk generation: counted / emitted */
	char *path;		/* emit: the name its bytes went out under */
};

struct node {
	char *name;
	struct node *parent, *first, *next, *prev; /* children, unordered */
	struct node *hnext;			   /* hash chain: (parent, name) */
	struct ino *ino;
	unsigned layer; /* the highest layer that put or passed through this path */
	unsigned born;	/* the layer that made this node: nothing below it is older */
	unsigned opaque; /* 1 + the layer whose opaque marker last applied here */
};

struct vb_rootfs_tree {
	struct node *root;
	struct node **hash;
	size_t hsize, hcount;
	uint64_t max_bytes, max_entries, bytes, entries;
	unsigned mark;
};

/* ---- the tree ---- */

static size_t hash_of(const struct node *parent, const char *name, size_t hsize)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uintptr_t)parent;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return (size_t)(h ^ (h >> 29)) & (hsize - 1);
}

static struct node *child_find(const struct vb_rootfs_tree *t, const struct node *parent, const char *name)
{
	for (struct node *c = t->hash[hash_of(parent, name, t->hsize)]; c; c = c->hnext)
		if (c->parent == parent && !strcmp(c->name, name))
			return c;
	return NULL;
}

static int hash_grow(struct vb_rootfs_tree *t)
{
	size_t nsize = t->hsize * 2;
	struct node **nh = calloc(nsize, sizeof(*nh));
	if (!nh)
		return -1;
	for (size_t i = 0; i < t->hsize; i++)
		for (struct node *c = t->hash[i], *next; c; c = next) {
			next = c->hnext;
			size_t h = hash_of(c->parent, c->name, nsize);
			c->hnext = nh[h];
			nh[h] = c;
		}
	free(t->hash);
	t->hash = nh;
	t->hsize = nsize;
	return 0;
}

static struct ino *ino_new(mode_t mode)
{
	struct ino *i = calloc(1, sizeof(*i));
	if (i)
		i->mode = mode;
	return i;
}

static void ino_unref(struct ino *i)
{
	if (i && --i->refs == 0) {
		free(i->link);
		free(i->path);
		free(i);
	}
}

/* A new child (name) of (parent) naming (ino) (one more reference). */
static struct node *child_add(struct vb_rootfs_tree *t, struct node *parent, const char *name,
			      struct ino *ino, unsigned layer)
{
	if (t->hcount + 1 > t->hsize && hash_grow(t) < 0)
		return NULL;
	struct node *c = calloc(1, sizeof(*c));
	if (!c || !(c->name = strdup(name))) {
		free(c);
		return NULL;
	}
	c->parent = parent;
	c->ino = ino;
	ino->refs++;
	c->layer = c->born = layer;
	c->next = parent->first;
	if (parent->first)
		parent->first->prev = c;
	parent->first = c;
	size_t h = hash_of(parent, name, t->hsize);
	c->hnext = t->hash[h];
	t->hash[h] = c;
	t->hcount++;
	return c;
}

static void node_remove(struct vb_rootfs_tree *t, struct node *n)
{
	while (n->first)
		node_remove(t, n->first);
	if (n->parent) {
		struct node **pp = &t->hash[hash_of(n->parent, n->name, t->hsize)];
		while (*pp != n)
			pp = &(*pp)->hnext;
		*pp = n->hnext;
		t->hcount--;
		if (n->prev)
			n->prev->next = n->next;
		else
			n->parent->first = n->next;
		if (n->next)
			n->next->prev = n->prev;
	}
	ino_unref(n->ino);
	free(n->name);
	free(n);
}

/* What layers below (layer) put at (n) is hidden: all of (n) if it came
 * from below; else (a directory this layer also wrote into) what lies
 * below it from lower layers. */
static void hide_lower(struct vb_rootfs_tree *t, struct node *n, unsigned layer)
{
	if (n->layer < layer) {
		node_remove(t, n);
		return;
	}
	if (n->born == layer)
		return; /* made by this layer: nothing older below (keeps this linear) */
	for (struct node *c = n->first, *next; c; c = next) {
		next = c->next;
		hide_lower(t, c, layer);
	}
}

struct vb_rootfs_tree *vb_rootfs_tree_new(uint64_t max_bytes, uint64_t max_entries)
{
	struct vb_rootfs_tree *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->max_bytes = max_bytes ? max_bytes : VB_ROOTFS_MAX_BYTES;
	t->max_entries = max_entries ? max_entries : VB_ROOTFS_MAX_ENTRIES;
	t->hsize = 1024;
	t->hash = calloc(t->hsize, sizeof(*t->hash));
	t->root = calloc(1, sizeof(*t->root));
	struct ino *ri = ino_new(S_IFDIR | 0755);
	if (!t->hash || !t->root || !ri || !(t->root->name = strdup(""))) {
		free(ri);
		vb_rootfs_tree_free(t);
		return NULL;
	}
	t->root->ino = ri;
	ri->refs = 1;
	return t;
}

void vb_rootfs_tree_free(struct vb_rootfs_tree *t)
{
	if (!t)
		return;
	if (t->root)
		node_remove(t, t->root);
	free(t->hash);
	free(t);
}

/* ---- names ---- */

/* (raw) as "a/b/c" in (out): "./" prefixes, empty and "." components
 * dropped.  NULL, or the reason it is refused. */
static const char *normalize(const char *raw, char *out, size_t size)
{
	if (!raw)
		return "it has no name";
	if (raw[0] == '/')
		return "an absolute name";
	size_t o = 0;
	for (const char *p = raw; *p;) {
		const char *e = strchrnul(p, '/');
		size_t len = (size_t)(e - p);
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return "a '..' component leaves the root";
		if (len > MAX_NAME)
			return "a name component is longer than 255 bytes";
		if (len && !(len == 1 && p[0] == '.')) {
			if (o + !!o + len >= size)
				return "the name is too long";
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, len);
			o += len;
		}
		p = *e ? e + 1 : e;
	}
	out[o] = 0;
	return NULL;
}

/* The directory that holds (path) (normalized, not "") in (*dir) and its last
 * component in (*base).  With (layer) >= 0, missing directories on the way
 * are made (0755 0:0, as other unpackers do) and marked as written by it.
 * NULL, or why not: a symlink or a file on the way (a write through a
 * symlink could land anywhere it points).  Without (create), a missing
 * directory gives (*dir) NULL. */
static const char *walk(struct vb_rootfs_tree *t, char *path, long layer, struct node **dir,
			const char **base)
{
	struct node *d = t->root;
	char *p = path;
	for (char *slash; (slash = strchr(p, '/')); p = slash + 1) {
		*slash = 0;
		struct node *c = child_find(t, d, p);
		if (!c && layer >= 0) {
			struct ino *i = ino_new(S_IFDIR | 0755);
			if (!i || !(c = child_add(t, d, p, i, (unsigned)layer))) {
				free(i);
				*slash = '/';
				return "out of memory";
			}
		}
		*slash = '/';
		if (!c) {
			*dir = NULL;
			return NULL;
		}
		if (S_ISLNK(c->ino->mode))
			return "a component is a symlink (writing through it could leave the root)";
		if (!S_ISDIR(c->ino->mode))
			return "a component is not a directory";
		if (layer >= 0 && c->layer < (unsigned)layer)
			c->layer = (unsigned)layer;
		d = c;
	}
	*dir = d;
	*base = p;
	return NULL;
}

static struct node *lookup(const struct vb_rootfs_tree *t, const char *path)
{
	char buf[MAX_PATH + 1];
	if (normalize(path, buf, sizeof(buf)))
		return NULL;
	if (!buf[0])
		return t->root;
	struct node *d = NULL;
	const char *base = NULL;
	if (walk((struct vb_rootfs_tree *)(uintptr_t)t, buf, -1, &d, &base) || !d)
		return NULL;
	return child_find(t, d, base);
}

int vb_rootfs_tree_stat(const struct vb_rootfs_tree *t, const char *path, struct vb_rootfs_stat *st)
{
	struct node *n = lookup(t, path);
	if (!n)
		return -1;
	*st = (struct vb_rootfs_stat){ .mode = n->ino->mode, .uid = n->ino->uid, .gid = n->ino->gid,
				       .size = n->ino->size, .link = n->ino->link, .ino = n->ino,
				       .layer = n->ino->layer, .entry = n->ino->entry };
	return 0;
}

/* ---- applying a layer ---- */

struct ctx {
	struct vb_rootfs_tree *t;
	unsigned layer, entry;
	const char *label;
	FILE *progress;
	unsigned skipped;
	vb_error *err;
};

static int refuse(const struct ctx *c, const char *name, const char *why)
{
	char safe[512], lab[256];
	return vb_error_set(c->err, VB_E_RUNTIME, "layer %u (%s): entry '%s': %s", c->layer + 1,
			    vb_term_copy(lab, sizeof(lab), c->label, 0),
			    vb_term_copy(safe, sizeof(safe), name, 0), why);
}

/* Put (ino) at (path) (normalized, not ""), replacing what is there unless
 * both are directories (then the new metadata wins, children stay). */
static int place(struct ctx *c, const char *raw, char *path, struct ino *ino)
{
	struct node *dir = NULL;
	const char *base = NULL;
	const char *why = walk(c->t, path, c->layer, &dir, &base);
	if (why) {
		ino_unref(ino);
		return refuse(c, raw, why);
	}
	struct node *old = child_find(c->t, dir, base);
	if (old && old->ino == ino) {
		ino_unref(ino); /* a hard link to itself */
		return 0;
	}
	if (old && S_ISDIR(old->ino->mode) && S_ISDIR(ino->mode)) {
		struct ino *o = old->ino;
		o->mode = ino->mode, o->uid = ino->uid, o->gid = ino->gid, o->mtime = ino->mtime;
		old->layer = c->layer;
		ino_unref(ino);
		return 0;
	}
	if (old)
		node_remove(c->t, old);
	if (!child_add(c->t, dir, base, ino, c->layer)) {
		ino_unref(ino);
		return vb_error_set(c->err, VB_E_RUNTIME, "out of memory");
	}
	ino_unref(ino); /* the tree holds it now */
	return 0;
}

/* A whiteout of (path) (normalized): hide what lower layers put there. */
static int whiteout(struct ctx *c, const char *raw, char *path)
{
	if (!path[0])
		return refuse(c, raw, "a whiteout of the root");
	struct node *dir = NULL;
	const char *base = NULL;
	const char *why = walk(c->t, path, -1, &dir, &base);
	if (why)
		return refuse(c, raw, why);
	struct node *n = dir ? child_find(c->t, dir, base) : NULL;
	if (n)
		hide_lower(c->t, n, c->layer);
	return 0;
}

static void notice_skip(struct ctx *c, const char *raw, const char *what)
{
	if (c->progress && c->skipped < 5) {
		char safe[512];
		fprintf(c->progress, "voidbox: root disk: layer %u: skipped %s '%s' (the guest has its own /dev)\n",
			c->layer + 1, what, vb_term_copy(safe, sizeof(safe), raw, 0));
	}
	c->skipped++;
}

static int apply_entry(struct ctx *c, struct archive_entry *e)
{
	const char *raw = archive_entry_pathname(e);
	char path[MAX_PATH + 1];
	const char *why = normalize(raw, path, sizeof(path));
	if (why)
		return refuse(c, raw ? raw : "", why);
	if (++c->t->entries > c->t->max_entries)
		return refuse(c, raw, "the layers hold more entries than the bound");

	char *slash = strrchr(path, '/');
	char *base = slash ? slash + 1 : path;
	if (!strncmp(base, ".wh.", 4)) {
		if (!strcmp(base, ".wh..wh..opq")) {
			/* the directory holding the marker shows nothing from below */
			struct node *dir = c->t->root;
			if (slash) {
				*slash = 0;
				struct ino *i = ino_new(S_IFDIR | 0755);
				if (!i)
					return vb_error_set(c->err, VB_E_RUNTIME, "out of memory");
				/* as a directory entry whose metadata a later entry may set */
				struct node *d = NULL;
				const char *b = NULL;
				why = walk(c->t, path, c->layer, &d, &b);
				if (why) {
					free(i);
					return refuse(c, raw, why);
				}
				dir = child_find(c->t, d, b);
				if (dir && !S_ISDIR(dir->ino->mode)) {
					node_remove(c->t, dir);
					dir = NULL;
				}
				if (!dir && !(dir = child_add(c->t, d, b, i, c->layer))) {
					free(i);
					return vb_error_set(c->err, VB_E_RUNTIME, "out of memory");
				}
				if (dir->ino != i)
					free(i);
				dir->layer = c->layer;
			}
			if (dir->opaque == c->layer + 1)
				return 0; /* a second marker for this directory in this layer */
			dir->opaque = c->layer + 1;
			for (struct node *ch = dir->first, *next; ch; ch = next) {
				next = ch->next;
				hide_lower(c->t, ch, c->layer);
			}
			return 0;
		}
		if (!strncmp(base, ".wh..wh.", 8) || !base[4])
			return 0; /* aufs bookkeeping, not part of the tree */
		memmove(base, base + 4, strlen(base + 4) + 1);
		return whiteout(c, raw, path);
	}

	const char *hl = archive_entry_hardlink(e);
	mode_t type = archive_entry_filetype(e);
	if (!hl && type == AE_IFCHR && archive_entry_rdev(e) == 0)
		return whiteout(c, raw, path); /* overlayfs's whiteout */
	if (!path[0]) {
		if (hl || type != AE_IFDIR)
			return refuse(c, raw, "the root is not a directory");
		struct ino *r = c->t->root->ino;
		r->mode = S_IFDIR | (archive_entry_perm(e) & 07777);
		r->uid = (uid_t)archive_entry_uid(e), r->gid = (gid_t)archive_entry_gid(e);
		r->mtime = archive_entry_mtime(e);
		return 0;
	}

	if (hl) {
		char target[MAX_PATH + 1];
		why = normalize(hl, target, sizeof(target));
		if (why) {
			char why2[160];
			snprintf(why2, sizeof(why2), "a hard link whose target is refused: %s", why);
			return refuse(c, raw, why2);
		}
		struct node *n = NULL;
		if (target[0]) {
			struct node *d = NULL;
			const char *b = NULL;
			why = walk(c->t, target, -1, &d, &b);
			if (why)
				return refuse(c, raw, "a hard link through a symlink or a file");
			n = d ? child_find(c->t, d, b) : NULL;
		}
		if (!n)
			return refuse(c, raw, "a hard link to a path that is not in the layers");
		/* a hard link to a symlink (`ln` of a symlink makes one) becomes a
		 * symlink of its own in the image, with the same target */
		if (!S_ISREG(n->ino->mode) && !S_ISLNK(n->ino->mode))
			return refuse(c, raw, "a hard link to a directory");
		n->ino->refs++;
		return place(c, raw, path, n->ino);
	}

	struct ino *i = NULL;
	switch (type) {
	case AE_IFDIR:
	case AE_IFREG:
	case AE_IFLNK:
		break;
	case AE_IFCHR:
	case AE_IFBLK:
		notice_skip(c, path, "device node");
		return 0;
	case AE_IFIFO:
		notice_skip(c, path, "FIFO");
		return 0;
	case AE_IFSOCK:
		notice_skip(c, path, "socket");
		return 0;
	default:
		return refuse(c, raw, "an entry of unknown type");
	}
	if (!(i = ino_new(type | (archive_entry_perm(e) & 07777))))
		return vb_error_set(c->err, VB_E_RUNTIME, "out of memory");
	i->uid = (uid_t)archive_entry_uid(e);
	i->gid = (gid_t)archive_entry_gid(e);
	i->mtime = archive_entry_mtime(e);
	i->refs = 1;
	if (type == AE_IFREG) {
		int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
		if (size < 0 || (uint64_t)size > c->t->max_bytes - c->t->bytes) {
			free(i);
			char why2[160];
			snprintf(why2, sizeof(why2),
				 "it claims %lld bytes, more than the bound of %llu bytes for the image",
				 (long long)size, (unsigned long long)c->t->max_bytes);
			return refuse(c, raw, why2);
		}
		c->t->bytes += (uint64_t)size;
		i->size = (uint64_t)size;
		i->layer = c->layer;
		i->entry = c->entry;
	} else if (type == AE_IFLNK) {
		const char *target = archive_entry_symlink(e);
		if (!target || !*target || strlen(target) > MAX_PATH) {
			free(i);
			return refuse(c, raw, "a symlink without a target, or with one too long");
		}
		if (!(i->link = strdup(target))) {
			free(i);
			return vb_error_set(c->err, VB_E_RUNTIME, "out of memory");
		}
	}
	return place(c, raw, path, i);
}

int vb_rootfs_tree_apply(struct vb_rootfs_tree *t, struct archive *a, unsigned layer,
			 const char *label, FILE *progress, vb_error *err)
{
	struct ctx c = { .t = t, .layer = layer, .label = label, .progress = progress, .err = err };
	struct archive_entry *e = NULL;
	char *sink = malloc(64 * 1024);
	if (!sink)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	for (;; c.entry++) {
		int r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			char lab[256];
			free(sink);
			return vb_error_set(err, VB_E_RUNTIME, "layer %u (%s): not a readable tar: %s", layer + 1,
					    vb_term_copy(lab, sizeof(lab), label, 0),
					    archive_error_string(a) ? archive_error_string(a) : "unknown error");
		}
		if (apply_entry(&c, e) < 0) {
			free(sink);
			return -1;
		}
		/* read a file's bytes now, so that a layer that does not hold what
		 * its headers claim is refused here, not half-way through the image */
		if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
			continue;
		int64_t claim = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0, got = 0;
		for (la_ssize_t r2; (r2 = archive_read_data(a, sink, 64 * 1024)) != 0; got += r2)
			if (r2 < 0 || got + r2 > claim) {
				got = -1;
				break;
			}
		if (got != claim) {
			char lab[256], safe[512];
			free(sink);
			return vb_error_set(err, VB_E_RUNTIME, "layer %u (%s): entry '%s': %s", layer + 1,
					    vb_term_copy(lab, sizeof(lab), label, 0),
					    vb_term_copy(safe, sizeof(safe), archive_entry_pathname(e), 0),
					    got < 0 && archive_error_string(a) ? archive_error_string(a)
									 : "its bytes do not match its size");
		}
	}
	free(sink);
	if (progress && c.skipped)
		fprintf(progress, "voidbox: root disk: layer %u: %u device node(s), FIFO(s) or socket(s) skipped\n", layer + 1,
			c.skipped);
	return 0;
}

/* ---- opening layers ---- */

enum { F_NONE, F_GZIP, F_ZSTD, F_UNKNOWN };

static int filter_of(const char *mt)
{
	static const struct {
		const char *type;
		int filter;
	} known[] = {
		{ "application/vnd.oci.image.layer.v1.tar", F_NONE },
		{ "application/vnd.oci.image.layer.v1.tar+gzip", F_GZIP },
		{ "application/vnd.oci.image.layer.v1.tar+zstd", F_ZSTD },
		{ "application/vnd.oci.image.layer.nondistributable.v1.tar", F_NONE },
		{ "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", F_GZIP },
		{ "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", F_ZSTD },
		{ "application/vnd.docker.image.rootfs.diff.tar", F_NONE },
		{ "application/vnd.docker.image.rootfs.diff.tar.gzip", F_GZIP },
		{ "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", F_GZIP },
	};
	for (size_t i = 0; mt && i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(mt, known[i].type))
			return known[i].filter;
	return F_UNKNOWN;
}

static struct archive *reader(const char *media_type, vb_error *err)
{
	int f = media_type ? filter_of(media_type) : F_NONE;
	if (f == F_UNKNOWN) {
		char safe[256];
		vb_error_set(err, VB_E_RUNTIME,
			     "unknown layer media type '%s' (known: OCI tar, tar+gzip, tar+zstd; Docker "
			     "rootfs.diff.tar.gzip)",
			     vb_term_copy(safe, sizeof(safe), media_type, 0));
		return NULL;
	}
	struct archive *a = archive_read_new();
	if (!a) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	int r = archive_read_support_format_tar(a);
	if (r == ARCHIVE_OK) /* a layer of no bytes at all: an empty layer, not an error */
		r = archive_read_support_format_empty(a);
	if (r == ARCHIVE_OK && f == F_GZIP)
		r = archive_read_support_filter_gzip(a);
	else if (r == ARCHIVE_OK && f == F_ZSTD)
		r = archive_read_support_filter_zstd(a);
	if (r != ARCHIVE_OK) { /* WARN: it would run an external program */
		vb_error_set(err, VB_E_RUNTIME, "libarchive cannot read this layer type: %s",
			     archive_error_string(a) ? archive_error_string(a) : "no support built in");
		archive_read_free(a);
		return NULL;
	}
	return a;
}

struct archive *vb_rootfs_layer_open(const struct vb_rootfs_layer *l, vb_error *err)
{
	struct archive *a = reader(l->media_type ? l->media_type : "(none)", err);
	if (!a)
		return NULL;
	if (archive_read_open_filename(a, l->path, 64 * 1024) != ARCHIVE_OK) {
		char safe[512], mt[256];
		vb_error_set(err, VB_E_RUNTIME, "cannot read %s as %s: %s",
			     vb_term_copy(safe, sizeof(safe), l->path, 0),
			     vb_term_copy(mt, sizeof(mt), l->media_type, 0), archive_error_string(a));
		archive_read_free(a);
		return NULL;
	}
	return a;
}

struct archive *vb_rootfs_layer_open_memory(const void *buf, size_t len, const char *media_type,
					    vb_error *err)
{
	struct archive *a = reader(media_type, err);
	if (a && archive_read_open_memory(a, buf, len) != ARCHIVE_OK) {
		vb_error_set(err, VB_E_RUNTIME, "cannot read the layer as %s: %s",
			     media_type ? media_type : "tar", archive_error_string(a));
		archive_read_free(a);
		return NULL;
	}
	return a;
}

/* ---- totals ---- */

static uint64_t blocks_of(uint64_t bytes)
{
	uint64_t b = (bytes + 4095) / 4096;
	if (b > 12) /* ext2's indirect blocks, generously */
		b += b / 1023 + 3;
	return b;
}

static void count(struct node *n, unsigned mark, struct vb_rootfs_totals *tot)
{
	struct ino *i = n->ino;
	if (S_ISLNK(i->mode)) { /* one inode per name in the image */
		tot->inodes++;
		tot->blocks += strlen(i->link) > 59;
	} else if (i->mark != mark) {
		i->mark = mark;
		tot->inodes++;
		if (S_ISREG(i->mode)) {
			tot->blocks += blocks_of(i->size);
			tot->bytes += i->size;
		}
	}
	if (S_ISDIR(i->mode)) {
		uint64_t dirbytes = 24;
		for (struct node *c = n->first; c; c = c->next) {
			dirbytes += 8 + ((strlen(c->name) + 3) & ~(size_t)3);
			count(c, mark, tot);
		}
		tot->blocks += blocks_of(dirbytes);
	}
}

void vb_rootfs_tree_totals(struct vb_rootfs_tree *t, struct vb_rootfs_totals *tot)
{
	*tot = (struct vb_rootfs_totals){ 0 };
	count(t->root, ++t->mark, tot);
}

/* ---- the merged tar ---- */

struct emit {
	struct vb_rootfs_tree *t;
	struct archive *out;
	struct ino **regs;
	size_t nregs, cap;
	char path[MAX_PATH + 2];
	vb_error *err;
};

static int header(struct emit *m, const char *path, const struct ino *i, const char *hardlink)
{
	struct archive_entry *e = archive_entry_new();
	if (!e)
		return vb_error_set(m->err, VB_E_RUNTIME, "out of memory");
	archive_entry_copy_pathname(e, path);
	if (hardlink) {
		archive_entry_copy_hardlink(e, hardlink);
		archive_entry_set_filetype(e, AE_IFREG);
	} else {
		archive_entry_set_filetype(e, i->mode & S_IFMT);
		archive_entry_set_size(e, S_ISREG(i->mode) ? (la_int64_t)i->size : 0);
		if (i->link)
			archive_entry_copy_symlink(e, i->link);
	}
	archive_entry_set_perm(e, i->mode & 07777);
	archive_entry_set_uid(e, i->uid);
	archive_entry_set_gid(e, i->gid);
	archive_entry_set_mtime(e, i->mtime, 0);
	int r = archive_write_header(m->out, e);
	archive_entry_free(e);
	if (r < ARCHIVE_WARN)
		return vb_error_set(m->err, VB_E_RUNTIME, "writing the root's tar: %s",
				    archive_error_string(m->out));
	return 0;
}

/* Pre-order walk below (n), whose name is m->path[0..len).  Pass 1: the
 * directories, and each regular file's first name; pass 3: symlinks and the
 * other names of hard-linked files. */
static int walk_emit(struct emit *m, struct node *n, size_t len, int pass)
{
	for (struct node *c = n->first; c; c = c->next) {
		size_t nl = strlen(c->name), l2 = len + !!len + nl;
		if (l2 > MAX_PATH)
			return vb_error_set(m->err, VB_E_RUNTIME, "a path in the image is too long");
		if (len)
			m->path[len] = '/';
		memcpy(m->path + len + !!len, c->name, nl + 1);
		struct ino *i = c->ino;
		int rc = 0;
		if (pass == 1 && S_ISDIR(i->mode)) {
			rc = header(m, m->path, i, NULL);
		} else if (pass == 1 && S_ISREG(i->mode) && !i->path) {
			if (m->nregs == m->cap) {
				size_t ncap = m->cap ? 2 * m->cap : 256;
				struct ino **nr = realloc(m->regs, ncap * sizeof(*nr));
				if (!nr)
					return vb_error_set(m->err, VB_E_RUNTIME, "out of memory");
				m->regs = nr, m->cap = ncap;
			}
			if (!(i->path = strdup(m->path)))
				return vb_error_set(m->err, VB_E_RUNTIME, "out of memory");
			m->regs[m->nregs++] = i;
		} else if (pass == 3 && S_ISLNK(i->mode)) {
			rc = header(m, m->path, i, NULL);
		} else if (pass == 3 && S_ISREG(i->mode) && strcmp(i->path, m->path)) {
			rc = header(m, m->path, i, i->path);
		}
		if (rc < 0 || (S_ISDIR(i->mode) && walk_emit(m, c, l2, pass) < 0))
			return -1;
		m->path[len] = 0;
	}
	return 0;
}

static int by_source(const void *a, const void *b)
{
	const struct ino *x = *(struct ino *const *)a, *y = *(struct ino *const *)b;
	if (x->layer != y->layer)
		return x->layer < y->layer ? -1 : 1;
	return x->entry < y->entry ? -1 : x->entry > y->entry;
}

/* The bytes of regs[*k..] that live in layer (li), in entry order. */
static int copy_layer(struct emit *m, const struct vb_rootfs_layer *l, unsigned li, size_t *k)
{
	struct archive *in = vb_rootfs_layer_open(l, m->err);
	if (!in)
		return -1;
	int rc = 0;
	char buf[64 * 1024];
	struct archive_entry *e = NULL;
	for (unsigned idx = 0; *k < m->nregs && m->regs[*k]->layer == li; idx++) {
		if (archive_read_next_header(in, &e) < ARCHIVE_WARN) {
			rc = vb_error_set(m->err, VB_E_RUNTIME, "layer %u: reading it again: %s", li + 1,
					  archive_error_string(in));
			break;
		}
		struct ino *i = m->regs[*k];
		if (idx != i->entry)
			continue;
		if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) ||
		    (uint64_t)archive_entry_size(e) != i->size) {
			rc = vb_error_set(m->err, VB_E_RUNTIME, "layer %u changed while it was read", li + 1);
			break;
		}
		if ((rc = header(m, i->path, i, NULL)) < 0)
			break;
		uint64_t left = i->size;
		for (la_ssize_t got; left && (got = archive_read_data(in, buf, sizeof(buf))) != 0;) {
			if (got < 0 || (uint64_t)got > left) {
				rc = vb_error_set(m->err, VB_E_RUNTIME, "layer %u: entry %u: %s", li + 1, idx + 1,
						  got < 0 ? archive_error_string(in) : "more bytes than it claims");
				break;
			}
			if (archive_write_data(m->out, buf, (size_t)got) != got) {
				rc = vb_error_set(m->err, VB_E_RUNTIME, "writing the root's tar: %s",
						  archive_error_string(m->out));
				break;
			}
			left -= (uint64_t)got;
		}
		if (rc == 0 && left)
			rc = vb_error_set(m->err, VB_E_RUNTIME, "layer %u: entry %u is cut short", li + 1, idx + 1);
		if (rc < 0)
			break;
		(*k)++;
	}
	archive_read_free(in);
	return rc;
}

int vb_rootfs_tree_emit(struct vb_rootfs_tree *t, const struct vb_rootfs_layer *layers, size_t n,
			struct archive *out, vb_error *err)
{
	struct emit m = { .t = t, .out = out, .err = err };
	int rc = header(&m, ".", t->root->ino, NULL);
	if (rc == 0)
		rc = walk_emit(&m, t->root, 0, 1);
	if (rc == 0 && m.nregs) /* qsort of NULL, 0 is undefined */
		qsort(m.regs, m.nregs, sizeof(*m.regs), by_source);
	for (size_t k = 0; rc == 0 && k < m.nregs;) {
		unsigned li = m.regs[k]->layer;
		if (li >= n) {
			rc = vb_error_set(err, VB_E_RUNTIME, "layer %u is missing", li + 1);
			break;
		}
		rc = copy_layer(&m, &layers[li], li, &k);
	}
	if (rc == 0)
		rc = walk_emit(&m, t->root, 0, 3);
	free(m.regs);
	return rc;
}
