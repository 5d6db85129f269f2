/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Run events: what happened, when, where.  The run engine emits them; sinks
 * (the run record's events.jsonl, the live progress display, a C API
 * caller's callback) consume them.  Every event names its run, and stage
 * events their stage and VM with the accelerator and isolation level.
 */
#ifndef VOIDBOX_EVENTS_H
#define VOIDBOX_EVENTS_H

#include <stddef.h>
#include <stdint.h>

enum vb_event_type {
	VB_EV_RUN_STARTED = 1,  /* name, kind */
	VB_EV_STAGE_QUEUED,     /* stage */
	VB_EV_STAGE_STARTED,    /* stage: its VM is being booted */
	VB_EV_VM_BOOTED,        /* stage, vm_id, accel, isolation, kernel, boot_id, boot_ms,
				 * accel_reason, image, image_digest, snapshot, warm,
				 * boot_notice */
	VB_EV_LOG_CHUNK,        /* stage, stream ("stdout"|"stderr"), data/len: every
				 * chunk reaches a callback; the record coalesces them */
	VB_EV_STAGE_COMPLETED,  /* stage, exit_code, duration_ms, output (preview),
				 * output_size, output_path */
	VB_EV_STAGE_FAILED,     /* stage, exit_code (or -1), duration_ms, error */
	VB_EV_STAGE_SKIPPED,    /* stage, error (why) */
	VB_EV_RUN_FINISHED,     /* success, duration_ms, error (first failure) */
	VB_EV_RUN_CANCELLED,    /* duration_ms */
	VB_EV_LLM_REQUEST,      /* stage, llm (provider, model, tokens, cost, status...),
				 * error: one model request through the stage's gateway */
	VB_EV_AGENT_TOOL,       /* stage, tool (name, input, result, is_error),
				 * duration_ms: one tool call of the stage's agent */
	VB_EV_AGENT_MESSAGE,    /* stage, text: what an agent in the VM (claude-code)
				 * said, a text block of one of its turns */
	VB_EV_AGENT_RESULT,     /* stage, agent_result: the final result an agent in
				 * the VM reported (its own count of turns and cost) */
	VB_EV_SKILL_PROVISIONED, /* stage, skill: a skill put where the stage's agent
				  * looks for it, before the agent started */
	VB_EV_NET_DENIED,       /* stage, net (proto, dst, port, rule, hint, suppressed):
				 * the network policy refused a connection (rate limited) */
	VB_EV_NET_PUBLISHED,    /* stage, net (host_port, guest_port): a port forward
				 * listens on the host's 127.0.0.1 */
	VB_EV_NET_SUMMARY,      /* stage, net (bytes, frames, connections, denied): the
				 * VM's network traffic, when it is torn down */
};

/* VB_EV_NET_* */
struct vb_event_net {
	const char *proto, *dst, *rule, *hint; /* DENIED */
	unsigned port;                         /* DENIED */
	uint64_t suppressed;                   /* DENIED: refusals not reported before it */
	unsigned host_port, guest_port;        /* PUBLISHED */
	uint64_t bytes_out, bytes_in, frames_out, frames_in; /* SUMMARY */
	uint64_t connections, denied, malformed;             /* SUMMARY */
};

/* VB_EV_LLM_REQUEST */
struct vb_event_llm {
	const char *provider, *model, *path;
	uint64_t input_tokens, output_tokens;
	double cost_usd;
	int64_t latency_ms, ttfb_ms;
	int status, attempts;
};

/* VB_EV_AGENT_RESULT (every string comes from the guest) */
struct vb_event_agent_result {
	const char *agent;    /* "claude-code" */
	const char *subtype;  /* "success", "error_max_turns", ... as it said */
	const char *text;     /* its final answer or error text */
	int is_error;
	int64_t num_turns;    /* -1: not said */
	uint64_t input_tokens, output_tokens;
	double cost_usd;      /* as the agent priced it (the gateway's count is
			       * the llm.request events') */
};

/* VB_EV_SKILL_PROVISIONED */
struct vb_event_skill {
	const char *type;     /* "file", "inline", "remote", "mcp", "cli", "oci" */
	const char *name;
	const char *source;   /* the host path, the URL, or "inline" */
	const char *sha256;   /* of its SKILL.md */
	const char *path;     /* its directory in the guest; NULL for the builtin
			       * agent's system prompt only */
	uint64_t size;        /* bytes of all its files */
	uint64_t files;
	/* type "mcp": the server's tools (NULL-terminated), sha256 and path
	 * NULL, size and files 0 */
	const char *const *tools;
	size_t n_tools;
	/* type "oci" (an image skill): name the normalized reference, digest its
	 * platform manifest's, path its mount, size its disk's */
	const char *digest;
	/* type "cli": where the tool came from, "image" (the stage's root
	 * image has it) or "host" (copied); NULL for other types */
	const char *from;
};

/* VB_EV_AGENT_TOOL (input and result may come from the model or the guest) */
struct vb_event_tool {
	const char *name, *input, *result;
	int is_error;
};

struct vb_event {
	enum vb_event_type type;
	int64_t time_ms;      /* wall clock, ms since the Unix epoch */
	const char *run_id;
	const char *name;     /* the spec's name (RUN_STARTED) */
	const char *kind;     /* "pipeline", "workflow", ... (RUN_STARTED) */
	const char *stage;    /* box or step name; NULL for run events */
	const char *vm_id;    /* NULL before the VM booted */
	const char *accel;    /* "kvm", "tcg" */
	const char *isolation; /* "hardware", "emulated" */
	const char *accel_reason; /* VM_BOOTED: why not KVM, when it was not ruled out
				   * by the user (no /dev/kvm, KVM cannot run the guest) */
	const char *kernel, *boot_id;
	/* VM_BOOTED: the OCI image that is the VM's root (sandbox.image):
	 * its normalized reference and manifest digest; NULL without one */
	const char *image, *image_digest;
	/* VM_BOOTED: how the VM started.  (snapshot): the full id of the
	 * snapshot it was restored from (boot_ms is then the whole restore:
	 * checks, QEMU loading it, the re-key), NULL when it booted cold;
	 * (warm) 1 when that is the warm snapshot of its configuration;
	 * (boot_notice): why a warm restore failed and it booted cold instead,
	 * or NULL */
	const char *snapshot;
	int warm;
	const char *boot_notice;
	int64_t boot_ms;
	const char *stream;   /* LOG_CHUNK */
	const uint8_t *data;  /* LOG_CHUNK: not NUL-terminated */
	size_t len;
	int structured;      /* LOG_CHUNK: an agent's machine-readable stdout
				* (claude-code's stream-json, codex's JSONL), whose
				* words come as AGENT_MESSAGE events: --follow shows
				* those instead */
	const uint8_t *output; /* STAGE_COMPLETED: the carried output's preview (its
				* first 16 KiB at most) */
	size_t output_len;
	uint64_t output_size;  /* STAGE_COMPLETED: the whole output's size */
	const char *output_path; /* STAGE_COMPLETED: the file holding it */
	int exit_code;
	int success;
	int64_t duration_ms;
	const char *error;    /* human-readable cause */
	const struct vb_event_llm *llm;   /* LLM_REQUEST */
	const struct vb_event_tool *tool; /* AGENT_TOOL */
	const char *text;                 /* AGENT_MESSAGE (from the guest) */
	const struct vb_event_agent_result *agent_result; /* AGENT_RESULT */
	const struct vb_event_skill *skill; /* SKILL_PROVISIONED */
	const struct vb_event_net *net;   /* NET_* */
};

/* Sinks are called from any stage thread, concurrently: they lock
 * themselves.  Pointers in (ev) are valid only during the call. */
typedef void (*vb_event_fn)(const struct vb_event *ev, void *opaque);

/* "run.started", "stage.queued", ... as written to events.jsonl. */
const char *vb_event_name(enum vb_event_type type);

#endif
