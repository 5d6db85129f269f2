/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_proto.c — libFuzzer target for the wire format (proto/vb_proto.c).
 *
 * The input is treated the way a receiver treats its byte stream: a frame
 * header is decoded and bound-checked, then the payload is given to every
 * decoder (the field reader, nested walks, find/u64, the exec request
 * decoder, the EXEC_RESIZE and REKEY decoders).  The whole input is also decoded as a
 * boot segment.  Decoded
 * exec requests and boot data are re-encoded and decoded again, and the
 * two must agree (a differential check); payloads are rebuilt from their
 * fields with the builders and must come out byte-identical.  Any
 * disagreement or broken invariant aborts.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iproto \
 *       -o fuzz_proto tests/fuzz/fuzz_proto.c proto/vb_proto.c
 *
 * tests/fuzz/replay_main.c replays a corpus through it without libFuzzer
 * (any compiler): every file named on the command line, or in a directory
 * named there, is run through LLVMFuzzerTestOneInput.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* stat, opendir in the replay program */
#endif
#include "vb_proto.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                       \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "fuzz_proto: check failed at %s:%d: %s\n", __FILE__, \
			        __LINE__, #cond);                                        \
			abort();                                                          \
		}                                                                         \
	} while (0)

/* Consume a value so the optimiser cannot drop a decoder call. */
static volatile uint64_t sink;

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- field-level checks ------------------------------------------------ */

static void check_field(const struct vb_field *f, const uint8_t *base, size_t len)
{
	/* the field lies inside its payload */
	CHECK(f->data >= base + VB_FIELD_HDR_LEN);
	CHECK((size_t)(f->data - base) + f->len <= len);

	uint64_t v = 0;
	int rc = vb_field_u64(f, &v);
	CHECK(rc == (f->len == 8 ? 0 : -1));
	sink += v;

	static const size_t maxes[] = { 0, 1, 64, 255, VB_MAX_PATH, VB_MAX_STR };
	int has_nul = f->len && memchr(f->data, '\0', f->len) != NULL;
	for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
		char *s = NULL;
		rc = vb_field_strdup(f, maxes[i], &s);
		if (f->len > maxes[i] || has_nul) {
			CHECK(rc == -1);
		} else {
			CHECK(rc == 0 && s != NULL);
			CHECK(strlen(s) == f->len && memcmp(s, f->data, f->len) == 0);
			free(s);
		}
	}
}

/* Walk a payload (recursively into every field that parses as a nested
 * payload).  Returns the reader's final result; checks that rebuilding the
 * walked fields with the builders reproduces the exact bytes. */
static int walk(const uint8_t *p, size_t len, int depth)
{
	struct vb_reader r;
	struct vb_field f;
	struct vb_buf b = { 0 };
	int rc;
	size_t consumed = 0;

	CHECK(vb_msg_begin(&b, VB_MSG_OK, 0, 0) == 0);
	vb_reader_init(&r, p, len);
	while ((rc = vb_reader_next(&r, &f)) > 0) {
		check_field(&f, p, len);
		consumed += VB_FIELD_HDR_LEN + f.len;
		CHECK(vb_msg_put_bytes(&b, f.tag, f.data, f.len) == 0);
		if (depth < 3 && f.len >= VB_FIELD_HDR_LEN)
			(void)walk(f.data, f.len, depth + 1);
	}
	CHECK(rc == 0 || rc == -1);
	CHECK(vb_reader_next(&r, &f) == rc); /* the reader stays where it stopped */
	if (rc == 0) {
		CHECK(consumed == len);
		CHECK(vb_msg_end(&b) == 0);
		CHECK(b.len == VB_FRAME_HDR_LEN + len);
		CHECK(len == 0 || memcmp(b.data + VB_FRAME_HDR_LEN, p, len) == 0);
	} else {
		CHECK(consumed < len);
		/* it stopped at a truncated header or a field running past the end */
		CHECK(len - consumed < VB_FIELD_HDR_LEN ||
		      le32(p + consumed + 2) > len - consumed - VB_FIELD_HDR_LEN);
	}
	vb_buf_free(&b);
	return rc;
}

