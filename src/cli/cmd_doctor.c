/* SPDX-License-Identifier: Apache-2.0 */
/*
 * voidbox doctor: what this machine can do, and what to fix.  It changes
 * nothing: the accelerator verdict is read from the cache or, when there is
 * none yet, found by a probe whose result is not stored; the initramfs is
 * built in memory for that probe if it is not cached.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentbin/agentbin.h"
#include "cli/cli.h"
#include "image/image.h"
#include "observe/observe_int.h"
#include "util/term.h"
#include "util/util.h"
#include "vmm/accel.h"
#include "vmm/vmm.h"

static const char usage_text[] =
	"usage: voidbox doctor [-o json]\n"
	"\n"
	"Check the VM backend, the accelerator (KVM is used only once a probe VM\n"
	"booted under it on this host), the isolation level and the guest image;\n"
	"say what is missing and how to fix it. Changes nothing on the machine.\n"
	"\n"
	"options:\n"
	"  -o, --output FORMAT   text (default) or json\n"
	"  -h, --help            this help\n"
	"\n"
	"exit codes: 0 ready (a VM can boot here), 1 not ready, 2 bad usage.\n";

struct report {
	json_t *checks; /* [{name, state, fix}] in print order */
	int problems;
};

static void check(struct report *r, const char *name, const char *state, const char *fix)
{
	json_array_append_new(r->checks, json_pack("{s:s, s:s, s:s?}", "name", name, "state", state,
						   "fix", fix));
	r->problems += fix != NULL;
}

static void kvm_device(struct report *r)
{
	const char *dev = vb_vmm_kvm_device();
	int fd = open(dev, O_RDWR | O_CLOEXEC);
	int e = errno;
	_cleanup_free_ char *state = NULL;
	if (fd >= 0) {
		close(fd);
		state = vb_strfmt("%s opens (read/write)", dev);
	} else {
		state = vb_strfmt("%s: %s", dev, strerror(e));
	}
	check(r, "kvm device", state ? state : "?", NULL);
}

static void accelerator(struct report *r, json_t *facts)
{
	struct vb_accel_info info;
	vb_error err = { 0 };
	if (vb_accel_resolve(VB_ACCEL_AUTO, NULL, VB_ACCEL_NO_WRITE, &info, &err) < 0) {
		check(r, "accelerator", "undecided", err.msg);
		return;
	}
	const char *how = info.wanted != VB_ACCEL_AUTO ? " (asked for by VOIDBOX_ACCEL)"
			  : info.probed			? " (probe run now, not cached)"
			  : !strcmp(info.accel, "kvm")	? " (proven by a probe VM on this host boot)"
							: "";
	_cleanup_free_ char *state =
		info.reason[0] ? vb_strfmt("%s%s: %s%s%s", info.accel, how, info.reason,
					   info.log[0] ? "; probe log: " : "", info.log)
			       : vb_strfmt("%s%s", info.accel, how);
	check(r, "accelerator", state ? state : info.accel, NULL);
	int hw = !strcmp(info.accel, "kvm");
	check(r, "isolation",
	      hw ? "hardware virtualization"
		 : "emulated: each VM runs its own kernel under QEMU's TCG emulator, not "
		   "hardware virtualization; slower, same guest boundary",
	      NULL);
	json_object_set_new(facts, "accel", json_string(info.accel));
	json_object_set_new(facts, "accel_reason", json_string(info.reason));
	json_object_set_new(facts, "isolation", json_string(hw ? "hardware" : "emulated"));
}

/* The agent binaries: optional (only agent stages need them), so never a
 * problem; the state says how to get what is missing. */
static void agents(struct report *r)
{
	for (int k = 0; k < VB_AGENTBIN_N; k++) {
		struct vb_agentbin_info in;
		vb_error err = { 0 };
		_cleanup_free_ char *state = NULL;
		if (vb_agentbin_info((enum vb_agentbin_kind)k, &in, &err) < 0)
			state = strdup(err.msg);
		else if (in.tree)
			state = vb_strfmt("%s, cached in %s", in.version, in.tree);
		else
			state = vb_strfmt("%s, not cached (`voidbox agent pull %s` fetches it, "
					  "~170 MB)",
					  in.version, in.kind_name);
		vb_agentbin_info_free(&in);
		check(r, vb_agentbin_name((enum vb_agentbin_kind)k), state ? state : "?", NULL);
	}
	const char *missing = vb_agentbin_support_missing();
	_cleanup_free_ char *state =
		missing ? vb_strfmt("missing: claude-code and codex VMs need Debian's %s "
				    "(apt-get install musl bash-static)",
				    missing)
			: NULL;
	check(r, "agent libs", state ? state : "musl loader and static bash found", NULL);
}

