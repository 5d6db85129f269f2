/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `qemu` backend: qemu-system-x86_64 -M microvm, accelerated by KVM or
 * emulated by TCG, as the caller decided (vmm/accel.c proves KVM first).  Devices are virtio-mmio: a
 * virtio-serial port for the control channel, virtio-9p per host mount,
 * virtio-rng, virtio-net when the VM has a network (its frames go to
 * VoidBox's own user-mode network, net/net.h, never to QEMU's).  The guest
 * console goes to a log file, never to the user.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/util.h"
#include "vb_proto.h"
#include "vmm/qmp.h"
#include "vmm/tsc.h"
#include "vmm/vmm.h"

#define MAX_ARGS 96

static const char *qemu_binary(void)
{
	const char *q = getenv("VOIDBOX_QEMU");
	return q && q[0] ? q : "qemu-system-x86_64";
}

/* QEMU option values separate on ',': a literal comma is written ",,". */
static char *escape(const char *s)
{
	size_t n = strlen(s), commas = 0;
	for (size_t i = 0; i < n; i++)
		commas += s[i] == ',';
	char *out = malloc(n + commas + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		*o++ = s[i];
		if (s[i] == ',')
			*o++ = ',';
	}
	*o = '\0';
	return out;
}

/* The full path of (name), directly or through $PATH, if it is an
 * executable file; 0 if found. */
static int find_executable(const char *name, char *full, size_t len)
{
	if (strchr(name, '/'))
		return snprintf(full, len, "%s", name) < (int)len && access(name, X_OK) == 0 ? 0 : -1;
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");
		if (n > 0 && snprintf(full, len, "%.*s/%s", (int)n, p, name) < (int)len &&
		    access(full, X_OK) == 0)
			return 0;
		p += n + (p[n] == ':');
	}
	return -1;
}

static int identity(char *buf, size_t len)
{
	char full[4096];
	struct stat st;
	if (find_executable(qemu_binary(), full, sizeof(full)) < 0 || stat(full, &st) < 0)
		return -1;
	snprintf(buf, len, "%s %lld %lld", full, (long long)st.st_size, (long long)st.st_mtime);
	return 0;
}

static int probe(char *desc, size_t desc_len, vb_error *err)
{
	char full[4096];
	if (!desc) /* the cheap check, on every boot: is it there at all? */
		return find_executable(qemu_binary(), full, sizeof(full)) == 0
			       ? 0
			       : vb_error_set(err, VB_E_RUNTIME,
					      "%s not found (install: apt-get install qemu-system-x86)",
					      qemu_binary());
	/* `qemu -version` proves the binary runs; only doctor asks */
	char *cmd = vb_strfmt("'%s' -version 2>/dev/null", qemu_binary());
	if (!cmd)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	FILE *p = popen(cmd, "r");
	free(cmd);
	char line[256] = "";
	if (p) {
		if (!fgets(line, sizeof(line), p))
			line[0] = '\0';
		pclose(p);
	}
	line[strcspn(line, "\n")] = '\0';
	if (!line[0])
		return vb_error_set(err, VB_E_RUNTIME,
				    "%s not found or not runnable (install: apt-get install qemu-system-x86)",
				    qemu_binary());
	snprintf(desc, desc_len, "%s", line);
	return 0;
}

struct argv_builder {
	char *argv[MAX_ARGS + 1];
	int n;
	int oom;
};

static void add(struct argv_builder *a, char *owned)
{
	if (!owned || a->n >= MAX_ARGS) {
		a->oom = 1;
		free(owned);
		return;
	}
	a->argv[a->n++] = owned;
}

static void add_lit(struct argv_builder *a, const char *s)
{
	add(a, strdup(s));
}

static void argv_free(struct argv_builder *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->argv[i]);
}

/* microvm without ACPI has 8 virtio-mmio transports; one is lost to the
 * RTC's IRQ (build_argv), the control port and rng take two, the network
 * one more. */
