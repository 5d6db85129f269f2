/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The document tree and the YAML front end.  libyaml's event API is used
 * (not its document API) so that we control allocation, bound nesting and
 * alias expansion, and keep the position of every key and value.
 */
#include "spec/spec_internal.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct node *spec_node_new(struct spec_ctx *c, enum node_type type, struct vb_spec_pos pos)
{
	if (c->nodes >= SPEC_MAX_NODES) {
		spec_diag(c, pos, "", "spec too large: more than %d values (check for alias loops)",
			  SPEC_MAX_NODES);
		return NULL;
	}
	struct node *n = calloc(1, sizeof(*n));
	if (!n) {
		spec_oom(c);
		return NULL;
	}
	c->nodes++;
	n->type = type;
	n->pos = pos;
	return n;
}

void spec_node_free(struct node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++) {
		if (n->keys)
			spec_node_free(n->keys[i]);
		spec_node_free(n->items[i]);
	}
	/* A map whose last key is still waiting for its value. */
	if (n->keys && n->cap && n->keys[n->n])
		spec_node_free(n->keys[n->n]);
	free(n->keys);
	free(n->items);
	free(n->str);
	free(n->anchor);
	free(n);
}

static int grow(struct spec_ctx *c, struct node *p)
{
	/* cap + 1 slots for keys: a map keeps its pending key at keys[n]. */
	if (p->n + 1 < p->cap)
		return 0;
	size_t cap = p->cap ? p->cap * 2 : 8;
	struct node **items = realloc(p->items, cap * sizeof(*items));
	if (!items)
		goto oom;
	p->items = items;
	if (p->type == NODE_MAP) {
		struct node **keys = realloc(p->keys, cap * sizeof(*keys));
		if (!keys)
			goto oom;
		memset(keys + p->cap, 0, (cap - p->cap) * sizeof(*keys));
		p->keys = keys;
	}
	p->cap = cap;
	return 0;
oom:
	spec_oom(c);
	return -1;
}

static bool key_eq(const struct node *k, const struct node *other)
{
	return k && other && k->type == NODE_SCALAR && other->type == NODE_SCALAR &&
	       k->len == other->len && memcmp(k->str, other->str, k->len) == 0;
}

/* Append (child) to a list, or as the next key or value of a map.  Takes
 * ownership of (child) in every case. */
int spec_node_add(struct spec_ctx *c, struct node *p, struct node *child)
{
	if (grow(c, p) < 0) {
		spec_node_free(child);
		return -1;
	}
	if (p->type == NODE_SEQ) {
		p->items[p->n++] = child;
		return 0;
	}
	if (!p->keys[p->n]) {
		char buf[64];
		p->keys[p->n] = child;
		if (child->type != NODE_SCALAR) {
			spec_diag(c, child->pos, "", "a field name must be a string, found %s",
				  spec_describe(child));
			return 0;
		}
		for (size_t i = 0; i < p->n; i++) {
			if (key_eq(p->keys[i], child)) {
				spec_diag(c, child->pos, "", "duplicate field '%s' (first written at %u:%u)",
					  spec_clip(child->str, buf, sizeof(buf)),
					  p->keys[i]->pos.line, p->keys[i]->pos.col);
				break;
			}
		}
		return 0;
	}
	p->items[p->n++] = child;
	p->keys[p->n] = NULL;
	return 0;
}

/* First value written for (key); duplicates were reported when added. */
const struct node *spec_map_get(const struct node *map, const char *key)
{
	if (!map || map->type != NODE_MAP)
		return NULL;
	size_t len = strlen(key);
	for (size_t i = 0; i < map->n; i++) {
		const struct node *k = map->keys[i];
		if (k->type == NODE_SCALAR && k->len == len && memcmp(k->str, key, len) == 0)
			return map->items[i];
	}
	return NULL;
}

const struct node *spec_map_key(const struct node *map, const char *key)
{
	if (!map || map->type != NODE_MAP)
		return NULL;
	size_t len = strlen(key);
	for (size_t i = 0; i < map->n; i++) {
		const struct node *k = map->keys[i];
		if (k->type == NODE_SCALAR && k->len == len && memcmp(k->str, key, len) == 0)
			return k;
	}
	return NULL;
}

