/* SPDX-License-Identifier: Apache-2.0 */
#include "channel/channel.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/term.h"
#include "util/util.h"

#define HELLO_MAX 4096u
#define STREAM_OPEN_MAX 4096u /* a STREAM_OPEN's payload */
/* A call's reply: the only types, and each ends the call. */
#define CALL_TYPES (VB_CHAN_TYPE(VB_MSG_OK) | VB_CHAN_TYPE(VB_MSG_ERROR))

/* A request the host gave up on before its last frame arrived. */
struct tomb {
	uint32_t id;
	uint64_t accept, final;
	size_t budget; /* wire bytes it may still receive */
	struct tomb *next;
};

/* Waits for a reply check the caller's cancel descriptor this often. */
#define CANCEL_SLICE_MS 250

struct vb_chan {
	int fd;
	int cancel_fd; /* readable = the caller wants out (never read here), or -1 */
	pthread_t reader;
	int reader_started;
	pthread_mutex_t lock; /* slots, dead, why, next_id */
	pthread_cond_t cond;
	pthread_mutex_t wlock; /* whole frames go out one at a time */
	struct vb_chan_slot *slots;
	struct tomb *tombs;
	uint32_t next_id;
	int wrapped; /* next_id went round: every id has been used */
	/* guest-opened streams */
	vb_chan_opener opener;
	void *opener_opaque;
	unsigned max_streams;
	uint32_t last_guest_id; /* the highest guest id opened, 0 = none */
	unsigned guest_open;    /* opened, final frame not yet arrived */
	unsigned guest_slots;   /* registered guest slots (ended ones until unregistered) */
	int dead, violated;
	char why[256];
};

/* ---- I/O with a deadline (handshake only) ------------------------------ */

/* Read exactly (n) bytes before (deadline); (abort_fd) readable aborts. */
static int read_deadline(int fd, void *buf, size_t n, int64_t deadline, int abort_fd,
			 int cancel_fd, vb_error *err)
{
	uint8_t *p = buf;
	while (n > 0) {
		int64_t left = deadline - vb_now_ms();
		if (left <= 0)
			return vb_error_set(err, VB_E_TIMEOUT, "the guest agent did not answer in time");
		/* poll ignores negative fds */
		struct pollfd pfd[3] = { { .fd = fd, .events = POLLIN },
					 { .fd = abort_fd, .events = POLLIN },
					 { .fd = cancel_fd, .events = POLLIN } };
		int r = poll(pfd, 3, (int)(left > 1000 ? 1000 : left));
		if (r < 0 && errno != EINTR)
			return vb_error_errno(err, errno, "poll");
		if (r <= 0)
			continue;
		if (pfd[2].revents & POLLIN)
			return vb_error_set(err, VB_E_CANCELLED, "cancelled");
		if (pfd[1].revents & POLLIN)
			return vb_error_set(err, VB_E_VMDIED, "the VM stopped during boot");
		ssize_t got = read(fd, p, n);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got < 0)
			return vb_error_errno(err, errno, "reading the control channel");
		if (got == 0)
			return vb_error_set(err, VB_E_VMDIED,
					    "the control channel closed during the handshake");
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

static int send_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* ---- death ------------------------------------------------------------- */

static void wake_slot(struct vb_chan_slot *s)
{
	if (s->efd >= 0) {
		uint64_t one = 1;
		ssize_t r = write(s->efd, &one, sizeof(one));
		(void)r; /* a full counter is still readable: nothing lost */
	}
}

static void kill_locked(struct vb_chan *ch, const char *why)
{
	if (ch->dead)
		return;
	ch->dead = 1;
	snprintf(ch->why, sizeof(ch->why), "%s", why);
	for (struct vb_chan_slot *s = ch->slots; s; s = s->next)
		wake_slot(s);
	pthread_cond_broadcast(&ch->cond);
	/* wake a writer stuck on a guest that stopped reading */
	shutdown(ch->fd, SHUT_RDWR);
}

__attribute__((format(printf, 2, 0)))
static void violate_locked(struct vb_chan *ch, const char *fmt, va_list ap)
{
	if (ch->dead)
		return;
	char what[200];
	vsnprintf(what, sizeof(what), fmt, ap);
	char why[256];
	snprintf(why, sizeof(why), "the guest broke the protocol (%s)", what);
	ch->violated = 1;
	kill_locked(ch, why);
}

__attribute__((format(printf, 2, 3)))
static void violate(struct vb_chan *ch, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	violate_locked(ch, fmt, ap);
	va_end(ap);
}

int vb_chan_violation(struct vb_chan *ch, vb_error *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&ch->lock);
	violate_locked(ch, fmt, ap);
	pthread_mutex_unlock(&ch->lock);
	va_end(ap);
	return vb_error_set(err, VB_E_VMDIED, "%s", ch->why);
}