#define QEMU_TRANSPORTS 8u
#define QEMU_NET_FD 5 /* the frame socket's number in QEMU */

static size_t max_mounts(const struct vb_vmm_spec *s)
{
	size_t used = 1 + (s->ctl_socket ? 2 : 1) + (s->net_fd > 0) + s->n_disks;
	return used >= QEMU_TRANSPORTS ? 0 : QEMU_TRANSPORTS - used;
}

/* Under TCG the guest's vCPU is a host thread that a busy host holds off
 * the CPU for tens of milliseconds at a time.  The guest kernel then (a)
 * fails to calibrate its TSC against the PIT at boot, or (b) has its
 * clocksource watchdog see the late jiffies disagree with the TSC and mark
 * the TSC unstable.  Either way it falls back to a 4 ms jiffies clock, in
 * which back-to-back reads return the same time; glibc derives DNS ids from
 * it, so busybox nslookup's A and AAAA queries share an id, and as it
 * matches answers by id alone it drops the second one and waits out its
 * 5 s timeout.  TCG's TSC is the host's: give its frequency
 * (tsc_early_khz, no calibration) and keep the watchdog off it
 * (tsc=reliable).  Under KVM, kvm-clock serves the guest and nothing is
 * added. */
static char *guest_cmdline(const char *cmdline, const char *accel)
{
	if (strcmp(accel, "tcg"))
		return strdup(cmdline);
	unsigned khz = vb_host_tsc_khz();
	if (!khz)
		return vb_strfmt("%s tsc=reliable", cmdline);
	return vb_strfmt("%s tsc=reliable tsc_early_khz=%u", cmdline, khz);
}

