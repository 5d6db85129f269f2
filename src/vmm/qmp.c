/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/qmp.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/util.h"

#define QMP_LINE_MAX (64u * 1024u)
#define QMP_POLL_MS 1 /* migration state polling: a restore loads in ~5 ms */

struct vb_qmp {
	int fd;
	int pidfd;
	char buf[QMP_LINE_MAX];
	size_t len; /* bytes in buf not yet returned as lines */
};

/* The next line (NUL-terminated in q->buf, consumed by the caller via
 * *used) within the deadline. */
static int read_line(struct vb_qmp *q, int64_t deadline, size_t *used, vb_error *err)
{
	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);
		if (nl) {
			*nl = '\0';
			*used = (size_t)(nl - q->buf) + 1;
			return 0;
		}
		if (q->len >= sizeof(q->buf) - 1)
			return vb_error_set(err, VB_E_RUNTIME, "QMP: a reply over %u bytes",
					    QMP_LINE_MAX);
		int64_t left = deadline - vb_now_ms();
		if (left <= 0)
			return vb_error_set(err, VB_E_TIMEOUT, "QMP: QEMU did not answer in time");
		struct pollfd p[2] = { { .fd = q->fd, .events = POLLIN },
				       { .fd = q->pidfd, .events = POLLIN } };
		int r = poll(p, q->pidfd >= 0 ? 2 : 1, (int)left);
		if (r < 0 && errno != EINTR)
			return vb_error_errno(err, errno, "QMP: poll");
		if (r > 0 && !(p[0].revents & (POLLIN | POLLHUP)) && (p[1].revents & POLLIN))
			return vb_error_set(err, VB_E_VMDIED, "QMP: QEMU exited");
		if (r <= 0 || !(p[0].revents & (POLLIN | POLLHUP)))
			continue;
		ssize_t n = read(q->fd, q->buf + q->len, sizeof(q->buf) - 1 - q->len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return vb_error_set(err, VB_E_VMDIED, "QMP: QEMU closed the monitor");
		q->len += (size_t)n;
	}
}

static void consume(struct vb_qmp *q, size_t used)
{
	memmove(q->buf, q->buf + used, q->len - used);
	q->len -= used;
}

/* The next message that is not an event, parsed. */
static json_t *read_reply(struct vb_qmp *q, int64_t deadline, vb_error *err)
{
	for (;;) {
		size_t used = 0;
		if (read_line(q, deadline, &used, err) < 0)
			return NULL;
		json_t *j = json_loads(q->buf, 0, NULL);
		consume(q, used);
		if (!j || !json_is_object(j)) {
			json_decref(j);
			vb_error_set(err, VB_E_RUNTIME, "QMP: a reply that is not a JSON object");
			return NULL;
		}
		if (json_object_get(j, "event")) {
			json_decref(j);
			continue;
		}
		return j;
	}
}

struct vb_qmp *vb_qmp_open(const char *path, int pidfd, int timeout_ms, vb_error *err)
{
	int64_t deadline = vb_now_ms() + timeout_ms;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		vb_error_set(err, VB_E_RUNTIME, "QMP socket path too long: %s", path);
		return NULL;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	struct vb_qmp *q = calloc(1, sizeof(*q));
	if (!q) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	q->pidfd = pidfd;
	for (;;) {
		q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (q->fd < 0) {
			vb_error_errno(err, errno, "socket");
			free(q);
			return NULL;
		}
		if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		int e = errno;
		close(q->fd);
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		if (pidfd >= 0 && poll(&p, 1, 0) > 0) {
			vb_error_set(err, VB_E_VMDIED, "the VMM exited during start-up");
			free(q);
			return NULL;
		}
		if ((e != ENOENT && e != ECONNREFUSED) || vb_now_ms() >= deadline) {
			vb_error_errno(err, e, "QMP: cannot connect to %s", path);
			free(q);
			return NULL;
		}
		usleep(2000);
	}
	json_t *greeting = read_reply(q, deadline, err);
	int ok = greeting && json_object_get(greeting, "QMP");
	json_decref(greeting);
	if (!ok || vb_qmp_cmd(q, "qmp_capabilities", NULL, (int)(deadline - vb_now_ms()), NULL,
			      err) < 0) {
		if (greeting && !ok)
			vb_error_set(err, VB_E_RUNTIME, "QMP: no greeting");
		vb_qmp_close(q);
		return NULL;
	}
	return q;
}

