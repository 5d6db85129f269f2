/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_proto.c — unit tests of the wire format (proto/vb_proto.c): frame
 * headers, the field reader, the message builders, exec requests (terminal
 * fields and EXEC_RESIZE included), boot data, the program allowlist and the
 * secret comparison.
 *
 * Every error path is exercised with allocations already made, so a run
 * under ASAN/LSan also proves that the decoders free what they allocated.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vb_proto.h"

/* ---- helpers ----------------------------------------------------------- */

static const uint8_t *payload_of(const struct vb_buf *b, size_t *len)
{
	assert_true(b->len >= VB_FRAME_HDR_LEN);
	*len = b->len - VB_FRAME_HDR_LEN;
	return b->data + VB_FRAME_HDR_LEN;
}

/* Append a raw field whose header claims (claimed) bytes but carries (n). */
static void put_raw_field(struct vb_buf *b, uint16_t tag, uint32_t claimed, const void *p, size_t n)
{
	assert_int_equal(vb_msg_put_bytes(b, tag, p, n), 0);
	uint8_t *h = b->data + b->len - n - VB_FIELD_HDR_LEN;
	h[2] = (uint8_t)claimed;
	h[3] = (uint8_t)(claimed >> 8);
	h[4] = (uint8_t)(claimed >> 16);
	h[5] = (uint8_t)(claimed >> 24);
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	assert_non_null(d);
	return d;
}

/* Build an owned exec request (freed with vb_exec_req_free). */
static void mk_req(struct vb_exec_req *r, const char *const *argv, size_t argc, const char *const *envp,
                   size_t envc, const char *cwd)
{
	memset(r, 0, sizeof(*r));
	r->argv = calloc(argc + 1, sizeof(char *));
	r->envp = calloc(envc + 1, sizeof(char *));
	assert_non_null(r->argv);
	assert_non_null(r->envp);
	for (size_t i = 0; i < argc; i++)
		r->argv[i] = xstrdup(argv[i]);
	for (size_t i = 0; i < envc; i++)
		r->envp[i] = xstrdup(envp[i]);
	r->argc = argc;
	r->envc = envc;
	r->cwd = cwd ? xstrdup(cwd) : NULL;
}

/* Decode the payload of the frame in (b), which must have been ended. */
static int exec_decode_buf(struct vb_buf *b, struct vb_exec_req *r)
{
	size_t len;
	assert_int_equal(vb_msg_end(b), 0);
	const uint8_t *p = payload_of(b, &len);
	return vb_exec_req_decode(p, len, r);
}

/* Start an EXEC frame with a single valid argument. */
static void exec_begin(struct vb_buf *b)
{
	assert_int_equal(vb_msg_begin(b, VB_MSG_EXEC, 0, 7), 0);
	assert_int_equal(vb_msg_put_str(b, VB_TAG_ARG, "/bin/true"), 0);
}

/* The decoder must leave nothing behind after an error. */
static void assert_req_empty(const struct vb_exec_req *r)
{
	assert_null(r->argv);
	assert_null(r->envp);
	assert_null(r->cwd);
	assert_int_equal(r->argc, 0);
	assert_int_equal(r->envc, 0);
}

static void assert_boot_empty(const struct vb_boot *b)
{
	static const uint8_t zero[VB_SECRET_LEN];
	assert_null(b->allow);
	assert_null(b->mounts);
	assert_null(b->hostname);
	assert_int_equal(b->n_allow, 0);
	assert_int_equal(b->n_mounts, 0);
	assert_null(b->forwards);
	assert_int_equal(b->n_forwards, 0);
	assert_memory_equal(b->secret, zero, VB_SECRET_LEN);
}

static void fill_secret(uint8_t s[VB_SECRET_LEN], uint8_t seed)
{
	for (size_t i = 0; i < VB_SECRET_LEN; i++)
		s[i] = (uint8_t)(seed + 31 * i);
}

/* Start a BOOT frame with VERSION and a valid SECRET. */
static void boot_begin(struct vb_buf *b)
{
	uint8_t secret[VB_SECRET_LEN];
	fill_secret(secret, 1);
	assert_int_equal(vb_msg_begin(b, VB_MSG_BOOT, 0, 0), 0);
	assert_int_equal(vb_msg_put_u64(b, VB_TAG_VERSION, VB_PROTO_VERSION), 0);
	assert_int_equal(vb_msg_put_bytes(b, VB_TAG_SECRET, secret, VB_SECRET_LEN), 0);
}

static int boot_decode_buf(struct vb_buf *b, struct vb_boot *boot)
{
	assert_int_equal(vb_msg_end(b), 0);
	return vb_boot_decode(b->data, b->len, boot);
}

static void put_mount(struct vb_buf *b, const char *tag, const char *path, int ro)
{
	long off = vb_msg_nest_begin(b, VB_TAG_MOUNT);
	assert_true(off >= 0);
	if (tag)
		assert_int_equal(vb_msg_put_str(b, VB_TAG_MOUNT_TAG, tag), 0);
	if (path)
		assert_int_equal(vb_msg_put_str(b, VB_TAG_MOUNT_PATH, path), 0);
	if (ro >= 0)
		assert_int_equal(vb_msg_put_u64(b, VB_TAG_MOUNT_RO, (uint64_t)ro), 0);
	assert_int_equal(vb_msg_nest_end(b, off), 0);
}

/* ---- frame header ------------------------------------------------------ */

static void test_hdr_roundtrip(void **state)
{
	(void)state;
	struct vb_hdr in = { .len = 1234567, .type = VB_MSG_EXEC_OUTPUT, .flags = 0xbeef, .id = 0xdeadbeef };
	struct vb_hdr out;
	uint8_t raw[VB_FRAME_HDR_LEN];
	vb_hdr_encode(raw, &in);
	/* little-endian, in the documented order */
	static const uint8_t want[VB_FRAME_HDR_LEN] = { 0x87, 0xd6, 0x12, 0x00, 19, 0, 0xef, 0xbe,
		                                        0xef, 0xbe, 0xad, 0xde };
	assert_memory_equal(raw, want, sizeof(want));
	assert_int_equal(vb_hdr_decode(raw, &out), 0);
	assert_int_equal(out.len, in.len);
	assert_int_equal(out.type, in.type);
	assert_int_equal(out.flags, in.flags);
	assert_int_equal(out.id, in.id);
}

static void test_hdr_len_limit(void **state)
{
	(void)state;
	struct vb_hdr in = { .len = VB_FRAME_MAX, .type = VB_MSG_HELLO, .flags = 0, .id = 0 };
	struct vb_hdr out;
	uint8_t raw[VB_FRAME_HDR_LEN];

	vb_hdr_encode(raw, &in);
	assert_int_equal(vb_hdr_decode(raw, &out), 0);
	assert_int_equal(out.len, VB_FRAME_MAX);

	in.len = VB_FRAME_MAX + 1;
	vb_hdr_encode(raw, &in);
	assert_int_equal(vb_hdr_decode(raw, &out), -1);

	in.len = UINT32_MAX;
	vb_hdr_encode(raw, &in);
	assert_int_equal(vb_hdr_decode(raw, &out), -1);

	in.len = 0;
	vb_hdr_encode(raw, &in);
	assert_int_equal(vb_hdr_decode(raw, &out), 0);
	assert_int_equal(out.len, 0);
}

/* ---- field reader ------------------------------------------------------ */

static void test_reader_empty(void **state)
{
	(void)state;
	struct vb_reader r;
	struct vb_field f;
	uint8_t dummy = 0;
	vb_reader_init(&r, &dummy, 0);
	assert_int_equal(vb_reader_next(&r, &f), 0);
	vb_reader_init(&r, NULL, 100); /* NULL payload reads as empty */
	assert_int_equal(vb_reader_next(&r, &f), 0);
	assert_int_equal(vb_payload_find(NULL, 0, VB_TAG_ARG, &f), 0);
	assert_null(f.data);
}

static void test_reader_truncated_header(void **state)
{
	(void)state;
	static const uint8_t raw[VB_FIELD_HDR_LEN] = { 16, 0, 0, 0, 0, 0 };
	struct vb_reader r;
	struct vb_field f;
	for (size_t n = 1; n < VB_FIELD_HDR_LEN; n++) {
		vb_reader_init(&r, raw, n);
		assert_int_equal(vb_reader_next(&r, &f), -1);
	}
	vb_reader_init(&r, raw, VB_FIELD_HDR_LEN); /* a complete empty field */
	assert_int_equal(vb_reader_next(&r, &f), 1);
	assert_int_equal(f.tag, 16);
	assert_int_equal(f.len, 0);
	assert_int_equal(vb_reader_next(&r, &f), 0);

	/* a good field followed by half a header */
	static const uint8_t two[] = { 1, 0, 1, 0, 0, 0, 'x', 2, 0, 0 };
	vb_reader_init(&r, two, sizeof(two));
	assert_int_equal(vb_reader_next(&r, &f), 1);
	assert_int_equal(f.tag, 1);
	assert_int_equal(vb_reader_next(&r, &f), -1);
}

static void test_reader_len_past_end(void **state)
{
	(void)state;
	struct vb_reader r;
	struct vb_field f;
	/* claims 5 bytes, has 4 */
	static const uint8_t one_short[] = { 25, 0, 5, 0, 0, 0, 'a', 'b', 'c', 'd' };
	vb_reader_init(&r, one_short, sizeof(one_short));
	assert_int_equal(vb_reader_next(&r, &f), -1);
	/* exact fit works */
	vb_reader_init(&r, one_short, sizeof(one_short));
	static const uint8_t exact[] = { 25, 0, 4, 0, 0, 0, 'a', 'b', 'c', 'd' };
	vb_reader_init(&r, exact, sizeof(exact));
	assert_int_equal(vb_reader_next(&r, &f), 1);
	assert_int_equal(f.len, 4);
	assert_memory_equal(f.data, "abcd", 4);
	assert_int_equal(vb_reader_next(&r, &f), 0);
	/* huge lengths must not wrap around */
	static const uint8_t huge[] = { 25, 0, 0xff, 0xff, 0xff, 0xff, 'a' };
	vb_reader_init(&r, huge, sizeof(huge));
	assert_int_equal(vb_reader_next(&r, &f), -1);
	static const uint8_t huge2[] = { 25, 0, 0xfa, 0xff, 0xff, 0xff, 'a' };
	vb_reader_init(&r, huge2, sizeof(huge2));
	assert_int_equal(vb_reader_next(&r, &f), -1);
	/* and the whole-payload helpers report it */
	assert_int_equal(vb_payload_find(huge, sizeof(huge), 25, &f), -1);
	uint64_t v = 42;
	assert_int_equal(vb_payload_u64(huge, sizeof(huge), 25, &v), -1);
	assert_int_equal(v, 42);
}

static void test_reader_zero_length_fields(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_reader r;
	struct vb_field f;
	size_t len;
	assert_int_equal(vb_msg_begin(&b, VB_MSG_OK, 0, 1), 0);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_DATA, NULL, 0), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_MESSAGE, ""), 0);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_DATA, "z", 1), 0);
	assert_int_equal(vb_msg_end(&b), 0);
	const uint8_t *p = payload_of(&b, &len);
	assert_int_equal(len, 3 * VB_FIELD_HDR_LEN + 1);

	vb_reader_init(&r, p, len);
	assert_int_equal(vb_reader_next(&r, &f), 1);
	assert_int_equal(f.tag, VB_TAG_DATA);
	assert_int_equal(f.len, 0);
	assert_int_equal(vb_reader_next(&r, &f), 1);
	assert_int_equal(f.tag, VB_TAG_MESSAGE);
	assert_int_equal(f.len, 0);
	char *s = NULL;
	assert_int_equal(vb_field_strdup(&f, 10, &s), 0);
	assert_string_equal(s, "");
	free(s);
	uint64_t v;
	assert_int_equal(vb_field_u64(&f, &v), -1);
	assert_int_equal(vb_reader_next(&r, &f), 1);
	assert_int_equal(f.len, 1);
	assert_int_equal(vb_reader_next(&r, &f), 0);
	assert_int_equal(vb_reader_next(&r, &f), 0); /* stays at the end */

	/* find returns the first occurrence, even an empty one */
	assert_int_equal(vb_payload_find(p, len, VB_TAG_DATA, &f), 0);
	assert_non_null(f.data);
	assert_int_equal(f.len, 0);
	vb_buf_free(&b);
}

