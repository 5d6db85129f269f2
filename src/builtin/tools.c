/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The builtin agent's tools, each one request to the guest: bash (sh -c as
 * the sandbox user, with a timeout), read_file, write_file, list_dir.  What
 * goes back to the model is bounded (VB_BUILTIN_TOOL_OUTPUT) and valid UTF-8
 * (jansson refuses anything else), since it comes from the guest.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "builtin/builtin.h"
#include "util/term.h"
#include "util/util.h"

void *vb_builtin_tools_json(void)
{
	return json_pack(
		"[{s:s,s:s,s:{s:s,s:{s:{s:s,s:s},s:{s:s,s:s}},s:[s]}},"
		" {s:s,s:s,s:{s:s,s:{s:{s:s}},s:[s]}},"
		" {s:s,s:s,s:{s:s,s:{s:{s:s},s:{s:s}},s:[s,s]}},"
		" {s:s,s:s,s:{s:s,s:{s:{s:s}},s:[s]}}]",
		"name", "bash", "description",
		"Run a shell command (sh -c) in the sandbox VM, in /workspace, and get its exit code, "
		"stdout and stderr.",
		"input_schema", "type", "object", "properties", "command", "type", "string",
		"description", "the command line", "timeout_secs", "type", "integer", "description",
		"at most this long (default 120)", "required", "command",

		"name", "read_file", "description", "Read a text file in the sandbox VM.",
		"input_schema", "type", "object", "properties", "path", "type", "string", "required",
		"path",

		"name", "write_file", "description",
		"Write (replace) a file in the sandbox VM with the given content.", "input_schema",
		"type", "object", "properties", "path", "type", "string", "content", "type", "string",
		"required", "path", "content",

		"name", "list_dir", "description", "List a directory in the sandbox VM.",
		"input_schema", "type", "object", "properties", "path", "type", "string", "required",
		"path");
}

/* (p, n) from the guest as a string the model can take: valid UTF-8 (bad
 * bytes become U+FFFD), at most (max) bytes, with a note when cut. */
static char *bounded(const uint8_t *p, size_t n, size_t max)
{
	size_t take = n > max ? max : n;
	char *s = malloc(take * 3 + 64);
	if (!s)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < take;) {
		int k = p[i] ? vb_utf8_seq(p + i, take - i) : 0;
		if (k > 0) {
			memcpy(s + o, p + i, (size_t)k);
			o += (size_t)k;
			i += (size_t)k;
		} else {
			memcpy(s + o, "\xef\xbf\xbd", 3); /* U+FFFD */
			o += 3;
			i++;
		}
	}
	if (n > max)
		o += (size_t)sprintf(s + o, "\n[... %zu more bytes not shown]", n - take);
	s[o] = '\0';
	return s;
}

static const char *str_arg(json_t *in, const char *key)
{
	return json_string_value(json_object_get(in, key));
}

static int tool_bash(vb_sandbox *sb, json_t *in, int64_t deadline_ms, char **out, int *is_error,
		     vb_error *err)
{
	const char *cmd = str_arg(in, "command");
	if (!cmd) {
		*is_error = 1;
		*out = strdup("bash needs a \"command\" string");
		return 0;
	}
	long long t = VB_BUILTIN_BASH_TIMEOUT_MS;
	json_t *ts = json_object_get(in, "timeout_secs");
	if (json_is_integer(ts) && json_integer_value(ts) > 0 && json_integer_value(ts) < 86400)
		t = json_integer_value(ts) * 1000;
	if (deadline_ms) {
		int64_t left = deadline_ms - vb_now_ms();
		if (left < t)
			t = left > 1000 ? left : 1000;
	}
	const char *argv[] = { "sh", "-c", cmd, NULL };
	/* the sandbox user, whatever an image's User says: the agent's files
	 * (written by file requests) are the sandbox user's (docs/oci.md) */
	struct vb_exec_params p = { .argv = argv, .user = "sandbox", .timeout_ms = (unsigned)t };
	struct vb_exec_result res = { 0 };
	if (vb_exec_run(sb, &p, NULL, 0, VB_BUILTIN_TOOL_OUTPUT + 1, &res, err) < 0) {
		if (err->kind == VB_E_NOTFOUND || err->kind == VB_E_NOEXEC) {
			*is_error = 1;
			*out = vb_strfmt("cannot run sh: %s", err->msg);
			vb_error_clear(err);
			return 0;
		}
		return -1;
	}
	_cleanup_free_ char *o = bounded(res.out, res.out_len, VB_BUILTIN_TOOL_OUTPUT);
	_cleanup_free_ char *e = bounded(res.errout, res.err_len, VB_BUILTIN_TOOL_OUTPUT / 4);
	if (res.timed_out)
		*out = vb_strfmt("timed out after %lld s\nstdout:\n%s\nstderr:\n%s", t / 1000,
				 o ? o : "", e ? e : "");
	else
		*out = vb_strfmt("exit code %d\nstdout:\n%s\nstderr:\n%s", res.exit_code, o ? o : "",
				 e ? e : "");
	*is_error = res.timed_out || res.exit_code != 0;
	vb_exec_result_free(&res);
	return 0;
}

