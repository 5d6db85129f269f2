/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The live progress display: exact plain lines off a terminal; on one, the
 * in-place frames (cursor movement, clear-to-end, no colour codes unless
 * asked), fan-out branches bracketed together, the ticker's redraws, and
 * frames that fit the terminal however many stages there are.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "observe/observe.h"
#include "observe/observe_int.h"

static const int64_t T0 = 1714564984000;

static void feed_pipeline(struct vb_progress *p)
{
	struct vb_event evs[] = {
		{ .type = VB_EV_RUN_STARTED, .time_ms = T0, .run_id = "20240501-120304-abc123",
		  .name = "hello", .kind = "pipeline" },
		{ .type = VB_EV_STAGE_QUEUED, .time_ms = T0, .stage = "fetch" },
		{ .type = VB_EV_STAGE_QUEUED, .time_ms = T0, .stage = "left" },
		{ .type = VB_EV_STAGE_QUEUED, .time_ms = T0, .stage = "right" },
		{ .type = VB_EV_STAGE_QUEUED, .time_ms = T0, .stage = "ship" },
		{ .type = VB_EV_STAGE_STARTED, .time_ms = T0 + 100, .stage = "fetch" },
		{ .type = VB_EV_VM_BOOTED, .time_ms = T0 + 1300, .stage = "fetch", .vm_id = "vm-abc",
		  .accel = "tcg", .isolation = "emulated" },
		{ .type = VB_EV_LOG_CHUNK, .time_ms = T0 + 1400, .stage = "fetch", .stream = "stdout",
		  .data = (const uint8_t *)"SECRET-LOG", .len = 10 },
		{ .type = VB_EV_STAGE_COMPLETED, .time_ms = T0 + 2200, .stage = "fetch", .exit_code = 0,
		  .duration_ms = 2100 },
		{ .type = VB_EV_STAGE_STARTED, .time_ms = T0 + 2300, .stage = "left" },
		{ .type = VB_EV_STAGE_STARTED, .time_ms = T0 + 2300, .stage = "right" },
		{ .type = VB_EV_VM_BOOTED, .time_ms = T0 + 3500, .stage = "left", .vm_id = "vm-l",
		  .accel = "tcg", .isolation = "emulated", .boot_ms = 1150 },
		{ .type = VB_EV_VM_BOOTED, .time_ms = T0 + 3600, .stage = "right", .vm_id = "vm-r",
		  .accel = "tcg", .boot_ms = 95,
		  .snapshot = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" },
		{ .type = VB_EV_LOG_CHUNK, .time_ms = T0 + 3700, .stage = "left", .stream = "stderr",
		  .data = (const uint8_t *)"1\n2\n3\n\n4\n5\nbad \033[31mthing\n  \n", .len = 29 },
		{ .type = VB_EV_STAGE_FAILED, .time_ms = T0 + 4000, .stage = "left", .exit_code = 3,
		  .duration_ms = 1700 },
		{ .type = VB_EV_STAGE_FAILED, .time_ms = T0 + 4100, .stage = "right", .exit_code = -1,
		  .duration_ms = 1800, .error = "timed out after 1s" },
		{ .type = VB_EV_STAGE_SKIPPED, .time_ms = T0 + 4200, .stage = "ship",
		  .error = "'left' failed" },
		{ .type = VB_EV_RUN_FINISHED, .time_ms = T0 + 12300, .success = 0, .duration_ms = 12300,
		  .error = "stage 'left' failed: exit code 3" },
		{ .type = VB_EV_STAGE_QUEUED, .time_ms = T0 + 12400, .stage = "after-end" },
	};
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		vb_progress_event(&evs[i], p);
}

static void test_progress_plain(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	struct vb_progress *p = vb_progress_new(out, 0, 1);
	assert_non_null(p);
	feed_pipeline(p);
	vb_progress_event(NULL, p);
	vb_progress_event(NULL, NULL);
	vb_progress_free(p);
	vb_progress_free(NULL);
	fclose(out);
	const char *want =
		"[0.0s] run 20240501-120304-abc123: hello (pipeline)\n"
		"[0.0s] stage fetch: queued\n"
		"[0.0s] stage left: queued\n"
		"[0.0s] stage right: queued\n"
		"[0.0s] stage ship: queued\n"
		"[0.1s] stage fetch: booting\n"
		"[1.3s] stage fetch: running on vm-abc (tcg, emulated)\n"
		"[2.2s] stage fetch: done (exit 0, 2.1s)\n"
		"[2.3s] stage left: booting\n"
		"[2.3s] stage right: booting\n"
		"[3.5s] stage left: running on vm-l (tcg, emulated), booted cold in 1150 ms\n"
		"[3.6s] stage right: running on vm-r (tcg), restored from 0123456789ab in 95 ms\n"
		"[4.0s] stage left: failed: exit code 3\n"
		"[4.1s] stage right: failed: timed out after 1s\n"
		"[4.2s] stage ship: skipped: 'left' failed\n"
		"[12.3s] run failed in 12.3s\n"
		/* after the run: what failed stages left, and where all of it is */
		"left: the last lines of its stderr:\n"
		"  | 2\n  | 3\n  | 4\n  | 5\n  | bad ?[31mthing\n"
		"left: all of it: voidbox logs 20240501-120304-abc123 --stage left --stderr\n"
		"right: what happened: voidbox logs 20240501-120304-abc123\n";
	assert_string_equal(buf, want);
	free(buf);
}

static int has_sgr(const char *s)
{
	/* ESC [ digits/; m */
	for (const char *p = s; (p = strstr(p, "\033[")); p += 2) {
		const char *q = p + 2;
		while ((*q >= '0' && *q <= '9') || *q == ';')
			q++;
		if (*q == 'm')
			return 1;
	}
	return 0;
}

static char *tty_render(int color, const char *lang)
{
	char *buf = NULL;
	size_t len = 0;
	setenv("LC_ALL", lang, 1);
	FILE *out = open_memstream(&buf, &len);
	struct vb_progress *p = vb_progress_new(out, 1, color);
	assert_non_null(p);
	feed_pipeline(p);
	vb_progress_free(p);
	fclose(out);
	unsetenv("LC_ALL");
	return buf;
}

static void test_progress_tty(void **state)
{
	(void)state;
	char *s = tty_render(0, "C");
	for (const char *const *n = (const char *const[]){ "fetch", "left", "right", "ship", "hello", NULL }; *n; n++)
		assert_non_null(strstr(s, *n));
	assert_null(strstr(s, "after-end"));  /* after the final frame: nothing */
	assert_null(strstr(s, "SECRET-LOG")); /* never log chunks */
	assert_non_null(strstr(s, "\033[K"));
	assert_non_null(strstr(s, "\033[1A")); /* in place: cursor up over the last frame */
	assert_non_null(strstr(s, "\r"));
	assert_false(has_sgr(s));
	/* the last frame: every state word, the VM, the failure */
	const char *last = strstr(s, "failed 12.3s");
	assert_non_null(last);
	assert_non_null(strstr(last, "done"));
	assert_non_null(strstr(last, "vm-abc (tcg, emulated)"));
	assert_non_null(strstr(last, "exit code 3"));
	assert_non_null(strstr(last, "timed out after 1s"));
	assert_non_null(strstr(last, "skipped"));
	assert_non_null(strstr(last, "2.1s"));
	/* the fan-out branches side by side, bracketed together */
	const char *l = strstr(last, ",-x left");
	const char *r = strstr(last, "`-x right");
	assert_non_null(l);
	assert_non_null(r);
	assert_true(l < r);
	assert_null(strstr(last, ",-+ fetch"));
	/* every line of the frame ends with clear-to-end-of-line; below it
	 * the failures, once */
	const char *below = strstr(last, "\nleft: the last lines of its stderr:\n");
	assert_non_null(below);
	for (const char *p = last; (p = strchr(p, '\n')) && p <= below; p++)
		assert_memory_equal(p - 3, "\033[K", 3);
	assert_non_null(strstr(below, "left: all of it: voidbox logs 20240501-120304-abc123 --stage left --stderr\n"));
	free(s);

	s = tty_render(1, "en_US.UTF-8");
	assert_true(has_sgr(s));
	assert_non_null(strstr(s, "\033[32m"));
	assert_non_null(strstr(s, "\033[31m"));
	assert_non_null(strstr(s, "✓"));
	assert_non_null(strstr(s, "└ "));
	free(s);
}

static void test_progress_ticker_and_states(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	struct vb_progress *p = vb_progress_new(out, 1, 0);
	int64_t now = vb_obs_wall_ms();
	struct vb_event ev = { .type = VB_EV_RUN_STARTED, .time_ms = now, .name = "tick", .kind = "workflow" };
	vb_progress_event(&ev, p);
	ev = (struct vb_event){ .type = VB_EV_STAGE_QUEUED, .time_ms = now, .stage = "slow" };
	vb_progress_event(&ev, p);
	ev = (struct vb_event){ .type = VB_EV_STAGE_STARTED, .time_ms = now, .stage = "slow" };
	vb_progress_event(&ev, p);
	usleep(700 * 1000); /* the ticker redraws on its own */
	ev = (struct vb_event){ .type = VB_EV_RUN_CANCELLED, .duration_ms = 700 };
	vb_progress_event(&ev, p);
	vb_progress_free(p);
	fclose(out);
	int frames = 0;
	for (const char *q = buf; (q = strstr(q, "tick (workflow)")); q++)
		frames++;
	assert_true(frames >= 4); /* 3 events + ticks + the final frame */
	assert_non_null(strstr(buf, "booting"));
	assert_non_null(strstr(buf, "cancelled 0.7s"));
	free(buf);
}

static void test_progress_many_stages_fit(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	struct vb_progress *p = vb_progress_new(out, 1, 0);
	char name[32];
	for (int i = 0; i < 600; i++) {
		snprintf(name, sizeof(name), "s%03d", i);
		struct vb_event ev = { .type = VB_EV_STAGE_QUEUED, .time_ms = T0, .stage = name };
		vb_progress_event(&ev, p);
		if (i < 100) {
			ev.type = VB_EV_STAGE_COMPLETED;
			vb_progress_event(&ev, p);
		}
	}
	struct vb_event fin = { .type = VB_EV_RUN_FINISHED, .time_ms = T0, .success = 1 };
	vb_progress_event(&fin, p);
	vb_progress_free(p);
	fclose(out);
	/* the last frame fits a 24-line terminal (memstreams count as 80x24) */
	const char *last = strrchr(buf, '\r');
	assert_non_null(last);
	int lines = 0;
	for (const char *q = last; (q = strchr(q, '\n')); q++)
		lines++;
	assert_true(lines <= 23);
	assert_non_null(strstr(last, "finished stages"));
	assert_non_null(strstr(last, "more stages"));
	free(buf);
}

struct emitter {
	struct vb_progress *p;
	int n;
};

static void *emitter_main(void *arg)
{
	struct emitter *e = arg;
	static const enum vb_event_type seq[] = { VB_EV_STAGE_QUEUED, VB_EV_STAGE_STARTED, VB_EV_VM_BOOTED,
						  VB_EV_LOG_CHUNK, VB_EV_STAGE_COMPLETED };
	char name[32];
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "t%d-s%d", e->n, i);
		for (size_t k = 0; k < sizeof(seq) / sizeof(seq[0]); k++) {
			struct vb_event ev = { .type = seq[k], .stage = name, .accel = "tcg",
					       .stream = "stdout", .data = (const uint8_t *)"x", .len = 1 };
			if (seq[k] == VB_EV_VM_BOOTED)
				ev.vm_id = "vm-x";
			vb_progress_event(&ev, e->p);
		}
	}
	return NULL;
}

