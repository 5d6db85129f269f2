/* SPDX-License-Identifier: Apache-2.0 */
/* The voidbox CLI: one file per verb, each a thin layer over libvoidbox. */
#ifndef VB_CLI_H
#define VB_CLI_H

#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "voidbox/error.h"
#include "voidbox/run.h"
#include "voidbox/sandbox.h"
#include "util/term.h"

/* Each verb gets argv after the verb name (argv[0] is the verb) and returns
 * the process exit code.  Errors are printed once, as "voidbox: MESSAGE". */
int vb_cmd_exec(int argc, char **argv);
int vb_cmd_doctor(int argc, char **argv);
int vb_cmd_image(int argc, char **argv);
int vb_cmd_agent(int argc, char **argv);
int vb_cmd_version(int argc, char **argv);
int vb_cmd_validate(int argc, char **argv);
int vb_cmd_inspect(int argc, char **argv);
int vb_cmd_run(int argc, char **argv);
int vb_cmd_shell(int argc, char **argv);
int vb_cmd_logs(int argc, char **argv);
int vb_cmd_ps(int argc, char **argv);
int vb_cmd_stop(int argc, char **argv);
int vb_cmd_rm(int argc, char **argv);
int vb_cmd_prune(int argc, char **argv);
int vb_cmd_pull(int argc, char **argv);
int vb_cmd_images(int argc, char **argv);
int vb_cmd_rmi(int argc, char **argv);
int vb_cmd_snapshot(int argc, char **argv);
/* `snapshot warm` (cmd_snapshot_warm.c), and its start in the background,
 * detached, for an exec of (cfg) that found no warm snapshot. */
int vb_cli_snapshot_warm(int argc, char **argv);
void vb_cli_warm_spawn(const struct vb_sandbox_config *cfg);

/* Print "voidbox: MESSAGE" to stderr and return the exit code for its kind
 * (125 runtime, 2 usage, 124 timeout, 126, 127, 130). */
int vb_cli_fail(const vb_error *err);
/* A message that is not the verb's failure, printed as vb_cli_fail does
 * ("voidbox: " per line, made safe for the terminal). */
void vb_cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Write all of (buf) to (fd): a guest program's output to our stdout or
 * stderr, waiting out a non-blocking descriptor (a terminal's file status is
 * shared with whoever set O_NONBLOCK on it).  0, or -1 with errno (EPIPE:
 * the reader went away). */
int vb_cli_write_out(int fd, const void *buf, size_t n);
int vb_cli_exit_code(enum vb_error_kind kind);

/* ---- shared by the verbs that boot VMs (args.c) ------------------------ */

/* Strings the option parsers allocate, freed together. */
struct vb_cli_arena {
	char *owned[768];
	size_t n;
};
/* Take ownership of (s); NULL (and s freed) when s is NULL or it is full. */
char *vb_cli_keep(struct vb_cli_arena *a, char *s);
void vb_cli_arena_free(struct vb_cli_arena *a);
int vb_cli_parse_uint(const char *s, unsigned long max, unsigned long *out);
/* Append "HOST:GUEST[:ro|rw]" to list[*n] (at most (max) entries), HOST
 * made absolute.  A missing rw HOST directory is created (as for a spec's
 * mounts); a ro one must exist. */
int vb_cli_add_mount(struct vb_cli_arena *a, struct vb_mount *list, size_t *n, size_t max,
		     const char *arg, vb_error *err);
/* Append "K=V" to list[*n] (at most (max)); "K" alone copies the host's
 * value, and adds nothing when the host has no such variable. */
int vb_cli_add_env(struct vb_cli_arena *a, const char **list, size_t *n, size_t max,
		   const char *arg, vb_error *err);
/* The spec file among a verb's arguments: FILE, --file FILE or
 * --file=FILE, at most once (-f is --follow wherever it exists).  Returns 1 if argv[*i] was it (*i advanced past
 * a separate value), 0 if argv[*i] is another option, -1 on error. */
int vb_cli_file_arg(const char *verb, int argc, char **argv, int *i, const char **file,
		    vb_error *err);
