/* SPDX-License-Identifier: Apache-2.0 */
/* Option parsing shared by the verbs, and the signal set-up of those that
 * boot VMs. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>

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
	/* Like a spec's mounts: a missing rw directory is created (it is where
	 * results go); a missing ro one is a mistake. */
	struct stat st;
	if (rw && stat(copy, &st) < 0 && errno == ENOENT && vb_mkdir_p(copy, 0755, err) < 0) {
		vb_error_prefix(err, "--mount %s: creating the host directory", arg);
		err->kind = VB_E_USAGE;
		return -1;
	}
	char *abs = realpath(copy, NULL);
	if (!abs) {
		vb_error_errno(err, errno, "--mount %s: %s", arg, copy);
		err->kind = VB_E_USAGE;
		return -1;
	}
	if (!vb_cli_keep(a, abs))
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (stat(abs, &st) < 0 || !S_ISDIR(st.st_mode))
		return vb_error_set(err, VB_E_USAGE, "--mount %s: %s is not a directory", arg, abs);
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
	if (!strcmp(a, "--file")) {
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
		vb_term_puts(out, line, 0);
		fputc('\n', out);
		fflush(out);
	}
}

int vb_cli_write_out(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			poll(&pfd, 1, 1000);
		} else if (w < 0 && errno != EINTR) {
			return -1;
		} else if (w == 0) {
			errno = EIO;
			return -1;
		}
	}
	return 0;
}

/* ---- option errors, shared wording --------------------------------------- */

/* The first (len) bytes of (s) as echoed in an error: at most 80 bytes,
 * made safe for the terminal (util/term.h). */
static void printable(char *out, size_t size, const char *s, size_t len)
{
	vb_term_copyn(out, size < 81 ? size : 81, s, len, 0);
}

/* Optimal string alignment distance: an edit, an insertion, a deletion or
 * a swap of two neighbours each count 1 ("exce" is 1 from "exec"). */
size_t vb_cli_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 32 || lb > 32)
		return SIZE_MAX;
	size_t d[33][33];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t v = d[i - 1][j - 1] + cost;
			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

const char *vb_cli_suggest(const char *word, const char *const *names, size_t n)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX, len = strlen(word);
	for (size_t i = 0; i < n; i++) {
		size_t d = vb_cli_distance(word, names[i]);
		if (d < best_d) {
			best_d = d;
			best = names[i];
		}
	}
	/* close enough to be a typo, not another word: one edit in three
	 * letters at most, two edits at most */
	if (!best || best_d == 0 || best_d > 2 || best_d * 3 > len)
		return NULL;
	return best;
}

int vb_cli_unknown_option(const char *verb, const char *arg, const char *hint, vb_error *err)
{
	char shown[96];
	printable(shown, sizeof(shown), arg, strcspn(arg, "="));
	if (hint)
		return vb_error_set(err, VB_E_USAGE,
				    "%s: unknown option '%s'; did you mean '%s'? (see 'voidbox %s --help')",
				    verb, shown, hint, verb);
	return vb_error_set(err, VB_E_USAGE, "%s: unknown option '%s' (see 'voidbox %s --help')", verb,
			    shown, verb);
}

int vb_cli_unknown_command(const char *verb, const char *word, const char *const *names, size_t n,
			   vb_error *err)
{
	char shown[96];
	printable(shown, sizeof(shown), word, strlen(word));
	const char *near = vb_cli_suggest(shown, names, n);
	if (near)
		return vb_error_set(err, VB_E_USAGE,
				    "%s: unknown command '%s'; did you mean '%s'? (see 'voidbox %s --help')",
				    verb, shown, near, verb);
	return vb_error_set(err, VB_E_USAGE, "%s: unknown command '%s' (see 'voidbox %s --help')", verb,
			    shown, verb);
}

int vb_cli_missing_value(const char *verb, const char *opt, vb_error *err)
{
	char shown[96];
	printable(shown, sizeof(shown), opt, strlen(opt));
	return vb_error_set(err, VB_E_USAGE, "%s: option '%s' needs a value (see 'voidbox %s --help')",
			    verb, shown, verb);
}

int vb_cli_unexpected_arg(const char *verb, const char *arg, vb_error *err)
{
	char shown[96];
	printable(shown, sizeof(shown), arg, strlen(arg));
	return vb_error_set(err, VB_E_USAGE, "%s: unexpected argument '%s' (see 'voidbox %s --help')",
			    verb, shown, verb);
}

