/* SPDX-License-Identifier: Apache-2.0 */
/* voidbox pull: fetch an OCI image into the store (docs/oci.md). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "oci/oci.h"

static void usage(FILE *out)
{
	fputs("usage: voidbox pull [-q] REFERENCE\n\n"
	      "Fetch an OCI image (linux/amd64) from its registry into the store under\n"
	      "${XDG_CACHE_HOME:-~/.cache}/voidbox/oci, every blob checked against its\n"
	      "sha256 digest as it arrives.  REFERENCE is [HOST[:PORT]/]NAME[:TAG][@DIGEST];\n"
	      "a short name is on Docker Hub (python:3.12 is docker.io/library/python:3.12).\n"
	      "An interrupted pull resumes where it stopped.  Prints the reference and the\n"
	      "manifest digest.\n\n"
	      "  -q, --quiet   no progress\n\n"
	      "Credentials come from the docker config (~/.docker/config.json, or\n"
	      "$DOCKER_CONFIG/config.json, \"auths\"); registries are reached over HTTPS,\n"
	      "plain HTTP only on loopback or for hosts in $VOIDBOX_INSECURE_REGISTRIES\n"
	      "(comma-separated HOST[:PORT]).\n"
	      "Exit status: 0, 1 when the image or a blob does not exist (HTTP 404),\n"
	      "125 for any other failure, 2 for bad arguments.\n",
	      out);
}

int vb_cmd_pull(int argc, char **argv)
{
	vb_error err = { 0 };
	const char *ref = NULL;
	int quiet = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			quiet = 1;
		} else if (a[0] == '-' && a[1]) {
			static const char *const values[] = { NULL };
			static const char *const flags[] = { "--quiet", "--help", NULL };
			vb_cli_bad_option("pull", a, values, flags, &err);
			return vb_cli_fail(&err);
		} else if (ref) {
			vb_cli_unexpected_arg("pull", a, &err);
			return vb_cli_fail(&err);
		} else {
			ref = a;
		}
	}
	if (!ref) {
		vb_error_set(&err, VB_E_USAGE, "pull: which image? (see 'voidbox pull --help')");
		return vb_cli_fail(&err);
	}
	struct vb_oci_pull_opts o = { .progress = quiet ? NULL : stderr };
	struct vb_oci_image *img = NULL;
	int rc = vb_oci_pull(ref, &o, &img, &err);
	if (rc == VB_OCI_ENOENT) {
		vb_cli_fail(&err);
		return 1;
	}
	if (rc < 0)
		return vb_cli_fail(&err);
	printf("%s %s\n", img->reference, img->manifest_digest);
	vb_oci_image_free(img);
	return 0;
}
