/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A network and host mounts while a snapshot is made (docs/snapshots.md,
 * "A network and mounts while a snapshot is made").  The VM of `snapshot
 * create` has the devices of every snapshot's VM: 4 virtio-9p devices
 * and a virtio-net device.  With mounts or a network, its 9p devices
 * point at the host directories and its net device at a user-mode network
 * with the create's policy, and the agent mounts and configures them after
 * boot with the messages a restore uses (MOUNT, NET_UP).  Before the save
 * it undoes both (UNMOUNT, NET_DOWN) and the network's host side is
 * stopped: QEMU refuses to migrate a mounted 9p export, and nothing of the
 * create's network (addresses, routes, resolv.conf, the host's sockets)
 * belongs in a snapshot that other VMs restore.
 */
#include <stdlib.h>

#include "sandbox/sandbox_int.h"
#include "util/util.h"

int vb_sandbox_snap_setup(vb_sandbox *sb, const struct vb_sandbox_config *cfg, vb_error *err)
{
	if (vb_sandbox_mount_slots(sb, cfg, err) < 0 || vb_sandbox_net_restored(sb, cfg, err) < 0) {
		vb_error_prefix(err, "the VM to be snapshotted");
		return -1;
	}
	return 0;
}

/* Send (type), which carries no field, and wait for the agent's OK. */
static int ask_empty(vb_sandbox *sb, uint16_t type, const char *what, vb_error *err)
{
	struct vb_buf req = { 0 };
	vb_msg_begin(&req, type, 0, 0);
	if (vb_msg_end(&req) < 0) {
		vb_buf_free(&req);
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	return vb_sandbox_ask(sb, &req, what, err);
}

int vb_sandbox_snap_quiesce(vb_sandbox *sb, vb_error *err)
{
	if (sb->n_slot_mounts) {
		if (ask_empty(sb, VB_MSG_UNMOUNT, "cannot unmount the VM's directories before the save",
			      err) < 0)
			return -1;
		sb->n_slot_mounts = 0;
	}
	if (sb->net) {
		if (ask_empty(sb, VB_MSG_NET_DOWN, "cannot take the VM's network down before the save",
			      err) < 0)
			return -1;
		/* QEMU's stream backend sees the socket close and sends the
		 * guest's frames nowhere from then on */
		vb_net_stream_stop(sb->net);
		sb->net = NULL;
	}
	return 0;
}
