/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rekey.c — REKEY: a fresh identity for a VM that already runs.
 *
 * Two VMs restored from one snapshot start with the same memory: the same
 * session secret, the same kernel RNG state, a clock stopped at the moment
 * of the snapshot.  The host re-keys each right after the restore, inside
 * the session it authenticated with the snapshot's secret: new secret (the
 * old one, which anyone holding the snapshot knows, authenticates nothing
 * any more), host entropy credited to the kernel RNG (so /dev/urandom
 * diverges between the copies), the host's wall-clock time, optionally a
 * hostname.  docs/protocol.md, "Re-keying".
 *
 * Order matters: everything that can fail comes before the secret is
 * replaced, so an ERROR reply means the old identity is still whole (the
 * host then kills the VM: a half-re-keyed VM is never used).
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* <linux/random.h>, which musl does not ship: RNDADDENTROPY is
 * _IOW('R', 0x03, int[2]) on struct rand_pool_info. */
#define VB_RNDADDENTROPY 0x40085203
#define VB_RNDRESEEDCRNG 0x5207 /* _IO('R', 0x07) */
struct vb_rand_pool_info {
	int entropy_count; /* bits credited */
	int buf_size;      /* bytes */
	uint8_t buf[VB_REKEY_ENTROPY_MAX];
};

/* Mix (p, n) into the kernel's input pool and credit all of it: the host's
 * getrandom() output is full entropy.  Returns 0 or an errno value. */
static int add_entropy(const uint8_t *p, size_t n)
{
	struct vb_rand_pool_info rpi;
	if (n > sizeof(rpi.buf))
		return EINVAL;
	rpi.entropy_count = (int)(n * 8);
	rpi.buf_size = (int)n;
	memcpy(rpi.buf, p, n);
	int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	int rc = fd < 0 || ioctl(fd, VB_RNDADDENTROPY, &rpi) < 0 ? errno : 0;
	/* The input pool is not what /dev/urandom and getrandom() read: the
	 * ChaCha CRNG is, and it reseeds from the pool only on its own
	 * schedule (after a minute, less early in boot).  A VM restored from a
	 * snapshot brings the CRNG state of the moment it was saved, so every
	 * copy would hand out the same bytes until then: reseed now.  ENODATA:
	 * the CRNG is not even initialised, and will seed from this pool. */
	if (rc == 0 && ioctl(fd, VB_RNDRESEEDCRNG) < 0 && errno != ENODATA)
		rc = errno;
	if (fd >= 0)
		close(fd);
	explicit_bzero(&rpi, sizeof(rpi));
	return rc;
}

static void send_ok(struct conn *c, uint32_t id, uint64_t bits, int one_host)
{
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_OK, 0, id);
	vb_msg_put_u64(&b, VB_TAG_ENTROPY_BITS, bits);
	/* after the reseed: a restored VM's boot id is made now, its own
	 * (HELLO_OK left it unmade in a VM that could be snapshotted) */
	char *boot_id = NULL;
	/* ...but not in a VM to be saved again (REKEY without ONE_HOST):
	 * each restore of that snapshot makes its own */
	if (one_host && agent_read_boot_id(&boot_id) > 0)
		vb_msg_put_str(&b, VB_TAG_BOOT_ID, boot_id);
	free(boot_id);
	if (vb_msg_end(&b) == 0)
		conn_send(c, &b);
	vb_buf_free(&b);
}

void rekey_handle(struct conn *c, const struct vb_hdr *h, const uint8_t *payload)
{
	struct vb_rekey rk;
	int rc = vb_rekey_decode(payload, h->len, &rk);
	if (rc != VB_ERR_NONE) {
		conn_send_error(c, h->id, rc, "malformed REKEY");
		agent_log("rekey refused: malformed");
		return;
	}
	uint64_t bits = 0;
	/* Entropy, clock and hostname belong to a VM's own kernel; a
	 * process-mode agent shares its host's and leaves them alone. */
	if (g_agent.pid1) {
		int e = add_entropy(rk.entropy, rk.n_entropy);
		if (e) {
			explicit_bzero(&rk, sizeof(rk));
			conn_send_error(c, h->id, agent_errno_to_vb(e), "RNDADDENTROPY: %s", strerror(e));
			agent_log("rekey failed: RNDADDENTROPY: %s", strerror(e));
			return;
		}
		bits = (uint64_t)rk.n_entropy * 8;
		if (rk.time_ns) {
			struct timespec ts = { .tv_sec = (time_t)(rk.time_ns / 1000000000u),
					       .tv_nsec = (long)(rk.time_ns % 1000000000u) };
			if (clock_settime(CLOCK_REALTIME, &ts) < 0) {
				e = errno;
				explicit_bzero(&rk, sizeof(rk));
				conn_send_error(c, h->id, agent_errno_to_vb(e), "clock_settime: %s",
						strerror(e));
				agent_log("rekey failed: clock_settime: %s", strerror(e));
				return;
			}
		}
		if (rk.hostname[0] && sethostname(rk.hostname, strlen(rk.hostname)) < 0)
			agent_log("rekey: sethostname: %s", strerror(errno)); /* cosmetic */
	}
	int one_host = rk.one_host;
	conn_secret_replace(rk.secret, rk.one_host);
	explicit_bzero(&rk, sizeof(rk));
	send_ok(c, h->id, bits, one_host);
	agent_log("re-keyed");
}
