/* SPDX-License-Identifier: Apache-2.0 */
/* Host names, allow_domains patterns and the name table (domain.h). */
#include "net/domain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

int vb_domain_normalize(const char *name, char out[VB_DOMAIN_MAX], vb_error *err)
{
	size_t len = name ? strlen(name) : 0;
	if (len && name[len - 1] == '.')
		len--;
	if (len == 0)
		return vb_error_set(err, VB_E_USAGE, "empty domain name");
	if (len > VB_DOMAIN_MAX - 1)
		return vb_error_set(err, VB_E_USAGE, "domain name '%.40s...' is longer than %d "
				    "characters", name, VB_DOMAIN_MAX - 1);
	size_t label = 0; /* where the current label starts */
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)name[i] : '.';
		if (c == '.') {
			size_t n = i - label;
			if (n == 0)
				return vb_error_set(err, VB_E_USAGE, "domain name '%.80s': empty "
						    "label at column %zu", name, i + 1);
			if (n > 63)
				return vb_error_set(err, VB_E_USAGE, "domain name '%.80s': label at "
						    "column %zu is longer than 63", name, label + 1);
			if (name[label] == '-' || name[i - 1] == '-')
				return vb_error_set(err, VB_E_USAGE, "domain name '%.80s': label at "
						    "column %zu starts or ends with '-'", name,
						    label + 1);
			label = i + 1;
		} else if (!vb_domain_char_ok(c)) {
			return vb_error_set(err, VB_E_USAGE, "domain name '%.80s': unexpected "
					    "character at column %zu (letters, digits, '-', '_' "
					    "and dots)", name, i + 1);
		}
		if (i < len)
			out[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
	}
	out[len] = '\0';
	return 0;
}

int vb_domain_pattern_parse(const char *text, struct vb_domain_pattern *out, vb_error *err)
{
	struct vb_domain_pattern p = { 0 };
	if (!text)
		text = "";
	const char *name = text;
	if (text[0] == '*' && text[1] == '.') {
		p.wildcard = true;
		name = text + 2;
	}
	const char *star = strchr(name, '*');
	if (star)
		return vb_error_set(err, VB_E_USAGE, "domain pattern '%.80s': '*' at column %zu "
				    "(a wildcard is only a leading '*.', as in '*.example.org')",
				    text, (size_t)(star - text) + 1);
	vb_error e = { 0 };
	if (vb_domain_normalize(name, p.name, &e) < 0) {
		vb_error_set(err, VB_E_USAGE, "%s", e.msg);
		if (p.wildcard)
			vb_error_prefix(err, "in '%.80s'", text);
		return -1;
	}
	const char *last = strrchr(p.name, '.');
	last = last ? last + 1 : p.name;
	if (strspn(last, "0123456789") == strlen(last))
		return vb_error_set(err, VB_E_USAGE, "domain pattern '%.80s' is an address, not a "
				    "name (put addresses in 'allow' as CIDRs)", text);
	*out = p;
	return 0;
}

/* (name)'s length without a trailing dot. */
static size_t name_len(const char *name)
{
	size_t n = strlen(name);
	return n && name[n - 1] == '.' ? n - 1 : n;
}

bool vb_domain_pattern_match(const struct vb_domain_pattern *p, const char *name)
{
	if (!p || !name)
		return false;
	size_t n = name_len(name), pn = strlen(p->name);
	if (!p->wildcard)
		return n == pn && strncasecmp(name, p->name, n) == 0;
	/* strictly below: at least one label, then a dot, then the suffix */
	return n >= pn + 2 && name[n - pn - 1] == '.' &&
	       strncasecmp(name + n - pn, p->name, pn) == 0;
}

char *vb_domain_pattern_format(const struct vb_domain_pattern *p, char *buf, size_t n)
{
	if (n)
		snprintf(buf, n, "%s%s", p->wildcard ? "*." : "", p->name);
	return buf;
}

int vb_domain_list_add_str(struct vb_domain_list *l, const char *text, vb_error *err)
{
	struct vb_domain_pattern p;
	if (vb_domain_pattern_parse(text, &p, err) < 0)
		return -1;
	if (l->n >= VB_DOMAIN_LIST_MAX)
		return vb_error_set(err, VB_E_USAGE, "more than %d domain patterns",
				    VB_DOMAIN_LIST_MAX);
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		if (cap > VB_DOMAIN_LIST_MAX)
			cap = VB_DOMAIN_LIST_MAX;
		struct vb_domain_pattern *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = p;
	return 0;
}

