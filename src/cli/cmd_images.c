/* SPDX-License-Identifier: Apache-2.0 */
/* voidbox images: the OCI images in the store, and its garbage collection. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "oci/oci.h"
#include "observe/observe_int.h"
#include "util/term.h"
#include "util/util.h"

static void usage(FILE *out)
{
	fputs("usage: voidbox images [-o text|json]\n"
	      "       voidbox images --prune\n\n"
	      "List the OCI images in the store (voidbox pull): REFERENCE, DIGEST (the\n"
	      "linux/amd64 manifest's, shortened), SIZE (as stored, compressed) and\n"
	      "LAST USED.\n\n"
	      "  -o, --output FORMAT   text (default) or json: an array of {\"reference\",\n"
	      "                        \"digest\", \"manifest\", \"size\", \"last_used\"}\n"
	      "                        (last_used in seconds since the epoch)\n"
	      "      --prune           delete blobs and root disks no image uses, then the\n"
	      "                        least recently used images until the store fits its\n"
	      "                        bound ($VOIDBOX_OCI_MAX_BYTES, default 20G; also\n"
	      "                        applied after every pull)\n\n"
	      "Exit status: 0, 125 when the store cannot be read, 2 for bad options.\n",
	      out);
}

static void ago(int64_t t, char *out, size_t n)
{
	int64_t d = (int64_t)time(NULL) - t;
	if (d < 0)
		d = 0;
	if (d < 60)
		snprintf(out, n, "just now");
	else if (d < 3600)
		snprintf(out, n, "%lld minute%s ago", (long long)(d / 60), d / 60 == 1 ? "" : "s");
	else if (d < 86400)
		snprintf(out, n, "%lld hour%s ago", (long long)(d / 3600), d / 3600 == 1 ? "" : "s");
	else
		snprintf(out, n, "%lld day%s ago", (long long)(d / 86400), d / 86400 == 1 ? "" : "s");
}

int vb_cmd_images(int argc, char **argv)
{
	vb_error err = { 0 };
	int json = 0, prune = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--prune")) {
			prune = 1;
		} else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc) {
			v = argv[++i];
		} else if (!strncmp(a, "--output=", 9)) {
			v = a + 9;
		} else {
			static const char *const values[] = { "--output", "-o", NULL };
			static const char *const flags[] = { "--prune", "--help", NULL };
			vb_cli_bad_option("images", a, values, flags, &err);
			return vb_cli_fail(&err);
		}
		if (v && vb_cli_output_format("images", v, &json, &err) < 0)
			return vb_cli_fail(&err);
	}
	_cleanup_free_ char *oci = vb_oci_dir(&err);
	if (!oci)
		return vb_cli_fail(&err);
	if (prune) {
		uint64_t freed = 0;
		if (vb_oci_store_gc(oci, vb_oci_store_bound(), NULL, 1, &freed, &err) < 0)
			return vb_cli_fail(&err);
		char size[32];
		vb_obs_fmt_bytes(freed, size, sizeof(size));
		printf("freed %s\n", size);
		return 0;
	}
	struct vb_oci_entry *e = NULL;
	size_t n = 0;
	if (vb_oci_store_list(oci, &e, &n, &err) < 0)
		return vb_cli_fail(&err);
	if (json) {
		json_t *arr = json_array();
		for (size_t i = 0; arr && i < n; i++)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:I}", "reference",
							     e[i].reference, "digest", e[i].digest,
							     "manifest", e[i].manifest, "size",
							     (json_int_t)e[i].size, "last_used",
							     (json_int_t)e[i].last_used));
		_cleanup_free_ char *text = arr ? json_dumps(arr, JSON_INDENT(2)) : NULL;
		json_decref(arr);
		if (text)
			puts(text);
	} else {
		printf("%-50s %-19s %10s  %s\n", "REFERENCE", "DIGEST", "SIZE", "LAST USED");
		for (size_t i = 0; i < n; i++) {
			char size[32], when[48];
			vb_obs_fmt_bytes(e[i].size, size, sizeof(size));
			ago(e[i].last_used, when, sizeof(when));
			vb_term_printf(stdout, VB_TERM_LINES, "%-50s %.19s %10s  %s\n", e[i].reference, e[i].manifest,
				       size, when);
		}
	}
	vb_oci_entries_free(e, n);
	return 0;
}
