/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One micro-VM's life: runtime directory → per-VM initramfs (shared archive +
 * boot data with the session secret, in a memfd that never touches disk) →
 * VMM → control channel accepted and authenticated → work → teardown.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image/image.h"
#include "sandbox/sandbox_int.h"
#include "util/util.h"

/* no_timer_check: under TCG on a loaded host the kernel's IO-APIC timer
 * check can miss its window and panic ("IO-APIC + timer doesn't work"),
 * seen with 4 VMs on 2 busy cores; a VM's timer needs no such check. */
#define CMDLINE "console=ttyS0 quiet panic=-1 reboot=t acpi=off 8250.nr_uarts=1 no_timer_check"
#define DEFAULT_MEMORY_MIB 1024u /* SPEC-V1 sandbox.memory_mb default: exec and specs agree */
#define MIN_MEMORY_MIB 64u

/* ---- runtime directories ---------------------------------------------- */

static int make_rundir(vb_sandbox *sb, vb_error *err)
{
	_cleanup_free_ char *root = vb_runtime_root(err);
	if (!root)
		return -1;
	/* runtime dirs of voidbox processes that died without cleaning up
	 * (e.g. SIGKILL): their names carry the owning pid */
	vb_sweep_dead_owners(root, "vm-");
	char hex[17];
	if (vb_random_hex(hex, 8, err) < 0)
		return -1;
	snprintf(sb->id, sizeof(sb->id), "vm-%.12s", hex);
	sb->rundir = vb_strfmt("%s/vm-%d-%s", root, (int)getpid(), hex);
	if (!sb->rundir)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (mkdir(sb->rundir, 0700) < 0) {
		int e = errno;
		free(sb->rundir);
		sb->rundir = NULL;
		return vb_error_errno(err, e, "cannot create the runtime directory");
	}
	sb->ctl_path = vb_strfmt("%s/ctl.sock", sb->rundir);
	if (!sb->ctl_path)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (strlen(sb->ctl_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return vb_error_set(err, VB_E_RUNTIME, "runtime directory path too long: %s",
				    sb->rundir);
	return 0;
}

/* ---- boot -------------------------------------------------------------- */

static int listen_ctl(const char *path, vb_error *err)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return vb_error_errno(err, errno, "socket");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
		int e = errno;
		close(fd);
		return vb_error_errno(err, e, "cannot listen on %s", path);
	}
	return fd;
}

/* Accept the VMM's connection, or notice it died first. */
static int accept_ctl(int lfd, int pidfd, int cancel_fd, int timeout_ms, vb_error *err)
{
	int64_t deadline = vb_now_ms() + timeout_ms;
	for (;;) {
		int64_t left = deadline - vb_now_ms();
		if (left <= 0)
			return vb_error_set(err, VB_E_TIMEOUT, "the VMM did not connect in time");
		struct pollfd p[3] = { { .fd = lfd, .events = POLLIN },
				       { .fd = pidfd, .events = POLLIN },
				       { .fd = cancel_fd, .events = POLLIN } };
		int r = poll(p, 3, (int)left);
		if (r < 0 && errno != EINTR)
			return vb_error_errno(err, errno, "poll");
		if (r > 0 && (p[2].revents & POLLIN))
			return vb_error_set(err, VB_E_CANCELLED, "cancelled");
		if (r > 0 && (p[1].revents & POLLIN))
			return vb_error_set(err, VB_E_VMDIED, "the VMM exited during start-up");
		if (r > 0 && (p[0].revents & POLLIN)) {
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				return fd;
			if (errno != EINTR && errno != EAGAIN)
				return vb_error_errno(err, errno, "accept");
		}
	}
}

static unsigned boot_timeout(const struct vb_sandbox_config *cfg, const char *accel)
{
	const char *env = getenv("VOIDBOX_BOOT_TIMEOUT_MS");
	if (cfg->boot_timeout_ms)
		return cfg->boot_timeout_ms;
	if (env && atoi(env) > 0)
		return (unsigned)atoi(env);
	return strcmp(accel, "tcg") == 0 ? 60000u : 15000u;
}

