/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The run engine, inside: one struct vb_run per run, a unit per pipeline
 * box run or workflow step, and the pieces the pipeline and workflow runners
 * share (events, streaming one exec, cancellation).
 *
 * Threads: the calling thread runs stages in order; a fan-out or a set of
 * ready workflow steps run on worker threads that are all joined before the
 * stage is over.  A unit is written only by the thread running it and read
 * by others only after that thread is joined, or under (mu).
 */
#ifndef VB_RUN_ENGINE_H
#define VB_RUN_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>

#include "observe/observe.h"
#include "run/vmconf.h"
#include "spec/spec.h"
#include "voidbox/run.h"
#include "voidbox/sandbox.h"

struct vb_llm_gateway;
struct vb_llm_shared_budget;
struct vb_skill_set;
struct vb_skill;

/* The most a box or step may carry forward (stdout or output_file). */
#define VB_RUN_MAX_OUTPUT ((size_t)32 << 20)
/* Outputs live in files (docs/run.md, "Bounded outputs"); results and
 * events hold at most this much of each, as a preview. */
#define VB_RUN_PREVIEW_MAX ((size_t)16 << 10)
/* Defaults of the run options' budgets. */
#define VB_RUN_OUTPUT_BUDGET ((uint64_t)256 << 20)
#define VB_RUN_CARRY_MAX ((uint64_t)64 << 20)
/* A fan-out box's output up to this size is parsed by jansson to be
 * embedded as JSON in the stage's array (parsing holds it whole); a larger
 * one is checked and copied as a stream (jsonscan.c). */
#define VB_RUN_JSON_EMBED_MAX ((size_t)1 << 20)
/* After a cancel, how long a killed program gets to report its exit before
 * the VM is torn down regardless. */
#define VB_RUN_CANCEL_GRACE_MS 3000
/* Host-side guard behind the guest's own exec timeout. */
#define VB_RUN_TIMEOUT_GUARD_MS 15000

enum vb_unit_state { VB_UNIT_QUEUED = 0, VB_UNIT_RUNNING, VB_UNIT_OK, VB_UNIT_FAILED, VB_UNIT_SKIPPED };

struct vb_run_unit {
	const char *name;           /* borrowed from the spec */
	enum vb_unit_state state;
	int exit_code;              /* -1 until the program exited */
	enum vb_error_kind fail_kind; /* VB_E_OK: the program failed; else VoidBox or cancel */
	char *dir;                  /* its files: <work>/stages/<name> */
	int out_fd;                 /* stdout.carry while it runs, else -1 */
	char *out_path;             /* its stdout (whole, up to the limits) */
	uint64_t out_len;
	int out_overflow;           /* 1: stdout went past VB_RUN_MAX_OUTPUT; 2: the budget */
	char *output_path;          /* the carried output's file; NULL: none */
	uint64_t output_len;
	uint8_t *preview;           /* its first VB_RUN_PREVIEW_MAX bytes (NUL-terminated) */
	size_t preview_len;
	int64_t started_ms, duration_ms;
	int boot_announced;         /* workflow: STAGE_STARTED said while its VM booted */
	char *vm_id;
	/* sandbox.image: its normalized reference and manifest digest, for
	 * VM_BOOTED (NULL: the initramfs is the root) */
	char *image, *image_digest;
	char *snapshot;             /* the snapshot its VM was restored from; NULL: cold */
	int warm;                   /* ... the warm snapshot */
	char *error;
	/* agent boxes: what its gateway counted */
	int is_agent;
	uint64_t llm_requests, llm_input_tokens, llm_output_tokens;
	double llm_cost_usd;
	enum vb_run_budget_hit budget_hit;
};

