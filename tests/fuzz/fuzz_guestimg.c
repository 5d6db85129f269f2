/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_guestimg.c — libFuzzer target for what a guest image brings
 * (src/oci/guestimg.c).  The input's first byte chooses: even, the rest is
 * a kernel for vb_guestimg_check_kernel() (bzImage header, payload
 * decompression, ELF notes, embedded config); odd, the rest is a layer blob
 * for vb_guestimg_prepare() (tar, gzip or zstd, whiteouts, sizes, the
 * initramfs's cpio).  Every failure must come with a message; a prepare
 * writes nothing but the three cache files.
 *
 *   make fuzz; build/fuzz/fuzz_guestimg -max_total_time=600 tests/fuzz/corpus/guestimg
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "oci/guestimg.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Only the names vb_guestimg_prepare() may leave in its cache dir. */
static void expect_only_cache_files(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		abort();
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    strcmp(e->d_name, "vmlinuz") && strcmp(e->d_name, "initramfs") &&
		    strcmp(e->d_name, "guest-image.ok"))
			abort();
	closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int fd = memfd_create("fuzz-guestimg", 0);
	if (fd < 0 || vb_write_full(fd, data + 1, size - 1) < 0)
		abort();
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	vb_error err = { 0 };
	if (!(data[0] & 1)) {
		if (vb_guestimg_check_kernel(path, VB_GUESTIMG_NEED_NET | VB_GUESTIMG_NEED_DISK,
					     &err) < 0 &&
		    !err.msg[0])
			abort();
		close(fd);
		return 0;
	}
	char dir[] = "/tmp/fuzz-guestimg-XXXXXX";
	if (!mkdtemp(dir))
		abort();
	char cache[64];
	snprintf(cache, sizeof(cache), "%s/cache", dir);
	const char *paths[1] = { path };
	char *kernel = NULL, *initramfs = NULL;
	int rc = vb_guestimg_prepare(paths, NULL, 1, cache, &kernel, &initramfs, &err);
	if (rc < 0 && (!err.msg[0] || kernel || initramfs))
		abort();
	if (rc == 0 && (!kernel || !initramfs))
		abort();
	expect_only_cache_files(cache);
	free(kernel);
	free(initramfs);
	vb_rm_rf(dir);
	close(fd);
	return 0;
}
