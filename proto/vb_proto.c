/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vb_proto.c — encoder and decoders of the VoidBox wire format.
 * Compiled into the host library and the static guest agent; see vb_proto.h.
 */
#include "vb_proto.h"

#include <stdlib.h>
#include <string.h>

/* ---- little-endian helpers (no unaligned loads) ------------------------ */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* ---- buffers ----------------------------------------------------------- */

void vb_buf_free(struct vb_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->oom = 0;
}

void vb_buf_reset(struct vb_buf *b)
{
	b->len = 0;
	b->oom = 0;
}

/* Reserve (n) more bytes; the frame as a whole may not exceed the limit. */
static uint8_t *reserve(struct vb_buf *b, size_t n)
{
	if (b->oom)
		return NULL;
	if (n > VB_FRAME_HDR_LEN + (size_t)VB_FRAME_MAX - b->len) {
		b->oom = 1;
		return NULL;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		/* not realloc: the old block may hold a secret, wipe it first */
		uint8_t *p = malloc(cap);
		if (!p) {
			b->oom = 1;
			return NULL;
		}
		if (b->data) {
			memcpy(p, b->data, b->len);
			explicit_bzero(b->data, b->cap);
			free(b->data);
		}
		b->data = p;
		b->cap = cap;
	}
	uint8_t *at = b->data + b->len;
	b->len += n;
	return at;
}

int vb_msg_begin(struct vb_buf *b, uint16_t type, uint16_t flags, uint32_t id)
{
	vb_buf_reset(b);
	uint8_t *p = reserve(b, VB_FRAME_HDR_LEN);
	if (!p)
		return -1;
	struct vb_hdr h = { .len = 0, .type = type, .flags = flags, .id = id };
	vb_hdr_encode(p, &h);
	return 0;
}

int vb_msg_put_bytes(struct vb_buf *b, uint16_t tag, const void *data, size_t n)
{
	if (n > UINT32_MAX)
		b->oom = 1;
	uint8_t *p = reserve(b, VB_FIELD_HDR_LEN + n);
	if (!p)
		return -1;
	put16(p, tag);
	put32(p + 2, (uint32_t)n);
	if (n)
		memcpy(p + VB_FIELD_HDR_LEN, data, n);
	return 0;
}

int vb_msg_put_u64(struct vb_buf *b, uint16_t tag, uint64_t v)
{
	uint8_t raw[8];
	put64(raw, v);
	return vb_msg_put_bytes(b, tag, raw, sizeof(raw));
}

int vb_msg_put_str(struct vb_buf *b, uint16_t tag, const char *s)
{
	return vb_msg_put_bytes(b, tag, s, strlen(s));
}

int vb_msg_end(struct vb_buf *b)
{
	if (b->oom || b->len < VB_FRAME_HDR_LEN)
		return -1;
	put32(b->data, (uint32_t)(b->len - VB_FRAME_HDR_LEN));
	return 0;
}

long vb_msg_nest_begin(struct vb_buf *b, uint16_t tag)
{
	size_t off = b->len;
	if (vb_msg_put_bytes(b, tag, NULL, 0) < 0)
		return -1;
	return (long)off;
}

int vb_msg_nest_end(struct vb_buf *b, long off)
{
	if (b->oom || off < 0 || (size_t)off + VB_FIELD_HDR_LEN > b->len)
		return -1;
	put32(b->data + off + 2, (uint32_t)(b->len - (size_t)off - VB_FIELD_HDR_LEN));
	return 0;
}

/* ---- decoding ---------------------------------------------------------- */

void vb_hdr_encode(uint8_t raw[VB_FRAME_HDR_LEN], const struct vb_hdr *h)
{
	put32(raw, h->len);
	put16(raw + 4, h->type);
	put16(raw + 6, h->flags);
	put32(raw + 8, h->id);
}

int vb_hdr_decode(const uint8_t raw[VB_FRAME_HDR_LEN], struct vb_hdr *h)
{
	h->len = get32(raw);
	h->type = get16(raw + 4);
	h->flags = get16(raw + 6);
	h->id = get32(raw + 8);
	return h->len > VB_FRAME_MAX ? -1 : 0;
}

void vb_reader_init(struct vb_reader *r, const void *payload, size_t len)
{
	r->p = payload;
	r->left = payload ? len : 0;
}

int vb_reader_next(struct vb_reader *r, struct vb_field *f)
{
	if (r->left == 0)
		return 0;
	if (r->left < VB_FIELD_HDR_LEN)
		return -1;
	uint32_t n = get32(r->p + 2);
	if (n > r->left - VB_FIELD_HDR_LEN)
		return -1;
	f->tag = get16(r->p);
	f->len = n;
	f->data = r->p + VB_FIELD_HDR_LEN;
	r->p += VB_FIELD_HDR_LEN + n;
	r->left -= VB_FIELD_HDR_LEN + n;
	return 1;
}

int vb_field_u64(const struct vb_field *f, uint64_t *out)
{
	if (f->len != 8)
		return -1;
	*out = get64(f->data);
	return 0;
}

int vb_field_strdup(const struct vb_field *f, size_t max, char **out)
{
	if (f->len > max || memchr(f->data, '\0', f->len))
		return -1;
	char *s = malloc((size_t)f->len + 1);
	if (!s)
		return -1;
	memcpy(s, f->data, f->len);
	s[f->len] = '\0';
	*out = s;
	return 0;
}

