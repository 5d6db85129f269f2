/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exec.c — EXEC: one thread per process, streaming with flow control.
 *
 * The exec thread forks the child (holding the reaper's table lock, see
 * reaper.c), then runs a poll loop over: its eventfd (woken by the reader
 * for acks, stdin, signals and resizes, by the reaper when the child exits,
 * by the session's end), the stdout/stderr pipes (only while the host has
 * granted output credit: with none left the child blocks on a full pipe,
 * which is the back-pressure) and the stdin pipe (while input is queued).
 *
 * A PTY exec (pty.c) has one terminal instead of three pipes: the child is
 * a session leader with the slave as its controlling terminal and fds 0-2;
 * the master is read as stream 1 (EIO, once nothing holds the slave, is its
 * end) and written with stdin, and the host's EOF becomes a VEOF character.
 *
 * The child's whole process group is killed when the child exits (by the
 * reaper, while the zombie still pins the group id), on timeout and when the
 * session ends.  After the exit the pipes are drained to EOF; a process that
 * escaped the group and keeps a pipe open gets AGENT_DRAIN_MS of credited
 * time before the drain gives up.  EXEC_EXIT is always the last frame.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1u << 2)
#endif
#define MAX_PATH_DIRS 256
#define NR_OPEN_MAX 1048576u

/* Output credit counts whole frames (see vb_proto.h): room for a byte? */
#define HAS_CREDIT(c) ((c) > VB_OUTPUT_FRAME_OVERHEAD)

#define container_of(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

struct chunk {
	struct chunk *next;
	size_t len, off;
	uint8_t data[];
};

struct exec {
	struct exec *next; /* in conn->execs, under conn->lock */
	struct conn *c;
	uint32_t id;
	int efd; /* eventfd: wakes the exec thread */
	struct reap_entry reap;
	struct vb_exec_req req;
	struct agent_user who; /* req.uid/gid as resolved: name and home */

	pthread_mutex_t lock; /* everything below */
	pid_t pid;            /* 0 until forked */
	int exited, status;   /* set by the reaper */
	int cancelled;        /* the session ended */
	uint64_t sigs;        /* pending signals, bit (n - 1) for signal n */
	uint32_t rows, cols;  /* pending terminal size, when resize is set */
	int resize;
	uint64_t acked;       /* output credit returned, not yet collected */
	struct chunk *in_head, *in_tail;
	size_t in_unacked; /* stdin bytes received and not yet acknowledged */
	int in_eof;
};

/* What the child needs, prepared before fork(): the child itself only makes
 * system calls (no malloc, no locks: other threads may hold them). */
struct spawn {
	char *const *argv;
	char **envp;
	char **cands; /* paths to try, in order */
	size_t ncands;
	const char *cwd;
	int in, out, err, report;
	int ctty; /* PTY: new session, (in) becomes the controlling terminal */
	int drop;
	int caps; /* we are root: take what reaches PID 1 out of the child's reach */
	uid_t uid;
	gid_t gid;
	uint64_t lim[3][2]; /* RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_FSIZE: cur, max */
};

enum { STAGE_SETUP = 1, STAGE_CHDIR = 2, STAGE_EXEC = 3 };
struct child_report {
	int stage, err;
	char what[16];
};

/* ---- the child ----------------------------------------------------------- */

struct k_sigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static _Noreturn void child_fail(const struct spawn *sp, int stage, int err, const char *what)
{
	struct child_report r;
	memset(&r, 0, sizeof(r));
	r.stage = stage;
	r.err = err;
	for (size_t i = 0; what[i] && i < sizeof(r.what) - 1; i++)
		r.what[i] = what[i];
	ssize_t w = write(sp->report, &r, sizeof(r));
	(void)w;
	_exit(127);
}

/* Capabilities no stage keeps, root or not (numbers of linux/capability.h,
 * which musl does not ship).  What they guard reaches PID 1 or the kernel:
 * ptrace, /proc/1/mem and pidfd_getfd (SYS_PTRACE); modules, raw I/O, BPF
 * and perf (SYS_MODULE, SYS_RAWIO, BPF, PERFMON, SYS_ADMIN, which also
 * covers mount); the VM's life (SYS_BOOT); the policy's rlimits
 * (SYS_RESOURCE); starving the agent (SYS_NICE); device nodes (MKNOD);
 * getting any of them back (SETPCAP, SETFCAP).  docs/agent.md lists what
 * root keeps. */
static const int dropped_caps[] = {
	16 /* SYS_MODULE */,  17 /* SYS_RAWIO */,   19 /* SYS_PTRACE */,  20 /* SYS_PACCT */,
	21 /* SYS_ADMIN */,   22 /* SYS_BOOT */,    23 /* SYS_NICE */,    24 /* SYS_RESOURCE */,
	25 /* SYS_TIME */,    27 /* MKNOD */,       30 /* AUDIT_CONTROL */, 31 /* SETFCAP */,
	32 /* MAC_OVERRIDE */, 33 /* MAC_ADMIN */,  34 /* SYSLOG */,      38 /* PERFMON */,
	39 /* BPF */,         40 /* CHECKPOINT_RESTORE */,
	8 /* SETPCAP: last, the drops above need it */
};