static void report(struct report *r, json_t *facts)
{
	vb_error err = { 0 };
	char desc[256] = "";
	int qemu_ok = vb_vmm_qemu_ops.probe(desc, sizeof(desc), &err) == 0;
	check(r, "backend", qemu_ok ? "qemu (microvm)" : "none", qemu_ok ? NULL : err.msg);
	if (qemu_ok)
		check(r, "qemu", desc, NULL);
	kvm_device(r);
	if (qemu_ok)
		accelerator(r, facts);

	vb_error_clear(&err);
	_cleanup_free_ char *kernel = vb_image_kernel(&err);
	check(r, "kernel", kernel ? kernel : "not built",
	      kernel ? NULL : "run `voidbox image build` (a few minutes, once)");
	vb_error_clear(&err);
	int fd = vb_image_initramfs_open(0, &err);
	if (fd >= 0)
		close(fd);
	check(r, "initramfs",
	      fd < 0 ? err.msg : vb_image_initramfs_cached() ? "cached" : "built on first use",
	      fd < 0 ? "install busybox-static (apt-get install busybox-static)" : NULL);
	size_t agent_len;
	vb_agent_bytes(&agent_len);
	char agent[64];
	snprintf(agent, sizeof(agent), "embedded, %zu bytes", agent_len);
	check(r, "guest agent", agent, NULL);

	/* Only `image build` needs the data directory: without it a built
	 * kernel still boots, so it is a problem only when none is built. */
	_cleanup_free_ char *script = vb_strfmt("%s/guest/kernel/build.sh", vb_datadir());
	char shown[512], state[600];
	vb_term_copy(shown, sizeof(shown), script ? vb_datadir() : NULL, 0);
	if (script && access(script, X_OK) == 0) {
		check(r, "data", shown, NULL);
	} else {
		snprintf(state, sizeof(state), "not found (no guest/kernel/build.sh in %s)", shown);
		check(r, "data", state,
		     kernel ? NULL : "set VOIDBOX_DATADIR to an installed share/voidbox directory");
	}

	vb_error_clear(&err);
	_cleanup_free_ char *run = vb_runtime_root(&err);
	check(r, "runtime dir", run ? run : err.msg,
	      run ? NULL : "set XDG_RUNTIME_DIR to a private directory");
	agents(r);
}

int vb_cmd_doctor(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int json = 0, c;
	vb_error err = { 0 };
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:ho:", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage_text, stdout);
			return 0;
		}
		if (c == 'o' ? vb_cli_output_format("doctor", optarg, &json, &err) < 0
			     : vb_cli_getopt_fail("doctor", c, argv, longopts, &err) < 0)
			return vb_cli_fail(&err);
	}
	if (optind < argc) {
		vb_cli_unexpected_arg("doctor", argv[optind], &err);
		return vb_cli_fail(&err);
	}

	struct report r = { .checks = json_array() };
	json_t *facts = json_object();
	if (!r.checks || !facts) {
		vb_error_set(&err, VB_E_RUNTIME, "out of memory");
		return vb_cli_fail(&err);
	}
	report(&r, facts);
	const char *status = r.problems ? "not ready" : "ready";
	if (json) {
		json_object_set_new(facts, "status", json_string(status));
		json_object_set(facts, "checks", r.checks);
		char *text = json_dumps(facts, JSON_INDENT(2));
		if (text) {
			vb_term_puts(stdout, text, VB_TERM_JSON); /* DEL and C1 as \u escapes */
			putchar('\n');
		}
		free(text);
	} else {
		printf("voidbox doctor\n");
		size_t i;
		json_t *ck;
		json_array_foreach(r.checks, i, ck) {
			const char *fix = json_string_value(json_object_get(ck, "fix"));
			/* states quote paths, QEMU's and the kernel's words */
			vb_term_printf(stdout, 0, "  %-12s %s", json_string_value(json_object_get(ck, "name")),
				       json_string_value(json_object_get(ck, "state")));
			putchar('\n');
			if (fix) {
				vb_term_printf(stdout, 0, "  %-12s -> %s", "", fix);
				putchar('\n');
			}
		}
		printf("status: %s\n", status);
	}
	json_decref(r.checks);
	json_decref(facts);
	return r.problems ? 1 : 0;
}
