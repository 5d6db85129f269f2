/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replay driver for the fuzz targets without libFuzzer: runs every file
 * given (or every file in each directory given) through the target's
 * LLVMFuzzerTestOneInput once.  The test suite builds each target with this
 * driver under ASAN+UBSAN and replays its corpus.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path, unsigned long *n)
{
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		perror(path);
		return -1;
	}
	size_t cap = 4096, len = 0;
	uint8_t *buf = malloc(cap);
	if (!buf) {
		fclose(fp);
		return -1;
	}
	size_t got;
	while ((got = fread(buf + len, 1, cap - len, fp)) > 0) {
		len += got;
		if (len == cap) {
			uint8_t *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				fclose(fp);
				return -1;
			}
			buf = nb;
			cap *= 2;
		}
	}
	int bad = ferror(fp);
	fclose(fp);
	if (bad) {
		fprintf(stderr, "%s: read error\n", path);
		free(buf);
		return -1;
	}
	/* an exact-size copy, so ASAN catches reads past the end */
	uint8_t *in = malloc(len ? len : 1);
	if (!in) {
		free(buf);
		return -1;
	}
	memcpy(in, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(in, len);
	free(in);
	(*n)++;
	return 0;
}

static int replay_path(const char *path, unsigned long *n)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path, n);
	DIR *d = opendir(path);
	if (!d) {
		perror(path);
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		size_t need = strlen(path) + strlen(e->d_name) + 2;
		char *child = malloc(need);
		if (!child) {
			rc = -1;
			break;
		}
		snprintf(child, need, "%s/%s", path, e->d_name);
		struct stat cst;
		if (stat(child, &cst) == 0 && S_ISREG(cst.st_mode) && replay_file(child, n) < 0)
			rc = -1;
		free(child);
	}
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned long n = 0;
	int rc = 0;
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++)
		if (replay_path(argv[i], &n) < 0)
			rc = 1;
	printf("replayed %lu inputs\n", n);
	return rc;
}