static int build_argv(const struct vb_vmm_spec *s, struct argv_builder *a)
{
	const char *accel = s->accel;

	add_lit(a, qemu_binary());
	add_lit(a, "-M");
	add_lit(a, s->ram_file ? "microvm,acpi=off,memory-backend=vbram" : "microvm,acpi=off");
	if (s->ram_file) {
		_cleanup_free_ char *f = escape(s->ram_file);
		if (!f)
			return -1;
		add_lit(a, "-object");
		add(a, vb_strfmt("memory-backend-file,id=vbram,size=%uM,mem-path=%s,share=%s",
				 s->memory_mib, f, s->ram_shared ? "on" : "off"));
	}
	if (s->qmp_socket) {
		_cleanup_free_ char *qs = escape(s->qmp_socket);
		if (!qs)
			return -1;
		add_lit(a, "-qmp");
		add(a, vb_strfmt("unix:%s,server=on,wait=off", qs));
	}
	int incoming = s->incoming_fd > 0;
	if (incoming) {
		add_lit(a, "-incoming");
		add_lit(a, "defer");
	}
	add_lit(a, "-accel");
	add_lit(a, accel);
	add_lit(a, "-cpu");
	add_lit(a, strcmp(accel, "kvm") == 0 ? "host" : "max");
	add_lit(a, "-nodefaults");
	add_lit(a, "-no-user-config");
	add_lit(a, "-no-reboot");
	add_lit(a, "-display");
	add_lit(a, "none");
	add_lit(a, "-sandbox");
	add_lit(a, "on");
	add_lit(a, "-m");
	add(a, vb_strfmt("%u", s->memory_mib));
	add_lit(a, "-smp");
	add(a, vb_strfmt("%u", s->vcpus));
	/* A restored guest booted long ago: its kernel, initrd and command
	 * line are in the snapshot's RAM, and loading them again (or measuring
	 * the TSC for the command line, ~20 ms) would only delay the restore.
	 * Its fd 3 is the saved state instead (restore()). */
	if (!incoming) {
		add_lit(a, "-kernel");
		add_lit(a, s->kernel);
		add_lit(a, "-initrd");
		add_lit(a, "/dev/fd/3");
		add_lit(a, "-append");
		add(a, guest_cmdline(s->cmdline, accel));
	}
	add_lit(a, "-serial"); /* a pipe: the host keeps a bounded part (vmm/logs.c) */
	add_lit(a, "file:/dev/fd/4");
	if (s->ctl_socket) {
		_cleanup_free_ char *sock = escape(s->ctl_socket);
		if (!sock)
			return -1;
		add_lit(a, "-chardev");
		add(a, vb_strfmt("socket,id=vbctl,path=%s", sock));
		add_lit(a, "-device");
		add_lit(a, "virtio-serial-device,max_ports=2");
		add_lit(a, "-device");
		add(a, vb_strfmt("virtserialport,chardev=vbctl,name=%s", VB_PORT_NAME));
	}
	add_lit(a, "-device");
	add_lit(a, "virtio-rng-device");
	size_t devices = s->ctl_socket ? 2 : 1; /* virtio-mmio ones so far */
	if (s->net_fd > 0) {
		/* no vnet header, no offloads: plain Ethernet frames of at most
		 * the MTU, which is what the policy parses */
		add_lit(a, "-netdev");
		add(a, vb_strfmt("stream,id=vbnet,server=off,addr.type=fd,addr.str=%d", QEMU_NET_FD));
		add_lit(a, "-device");
		add_lit(a, "virtio-net-device,netdev=vbnet,mac=52:54:00:12:34:56");
		devices++;
	}
	/* microvm without ACPI has 8 virtio-mmio transports on IRQs 5-12,
	 * handed out from the top in -device order, and the RTC holds IRQ 8:
	 * the fifth device there (a disk or a mount) would find its IRQ taken
	 * and be missing in the guest.  A placeholder takes that transport
	 * instead. */
	for (size_t i = 0; i < s->n_disks; i++) {
		if (devices++ == 4) {
			add_lit(a, "-device");
			add_lit(a, "virtio-rng-device");
			devices++;
		}
		_cleanup_free_ char *file = escape(s->disks[i]);
		if (!file)
			return -1;
		/* read-only to QEMU itself: the guest cannot write the image
		 * whatever it does (it also mounts it read-only) */
		add_lit(a, "-drive");
		add(a, vb_strfmt("file=%s,format=raw,readonly=on,if=none,id=vbd%zu", file, i));
		add_lit(a, "-device");
		add(a, vb_strfmt("virtio-blk-device,drive=vbd%zu,serial=%s%zu", i, VB_DISK_SERIAL, i));
	}
	for (size_t i = 0; i < s->n_mounts; i++) {
		if (devices++ == 4) {
			add_lit(a, "-device");
			add_lit(a, "virtio-rng-device");
			devices++;
		}
		_cleanup_free_ char *host = escape(s->mounts[i].host);
		if (!host)
			return -1;
		add_lit(a, "-fsdev");
		const struct vb_mount *m = &s->mounts[i];
		/* a throttled mount: a steady rate, and a burst of at most a
		 * tenth of a second's worth (QEMU's default bucket) */
		char thr[64] = "";
		if (m->rw && m->write_mib_s)
			snprintf(thr, sizeof(thr), ",throttling.bps-write=%llu",
				 (unsigned long long)m->write_mib_s << 20);
		add(a, vb_strfmt("local,id=vbfs%zu,path=%s,security_model=mapped-xattr%s%s", i,
				 host, m->rw ? "" : ",readonly=on", thr));
		add_lit(a, "-device");
		add(a, vb_strfmt("virtio-9p-device,fsdev=vbfs%zu,mount_tag=vbm%zu", i, i));
	}
	a->argv[a->n] = NULL;
	return a->oom ? -1 : 0;
}

/* In the child, between fork and exec: only async-signal-safe calls.
 * fds: 0 /dev/null, 1 and 2 the VMM's stderr pipe, 3 the initrd (a
 * restore's saved state), 4 the console pipe, 5 the network's frame socket
 * (if any). */