const struct vb_domain_pattern *vb_domain_list_match(const struct vb_domain_list *l,
						     const char *name)
{
	for (size_t i = 0; l && i < l->n; i++)
		if (vb_domain_pattern_match(&l->v[i], name))
			return &l->v[i];
	return NULL;
}

void vb_domain_list_free(struct vb_domain_list *l)
{
	if (!l)
		return;
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/* ---- the name table ---- */

struct pair {
	bool used;
	int family;
	uint8_t addr[16];
	int64_t expires_ms;
	char name[VB_DOMAIN_MAX];
};

struct vb_nametab {
	size_t cap, n;
	struct pair v[];
};

struct vb_nametab *vb_nametab_new(size_t cap)
{
	if (cap == 0)
		cap = VB_NAMETAB_DEFAULT_CAP;
	if (cap > VB_NAMETAB_MAX_CAP)
		cap = VB_NAMETAB_MAX_CAP;
	struct vb_nametab *t = calloc(1, sizeof(*t) + cap * sizeof(struct pair));
	if (t)
		t->cap = cap;
	return t;
}

void vb_nametab_free(struct vb_nametab *t)
{
	free(t);
}

size_t vb_nametab_count(const struct vb_nametab *t)
{
	return t ? t->n : 0;
}

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF };

/* The address in one form: IPv4-mapped IPv6 becomes IPv4.  False for an
 * unknown family. */
static bool canon_addr(int family, const uint8_t *addr, int *fam, uint8_t out[16])
{
	memset(out, 0, 16);
	if (!addr)
		return false;
	if (family == AF_INET6 && memcmp(addr, v4mapped, 12) == 0)
		family = AF_INET, addr += 12;
	if (family == AF_INET)
		memcpy(out, addr, 4);
	else if (family == AF_INET6)
		memcpy(out, addr, 16);
	else
		return false;
	*fam = family;
	return true;
}

static bool same_addr(const struct pair *p, int fam, const uint8_t a[16])
{
	return p->used && p->family == fam && memcmp(p->addr, a, 16) == 0;
}

int vb_nametab_add(struct vb_nametab *t, const char *name, int family, const uint8_t *addr,
		   uint32_t ttl_s, int64_t now_ms)
{
	char norm[VB_DOMAIN_MAX];
	uint8_t a[16];
	int fam = 0;
	if (!t || vb_domain_normalize(name, norm, NULL) < 0 || !canon_addr(family, addr, &fam, a))
		return -1;
	if (ttl_s < VB_NAMETAB_TTL_MIN)
		ttl_s = VB_NAMETAB_TTL_MIN;
	if (ttl_s > VB_NAMETAB_TTL_MAX)
		ttl_s = VB_NAMETAB_TTL_MAX;
	int64_t expires = now_ms + (int64_t)ttl_s * 1000;
	struct pair *slot = NULL;
	for (size_t i = 0; i < t->cap; i++) {
		struct pair *p = &t->v[i];
		if (same_addr(p, fam, a) && strcmp(p->name, norm) == 0) {
			if (expires > p->expires_ms)
				p->expires_ms = expires;
			return 0;
		}
		/* the victim if the pair is new: a free slot, else the soonest to expire */
		if (!slot || (slot->used && (!p->used || p->expires_ms < slot->expires_ms)))
			slot = p;
	}
	if (!slot->used)
		t->n++;
	slot->used = true;
	slot->family = fam;
	memcpy(slot->addr, a, 16);
	slot->expires_ms = expires;
	memcpy(slot->name, norm, sizeof(norm));
	return 0;
}

bool vb_nametab_valid(const struct vb_nametab *t, const char *name, int family,
		      const uint8_t *addr, int64_t now_ms)
{
	uint8_t a[16];
	int fam = 0;
	if (!t || !name || !canon_addr(family, addr, &fam, a))
		return false;
	size_t n = name_len(name);
	for (size_t i = 0; i < t->cap; i++) {
		const struct pair *p = &t->v[i];
		if (same_addr(p, fam, a) && now_ms < p->expires_ms && strlen(p->name) == n &&
		    strncasecmp(p->name, name, n) == 0)
			return true;
	}
	return false;
}

size_t vb_nametab_names(const struct vb_nametab *t, int family, const uint8_t *addr,
			int64_t now_ms, const char **names, size_t max)
{
	uint8_t a[16];
	int fam = 0;
	size_t found = 0;
	if (!t || !canon_addr(family, addr, &fam, a))
		return 0;
	for (size_t i = 0; i < t->cap; i++) {
		const struct pair *p = &t->v[i];
		if (same_addr(p, fam, a) && now_ms < p->expires_ms) {
			if (found < max)
				names[found] = p->name;
			found++;
		}
	}
	return found;
}
