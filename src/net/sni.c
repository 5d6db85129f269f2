/* SPDX-License-Identifier: Apache-2.0 */
/* TLS ClientHello server_name extraction (sni.h). */
#include "net/sni.h"

#include <string.h>

#define REC_HEADER 5
#define REC_MAX 16384 /* TLSPlaintext.length limit */
#define HS_HELLO 1
#define EXT_SERVER_NAME 0
#define NAME_HOST 0

/* A bounds-checked reader over (p, n). */
struct rd {
	const uint8_t *p;
	size_t n, off;
	bool bad;
};

static unsigned get(struct rd *r, size_t bytes)
{
	if (r->bad || r->n - r->off < bytes) {
		r->bad = true;
		return 0;
	}
	unsigned v = 0;
	for (size_t i = 0; i < bytes; i++)
		v = v << 8 | r->p[r->off + i];
	r->off += bytes;
	return v;
}

/* A sub-reader over the next (len) bytes, which (r) skips. */
static struct rd sub(struct rd *r, size_t len)
{
	struct rd s = { .p = r->p + r->off, .n = len, .off = 0, .bad = r->bad };
	if (r->bad || r->n - r->off < len) {
		r->bad = s.bad = true;
		s.n = 0;
		return s;
	}
	r->off += len;
	return s;
}

static void skip(struct rd *r, size_t len)
{
	(void)sub(r, len);
}

/* The server_name extension's list: one host_name at most. */
static enum vb_sni_result server_names(struct rd *ext, char name[VB_DOMAIN_MAX])
{
	struct rd list = sub(ext, get(ext, 2));
	if (ext->bad || ext->off != ext->n || list.n == 0)
		return VB_SNI_INVALID;
	bool found = false;
	while (list.off < list.n) {
		unsigned type = get(&list, 1);
		struct rd hn = sub(&list, get(&list, 2));
		if (list.bad)
			return VB_SNI_INVALID;
		if (type != NAME_HOST)
			continue;
		if (found || hn.n == 0 || hn.n > VB_DOMAIN_MAX)
			return VB_SNI_INVALID;
		char text[VB_DOMAIN_MAX + 1];
		for (size_t i = 0; i < hn.n; i++) {
			/* no NUL (or anything else) that would let two readers disagree */
			if (!vb_domain_char_ok(hn.p[i]) && hn.p[i] != '.')
				return VB_SNI_INVALID;
			text[i] = (char)hn.p[i];
		}
		text[hn.n] = '\0';
		if (vb_domain_normalize(text, name, NULL) < 0)
			return VB_SNI_INVALID;
		found = true;
	}
	return found ? VB_SNI_FOUND : VB_SNI_ABSENT;
}

/* The ClientHello body (after the 4-byte handshake header). */
static enum vb_sni_result hello(const uint8_t *p, size_t n, char name[VB_DOMAIN_MAX])
{
	struct rd r = { .p = p, .n = n };
	skip(&r, 2 + 32); /* legacy_version, random */
	unsigned sid = get(&r, 1);
	if (sid > 32)
		return VB_SNI_INVALID;
	skip(&r, sid);
	unsigned suites = get(&r, 2);
	if (suites < 2 || suites % 2)
		return VB_SNI_INVALID;
	skip(&r, suites);
	unsigned comp = get(&r, 1);
	if (comp < 1)
		return VB_SNI_INVALID;
	skip(&r, comp);
	if (r.bad)
		return VB_SNI_INVALID;
	if (r.off == r.n)
		return VB_SNI_ABSENT; /* no extensions at all (TLS 1.2 and before allow it) */
	struct rd exts = sub(&r, get(&r, 2));
	if (r.bad || r.off != r.n)
		return VB_SNI_INVALID;
	enum vb_sni_result res = VB_SNI_ABSENT;
	bool seen = false;
	while (exts.off < exts.n) {
		unsigned type = get(&exts, 2);
		struct rd ext = sub(&exts, get(&exts, 2));
		if (exts.bad)
			return VB_SNI_INVALID;
		if (type != EXT_SERVER_NAME)
			continue;
		if (seen)
			return VB_SNI_INVALID; /* two: which one would the server read? */
		seen = true;
		res = server_names(&ext, name);
		if (res == VB_SNI_INVALID)
			return res;
	}
	return res;
}

enum vb_sni_result vb_sni_parse(const uint8_t *p, size_t n, char name[VB_DOMAIN_MAX],
				size_t *need)
{
	uint8_t hs[VB_SNI_MAX_BYTES];
	size_t hlen = 0, off = 0, want = 0; /* want: the handshake message's length, once known */
	name[0] = '\0';
	*need = 0;
	if (n >= 1 && p[0] != 0x16)
		return VB_SNI_NOT_TLS;
	if (n >= 2 && p[1] != 0x03)
		return VB_SNI_NOT_TLS;
	for (;;) {
		if (n - off < REC_HEADER) {
			*need = off + REC_HEADER;
			break;
		}
		const uint8_t *h = p + off;
		size_t len = (size_t)h[3] << 8 | h[4];
		/* (the first record's type and major version were checked above) */
		if (h[0] != 0x16 || h[1] != 0x03 || h[2] > 0x04 || len == 0 || len > REC_MAX)
			return VB_SNI_INVALID;
		if (n - off - REC_HEADER < len) {
			*need = off + REC_HEADER + len;
			break;
		}
		if (off + REC_HEADER + len > VB_SNI_MAX_BYTES) /* so hlen + len <= sizeof(hs) */
			return VB_SNI_INVALID;
		memcpy(hs + hlen, h + REC_HEADER, len);
		hlen += len;
		off += REC_HEADER + len;
		if (hlen >= 4 && !want) {
			if (hs[0] != HS_HELLO)
				return VB_SNI_INVALID;
			want = 4 + ((size_t)hs[1] << 16 | (size_t)hs[2] << 8 | hs[3]);
			if (want > VB_SNI_MAX_BYTES - REC_HEADER)
				return VB_SNI_INVALID;
		}
		if (want && hlen >= want) {
			enum vb_sni_result r = hello(hs + 4, want - 4, name);
			if (r != VB_SNI_FOUND) /* a name seen before a fault is no answer */
				name[0] = '\0';
			return r;
		}
	}
	/* cut short: worth waiting only if it can still fit */
	if (*need > VB_SNI_MAX_BYTES) {
		*need = 0;
		return VB_SNI_INVALID;
	}
	return VB_SNI_NEED_MORE;
}

const char *vb_sni_result_name(enum vb_sni_result r)
{
	switch (r) {
	case VB_SNI_FOUND:
		return "found";
	case VB_SNI_ABSENT:
		return "absent";
	case VB_SNI_NEED_MORE:
		return "need-more";
	case VB_SNI_NOT_TLS:
		return "not-tls";
	case VB_SNI_INVALID:
		return "invalid";
	}
	return "?";
}
