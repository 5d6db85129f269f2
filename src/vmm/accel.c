/* SPDX-License-Identifier: Apache-2.0 */
/*
 * KVM is proven before it is trusted.  The probe is a real boot of the real
 * guest kernel and initramfs under KVM, without boot data: the agent, as
 * PID 1, reports the missing boot data on the serial console and powers
 * off.  KVM works when that line arrives and QEMU exits cleanly.  What it
 * guards against, measured on this project's machines: a /dev/kvm from a
 * PVM host, where QEMU aborts at once with -cpu host ("failed to set MSR")
 * or, with other CPU models, runs without ever printing a byte.  A working
 * KVM prints the kernel banner within milliseconds, so silence for
 * PROBE_SILENT_MS means a hang.
 *
 * The verdict is cached under ${XDG_CACHE_HOME}/voidbox/accel/, one JSON file
 * per (host boot id, VMM binary, kernel): a new boot, a QEMU upgrade or a new
 * kernel probes again; everything else reads one small file.
 */
#include "vmm/accel.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/util.h"

#define PROBE_SILENT_MS 3000  /* no console byte by then: KVM hangs */
#define PROBE_TOTAL_MS 10000  /* printing, but no agent by then: give up */
#define PROBE_MEMORY_MIB 256u
/* No `quiet`: the kernel banner is the first sign of life. */
#define PROBE_CMDLINE "console=ttyS0 panic=-1 reboot=t acpi=off 8250.nr_uarts=1 no_timer_check"
#define PROBE_MARK "voidbox-agent"

const char *vb_vmm_kvm_device(void)
{
	const char *d = getenv("VOIDBOX_KVM_DEVICE");
	return d && d[0] ? d : "/dev/kvm";
}

/* ---- the cache key and file ---------------------------------------------- */

struct key {
	char boot_id[64];
	char text[1024]; /* boot id, VMM identity, kernel identity */
	char hash[17];
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

static int make_key(const struct vb_accel_env *env, struct key *k, vb_error *err)
{
	vb_error e;
	size_t len;
	_cleanup_free_ char *boot = vb_read_file("/proc/sys/kernel/random/boot_id", 64, &len, &e);
	snprintf(k->boot_id, sizeof(k->boot_id), "%s", boot ? boot : "unknown");
	k->boot_id[strcspn(k->boot_id, "\n")] = '\0';
	if (!env->kernel) {
		if (err && env->no_kernel)
			*err = *env->no_kernel;
		return env->no_kernel ? -1 : vb_error_set(err, VB_E_RUNTIME, "no guest kernel");
	}
	char vmm[600];
	if (env->ops->identity(vmm, sizeof(vmm)) < 0)
		return env->ops->probe(NULL, 0, err) < 0
			       ? -1
			       : vb_error_set(err, VB_E_RUNTIME, "cannot identify the VMM binary");
	struct stat st;
	if (stat(env->kernel, &st) < 0)
		return vb_error_errno(err, errno, "guest kernel %s", env->kernel);
	snprintf(k->text, sizeof(k->text), "%s|%s|%s %lld %lld", k->boot_id, vmm, env->kernel,
		 (long long)st.st_size, (long long)st.st_mtime);
	snprintf(k->hash, sizeof(k->hash), "%016llx", (unsigned long long)fnv1a(k->text));
	return 0;
}

static char *cache_path(const struct key *k, const char *leaf)
{
	vb_error e;
	_cleanup_free_ char *cache = vb_cache_dir(&e);
	if (!cache)
		return NULL;
	return k ? vb_strfmt("%s/accel/%s.json", cache, k->hash) : vb_strfmt("%s/accel/%s", cache, leaf);
}

static void copy_str(char *dst, size_t n, json_t *o, const char *field)
{
	const char *s = json_string_value(json_object_get(o, field));
	snprintf(dst, n, "%s", s ? s : "");
}

/* 1 if a verdict for (k) was read into (info). */
static int cache_read(const struct key *k, struct vb_accel_info *info)
{
	_cleanup_free_ char *path = cache_path(k, NULL);
	vb_error e;
	size_t len;
	_cleanup_free_ char *text = path ? vb_read_file(path, 64u << 10, &len, &e) : NULL;
	json_t *o = text ? json_loads(text, 0, NULL) : NULL;
	if (!o)
		return 0;
	const char *key = json_string_value(json_object_get(o, "key"));
	const char *accel = json_string_value(json_object_get(o, "accel"));
	int ok = key && !strcmp(key, k->text) && accel && (!strcmp(accel, "kvm") || !strcmp(accel, "tcg"));
	if (ok) {
		snprintf(info->accel, sizeof(info->accel), "%s", accel);
		copy_str(info->reason, sizeof(info->reason), o, "reason");
		copy_str(info->log, sizeof(info->log), o, "log");
		info->fell_back = !strcmp(accel, "tcg");
	}
	json_decref(o);
	return ok;
}

/* Verdicts of earlier host boots can never match again. */
static void cache_sweep(const char *dir, const struct key *k)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n < 6 || strcmp(de->d_name + n - 5, ".json") || !strncmp(de->d_name, k->hash, 16))
			continue;
		_cleanup_free_ char *p = vb_strfmt("%s/%s", dir, de->d_name);
		vb_error e;
		size_t len;
		_cleanup_free_ char *text = p ? vb_read_file(p, 64u << 10, &len, &e) : NULL;
		json_t *o = text ? json_loads(text, 0, NULL) : NULL;
		const char *boot = json_string_value(json_object_get(o, "boot_id"));
		if (p && (!o || !boot || strcmp(boot, k->boot_id)))
			unlink(p);
		json_decref(o);
	}
	closedir(d);
}

