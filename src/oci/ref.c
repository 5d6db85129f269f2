/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image references as users type them, normalized the way Docker does
 * (distribution/reference): [HOST[:PORT]/]NAME[:TAG][@sha256:HEX].
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "oci/oci.h"
#include "util/term.h"
#include "util/util.h"

#define MAX_REF 512
#define MAX_NAME 255

int vb_oci_digest_valid(const char *s)
{
	if (!s || strncmp(s, "sha256:", 7) != 0 || strlen(s) != VB_OCI_DIGEST_LEN)
		return 0;
	for (const char *p = s + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

static int alnum_lower(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: [a-z0-9]+ ((.|_|__|-+)[a-z0-9]+)* */
static int component_ok(const char *s, size_t n)
{
	if (n == 0 || !alnum_lower(s[0]) || !alnum_lower(s[n - 1]))
		return 0;
	for (size_t i = 1; i < n; i++) {
		char c = s[i];
		if (alnum_lower(c))
			continue;
		if (c == '.' || c == '_') {
			if (!alnum_lower(s[i - 1]) && !(c == '_' && s[i - 1] == '_' && i >= 2 &&
							 alnum_lower(s[i - 2])))
				return 0;
		} else if (c == '-') {
			if (!alnum_lower(s[i - 1]) && s[i - 1] != '-')
				return 0;
		} else {
			return 0;
		}
	}
	return 1;
}

static int repo_ok(const char *s)
{
	if (strlen(s) > MAX_NAME)
		return 0;
	for (;;) {
		const char *slash = strchr(s, '/');
		size_t n = slash ? (size_t)(slash - s) : strlen(s);
		if (!component_ok(s, n))
			return 0;
		if (!slash)
			return 1;
		s = slash + 1;
	}
}

static int tag_ok(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 128 || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-'))
			return 0;
	return 1;
}

/* host[:port] or [v6]:port */
static int host_ok(const char *h)
{
	size_t n = strlen(h);
	if (n == 0 || n > 255)
		return 0;
	const char *port = NULL;
	if (h[0] == '[') {
		const char *close = strchr(h, ']');
		if (!close || close == h + 1)
			return 0;
		for (const char *p = h + 1; p < close; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
				return 0;
		if (close[1] == ':')
			port = close + 2;
		else if (close[1])
			return 0;
	} else {
		const char *colon = strchr(h, ':');
		size_t hn = colon ? (size_t)(colon - h) : n;
		if (hn == 0 || h[0] == '-' || h[0] == '.' || h[hn - 1] == '.' || h[hn - 1] == '-')
			return 0;
		for (size_t i = 0; i < hn; i++)
			if (!isalnum((unsigned char)h[i]) && h[i] != '.' && h[i] != '-')
				return 0;
		port = colon ? colon + 1 : NULL;
	}
	if (port) {
		size_t pn = strlen(port);
		if (pn == 0 || pn > 5 || strspn(port, "0123456789") != pn || atoi(port) > 65535 ||
		    atoi(port) == 0)
			return 0;
	}
	return 1;
}

int vb_oci_host_loopback(const char *host)
{
	if (!host)
		return 0;
	if (!strncmp(host, "[::1]", 5))
		return host[5] == '\0' || host[5] == ':';
	size_t n = strcspn(host, ":");
	if (n == 9 && !strncasecmp(host, "localhost", 9))
		return 1;
	if (strncmp(host, "127.", 4) != 0)
		return 0;
	int dots = 0;
	for (size_t i = 0; i < n; i++) {
		if (host[i] == '.')
			dots++;
		else if (!isdigit((unsigned char)host[i]))
			return 0;
	}
	return dots == 3;
}

void vb_oci_ref_clear(struct vb_oci_ref *r)
{
	if (!r)
		return;
	free(r->registry);
	free(r->repo);
	free(r->tag);
	memset(r, 0, sizeof(*r));
}

int vb_oci_ref_parse(const char *s, struct vb_oci_ref *r, vb_error *err)
{
	memset(r, 0, sizeof(*r));
	char shown[128];
	vb_term_copy(shown, sizeof(shown), s ? s : "", 0);
	if (!s || !s[0])
		return vb_error_set(err, VB_E_USAGE, "empty image reference");
	if (strlen(s) > MAX_REF)
		return vb_error_set(err, VB_E_USAGE, "image reference '%s...': longer than %d bytes",
				    shown, MAX_REF);
	_cleanup_free_ char *copy = strdup(s);
	if (!copy)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	char *at = strchr(copy, '@');
	if (at) {
		*at = '\0';
		if (!vb_oci_digest_valid(at + 1))
			return vb_error_set(err, VB_E_USAGE,
					    "image reference '%s': a digest is sha256: and 64 lowercase hex digits",
					    shown);
		memcpy(r->digest, at + 1, VB_OCI_DIGEST_LEN + 1);
	}
	char *name = copy;
	char *slash = strchr(name, '/');
	const char *host = "docker.io";
	if (slash) {
		size_t hn = (size_t)(slash - name);
		if (memchr(name, '.', hn) || memchr(name, ':', hn) ||
		    (hn == 9 && !strncmp(name, "localhost", 9)) || name[0] == '[') {
			*slash = '\0';
			host = name;
			name = slash + 1;
			if (!host_ok(host))
				return vb_error_set(err, VB_E_USAGE,
						    "image reference '%s': '%.64s' is not a registry host[:port]",
						    shown, host);
		}
	}
	char *colon = strrchr(name, ':');
	if (colon) {
		*colon = '\0';
		if (!tag_ok(colon + 1))
			return vb_error_set(err, VB_E_USAGE,
					    "image reference '%s': a tag is up to 128 of A-Z a-z 0-9 _ . - (not starting with . or -)",
					    shown);
	}
	if (!strcmp(host, "index.docker.io") || !strcmp(host, "registry-1.docker.io"))
		host = "docker.io";
	int hub = !strcmp(host, "docker.io");
	if (!repo_ok(name))
		return vb_error_set(err, VB_E_USAGE,
				    "image reference '%s': a repository name is lowercase letters, digits and separators (. _ __ -) between '/'",
				    shown);
	r->registry = strdup(host);
	r->repo = hub && !strchr(name, '/') ? vb_strfmt("library/%s", name) : strdup(name);
	if (colon)
		r->tag = strdup(colon + 1);
	else if (!r->digest[0])
		r->tag = strdup("latest");
	if (!r->registry || !r->repo || ((colon || !r->digest[0]) && !r->tag)) {
		vb_oci_ref_clear(r);
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	if (strlen(r->repo) > MAX_NAME) {
		vb_oci_ref_clear(r);
		return vb_error_set(err, VB_E_USAGE, "image reference '%s': name longer than %d bytes",
				    shown, MAX_NAME);
	}
	return 0;
}

char *vb_oci_ref_string(const struct vb_oci_ref *r)
{
	return vb_strfmt("%s/%s%s%s%s%s", r->registry, r->repo, r->tag ? ":" : "",
			 r->tag ? r->tag : "", r->digest[0] ? "@" : "", r->digest);
}

const char *vb_oci_ref_api_host(const struct vb_oci_ref *r)
{
	return !strcmp(r->registry, "docker.io") ? "registry-1.docker.io" : r->registry;
}
