/* SPDX-License-Identifier: Apache-2.0 */
/*
 * voidbox logs: a recorded run's events (human-readable or raw JSONL), or
 * one stage's stdout/stderr log or carried output; -F/--follow keeps reading
 * while the run goes on.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "observe/observe_int.h"
#include "observe/runs.h"
#include "util/term.h"
#include "util/util.h"

#define POLL_MS 200
#define PREVIEW_MAX 72

struct logs_opts {
	const char *query;
	const char *stage;
	int json, follow, stderr_log, output, last;
};

static void usage(FILE *out)
{
	fputs("usage: voidbox logs [OPTIONS] RUN_ID\n"
	      "       voidbox logs [OPTIONS] --last\n\n"
	      "Show a recorded run: its events in order (local time, event, stage,\n"
	      "details).  RUN_ID may be any unique prefix of a run id, or its random\n"
	      "suffix (the last 6 hex digits) or a tail of it; see voidbox ps.\n\n"
	      "      --last           the newest run\n"
	      "      --run-id RUN_ID  the same as RUN_ID (void-box's spelling)\n"
	      "  -o, --output FORMAT  text (default) or json: the raw events\n"
	      "                       (events.jsonl, one JSON object a line)\n"
	      "      --json           the same as --output json\n"
	      "      --stage NAME     print the stage's stdout log instead\n"
	      "      --stderr         with --stage: its stderr log\n"
	      "      --carried        with --stage: the output it carried to the next stage\n"
	      "  -F, --follow         keep printing while the run goes on; stop when it\n"
	      "                       finishes or its process is gone\n\n"
	      "Exit status: 0, or 2 for an unknown run or stage.\n",
	      out);
}

/* The format after -o/--output, or NULL if (v) is not one. */
static int output_format(const char *v)
{
	return !v ? -1 : !strcmp(v, "json") ? 1 : !strcmp(v, "human") || !strcmp(v, "text") ? 0 : -1;
}

static int set_query(struct logs_opts *o, const char *q, vb_error *err)
{
	if (o->query || o->last)
		return vb_error_set(err, VB_E_USAGE, "logs: one run at a time");
	o->query = q;
	return 0;
}

static int parse_args(int argc, char **argv, struct logs_opts *o, vb_error *err)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;
		int fmt;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			return 1;
		} else if (!strcmp(a, "--json")) {
			o->json = 1;
		} else if (!strcmp(a, "--follow") || !strcmp(a, "-F")) {
			o->follow = 1;
		} else if (!strcmp(a, "--stderr")) {
			o->stderr_log = 1;
		} else if (!strcmp(a, "--carried")) {
			o->output = 1;
		} else if (!strcmp(a, "--last")) {
			if (o->query || o->last)
				return vb_error_set(err, VB_E_USAGE, "logs: one run at a time");
			o->last = 1;
		} else if (!strcmp(a, "--output") && output_format(next) < 0) {
			o->output = 1; /* the old spelling of --carried */
		} else if ((!strcmp(a, "--output") || !strcmp(a, "-o")) && next) {
			if ((fmt = output_format(next)) < 0)
				return vb_cli_output_format("logs", next, &fmt, err);
			o->json = fmt;
			i++;
		} else if (!strncmp(a, "--output=", 9) || (!strncmp(a, "-o", 2) && a[2])) {
			const char *v = a[1] == 'o' ? a + 2 : a + 9;
			if ((fmt = output_format(v)) < 0)
				return vb_cli_output_format("logs", v, &fmt, err);
			o->json = fmt;
		} else if (!strcmp(a, "--stage") && next) {
			o->stage = argv[++i];
		} else if (!strcmp(a, "--run-id") && next) {
			if (set_query(o, argv[++i], err) < 0)
				return -1;
		} else if (!strncmp(a, "--stage=", 8)) {
			o->stage = a + 8;
		} else if (!strncmp(a, "--run-id=", 9)) {
			if (set_query(o, a + 9, err) < 0)
				return -1;
		} else if (a[0] == '-' && a[1]) {
			/* -f is --file in every verb that takes one: say where follow is */
			static const char *const values[] = { "--output", "-o", "--stage", "--run-id", NULL };
			static const char *const flags[] = { "--json",  "--follow", "--stderr", "--carried",
							     "--last",  "--help",   NULL };
			vb_cli_bad_option("logs", a, values, flags, err);
			if (!strcmp(a, "-f"))
				snprintf(err->msg + strlen(err->msg), sizeof(err->msg) - strlen(err->msg), "\nto follow a run: voidbox logs -F (--follow)");
			return -1;
		} else if (set_query(o, a, err) < 0) {
			return -1;
		}
	}
	if (!o->query && !o->last)
		return vb_error_set(err, VB_E_USAGE, "logs: which run? (voidbox logs RUN_ID or --last; see voidbox ps)");
	if ((o->stderr_log || o->output) && !o->stage)
		return vb_error_set(err, VB_E_USAGE, "logs: --stderr and --carried go with --stage NAME");
	if (o->stderr_log && o->output)
		return vb_error_set(err, VB_E_USAGE, "logs: --stderr or --carried, not both");
	if (o->stage && o->json)
		return vb_error_set(err, VB_E_USAGE, "logs: --output json shows events, not a stage's log");
	if (o->stage && !vb_obs_name_ok(o->stage))
		return vb_error_set(err, VB_E_USAGE, "logs: '%.80s' is not a stage name", o->stage);
	return 0;
}

