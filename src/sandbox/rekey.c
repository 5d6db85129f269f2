/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A fresh identity for a running VM (REKEY, docs/protocol.md "Re-keying"):
 * what a snapshot restore calls before anything runs in the copy.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sandbox/sandbox_int.h"
#include "util/term.h"
#include "util/util.h"

#define REKEY_ENTROPY 64u /* bytes of getrandom() output for the guest's RNG */

int vb_sandbox_rekey(vb_sandbox *sb, vb_error *err)
{
	if (!sb || !sb->ch)
		return vb_error_set(err, VB_E_USAGE, "no VM to re-key");
	/* a VM to be saved again (snapshot create --from) keeps the new secret
	 * for its own restorers: the one its snapshot will hold */
	struct vb_rekey rk = { .n_entropy = REKEY_ENTROPY, .one_host = !sb->save_dir };
	struct timespec now;
	struct vb_buf req = { 0 };
	struct vb_chan_frame *reply = NULL;
	int rc = -1;
	if (vb_random(rk.secret, sizeof(rk.secret), err) < 0 ||
	    vb_random(rk.entropy, rk.n_entropy, err) < 0)
		goto out;
	if (sb->save_dir)
		memcpy(rk.secret, sb->save_secret, sizeof(rk.secret));
	clock_gettime(CLOCK_REALTIME, &now);
	rk.time_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	if (vb_rekey_encode(&req, 0, &rk) < 0) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		goto out;
	}
	if (vb_chan_call(sb->ch, &req, VB_CALL_TIMEOUT_MS, &reply, NULL, err) < 0) {
		if (vb_chan_dead(sb->ch))
			vb_sandbox_died(sb, err);
		goto out;
	}
	uint64_t bits = 0;
	if (vb_payload_u64(reply->payload, reply->hdr.len, VB_TAG_ENTROPY_BITS, &bits) < 0 ||
	    bits != (uint64_t)rk.n_entropy * 8) {
		vb_error_set(err, VB_E_RUNTIME,
			     "the guest credited %llu bits of entropy, not %u",
			     (unsigned long long)bits, REKEY_ENTROPY * 8);
		goto out;
	}
	/* the restored VM's own boot id, made after the reseed (protocol.md) */
	struct vb_field bf;
	if (vb_payload_find(reply->payload, reply->hdr.len, VB_TAG_BOOT_ID, &bf) == 0 && bf.data &&
	    bf.len)
		vb_term_copyn(sb->hello.boot_id, sizeof(sb->hello.boot_id), (const char *)bf.data,
			      bf.len, 0);
	rc = 0;
out:
	/* The agent wipes its copy too (one-host: nothing authenticates any
	 * more, old or new); ours has no use once sent. */
	explicit_bzero(&rk, sizeof(rk));
	if (req.data)
		explicit_bzero(req.data, req.cap);
	vb_buf_free(&req);
	free(reply);
	if (rc < 0 && !vb_chan_dead(sb->ch))
		/* never run anything under an identity that may be the old one */
		vb_chan_shutdown(sb->ch, "re-keying the VM failed");
	if (rc < 0)
		vb_error_prefix(err, "cannot re-key the VM");
	return rc;
}
