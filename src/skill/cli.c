/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli:NAME skills: the host's program NAME (found on the host's PATH) with
 * its shared-library closure and dynamic loader, read into memory to be
 * written into the stage's VM (src/run/skills_cli.c).  The guest image has
 * no glibc, so a dynamic program runs there through its own copied loader.
 *
 * The closure comes from the host's loader itself (`ld.so --list`), not
 * from our own DT_NEEDED walk: only the loader knows its search order
 * (RUNPATH, $ORIGIN, ld.so.cache, hwcaps subdirectories).  In --list mode
 * the loader maps the libraries and prints them without running any of
 * their code.  The program's loader is its PT_INTERP, read here.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "skill/skill.h"
#include "util/term.h"
#include "util/util.h"

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#else
#define HOST_MACHINE EM_NONE
#endif

#define LIST_MAX ((size_t)64 << 10) /* the loader's --list output */

static const char *safe(char *buf, size_t n, const char *s)
{
	return vb_term_copy(buf, n, s, 0);
}

static void skill_files_add(struct vb_skill *s, struct vb_skill_file *f)
{
	s->files[s->n_files++] = *f;
	s->total += f->len;
}

/* Read (path) whole: a regular file, not setuid/setgid, that keeps the
 * closure within its limits. */
static int read_one(struct vb_skill *s, const char *path, const char *rel, vb_error *err)
{
	char l[300];
	safe(l, sizeof(l), path);
	if (s->n_files >= VB_SKILL_CLI_FILES_MAX)
		return vb_error_set(err, VB_E_USAGE, "more than %d files with its libraries",
				    VB_SKILL_CLI_FILES_MAX);
	for (size_t i = 0; i < s->n_files; i++)
		if (!strcmp(s->files[i].rel, rel))
			return 0; /* two names of one library */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return vb_error_errno(err, errno, "cannot open %s", l);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return vb_error_errno(err, errno, "cannot stat %s", l);
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & (S_ISUID | S_ISGID))) {
		close(fd);
		return vb_error_set(err, VB_E_USAGE, "%s is %s: refused", l,
				    S_ISREG(st.st_mode) ? "setuid or setgid" : "not a regular file");
	}
	if ((uint64_t)st.st_size > VB_SKILL_CLI_BYTES_MAX - s->total) {
		close(fd);
		return vb_error_set(err, VB_E_USAGE, "more than %zu MiB with its libraries (at %s)",
				    VB_SKILL_CLI_BYTES_MAX >> 20, l);
	}
	size_t len = (size_t)st.st_size, got = 0;
	uint8_t *data = malloc(len ? len : 1);
	if (!data) {
		close(fd);
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	while (got < len) {
		ssize_t n = read(fd, data + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(fd);
			free(data);
			return vb_error_errno(err, e, "cannot read %s", l);
		}
		got += (size_t)n;
	}
	close(fd);
	struct vb_skill_file f = { .rel = strdup(rel), .data = data, .len = len, .mode = 0755 };
	if (!f.rel) {
		free(data);
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	skill_files_add(s, &f);
	return 0;
}

/* The program's PT_INTERP into (interp), "" for a static program.  Only
 * 64-bit ELF files of the host's machine are taken. */
static int elf_interp(const uint8_t *d, size_t len, const char *label, char *interp, size_t n,
		      vb_error *err)
{
	*interp = 0;
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)(const void *)d;
	if (len < sizeof(*eh) || memcmp(d, ELFMAG, SELFMAG))
		return vb_error_set(err, VB_E_USAGE, "%s is not an ELF program (a script?)", label);
	if (d[EI_CLASS] != ELFCLASS64 || eh->e_machine != HOST_MACHINE)
		return vb_error_set(err, VB_E_USAGE, "%s is not a 64-bit program for this machine",
				    label);
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > len ||
	    (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > len - eh->e_phoff)
		return vb_error_set(err, VB_E_USAGE, "%s: bad ELF program headers", label);
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, d + eh->e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_INTERP)
			continue;
		if (ph.p_offset > len || ph.p_filesz > len - ph.p_offset || ph.p_filesz < 2 ||
		    ph.p_filesz > n || d[ph.p_offset + ph.p_filesz - 1] != 0 ||
		    d[ph.p_offset] != '/')
			return vb_error_set(err, VB_E_USAGE, "%s: bad ELF interpreter", label);
		memcpy(interp, d + ph.p_offset, ph.p_filesz);
		return 0;
	}
	return 0;
}

