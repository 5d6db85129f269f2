/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_oci_layer.c — libFuzzer target for the OCI layer applier
 * (src/oci/unpack.c).  The input is a layer: a tar, or a gzip or zstd one
 * (told by its magic, as its media type would).  It is applied twice, as
 * layers 1 and 2 (whiteouts and opaque markers then act on a lower layer),
 * to an in-memory tree with small bounds, and the merged root is streamed
 * out as a tar to nowhere, reading the layer again from a memfd.  Either
 * it is refused with a message naming layer 1 or 2, or the tree holds no
 * more than the bounds allow and streams out.  Nothing touches the disk.
 *
 *   make fuzz; build/fuzz/fuzz_oci_layer -max_total_time=600 tests/fuzz/corpus/oci_layer
 */
#include <archive.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "oci/unpack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static la_ssize_t nowhere(struct archive *a, void *p, const void *buf, size_t n)
{
	(void)a, (void)p, (void)buf;
	return (la_ssize_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *type = "application/vnd.oci.image.layer.v1.tar";
	if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b)
		type = "application/vnd.oci.image.layer.v1.tar+gzip";
	else if (size >= 4 && !memcmp(data, "\x28\xb5\x2f\xfd", 4))
		type = "application/vnd.oci.image.layer.v1.tar+zstd";
	const uint64_t max_bytes = 1 << 20;
	struct vb_rootfs_tree *t = vb_rootfs_tree_new(max_bytes, 2000);
	if (!t)
		return 0;
	vb_error err = { 0 };
	int rc = 0;
	for (unsigned layer = 0; rc == 0 && layer < 2; layer++) {
		struct archive *a = vb_rootfs_layer_open_memory(data, size, type, &err);
		if (!a) {
			rc = -1;
			break;
		}
		rc = vb_rootfs_tree_apply(t, a, layer, "fuzz", NULL, &err);
		archive_read_free(a);
		if (rc < 0 && strncmp(err.msg, layer ? "layer 2 (fuzz): " : "layer 1 (fuzz): ", 16))
			abort();
	}
	if (rc == 0) {
		struct vb_rootfs_totals tot;
		vb_rootfs_tree_totals(t, &tot);
		if (tot.bytes > max_bytes || tot.inodes > 4001)
			abort();
		int fd = memfd_create("layer", 0);
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		struct archive *out = archive_write_new();
		if (fd >= 0 && out && write(fd, data, size) == (ssize_t)size &&
		    archive_write_set_format_pax_restricted(out) == ARCHIVE_OK &&
		    archive_write_open(out, NULL, NULL, nowhere, NULL) == ARCHIVE_OK) {
			const struct vb_rootfs_layer layers[2] = { { path, type }, { path, type } };
			/* the same bytes read again: only an allocation failure may fail */
			if (vb_rootfs_tree_emit(t, layers, 2, out, &err) < 0 && !strstr(err.msg, "memory"))
				abort();
		}
		if (out)
			archive_write_free(out);
		if (fd >= 0)
			close(fd);
	}
	vb_rootfs_tree_free(t);
	return 0;
}