struct cap_hdr {
	uint32_t version;
	int pid;
};
struct cap_data {
	uint32_t effective, permitted, inheritable;
};
#define CAP_VERSION_3 0x20080522u
#ifndef PR_CAPBSET_DROP
#define PR_CAPBSET_DROP 24
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

/* Out of the bounding set (so neither exec of a root program nor a setuid
 * binary gives them back) and out of this process's own sets.  A kernel
 * that predates a capability does not have it to drop (EINVAL). */
static int drop_caps(void)
{
	for (size_t i = 0; i < sizeof(dropped_caps) / sizeof(dropped_caps[0]); i++)
		if (syscall(SYS_prctl, PR_CAPBSET_DROP, dropped_caps[i], 0, 0, 0) < 0 &&
		    errno != EINVAL)
			return -1;
	struct cap_hdr h = { .version = CAP_VERSION_3, .pid = 0 };
	struct cap_data d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(dropped_caps) / sizeof(dropped_caps[0]); i++) {
		int c = dropped_caps[i];
		uint32_t keep = ~(1u << (c % 32));
		d[c / 32].effective &= keep;
		d[c / 32].permitted &= keep;
		d[c / 32].inheritable &= keep;
	}
	if (syscall(SYS_capset, &h, d) < 0)
		return -1;
	syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	return 0;
}

static _Noreturn void child_main(const struct spawn *sp)
{
	static const int res[3] = { RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_FSIZE };
	if (!sp->ctty)
		setpgid(0, 0);
	else if (setsid() < 0 || ioctl(sp->in, TIOCSCTTY, 0) < 0)
		child_fail(sp, STAGE_SETUP, errno, "setsid/ctty");
	/* default dispositions, nothing blocked: the agent ignores SIGPIPE and
	 * blocks others, and exec keeps ignored signals ignored */
	struct k_sigaction dfl = { 0 };
	for (int s = 1; s <= 64; s++)
		if (s != SIGKILL && s != SIGSTOP)
			syscall(SYS_rt_sigaction, s, &dfl, NULL, sizeof(dfl.mask));
	uint64_t none = 0;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none));
	umask(022);
	if (dup2(sp->in, 0) < 0 || dup2(sp->out, 1) < 0 || dup2(sp->err, 2) < 0)
		child_fail(sp, STAGE_SETUP, errno, "dup2");
	for (int i = 0; i < 3; i++) {
		struct rlimit rl = { .rlim_cur = (rlim_t)sp->lim[i][0], .rlim_max = (rlim_t)sp->lim[i][1] };
		if (syscall(SYS_prlimit64, 0, res[i], &rl, NULL) < 0)
			child_fail(sp, STAGE_SETUP, errno, "setrlimit");
	}
	if (sp->caps && drop_caps() < 0)
		child_fail(sp, STAGE_SETUP, errno, "capabilities");
	if (sp->drop) {
		/* raw system calls: only this (single-threaded) process */
		if (syscall(SYS_setgroups, 0, NULL) < 0)
			child_fail(sp, STAGE_SETUP, errno, "setgroups");
		if (syscall(SYS_setresgid, sp->gid, sp->gid, sp->gid) < 0)
			child_fail(sp, STAGE_SETUP, errno, "setgid");
		if (syscall(SYS_setresuid, sp->uid, sp->uid, sp->uid) < 0)
			child_fail(sp, STAGE_SETUP, errno, "setuid");
	}
	if (chdir(sp->cwd) < 0)
		child_fail(sp, STAGE_CHDIR, errno, "chdir");
	/* belt and braces: nothing of the agent's leaks into the program */
	syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
	int err = ENOENT, eacces = 0;
	for (size_t i = 0; i < sp->ncands; i++) {
		execve(sp->cands[i], sp->argv, sp->envp);
		int e = errno;
		if (e == EACCES) {
			eacces = 1;
		} else if (e != ENOENT && e != ENOTDIR && e != ESTALE && e != ENODEV &&
			   e != ETIMEDOUT) {
			err = e;
			break;
		}
	}
	if (err == ENOENT && eacces)
		err = EACCES;
	child_fail(sp, STAGE_EXEC, err, "exec");
}

/* ---- preparing the spawn ------------------------------------------------- */

static size_t key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return eq ? (size_t)(eq - kv) : strlen(kv);
}

static int same_key(const char *a, const char *b)
{
	size_t n = key_len(a);
	return n == key_len(b) && !memcmp(a, b, n);
}

/* The environment, from weakest to strongest: the image's Env (boot data),
 * a minimal default of our own (the agent's own environment is never
 * inherited; the image's PATH replaces ours), the request's entries (the
 * last one of a key wins).  The disks' bin dirs join whatever PATH won.
 * Strings point into (req), (own), the boot data or *path (caller frees);
 * returns NULL on OOM. */
