/* SPDX-License-Identifier: Apache-2.0 */
/* Text helpers of the observe module: UTF-8, base64, times, names. */
#include "observe/observe_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/util.h"

int64_t vb_obs_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void vb_obs_rfc3339(int64_t ms, int with_ms, char *buf, size_t size)
{
	if (ms < 0)
		ms = 0;
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	if (!gmtime_r(&secs, &tm)) {
		snprintf(buf, size, "1970-01-01T00:00:00Z");
		return;
	}
	char base[32];
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	if (with_ms)
		snprintf(buf, size, "%s.%03dZ", base, (int)(ms % 1000));
	else
		snprintf(buf, size, "%sZ", base);
}

/* Length of the UTF-8 sequence starting at s[0] (at most n bytes
 * available) if it is complete and valid; 0 if invalid; -1 if valid so far
 * but cut short by n. */
static int utf8_seq(const uint8_t *s, size_t n)
{
	uint8_t c = s[0];
	int len;
	uint32_t min, cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2, min = 0x80, cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3, min = 0x800, cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, min = 0x10000, cp = c & 0x07;
	} else {
		return 0;
	}
	for (int i = 1; i < len; i++) {
		if ((size_t)i >= n)
			return -1;
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
		/* reject overlongs and out-of-range as early as possible */
		if (i == 1 && len == 3 && c == 0xe0 && s[1] < 0xa0)
			return 0;
		if (i == 1 && len == 3 && c == 0xed && s[1] >= 0xa0)
			return 0; /* surrogates */
		if (i == 1 && len == 4 && c == 0xf0 && s[1] < 0x90)
			return 0;
		if (i == 1 && len == 4 && c == 0xf4 && s[1] >= 0x90)
			return 0;
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

int vb_obs_utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		int n = utf8_seq(s + i, len - i);
		if (n <= 0)
			return 0;
		i += (size_t)n;
	}
	return 1;
}

size_t vb_obs_utf8_cut(const uint8_t *s, size_t len)
{
	/* back off over at most 3 continuation bytes to a lead byte whose
	 * sequence would not fit */
	for (size_t back = 1; back <= 4 && back <= len; back++) {
		uint8_t c = s[len - back];
		if ((c & 0xc0) == 0x80)
			continue;
		size_t need = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
		return need > back ? len - back : len;
	}
	return len;
}

char *vb_obs_base64(const uint8_t *s, size_t len)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	if (len > (SIZE_MAX / 4) - 3)
		return NULL;
	char *out = malloc((len + 2) / 3 * 4 + 1);
	if (!out)
		return NULL;
	char *o = out;
	size_t i = 0;
	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = tab[(v >> 6) & 63];
		*o++ = tab[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)s[i] << 16;
		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = '=';
		*o++ = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = tab[(v >> 6) & 63];
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

json_t *vb_obs_jstr(const char *s, size_t max)
{
	if (!s)
		return json_null();
	const uint8_t *u = (const uint8_t *)s;
	size_t len = strnlen(s, max);
	if (vb_obs_utf8_valid(u, len))
		return json_stringn(s, len);
	if (vb_obs_utf8_valid(u, vb_obs_utf8_cut(u, len)))
		return json_stringn(s, vb_obs_utf8_cut(u, len));
	/* each invalid byte becomes U+FFFD (3 bytes) */
	char *buf = malloc(len * 3 + 1);
	if (!buf)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		int n = utf8_seq(u + i, len - i);
		if (n > 0) {
			memcpy(buf + o, u + i, (size_t)n);
			o += (size_t)n;
			i += (size_t)n;
		} else {
			memcpy(buf + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	json_t *j = json_stringn(buf, o);
	free(buf);
	return j;
}

void vb_obs_term_copy(char *out, size_t size, const char *s)
{
	if (!size)
		return;
	size_t o = 0;
	const uint8_t *u = (const uint8_t *)(s ? s : "");
	size_t len = strlen((const char *)u);
	for (size_t i = 0; i < len && o + 1 < size;) {
		int n = utf8_seq(u + i, len - i);
		if (n == 1) {
			uint8_t c = u[i];
			out[o++] = c == '\n' || c == '\t' || c == '\r' ? ' ' : (c < 0x20 || c == 0x7f) ? '?' : (char)c;
			i++;
		} else if (n > 1) {
			/* C1 controls (U+0080..U+009F) can drive terminals too */
			int c1 = u[i] == 0xc2 && u[i + 1] < 0xa0;
			if (c1) {
				out[o++] = '?';
			} else {
				if (o + (size_t)n >= size)
					break;
				memcpy(out + o, u + i, (size_t)n);
				o += (size_t)n;
			}
			i += (size_t)n;
		} else {
			out[o++] = '?';
			i++;
		}
	}
	out[o] = '\0';
}

int vb_obs_name_ok(const char *name)
{
	if (!name)
		return 0;
	size_t n = strnlen(name, VB_STAGE_NAME_MAX + 1);
	if (n == 0 || n > VB_STAGE_NAME_MAX || !strcmp(name, ".") || strstr(name, ".."))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int vb_obs_run_id_ok(const char *id)
{
	if (!id || strnlen(id, VB_RUN_ID_LEN + 1) != VB_RUN_ID_LEN)
		return 0;
	for (int i = 0; i < VB_RUN_ID_LEN; i++) {
		char c = id[i];
		int ok;
		if (i == 8 || i == 15)
			ok = c == '-';
		else if (i < 15)
			ok = c >= '0' && c <= '9';
		else
			ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
		if (!ok)
			return 0;
	}
	return 1;
}

void vb_obs_fmt_duration(int64_t ms, char *buf, size_t size)
{
	if (ms < 0)
		ms = 0;
	if (ms < 60000)
		snprintf(buf, size, "%lld.%llds", (long long)(ms / 1000), (long long)(ms % 1000 / 100));
	else if (ms < 3600000)
		snprintf(buf, size, "%lldm%02llds", (long long)(ms / 60000), (long long)(ms / 1000 % 60));
	else
		snprintf(buf, size, "%lldh%02lldm", (long long)(ms / 3600000), (long long)(ms / 60000 % 60));
}

void vb_obs_fmt_bytes(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	if (bytes < 1024) {
		snprintf(buf, size, "%llu B", (unsigned long long)bytes);
		return;
	}
	double v = (double)bytes / 1024;
	size_t u = 0;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, "%.1f %s", v, units[u]);
}

long long vb_obs_pid_start(long pid)
{
	return vb_pid_start(pid);
}

void vb_obs_boot_id(char *buf, size_t size)
{
	buf[0] = '\0';
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	if (!f)
		return;
	if (!fgets(buf, (int)size, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}
