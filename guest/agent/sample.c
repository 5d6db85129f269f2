/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sample.c — SAMPLE: a snapshot of the guest's CPU, memory and process
 * counts, read from /proc.
 */
#include "agent.h"

#include <ctype.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parse an unsigned decimal at *p, advancing it; 0 if none. */
static uint64_t next_u64(const char **p)
{
	uint64_t v = 0;
	while (**p == ' ' || **p == '\t')
		(*p)++;
	while (isdigit((unsigned char)**p)) {
		v = v * 10 + (uint64_t)(**p - '0');
		(*p)++;
	}
	return v;
}

/* "cpu  user nice system idle ..." (ticks, all CPUs) */
static void cpu_ticks(uint64_t *user, uint64_t *sys, uint64_t *idle)
{
	char *text = NULL;
	*user = *sys = *idle = 0;
	if (agent_read_small("/proc/stat", 4096, &text) < 0)
		return;
	if (!strncmp(text, "cpu ", 4)) {
		const char *p = text + 4;
		uint64_t u = next_u64(&p), nice = next_u64(&p), s = next_u64(&p), i = next_u64(&p);
		*user = u + nice;
		*sys = s;
		*idle = i;
	}
	free(text);
}

/* A "Key:   123 kB" line of /proc/meminfo. */
static uint64_t meminfo(const char *text, const char *key)
{
	size_t kl = strlen(key);
	for (const char *line = text; line && *line;) {
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			const char *p = line + kl + 1;
			return next_u64(&p);
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return 0;
}

static uint64_t uptime_ms(void)
{
	char *text = NULL;
	uint64_t ms = 0;
	if (agent_read_small("/proc/uptime", 128, &text) < 0)
		return 0;
	const char *p = text;
	ms = next_u64(&p) * 1000;
	if (*p == '.') {
		p++;
		uint64_t scale = 100;
		while (isdigit((unsigned char)*p) && scale) {
			ms += (uint64_t)(*p - '0') * scale;
			scale /= 10;
			p++;
		}
	}
	free(text);
	return ms;
}

static uint64_t nprocs(void)
{
	DIR *d = opendir("/proc");
	uint64_t n = 0;
	if (!d)
		return 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *s = de->d_name;
		while (isdigit((unsigned char)*s))
			s++;
		n += *s == '\0' && s != de->d_name;
	}
	closedir(d);
	return n;
}

void sample_handle(struct conn *c, const struct vb_hdr *h)
{
	uint64_t user, sys, idle;
	char *mem = NULL;
	cpu_ticks(&user, &sys, &idle);
	if (agent_read_small("/proc/meminfo", 8192, &mem) < 0)
		mem = NULL;
	struct vb_buf b = { 0 };
	vb_msg_begin(&b, VB_MSG_OK, 0, h->id);
	vb_msg_put_u64(&b, VB_TAG_CPU_USER, user);
	vb_msg_put_u64(&b, VB_TAG_CPU_SYSTEM, sys);
	vb_msg_put_u64(&b, VB_TAG_CPU_IDLE, idle);
	vb_msg_put_u64(&b, VB_TAG_MEM_TOTAL_KB, mem ? meminfo(mem, "MemTotal") : 0);
	vb_msg_put_u64(&b, VB_TAG_MEM_AVAIL_KB, mem ? meminfo(mem, "MemAvailable") : 0);
	vb_msg_put_u64(&b, VB_TAG_UPTIME_MS, uptime_ms());
	vb_msg_put_u64(&b, VB_TAG_NPROCS, nprocs());
	if (vb_msg_end(&b) == 0)
		conn_send(c, &b);
	vb_buf_free(&b);
	free(mem);
}