static void child_exec(const struct argv_builder *a, int initrd_fd, const int log_fd[VB_LOG_N],
		       int net_fd, pid_t parent)
{
	setpgid(0, 0); /* the terminal's ^C is ours to handle, not QEMU's */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	/* Lift every source above the targets first: a source that already
	 * sits on its target (e.g. the initrd on fd 3) would keep O_CLOEXEC
	 * through dup2, and one on another target would be overwritten. */
	int src[6] = { open("/dev/null", O_RDONLY | O_CLOEXEC), log_fd[VB_LOG_VMM],
		       log_fd[VB_LOG_VMM], initrd_fd, log_fd[VB_LOG_CONSOLE], net_fd };
	int nfd = net_fd > 0 ? 6 : 5;
	for (int i = 0; i < nfd; i++)
		if (src[i] < 0 || (src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 10)) < 0)
			_exit(127);
	for (int i = 0; i < nfd; i++)
		if (dup2(src[i], i) < 0)
			_exit(127);
	syscall(SYS_close_range, (unsigned)nfd, ~0u, 0u);
	execvp(a->argv[0], a->argv);
	/* reported by the diagnosis, which looks for QEMU's own "qemu-system" lines */
	static const char msg[] = "qemu-system-x86_64: voidbox could not execute the VMM binary\n";
	ssize_t r = write(2, msg, sizeof(msg) - 1);
	(void)r;
	_exit(127);
}