static int validate(const struct vb_sandbox_config *cfg, vb_error *err)
{
	if (cfg->memory_mib && cfg->memory_mib < MIN_MEMORY_MIB)
		return vb_error_set(err, VB_E_USAGE, "memory must be at least %u MiB",
				    MIN_MEMORY_MIB);
	if (cfg->vcpus > 64)
		return vb_error_set(err, VB_E_USAGE, "at most 64 vCPUs");
	if (cfg->n_forwards > VB_SANDBOX_MAX_FORWARDS)
		return vb_error_set(err, VB_E_USAGE, "at most %u loopback forwards",
				    VB_SANDBOX_MAX_FORWARDS);
	for (size_t i = 0; i < cfg->n_forwards; i++) {
		const struct vb_forward *f = &cfg->forwards[i];
		if (f->guest_port < 1 || f->guest_port > 65535 || !f->accept)
			return vb_error_set(err, VB_E_USAGE,
					    "forward %zu: a guest port in 1..65535 and a handler", i);
		for (size_t j = 0; j < i; j++)
			if (cfg->forwards[j].guest_port == f->guest_port)
				return vb_error_set(err, VB_E_USAGE,
						    "guest port %u is forwarded twice", f->guest_port);
	}
	if (cfg->network.enabled && cfg->network.n_publish > VB_NET_MAX_PUBLISH)
		return vb_error_set(err, VB_E_USAGE, "at most %u published ports", VB_NET_MAX_PUBLISH);
	if (!cfg->network.enabled && cfg->network.n_publish)
		return vb_error_set(err, VB_E_USAGE, "publishing a port needs the network on");
	if (vb_sandbox_root_check(cfg, err) < 0)
		return -1;
	if (cfg->save_dir && (cfg->n_forwards || cfg->guest_initramfs))
		/* the forwards' host ends are state outside the VM; mounts and a
		 * network are undone before the save (snapsetup.c) */
		return vb_error_set(err, VB_E_USAGE,
				    "a VM to be snapshotted has no guest image or forwards (yet)");
	if (cfg->n_mounts > VB_MAX_MOUNTS)
		return vb_error_set(err, VB_E_USAGE, "at most %u mounts", VB_MAX_MOUNTS);
	for (size_t i = 0; i < cfg->n_mounts; i++) {
		const struct vb_mount *m = &cfg->mounts[i];
		struct stat st;
		if (!m->guest || m->guest[0] != '/' || strstr(m->guest, "/.."))
			return vb_error_set(err, VB_E_USAGE,
					    "mount target '%s' must be an absolute guest path",
					    m->guest ? m->guest : "");
		if (!m->host || stat(m->host, &st) < 0 || !S_ISDIR(st.st_mode))
			return vb_error_set(err, VB_E_USAGE, "mount source '%s' is not a directory",
					    m->host ? m->host : "");
	}
	return 0;
}

vb_sandbox *vb_sandbox_start(const struct vb_sandbox_config *cfg, vb_error *err)
{
	vb_sandbox *sb = vb_sandbox_boot(cfg, NULL, err);
	if (sb && cfg->save_dir && vb_sandbox_snap_setup(sb, cfg, err) < 0) {
		vb_sandbox_free(sb);
		return NULL;
	}
	return sb;
}

