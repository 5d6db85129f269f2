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

struct vb_spec *vb_spec_load_string(const char *text, size_t len, const char *name_for_errors,
				    int is_yaml, vb_error *err)
{
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
	if (rc == 0)
		spec_parse_top(&c, root, spec);
	spec_node_free(root);
	if (rc < 0 && !c.n_diags && !c.oom)
		spec_diag(&c, (struct vb_spec_pos){ 1, 1 }, "", "cannot parse the spec");
	if (!c.n_diags && !c.oom && spec_resolve(spec) < 0)
		spec_oom(&c);
	if (spec_diag_finish(&c, err) < 0) {
		spec_diag_free(&c);
		vb_spec_free(spec);
		return NULL;
	}
	spec_diag_free(&c);
	return spec;
}

static bool has_yaml_ext(const char *path)
{
	const char *dot = strrchr(path, '.');
	if (!dot || strchr(dot, '/'))
		return false;
	return !strcasecmp(dot, ".yaml") || !strcasecmp(dot, ".yml");
}

struct vb_spec *vb_spec_load(const char *path, vb_error *err)
{
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
	/* Read at most one byte past the limit: enough to know it is too big,
	 * whatever st_size says (pipes, growing files). */
	size_t cap = SPEC_MAX_FILE + 1, len = 0;
	char *buf = malloc(cap);
	if (!buf) {
		close(fd);
		vb_error_set(err, VB_E_RUNTIME, "%s: out of memory", path);
		return NULL;
	}
	while (len < cap) {
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			vb_error_errno(err, errno, "%s: read", path);
			free(buf);
			close(fd);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	struct vb_spec *spec = vb_spec_load_string(buf, len, path, has_yaml_ext(path), err);
	free(buf);
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
