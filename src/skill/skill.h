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

struct vb_skill_set {
	struct vb_skill *v;
	size_t n;
};

enum {
	VB_SKILL_NO_FETCH = 1, /* remote: skills checked, not fetched (validate) */
};

/* Resolve the materializable skills of (sk) (file, inline, remote, cli) into
 * (out), which the caller frees with vb_skill_set_free; `agent:` skills are
 * informational and skipped; mcp and image skills are refused as not
 * available in this version.  (spec_file) positions errors.  Names must be
 * unique in (sk).  Errors (VB_E_USAGE) name the skill and why. */
int vb_skill_resolve(const struct vb_spec_skills *sk, const char *spec_file, unsigned flags,
		     struct vb_skill_set *out, vb_error *err);
void vb_skill_set_free(struct vb_skill_set *s);

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
#define VB_SKILL_CLI_BYTES_MAX ((size_t)64 << 20)
int vb_skill_cli_resolve(const char *name, struct vb_skill *s, vb_error *err);

/* Lowercase hex SHA-256 of (data) into (out). */
void vb_skill_sha256(const void *data, size_t len, char out[65]);

#endif