vb_sandbox *vb_sandbox_boot(const struct vb_sandbox_config *cfg, const struct vb_restore *restore,
			    vb_error *err)
{
	if (validate(cfg, err) < 0)
		return NULL;
	const struct vb_vmm_ops *ops = vb_vmm_pick(cfg->backend, err);
	if (!ops)
		return NULL;
	_cleanup_free_ char *kernel = cfg->kernel ? strdup(cfg->kernel) : vb_image_kernel(err);
	if (!kernel)
		return NULL;
	_cleanup_free_ char *initramfs =
		cfg->initramfs ? strdup(cfg->initramfs) : vb_image_initramfs(err);
	if (!initramfs)
		return NULL;

	vb_sandbox *sb = calloc(1, sizeof(*sb));
	if (!sb) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	if (vb_accel_resolve(cfg->accel, kernel, 0, &sb->accel, err) < 0) {
		free(sb);
		return NULL;
	}
	int initrd = -1, incoming = -1, lfd = -1, cfd = -1, net_fd = -1;
	struct vb_boot boot = {
		.allow = (char **)(uintptr_t)cfg->allow,
		.n_allow = cfg->allow ? cfg->n_allow : 0,
		.rlimit_nofile = cfg->rlimit_nofile,
		.rlimit_nproc = cfg->rlimit_nproc,
		.rlimit_fsize = cfg->rlimit_fsize,
		.hostname = (char *)(uintptr_t)"voidbox",
		/* we connect once, so the agent may forget the secret; a VM to be
		 * saved is connected again by every restore */
		.one_host = !cfg->save_dir,
		/* a VM to be saved gets its network as a restore does (NET_UP),
		 * so that every snapshot's boot data is the same */
		.net = cfg->network.enabled && !cfg->save_dir,
	};
	struct vb_boot_mount bm[VB_MAX_MOUNTS];
	char tags[VB_MAX_MOUNTS][24];
	for (size_t i = 0; i < cfg->n_mounts; i++) {
		snprintf(tags[i], sizeof(tags[i]), "vbm%zu", i);
		bm[i] = (struct vb_boot_mount){ .tag = tags[i],
						.path = (char *)(uintptr_t)cfg->mounts[i].guest,
						.ro = !cfg->mounts[i].rw };
	}
	boot.mounts = bm;
	/* a snapshot's VM mounts nothing at boot (QEMU does not migrate a
	 * mounted export), and a restore's boot data is never read */
	boot.n_mounts = cfg->save_dir || restore ? 0 : cfg->n_mounts;
	/* a forward's KIND is its index: the stream's STREAM_OPEN names it */
	struct vb_boot_forward bf[VB_SANDBOX_MAX_FORWARDS];
	for (size_t i = 0; i < cfg->n_forwards; i++)
		bf[i] = (struct vb_boot_forward){ .port = (uint16_t)cfg->forwards[i].guest_port,
						  .kind = i };
	boot.forwards = bf;
	boot.n_forwards = cfg->n_forwards;
	const char *disks[VB_SANDBOX_MAX_DISKS];
	struct vb_boot_disk bd[VB_SANDBOX_MAX_DISKS];
	size_t n_disks = vb_sandbox_root_disks(cfg, disks, &boot, bd);
	sb->root_user = cfg->root_user != NULL;
	if (restore && restore->id)
		snprintf(sb->snapshot_id, sizeof(sb->snapshot_id), "%s", restore->id);
	sb->image_root = cfg->rootfs != NULL;
	sb->name = cfg->name ? strdup(cfg->name) : NULL;
	sb->ops = ops;
	_cleanup_free_ char *ram = NULL, *qmp = NULL, *empty = NULL;
	struct vb_mount slots[VB_SNAP_MOUNT_SLOTS];
	const struct vb_mount *vmm_mounts = cfg->mounts;
	size_t n_vmm_mounts = cfg->n_mounts;
	sb->conf.memory_mib = cfg->memory_mib;
	sb->conf.vcpus = cfg->vcpus;
	char devices[VB_SNAP_CONF_MAX];
	if (cfg->save_dir && vb_sandbox_snap_devices(cfg, devices, sizeof(devices), err) < 0)
		goto fail;
	if (cfg->save_dir && (!(sb->save_dir = strdup(cfg->save_dir)) ||
			      !(sb->snap_devices = strdup(devices)) ||
			      !(ram = vb_strfmt("%s/ram", cfg->save_dir)) ||
			      !(sb->kernel = strdup(kernel)) || !(sb->initramfs = strdup(initramfs)))) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		goto fail;
	}

	if (make_rundir(sb, err) < 0 || vb_random(boot.secret, sizeof(boot.secret), err) < 0)
		goto fail;
	if (cfg->save_dir)
		memcpy(sb->save_secret, boot.secret, sizeof(boot.secret));
	if ((cfg->save_dir || restore) && !(qmp = vb_strfmt("%s/qmp.sock", sb->rundir))) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		goto fail;
	}
	/* A snapshot's VM has VB_SNAP_MOUNT_SLOTS 9p devices whatever its
	 * mounts: a restore fills the first ones, the others show an empty
	 * read-only directory of our own (nothing of the host). */
	if (cfg->save_dir || restore) {
		/* each disk took a device a mount would have (snapimage.c) */
		unsigned n_slots = vb_sandbox_snap_slots(cfg);
		if (vb_sandbox_snap_mounts_check(cfg, err) < 0)
			goto fail;
		if (!(empty = vb_strfmt("%s/empty", sb->rundir)) || mkdir(empty, 0500) < 0) {
			vb_error_errno(err, empty ? errno : ENOMEM, "cannot create %s", sb->rundir);
			goto fail;
		}
		for (size_t i = 0; i < n_slots; i++)
			slots[i] = i < cfg->n_mounts ? cfg->mounts[i]
						     : (struct vb_mount){ .host = empty, .guest = "/", .rw = 0 };
		vmm_mounts = slots;
		n_vmm_mounts = n_slots;
	}
	/* a restore boots nothing: QEMU's fd 3 is the saved state instead */
	if (restore && (incoming = open(restore->state, O_RDONLY | O_CLOEXEC)) < 0) {
		vb_error_errno(err, errno, "cannot open %s", restore->state);
		goto fail;
	}
	if (incoming == 0) { /* 0 means "none" to the VMM (a closed stdin gave it) */
		int moved = fcntl(incoming, F_DUPFD_CLOEXEC, 3);
		close(incoming);
		if ((incoming = moved) < 0) {
			vb_error_errno(err, errno, "cannot open %s", restore->state);
			goto fail;
		}
	}
	if (!restore &&
	    (initrd = vb_image_make_initrd_over(cfg->guest_initramfs, initramfs, &boot, err)) < 0)
		goto fail;
	if ((lfd = listen_ctl(sb->ctl_path, err)) < 0)
		goto fail;
	if (cfg->network.enabled) {
		_cleanup_free_ char *stats = vb_strfmt("%s/net.json", sb->rundir);
		if (!(sb->net = vb_net_stream_start(&cfg->network, stats, &net_fd, err)))
			goto fail;
	} else if ((cfg->save_dir || restore) && !(sb->netdrop = vb_netdrop_start(&net_fd, err))) {
		/* a snapshot's VM has the device whatever its network: a
		 * restore with one finds it (restored.c) */
		goto fail;
	}

	struct vb_vmm_spec spec = {
		.accel = sb->accel.accel,
		.kernel = kernel,
		.initrd_fd = initrd,
		.cmdline = CMDLINE,
		.memory_mib = cfg->memory_mib ? cfg->memory_mib : DEFAULT_MEMORY_MIB,
		.vcpus = cfg->vcpus ? cfg->vcpus : 1,
		.ctl_socket = sb->ctl_path,
		.mounts = vmm_mounts,
		.n_mounts = n_vmm_mounts,
		.net_fd = net_fd,
		.disks = disks,
		.n_disks = n_disks,
		/* a restore maps the snapshot's RAM copy-on-write, except one to be
		 * saved again (snapshot create --from): its own copy, shared */
		.ram_file = restore && !cfg->save_dir ? restore->ram : ram,
		.ram_shared = restore == NULL || cfg->save_dir != NULL,
		.qmp_socket = qmp,
		.incoming_fd = incoming > 0 ? incoming : 0,
	};
	int64_t t0 = vb_now_ms();
	sb->vm = ops->start(&spec, err);
	/* QEMU has its own copies of the descriptors */
	if (initrd >= 0)
		close(initrd);
	if (incoming >= 0)
		close(incoming);
	initrd = incoming = -1;
	if (net_fd >= 0) {
		close(net_fd);
		net_fd = -1;
	}
	if (!sb->vm)
		goto fail;
	vb_sandbox_write_info(sb);
	unsigned timeout = boot_timeout(cfg, sb->vm->accel);
	if (restore && ops->restore(sb->vm, (int)timeout, err) < 0) {
		if (!vb_vmm_wait(sb->vm, 0))
			goto fail; /* QEMU's own refusal, said in (err) */
		goto died;
	}
	int cancel_fd = cfg->cancel_fd > 0 ? cfg->cancel_fd : -1;
	cfd = accept_ctl(lfd, sb->vm->pidfd, cancel_fd, (int)timeout, err);
	close(lfd);
	lfd = -1;
	unlink(sb->ctl_path);
	if (cfd < 0)
		goto died;
	int left = (int)(timeout - (unsigned)(vb_now_ms() - t0));
	sb->ch = vb_chan_open(cfd, restore ? restore->secret : boot.secret, left > 0 ? left : 1,
			      sb->vm->pidfd, cancel_fd, &sb->hello, err);
	if (!sb->ch)
		goto died;
	sb->boot_ms = vb_now_ms() - t0;
	explicit_bzero(boot.secret, sizeof(boot.secret));
	/* No guest program has run yet (only the host starts them), so no
	 * stream can have been opened before this. */
	if (cfg->n_forwards &&
	    !(sb->fwd = vb_fwd_start(sb->ch, cfg->forwards, cfg->n_forwards, err)))
		goto fail;
	return sb;