static char **build_env(const struct vb_exec_req *req, const struct agent_user *who,
			char own[5][320], char **path)
{
	const struct vb_boot *bt = &g_agent.boot;
	int image_path = 0;
	for (size_t i = 0; i < bt->n_root_env; i++)
		image_path |= !strncmp(bt->root_env[i], "PATH=", 5);
	snprintf(own[0], sizeof(own[0]), "HOME=%s", who->home);
	snprintf(own[1], sizeof(own[1]), "USER=%s", who->name);
	snprintf(own[2], sizeof(own[2]), "LOGNAME=%s", who->name);
	snprintf(own[3], sizeof(own[3]), "TERM=%s", req->pty ? "xterm-256color" : "dumb");
	snprintf(own[4], sizeof(own[4]), "PATH=%s", AGENT_DEFAULT_PATH);

	size_t ncand = bt->n_root_env + 5 + req->envc, n = 0;
	char **cand = calloc(ncand, sizeof(char *));
	char **env = calloc(ncand + 2, sizeof(char *));
	if (!cand || !env) {
		free(cand);
		free(env);
		return NULL;
	}
	size_t k = 0;
	for (size_t i = 0; i < bt->n_root_env; i++)
		cand[k++] = bt->root_env[i];
	for (int i = 0; i < 5 - image_path; i++)
		cand[k++] = own[i];
	for (size_t i = 0; i < req->envc; i++)
		cand[k++] = req->envp[i];
	for (size_t j = 0; j < k; j++) {
		int later = 0;
		for (size_t l = j + 1; l < k && !later; l++)
			later = same_key(cand[j], cand[l]);
		if (!later)
			env[n++] = cand[j];
	}
	free(cand);
	if (g_agent.disk_path) {
		size_t at = n;
		for (size_t i = 0; i < n; i++)
			if (!strncmp(env[i], "PATH=", 5))
				at = i;
		const char *base = at < n ? env[at] : "PATH=" AGENT_DEFAULT_PATH;
		if (!(*path = malloc(strlen(base) + strlen(g_agent.disk_path) + 1))) {
			free(env);
			return NULL;
		}
		strcpy(*path, base);
		strcat(*path, g_agent.disk_path);
		env[at] = *path;
		n += at == n;
	}
	env[n] = NULL;
	return env;
}

/* The working directory when the request names none: the image's, else
 * the first root (/workspace). */
static const char *default_cwd(void)
{
	const char *wd = g_agent.boot.root_workdir;
	return wd ? wd : g_agent.roots[0];
}

static void free_cands(char **c, size_t n)
{
	for (size_t i = 0; c && i < n; i++)
		free(c[i]);
	free(c);
}

/* Where execvp would look for (prog), using the child's PATH. */
static char **build_cands(const char *prog, char **envp, size_t *n)
{
	*n = 0;
	if (strchr(prog, '/')) {
		char **c = calloc(1, sizeof(char *));
		if (c && !(c[0] = strdup(prog))) {
			free(c);
			return NULL;
		}
		*n = c ? 1 : 0;
		return c;
	}
	const char *path = AGENT_DEFAULT_PATH;
	for (char **e = envp; *e; e++)
		if (!strncmp(*e, "PATH=", 5))
			path = *e + 5;
	char **c = calloc(MAX_PATH_DIRS, sizeof(char *));
	if (!c)
		return NULL;
	size_t plen = strlen(prog);
	for (const char *p = path; *n < MAX_PATH_DIRS;) {
		const char *end = strchrnul(p, ':');
		size_t dlen = (size_t)(end - p);
		if (dlen + 1 + plen < PATH_MAX) {
			char *s = malloc(dlen + 1 + plen + 1);
			if (!s) {
				free_cands(c, *n);
				return NULL;
			}
			if (dlen == 0) /* an empty element is the current directory */
				memcpy(s, ".", (dlen = 1));
			else
				memcpy(s, p, dlen);
			s[dlen] = '/';
			memcpy(s + dlen + 1, prog, plen + 1);
			c[(*n)++] = s;
		}
		if (!*end)
			break;
		p = end + 1;
	}
	return c;
}

static void set_limit(uint64_t lim[2], uint64_t v, uint64_t dflt, uint64_t cap)
{
	if (v == 0)
		v = dflt;
	if (cap && v > cap)
		v = cap;
	lim[0] = lim[1] = v;
}

/* ---- shared state -------------------------------------------------------- */

/* A kill that cannot hit a stranger: the group id is pinned by our child
 * until the reaper has reaped it, which happens under e->lock. */
static void kill_group(struct exec *e, int sig)
{
	pthread_mutex_lock(&e->lock);
	if (e->pid > 0 && !e->exited)
		kill(-e->pid, sig);
	pthread_mutex_unlock(&e->lock);
}

static void on_child_exit(struct reap_entry *re)
{
	struct exec *e = container_of(re, struct exec, reap);
	pthread_mutex_lock(&e->lock);
	kill(-re->pid, SIGKILL); /* whatever is left of the group */
	e->status = reaper_reap(re->pid);
	e->exited = 1;
	agent_wake(e->efd);
	pthread_mutex_unlock(&e->lock);
}