static const char *jget(const json_t *ev, const char *key)
{
	return json_string_value(json_object_get(ev, key));
}

static long long jint(const json_t *ev, const char *key)
{
	return json_integer_value(json_object_get(ev, key));
}

/* A one-line, terminal-safe preview of a log chunk. */
static void chunk_details(const json_t *ev, char *buf, size_t size)
{
	const char *stream = jget(ev, "stream");
	long long len = jint(ev, "len");
	const char *text = jget(ev, "data");
	const char *trunc = json_is_true(json_object_get(ev, "truncated")) ? ", truncated" : "";
	char preview[PREVIEW_MAX * 4 + 1] = "";
	if (text) {
		char line[PREVIEW_MAX * 4 + 1];
		size_t n = strcspn(text, "\n");
		snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) - 1 ? n : sizeof(line) - 1), text);
		vb_term_copy(preview, sizeof(preview), line, 0);
		/* cut at PREVIEW_MAX characters */
		size_t chars = 0, i = 0;
		for (; preview[i] && chars < PREVIEW_MAX; i++)
			chars += ((unsigned char)preview[i] & 0xc0) != 0x80;
		while (preview[i] && ((unsigned char)preview[i] & 0xc0) == 0x80)
			i++;
		int more = preview[i] != '\0' || (text[n] != '\0' && text[n + 1] != '\0');
		preview[i] = '\0';
		snprintf(buf, size, "%s %lld byte%s%s: %s%s", stream ? stream : "?", len, len == 1 ? "" : "s",
			 trunc, preview, more ? " ..." : "");
	} else {
		snprintf(buf, size, "%s %lld byte%s%s (binary)", stream ? stream : "?", len,
			 len == 1 ? "" : "s", trunc);
	}
}

