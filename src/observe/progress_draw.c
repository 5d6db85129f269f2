/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rendering the progress display: a frame of one header line plus one line
 * per stage, redrawn in place on a terminal (cursor up over the previous
 * frame, each line cleared to its end); plain lines otherwise.  Lines are
 * cut to the terminal width so that none wraps and the cursor arithmetic
 * stays right; a frame taller than the terminal folds finished stages.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "observe/observe.h"
#include "observe/progress_int.h"
#include "util/term.h"

#define LINE_MAX_BYTES 1024

/* A frame being built: every line of it, then one fwrite. */
struct frame {
	char *buf;
	size_t len, cap;
	int oom;
};

static void f_put(struct frame *f, const char *s, size_t n)
{
	if (f->oom)
		return;
	if (f->len + n + 1 > f->cap) {
		size_t ncap = f->cap ? f->cap : 4096;
		while (ncap < f->len + n + 1)
			ncap *= 2;
		char *nb = realloc(f->buf, ncap);
		if (!nb) {
			f->oom = 1;
			return;
		}
		f->buf = nb;
		f->cap = ncap;
	}
	memcpy(f->buf + f->len, s, n);
	f->len += n;
	f->buf[f->len] = '\0';
}

/* One line with a column budget: text counts one column per character
 * (everything shown is single-width), color codes count none. */
struct line {
	char buf[LINE_MAX_BYTES];
	size_t len;
	int cols, max_cols, color, colored;
};

static void l_text(struct line *l, const char *s)
{
	for (const unsigned char *u = (const unsigned char *)s; *u;) {
		size_t n = *u < 0x80 ? 1 : *u >= 0xf0 ? 4 : *u >= 0xe0 ? 3 : 2;
		if (l->cols >= l->max_cols || l->len + n + 16 >= sizeof(l->buf))
			return;
		if (strnlen((const char *)u, n) < n)
			return;
		memcpy(l->buf + l->len, u, n);
		l->len += n;
		l->cols++;
		u += n;
	}
}

