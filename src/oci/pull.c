/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vb_oci_pull: a reference resolved (index -> linux/amd64 manifest), its
 * config and layers fetched into the store (layers in parallel, with
 * progress bars on a terminal and plain lines otherwise), recorded in the
 * index, then the store's size bound applied.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "oci/oci.h"
#include "util/util.h"

#define WORKERS 3
#define BAR 24

/* ---- progress ------------------------------------------------------------ */

enum { WAITING, FETCHING, DONE, PRESENT, FAILED };

struct job {
	char digest[72];
	uint64_t size, got;
	int state;
	struct prog *p;
};

struct prog {
	FILE *out;
	int tty;
	const char *ref;
	pthread_mutex_t lock;
	struct job *jobs;
	size_t n, next;
	int drawn;
	int64_t last_ms;
	/* the workers' shared state */
	struct vb_oci_reg *reg;
	const char *blobs;
	int failed; /* the first failure's return code */
	vb_error err;
};

static void human(uint64_t b, char *out, size_t n)
{
	if (b < 1024)
		snprintf(out, n, "%llu B", (unsigned long long)b);
	else if (b < (1u << 20))
		snprintf(out, n, "%.1f KB", (double)b / 1024);
	else if (b < (1u << 30))
		snprintf(out, n, "%.1f MB", (double)b / (1 << 20));
	else
		snprintf(out, n, "%.2f GB", (double)b / (1 << 30));
}

/* Under p->lock. */
static void draw(struct prog *p, int force)
{
	if (!p->out || !p->tty || !p->n)
		return;
	int64_t now = vb_now_ms();
	if (!force && now - p->last_ms < 100)
		return;
	p->last_ms = now;
	if (p->drawn)
		fprintf(p->out, "\033[%zuA", p->n);
	for (size_t i = 0; i < p->n; i++) {
		const struct job *j = &p->jobs[i];
		char got[32], size[32], bar[BAR + 1];
		human(j->got, got, sizeof(got));
		human(j->size, size, sizeof(size));
		size_t fill = j->size ? (size_t)(j->got * BAR / j->size) : BAR;
		for (size_t k = 0; k < BAR; k++)
			bar[k] = k < fill ? '#' : '.';
		bar[BAR] = '\0';
		static const char *const word[] = { "waiting", "fetching", "done", "present", "failed" };
		fprintf(p->out, "\r\033[K%.19s  [%s] %9s / %-9s %s\n", j->digest, bar, got, size,
			word[j->state]);
	}
	p->drawn = 1;
	fflush(p->out);
}

/* A plain line per layer as it ends. */
static void line(struct prog *p, const struct job *j)
{
	if (!p->out || p->tty)
		return;
	char size[32];
	human(j->size, size, sizeof(size));
	fprintf(p->out, "voidbox: pull %s: layer %.19s (%s) %s\n", p->ref, j->digest, size,
		j->state == PRESENT ? "already in the store" : j->state == DONE ? "fetched" : "failed");
	fflush(p->out);
}

static void on_bytes(void *arg, uint64_t got)
{
	struct job *j = arg;
	pthread_mutex_lock(&j->p->lock);
	j->got = got;
	draw(j->p, 0);
	pthread_mutex_unlock(&j->p->lock);
}

static void *worker(void *arg)
{
	struct prog *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		if (p->failed || p->next == p->n) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		struct job *j = &p->jobs[p->next++];
		j->state = FETCHING;
		draw(p, 1);
		pthread_mutex_unlock(&p->lock);
		vb_error e = { 0 };
		int rc = vb_oci_reg_blob(p->reg, j->digest, j->size, p->blobs, on_bytes, j, &e);
		pthread_mutex_lock(&p->lock);
		j->state = rc == 0 ? DONE : FAILED;
		if (rc == 0)
			j->got = j->size;
		if (rc < 0 && !p->failed) {
			p->failed = rc;
			p->err = e;
		}
		draw(p, 1);
		line(p, j);
		pthread_mutex_unlock(&p->lock);
	}
}

/* ---- the store side ------------------------------------------------------- */