static void test_reader_unknown_tags_skipped(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_field f;
	size_t len;
	uint64_t v = 0;
	assert_int_equal(vb_msg_begin(&b, VB_MSG_EXEC, 0, 1), 0);
	assert_int_equal(vb_msg_put_bytes(&b, 0xffff, "junk\0junk", 9), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ARG, "ls"), 0);
	assert_int_equal(vb_msg_put_bytes(&b, 0, NULL, 0), 0);
	assert_int_equal(vb_msg_put_u64(&b, 9999, 5), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_TIMEOUT_MS, 250), 0);
	assert_int_equal(vb_msg_put_bytes(&b, 12345, "\x01\x02\x03", 3), 0);
	assert_int_equal(vb_msg_end(&b), 0);
	const uint8_t *p = payload_of(&b, &len);

	assert_int_equal(vb_payload_u64(p, len, VB_TAG_TIMEOUT_MS, &v), 0);
	assert_int_equal(v, 250);
	assert_int_equal(vb_payload_u64(p, len, 9999, &v), 0);
	assert_int_equal(v, 5);
	v = 77; /* absent: unchanged */
	assert_int_equal(vb_payload_u64(p, len, VB_TAG_PID, &v), 0);
	assert_int_equal(v, 77);
	/* present with the wrong size: error */
	assert_int_equal(vb_payload_u64(p, len, VB_TAG_ARG, &v), -1);
	assert_int_equal(vb_payload_find(p, len, VB_TAG_CWD, &f), 0);
	assert_null(f.data);
	assert_int_equal(f.tag, VB_TAG_CWD);

	struct vb_exec_req r;
	assert_int_equal(vb_exec_req_decode(p, len, &r), 0);
	assert_int_equal(r.argc, 1);
	assert_string_equal(r.argv[0], "ls");
	assert_int_equal(r.timeout_ms, 250);
	vb_exec_req_free(&r);
	vb_buf_free(&b);
}

static void test_reader_nested(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_reader r, in;
	struct vb_field f, g;
	size_t len;
	assert_int_equal(vb_msg_begin(&b, VB_MSG_BOOT, 0, 0), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_VERSION, 1), 0);
	long outer = vb_msg_nest_begin(&b, VB_TAG_MOUNT);
	assert_true(outer >= 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_MOUNT_TAG, "t0"), 0);
	long inner = vb_msg_nest_begin(&b, 500); /* nesting inside nesting */
	assert_true(inner > outer);
	assert_int_equal(vb_msg_put_u64(&b, 501, 9), 0);
	assert_int_equal(vb_msg_nest_end(&b, inner), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_MOUNT_PATH, "/mnt"), 0);
	assert_int_equal(vb_msg_nest_end(&b, outer), 0);
	long empty = vb_msg_nest_begin(&b, VB_TAG_MOUNT); /* an empty nest */
	assert_int_equal(vb_msg_nest_end(&b, empty), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_HOSTNAME, "h"), 0);
	assert_int_equal(vb_msg_end(&b), 0);
	const uint8_t *p = payload_of(&b, &len);

	vb_reader_init(&r, p, len);
	assert_int_equal(vb_reader_next(&r, &f), 1);
	assert_int_equal(f.tag, VB_TAG_VERSION);
	assert_int_equal(vb_reader_next(&r, &f), 1);
	assert_int_equal(f.tag, VB_TAG_MOUNT);
	assert_int_equal(f.len, (VB_FIELD_HDR_LEN + 2) + (VB_FIELD_HDR_LEN + VB_FIELD_HDR_LEN + 8) +
	                            (VB_FIELD_HDR_LEN + 4));
	vb_reader_init(&in, f.data, f.len);
	assert_int_equal(vb_reader_next(&in, &g), 1);
	assert_int_equal(g.tag, VB_TAG_MOUNT_TAG);
	assert_memory_equal(g.data, "t0", 2);
	assert_int_equal(vb_reader_next(&in, &g), 1);
	assert_int_equal(g.tag, 500);
	uint64_t v = 0;
	assert_int_equal(vb_payload_u64(g.data, g.len, 501, &v), 0);
	assert_int_equal(v, 9);
	assert_int_equal(vb_reader_next(&in, &g), 1);
	assert_int_equal(g.tag, VB_TAG_MOUNT_PATH);
	assert_memory_equal(g.data, "/mnt", 4);
	assert_int_equal(vb_reader_next(&in, &g), 0);
	assert_int_equal(vb_reader_next(&r, &f), 1);
	assert_int_equal(f.tag, VB_TAG_MOUNT);
	assert_int_equal(f.len, 0);
	assert_int_equal(vb_reader_next(&r, &f), 1);
	assert_int_equal(f.tag, VB_TAG_HOSTNAME);
	assert_int_equal(vb_reader_next(&r, &f), 0);

	/* a nested field whose inside is malformed: the outer walk is fine */
	struct vb_buf c = { 0 };
	assert_int_equal(vb_msg_begin(&c, VB_MSG_OK, 0, 0), 0);
	put_raw_field(&c, VB_TAG_MOUNT, 3, "\x45\x00\x09", 3);
	assert_int_equal(vb_msg_end(&c), 0);
	p = payload_of(&c, &len);
	assert_int_equal(vb_payload_find(p, len, VB_TAG_MOUNT, &f), 0);
	assert_non_null(f.data);
	assert_int_equal(vb_payload_find(f.data, f.len, VB_TAG_MOUNT_TAG, &g), -1);
	vb_buf_free(&c);
	vb_buf_free(&b);
}

static void test_field_u64(void **state)
{
	(void)state;
	static const uint8_t raw[9] = { 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x81, 0xaa };
	struct vb_field f = { .tag = 1, .len = 8, .data = raw };
	uint64_t v = 0;
	assert_int_equal(vb_field_u64(&f, &v), 0);
	assert_true(v == 0x8102030405060708ull);
	for (uint32_t n = 0; n <= 9; n++) {
		if (n == 8)
			continue;
		f.len = n;
		v = 5;
		assert_int_equal(vb_field_u64(&f, &v), -1);
		assert_int_equal(v, 5);
	}
}

static void test_field_strdup(void **state)
{
	(void)state;
	char *s = NULL;
	struct vb_field f = { .tag = 1, .len = 5, .data = (const uint8_t *)"hello" };
	assert_int_equal(vb_field_strdup(&f, 5, &s), 0); /* len == max is fine */
	assert_string_equal(s, "hello");
	free(s);
	s = NULL;
	assert_int_equal(vb_field_strdup(&f, 4, &s), -1); /* len > max */
	assert_null(s);
	f.data = (const uint8_t *)"he\0lo";
	assert_int_equal(vb_field_strdup(&f, 100, &s), -1); /* embedded NUL */
	assert_null(s);
	f.data = (const uint8_t *)"hell\0";
	assert_int_equal(vb_field_strdup(&f, 100, &s), -1); /* trailing NUL */
	assert_null(s);
	f.data = (const uint8_t *)"\0";
	f.len = 1;
	assert_int_equal(vb_field_strdup(&f, 100, &s), -1);
	f.len = 0;
	assert_int_equal(vb_field_strdup(&f, 0, &s), 0);
	assert_string_equal(s, "");
	free(s);
}

/* ---- message builders -------------------------------------------------- */

static void test_msg_roundtrip(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_hdr h;
	struct vb_reader r;
	struct vb_field f;
	uint64_t v;
	char *s;
	static const uint8_t bin[] = { 0, 1, 2, 0xff, 0, 0x80 };
	assert_int_equal(vb_msg_begin(&b, VB_MSG_EXEC_OUTPUT, VB_FLAG_EOF, 99), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_STREAM, 2), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_COUNT, UINT64_MAX), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_PID, 0), 0);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_DATA, bin, sizeof(bin)), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_MESSAGE, "héllo wörld"), 0);
	assert_int_equal(vb_msg_end(&b), 0);

	assert_int_equal(vb_hdr_decode(b.data, &h), 0);
	assert_int_equal(h.type, VB_MSG_EXEC_OUTPUT);
	assert_int_equal(h.flags, VB_FLAG_EOF);
	assert_int_equal(h.id, 99);
	assert_int_equal(h.len, b.len - VB_FRAME_HDR_LEN);

	vb_reader_init(&r, b.data + VB_FRAME_HDR_LEN, h.len);
	assert_int_equal(vb_reader_next(&r, &f), 1);
	assert_int_equal(f.tag, VB_TAG_STREAM);
	assert_int_equal(vb_field_u64(&f, &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(vb_reader_next(&r, &f), 1);
	assert_int_equal(vb_field_u64(&f, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(vb_reader_next(&r, &f), 1);
	assert_int_equal(vb_field_u64(&f, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(vb_reader_next(&r, &f), 1);
	assert_int_equal(f.tag, VB_TAG_DATA);
	assert_int_equal(f.len, sizeof(bin));
	assert_memory_equal(f.data, bin, sizeof(bin));
	assert_int_equal(vb_field_strdup(&f, 100, &s), -1); /* binary with NULs */
	assert_int_equal(vb_reader_next(&r, &f), 1);
	assert_int_equal(f.tag, VB_TAG_MESSAGE);
	assert_int_equal(vb_field_strdup(&f, 100, &s), 0);
	assert_string_equal(s, "héllo wörld");
	free(s);
	assert_int_equal(vb_reader_next(&r, &f), 0);

	/* begin resets the buffer for the next frame */
	assert_int_equal(vb_msg_begin(&b, VB_MSG_SAMPLE, 0, 3), 0);
	assert_int_equal(b.len, VB_FRAME_HDR_LEN);
	assert_int_equal(vb_msg_end(&b), 0);
	assert_int_equal(vb_hdr_decode(b.data, &h), 0);
	assert_int_equal(h.len, 0);
	assert_int_equal(h.type, VB_MSG_SAMPLE);
	vb_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
}

static void test_msg_end_patches_length(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_hdr h;
	assert_int_equal(vb_msg_begin(&b, VB_MSG_EXEC, 0, 1), 0);
	assert_int_equal(vb_hdr_decode(b.data, &h), 0);
	assert_int_equal(h.len, 0); /* not patched until the end */
	char big[3000];
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 10; i++) /* forces several reallocations */
		assert_int_equal(vb_msg_put_str(&b, VB_TAG_ARG, big), 0);
	assert_int_equal(vb_hdr_decode(b.data, &h), 0);
	assert_int_equal(h.len, 0);
	assert_int_equal(vb_msg_end(&b), 0);
	assert_int_equal(vb_hdr_decode(b.data, &h), 0);
	assert_int_equal(h.len, 10 * (VB_FIELD_HDR_LEN + 2999));
	assert_int_equal(b.len, VB_FRAME_HDR_LEN + h.len);
	/* ending twice is harmless */
	assert_int_equal(vb_msg_end(&b), 0);
	assert_int_equal(vb_hdr_decode(b.data, &h), 0);
	assert_int_equal(h.len, 10 * (VB_FIELD_HDR_LEN + 2999));
	vb_buf_free(&b);

	/* no frame begun: nothing to end */
	struct vb_buf e = { 0 };
	assert_int_equal(vb_msg_end(&e), -1);
	vb_buf_free(&e);
}

static void test_msg_too_big_sticks(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	static const uint8_t byte = 1;
	assert_int_equal(vb_msg_begin(&b, VB_MSG_FILE_WRITE, 0, 1), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_PATH, "/tmp/x"), 0);
	/* the length check comes before any access to (data) */
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_DATA, &byte, VB_FRAME_MAX), -1);
	assert_int_not_equal(b.oom, 0);
	/* the error sticks: small puts, nests and the end all fail */
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_OFFSET, 0), -1);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_PATH, "y"), -1);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_DATA, NULL, 0), -1);
	assert_int_equal(vb_msg_nest_begin(&b, VB_TAG_MOUNT), -1);
	assert_int_equal(vb_msg_end(&b), -1);
	/* a field length that does not fit in u32 */
	assert_int_equal(vb_msg_begin(&b, VB_MSG_FILE_WRITE, 0, 1), 0);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_DATA, &byte, (size_t)UINT32_MAX + 1), -1);
	assert_int_equal(vb_msg_end(&b), -1);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_DATA, &byte, SIZE_MAX), -1);
	assert_int_equal(vb_msg_end(&b), -1);
	/* reset by the next begin */
	assert_int_equal(vb_msg_begin(&b, VB_MSG_FILE_WRITE, 0, 2), 0);
	assert_int_equal(b.oom, 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_OFFSET, 0), 0);
	assert_int_equal(vb_msg_end(&b), 0);
	vb_buf_free(&b);
}

static void test_msg_exact_max(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_hdr h;
	size_t n = VB_FRAME_MAX - 2 * VB_FIELD_HDR_LEN - 8;
	uint8_t *blob = calloc(1, n);
	assert_non_null(blob);
	assert_int_equal(vb_msg_begin(&b, VB_MSG_FILE_WRITE, 0, 1), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_OFFSET, 0), 0);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_DATA, blob, n), 0);
	assert_int_equal(b.len, VB_FRAME_HDR_LEN + VB_FRAME_MAX); /* exactly full */
	assert_int_equal(vb_msg_end(&b), 0);
	assert_int_equal(vb_hdr_decode(b.data, &h), 0);
	assert_int_equal(h.len, VB_FRAME_MAX);
	uint64_t off = 9;
	assert_int_equal(vb_payload_u64(b.data + VB_FRAME_HDR_LEN, h.len, VB_TAG_OFFSET, &off), 0);
	assert_int_equal(off, 0);
	/* not even an empty field fits now */
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_DATA, NULL, 0), -1);
	assert_int_equal(vb_msg_end(&b), -1);

	/* one byte over, in a single put */
	assert_int_equal(vb_msg_begin(&b, VB_MSG_FILE_WRITE, 0, 1), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_OFFSET, 0), 0);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_DATA, blob, n + 1), -1);
	assert_int_equal(vb_msg_end(&b), -1);
	free(blob);
	vb_buf_free(&b);
}