static void l_fmt(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void l_fmt(struct line *l, const char *fmt, ...)
{
	char tmp[LINE_MAX_BYTES];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	l_text(l, tmp);
}

/* SGR (sgr) on, or off with NULL; nothing without color. */
static void l_sgr(struct line *l, const char *sgr)
{
	if (!l->color || l->len + 12 >= sizeof(l->buf))
		return;
	if (!sgr && !l->colored)
		return;
	int n = snprintf(l->buf + l->len, sizeof(l->buf) - l->len, "\033[%sm", sgr ? sgr : "0");
	l->len += (size_t)n;
	l->colored = sgr != NULL;
}

static void l_pad(struct line *l, int to_col)
{
	while (l->cols < to_col && l->cols < l->max_cols)
		l_text(l, " ");
}

static const char *state_word(enum vb_pstate st)
{
	static const char *const words[] = { "queued", "booting", "running", "done", "failed", "skipped" };
	return words[st];
}

static const char *state_sgr(enum vb_pstate st)
{
	static const char *const sgr[] = { "2", "33", "36", "32", "31", "2" };
	return sgr[st];
}

static const char *glyph(const struct vb_progress *p, enum vb_pstate st)
{
	static const char *const spin_u[] = { "⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏" };
	static const char *const spin_a[] = { "|", "/", "-", "\\" };
	switch (st) {
	case P_QUEUED: return p->utf8 ? "·" : ".";
	case P_BOOTING:
	case P_RUNNING: return p->utf8 ? spin_u[p->tick % 10] : spin_a[p->tick % 4];
	case P_DONE: return p->utf8 ? "✓" : "+";
	case P_FAILED: return p->utf8 ? "✗" : "x";
	case P_SKIPPED: return "-";
	}
	return "?";
}

/* (mark): say "restored" in it (the frame, which has no room for how) */
static void vm_desc(const struct vb_prow *r, int mark, char *buf, size_t size)
{
	if (!r->vm_id[0]) {
		buf[0] = '\0';
	} else if (r->accel[0] && r->isolation[0]) {
		snprintf(buf, size, "%s (%s, %s%s)", r->vm_id, r->accel, r->isolation,
			 mark && r->restored ? ", restored" : "");
	} else if (r->accel[0]) {
		snprintf(buf, size, "%s (%s)", r->vm_id, r->accel);
	} else {
		snprintf(buf, size, "%s", r->vm_id);
	}
}

static int64_t row_elapsed(const struct vb_prow *r, int64_t now)
{
	switch (r->st) {
	case P_BOOTING:
	case P_RUNNING: return r->started_ms && now > r->started_ms ? now - r->started_ms : 0;
	case P_DONE:
	case P_FAILED: return r->duration_ms;
	default: return -1;
	}
}

static void failure_text(const struct vb_prow *r, char *buf, size_t size)
{
	if (r->why[0])
		snprintf(buf, size, "%s", r->why);
	else if (r->exit_code >= 0)
		snprintf(buf, size, "exit code %d", r->exit_code);
	else
		buf[0] = '\0';
}

/* Where a row sits in its fan-out group: 0 alone, 1 first, 2 middle, 3 last. */
static int group_pos(const struct vb_progress *p, size_t i)
{
	unsigned g = p->rows[i].group;
	int prev = i > 0 && p->rows[i - 1].group == g;
	int next = i + 1 < p->n_rows && p->rows[i + 1].group == g;
	return !prev && !next ? 0 : !prev ? 1 : next ? 2 : 3;
}

static void draw_row(const struct vb_progress *p, struct line *l, size_t i, int name_w, int64_t now)
{
	static const char *const conn_u[] = { "  ", "┌ ", "├ ", "└ " };
	static const char *const conn_a[] = { "  ", ",-", "|-", "`-" };
	const struct vb_prow *r = &p->rows[i];
	int pos = group_pos(p, i);
	l_text(l, " ");
	l_text(l, p->utf8 ? conn_u[pos] : conn_a[pos]);
	l_sgr(l, state_sgr(r->st));
	l_text(l, glyph(p, r->st));
	l_text(l, " ");
	l_text(l, r->name);
	l_pad(l, 5 + name_w + 2);
	l_text(l, state_word(r->st));
	l_sgr(l, NULL);

	int64_t el = row_elapsed(r, now);
	char dur[32] = "", info[300] = "", why[200] = "";
	if (el >= 0)
		vb_obs_fmt_duration(el, dur, sizeof(dur));
	switch (r->st) {
	case P_RUNNING:
	case P_DONE:
		vm_desc(r, 1, info, sizeof(info));
		break;
	case P_BOOTING:
		snprintf(info, sizeof(info), "booting a VM");
		break;
	case P_FAILED:
		failure_text(r, why, sizeof(why));
		vm_desc(r, 1, info, sizeof(info));
		break;
	case P_SKIPPED:
		snprintf(why, sizeof(why), "%s", r->why);
		break;
	case P_QUEUED:
		break;
	}
	if (!dur[0] && !info[0] && !why[0])
		return; /* nothing more to say: no trailing blanks */
	l_pad(l, 5 + name_w + 2 + 8);
	l_fmt(l, "%7s  ", dur);
	l_text(l, why);
	if (why[0] && info[0])
		l_text(l, "  ");
	l_text(l, info);
}

static void draw_header(const struct vb_progress *p, struct line *l, int64_t now)
{
	static const char *const words[] = { "starting", "running", "succeeded", "failed", "cancelled" };
	static const char *const sgr[] = { "1", "1", "1;32", "1;31", "1;33" };
	char dur[32];
	int64_t el = p->run == PR_RUNNING || p->run == PR_NONE ? now - p->run_start : p->run_duration;
	vb_obs_fmt_duration(el, dur, sizeof(dur));
	l_sgr(l, sgr[p->run]);
	l_text(l, p->name[0] ? p->name : "run");
	l_sgr(l, NULL);
	if (p->kind[0])
		l_fmt(l, " (%s)", p->kind);
	l_text(l, "  ");
	l_sgr(l, sgr[p->run]);
	l_text(l, words[p->run]);
	l_sgr(l, NULL);
	l_fmt(l, " %s", dur);
	if (p->run_id[0])
		l_fmt(l, "  run %s", p->run_id);
	/* the run's error is the CLI's last line: said once */
}

static void emit_line(struct frame *f, struct line *l)
{
	l_sgr(l, NULL);
	f_put(f, l->buf, l->len);
	f_put(f, "\033[K\n", 4);
}

static void term_size(const struct vb_progress *p, int *cols, int *rows)
{
	struct winsize ws;
	int fd = fileno(p->out);
	*cols = 80;
	*rows = 24;
	if (fd >= 0 && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
		*cols = ws.ws_col;
		*rows = ws.ws_row;
	}
}

void vb_progress_draw(struct vb_progress *p, int64_t now)
{
	int cols, trows;
	term_size(p, &cols, &trows);
	int max_cols = cols - 1 < 20 ? 20 : cols - 1;
	if (max_cols > LINE_MAX_BYTES / 4)
		max_cols = LINE_MAX_BYTES / 4;
	/* lines for stages: the terminal minus the header and a spare line */
	size_t room = trows > 6 ? (size_t)trows - 2 : 4;

	int name_w = 4;
	for (size_t i = 0; i < p->n_rows; i++) {
		int w = (int)strlen(p->rows[i].name);
		name_w = w > name_w ? w : name_w;
	}
	name_w = name_w > 24 ? 24 : name_w;

	/* too tall for the terminal: fold finished stages from the top into
	 * one line, then cut the tail into another */
	size_t finished = 0, dropped_line = p->dropped ? 1 : 0, hide = 0;
	for (size_t i = 0; i < p->n_rows; i++)
		finished += p->rows[i].st == P_DONE || p->rows[i].st == P_SKIPPED;
	if (p->n_rows + dropped_line > room) {
		size_t want = p->n_rows + 1 + dropped_line - room;
		hide = want < finished ? want : finished;
	}
	size_t budget = room - (hide ? 1 : 0);
	size_t remaining = p->n_rows - hide;
	size_t show = remaining + dropped_line <= budget ? remaining : budget - 1;

	struct frame f = { 0 };
	if (p->drawn > 0) {
		char up[32];
		int n = snprintf(up, sizeof(up), "\r\033[%dA", p->drawn);
		f_put(&f, up, (size_t)n);
	}
	int lines = 0;
	struct line l = { .max_cols = max_cols, .color = p->color };
	draw_header(p, &l, now);
	emit_line(&f, &l);
	lines++;
	if (hide) {
		l = (struct line){ .max_cols = max_cols, .color = p->color };
		l_fmt(&l, "   ... %zu finished stage%s", hide, hide == 1 ? "" : "s");
		emit_line(&f, &l);
		lines++;
	}
	size_t shown = 0, to_hide = hide, cut = 0;
	for (size_t i = 0; i < p->n_rows; i++) {
		if (to_hide && (p->rows[i].st == P_DONE || p->rows[i].st == P_SKIPPED)) {
			to_hide--;
			continue;
		}
		if (shown >= show) {
			cut++;
			continue;
		}
		l = (struct line){ .max_cols = max_cols, .color = p->color };
		draw_row(p, &l, i, name_w, now);
		emit_line(&f, &l);
		lines++;
		shown++;
	}
	if (cut || p->dropped) {
		l = (struct line){ .max_cols = max_cols, .color = p->color };
		l_fmt(&l, "   ... %zu more stage%s", cut + p->dropped, cut + p->dropped == 1 ? "" : "s");
		emit_line(&f, &l);
		lines++;
	}
	if (lines < p->drawn)
		f_put(&f, "\033[J", 3);
	if (!f.oom && f.buf) {
		fwrite(f.buf, 1, f.len, p->out);
		fflush(p->out);
		p->drawn = lines;
	}
	free(f.buf);
}

void vb_progress_plain(struct vb_progress *p, const struct vb_event *ev, const struct vb_prow *r)
{
	char at[32], dur[32], info[300], why[200];
	int64_t t = ev->time_ms > 0 ? ev->time_ms : vb_obs_wall_ms();
	vb_obs_fmt_duration(t - p->run_start, at, sizeof(at));
	switch (ev->type) {
	case VB_EV_RUN_STARTED:
		fprintf(p->out, "[%s] run %s: %s (%s)\n", at, p->run_id[0] ? p->run_id : "?",
			p->name[0] ? p->name : "?", p->kind[0] ? p->kind : "?");
		break;
	case VB_EV_STAGE_QUEUED:
	case VB_EV_STAGE_STARTED:
		if (r && r->st != P_RUNNING) {
			fprintf(p->out, "[%s] stage %s: %s\n", at, r->name,
				r->st == P_QUEUED ? "queued" : "booting");
			break;
		}
		/* started in a VM that is up already */
		__attribute__((fallthrough));
	case VB_EV_VM_BOOTED:
		if (r) {
			vm_desc(r, 0, info, sizeof(info));
			fprintf(p->out, "[%s] stage %s: running on %s%s%s\n", at, r->name,
				info[0] ? info : "a VM", ev->type == VB_EV_VM_BOOTED && r->boot[0] ? ", " : "",
				ev->type == VB_EV_VM_BOOTED ? r->boot : "");
		}
		break;
	case VB_EV_STAGE_COMPLETED:
		if (r) {
			vb_obs_fmt_duration(r->duration_ms, dur, sizeof(dur));
			fprintf(p->out, "[%s] stage %s: done (exit %d, %s)\n", at, r->name, r->exit_code, dur);
		}
		break;
	case VB_EV_STAGE_FAILED:
		if (r) {
			failure_text(r, why, sizeof(why));
			fprintf(p->out, "[%s] stage %s: failed%s%s\n", at, r->name, why[0] ? ": " : "", why);
		}
		break;
	case VB_EV_STAGE_SKIPPED:
		if (r)
			fprintf(p->out, "[%s] stage %s: skipped%s%s\n", at, r->name, r->why[0] ? ": " : "",
				r->why);
		break;
	case VB_EV_RUN_FINISHED:
		vb_obs_fmt_duration(p->run_duration, dur, sizeof(dur));
		fprintf(p->out, "[%s] run %s in %s\n", at, p->run == PR_SUCCEEDED ? "succeeded" : "failed",
			dur);
		break;
	case VB_EV_RUN_CANCELLED:
		vb_obs_fmt_duration(p->run_duration, dur, sizeof(dur));
		fprintf(p->out, "[%s] run cancelled after %s\n", at, dur);
		break;
	case VB_EV_LOG_CHUNK:
		break;
	case VB_EV_LLM_REQUEST:
		if (r && ev->llm) {
			char model[100];
			vb_term_copy(model, sizeof(model), ev->llm->model ? ev->llm->model : "?", 0);
			fprintf(p->out, "[%s] stage %s: llm %s: HTTP %d, %llu in / %llu out tokens\n", at,
				r->name, model, ev->llm->status,
				(unsigned long long)ev->llm->input_tokens,
				(unsigned long long)ev->llm->output_tokens);
		}
		break;
	case VB_EV_AGENT_TOOL:
		if (r && ev->tool) {
			char name[64], input[160];
			vb_term_copy(name, sizeof(name), ev->tool->name ? ev->tool->name : "?", 0);
			vb_term_copy(input, sizeof(input), ev->tool->input ? ev->tool->input : "", 0);
			fprintf(p->out, "[%s] stage %s: tool %s %s%s\n", at, r->name, name, input,
				ev->tool->is_error ? " (failed)" : "");
		}
		break;
	case VB_EV_AGENT_MESSAGE:
		if (r && ev->text) {
			char text[160];
			vb_term_copy(text, sizeof(text), ev->text, 0);
			fprintf(p->out, "[%s] stage %s: says %s\n", at, r->name, text);
		}
		break;
	case VB_EV_AGENT_RESULT:
		if (r && ev->agent_result) {
			char agent[32], sub[64];
			vb_term_copy(agent, sizeof(agent), ev->agent_result->agent, 0);
			vb_term_copy(sub, sizeof(sub), ev->agent_result->subtype, 0);
			fprintf(p->out, "[%s] stage %s: %s result: %s\n", at, r->name, agent, sub);
		}
		break;
	case VB_EV_NET_DENIED:
		if (r && ev->net) {
			char port[16] = "";
			if (ev->net->port)
				snprintf(port, sizeof(port), ":%u", ev->net->port);
			fprintf(p->out, "[%s] stage %s: network refused %s %s%s (%s)\n", at, r->name,
				ev->net->proto, ev->net->dst, port, ev->net->rule);
		}
		break;
	case VB_EV_NET_PUBLISHED:
		if (r && ev->net)
			fprintf(p->out, "[%s] stage %s: published 127.0.0.1:%u -> guest port %u\n", at,
				r->name, ev->net->host_port, ev->net->guest_port);
		break;
	case VB_EV_NET_SUMMARY:
		break;
	case VB_EV_SKILL_PROVISIONED:
		if (r && ev->skill) {
			char name[80], type[16], where[200];
			vb_term_copy(name, sizeof(name), ev->skill->name, 0);
			vb_term_copy(type, sizeof(type), ev->skill->type, 0);
			vb_term_copy(where, sizeof(where),
				     ev->skill->path ? ev->skill->path : "the system prompt", 0);
			if (ev->skill->tools) { /* names checked by src/skill/mcp.c */
				fprintf(p->out, "[%s] stage %s: MCP server %s started, %zu tool%s:", at,
					r->name, name, ev->skill->n_tools,
					ev->skill->n_tools == 1 ? "" : "s");
				for (size_t i = 0; i < ev->skill->n_tools; i++)
					fprintf(p->out, " %s", ev->skill->tools[i]);
				fputc('\n', p->out);
				break;
			}
			fprintf(p->out, "[%s] stage %s: skill %s (%s, %llu bytes) in %s\n", at,
				r->name, name, type, (unsigned long long)ev->skill->size, where);
		}
		break;
	}
	fflush(p->out);
}