static void find_tags(const uint8_t *p, size_t len, int well_formed)
{
	static const uint16_t tags[] = {
		VB_TAG_VERSION, VB_TAG_SECRET, VB_TAG_CODE,   VB_TAG_MESSAGE, VB_TAG_ARG,
		VB_TAG_CWD,     VB_TAG_UID,    VB_TAG_STDIN,  VB_TAG_PID,     VB_TAG_STREAM,
		VB_TAG_DATA,    VB_TAG_COUNT,  VB_TAG_PATH,   VB_TAG_OFFSET,  VB_TAG_MODE,
		VB_TAG_MOUNT,   VB_TAG_ALLOW,  VB_TAG_HOSTNAME, VB_TAG_PTY,   VB_TAG_ROWS,
		VB_TAG_COLS,    VB_TAG_KIND,   VB_TAG_FORWARD, VB_TAG_FWD_PORT, 0,
		0xffff,
	};
	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		struct vb_field f;
		int rc = vb_payload_find(p, len, tags[i], &f);
		CHECK(rc == (well_formed ? 0 : -1));
		CHECK(f.tag == tags[i]);
		if (f.data)
			CHECK(f.data >= p && (size_t)(f.data - p) + f.len <= len);
		else
			CHECK(f.len == 0);
		uint64_t v = 0x5a5a5a5a5a5a5a5aull;
		rc = vb_payload_u64(p, len, tags[i], &v);
		if (!well_formed)
			CHECK(rc == -1);
		else if (!f.data)
			CHECK(rc == 0 && v == 0x5a5a5a5a5a5a5a5aull);
		else
			CHECK(rc == (f.len == 8 ? 0 : -1));
		sink += v;
	}
}

/* ---- exec requests ----------------------------------------------------- */

static void check_exec_invariants(const struct vb_exec_req *r)
{
	CHECK(r->argc >= 1 && r->argc <= VB_MAX_ARGS);
	CHECK(r->argv && r->argv[r->argc] == NULL);
	CHECK(r->argv[0][0] != '\0');
	for (size_t i = 0; i < r->argc; i++)
		CHECK(r->argv[i] && strlen(r->argv[i]) <= VB_MAX_STR);
	CHECK(r->envc <= VB_MAX_ENV);
	CHECK(r->envp && r->envp[r->envc] == NULL);
	for (size_t i = 0; i < r->envc; i++) {
		CHECK(r->envp[i] && strlen(r->envp[i]) <= VB_MAX_STR);
		const char *eq = strchr(r->envp[i], '=');
		CHECK(eq && eq != r->envp[i]);
	}
	CHECK(!r->cwd || (r->cwd[0] == '/' && strlen(r->cwd) <= VB_MAX_PATH));
	CHECK(r->uid <= 65535 && r->gid <= 65535);
	CHECK(r->want_stdin == 0 || r->want_stdin == 1);
	CHECK(r->pty == 0 || r->pty == 1);
	CHECK(r->rows <= VB_TERM_MAX && r->cols <= VB_TERM_MAX); /* 0 = absent */
}

static int exec_equal(const struct vb_exec_req *a, const struct vb_exec_req *b)
{
	if (a->argc != b->argc || a->envc != b->envc || a->uid != b->uid || a->gid != b->gid ||
	    a->timeout_ms != b->timeout_ms || a->want_stdin != b->want_stdin || a->pty != b->pty ||
	    a->rows != b->rows || a->cols != b->cols)
		return 0;
	for (size_t i = 0; i < a->argc; i++)
		if (strcmp(a->argv[i], b->argv[i]) != 0)
			return 0;
	for (size_t i = 0; i < a->envc; i++)
		if (strcmp(a->envp[i], b->envp[i]) != 0)
			return 0;
	if (!a->cwd != !b->cwd)
		return 0;
	return !a->cwd || strcmp(a->cwd, b->cwd) == 0;
}

