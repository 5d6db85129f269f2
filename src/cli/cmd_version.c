/* SPDX-License-Identifier: Apache-2.0 */
/* voidbox version: the release and the host/guest protocol it speaks. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "vb_proto.h"
#include "voidbox/voidbox.h"

static const char usage_text[] =
	"usage: voidbox version [-o text|json]\n"
	"\n"
	"Print the VoidBox version and protocol version.\n"
	"\n"
	"options:\n"
	"  -o, --output FORMAT   text (default) or json: {\"version\": ..., \"protocol\": N}\n"
	"  -h, --help            this help\n";

int vb_cmd_version(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	vb_error err = { 0 };
	int c, json = 0;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:ho:", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage_text, stdout);
			return 0;
		}
		if (c == 'o' && vb_cli_output_format("version", optarg, &json, &err) == 0)
			continue;
		if (c != 'o')
			vb_cli_getopt_fail("version", c, argv, longopts, &err);
		return vb_cli_fail(&err);
	}
	if (optind < argc) {
		vb_cli_unexpected_arg("version", argv[optind], &err);
		return vb_cli_fail(&err);
	}
	if (json)
		printf("{\"version\": \"%s\", \"protocol\": %u}\n", VOIDBOX_VERSION, VB_PROTO_VERSION);
	else
		printf("voidbox %s (protocol %u)\n", VOIDBOX_VERSION, VB_PROTO_VERSION);
	return 0;
}