static void event_details(const json_t *ev, const char *type, char *buf, size_t size)
{
	char dur[32];
	vb_obs_fmt_duration(jint(ev, "duration_ms"), dur, sizeof(dur));
	const char *error = jget(ev, "error");
	buf[0] = '\0';
	if (!strcmp(type, "run.started")) {
		snprintf(buf, size, "%s (%s)", jget(ev, "name") ? jget(ev, "name") : "?",
			 jget(ev, "kind") ? jget(ev, "kind") : "?");
	} else if (!strcmp(type, "vm.booted")) {
		/* how it started; a record older than "boot" says only how long */
		const char *boot = jget(ev, "boot"), *snap = jget(ev, "snapshot");
		char how[96];
		if (boot && !strcmp(boot, "restored") && snap)
			snprintf(how, sizeof(how), "restored from %.12s%s in %lld ms", snap,
				 json_is_true(json_object_get(ev, "warm")) ? " (warm)" : "",
				 jint(ev, "boot_ms"));
		else
			snprintf(how, sizeof(how), "%s in %lld ms", boot ? "booted cold" : "booted",
				 jint(ev, "boot_ms"));
		snprintf(buf, size, "%s %s/%s, %s, kernel %s, boot id %s",
			 jget(ev, "vm_id") ? jget(ev, "vm_id") : "?", jget(ev, "accel") ? jget(ev, "accel") : "?",
			 jget(ev, "isolation") ? jget(ev, "isolation") : "?", how,
			 jget(ev, "kernel") ? jget(ev, "kernel") : "?", jget(ev, "boot_id") ? jget(ev, "boot_id") : "?");
		const char *img = jget(ev, "image"), *dg = jget(ev, "image_digest");
		size_t used = strlen(buf);
		if (img && used < size) /* sandbox.image: the root it ran on */
			snprintf(buf + used, size - used, ", image %s (%.19s)", img, dg ? dg : "?");
		const char *notice = jget(ev, "boot_notice");
		used = strlen(buf);
		if (notice && used < size) /* why a warm restore fell back */
			snprintf(buf + used, size - used, "; %s", notice);
	} else if (!strcmp(type, "log.chunk")) {
		chunk_details(ev, buf, size);
	} else if (!strcmp(type, "stage.completed")) {
		long long ob = jint(ev, "output_bytes");
		snprintf(buf, size, "exit %lld in %s, %lld byte%s of output", jint(ev, "exit_code"), dur, ob,
			 ob == 1 ? "" : "s");
	} else if (!strcmp(type, "stage.failed")) {
		long long code = jint(ev, "exit_code");
		char codes[32] = "";
		if (code >= 0)
			snprintf(codes, sizeof(codes), "exit %lld ", code);
		snprintf(buf, size, "%sin %s%s%s", codes, dur, error ? ": " : "", error ? error : "");
	} else if (!strcmp(type, "stage.skipped")) {
		snprintf(buf, size, "%s", error ? error : "");
	} else if (!strcmp(type, "run.finished")) {
		int ok = json_is_true(json_object_get(ev, "success"));
		snprintf(buf, size, "%s in %s%s%s", ok ? "succeeded" : "failed", dur, error ? ": " : "",
			 error ? error : "");
	} else if (!strcmp(type, "run.cancelled")) {
		snprintf(buf, size, "after %s", dur);
	} else if (!strcmp(type, "llm.request")) {
		json_t *cost = json_object_get(ev, "cost_usd");
		snprintf(buf, size, "%s: HTTP %lld, %lld in / %lld out tokens, $%.4f, %lld ms%s%s",
			 jget(ev, "model") ? jget(ev, "model") : "?", jint(ev, "status"),
			 jint(ev, "input_tokens"), jint(ev, "output_tokens"),
			 json_is_number(cost) ? json_number_value(cost) : 0.0, jint(ev, "latency_ms"),
			 error ? ": " : "", error ? error : "");
	} else if (!strcmp(type, "agent.tool")) {
		const char *input = jget(ev, "input");
		snprintf(buf, size, "%s %.200s%s in %s", jget(ev, "tool") ? jget(ev, "tool") : "?",
			 input ? input : "", json_is_true(json_object_get(ev, "is_error")) ? " (failed)" : "",
			 dur);
	} else if (!strcmp(type, "agent.message")) {
		snprintf(buf, size, "%.300s", jget(ev, "text") ? jget(ev, "text") : "");
	} else if (!strcmp(type, "agent.result")) {
		json_t *cost = json_object_get(ev, "cost_usd");
		const char *res = jget(ev, "result");
		snprintf(buf, size, "%s %s, %lld turns, %lld in / %lld out tokens, $%.4f: %.200s",
			 jget(ev, "agent") ? jget(ev, "agent") : "?",
			 jget(ev, "subtype") ? jget(ev, "subtype") : "?", jint(ev, "num_turns"),
			 jint(ev, "input_tokens"), jint(ev, "output_tokens"),
			 json_is_number(cost) ? json_number_value(cost) : 0.0, res ? res : "");
	} else if (!strcmp(type, "skill.provisioned") && json_is_array(json_object_get(ev, "tools"))) {
		/* an MCP server: its command and tools */
		json_t *tools = json_object_get(ev, "tools"), *t;
		size_t i;
		int o = snprintf(buf, size, "mcp %s, %.200s, tools:", jget(ev, "name") ? jget(ev, "name") : "?",
				 jget(ev, "source") ? jget(ev, "source") : "?");
		json_array_foreach(tools, i, t) {
			if (o < 0 || (size_t)o >= size)
				break;
			o += snprintf(buf + o, size - (size_t)o, " %.64s",
				      json_is_string(t) ? json_string_value(t) : "?");
		}
	} else if (!strcmp(type, "skill.provisioned") && jget(ev, "digest")) {
		/* an image skill: its reference, manifest and mount */
		snprintf(buf, size, "oci %.200s, %.19s, %lld bytes, at %.200s",
			 jget(ev, "name") ? jget(ev, "name") : "?", jget(ev, "digest"), jint(ev, "size"),
			 jget(ev, "path") ? jget(ev, "path") : "?");
	} else if (!strcmp(type, "skill.provisioned")) {
		const char *sha = jget(ev, "sha256");
		snprintf(buf, size, "%s %s, %lld bytes in %lld file%s, sha256 %.12s, from %.200s to %.200s",
			 jget(ev, "type") ? jget(ev, "type") : "?", jget(ev, "name") ? jget(ev, "name") : "?",
			 jint(ev, "size"), jint(ev, "files"), jint(ev, "files") == 1 ? "" : "s",
			 sha ? sha : "?", jget(ev, "source") ? jget(ev, "source") : "?",
			 jget(ev, "path") ? jget(ev, "path") : "the system prompt");
	} else if (!strcmp(type, "net.denied")) {
		char port[16] = "";
		if (jint(ev, "port") > 0)
			snprintf(port, sizeof(port), ":%lld", jint(ev, "port"));
		snprintf(buf, size, "%s %s%s refused (%s)%s%.200s",
			 jget(ev, "proto") ? jget(ev, "proto") : "?", jget(ev, "dst") ? jget(ev, "dst") : "?",
			 port, jget(ev, "rule") ? jget(ev, "rule") : "?", jget(ev, "hint") ? ": " : "",
			 jget(ev, "hint") ? jget(ev, "hint") : "");
	} else if (!strcmp(type, "net.published")) {
		snprintf(buf, size, "127.0.0.1:%lld -> guest port %lld", jint(ev, "host_port"),
			 jint(ev, "guest_port"));
	} else if (!strcmp(type, "net.summary")) {
		snprintf(buf, size, "%lld bytes out, %lld in, %lld connections, %lld refused",
			 jint(ev, "bytes_out"), jint(ev, "bytes_in"), jint(ev, "connections"),
			 jint(ev, "denied"));
	} else if (!strcmp(type, "record.truncated")) {
		const char *stream = jget(ev, "stream");
		snprintf(buf, size, "%s%s%s", stream ? stream : "", stream ? ": " : "",
			 error ? error : "");
	}
}

