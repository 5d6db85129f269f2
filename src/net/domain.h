/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Domain names for the network policy (docs/network.md, "Policy building
 * blocks"): host-name validation, allow_domains patterns and their
 * matching, and the table of what each allowed name resolved to and until
 * when.  No I/O: the caller passes the time.
 *
 * A pattern is a host name ("api.github.com": that name only) or "*."
 * followed by one ("*.pypi.org": every name below pypi.org, at any depth —
 * files.pypi.org, a.b.pypi.org — but not pypi.org itself; list both to
 * allow both).  Matching ignores case and a trailing dot.
 */
#ifndef VB_NET_DOMAIN_H
#define VB_NET_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "voidbox/error.h"

#define VB_DOMAIN_MAX 254 /* 253 characters of name, and the NUL */
#define VB_DOMAIN_LIST_MAX 1024

/* The bytes a label of a host name may hold: letters, digits, '-' and '_'
 * (underscores appear in real service names; nothing else does). */
static inline bool vb_domain_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* Check (name) as a host name and write it to (out) lowercased without a
 * trailing dot: labels of 1..63 allowed bytes, none starting or ending
 * with '-', at most 253 characters.  Returns 0, or -1 with (err)
 * (VB_E_USAGE) saying what is wrong and where. */
int vb_domain_normalize(const char *name, char out[VB_DOMAIN_MAX], vb_error *err);

struct vb_domain_pattern {
	bool wildcard;           /* "*.name": strictly below name */
	char name[VB_DOMAIN_MAX]; /* normalised, without the "*." */
};

/* Parse an allow_domains entry.  Refused: anything vb_domain_normalize
 * refuses, a '*' anywhere but a leading "*.", "*" alone, and a name whose
 * last label is all digits (an address belongs in `allow`). */
int vb_domain_pattern_parse(const char *text, struct vb_domain_pattern *out, vb_error *err);
/* Whether (name) (any case, trailing dot or not) matches (p). */
bool vb_domain_pattern_match(const struct vb_domain_pattern *p, const char *name);
/* The pattern as written in a spec ("*.pypi.org") into (buf); returns buf. */
char *vb_domain_pattern_format(const struct vb_domain_pattern *p, char *buf, size_t n);

/* A list of patterns, at most VB_DOMAIN_LIST_MAX; zero-initialise. */
struct vb_domain_list {
	struct vb_domain_pattern *v;
	size_t n, cap;
};
int vb_domain_list_add_str(struct vb_domain_list *l, const char *text, vb_error *err);
/* The first pattern that matches (name), or NULL. */
const struct vb_domain_pattern *vb_domain_list_match(const struct vb_domain_list *l,
						     const char *name);
void vb_domain_list_free(struct vb_domain_list *l);

/*
 * The name table: which addresses each name resolved to, and until when.
 * A DNS TTL is held within [VB_NAMETAB_TTL_MIN, VB_NAMETAB_TTL_MAX]
 * seconds: a floor so that a TTL of 0 does not make the address unusable
 * before the guest connects, a ceiling so that a stale answer does not
 * keep a door open for days.  The table holds (name, address) pairs up to
 * its capacity; when full, an expired pair goes first, else the pair that
 * would expire soonest.  IPv4-mapped IPv6 addresses are stored and looked
 * up as the IPv4 address they carry.
 */
#define VB_NAMETAB_TTL_MIN 30
#define VB_NAMETAB_TTL_MAX 3600
#define VB_NAMETAB_DEFAULT_CAP 1024
#define VB_NAMETAB_MAX_CAP 65536

struct vb_nametab;

/* A table of (cap) pairs (0: VB_NAMETAB_DEFAULT_CAP; at most
 * VB_NAMETAB_MAX_CAP), allocated once.  NULL when memory is short. */
struct vb_nametab *vb_nametab_new(size_t cap);
void vb_nametab_free(struct vb_nametab *t);

/* Record that (name) resolved to (addr) (4 or 16 bytes by (family)) with
 * DNS TTL (ttl_s), at time (now_ms) (any monotonic clock, the same in
 * every call).  A pair already present gets the later of its two expiries.
 * Returns 0, or -1 when the name is not a host name or the family unknown. */
int vb_nametab_add(struct vb_nametab *t, const char *name, int family, const uint8_t *addr,
		   uint32_t ttl_s, int64_t now_ms);
/* Whether (name) resolved to (addr) and that answer is still valid at
 * (now_ms): the SNI check asks this. */
bool vb_nametab_valid(const struct vb_nametab *t, const char *name, int family,
		      const uint8_t *addr, int64_t now_ms);
/* The names that resolved to (addr) and are still valid at (now_ms), at
 * most (max) of them into (names) (pointers into the table, valid until the
 * next vb_nametab_add or _free).  Returns how many there are in all (may
 * be more than max). */
size_t vb_nametab_names(const struct vb_nametab *t, int family, const uint8_t *addr,
			int64_t now_ms, const char **names, size_t max);
/* Pairs in the table, expired ones included (for tests and accounting). */
size_t vb_nametab_count(const struct vb_nametab *t);

#endif