static void test_msg_nest_errors(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	assert_int_equal(vb_msg_begin(&b, VB_MSG_BOOT, 0, 0), 0);
	assert_int_equal(vb_msg_nest_end(&b, -1), -1);
	assert_int_equal(vb_msg_nest_end(&b, (long)b.len), -1); /* no room for a field header */
	assert_int_equal(vb_msg_nest_end(&b, 1000000), -1);
	long off = vb_msg_nest_begin(&b, VB_TAG_MOUNT);
	assert_int_equal(off, VB_FRAME_HDR_LEN);
	assert_int_equal(vb_msg_nest_end(&b, off), 0); /* empty */
	assert_int_equal(vb_msg_end(&b), 0);
	vb_buf_free(&b);
}

/* ---- exec requests ----------------------------------------------------- */

static void test_exec_roundtrip(void **state)
{
	(void)state;
	static const char *const argv[] = { "/usr/bin/env", "-i", "", "with space", "ünïcødé", "a=b" };
	static const char *const envp[] = { "PATH=/usr/bin:/bin", "EMPTY=", "X==y", "LANG=C.UTF-8" };
	struct vb_exec_req in, out;
	struct vb_buf b = { 0 };
	struct vb_hdr h;
	size_t len;
	mk_req(&in, argv, 6, envp, 4, "/home/user/work dir");
	in.uid = 0;
	in.gid = 65535;
	in.timeout_ms = UINT64_MAX;
	in.want_stdin = 1;

	assert_int_equal(vb_exec_req_encode(&b, 0x01020304, &in), 0);
	assert_int_equal(vb_hdr_decode(b.data, &h), 0);
	assert_int_equal(h.type, VB_MSG_EXEC);
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.id, 0x01020304);
	assert_int_equal(h.len, b.len - VB_FRAME_HDR_LEN);
	const uint8_t *p = payload_of(&b, &len);
	assert_int_equal(vb_exec_req_decode(p, len, &out), 0);

	assert_int_equal(out.argc, in.argc);
	for (size_t i = 0; i < in.argc; i++)
		assert_string_equal(out.argv[i], in.argv[i]);
	assert_null(out.argv[out.argc]);
	assert_int_equal(out.envc, in.envc);
	for (size_t i = 0; i < in.envc; i++)
		assert_string_equal(out.envp[i], in.envp[i]);
	assert_null(out.envp[out.envc]);
	assert_string_equal(out.cwd, in.cwd);
	assert_int_equal(out.uid, 0);
	assert_int_equal(out.gid, 65535);
	assert_true(out.timeout_ms == UINT64_MAX);
	assert_int_equal(out.want_stdin, 1);

	/* re-encoding gives the same bytes */
	struct vb_buf b2 = { 0 };
	assert_int_equal(vb_exec_req_encode(&b2, 0x01020304, &out), 0);
	assert_int_equal(b2.len, b.len);
	assert_memory_equal(b2.data, b.data, b.len);

	vb_exec_req_free(&out);
	assert_req_empty(&out);
	vb_exec_req_free(&in);
	vb_buf_free(&b);
	vb_buf_free(&b2);
}

static void test_exec_roundtrip_minimal(void **state)
{
	(void)state;
	static const char *const argv[] = { "sh" };
	struct vb_exec_req in, out;
	struct vb_buf b = { 0 };
	size_t len;
	mk_req(&in, argv, 1, NULL, 0, NULL);
	in.uid = 1000;
	in.gid = 1000;
	in.want_stdin = 7; /* any non-zero value travels as 1 */
	assert_int_equal(vb_exec_req_encode(&b, 1, &in), 0);
	const uint8_t *p = payload_of(&b, &len);
	assert_int_equal(vb_exec_req_decode(p, len, &out), 0);
	assert_int_equal(out.argc, 1);
	assert_string_equal(out.argv[0], "sh");
	assert_int_equal(out.envc, 0);
	assert_non_null(out.envp);
	assert_null(out.envp[0]);
	assert_null(out.cwd);
	assert_int_equal(out.timeout_ms, 0);
	assert_int_equal(out.want_stdin, 1);
	vb_exec_req_free(&out);
	vb_exec_req_free(&in);
	vb_buf_free(&b);
}

static void test_exec_defaults(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_exec_req r;
	exec_begin(&b);
	assert_int_equal(exec_decode_buf(&b, &r), 0);
	assert_int_equal(r.argc, 1);
	assert_string_equal(r.argv[0], "/bin/true");
	assert_null(r.argv[1]);
	assert_int_equal(r.uid, 1000);
	assert_int_equal(r.gid, 1000);
	assert_int_equal(r.timeout_ms, 0);
	assert_int_equal(r.want_stdin, 0);
	assert_null(r.cwd);
	assert_int_equal(r.envc, 0);
	vb_exec_req_free(&r);

	/* repeated scalar fields: the last one wins, without leaking */
	exec_begin(&b);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_CWD, "/a"), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_CWD, "/b"), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_UID, 5), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_UID, 6), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_STDIN, 1), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_STDIN, 0), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ARG, "second"), 0);
	assert_int_equal(exec_decode_buf(&b, &r), 0);
	assert_string_equal(r.cwd, "/b");
	assert_int_equal(r.uid, 6);
	assert_int_equal(r.gid, 1000);
	assert_int_equal(r.want_stdin, 0);
	assert_int_equal(r.argc, 2);
	assert_string_equal(r.argv[1], "second");
	vb_exec_req_free(&r);
	vb_buf_free(&b);
}

static void test_exec_reject_no_arg(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_exec_req r;
	assert_int_equal(vb_msg_begin(&b, VB_MSG_EXEC, 0, 1), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ENV, "A=B"), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_CWD, "/"), 0);
	assert_int_equal(exec_decode_buf(&b, &r), VB_ERR_INVAL);
	assert_req_empty(&r);
	/* an empty payload too */
	assert_int_equal(vb_exec_req_decode(b.data, 0, &r), VB_ERR_INVAL);
	assert_req_empty(&r);
	assert_int_equal(vb_exec_req_decode(NULL, 0, &r), VB_ERR_INVAL);
	assert_req_empty(&r);
	vb_buf_free(&b);
}

static void test_exec_reject_empty_argv0(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_exec_req r;
	assert_int_equal(vb_msg_begin(&b, VB_MSG_EXEC, 0, 1), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ARG, ""), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ARG, "x"), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ENV, "A=B"), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_CWD, "/"), 0);
	assert_int_equal(exec_decode_buf(&b, &r), VB_ERR_INVAL);
	assert_req_empty(&r);
	/* an empty later argument is fine */
	assert_int_equal(vb_msg_begin(&b, VB_MSG_EXEC, 0, 1), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ARG, "x"), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ARG, ""), 0);
	assert_int_equal(exec_decode_buf(&b, &r), 0);
	assert_int_equal(r.argc, 2);
	assert_string_equal(r.argv[1], "");
	vb_exec_req_free(&r);
	vb_buf_free(&b);
}

static void check_exec_env_rejected(const char *env)
{
	struct vb_buf b = { 0 };
	struct vb_exec_req r;
	exec_begin(&b);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ENV, "GOOD=1"), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ENV, env), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ENV, "MORE=2"), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_CWD, "/tmp"), 0);
	assert_int_equal(exec_decode_buf(&b, &r), VB_ERR_INVAL);
	assert_req_empty(&r);
	vb_buf_free(&b);
}

static void test_exec_reject_env(void **state)
{
	(void)state;
	check_exec_env_rejected("NOEQUALS");
	check_exec_env_rejected("=x");
	check_exec_env_rejected("=");
	check_exec_env_rejected("");
	/* and an env entry with an embedded NUL */
	struct vb_buf b = { 0 };
	struct vb_exec_req r;
	exec_begin(&b);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_ENV, "A=1\0B=2", 7), 0);
	assert_int_equal(exec_decode_buf(&b, &r), VB_ERR_INVAL);
	assert_req_empty(&r);
	vb_buf_free(&b);
}

static void test_exec_reject_cwd(void **state)
{
	(void)state;
	static const char *const bad[] = { "relative/dir", "", "./x", "~" };
	struct vb_buf b = { 0 };
	struct vb_exec_req r;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		exec_begin(&b);
		assert_int_equal(vb_msg_put_str(&b, VB_TAG_ENV, "A=B"), 0);
		assert_int_equal(vb_msg_put_str(&b, VB_TAG_CWD, bad[i]), 0);
		assert_int_equal(exec_decode_buf(&b, &r), VB_ERR_INVAL);
		assert_req_empty(&r);
	}
	/* a good cwd replaced by a bad one: no leak */
	exec_begin(&b);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_CWD, "/ok"), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_CWD, "bad"), 0);
	assert_int_equal(exec_decode_buf(&b, &r), VB_ERR_INVAL);
	assert_req_empty(&r);
	/* a cwd longer than VB_MAX_PATH, then exactly VB_MAX_PATH */
	char *path = malloc(VB_MAX_PATH + 2);
	assert_non_null(path);
	memset(path, 'p', VB_MAX_PATH + 1);
	path[0] = '/';
	path[VB_MAX_PATH + 1] = '\0';
	exec_begin(&b);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_CWD, "/ok"), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_CWD, path), 0);
	assert_int_equal(exec_decode_buf(&b, &r), VB_ERR_INVAL);
	assert_req_empty(&r);
	path[VB_MAX_PATH] = '\0';
	exec_begin(&b);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_CWD, path), 0);
	assert_int_equal(exec_decode_buf(&b, &r), 0);
	assert_int_equal(strlen(r.cwd), VB_MAX_PATH);
	vb_exec_req_free(&r);
	free(path);
	/* a cwd with an embedded NUL */
	exec_begin(&b);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_CWD, "/a\0b", 4), 0);
	assert_int_equal(exec_decode_buf(&b, &r), VB_ERR_INVAL);
	assert_req_empty(&r);
	vb_buf_free(&b);
}

static void check_exec_u64_rejected(uint16_t tag, uint64_t v)
{
	struct vb_buf b = { 0 };
	struct vb_exec_req r;
	exec_begin(&b);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ENV, "A=B"), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_CWD, "/"), 0);
	assert_int_equal(vb_msg_put_u64(&b, tag, v), 0);
	assert_int_equal(exec_decode_buf(&b, &r), VB_ERR_INVAL);
	assert_req_empty(&r);
	vb_buf_free(&b);
}

static void test_exec_reject_ids(void **state)
{
	(void)state;
	check_exec_u64_rejected(VB_TAG_UID, 65536);
	check_exec_u64_rejected(VB_TAG_UID, UINT64_MAX);
	check_exec_u64_rejected(VB_TAG_UID, (uint64_t)1 << 32);
	check_exec_u64_rejected(VB_TAG_GID, 65536);
	check_exec_u64_rejected(VB_TAG_GID, UINT64_MAX);
	check_exec_u64_rejected(VB_TAG_STDIN, 2);
	check_exec_u64_rejected(VB_TAG_STDIN, UINT64_MAX);

	struct vb_buf b = { 0 };
	struct vb_exec_req r;
	exec_begin(&b);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_UID, 65535), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_GID, 0), 0);
	assert_int_equal(exec_decode_buf(&b, &r), 0);
	assert_int_equal(r.uid, 65535);
	assert_int_equal(r.gid, 0);
	vb_exec_req_free(&r);
	vb_buf_free(&b);
}

static void test_exec_reject_int_size(void **state)
{
	(void)state;
	static const uint16_t tags[] = { VB_TAG_UID, VB_TAG_GID, VB_TAG_TIMEOUT_MS, VB_TAG_STDIN };
	static const uint8_t zeros[16];
	static const size_t sizes[] = { 0, 1, 4, 7, 9, 16 };
	struct vb_buf b = { 0 };
	struct vb_exec_req r;
	for (size_t t = 0; t < sizeof(tags) / sizeof(tags[0]); t++) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			exec_begin(&b);
			assert_int_equal(vb_msg_put_str(&b, VB_TAG_ENV, "A=B"), 0);
			assert_int_equal(vb_msg_put_bytes(&b, tags[t], zeros, sizes[s]), 0);
			assert_int_equal(exec_decode_buf(&b, &r), VB_ERR_INVAL);
			assert_req_empty(&r);
		}
	}
	vb_buf_free(&b);
}

/* ---- terminals: PTY, ROWS, COLS and EXEC_RESIZE ------------------------ */