static void cache_write(const struct key *k, const struct vb_accel_info *info)
{
	_cleanup_free_ char *path = cache_path(k, NULL);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "key", k->text, "boot_id",
			      k->boot_id, "accel", info->accel, "reason", info->reason, "log",
			      info->log, "probe_ms", (json_int_t)info->probe_ms);
	char *text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
	json_decref(o);
	if (path && text) {
		vb_write_file_atomic(path, text, strlen(text), 0600);
		char *slash = strrchr(path, '/');
		*slash = '\0';
		cache_sweep(path, k);
	}
	free(text);
}

/* ---- the probe ------------------------------------------------------------ */

/* Keep what the probe printed, for the user to read: QEMU's stderr first
 * (that is where KVM failures show), then the guest console. */
static void keep_log(const struct key *k, const char *vmm, const char *console,
		     struct vb_accel_info *info)
{
	char name[64];
	snprintf(name, sizeof(name), "accel-probe-%.8s.log", k->hash);
	_cleanup_free_ char *head =
		vb_strfmt("voidbox accelerator probe: a boot of the guest kernel under KVM\n"
			  "verdict: %s; using TCG\n\n--- QEMU's stderr ---\n",
			  info->reason);
	const char *parts[] = { head, vmm, "\n--- guest console ---\n", console, NULL };
	if (head && vb_vmm_keep_log(name, parts, info->log, sizeof(info->log)) < 0)
		info->log[0] = '\0';
}

/* Boot the probe VM; fills info->accel and, on failure, info->reason. */
static int probe_kvm(const struct vb_accel_env *env, const struct key *k,
		     struct vb_accel_info *info, vb_error *err)
{
	int initrd = env->open_initrd(env->ctx, env->flags, err);
	if (initrd < 0)
		return -1;
	struct vb_vmm_spec spec = {
		.accel = "kvm",
		.kernel = env->kernel,
		.initrd_fd = initrd,
		.cmdline = PROBE_CMDLINE,
		.memory_mib = PROBE_MEMORY_MIB,
		.vcpus = 1,
	};
	int64_t t0 = vb_now_ms();
	struct vb_vmm *vm = env->ops->start(&spec, err);
	close(initrd);
	if (!vm)
		return -1;
	const char *cut = NULL;
	while (!vb_vmm_wait(vm, 20)) {
		int64_t t = vb_now_ms() - t0;
		if (t >= PROBE_SILENT_MS && vb_vmm_output_bytes(vm, VB_LOG_CONSOLE) == 0) {
			cut = "the guest printed nothing within 3 s under KVM (it hangs)";
			break;
		}
		if (t >= PROBE_TOTAL_MS) {
			cut = "the guest did not finish booting within 10 s under KVM";
			break;
		}
	}
	info->probe_ms = vb_now_ms() - t0;
	info->probed = 1;
	if (cut)
		kill(vm->pid, SIGKILL);
	vb_vmm_wait(vm, 2000);
	_cleanup_free_ char *out = vb_vmm_output(vm, VB_LOG_CONSOLE, 1000, NULL);
	_cleanup_free_ char *qemu = vb_vmm_output(vm, VB_LOG_VMM, 1000, NULL);
	char line[300];
	int booted = !cut && vm->reaped && WIFEXITED(vm->status) && WEXITSTATUS(vm->status) == 0 &&
		     out && strstr(out, PROBE_MARK);
	if (booted) {
		snprintf(info->accel, sizeof(info->accel), "kvm");
		info->reason[0] = '\0';
	} else {
		snprintf(info->accel, sizeof(info->accel), "tcg");
		info->fell_back = 1;
		if (cut)
			snprintf(info->reason, sizeof(info->reason), "%s", cut);
		else if (qemu && vb_line_with(qemu, "qemu-system", 0, line, sizeof(line)))
			snprintf(info->reason, sizeof(info->reason), "QEMU failed under KVM: %s", line);
		else if (vm->reaped && WIFSIGNALED(vm->status))
			snprintf(info->reason, sizeof(info->reason),
				 "QEMU was killed by signal %d under KVM", WTERMSIG(vm->status));
		else
			snprintf(info->reason, sizeof(info->reason),
				 "the guest stopped under KVM before its init ran (QEMU exit status %d)",
				 vm->reaped && WIFEXITED(vm->status) ? WEXITSTATUS(vm->status) : -1);
		if (!(env->flags & VB_ACCEL_NO_WRITE))
			keep_log(k, qemu ? qemu : "", out ? out : "", info);
	}
	vb_vmm_destroy(vm);
	return 0;
}