int vb_payload_find(const void *payload, size_t len, uint16_t tag, struct vb_field *found)
{
	struct vb_reader r;
	struct vb_field f;
	int rc;
	found->data = NULL;
	found->len = 0;
	found->tag = tag;
	vb_reader_init(&r, payload, len);
	while ((rc = vb_reader_next(&r, &f)) > 0)
		if (f.tag == tag && !found->data)
			*found = f;
	return rc;
}

int vb_payload_u64(const void *payload, size_t len, uint16_t tag, uint64_t *out)
{
	struct vb_field f;
	if (vb_payload_find(payload, len, tag, &f) < 0)
		return -1;
	if (!f.data)
		return 0;
	return vb_field_u64(&f, out);
}

/* ---- string vectors ---------------------------------------------------- */

static void strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Count fields with (tag); -1 if the payload is malformed. */
static long count_tag(const void *payload, size_t len, uint16_t tag)
{
	struct vb_reader r;
	struct vb_field f;
	long n = 0;
	int rc;
	vb_reader_init(&r, payload, len);
	while ((rc = vb_reader_next(&r, &f)) > 0)
		n += f.tag == tag;
	return rc < 0 ? -1 : n;
}

/* ---- exec -------------------------------------------------------------- */

int vb_exec_req_encode(struct vb_buf *b, uint32_t id, const struct vb_exec_req *r)
{
	vb_msg_begin(b, VB_MSG_EXEC, 0, id);
	for (size_t i = 0; i < r->argc; i++)
		vb_msg_put_str(b, VB_TAG_ARG, r->argv[i]);
	for (size_t i = 0; i < r->envc; i++)
		vb_msg_put_str(b, VB_TAG_ENV, r->envp[i]);
	if (r->cwd)
		vb_msg_put_str(b, VB_TAG_CWD, r->cwd);
	vb_msg_put_u64(b, VB_TAG_UID, r->uid);
	vb_msg_put_u64(b, VB_TAG_GID, r->gid);
	vb_msg_put_u64(b, VB_TAG_TIMEOUT_MS, r->timeout_ms);
	vb_msg_put_u64(b, VB_TAG_STDIN, r->want_stdin ? 1 : 0);
	/* only when used, so that pipe execs encode as they always did */
	if (r->pty)
		vb_msg_put_u64(b, VB_TAG_PTY, 1);
	if (r->rows)
		vb_msg_put_u64(b, VB_TAG_ROWS, r->rows);
	if (r->cols)
		vb_msg_put_u64(b, VB_TAG_COLS, r->cols);
	if (r->user)
		vb_msg_put_str(b, VB_TAG_USER, r->user);
	if (r->default_user)
		vb_msg_put_u64(b, VB_TAG_DEFAULT_USER, 1);
	return vb_msg_end(b);
}

void vb_exec_req_free(struct vb_exec_req *r)
{
	strv_free(r->argv, r->argc);
	strv_free(r->envp, r->envc);
	free(r->cwd);
	free(r->user);
	memset(r, 0, sizeof(*r));
}

static int valid_env(const char *s)
{
	const char *eq = strchr(s, '=');
	return eq && eq != s;
}

/* A user spec: "name", "uid" or "uid:gid"; printable, no spaces, at most
 * one ':' (what a passwd line or an image's User can hold). */
static int valid_user(const char *s)
{
	int colons = 0;
	if (!s[0])
		return 0;
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
			return 0;
		colons += *c == ':';
	}
	return colons <= 1 && s[0] != ':' && s[strlen(s) - 1] != ':';
}

int vb_exec_req_decode(const void *payload, size_t len, struct vb_exec_req *r)
{
	memset(r, 0, sizeof(*r));
	r->uid = r->gid = 1000;
	long nargs = count_tag(payload, len, VB_TAG_ARG);
	long nenv = count_tag(payload, len, VB_TAG_ENV);
	if (nargs < 0 || nenv < 0)
		return VB_ERR_PROTO;
	if (nargs == 0 || nargs > (long)VB_MAX_ARGS || nenv > (long)VB_MAX_ENV)
		return VB_ERR_INVAL;
	r->argv = calloc((size_t)nargs + 1, sizeof(char *));
	r->envp = calloc((size_t)nenv + 1, sizeof(char *));
	if (!r->argv || !r->envp)
		goto nomem;

	struct vb_reader rd;
	struct vb_field f;
	int err = VB_ERR_NONE;
	vb_reader_init(&rd, payload, len);
	while (vb_reader_next(&rd, &f) > 0 && err == VB_ERR_NONE) {
		switch (f.tag) {
		case VB_TAG_ARG:
			if (vb_field_strdup(&f, VB_MAX_STR, &r->argv[r->argc]) < 0)
				err = VB_ERR_INVAL;
			else
				r->argc++;
			break;
		case VB_TAG_ENV:
			if (vb_field_strdup(&f, VB_MAX_STR, &r->envp[r->envc]) < 0)
				err = VB_ERR_INVAL;
			else if (!valid_env(r->envp[r->envc++]))
				err = VB_ERR_INVAL;
			break;
		case VB_TAG_CWD:
			free(r->cwd);
			r->cwd = NULL;
			if (vb_field_strdup(&f, VB_MAX_PATH, &r->cwd) < 0 || r->cwd[0] != '/')
				err = VB_ERR_INVAL;
			break;
		case VB_TAG_UID:
			if (vb_field_u64(&f, &r->uid) < 0 || r->uid > 65535)
				err = VB_ERR_INVAL;
			break;
		case VB_TAG_GID:
			if (vb_field_u64(&f, &r->gid) < 0 || r->gid > 65535)
				err = VB_ERR_INVAL;
			break;
		case VB_TAG_TIMEOUT_MS:
			if (vb_field_u64(&f, &r->timeout_ms) < 0)
				err = VB_ERR_INVAL;
			break;
		case VB_TAG_STDIN: {
			uint64_t v = 0;
			if (vb_field_u64(&f, &v) < 0 || v > 1)
				err = VB_ERR_INVAL;
			r->want_stdin = (int)v;
			break;
		}
		case VB_TAG_PTY: {
			uint64_t v = 0;
			if (vb_field_u64(&f, &v) < 0 || v > 1)
				err = VB_ERR_INVAL;
			r->pty = (int)v;
			break;
		}
		case VB_TAG_ROWS:
		case VB_TAG_COLS: {
			uint64_t v = 0;
			if (vb_field_u64(&f, &v) < 0 || v < 1 || v > VB_TERM_MAX)
				err = VB_ERR_INVAL;
			else if (f.tag == VB_TAG_ROWS)
				r->rows = (uint32_t)v;
			else
				r->cols = (uint32_t)v;
			break;
		}
		case VB_TAG_USER:
			free(r->user);
			r->user = NULL;
			if (vb_field_strdup(&f, VB_MAX_USER, &r->user) < 0 || !valid_user(r->user))
				err = VB_ERR_INVAL;
			break;
		case VB_TAG_DEFAULT_USER: {
			uint64_t v = 0;
			if (vb_field_u64(&f, &v) < 0 || v > 1)
				err = VB_ERR_INVAL;
			r->default_user = (int)v;
			break;
		}
		default:
			break;
		}
	}
	if (err == VB_ERR_NONE && r->argv[0][0] == '\0')
		err = VB_ERR_INVAL;
	if (err != VB_ERR_NONE)
		vb_exec_req_free(r);
	return err;
nomem:
	vb_exec_req_free(r);
	return VB_ERR_INTERNAL;
}