int vb_cli_getopt_fail(const char *verb, int c, char **argv, const struct option *longopts,
		       vb_error *err)
{
	const char *word = optind > 0 ? argv[optind - 1] : "";
	if (!strncmp(word, "--", 2) && word[2]) {
		const char *name = word + 2;
		size_t len = strcspn(name, "=");
		/* Is (word) the long option getopt complained about?  Unknown
		 * long options leave optopt 0; known ones set it to their val. */
		const struct option *hit = NULL;
		for (const struct option *o = longopts; optopt && o && o->name; o++)
			if (o->val == optopt && !strncmp(o->name, name, len)) {
				hit = o;
				break;
			}
		if (!optopt || hit) {
			char shown[96];
			printable(shown, sizeof(shown), word, 2 + len);
			if (hit && c == ':')
				return vb_cli_missing_value(verb, shown, err);
			if (hit) /* "--help=x": a flag given a value */
				return vb_error_set(err, VB_E_USAGE,
						    "%s: option '--%s' takes no value (see 'voidbox %s --help')",
						    verb, hit->name, verb);
			const char *names[128];
			size_t n = 0;
			for (const struct option *o = longopts; o && o->name && n < 128; o++)
				names[n++] = o->name;
			char typed[96];
			printable(typed, sizeof(typed), name, len);
			const char *near = vb_cli_suggest(typed, names, n);
			char hint[96];
			if (near)
				snprintf(hint, sizeof(hint), "--%s", near);
			return vb_cli_unknown_option(verb, shown, near ? hint : NULL, err);
		}
	}
	char opt[3] = { '-', optopt > ' ' && optopt < 0x7f ? (char)optopt : '?', '\0' };
	if (c == ':')
		return vb_cli_missing_value(verb, opt, err);
	return vb_cli_unknown_option(verb, opt, NULL, err);
}

int vb_cli_bad_option(const char *verb, const char *arg, const char *const *value_opts,
		      const char *const *flags, vb_error *err)
{
	for (size_t i = 0; value_opts && value_opts[i]; i++)
		if (!strcmp(arg, value_opts[i]))
			return vb_cli_missing_value(verb, arg, err);
	const char *names[64];
	size_t n = 0;
	for (size_t i = 0; value_opts && value_opts[i] && n < 64; i++)
		if (!strncmp(value_opts[i], "--", 2))
			names[n++] = value_opts[i] + 2;
	for (size_t i = 0; flags && flags[i] && n < 64; i++)
		if (!strncmp(flags[i], "--", 2))
			names[n++] = flags[i] + 2;
	const char *near = NULL;
	char typed[96], hint[100];
	if (!strncmp(arg, "--", 2) && arg[2]) {
		printable(typed, sizeof(typed), arg + 2, strcspn(arg + 2, "="));
		near = vb_cli_suggest(typed, names, n);
	}
	if (near)
		snprintf(hint, sizeof(hint), "--%s", near);
	return vb_cli_unknown_option(verb, arg, near ? hint : NULL, err);
}

int vb_cli_output_format(const char *verb, const char *value, int *json, vb_error *err)
{
	if (!strcmp(value, "json")) {
		*json = 1;
		return 0;
	}
	if (!strcmp(value, "text") || !strcmp(value, "human")) {
		*json = 0;
		return 0;
	}
	char shown[96];
	printable(shown, sizeof(shown), value, strlen(value));
	return vb_error_set(err, VB_E_USAGE, "%s: --output must be text or json, not '%s' (see 'voidbox %s --help')",
			    verb, shown, verb);
}

/* ---- sizes ------------------------------------------------------------------ */

int vb_cli_parse_size(const char *s, uint64_t unit, uint64_t *bytes)
{
	char *end;
	errno = 0;
	if (!s[0] || s[0] == '-' || s[0] == '+' || s[0] == ' ')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	if (*end) {
		switch (*end | 0x20) { /* lower case */
		case 'b': unit = 1; break;
		case 'k': unit = 1ull << 10; break;
		case 'm': unit = 1ull << 20; break;
		case 'g': unit = 1ull << 30; break;
		case 't': unit = 1ull << 40; break;
		default: return -1;
		}
		/* 1G, 1g, 1GB, 1GiB: binary units all */
		const char *rest = end + 1;
		if ((*end | 0x20) != 'b' && ((rest[0] | 0x20) == 'i'))
			rest++;
		if ((*end | 0x20) != 'b' && (rest[0] | 0x20) == 'b')
			rest++;
		if (*rest)
			return -1;
	}
	if (v > UINT64_MAX / unit)
		return -1;
	*bytes = v * unit;
	return 0;
}