static void test_progress_concurrent_events(void **state)
{
	(void)state;
	for (int tty = 0; tty <= 1; tty++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *out = open_memstream(&buf, &len);
		struct vb_progress *p = vb_progress_new(out, tty, 1);
		struct vb_event ev = { .type = VB_EV_RUN_STARTED, .name = "many", .kind = "workflow" };
		vb_progress_event(&ev, p);
		pthread_t th[8];
		struct emitter em[8];
		for (int i = 0; i < 8; i++) {
			em[i] = (struct emitter){ p, i };
			assert_int_equal(pthread_create(&th[i], NULL, emitter_main, &em[i]), 0);
		}
		for (int i = 0; i < 8; i++)
			pthread_join(th[i], NULL);
		ev = (struct vb_event){ .type = VB_EV_RUN_FINISHED, .success = 1 };
		vb_progress_event(&ev, p);
		vb_progress_free(p);
		fclose(out);
		assert_non_null(strstr(buf, "succeeded"));
		if (!tty) { /* 1 + 8 x 40 x 4 state lines + 1 */
			int lines = 0;
			for (const char *q = buf; (q = strchr(q, '\n')); q++)
				lines++;
			assert_int_equal(lines, 2 + 8 * 40 * 4);
		}
		free(buf);
	}
}