static int tool_read(vb_sandbox *sb, json_t *in, char **out, int *is_error, vb_error *err)
{
	const char *path = str_arg(in, "path");
	if (!path) {
		*is_error = 1;
		*out = strdup("read_file needs a \"path\" string");
		return 0;
	}
	uint8_t *data = NULL;
	size_t len = 0;
	if (vb_file_read(sb, path, (size_t)1 << 20, &data, &len, err) < 0) {
		if (err->kind == VB_E_VMDIED || err->kind == VB_E_CANCELLED)
			return -1;
		*is_error = 1;
		*out = vb_strfmt("cannot read %s: %s", path, err->msg);
		vb_error_clear(err);
		return 0;
	}
	*out = bounded(data, len, VB_BUILTIN_TOOL_OUTPUT);
	free(data);
	return 0;
}

static int tool_write(vb_sandbox *sb, json_t *in, char **out, int *is_error, vb_error *err)
{
	const char *path = str_arg(in, "path");
	json_t *c = json_object_get(in, "content");
	if (!path || !json_is_string(c)) {
		*is_error = 1;
		*out = strdup("write_file needs \"path\" and \"content\" strings");
		return 0;
	}
	size_t len = json_string_length(c);
	if (vb_file_write(sb, path, json_string_value(c), len, 0644, 0, err) < 0) {
		if (err->kind == VB_E_VMDIED || err->kind == VB_E_CANCELLED)
			return -1;
		*is_error = 1;
		*out = vb_strfmt("cannot write %s: %s", path, err->msg);
		vb_error_clear(err);
		return 0;
	}
	*out = vb_strfmt("wrote %zu bytes to %s", len, path);
	return 0;
}

static int tool_list(vb_sandbox *sb, json_t *in, char **out, int *is_error, vb_error *err)
{
	const char *path = str_arg(in, "path");
	if (!path) {
		*is_error = 1;
		*out = strdup("list_dir needs a \"path\" string");
		return 0;
	}
	/* ls in the guest: the exec request is the one way to list there */
	const char *argv[] = { "ls", "-la", "--", path, NULL };
	struct vb_exec_params p = { .argv = argv, .user = "sandbox", .timeout_ms = 30000 };
	struct vb_exec_result res = { 0 };
	if (vb_exec_run(sb, &p, NULL, 0, VB_BUILTIN_TOOL_OUTPUT + 1, &res, err) < 0)
		return -1;
	*is_error = res.exit_code != 0;
	*out = *is_error ? bounded(res.errout, res.err_len, VB_BUILTIN_TOOL_OUTPUT)
			 : bounded(res.out, res.out_len, VB_BUILTIN_TOOL_OUTPUT);
	vb_exec_result_free(&res);
	return 0;
}

int vb_builtin_tool_run(vb_sandbox *sb, const char *name, void *input, int64_t deadline_ms,
		      char **out, int *is_error, vb_error *err)
{
	json_t *in = json_is_object((json_t *)input) ? input : NULL;
	*out = NULL;
	*is_error = 0;
	int rc;
	if (!in) {
		*is_error = 1;
		*out = strdup("the tool's input must be an object");
		rc = 0;
	} else if (!strcmp(name, "bash")) {
		rc = tool_bash(sb, in, deadline_ms, out, is_error, err);
	} else if (!strcmp(name, "read_file")) {
		rc = tool_read(sb, in, out, is_error, err);
	} else if (!strcmp(name, "write_file")) {
		rc = tool_write(sb, in, out, is_error, err);
	} else if (!strcmp(name, "list_dir")) {
		rc = tool_list(sb, in, out, is_error, err);
	} else {
		*is_error = 1;
		*out = vb_strfmt("no tool named %.100s (tools: bash, read_file, write_file, list_dir)",
				 name);
		rc = 0;
	}
	if (rc == 0 && !*out)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	return rc;
}
