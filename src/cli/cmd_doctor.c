/* SPDX-License-Identifier: Apache-2.0 */
/* voidbox doctor: what this machine can do, and what to fix. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "image/image.h"
#include "util/util.h"
#include "vmm/vmm.h"

static int problems;

static void line(const char *what, const char *state, const char *fix)
{
	printf("  %-12s %s\n", what, state);
	if (fix) {
		printf("  %-12s -> %s\n", "", fix);
		problems++;
	}
}

static const char usage_text[] =
	"usage: voidbox doctor\n"
	"\n"
	"Check the VM backend, accelerator, isolation level and guest image cache;\n"
	"say what is missing and how to fix it.\n"
	"\n"
	"options:\n"
	"  -h, --help   this help\n"
	"\n"
	"exit codes: 0 when `voidbox exec` can run here, 1 otherwise, 2 bad usage.\n";

/* Returns 1 to check, 0 after --help, -1 with (err) set. */
static int parse(int argc, char **argv, vb_error *err)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		if (c != 'h')
			return vb_cli_getopt_fail("doctor", c, argv, longopts, err);
		fputs(usage_text, stdout);
		return 0;
	}
	if (optind < argc)
		return vb_cli_unexpected_arg("doctor", argv[optind], err);
	return 1;
}

int vb_cmd_doctor(int argc, char **argv)
{
	vb_error err = { 0 };
	if (parse(argc, argv, &err) <= 0)
		return err.kind ? vb_cli_fail(&err) : 0;
	char accel[16] = "", desc[256] = "";
	printf("voidbox doctor\n");

	int qemu_ok = vb_vmm_qemu_ops.probe(accel, sizeof(accel), desc, sizeof(desc), &err) == 0;
	line("backend", qemu_ok ? "qemu (microvm)" : "none", qemu_ok ? NULL : err.msg);
	if (qemu_ok)
		line("qemu", desc, NULL);

	if (vb_vmm_have_kvm()) {
		line("accelerator", "kvm (/dev/kvm usable)", NULL);
		line("isolation", "hardware virtualization", NULL);
	} else {
		const char *why = access("/dev/kvm", F_OK) == 0
					  ? "tcg: /dev/kvm exists but is not accessible (add your user to the 'kvm' group)"
					  : "tcg: no /dev/kvm on this machine (software emulation)";
		line("accelerator", why, NULL);
		line("isolation", "emulated: each VM runs its own kernel under QEMU's TCG emulator, "
				  "not hardware virtualization; slower, same guest boundary", NULL);
	}

	vb_error_clear(&err);
	_cleanup_free_ char *kernel = vb_image_kernel(&err);
	line("kernel", kernel ? kernel : "not built", kernel ? NULL : "run `voidbox image build` (about 20 minutes once)");
	vb_error_clear(&err);
	_cleanup_free_ char *initramfs = vb_image_initramfs(&err);
	line("initramfs", initramfs ? initramfs : err.msg,
	     initramfs ? NULL : "install busybox-static (apt-get install busybox-static)");
	size_t agent_len;
	vb_agent_bytes(&agent_len);
	char agent[64];
	snprintf(agent, sizeof(agent), "embedded, %zu bytes", agent_len);
	line("guest agent", agent, NULL);

	vb_error_clear(&err);
	_cleanup_free_ char *run = vb_runtime_root(&err);
	line("runtime dir", run ? run : err.msg, run ? NULL : "set XDG_RUNTIME_DIR to a private directory");

	printf("%s\n", problems ? "status: not ready" : "status: ready");
	return problems ? 1 : 0;
}