static void fuzz_exec(const uint8_t *p, size_t len, uint32_t id, int well_formed)
{
	struct vb_exec_req r;
	int err = vb_exec_req_decode(p, len, &r);
	CHECK(well_formed ? err != VB_ERR_PROTO : err == VB_ERR_PROTO);
	if (err != VB_ERR_NONE) {
		CHECK(err == VB_ERR_PROTO || err == VB_ERR_INVAL || err == VB_ERR_INTERNAL);
		CHECK(r.argv == NULL && r.envp == NULL && r.cwd == NULL && r.argc == 0 && r.envc == 0);
		vb_exec_req_free(&r); /* harmless on the zeroed struct */
		return;
	}
	CHECK(well_formed);
	check_exec_invariants(&r);

	/* differential: decode(encode(x)) == x, and encode is a fixed point */
	struct vb_buf b = { 0 }, b2 = { 0 };
	struct vb_hdr h;
	struct vb_exec_req r2;
	if (vb_exec_req_encode(&b, id, &r) == 0) {
		CHECK(vb_hdr_decode(b.data, &h) == 0);
		CHECK(h.type == VB_MSG_EXEC && h.flags == 0 && h.id == id);
		CHECK(h.len == b.len - VB_FRAME_HDR_LEN);
		CHECK(vb_exec_req_decode(b.data + VB_FRAME_HDR_LEN, h.len, &r2) == VB_ERR_NONE);
		CHECK(exec_equal(&r, &r2));
		CHECK(vb_exec_req_encode(&b2, id, &r2) == 0);
		CHECK(b2.len == b.len && memcmp(b2.data, b.data, b.len) == 0);
		vb_exec_req_free(&r2);
	} else {
		/* only possible when the input was within a few fields of the
		 * limit: the encoder may add UID GID TIMEOUT_MS STDIN PTY ROWS COLS */
		CHECK(len + 7 * (VB_FIELD_HDR_LEN + 8) > VB_FRAME_MAX);
	}
	vb_buf_free(&b);
	vb_buf_free(&b2);
	vb_exec_req_free(&r);
	CHECK(r.argv == NULL && r.envp == NULL && r.cwd == NULL);
}

/* ---- terminal resizes -------------------------------------------------- */

static void fuzz_resize(const uint8_t *p, size_t len, uint32_t id, int well_formed)
{
	uint32_t rows = 0x5a5a5a5a, cols = 0x5a5a5a5a;
	int err = vb_resize_decode(p, len, &rows, &cols);
	CHECK(well_formed ? err != VB_ERR_PROTO : err == VB_ERR_PROTO);
	if (err != VB_ERR_NONE) {
		CHECK(err == VB_ERR_PROTO || err == VB_ERR_INVAL);
		CHECK(rows == 0x5a5a5a5a && cols == 0x5a5a5a5a); /* untouched */
		return;
	}
	CHECK(rows >= 1 && rows <= VB_TERM_MAX && cols >= 1 && cols <= VB_TERM_MAX);
	/* the last ROWS and COLS fields are what was decoded */
	struct vb_reader r;
	struct vb_field f;
	uint64_t last[2] = { 0, 0 };
	vb_reader_init(&r, p, len);
	while (vb_reader_next(&r, &f) > 0)
		if (f.tag == VB_TAG_ROWS || f.tag == VB_TAG_COLS)
			CHECK(vb_field_u64(&f, &last[f.tag == VB_TAG_COLS]) == 0);
	CHECK(last[0] == rows && last[1] == cols);
	/* differential: decode(encode(x)) == x */
	struct vb_buf b = { 0 };
	struct vb_hdr h;
	uint32_t rows2 = 0, cols2 = 0;
	CHECK(vb_resize_encode(&b, id, rows, cols) == 0);
	CHECK(vb_hdr_decode(b.data, &h) == 0 && h.type == VB_MSG_EXEC_RESIZE && h.id == id);
	CHECK(vb_resize_decode(b.data + VB_FRAME_HDR_LEN, h.len, &rows2, &cols2) == VB_ERR_NONE);
	CHECK(rows2 == rows && cols2 == cols);
	vb_buf_free(&b);
}

/* ---- rekey ------------------------------------------------------------- */

