/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_oci_manifest.c — libFuzzer target for what a registry sends as a
 * manifest, an index or an image config (src/oci/manifest.c): the input is
 * parsed as each; what is accepted must hold well-formed digests and
 * bounded counts, and an index's platform selection must pick an entry in
 * range.
 *
 *   make fuzz; build/fuzz/fuzz_oci_manifest -max_total_time=600 tests/fuzz/corpus/oci_manifest
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oci/oci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = { NULL, VB_OCI_MT_INDEX, VB_OCI_MT_DOCKER_MANIFEST };
	const char *ct = types[size ? data[0] % 3 : 0];
	struct vb_oci_manifest m;
	vb_error err = { 0 };
	if (vb_oci_manifest_parse((const char *)data, size, ct, &m, &err) == 0) {
		if (!m.media_type || m.n_layers > (m.is_index ? VB_OCI_MAX_INDEX : VB_OCI_MAX_LAYERS))
			abort();
		if (!m.is_index && (!vb_oci_digest_valid(m.config.digest) || !m.config.media_type))
			abort();
		for (size_t i = 0; i < m.n_layers; i++)
			if (!vb_oci_digest_valid(m.layers[i].digest) || !m.layers[i].media_type)
				abort();
		if (m.is_index) {
			int k = vb_oci_index_select(&m, "linux", "amd64", &err);
			if (k >= (int)m.n_layers || (k < 0 && !err.msg[0]))
				abort();
		}
		vb_oci_manifest_clear(&m);
	} else if (!err.msg[0]) {
		abort();
	}
	struct vb_oci_image *img = calloc(1, sizeof(*img));
	if (!img)
		return 0;
	if (vb_oci_config_parse((const char *)data, size, img, &err) == 0)
		for (size_t i = 0; i < img->n_env; i++)
			if (!strchr(img->env[i], '='))
				abort();
	vb_oci_image_free(img);
	return 0;
}
