/* SPDX-License-Identifier: Apache-2.0 */
/* Option parsing and signal set-up shared by the verbs that boot VMs. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>

#include "cli/cli.h"
#include "util/util.h"

char *vb_cli_keep(struct vb_cli_arena *a, char *s)
{
	if (!s || a->n >= sizeof(a->owned) / sizeof(a->owned[0])) {
		free(s);
		return NULL;
	}
	return a->owned[a->n++] = s;
}

void vb_cli_arena_free(struct vb_cli_arena *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->owned[i]);
	a->n = 0;
}

int vb_cli_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return -1;
	*out = v;
	return 0;
}

int vb_cli_add_mount(struct vb_cli_arena *a, struct vb_mount *list, size_t *n, size_t max,
		     const char *arg, vb_error *err)
{
	if (*n >= max)
		return vb_error_set(err, VB_E_USAGE, "too many --mount options");
	char *copy = vb_cli_keep(a, strdup(arg));
	if (!copy)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	char *guest = strchr(copy, ':');
	if (!guest)
		return vb_error_set(err, VB_E_USAGE, "--mount %s: expected HOST:GUEST[:ro|rw]", arg);
	*guest++ = '\0';
	char *mode = strchr(guest, ':');
	int rw = 0;
	if (mode) {
		*mode++ = '\0';
		if (!strcmp(mode, "rw"))
			rw = 1;
		else if (strcmp(mode, "ro"))
			return vb_error_set(err, VB_E_USAGE, "--mount %s: mode must be ro or rw", arg);
	}
	char *abs = realpath(copy, NULL);
	if (!abs) {
		vb_error_errno(err, errno, "--mount %s: %s", arg, copy);
		err->kind = VB_E_USAGE;
		return -1;
	}
	if (!vb_cli_keep(a, abs))
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	list[(*n)++] = (struct vb_mount){ .host = abs, .guest = guest, .rw = rw };
	return 0;
}

int vb_cli_add_env(struct vb_cli_arena *a, const char **list, size_t *n, size_t max,
		   const char *arg, vb_error *err)
{
	if (*n >= max)
		return vb_error_set(err, VB_E_USAGE, "too many --env options");
	if (arg[0] == '=' || arg[0] == '\0')
		return vb_error_set(err, VB_E_USAGE, "--env %s: expected K=V", arg);
	if (!strchr(arg, '=')) { /* K alone: the host's value, like docker */
		const char *v = getenv(arg);
		if (!v)
			return 0;
		if (!(arg = vb_cli_keep(a, vb_strfmt("%s=%s", arg, v))))
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	list[(*n)++] = arg;
	return 0;
}

int vb_cli_stop_signals(const sigset_t *extra, vb_error *err)
{
	sigset_t stop, all;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	sigaddset(&stop, SIGQUIT);
	all = stop;
	for (int sig = 1; extra && sig < NSIG; sig++)
		if (sigismember(extra, sig) == 1)
			sigaddset(&all, sig);
	sigprocmask(SIG_BLOCK, &all, NULL);
	signal(SIGPIPE, SIG_IGN);
	int fd = signalfd(-1, &stop, SFD_CLOEXEC);
	if (fd < 0)
		return vb_error_errno(err, errno, "signalfd");
	return fd;
}

int vb_cli_file_arg(const char *verb, int argc, char **argv, int *i, const char **file,
		    vb_error *err)
{
	const char *a = argv[*i], *val;
	if (!strcmp(a, "--file") || !strcmp(a, "-f")) {
		if (*i + 1 >= argc)
			return vb_error_set(err, VB_E_USAGE, "%s: %s needs a file name", verb, a);
		val = argv[++*i];
	} else if (!strncmp(a, "--file=", 7)) {
		val = a + 7;
	} else if (a[0] == '-' && a[1]) {
		return 0;
	} else {
		val = a;
	}
	if (*file)
		return vb_error_set(err, VB_E_USAGE, "%s: one spec file at a time", verb);
	*file = val;
	return 1;
}

int vb_cli_parse_accel(const char *arg, enum vb_accel *out, vb_error *err)
{
	if (vb_accel_parse(arg, out) < 0)
		return vb_error_set(err, VB_E_USAGE, "--accel: expected auto, kvm or tcg");
	return 0;
}

void vb_cli_accel_notice(const struct vb_accel_info *info, FILE *out)
{
	char line[1024];
	if (vb_accel_notice(info, line, sizeof(line))) {
		fprintf(out, "%s\n", line);
		fflush(out);
	}
}
