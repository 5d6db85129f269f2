/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Skills resolved on the host, before any VM boots: a `file:` SKILL.md or
 * skill directory, an inline {name, content}, a `remote:owner/repo[/skill]`
 * fetched over HTTPS (and cached).  Each becomes a skill: a safe name and
 * the files of its directory, SKILL.md first, held in memory, which the run
 * engine writes where the stage's agent looks (src/run/skills.c).  Nothing
 * here touches a VM.
 */
#ifndef VB_SKILL_H
#define VB_SKILL_H

#include <stddef.h>
#include <stdint.h>

#include "spec/spec.h"
#include "voidbox/error.h"

/* Limits (docs/skills.md): a SKILL.md, a skill directory's files and
 * total size, and its depth. */
#define VB_SKILL_MD_MAX ((size_t)256 << 10)
#define VB_SKILL_DIR_FILES_MAX 256
#define VB_SKILL_DIR_BYTES_MAX ((size_t)16 << 20)
#define VB_SKILL_DIR_DEPTH_MAX 8
#define VB_SKILL_NAME_MAX 64

/* The base URL of remote: skills when VOIDBOX_SKILLS_BASE_URL is not set. */
#define VB_SKILL_DEFAULT_BASE "https://raw.githubusercontent.com"

struct vb_skill_file {
	char *rel;          /* "SKILL.md", "scripts/run.sh": relative, no ".." */
	uint8_t *data;
	size_t len;
	unsigned mode;      /* 0644 or 0755 */
};

struct vb_skill {
	const char *type;   /* "file", "inline", "remote", "cli" (static) */
	char *name;         /* a safe path component */
	char *description;  /* the frontmatter's, or NULL */
	char *source;       /* the path, the URL, or "inline" */
	char sha256[65];    /* of SKILL.md */
	size_t total;       /* bytes of every file */
	struct vb_skill_file *files; /* files[0] is SKILL.md */
	size_t n_files;
};

/* An MCP server (src/skill/mcp.c): started in the stage's VM over stdio. */
struct vb_skill_mcp {
	char *name;         /* a safe identifier (vb_mcp_name_ok) */
	char **argv;        /* the command, then its args; NULL-terminated */
	char **env;         /* "K=V", NULL-terminated */
	char *source;       /* the command as written (for events and errors) */
};

/* An image skill {image, mount, readonly: true} (src/skill/oci.c): checked
 * here; the run engine pulls it and attaches its root disk read-only at
 * (mount) (src/run/skills_oci.c), filling the rest. */
struct vb_skill_oci {
	char *image;        /* the reference as written */
	char *mount;        /* absolute guest path, checked */
	struct vb_spec_pos pos;
	/* set by vb_run_skills_oci_attach */
	char *reference;    /* normalized */
	char digest[72];    /* the platform manifest's */
	char *disk;         /* its root disk on the host */
	uint64_t size;      /* of the disk */
};

struct vb_skill_set {
	struct vb_skill *v;
	size_t n;
	struct vb_skill_oci *oci; /* image skills, in spec order */
	size_t n_oci;
	int root_image;           /* the stage runs on an OCI root (VB_SKILL_IMAGES) */
	struct vb_skill_mcp *mcp; /* mcp: skills, in spec order */
	size_t n_mcp;
};

enum {
	VB_SKILL_NO_FETCH = 1, /* remote: skills checked, not fetched (validate) */
	/* the stage has a root image (sandbox.image): a cli: tool may come from
	 * it, so one missing on the host is looked for in the guest (as when
	 * the stage has image skills) */
	VB_SKILL_IMAGES = 2,
};

/* Resolve the materializable skills of (sk) (file, inline, remote, cli) into
 * (out), which the caller frees with vb_skill_set_free; `agent:` skills are
 * informational and skipped; mcp servers go to out->mcp, image skills to
 * out->oci (checked, not pulled: vb_skill_oci_check).  (spec_file) positions errors.  Names must be
 * unique in (sk).  Errors (VB_E_USAGE) name the skill and why. */
int vb_skill_resolve(const struct vb_spec_skills *sk, const char *spec_file, unsigned flags,
		     struct vb_skill_set *out, vb_error *err);
void vb_skill_set_free(struct vb_skill_set *s);

/* A cli: skill the host does not have, kept for the stage's images to
 * provide (no files, no source): with VB_SKILL_IMAGES or image skills. */
static inline int vb_skill_cli_deferred(const struct vb_skill *s)
{
	return s->n_files == 0;
}

/* Every agent stage's skills of (spec), resolved and dropped: what
 * `voidbox validate` checks (remote: skills not fetched). */
int vb_skill_check_spec(const struct vb_spec *spec, vb_error *err);

/* A skill name is one safe path component: 1..VB_SKILL_NAME_MAX bytes of
 * letters, digits, '-', '_' and '.', not "." or "..". */
int vb_skill_name_ok(const char *name);

/* SKILL.md's frontmatter: absent (no leading "---" line: 0, nothing set),
 * or a YAML mapping between "---" lines whose `name` and `description`,
 * when there, are strings (the name a safe one).  (*name) and (*desc) are
 * new strings or NULL.  Errors are "LABEL:LINE:COL: why". */
int vb_skill_frontmatter(const char *text, size_t len, const char *label, char **name,
			 char **desc, vb_error *err);