/* --follow: lines as they come, prefixed, safe; a line without its
 * newline is ended before the stage's next state line.  A workflow's
 * steps in the one VM it booted: only the first says booting. */
static void test_progress_follow_and_shared_vm(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	struct vb_progress *p = vb_progress_new(out, 0, 0);
	vb_progress_follow(p, 1);
	struct vb_event evs[] = {
		{ .type = VB_EV_RUN_STARTED, .time_ms = T0, .run_id = "20240501-120304-abc123",
		  .name = "wf", .kind = "workflow" },
		{ .type = VB_EV_STAGE_QUEUED, .time_ms = T0, .stage = "a" },
		{ .type = VB_EV_STAGE_QUEUED, .time_ms = T0, .stage = "bb" },
		{ .type = VB_EV_STAGE_STARTED, .time_ms = T0, .stage = "a" },
		{ .type = VB_EV_STAGE_STARTED, .time_ms = T0 + 1000, .stage = "a", .vm_id = "vm-1" },
		{ .type = VB_EV_VM_BOOTED, .time_ms = T0 + 1000, .stage = "a", .vm_id = "vm-1" },
		{ .type = VB_EV_LOG_CHUNK, .time_ms = T0 + 1100, .stage = "a", .stream = "stdout",
		  .data = (const uint8_t *)"one\ntw", .len = 6 },
		{ .type = VB_EV_LOG_CHUNK, .time_ms = T0 + 1100, .stage = "a", .stream = "stdout",
		  .data = (const uint8_t *)"o\nno newline\x1b]0;x\x07", .len = 19 },
		{ .type = VB_EV_STAGE_COMPLETED, .time_ms = T0 + 1200, .stage = "a", .duration_ms = 200 },
		{ .type = VB_EV_STAGE_STARTED, .time_ms = T0 + 1300, .stage = "bb", .vm_id = "vm-1",
		  .accel = "tcg" },
		{ .type = VB_EV_VM_BOOTED, .time_ms = T0 + 1300, .stage = "bb", .vm_id = "vm-1",
		  .accel = "tcg" },
		{ .type = VB_EV_LOG_CHUNK, .time_ms = T0 + 1400, .stage = "bb", .stream = "stderr",
		  .data = (const uint8_t *)"oops", .len = 4 },
		{ .type = VB_EV_STAGE_FAILED, .time_ms = T0 + 1500, .stage = "bb", .exit_code = 2,
		  .duration_ms = 200, .error = "exit code 2" },
		{ .type = VB_EV_RUN_FINISHED, .time_ms = T0 + 1600, .duration_ms = 1600 },
	};
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		vb_progress_event(&evs[i], p);
	vb_progress_free(p);
	fclose(out);
	assert_string_equal(buf,
			    "[0.0s] run 20240501-120304-abc123: wf (workflow)\n"
			    "[0.0s] stage a: queued\n"
			    "[0.0s] stage bb: queued\n"
			    "[0.0s] stage a: booting\n"
			    "[1.0s] stage a: running on vm-1\n"
			    "a    | one\n"
			    "a    | two\n"
			    "a    | no newline?]0;x?\n"
			    "[1.2s] stage a: done (exit 0, 0.2s)\n"
			    "[1.3s] stage bb: running on vm-1 (tcg)\n"
			    "bb   | oops\n"
			    "[1.5s] stage bb: failed: exit code 2\n"
			    "[1.6s] run failed in 1.6s\n"
			    "bb: all of it: voidbox logs 20240501-120304-abc123 --stage bb --stderr\n");
	free(buf);
}

