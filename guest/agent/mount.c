/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mount.c — MOUNT: the 9p exports of a VM restored from a snapshot.  Its
 * devices were there, unmounted, when the snapshot was saved (QEMU does not
 * migrate a mounted export); the restorer pointed them at the real host
 * directories and asks for them here, after the re-key and before any
 * exec (docs/protocol.md, "Mounts after a restore").
 */
#include "agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>

/* A tag mounted stays so until UNMOUNT: a second MOUNT of it is refused. */
static unsigned char g_mounted[100];
/* Where MOUNT mounted each tag, and whether it added that path to the
 * roots (UNMOUNT takes back only what MOUNT gave). */
static char *g_path[100];
static unsigned char g_root_added[100];

static void send_ok(struct conn *c, uint32_t id)
{
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_OK, 0, id);
	if (vb_msg_end(&b) == 0)
		conn_send(c, &b);
	vb_buf_free(&b);
}

void mount_handle(struct conn *c, const struct vb_hdr *h, const uint8_t *payload)
{
	if (!g_agent.pid1) {
		conn_send_error(c, h->id, VB_ERR_INVAL, "MOUNT needs the agent as a VM's PID 1");
		return;
	}
	/* the roots change below, which file operations read unlocked */
	if (!conn_idle(c)) {
		conn_send_error(c, h->id, VB_ERR_BUSY, "MOUNT while requests are in flight");
		return;
	}
	struct vb_mount_req *r = calloc(1, sizeof(*r));
	if (!r) {
		conn_send_error(c, h->id, VB_ERR_INTERNAL, "out of memory");
		return;
	}
	int rc = vb_mount_decode(payload, h->len, r);
	if (rc != VB_ERR_NONE) {
		conn_send_error(c, h->id, rc, "malformed MOUNT");
		agent_log("mount refused: malformed");
		free(r);
		return;
	}
	for (size_t i = 0; i < r->n; i++) {
		unsigned n = (unsigned)strtoul(r->m[i].tag + 3, NULL, 10); /* "vbm" + 1..2 digits */
		if (g_mounted[n]) {
			conn_send_error(c, h->id, VB_ERR_EXIST, "%s is already mounted", r->m[i].tag);
			free(r);
			return;
		}
	}
	for (size_t i = 0; i < r->n; i++) {
		struct vb_boot_mount m = { .tag = r->m[i].tag, .path = r->m[i].path, .ro = r->m[i].ro };
		char why[512];
		int e = boot_mount_9p(&m, why, sizeof(why));
		if (e) {
			agent_log("%s", why);
			conn_send_error(c, h->id, agent_errno_to_vb(e), "%s", why);
			free(r);
			return;
		}
		unsigned n = (unsigned)strtoul(r->m[i].tag + 3, NULL, 10);
		size_t roots = g_agent.n_roots;
		g_mounted[n] = 1;
		free(g_path[n]);
		g_path[n] = strdup(m.path);
		if (!g_path[n] || boot_add_root(m.path, 0) < 0) {
			conn_send_error(c, h->id, VB_ERR_INTERNAL, "out of memory");
			free(r);
			return;
		}
		g_root_added[n] = g_agent.n_roots > roots;
		agent_log("mounted 9p '%s' on %s%s", m.tag, m.path, m.ro ? " (ro)" : "");
	}
	free(r);
	send_ok(c, h->id);
}

void unmount_handle(struct conn *c, const struct vb_hdr *h)
{
	if (!g_agent.pid1) {
		conn_send_error(c, h->id, VB_ERR_INVAL, "UNMOUNT needs the agent as a VM's PID 1");
		return;
	}
	/* the host sends it right after its last exec's EXEC_EXIT, which the
	 * exec thread sends just before it counts its request done: a short
	 * wait for that, not for an exec still running */
	for (int i = 0; i < 400 && !conn_idle(c); i++)
		nanosleep(&(struct timespec){ .tv_nsec = 5000000 }, NULL);
	if (!conn_idle(c)) {
		conn_send_error(c, h->id, VB_ERR_BUSY, "UNMOUNT while requests are in flight");
		return;
	}
	if (h->len) {
		conn_send_error(c, h->id, VB_ERR_INVAL, "UNMOUNT carries no field");
		return;
	}
	for (unsigned n = 0; n < sizeof(g_mounted); n++) {
		if (!g_mounted[n])
			continue;
		/* never lazily (MNT_DETACH): QEMU lifts its migration blocker
		 * only once the guest has let go of the export's root, so a
		 * process still in it must fail the save here, by name */
		if (umount2(g_path[n], UMOUNT_NOFOLLOW) < 0) {
			int e = errno;
			agent_log("cannot unmount vbm%u from %s: %s", n, g_path[n], strerror(e));
			conn_send_error(c, h->id, agent_errno_to_vb(e), "cannot unmount vbm%u from %.256s: %s%s",
					n, g_path[n], strerror(e),
					e == EBUSY ? " (a process still uses it?)" : "");
			return;
		}
		if (g_root_added[n])
			boot_remove_root(g_path[n]);
		agent_log("unmounted 9p 'vbm%u' from %s", n, g_path[n]);
		g_mounted[n] = g_root_added[n] = 0;
		free(g_path[n]);
		g_path[n] = NULL;
	}
	send_ok(c, h->id);
}
