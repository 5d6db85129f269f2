/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/util.h"

/* In order of preference for VB_BACKEND_AUTO. */
static const struct vb_vmm_ops *const backends[] = {
	&vb_vmm_qemu_ops,
};

const struct vb_vmm_ops *vb_vmm_pick(enum vb_backend b, vb_error *err)
{
	if (b == VB_BACKEND_QEMU)
		return vb_vmm_qemu_ops.probe(NULL, 0, err) < 0 ? NULL : &vb_vmm_qemu_ops;
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (backends[i]->probe(NULL, 0, err) == 0)
			return backends[i];
	return NULL;
}

int vb_vmm_wait(struct vb_vmm *vm, int timeout_ms)
{
	if (vm->reaped)
		return 1;
	int64_t deadline = vb_now_ms() + timeout_ms;
	for (;;) {
		pid_t r = waitpid(vm->pid, &vm->status, WNOHANG);
		if (r == vm->pid || (r < 0 && errno == ECHILD)) {
			vm->reaped = 1;
			return 1;
		}
		int64_t left = deadline - vb_now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = { .fd = vm->pidfd, .events = POLLIN };
		poll(&p, 1, (int)left);
	}
}

char *vb_vmm_output(struct vb_vmm *vm, int which, int wait_ms, size_t *len)
{
	return vb_vmm_logs_text(&vm->logs, which, wait_ms, len);
}

uint64_t vb_vmm_output_bytes(struct vb_vmm *vm, int which)
{
	return vb_vmm_logs_total(&vm->logs, which);
}

int vb_vmm_keep_log(const char *name, const char *const *parts, char *path, size_t path_len)
{
	vb_error e;
	_cleanup_free_ char *state = vb_state_dir(&e);
	_cleanup_free_ char *dir = state ? vb_strfmt("%s/vm-logs", state) : NULL;
	if (!dir || vb_mkdir_p(dir, 0700, &e) < 0)
		return -1;
	_cleanup_free_ char *dst = vb_strfmt("%s/%s", dir, name);
	int fd = dst ? open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600) : -1;
	if (fd < 0)
		return -1;
	int ok = 1;
	for (size_t i = 0; ok && parts[i]; i++)
		ok = vb_write_full(fd, parts[i], strlen(parts[i])) == 0;
	if (close(fd) < 0 || !ok || snprintf(path, path_len, "%s", dst) >= (int)path_len)
		return -1;
	return 0;
}

void vb_vmm_destroy(struct vb_vmm *vm)
{
	if (!vm)
		return;
	if (!vm->reaped && vm->pid > 0) {
		kill(vm->pid, SIGKILL);
		while (waitpid(vm->pid, &vm->status, 0) < 0 && errno == EINTR)
			;
		vm->reaped = 1;
	}
	if (vm->pidfd >= 0)
		close(vm->pidfd);
	vb_vmm_logs_free(&vm->logs);
	free(vm->qmp_socket);
	free(vm);
}
