/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unpacking an npm tarball with libarchive.  The tarball's hash has been
 * checked by then, but the check only says the registry served what it
 * published: the archive is still treated as untrusted input, so every
 * entry is confined to the destination by our own path checks and by
 * libarchive's secure-extraction flags.
 */
#include "agentbin/agentbin.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

#define MAX_ENTRIES 100000

/* Depth of (p) relative to its start after lexical resolution, starting at
 * (depth); -1 as soon as it climbs above 0 or is absolute. */
static int walk_depth(const char *p, int depth)
{
	if (p[0] == '/')
		return -1;
	for (const char *c = p; *c;) {
		const char *e = strchrnul(c, '/');
		size_t n = (size_t)(e - c);
		if (n == 2 && c[0] == '.' && c[1] == '.') {
			if (--depth < 0)
				return -1;
		} else if (n > 0 && !(n == 1 && c[0] == '.')) {
			depth++;
		}
		c = *e ? e + 1 : e;
	}
	return depth;
}

/* A member name below "package/" with no ".." and nothing absolute; returns
 * the rest ("" for package/ itself) or NULL. */
static const char *member_path(const char *name)
{
	if (!name || strncmp(name, "package/", 8) != 0)
		return NULL;
	const char *rest = name + 8;
	for (const char *c = rest; *c;) {
		const char *e = strchrnul(c, '/');
		size_t n = (size_t)(e - c);
		if (n == 2 && c[0] == '.' && c[1] == '.')
			return NULL;
		c = *e ? e + 1 : e;
	}
	return rest[0] == '/' ? NULL : rest;
}

/* A symlink at (rest) pointing at (target) stays inside the tree. */
static int link_inside(const char *rest, const char *target)
{
	/* the link's directory depth: components of rest minus the last */
	int depth = walk_depth(rest, 0);
	return depth >= 1 && target[0] && walk_depth(target, depth - 1) >= 0;
}

int vb_agentbin_extract(const char *tgz, const char *dest, vb_error *err)
{
	if (mkdir(dest, 0755) < 0)
		return vb_error_errno(err, errno, "cannot create %s", dest);
	struct archive *in = archive_read_new();
	struct archive *out = archive_write_disk_new();
	if (!in || !out) {
		archive_read_free(in);
		archive_write_free(out);
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	archive_read_support_filter_gzip(in);
	archive_read_support_format_tar(in);
	/* no owners, no setuid bits, no ACLs or xattrs from the archive; never
	 * through a symlink, never "..".  (The names we write are absolute,
	 * under dest: member_path() has refused absolute member names.) */
	archive_write_disk_set_options(out, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
						    ARCHIVE_EXTRACT_SECURE_NODOTDOT);
	int rc = 0;
	if (archive_read_open_filename(in, tgz, 1 << 16) != ARCHIVE_OK) {
		rc = vb_error_set(err, VB_E_RUNTIME, "cannot read %s: %s", tgz,
				  archive_error_string(in));
		goto done;
	}
	struct archive_entry *e;
	size_t n = 0;
	int r;
	while ((r = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		const char *rest = member_path(name);
		if (!rest || ++n > MAX_ENTRIES) {
			rc = vb_error_set(err, VB_E_RUNTIME,
					  "%s: refusing member '%.200s' (outside package/, or too many)",
					  tgz, name ? name : "?");
			goto done;
		}
		mode_t type = archive_entry_filetype(e);
		const char *ln = archive_entry_symlink(e);
		if (archive_entry_hardlink(e) ||
		    (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) ||
		    (type == AE_IFLNK && (!ln || !link_inside(rest, ln)))) {
			rc = vb_error_set(err, VB_E_RUNTIME,
					  "%s: refusing member '%.200s' (a link out of the package, "
					  "a hard link or a device)",
					  tgz, name);
			goto done;
		}
		if (!rest[0]) /* package/ itself: dest */
			continue;
		_cleanup_free_ char *path = vb_strfmt("%s/%s", dest, rest);
		if (!path) {
			rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
			goto done;
		}
		archive_entry_set_pathname(e, path);
		archive_entry_set_perm(e, type == AE_IFDIR ? 0755
						  : (archive_entry_perm(e) & 0111 ? 0755 : 0644));
		if (archive_write_header(out, e) != ARCHIVE_OK) {
			rc = vb_error_set(err, VB_E_RUNTIME, "extracting %.200s: %s", name,
					  archive_error_string(out));
			goto done;
		}
		const void *buf;
		size_t len;
		int64_t off;
		while ((r = archive_read_data_block(in, &buf, &len, &off)) == ARCHIVE_OK) {
			if (archive_write_data_block(out, buf, len, off) != ARCHIVE_OK) {
				rc = vb_error_set(err, VB_E_RUNTIME, "writing %.200s: %s", name,
						  archive_error_string(out));
				goto done;
			}
		}
		if (r != ARCHIVE_EOF || archive_write_finish_entry(out) != ARCHIVE_OK) {
			rc = vb_error_set(err, VB_E_RUNTIME, "extracting %.200s: %s", name,
					  archive_error_string(r != ARCHIVE_EOF ? in : out));
			goto done;
		}
	}
	if (r != ARCHIVE_EOF)
		rc = vb_error_set(err, VB_E_RUNTIME, "reading %s: %s", tgz, archive_error_string(in));
done:
	archive_read_free(in);
	if (archive_write_close(out) != ARCHIVE_OK && rc == 0)
		rc = vb_error_set(err, VB_E_RUNTIME, "extracting %s: %s", tgz,
				  archive_error_string(out));
	archive_write_free(out);
	return rc;
}
