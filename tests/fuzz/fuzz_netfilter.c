/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_netfilter.c — libFuzzer target for the network's frame filter
 * (src/net/frame.c, src/net/filter.c): the input is a stream of frames, each
 * behind a 2-byte length whose top bit says which way it goes (guest to
 * network, or network to guest), run through a filter with caps small
 * enough to be reached; when the first byte says so, in domain mode, where
 * 93.184.216.0/24 is "resolved" and the ClientHellos of TCP streams there
 * are held and read (SNI): released frames must parse, the last being the
 * one just given.  Every refusal reply must parse back as the packet
 * it claims to be, with valid IPv4 checksums; nothing may read past a frame
 * (ASAN) and the open-connection count stays within its cap.
 *
 *   make fuzz; build/fuzz/fuzz_netfilter -max_total_time=600 tests/fuzz/corpus/netfilter
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/domain.h"
#include "net/filter.h"
#include "net/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int resolved(void *opaque, uint32_t addr, int64_t now)
{
	(void)opaque;
	(void)now;
	return (addr >> 8) == (VB_NET_ADDR(93, 184, 216, 0) >> 8);
}

static int sni_ok(void *opaque, const char *name, uint32_t addr, int64_t now)
{
	(void)opaque;
	if (!name[0] || strlen(name) >= VB_DOMAIN_MAX)
		abort(); /* a found name is a host name */
	return resolved(NULL, addr, now) && !strcmp(name, "ok.test");
}

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
	if (size > 0 && (data[0] & 2)) {
		struct vb_net_names names = { resolved, sni_ok, NULL };
		vb_net_filter_set_names(fl, &names);
	}
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
			uint8_t reply[192];
			struct vb_net_decision d;
			vb_net_filter_guest(fl, frame, len, now, reply, sizeof(reply), &d);
			if (d.verdict == VB_NET_REFUSE) {
				if (!d.rule || d.reply_len > 128 || d.net_reply_len > 64)
					abort();
				check_reply(reply, d.reply_len);
			}
			if (d.verdict == VB_NET_RELEASE) {
				size_t at = 0;
				struct vb_frame hf;
				if (!d.held || !d.held->n)
					abort();
				for (size_t i = 0; i < d.held->n; i++) {
					if (vb_frame_parse(d.held->data + at, d.held->lens[i], &hf) !=
					    VB_FRAME_IPV4)
						abort();
					at += d.held->lens[i];
				}
				size_t last = d.held->lens[d.held->n - 1];
				if (at != d.held->len || last != len ||
				    memcmp(d.held->data + at - last, frame, len) != 0)
					abort();
			}
		}
		free(frame);
		if (vb_net_filter_open(fl) > cfg.max_connections)
			abort();
	}
	vb_net_filter_free(fl);
	return 0;
}
