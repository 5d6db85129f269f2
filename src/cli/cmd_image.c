/* SPDX-License-Identifier: Apache-2.0 */
/* voidbox image build|list: the guest kernel and initramfs in the cache. */
#include <dirent.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "image/image.h"
#include "util/util.h"

static const char usage_text[] =
	"usage: voidbox image build [--force]\n"
	"       voidbox image list [-o text|json]\n"
	"\n"
	"build  build the guest kernel (Linux 6.1 from Debian's linux-source-6.1,\n"
	"       tinyconfig + guest/kernel/voidbox.fragment; a few minutes on 2 cores\n"
	"       the first time, cached per config hash) and the initramfs (guest agent\n"
	"       + busybox)\n"
	"list   show what is in the cache (${XDG_CACHE_HOME:-~/.cache}/voidbox)\n"
	"\n"
	"options:\n"
	"  --force               build: rebuild even what is cached\n"
	"  -o, --output FORMAT   list: text (default) or json, an array of\n"
	"                        {\"name\", \"kind\", \"size\", \"current\"}\n"
	"  -h, --help            this help\n"
	"\n"
	"exit codes: 0 done; 2 bad usage; 125 the build failed.\n";

static int list(int json)
{
	vb_error err = { 0 };
	_cleanup_free_ char *cache = vb_cache_dir(&err);
	if (!cache)
		return vb_cli_fail(&err);
	_cleanup_free_ char *current = vb_strfmt("%s/kernel-current", cache);
	char target[256] = "";
	ssize_t n = current ? readlink(current, target, sizeof(target) - 1) : -1;
	if (n > 0)
		target[n] = '\0';
	json_t *arr = json ? json_array() : NULL;
	DIR *d = opendir(cache);
	if (!d) {
		if (json)
			puts("[]");
		else
			printf("cache %s is empty (run `voidbox image build`)\n", cache);
		json_decref(arr);
		return 0;
	}
	_cleanup_free_ char *initramfs = vb_image_initramfs(&err);
	const char *init_base = initramfs ? strrchr(initramfs, '/') + 1 : "";
	if (!json)
		printf("%-36s %10s  %s\n", "IMAGE", "SIZE", "STATE");
	struct dirent *e;
	while ((e = readdir(d))) {
		int is_kernel = !strncmp(e->d_name, "kernel-", 7) && strcmp(e->d_name, "kernel-current") &&
				strncmp(e->d_name, "kernel-build-", 13);
		int is_init = !strncmp(e->d_name, "initramfs-", 10) && !strstr(e->d_name, ".tmp.");
		if (!is_kernel && !is_init)
			continue;
		_cleanup_free_ char *path = is_kernel ? vb_strfmt("%s/%s/bzImage", cache, e->d_name)
						     : vb_strfmt("%s/%s", cache, e->d_name);
		struct stat st;
		if (!path || stat(path, &st) < 0)
			continue;
		int in_use = is_kernel ? !strcmp(e->d_name, target) : !strcmp(e->d_name, init_base);
		if (json)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:b}", "name", e->d_name,
							     "kind", is_kernel ? "kernel" : "initramfs",
							     "size", (json_int_t)st.st_size,
							     "current", in_use));
		else
			printf("%-36s %10lld  %s\n", e->d_name, (long long)st.st_size,
			       in_use ? "current" : "unused");
	}
	closedir(d);
	if (json) {
		_cleanup_free_ char *text = json_dumps(arr, JSON_INDENT(2));
		json_decref(arr);
		if (!text) {
			vb_error_set(&err, VB_E_RUNTIME, "image list: out of memory");
			return vb_cli_fail(&err);
		}
		puts(text);
	}
	return 0;
}

/* Options of `image build` and `image list`; returns 1 to go on, 0 after
 * --help, -1 with (err) set. */
static int parse(int argc, char **argv, int *force, int *json, vb_error *err)
{
	static const struct option build_opts[] = {
		{ "force", no_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct option list_opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int build = !strcmp(argv[0], "build");
	const char *verb = build ? "image build" : "image list";
	const struct option *longopts = build ? build_opts : list_opts;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, build ? "+:h" : "+:ho:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'F':
			*force = 1;
			break;
		case 'o':
			if (vb_cli_output_format(verb, optarg, json, err) < 0)
				return -1;
			break;
		default:
			return vb_cli_getopt_fail(verb, c, argv, longopts, err);
		}
	}
	if (optind < argc)
		return vb_cli_unexpected_arg(verb, argv[optind], err);
	return 1;
}

int vb_cmd_image(int argc, char **argv)
{
	vb_error err = { 0 };
	if (argc < 2) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage_text, stdout);
		return 0;
	}
	static const char *const subs[] = { "build", "list" };
	if (strcmp(argv[1], "build") && strcmp(argv[1], "list")) {
		if (argv[1][0] == '-')
			vb_cli_unknown_option("image", argv[1], NULL, &err);
		else
			vb_cli_unknown_command("image", argv[1], subs, 2, &err);
		return vb_cli_fail(&err);
	}
	int force = 0, json = 0;
	int rc = parse(argc - 1, argv + 1, &force, &json, &err);
	if (rc <= 0)
		return rc < 0 ? vb_cli_fail(&err) : 0;
	if (!strcmp(argv[1], "list"))
		return list(json);
	if (vb_image_build(force, &err) < 0)
		return vb_cli_fail(&err);
	_cleanup_free_ char *kernel = vb_image_kernel(&err);
	_cleanup_free_ char *initramfs = vb_image_initramfs(&err);
	if (!kernel || !initramfs)
		return vb_cli_fail(&err);
	printf("kernel:    %s\ninitramfs: %s\n", kernel, initramfs);
	/* with a new kernel, the accelerator is decided again: do it now, so
	 * the first VM does not pay for it and the answer is told here */
	struct vb_accel_info accel;
	if (vb_accel_resolve(VB_ACCEL_AUTO, kernel, 0, &accel, &err) == 0) {
		printf("accel:     %s\n", accel.accel);
		vb_cli_accel_notice(&accel, stderr);
	}
	return 0;
}