static void fuzz_rekey(const uint8_t *p, size_t len, uint32_t id, int well_formed)
{
	struct vb_rekey rk, rk2;
	memset(&rk, 0x5a, sizeof(rk));
	struct vb_rekey untouched = rk;
	int err = vb_rekey_decode(p, len, &rk);
	CHECK(well_formed ? err != VB_ERR_PROTO : err == VB_ERR_PROTO);
	if (err != VB_ERR_NONE) {
		CHECK(err == VB_ERR_PROTO || err == VB_ERR_INVAL);
		CHECK(memcmp(&rk, &untouched, sizeof(rk)) == 0);
		return;
	}
	CHECK(rk.n_entropy >= VB_REKEY_ENTROPY_MIN && rk.n_entropy <= VB_REKEY_ENTROPY_MAX);
	CHECK(rk.one_host == 0 || rk.one_host == 1);
	size_t hl = strnlen(rk.hostname, sizeof(rk.hostname));
	CHECK(hl <= VB_HOSTNAME_MAX);
	for (size_t i = 0; i < hl; i++)
		CHECK(rk.hostname[i] == '-' || rk.hostname[i] == '.' ||
		      (rk.hostname[i] >= '0' && rk.hostname[i] <= '9') ||
		      (rk.hostname[i] >= 'a' && rk.hostname[i] <= 'z') ||
		      (rk.hostname[i] >= 'A' && rk.hostname[i] <= 'Z'));
	/* the secret and entropy are the payload's own fields */
	struct vb_field f;
	CHECK(vb_payload_find(p, len, VB_TAG_SECRET, &f) == 0 && f.data && f.len == VB_SECRET_LEN);
	CHECK(memcmp(f.data, rk.secret, VB_SECRET_LEN) == 0);
	CHECK(vb_payload_find(p, len, VB_TAG_ENTROPY, &f) == 0 && f.data && f.len == rk.n_entropy);
	CHECK(memcmp(f.data, rk.entropy, rk.n_entropy) == 0);
	/* differential: decode(encode(x)) == x */
	struct vb_buf b = { 0 };
	struct vb_hdr h;
	CHECK(vb_rekey_encode(&b, id, &rk) == 0);
	CHECK(vb_hdr_decode(b.data, &h) == 0 && h.type == VB_MSG_REKEY && h.id == id);
	CHECK(vb_rekey_decode(b.data + VB_FRAME_HDR_LEN, h.len, &rk2) == VB_ERR_NONE);
	CHECK(memcmp(rk.secret, rk2.secret, VB_SECRET_LEN) == 0 && rk.n_entropy == rk2.n_entropy &&
	      memcmp(rk.entropy, rk2.entropy, rk.n_entropy) == 0 && rk.time_ns == rk2.time_ns &&
	      strcmp(rk.hostname, rk2.hostname) == 0 && rk.one_host == rk2.one_host);
	vb_buf_free(&b);
}

/* ---- MOUNT ------------------------------------------------------------- */

static void fuzz_mount(const uint8_t *p, size_t len, uint32_t id, int well_formed)
{
	static struct vb_mount_req r, r2, untouched;
	memset(&r, 0x5a, sizeof(r));
	untouched = r;
	int err = vb_mount_decode(p, len, &r);
	if (!well_formed)
		CHECK(err == VB_ERR_PROTO);
	if (err != VB_ERR_NONE) {
		CHECK(err == VB_ERR_PROTO || err == VB_ERR_INVAL);
		CHECK(memcmp(&r, &untouched, sizeof(r)) == 0);
		return;
	}
	CHECK(r.n >= 1 && r.n <= VB_MOUNT_REQ_MAX);
	for (size_t i = 0; i < r.n; i++) {
		size_t tl = strnlen(r.m[i].tag, sizeof(r.m[i].tag));
		CHECK(tl >= 4 && tl <= VB_MOUNT_TAG_MAX && memcmp(r.m[i].tag, "vbm", 3) == 0);
		for (size_t k = 3; k < tl; k++)
			CHECK(r.m[i].tag[k] >= '0' && r.m[i].tag[k] <= '9');
		CHECK(tl == 4 || r.m[i].tag[3] != '0');
		CHECK(r.m[i].path[0] == '/' && strnlen(r.m[i].path, sizeof(r.m[i].path)) <= VB_MAX_PATH);
		CHECK(r.m[i].ro == 0 || r.m[i].ro == 1);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(r.m[i].tag, r.m[j].tag) && strcmp(r.m[i].path, r.m[j].path));
	}
	/* differential: decode(encode(x)) == x */
	struct vb_buf b = { 0 };
	struct vb_hdr h;
	CHECK(vb_mount_encode(&b, id, &r) == 0);
	CHECK(vb_hdr_decode(b.data, &h) == 0 && h.type == VB_MSG_MOUNT && h.id == id);
	CHECK(vb_mount_decode(b.data + VB_FRAME_HDR_LEN, h.len, &r2) == VB_ERR_NONE);
	CHECK(r2.n == r.n);
	for (size_t i = 0; i < r.n; i++)
		CHECK(!strcmp(r.m[i].tag, r2.m[i].tag) && !strcmp(r.m[i].path, r2.m[i].path) &&
		      r.m[i].ro == r2.m[i].ro);
	vb_buf_free(&b);
}