static void drain_efd(int efd)
{
	uint64_t v;
	ssize_t r = read(efd, &v, sizeof(v));
	(void)r;
}

/* Block until the reaper has reported the child (after which nothing but
 * this thread touches e). */
static int wait_exit(struct exec *e)
{
	for (;;) {
		pthread_mutex_lock(&e->lock);
		int done = e->exited, st = e->status;
		pthread_mutex_unlock(&e->lock);
		if (done)
			return st;
		struct pollfd pfd = { .fd = e->efd, .events = POLLIN };
		poll(&pfd, 1, 1000);
		drain_efd(e->efd);
	}
}

static void free_chunks(struct chunk *c)
{
	while (c) {
		struct chunk *n = c->next;
		free(c);
		c = n;
	}
}

/* ---- frames -------------------------------------------------------------- */

static int send_u64s(struct exec *e, struct vb_buf *b, uint16_t type, uint16_t tag, uint64_t v)
{
	vb_msg_begin(b, type, 0, e->id);
	vb_msg_put_u64(b, tag, v);
	if (vb_msg_end(b) < 0)
		return -1;
	return conn_send(e->c, b);
}

static int send_output(struct exec *e, struct vb_buf *b, int stream, const uint8_t *p, size_t n)
{
	vb_msg_begin(b, VB_MSG_EXEC_OUTPUT, 0, e->id);
	vb_msg_put_u64(b, VB_TAG_STREAM, (uint64_t)stream);
	vb_msg_put_bytes(b, VB_TAG_DATA, p, n);
	if (vb_msg_end(b) < 0)
		return -1;
	return conn_send(e->c, b);
}

static void report_spawn_error(struct exec *e, const struct child_report *r)
{
	const char *prog = e->req.argv[0];
	int err = r->err;
	if (r->stage == STAGE_CHDIR) {
		conn_send_error(e->c, e->id, VB_ERR_NOENT, "cannot change directory to '%.512s': %s",
				e->req.cwd ? e->req.cwd : default_cwd(), strerror(err));
	} else if (r->stage == STAGE_EXEC) {
		switch (err) {
		case ENOENT:
		case ENOTDIR:
			conn_send_error(e->c, e->id, VB_ERR_NOENT, "%.512s: not found", prog);
			break;
		case EACCES:
		case EPERM:
			conn_send_error(e->c, e->id, VB_ERR_NOEXEC, "%.512s: permission denied", prog);
			break;
		case ENOEXEC:
			conn_send_error(e->c, e->id, VB_ERR_NOEXEC, "%.512s: exec format error", prog);
			break;
		case EISDIR:
			conn_send_error(e->c, e->id, VB_ERR_NOEXEC, "%.512s: is a directory", prog);
			break;
		case E2BIG:
			conn_send_error(e->c, e->id, VB_ERR_INVAL, "%.512s: argument list too long", prog);
			break;
		default:
			conn_send_error(e->c, e->id, agent_errno_to_vb(err), "%.512s: %s", prog,
					strerror(err));
		}
	} else {
		conn_send_error(e->c, e->id, VB_ERR_INTERNAL, "cannot start %.512s: %.16s: %s", prog,
				r->what, strerror(err));
	}
}

/* ---- the exec thread ----------------------------------------------------- */

struct pipes {
	int out[2];   /* read ends of stdout, stderr; -1 once at EOF */
	int in;       /* write end of stdin; -1 once closed */
	/* PTY: out[0] is the master, (in) a duplicate of it (so that input
	 * can end while output goes on), out[1] is -1 */
	int pty;
	int slave;    /* PTY: our slave descriptor, until the child exits */
};

/* The child's ends: three pipes, or one terminal for all of 0-2.  The
 * parent's ends go to (pp); everything is close-on-exec. */
