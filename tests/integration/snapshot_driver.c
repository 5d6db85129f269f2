/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapshot_driver REF PROG [ARGS...]: restore the stored snapshot REF
 * *without* the new identity (vb_sandbox_restore_unkeyed: the restored VM
 * keeps the snapshot's secret), run PROG as root in it, pass its stdout and
 * stderr through and exit with its code.  Prints "restored in N ms" on
 * stderr.  For tests/integration/test_snapshot.sh and bench/snapshot.sh
 * only, until vb_sandbox_rekey() lets `voidbox exec --snapshot` do this.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sandbox/sandbox_int.h"
#include "util/util.h"

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: snapshot_driver REF PROG [ARGS...]\n");
		return 2;
	}
	vb_error err = { 0 };
	struct vb_sandbox_config cfg = { 0 };
	int64_t t0 = vb_now_ms();
	vb_sandbox *sb = vb_sandbox_restore_unkeyed(&cfg, argv[1], &err);
	if (!sb) {
		fprintf(stderr, "snapshot_driver: %s\n", err.msg);
		return 125;
	}
	fprintf(stderr, "restored in %lld ms (channel up %lld ms after QEMU started)\n",
		(long long)(vb_now_ms() - t0), (long long)vb_sandbox_boot_ms(sb));
	struct vb_exec_params p = { .argv = (const char *const *)argv + 2, .as_root = 1,
				    .timeout_ms = 60000 };
	struct vb_exec_result res = { 0 };
	int code = 125;
	if (vb_exec_run(sb, &p, NULL, 0, 1u << 20, &res, &err) < 0) {
		fprintf(stderr, "snapshot_driver: %s\n", err.msg);
	} else {
		if (vb_write_full(1, res.out, res.out_len) < 0 ||
		    vb_write_full(2, res.errout, res.err_len) < 0)
			code = 125;
		code = res.exit_code;
		fprintf(stderr, "first exec done %lld ms after the restore began\n",
			(long long)(vb_now_ms() - t0));
	}
	vb_exec_result_free(&res);
	vb_sandbox_free(sb);
	return code;
}