static void test_exec_pty_roundtrip(void **state)
{
	(void)state;
	static const char *const argv[] = { "sh" };
	struct vb_exec_req in, out;
	struct vb_buf b = { 0 }, b2 = { 0 };
	size_t len;
	mk_req(&in, argv, 1, NULL, 0, NULL);
	in.pty = 1;
	in.rows = 1;
	in.cols = VB_TERM_MAX;
	in.want_stdin = 1;
	assert_int_equal(vb_exec_req_encode(&b, 9, &in), 0);
	const uint8_t *p = payload_of(&b, &len);
	assert_int_equal(vb_exec_req_decode(p, len, &out), 0);
	assert_int_equal(out.pty, 1);
	assert_int_equal(out.rows, 1);
	assert_int_equal(out.cols, VB_TERM_MAX);
	assert_int_equal(out.want_stdin, 1);
	assert_int_equal(vb_exec_req_encode(&b2, 9, &out), 0);
	assert_int_equal(b2.len, b.len);
	assert_memory_equal(b2.data, b.data, b.len);
	vb_exec_req_free(&out);

	/* pipes: none of the new fields on the wire, all zero when decoded */
	in.pty = 0;
	in.rows = in.cols = 0;
	assert_int_equal(vb_exec_req_encode(&b, 9, &in), 0);
	p = payload_of(&b, &len);
	struct vb_field f;
	static const uint16_t tags[] = { VB_TAG_PTY, VB_TAG_ROWS, VB_TAG_COLS };
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(vb_payload_find(p, len, tags[i], &f), 0);
		assert_null(f.data);
	}
	assert_int_equal(vb_exec_req_decode(p, len, &out), 0);
	assert_int_equal(out.pty, 0);
	assert_int_equal(out.rows, 0);
	assert_int_equal(out.cols, 0);
	vb_exec_req_free(&out);

	/* a size without PTY travels and decodes as written (0 = absent) */
	in.cols = 80;
	assert_int_equal(vb_exec_req_encode(&b, 9, &in), 0);
	p = payload_of(&b, &len);
	assert_int_equal(vb_exec_req_decode(p, len, &out), 0);
	assert_int_equal(out.pty, 0);
	assert_int_equal(out.rows, 0);
	assert_int_equal(out.cols, 80);
	vb_exec_req_free(&out);

	/* PTY 0 written explicitly, and the last PTY wins */
	exec_begin(&b);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_PTY, 1), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_PTY, 0), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_ROWS, 24), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_ROWS, 25), 0);
	assert_int_equal(exec_decode_buf(&b, &out), 0);
	assert_int_equal(out.pty, 0);
	assert_int_equal(out.rows, 25);
	vb_exec_req_free(&out);

	vb_exec_req_free(&in);
	vb_buf_free(&b);
	vb_buf_free(&b2);
}

static void test_exec_reject_pty(void **state)
{
	(void)state;
	check_exec_u64_rejected(VB_TAG_PTY, 2);
	check_exec_u64_rejected(VB_TAG_PTY, UINT64_MAX);
	check_exec_u64_rejected(VB_TAG_ROWS, 0);
	check_exec_u64_rejected(VB_TAG_ROWS, VB_TERM_MAX + 1);
	check_exec_u64_rejected(VB_TAG_ROWS, (uint64_t)1 << 32);
	check_exec_u64_rejected(VB_TAG_COLS, 0);
	check_exec_u64_rejected(VB_TAG_COLS, VB_TERM_MAX + 1);
	check_exec_u64_rejected(VB_TAG_COLS, UINT64_MAX);

	static const uint16_t tags[] = { VB_TAG_PTY, VB_TAG_ROWS, VB_TAG_COLS };
	static const uint8_t ones[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	static const size_t sizes[] = { 0, 1, 4, 7, 9, 16 };
	struct vb_buf b = { 0 };
	struct vb_exec_req r;
	for (size_t t = 0; t < sizeof(tags) / sizeof(tags[0]); t++) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			exec_begin(&b);
			assert_int_equal(vb_msg_put_str(&b, VB_TAG_ENV, "A=B"), 0);
			assert_int_equal(vb_msg_put_str(&b, VB_TAG_CWD, "/x"), 0);
			assert_int_equal(vb_msg_put_bytes(&b, tags[t], ones, sizes[s]), 0);
			assert_int_equal(exec_decode_buf(&b, &r), VB_ERR_INVAL);
			assert_req_empty(&r);
			assert_int_equal(r.pty, 0);
			assert_int_equal(r.rows, 0);
		}
	}
	vb_buf_free(&b);
}

/* REKEY: one new identity, every field bounded; a refused payload leaves
 * the output untouched. */
static int rekey_decode_buf(struct vb_buf *b, struct vb_rekey *rk)
{
	size_t len;
	assert_int_equal(vb_msg_end(b), 0);
	const uint8_t *p = payload_of(b, &len);
	return vb_rekey_decode(p, len, rk);
}

static void rekey_begin(struct vb_buf *b, size_t secret_len, size_t entropy_len)
{
	static const uint8_t bytes[VB_REKEY_ENTROPY_MAX + 1] = { 1, 2, 3 };
	assert_int_equal(vb_msg_begin(b, VB_MSG_REKEY, 0, 9), 0);
	assert_int_equal(vb_msg_put_bytes(b, VB_TAG_SECRET, bytes, secret_len), 0);
	assert_int_equal(vb_msg_put_bytes(b, VB_TAG_ENTROPY, bytes, entropy_len), 0);
}

/* MOUNT: one nested mount per (tag, path, ro); ro < 0 leaves MOUNT_RO out */
static int mount_decode_of(const char *const *tags, const char *const *paths, const int *ro,
			   size_t n, struct vb_mount_req *r)
{
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_MOUNT, 0, 9);
	for (size_t i = 0; i < n; i++) {
		long off = vb_msg_nest_begin(&b, VB_TAG_MOUNT);
		if (tags[i])
			vb_msg_put_str(&b, VB_TAG_MOUNT_TAG, tags[i]);
		if (paths[i])
			vb_msg_put_str(&b, VB_TAG_MOUNT_PATH, paths[i]);
		if (ro[i] >= 0)
			vb_msg_put_u64(&b, VB_TAG_MOUNT_RO, (uint64_t)ro[i]);
		vb_msg_nest_end(&b, off);
	}
	assert_int_equal(vb_msg_end(&b), 0);
	int rc = vb_mount_decode(b.data + VB_FRAME_HDR_LEN, b.len - VB_FRAME_HDR_LEN, r);
	vb_buf_free(&b);
	return rc;
}

static void test_mount_req(void **state)
{
	(void)state;
	static struct vb_mount_req r;
	const char *t2[] = { "vbm0", "vbm12" }, *p2[] = { "/work", "/data" };
	const int ro2[] = { 0, -1 };
	assert_int_equal(mount_decode_of(t2, p2, ro2, 2, &r), VB_ERR_NONE);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.m[0].tag, "vbm0");
	assert_string_equal(r.m[1].path, "/data");
	assert_int_equal(r.m[0].ro, 0);
	assert_int_equal(r.m[1].ro, 1); /* read-only unless said otherwise */
	/* refusals: (out) untouched */
	memset(&r, 0x5a, sizeof(r));
	static const struct { const char *tag, *path; int ro; } bad[] = {
		{ "vbm01", "/a", 1 }, { "vbm", "/a", 1 }, { "vbm123", "/a", 1 }, { "fs0", "/a", 1 },
		{ "vbm1", "a", 1 }, { "vbm1", "", 1 }, { "vbm1", "/a", 2 }, { NULL, "/a", 1 },
		{ "vbm1", NULL, 1 }, { "vbmx", "/a", 1 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(mount_decode_of(&bad[i].tag, &bad[i].path, &bad[i].ro, 1, &r),
				 VB_ERR_INVAL);
		assert_int_equal(r.n, (size_t)0x5a5a5a5a5a5a5a5aull);
	}
	/* nothing, a tag twice, a path twice, too many */
	assert_int_equal(mount_decode_of(NULL, NULL, NULL, 0, &r), VB_ERR_INVAL);
	const char *td[] = { "vbm1", "vbm1" }, *pd[] = { "/a", "/a" }, *pu[] = { "/a", "/b" };
	const int rod[] = { 1, 1 };
	assert_int_equal(mount_decode_of(td, pu, rod, 2, &r), VB_ERR_INVAL);
	assert_int_equal(mount_decode_of(t2, pd, rod, 2, &r), VB_ERR_INVAL);
	const char *t9[9], *p9[9];
	int ro9[9];
	char tagbuf[9][16], pathbuf[9][16];
	for (int i = 0; i < 9; i++) {
		snprintf(tagbuf[i], sizeof(tagbuf[i]), "vbm%d", i);
		snprintf(pathbuf[i], sizeof(pathbuf[i]), "/m%d", i);
		t9[i] = tagbuf[i];
		p9[i] = pathbuf[i];
		ro9[i] = 1;
	}
	assert_int_equal(mount_decode_of(t9, p9, ro9, 8, &r), VB_ERR_NONE);
	assert_int_equal(mount_decode_of(t9, p9, ro9, 9, &r), VB_ERR_INVAL);
	/* a malformed nested field */
	uint8_t junk[] = { 68, 0, 3, 0, 0, 0, 1, 2, 3 };
	assert_int_equal(vb_mount_decode(junk, sizeof(junk), &r), VB_ERR_PROTO);
}

/* FORWARD with (n) forwards: port[i] (0 = no FWD_PORT field), kind[i]. */
static int fwd_decode_of(const uint64_t *port, const uint64_t *kind, size_t n,
			 struct vb_fwd_req *r)
{
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_FORWARD, 0, 9);
	for (size_t i = 0; i < n; i++) {
		long off = vb_msg_nest_begin(&b, VB_TAG_FORWARD);
		if (port[i])
			vb_msg_put_u64(&b, VB_TAG_FWD_PORT, port[i]);
		vb_msg_put_u64(&b, VB_TAG_KIND, kind[i]);
		vb_msg_nest_end(&b, off);
	}
	assert_int_equal(vb_msg_end(&b), 0);
	int rc = vb_fwd_decode(b.data + VB_FRAME_HDR_LEN, b.len - VB_FRAME_HDR_LEN, r);
	vb_buf_free(&b);
	return rc;
}

static void test_fwd_req(void **state)
{
	(void)state;
	struct vb_fwd_req r, in = { .n = 2, .f = { { .port = 4380, .kind = 0 },
						    { .port = 65535, .kind = 15 } } };
	struct vb_buf b = { 0 };
	struct vb_hdr h;
	assert_int_equal(vb_fwd_encode(&b, 7, &in), 0);
	assert_int_equal(vb_hdr_decode(b.data, &h), 0);
	assert_int_equal(h.type, VB_MSG_FORWARD);
	assert_int_equal(h.id, 7);
	assert_string_equal(vb_msg_name(VB_MSG_FORWARD), "FORWARD");
	assert_int_equal(vb_fwd_decode(b.data + VB_FRAME_HDR_LEN, h.len, &r), VB_ERR_NONE);
	vb_buf_free(&b);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.f[0].port, 4380);
	assert_int_equal(r.f[1].port, 65535);
	assert_int_equal(r.f[1].kind, 15);
	/* refusals leave (r) untouched: no port, port 0 or beyond 65535, a
	 * KIND no forward can have */
	memset(&r, 0x5a, sizeof(r));
	static const uint64_t badport[] = { 0, 65536, 1ull << 40, 80 }, badkind[] = { 0, 0, 0, 16 };
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(fwd_decode_of(&badport[i], &badkind[i], 1, &r), VB_ERR_INVAL);
		assert_int_equal(r.n, (size_t)0x5a5a5a5a5a5a5a5aull);
	}
	/* nothing, a port twice, more than VB_MAX_FORWARDS */
	assert_int_equal(fwd_decode_of(NULL, NULL, 0, &r), VB_ERR_INVAL);
	const uint64_t dup[] = { 80, 80 }, k2[] = { 0, 1 };
	assert_int_equal(fwd_decode_of(dup, k2, 2, &r), VB_ERR_INVAL);
	uint64_t p17[17], k17[17];
	for (int i = 0; i < 17; i++) {
		p17[i] = 1000 + (uint64_t)i;
		k17[i] = (uint64_t)i % 16;
	}
	assert_int_equal(fwd_decode_of(p17, k17, 16, &r), VB_ERR_NONE);
	assert_int_equal(r.n, 16);
	assert_int_equal(fwd_decode_of(p17, k17, 17, &r), VB_ERR_INVAL);
	uint8_t junk[] = { 91, 0, 3, 0, 0, 0, 1, 2 }; /* a field longer than the payload */
	assert_int_equal(vb_fwd_decode(junk, sizeof(junk), &r), VB_ERR_PROTO);
	/* a FORWARD whose inside is malformed */
	uint8_t nested[] = { 91, 0, 7, 0, 0, 0, 92, 0, 9, 0, 0, 0, 1 };
	assert_int_equal(vb_fwd_decode(nested, sizeof(nested), &r), VB_ERR_PROTO);
	assert_int_equal(r.n, 16);
}

