/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The declarative spec (schema v1, see docs/spec.md): a YAML or JSON file is
 * parsed into a document tree that remembers where every value came from,
 * checked field by field, and turned into the model below.  Every check runs
 * at load time, so nothing starts before the whole spec is known to be good.
 *
 * Ownership: vb_spec_load*() returns a struct vb_spec that owns every string
 * and array reachable from it; vb_spec_free() releases all of it.  Pointers
 * inside the resolved views (struct vb_spec_vm, struct vb_spec_llm_eff)
 * borrow from the same spec and live exactly as long as it.
 */
#ifndef VB_SPEC_H
#define VB_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "voidbox/error.h"

/* Where a value was written: 1-based line and column (in characters).
 * {0, 0} means the value was not in the file (a default). */
struct vb_spec_pos {
	uint32_t line, col;
};

struct vb_spec_str {
	char *s;                /* NULL when absent */
	struct vb_spec_pos pos;
};

struct vb_spec_int {
	int64_t v;
	bool set;
	struct vb_spec_pos pos;
};

struct vb_spec_bool {
	bool v;
	bool set;
	struct vb_spec_pos pos;
};

struct vb_spec_strlist {
	struct vb_spec_str *v;
	size_t n;
	bool set;               /* the field was written (possibly as []) */
	struct vb_spec_pos pos;
};

/* One environment entry.  An empty value means "copy from the host". */
struct vb_spec_kv {
	struct vb_spec_str key, value;
	bool from_host;         /* value was "" or null */
	bool provider_credential; /* kept on the host by the LLM gateway */
};

struct vb_spec_env {
	struct vb_spec_kv *v;   /* in file order */
	size_t n;
	bool set;
	struct vb_spec_pos pos;
};

/* A host path as written plus where it resolved to (see docs/spec.md). */
struct vb_spec_path {
	struct vb_spec_str text;
	char *abs;              /* absolute, NULL when text.s is NULL */
	bool exists;            /* abs existed when the spec was loaded */
};

enum vb_spec_mount_mode { VB_SPEC_MOUNT_RO = 0, VB_SPEC_MOUNT_RW };

struct vb_spec_mount {
	struct vb_spec_path host;
	struct vb_spec_str guest;
	enum vb_spec_mount_mode mode;
	struct vb_spec_pos pos;
};

struct vb_spec_cidr {
	struct vb_spec_str text;
	int family;             /* AF_INET or AF_INET6 */
	uint8_t addr[16];       /* network byte order; host bits cleared */
	unsigned prefix;
};

struct vb_spec_netpolicy {
	bool set;
	struct vb_spec_pos pos;
	struct vb_spec_cidr *deny;
	size_t n_deny;
	struct vb_spec_cidr *allow; /* default-deny when allow_set */
	size_t n_allow;
	bool allow_set;
	struct vb_spec_int *host_ports;
	size_t n_host_ports;
	struct vb_spec_bool allow_private;
	struct vb_spec_strlist allow_domains;   /* parsed; not enforced by this version */
	struct vb_spec_int max_connections;     /* default 64 */
	struct vb_spec_int connections_per_sec; /* default 50 */
};

/* sandbox.ports entry: a host loopback port forwarded to a guest port. */
struct vb_spec_port {
	struct vb_spec_int host;  /* 0 = a free port */
	struct vb_spec_int guest;
	struct vb_spec_pos pos;
};

struct vb_spec_limits {
	bool set;
	struct vb_spec_pos pos;
	struct vb_spec_int nofile, nproc, fsize_mb, timeout_secs;
	struct vb_spec_int outputs_mb; /* extension: a box's named outputs, in all */
};

enum vb_spec_sandbox_mode { VB_SPEC_MODE_AUTO = 0, VB_SPEC_MODE_LOCAL };
enum vb_spec_backend {
	VB_SPEC_BACKEND_AUTO = 0,
	VB_SPEC_BACKEND_QEMU,
	VB_SPEC_BACKEND_KVM,
	VB_SPEC_BACKEND_TCG,
};

/* A sandbox section as written: top level (defaults for every VM) or a box
 * override (only the fields written there apply on top of the top level). */
struct vb_spec_sandbox {
	bool set;
	struct vb_spec_pos pos;
	struct vb_spec_str mode_text;
	enum vb_spec_sandbox_mode mode;
	bool mock_requested;    /* "mock" was written: runs as auto, say so once */
	struct vb_spec_str backend_text;
	enum vb_spec_backend backend;
	struct vb_spec_path kernel, initramfs;
	struct vb_spec_int memory_mb, vcpus;
	struct vb_spec_bool network;
	struct vb_spec_netpolicy network_policy;
	struct vb_spec_env env;
	struct vb_spec_mount *mounts;
	size_t n_mounts;
	bool mounts_set;
	struct vb_spec_port *ports;
	size_t n_ports;
	bool ports_set;
	struct vb_spec_str image, guest_image, snapshot;
	struct vb_spec_limits limits;
	struct vb_spec_strlist allowed_commands; /* !set = all allowed */
};

