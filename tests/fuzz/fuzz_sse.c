/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sse.c — libFuzzer target for the builtin agent's reading of a
 * streamed Messages answer (src/builtin/stream.c): the input is read whole
 * and split at a point taken from its first byte; the two reads must agree
 * (the answer, or the reason it was refused, and every piece of text
 * handed on), and every piece must be non-empty, at most the flush size and
 * valid UTF-8.
 *
 *   make fuzz; build/fuzz/fuzz_sse -max_total_time=600 tests/fuzz/corpus/sse
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "builtin/builtin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct texts {
	uint64_t hash;
	size_t n;
};

static void on_text(const char *text, void *opaque)
{
	struct texts *t = opaque;
	size_t len = strlen(text);
	if (!len || len > VB_BUILTIN_TEXT_FLUSH)
		abort();
	json_t *j = json_string(text); /* NULL if not valid UTF-8 */
	if (!j)
		abort();
	json_decref(j);
	for (size_t i = 0; i < len; i++)
		t->hash = (t->hash ^ (uint8_t)text[i]) * 1099511628211ull;
	t->hash = (t->hash ^ 0x100) * 1099511628211ull;
	t->n++;
}

static char *read_stream(const uint8_t *data, size_t size, size_t cut, struct texts *t)
{
	struct vb_builtin_stream *s = vb_builtin_stream_new(on_text, t);
	if (!s)
		abort();
	vb_builtin_stream_feed(s, (const char *)data, cut);
	vb_builtin_stream_feed(s, (const char *)data + cut, size - cut);
	char why[512];
	json_t *c = vb_builtin_stream_end(s, why, sizeof(why));
	vb_builtin_stream_free(s);
	if (!c)
		return strdup(why);
	if (!json_is_array(c))
		abort();
	char *text = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(c);
	return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t cut = size ? data[0] % (size + 1) : 0;
	struct texts ta = { 0 }, tb = { 0 };
	char *a = read_stream(data, size, 0, &ta);
	char *b = read_stream(data, size, cut, &tb);
	if (!a || !b || strcmp(a, b) || ta.hash != tb.hash || ta.n != tb.n)
		abort();
	free(a);
	free(b);
	return 0;
}