static void test_rekey(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_hdr h;
	size_t len;
	struct vb_rekey in = { .n_entropy = 64, .time_ns = 1764556800123456789ull,
			       .hostname = "vm-1.example", .one_host = 1 }, out;
	for (size_t i = 0; i < VB_SECRET_LEN; i++)
		in.secret[i] = (uint8_t)(i + 1);
	for (size_t i = 0; i < in.n_entropy; i++)
		in.entropy[i] = (uint8_t)(255 - i);
	assert_int_equal(vb_rekey_encode(&b, 77, &in), 0);
	assert_int_equal(vb_hdr_decode(b.data, &h), 0);
	assert_int_equal(h.type, VB_MSG_REKEY);
	assert_int_equal(h.id, 77);
	assert_string_equal(vb_msg_name(VB_MSG_REKEY), "REKEY");
	const uint8_t *p = payload_of(&b, &len);
	assert_int_equal(vb_rekey_decode(p, len, &out), 0);
	assert_memory_equal(out.secret, in.secret, VB_SECRET_LEN);
	assert_int_equal(out.n_entropy, 64);
	assert_memory_equal(out.entropy, in.entropy, 64);
	assert_true(out.time_ns == in.time_ns);
	assert_string_equal(out.hostname, "vm-1.example");
	assert_int_equal(out.one_host, 1);

	/* the minimum: SECRET and ENTROPY; the rest absent means "leave it" */
	struct vb_rekey min = { .n_entropy = VB_REKEY_ENTROPY_MIN };
	assert_int_equal(vb_rekey_encode(&b, 1, &min), 0);
	p = payload_of(&b, &len);
	assert_int_equal(vb_rekey_decode(p, len, &out), 0);
	assert_true(out.time_ns == 0);
	assert_string_equal(out.hostname, "");
	assert_int_equal(out.one_host, 0);
	/* entropy at its largest; unknown tags skipped */
	rekey_begin(&b, VB_SECRET_LEN, VB_REKEY_ENTROPY_MAX);
	assert_int_equal(vb_msg_put_u64(&b, 9999, 1), 0);
	assert_int_equal(rekey_decode_buf(&b, &out), 0);
	assert_int_equal(out.n_entropy, VB_REKEY_ENTROPY_MAX);

	/* INVAL, the output untouched */
	struct {
		size_t secret, entropy;
		uint16_t tag;
		const char *str;
		uint64_t u;
	} bad[] = {
		{ VB_SECRET_LEN - 1, 64, 0, NULL, 0 },           /* short secret */
		{ VB_SECRET_LEN + 1, 64, 0, NULL, 0 },           /* long secret */
		{ VB_SECRET_LEN, VB_REKEY_ENTROPY_MIN - 1, 0, NULL, 0 },
		{ VB_SECRET_LEN, VB_REKEY_ENTROPY_MAX + 1, 0, NULL, 0 },
		{ VB_SECRET_LEN, 64, VB_TAG_SECRET, NULL, 0 },   /* a second secret */
		{ VB_SECRET_LEN, 64, VB_TAG_ENTROPY, NULL, 0 },  /* a second entropy */
		{ VB_SECRET_LEN, 64, VB_TAG_HOSTNAME, "a b", 0 },
		{ VB_SECRET_LEN, 64, VB_TAG_HOSTNAME, "a\x1b[2J", 0 },
		{ VB_SECRET_LEN, 64, VB_TAG_HOSTNAME, "", 0 },
		{ VB_SECRET_LEN, 64, VB_TAG_HOSTNAME,
		  "x123456789x123456789x123456789x123456789x123456789x123456789xxxxx", 0 },
		{ VB_SECRET_LEN, 64, VB_TAG_ONE_HOST, NULL, 2 },
		{ VB_SECRET_LEN, 64, VB_TAG_TIME_NS, "1234", 0 }, /* not a u64 */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		static const uint8_t zeros[VB_SECRET_LEN];
		rekey_begin(&b, bad[i].secret, bad[i].entropy);
		if (bad[i].tag == VB_TAG_SECRET)
			assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_SECRET, zeros, VB_SECRET_LEN), 0);
		else if (bad[i].tag == VB_TAG_ENTROPY)
			assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_ENTROPY, zeros, 32), 0);
		else if (bad[i].str)
			assert_int_equal(vb_msg_put_bytes(&b, bad[i].tag, bad[i].str, strlen(bad[i].str)),
					 0);
		else if (bad[i].tag)
			assert_int_equal(vb_msg_put_u64(&b, bad[i].tag, bad[i].u), 0);
		memset(&out, 0x5a, sizeof(out));
		struct vb_rekey before = out;
		if (rekey_decode_buf(&b, &out) != VB_ERR_INVAL)
			fail_msg("bad REKEY %zu was not refused", i);
		assert_memory_equal(&out, &before, sizeof(out));
	}
	/* missing SECRET, missing ENTROPY */
	assert_int_equal(vb_msg_begin(&b, VB_MSG_REKEY, 0, 1), 0);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_ENTROPY, in.entropy, 64), 0);
	assert_int_equal(rekey_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_int_equal(vb_msg_begin(&b, VB_MSG_REKEY, 0, 1), 0);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_SECRET, in.secret, VB_SECRET_LEN), 0);
	assert_int_equal(rekey_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_int_equal(vb_rekey_decode(NULL, 0, &out), VB_ERR_INVAL);
	/* a field running past the end: PROTO */
	assert_int_equal(vb_rekey_encode(&b, 1, &in), 0);
	p = payload_of(&b, &len);
	assert_int_equal(vb_rekey_decode(p, len - 1, &out), VB_ERR_PROTO);
	/* the encoder clamps what it copies */
	in.n_entropy = VB_REKEY_ENTROPY_MAX + 100;
	assert_int_equal(vb_rekey_encode(&b, 1, &in), 0);
	p = payload_of(&b, &len);
	assert_int_equal(vb_rekey_decode(p, len, &out), 0);
	assert_int_equal(out.n_entropy, VB_REKEY_ENTROPY_MAX);
	vb_buf_free(&b);
}

static int resize_decode_buf(struct vb_buf *b, uint32_t *rows, uint32_t *cols)
{
	size_t len;
	assert_int_equal(vb_msg_end(b), 0);
	const uint8_t *p = payload_of(b, &len);
	return vb_resize_decode(p, len, rows, cols);
}

static void test_resize(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_hdr h;
	uint32_t rows = 7, cols = 7;
	size_t len;

	assert_int_equal(vb_resize_encode(&b, 42, 50, 132), 0);
	assert_int_equal(vb_hdr_decode(b.data, &h), 0);
	assert_int_equal(h.type, VB_MSG_EXEC_RESIZE);
	assert_int_equal(h.id, 42);
	assert_int_equal(h.flags, 0);
	const uint8_t *p = payload_of(&b, &len);
	assert_int_equal(vb_resize_decode(p, len, &rows, &cols), 0);
	assert_int_equal(rows, 50);
	assert_int_equal(cols, 132);

	/* the bounds themselves */
	assert_int_equal(vb_resize_encode(&b, 1, 1, VB_TERM_MAX), 0);
	p = payload_of(&b, &len);
	assert_int_equal(vb_resize_decode(p, len, &rows, &cols), 0);
	assert_int_equal(rows, 1);
	assert_int_equal(cols, VB_TERM_MAX);

	/* out of range or missing: INVAL, outputs untouched */
	static const uint32_t bad[][2] = { { 0, 80 }, { 24, 0 }, { VB_TERM_MAX + 1, 80 },
					  { 24, VB_TERM_MAX + 1 }, { UINT32_MAX, UINT32_MAX } };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rows = cols = 7;
		assert_int_equal(vb_resize_encode(&b, 1, bad[i][0], bad[i][1]), 0);
		p = payload_of(&b, &len);
		assert_int_equal(vb_resize_decode(p, len, &rows, &cols), VB_ERR_INVAL);
		assert_int_equal(rows, 7);
		assert_int_equal(cols, 7);
	}
	assert_int_equal(vb_msg_begin(&b, VB_MSG_EXEC_RESIZE, 0, 1), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_ROWS, 24), 0);
	assert_int_equal(resize_decode_buf(&b, &rows, &cols), VB_ERR_INVAL);
	assert_int_equal(vb_resize_decode(NULL, 0, &rows, &cols), VB_ERR_INVAL);
	/* a field of the wrong size */
	assert_int_equal(vb_msg_begin(&b, VB_MSG_EXEC_RESIZE, 0, 1), 0);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_ROWS, "\x18\0\0\0", 4), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_COLS, 80), 0);
	assert_int_equal(resize_decode_buf(&b, &rows, &cols), VB_ERR_INVAL);
	/* repeated: the last one wins; unknown tags are skipped */
	assert_int_equal(vb_msg_begin(&b, VB_MSG_EXEC_RESIZE, 0, 1), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_ROWS, 24), 0);
	assert_int_equal(vb_msg_put_str(&b, 999, "future"), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_COLS, 80), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_ROWS, 25), 0);
	assert_int_equal(resize_decode_buf(&b, &rows, &cols), 0);
	assert_int_equal(rows, 25);
	assert_int_equal(cols, 80);
	/* malformed: PROTO */
	rows = cols = 7;
	assert_int_equal(vb_msg_begin(&b, VB_MSG_EXEC_RESIZE, 0, 1), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_ROWS, 24), 0);
	put_raw_field(&b, VB_TAG_COLS, 100, "\x50\0\0\0\0\0\0\0", 8);
	assert_int_equal(resize_decode_buf(&b, &rows, &cols), VB_ERR_PROTO);
	assert_int_equal(rows, 7);
	vb_buf_free(&b);
}

static void test_exec_limits(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_exec_req r;

	/* exactly VB_MAX_ARGS arguments and VB_MAX_ENV env entries */
	assert_int_equal(vb_msg_begin(&b, VB_MSG_EXEC, 0, 1), 0);
	for (unsigned i = 0; i < VB_MAX_ARGS; i++)
		assert_int_equal(vb_msg_put_str(&b, VB_TAG_ARG, "a"), 0);
	for (unsigned i = 0; i < VB_MAX_ENV; i++)
		assert_int_equal(vb_msg_put_str(&b, VB_TAG_ENV, "K=v"), 0);
	assert_int_equal(exec_decode_buf(&b, &r), 0);
	assert_int_equal(r.argc, VB_MAX_ARGS);
	assert_int_equal(r.envc, VB_MAX_ENV);
	assert_null(r.argv[VB_MAX_ARGS]);
	assert_null(r.envp[VB_MAX_ENV]);
	vb_exec_req_free(&r);

	/* one argument too many */
	assert_int_equal(vb_msg_begin(&b, VB_MSG_EXEC, 0, 1), 0);
	for (unsigned i = 0; i < VB_MAX_ARGS + 1; i++)
		assert_int_equal(vb_msg_put_str(&b, VB_TAG_ARG, "a"), 0);
	assert_int_equal(exec_decode_buf(&b, &r), VB_ERR_INVAL);
	assert_req_empty(&r);

	/* one env entry too many */
	assert_int_equal(vb_msg_begin(&b, VB_MSG_EXEC, 0, 1), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ARG, "a"), 0);
	for (unsigned i = 0; i < VB_MAX_ENV + 1; i++)
		assert_int_equal(vb_msg_put_str(&b, VB_TAG_ENV, "K=v"), 0);
	assert_int_equal(exec_decode_buf(&b, &r), VB_ERR_INVAL);
	assert_req_empty(&r);

	/* an argument of exactly VB_MAX_STR bytes, then one byte more */
	char *s = malloc(VB_MAX_STR + 2);
	assert_non_null(s);
	memset(s, 'x', VB_MAX_STR + 1);
	s[VB_MAX_STR] = '\0';
	assert_int_equal(vb_msg_begin(&b, VB_MSG_EXEC, 0, 1), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ARG, s), 0);
	assert_int_equal(exec_decode_buf(&b, &r), 0);
	assert_int_equal(strlen(r.argv[0]), VB_MAX_STR);
	vb_exec_req_free(&r);
	s[VB_MAX_STR] = 'x';
	s[VB_MAX_STR + 1] = '\0';
	assert_int_equal(vb_msg_begin(&b, VB_MSG_EXEC, 0, 1), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ARG, "ok"), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ARG, s), 0);
	assert_int_equal(exec_decode_buf(&b, &r), VB_ERR_INVAL);
	assert_req_empty(&r);
	/* the same for an env entry */
	s[0] = 'K';
	s[1] = '=';
	assert_int_equal(vb_msg_begin(&b, VB_MSG_EXEC, 0, 1), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ARG, "ok"), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ENV, s), 0);
	assert_int_equal(exec_decode_buf(&b, &r), VB_ERR_INVAL);
	assert_req_empty(&r);
	free(s);
	vb_buf_free(&b);
}

static void test_exec_reject_arg_nul(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_exec_req r;
	exec_begin(&b);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_ARG, "rm\0-rf", 6), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ENV, "A=B"), 0);
	assert_int_equal(exec_decode_buf(&b, &r), VB_ERR_INVAL);
	assert_req_empty(&r);
	/* argv[0] itself */
	assert_int_equal(vb_msg_begin(&b, VB_MSG_EXEC, 0, 1), 0);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_ARG, "\0", 1), 0);
	assert_int_equal(exec_decode_buf(&b, &r), VB_ERR_INVAL);
	assert_req_empty(&r);
	vb_buf_free(&b);
}