struct vb_spec_pos spec_pos_at(const char *text, size_t len, size_t offset)
{
	struct vb_spec_pos pos = { 1, 1 };
	for (size_t i = 0; i < offset && i < len; i++) {
		unsigned char ch = (unsigned char)text[i];
		if (ch == '\n') {
			pos.line++;
			pos.col = 1;
		} else if ((ch & 0xC0) != 0x80) {
			pos.col++;
		}
	}
	return pos;
}

static struct vb_spec_pos mark_pos(yaml_mark_t m)
{
	struct vb_spec_pos pos = { (uint32_t)m.line + 1, (uint32_t)m.column + 1 };
	return pos;
}

static struct node *copy_tree(struct spec_ctx *c, const struct node *src)
{
	struct node *n = spec_node_new(c, src->type, src->pos);
	if (!n)
		return NULL;
	if (src->type == NODE_SCALAR) {
		n->str = malloc(src->len + 1);
		if (!n->str) {
			spec_oom(c);
			spec_node_free(n);
			return NULL;
		}
		memcpy(n->str, src->str, src->len + 1);
		n->len = src->len;
		n->plain = src->plain;
		return n;
	}
	for (size_t i = 0; i < src->n; i++) {
		if (src->type == NODE_MAP) {
			struct node *k = copy_tree(c, src->keys[i]);
			if (!k || spec_node_add(c, n, k) < 0)
				goto fail;
		}
		struct node *v = copy_tree(c, src->items[i]);
		if (!v || spec_node_add(c, n, v) < 0)
			goto fail;
	}
	return n;
fail:
	spec_node_free(n);
	return NULL;
}

struct anchors {
	char **names;
	const struct node **nodes;
	size_t n, cap;
};

static int anchor_add(struct spec_ctx *c, struct anchors *a, struct node *n)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 8;
		char **names = realloc(a->names, cap * sizeof(*names));
		if (!names)
			goto oom;
		a->names = names;
		const struct node **nodes = realloc(a->nodes, cap * sizeof(*nodes));
		if (!nodes)
			goto oom;
		a->nodes = nodes;
		a->cap = cap;
	}
	/* A later anchor of the same name shadows the earlier one (YAML). */
	a->names[a->n] = n->anchor;
	a->nodes[a->n] = n;
	n->anchor = NULL;
	a->n++;
	return 0;
oom:
	spec_oom(c);
	return -1;
}

static const struct node *anchor_find(const struct anchors *a, const char *name)
{
	for (size_t i = a->n; i-- > 0;)
		if (strcmp(a->names[i], name) == 0)
			return a->nodes[i];
	return NULL;
}

/* True when line (line) of (text) holds "${": a flow collection ({...},
 * [...]) ends at a plain ${VAR}'s brace, which wants quotes there. */
static bool line_has_reference(const char *text, size_t len, uint32_t line)
{
	size_t i = 0;
	for (uint32_t l = 1; l < line && i < len; i++)
		if (text[i] == '\n')
			l++;
	const char *end = memchr(text + i, '\n', len - i);
	size_t n = end ? (size_t)(end - (text + i)) : len - i;
	return n >= 2 && memmem(text + i, n, "${", 2) != NULL;
}

static void yaml_problem(struct spec_ctx *c, const yaml_parser_t *p, const char *text, size_t len)
{
	struct vb_spec_pos pos;
	if (p->error == YAML_READER_ERROR)
		pos = spec_pos_at(text, len, p->problem_offset);
	else if (p->error == YAML_MEMORY_ERROR) {
		spec_oom(c);
		return;
	} else
		pos = mark_pos(p->problem_mark);
	if (p->context && p->error != YAML_READER_ERROR)
		spec_diag(c, pos, "", "YAML syntax error: %s (%s at %u:%u)%s",
			  p->problem ? p->problem : "unknown problem", p->context,
			  (unsigned)p->context_mark.line + 1, (unsigned)p->context_mark.column + 1,
			  strstr(p->context, "flow") && line_has_reference(text, len, pos.line)
				  ? "; inside {...} or [...] quote a value holding ${...}, or write "
				    "it in block style"
				  : "");
	else
		spec_diag(c, pos, "", "YAML syntax error: %s",
			  p->problem ? p->problem : "unknown problem");
}

/* An explicit !!str tag makes even a plain scalar a string. */
static bool tagged_str(const yaml_char_t *tag)
{
	return tag && strcmp((const char *)tag, YAML_STR_TAG) == 0;
}

