/* SPDX-License-Identifier: Apache-2.0 */
/* Entry points: read, parse, check, resolve. */
#include "spec/spec_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

uint64_t spec_host_mem_override_mb;

/* The absolute directory of (name), or the current directory when it has
 * none.  realpath() when the directory exists, so that paths we print are
 * the canonical ones. */
static char *base_dir(const char *name)
{
	char cwd[PATH_MAX], buf[PATH_MAX];
	const char *slash = name ? strrchr(name, '/') : NULL;
	if (!slash)
		return getcwd(cwd, sizeof(cwd)) ? strdup(cwd) : strdup("/");
	size_t len = (size_t)(slash - name);
	if (len == 0)
		return strdup("/");
	if (len >= sizeof(buf))
		return NULL;
	memcpy(buf, name, len);
	buf[len] = '\0';
	char *real = realpath(buf, NULL);
	if (real)
		return real;
	if (buf[0] == '/')
		return strdup(buf);
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	char *out = malloc(strlen(cwd) + len + 2);
	if (out)
		sprintf(out, "%s/%s", cwd, buf);
	return out;
}

/* JSON when the first thing in (text) (after blanks, a BOM and YAML
 * comments) is '{', YAML otherwise: JSON errors for JSON, and YAML files
 * named anything. */
static bool looks_like_json(const char *text, size_t len)
{
	size_t i = len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3) ? 3 : 0;
	while (i < len) {
		if (text[i] == '#') {
			while (i < len && text[i] != '\n')
				i++;
		} else if (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n') {
			i++;
		} else {
			break;
		}
	}
	return i < len && text[i] == '{';
}

struct vb_spec *vb_spec_load_string(const char *text, size_t len, const char *name_for_errors,
				    int flags, vb_error *err)
{
	int format = flags & VB_SPEC_FORMAT_MASK;
	bool is_yaml = format == VB_SPEC_YAML ||
		       (format == VB_SPEC_GUESS && !looks_like_json(text, len));
	struct spec_ctx c = { .file = name_for_errors ? name_for_errors : "<spec>" };
	struct node *root = NULL;
	struct vb_spec *spec = calloc(1, sizeof(*spec));
	if (!spec || !(spec->file = strdup(c.file)) || !(spec->dir = base_dir(name_for_errors))) {
		vb_spec_free(spec);
		vb_error_set(err, VB_E_RUNTIME, "%s: out of memory", c.file);
		return NULL;
	}
	c.dir = spec->dir;
	if (len > SPEC_MAX_FILE) {
		vb_error_set(err, VB_E_USAGE, "%s: spec is larger than %u MiB", c.file, SPEC_MAX_FILE >> 20);
		vb_spec_free(spec);
		return NULL;
	}
	int rc = is_yaml ? spec_parse_yaml(&c, text, len, &root) : spec_parse_json(&c, text, len, &root);
	if (rc == 0 && !(flags & VB_SPEC_LITERAL))
		spec_expand(&c, root);
	if (rc == 0)
		spec_parse_top(&c, root, spec);
	spec_node_free(root);
	if (rc < 0 && !c.n_diags && !c.oom)
		spec_diag(&c, (struct vb_spec_pos){ 1, 1 }, "", "cannot parse the spec");
	if (!c.n_diags && !c.oom && spec_resolve(spec) < 0)
		spec_oom(&c);
	if (!c.n_diags && !c.oom)
		spec_check_snapshots(&c, spec);
	if (spec_diag_finish(&c, err) < 0) {
		spec_diag_free(&c);
		vb_spec_free(spec);
		return NULL;
	}
	spec_diag_free(&c);
	return spec;
}

/* .yaml/.yml: YAML; .json: JSON; anything else (or no name): a guess. */
static int format_of(const char *path)
{
	const char *dot = strrchr(path, '.');
	if (!dot || strchr(dot, '/'))
		return VB_SPEC_GUESS;
	if (!strcasecmp(dot, ".yaml") || !strcasecmp(dot, ".yml"))
		return VB_SPEC_YAML;
	return !strcasecmp(dot, ".json") ? VB_SPEC_JSON : VB_SPEC_GUESS;
}

/* Read all of (fd) (at most SPEC_MAX_FILE + 1 bytes: enough to know it is
 * too big, whatever st_size says of pipes and growing files) and load it. */
static struct vb_spec *load_fd(int fd, const char *name, int flags, vb_error *err)
{
	size_t cap = SPEC_MAX_FILE + 1, len = 0;
	char *buf = malloc(cap);
	if (!buf) {
		vb_error_set(err, VB_E_RUNTIME, "%s: out of memory", name);
		return NULL;
	}
	while (len < cap) {
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			vb_error_errno(err, errno, "%s: read", name);
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	struct vb_spec *spec = vb_spec_load_string(buf, len, name, flags, err);
	free(buf);
	return spec;
}

struct vb_spec *vb_spec_load(const char *path, vb_error *err)
{
	/* "-": the spec on stdin; relative paths in it start from the current
	 * directory (the name has none). */
	if (!strcmp(path, "-"))
		return load_fd(STDIN_FILENO, "<stdin>", VB_SPEC_GUESS, err);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		vb_error_errno(err, errno, "%s", path);
		if (errno == ENOENT)
			err->kind = VB_E_USAGE;
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		vb_error_errno(err, errno, "%s", path);
		close(fd);
		return NULL;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		vb_error_set(err, VB_E_USAGE, "%s: is a directory, not a spec file", path);
		return NULL;
	}
	struct vb_spec *spec = load_fd(fd, path, format_of(path), err);
	close(fd);
	return spec;
}

int vb_spec_errorf(const struct vb_spec *spec, struct vb_spec_pos pos, vb_error *err,
		   const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (pos.line)
		return vb_error_set(err, VB_E_USAGE, "%.200s:%u:%u: %s", spec->file, pos.line, pos.col, msg);
	return vb_error_set(err, VB_E_USAGE, "%.200s: %s", spec->file, msg);
}
