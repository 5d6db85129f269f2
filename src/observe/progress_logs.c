/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What stages print, as the progress display uses it: the tail of each
 * stage's stderr, shown with the `voidbox logs` command when the stage
 * failed, and with --follow every line as it comes, prefixed by its stage.
 * Everything printed goes through vb_term_copy (util/term.h): guest output reaches
 * the terminal without control sequences.
 */
#include <stdlib.h>
#include <string.h>

#include "observe/observe.h"
#include "observe/progress_int.h"
#include "util/term.h"

static int name_width(const struct vb_progress *p)
{
	int w = 4;
	for (size_t i = 0; i < p->n_rows; i++) {
		int n = (int)strlen(p->rows[i].name);
		w = n > w ? n : w;
	}
	return w > 24 ? 24 : w;
}

/* On a terminal, followed lines scroll above the frame: take the frame
 * away before the first of them; the caller draws it again below. */
static void clear_frame(struct vb_progress *p)
{
	if (p->tty && p->drawn > 0)
		fprintf(p->out, "\r\033[%dA\033[J", p->drawn);
	p->drawn = 0;
	p->lines_printed = 1;
}

static void print_line(struct vb_progress *p, const struct vb_prow *r, const char *s, size_t n)
{
	char raw[VB_PROGRESS_PART_MAX + 1], safe[VB_PROGRESS_PART_MAX * 3 + 1];
	clear_frame(p);
	if (n > VB_PROGRESS_PART_MAX)
		n = VB_PROGRESS_PART_MAX;
	memcpy(raw, s, n);
	raw[n] = '\0';
	if (n && raw[n - 1] == '\r')
		raw[n - 1] = '\0';
	vb_term_copy(safe, sizeof(safe), raw, 0);
	fprintf(p->out, "%-*s | %s\n", name_width(p), r->name, safe);
}

static void follow(struct vb_progress *p, struct vb_prow *r, int k, const uint8_t *d, size_t n)
{
	if (!r->part[k] && !(r->part[k] = malloc(VB_PROGRESS_PART_MAX)))
		return;
	for (size_t i = 0; i < n; i++) {
		if (d[i] == '\n' || r->part_len[k] == VB_PROGRESS_PART_MAX) {
			print_line(p, r, r->part[k], r->part_len[k]);
			r->part_len[k] = 0;
			if (d[i] == '\n')
				continue;
		}
		r->part[k][r->part_len[k]++] = (char)d[i];
	}
	fflush(p->out);
}

static void keep_tail(struct vb_prow *r, const uint8_t *d, size_t n)
{
	if (!r->tail && !(r->tail = malloc(VB_PROGRESS_TAIL_MAX)))
		return;
	if (n >= VB_PROGRESS_TAIL_MAX) {
		memcpy(r->tail, d + n - VB_PROGRESS_TAIL_MAX, VB_PROGRESS_TAIL_MAX);
		r->tail_len = VB_PROGRESS_TAIL_MAX;
		return;
	}
	if (r->tail_len + n > VB_PROGRESS_TAIL_MAX) {
		size_t drop = r->tail_len + n - VB_PROGRESS_TAIL_MAX;
		memmove(r->tail, r->tail + drop, r->tail_len - drop);
		r->tail_len -= drop;
	}
	memcpy(r->tail + r->tail_len, d, n);
	r->tail_len += n;
}

void vb_progress_chunk(struct vb_progress *p, struct vb_prow *r, const struct vb_event *ev)
{
	if (!r || !ev->data || !ev->len)
		return;
	int k = ev->stream && !strcmp(ev->stream, "stderr");
	r->saw[k] = 1;
	if (k)
		keep_tail(r, ev->data, ev->len);
	if (p->follow)
		follow(p, r, k, ev->data, ev->len);
}

void vb_progress_says(struct vb_progress *p, struct vb_prow *r, const char *text)
{
	if (!r || !text)
		return;
	while (*text) {
		size_t n = strcspn(text, "\n");
		print_line(p, r, text, n);
		text += n + (text[n] == '\n');
	}
	fflush(p->out);
}

void vb_progress_flush(struct vb_progress *p, struct vb_prow *r)
{
	for (int k = 0; r && p->follow && k < 2; k++) {
		if (r->part_len[k])
			print_line(p, r, r->part[k], r->part_len[k]);
		r->part_len[k] = 0;
	}
}

static int blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return 0;
	return 1;
}

/* The last VB_PROGRESS_TAIL_LINES non-blank lines of the tail. */
static void print_tail(struct vb_progress *p, const struct vb_prow *r)
{
	const char *t = r->tail;
	size_t n = r->tail_len, b = 0, count = 0;
	struct { size_t at, len; } ring[VB_PROGRESS_TAIL_LINES];
	if (n == VB_PROGRESS_TAIL_MAX) { /* cut: the first line is partial */
		const char *nl = memchr(t, '\n', n);
		b = nl ? (size_t)(nl - t) + 1 : n;
	}
	while (b < n) {
		const char *nl = memchr(t + b, '\n', n - b);
		size_t e = nl ? (size_t)(nl - t) : n;
		if (!blank(t + b, e - b)) {
			ring[count % VB_PROGRESS_TAIL_LINES].at = b;
			ring[count % VB_PROGRESS_TAIL_LINES].len = e - b;
			count++;
		}
		b = e + 1;
	}
	for (size_t i = count > VB_PROGRESS_TAIL_LINES ? count - VB_PROGRESS_TAIL_LINES : 0; i < count; i++) {
		char raw[201], safe[sizeof(raw) * 3];
		size_t len = ring[i % VB_PROGRESS_TAIL_LINES].len;
		len = len > 200 ? 200 : len;
		memcpy(raw, t + ring[i % VB_PROGRESS_TAIL_LINES].at, len);
		raw[len] = '\0';
		vb_term_copy(safe, sizeof(safe), raw, 0);
		fprintf(p->out, "  | %s\n", safe);
	}
}

void vb_progress_failures(struct vb_progress *p)
{
	if (p->run == PR_CANCELLED) /* the user stopped it: nothing to explain */
		return;
	for (size_t i = 0; i < p->n_rows; i++) {
		const struct vb_prow *r = &p->rows[i];
		if (r->st != P_FAILED)
			continue;
		/* following, the lines were shown as they came */
		if (r->tail_len && !p->follow) {
			fprintf(p->out, "%s: the last lines of its stderr:\n", r->name);
			print_tail(p, r);
		}
		if (!p->run_id[0])
			continue;
		if (r->saw[1])
			fprintf(p->out, "%s: all of it: voidbox logs %s --stage %s --stderr\n", r->name,
				p->run_id, r->name);
		else if (r->saw[0])
			fprintf(p->out, "%s: its output: voidbox logs %s --stage %s\n", r->name,
				p->run_id, r->name);
		else
			fprintf(p->out, "%s: what happened: voidbox logs %s\n", r->name, p->run_id);
	}
	fflush(p->out);
}

void vb_progress_rows_free(struct vb_progress *p)
{
	for (size_t i = 0; i < p->n_rows; i++) {
		free(p->rows[i].tail);
		free(p->rows[i].part[0]);
		free(p->rows[i].part[1]);
	}
}