/* `interp --list path`'s output (bounded), its stderr dropped. */
static int loader_list(const char *interp, const char *path, char **out, vb_error *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return vb_error_errno(err, errno, "pipe");
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return vb_error_errno(err, errno, "fork");
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);
		dup2(p[1], 1);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 2);
		}
		execl(interp, interp, "--list", path, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	char *buf = malloc(LIST_MAX + 1);
	size_t got = 0;
	while (buf && got < LIST_MAX) {
		ssize_t n = read(p[0], buf + got, LIST_MAX - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got >= LIST_MAX)
		kill(pid, SIGKILL);
	close(p[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!buf)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	buf[got] = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got >= LIST_MAX) {
		free(buf);
		char l[300];
		return vb_error_set(err, VB_E_USAGE, "%s --list failed: cannot list its libraries",
				    safe(l, sizeof(l), interp));
	}
	*out = buf;
	return 0;
}

/* A library's file name: one path component of letters, digits, '-',
 * '_', '.' and '+' (libstdc++.so.6), not "." or "..".  Libraries' names
 * never reach the launcher script (only the loader's does). */
static int lib_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (!n || n > VB_SKILL_NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == '+'))
			return 0;
	}
	return 1;
}

/* Each library of the loader's listing: "\tNAME => PATH (0x...)"; the
 * vDSO ("linux-vdso.so.1 (0x...)") and the loader ("/lib64/ld-... (0x...)")
 * are skipped, a "NAME => not found" refused. */
static int add_listed(struct vb_skill *s, char *list, vb_error *err)
{
	char *save = NULL;
	for (char *line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		while (*line == '\t' || *line == ' ')
			line++;
		char *arrow = strstr(line, " => ");
		if (!arrow)
			continue;
		*arrow = 0;
		char *path = arrow + 4, *end = strstr(path, " (0x");
		char l[200];
		if (!strncmp(path, "not found", 9) || !end || *path != '/')
			return vb_error_set(err, VB_E_USAGE, "library %s not found on this host",
					    safe(l, sizeof(l), line));
		*end = 0;
		const char *base = strrchr(line, '/') ? strrchr(line, '/') + 1 : line;
		if (!lib_name_ok(base))
			return vb_error_set(err, VB_E_USAGE, "library name %s refused",
					    safe(l, sizeof(l), line));
		_cleanup_free_ char *rel = vb_strfmt("lib/%s", base);
		if (!rel)
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		if (read_one(s, path, rel, err) < 0)
			return -1;
	}
	return 0;
}

/* The first executable regular file NAME in the host's PATH's absolute
 * directories. */
static char *find_on_path(const char *name)
{
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *p = path; *p;) {
		const char *e = strchrnul(p, ':');
		if (*p == '/') {
			char *cand = vb_strfmt("%.*s/%s", (int)(e - p), p, name);
			struct stat st;
			if (cand && stat(cand, &st) == 0 && S_ISREG(st.st_mode) &&
			    access(cand, X_OK) == 0)
				return cand;
			free(cand);
		}
		p = *e ? e + 1 : e;
	}
	return NULL;
}

int vb_skill_cli_resolve(const char *name, struct vb_skill *s, vb_error *err)
{
	char l[200];
	if (!name || !vb_skill_name_ok(name) || name[0] == '.' || name[0] == '-')
		return vb_error_set(err, VB_E_USAGE, "'%s' is not a program name",
				    safe(l, sizeof(l), name ? name : ""));
	s->type = "cli";
	if (!(s->name = strdup(name)))
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	s->source = find_on_path(name);
	if (!s->source)
		return vb_error_set(err, VB_E_USAGE, "program %s not found on this host's PATH "
				    "(nor has the stage an image that could provide it)",
				    safe(l, sizeof(l), name));
	s->files = calloc(VB_SKILL_CLI_FILES_MAX, sizeof(*s->files));
	if (!s->files)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (read_one(s, s->source, name, err) < 0)
		return -1;
	vb_skill_sha256(s->files[0].data, s->files[0].len, s->sha256);
	char interp[256];
	if (elf_interp(s->files[0].data, s->files[0].len, safe(l, sizeof(l), s->source), interp,
		       sizeof(interp), err) < 0)
		return -1;
	if (!*interp)
		return 0; /* static: runs as it is */
	const char *ib = strrchr(interp, '/') + 1;
	_cleanup_free_ char *irel = vb_strfmt("lib/%s", ib);
	if (!irel)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (!vb_skill_name_ok(ib))
		return vb_error_set(err, VB_E_USAGE, "bad ELF interpreter");
	if (read_one(s, interp, irel, err) < 0)
		return -1;
	_cleanup_free_ char *list = NULL;
	if (loader_list(interp, s->source, &list, err) < 0)
		return -1;
	return add_listed(s, list, err);
}
