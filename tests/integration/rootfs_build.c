/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vb_rootfs_build for the shell tests (test_oci_rootfs.sh):
 *
 *   rootfs_build [--max-bytes N] OUT LAYER TYPE [LAYER TYPE...]
 *
 * TYPE is a media type, or tar / gzip / zstd / docker for the OCI tar,
 * tar+gzip, tar+zstd and Docker rootfs.diff.tar.gzip types.  Progress goes
 * to stderr; on failure the message too, and the exit status is 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci/rootfs.h"

static const char *media_type(const char *t)
{
	if (!strcmp(t, "tar"))
		return "application/vnd.oci.image.layer.v1.tar";
	if (!strcmp(t, "gzip"))
		return "application/vnd.oci.image.layer.v1.tar+gzip";
	if (!strcmp(t, "zstd"))
		return "application/vnd.oci.image.layer.v1.tar+zstd";
	if (!strcmp(t, "docker"))
		return "application/vnd.docker.image.rootfs.diff.tar.gzip";
	return t;
}

int main(int argc, char **argv)
{
	struct vb_rootfs_opts o = { .progress = stderr };
	int i = 1;
	if (argc > 2 && !strcmp(argv[1], "--max-bytes")) {
		o.max_bytes = strtoull(argv[2], NULL, 10);
		i = 3;
	}
	if (argc - i < 3 || (argc - i) % 2 != 1) {
		fprintf(stderr, "usage: rootfs_build [--max-bytes N] OUT LAYER TYPE [LAYER TYPE...]\n");
		return 2;
	}
	const char *out = argv[i++];
	size_t n = (size_t)(argc - i) / 2;
	struct vb_rootfs_layer *layers = calloc(n, sizeof(*layers));
	if (!layers)
		return 1;
	for (size_t k = 0; k < n; k++)
		layers[k] = (struct vb_rootfs_layer){ argv[i + 2 * k], media_type(argv[i + 2 * k + 1]) };
	vb_error err = { 0 };
	int rc = vb_rootfs_build(layers, n, out, &o, &err);
	free(layers);
	if (rc < 0) {
		fprintf(stderr, "rootfs_build: %s\n", err.msg);
		return 1;
	}
	return 0;
}