/* Print one events.jsonl line; returns 1 if it ends the run. */
static int print_event(const char *line, size_t len, int as_json)
{
	json_t *ev = json_loadb(line, len, 0, NULL);
	const char *type = ev ? jget(ev, "event") : NULL;
	int final = type && (!strcmp(type, "run.finished") || !strcmp(type, "run.cancelled"));
	if (as_json) {
		vb_term_write(stdout, line, len, VB_TERM_JSON); /* DEL and C1 as \u escapes */
		fputc('\n', stdout);
	} else if (!type) {
		puts("(a malformed line)");
	} else {
		long long ms = jint(ev, "time_ms");
		time_t s = (time_t)(ms / 1000);
		struct tm tm;
		char when[32] = "--:--:--", details[1024], safe[1024], stage[80], kind[40];
		if (ms > 0 && localtime_r(&s, &tm))
			strftime(when, sizeof(when), "%H:%M:%S", &tm);
		event_details(ev, type, details, sizeof(details));
		vb_term_copy(safe, sizeof(safe), details, 0);
		vb_term_copy(stage, sizeof(stage), jget(ev, "stage"), 0);
		vb_term_copy(kind, sizeof(kind), type, 0);
		if (safe[0])
			printf("%s.%03lld  %-15s  %-12s  %s\n", when, ms > 0 ? ms % 1000 : 0, kind,
			       stage[0] ? stage : "-", safe);
		else
			printf("%s.%03lld  %-15s  %s\n", when, ms > 0 ? ms % 1000 : 0, kind,
			       stage[0] ? stage : "-");
	}
	json_decref(ev);
	return final;
}

