/* SPDX-License-Identifier: Apache-2.0 */
/* The VM info file in each runtime directory, and reading them back. */
#include "sandbox/vms.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/sandbox_int.h"
#include "util/term.h"
#include "util/util.h"

#define INFO_MAX (16 * 1024)
#define VMS_MAX 4096

/* Where a value to hide starts in (arg): after "K=" (-e K=V, -eK=V) or
 * after the second '=' of "--opt=K=V"; NULL when there is none.  Values
 * given as K=V are often secrets (-e TOKEN=...): `ps` shows "K=...". */
static const char *secret_value(const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (eq && !strncmp(arg, "--", 2))
		eq = strchr(eq + 1, '=');
	return eq ? eq + 1 : NULL;
}

/* Our own command line, arguments joined by spaces, K=V values hidden;
 * made safe for a terminal (it ends up on them) and valid UTF-8 (JSON needs
 * it) by vb_term_copyn. */
static void own_command(char *out, size_t size)
{
	out[0] = '\0';
	char buf[4096];
	_cleanup_close_ int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? vb_read_full(fd, buf, sizeof(buf) - 1) : -1;
	if (n <= 0)
		return;
	buf[n] = '\0';
	size_t o = 0;
	for (const char *arg = buf; arg < buf + n && o + 1 < size; arg += strlen(arg) + 1) {
		const char *hide = secret_value(arg);
		if (o)
			out[o++] = ' ';
		vb_term_copyn(out + o, size - o, arg, hide ? (size_t)(hide - arg) : strlen(arg), 0);
		o += strlen(out + o);
		if (hide && o + 1 < size) {
			o += (size_t)snprintf(out + o, size - o, "...");
			o = o < size ? o : size - 1;
		}
	}
	out[o] = '\0';
}

void vb_sandbox_write_info(const vb_sandbox *sb)
{
	if (!sb->rundir || !sb->vm)
		return;
	char cmd[256];
	own_command(cmd, sizeof(cmd));
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	/* json_string refuses a name that is not UTF-8: then it is left out */
	json_t *name = sb->name ? json_string(sb->name) : NULL;
	char snap[13];
	snprintf(snap, sizeof(snap), "%.12s", sb->snapshot_id);
	json_t *o = json_pack("{s:s, s:o?, s:I, s:I, s:I, s:I, s:s, s:s, s:s, s:s*}", "vm_id", sb->id,
			      "name", name, "pid", (json_int_t)getpid(), "pid_start",
			      (json_int_t)vb_pid_start((long)getpid()), "vmm_pid",
			      (json_int_t)sb->vm->pid, "started_ms", (json_int_t)now, "accel",
			      sb->vm->accel, "isolation", vb_sandbox_isolation(sb), "command", cmd,
			      "snapshot", snap[0] ? snap : NULL);
	_cleanup_free_ char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	_cleanup_free_ char *tmp = vb_strfmt("%s/.info.json.tmp", sb->rundir);
	_cleanup_free_ char *path = vb_strfmt("%s/info.json", sb->rundir);
	if (!text || !tmp || !path)
		return;
	/* best effort: a VM that cannot be listed still works; written whole
	 * and renamed, so a reader never sees a part */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	int ok = vb_write_full(fd, text, strlen(text)) == 0;
	ok &= close(fd) == 0;
	if (!ok || rename(tmp, path) < 0)
		unlink(tmp);
}

static void copy_str(char *dst, size_t size, const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	snprintf(dst, size, "%s", s ? s : "");
}

/* Ids and accelerator names are printed as they are: only [a-z0-9-]. */
static int plain(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
			return 0;
	return 1;
}

