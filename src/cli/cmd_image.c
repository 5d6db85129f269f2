/* SPDX-License-Identifier: Apache-2.0 */
/* voidbox image build|list: the guest kernel and initramfs in the cache. */
#include <dirent.h>
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
	"       voidbox image list\n"
	"\n"
	"build  build the guest kernel (Linux 6.1 from Debian's linux-source-6.1,\n"
	"       tinyconfig + guest/kernel/voidbox.fragment; a few minutes on 2 cores\n"
	"       the first time, cached per config hash) and the initramfs (guest agent\n"
	"       + busybox)\n"
	"list   show what is in the cache (${XDG_CACHE_HOME:-~/.cache}/voidbox)\n";

static int list(void)
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
	DIR *d = opendir(cache);
	if (!d) {
		printf("cache %s is empty (run `voidbox image build`)\n", cache);
		return 0;
	}
	_cleanup_free_ char *initramfs = vb_image_initramfs(&err);
	const char *init_base = initramfs ? strrchr(initramfs, '/') + 1 : "";
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
		printf("%-36s %10lld  %s\n", e->d_name, (long long)st.st_size,
		       in_use ? "current" : "unused");
	}
	closedir(d);
	return 0;
}

int vb_cmd_image(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage_text, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "list"))
		return list();
	if (!strcmp(argv[1], "build")) {
		int force = argc > 2 && !strcmp(argv[2], "--force");
		if (argc > 2 && !force) {
			fputs(usage_text, stderr);
			return 2;
		}
		vb_error err = { 0 };
		if (vb_image_build(force, &err) < 0)
			return vb_cli_fail(&err);
		_cleanup_free_ char *kernel = vb_image_kernel(&err);
		_cleanup_free_ char *initramfs = vb_image_initramfs(&err);
		if (!kernel || !initramfs)
			return vb_cli_fail(&err);
		printf("kernel:    %s\ninitramfs: %s\n", kernel, initramfs);
		/* with a new kernel, the accelerator is decided again: do it now,
		 * so the first VM does not pay for it and the answer is told here */
		struct vb_accel_info accel;
		if (vb_accel_resolve(VB_ACCEL_AUTO, kernel, 0, &accel, &err) == 0) {
			printf("accel:     %s\n", accel.accel);
			vb_cli_accel_notice(&accel, stderr);
		}
		return 0;
	}
	fprintf(stderr, "voidbox: unknown image command '%s'\n", argv[1]);
	fputs(usage_text, stderr);
	return 2;
}