int vb_qmp_cmd(struct vb_qmp *q, const char *cmd, const char *args_json, int timeout_ms,
	       char **ret, vb_error *err)
{
	int64_t deadline = vb_now_ms() + (timeout_ms > 0 ? timeout_ms : 1);
	json_t *req = json_pack("{s:s}", "execute", cmd);
	if (args_json) {
		json_t *a = json_loads(args_json, 0, NULL);
		if (!a) {
			json_decref(req);
			return vb_error_set(err, VB_E_RUNTIME, "QMP: bad arguments for %s", cmd);
		}
		json_object_set_new(req, "arguments", a);
	}
	char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!text)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	size_t n = strlen(text);
	text[n] = '\n'; /* json_dumps leaves room for the NUL only: write it as the newline */
	int w = vb_write_full(q->fd, text, n + 1);
	free(text);
	if (w < 0)
		return vb_error_errno(err, errno, "QMP: %s", cmd);
	json_t *r = read_reply(q, deadline, err);
	if (!r) {
		vb_error_prefix(err, "QMP %s", cmd);
		return -1;
	}
	json_t *e = json_object_get(r, "error");
	if (e) {
		const char *desc = json_string_value(json_object_get(e, "desc"));
		vb_error_set(err, VB_E_RUNTIME, "QEMU refused %s: %.300s", cmd, desc ? desc : "?");
		json_decref(r);
		return -1;
	}
	if (ret) {
		json_t *v = json_object_get(r, "return");
		*ret = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("{}");
	}
	json_decref(r);
	return 0;
}

static int get_string(struct vb_qmp *q, const char *cmd, const char *key, char *out, size_t len,
		      char *why, size_t why_len, int64_t deadline, vb_error *err)
{
	char *ret = NULL;
	if (vb_qmp_cmd(q, cmd, NULL, (int)(deadline - vb_now_ms()), &ret, err) < 0)
		return -1;
	json_t *j = json_loads(ret, 0, NULL);
	free(ret);
	const char *v = j ? json_string_value(json_object_get(j, key)) : NULL;
	const char *w = j ? json_string_value(json_object_get(j, "error-desc")) : NULL;
	snprintf(out, len, "%s", v ? v : "");
	if (why)
		snprintf(why, why_len, "%s", w ? w : "");
	json_decref(j);
	return 0;
}

int vb_qmp_wait_migration(struct vb_qmp *q, int timeout_ms, vb_error *err)
{
	int64_t deadline = vb_now_ms() + timeout_ms;
	for (;;) {
		char st[32], why[300];
		if (get_string(q, "query-migrate", "status", st, sizeof(st), why, sizeof(why),
			       deadline, err) < 0)
			return -1;
		if (strcmp(st, "completed") == 0)
			return 0;
		if (strcmp(st, "failed") == 0 || strcmp(st, "cancelled") == 0)
			return vb_error_set(err, VB_E_RUNTIME, "the migration %s%s%s", st,
					    why[0] ? ": " : "", why);
		if (vb_now_ms() >= deadline)
			return vb_error_set(err, VB_E_TIMEOUT, "the migration did not finish in %d ms",
					    timeout_ms);
		usleep(QMP_POLL_MS * 1000);
	}
}

int vb_qmp_wait_status(struct vb_qmp *q, const char *state, int timeout_ms, vb_error *err)
{
	int64_t deadline = vb_now_ms() + timeout_ms;
	for (;;) {
		char st[32];
		if (get_string(q, "query-status", "status", st, sizeof(st), NULL, 0, deadline, err) < 0)
			return -1;
		if (strcmp(st, state) == 0)
			return 0;
		if (vb_now_ms() >= deadline)
			return vb_error_set(err, VB_E_TIMEOUT, "the VM stayed '%s', not '%s', for %d ms",
					    st, state, timeout_ms);
		usleep(QMP_POLL_MS * 1000);
	}
}

void vb_qmp_close(struct vb_qmp *q)
{
	if (!q)
		return;
	if (q->fd >= 0)
		close(q->fd);
	free(q);
}
