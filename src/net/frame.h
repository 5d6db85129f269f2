/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ethernet frames as the guest writes them: a bounded parse of the headers
 * the policy needs (Ethernet, ARP, IPv4, TCP, UDP, ICMP), and the replies
 * that make a refusal fail fast in the guest (a TCP RST, an ICMP
 * destination unreachable).  Pure functions: no allocation, no I/O.  Every
 * length comes from the frame and is checked before use.
 */
#ifndef VB_NET_FRAME_H
#define VB_NET_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define VB_ETH_HLEN 14u
#define VB_ETH_P_IP 0x0800u
#define VB_ETH_P_ARP 0x0806u
#define VB_ETH_P_IPV6 0x86ddu

#define VB_IPPROTO_ICMP 1u
#define VB_IPPROTO_TCP 6u
#define VB_IPPROTO_UDP 17u

#define VB_TCP_FIN 0x01u
#define VB_TCP_SYN 0x02u
#define VB_TCP_RST 0x04u
#define VB_TCP_ACK 0x10u

enum vb_frame_kind {
	VB_FRAME_MALFORMED = -1, /* too short, bad lengths, bad version */
	VB_FRAME_OTHER = 0,      /* an ethertype we do not carry */
	VB_FRAME_ARP,
	VB_FRAME_IPV6,
	VB_FRAME_IPV4,
};

/* A parsed frame; pointers into the caller's buffer.  Addresses are in host
 * byte order. */
struct vb_frame {
	enum vb_frame_kind kind;
	const uint8_t *eth;    /* the frame */
	size_t len;            /* Ethernet header + IPv4 total length (padding cut) */
	/* IPv4 */
	size_t ip_off, ip_hlen, ip_len; /* header offset and length, total length */
	uint32_t src, dst;
	uint8_t proto;
	int fragment;          /* MF set or a fragment offset: ports unknown */
	/* TCP/UDP (when !fragment and the header is complete) */
	int have_ports;
	uint16_t sport, dport;
	/* TCP */
	uint8_t tcp_flags;
	uint32_t seq, ack;
	size_t payload_len;    /* TCP/UDP payload bytes */
	/* ICMP */
	uint8_t icmp_type, icmp_code;
};

/* Parse (len) bytes of (buf).  Returns f->kind. */
enum vb_frame_kind vb_frame_parse(const uint8_t *buf, size_t len, struct vb_frame *f);

/* The Internet checksum (RFC 1071) of (len) bytes, starting from (sum). */
uint16_t vb_inet_csum(const void *data, size_t len, uint32_t sum);

/* The frame a peer would send to refuse the TCP segment (f): RST (+ACK)
 * from its destination back to its source, addressed as the reply to the
 * guest (MACs swapped), checksums filled.  Returns its length, 0 if (f) is
 * not a TCP segment or an RST itself (never answer an RST), or (cap) is too
 * small (54 bytes suffice). */
size_t vb_frame_tcp_rst(const struct vb_frame *f, uint8_t *out, size_t cap);

/* An RST in (f)'s own direction (same addresses and ports) with sequence
 * number (seq): what the guest would send to abort the connection, for
 * libslirp's side of a connection the policy ends.  Returns 54 or 0 (not
 * TCP, (cap) too small). */
size_t vb_frame_tcp_rst_same_way(const struct vb_frame *f, uint32_t seq, uint8_t *out, size_t cap);

/* A UDP datagram of (plen) bytes from (src):(sport) to (dst):(dport) (host
 * order), in an Ethernet frame from (from_mac) to (to_mac), checksums
 * filled.  Returns its length, or 0 when (cap) is too small. */
size_t vb_frame_udp(const uint8_t from_mac[6], const uint8_t to_mac[6], uint32_t src,
		    uint16_t sport, uint32_t dst, uint16_t dport, const uint8_t *payload,
		    size_t plen, uint8_t *out, size_t cap);

/* An ICMP destination unreachable (code, e.g. 13 = administratively
 * prohibited) from (from) (host order) about the IPv4 packet (f), carrying
 * its header and first 8 payload bytes.  Returns its length or 0 (not
 * IPv4, an ICMP error itself, (cap) too small: 110 bytes suffice). */
size_t vb_frame_icmp_unreach(const struct vb_frame *f, uint32_t from, uint8_t code, uint8_t *out,
			     size_t cap);

#endif