/* The network's counters (net.json, written by the VM's network thread). */
static void load_net(const char *root, const char *name, struct vb_vm_live *vm)
{
	_cleanup_free_ char *path = vb_strfmt("%s/%s/net.json", root, name);
	size_t len;
	_cleanup_free_ char *text = path ? vb_read_file(path, INFO_MAX, &len, NULL) : NULL;
	json_t *o = text ? json_loadb(text, len, 0, NULL) : NULL;
	if (json_is_object(o)) {
		vm->has_net = 1;
		vm->net_bytes_out = (uint64_t)json_integer_value(json_object_get(o, "bytes_out"));
		vm->net_bytes_in = (uint64_t)json_integer_value(json_object_get(o, "bytes_in"));
		vm->net_connections = (uint64_t)json_integer_value(json_object_get(o, "connections"));
		vm->net_denied = (uint64_t)json_integer_value(json_object_get(o, "denied"));
	}
	json_decref(o);
}

/* Parse (root)/(name)/info.json into (vm); 0 if it is a live VM. */
static int load_one(const char *root, const char *name, long pid, struct vb_vm_live *vm)
{
	_cleanup_free_ char *path = vb_strfmt("%s/%s/info.json", root, name);
	size_t len;
	_cleanup_free_ char *text = path ? vb_read_file(path, INFO_MAX, &len, NULL) : NULL;
	json_t *o = text ? json_loadb(text, len, 0, NULL) : NULL;
	int rc = -1;
	if (json_is_object(o) && json_integer_value(json_object_get(o, "pid")) == pid) {
		memset(vm, 0, sizeof(*vm));
		copy_str(vm->vm_id, sizeof(vm->vm_id), o, "vm_id");
		copy_str(vm->name, sizeof(vm->name), o, "name");
		copy_str(vm->accel, sizeof(vm->accel), o, "accel");
		copy_str(vm->isolation, sizeof(vm->isolation), o, "isolation");
		copy_str(vm->snapshot, sizeof(vm->snapshot), o, "snapshot");
		copy_str(vm->command, sizeof(vm->command), o, "command");
		vm->pid = pid;
		json_t *st = json_object_get(o, "pid_start");
		vm->pid_start = json_is_integer(st) ? json_integer_value(st) : -1;
		vm->vmm_pid = (long)json_integer_value(json_object_get(o, "vmm_pid"));
		vm->started_ms = json_integer_value(json_object_get(o, "started_ms"));
		if (!strncmp(vm->vm_id, "vm-", 3) && plain(vm->vm_id) && plain(vm->accel) &&
		    plain(vm->isolation) && plain(vm->snapshot) && vb_pid_alive(pid, vm->pid_start))
			rc = 0;
	}
	json_decref(o);
	if (rc == 0)
		load_net(root, name, vm);
	return rc;
}

static int cmp_started(const void *a, const void *b)
{
	const struct vb_vm_live *x = a, *y = b;
	if (x->started_ms != y->started_ms)
		return x->started_ms < y->started_ms ? -1 : 1;
	return strcmp(x->vm_id, y->vm_id);
}

int vb_vms_live(struct vb_vm_live **vms, size_t *n, vb_error *err)
{
	*vms = NULL;
	*n = 0;
	_cleanup_free_ char *root = vb_runtime_root(err);
	if (!root)
		return -1;
	DIR *d = opendir(root);
	if (!d)
		return errno == ENOENT ? 0 : vb_error_errno(err, errno, "cannot list %s", root);
	struct vb_vm_live *v = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d)) && cnt < VMS_MAX) {
		int pid = 0, end = 0;
		if (sscanf(e->d_name, "vm-%d-%*[0-9a-f]%n", &pid, &end) != 1 || pid <= 0 ||
		    e->d_name[end] != '\0')
			continue;
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct vb_vm_live *nv = realloc(v, ncap * sizeof(*nv));
			if (!nv) {
				rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
				break;
			}
			v = nv;
			cap = ncap;
		}
		if (load_one(root, e->d_name, pid, &v[cnt]) == 0)
			cnt++;
	}
	closedir(d);
	if (rc < 0) {
		free(v);
		return -1;
	}
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_started);
	*vms = v;
	*n = cnt;
	return 0;
}
