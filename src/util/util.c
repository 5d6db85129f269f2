/* SPDX-License-Identifier: Apache-2.0 */
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "util/term.h"

int64_t vb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t vb_now_ms(void)
{
	return vb_now_ns() / 1000000;
}

int vb_random(void *buf, size_t n, vb_error *err)
{
	uint8_t *p = buf;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return vb_error_errno(err, errno, "getrandom");
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int vb_random_hex(char *out, size_t nbytes, vb_error *err)
{
	uint8_t raw[32];
	if (nbytes > sizeof(raw))
		return vb_error_set(err, VB_E_RUNTIME, "random id too long");
	if (vb_random(raw, nbytes, err) < 0)
		return -1;
	for (size_t i = 0; i < nbytes; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

int vb_write_full(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int vb_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	_cleanup_free_ char *tmp = vb_strfmt("%s.tmp.XXXXXX", path);
	if (!tmp) {
		errno = ENOMEM;
		return -1;
	}
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fchmod(fd, mode) < 0 || vb_write_full(fd, data, len) < 0 ? -1 : 0;
	int e = errno;
	if (close(fd) < 0 && rc == 0) {
		rc = -1;
		e = errno;
	}
	if (rc == 0 && rename(tmp, path) < 0) {
		rc = -1;
		e = errno;
	}
	if (rc < 0) {
		unlink(tmp);
		errno = e;
	}
	return rc;
}

ssize_t vb_read_full(int fd, void *buf, size_t n)
{
	char *p = buf;
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int vb_mkdir_p(const char *path, unsigned mode, vb_error *err)
{
	char buf[4096];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return vb_error_set(err, VB_E_RUNTIME, "path too long: %s", path);
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return vb_error_errno(err, errno, "cannot create directory %s", buf);
		*p = c;
		if (c == '\0')
			break;
	}
	return 0;
}

static int rm_at(int parent, const char *name)
{
	if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -1;
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			rc |= rm_at(dirfd(d), e->d_name);
	closedir(d);
	if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		rc = -1;
	return rc;
}

int vb_rm_rf(const char *path)
{
	return rm_at(AT_FDCWD, path);
}

void vb_sweep_dead_owners(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	size_t plen = strlen(prefix);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, prefix, plen))
			continue;
		char *end;
		errno = 0;
		long pid = strtol(e->d_name + plen, &end, 10);
		if (errno || end == e->d_name + plen || *end != '-' || pid <= 0 || pid > INT_MAX)
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
			continue;
		_cleanup_free_ char *p = vb_strfmt("%s/%s", dir, e->d_name);
		if (p)
			vb_rm_rf(p);
	}
	closedir(d);
}