static struct vb_vmm *start(const struct vb_vmm_spec *s, vb_error *err)
{
	if (!s->accel || (strcmp(s->accel, "kvm") && strcmp(s->accel, "tcg"))) {
		vb_error_set(err, VB_E_RUNTIME, "no accelerator chosen for the VM");
		return NULL;
	}
	/* 8 virtio-mmio transports: control port, rng, network, the
	 * placeholder on IRQ 8 (build_argv) and the mounts */
	if (s->n_mounts > max_mounts(s)) {
		vb_error_set(err, VB_E_USAGE, "at most %zu mounts per VM on the qemu backend%s%s (%zu asked)",
			     max_mounts(s), s->net_fd > 0 ? " when the VM has a network" : "",
			     s->n_disks ? " and these disks" : "", s->n_mounts);
		return NULL;
	}
	if (probe(NULL, 0, err) < 0)
		return NULL;
	struct argv_builder a = { .n = 0 };
	if (build_argv(s, &a) < 0) {
		argv_free(&a);
		vb_error_set(err, VB_E_RUNTIME, "cannot build the QEMU command line");
		return NULL;
	}
	struct vb_vmm *vm = calloc(1, sizeof(*vm));
	if (!vm) {
		argv_free(&a);
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	vm->ops = &vb_vmm_qemu_ops;
	vm->pidfd = -1;
	if (s->qmp_socket && !(vm->qmp_socket = strdup(s->qmp_socket))) {
		argv_free(&a);
		free(vm);
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	snprintf(vm->accel, sizeof(vm->accel), "%s", s->accel);
	if (vb_vmm_logs_init(&vm->logs, err) < 0) {
		argv_free(&a);
		vb_vmm_destroy(vm);
		return NULL;
	}
	pid_t parent = getpid();
	vm->pid = fork();
	if (vm->pid == 0)
		child_exec(&a, s->incoming_fd > 0 ? s->incoming_fd : s->initrd_fd, vm->logs.wfd,
			   s->net_fd, parent);
	argv_free(&a);
	if (vm->pid < 0) {
		vb_error_errno(err, errno, "cannot start QEMU");
		vb_vmm_destroy(vm);
		return NULL;
	}
	vm->pidfd = (int)syscall(SYS_pidfd_open, vm->pid, 0);
	if (vm->pidfd < 0 || vb_vmm_logs_run(&vm->logs, err) < 0) {
		if (vm->pidfd < 0)
			vb_error_errno(err, errno, "pidfd_open");
		vb_vmm_destroy(vm);
		return NULL;
	}
	return vm;
}

/* ---- snapshots (docs/snapshots.md) -------------------------------------
 *
 * Guest RAM is a file (memory-backend-file) left out of the migration
 * stream by x-ignore-shared: saving writes only device state (~100 KB), and
 * a restore maps the RAM file privately, so it starts without reading it
 * and N restores share its pages. */

#define IGNORE_SHARED "{\"capabilities\":[{\"capability\":\"x-ignore-shared\",\"state\":true}]}"

/* A file name QEMU hands to /bin/sh -c inside exec:...: single-quoted. */
static char *exec_uri(const char *cmd, const char *path)
{
	if (strchr(path, '\'') || strchr(path, '"') || strchr(path, '\\'))
		return NULL;
	return vb_strfmt("{\"uri\":\"exec:%s '%s'\"}", cmd, path);
}

static struct vb_qmp *qmp(struct vb_vmm *vm, int timeout_ms, vb_error *err)
{
	if (!vm->qmp_socket) {
		vb_error_set(err, VB_E_RUNTIME, "the VM was started without a monitor");
		return NULL;
	}
	return vb_qmp_open(vm->qmp_socket, vm->pidfd, timeout_ms, err);
}

static int save(struct vb_vmm *vm, const char *state_path, int timeout_ms, vb_error *err)
{
	int64_t deadline = vb_now_ms() + timeout_ms;
	_cleanup_free_ char *args = exec_uri("cat >", state_path);
	if (!args)
		return vb_error_set(err, VB_E_USAGE, "cannot save to %s (quotes in the path)",
				    state_path);
	struct vb_qmp *q = qmp(vm, timeout_ms, err);
	if (!q)
		return -1;
	int rc = -1;
#define LEFT ((int)(deadline - vb_now_ms()))
	if (vb_qmp_cmd(q, "migrate-set-capabilities", IGNORE_SHARED, LEFT, NULL, err) == 0 &&
	    vb_qmp_cmd(q, "stop", NULL, LEFT, NULL, err) == 0 &&
	    vb_qmp_cmd(q, "migrate", args, LEFT, NULL, err) == 0 &&
	    vb_qmp_wait_migration(q, LEFT, err) == 0)
		rc = 0;
	vb_qmp_close(q);
	if (rc < 0)
		vb_error_prefix(err, "cannot save the VM");
	return rc;
}

/* The state is QEMU's fd 3 (start()): read in place, without the shell
 * and cat an exec: URI costs.  A regular file never blocks, so QEMU loads
 * it in one go and the first query-status after it mostly finds it done. */
static int restore(struct vb_vmm *vm, int timeout_ms, vb_error *err)
{
	int64_t deadline = vb_now_ms() + timeout_ms;
	struct vb_qmp *q = qmp(vm, timeout_ms, err);
	if (!q)
		return -1;
	int rc = -1;
	/* the source was paused before it was saved, so the loaded VM comes
	 * up "paused" (not started by QEMU on its own): cont runs it */
	if (vb_qmp_cmd(q, "migrate-set-capabilities", IGNORE_SHARED, LEFT, NULL, err) == 0 &&
	    vb_qmp_cmd(q, "migrate-incoming", "{\"uri\":\"fd:3\"}", LEFT, NULL, err) == 0 &&
	    vb_qmp_wait_status(q, "paused", LEFT, err) == 0 &&
	    vb_qmp_cmd(q, "cont", NULL, LEFT, NULL, err) == 0)
		rc = 0;
#undef LEFT
	vb_qmp_close(q);
	if (rc < 0)
		vb_error_prefix(err, "cannot restore the VM");
	return rc;
}

const struct vb_vmm_ops vb_vmm_qemu_ops = {
	.name = "qemu",
	.probe = probe,
	.identity = identity,
	.start = start,
	.save = save,
	.restore = restore,
};