died:
	if (err && err->kind == VB_E_CANCELLED)
		goto fail;
	vb_sandbox_died(sb, err);
	vb_error_prefix(err, "cannot boot the VM");
fail:
	explicit_bzero(boot.secret, sizeof(boot.secret));
	if (initrd >= 0)
		close(initrd);
	if (incoming >= 0)
		close(incoming);
	if (net_fd >= 0)
		close(net_fd);
	if (lfd >= 0)
		close(lfd);
	vb_sandbox_free(sb);
	return NULL;
}

/* ---- diagnosis --------------------------------------------------------- */

/* Keep the console log where the user can read it after teardown, with
 * QEMU's own stderr after it (that is where a VMM failure shows). */
static void keep_console_log(vb_sandbox *sb, const char *console, const char *vmm)
{
	if (sb->kept_log[0])
		return;
	char name[64];
	snprintf(name, sizeof(name), "%s.console.log", sb->id);
	int stderr_too = vmm && vmm[0];
	const char *parts[] = { console ? console : "", stderr_too ? "\n--- QEMU's stderr ---\n" : NULL,
				vmm, NULL };
	if (vb_vmm_keep_log(name, parts, sb->kept_log, sizeof(sb->kept_log)) < 0)
		sb->kept_log[0] = '\0';
}