/* remote: — the URL of (id) ("owner/repo" or "owner/repo/skill") under
 * (base), and its fetch through the cache (cache_dir/skills). */
char *vb_skill_remote_url(const char *base, const char *id);
/* The base URL: VOIDBOX_SKILLS_BASE_URL or VB_SKILL_DEFAULT_BASE, which
 * must be https, or http to a loopback host. */
int vb_skill_remote_base(char **base, vb_error *err);
/* GET (url) (cached by URL, content checked by its SHA-256): a new
 * buffer of at most VB_SKILL_MD_MAX bytes.  A failure names the URL and
 * the HTTP status. */
int vb_skill_fetch(const char *url, uint8_t **data, size_t *len, vb_error *err);

/* cli:NAME — the host's program NAME (on its PATH) into (s): type "cli",
 * source its path, files[0] the program (rel NAME); a dynamic program's
 * files[1] is its loader (rel "lib/<loader>") and the rest its libraries
 * ("lib/<soname>"), at most VB_SKILL_CLI_FILES_MAX files and
 * VB_SKILL_CLI_BYTES_MAX bytes.  Errors name the program and why. */
#define VB_SKILL_CLI_FILES_MAX 64
#define VB_SKILL_CLI_BYTES_MAX ((size_t)256 << 20)
int vb_skill_cli_resolve(const char *name, struct vb_skill *s, vb_error *err);

/* ---- image skills (oci.c) ---- */

/* Disks a stage may have: the VM's (VB_SANDBOX_MAX_DISKS), the root
 * image's included. */
#define VB_SKILL_OCI_MAX 4
/* (in), an image skill, checked into (out) (strings copied): readonly not
 * false (a disk is read-only), a reference that parses, a mount path that
 * is absolute, not "/", without "." or ".." components, not VoidBox's or
 * the system's own (/workspace, /home, /proc, /usr, ... and their
 * ancestors), and neither equal to, inside nor around an earlier image
 * skill's mount in (prev[n_prev]).  Errors (VB_E_USAGE) say why, without
 * the spec's position. */
int vb_skill_oci_check(const struct vb_spec_skill *in, const struct vb_skill_oci *prev,
		       size_t n_prev, struct vb_skill_oci *out, vb_error *err);
void vb_skill_oci_free(struct vb_skill_oci *o);
/* 1 if guest paths (a) and (b) are the same or one is inside the other. */
int vb_skill_paths_overlap(const char *a, const char *b);

/* ---- mcp: (mcp.c) ---- */

#define VB_MCP_NAME_MAX 32         /* a server's name */
#define VB_MCP_TOOL_NAME_MAX 64    /* a tool's name, as the server gives it */
#define VB_MCP_TOOLS_MAX 128       /* tools per server */
#define VB_MCP_LINE_MAX ((size_t)1 << 20) /* one JSON-RPC message */

/* A server's name: 1..VB_MCP_NAME_MAX letters, digits, '_' or '-',
 * starting with a letter. */
int vb_mcp_name_ok(const char *name);
/* (in), an mcp: skill of the spec, into (out) (freed with
 * vb_skill_mcp_free).  Errors say why, without the spec's position. */
int vb_skill_mcp_resolve(const struct vb_spec_skill *in, struct vb_skill_mcp *out,
			 vb_error *err);
void vb_skill_mcp_free(struct vb_skill_mcp *m);

/* Newline-delimited JSON-RPC from a server's stdout, bounded: bytes are
 * fed as they come, whole lines taken out. */
struct vb_mcp_reader {
	char *buf;
	size_t len, cap;
};
/* -1 (VB_E_RUNTIME) when a line grows past VB_MCP_LINE_MAX. */
int vb_mcp_reader_feed(struct vb_mcp_reader *r, const void *data, size_t n, vb_error *err);
/* 1 with a new NUL-terminated line (without its newline) in (*line), 0
 * when no whole line is buffered, -1 out of memory. */
int vb_mcp_reader_line(struct vb_mcp_reader *r, char **line, size_t *len);
void vb_mcp_reader_free(struct vb_mcp_reader *r);

/* One line read while waiting for the response to request (id): 1 with
 * (*result) (a new reference) when it is that response, 0 when it is
 * something else (a notification, a request of the server's, another id:
 * ignored), -1 when it is not JSON-RPC 2.0 or is the error response to
 * (id) (the error's message, terminal-safe, in err). */
struct json_t;
int vb_mcp_response(const char *line, size_t len, long long id, struct json_t **result,
		    vb_error *err);

struct vb_mcp_tool {
	char *name;         /* the server's, checked: [A-Za-z0-9_.-], 1..64 */
	char *description;  /* terminal-safe, or NULL */
	struct json_t *schema; /* its inputSchema: an object */
};
/* The tools of a tools/list result: at most VB_MCP_TOOLS_MAX, each named
 * safely and uniquely (also with '.' read as '_').  Free with vb_mcp_tools_free. */
int vb_mcp_tools(struct json_t *result, struct vb_mcp_tool **tools, size_t *n, vb_error *err);
void vb_mcp_tools_free(struct vb_mcp_tool *tools, size_t n);

/* Lowercase hex SHA-256 of (data) into (out). */
void vb_skill_sha256(const void *data, size_t len, char out[65]);

#endif