/* ---- the decision ------------------------------------------------------------ */

static void kvm_unusable(int e, char *reason, size_t n)
{
	const char *dev = vb_vmm_kvm_device();
	if (e == ENOENT || e == ENODEV || e == ENXIO)
		snprintf(reason, n, "no %s on this host (no hardware virtualization here)", dev);
	else if (e == EACCES || e == EPERM)
		snprintf(reason, n,
			 "%s is not accessible to this user (add it to the 'kvm' group: "
			 "sudo usermod -aG kvm $USER, then log in again)",
			 dev);
	else
		snprintf(reason, n, "%s cannot be opened: %s", dev, strerror(e));
}

static int tcg(struct vb_accel_info *info)
{
	snprintf(info->accel, sizeof(info->accel), "tcg");
	return 0;
}

int vb_vmm_accel_decide(enum vb_accel want, const struct vb_accel_env *env,
			struct vb_accel_info *info, vb_error *err)
{
	memset(info, 0, sizeof(*info));
	const char *from_env = getenv("VOIDBOX_ACCEL");
	if (want == VB_ACCEL_AUTO && from_env && from_env[0] &&
	    vb_accel_parse(from_env, &want) < 0)
		return vb_error_set(err, VB_E_USAGE, "VOIDBOX_ACCEL=%.40s: expected auto, kvm or tcg",
				    from_env);
	info->wanted = want;
	if (want == VB_ACCEL_TCG)
		return tcg(info);

	int fd = open(vb_vmm_kvm_device(), O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		kvm_unusable(e, info->reason, sizeof(info->reason));
		if (want == VB_ACCEL_KVM)
			return vb_error_set(err, VB_E_RUNTIME,
					    "KVM was asked for, but %s; use --accel tcg (software "
					    "emulation) or --accel auto",
					    info->reason);
		info->fell_back = e != ENOENT && e != ENODEV && e != ENXIO;
		return tcg(info);
	}
	close(fd);

	struct key k;
	if (make_key(env, &k, err) < 0)
		return -1;
	struct vb_accel_info cached = { 0 };
	int have = cache_read(&k, &cached);
	if (want == VB_ACCEL_KVM) {
		/* Insisting on KVM boots under it (no probe); a verdict of this
		 * very host boot, QEMU and kernel that it cannot work fails fast. */
		if (have && !strcmp(cached.accel, "tcg"))
			return vb_error_set(err, VB_E_RUNTIME,
					    "KVM was asked for, but it cannot run the guest on this host: "
					    "%s%s%s%s; use --accel tcg (software emulation) or --accel auto",
					    cached.reason, cached.log[0] ? " (probe log: " : "",
					    cached.log, cached.log[0] ? ")" : "");
		snprintf(info->accel, sizeof(info->accel), "kvm");
		return 0;
	}
	if (have) {
		cached.wanted = want;
		*info = cached;
		return 0;
	}

	/* First VM on this host boot: one probe, whoever else is waiting. */
	int lock = -1;
	_cleanup_free_ char *lock_path = cache_path(NULL, ".lock");
	if (!(env->flags & VB_ACCEL_NO_WRITE) && lock_path) {
		_cleanup_free_ char *dir = strdup(lock_path);
		vb_error e;
		if (dir) {
			*strrchr(dir, '/') = '\0';
			if (vb_mkdir_p(dir, 0700, &e) == 0)
				lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		}
		while (lock >= 0 && flock(lock, LOCK_EX) < 0 && errno == EINTR)
			;
		if (lock >= 0 && cache_read(&k, info)) {
			close(lock);
			info->wanted = want;
			return 0;
		}
	}
	int rc = probe_kvm(env, &k, info, err);
	info->wanted = want;
	if (rc == 0 && !(env->flags & VB_ACCEL_NO_WRITE))
		cache_write(&k, info);
	if (lock >= 0)
		close(lock);
	return rc;
}

/* ---- names --------------------------------------------------------------- */

int vb_accel_parse(const char *s, enum vb_accel *out)
{
	static const char *const names[] = { "auto", "kvm", "tcg" };
	for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcasecmp(s, names[i])) {
			*out = (enum vb_accel)i;
			return 0;
		}
	return -1;
}

const char *vb_accel_name(enum vb_accel a)
{
	return a == VB_ACCEL_KVM ? "kvm" : a == VB_ACCEL_TCG ? "tcg" : "auto";
}