/* --accel VALUE: auto, kvm or tcg. */
int vb_cli_parse_accel(const char *arg, enum vb_accel *out, vb_error *err);
/* When (info) was just decided by a probe that found KVM unable to run the
 * guest, say so in one line on (out): once per host boot, as the verdict is
 * cached. */
void vb_cli_accel_notice(const struct vb_accel_info *info, FILE *out);
#define VB_CLI_ACCEL_HELP \
	"  --accel auto|kvm|tcg  how the guest CPU runs (default auto: KVM once a probe\n" \
	"                        VM proved it works here, else TCG software emulation;\n" \
	"                        also $VOIDBOX_ACCEL)\n"

/* Block SIGINT, SIGTERM, SIGHUP, SIGQUIT and (extra) (may be NULL) for every
 * thread to come, QEMU resets its mask; ignore SIGPIPE.  Returns a signalfd
 * for the four teardown signals, or -1. */
int vb_cli_stop_signals(const sigset_t *extra, vb_error *err);

/* ---- one wording for option errors, every verb (args.c) ----------------- */

/* Each sets (err) (VB_E_USAGE, exit 2) and returns -1.  (verb) is the verb
 * as typed after "voidbox"; option text is shown without control bytes. */
/* "VERB: unknown option 'ARG'[; did you mean 'HINT'?] (see 'voidbox VERB --help')" */
int vb_cli_unknown_option(const char *verb, const char *arg, const char *hint, vb_error *err);
/* "VERB: unknown command 'WORD'[; did you mean 'NAME'?] (see ...)", NAME
 * among names[n]: for verbs with sub-commands (image build|list). */
int vb_cli_unknown_command(const char *verb, const char *word, const char *const *names, size_t n,
			   vb_error *err);
/* "VERB: option 'OPT' needs a value (see ...)" */
int vb_cli_missing_value(const char *verb, const char *opt, vb_error *err);
/* "VERB: unexpected argument 'ARG' (see ...)" */
int vb_cli_unexpected_arg(const char *verb, const char *arg, vb_error *err);
/* After getopt_long() returned '?' or ':' (optstring "+:..." or ":..." so a
 * missing value is ':'): the right one of the above, with a did-you-mean
 * among (longopts) for an unknown long option. */
int vb_cli_getopt_fail(const char *verb, int c, char **argv, const struct option *longopts,
		       vb_error *err);
/* For verbs that parse their arguments by hand: (arg) was not understood.
 * If it is one of (value_opts) (NULL-terminated, e.g. "--output", "-o")
 * it lacked its value; otherwise it is unknown, with a did-you-mean among
 * (value_opts) and (flags) (NULL-terminated long options). */
int vb_cli_bad_option(const char *verb, const char *arg, const char *const *value_opts,
		      const char *const *flags, vb_error *err);
/* -o/--output VALUE: json sets *json = 1; text (or human) sets 0. */
int vb_cli_output_format(const char *verb, const char *value, int *json, vb_error *err);

/* Edit distance (insert, delete, replace, swap neighbours), SIZE_MAX for
 * words over 32 bytes. */
size_t vb_cli_distance(const char *a, const char *b);
/* The one of names[n] that (word) is a likely typo of, or NULL. */
const char *vb_cli_suggest(const char *word, const char *const *names, size_t n);

/* ---- sizes (args.c) ------------------------------------------------------- */

/* "N" in (unit) bytes, or N with a binary suffix: B, K, M, G, T (any case,
 * "KB", "Ki" and "KiB" spellings too).  Returns 0, or -1 for anything else or an
 * overflow. */
int vb_cli_parse_size(const char *s, uint64_t unit, uint64_t *bytes);
/* --memory: a plain number is MiB; 512M, 1G...; 64 MiB to 1 TiB, whole MiB. */
int vb_cli_parse_memory(const char *verb, const char *s, unsigned *mib, vb_error *err);

/* run --budget KEY=VALUE[,KEY=VALUE...] with keys max_tokens and
 * max_requests (whole numbers > 0) and max_cost_usd (dollars > 0, e.g.
 * 2.50); the keys given are set in (b), any others left alone.  A key
 * already set (given twice, in one --budget or two) is an error, as is
 * an unknown key (with a did-you-mean), a missing '=', 0, a negative or
 * anything else. */