int vb_sandbox_died(vb_sandbox *sb, vb_error *err)
{
	if (sb->ch && vb_chan_violated(sb->ch)) {
		/* A hostile guest: tear it down now, and take no diagnosis from
		 * anything it wrote (its console could say anything). */
		if (sb->vm) {
			kill(sb->vm->pid, SIGKILL);
			vb_vmm_wait(sb->vm, 3000);
		}
		return vb_error_set(err, VB_E_VMDIED, "%s", vb_chan_why(sb->ch));
	}
	char why[400] = "";
	int exited = sb->vm ? vb_vmm_wait(sb->vm, 3000) : 0;
	/* once the VMM exited, its pipes end: wait for the last words */
	int wait_ms = exited ? 1000 : 0;
	_cleanup_free_ char *console =
		sb->vm ? vb_vmm_output(sb->vm, VB_LOG_CONSOLE, wait_ms, NULL) : NULL;
	_cleanup_free_ char *vmm = sb->vm ? vb_vmm_output(sb->vm, VB_LOG_VMM, wait_ms, NULL) : NULL;
	char line[300];
	/* A real panic or agent failure powers the VM off (panic=-1, reboot=t,
	 * -no-reboot): from a VM still running, such a line is the guest's
	 * own writing on /dev/ttyS0, not a diagnosis. */
	const char *said = exited ? console : NULL;
	if (said && vb_line_with(said, "Kernel panic - not syncing: ", 1, line, sizeof(line)))
		snprintf(why, sizeof(why), "%s (%s)",
			 strstr(line, "Attempted to kill init") ? "the guest agent (PID 1) crashed"
								: "guest kernel panic",
			 line + strlen("Kernel panic - not syncing: "));
	else if (said && vb_line_with(said, "voidbox-agent: fatal", 1, line, sizeof(line)))
		snprintf(why, sizeof(why), "the guest agent failed (%s)", line);
	else if (vmm && vb_line_with(vmm, "qemu-system", 0, line, sizeof(line)))
		snprintf(why, sizeof(why), "QEMU failed (%s)", line);
	else if (exited && sb->vm && WIFSIGNALED(sb->vm->status))
		snprintf(why, sizeof(why), "the VMM was killed by signal %d",
			 WTERMSIG(sb->vm->status));
	else if (exited && sb->vm && WIFEXITED(sb->vm->status) && WEXITSTATUS(sb->vm->status))
		snprintf(why, sizeof(why), "the VMM exited with status %d",
			 WEXITSTATUS(sb->vm->status));
	else if (exited)
		snprintf(why, sizeof(why), "the VM powered off");
	else if (err && err->kind == VB_E_TIMEOUT)
		snprintf(why, sizeof(why), "%.380s", err->msg);
	else
		snprintf(why, sizeof(why), "%.380s", err && err->msg[0] ? err->msg
							    : "the control channel closed");
	if (!exited && sb->vm) /* a VM we can no longer talk to is useless */
		kill(sb->vm->pid, SIGKILL);
	keep_console_log(sb, console, vmm);
	/* KVM that was insisted on, not proven, is the first suspect */
	const char *hint = sb->accel.wanted == VB_ACCEL_KVM
				   ? "; KVM was asked for: if it cannot run guests on this host, use "
				     "--accel tcg (software emulation) or --accel auto"
				   : "";
	if (sb->kept_log[0])
		return vb_error_set(err, VB_E_VMDIED,
				    "the VM stopped unexpectedly: %s (console log: %s)%s", why,
				    sb->kept_log, hint);
	return vb_error_set(err, VB_E_VMDIED, "the VM stopped unexpectedly: %s%s", why, hint);
}