int vb_chan_violated(struct vb_chan *ch)
{
	pthread_mutex_lock(&ch->lock);
	int v = ch->violated;
	pthread_mutex_unlock(&ch->lock);
	return v;
}

int vb_chan_dead(struct vb_chan *ch)
{
	pthread_mutex_lock(&ch->lock);
	int d = ch->dead;
	pthread_mutex_unlock(&ch->lock);
	return d;
}

const char *vb_chan_why(struct vb_chan *ch)
{
	return ch->why; /* written once, before dead is set */
}

/* ---- the reader thread ------------------------------------------------- */

static struct vb_chan_slot *find_slot(struct vb_chan *ch, uint32_t id)
{
	for (struct vb_chan_slot *s = ch->slots; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

static struct tomb **find_tomb(struct vb_chan *ch, uint32_t id)
{
	for (struct tomb **pp = &ch->tombs; *pp; pp = &(*pp)->next)
		if ((*pp)->id == id)
			return pp;
	return NULL;
}

static const char *type_name(uint16_t type, char *buf, size_t len)
{
	const char *n = vb_msg_name(type);
	if (strcmp(n, "?") == 0) {
		snprintf(buf, len, "type-%u", type);
		return buf;
	}
	return n;
}

/* "request N" or, for the guest's half of the ids, "stream N". */
#define ID_WHAT(id) (((id) & VB_GUEST_ID_BIT) ? "stream" : "request")
#define ID_NUM(id) ((id) & ~VB_GUEST_ID_BIT)

static int type_in(uint64_t mask, uint16_t type)
{
	return type < 64 && (mask & VB_CHAN_TYPE(type));
}

/* A frame for no request the host is waiting on: kill the channel. */
static void stray_locked(struct vb_chan *ch, const struct vb_hdr *h)
{
	char tb[16];
	const char *tn = type_name(h->type, tb, sizeof(tb));
	if (h->id == 0)
		violate(ch, "%s frame for the handshake's id after the handshake", tn);
	else if (h->id & VB_GUEST_ID_BIT && h->id > ch->last_guest_id)
		violate(ch, "%s frame for stream %u, which the guest never opened", tn,
			h->id & ~VB_GUEST_ID_BIT);
	else if (h->id & VB_GUEST_ID_BIT)
		violate(ch, "%s frame for stream %u, which had already ended", tn,
			h->id & ~VB_GUEST_ID_BIT);
	else if (!ch->wrapped && h->id >= ch->next_id)
		violate(ch, "%s frame for request %u, which the host never made", tn, h->id);
	else
		violate(ch, "%s frame for request %u, which had already ended", tn, h->id);
}

/* May a frame with header (h) go to live slot (s)?  Returns 0, or -1 after
 * killing the channel. */
static int admit_locked(struct vb_chan *ch, const struct vb_chan_slot *s, const struct vb_hdr *h)
{
	char tb[16];
	const char *tn = type_name(h->type, tb, sizeof(tb));
	if (s->finished) {
		violate(ch, "%s frame for %s %u after its last frame", tn, ID_WHAT(h->id),
			ID_NUM(h->id));
		return -1;
	}
	if (!type_in(s->accept ? s->accept : CALL_TYPES, h->type)) {
		violate(ch, "an unexpected %s frame for %s %u", tn, ID_WHAT(h->id), ID_NUM(h->id));
		return -1;
	}
	if (VB_CHAN_COST(h->len) > s->max_queued) {
		violate(ch, "a %u-byte %s frame for %s %u, over its %zu-byte budget", h->len,
			tn, ID_WHAT(h->id), ID_NUM(h->id), s->max_queued);
		return -1;
	}
	return 0;
}

/* The same for a tombstone (t). */
static int admit_late_locked(struct vb_chan *ch, const struct tomb *t, const struct vb_hdr *h)
{
	char tb[16];
	if (!type_in(t->accept, h->type)) {
		violate(ch, "an unexpected %s frame for request %u",
			type_name(h->type, tb, sizeof(tb)), h->id);
		return -1;
	}
	if (VB_CHAN_COST(h->len) > t->budget) {
		violate(ch, "request %u: more than its window after the host had finished it",
			h->id);
		return -1;
	}
	return 0;
}

/* A STREAM_OPEN for a new guest id: may the guest open another stream? */
static int check_open_locked(struct vb_chan *ch, const struct vb_hdr *h)
{
	unsigned n = h->id & ~VB_GUEST_ID_BIT;
	if (!ch->opener)
		violate(ch, "STREAM_OPEN for stream %u, but the host forwards nothing", n);
	else if (ch->guest_open >= ch->max_streams)
		violate(ch, "STREAM_OPEN for stream %u beyond %u open streams", n, ch->max_streams);
	else if (h->len > STREAM_OPEN_MAX)
		violate(ch, "a %u-byte STREAM_OPEN for stream %u", h->len, n);
	else
		return 0;
	return -1;
}

/* Register the slot the opener gives a new guest stream.  Returns 0, or -1
 * after killing the channel (f is freed either way). */
static int open_locked(struct vb_chan *ch, struct vb_chan_frame *f)
{
	uint32_t id = f->hdr.id;
	/* streams that ended but whose owners have not let go yet are memory
	 * too: wait for them (they go without the reader's help) */
	while (!ch->dead && ch->guest_slots >= 2 * ch->max_streams)
		pthread_cond_wait(&ch->cond, &ch->lock);
	if (ch->dead) {
		free(f);
		return -1;
	}
	const char *why = NULL;
	struct vb_chan_slot *s = ch->opener(ch->opener_opaque, f, &why);
	free(f);
	if (!s) {
		if (why)
			violate(ch, "%s for stream %u", why, id & ~VB_GUEST_ID_BIT);
		else
			kill_locked(ch, "the host could not serve a stream the guest opened");
		return -1;
	}
	s->id = id;
	s->finished = 0;
	s->next = ch->slots;
	ch->slots = s;
	ch->last_guest_id = id;
	ch->guest_open++;
	ch->guest_slots++;
	return 0;
}

/* Check a header before its payload is read, lock held: a frame the
 * protocol does not allow is refused before anything is allocated for it.
 * Returns 0, or -1 after killing the channel.  route_locked() checks again
 * with the payload (the slot may have gone meanwhile). */
static int check_hdr_locked(struct vb_chan *ch, const struct vb_hdr *h)
{
	struct vb_chan_slot *s = h->id ? find_slot(ch, h->id) : NULL;
	if (s)
		return admit_locked(ch, s, h);
	if (h->type == VB_MSG_STREAM_OPEN && (h->id & VB_GUEST_ID_BIT) && h->id > ch->last_guest_id)
		return check_open_locked(ch, h);
	struct tomb **tp = h->id ? find_tomb(ch, h->id) : NULL;
	if (tp)
		return admit_late_locked(ch, *tp, h);
	stray_locked(ch, h);
	return -1;
}

/* Route one frame, lock held.  Returns 0, or -1 after killing the channel
 * (then f has been freed). */
static int route_locked(struct vb_chan *ch, struct vb_chan_frame *f)
{
	const struct vb_hdr hdr = f->hdr, *h = &hdr; /* f may be freed before h is used */
	size_t cost = VB_CHAN_COST(h->len);
	struct vb_chan_slot *s = h->id ? find_slot(ch, h->id) : NULL;
	if (!s && h->type == VB_MSG_STREAM_OPEN && (h->id & VB_GUEST_ID_BIT) &&
	    h->id > ch->last_guest_id) {
		if (check_open_locked(ch, h) < 0) {
			free(f);
			return -1;
		}
		return open_locked(ch, f);
	}
	if (s) {
		if (admit_locked(ch, s, h) < 0) {
			free(f);
			return -1;
		}
		const char *why = NULL;
		int r = s->filter ? s->filter(s, f, &why) : 0;
		if (r < 0) {
			free(f);
			violate(ch, "%s for %s %u", why ? why : "a bad frame", ID_WHAT(h->id),
				ID_NUM(h->id));
			return -1;
		}
		if (type_in(s->accept ? s->final : CALL_TYPES, h->type)) {
			s->finished = 1;
			if (s->id & VB_GUEST_ID_BIT)
				ch->guest_open--;
		}
		if (r > 0) {
			free(f);
			return 0;
		}
		if (s->queued + cost > s->max_queued) {
			free(f);
			violate(ch, "%s %u: more than %zu bytes queued; flow control ignored",
				ID_WHAT(h->id), ID_NUM(h->id), s->max_queued);
			return -1;
		}
		if (s->tail)
			s->tail->next = f;
		else
			s->head = f;
		s->tail = f;
		s->queued += cost;
		wake_slot(s);
		pthread_cond_broadcast(&ch->cond);
		return 0;
	}
	free(f); /* nothing below needs the payload */
	struct tomb **tp = h->id ? find_tomb(ch, h->id) : NULL;
	if (!tp) {
		stray_locked(ch, h);
		return -1;
	}
	struct tomb *t = *tp;
	if (admit_late_locked(ch, t, h) < 0)
		return -1;
	t->budget -= cost;
	if (type_in(t->final, h->type)) { /* its last frame: the id is closed */
		*tp = t->next;
		free(t);
	}
	return 0;
}

static void *reader_main(void *arg)
{
	struct vb_chan *ch = arg;
	const char *why = "the VM closed the control channel";
	for (;;) {
		uint8_t raw[VB_FRAME_HDR_LEN];
		struct vb_hdr h;
		ssize_t got = vb_read_full(ch->fd, raw, sizeof(raw));
		if (got != (ssize_t)sizeof(raw)) {
			if (got < 0)
				why = "the control channel failed";
			break;
		}
		if (vb_hdr_decode(raw, &h) < 0) {
			pthread_mutex_lock(&ch->lock);
			violate(ch, "a frame header announcing %u bytes", h.len);
			pthread_mutex_unlock(&ch->lock);
			return NULL;
		}
		pthread_mutex_lock(&ch->lock);
		int ok = check_hdr_locked(ch, &h);
		pthread_mutex_unlock(&ch->lock);
		if (ok < 0)
			return NULL;
		struct vb_chan_frame *f = malloc(sizeof(*f) + h.len);
		if (!f) {
			why = "out of memory reading the control channel";
			break;
		}
		f->next = NULL;
		f->hdr = h;
		if (vb_read_full(ch->fd, f->payload, h.len) != (ssize_t)h.len) {
			free(f);
			break;
		}
		pthread_mutex_lock(&ch->lock);
		int rc = route_locked(ch, f);
		pthread_mutex_unlock(&ch->lock);
		if (rc < 0)
			return NULL;
	}
	pthread_mutex_lock(&ch->lock);
	kill_locked(ch, why);
	pthread_mutex_unlock(&ch->lock);
	return NULL;
}

/* ---- open / close ------------------------------------------------------ */

static int handshake(int fd, const uint8_t secret[VB_SECRET_LEN], int timeout_ms, int abort_fd,
		     int cancel_fd, struct vb_chan_hello *hello, vb_error *err)
{
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_HELLO, 0, 0);
	vb_msg_put_u64(&b, VB_TAG_VERSION, VB_PROTO_VERSION);
	vb_msg_put_bytes(&b, VB_TAG_SECRET, secret, VB_SECRET_LEN);
	int rc = vb_msg_end(&b);
	if (rc == 0)
		rc = send_all(fd, b.data, b.len);
	explicit_bzero(b.data, b.len);
	vb_buf_free(&b);
	if (rc < 0)
		return vb_error_errno(err, errno, "sending the handshake");

	int64_t deadline = vb_now_ms() + timeout_ms;
	uint8_t raw[VB_FRAME_HDR_LEN];
	struct vb_hdr h;
	if (read_deadline(fd, raw, sizeof(raw), deadline, abort_fd, cancel_fd, err) < 0)
		return -1;
	if (vb_hdr_decode(raw, &h) < 0 || h.len > HELLO_MAX)
		return vb_error_set(err, VB_E_RUNTIME, "the guest sent an oversized handshake");
	uint8_t payload[HELLO_MAX];
	if (read_deadline(fd, payload, h.len, deadline, abort_fd, cancel_fd, err) < 0)
		return -1;
	if (h.type == VB_MSG_ERROR) {
		struct vb_chan_frame *f = malloc(sizeof(*f) + h.len);
		if (f) {
			f->hdr = h;
			memcpy(f->payload, payload, h.len);
			vb_chan_error_from(f, err);
			free(f);
		}
		vb_error_prefix(err, "the guest agent refused the handshake");
		return -1;
	}
	if (h.type != VB_MSG_HELLO_OK || h.id != 0)
		return vb_error_set(err, VB_E_RUNTIME, "unexpected %s frame during the handshake",
				    vb_msg_name(h.type));
	uint64_t version = 0;
	struct vb_field f;
	if (vb_payload_u64(payload, h.len, VB_TAG_VERSION, &version) < 0 ||
	    version != VB_PROTO_VERSION)
		return vb_error_set(err, VB_E_RUNTIME,
				    "the guest agent speaks protocol version %llu, not %u",
				    (unsigned long long)version, VB_PROTO_VERSION);
	memset(hello, 0, sizeof(*hello));
	/* the guest's strings end up in logs and on terminals */
	if (vb_payload_find(payload, h.len, VB_TAG_KERNEL, &f) == 0 && f.data)
		vb_term_copyn(hello->kernel, sizeof(hello->kernel), (const char *)f.data, f.len, 0);
	if (vb_payload_find(payload, h.len, VB_TAG_BOOT_ID, &f) == 0 && f.data)
		vb_term_copyn(hello->boot_id, sizeof(hello->boot_id), (const char *)f.data, f.len, 0);
	return 0;
}

struct vb_chan *vb_chan_open(int fd, const uint8_t secret[VB_SECRET_LEN], int timeout_ms,
			     int abort_fd, int cancel_fd, struct vb_chan_hello *hello, vb_error *err)
{
	if (handshake(fd, secret, timeout_ms, abort_fd, cancel_fd, hello, err) < 0) {
		close(fd);
		return NULL;
	}
	struct vb_chan *ch = calloc(1, sizeof(*ch));
	if (!ch) {
		close(fd);
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	ch->fd = fd;
	ch->cancel_fd = cancel_fd;
	ch->next_id = 1;
	pthread_mutex_init(&ch->lock, NULL);
	pthread_mutex_init(&ch->wlock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ch->cond, &ca);
	pthread_condattr_destroy(&ca);
	int rc = pthread_create(&ch->reader, NULL, reader_main, ch);
	if (rc != 0) {
		vb_error_errno(err, rc, "cannot start the channel reader");
		vb_chan_close(ch);
		return NULL;
	}
	ch->reader_started = 1;
	return ch;
}

void vb_chan_close(struct vb_chan *ch)
{
	if (!ch)
		return;
	vb_chan_shutdown(ch, "the control channel was closed"); /* wakes a waiting reader */
	shutdown(ch->fd, SHUT_RDWR);
	if (ch->reader_started)
		pthread_join(ch->reader, NULL);
	close(ch->fd);
	while (ch->tombs) {
		struct tomb *t = ch->tombs;
		ch->tombs = t->next;
		free(t);
	}
	pthread_mutex_destroy(&ch->lock);
	pthread_mutex_destroy(&ch->wlock);
	pthread_cond_destroy(&ch->cond);
	free(ch);
}

/* ---- slots ------------------------------------------------------------- */

int vb_chan_register(struct vb_chan *ch, struct vb_chan_slot *slot, vb_error *err)
{
	if (!slot->max_queued) /* a call: its largest reply is FILE_READ's */
		slot->max_queued = VB_CHAN_COST(VB_FILE_CHUNK_MAX + 4096);
	slot->finished = 0;
	pthread_mutex_lock(&ch->lock);
	if (ch->dead) {
		pthread_mutex_unlock(&ch->lock);
		return vb_error_set(err, VB_E_VMDIED, "%s", ch->why);
	}
	do {
		slot->id = ch->next_id++;
		if (ch->next_id == VB_GUEST_ID_BIT) { /* the guest's half of the ids */
			ch->next_id = 1;
			ch->wrapped = 1;
		}
	} while (slot->id == 0 || find_slot(ch, slot->id) || find_tomb(ch, slot->id));
	slot->next = ch->slots;
	ch->slots = slot;
	pthread_mutex_unlock(&ch->lock);
	return 0;
}

void vb_chan_unregister(struct vb_chan *ch, struct vb_chan_slot *slot)
{
	pthread_mutex_lock(&ch->lock);
	int found = 0;
	for (struct vb_chan_slot **pp = &ch->slots; *pp; pp = &(*pp)->next) {
		if (*pp == slot) {
			*pp = slot->next;
			found = 1;
			break;
		}
	}
	if (found && (slot->id & VB_GUEST_ID_BIT)) {
		/* a guest stream is let go after its final frame (or the
		 * channel's death): nothing more may come for it */
		if (!slot->finished)
			ch->guest_open--;
		ch->guest_slots--;
		pthread_cond_broadcast(&ch->cond);
		if (!slot->finished && !ch->dead)
			kill_locked(ch, "a guest stream was abandoned");
	} else if (found && !slot->finished && !ch->dead) {
		/* an honest guest may still be sending for it: remember the id */
		struct tomb *t = malloc(sizeof(*t));
		if (t) {
			t->id = slot->id;
			t->accept = slot->accept ? slot->accept : CALL_TYPES;
			t->final = slot->accept ? slot->final : CALL_TYPES;
			t->budget = slot->late_budget ? slot->late_budget : slot->max_queued;
			t->next = ch->tombs;
			ch->tombs = t;
		} else {
			kill_locked(ch, "out of memory");
		}
	}
	pthread_mutex_unlock(&ch->lock);
	while (slot->head) {
		struct vb_chan_frame *f = slot->head;
		slot->head = f->next;
		free(f);
	}
	slot->tail = NULL;
	slot->queued = 0;
}

int vb_chan_send(struct vb_chan *ch, struct vb_buf *frame, uint32_t id, vb_error *err)
{
	if (frame->oom || frame->len < VB_FRAME_HDR_LEN)
		return vb_error_set(err, VB_E_RUNTIME, "request too large for one frame");
	frame->data[8] = (uint8_t)id;
	frame->data[9] = (uint8_t)(id >> 8);
	frame->data[10] = (uint8_t)(id >> 16);
	frame->data[11] = (uint8_t)(id >> 24);
	if (vb_chan_dead(ch))
		return vb_error_set(err, VB_E_VMDIED, "%s", ch->why);
	pthread_mutex_lock(&ch->wlock);
	int rc = send_all(ch->fd, frame->data, frame->len);
	int e = errno;
	pthread_mutex_unlock(&ch->wlock);
	if (rc < 0) {
		pthread_mutex_lock(&ch->lock);
		kill_locked(ch, "writing to the control channel failed");
		pthread_mutex_unlock(&ch->lock);
		return vb_error_errno(err, e, "writing to the VM");
	}
	return 0;
}

void vb_chan_set_opener(struct vb_chan *ch, vb_chan_opener fn, void *opaque,
			unsigned max_streams)
{
	pthread_mutex_lock(&ch->lock);
	ch->opener = fn;
	ch->opener_opaque = opaque;
	ch->max_streams = max_streams;
	pthread_mutex_unlock(&ch->lock);
}

void vb_chan_shutdown(struct vb_chan *ch, const char *why)
{
	pthread_mutex_lock(&ch->lock);
	kill_locked(ch, why);
	pthread_mutex_unlock(&ch->lock);
}

void vb_chan_lock(struct vb_chan *ch)
{
	pthread_mutex_lock(&ch->lock);
}

void vb_chan_unlock(struct vb_chan *ch)
{
	pthread_mutex_unlock(&ch->lock);
}

void vb_chan_broadcast_locked(struct vb_chan *ch)
{
	pthread_cond_broadcast(&ch->cond);
}

int vb_chan_wait_locked(struct vb_chan *ch, int64_t deadline_ms)
{
	if (deadline_ms < 0) {
		pthread_cond_wait(&ch->cond, &ch->lock);
		return 0;
	}
	struct timespec ts = { .tv_sec = deadline_ms / 1000,
			       .tv_nsec = (deadline_ms % 1000) * 1000000 };
	return pthread_cond_timedwait(&ch->cond, &ch->lock, &ts) == ETIMEDOUT;
}

int vb_chan_recv(struct vb_chan *ch, struct vb_chan_slot *slot, struct vb_chan_frame **out,
		 int timeout_ms, vb_error *err)
{
	int64_t deadline = timeout_ms < 0 ? -1 : vb_now_ms() + timeout_ms;
	pthread_mutex_lock(&ch->lock);
	while (!slot->head && !ch->dead) {
		int64_t now = vb_now_ms();
		if (deadline >= 0 && now >= deadline) {
			pthread_mutex_unlock(&ch->lock);
			return 0;
		}
		/* a guest that withholds a reply must not hold a cancelled caller */
		struct pollfd c = { .fd = ch->cancel_fd, .events = POLLIN };
		if (ch->cancel_fd >= 0 && poll(&c, 1, 0) > 0) {
			pthread_mutex_unlock(&ch->lock);
			return vb_error_set(err, VB_E_CANCELLED, "cancelled");
		}
		int64_t slice = now + CANCEL_SLICE_MS;
		vb_chan_wait_locked(ch, deadline >= 0 && deadline < slice ? deadline : slice);
	}
	/* nothing a guest said is delivered once it broke the protocol */
	struct vb_chan_frame *f = ch->violated ? NULL : slot->head;
	if (f) {
		slot->head = f->next;
		if (!slot->head)
			slot->tail = NULL;
		slot->queued -= VB_CHAN_COST(f->hdr.len);
		f->next = NULL;
		if (slot->head) /* the caller may drain the efd: keep it readable */
			wake_slot(slot);
	}
	pthread_mutex_unlock(&ch->lock);
	if (!f)
		return vb_error_set(err, VB_E_VMDIED, "%s", ch->why);
	*out = f;
	return 1;
}

int vb_chan_pending(struct vb_chan *ch, struct vb_chan_slot *slot)
{
	pthread_mutex_lock(&ch->lock);
	int n = slot->head != NULL;
	pthread_mutex_unlock(&ch->lock);
	return n;
}

int vb_chan_error_from(const struct vb_chan_frame *f, vb_error *err)
{
	uint64_t code = VB_ERR_INTERNAL;
	struct vb_field msg;
	vb_payload_u64(f->payload, f->hdr.len, VB_TAG_CODE, &code);
	if (vb_payload_find(f->payload, f->hdr.len, VB_TAG_MESSAGE, &msg) < 0)
		msg.data = NULL;
	char text[512] = "";
	if (msg.data) /* guest text */
		vb_term_copyn(text, sizeof(text), (const char *)msg.data, msg.len, 0);
	enum vb_error_kind kind = VB_E_RUNTIME;
	if (code == VB_ERR_NOENT)
		kind = VB_E_NOTFOUND;
	else if (code == VB_ERR_NOEXEC || code == VB_ERR_DENIED)
		kind = VB_E_NOEXEC;
	vb_error_set(err, kind, "%s", text[0] ? text : vb_err_name((int)code));
	return (int)code;
}

int vb_chan_call(struct vb_chan *ch, struct vb_buf *req, int timeout_ms,
		 struct vb_chan_frame **reply, int *code, vb_error *err)
{
	struct vb_chan_slot slot = { .efd = -1 };
	struct vb_chan_frame *f = NULL;
	if (code)
		*code = VB_ERR_NONE;
	if (vb_chan_register(ch, &slot, err) < 0)
		return -1;
	int rc = vb_chan_send(ch, req, slot.id, err);
	if (rc == 0) {
		rc = vb_chan_recv(ch, &slot, &f, timeout_ms, err);
		if (rc == 0)
			rc = vb_error_set(err, VB_E_TIMEOUT, "the guest did not answer in %d ms",
					  timeout_ms);
		else if (rc > 0)
			rc = 0;
	}
	vb_chan_unregister(ch, &slot);
	if (rc < 0)
		return -1;
	if (f->hdr.type == VB_MSG_ERROR) {
		int c = vb_chan_error_from(f, err);
		if (code)
			*code = c;
		free(f);
		return -1;
	}
	if (f->hdr.type != VB_MSG_OK) {
		vb_error_set(err, VB_E_RUNTIME, "unexpected %s reply", vb_msg_name(f->hdr.type));
		free(f);
		return -1;
	}
	*reply = f;
	return 0;
}