static void test_exec_malformed(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_exec_req r;
	size_t len;

	/* a last field that claims more than is there */
	exec_begin(&b);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ENV, "A=B"), 0);
	put_raw_field(&b, VB_TAG_CWD, 100, "/tmp", 4);
	assert_int_equal(exec_decode_buf(&b, &r), VB_ERR_PROTO);
	assert_req_empty(&r);

	/* a truncated field header after valid fields */
	exec_begin(&b);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ENV, "A=B"), 0);
	assert_int_equal(vb_msg_end(&b), 0);
	const uint8_t *p = payload_of(&b, &len);
	const size_t arg_len = VB_FIELD_HDR_LEN + strlen("/bin/true");
	assert_int_equal(len, arg_len + VB_FIELD_HDR_LEN + 3);
	for (size_t cut = 1; cut < len; cut++) {
		int rc = vb_exec_req_decode(p, len - cut, &r);
		if (len - cut == arg_len) { /* exactly the ARG field: valid */
			assert_int_equal(rc, 0);
			assert_int_equal(r.argc, 1);
			assert_int_equal(r.envc, 0);
			vb_exec_req_free(&r);
		} else {
			assert_int_equal(rc, VB_ERR_PROTO);
		}
		assert_req_empty(&r);
	}
	/* garbage */
	static const uint8_t junk[] = { 0x10, 0x00, 0xff, 0xff, 0xff, 0x7f, 'a' };
	assert_int_equal(vb_exec_req_decode(junk, sizeof(junk), &r), VB_ERR_PROTO);
	assert_req_empty(&r);
	vb_buf_free(&b);
}

static void test_exec_error_after_allocations(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_exec_req r;
	/* every kind of allocation made before the bad field */
	assert_int_equal(vb_msg_begin(&b, VB_MSG_EXEC, 0, 1), 0);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(vb_msg_put_str(&b, VB_TAG_ARG, "argument"), 0);
		assert_int_equal(vb_msg_put_str(&b, VB_TAG_ENV, "KEY=value"), 0);
	}
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_CWD, "/work"), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_TIMEOUT_MS, 5), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_GID, 70000), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ARG, "never read"), 0);
	assert_int_equal(exec_decode_buf(&b, &r), VB_ERR_INVAL);
	assert_req_empty(&r);
	vb_buf_free(&b);
}

/* ---- boot data --------------------------------------------------------- */

static void test_boot_roundtrip(void **state)
{
	(void)state;
	char a0[] = "sh", a1[] = "python3", a2[] = "ls";
	char *allow[] = { a0, a1, a2 };
	char t0[] = "workspace", p0[] = "/workspace", t1[] = "data", p1[] = "/mnt/data set";
	struct vb_boot_mount mounts[] = { { t0, p0, 0 }, { t1, p1, 1 } };
	char host[] = "sandbox-1";
	struct vb_boot in = { .allow = allow,
		              .n_allow = 3,
		              .rlimit_nofile = 1024,
		              .rlimit_nproc = 64,
		              .rlimit_fsize = (uint64_t)1 << 40,
		              .mounts = mounts,
		              .n_mounts = 2,
		              .hostname = host };
	fill_secret(in.secret, 0xa5);
	struct vb_buf b = { 0 };
	struct vb_hdr h;
	struct vb_boot out;
	assert_int_equal(vb_boot_encode(&b, &in), 0);
	assert_int_equal(vb_hdr_decode(b.data, &h), 0);
	assert_int_equal(h.type, VB_MSG_BOOT);
	assert_int_equal(h.id, 0);
	assert_int_equal(h.len, b.len - VB_FRAME_HDR_LEN);
	assert_int_equal(vb_boot_decode(b.data, b.len, &out), 0);

	assert_memory_equal(out.secret, in.secret, VB_SECRET_LEN);
	assert_int_equal(out.n_allow, 3);
	assert_non_null(out.allow);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(out.allow[i], allow[i]);
	assert_int_equal(out.rlimit_nofile, 1024);
	assert_int_equal(out.rlimit_nproc, 64);
	assert_true(out.rlimit_fsize == (uint64_t)1 << 40);
	assert_int_equal(out.n_mounts, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_string_equal(out.mounts[i].tag, mounts[i].tag);
		assert_string_equal(out.mounts[i].path, mounts[i].path);
		assert_int_equal(out.mounts[i].ro, mounts[i].ro);
	}
	assert_string_equal(out.hostname, "sandbox-1");

	/* re-encoding gives the same bytes */
	struct vb_buf b2 = { 0 };
	assert_int_equal(vb_boot_encode(&b2, &out), 0);
	assert_int_equal(b2.len, b.len);
	assert_memory_equal(b2.data, b.data, b.len);

	vb_boot_free(&out);
	assert_boot_empty(&out); /* the secret is wiped too */
	vb_buf_free(&b);
	vb_buf_free(&b2);
}

/* An empty allowlist allows nothing, on both sides of the wire. */
static void test_boot_empty_allowlist_fails_closed(void **state)
{
	(void)state;
	struct vb_boot in, out;
	struct vb_buf b = { 0 };
	char *none[] = { NULL };
	memset(&in, 0, sizeof(in));
	fill_secret(in.secret, 5);
	in.allow = none;
	in.n_allow = 0;
	assert_false(vb_policy_allows(&in, "/bin/sh"));
	assert_int_equal(vb_boot_encode(&b, &in), 0);
	assert_int_equal(vb_boot_decode(b.data, b.len, &out), 0);
	assert_non_null(out.allow);
	assert_int_equal(out.n_allow, 0);
	assert_false(vb_policy_allows(&out, "/bin/sh"));
	assert_false(vb_policy_allows(&out, "sh"));
	vb_boot_free(&out);
	vb_buf_free(&b);
}

static void test_boot_minimal(void **state)
{
	(void)state;
	struct vb_boot in, out;
	struct vb_buf b = { 0 };
	memset(&in, 0, sizeof(in));
	fill_secret(in.secret, 3);
	assert_int_equal(vb_boot_encode(&b, &in), 0);
	assert_int_equal(vb_boot_decode(b.data, b.len, &out), 0);
	assert_memory_equal(out.secret, in.secret, VB_SECRET_LEN);
	assert_null(out.allow);
	assert_int_equal(out.n_allow, 0);
	assert_null(out.mounts);
	assert_int_equal(out.n_mounts, 0);
	assert_null(out.hostname);
	assert_int_equal(out.rlimit_nofile, 0);
	assert_int_equal(out.rlimit_nproc, 0);
	assert_int_equal(out.rlimit_fsize, 0);
	assert_true(vb_policy_allows(&out, "/anything/at/all"));
	vb_boot_free(&out);

	/* an empty hostname survives as "" */
	char empty[] = "";
	in.hostname = empty;
	assert_int_equal(vb_boot_encode(&b, &in), 0);
	assert_int_equal(vb_boot_decode(b.data, b.len, &out), 0);
	assert_non_null(out.hostname);
	assert_string_equal(out.hostname, "");
	vb_boot_free(&out);
	vb_buf_free(&b);
}

static void test_boot_reject_frame(void **state)
{
	(void)state;
	struct vb_boot in, out;
	struct vb_buf b = { 0 };
	char a0[] = "sh";
	char *allow[] = { a0 };
	char t0[] = "t", p0[] = "/m";
	struct vb_boot_mount m = { t0, p0, 1 };
	char host[] = "h";
	memset(&in, 0, sizeof(in));
	fill_secret(in.secret, 9);
	in.allow = allow;
	in.n_allow = 1;
	in.mounts = &m;
	in.n_mounts = 1;
	in.hostname = host;
	assert_int_equal(vb_boot_encode(&b, &in), 0);
	assert_int_equal(vb_boot_decode(b.data, b.len, &out), 0);
	vb_boot_free(&out);

	/* too short to hold a header */
	for (size_t n = 0; n < VB_FRAME_HDR_LEN; n++) {
		assert_int_equal(vb_boot_decode(b.data, n, &out), VB_ERR_PROTO);
		assert_boot_empty(&out);
	}
	/* frame length mismatch: truncated, or the header says more/less */
	assert_int_equal(vb_boot_decode(b.data, b.len - 1, &out), VB_ERR_PROTO);
	assert_boot_empty(&out);
	uint8_t *copy = malloc(b.len + 16);
	assert_non_null(copy);
	memcpy(copy, b.data, b.len);
	memset(copy + b.len, 0, 16);
	/* trailing garbage after the frame */
	assert_int_equal(vb_boot_decode(copy, b.len + 1, &out), VB_ERR_PROTO);
	assert_boot_empty(&out);
	assert_int_equal(vb_boot_decode(copy, b.len + 16, &out), VB_ERR_PROTO);
	assert_boot_empty(&out);
	/* trailing garbage inside the frame (length patched): malformed payload */
	struct vb_hdr h;
	assert_int_equal(vb_hdr_decode(copy, &h), 0);
	h.len += 3;
	vb_hdr_encode(copy, &h);
	copy[b.len] = 0x44;
	assert_int_equal(vb_boot_decode(copy, b.len + 3, &out), VB_ERR_PROTO);
	assert_boot_empty(&out);
	/* header length one short */
	h.len -= 4;
	vb_hdr_encode(copy, &h);
	assert_int_equal(vb_boot_decode(copy, b.len, &out), VB_ERR_PROTO);
	assert_boot_empty(&out);
	/* header length beyond VB_FRAME_MAX */
	h.len = VB_FRAME_MAX + 1;
	vb_hdr_encode(copy, &h);
	assert_int_equal(vb_boot_decode(copy, b.len, &out), VB_ERR_PROTO);
	assert_boot_empty(&out);
	/* wrong type */
	h.len = (uint32_t)(b.len - VB_FRAME_HDR_LEN);
	h.type = VB_MSG_HELLO;
	vb_hdr_encode(copy, &h);
	assert_int_equal(vb_boot_decode(copy, b.len, &out), VB_ERR_PROTO);
	assert_boot_empty(&out);
	h.type = VB_MSG_BOOT + 256;
	vb_hdr_encode(copy, &h);
	assert_int_equal(vb_boot_decode(copy, b.len, &out), VB_ERR_PROTO);
	assert_boot_empty(&out);
	/* flags and id are not checked */
	h.type = VB_MSG_BOOT;
	h.flags = 0xffff;
	h.id = 77;
	vb_hdr_encode(copy, &h);
	assert_int_equal(vb_boot_decode(copy, b.len, &out), 0);
	vb_boot_free(&out);
	free(copy);
	vb_buf_free(&b);
}

static void test_boot_reject_secret_version(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_boot out;
	uint8_t secret[VB_SECRET_LEN + 1];
	fill_secret(secret, 4);

	/* missing secret */
	assert_int_equal(vb_msg_begin(&b, VB_MSG_BOOT, 0, 0), 0);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_VERSION, VB_PROTO_VERSION), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ALLOW, "sh"), 0);
	put_mount(&b, "t", "/m", 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_HOSTNAME, "h"), 0);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_boot_empty(&out);

	/* secret of the wrong length */
	static const size_t bad_len[] = { 0, 1, VB_SECRET_LEN - 1, VB_SECRET_LEN + 1 };
	for (size_t i = 0; i < sizeof(bad_len) / sizeof(bad_len[0]); i++) {
		assert_int_equal(vb_msg_begin(&b, VB_MSG_BOOT, 0, 0), 0);
		assert_int_equal(vb_msg_put_u64(&b, VB_TAG_VERSION, VB_PROTO_VERSION), 0);
		assert_int_equal(vb_msg_put_str(&b, VB_TAG_ALLOW, "sh"), 0);
		assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_SECRET, secret, bad_len[i]), 0);
		assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
		assert_boot_empty(&out);
	}
	/* a good secret followed by a bad one */
	boot_begin(&b);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_SECRET, secret, 5), 0);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_boot_empty(&out);

	/* missing, wrong and malformed version */
	assert_int_equal(vb_msg_begin(&b, VB_MSG_BOOT, 0, 0), 0);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_SECRET, secret, VB_SECRET_LEN), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ALLOW, "sh"), 0);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_boot_empty(&out);
	static const uint64_t bad_ver[] = { 0, VB_PROTO_VERSION - 1, VB_PROTO_VERSION + 1, UINT64_MAX,
					    (uint64_t)1 << 32 | VB_PROTO_VERSION };
	for (size_t i = 0; i < sizeof(bad_ver) / sizeof(bad_ver[0]); i++) {
		assert_int_equal(vb_msg_begin(&b, VB_MSG_BOOT, 0, 0), 0);
		assert_int_equal(vb_msg_put_u64(&b, VB_TAG_VERSION, bad_ver[i]), 0);
		assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_SECRET, secret, VB_SECRET_LEN), 0);
		put_mount(&b, "t", "/m", 1);
		assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
		assert_boot_empty(&out);
	}
	assert_int_equal(vb_msg_begin(&b, VB_MSG_BOOT, 0, 0), 0);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_VERSION, "\x01\x00\x00\x00", 4), 0);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_SECRET, secret, VB_SECRET_LEN), 0);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_boot_empty(&out);
	vb_buf_free(&b);
}