int vb_cli_parse_memory(const char *verb, const char *s, unsigned *mib, vb_error *err)
{
	uint64_t b;
	char shown[96];
	printable(shown, sizeof(shown), s, strlen(s));
	if (vb_cli_parse_size(s, 1ull << 20, &b) < 0 || b % (1ull << 20) || b < (64ull << 20) ||
	    b > (1ull << 40))
		return vb_error_set(err, VB_E_USAGE,
				    "%s: --memory %s: expected a size from 64M to 1T in whole MiB "
				    "(e.g. 512, 512M, 1G; a plain number is MiB)",
				    verb, shown);
	*mib = (unsigned)(b >> 20);
	return 0;
}

/* ---- run --budget --------------------------------------------------------- */

#define BUDGET_KEYS "max_tokens, max_cost_usd, max_requests"
#define BUDGET_EXAMPLE "e.g. --budget max_tokens=200000,max_cost_usd=2.50"

/* Digits only (so no sign, space, hex or exponent), at most one '.' when
 * (dot) allows it. */
static bool plain_number(const char *s, size_t n, bool dot)
{
	size_t digits = 0, dots = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] >= '0' && s[i] <= '9')
			digits++;
		else if (s[i] == '.' && dot)
			dots++;
		else
			return false;
	}
	return digits > 0 && dots <= 1 && digits <= 18;
}

int vb_cli_parse_llm_budget(const char *arg, struct vb_run_llm_budget *b, vb_error *err)
{
	static const char *const keys[] = { "max_tokens", "max_cost_usd", "max_requests" };
	char shown[96];
	if (!*arg)
		return vb_error_set(err, VB_E_USAGE,
				    "--budget: expected KEY=VALUE[,KEY=VALUE...] with keys " BUDGET_KEYS
				    " (" BUDGET_EXAMPLE ")");
	for (const char *p = arg;;) {
		size_t len = strcspn(p, ",");
		const char *eq = memchr(p, '=', len);
		if (!eq)
			return vb_error_set(err, VB_E_USAGE,
					    "--budget: '%s' is not KEY=VALUE (keys " BUDGET_KEYS
					    "; " BUDGET_EXAMPLE ")",
					    vb_term_copyn(shown, sizeof(shown), p, len, 0));
		size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
		const char *v = eq + 1;
		int k = -1;
		for (int i = 0; i < 3; i++)
			if (strlen(keys[i]) == klen && !memcmp(p, keys[i], klen))
				k = i;
		if (k < 0) {
			char key[40];
			vb_term_copyn(key, sizeof(key), p, klen, 0);
			const char *near = vb_cli_suggest(key, keys, 3);
			if (near)
				return vb_error_set(err, VB_E_USAGE,
						    "--budget: unknown key '%s'; did you mean '%s'? "
						    "(keys: " BUDGET_KEYS ")",
						    key, near);
			return vb_error_set(err, VB_E_USAGE,
					    "--budget: unknown key '%s' (keys: " BUDGET_KEYS ")", key);
		}
		vb_term_copyn(shown, sizeof(shown), v, vlen, 0);
		bool cost = k == 1;
		bool set = cost ? b->max_cost_usd > 0 : (k == 0 ? b->max_tokens : b->max_requests) != 0;
		if (set)
			return vb_error_set(err, VB_E_USAGE, "--budget: %s is given twice", keys[k]);
		char num[32];
		bool ok = plain_number(v, vlen, cost) && vlen < sizeof(num);
		double d = 0;
		uint64_t u = 0;
		if (ok) {
			memcpy(num, v, vlen);
			num[vlen] = '\0';
			if (cost)
				d = strtod(num, NULL);
			else
				u = strtoull(num, NULL, 10);
			ok = cost ? d > 0 : u > 0;
		}
		if (!ok)
			return vb_error_set(err, VB_E_USAGE,
					    "--budget %s=%s: expected %s greater than 0 (leave the key "
					    "out for no limit)",
					    keys[k], shown,
					    cost ? "an amount of US dollars such as 2.50" :
						   "a whole number");
		if (cost)
			b->max_cost_usd = d;
		else if (k == 0)
			b->max_tokens = u;
		else
			b->max_requests = u;
		if (!p[len])
			return 0;
		p += len + 1;
	}
}