/* --follow on a terminal: the frame goes away before followed lines and
 * comes back below them. */
static void test_progress_follow_on_a_terminal(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	setenv("LC_ALL", "C", 1);
	FILE *out = open_memstream(&buf, &len);
	struct vb_progress *p = vb_progress_new(out, 1, 0);
	vb_progress_follow(p, 1);
	struct vb_event evs[] = {
		{ .type = VB_EV_RUN_STARTED, .time_ms = T0, .run_id = "20240501-120304-abc123",
		  .name = "f", .kind = "pipeline" },
		{ .type = VB_EV_STAGE_QUEUED, .time_ms = T0, .stage = "a" },
		{ .type = VB_EV_STAGE_STARTED, .time_ms = T0, .stage = "a" },
		{ .type = VB_EV_LOG_CHUNK, .time_ms = T0, .stage = "a", .stream = "stdout",
		  .data = (const uint8_t *)"par", .len = 3 },
		{ .type = VB_EV_LOG_CHUNK, .time_ms = T0, .stage = "a", .stream = "stdout",
		  .data = (const uint8_t *)"tial\n", .len = 5 },
	};
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		vb_progress_event(&evs[i], p);
	fflush(out);
	/* frames of 2 lines: header, stage a */
	const char *line = strstr(buf, "a    | partial\n");
	assert_non_null(line);
	assert_memory_equal(line - 8, "\r\033[2A\033[J", 8);
	assert_non_null(strstr(line, "f (pipeline)  running"));  /* drawn again below */
	assert_null(strstr(buf, "| par\n"));                   /* no half line on its own */
	vb_progress_free(p);
	fclose(out);
	unsetenv("LC_ALL");
	free(buf);
}