/* ---- FORWARD ----------------------------------------------------------- */

static void fuzz_fwd(const uint8_t *p, size_t len, uint32_t id, int well_formed)
{
	static struct vb_fwd_req r, r2, untouched;
	memset(&r, 0x5a, sizeof(r));
	untouched = r;
	int err = vb_fwd_decode(p, len, &r);
	if (!well_formed)
		CHECK(err == VB_ERR_PROTO);
	if (err != VB_ERR_NONE) {
		CHECK(err == VB_ERR_PROTO || err == VB_ERR_INVAL);
		CHECK(memcmp(&r, &untouched, sizeof(r)) == 0);
		return;
	}
	CHECK(r.n >= 1 && r.n <= VB_MAX_FORWARDS);
	for (size_t i = 0; i < r.n; i++) {
		CHECK(r.f[i].port >= 1 && r.f[i].kind < VB_MAX_FORWARDS);
		for (size_t j = 0; j < i; j++)
			CHECK(r.f[i].port != r.f[j].port);
	}
	/* differential: decode(encode(x)) == x */
	struct vb_buf b = { 0 };
	struct vb_hdr h;
	CHECK(vb_fwd_encode(&b, id, &r) == 0);
	CHECK(vb_hdr_decode(b.data, &h) == 0 && h.type == VB_MSG_FORWARD && h.id == id);
	CHECK(vb_fwd_decode(b.data + VB_FRAME_HDR_LEN, h.len, &r2) == VB_ERR_NONE);
	CHECK(r2.n == r.n);
	for (size_t i = 0; i < r.n; i++)
		CHECK(r.f[i].port == r2.f[i].port && r.f[i].kind == r2.f[i].kind);
	vb_buf_free(&b);
}

/* ---- boot data --------------------------------------------------------- */

static void check_boot_invariants(const struct vb_boot *bt)
{
	CHECK(bt->n_allow <= VB_MAX_ALLOW);
	CHECK(bt->allow != NULL || bt->n_allow == 0); /* an allowlist may be empty */
	for (size_t i = 0; i < bt->n_allow; i++) {
		const char *a = bt->allow[i];
		CHECK(a && a[0] && strlen(a) <= 255 && !strchr(a, '/'));
	}
	CHECK(bt->n_mounts <= VB_MAX_MOUNTS);
	CHECK((bt->mounts == NULL) == (bt->n_mounts == 0));
	for (size_t i = 0; i < bt->n_mounts; i++) {
		const struct vb_boot_mount *m = &bt->mounts[i];
		CHECK(m->tag && m->tag[0] && strlen(m->tag) <= 64);
		CHECK(m->path && m->path[0] == '/' && strlen(m->path) <= VB_MAX_PATH);
		CHECK(m->ro == 0 || m->ro == 1);
	}
	CHECK(!bt->hostname || strlen(bt->hostname) <= 64);
	CHECK(bt->n_forwards <= VB_MAX_FORWARDS);
	CHECK((bt->forwards == NULL) == (bt->n_forwards == 0));
	for (size_t i = 0; i < bt->n_forwards; i++) {
		CHECK(bt->forwards[i].port >= 1);
		for (size_t j = 0; j < i; j++)
			CHECK(bt->forwards[j].port != bt->forwards[i].port);
	}
	CHECK(!bt->has_root || bt->root_disk < VB_MAX_DISKS);
	CHECK(bt->n_root_env <= VB_MAX_ENV);
	CHECK((bt->root_env == NULL) == (bt->n_root_env == 0));
	for (size_t i = 0; i < bt->n_root_env; i++)
		CHECK(strchr(bt->root_env[i], '=') && bt->root_env[i][0] != '=');
	CHECK(!bt->root_workdir || bt->root_workdir[0] == '/');
	CHECK(!bt->root_user || (bt->root_user[0] && strlen(bt->root_user) <= VB_MAX_USER &&
				 !strchr(bt->root_user, ' ')));
	CHECK(bt->n_disks <= VB_MAX_DISKS);
	CHECK((bt->disks == NULL) == (bt->n_disks == 0));
	for (size_t i = 0; i < bt->n_disks; i++) {
		CHECK(bt->disks[i].index < VB_MAX_DISKS);
		CHECK(bt->disks[i].path[0] == '/' && bt->disks[i].path[1] != '\0');
		CHECK(!strstr(bt->disks[i].path, "/../"));
		CHECK(!bt->has_root || bt->disks[i].index != bt->root_disk);
		for (size_t j = 0; j < i; j++)
			CHECK(bt->disks[j].index != bt->disks[i].index &&
			      strcmp(bt->disks[j].path, bt->disks[i].path) != 0);
	}
}