struct vb_run {
	const struct vb_spec *spec;  /* kind: agent runs as a pipeline of one box */
	const char *kind;            /* the spec's own kind, for the result */
	struct vb_run_options opts;
	char *run_id;
	char *run_dir;              /* record + named outputs live here */
	struct vb_record *rec;      /* NULL when not recording */
	int64_t t0;
	atomic_int cancelled;
	/* pipeline: one per box of every stage, in run order (a box named by
	 * two stages runs twice); workflow: one per step */
	struct vb_run_unit *units;
	size_t n_units;
	size_t *box_unit;           /* pipeline: each box's latest finished unit */
	struct vb_run_vmconf *vmc;  /* pipeline: per box; workflow: one */
	size_t n_vmc;
	/* per vmc: its sandbox.image, prepared before any VM boots (vmc[i].cfg
	 * points into it); NULL when no VM has one */
	struct vb_run_image *images;
	char **pulled;              /* --pull always: references already resolved */
	size_t n_pulled;
	char *work_dir;             /* outputs and carries: run_dir, or a temporary
				     * directory when not recording */
	int work_tmp;               /* work_dir is temporary (the result owns it) */
	_Atomic uint64_t output_used; /* bytes of the output budget taken */
	char *final_path;           /* the run's output (a unit's or a carry file) */
	uint64_t final_len;
	char *error;                /* the first failure, naming its box or step */
	enum vb_error_kind error_kind; /* as in struct vb_run_result */
	pthread_mutex_t mu;         /* guards unit states read across threads */
	/* opts.llm_budget, charged by every agent stage's gateway; NULL when
	 * it sets no limit */
	struct vb_llm_shared_budget *llm_budget;
	atomic_int net_hinted;      /* the host-port hint was printed (once a run) */
	/* pipeline: each box's skills, resolved before anything boots */
	struct vb_skill_set *skills;
	/* under (mu): a VM found no warm snapshot (struct vb_run_result) */
	int warm_missing;
	struct vb_sandbox_config warm_cfg;
	char *warm_ref; /* warm_cfg.root_ref's string */
};

/* ---- boot.c: how the VMs start ------------------------------------------ */

/* Before anything boots, for each VM config: the run's --snapshot or
 * --cold where its spec sets no sandbox.snapshot, then the snapshot it
 * must restore found (vc->snapshot becomes its full id; none: VB_E_RUNTIME,
 * as an image that cannot be had) and what the VM asks for checked
 * against what a restore can give, (n_forwards) counting the forwards it
 * will get at boot (VB_E_USAGE naming what it cannot).  The caller
 * prefixes the box. */
int vb_run_boot_prepare(struct vb_run *r, struct vb_run_vmconf *vc, size_t n_forwards,
			vb_error *err);

struct vb_run_boot {
	int warm;           /* restored from the warm snapshot */
	char notice[1200];  /* "" or why the warm snapshot was not restored */
	atomic_int said;    /* the notice is out (a workflow's steps share it) */
};
/* Start (cfg) (from vc) as vc->boot says: restored from vc->snapshot (a
 * failure is the boot's: never replaced by a cold boot), booted, or from
 * the warm snapshot when there is one and it can be restored (else booted,
 * (b) saying why, and the run's warm_missing set when there was none).
 * Errors: those of the restore or boot. */
vb_sandbox *vb_run_boot(struct vb_run *r, const struct vb_run_vmconf *vc,
			const struct vb_sandbox_config *cfg, struct vb_run_boot *b, vb_error *err);

/* ---- net.c: a VM's network in the run's events ------------------------- */

struct vb_run_net {
	struct vb_run *r;
	const char *stage;
	const char *dir; /* the stage's directory, for learn mode's draft */
};
/* When (cfg) has the network on: its refusals become net.denied events of
 * (stage) (the first refused host port also a notice on opts.notices).
 * (n) must outlive the sandbox. */
void vb_run_net_prepare(struct vb_run_net *n, struct vb_run *r, const char *stage,
			const char *dir, struct vb_sandbox_config *cfg);
/* After boot: a net.published event per port forward. */
void vb_run_net_booted(struct vb_run_net *n, vb_sandbox *sb, const struct vb_sandbox_config *cfg);
/* Before teardown: the net.summary event (bytes, connections, refusals);
 * in learn mode the draft policy, on opts.notices and in (dir). */
void vb_run_net_summary(struct vb_run_net *n, vb_sandbox *sb, const struct vb_sandbox_config *cfg);

/* ---- image.c: every image a run needs, had before any VM boots ---- */

/* The pull policy for (ref) in this run: opts.pull, except that with
 * "always" a reference resolved at the registry earlier in the run is
 * taken from the store ("never"): one registry round per image and run,
 * not one per box or VM boot.  Called while the run is prepared (one
 * thread). */