char *vb_read_file(const char *path, size_t max, size_t *len, vb_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		vb_error_errno(err, errno, "cannot open %s", path);
		return NULL;
	}
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	for (;;) {
		if (!buf) {
			vb_error_set(err, VB_E_RUNTIME, "out of memory reading %s", path);
			return NULL;
		}
		if (n == cap) {
			if (cap >= max) {
				free(buf);
				vb_error_set(err, VB_E_RUNTIME, "%s is larger than %zu bytes", path, max);
				return NULL;
			}
			cap = cap * 2 > max ? max : cap * 2;
			char *nb = realloc(buf, cap + 1);
			if (!nb)
				free(buf);
			buf = nb;
			continue;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			vb_error_errno(err, errno, "cannot read %s", path);
			free(buf);
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

int vb_line_with(const char *text, const char *needle, int last, char *out, size_t n)
{
	const char *hit = NULL;
	if (n)
		out[0] = '\0';
	for (const char *p = text; (p = strstr(p, needle)); p++) {
		hit = p;
		if (!last)
			break;
	}
	if (!hit || !n)
		return 0;
	vb_term_copyn(out, n, hit, strcspn(hit, "\r\n"), 0);
	return 1;
}

char *vb_strfmt(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	return r < 0 ? NULL : s;
}

static char *xdg_dir(const char *var, const char *fallback, vb_error *err)
{
	const char *base = getenv(var);
	char *dir;
	if (base && base[0] == '/') {
		dir = vb_strfmt("%s/voidbox", base);
	} else {
		const char *home = getenv("HOME");
		if (!home || home[0] != '/') { /* e.g. a service without $HOME */
			struct passwd *pw = getpwuid(getuid());
			home = pw ? pw->pw_dir : NULL;
		}
		if (!home || home[0] != '/') {
			vb_error_set(err, VB_E_RUNTIME, "neither $%s nor $HOME is set", var);
			return NULL;
		}
		dir = vb_strfmt("%s/%s/voidbox", home, fallback);
	}
	if (!dir)
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
	return dir;
}

char *vb_cache_dir(vb_error *err)
{
	return xdg_dir("XDG_CACHE_HOME", ".cache", err);
}

char *vb_state_dir(vb_error *err)
{
	return xdg_dir("XDG_STATE_HOME", ".local/state", err);
}

char *vb_runtime_root(vb_error *err)
{
	const char *base = getenv("XDG_RUNTIME_DIR");
	if (!base || base[0] != '/' || access(base, W_OK) != 0)
		base = "/tmp";
	char *dir = vb_strfmt("%s/voidbox-%u", base, (unsigned)getuid());
	if (!dir) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		vb_error_errno(err, errno, "cannot create runtime directory %s", dir);
		free(dir);
		return NULL;
	}
	/* In a shared /tmp someone else could have made it first: refuse
	 * anything but our own plain 0700 directory. */
	struct stat st;
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
	    (st.st_mode & 077)) {
		vb_error_set(err, VB_E_RUNTIME,
			     "runtime directory %s is not a private directory owned by uid %u",
			     dir, (unsigned)getuid());
		free(dir);
		return NULL;
	}
	return dir;
}

#ifndef VB_DATADIR
#define VB_DATADIR "/usr/local/share/voidbox"
#endif

static int has_data(const char *dir)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/guest/kernel/build.sh", dir);
	return n > 0 && (size_t)n < sizeof(path) && access(path, X_OK) == 0;
}

static char found_datadir[PATH_MAX];
static pthread_once_t datadir_once = PTHREAD_ONCE_INIT;

/* Found from where the binary is, not where it was built: an installed or
 * copied tree keeps working after the source tree is gone.  /proc/self/exe
 * has every symlink resolved, so a link in ~/bin to an installed binary
 * still finds the share directory next to the real one. */
static void find_datadir(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;
	if (n > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';         /* the binary's directory: PREFIX/bin or build/ */
		slash = strrchr(exe, '/');
		if (slash && slash != exe) {
			*slash = '\0';         /* its parent: PREFIX or the source tree */
			int m = snprintf(found_datadir, sizeof(found_datadir), "%s/share/voidbox", exe);
			if (m > 0 && (size_t)m < sizeof(found_datadir) && has_data(found_datadir))
				return;
			if (has_data(exe)) {
				snprintf(found_datadir, sizeof(found_datadir), "%s", exe);
				return;
			}
		}
	}
	snprintf(found_datadir, sizeof(found_datadir), "%s", VB_DATADIR);
}

const char *vb_datadir(void)
{
	const char *d = getenv("VOIDBOX_DATADIR");
	if (d && d[0])
		return d;
	pthread_once(&datadir_once, find_datadir);
	return found_datadir;
}

int vb_is_zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	/* each byte equal to the next, and the first zero */
	return n == 0 || (b[0] == 0 && memcmp(b, b + 1, n - 1) == 0);
}

uint64_t vb_env_bytes(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);
	if (!s || !s[0] || s[0] == '-' || s[0] == '+' || s[0] == ' ')
		return dflt;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (end == s || errno) /* no digits (a suffix alone), or too large */
		return dflt;
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: break;
	}
	if (*end || (shift && n > (~0ull >> shift)))
		return dflt;
	return (uint64_t)n << shift;
}