static int blob_present(const char *oci, const char *digest, uint64_t size)
{
	_cleanup_free_ char *p = vb_oci_blob_path(oci, digest);
	struct stat st;
	return p && stat(p, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size;
}

/* A manifest we hashed ourselves, kept as a blob (temp + rename). */
static int put_blob(const char *oci, const char *digest, const char *body, size_t len,
		    vb_error *err)
{
	if (blob_present(oci, digest, len))
		return 0;
	_cleanup_free_ char *p = vb_oci_blob_path(oci, digest);
	_cleanup_free_ char *tmp = p ? vb_strfmt("%s.tmpXXXXXX", p) : NULL;
	if (!tmp)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	int fd = mkstemp(tmp);
	if (fd < 0)
		return vb_error_errno(err, errno, "cannot create %s", tmp);
	int rc = vb_write_full(fd, body, len) < 0 || fchmod(fd, 0444) < 0 || fsync(fd) < 0;
	int e = errno;
	close(fd);
	if (rc || rename(tmp, p) < 0) {
		e = rc ? e : errno;
		unlink(tmp);
		return vb_error_errno(err, e, "cannot store %s", p);
	}
	return 0;
}

static int is_image_config(const char *mt)
{
	return mt && (!strcmp(mt, VB_OCI_MT_CONFIG) || !strcmp(mt, VB_OCI_MT_DOCKER_CONFIG));
}

/* The image of manifest (mdigest) from the store alone.  1 when a blob it
 * needs is missing (pull again), -1 on error. */
static int load_image(const char *oci, const char *refstr, const char *mdigest,
		      struct vb_oci_image **out, vb_error *err)
{
	*out = NULL;
	_cleanup_free_ char *mp = vb_oci_blob_path(oci, mdigest);
	size_t len = 0;
	vb_error ignore = { 0 };
	_cleanup_free_ char *text = mp ? vb_read_file(mp, VB_OCI_MAX_MANIFEST, &len, &ignore) : NULL;
	if (!text)
		return 1;
	struct vb_oci_manifest m;
	if (vb_oci_manifest_parse(text, len, NULL, &m, err) < 0)
		return -1;
	struct vb_oci_image *img = calloc(1, sizeof(*img));
	int rc = img ? 0 : vb_error_set(err, VB_E_RUNTIME, "out of memory");
	if (rc == 0 && m.is_index)
		rc = vb_error_set(err, VB_E_RUNTIME, "%s: the stored manifest is an index", refstr);
	if (rc == 0) {
		img->reference = strdup(refstr);
		memcpy(img->manifest_digest, mdigest, 72);
		img->config_path = vb_oci_blob_path(oci, m.config.digest);
		img->layers = calloc(m.n_layers + 1, sizeof(*img->layers));
		if (m.artifact_type)
			img->artifact_type = strdup(m.artifact_type);
		else if (!is_image_config(m.config.media_type))
			img->artifact_type = strdup(m.config.media_type);
		if (!img->reference || !img->config_path || !img->layers)
			rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	if (rc == 0 && !blob_present(oci, m.config.digest, m.config.size))
		rc = 1;
	for (size_t i = 0; rc == 0 && i < m.n_layers; i++) {
		struct vb_oci_layer *l = &img->layers[i];
		memcpy(l->digest, m.layers[i].digest, 72);
		l->size = m.layers[i].size;
		l->media_type = strdup(m.layers[i].media_type);
		l->path = vb_oci_blob_path(oci, l->digest);
		img->n_layers = i + 1;
		if (!l->media_type || !l->path)
			rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
		else if (!blob_present(oci, l->digest, l->size))
			rc = 1;
	}
	if (rc == 0 && is_image_config(m.config.media_type)) {
		size_t clen = 0;
		_cleanup_free_ char *ctext = vb_read_file(img->config_path, VB_OCI_MAX_CONFIG, &clen, err);
		if (!ctext || vb_oci_config_parse(ctext, clen, img, err) < 0) {
			vb_error_prefix(err, "%s", refstr);
			rc = -1;
		}
	}
	vb_oci_manifest_clear(&m);
	if (rc != 0) {
		vb_oci_image_free(img);
		return rc;
	}
	*out = img;
	return 0;
}

/* ---- the pull --------------------------------------------------------------- */

/* From the registry: the reference's manifest (through its index) and every
 * blob it names; fills (e). */
static int fetch(const struct vb_oci_ref *r, const char *refstr, const char *oci,
		 const struct vb_oci_pull_opts *o, struct vb_oci_entry *e, vb_error *err)
{
	struct vb_oci_reg *g = vb_oci_reg_open(r, err);
	if (!g)
		return -1;
	_cleanup_free_ char *body = NULL, *ct = NULL;
	size_t len = 0;
	uint64_t total = 0;
	struct vb_oci_manifest m = { 0 };
	int rc = vb_oci_reg_manifest(g, r->digest[0] ? r->digest : r->tag, &body, &len, &ct,
				     e->digest, err);
	if (rc == 0 && (rc = vb_oci_manifest_parse(body, len, ct, &m, err)) < 0)
		vb_error_prefix(err, "%s", refstr);
	if (rc == 0)
		rc = put_blob(oci, e->digest, body, len, err);
	memcpy(e->manifest, e->digest, 72);
	total += len;
	if (rc == 0 && m.is_index) {
		int k = vb_oci_index_select(&m, "linux", "amd64", err);
		if (k < 0) {
			vb_error_prefix(err, "%s", refstr);
			rc = -1;
		} else {
			char want[72];
			uint64_t want_size = m.layers[k].size;
			memcpy(want, m.layers[k].digest, 72);
			vb_oci_manifest_clear(&m);
			free(body);
			free(ct);
			body = ct = NULL;
			rc = vb_oci_reg_manifest(g, want, &body, &len, &ct, e->manifest, err);
			if (rc == 0 && len != want_size)
				rc = vb_error_set(err, VB_E_RUNTIME,
						  "%s: manifest %s is %zu bytes, its index says %llu", refstr,
						  want, len, (unsigned long long)want_size);
			if (rc == 0 && (rc = vb_oci_manifest_parse(body, len, ct, &m, err)) < 0)
				vb_error_prefix(err, "%s", refstr);
			if (rc == 0 && m.is_index)
				rc = vb_error_set(err, VB_E_RUNTIME, "%s: an index inside an index", refstr);
			if (rc == 0)
				rc = put_blob(oci, e->manifest, body, len, err);
			total += len;
		}
	}
	_cleanup_free_ char *blobs = vb_strfmt("%s/blobs/sha256", oci);
	if (rc == 0 && !blob_present(oci, m.config.digest, m.config.size))
		rc = vb_oci_reg_blob(g, m.config.digest, m.config.size, blobs, NULL, NULL, err);
	total += m.config.size;
	struct prog p = { .out = o ? o->progress : NULL, .ref = refstr, .reg = g, .blobs = blobs };
	p.tty = p.out && isatty(fileno(p.out));
	pthread_mutex_init(&p.lock, NULL);
	if (rc == 0 && m.n_layers) {
		p.jobs = calloc(m.n_layers, sizeof(*p.jobs));
		if (!p.jobs)
			rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	if (rc == 0) {
		/* the ones already here first, then the ones to fetch */
		for (int pass = 0; pass < 2; pass++)
			for (size_t i = 0; i < m.n_layers; i++) {
				int here = blob_present(oci, m.layers[i].digest, m.layers[i].size);
				if (here != (pass == 0))
					continue;
				struct job *j = &p.jobs[p.n++];
				memcpy(j->digest, m.layers[i].digest, 72);
				j->size = m.layers[i].size;
				j->p = &p;
				if (here) {
					j->state = PRESENT;
					j->got = j->size;
					line(&p, j);
					p.next = p.n;
				}
			}
		for (size_t i = 0; i < m.n_layers; i++)
			total += m.layers[i].size;
		pthread_mutex_lock(&p.lock);
		draw(&p, 1);
		pthread_mutex_unlock(&p.lock);
		pthread_t th[WORKERS];
		size_t started = 0;
		size_t want = p.n - p.next < WORKERS ? p.n - p.next : WORKERS;
		for (; started < want; started++)
			if (pthread_create(&th[started], NULL, worker, &p) != 0)
				break;
		if (want && !started)
			worker(&p);
		for (size_t i = 0; i < started; i++)
			pthread_join(th[i], NULL);
		if (p.failed) {
			*err = p.err;
			rc = p.failed;
		}
	}
	pthread_mutex_destroy(&p.lock);
	free(p.jobs);
	vb_oci_manifest_clear(&m);
	vb_oci_reg_close(g);
	e->size = total;
	return rc;
}

int vb_oci_pull(const char *ref, const struct vb_oci_pull_opts *o, struct vb_oci_image **out,
		vb_error *err)
{
	*out = NULL;
	struct vb_oci_ref r;
	if (vb_oci_ref_parse(ref, &r, err) < 0)
		return -1;
	_cleanup_free_ char *refstr = vb_oci_ref_string(&r);
	_cleanup_free_ char *oci = refstr ? vb_oci_dir(err) : NULL;
	int rc = 0;
	if (!refstr) {
		rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
		goto done;
	}
	if (!oci) {
		rc = -1;
		goto done;
	}
	int gc = vb_oci_store_lock(oci, 0, err);
	if (gc < 0) {
		rc = -1;
		goto done;
	}
	/* a digest never changes: one in the store is used as it is */
	if ((o && o->cached_only) || (r.digest[0] && !r.tag)) {
		struct vb_oci_entry e;
		int found = vb_oci_store_get(oci, refstr, 1, &e, err);
		if (found == 0) {
			free(e.reference);
			rc = load_image(oci, refstr, e.manifest, out, err);
		} else {
			rc = found < 0 ? -1 : 1;
		}
		if (rc <= 0 || (o && o->cached_only)) {
			if (rc > 0)
				rc = VB_OCI_ENOENT;
			if (rc == VB_OCI_ENOENT)
				vb_error_set(err, VB_E_RUNTIME,
					     "%s is not in the store (pull it first: voidbox pull %s)",
					     refstr, refstr);
			close(gc);
			goto done;
		}
	}
	struct vb_oci_entry e = { .reference = refstr, .last_used = time(NULL) };
	rc = fetch(&r, refstr, oci, o, &e, err);
	if (rc == 0 && (rc = load_image(oci, refstr, e.manifest, out, err)) > 0)
		rc = vb_error_set(err, VB_E_RUNTIME, "%s: a blob vanished from the store during the pull",
				  refstr);
	if (rc == 0)
		rc = vb_oci_store_put(oci, &e, err);
	close(gc); /* before the GC, which takes it exclusively */
	if (rc == 0) {
		uint64_t freed = 0;
		vb_error ignore = { 0 };
		vb_oci_store_gc(oci, vb_oci_store_bound(), refstr, 0, &freed, &ignore);
	}
done:
	vb_oci_ref_clear(&r);
	if (rc < 0) {
		vb_oci_image_free(*out);
		*out = NULL;
	}
	return rc == VB_OCI_ENOENT ? rc : rc < 0 ? -1 : 0;
}
