/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_mcp.c — libFuzzer target for what an MCP server sends (src/skill/
 * mcp.c): its stdout fed to the bounded line reader in pieces the input's
 * first byte chooses, each line read as a response to request 2, and a
 * result read as a tools/list result.  Lines stay within the limit, tools
 * within the count, their names safe and their descriptions free of
 * control characters.
 *
 *   make fuzz; build/fuzz/fuzz_mcp -max_total_time=600 tests/fuzz/corpus/mcp
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "skill/skill.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_line(const char *line, size_t len)
{
	json_t *res = NULL;
	vb_error err = { 0 };
	int rc = vb_mcp_response(line, len, 2, &res, &err);
	if (rc < 0 && !err.msg[0])
		abort();
	if (rc != 1) {
		if (res)
			abort();
		return;
	}
	struct vb_mcp_tool *t = NULL;
	size_t n = 0;
	if (vb_mcp_tools(res, &t, &n, &err) == 0) {
		if (n > VB_MCP_TOOLS_MAX)
			abort();
		for (size_t i = 0; i < n; i++) {
			if (!t[i].name[0] || strlen(t[i].name) > VB_MCP_TOOL_NAME_MAX ||
			    strcspn(t[i].name, "\x1b\n\r\t /") != strlen(t[i].name) ||
			    !json_is_object(t[i].schema))
				abort();
			for (const char *d = t[i].description; d && *d; d++)
				if ((unsigned char)*d < 0x20 || *d == 0x7f)
					abort();
		}
	} else if (t || n) {
		abort();
	}
	vb_mcp_tools_free(t, n);
	json_decref(res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	size_t step = (size_t)data[0] + 1;
	data++;
	size--;
	struct vb_mcp_reader r = { 0 };
	for (size_t off = 0; off < size; off += step) {
		size_t n = size - off < step ? size - off : step;
		vb_error err = { 0 };
		if (vb_mcp_reader_feed(&r, data + off, n, &err) < 0)
			break;
		char *line;
		size_t len;
		while (vb_mcp_reader_line(&r, &line, &len) > 0) {
			if (len > VB_MCP_LINE_MAX || strlen(line) > len)
				abort();
			check_line(line, len);
			free(line);
		}
	}
	vb_mcp_reader_free(&r);
	return 0;
}