/* A cancelled run explains nothing: the user stopped it. */
static void test_progress_cancelled_says_no_more(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	struct vb_progress *p = vb_progress_new(out, 0, 0);
	struct vb_event evs[] = {
		{ .type = VB_EV_RUN_STARTED, .time_ms = T0, .run_id = "20240501-120304-abc123",
		  .name = "c", .kind = "pipeline" },
		{ .type = VB_EV_STAGE_STARTED, .time_ms = T0, .stage = "a" },
		{ .type = VB_EV_LOG_CHUNK, .time_ms = T0, .stage = "a", .stream = "stderr",
		  .data = (const uint8_t *)"x\n", .len = 2 },
		{ .type = VB_EV_STAGE_FAILED, .time_ms = T0 + 500, .stage = "a", .error = "cancelled" },
		{ .type = VB_EV_RUN_CANCELLED, .time_ms = T0 + 600, .duration_ms = 600 },
	};
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		vb_progress_event(&evs[i], p);
	vb_progress_free(p);
	fclose(out);
	assert_non_null(strstr(buf, "run cancelled after 0.6s\n"));
	assert_null(strstr(buf, "voidbox logs"));
	free(buf);
}

/* An interactive stage has the terminal: nothing is drawn while held (not
 * even the ticker's redraws), the state is still taken in, and the frame
 * comes back, whole, below when released. */
static void test_progress_hold(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	struct vb_progress *p = vb_progress_new(out, 1, 0);
	int64_t now = vb_obs_wall_ms();
	struct vb_event ev = { .type = VB_EV_RUN_STARTED, .time_ms = now, .name = "chat",
			       .kind = "agent" };
	vb_progress_event(&ev, p);
	ev = (struct vb_event){ .type = VB_EV_STAGE_STARTED, .time_ms = now, .stage = "chat" };
	vb_progress_event(&ev, p);
	fflush(out);
	size_t before = len;
	vb_progress_hold(p, 1);
	ev = (struct vb_event){ .type = VB_EV_VM_BOOTED, .time_ms = now + 10, .stage = "chat",
				.vm_id = "vm-held", .accel = "tcg" };
	vb_progress_event(&ev, p);
	usleep(700 * 1000); /* the ticker would have redrawn by now */
	fflush(out);
	assert_int_equal(len, before);
	vb_progress_hold(p, 0);
	fflush(out);
	assert_true(len > before);
	/* drawn afresh: no cursor-up over the other program's screen first */
	for (int n = 1; n < 10; n++) {
		char up[16];
		snprintf(up, sizeof(up), "\033[%dA", n);
		assert_null(strstr(buf + before, up));
	}
	assert_non_null(strstr(buf + before, "vm-held"));
	vb_progress_hold(NULL, 1);
	vb_progress_free(p);
	fclose(out);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_progress_plain),
		cmocka_unit_test(test_progress_tty),
		cmocka_unit_test(test_progress_ticker_and_states),
		cmocka_unit_test(test_progress_many_stages_fit),
		cmocka_unit_test(test_progress_concurrent_events),
		cmocka_unit_test(test_progress_follow_and_shared_vm),
		cmocka_unit_test(test_progress_cancelled_says_no_more),
		cmocka_unit_test(test_progress_follow_on_a_terminal),
		cmocka_unit_test(test_progress_hold),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