static int str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static int boot_equal(const struct vb_boot *a, const struct vb_boot *b)
{
	if (!vb_secret_equal(a->secret, b->secret) || memcmp(a->secret, b->secret, VB_SECRET_LEN) != 0)
		return 0;
	if (!a->allow != !b->allow || a->n_allow != b->n_allow || a->n_mounts != b->n_mounts ||
	    a->rlimit_nofile != b->rlimit_nofile || a->rlimit_nproc != b->rlimit_nproc ||
	    a->rlimit_fsize != b->rlimit_fsize)
		return 0;
	for (size_t i = 0; i < a->n_allow; i++)
		if (strcmp(a->allow[i], b->allow[i]) != 0)
			return 0;
	for (size_t i = 0; i < a->n_mounts; i++)
		if (strcmp(a->mounts[i].tag, b->mounts[i].tag) != 0 ||
		    strcmp(a->mounts[i].path, b->mounts[i].path) != 0 || a->mounts[i].ro != b->mounts[i].ro)
			return 0;
	if (a->n_forwards != b->n_forwards)
		return 0;
	for (size_t i = 0; i < a->n_forwards; i++)
		if (a->forwards[i].port != b->forwards[i].port ||
		    a->forwards[i].kind != b->forwards[i].kind)
			return 0;
	if (a->has_root != b->has_root || a->root_disk != b->root_disk ||
	    a->n_root_env != b->n_root_env || a->n_disks != b->n_disks ||
	    !str_eq(a->root_workdir, b->root_workdir) || !str_eq(a->root_user, b->root_user))
		return 0;
	for (size_t i = 0; i < a->n_root_env; i++)
		if (strcmp(a->root_env[i], b->root_env[i]) != 0)
			return 0;
	for (size_t i = 0; i < a->n_disks; i++)
		if (a->disks[i].index != b->disks[i].index ||
		    strcmp(a->disks[i].path, b->disks[i].path) != 0)
			return 0;
	if (!a->hostname != !b->hostname)
		return 0;
	return !a->hostname || strcmp(a->hostname, b->hostname) == 0;
}

