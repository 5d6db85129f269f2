/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server name of a TLS ClientHello (RFC 8446 4.1.2, RFC 6066 3) at the
 * start of a TCP stream, for the domain allow-list's SNI check
 * (docs/network.md, "Policy building blocks").  The guest writes these
 * bytes, so nothing is trusted: every length is checked against what
 * contains it, a ClientHello may span several records and TCP segments
 * (VB_SNI_NEED_MORE says how much to wait for), and anything ambiguous (two
 * server_name extensions, two host names) is invalid rather than guessed.
 * No I/O, no allocation (a 16 KiB buffer on the stack).
 */
#ifndef VB_NET_SNI_H
#define VB_NET_SNI_H

#include <stddef.h>
#include <stdint.h>

#include "net/domain.h"

/* The most stream bytes a ClientHello may take: one full TLS record.  A
 * caller buffering the start of a stream never needs more. */
#define VB_SNI_MAX_BYTES (16384 + 5)

enum vb_sni_result {
	VB_SNI_FOUND,     /* a ClientHello with a host name, written to (name) */
	VB_SNI_ABSENT,    /* a well-formed ClientHello without a host name */
	VB_SNI_NEED_MORE, /* a ClientHello so far, but cut: wait for *need bytes */
	VB_SNI_NOT_TLS,   /* the stream does not start with a TLS handshake record */
	VB_SNI_INVALID,   /* TLS, but malformed, ambiguous or too large */
};

/* Read the ClientHello at the start of (p, n) (the first n bytes the guest
 * sent on the connection).  On VB_SNI_FOUND, (name) holds the host name,
 * lowercase, without a trailing dot, checked as vb_domain_normalize does.
 * On VB_SNI_NEED_MORE, *need is the stream length to have before calling
 * again (more than n, at most VB_SNI_MAX_BYTES); it may ask again. */
enum vb_sni_result vb_sni_parse(const uint8_t *p, size_t n, char name[VB_DOMAIN_MAX],
				size_t *need);

/* "found", "absent", ... for events and logs. */
const char *vb_sni_result_name(enum vb_sni_result r);

#endif