/* ---- teardown and accessors ------------------------------------------- */

void vb_sandbox_free(vb_sandbox *sb)
{
	if (!sb)
		return;
	if (sb->fwd) { /* the streams' threads use the channel: end them first */
		vb_chan_shutdown(sb->ch, "the sandbox was shut down");
		vb_fwd_stop(sb->fwd);
	}
	vb_chan_close(sb->ch);
	vb_vmm_destroy(sb->vm);
	vb_net_stream_stop(sb->net); /* after the VMM: nothing writes frames any more */
	vb_netdrop_stop(sb->netdrop);
	if (sb->rundir)
		vb_rm_rf(sb->rundir);
	free(sb->rundir);
	free(sb->ctl_path);
	free(sb->name);
	free(sb->save_dir);
	free(sb->snap_devices);
	free(sb->kernel);
	free(sb->initramfs);
	explicit_bzero(sb->save_secret, sizeof(sb->save_secret));
	free(sb);
}

int vb_sandbox_shutdown(vb_sandbox *sb, unsigned timeout_ms, vb_error *err)
{
	struct vb_buf req = { 0 };
	struct vb_chan_frame *reply = NULL;
	vb_msg_begin(&req, VB_MSG_SHUTDOWN, 0, 0);
	vb_msg_end(&req);
	int rc = vb_chan_call(sb->ch, &req, (int)timeout_ms, &reply, NULL, err);
	vb_buf_free(&req);
	free(reply);
	if (rc < 0 && !vb_chan_dead(sb->ch))
		return -1;
	if (!vb_vmm_wait(sb->vm, (int)timeout_ms))
		return vb_error_set(err, VB_E_TIMEOUT, "the VM did not power off in %u ms",
				    timeout_ms);
	return 0;
}

int vb_sandbox_signal(vb_sandbox *sb, int sig, vb_error *err)
{
	/* through the pidfd: the pid may have been reaped (and reused) by the
	 * owner's thread, the pidfd stays ours until vb_sandbox_free() */
	if (!sb || !sb->vm || sb->vm->pidfd < 0)
		return vb_error_set(err, VB_E_USAGE, "no VM to signal");
	if (syscall(SYS_pidfd_send_signal, sb->vm->pidfd, sig, NULL, 0) < 0 && errno != ESRCH)
		return vb_error_errno(err, errno, "signalling the VMM");
	return 0;
}

int vb_sandbox_vmm_written(vb_sandbox *sb, uint64_t *bytes, vb_error *err)
{
	if (!sb || !sb->vm || sb->vm->pid <= 0)
		return vb_error_set(err, VB_E_USAGE, "no VM");
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/io", (int)sb->vm->pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vb_error_errno(err, errno, "%s", path);
	ssize_t n = vb_read_full(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return vb_error_errno(err, errno, "%s", path);
	buf[n] = '\0';
	const char *w = strstr(buf, "wchar: ");
	unsigned long long v;
	if (!w || sscanf(w + 7, "%llu", &v) != 1)
		return vb_error_set(err, VB_E_RUNTIME, "%s has no wchar", path);
	*bytes = v;
	return 0;
}

void vb_sandbox_net_stats(vb_sandbox *sb, struct vb_net_stats *st)
{
	vb_net_stream_stats(sb ? sb->net : NULL, st);
}

char *vb_sandbox_net_learned(vb_sandbox *sb, unsigned indent, vb_error *err)
{
	return vb_net_stream_learned(sb ? sb->net : NULL, indent, err);
}

unsigned vb_sandbox_published_port(const vb_sandbox *sb, size_t i)
{
	return sb ? vb_net_stream_published_port(sb->net, i) : 0;
}

const char *vb_sandbox_id(const vb_sandbox *sb)
{
	return sb->id;
}

const char *vb_sandbox_accel(const vb_sandbox *sb)
{
	return sb->vm->accel;
}

const struct vb_accel_info *vb_sandbox_accel_info(const vb_sandbox *sb)
{
	return &sb->accel;
}

const char *vb_sandbox_isolation(const vb_sandbox *sb)
{
	return strcmp(sb->vm->accel, "tcg") == 0 ? "emulated" : "hardware";
}

const char *vb_sandbox_kernel_release(const vb_sandbox *sb)
{
	return sb->hello.kernel;
}

const char *vb_sandbox_boot_id(const vb_sandbox *sb)
{
	return sb->hello.boot_id;
}

int64_t vb_sandbox_boot_ms(const vb_sandbox *sb)
{
	return sb->boot_ms;
}