int vb_cli_parse_llm_budget(const char *arg, struct vb_run_llm_budget *b, vb_error *err);

/* Stop run (id) of (runs_dir) as `voidbox stop` does (cmd_stop.c), printing
 * what happened: 0 stopped or had ended, 1 still running after
 * (timeout_ms), -1 (err) when it cannot be signalled. */
int vb_cli_stop_run(const char *runs_dir, const char *id, int timeout_ms, vb_error *err);

/* ---- network options of exec and shell (netopts.c) -------------------- */

#define VB_CLI_MAX_HOST_PORTS 64u
#define VB_CLI_MAX_DOMAINS 64u
enum { VB_CLI_OPT_NETWORK = 1000, VB_CLI_OPT_ALLOW_HOST_PORT, VB_CLI_OPT_PUBLISH,
       VB_CLI_OPT_NET_LEARN, VB_CLI_OPT_ALLOW_DOMAIN };
#define VB_CLI_NET_LONGOPTS                                                                     \
	{ "network", no_argument, NULL, VB_CLI_OPT_NETWORK },                                   \
		{ "allow-host-port", required_argument, NULL, VB_CLI_OPT_ALLOW_HOST_PORT },     \
		{ "publish", required_argument, NULL, VB_CLI_OPT_PUBLISH },                     \
		{ "net-learn", no_argument, NULL, VB_CLI_OPT_NET_LEARN },                       \
		{ "allow-domain", required_argument, NULL, VB_CLI_OPT_ALLOW_DOMAIN }
#define VB_CLI_NET_HELP                                                                         \
	"  --network             give the VM a network (user-mode, policy-filtered:\n"         \
	"                        docs/network.md); the host is not reachable, nor\n"          \
	"                        private ranges or cloud metadata\n"                            \
	"  --allow-host-port PORT  let the guest reach the host's 127.0.0.1:PORT (TCP)\n"      \
	"                        at 10.0.2.2:PORT (repeatable; implies --network)\n"           \
	"  --publish HOST:GUEST  serve the guest's TCP port GUEST on the host's\n"             \
	"                        127.0.0.1:HOST (0 = a free port, printed on stderr;\n"       \
	"                        repeatable; implies --network)\n"                            \
	"  --allow-domain NAME   only NAME (or *.NAME) and what it resolves to, TLS\n"    \
	"                        checked by server name; VoidBox answers the DNS\n"          \
	"                        (repeatable; default-deny; implies --network)\n"            \
	"  --net-learn           learn mode: let through and record what a policy\n"          \
	"                        could allow (not cloud metadata), and print a draft\n"       \
	"                        network_policy on stderr at the end (implies --network)\n"

struct vb_cli_net {
	int network, learn;
	unsigned host_ports[VB_CLI_MAX_HOST_PORTS];
	size_t n_host_ports;
	struct vb_net_publish publish[VB_NET_MAX_PUBLISH];
	size_t n_publish;
	const char *domains[VB_CLI_MAX_DOMAINS];
	size_t n_domains;
	int hinted; /* the host-port hint was printed */
};
/* Take one of the VB_CLI_OPT_* options. */
int vb_cli_net_option(struct vb_cli_net *n, int opt, const char *arg, vb_error *err);
/* Set cfg->network from (n) (which must outlive the sandbox: its events
 * are printed through it). */
void vb_cli_net_apply(struct vb_cli_net *n, struct vb_sandbox_config *cfg);
/* Print (net)'s refusals on stderr as the options' network does (a
 * spec's network; (n) must outlive the sandbox). */
void vb_cli_net_events(struct vb_cli_net *n, struct vb_network *net);
/* Print the ports the VM's publish entries listen on. */
void vb_cli_net_published(const struct vb_network *net, vb_sandbox *sb);
/* Before teardown: learn mode's draft on stderr. */
void vb_cli_net_learned(const struct vb_network *net, vb_sandbox *sb);

#endif