static void test_boot_reject_allow(void **state)
{
	(void)state;
	static const char *const bad[] = { "/bin/sh", "bin/sh", "sh/", "/", "" };
	struct vb_buf b = { 0 };
	struct vb_boot out;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		boot_begin(&b);
		assert_int_equal(vb_msg_put_str(&b, VB_TAG_ALLOW, "ok"), 0);
		assert_int_equal(vb_msg_put_str(&b, VB_TAG_ALLOW, bad[i]), 0);
		assert_int_equal(vb_msg_put_str(&b, VB_TAG_ALLOW, "never"), 0);
		put_mount(&b, "t", "/m", 0);
		assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
		assert_boot_empty(&out);
	}
	/* embedded NUL, and longer than 255 bytes */
	boot_begin(&b);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ALLOW, "ok"), 0);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_ALLOW, "s\0h", 3), 0);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_boot_empty(&out);
	char name[258];
	memset(name, 'n', sizeof(name));
	name[256] = '\0';
	boot_begin(&b);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ALLOW, name), 0);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_boot_empty(&out);
	name[255] = '\0';
	boot_begin(&b);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ALLOW, name), 0);
	assert_int_equal(boot_decode_buf(&b, &out), 0);
	assert_int_equal(out.n_allow, 1);
	assert_int_equal(strlen(out.allow[0]), 255);
	vb_boot_free(&out);
	vb_buf_free(&b);
}

static void test_boot_reject_mount(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_boot out;
	struct {
		const char *tag, *path;
		int ro;
	} bad[] = {
		{ "t", "relative", 0 }, { "t", "", 1 },    { "t", NULL, 0 },   { NULL, "/m", 0 },
		{ "", "/m", 0 },        { NULL, NULL, -1 }, { "t", "./m", -1 }, { "t", "/m", 2 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		boot_begin(&b);
		assert_int_equal(vb_msg_put_str(&b, VB_TAG_ALLOW, "sh"), 0);
		put_mount(&b, "good", "/good", 0);
		put_mount(&b, bad[i].tag, bad[i].path, bad[i].ro);
		put_mount(&b, "never", "/never", 0);
		assert_int_equal(vb_msg_put_str(&b, VB_TAG_HOSTNAME, "h"), 0);
		assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
		assert_boot_empty(&out);
	}

	/* malformed inside the nest, a bad RO size, over-long tag and path */
	boot_begin(&b);
	long off = vb_msg_nest_begin(&b, VB_TAG_MOUNT);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_MOUNT_TAG, "t"), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_MOUNT_PATH, "/p"), 0);
	put_raw_field(&b, VB_TAG_MOUNT_RO, 9, "\x01\x00\x00\x00\x00\x00\x00\x00", 8);
	assert_int_equal(vb_msg_nest_end(&b, off), 0);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_boot_empty(&out);

	boot_begin(&b);
	off = vb_msg_nest_begin(&b, VB_TAG_MOUNT);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_MOUNT_TAG, "t"), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_MOUNT_PATH, "/p"), 0);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_MOUNT_RO, "\x01", 1), 0);
	assert_int_equal(vb_msg_nest_end(&b, off), 0);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_boot_empty(&out);

	char tag[66];
	memset(tag, 't', sizeof(tag));
	tag[65] = '\0';
	boot_begin(&b);
	put_mount(&b, tag, "/p", 0);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_boot_empty(&out);
	tag[64] = '\0'; /* 64 bytes is the limit */
	boot_begin(&b);
	put_mount(&b, tag, "/p", 0);
	assert_int_equal(boot_decode_buf(&b, &out), 0);
	assert_int_equal(strlen(out.mounts[0].tag), 64);
	vb_boot_free(&out);

	char *path = malloc(VB_MAX_PATH + 2);
	assert_non_null(path);
	memset(path, 'p', VB_MAX_PATH + 1);
	path[0] = '/';
	path[VB_MAX_PATH + 1] = '\0';
	boot_begin(&b);
	put_mount(&b, "t", path, 0);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_boot_empty(&out);
	free(path);

	/* embedded NUL in the tag / path */
	boot_begin(&b);
	off = vb_msg_nest_begin(&b, VB_TAG_MOUNT);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_MOUNT_PATH, "/p"), 0);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_MOUNT_TAG, "a\0b", 3), 0);
	assert_int_equal(vb_msg_nest_end(&b, off), 0);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_boot_empty(&out);
	boot_begin(&b);
	off = vb_msg_nest_begin(&b, VB_TAG_MOUNT);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_MOUNT_TAG, "t"), 0);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_MOUNT_PATH, "/p\0", 3), 0);
	assert_int_equal(vb_msg_nest_end(&b, off), 0);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_boot_empty(&out);
	vb_buf_free(&b);
}

static void test_boot_mount_details(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_boot out;
	/* RO defaults to 1; the first TAG/PATH win; unknown nested tags skipped */
	boot_begin(&b);
	long off = vb_msg_nest_begin(&b, VB_TAG_MOUNT);
	assert_int_equal(vb_msg_put_u64(&b, 999, 1), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_MOUNT_PATH, "/first"), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_MOUNT_TAG, "one"), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_MOUNT_TAG, "two"), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_MOUNT_PATH, "/second"), 0);
	assert_int_equal(vb_msg_nest_end(&b, off), 0);
	put_mount(&b, "rw", "/rw", 0);
	assert_int_equal(vb_msg_put_bytes(&b, 0x7777, "\0\1\2", 3), 0); /* unknown: skipped */
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_ARG, 1), 0);           /* not a boot tag */
	put_mount(&b, "ro", "/ro", 1);
	assert_int_equal(boot_decode_buf(&b, &out), 0);
	assert_int_equal(out.n_mounts, 3);
	assert_string_equal(out.mounts[0].tag, "one");
	assert_string_equal(out.mounts[0].path, "/first");
	assert_int_equal(out.mounts[0].ro, 1);
	assert_int_equal(out.mounts[1].ro, 0);
	assert_int_equal(out.mounts[2].ro, 1);
	vb_boot_free(&out);
	vb_buf_free(&b);
}

static void test_boot_limits(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_boot out;
	char name[16];

	boot_begin(&b);
	for (unsigned i = 0; i < VB_MAX_ALLOW; i++) {
		snprintf(name, sizeof(name), "p%u", i);
		assert_int_equal(vb_msg_put_str(&b, VB_TAG_ALLOW, name), 0);
	}
	for (unsigned i = 0; i < VB_MAX_MOUNTS; i++)
		put_mount(&b, "t", "/m", 1);
	assert_int_equal(boot_decode_buf(&b, &out), 0);
	assert_int_equal(out.n_allow, VB_MAX_ALLOW);
	assert_int_equal(out.n_mounts, VB_MAX_MOUNTS);
	assert_true(vb_policy_allows(&out, "/usr/bin/p1023"));
	assert_false(vb_policy_allows(&out, "/usr/bin/p1024"));
	vb_boot_free(&out);

	boot_begin(&b);
	for (unsigned i = 0; i < VB_MAX_ALLOW + 1; i++)
		assert_int_equal(vb_msg_put_str(&b, VB_TAG_ALLOW, "x"), 0);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_boot_empty(&out);

	boot_begin(&b);
	for (unsigned i = 0; i < VB_MAX_MOUNTS + 1; i++)
		put_mount(&b, "t", "/m", 1);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_boot_empty(&out);
	vb_buf_free(&b);
}

static void put_forward(struct vb_buf *b, int with_port, uint64_t port, uint64_t kind)
{
	long off = vb_msg_nest_begin(b, VB_TAG_FORWARD);
	assert_true(off >= 0);
	if (with_port)
		assert_int_equal(vb_msg_put_u64(b, VB_TAG_FWD_PORT, port), 0);
	assert_int_equal(vb_msg_put_u64(b, VB_TAG_KIND, kind), 0);
	assert_int_equal(vb_msg_nest_end(b, off), 0);
}

/* Loopback forwards: encoded and decoded in order; a port out of range,
 * missing or twice, or more than VB_MAX_FORWARDS, is refused. */
static void test_boot_forwards(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_boot in = { 0 }, out;
	struct vb_boot_forward fw[] = { { .port = 7001, .kind = 0 }, { .port = 65535, .kind = 9 } };
	fill_secret(in.secret, 3);
	in.forwards = fw;
	in.n_forwards = 2;
	assert_int_equal(vb_boot_encode(&b, &in), 0);
	assert_int_equal(vb_boot_decode(b.data, b.len, &out), VB_ERR_NONE);
	assert_int_equal(out.n_forwards, 2);
	assert_int_equal(out.forwards[0].port, 7001);
	assert_int_equal(out.forwards[0].kind, 0);
	assert_int_equal(out.forwards[1].port, 65535);
	assert_int_equal(out.forwards[1].kind, 9);
	vb_boot_free(&out);

	static const uint64_t bad_port[] = { 0, 65536, UINT64_MAX };
	for (size_t i = 0; i < sizeof(bad_port) / sizeof(bad_port[0]); i++) {
		boot_begin(&b);
		put_forward(&b, 1, bad_port[i], 0);
		assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
		assert_boot_empty(&out);
	}
	boot_begin(&b);
	put_forward(&b, 0, 0, 1);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_boot_empty(&out);

	boot_begin(&b);
	put_forward(&b, 1, 80, 0);
	put_forward(&b, 1, 80, 1);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_boot_empty(&out);

	boot_begin(&b);
	for (unsigned i = 0; i < VB_MAX_FORWARDS; i++)
		put_forward(&b, 1, 1000 + i, i);
	assert_int_equal(boot_decode_buf(&b, &out), 0);
	assert_int_equal(out.n_forwards, VB_MAX_FORWARDS);
	vb_boot_free(&out);
	boot_begin(&b);
	for (unsigned i = 0; i < VB_MAX_FORWARDS + 1; i++)
		put_forward(&b, 1, 1000 + i, i);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_boot_empty(&out);
	vb_buf_free(&b);

	assert_string_equal(vb_msg_name(VB_MSG_STREAM_OPEN), "STREAM_OPEN");
	assert_string_equal(vb_msg_name(VB_MSG_STREAM_END), "STREAM_END");
	/* the channel's type masks hold stream types */
	assert_true(VB_MSG_STREAM_END < 64);
}

static void put_disk(struct vb_buf *b, uint64_t index, const char *path)
{
	long off = vb_msg_nest_begin(b, VB_TAG_DISK);
	assert_true(off >= 0);
	assert_int_equal(vb_msg_put_u64(b, VB_TAG_DISK_INDEX, index), 0);
	if (path)
		assert_int_equal(vb_msg_put_str(b, VB_TAG_DISK_PATH, path), 0);
	assert_int_equal(vb_msg_nest_end(b, off), 0);
}

/* The image root: ROOT_* and DISK round-trip; a disk index out of range, a
 * relative or ".." path, a disk twice (index or path), the root disk also
 * mounted, a bad env entry or user, more than VB_MAX_DISKS are refused. */