int vb_run_pull_policy(struct vb_run *r, const char *ref);
/* vmc[i]'s sandbox.image (ref): pulled as vb_run_pull_policy says (progress
 * on opts.notices), its root disk built or found, kept in images[i] until
 * the run is freed, and set as vmc[i].cfg's root.  -1 with (err) naming
 * the reference, the URL and the HTTP status: VB_E_RUNTIME for an image
 * that cannot be had (404 included), VB_E_USAGE for a malformed
 * reference; the caller prefixes the box. */
int vb_run_vm_image(struct vb_run *r, size_t i, const char *ref, vb_error *err);
/* At boot: (u)'s image facts for VM_BOOTED from images[i] (nothing when
 * vmc[i] has no sandbox.image). */
void vb_run_unit_image(struct vb_run *r, struct vb_run_unit *u, size_t i);

/* Fill in time and run id, then hand (ev) to the record and the caller. */
void vb_run_emit(struct vb_run *r, struct vb_event *ev);

/* True once the cancel descriptor fired (checked without blocking). */
int vb_run_cancelled(struct vb_run *r);

/* Unit bookkeeping, each emitting its event. */
void vb_run_unit_start(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb);
/* VM_BOOTED, with how it started from (b) (may be NULL); the first unit of
 * (b) to say it has its notice, also on opts.notices. */
void vb_run_unit_booted(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
			struct vb_run_boot *b);
