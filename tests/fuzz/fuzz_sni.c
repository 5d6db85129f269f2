/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sni.c — libFuzzer target for the SNI check's ClientHello reader
 * (src/net/sni.c).  The input is the start of a guest's TCP stream.  It is
 * read whole, and again fed in growing prefixes the way the data path
 * buffers segments (each time up to what VB_SNI_NEED_MORE asked for): the
 * two must agree, a request for more must ask for more than it has and no
 * more than VB_SNI_MAX_BYTES, and a name found must be a valid host name.
 *
 *   make fuzz; build/fuzz/fuzz_sni -max_total_time=600 tests/fuzz/corpus/sni
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/sni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char whole[VB_DOMAIN_MAX], name[VB_DOMAIN_MAX], norm[VB_DOMAIN_MAX];
	size_t need;
	enum vb_sni_result r = vb_sni_parse(data, size, whole, &need);
	if (r == VB_SNI_NEED_MORE && (need <= size || need > VB_SNI_MAX_BYTES))
		abort();
	if (r == VB_SNI_FOUND && (vb_domain_normalize(whole, norm, NULL) < 0 ||
				  strcmp(norm, whole) != 0))
		abort();
	if (r != VB_SNI_FOUND && whole[0])
		abort();
	/* the same stream as it arrives, one requested step at a time */
	size_t have = size ? 1 : 0;
	enum vb_sni_result s;
	for (;;) {
		s = vb_sni_parse(data, have, name, &need);
		if (s != VB_SNI_NEED_MORE || have == size)
			break;
		have = need < size ? need : size;
	}
	if (s != r || (r == VB_SNI_FOUND && strcmp(name, whole) != 0))
		abort();
	return 0;
}