int vb_resize_encode(struct vb_buf *b, uint32_t id, uint32_t rows, uint32_t cols)
{
	vb_msg_begin(b, VB_MSG_EXEC_RESIZE, 0, id);
	vb_msg_put_u64(b, VB_TAG_ROWS, rows);
	vb_msg_put_u64(b, VB_TAG_COLS, cols);
	return vb_msg_end(b);
}

int vb_resize_decode(const void *payload, size_t len, uint32_t *rows, uint32_t *cols)
{
	struct vb_reader rd;
	struct vb_field f;
	uint64_t v[2] = { 0, 0 };
	int rc, err = VB_ERR_NONE;
	vb_reader_init(&rd, payload, len);
	while ((rc = vb_reader_next(&rd, &f)) > 0) {
		if (f.tag != VB_TAG_ROWS && f.tag != VB_TAG_COLS)
			continue;
		uint64_t *dst = &v[f.tag == VB_TAG_COLS];
		if (vb_field_u64(&f, dst) < 0)
			err = VB_ERR_INVAL;
	}
	if (rc < 0)
		return VB_ERR_PROTO;
	if (err != VB_ERR_NONE || v[0] < 1 || v[0] > VB_TERM_MAX || v[1] < 1 || v[1] > VB_TERM_MAX)
		return VB_ERR_INVAL;
	*rows = (uint32_t)v[0];
	*cols = (uint32_t)v[1];
	return VB_ERR_NONE;
}

/* ---- rekey ------------------------------------------------------------- */

int vb_rekey_encode(struct vb_buf *b, uint32_t id, const struct vb_rekey *rk)
{
	size_t n = rk->n_entropy < VB_REKEY_ENTROPY_MAX ? rk->n_entropy : VB_REKEY_ENTROPY_MAX;
	vb_msg_begin(b, VB_MSG_REKEY, 0, id);
	vb_msg_put_bytes(b, VB_TAG_SECRET, rk->secret, VB_SECRET_LEN);
	vb_msg_put_bytes(b, VB_TAG_ENTROPY, rk->entropy, n);
	if (rk->time_ns)
		vb_msg_put_u64(b, VB_TAG_TIME_NS, rk->time_ns);
	if (rk->hostname[0])
		vb_msg_put_bytes(b, VB_TAG_HOSTNAME, rk->hostname,
				 strnlen(rk->hostname, VB_HOSTNAME_MAX));
	if (rk->one_host)
		vb_msg_put_u64(b, VB_TAG_ONE_HOST, 1);
	return vb_msg_end(b);
}

