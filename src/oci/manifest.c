/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Manifests, indexes and image configs (OCI image-spec and Docker's v2
 * schema 2).  They come from a registry, so every field is checked before
 * it is used: digests well-formed, sizes present and bounded, counts
 * bounded, strings strings.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "oci/oci.h"
#include "util/util.h"

#define MAX_BLOB_SIZE (64ull << 30) /* no layer or config is bigger than this */
#define MAX_STR 4096
#define MAX_ARGS 4096

static void desc_clear(struct vb_oci_desc *d)
{
	free(d->media_type);
	free(d->os);
	free(d->arch);
	free(d->variant);
	memset(d, 0, sizeof(*d));
}

void vb_oci_manifest_clear(struct vb_oci_manifest *m)
{
	if (!m)
		return;
	free(m->media_type);
	free(m->artifact_type);
	desc_clear(&m->config);
	for (size_t i = 0; i < m->n_layers; i++)
		desc_clear(&m->layers[i]);
	free(m->layers);
	memset(m, 0, sizeof(*m));
}

/* An optional string member: NULL if absent; -1 if present and not a
 * short string. */
static int opt_str(json_t *obj, const char *key, char **out)
{
	*out = NULL;
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) > MAX_STR ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return -1;
	*out = strdup(json_string_value(v));
	return *out ? 0 : -1;
}

static int desc_parse(json_t *o, struct vb_oci_desc *d, const char *where, vb_error *err)
{
	if (!json_is_object(o))
		return vb_error_set(err, VB_E_RUNTIME, "%s: not an object", where);
	json_t *dg = json_object_get(o, "digest");
	if (!json_is_string(dg) || !vb_oci_digest_valid(json_string_value(dg)))
		return vb_error_set(err, VB_E_RUNTIME, "%s: no digest of the form sha256:<64 hex>",
				    where);
	memcpy(d->digest, json_string_value(dg), VB_OCI_DIGEST_LEN + 1);
	json_t *sz = json_object_get(o, "size");
	if (!json_is_integer(sz) || json_integer_value(sz) < 0 ||
	    (uint64_t)json_integer_value(sz) > MAX_BLOB_SIZE)
		return vb_error_set(err, VB_E_RUNTIME, "%s: no size, or a size beyond %llu GiB",
				    where, MAX_BLOB_SIZE >> 30);
	d->size = (uint64_t)json_integer_value(sz);
	if (opt_str(o, "mediaType", &d->media_type) < 0 || !d->media_type)
		return vb_error_set(err, VB_E_RUNTIME, "%s: no mediaType string", where);
	json_t *p = json_object_get(o, "platform");
	if (p) {
		if (!json_is_object(p) || opt_str(p, "os", &d->os) < 0 ||
		    opt_str(p, "architecture", &d->arch) < 0 || opt_str(p, "variant", &d->variant) < 0)
			return vb_error_set(err, VB_E_RUNTIME, "%s: a malformed platform", where);
	}
	json_t *ann = json_object_get(o, "annotations");
	if (ann && !json_is_object(ann))
		return vb_error_set(err, VB_E_RUNTIME, "%s: annotations not an object", where);
	json_t *rt = json_object_get(ann, "vnd.docker.reference.type");
	if (json_is_string(rt) && !strcmp(json_string_value(rt), "attestation-manifest"))
		d->attestation = 1;
	return 0;
}

static int is_index_type(const char *mt)
{
	return mt && (!strcmp(mt, VB_OCI_MT_INDEX) || !strcmp(mt, VB_OCI_MT_DOCKER_LIST));
}

static int is_manifest_type(const char *mt)
{
	return mt && (!strcmp(mt, VB_OCI_MT_MANIFEST) || !strcmp(mt, VB_OCI_MT_DOCKER_MANIFEST));
}