static int open_stdio(struct exec *e, struct spawn *sp, struct pipes *pp, int in[2],
		      int out[2], int err[2])
{
	const struct vb_exec_req *req = &e->req;
	if (req->pty) {
		unsigned rows = req->rows ? req->rows : 24, cols = req->cols ? req->cols : 80;
		if (pty_open((uid_t)req->uid, rows, cols, &out[0], &pp->slave) < 0)
			return -1;
		in[1] = fcntl(out[0], F_DUPFD_CLOEXEC, 3);
		if (in[1] < 0)
			return -1;
		sp->in = sp->out = sp->err = pp->slave;
		sp->ctty = 1;
		return 0;
	}
	int fail = 0;
	if (req->want_stdin)
		fail |= pipe2(in, O_CLOEXEC);
	else
		fail |= (in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0;
	fail |= pipe2(out, O_CLOEXEC);
	fail |= pipe2(err, O_CLOEXEC);
	if (fail)
		return -1;
	sp->in = in[0];
	sp->out = out[1];
	sp->err = err[1];
	return 0;
}

/* Fork the child.  Returns its pid (> 0), or -1 after replying ERROR. */
static pid_t spawn(struct exec *e, struct pipes *pp)
{
	const struct vb_exec_req *req = &e->req;
	struct spawn sp;
	memset(&sp, 0, sizeof(sp));
	char own[5][320], *path = NULL;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, rep[2] = { -1, -1 };
	pid_t pid = -1;

	sp.argv = req->argv;
	sp.envp = build_env(req, &e->who, own, &path);
	sp.cands = sp.envp ? build_cands(req->argv[0], sp.envp, &sp.ncands) : NULL;
	if (!sp.cands) {
		conn_send_error(e->c, e->id, VB_ERR_INTERNAL, "out of memory");
		goto out;
	}
	sp.cwd = req->cwd ? req->cwd : default_cwd();
	sp.drop = g_agent.is_root && req->uid != 0;
	sp.caps = g_agent.is_root;
	sp.uid = (uid_t)req->uid;
	sp.gid = (gid_t)req->gid;
	set_limit(sp.lim[0], g_agent.boot.rlimit_nofile, AGENT_DEFAULT_NOFILE, NR_OPEN_MAX);
	set_limit(sp.lim[1], g_agent.boot.rlimit_nproc, AGENT_DEFAULT_NPROC, 0);
	set_limit(sp.lim[2], g_agent.boot.rlimit_fsize, AGENT_DEFAULT_FSIZE, 0);

	if (open_stdio(e, &sp, pp, in, out, err) < 0 || pipe2(rep, O_CLOEXEC) < 0) {
		conn_send_error(e->c, e->id, VB_ERR_INTERNAL, "cannot create %s: %s",
				req->pty ? "a pseudo-terminal" : "pipes", strerror(errno));
		goto out;
	}
	sp.report = rep[1];

	reaper_lock();
	pid = fork();
	if (pid == 0)
		child_main(&sp);
	if (pid > 0) {
		e->reap.pid = pid;
		e->reap.on_exit = on_child_exit;
		reaper_add(&e->reap);
		pthread_mutex_lock(&e->lock);
		e->pid = pid;
		pthread_mutex_unlock(&e->lock);
	}
	reaper_unlock();
	if (pid < 0) {
		conn_send_error(e->c, e->id, VB_ERR_BUSY, "fork: %s", strerror(errno));
		goto out;
	}
	/* also here: a signal may come before the child runs (a PTY child
	 * makes its own session, which a group leader could not) */
	if (!req->pty)
		setpgid(pid, pid);

	close(rep[1]);
	rep[1] = -1;
	struct child_report r;
	size_t got = 0;
	while (got < sizeof(r)) {
		ssize_t n = read(rep[0], (char *)&r + got, sizeof(r) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got == sizeof(r)) { /* the child failed before exec */
		wait_exit(e);
		report_spawn_error(e, &r);
		pid = -1;
		goto out;
	}
	pp->pty = req->pty;
	pp->in = -1;
	if (req->want_stdin || req->pty) {
		pp->in = in[1];
		in[1] = -1;
		fcntl(pp->in, F_SETFL, O_NONBLOCK);
	}
	pp->out[0] = out[0];
	pp->out[1] = err[0];
	out[0] = err[0] = -1;
	for (int i = 0; i < 2; i++)
		if (pp->out[i] >= 0)
			fcntl(pp->out[i], F_SETFL, O_NONBLOCK);
out:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
		if (rep[i] >= 0)
			close(rep[i]);
	}
	if (pid < 0 && pp->slave >= 0) {
		close(pp->slave);
		pp->slave = -1;
	}
	free_cands(sp.cands, sp.ncands);
	free(sp.envp);
	free(path);
	return pid;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Feed queued stdin to the child.  Returns the number of bytes consumed
 * (written or dropped), all of which are acknowledged.  What reaches a
 * terminal is noted in (pe). */
static size_t feed_stdin(struct pipes *pp, struct chunk **head, int drop, struct pty_eof *pe)
{
	size_t done = 0;
	while (*head) {
		struct chunk *ch = *head;
		if (pp->in >= 0 && !drop && ch->off < ch->len) {
			ssize_t w = write(pp->in, ch->data + ch->off, ch->len - ch->off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 && errno == EAGAIN)
				break;
			if (w < 0) { /* EPIPE: the child closed its stdin */
				close_fd(&pp->in);
				continue;
			}
			if (pp->pty)
				pty_eof_note_input(pe, ch->data + ch->off, (size_t)w, agent_now_ms());
			ch->off += (size_t)w;
			done += (size_t)w;
			if (ch->off < ch->len)
				continue;
		} else {
			/* nobody reads any more: drop it, but still acknowledge */
			done += ch->len - ch->off;
			ch->off = ch->len;
		}
		*head = ch->next;
		free(ch);
	}
	return done;
}

static void run(struct exec *e)
{
	struct pipes pp = { .out = { -1, -1 }, .in = -1, .slave = -1 };
	struct vb_buf b = { 0 };
	uint8_t *buf = malloc(VB_CHUNK_MAX);
	if (!buf) {
		conn_send_error(e->c, e->id, VB_ERR_INTERNAL, "out of memory");
		return;
	}
	pid_t pid = spawn(e, &pp);
	if (pid < 0) {
		free(buf);
		return;
	}
	int gone = send_u64s(e, &b, VB_MSG_EXEC_STARTED, VB_TAG_PID, (uint64_t)pid) < 0;

	uint64_t credit = VB_OUTPUT_WINDOW;
	uint64_t start = agent_now_ms();
	uint64_t deadline = 0; /* 0: no timeout */
	if (e->req.timeout_ms)
		deadline = e->req.timeout_ms > UINT64_MAX / 2 ? UINT64_MAX : start + e->req.timeout_ms;
	int exited = 0, status = 0, timed_out = 0, in_eof = 0;
	int64_t drain_left = AGENT_DRAIN_MS;
	uint64_t last = start;
	struct chunk *queue = NULL, **qtail = &queue;
	int readable[2] = { 0, 0 };
	struct pty_eof pe = { .active_at = start };

	while (!gone) {
		drain_efd(e->efd);
		pthread_mutex_lock(&e->lock);
		credit += e->acked;
		e->acked = 0;
		uint64_t sigs = e->sigs;
		e->sigs = 0;
		uint32_t rows = e->resize ? e->rows : 0, cols = e->cols;
		e->resize = 0;
		if (e->in_head) {
			*qtail = e->in_head;
			qtail = &e->in_tail->next;
			e->in_head = e->in_tail = NULL;
		}
		in_eof = e->in_eof;
		int just_exited = !exited && e->exited;
		if (just_exited) {
			exited = 1;
			status = e->status;
		}
		gone = e->cancelled;
		pthread_mutex_unlock(&e->lock);
		if (gone)
			break;
		if (credit > VB_OUTPUT_WINDOW) /* the host acknowledged more than it got */
			credit = VB_OUTPUT_WINDOW;

		for (int s = 1; s <= 64 && sigs; s++)
			if (sigs & (1ull << (s - 1)))
				kill_group(e, s);

		uint64_t now = agent_now_ms();
		if (just_exited)
			last = now; /* the drain clock starts now */
		if (!exited && deadline && now >= deadline && !timed_out) {
			timed_out = 1;
			kill_group(e, SIGKILL);
		}

		if (rows && pp.pty && pp.out[0] >= 0)
			pty_resize(pp.out[0], rows, cols);

		/* stdin: after the exit nobody will read it */
		size_t fed = feed_stdin(&pp, &queue, exited, &pe);
		if (!queue)
			qtail = &queue;
		/* a terminal's end of input is a character, written when due */
		int eof_wait = pp.pty && pp.in >= 0 && in_eof && !queue && !exited &&
			       pty_eof_step(&pe, pp.in, pp.slave, pid, now) == 0;
		if (pp.in >= 0 && ((in_eof && !queue && !eof_wait) || exited))
			close_fd(&pp.in);
		if (exited) /* now the master's EIO can tell that all output is read */
			close_fd(&pp.slave);
		if (fed) {
			pthread_mutex_lock(&e->lock);
			e->in_unacked -= fed; /* before the ack: the host may send at once */
			pthread_mutex_unlock(&e->lock);
			if (send_u64s(e, &b, VB_MSG_EXEC_STDIN_ACK, VB_TAG_COUNT, fed) < 0)
				gone = 1;
		}

		/* output: a chunk per readable stream per round keeps them fair */
		for (int i = 0; i < 2 && !gone; i++) {
			if (!readable[i] || pp.out[i] < 0 || !HAS_CREDIT(credit))
				continue;
			uint64_t room = credit - VB_OUTPUT_FRAME_OVERHEAD;
			size_t want = room < VB_CHUNK_MAX ? (size_t)room : VB_CHUNK_MAX;
			ssize_t n = read(pp.out[i], buf, want);
			/* a terminal hands out at most its line discipline's 4 KiB
			 * at a time: gather what is there into one frame */
			for (int k = 0; pp.pty && n > 0 && (size_t)n < want && k < 16; k++) {
				ssize_t m = read(pp.out[i], buf + n, want - (size_t)n);
				if (m <= 0)
					break;
				n += m;
			}
			if (n > 0) {
				if (pp.pty)
					pty_eof_note_output(&pe, now);
				credit -= (uint64_t)n + VB_OUTPUT_FRAME_OVERHEAD;
				if (send_output(e, &b, i + 1, buf, (size_t)n) < 0)
					gone = 1;
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				close_fd(&pp.out[i]);
			}
			readable[i] = 0;
		}
		if (gone)
			break;

		if (exited) {
			if (pp.out[0] < 0 && pp.out[1] < 0)
				break;
			/* the drain clock runs only while the host lets us read */
			if (HAS_CREDIT(credit))
				drain_left -= (int64_t)(now - last);
			if (drain_left <= 0)
				break;
		}
		last = now;

		struct pollfd pfd[4];
		int np = 0, idx[2] = { -1, -1 };
		pfd[np++] = (struct pollfd){ .fd = e->efd, .events = POLLIN };
		for (int i = 0; i < 2; i++) {
			if (pp.out[i] >= 0 && HAS_CREDIT(credit)) {
				idx[i] = np;
				pfd[np++] = (struct pollfd){ .fd = pp.out[i], .events = POLLIN };
			}
		}
		int in_idx = -1;
		if (pp.in >= 0 && queue) {
			in_idx = np;
			pfd[np++] = (struct pollfd){ .fd = pp.in, .events = POLLOUT };
		}
		int timeout = -1;
		if (!exited && deadline && !timed_out)
			timeout = deadline - now > 60000 ? 60000 : (int)(deadline - now);
		if (exited && HAS_CREDIT(credit))
			timeout = drain_left > 0 ? (int)drain_left : 0;
		if (eof_wait && (timeout < 0 || timeout > PTY_EOF_TICK_MS))
			timeout = PTY_EOF_TICK_MS;
		if (poll(pfd, (nfds_t)np, timeout) < 0 && errno != EINTR)
			agent_sleep_ms(10);
		for (int i = 0; i < 2; i++)
			readable[i] = idx[i] >= 0 && pfd[idx[i]].revents != 0;
		if (in_idx >= 0 && (pfd[in_idx].revents & (POLLERR | POLLHUP)))
			close_fd(&pp.in); /* reader gone: feed_stdin drops from now on */
	}

	close_fd(&pp.in);
	close_fd(&pp.out[0]);
	close_fd(&pp.out[1]);
	close_fd(&pp.slave);
	if (gone) {
		kill_group(e, SIGKILL);
		status = wait_exit(e);
	} else {
		if (!exited) /* unreachable: the loop ends after the exit */
			status = wait_exit(e);
		vb_msg_begin(&b, VB_MSG_EXEC_EXIT, 0, e->id);
		if (WIFEXITED(status))
			vb_msg_put_u64(&b, VB_TAG_EXIT_CODE, (uint64_t)WEXITSTATUS(status));
		vb_msg_put_u64(&b, VB_TAG_SIGNAL, WIFSIGNALED(status) ? (uint64_t)WTERMSIG(status) : 0);
		vb_msg_put_u64(&b, VB_TAG_TIMED_OUT, (uint64_t)timed_out);
		if (vb_msg_end(&b) == 0)
			conn_send(e->c, &b);
	}
	free_chunks(queue);
	vb_buf_free(&b);
	free(buf);
}

static void exec_free(struct exec *e)
{
	free_chunks(e->in_head);
	vb_exec_req_free(&e->req);
	if (e->efd >= 0)
		close(e->efd);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

static void *exec_main(void *arg)
{
	struct exec *e = arg;
	struct conn *c = e->c;
	run(e);
	pthread_mutex_lock(&c->lock);
	for (struct exec **pp = &c->execs; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	exec_free(e);
	conn_request_done(c, 0);
	conn_unref(c);
	return NULL;
}

/* ---- entry points (reader thread) ---------------------------------------- */

int exec_start(struct conn *c, uint32_t id, const uint8_t *payload, size_t len)
{
	struct exec *e = calloc(1, sizeof(*e));
	if (!e) {
		conn_send_error(c, id, VB_ERR_INTERNAL, "out of memory");
		return -1;
	}
	e->c = c;
	e->id = id;
	e->efd = -1;
	pthread_mutex_init(&e->lock, NULL);
	int rc = vb_exec_req_decode(payload, len, &e->req);
	if (rc != VB_ERR_NONE) {
		conn_send_error(c, id, rc, "invalid EXEC request (%s)", vb_err_name(rc));
		exec_free(e);
		return -1;
	}
	if (!vb_policy_allows(&g_agent.boot, e->req.argv[0])) {
		conn_send_error(c, id, VB_ERR_DENIED, "program '%.512s' is not in the allowlist",
				e->req.argv[0]);
		exec_free(e);
		return -1;
	}
	/* who runs it: a named user, the VM's default (the image's User), or
	 * the request's uid/gid */
	char why[160];
	if (e->req.user) {
		if (user_resolve(e->req.user, &e->who, why, sizeof(why)) < 0) {
			conn_send_error(c, id, VB_ERR_INVAL, "%s", why);
			exec_free(e);
			return -1;
		}
	} else if (e->req.default_user && g_agent.has_def_user) {
		e->who = g_agent.def_user;
	} else {
		user_describe((uid_t)e->req.uid, (gid_t)e->req.gid, &e->who);
	}
	e->req.uid = e->who.uid;
	e->req.gid = e->who.gid;
	e->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e->efd < 0) {
		conn_send_error(c, id, VB_ERR_INTERNAL, "eventfd: %s", strerror(errno));
		exec_free(e);
		return -1;
	}
	/* a terminal without host input: its input ends at once (a ^D when
	 * the program waits for input), like /dev/null for pipes */
	e->in_eof = e->req.pty && !e->req.want_stdin;

	pthread_mutex_lock(&c->lock);
	int dup = 0;
	for (struct exec *x = c->execs; x; x = x->next)
		dup |= x->id == id;
	if (!dup) {
		e->next = c->execs;
		c->execs = e;
		c->refs++; /* the exec thread's reference */
	}
	pthread_mutex_unlock(&c->lock);
	if (dup) {
		conn_send_error(c, id, VB_ERR_INVAL, "request id %u is already running", id);
		exec_free(e);
		return -1;
	}
	rc = agent_thread(exec_main, e);
	if (rc != 0) {
		pthread_mutex_lock(&c->lock);
		for (struct exec **pp = &c->execs; *pp; pp = &(*pp)->next) {
			if (*pp == e) {
				*pp = e->next;
				break;
			}
		}
		c->refs--; /* the reader still holds one */
		pthread_mutex_unlock(&c->lock);
		conn_send_error(c, id, VB_ERR_BUSY, "cannot start a thread: %s", strerror(rc));
		exec_free(e);
		return -1;
	}
	return 0;
}

int exec_control(struct conn *c, const struct vb_hdr *h, const uint8_t *payload)
{
	struct vb_field f;
	uint64_t v = 0;
	uint32_t rows, cols;
	int bad_signal = 0, bad_resize = 0, rc = 0;

	pthread_mutex_lock(&c->lock);
	struct exec *e = c->execs;
	while (e && e->id != h->id)
		e = e->next;
	if (!e) { /* finished already: late acks, stdin and signals are normal */
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	switch (h->type) {
	case VB_MSG_EXEC_ACK:
		if (vb_payload_find(payload, h->len, VB_TAG_COUNT, &f) < 0 || !f.data ||
		    vb_field_u64(&f, &v) < 0) {
			rc = -1;
			break;
		}
		pthread_mutex_lock(&e->lock);
		e->acked = e->acked + v < e->acked ? UINT64_MAX : e->acked + v;
		pthread_mutex_unlock(&e->lock);
		agent_wake(e->efd);
		break;
	case VB_MSG_EXEC_STDIN: {
		if (vb_payload_find(payload, h->len, VB_TAG_DATA, &f) < 0) {
			rc = -1;
			break;
		}
		size_t n = f.data ? f.len : 0;
		struct chunk *ch = NULL;
		pthread_mutex_lock(&e->lock);
		if (n > VB_STDIN_WINDOW || e->in_unacked + n > VB_STDIN_WINDOW) {
			rc = -1; /* the host ignored the stdin window */
		} else if (n > 0 && !(ch = malloc(sizeof(*ch) + n))) {
			rc = -1;
		} else {
			if (ch) {
				ch->next = NULL;
				ch->len = n;
				ch->off = 0;
				memcpy(ch->data, f.data, n);
				if (e->in_tail)
					e->in_tail->next = ch;
				else
					e->in_head = ch;
				e->in_tail = ch;
				e->in_unacked += n;
			}
			if (h->flags & VB_FLAG_EOF)
				e->in_eof = 1;
		}
		pthread_mutex_unlock(&e->lock);
		agent_wake(e->efd);
		break;
	}
	case VB_MSG_EXEC_SIGNAL:
		if (vb_payload_find(payload, h->len, VB_TAG_SIGNAL, &f) < 0 || !f.data ||
		    vb_field_u64(&f, &v) < 0 || v < 1 || v > 64) {
			bad_signal = 1;
			break;
		}
		pthread_mutex_lock(&e->lock);
		e->sigs |= 1ull << (v - 1);
		pthread_mutex_unlock(&e->lock);
		agent_wake(e->efd);
		break;
	case VB_MSG_EXEC_RESIZE:
		if (!e->req.pty || vb_resize_decode(payload, h->len, &rows, &cols) != VB_ERR_NONE) {
			bad_resize = 1;
			break;
		}
		pthread_mutex_lock(&e->lock);
		e->rows = rows;
		e->cols = cols;
		e->resize = 1; /* only the latest size matters */
		pthread_mutex_unlock(&e->lock);
		agent_wake(e->efd);
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&c->lock);
	/* Not answered: an ERROR with a running exec's id would read as the end
	 * of that exec to the host.  The host validates signals anyway. */
	if (bad_signal)
		agent_log("ignoring an EXEC_SIGNAL without a SIGNAL in 1..64");
	if (bad_resize)
		agent_log("ignoring an EXEC_RESIZE without a terminal or a size in 1..%u", VB_TERM_MAX);
	return rc;
}

void exec_cancel_all(struct conn *c)
{
	pthread_mutex_lock(&c->lock);
	for (struct exec *e = c->execs; e; e = e->next) {
		pthread_mutex_lock(&e->lock);
		e->cancelled = 1;
		pthread_mutex_unlock(&e->lock);
		agent_wake(e->efd);
	}
	pthread_mutex_unlock(&c->lock);
}