enum vb_spec_provider {
	VB_SPEC_PROVIDER_CLAUDE = 0,
	VB_SPEC_PROVIDER_CLAUDE_PERSONAL,
	VB_SPEC_PROVIDER_CODEX,
	VB_SPEC_PROVIDER_OLLAMA,
	VB_SPEC_PROVIDER_LMSTUDIO,
	VB_SPEC_PROVIDER_CUSTOM,
};

enum vb_spec_agent_bin {
	VB_SPEC_AGENT_DEFAULT = 0, /* follows the provider */
	VB_SPEC_AGENT_CLAUDE_CODE,
	VB_SPEC_AGENT_CODEX,
	VB_SPEC_AGENT_BUILTIN,
};

/* llm.budget (extension): limits the stage's gateway enforces; unset = none. */
struct vb_spec_llm_budget {
	bool set;
	struct vb_spec_pos pos;
	struct vb_spec_int max_tokens, max_requests;
	double max_cost_usd;    /* 0 = none */
};

struct vb_spec_llm {
	bool set;
	struct vb_spec_pos pos;
	struct vb_spec_str provider_text;
	enum vb_spec_provider provider;
	struct vb_spec_str model, base_url, api_key_env, agent_text;
	enum vb_spec_agent_bin agent;
	struct vb_spec_bool credential_proxy;
	struct vb_spec_llm_budget budget;
};

struct vb_spec_observe {
	bool set;
	struct vb_spec_pos pos;
	struct vb_spec_bool traces, metrics, logs;
	struct vb_spec_str otlp_endpoint, service_name;
	struct vb_spec_int telemetry_buffer_size;
};

enum vb_spec_skill_type {
	VB_SPEC_SKILL_AGENT = 0,
	VB_SPEC_SKILL_FILE,
	VB_SPEC_SKILL_REMOTE,
	VB_SPEC_SKILL_CLI,
	VB_SPEC_SKILL_MCP,
	VB_SPEC_SKILL_OCI,      /* {image, mount, readonly} */
	VB_SPEC_SKILL_INLINE,   /* {name, content} */
};

struct vb_spec_skill {
	enum vb_spec_skill_type type;
	struct vb_spec_pos pos;
	bool object_form;
	char *value;            /* string form: text after "<type>:" */
	struct vb_spec_path path; /* file: resolved */
	/* mcp object form */
	struct vb_spec_str name, command;
	struct vb_spec_strlist args;
	struct vb_spec_env env;
	/* oci */
	struct vb_spec_str image, mount;
	struct vb_spec_bool readonly; /* default true */
	/* inline */
	struct vb_spec_str content;
};

struct vb_spec_skills {
	struct vb_spec_skill *v;
	size_t n;
};

/* A command instead of an agent (pipeline box extension, workflow step). */
struct vb_spec_run {
	bool set;
	struct vb_spec_pos pos;
	struct vb_spec_str program;
	struct vb_spec_strlist args;
	struct vb_spec_str stdin_from;
	size_t stdin_index;     /* resolved box/step index when stdin_from.s */
};

struct vb_spec_output {
	struct vb_spec_str name, guest; /* guest default /workspace/output */
	struct vb_spec_pos pos;
};

struct vb_spec_input {
	struct vb_spec_str from, guest; /* guest default /workspace/input */
	struct vb_spec_pos pos;
	size_t box_index;       /* the box producing it */
};

/* The resolved VM of one box (or of the whole spec): top-level sandbox and
 * box override merged, defaults applied.  Everything is borrowed. */
struct vb_spec_vm {
	enum vb_spec_backend backend;
	bool mock_requested;
	uint32_t memory_mb, vcpus;
	bool network;
	const char *kernel, *initramfs;  /* absolute; NULL = built-in image */
	const char *image, *guest_image, *snapshot; /* NULL = none */
	const struct vb_spec_netpolicy *network_policy; /* NULL = defaults */
	const struct vb_spec_port *ports;               /* box's if it has any, else top's */
	size_t n_ports;
	const struct vb_spec_limits *limits;            /* NULL = defaults */
	const struct vb_spec_strlist *allowed_commands; /* NULL = all */
	const struct vb_spec_kv **env; /* box keys win over top-level keys */
	size_t n_env;
	const struct vb_spec_mount **mounts; /* top level, then the box's */
	size_t n_mounts;
};