static void test_boot_root(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_boot in = { 0 }, out;
	char e0[] = "PATH=/usr/bin:/bin", e1[] = "A=", wd[] = "/app", user[] = "1234:0";
	char p1[] = "/skills/a", p2[] = "/skills/b";
	char *env[] = { e0, e1 };
	struct vb_boot_disk disks[] = { { 1, p1 }, { 3, p2 } };
	fill_secret(in.secret, 4);
	in.has_root = 1;
	in.root_disk = 0;
	in.root_env = env;
	in.n_root_env = 2;
	in.root_workdir = wd;
	in.root_user = user;
	in.disks = disks;
	in.n_disks = 2;
	assert_int_equal(vb_boot_encode(&b, &in), 0);
	assert_int_equal(vb_boot_decode(b.data, b.len, &out), VB_ERR_NONE);
	assert_true(out.has_root);
	assert_int_equal(out.root_disk, 0);
	assert_int_equal(out.n_root_env, 2);
	assert_string_equal(out.root_env[0], e0);
	assert_string_equal(out.root_env[1], e1);
	assert_string_equal(out.root_workdir, "/app");
	assert_string_equal(out.root_user, "1234:0");
	assert_int_equal(out.n_disks, 2);
	assert_int_equal(out.disks[1].index, 3);
	assert_string_equal(out.disks[1].path, "/skills/b");
	vb_boot_free(&out);

	/* no root: none of it */
	boot_begin(&b);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_NONE);
	assert_false(out.has_root);
	assert_null(out.root_env);
	assert_null(out.disks);
	vb_boot_free(&out);

	static const char *const bad_paths[] = { "rel", "/", "/a/../b", "/a/./b", "/..", "" };
	for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
		boot_begin(&b);
		put_disk(&b, 1, bad_paths[i]);
		assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
		assert_boot_empty(&out);
	}
	boot_begin(&b);
	put_disk(&b, VB_MAX_DISKS, "/x");
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	boot_begin(&b);
	put_disk(&b, 1, NULL);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	boot_begin(&b);
	put_disk(&b, 1, "/x");
	put_disk(&b, 1, "/y");
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	boot_begin(&b);
	put_disk(&b, 1, "/x");
	put_disk(&b, 2, "/x");
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	boot_begin(&b);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_ROOT_DISK, 1), 0);
	put_disk(&b, 1, "/x");
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_boot_empty(&out);
	boot_begin(&b);
	for (unsigned i = 0; i <= VB_MAX_DISKS; i++) {
		char p[16];
		snprintf(p, sizeof(p), "/d%u", i);
		put_disk(&b, i % VB_MAX_DISKS, p);
	}
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	boot_begin(&b);
	assert_int_equal(vb_msg_put_u64(&b, VB_TAG_ROOT_DISK, VB_MAX_DISKS), 0);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);

	static const char *const bad_env[] = { "NOEQUALS", "=v", "" };
	for (size_t i = 0; i < sizeof(bad_env) / sizeof(bad_env[0]); i++) {
		boot_begin(&b);
		assert_int_equal(vb_msg_put_str(&b, VB_TAG_ROOT_ENV, bad_env[i]), 0);
		assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
		assert_null(out.root_env);
	}
	static const char *const bad_user[] = { "", "a b", ":1", "1:", "1:2:3", "a\x1b[0m" };
	for (size_t i = 0; i < sizeof(bad_user) / sizeof(bad_user[0]); i++) {
		boot_begin(&b);
		assert_int_equal(vb_msg_put_str(&b, VB_TAG_ROOT_USER, bad_user[i]), 0);
		assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
		assert_null(out.root_user);
	}
	boot_begin(&b);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ROOT_WORKDIR, "app"), 0);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	vb_buf_free(&b);
}

/* EXEC's USER and DEFAULT_USER. */
static void test_exec_user(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	char a0[] = "id", user[] = "app:staff";
	char *argv[] = { a0, NULL };
	struct vb_exec_req in = { .argv = argv, .argc = 1, .user = user, .default_user = 1 }, out;
	assert_int_equal(vb_exec_req_encode(&b, 7, &in), 0);
	assert_int_equal(vb_exec_req_decode(b.data + VB_FRAME_HDR_LEN, b.len - VB_FRAME_HDR_LEN, &out),
			 VB_ERR_NONE);
	assert_string_equal(out.user, "app:staff");
	assert_int_equal(out.default_user, 1);
	vb_exec_req_free(&out);
	char bad[] = "a b";
	in.user = bad;
	assert_int_equal(vb_exec_req_encode(&b, 7, &in), 0);
	assert_int_equal(vb_exec_req_decode(b.data + VB_FRAME_HDR_LEN, b.len - VB_FRAME_HDR_LEN, &out),
			 VB_ERR_INVAL);
	assert_null(out.user);
	vb_buf_free(&b);
}

static void test_boot_reject_scalars(void **state)
{
	(void)state;
	static const uint16_t tags[] = { VB_TAG_RLIMIT_NOFILE, VB_TAG_RLIMIT_NPROC, VB_TAG_RLIMIT_FSIZE };
	struct vb_buf b = { 0 };
	struct vb_boot out;
	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		boot_begin(&b);
		assert_int_equal(vb_msg_put_str(&b, VB_TAG_ALLOW, "sh"), 0);
		put_mount(&b, "t", "/m", 0);
		assert_int_equal(vb_msg_put_bytes(&b, tags[i], "\x01\x02\x03\x04", 4), 0);
		assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
		assert_boot_empty(&out);
	}
	/* hostname: too long, NUL, and a replaced one (no leak) */
	char host[66];
	memset(host, 'h', sizeof(host));
	host[65] = '\0';
	boot_begin(&b);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_HOSTNAME, "first"), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_HOSTNAME, host), 0);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_boot_empty(&out);
	boot_begin(&b);
	assert_int_equal(vb_msg_put_bytes(&b, VB_TAG_HOSTNAME, "a\0b", 3), 0);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_INVAL);
	assert_boot_empty(&out);
	host[64] = '\0';
	boot_begin(&b);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_HOSTNAME, "first"), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_HOSTNAME, host), 0);
	assert_int_equal(boot_decode_buf(&b, &out), 0);
	assert_string_equal(out.hostname, host);
	vb_boot_free(&out);
	/* a malformed payload after allocations */
	boot_begin(&b);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ALLOW, "sh"), 0);
	put_raw_field(&b, VB_TAG_HOSTNAME, 50, "abc", 3);
	assert_int_equal(boot_decode_buf(&b, &out), VB_ERR_PROTO);
	assert_boot_empty(&out);
	vb_buf_free(&b);
}

static void test_boot_free_idempotent(void **state)
{
	(void)state;
	struct vb_boot z;
	memset(&z, 0, sizeof(z));
	vb_boot_free(&z); /* a zeroed struct */
	vb_boot_free(&z); /* twice */
	assert_boot_empty(&z);
	struct vb_exec_req r;
	memset(&r, 0, sizeof(r));
	vb_exec_req_free(&r);
	vb_exec_req_free(&r);
	assert_req_empty(&r);
}

/* ---- policy ------------------------------------------------------------ */

static void test_policy(void **state)
{
	(void)state;
	struct vb_boot none;
	memset(&none, 0, sizeof(none));
	assert_true(vb_policy_allows(&none, "/bin/sh"));
	assert_true(vb_policy_allows(&none, "anything"));
	assert_true(vb_policy_allows(&none, ""));

	char a0[] = "sh", a1[] = "python3";
	char *allow[] = { a0, a1 };
	struct vb_boot p;
	memset(&p, 0, sizeof(p));
	p.allow = allow;
	p.n_allow = 2;
	assert_true(vb_policy_allows(&p, "sh"));
	assert_true(vb_policy_allows(&p, "/bin/sh"));
	assert_true(vb_policy_allows(&p, "/usr/local/bin/python3"));
	assert_true(vb_policy_allows(&p, "./sh"));
	assert_true(vb_policy_allows(&p, "//sh"));
	assert_false(vb_policy_allows(&p, "shx"));
	assert_false(vb_policy_allows(&p, "/bin/shx"));
	assert_false(vb_policy_allows(&p, "s"));
	assert_false(vb_policy_allows(&p, "xsh"));
	assert_false(vb_policy_allows(&p, "SH"));
	assert_false(vb_policy_allows(&p, "python"));
	assert_false(vb_policy_allows(&p, "sh/"));     /* basename is "" */
	assert_false(vb_policy_allows(&p, "/bin/sh/")); /* basename is "" */
	assert_false(vb_policy_allows(&p, "/"));
	assert_false(vb_policy_allows(&p, ""));
	assert_false(vb_policy_allows(&p, "bash"));

	/* an allowlist that is present but empty denies everything */
	char *empty_list[1] = { NULL };
	struct vb_boot e;
	memset(&e, 0, sizeof(e));
	e.allow = empty_list;
	e.n_allow = 0;
	assert_false(vb_policy_allows(&e, "sh"));
	assert_false(vb_policy_allows(&e, ""));
}

static void test_policy_decoded(void **state)
{
	(void)state;
	struct vb_buf b = { 0 };
	struct vb_boot out;
	boot_begin(&b);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ALLOW, "sh"), 0);
	assert_int_equal(vb_msg_put_str(&b, VB_TAG_ALLOW, "env"), 0);
	assert_int_equal(boot_decode_buf(&b, &out), 0);
	assert_true(vb_policy_allows(&out, "/bin/sh"));
	assert_true(vb_policy_allows(&out, "/usr/bin/env"));
	assert_false(vb_policy_allows(&out, "/bin/shx"));
	assert_false(vb_policy_allows(&out, ""));
	vb_boot_free(&out);
	vb_buf_free(&b);
}

/* ---- secrets and names ------------------------------------------------- */

static void test_secret_equal(void **state)
{
	(void)state;
	uint8_t a[VB_SECRET_LEN], b[VB_SECRET_LEN];
	fill_secret(a, 17);
	memcpy(b, a, sizeof(a));
	assert_int_equal(vb_secret_equal(a, b), 1);
	assert_int_equal(vb_secret_equal(a, a), 1);
	b[0] ^= 1;
	assert_int_equal(vb_secret_equal(a, b), 0);
	b[0] ^= 1;
	b[VB_SECRET_LEN - 1] ^= 0x80;
	assert_int_equal(vb_secret_equal(a, b), 0);
	b[VB_SECRET_LEN - 1] ^= 0x80;
	for (size_t i = 0; i < VB_SECRET_LEN; i++) {
		b[i] ^= 0xff;
		assert_int_equal(vb_secret_equal(a, b), 0);
		b[i] ^= 0xff;
	}
	assert_int_equal(vb_secret_equal(a, b), 1);
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	assert_int_equal(vb_secret_equal(a, b), 1);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(vb_msg_name(VB_MSG_HELLO), "HELLO");
	assert_string_equal(vb_msg_name(VB_MSG_EXEC), "EXEC");
	assert_string_equal(vb_msg_name(VB_MSG_BOOT), "BOOT");
	assert_string_equal(vb_msg_name(VB_MSG_EXEC_RESIZE), "EXEC_RESIZE");
	assert_string_equal(vb_msg_name(VB_MSG_NET_DOWN), "NET_DOWN");
	assert_string_equal(vb_msg_name(VB_MSG_UNMOUNT), "UNMOUNT");
	assert_string_equal(vb_msg_name(0), "?");
	assert_string_equal(vb_msg_name(0xffff), "?");
	for (unsigned t = 0; t <= 0xffff; t++)
		assert_non_null(vb_msg_name((uint16_t)t));
	assert_string_equal(vb_err_name(VB_ERR_NONE), "ok");
	assert_string_equal(vb_err_name(VB_ERR_PROTO), "protocol error");
	assert_string_equal(vb_err_name(-1), "?");
	assert_string_equal(vb_err_name(1000), "?");
	for (int c = VB_ERR_NONE; c <= VB_ERR_ROFS; c++)
		assert_string_not_equal(vb_err_name(c), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hdr_roundtrip),
		cmocka_unit_test(test_rekey),
		cmocka_unit_test(test_mount_req),
		cmocka_unit_test(test_fwd_req),
		cmocka_unit_test(test_hdr_len_limit),
		cmocka_unit_test(test_reader_empty),
		cmocka_unit_test(test_reader_truncated_header),
		cmocka_unit_test(test_reader_len_past_end),
		cmocka_unit_test(test_reader_zero_length_fields),
		cmocka_unit_test(test_reader_unknown_tags_skipped),
		cmocka_unit_test(test_reader_nested),
		cmocka_unit_test(test_field_u64),
		cmocka_unit_test(test_field_strdup),
		cmocka_unit_test(test_msg_roundtrip),
		cmocka_unit_test(test_msg_end_patches_length),
		cmocka_unit_test(test_msg_too_big_sticks),
		cmocka_unit_test(test_msg_exact_max),
		cmocka_unit_test(test_msg_nest_errors),
		cmocka_unit_test(test_exec_roundtrip),
		cmocka_unit_test(test_exec_roundtrip_minimal),
		cmocka_unit_test(test_exec_defaults),
		cmocka_unit_test(test_exec_reject_no_arg),
		cmocka_unit_test(test_exec_reject_empty_argv0),
		cmocka_unit_test(test_exec_reject_env),
		cmocka_unit_test(test_exec_reject_cwd),
		cmocka_unit_test(test_exec_reject_ids),
		cmocka_unit_test(test_exec_reject_int_size),
		cmocka_unit_test(test_exec_limits),
		cmocka_unit_test(test_exec_reject_arg_nul),
		cmocka_unit_test(test_exec_malformed),
		cmocka_unit_test(test_exec_error_after_allocations),
		cmocka_unit_test(test_exec_pty_roundtrip),
		cmocka_unit_test(test_exec_reject_pty),
		cmocka_unit_test(test_resize),
		cmocka_unit_test(test_boot_roundtrip),
		cmocka_unit_test(test_boot_minimal),
		cmocka_unit_test(test_boot_empty_allowlist_fails_closed),
		cmocka_unit_test(test_boot_reject_frame),
		cmocka_unit_test(test_boot_reject_secret_version),
		cmocka_unit_test(test_boot_reject_allow),
		cmocka_unit_test(test_boot_reject_mount),
		cmocka_unit_test(test_boot_mount_details),
		cmocka_unit_test(test_boot_limits),
		cmocka_unit_test(test_boot_forwards),
		cmocka_unit_test(test_boot_reject_scalars),
		cmocka_unit_test(test_boot_root),
		cmocka_unit_test(test_exec_user),
		cmocka_unit_test(test_boot_free_idempotent),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_policy_decoded),
		cmocka_unit_test(test_secret_equal),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
