/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Outputs in files.  What a guest writes (its stdout, its output_file, a
 * fan-out's array of them) goes straight to files under the run's work
 * directory and is read back in bounded pieces: the host holds a preview
 * and a few buffers per box, whatever the guests write and however wide
 * the fan-out.  The run's output budget and the fan-out carry cap bound
 * the disk those files take.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run/engine.h"
#include "util/term.h"
#include "util/util.h"

#define COPY_CHUNK ((size_t)64 << 10)

int vb_run_work_open(struct vb_run *r, vb_error *err)
{
	if (r->rec) {
		r->work_dir = strdup(vb_record_dir(r->rec));
		if (!r->work_dir)
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return 0;
	}
	const char *tmp = getenv("TMPDIR");
	_cleanup_free_ char *tpl = vb_strfmt("%s/voidbox-run-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	if (!tpl)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (!mkdtemp(tpl))
		return vb_error_errno(err, errno, "cannot create a directory for the run's outputs");
	r->work_dir = tpl;
	tpl = NULL;
	r->work_tmp = 1;
	return 0;
}

/* A name that is safe as one directory component. */
static int name_ok(const char *s)
{
	if (!s || !s[0] || s[0] == '.' || strlen(s) > 64)
		return 0;
	for (; *s; s++)
		if (*s == '/' || (unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

int vb_run_unit_files(struct vb_run *r, struct vb_run_unit *u, vb_error *err)
{
	size_t k = (size_t)(u - r->units);
	free(u->dir);
	u->dir = name_ok(u->name) ? vb_strfmt("%s/stages/%s", r->work_dir, u->name)
				  : vb_strfmt("%s/stages/unit-%zu", r->work_dir, k);
	free(u->out_path);
	u->out_path = u->dir ? vb_strfmt("%s/stdout.carry", u->dir) : NULL;
	if (!u->out_path)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (vb_mkdir_p(u->dir, 0700, err) < 0)
		return -1;
	u->out_fd = open(u->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (u->out_fd < 0)
		return vb_error_errno(err, errno, "cannot create %s", u->out_path);
	u->out_len = 0;
	return 0;
}

static uint64_t budget(const struct vb_run *r)
{
	return r->opts.output_budget ? r->opts.output_budget : VB_RUN_OUTPUT_BUDGET;
}

int vb_run_budget_take(struct vb_run *r, uint64_t n)
{
	uint64_t cur = atomic_load(&r->output_used);
	do {
		if (n > budget(r) || cur > budget(r) - n)
			return -1;
	} while (!atomic_compare_exchange_weak(&r->output_used, &cur, cur + n));
	return 0;
}

void vb_run_budget_give(struct vb_run *r, uint64_t n)
{
	atomic_fetch_sub(&r->output_used, n);
}

/* Sizes as the user gave them: whole MiB when they are. */
static void fmt_size(uint64_t b, char *buf, size_t size)
{
	if (b % (1u << 20) == 0)
		snprintf(buf, size, "%llu MiB", (unsigned long long)(b >> 20));
	else
		snprintf(buf, size, "%llu bytes", (unsigned long long)b);
}

void vb_run_budget_msg(const struct vb_run *r, char *buf, size_t size)
{
	char b[48];
	fmt_size(budget(r), b, sizeof(b));
	snprintf(buf, size,
		 "the run's output budget of %s is used up (its boxes' outputs in all; raise it "
		 "with --output-budget, or write large results to a named output)",
		 b);
}

/* The length of (p, n) cut so that it does not end inside a UTF-8
 * sequence (text that is not UTF-8 is cut anywhere). */
static size_t utf8_cut(const uint8_t *p, size_t n)
{
	size_t i = n, back = 0;
	while (i > 0 && back < 3 && (p[i - 1] & 0xC0) == 0x80)
		i--, back++;
	if (i == 0)
		return n;
	uint8_t c = p[i - 1];
	size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
	return want > back + 1 ? i - 1 : n;
}

uint8_t *vb_run_preview(const char *path, size_t max, size_t *len)
{
	uint8_t *buf = malloc(max + 1);
	if (!buf)
		return NULL;
	ssize_t n = 0;
	int fd = path ? open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
	if (fd >= 0) {
		/* one byte more tells whether there is more than (max) */
		uint8_t extra;
		n = vb_read_full(fd, buf, max);
		if (n < 0)
			n = 0;
		if ((size_t)n == max && read(fd, &extra, 1) == 1)
			n = (ssize_t)utf8_cut(buf, (size_t)n);
		close(fd);
	}
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

int vb_run_unit_settle(struct vb_run *r, struct vb_run_unit *u, const char *output_path,
		       uint64_t output_len, vb_error *err)
{
	(void)r;
	if (u->out_fd >= 0) {
		close(u->out_fd);
		u->out_fd = -1;
	}
	free(u->output_path);
	u->output_path = NULL;
	if (output_path) {
		u->output_path = strdup(output_path);
		u->output_len = output_len;
	} else if (u->out_path) {
		/* the stdout is the output: one file, under the record's name */
		char *to = vb_strfmt("%s/output", u->dir);
		if (!to)
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		if (rename(u->out_path, to) < 0) {
			int e = errno;
			free(to);
			return vb_error_errno(err, e, "cannot keep the output of '%s'", u->name);
		}
		free(u->out_path);
		u->out_path = strdup(to);
		u->output_path = to;
		u->output_len = u->out_len;
	}
	if ((output_path || u->out_path) && !u->output_path)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	free(u->preview);
	u->preview = vb_run_preview(u->output_path, VB_RUN_PREVIEW_MAX, &u->preview_len);
	if (!u->preview)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	return 0;
}

/* ---- the fan-out array, streamed ---- */

struct jw {
	FILE *f;
	uint64_t max;
	int over;
};

static int jw_put(struct jw *w, const void *p, size_t n)
{
	if (w->over || fwrite(p, 1, n, w->f) != n)
		return -1;
	long long at = ftello(w->f);
	if (at < 0 || (uint64_t)at > w->max) {
		w->over = at >= 0;
		return -1;
	}
	return 0;
}


/* Escape (p, n) as JSON string content into (w); returns how many bytes
 * were consumed (a sequence cut by the end waits for more unless (last)). */
static size_t escape_into(struct jw *w, const uint8_t *p, size_t n, int last, int *failed)
{
	char out[16 << 10];
	size_t o = 0, i = 0;
	while (i < n) {
		if (o > sizeof(out) - 16) {
			if (jw_put(w, out, o) < 0)
				goto fail;
			o = 0;
		}
		uint8_t c = p[i];
		int k = vb_utf8_seq(p + i, n - i); /* -1: cut by the end */
		if (k < 0 && !last)
			break;
		if (k <= 0) {
			memcpy(out + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		} else if (k > 1) {
			memcpy(out + o, p + i, (size_t)k);
			o += (size_t)k;
			i += (size_t)k;
		} else {
			i++;
			switch (c) {
			case '"': memcpy(out + o, "\\\"", 2), o += 2; break;
			case '\\': memcpy(out + o, "\\\\", 2), o += 2; break;
			case '\n': memcpy(out + o, "\\n", 2), o += 2; break;
			case '\r': memcpy(out + o, "\\r", 2), o += 2; break;
			case '\t': memcpy(out + o, "\\t", 2), o += 2; break;
			case '\b': memcpy(out + o, "\\b", 2), o += 2; break;
			case '\f': memcpy(out + o, "\\f", 2), o += 2; break;
			default:
				if (c < 0x20)
					o += (size_t)snprintf(out + o, 7, "\\u%04X", c); /* as jansson */
				else
					out[o++] = (char)c;
			}
		}
	}
	if (o && jw_put(w, out, o) < 0)
		goto fail;
	return i;
fail:
	*failed = 1;
	return n;
}

/* One output as a JSON string, read from its file in pieces. */
static int put_string(struct jw *w, const char *path)
{
	_cleanup_free_ uint8_t *buf = malloc(COPY_CHUNK + 4);
	int fd = path ? open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
	int failed = 0;
	if (!buf || jw_put(w, "\"", 1) < 0)
		failed = 1;
	size_t have = 0; /* a cut sequence kept from the last piece */
	while (!failed && fd >= 0) {
		ssize_t n = vb_read_full(fd, buf + have, COPY_CHUNK);
		if (n < 0) {
			failed = 1;
			break;
		}
		size_t len = have + (size_t)n;
		size_t used = escape_into(w, buf, len, n == 0, &failed);
		have = len - used;
		memmove(buf, buf + used, have);
		if (n == 0)
			break;
	}
	if (fd >= 0)
		close(fd);
	if (!failed && jw_put(w, "\"", 1) < 0)
		failed = 1;
	return failed ? -1 : 0;
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
	return jw_put(data, buffer, size);
}

/* A large JSON output, compact: its bytes without the whitespace between
 * tokens, read in pieces (vb_run_json_file_ok said it is JSON). */
static int put_json_stream(struct jw *w, const char *path)
{
	_cleanup_free_ uint8_t *in = malloc(COPY_CHUNK);
	_cleanup_free_ uint8_t *out = malloc(COPY_CHUNK);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int str = 0, esc = 0, rc = in && out && fd >= 0 ? 0 : -1;
	ssize_t n = 0;
	while (rc == 0 && (n = vb_read_full(fd, in, COPY_CHUNK)) > 0) {
		size_t o = 0;
		for (ssize_t i = 0; i < n; i++) {
			uint8_t c = in[i];
			if (str) {
				if (esc)
					esc = 0;
				else if (c == '\\')
					esc = 1;
				else if (c == '"')
					str = 0;
			} else if (c == '"') {
				str = 1;
			} else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
				continue;
			}
			out[o++] = c;
		}
		if (o && jw_put(w, out, o) < 0)
			rc = -1;
	}
	if (n < 0)
		rc = -1;
	if (fd >= 0)
		close(fd);
	return rc;
}

/* An output that is JSON by itself, as that value: 1 if it was, 0 if not
 * (nothing written), -1 on failure. */
static int put_json(struct jw *w, const struct vb_run_unit *u)
{
	if (!u->output_len)
		return 0;
	if (u->output_len > VB_RUN_JSON_EMBED_MAX) {
		if (!vb_run_json_file_ok(u->output_path))
			return 0;
		return put_json_stream(w, u->output_path) < 0 ? -1 : 1;
	}
	size_t len = 0;
	vb_error ignore;
	_cleanup_free_ char *text = vb_read_file(u->output_path, VB_RUN_JSON_EMBED_MAX, &len, &ignore);
	if (!text)
		return 0;
	json_error_t jerr;
	json_t *v = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
	if (!v)
		return 0;
	int rc = json_dump_callback(v, dump_cb, w, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(v);
	return rc < 0 ? -1 : 1;
}

int vb_run_fan_carry(struct vb_run *r, const struct vb_run_unit *units, size_t n,
		     const char *path, uint64_t *len, vb_error *err)
{
	struct jw w = { .max = r->opts.carry_max ? r->opts.carry_max : VB_RUN_CARRY_MAX };
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || !(w.f = fdopen(fd, "w"))) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return vb_error_errno(err, e, "cannot create %s", path);
	}
	int rc = jw_put(&w, "[", 1);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (i && jw_put(&w, ",", 1) < 0) {
			rc = -1;
			break;
		}
		int j = put_json(&w, &units[i]);
		if (j == 0)
			rc = put_string(&w, units[i].output_path);
		else if (j < 0)
			rc = -1;
	}
	if (rc == 0)
		rc = jw_put(&w, "]", 1);
	long long size = ftello(w.f);
	if (fclose(w.f) != 0 && rc == 0)
		rc = -1;
	if (w.over) {
		unlink(path);
		char b[48];
		fmt_size(w.max, b, sizeof(b));
		vb_error_set(err, VB_E_OK,
			     "its boxes' outputs as one JSON array would be larger than %s, the most "
			     "a fan-out can carry to the next stage (write large results to a named "
			     "output)",
			     b);
		return 1;
	}
	if (rc < 0) {
		int e = errno ? errno : EIO;
		unlink(path);
		return vb_error_errno(err, e, "cannot write the fan-out's output to %s", path);
	}
	*len = size > 0 ? (uint64_t)size : 0;
	return 0;
}