/* The resolved LLM settings (box llm over top-level llm over defaults). */
struct vb_spec_llm_eff {
	enum vb_spec_provider provider;
	enum vb_spec_agent_bin agent;
	const char *model, *base_url, *api_key_env; /* NULL = provider default */
	bool credential_proxy;
	bool agent_explicit;            /* llm.agent was written (else: the provider's) */
	const struct vb_spec_llm_budget *budget; /* the box's, else the top level's; never NULL */
};

/* agent.max_turns and a box's max_turns (extension): at most this many. */
#define VB_SPEC_MAX_TURNS 10000

/* The agent a provider runs when llm.agent is not set: claude family ->
 * claude-code, codex -> codex, the others -> builtin. */
enum vb_spec_agent_bin vb_spec_default_agent(enum vb_spec_provider p);

struct vb_spec_box {
	struct vb_spec_str name;
	struct vb_spec_pos pos;
	struct vb_spec_str prompt;      /* agent box */
	struct vb_spec_run run;         /* command box */
	struct vb_spec_skills skills;
	struct vb_spec_llm llm;
	struct vb_spec_int timeout_secs;
	struct vb_spec_int max_turns;   /* agent box; extension, as agent.max_turns */
	struct vb_spec_sandbox sandbox;
	struct vb_spec_output *outputs;
	size_t n_outputs;
	struct vb_spec_input *inputs;
	size_t n_inputs;
	struct vb_spec_str output_file; /* default /workspace/output.json */
	struct vb_spec_vm vm;           /* resolved */
	struct vb_spec_llm_eff llm_eff; /* resolved */
	int agent_mode;                 /* enum vb_spec_agent_mode: a kind: agent
					 * spec's one box (pipeline boxes: task) */
};

enum vb_spec_stage_type { VB_SPEC_STAGE_BOX = 0, VB_SPEC_STAGE_FAN_OUT };

struct vb_spec_stage {
	enum vb_spec_stage_type type;
	struct vb_spec_pos pos;
	struct vb_spec_strlist names;   /* one for box, N for fan_out */
	size_t *box_index;              /* names.n indices into pipeline.boxes */
};

struct vb_spec_pipeline {
	struct vb_spec_pos pos;
	struct vb_spec_box *boxes;
	size_t n_boxes;
	struct vb_spec_stage *stages;   /* one box stage per box if not written */
	size_t n_stages;
	bool stages_implicit;
};

enum vb_spec_agent_mode { VB_SPEC_AGENT_TASK = 0, VB_SPEC_AGENT_SERVICE, VB_SPEC_AGENT_INTERACTIVE };

struct vb_spec_agent {
	struct vb_spec_pos pos;
	struct vb_spec_str prompt;
	struct vb_spec_skills skills;
	struct vb_spec_int timeout_secs;
	struct vb_spec_int max_turns;   /* extension: model requests of the agent's loop */
	struct vb_spec_str output_file; /* default /workspace/output.json */
	struct vb_spec_str mode_text;
	enum vb_spec_agent_mode mode;
	struct vb_spec_bool messaging_enabled;
	struct vb_spec_str provider_bridge;
};

struct vb_spec_step {
	struct vb_spec_str name;
	struct vb_spec_pos pos;
	struct vb_spec_run run;
	struct vb_spec_strlist depends_on;
	size_t *dep_index;              /* depends_on.n indices into steps */
	struct vb_spec_str mode_text;
	bool service;
	struct vb_spec_int timeout_secs;
	unsigned level;                 /* 1 + max(level of dependencies) */
};

struct vb_spec_workflow {
	struct vb_spec_pos pos;
	struct vb_spec_step *steps;
	size_t n_steps;
	struct vb_spec_str output_step;
	size_t output_index;            /* valid when output_step.s */
};

enum vb_spec_kind { VB_SPEC_AGENT = 0, VB_SPEC_PIPELINE, VB_SPEC_WORKFLOW, VB_SPEC_SANDBOX };

struct vb_spec {
	char *file;                     /* name used in messages */
	char *dir;                      /* absolute dir relative paths start from */
	struct vb_spec_str api_version;
	struct vb_spec_str kind_text;
	enum vb_spec_kind kind;
	struct vb_spec_str name;
	struct vb_spec_sandbox sandbox;
	struct vb_spec_llm llm;
	struct vb_spec_observe observe;
	struct vb_spec_agent agent;         /* kind agent */
	struct vb_spec_pipeline pipeline;   /* kind pipeline */
	struct vb_spec_workflow workflow;   /* kind workflow */
	struct vb_spec_vm vm;               /* resolved top-level VM (agent,
					     * workflow, sandbox kinds) */
	struct vb_spec_llm_eff llm_eff;     /* resolved top-level LLM */
};

