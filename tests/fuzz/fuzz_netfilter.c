/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_netfilter.c — libFuzzer target for the network's frame filter
 * (src/net/frame.c, src/net/filter.c): the input is a stream of frames, each
 * behind a 2-byte length whose top bit says which way it goes (guest to
 * network, or network to guest), run through a filter with caps small
 * enough to be reached.  Every refusal reply must parse back as the packet
 * it claims to be, with valid IPv4 checksums; nothing may read past a frame
 * (ASAN) and the open-connection count stays within its cap.
 *
 *   make fuzz; build/fuzz/fuzz_netfilter -max_total_time=600 tests/fuzz/corpus/netfilter
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/filter.h"
#include "net/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reply(const uint8_t *r, size_t n)
{
	struct vb_frame p;
	if (n == 0)
		return;
	if (vb_frame_parse(r, n, &p) != VB_FRAME_IPV4 || p.dst != VB_NET_GUEST ||
	    vb_inet_csum(r + VB_ETH_HLEN, 20, 0) != 0)
		abort();
	if (p.proto == VB_IPPROTO_TCP && !(p.tcp_flags & VB_TCP_RST))
		abort();
	if (p.proto == VB_IPPROTO_ICMP && (p.icmp_type != 3 ||
					   vb_inet_csum(r + 34, n - 34, 0) != 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned ports[] = { 8080 };
	struct vb_net_cidr deny = { .family = AF_INET, .addr = { 203, 0, 113, 0 }, .prefix = 24 };
	struct vb_net_cidr allow = { .family = AF_INET, .addr = { 93, 184, 216, 0 }, .prefix = 24 };
	struct vb_network cfg = {
		.enabled = 1,
		.host_ports = ports,
		.n_host_ports = 1,
		.deny = &deny,
		.n_deny = 1,
		.allow = &allow,
		.n_allow = 1,
		.allow_set = size > 0 && (data[0] & 1),
		.max_connections = 3,
		.connections_per_sec = 5,
	};
	struct vb_net_filter *fl = vb_net_filter_new(&cfg, NULL);
	if (!fl)
		return 0;
	int64_t now = 0;
	size_t off = size > 0 ? 1 : 0;
	while (size - off >= 2) {
		size_t len = (size_t)(data[off] & 0x7f) << 8 | data[off + 1];
		int to_guest = data[off] & 0x80;
		off += 2;
		if (len > size - off)
			len = size - off;
		/* a copy exactly as long as the frame, so ASAN sees overreads */
		uint8_t *frame = malloc(len ? len : 1);
		if (!frame)
			break;
		memcpy(frame, data + off, len);
		off += len;
		now += 700; /* sweeps and the per-second window move */
		if (to_guest) {
			vb_net_filter_to_guest(fl, frame, len, now);
		} else {
			uint8_t reply[128];
			struct vb_net_decision d;
			vb_net_filter_guest(fl, frame, len, now, reply, sizeof(reply), &d);
			if (d.verdict == VB_NET_REFUSE) {
				if (!d.rule || d.reply_len > sizeof(reply))
					abort();
				check_reply(reply, d.reply_len);
			}
		}
		free(frame);
		if (vb_net_filter_open(fl) > cfg.max_connections)
			abort();
	}
	vb_net_filter_free(fl);
	return 0;
}
