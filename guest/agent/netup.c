/* SPDX-License-Identifier: Apache-2.0 */
/*
 * netup.c — NET_UP: the network of a VM restored from a snapshot.  Every
 * snapshot's VM has a virtio-net device, left down (its backend at save
 * time drops every frame); a restore with a network points the device at
 * a fresh user-mode network of its own and asks for the interface here,
 * after the re-key and before any exec (docs/protocol.md, "The network
 * after a restore").  The addressing is the fixed one of every VoidBox
 * network (VB_NET_*): the request carries nothing.
 */
#include "agent.h"

#include <stdatomic.h>

static atomic_int g_up;

void netup_handle(struct conn *c, const struct vb_hdr *h)
{
	if (!g_agent.pid1) {
		conn_send_error(c, h->id, VB_ERR_INVAL, "NET_UP needs the agent as a VM's PID 1");
		return;
	}
	if (atomic_exchange(&g_up, 1)) {
		conn_send_error(c, h->id, VB_ERR_EXIST, "the network is already up");
		return;
	}
	char why[256];
	int e = boot_network_up(why, sizeof(why));
	if (e) {
		agent_log("%s", why);
		conn_send_error(c, h->id, agent_errno_to_vb(e), "%s", why);
		return;
	}
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_OK, 0, h->id);
	if (vb_msg_end(&b) == 0)
		conn_send(c, &b);
	vb_buf_free(&b);
}

/* Before the save of a VM made to be snapshotted with a network
 * (docs/snapshots.md, "A network and mounts while a snapshot is made"):
 * the interface, address, route and resolv.conf as before NET_UP, so the
 * saved VM knows nothing of that network and a restore's NET_UP starts
 * afresh. */
void netdown_handle(struct conn *c, const struct vb_hdr *h)
{
	if (!g_agent.pid1) {
		conn_send_error(c, h->id, VB_ERR_INVAL, "NET_DOWN needs the agent as a VM's PID 1");
		return;
	}
	if (h->len) {
		conn_send_error(c, h->id, VB_ERR_INVAL, "NET_DOWN carries no field");
		return;
	}
	if (!atomic_load(&g_up)) {
		conn_send_error(c, h->id, VB_ERR_INVAL, "the network is not up");
		return;
	}
	char why[256];
	int e = boot_network_down(why, sizeof(why));
	if (e) {
		agent_log("%s", why);
		conn_send_error(c, h->id, agent_errno_to_vb(e), "%s", why);
		return;
	}
	atomic_store(&g_up, 0);
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_OK, 0, h->id);
	if (vb_msg_end(&b) == 0)
		conn_send(c, &b);
	vb_buf_free(&b);
}
