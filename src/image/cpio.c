/* SPDX-License-Identifier: Apache-2.0 */
/* A minimal writer of the cpio "newc" format the kernel unpacks as initramfs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image/image.h"

/* Raw appends reuse the frame buffer's growth; the frame-size cap does not
 * matter here because an initramfs is far below 64 MiB. */
static int append(struct vb_buf *b, const void *p, size_t n)
{
	if (b->oom)
		return -1;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *d = realloc(b->data, cap);
		if (!d) {
			b->oom = 1;
			return -1;
		}
		b->data = d;
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

static int pad4(struct vb_buf *b)
{
	static const uint8_t zero[4];
	return append(b, zero, (4 - b->len % 4) % 4);
}

static unsigned next_ino = 1000; /* only hard links care; atomic for parallel VMs */

static int entry(struct vb_buf *b, const char *name, unsigned mode, const void *data, size_t len,
		 unsigned rmaj, unsigned rmin)
{
	char hdr[128];
	size_t namesize = strlen(name) + 1;
	if (len > 0xffffffffu || namesize > 4096 || b->len % 4)
		return -1;
	unsigned ino = __atomic_fetch_add(&next_ino, 1, __ATOMIC_RELAXED);
	snprintf(hdr, sizeof(hdr), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		 ino, mode, 0u, 0u, S_ISDIR(mode) ? 2u : 1u, 0u, (unsigned)len, 0u, 0u, rmaj, rmin,
		 (unsigned)namesize, 0u);
	if (append(b, hdr, 110) < 0 || append(b, name, namesize) < 0 || pad4(b) < 0 ||
	    append(b, data, len) < 0 || pad4(b) < 0)
		return -1;
	return 0;
}

int vb_cpio_dir(struct vb_buf *out, const char *name, unsigned mode)
{
	return entry(out, name, S_IFDIR | (mode & 07777), NULL, 0, 0, 0);
}

int vb_cpio_file(struct vb_buf *out, const char *name, unsigned mode, const void *data,
		 size_t len)
{
	return entry(out, name, S_IFREG | (mode & 07777), data, len, 0, 0);
}

int vb_cpio_symlink(struct vb_buf *out, const char *name, const char *target)
{
	return entry(out, name, S_IFLNK | 0777, target, strlen(target), 0, 0);
}

int vb_cpio_chardev(struct vb_buf *out, const char *name, unsigned mode, unsigned major,
		    unsigned minor)
{
	return entry(out, name, S_IFCHR | (mode & 07777), NULL, 0, major, minor);
}

int vb_cpio_trailer(struct vb_buf *out)
{
	return entry(out, "TRAILER!!!", 0, NULL, 0, 0, 0);
}
