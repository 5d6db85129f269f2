/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "vb_proto.h"
#include "voidbox/voidbox.h"

int vb_cmd_version(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		puts("usage: voidbox version\n\nPrint the VoidBox version and protocol version.");
		return 0;
	}
	printf("voidbox %s (protocol %u)\n", VOIDBOX_VERSION, VB_PROTO_VERSION);
	return 0;
}