static int parse_doc(json_t *doc, const char *content_type, struct vb_oci_manifest *m,
		     vb_error *err)
{
	if (!json_is_object(doc))
		return vb_error_set(err, VB_E_RUNTIME, "not a JSON object");
	json_t *sv = json_object_get(doc, "schemaVersion");
	if (!json_is_integer(sv) || json_integer_value(sv) != 2)
		return vb_error_set(err, VB_E_RUNTIME,
				    "schemaVersion is not 2 (Docker schema 1 manifests are not supported)");
	if (opt_str(doc, "mediaType", &m->media_type) < 0)
		return vb_error_set(err, VB_E_RUNTIME, "mediaType is not a string");
	if (opt_str(doc, "artifactType", &m->artifact_type) < 0)
		return vb_error_set(err, VB_E_RUNTIME, "artifactType is not a string");
	json_t *manifests = json_object_get(doc, "manifests");
	json_t *layers = json_object_get(doc, "layers");
	if (!m->media_type) {
		/* OCI makes mediaType optional; then the shape (and the
		 * registry's Content-Type) says what it is */
		const char *mt = is_index_type(content_type) || is_manifest_type(content_type)
					 ? content_type
				 : manifests ? VB_OCI_MT_INDEX
					     : VB_OCI_MT_MANIFEST;
		if (!(m->media_type = strdup(mt)))
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	if (is_index_type(m->media_type)) {
		m->is_index = 1;
		if (!json_is_array(manifests))
			return vb_error_set(err, VB_E_RUNTIME, "an index without a manifests array");
		size_t n = json_array_size(manifests);
		if (n > VB_OCI_MAX_INDEX)
			return vb_error_set(err, VB_E_RUNTIME, "an index of %zu manifests (at most %u)", n,
					    VB_OCI_MAX_INDEX);
		m->layers = calloc(n ? n : 1, sizeof(*m->layers));
		if (!m->layers)
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		for (size_t i = 0; i < n; i++) {
			char where[48];
			snprintf(where, sizeof(where), "manifests[%zu]", i);
			m->n_layers = i + 1;
			if (desc_parse(json_array_get(manifests, i), &m->layers[i], where, err) < 0)
				return -1;
		}
		return 0;
	}
	if (!is_manifest_type(m->media_type))
		return vb_error_set(err, VB_E_RUNTIME, "media type '%.100s' is not an image manifest or index",
				    m->media_type);
	if (desc_parse(json_object_get(doc, "config"), &m->config, "config", err) < 0)
		return -1;
	if (m->config.size > VB_OCI_MAX_CONFIG)
		return vb_error_set(err, VB_E_RUNTIME, "config: %llu bytes (at most %u MiB)",
				    (unsigned long long)m->config.size, VB_OCI_MAX_CONFIG >> 20);
	if (!json_is_array(layers))
		return vb_error_set(err, VB_E_RUNTIME, "a manifest without a layers array");
	size_t n = json_array_size(layers);
	if (n > VB_OCI_MAX_LAYERS)
		return vb_error_set(err, VB_E_RUNTIME, "a manifest of %zu layers (at most %u)", n,
				    VB_OCI_MAX_LAYERS);
	m->layers = calloc(n ? n : 1, sizeof(*m->layers));
	if (!m->layers)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	for (size_t i = 0; i < n; i++) {
		char where[48];
		snprintf(where, sizeof(where), "layers[%zu]", i);
		m->n_layers = i + 1;
		if (desc_parse(json_array_get(layers, i), &m->layers[i], where, err) < 0)
			return -1;
	}
	return 0;
}

int vb_oci_manifest_parse(const char *buf, size_t len, const char *content_type,
			  struct vb_oci_manifest *m, vb_error *err)
{
	memset(m, 0, sizeof(*m));
	if (len > VB_OCI_MAX_MANIFEST)
		return vb_error_set(err, VB_E_RUNTIME, "manifest: %zu bytes (at most %u MiB)", len,
				    VB_OCI_MAX_MANIFEST >> 20);
	json_error_t jerr;
	json_t *doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return vb_error_set(err, VB_E_RUNTIME, "manifest: not JSON (%.100s, line %d)", jerr.text,
				    jerr.line);
	int rc = parse_doc(doc, content_type, m, err);
	json_decref(doc);
	if (rc < 0) {
		vb_error_prefix(err, "manifest");
		vb_oci_manifest_clear(m);
	}
	return rc;
}

int vb_oci_index_select(const struct vb_oci_manifest *m, const char *os, const char *arch,
			vb_error *err)
{
	char seen[256] = "";
	size_t used = 0;
	for (size_t i = 0; i < m->n_layers; i++) {
		const struct vb_oci_desc *d = &m->layers[i];
		if (d->attestation || !d->os || !d->arch)
			continue;
		if (!strcmp(d->os, os) && !strcmp(d->arch, arch) && is_manifest_type(d->media_type))
			return (int)i;
		if (used < sizeof(seen) - 1) {
			int k = snprintf(seen + used, sizeof(seen) - used, "%s%.20s/%.20s", used ? ", " : "",
					 d->os, d->arch);
			used += k > 0 ? (size_t)k : 0;
			if (used >= sizeof(seen))
				used = sizeof(seen) - 1;
		}
	}
	return vb_error_set(err, VB_E_RUNTIME, "no %s/%s image in the index (it has: %s)", os, arch,
			    seen[0] ? seen : "none");
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* An optional array of strings; -1 if present and anything else. */
static int strv(json_t *o, const char *key, char ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	json_t *a = json_object_get(o, key);
	if (!a || json_is_null(a))
		return 0;
	if (!json_is_array(a) || json_array_size(a) > MAX_ARGS)
		return -1;
	size_t k = json_array_size(a);
	char **v = calloc(k + 1, sizeof(*v));
	if (!v)
		return -1;
	for (size_t i = 0; i < k; i++) {
		json_t *s = json_array_get(a, i);
		if (!json_is_string(s) || json_string_length(s) > 65536 ||
		    strlen(json_string_value(s)) != json_string_length(s) ||
		    !(v[i] = strdup(json_string_value(s)))) {
			strv_free(v, i);
			return -1;
		}
	}
	*out = v;
	*n = k;
	return 0;
}

int vb_oci_config_parse(const char *buf, size_t len, struct vb_oci_image *img, vb_error *err)
{
	if (len > VB_OCI_MAX_CONFIG)
		return vb_error_set(err, VB_E_RUNTIME, "image config: %zu bytes (at most %u MiB)", len,
				    VB_OCI_MAX_CONFIG >> 20);
	json_error_t jerr;
	json_t *doc = json_loadb(buf, len, 0, &jerr);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return vb_error_set(err, VB_E_RUNTIME, "image config: not a JSON object");
	}
	json_t *c = json_object_get(doc, "config");
	int rc = 0;
	if (c && !json_is_null(c)) {
		if (!json_is_object(c) || strv(c, "Env", &img->env, &img->n_env) < 0 ||
		    strv(c, "Entrypoint", &img->entrypoint, &img->n_entrypoint) < 0 ||
		    strv(c, "Cmd", &img->cmd, &img->n_cmd) < 0 ||
		    opt_str(c, "WorkingDir", &img->working_dir) < 0 || opt_str(c, "User", &img->user) < 0)
			rc = vb_error_set(err, VB_E_RUNTIME,
					  "image config: config.Env, Entrypoint, Cmd, WorkingDir or User malformed");
		for (size_t i = 0; rc == 0 && i < img->n_env; i++)
			if (!strchr(img->env[i], '=') || img->env[i][0] == '=')
				rc = vb_error_set(err, VB_E_RUNTIME,
						  "image config: Env entry %zu is not K=V", i);
	}
	json_decref(doc);
	return rc;
}

void vb_oci_image_free(struct vb_oci_image *img)
{
	if (!img)
		return;
	free(img->reference);
	free(img->artifact_type);
	for (size_t i = 0; i < img->n_layers; i++) {
		free(img->layers[i].media_type);
		free(img->layers[i].path);
	}
	free(img->layers);
	free(img->config_path);
	strv_free(img->env, img->n_env);
	strv_free(img->entrypoint, img->n_entrypoint);
	strv_free(img->cmd, img->n_cmd);
	free(img->working_dir);
	free(img->user);
	free(img);
}
