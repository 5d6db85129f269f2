/* SPDX-License-Identifier: Apache-2.0 */
/* voidbox rmi: remove an OCI image from the store. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "oci/oci.h"
#include "observe/observe_int.h"
#include "util/util.h"

static void usage(FILE *out)
{
	fputs("usage: voidbox rmi REFERENCE...\n\n"
	      "Remove images from the store (see voidbox images), with the blobs and\n"
	      "root disks no other image uses.  REFERENCE is normalized as voidbox pull\n"
	      "does (python:3.12 is docker.io/library/python:3.12).\n\n"
	      "Exit status: 0, 1 when an image is not in the store, 125 when the store\n"
	      "cannot be changed, 2 for bad arguments.\n",
	      out);
}

int vb_cmd_rmi(int argc, char **argv)
{
	vb_error err = { 0 };
	int n = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		}
		if (argv[i][0] == '-') {
			static const char *const values[] = { NULL };
			static const char *const flags[] = { "--help", NULL };
			vb_cli_bad_option("rmi", argv[i], values, flags, &err);
			return vb_cli_fail(&err);
		}
		struct vb_oci_ref r;
		if (vb_oci_ref_parse(argv[i], &r, &err) < 0)
			return vb_cli_fail(&err);
		vb_oci_ref_clear(&r);
		n++;
	}
	if (!n) {
		vb_error_set(&err, VB_E_USAGE, "rmi: which image? (see 'voidbox rmi --help')");
		return vb_cli_fail(&err);
	}
	_cleanup_free_ char *oci = vb_oci_dir(&err);
	if (!oci)
		return vb_cli_fail(&err);
	int status = 0;
	for (int i = 1; i < argc; i++) {
		struct vb_oci_ref r;
		vb_oci_ref_parse(argv[i], &r, &err);
		_cleanup_free_ char *refstr = vb_oci_ref_string(&r);
		vb_oci_ref_clear(&r);
		uint64_t freed = 0;
		int rc = refstr ? vb_oci_store_remove(oci, refstr, &freed, &err) : -1;
		if (rc < 0)
			return vb_cli_fail(&err);
		if (rc > 0) {
			vb_cli_warn("rmi: %s is not in the store (see voidbox images)", refstr);
			status = 1;
			continue;
		}
		char size[32];
		vb_obs_fmt_bytes(freed, size, sizeof(size));
		printf("removed %s (%s freed)\n", refstr, size);
	}
	return status;
}