void vb_run_unit_ok(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb);
/* (kind) as in fail_kind; (fmt) says why, e.g. "exit code 3". */
void vb_run_unit_fail(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
		      enum vb_error_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
void vb_run_unit_skip(struct vb_run *r, struct vb_run_unit *u, const char *why);
/* A failed exec (vb_error) as a unit failure: not found → 127, refused →
 * 126, VM died / runtime → VoidBox failure, cancelled. */
void vb_run_unit_fail_err(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
			  const vb_error *err);

/* Run one program to its exit in (sb), streaming LOG_CHUNK events and
 * its stdout into (u->out_fd) (vb_run_unit_files), within the box limit
 * and the run's budget (u->out_overflow says which ran out).  (in_fd) is
 * its stdin, read to its end (-1 = /dev/null).
 * Returns 0 when it exited (exit status in *code, or VB_RUN_TIMED_OUT when
 * its timeout killed it), -1 with (err) set otherwise (VB_E_CANCELLED when
 * the run was cancelled). */
#define VB_RUN_TIMED_OUT (-124)
int vb_run_exec(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
		const struct vb_exec_params *p, int in_fd, int *code, vb_error *err);
/* vb_run_exec, also handing every piece of the program's stdout, as it
 * comes, to (tap) (on the calling thread; NULL: none). */
struct vb_run_tap {
	void (*stdout_fn)(const uint8_t *d, size_t n, void *opaque);
	void *opaque;
	int structured; /* its stdout is machine-readable: LOG_CHUNK.structured */
};
int vb_run_exec_tap(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
		    const struct vb_exec_params *p, int in_fd, const struct vb_run_tap *tap,
		    int *code, vb_error *err);

/* ---- outputs in files (carry.c) ---- */

/* Set up (r->work_dir): the run directory when recording, else a new
 * temporary directory. */
int vb_run_work_open(struct vb_run *r, vb_error *err);
/* (u->dir) made, (u->out_fd) open on a new, empty stdout.carry. */
int vb_run_unit_files(struct vb_run *r, struct vb_run_unit *u, vb_error *err);
/* Take (n) bytes of the run's output budget: 0, or -1 (nothing taken)
 * when that would go past it.  give() returns bytes no longer kept. */
int vb_run_budget_take(struct vb_run *r, uint64_t n);
void vb_run_budget_give(struct vb_run *r, uint64_t n);
/* The budget message, "the run's output budget of N MiB is used up ...". */
void vb_run_budget_msg(const struct vb_run *r, char *buf, size_t size);
/* After the program: close stdout.carry; its output is (output_path) if
 * given (a file already in u->dir), else its stdout, renamed to "output".
 * Fills the preview.  -1 with (err) set on a host failure. */
int vb_run_unit_settle(struct vb_run *r, struct vb_run_unit *u, const char *output_path,
		       uint64_t output_len, vb_error *err);
/* The fan-out stage (units, n) carried on as a JSON array in (path) (in
 * declaration order; an output that is JSON by itself embedded as that
 * value, anything else as a string).  Returns 0, 1 when the array would be
 * larger than the carry cap (message in err, kind VB_E_OK), -1 on a host
 * failure. */
int vb_run_fan_carry(struct vb_run *r, const struct vb_run_unit *units, size_t n,
		     const char *path, uint64_t *len, vb_error *err);
/* 1 if file (path) holds exactly one JSON value (with whitespace around),
 * checked as a stream in bounded memory; 0 otherwise. */
int vb_run_json_file_ok(const char *path);
/* The first (max) bytes of file (path), cut on a UTF-8 character boundary
 * when the file is longer: a new NUL-terminated buffer ("" for a missing
 * file), NULL on allocation failure. */
uint8_t *vb_run_preview(const char *path, size_t max, size_t *len);

/* Copy bytes into a new NUL-terminated buffer (NULL on allocation failure). */
uint8_t *vb_run_memdup(const void *p, size_t n);

/* (p, n) as valid UTF-8, bad bytes replaced by U+FFFD: a new NUL-terminated
 * string with its length in (*out_len); NULL on allocation failure. */
char *vb_run_utf8(const uint8_t *p, size_t n, size_t *out_len);

/* Record the run's first failure (later calls keep the first one). */
void vb_run_set_error(struct vb_run *r, enum vb_error_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Add the run options' env and mounts (--env, --mount) to (vc). */
int vb_run_add_extras(struct vb_run *r, struct vb_run_vmconf *vc, vb_error *err);

/* Before anything runs: every VM's config (errors name the box). */
int vb_run_pipeline_prepare(struct vb_run *r, vb_error *err);
int vb_run_workflow_prepare(struct vb_run *r, vb_error *err);
/* Run every stage; failures of boxes and steps land in the units and
 * (r->error).  -1 only when the engine itself could not go on. */
int vb_run_pipeline(struct vb_run *r, vb_error *err);
int vb_run_workflow(struct vb_run *r, vb_error *err);

/* ---- agent boxes (agent.c) ---- */

/* Before anything boots: the box's provider resolves, its credential is
 * there, and its agent is one this version has (builtin, claude-code,
 * codex). */
int vb_run_agent_check(const struct vb_spec_llm_eff *e, vb_error *err);

/* ---- agents that run in the VM (agent_link.c) ---- */

struct vb_llm_gateway;

/* The agent binary a box's VM needs attached (an enum vb_agentbin_kind),
 * or -1 when its agent runs on the host (builtin) or is not available. */
int vb_run_agent_binary(const struct vb_spec_llm_eff *e);

/* The guest loopback ports whose connections reach a stage's LLM gateway
 * (a forward, struct vb_forward): claude-code's and codex's. */
#define VB_RUN_GATEWAY_PORT 4380u
#define VB_RUN_CODEX_GATEWAY_PORT 4381u

/* ---- what claude-code and codex get in the VM (agent_env.c) ---- */

/* (base), then (ours): a new NULL-terminated array (the strings are the
 * callers'; a later value of a key wins).  NULL: out of memory. */
const char **vb_run_env_join(const char *const *base, const char *const *ours, size_t n_ours);
/* claude-code's switches for the traffic of its own (update checks,
 * telemetry, error reports), as KEY=VALUE. */
#define VB_RUN_CLAUDE_QUIET_N 4
extern const char *const vb_run_claude_quiet_env[VB_RUN_CLAUDE_QUIET_N];
/* codex's settings in every mode (the gateway as its provider, its own
 * sandbox and approvals off, nothing of its own online): appended to
 * argv[a..], VB_RUN_CODEX_SETTINGS_N entries; returns the new count. */
#define VB_RUN_CODEX_SETTINGS_N 18
size_t vb_run_codex_settings(const char **argv, size_t a);
/* "OPENAI_BASE_URL=..." for codex: the gateway's forward in the guest. */
const char *vb_run_codex_base_url(void);

/* Between the VM's forward, which exists from the boot on, and the stage's
 * gateway, which exists while the agent runs: a connection at any other
 * time is closed at once. */
struct vb_run_agent_link {
	pthread_mutex_t mu;
	struct vb_llm_gateway *gw;
};
/* vb_forward.accept, with (opaque) a struct vb_run_agent_link. */
int vb_run_agent_accept(void *opaque, int fd);
/* Point (l) at (gw), or at nothing (NULL) before the gateway goes. */
void vb_run_agent_link_set(struct vb_run_agent_link *l, struct vb_llm_gateway *gw);

struct vb_run_agent_box {
	const char *prompt;
	const struct vb_skill_set *skills; /* resolved (src/skill) */
	const struct vb_spec_llm_eff *llm;
	unsigned timeout_ms;        /* 0: none */
	unsigned max_turns;         /* agent.max_turns; 0: the agent's default */
	/* the carried input, as in the pipeline's carry */
	const char *in_path;
	const uint8_t *in_mem;
	size_t in_len;
	int in_has;
	const char *const *env;       /* the VM's exec environment (agents in the VM) */
	struct vb_run_agent_link *link; /* the VM's forward (agents in the VM) */
	int mode;                     /* enum vb_spec_agent_mode */
};
/* Run the box's agent (builtin, or claude-code in the VM, which needs
 * (env) and (link), the forward its VM was started with) in (sb) to its
 * final answer, which goes to (u->out_fd) as its stdout; fills the unit's
 * llm totals.  Returns 0, 1
 * when the stage fails for it (why in err, kind VB_E_OK: the gateway's
 * failure, a timeout...), -1 on a VoidBox failure. */
int vb_run_agent(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
		 const struct vb_run_agent_box *a, vb_error *err);

/* ---- skills in the VM (skills.c) ---- */

/* Write (set)'s skills where (agent) (an enum vb_agentbin_kind, or -1 for
 * the builtin agent) looks for them in (sb) — claude-code
 * ~/.claude/skills/NAME/, codex ~/.codex/skills/NAME/, the builtin agent
 * ~/.agents/skills/NAME/ — owned by the sandbox user, and emit a
 * skill.provisioned event for each.  A cli: skill goes on PATH instead
 * (vb_run_skills_cli); one that does not start is a VB_E_OK error (the
 * stage fails, not VoidBox). */
int vb_run_skills_provision(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
			    const struct vb_skill_set *set, int agent, vb_error *err);
/* A cli: skill (src/skill/cli.c) into (sb): the one the stage's images
 * (of (set)) put on PATH if they do, else the host's files, a launcher on
 * PATH; then a start check (src/run/skills_cli.c). */
int vb_run_skills_cli(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
		      const struct vb_skill_set *set, const struct vb_skill *s, vb_error *err);
/* Image skills (src/run/skills_oci.c): each of (set)'s images pulled as
 * vb_run_pull_policy says, its root disk built (once per manifest),
 * checked against (vc)'s disks and directory mounts, and attached
 * read-only at its mount.  Before
 * any VM boots; errors are positioned at the skill and name the image (an
 * image that cannot be had: VB_E_RUNTIME, 404 included). */
int vb_run_skills_oci_attach(struct vb_run *r, struct vb_run_vmconf *vc, struct vb_skill_set *set,
			     vb_error *err);
/* Once (u)'s VM is up: a skill.provisioned event per image skill. */
void vb_run_skills_oci_booted(struct vb_run *r, struct vb_run_unit *u,
			      const struct vb_skill_set *set);
/* The builtin agent's system prompt: every skill's SKILL.md, with where its
 * files are.  A new string ("" for none), NULL when out of memory. */
char *vb_run_skills_text(const struct vb_skill_set *set);

/* ---- MCP servers in the VM (mcp.c) ---- */

struct vb_run_mcp;
/* How long a server may take to answer initialize: ours, claude-code's
 * (MCP_TIMEOUT) and codex's (startup_timeout_sec) alike.  Under TCG a node
 * server from npm answers after 9-12 s on an idle 2-core host. */
#define VB_RUN_MCP_START_MS 60000
/* Start (set)'s MCP servers in (sb) as the sandbox user, initialize each
 * and list its tools (a skill.provisioned event each); one that does not
 * answer fails, named, with its stderr's tail.  (*out) is NULL without
 * servers. */
int vb_run_mcp_start(struct vb_run *r, struct vb_run_unit *u, vb_sandbox *sb,
		     const struct vb_skill_set *set, struct vb_run_mcp **out, vb_error *err);
void vb_run_mcp_free(struct vb_run_mcp *m); /* NULL: no-op */
/* codex's -c overrides for (set)'s servers, one a server:
 * mcp_servers.NAME={command="...",args=[...],env={K="V"},startup_timeout_sec=60,required=true}
 * (TOML); a new
 * NULL-terminated list (free each and it), NULL out of memory. */
char **vb_run_mcp_codex_overrides(const struct vb_skill_set *set);
/* claude-code's --mcp-config file for (set)'s servers, written to (path)
 * in (sb): {"mcpServers": {NAME: {type: stdio, command, args, env}}}. */
int vb_run_mcp_config_write(vb_sandbox *sb, const struct vb_skill_set *set, const char *path,
			    vb_error *err);
/* The servers' tools as Anthropic tools named mcp__SERVER__TOOL (a new
 * json_t array), NULL out of memory. */
void *vb_run_mcp_tools_json(const struct vb_run_mcp *m);
/* A model's call of (name): 1 when it is a server's tool (its content
 * text, at most (max) bytes, in (*out)), 0 when it is none. */
int vb_run_mcp_call(struct vb_run_mcp *m, const char *name, void *input, int64_t deadline_ms,
		    size_t max, char **out, int *is_error, vb_error *err);

/* ---- mode: interactive (interactive.c) ---- */

/* Can (llm)'s agent run interactively with (o) (an attach callback)?
 * -1 with the reason: no terminal, or the builtin agent. */
int vb_run_interactive_check(const struct vb_spec_llm_eff *llm, const struct vb_run_options *o,
			     vb_error *err);

struct vb_run_interactive_params {
	struct vb_run *r;
	vb_sandbox *sb;
	struct vb_llm_gateway *gw;
	int agent;                    /* enum vb_agentbin_kind */
	const char *const *env;       /* the VM's exec environment */
	const char *model;            /* NULL: the agent's default */
	const char *prompt;           /* its first prompt; NULL or "" for none */
};
/* Run the agent's own terminal interface in the VM with the caller's
 * terminal attached (r->opts.attach) until the person leaves it.  0 when it
 * exited with 0; -1 with (err): kind VB_E_OK when it exited otherwise,
 * VB_E_CANCELLED, or a VoidBox failure. */
int vb_run_interactive(const struct vb_run_interactive_params *p, vb_error *err);

/* ---- claude-code in the VM (claude.c) ---- */

struct vb_run_claude_params {
	struct vb_run *r;
	struct vb_run_unit *u;
	vb_sandbox *sb;
	struct vb_llm_gateway *gw;    /* reached at VB_RUN_GATEWAY_PORT in the guest */
	const char *const *env;       /* the VM's exec environment */
	const char *model;            /* NULL: claude's default */
	const char *prompt;
	unsigned max_turns;           /* 0: claude's default */
	unsigned timeout_ms;          /* 0: none */
	const char *mcp_config;       /* a guest path: --mcp-config it --strict-mcp-config */
};
/* Run `claude -p` headless as uid 1000 to its result; agent.tool events on
 * the way.  0 with its result text in *final; -1 with (err): kind VB_E_OK
 * when the stage fails for claude (its result says an error, no result),
 * VB_E_TIMEOUT, VB_E_CANCELLED, or a VoidBox failure. */
int vb_run_claude(const struct vb_run_claude_params *p, char **final, vb_error *err);

/* ---- codex in the VM (agent_codex.c) ---- */

struct vb_run_codex_params {
	struct vb_run *r;
	struct vb_run_unit *u;
	vb_sandbox *sb;
	struct vb_llm_gateway *gw;    /* reached at VB_RUN_CODEX_GATEWAY_PORT in the guest */
	const char *const *env;       /* the VM's exec environment */
	const char *model;            /* NULL: codex's default */
	const char *prompt;
	unsigned timeout_ms;          /* 0: none */
	const char *const *mcp;       /* "mcp_servers.NAME={...}" -c overrides; NULL: none */
};
/* Run `codex exec --json` as uid 1000 to the end of its turn; its JSONL
 * (kept as u->dir/codex.jsonl) becomes agent.tool events.  0 with its last
 * agent message in *final ("" if none); -1 with (err): kind VB_E_OK when
 * the stage fails for codex (turn.failed, an error, no finished turn),
 * VB_E_TIMEOUT, VB_E_CANCELLED, or a VoidBox failure. */
int vb_run_codex(const struct vb_run_codex_params *p, char **final, vb_error *err);

/* Build the public result from a finished run. */
struct vb_run_result *vb_run_make_result(struct vb_run *r, vb_error *err);

/* Run an already loaded spec (the CLI and the builder's way in). */
struct vb_run_result *vb_run_spec(const struct vb_spec *spec, const struct vb_run_options *opts,
				  vb_error *err);

#endif
