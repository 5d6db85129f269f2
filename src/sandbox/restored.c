/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a VM restored from a snapshot gets after the re-key besides its
 * mounts (mount.c): its loopback forwards (FORWARD) and its network
 * (NET_UP), both set up by the agent then because a snapshot's agent read
 * its boot data before the restoring VM existed (docs/snapshots.md,
 * "Forwards", "Network").  Kept apart from forward.c, which the channel's
 * fuzz target links on its own.
 *
 * The network device of snapshot VMs (docs/snapshots.md, "Network").  QEMU
 * loads a saved device state only into the same devices, so every
 * snapshot's VM has a virtio-net device, and every restore of it too.  A
 * restore with a network gives the device a fresh user-mode network with
 * the restoring VM's policy (vb_net_stream_start) and asks the agent to
 * configure eth0 (NET_UP); a snapshot's VM, and a restore without a
 * network, give it this backend: a socket whose frames are read and
 * dropped.  No frame of such a VM reaches anything.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox/sandbox_int.h"
#include "util/util.h"

struct vb_netdrop {
	int fd;
	pthread_t thread;
};

static void *drain(void *arg)
{
	struct vb_netdrop *d = arg;
	char buf[16384];
	for (;;) {
		ssize_t n = read(d->fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EINTR))
			break; /* QEMU is gone, or we were stopped */
	}
	return NULL;
}

struct vb_netdrop *vb_netdrop_start(int *vmm_fd, vb_error *err)
{
	int sv[2];
	struct vb_netdrop *d = calloc(1, sizeof(*d));
	if (!d) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		vb_error_errno(err, errno, "socketpair");
		free(d);
		return NULL;
	}
	d->fd = sv[0];
	int rc = pthread_create(&d->thread, NULL, drain, d);
	if (rc != 0) {
		close(sv[0]);
		close(sv[1]);
		free(d);
		vb_error_errno(err, rc, "cannot start a thread");
		return NULL;
	}
	*vmm_fd = sv[1];
	return d;
}

void vb_netdrop_stop(struct vb_netdrop *d)
{
	if (!d)
		return;
	shutdown(d->fd, SHUT_RDWR); /* the blocked read returns 0 */
	pthread_join(d->thread, NULL);
	close(d->fd);
	free(d);
}

int vb_sandbox_ask(vb_sandbox *sb, struct vb_buf *req, const char *what, vb_error *err)
{
	struct vb_chan_frame *reply = NULL;
	int rc = vb_chan_call(sb->ch, req, VB_CALL_TIMEOUT_MS, &reply, NULL, err);
	vb_buf_free(req);
	free(reply);
	if (rc < 0) {
		if (vb_chan_dead(sb->ch))
			vb_sandbox_died(sb, err);
		vb_error_prefix(err, "%s", what);
		return -1;
	}
	return 0;
}

int vb_sandbox_net_restored(vb_sandbox *sb, const struct vb_sandbox_config *cfg, vb_error *err)
{
	if (!cfg->network.enabled)
		return 0;
	struct vb_buf req = { 0 };
	vb_msg_begin(&req, VB_MSG_NET_UP, 0, 0);
	if (vb_msg_end(&req) < 0) {
		vb_buf_free(&req);
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	return vb_sandbox_ask(sb, &req, "cannot bring the VM's network up", err);
}

int vb_sandbox_forward_restored(vb_sandbox *sb, const struct vb_sandbox_config *cfg,
				vb_error *err)
{
	if (!cfg->n_forwards)
		return 0;
	/* vb_sandbox_boot checked the count and the ports; a forward's KIND
	 * is its index, as in the boot data */
	struct vb_fwd_req r = { .n = cfg->n_forwards };
	for (size_t i = 0; i < cfg->n_forwards; i++)
		r.f[i] = (struct vb_boot_forward){ .port = (uint16_t)cfg->forwards[i].guest_port,
						   .kind = i };
	struct vb_buf req = { 0 };
	if (vb_fwd_encode(&req, 0, &r) < 0) {
		vb_buf_free(&req);
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	return vb_sandbox_ask(sb, &req, "cannot set up the VM's loopback forwards", err);
}
