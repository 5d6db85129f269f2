/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inside the spec loader: the document tree both parsers produce, the
 * diagnostics list and the type-checked readers the schema code uses.
 * Cross-file helpers carry a spec_ prefix (they are not public API).
 */
#ifndef VB_SPEC_INTERNAL_H
#define VB_SPEC_INTERNAL_H

#include "spec/spec.h"

#define SPEC_MAX_FILE (4u << 20)      /* bytes of spec text */
#define SPEC_MAX_NODES 100000         /* values, counting alias copies */
#define SPEC_MAX_DEPTH 64             /* nesting of maps and lists */
#define SPEC_MAX_DIAGS 64             /* problems kept; more are counted */
#define SPEC_PATH_MAX 192             /* a field path like pipeline.boxes[1].x */
#define SPEC_NAME_MAX 64              /* box, step, output, spec names */
#define SPEC_GUEST_PATH_MAX 1024

enum node_type { NODE_SCALAR, NODE_MAP, NODE_SEQ };

/* One value of the document.  Map keys are scalar nodes too, so that an
 * unknown field can be reported where its key was written. */
struct node {
	enum node_type type;
	struct vb_spec_pos pos;
	char *str;              /* scalar text, NUL-terminated */
	size_t len;             /* may be < strlen if the text holds a NUL */
	bool plain;             /* unquoted: may be a number, bool or null */
	struct node **keys;     /* map only; keys[i] may be non-scalar (reported) */
	struct node **items;    /* map values or list items */
	size_t n, cap;
	char *anchor;           /* YAML anchor, until the node is complete */
};

struct diag {
	struct vb_spec_pos pos;
	unsigned seq;
	char *text;             /* "PATH: message" */
};

struct spec_ctx {
	const char *file;       /* for messages */
	const char *dir;        /* absolute base for relative host paths */
	struct diag diags[SPEC_MAX_DIAGS];
	size_t n_diags, n_more;
	unsigned seq;
	bool oom;
	size_t nodes;           /* budget used */
	uint64_t host_mem_mb;
	/* values whose ${VAR} could not be expanded: other problems found
	 * there are follow-ons, not reported */
	struct vb_spec_pos unexpanded[SPEC_MAX_DIAGS];
	size_t n_unexpanded;
	bool expanding;
};

/* Test seam: when nonzero, the host memory limit memory_mb is checked
 * against (the tests pin it so that messages do not depend on the host). */
extern uint64_t spec_host_mem_override_mb;

/* node.c */
struct node *spec_node_new(struct spec_ctx *c, enum node_type type, struct vb_spec_pos pos);
int spec_node_add(struct spec_ctx *c, struct node *parent, struct node *child);
void spec_node_free(struct node *n);
const struct node *spec_map_get(const struct node *map, const char *key);
const struct node *spec_map_key(const struct node *map, const char *key);
int spec_parse_yaml(struct spec_ctx *c, const char *text, size_t len, struct node **out);
struct vb_spec_pos spec_pos_at(const char *text, size_t len, size_t offset);

/* json.c */
int spec_parse_json(struct spec_ctx *c, const char *text, size_t len, struct node **out);

/* imageref.c: (s), when set, is an OCI reference (vb_oci_ref_parse's
 * syntax); else a problem at its position. */
void spec_check_image_ref(struct spec_ctx *c, const struct vb_spec_str *s, const char *path);

/* diag.c */
void spec_diag(struct spec_ctx *c, struct vb_spec_pos pos, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void spec_oom(struct spec_ctx *c);
int spec_diag_finish(struct spec_ctx *c, vb_error *err);
void spec_diag_free(struct spec_ctx *c);
const char *spec_clip(const char *s, char *buf, size_t size);
void spec_path(char *out, const char *parent, const char *field);
void spec_path_index(char *out, const char *parent, size_t i);
char *spec_strdup(struct spec_ctx *c, const char *s);

/* get.c: type-checked readers.  (v) is the value node or NULL (absent); a
 * null value counts as absent.  Each returns 1 when a value was stored, 0
 * when absent, -1 when a problem was reported. */
bool spec_is_null(const struct node *v);
const char *spec_describe(const struct node *v);
int spec_get_map(struct spec_ctx *c, const struct node *v, const char *path);
int spec_get_seq(struct spec_ctx *c, const struct node *v, const char *path);
int spec_get_str(struct spec_ctx *c, const struct node *v, const char *path, struct vb_spec_str *out);
int spec_get_int(struct spec_ctx *c, const struct node *v, const char *path, int64_t min,
		 int64_t max, struct vb_spec_int *out);
int spec_get_bool(struct spec_ctx *c, const struct node *v, const char *path, struct vb_spec_bool *out);
int spec_get_enum(struct spec_ctx *c, const struct node *v, const char *path,
		  const char *const *names, struct vb_spec_str *text, int *out);
/* Same, matching without regard to case (void-box writes `Claude`). */
int spec_get_enum_nocase(struct spec_ctx *c, const struct node *v, const char *path,
			 const char *const *names, struct vb_spec_str *text, int *out);
int spec_get_strlist(struct spec_ctx *c, const struct node *v, const char *path,
		     struct vb_spec_strlist *out);
int spec_get_env(struct spec_ctx *c, const struct node *v, const char *path, struct vb_spec_env *out);
void spec_check_fields(struct spec_ctx *c, const struct node *map, const char *path,
		       const char *where, const char *const *allowed);
bool spec_require(struct spec_ctx *c, const struct node *map, const char *path,
		  const char *where, const char *key);
bool spec_env_name_ok(const char *s);
int spec_check_name(struct spec_ctx *c, const struct vb_spec_str *s, const char *path);
int spec_check_guest_path(struct spec_ctx *c, const struct vb_spec_str *s, const char *path);
int spec_get_host_path(struct spec_ctx *c, const struct node *v, const char *path,
		       struct vb_spec_path *out);

/* expand.c: ${VAR}, ${VAR:-default} and $$ in every scalar value (not
 * keys), from the environment; an unset variable is a problem reported
 * at its value. */
void spec_expand(struct spec_ctx *c, struct node *root);

/* parse.c, flow.c */
void spec_parse_top(struct spec_ctx *c, const struct node *root, struct vb_spec *spec);
void spec_parse_sandbox(struct spec_ctx *c, const struct node *v, const char *path,
			const char *where, bool is_override, struct vb_spec_sandbox *sb);
void spec_parse_llm(struct spec_ctx *c, const struct node *v, const char *path,
		    const char *where, struct vb_spec_llm *llm);
void spec_parse_skills(struct spec_ctx *c, const struct node *v, const char *path,
		       struct vb_spec_skills *out);
void spec_parse_pipeline(struct spec_ctx *c, const struct node *v, struct vb_spec_pipeline *p);
void spec_parse_workflow(struct spec_ctx *c, const struct node *v, struct vb_spec_workflow *w);

/* snapshot.c: sandbox.snapshot's value (a directory made absolute), and,
 * once resolved, what a VM restored from a snapshot cannot have. */
void spec_check_snapshot_ref(struct spec_ctx *c, struct vb_spec_str *s, const char *path);
void spec_check_snapshots(struct spec_ctx *c, const struct vb_spec *spec);

/* resolve.c */
int spec_resolve(struct vb_spec *spec);
void spec_free_sandbox(struct vb_spec_sandbox *sb);
void spec_free_skills(struct vb_spec_skills *sk);
void spec_free_strlist(struct vb_spec_strlist *l);
void spec_free_env(struct vb_spec_env *e);

#endif