static void fuzz_boot(const uint8_t *data, size_t size)
{
	static const uint8_t zero[VB_SECRET_LEN];
	struct vb_boot bt;
	int err = vb_boot_decode(data, size, &bt);
	if (err != VB_ERR_NONE) {
		CHECK(err == VB_ERR_PROTO || err == VB_ERR_INVAL || err == VB_ERR_INTERNAL);
		CHECK(bt.allow == NULL && bt.mounts == NULL && bt.hostname == NULL);
		CHECK(bt.n_allow == 0 && bt.n_mounts == 0);
		CHECK(memcmp(bt.secret, zero, VB_SECRET_LEN) == 0); /* wiped */
		vb_boot_free(&bt);
		return;
	}
	check_boot_invariants(&bt);

	static const char *const names[] = { "sh", "/bin/sh", "/usr/bin/python3", "python3", "",
		                             "/",  "a/",      "ls",               "/bin/shx" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int ok = vb_policy_allows(&bt, names[i]);
		CHECK(ok == 0 || ok == 1);
		if (!bt.allow)
			CHECK(ok == 1);
		else if (names[i][0] == '\0' || names[i][strlen(names[i]) - 1] == '/')
			CHECK(ok == 0); /* an empty basename is never allowed */
	}
	/* every allowed name is allowed by itself and under any directory */
	for (size_t i = 0; i < bt.n_allow && i < 8; i++) {
		char path[300];
		CHECK(vb_policy_allows(&bt, bt.allow[i]) == 1);
		snprintf(path, sizeof(path), "/some/dir/%s", bt.allow[i]);
		CHECK(vb_policy_allows(&bt, path) == 1);
	}
	CHECK(vb_secret_equal(bt.secret, bt.secret) == 1);

	/* differential: decode(encode(x)) == x */
	struct vb_buf b = { 0 };
	struct vb_boot bt2;
	CHECK(vb_boot_encode(&b, &bt) == 0);
	CHECK(vb_boot_decode(b.data, b.len, &bt2) == VB_ERR_NONE);
	CHECK(boot_equal(&bt, &bt2));
	vb_boot_free(&bt2);
	vb_buf_free(&b);
	vb_boot_free(&bt);
	CHECK(memcmp(bt.secret, zero, VB_SECRET_LEN) == 0);
}

/* ---- one frame, then the stream ---------------------------------------- */

static void fuzz_payload(const struct vb_hdr *h, const uint8_t *p, size_t len)
{
	sink += (uintptr_t)vb_msg_name(h->type);
	int rc = walk(p, len, 0);
	int well_formed = rc == 0;
	find_tags(p, len, well_formed);
	fuzz_exec(p, len, h->id, well_formed);
	fuzz_resize(p, len, h->id, well_formed);
	fuzz_rekey(p, len, h->id, well_formed);
	fuzz_mount(p, len, h->id, well_formed);
	fuzz_fwd(p, len, h->id, well_formed);

	uint64_t code = 0;
	if (vb_payload_u64(p, len, VB_TAG_CODE, &code) == 0)
		sink += (uintptr_t)vb_err_name((int)(code & 0xffff));
	if (h->type == VB_MSG_BOOT) /* a boot frame inside the stream */
		fuzz_boot(p - VB_FRAME_HDR_LEN, VB_FRAME_HDR_LEN + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data;
	size_t left = size;

	/* the receiver's loop: header, bound check, payload */
	while (left >= VB_FRAME_HDR_LEN) {
		struct vb_hdr h;
		if (vb_hdr_decode(p, &h) < 0) {
			CHECK(h.len > VB_FRAME_MAX);
			break; /* the connection would be closed */
		}
		CHECK(h.len <= VB_FRAME_MAX);
		uint8_t raw[VB_FRAME_HDR_LEN];
		vb_hdr_encode(raw, &h);
		CHECK(memcmp(raw, p, VB_FRAME_HDR_LEN) == 0);
		if (h.len > left - VB_FRAME_HDR_LEN)
			break; /* truncated: wait for more */
		/* the payload in a buffer of its own, so ASAN sees any overread */
		uint8_t *payload = malloc(VB_FRAME_HDR_LEN + (size_t)h.len + 1);
		if (!payload)
			return 0;
		memcpy(payload, p, VB_FRAME_HDR_LEN + (size_t)h.len);
		fuzz_payload(&h, payload + VB_FRAME_HDR_LEN, h.len);
		free(payload);
		p += VB_FRAME_HDR_LEN + h.len;
		left -= VB_FRAME_HDR_LEN + h.len;
	}

	/* the whole input as a boot segment, exactly as the agent reads it */
	uint8_t *copy = calloc(1, size ? size : 1);
	if (!copy)
		return 0;
	if (size)
		memcpy(copy, data, size);
	fuzz_boot(copy, size);
	/* and the whole input as a bare payload */
	if (size <= VB_FRAME_MAX) {
		int rc = walk(copy, size, 0);
		fuzz_exec(copy, size, 0, rc == 0);
		fuzz_resize(copy, size, 0, rc == 0);
		fuzz_rekey(copy, size, 0, rc == 0);
		fuzz_mount(copy, size, 0, rc == 0);
		fuzz_fwd(copy, size, 0, rc == 0);
	}
	free(copy);
	return 0;
}
