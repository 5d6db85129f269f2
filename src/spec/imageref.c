/* SPDX-License-Identifier: Apache-2.0 */
/* OCI references in specs (sandbox.image): their syntax, checked where
 * they are written; nothing here touches the network. */
#include "oci/oci.h"
#include "spec/spec_internal.h"

void spec_check_image_ref(struct spec_ctx *c, const struct vb_spec_str *s, const char *path)
{
	if (!s->s)
		return;
	vb_error err = { 0 };
	struct vb_oci_ref r;
	if (vb_oci_ref_parse(s->s, &r, &err) < 0) {
		/* the parser's message already quotes the reference, made safe */
		spec_diag(c, s->pos, path, "%s", err.msg);
		return;
	}
	vb_oci_ref_clear(&r);
}