static int set_anchor(struct spec_ctx *c, struct node *n, const yaml_char_t *anchor)
{
	if (!anchor)
		return 0;
	n->anchor = strdup((const char *)anchor);
	if (!n->anchor) {
		spec_oom(c);
		return -1;
	}
	return 0;
}

int spec_parse_yaml(struct spec_ctx *c, const char *text, size_t len, struct node **out)
{
	yaml_parser_t p;
	yaml_event_t ev;
	struct node *stack[SPEC_MAX_DEPTH];
	size_t depth = 0, docs = 0;
	struct node *root = NULL;
	struct anchors anchors = { 0 };
	int rc = -1;
	bool done = false;

	*out = NULL;
	if (!yaml_parser_initialize(&p)) {
		spec_oom(c);
		return -1;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (!done) {
		if (!yaml_parser_parse(&p, &ev)) {
			yaml_problem(c, &p, text, len);
			goto out;
		}
		struct vb_spec_pos pos = mark_pos(ev.start_mark);
		struct node *n = NULL;
		bool push = false;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				spec_diag(c, pos, "", "a spec file holds one YAML document; found a second one here");
				yaml_event_delete(&ev);
				goto out;
			}
			break;
		case YAML_ALIAS_EVENT: {
			const struct node *src = anchor_find(&anchors, (const char *)ev.data.alias.anchor);
			if (!src) {
				char buf[64];
				spec_diag(c, pos, "", "unknown YAML anchor '%s'",
					  spec_clip((const char *)ev.data.alias.anchor, buf, sizeof(buf)));
				yaml_event_delete(&ev);
				goto out;
			}
			n = copy_tree(c, src);
			if (!n) {
				yaml_event_delete(&ev);
				goto out;
			}
			/* Report problems inside the copy where the alias is. */
			n->pos = pos;
			break;
		}
		case YAML_SCALAR_EVENT:
			n = spec_node_new(c, NODE_SCALAR, pos);
			if (!n) {
				yaml_event_delete(&ev);
				goto out;
			}
			n->str = malloc(ev.data.scalar.length + 1);
			if (!n->str) {
				spec_oom(c);
				spec_node_free(n);
				yaml_event_delete(&ev);
				goto out;
			}
			memcpy(n->str, ev.data.scalar.value, ev.data.scalar.length);
			n->str[ev.data.scalar.length] = '\0';
			n->len = ev.data.scalar.length;
			n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
				   !tagged_str(ev.data.scalar.tag);
			if (set_anchor(c, n, ev.data.scalar.anchor) < 0 ||
			    (n->anchor && anchor_add(c, &anchors, n) < 0)) {
				spec_node_free(n);
				yaml_event_delete(&ev);
				goto out;
			}
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (depth == SPEC_MAX_DEPTH) {
				spec_diag(c, pos, "", "nesting deeper than %d levels", SPEC_MAX_DEPTH);
				yaml_event_delete(&ev);
				goto out;
			}
			n = spec_node_new(c, ev.type == YAML_SEQUENCE_START_EVENT ? NODE_SEQ : NODE_MAP, pos);
			if (!n || set_anchor(c, n, ev.type == YAML_SEQUENCE_START_EVENT ?
						      ev.data.sequence_start.anchor :
						      ev.data.mapping_start.anchor) < 0) {
				spec_node_free(n);
				yaml_event_delete(&ev);
				goto out;
			}
			push = true;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT: {
			struct node *done_node = stack[--depth];
			if (done_node->anchor && anchor_add(c, &anchors, done_node) < 0) {
				yaml_event_delete(&ev);
				goto out;
			}
			break;
		}
		default:
			break;
		}
		yaml_event_delete(&ev);
		if (!n)
			continue;
		if (depth == 0) {
			/* libyaml guarantees one root per document; we allow one document. */
			spec_node_free(root);
			root = n;
		} else if (spec_node_add(c, stack[depth - 1], n) < 0) {
			goto out;
		}
		if (push)
			stack[depth++] = n;
	}
	if (!root) {
		spec_diag(c, (struct vb_spec_pos){ 1, 1 }, "", "the spec is empty");
		goto out;
	}
	*out = root;
	root = NULL;
	rc = 0;
out:
	/* Nodes still on the stack belong to root (or to a parent in it). */
	spec_node_free(root);
	for (size_t i = 0; i < anchors.n; i++)
		free(anchors.names[i]);
	free(anchors.names);
	free(anchors.nodes);
	yaml_parser_delete(&p);
	return rc;
}