static void print_header(const struct vb_run_info *info)
{
	char when[32] = "-";
	time_t s = (time_t)(info->started_ms / 1000);
	struct tm tm;
	if (info->started_ms > 0 && localtime_r(&s, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", &tm);
	/* the name and kind come from the run's record */
	vb_term_printf(stdout, 0, "run %s: %s (%s), %s, started %s", info->id,
		       info->name && info->name[0] ? info->name : "-", info->kind ? info->kind : "-",
		       vb_run_state_name(info->state), when);
	putchar('\n');
}

static void sleep_poll(void)
{
	struct timespec ts = { 0, POLL_MS * 1000000L };
	nanosleep(&ts, NULL);
}

/* Print the run's events; with (follow), until a final event or the run's
 * process is gone. */
static int show_events(const char *run_dir, const char *id, const struct logs_opts *o, vb_error *err)
{
	_cleanup_free_ char *path = vb_strfmt("%s/events.jsonl", run_dir);
	if (!path)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	struct vb_jsonl *r = NULL;
	int done = 0, last_pass = 0;
	while (!done) {
		/* following a run that has not written its first event yet */
		int waiting = o->follow && !r && access(path, F_OK) < 0 && errno == ENOENT;
		if (!r && !waiting && !(r = vb_jsonl_open(path, err)))
			return -1;
		const char *line;
		size_t len;
		int rc;
		while (r && (rc = vb_jsonl_next(r, &line, &len, err)) != VB_JSONL_NONE) {
			if (rc < 0) {
				vb_jsonl_free(r);
				return -1;
			}
			if (rc == VB_JSONL_LONG) {
				if (!o->json)
					puts("(an overlong line, skipped)");
				continue;
			}
			done |= print_event(line, len, o->json);
		}
		fflush(stdout);
		if (!o->follow || done || last_pass)
			break;
		if (!vb_run_pid_alive(run_dir)) {
			last_pass = 1; /* read what it wrote before it went */
			continue;
		}
		sleep_poll();
	}
	vb_jsonl_free(r);
	if (o->follow && !done)
		vb_cli_warn("run %s ended without a final event (its process is gone)", id);
	return 0;
}

/* 1 if the run's events name (stage). */
static int run_has_stage(const char *run_dir, const char *stage)
{
	_cleanup_free_ char *path = vb_strfmt("%s/events.jsonl", run_dir);
	struct vb_jsonl *r = path ? vb_jsonl_open(path, NULL) : NULL;
	const char *line;
	size_t len;
	int found = 0;
	while (r && !found && vb_jsonl_next(r, &line, &len, NULL) == VB_JSONL_LINE) {
		json_t *ev = json_loadb(line, len, 0, NULL);
		const char *s = json_string_value(json_object_get(ev, "stage"));
		found = s && !strcmp(s, stage);
		json_decref(ev);
	}
	vb_jsonl_free(r);
	return found;
}

/* 1 once the run has ended (final event, or its process is gone). */
static int run_ended(const char *runs_dir, const char *id)
{
	struct vb_run_info info;
	int ended = vb_run_info_load(runs_dir, id, &info, NULL) < 0 || info.state != VB_RUN_RUNNING;
	vb_run_info_clear(&info);
	return ended;
}

/* Copy a stage file to stdout; with (follow), as it grows until the run ends. */
static int show_stage_file(const char *runs_dir, const char *id, const char *run_dir,
			   const struct logs_opts *o, vb_error *err)
{
	const char *file = o->output ? "output" : o->stderr_log ? "stderr.log" : "stdout.log";
	_cleanup_free_ char *sdir = vb_strfmt("%s/stages/%s", run_dir, o->stage);
	_cleanup_free_ char *path = vb_strfmt("%s/stages/%s/%s", run_dir, o->stage, file);
	if (!sdir || !path)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (access(sdir, F_OK) < 0 && !run_has_stage(run_dir, o->stage))
		return vb_error_set(err, VB_E_USAGE, "run %s has no stage '%s'", id, o->stage);
	_cleanup_close_ int fd = -1;
	char buf[65536];
	for (int last_pass = 0;;) {
		int ended = o->follow && !last_pass ? run_ended(runs_dir, id) : 1;
		if (fd < 0)
			fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 && errno != ENOENT)
			return vb_error_errno(err, errno, "cannot open %s", path);
		ssize_t n;
		while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return vb_error_errno(err, errno, "cannot read %s", path);
			if (vb_write_full(STDOUT_FILENO, buf, (size_t)n) < 0)
				return 0; /* stdout closed (a pager quit): nothing more to do */
		}
		/* one more pass after the end: what was written just before it */
		if (!o->follow || last_pass)
			return 0;
		if (ended)
			last_pass = 1;
		else
			sleep_poll();
	}
}

int vb_cmd_logs(int argc, char **argv)
{
	vb_error err = { 0 };
	struct logs_opts o = { 0 };
	int rc = parse_args(argc, argv, &o, &err);
	if (rc > 0) {
		usage(stdout);
		return 0;
	}
	if (rc < 0)
		return vb_cli_fail(&err);
	_cleanup_free_ char *runs = vb_runs_dir(&err);
	if (!runs)
		return vb_cli_fail(&err);
	_cleanup_free_ char *id = o.last ? vb_run_last(runs, &err) : vb_run_resolve(runs, o.query, &err);
	if (!id)
		return vb_cli_fail(&err);
	_cleanup_free_ char *run_dir = vb_strfmt("%s/%s", runs, id);
	if (!run_dir) {
		vb_error_set(&err, VB_E_RUNTIME, "out of memory");
		return vb_cli_fail(&err);
	}
	if (o.stage)
		rc = show_stage_file(runs, id, run_dir, &o, &err);
	else {
		if (!o.json) {
			struct vb_run_info info;
			if (vb_run_info_load(runs, id, &info, &err) == 0)
				print_header(&info);
			vb_run_info_clear(&info);
		}
		rc = show_events(run_dir, id, &o, &err);
	}
	return rc < 0 ? vb_cli_fail(&err) : 0;
}
