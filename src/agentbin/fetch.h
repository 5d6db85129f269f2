/* SPDX-License-Identifier: Apache-2.0 */
/* The npm registry client of src/agentbin (fetch.c); internal. */
#ifndef VB_AGENTBIN_FETCH_H
#define VB_AGENTBIN_FETCH_H

#include <stdio.h>

#include "agentbin/agentbin.h"

/* The registry's base URL without a trailing '/': $VOIDBOX_NPM_REGISTRY,
 * $npm_config_registry, `registry=` in ~/.npmrc, else what
 * `npm config get registry` says (npm's own default).  NULL when none is
 * known (no npm installed) or out of memory. */
char *vb_agentbin_registry(void);

/* GET REGISTRY/NAME/VERSION: (*integrity) = dist.integrity ("sha512-..."),
 * (*tarball) = dist.tarball (both caller-owned). */
int vb_agentbin_metadata(const char *registry, const char *name, const char *version,
			 char **integrity, char **tarball, vb_error *err);

/* Download (url) into the new file (path), its sha512 into (digest);
 * progress lines "voidbox: WHAT: N of M MB (P%)" on (progress) if not NULL. */
int vb_agentbin_download(const char *url, const char *path, unsigned char digest[64],
			 FILE *progress, const char *what, vb_error *err);

int vb_agentbin_sha512_file(const char *path, unsigned char out[64], vb_error *err);

#endif
