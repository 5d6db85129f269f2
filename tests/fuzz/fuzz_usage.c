/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_usage.c — libFuzzer target for the LLM gateway's reading of provider
 * answers (src/llm/usage.c): the input is scanned as SSE and as a JSON body,
 * whole and split at a point taken from its first byte; the two scans of
 * the same stream must agree (the split must not matter), and the cost of
 * what was found must be a finite, non-negative number.
 *
 *   make fuzz; build/fuzz/fuzz_usage -max_total_time=600 tests/fuzz/corpus/usage
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vb_llm_usage scan(const uint8_t *data, size_t size, bool sse, size_t cut)
{
	struct vb_llm_usage_scan s;
	vb_llm_usage_init(&s, sse);
	vb_llm_usage_feed(&s, (const char *)data, cut);
	vb_llm_usage_feed(&s, (const char *)data + cut, size - cut);
	vb_llm_usage_end(&s);
	struct vb_llm_usage u = s.u;
	vb_llm_usage_free(&s);
	return u;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t cut = size ? data[0] % (size + 1) : 0;
	for (int sse = 0; sse < 2; sse++) {
		struct vb_llm_usage a = scan(data, size, sse, 0);
		struct vb_llm_usage b = scan(data, size, sse, cut);
		if (memcmp(&a, &b, sizeof(a)) != 0)
			abort();
		if (memchr(a.model, '\0', sizeof(a.model)) == NULL)
			abort();
		double cost = vb_llm_cost_usd(a.model, &a, NULL);
		if (!(cost >= 0) || cost > 1e300)
			abort();
	}
	return 0;
}