/*
 * Load and validate a spec file: YAML when (path) ends in .yaml/.yml (any
 * case), JSON when it ends in .json, otherwise JSON if the text starts with
 * '{' and YAML if not.  "-" reads the spec from stdin (named "<stdin>" in
 * messages; relative paths start from the current directory).  ${VAR},
 * ${VAR:-default} and $$ in values are expanded from the environment (see
 * docs/spec.md), and host paths may start with ~.  Returns NULL on any
 * problem with (err) set (kind VB_E_USAGE for a bad spec or an unset
 * variable, VB_E_RUNTIME when the file can't be read).  Every problem found
 * is reported, one per line, as "FILE:LINE:COL: PATH: message", in file
 * order.
 */
struct vb_spec *vb_spec_load(const char *path, vb_error *err);

/* What a valid spec asks for that will not be done (warn.c), one line
 * each, "FILE:LINE:COL: PATH: message", made safe for a terminal: today a
 * max_turns on a codex stage, which codex has no way to apply. */
typedef void (*vb_spec_warn_fn)(const char *line, void *opaque);
void vb_spec_warnings(const struct vb_spec *spec, vb_spec_warn_fn fn, void *opaque);

/* vb_spec_load_string() flags: one format, optionally VB_SPEC_LITERAL. */
enum {
	VB_SPEC_JSON = 0,
	VB_SPEC_YAML = 1,
	VB_SPEC_GUESS = 2,         /* as vb_spec_load() guesses for other names */
	VB_SPEC_FORMAT_MASK = 3,
	VB_SPEC_LITERAL = 1 << 4,  /* no ${VAR} expansion: values as written */
};

/* Same, from memory.  (name_for_errors) names the text in messages and its
 * directory is where relative paths start (current directory if it has
 * none).  (text) need not be NUL-terminated.  (flags): VB_SPEC_* above
 * (0 = JSON, 1 = YAML, as before). */
struct vb_spec *vb_spec_load_string(const char *text, size_t len, const char *name_for_errors,
				    int flags, vb_error *err);

void vb_spec_free(struct vb_spec *spec);

/* Print the resolved plan (what `voidbox inspect` shows).  Values are the
 * spec's own bytes, control characters included: a caller printing to a
 * terminal passes the text through vb_term_write (util/term.h) with
 * VB_TERM_LINES, as `inspect` does.  Returns 0, or -1 when writing failed. */
int vb_spec_print_plan(const struct vb_spec *spec, FILE *out);

/* The resolved plan as a JSON object (a jansson json_t *, declared void * so
 * that this header does not pull in jansson).  Caller json_decref()s it.
 * NULL on allocation failure. */
void *vb_spec_plan_json(const struct vb_spec *spec);

/* Set (err) to "FILE:LINE:COL: message" for a problem found later with a
 * value of (spec) (kind VB_E_USAGE).  Returns -1. */
int vb_spec_errorf(const struct vb_spec *spec, struct vb_spec_pos pos, vb_error *err,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Helpers, exposed for other modules and for the tests. */

/* Parse "a.b.c.d/n" or "v6addr/n" (a bare address means /32 or /128).
 * Returns 0 or -1. */
int vb_spec_parse_cidr(const char *text, int *family, uint8_t addr[16], unsigned *prefix);

/* The candidate closest to (word): case-insensitive equal, or within
 * Damerau-Levenshtein distance 2 (1 for words of 3-4 characters, 0 for
 * shorter ones).
 * (candidates) ends with NULL.  Returns NULL when none is close. */
const char *vb_spec_suggest(const char *word, const char *const *candidates);

/* Optimal-string-alignment distance between two strings (capped at 255). */
unsigned vb_spec_edit_distance(const char *a, const char *b);

/* Resolve a host path: absolute paths stay (normalised); a relative one
 * resolves against (spec_dir) if it exists there, else against the current
 * directory if it exists there, else against (spec_dir).  Returns a malloc'd
 * absolute path (NULL on allocation failure); (*exists) says whether it
 * exists. */
char *vb_spec_resolve_path(const char *path, const char *spec_dir, bool *exists);

/* True for the provider credentials the LLM gateway keeps on the host. */
bool vb_spec_is_provider_credential(const char *env_name);

const char *vb_spec_kind_name(enum vb_spec_kind kind);
const char *vb_spec_provider_name(enum vb_spec_provider provider);
const char *vb_spec_backend_name(enum vb_spec_backend backend);
const char *vb_spec_skill_type_name(enum vb_spec_skill_type type);

#endif