static int hostname_ok(const uint8_t *p, size_t n)
{
	if (n < 1 || n > VB_HOSTNAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

int vb_rekey_decode(const void *payload, size_t len, struct vb_rekey *rk)
{
	struct vb_reader rd;
	struct vb_field f, secret = { 0 }, entropy = { 0 }, host = { 0 };
	uint64_t time_ns = 0, one_host = 0;
	int rc, err = VB_ERR_NONE, have_time = 0, have_one = 0;
	vb_reader_init(&rd, payload, len);
	while ((rc = vb_reader_next(&rd, &f)) > 0) {
		switch (f.tag) {
		case VB_TAG_SECRET:
			if (secret.data || f.len != VB_SECRET_LEN)
				err = VB_ERR_INVAL;
			secret = f;
			break;
		case VB_TAG_ENTROPY:
			if (entropy.data || f.len < VB_REKEY_ENTROPY_MIN || f.len > VB_REKEY_ENTROPY_MAX)
				err = VB_ERR_INVAL;
			entropy = f;
			break;
		case VB_TAG_TIME_NS:
			if (have_time++ || vb_field_u64(&f, &time_ns) < 0)
				err = VB_ERR_INVAL;
			break;
		case VB_TAG_HOSTNAME:
			if (host.data || !hostname_ok(f.data, f.len))
				err = VB_ERR_INVAL;
			host = f;
			break;
		case VB_TAG_ONE_HOST:
			if (have_one++ || vb_field_u64(&f, &one_host) < 0 || one_host > 1)
				err = VB_ERR_INVAL;
			break;
		default: /* unknown tags are skipped, like everywhere */
			break;
		}
	}
	if (rc < 0)
		return VB_ERR_PROTO;
	if (err != VB_ERR_NONE || !secret.data || !entropy.data)
		return VB_ERR_INVAL;
	memset(rk, 0, sizeof(*rk));
	memcpy(rk->secret, secret.data, VB_SECRET_LEN);
	memcpy(rk->entropy, entropy.data, entropy.len);
	rk->n_entropy = entropy.len;
	rk->time_ns = time_ns;
	if (host.data)
		memcpy(rk->hostname, host.data, host.len);
	rk->one_host = (int)one_host;
	return VB_ERR_NONE;
}

/* ---- MOUNT ------------------------------------------------------------- */

int vb_mount_encode(struct vb_buf *b, uint32_t id, const struct vb_mount_req *r)
{
	vb_msg_begin(b, VB_MSG_MOUNT, 0, id);
	for (size_t i = 0; i < r->n && i < VB_MOUNT_REQ_MAX; i++) {
		long off = vb_msg_nest_begin(b, VB_TAG_MOUNT);
		vb_msg_put_str(b, VB_TAG_MOUNT_TAG, r->m[i].tag);
		vb_msg_put_str(b, VB_TAG_MOUNT_PATH, r->m[i].path);
		vb_msg_put_u64(b, VB_TAG_MOUNT_RO, r->m[i].ro ? 1 : 0);
		vb_msg_nest_end(b, off);
	}
	return vb_msg_end(b);
}

static int mount_tag_ok(const uint8_t *p, size_t n)
{
	if (n < 4 || n > VB_MOUNT_TAG_MAX || memcmp(p, "vbm", 3) != 0)
		return 0;
	if (n > 4 && p[3] == '0')
		return 0;
	for (size_t i = 3; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return 0;
	return 1;
}

/* One nested MOUNT into slot (i) of (r): 0, or VB_ERR_PROTO/INVAL. */
static int decode_mount_req(const struct vb_field *outer, struct vb_mount_req *r, size_t i)
{
	struct vb_reader rd;
	struct vb_field f, tag = { 0 }, path = { 0 };
	uint64_t ro = 1;
	int rc, have_ro = 0, err = VB_ERR_NONE;
	vb_reader_init(&rd, outer->data, outer->len);
	while ((rc = vb_reader_next(&rd, &f)) > 0) {
		if (f.tag == VB_TAG_MOUNT_TAG) {
			if (tag.data || !mount_tag_ok(f.data, f.len))
				err = VB_ERR_INVAL;
			tag = f;
		} else if (f.tag == VB_TAG_MOUNT_PATH) {
			if (path.data || f.len < 1 || f.len > VB_MAX_PATH || f.data[0] != '/' ||
			    memchr(f.data, 0, f.len))
				err = VB_ERR_INVAL;
			path = f;
		} else if (f.tag == VB_TAG_MOUNT_RO) {
			if (have_ro++ || vb_field_u64(&f, &ro) < 0 || ro > 1)
				err = VB_ERR_INVAL;
		}
	}
	if (rc < 0)
		return VB_ERR_PROTO;
	if (err != VB_ERR_NONE || !tag.data || !path.data)
		return VB_ERR_INVAL;
	memcpy(r->m[i].tag, tag.data, tag.len);
	r->m[i].tag[tag.len] = '\0';
	memcpy(r->m[i].path, path.data, path.len);
	r->m[i].path[path.len] = '\0';
	r->m[i].ro = (int)ro;
	return VB_ERR_NONE;
}

int vb_mount_decode(const void *payload, size_t len, struct vb_mount_req *out)
{
	/* decoded into a scratch copy: (out) is untouched on failure */
	struct vb_mount_req *r = calloc(1, sizeof(*r));
	if (!r)
		return VB_ERR_INTERNAL;
	struct vb_reader rd;
	struct vb_field f;
	int rc, err = VB_ERR_NONE;
	vb_reader_init(&rd, payload, len);
	while ((rc = vb_reader_next(&rd, &f)) > 0) {
		if (f.tag != VB_TAG_MOUNT)
			continue;
		if (r->n >= VB_MOUNT_REQ_MAX) {
			err = VB_ERR_INVAL;
			continue;
		}
		int e = decode_mount_req(&f, r, r->n);
		if (e == VB_ERR_PROTO) {
			rc = -1;
			break;
		}
		if (e != VB_ERR_NONE)
			err = e;
		else
			r->n++;
	}
	if (rc >= 0 && err == VB_ERR_NONE && r->n == 0)
		err = VB_ERR_INVAL;
	for (size_t i = 0; rc >= 0 && err == VB_ERR_NONE && i < r->n; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(r->m[i].tag, r->m[j].tag) || !strcmp(r->m[i].path, r->m[j].path))
				err = VB_ERR_INVAL;
	if (rc >= 0 && err == VB_ERR_NONE)
		memcpy(out, r, sizeof(*r));
	free(r);
	return rc < 0 ? VB_ERR_PROTO : err;
}

/* ---- FORWARD ----------------------------------------------------------- */

static int decode_forward(const struct vb_field *outer, struct vb_boot_forward *fw);

int vb_fwd_encode(struct vb_buf *b, uint32_t id, const struct vb_fwd_req *r)
{
	vb_msg_begin(b, VB_MSG_FORWARD, 0, id);
	for (size_t i = 0; i < r->n && i < VB_MAX_FORWARDS; i++) {
		long off = vb_msg_nest_begin(b, VB_TAG_FORWARD);
		vb_msg_put_u64(b, VB_TAG_FWD_PORT, r->f[i].port);
		vb_msg_put_u64(b, VB_TAG_KIND, r->f[i].kind);
		vb_msg_nest_end(b, off);
	}
	return vb_msg_end(b);
}

int vb_fwd_decode(const void *payload, size_t len, struct vb_fwd_req *out)
{
	struct vb_fwd_req r = { 0 };
	struct vb_reader rd;
	struct vb_field f;
	int rc, err = VB_ERR_NONE;
	vb_reader_init(&rd, payload, len);
	while ((rc = vb_reader_next(&rd, &f)) > 0) {
		if (f.tag != VB_TAG_FORWARD)
			continue;
		if (r.n >= VB_MAX_FORWARDS) {
			err = VB_ERR_INVAL;
			continue;
		}
		struct vb_reader nr;
		struct vb_field nf;
		int nrc;
		vb_reader_init(&nr, f.data, f.len);
		while ((nrc = vb_reader_next(&nr, &nf)) > 0)
			;
		if (nrc < 0) { /* malformed inside: PROTO, as at the top */
			rc = -1;
			break;
		}
		struct vb_boot_forward fw;
		if (decode_forward(&f, &fw) < 0 || fw.kind >= VB_MAX_FORWARDS) {
			err = VB_ERR_INVAL;
			continue;
		}
		for (size_t i = 0; i < r.n; i++)
			if (r.f[i].port == fw.port)
				err = VB_ERR_INVAL; /* one listener per port */
		r.f[r.n++] = fw;
	}
	if (rc < 0)
		return VB_ERR_PROTO;
	if (err == VB_ERR_NONE && r.n == 0)
		err = VB_ERR_INVAL;
	if (err == VB_ERR_NONE)
		*out = r;
	return err;
}

/* ---- boot data --------------------------------------------------------- */

int vb_boot_encode(struct vb_buf *b, const struct vb_boot *boot)
{
	vb_msg_begin(b, VB_MSG_BOOT, 0, 0);
	vb_msg_put_u64(b, VB_TAG_VERSION, VB_PROTO_VERSION);
	vb_msg_put_bytes(b, VB_TAG_SECRET, boot->secret, VB_SECRET_LEN);
	if (boot->allow) /* an empty allowlist allows nothing: say so explicitly */
		vb_msg_put_u64(b, VB_TAG_ALLOW_SET, 1);
	for (size_t i = 0; boot->allow && i < boot->n_allow; i++)
		vb_msg_put_str(b, VB_TAG_ALLOW, boot->allow[i]);
	if (boot->rlimit_nofile)
		vb_msg_put_u64(b, VB_TAG_RLIMIT_NOFILE, boot->rlimit_nofile);
	if (boot->rlimit_nproc)
		vb_msg_put_u64(b, VB_TAG_RLIMIT_NPROC, boot->rlimit_nproc);
	if (boot->rlimit_fsize)
		vb_msg_put_u64(b, VB_TAG_RLIMIT_FSIZE, boot->rlimit_fsize);
	for (size_t i = 0; i < boot->n_mounts; i++) {
		long off = vb_msg_nest_begin(b, VB_TAG_MOUNT);
		vb_msg_put_str(b, VB_TAG_MOUNT_TAG, boot->mounts[i].tag);
		vb_msg_put_str(b, VB_TAG_MOUNT_PATH, boot->mounts[i].path);
		vb_msg_put_u64(b, VB_TAG_MOUNT_RO, boot->mounts[i].ro ? 1 : 0);
		vb_msg_nest_end(b, off);
	}
	if (boot->hostname)
		vb_msg_put_str(b, VB_TAG_HOSTNAME, boot->hostname);
	for (size_t i = 0; i < boot->n_forwards; i++) {
		long off = vb_msg_nest_begin(b, VB_TAG_FORWARD);
		vb_msg_put_u64(b, VB_TAG_FWD_PORT, boot->forwards[i].port);
		vb_msg_put_u64(b, VB_TAG_KIND, boot->forwards[i].kind);
		vb_msg_nest_end(b, off);
	}
	if (boot->one_host)
		vb_msg_put_u64(b, VB_TAG_ONE_HOST, 1);
	if (boot->net)
		vb_msg_put_u64(b, VB_TAG_NET, 1);
	if (boot->has_root)
		vb_msg_put_u64(b, VB_TAG_ROOT_DISK, boot->root_disk);
	for (size_t i = 0; i < boot->n_root_env; i++)
		vb_msg_put_str(b, VB_TAG_ROOT_ENV, boot->root_env[i]);
	if (boot->root_workdir)
		vb_msg_put_str(b, VB_TAG_ROOT_WORKDIR, boot->root_workdir);
	if (boot->root_user)
		vb_msg_put_str(b, VB_TAG_ROOT_USER, boot->root_user);
	for (size_t i = 0; i < boot->n_disks; i++) {
		long off = vb_msg_nest_begin(b, VB_TAG_DISK);
		vb_msg_put_u64(b, VB_TAG_DISK_INDEX, boot->disks[i].index);
		vb_msg_put_str(b, VB_TAG_DISK_PATH, boot->disks[i].path);
		vb_msg_nest_end(b, off);
	}
	return vb_msg_end(b);
}

void vb_boot_free(struct vb_boot *boot)
{
	strv_free(boot->allow, boot->n_allow);
	for (size_t i = 0; boot->mounts && i < boot->n_mounts; i++) {
		free(boot->mounts[i].tag);
		free(boot->mounts[i].path);
	}
	free(boot->mounts);
	free(boot->forwards);
	free(boot->hostname);
	strv_free(boot->root_env, boot->n_root_env);
	free(boot->root_workdir);
	free(boot->root_user);
	for (size_t i = 0; boot->disks && i < boot->n_disks; i++)
		free(boot->disks[i].path);
	free(boot->disks);
	/* the secret must not linger in freed memory */
	volatile uint8_t *s = boot->secret;
	for (size_t i = 0; i < VB_SECRET_LEN; i++)
		s[i] = 0;
	memset(boot, 0, sizeof(*boot));
}

static int decode_mount(const struct vb_field *outer, struct vb_boot_mount *m)
{
	struct vb_reader r;
	struct vb_field f;
	uint64_t ro = 1;
	int rc;
	vb_reader_init(&r, outer->data, outer->len);
	while ((rc = vb_reader_next(&r, &f)) > 0) {
		if (f.tag == VB_TAG_MOUNT_TAG && !m->tag) {
			if (vb_field_strdup(&f, 64, &m->tag) < 0)
				return -1;
		} else if (f.tag == VB_TAG_MOUNT_PATH && !m->path) {
			if (vb_field_strdup(&f, VB_MAX_PATH, &m->path) < 0)
				return -1;
		} else if (f.tag == VB_TAG_MOUNT_RO) {
			if (vb_field_u64(&f, &ro) < 0 || ro > 1)
				return -1;
		}
	}
	m->ro = (int)ro;
	if (rc < 0 || !m->tag || !m->path || !m->tag[0] || m->path[0] != '/')
		return -1;
	return 0;
}

static int decode_forward(const struct vb_field *outer, struct vb_boot_forward *fw)
{
	struct vb_reader r;
	struct vb_field f;
	uint64_t port = 0, kind = 0;
	int rc, have_port = 0;
	vb_reader_init(&r, outer->data, outer->len);
	while ((rc = vb_reader_next(&r, &f)) > 0) {
		if (f.tag == VB_TAG_FWD_PORT) {
			if (vb_field_u64(&f, &port) < 0)
				return -1;
			have_port = 1;
		} else if (f.tag == VB_TAG_KIND && vb_field_u64(&f, &kind) < 0) {
			return -1;
		}
	}
	if (rc < 0 || !have_port || port < 1 || port > 65535)
		return -1;
	fw->port = (uint16_t)port;
	fw->kind = kind;
	return 0;
}

/* An absolute guest path below "/" without "." or ".." components. */
static int valid_guest_path(const char *p)
{
	if (p[0] != '/' || p[1] == '\0')
		return 0;
	for (const char *c = p; *c;) {
		while (*c == '/')
			c++;
		const char *e = strchr(c, '/');
		size_t n = e ? (size_t)(e - c) : strlen(c);
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		c += n;
	}
	return 1;
}

static int decode_disk(const struct vb_field *outer, struct vb_boot_disk *d)
{
	struct vb_reader r;
	struct vb_field f;
	uint64_t index = 0;
	int rc, have_index = 0;
	vb_reader_init(&r, outer->data, outer->len);
	while ((rc = vb_reader_next(&r, &f)) > 0) {
		if (f.tag == VB_TAG_DISK_INDEX) {
			if (vb_field_u64(&f, &index) < 0)
				return -1;
			have_index = 1;
		} else if (f.tag == VB_TAG_DISK_PATH && !d->path) {
			if (vb_field_strdup(&f, VB_MAX_PATH, &d->path) < 0)
				return -1;
		}
	}
	if (rc < 0 || !have_index || index >= VB_MAX_DISKS || !d->path ||
	    !valid_guest_path(d->path))
		return -1;
	d->index = (uint32_t)index;
	return 0;
}

int vb_boot_decode(const void *frame, size_t len, struct vb_boot *boot)
{
	struct vb_hdr h;
	memset(boot, 0, sizeof(*boot));
	if (len < VB_FRAME_HDR_LEN || vb_hdr_decode(frame, &h) < 0 || h.type != VB_MSG_BOOT ||
	    h.len != len - VB_FRAME_HDR_LEN)
		return VB_ERR_PROTO;
	const uint8_t *payload = (const uint8_t *)frame + VB_FRAME_HDR_LEN;
	long nallow = count_tag(payload, h.len, VB_TAG_ALLOW);
	long nmounts = count_tag(payload, h.len, VB_TAG_MOUNT);
	long allow_set = count_tag(payload, h.len, VB_TAG_ALLOW_SET);
	long nfwd = count_tag(payload, h.len, VB_TAG_FORWARD);
	long nrenv = count_tag(payload, h.len, VB_TAG_ROOT_ENV);
	long ndisks = count_tag(payload, h.len, VB_TAG_DISK);
	if (nallow < 0 || nmounts < 0 || allow_set < 0 || nfwd < 0 || nrenv < 0 || ndisks < 0)
		return VB_ERR_PROTO;
	if (nallow > (long)VB_MAX_ALLOW || nmounts > (long)VB_MAX_MOUNTS ||
	    nfwd > (long)VB_MAX_FORWARDS || nrenv > (long)VB_MAX_ENV || ndisks > (long)VB_MAX_DISKS)
		return VB_ERR_INVAL;
	/* ALLOW entries imply a list; ALLOW_SET alone means an empty one */
	if ((nallow > 0 || allow_set > 0) &&
	    !(boot->allow = calloc((size_t)nallow + 1, sizeof(char *))))
		return VB_ERR_INTERNAL;
	if (nmounts > 0 && !(boot->mounts = calloc((size_t)nmounts, sizeof(*boot->mounts)))) {
		vb_boot_free(boot);
		return VB_ERR_INTERNAL;
	}
	if (nfwd > 0 && !(boot->forwards = calloc((size_t)nfwd, sizeof(*boot->forwards)))) {
		vb_boot_free(boot);
		return VB_ERR_INTERNAL;
	}
	if ((nrenv > 0 && !(boot->root_env = calloc((size_t)nrenv + 1, sizeof(char *)))) ||
	    (ndisks > 0 && !(boot->disks = calloc((size_t)ndisks, sizeof(*boot->disks))))) {
		vb_boot_free(boot);
		return VB_ERR_INTERNAL;
	}

	struct vb_reader r;
	struct vb_field f;
	int err = VB_ERR_NONE, have_secret = 0;
	uint64_t version = 0;
	vb_reader_init(&r, payload, h.len);
	while (vb_reader_next(&r, &f) > 0 && err == VB_ERR_NONE) {
		switch (f.tag) {
		case VB_TAG_VERSION:
			if (vb_field_u64(&f, &version) < 0)
				err = VB_ERR_INVAL;
			break;
		case VB_TAG_SECRET:
			if (f.len != VB_SECRET_LEN)
				err = VB_ERR_INVAL;
			else
				memcpy(boot->secret, f.data, VB_SECRET_LEN);
			have_secret = 1;
			break;
		case VB_TAG_ALLOW:
			if (vb_field_strdup(&f, 255, &boot->allow[boot->n_allow]) < 0 ||
			    !boot->allow[boot->n_allow][0] || strchr(boot->allow[boot->n_allow], '/'))
				err = VB_ERR_INVAL;
			boot->n_allow += boot->allow[boot->n_allow] != NULL;
			break;
		case VB_TAG_RLIMIT_NOFILE:
			if (vb_field_u64(&f, &boot->rlimit_nofile) < 0)
				err = VB_ERR_INVAL;
			break;
		case VB_TAG_RLIMIT_NPROC:
			if (vb_field_u64(&f, &boot->rlimit_nproc) < 0)
				err = VB_ERR_INVAL;
			break;
		case VB_TAG_RLIMIT_FSIZE:
			if (vb_field_u64(&f, &boot->rlimit_fsize) < 0)
				err = VB_ERR_INVAL;
			break;
		case VB_TAG_MOUNT:
			if (decode_mount(&f, &boot->mounts[boot->n_mounts]) < 0)
				err = VB_ERR_INVAL;
			boot->n_mounts++; /* counted even when partial, so it is freed */
			break;
		case VB_TAG_FORWARD: {
			struct vb_boot_forward *fw = &boot->forwards[boot->n_forwards];
			if (decode_forward(&f, fw) < 0)
				err = VB_ERR_INVAL;
			for (size_t i = 0; err == VB_ERR_NONE && i < boot->n_forwards; i++)
				if (boot->forwards[i].port == fw->port)
					err = VB_ERR_INVAL; /* one listener per port */
			boot->n_forwards++;
			break;
		}
		case VB_TAG_ALLOW_SET: {
			uint64_t v = 0;
			if (vb_field_u64(&f, &v) < 0 || v != 1)
				err = VB_ERR_INVAL;
			break;
		}
		case VB_TAG_ONE_HOST: {
			uint64_t v = 0;
			if (vb_field_u64(&f, &v) < 0 || v > 1)
				err = VB_ERR_INVAL;
			boot->one_host = v == 1;
			break;
		}
		case VB_TAG_NET: {
			uint64_t v = 0;
			if (vb_field_u64(&f, &v) < 0 || v != 1)
				err = VB_ERR_INVAL;
			boot->net = v == 1;
			break;
		}
		case VB_TAG_ROOT_DISK: {
			uint64_t v = 0;
			if (vb_field_u64(&f, &v) < 0 || v >= VB_MAX_DISKS || boot->has_root)
				err = VB_ERR_INVAL;
			boot->root_disk = (uint32_t)v;
			boot->has_root = 1;
			break;
		}
		case VB_TAG_ROOT_ENV: {
			char **e = &boot->root_env[boot->n_root_env];
			if (vb_field_strdup(&f, VB_MAX_STR, e) < 0)
				err = VB_ERR_INVAL;
			else if (!valid_env(*e))
				err = VB_ERR_INVAL;
			boot->n_root_env += *e != NULL;
			break;
		}
		case VB_TAG_ROOT_WORKDIR:
			free(boot->root_workdir);
			boot->root_workdir = NULL;
			if (vb_field_strdup(&f, VB_MAX_PATH, &boot->root_workdir) < 0 ||
			    boot->root_workdir[0] != '/' ||
			    (boot->root_workdir[1] && !valid_guest_path(boot->root_workdir)))
				err = VB_ERR_INVAL;
			break;
		case VB_TAG_ROOT_USER:
			free(boot->root_user);
			boot->root_user = NULL;
			if (vb_field_strdup(&f, VB_MAX_USER, &boot->root_user) < 0 ||
			    !valid_user(boot->root_user))
				err = VB_ERR_INVAL;
			break;
		case VB_TAG_DISK: {
			struct vb_boot_disk *d = &boot->disks[boot->n_disks];
			if (decode_disk(&f, d) < 0)
				err = VB_ERR_INVAL;
			for (size_t i = 0; err == VB_ERR_NONE && i < boot->n_disks; i++)
				if (boot->disks[i].index == d->index ||
				    !strcmp(boot->disks[i].path, d->path))
					err = VB_ERR_INVAL; /* one disk, one place */
			boot->n_disks++;
			break;
		}
		case VB_TAG_HOSTNAME:
			free(boot->hostname);
			boot->hostname = NULL;
			if (vb_field_strdup(&f, 64, &boot->hostname) < 0)
				err = VB_ERR_INVAL;
			break;
		default:
			break;
		}
	}
	if (err == VB_ERR_NONE && (!have_secret || version != VB_PROTO_VERSION))
		err = VB_ERR_INVAL;
	/* the root disk is not also mounted elsewhere */
	for (size_t i = 0; err == VB_ERR_NONE && boot->has_root && i < boot->n_disks; i++)
		if (boot->disks[i].index == boot->root_disk)
			err = VB_ERR_INVAL;
	if (err != VB_ERR_NONE)
		vb_boot_free(boot);
	return err;
}

int vb_policy_allows(const struct vb_boot *boot, const char *prog)
{
	if (!boot->allow)
		return 1;
	const char *base = strrchr(prog, '/');
	base = base ? base + 1 : prog;
	for (size_t i = 0; i < boot->n_allow; i++)
		if (strcmp(boot->allow[i], base) == 0)
			return 1;
	return 0;
}

int vb_secret_equal(const uint8_t a[VB_SECRET_LEN], const uint8_t b[VB_SECRET_LEN])
{
	volatile uint8_t diff = 0;
	for (size_t i = 0; i < VB_SECRET_LEN; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

/* ---- names ------------------------------------------------------------- */

const char *vb_msg_name(uint16_t type)
{
	switch (type) {
	case VB_MSG_HELLO: return "HELLO";
	case VB_MSG_HELLO_OK: return "HELLO_OK";
	case VB_MSG_OK: return "OK";
	case VB_MSG_ERROR: return "ERROR";
	case VB_MSG_EXEC: return "EXEC";
	case VB_MSG_EXEC_STARTED: return "EXEC_STARTED";
	case VB_MSG_EXEC_STDIN: return "EXEC_STDIN";
	case VB_MSG_EXEC_OUTPUT: return "EXEC_OUTPUT";
	case VB_MSG_EXEC_ACK: return "EXEC_ACK";
	case VB_MSG_EXEC_STDIN_ACK: return "EXEC_STDIN_ACK";
	case VB_MSG_EXEC_EXIT: return "EXEC_EXIT";
	case VB_MSG_EXEC_SIGNAL: return "EXEC_SIGNAL";
	case VB_MSG_EXEC_RESIZE: return "EXEC_RESIZE";
	case VB_MSG_FILE_WRITE: return "FILE_WRITE";
	case VB_MSG_FILE_READ: return "FILE_READ";
	case VB_MSG_FILE_STAT: return "FILE_STAT";
	case VB_MSG_MKDIR: return "MKDIR";
	case VB_MSG_STREAM_OPEN: return "STREAM_OPEN";
	case VB_MSG_STREAM_DATA: return "STREAM_DATA";
	case VB_MSG_STREAM_ACK: return "STREAM_ACK";
	case VB_MSG_STREAM_SHUT: return "STREAM_SHUT";
	case VB_MSG_STREAM_RESET: return "STREAM_RESET";
	case VB_MSG_STREAM_END: return "STREAM_END";
	case VB_MSG_SAMPLE: return "SAMPLE";
	case VB_MSG_SHUTDOWN: return "SHUTDOWN";
	case VB_MSG_REKEY: return "REKEY";
	case VB_MSG_MOUNT: return "MOUNT";
	case VB_MSG_FORWARD: return "FORWARD";
	case VB_MSG_NET_UP: return "NET_UP";
	case VB_MSG_NET_DOWN: return "NET_DOWN";
	case VB_MSG_UNMOUNT: return "UNMOUNT";
	case VB_MSG_BOOT: return "BOOT";
	default: return "?";
	}
}

const char *vb_err_name(int code)
{
	switch (code) {
	case VB_ERR_NONE: return "ok";
	case VB_ERR_NOENT: return "not found";
	case VB_ERR_NOEXEC: return "not executable";
	case VB_ERR_DENIED: return "not allowed by policy";
	case VB_ERR_ACCESS: return "permission denied";
	case VB_ERR_INVAL: return "invalid request";
	case VB_ERR_IO: return "I/O error";
	case VB_ERR_EXIST: return "already exists";
	case VB_ERR_NOTDIR: return "not a directory";
	case VB_ERR_ISDIR: return "is a directory";
	case VB_ERR_NOSPC: return "no space or file too large";
	case VB_ERR_OUTSIDE: return "outside the allowed roots";
	case VB_ERR_BUSY: return "busy";
	case VB_ERR_PROTO: return "protocol error";
	case VB_ERR_INTERNAL: return "internal error";
	case VB_ERR_ROFS: return "read-only file system";
	default: return "?";
	}
}
