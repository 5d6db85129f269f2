/* SPDX-License-Identifier: Apache-2.0 */
/* The bounded console capture: head, drop note, tail, whatever comes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/util.h"
#include "vmm/logs.h"

/* Start a capture and return a writer for stream (which). */
static int start(struct vb_vmm_logs *l, int which)
{
	vb_error err = { 0 };
	assert_int_equal(vb_vmm_logs_init(l, &err), 0);
	int w = dup(l->wfd[which]);
	assert_true(w >= 0);
	assert_int_equal(vb_vmm_logs_run(l, &err), 0);
	return w;
}

static void test_small_output_kept_whole(void **state)
{
	(void)state;
	struct vb_vmm_logs l;
	int w = start(&l, VB_LOG_CONSOLE);
	assert_int_equal(vb_write_full(w, "hello\nworld\n", 12), 0);
	close(w);
	size_t n;
	char *t = vb_vmm_logs_text(&l, VB_LOG_CONSOLE, 5000, &n);
	assert_string_equal(t, "hello\nworld\n");
	assert_int_equal(n, 12);
	assert_int_equal(vb_vmm_logs_total(&l, VB_LOG_CONSOLE), 12);
	free(t);
	t = vb_vmm_logs_text(&l, VB_LOG_VMM, 0, &n); /* the other stream: empty */
	assert_string_equal(t, "");
	free(t);
	vb_vmm_logs_free(&l);
}

static void test_flood_keeps_head_and_tail(void **state)
{
	(void)state;
	struct vb_vmm_logs l;
	int w = start(&l, VB_LOG_CONSOLE);
	size_t head = l.cap[VB_LOG_CONSOLE].head_max, tail = l.cap[VB_LOG_CONSOLE].tail_max;
	/* a numbered stream of 8-byte records, in odd-sized writes */
	size_t total = 8 * (head + tail) + 24;
	char *all = malloc(total + 8);
	for (size_t i = 0; i * 8 < total; i++)
		snprintf(all + i * 8, 9, "%07u\n", (unsigned)(i % 10000000));
	for (size_t off = 0; off < total;) {
		size_t k = total - off < 12345 ? total - off : 12345;
		assert_int_equal(vb_write_full(w, all + off, k), 0);
		off += k;
	}
	close(w);
	size_t n;
	char *t = vb_vmm_logs_text(&l, VB_LOG_CONSOLE, 5000, &n);
	assert_int_equal(vb_vmm_logs_total(&l, VB_LOG_CONSOLE), total);
	assert_memory_equal(t, all, head);
	char mark[96];
	snprintf(mark, sizeof(mark), "\n[voidbox: %zu bytes dropped here]\n", total - head - tail);
	assert_memory_equal(t + head, mark, strlen(mark));
	assert_int_equal(n, head + strlen(mark) + tail);
	assert_memory_equal(t + head + strlen(mark), all + total - tail, tail);
	free(t);
	free(all);
	vb_vmm_logs_free(&l);
}

static void test_free_while_writer_alive(void **state)
{
	(void)state;
	struct vb_vmm_logs l;
	int w = start(&l, VB_LOG_VMM);
	assert_int_equal(vb_write_full(w, "x", 1), 0);
	char *t = vb_vmm_logs_text(&l, VB_LOG_VMM, 50, NULL); /* no EOF: waits, then answers */
	assert_non_null(t);
	free(t);
	vb_vmm_logs_free(&l); /* must not hang on the open writer */
	close(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_output_kept_whole),
		cmocka_unit_test(test_flood_keeps_head_and_tail),
		cmocka_unit_test(test_free_while_writer_alive),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
