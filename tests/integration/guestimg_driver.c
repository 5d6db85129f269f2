/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A driver for tests/integration/test_oci_guestimg.sh (not an itest_*:
 * tests/run.sh runs those bare), until the spec and
 * CLI name guest images (sandbox.guest_image):
 *
 *   guestimg_driver prepare CACHE_DIR BLOB[=MEDIA_TYPE]...
 *       vb_guestimg_prepare(); prints "kernel PATH" and "initramfs PATH"
 *   guestimg_driver check KERNEL [net|disk]...
 *       vb_guestimg_check_kernel(); prints "ok"
 *   guestimg_driver boot KERNEL GUEST_INITRAMFS PROGRAM ARGS...
 *       boots the kernel with the guest initramfs under VoidBox's own
 *       (vb_sandbox_config.guest_initramfs), runs PROGRAM as root and
 *       passes on its stdout, stderr and exit code
 *
 * Errors go to stderr as "error: MESSAGE"; the exit code is 2 for a usage
 * error (a bad guest image), 1 for anything else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci/guestimg.h"
#include "voidbox/voidbox.h"

static int fail(const vb_error *err)
{
	fprintf(stderr, "error: %s\n", err->msg);
	return err->kind == VB_E_USAGE ? 2 : 1;
}

static int prepare(int argc, char **argv)
{
	size_t n = (size_t)argc - 1;
	const char **paths = calloc(n + 1, sizeof(*paths));
	const char **types = calloc(n + 1, sizeof(*types));
	if (!paths || !types)
		return 1;
	for (size_t i = 0; i < n; i++) {
		char *eq = strchr(argv[i + 1], '=');
		if (eq)
			*eq = '\0';
		paths[i] = argv[i + 1];
		types[i] = eq ? eq + 1 : NULL;
	}
	vb_error err = { 0 };
	char *kernel = NULL, *initramfs = NULL;
	int rc = vb_guestimg_prepare(paths, types, n, argv[0], &kernel, &initramfs, &err);
	free(paths);
	free(types);
	if (rc < 0)
		return fail(&err);
	printf("kernel %s\ninitramfs %s\n", kernel, initramfs);
	free(kernel);
	free(initramfs);
	return 0;
}

static int check(int argc, char **argv)
{
	unsigned need = 0;
	for (int i = 1; i < argc; i++)
		need |= !strcmp(argv[i], "net") ? VB_GUESTIMG_NEED_NET
			: !strcmp(argv[i], "disk") ? VB_GUESTIMG_NEED_DISK
						   : 0;
	vb_error err = { 0 };
	if (vb_guestimg_check_kernel(argv[0], need, &err) < 0)
		return fail(&err);
	puts("ok");
	return 0;
}

static int boot(char **argv)
{
	vb_error err = { 0 };
	struct vb_sandbox_config cfg = {
		.kernel = argv[0],
		.guest_initramfs = argv[1],
		.memory_mib = 256,
		.name = "itest-guestimg",
	};
	vb_sandbox *sb = vb_sandbox_start(&cfg, &err);
	if (!sb)
		return fail(&err);
	struct vb_exec_params p = {
		.argv = (const char *const *)(argv + 2),
		.as_root = 1,
		.timeout_ms = 60000,
	};
	struct vb_exec_result res = { 0 };
	int rc = vb_exec_run(sb, &p, NULL, 0, 1 << 16, &res, &err);
	vb_sandbox_free(sb);
	if (rc < 0)
		return fail(&err);
	if (res.out_len)
		fwrite(res.out, 1, res.out_len, stdout);
	if (res.err_len)
		fwrite(res.errout, 1, res.err_len, stderr);
	rc = res.exit_code;
	vb_exec_result_free(&res);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "prepare"))
		return prepare(argc - 2, argv + 2);
	if (argc >= 3 && !strcmp(argv[1], "check"))
		return check(argc - 2, argv + 2);
	if (argc >= 5 && !strcmp(argv[1], "boot"))
		return boot(argv + 2);
	fprintf(stderr, "usage: guestimg_driver prepare CACHE_DIR BLOB[=MEDIA_TYPE]... |\n"
			"       guestimg_driver check KERNEL [net|disk]... |\n"
			"       guestimg_driver boot KERNEL GUEST_INITRAMFS PROGRAM ARGS...\n");
	return 2;
}
