/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest-image kernel check on kernels made up here: bzImages whose
 * header is right or wrong in one field, payloads in gzip and xz, ELF
 * vmlinux files with and without the PVH note, and malformed ones that
 * must fail with a message rather than read out of bounds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oci/guestimg.h"
#include "util/util.h"

/* What a kernel with every core driver built in carries (guestimg.c). */
static const char core[] = "retain_initrd\0virtio-mmio\0virtio_mmio.device\0"
			   "virtio_console\0009pnet_virtio\0v9fs_inode_cache\0";

static char path[64];

static void put_file(const void *data, size_t len)
{
	snprintf(path, sizeof(path), "/tmp/vb-unit-guestimg-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(vb_write_full(fd, data, len), 0);
	close(fd);
}

static int check(const void *data, size_t len, unsigned need, vb_error *err)
{
	put_file(data, len);
	memset(err, 0, sizeof(*err));
	int rc = vb_guestimg_check_kernel(path, need, err);
	unlink(path);
	return rc;
}

/* (data) compressed by libarchive's (filter) into a malloc'd buffer. */
static unsigned char *compress(int filter, const void *data, size_t len, size_t *out_len)
{
	size_t cap = len + 4096;
	unsigned char *buf = malloc(cap);
	assert_non_null(buf);
	struct archive *a = archive_write_new();
	assert_int_equal(archive_write_add_filter(a, filter), ARCHIVE_OK);
	assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_memory(a, buf, cap, out_len), ARCHIVE_OK);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_size(e, (la_int64_t)len);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	assert_int_equal(archive_write_data(a, data, len), (la_ssize_t)len);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_entry_free(e);
	archive_write_free(a);
	return buf;
}

static void le16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}
static void le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* A bzImage: one setup sector after the boot sector, the payload right
 * after them (payload_offset 0). */
static unsigned char *bzimage(const void *payload, size_t plen, uint16_t version,
			      uint16_t xloadflags, size_t *len)
{
	*len = 1024 + plen;
	unsigned char *k = calloc(1, *len);
	assert_non_null(k);
	k[0x1f1] = 1;
	memcpy(k + 0x202, "HdrS", 4);
	le16(k + 0x206, version);
	le16(k + 0x236, xloadflags);
	le32(k + 0x248, 0);
	le32(k + 0x24c, (uint32_t)plen);
	memcpy(k + 1024, payload, plen);
	return k;
}

static void test_bzimage_with_the_drivers(void **state)
{
	(void)state;
	vb_error err;
	int filters[] = { ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_XZ, ARCHIVE_FILTER_ZSTD };
	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
		size_t plen, klen;
		unsigned char *p = compress(filters[i], core, sizeof(core), &plen);
		unsigned char *k = bzimage(p, plen, 0x20f, 1, &klen);
		assert_int_equal(check(k, klen, 0, &err), 0);
		/* asking for more than the core set names the rest */
		assert_int_equal(check(k, klen, VB_GUESTIMG_NEED_NET | VB_GUESTIMG_NEED_DISK, &err),
				 -1);
		assert_int_equal(err.kind, VB_E_USAGE);
		assert_non_null(strstr(err.msg, "CONFIG_VIRTIO_NET=y"));
		assert_non_null(strstr(err.msg, "CONFIG_VIRTIO_BLK=y"));
		assert_non_null(strstr(err.msg, "CONFIG_OVERLAY_FS=y"));
		assert_null(strstr(err.msg, "CONFIG_VIRTIO_CONSOLE"));
		free(k);
		free(p);
	}
}

static void test_bzimage_header_faults(void **state)
{
	(void)state;
	vb_error err;
	size_t plen, klen;
	unsigned char *p = compress(ARCHIVE_FILTER_GZIP, core, sizeof(core), &plen);

	unsigned char *k = bzimage(p, plen, 0x20b, 1, &klen);
	assert_int_equal(check(k, klen, 0, &err), -1);
	assert_non_null(strstr(err.msg, "boot protocol 2.11 is too old"));
	free(k);

	k = bzimage(p, plen, 0x20f, 0, &klen);
	assert_int_equal(check(k, klen, 0, &err), -1);
	assert_non_null(strstr(err.msg, "not a 64-bit x86 kernel"));
	free(k);

	/* a payload that claims more bytes than the file has */
	k = bzimage(p, plen, 0x20f, 1, &klen);
	le32(k + 0x24c, 0xfffffff0u);
	assert_int_equal(check(k, klen, 0, &err), -1);
	assert_non_null(strstr(err.msg, "payload lies outside the file"));
	le32(k + 0x248, 0xfffffff0u); /* offset + length past 4 GiB */
	assert_int_equal(check(k, klen, 0, &err), -1);
	assert_non_null(strstr(err.msg, "payload lies outside the file"));
	free(k);

	/* a payload in no compression VoidBox reads */
	k = bzimage(core, sizeof(core), 0x20f, 1, &klen);
	assert_int_equal(check(k, klen, 0, &err), -1);
	assert_non_null(strstr(err.msg, "compressed in a format VoidBox cannot read"));
	free(k);
	free(p);

	/* short files and text are no kernel */
	assert_int_equal(check("", 0, 0, &err), -1);
	assert_non_null(strstr(err.msg, "is not a Linux kernel"));
	assert_int_equal(check("HdrS", 4, 0, &err), -1);
	assert_non_null(strstr(err.msg, "is not a Linux kernel"));
}

/* An ELF64 x86-64 file: header, one PT_NOTE, the note (name, type), then
 * the strings. */
static unsigned char *elf(const char *note_name, uint32_t note_type, uint16_t phnum,
			  uint32_t namesz, size_t *len)
{
	size_t note_off = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr), note_len = 12 + 4 + 4;
	*len = note_off + note_len + sizeof(core);
	unsigned char *k = calloc(1, *len);
	assert_non_null(k);
	Elf64_Ehdr eh = { 0 };
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_machine = EM_X86_64;
	eh.e_phoff = sizeof(Elf64_Ehdr);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = phnum;
	memcpy(k, &eh, sizeof(eh));
	Elf64_Phdr ph = { .p_type = PT_NOTE, .p_offset = note_off, .p_filesz = note_len };
	memcpy(k + sizeof(eh), &ph, sizeof(ph));
	unsigned char *n = k + note_off;
	le32(n, namesz);
	le32(n + 4, 4);
	le32(n + 8, note_type);
	memcpy(n + 12, note_name, 4);
	memcpy(k + note_off + note_len, core, sizeof(core));
	return k;
}

static void test_elf_vmlinux(void **state)
{
	(void)state;
	vb_error err;
	size_t len;
	unsigned char *k = elf("Xen", 18, 1, 4, &len);
	assert_int_equal(check(k, len, 0, &err), 0);
	free(k);

	const char *why = "without an x86-64 PVH entry note";
	k = elf("Xen", 17, 1, 4, &len); /* another Xen note */
	assert_int_equal(check(k, len, 0, &err), -1);
	assert_non_null(strstr(err.msg, why));
	free(k);
	k = elf("GNU", 18, 1, 4, &len);
	assert_int_equal(check(k, len, 0, &err), -1);
	assert_non_null(strstr(err.msg, why));
	free(k);
	/* lying sizes: a note name running off the segment, program headers
	 * running off the file */
	k = elf("Xen", 18, 1, 0xfffffff0u, &len);
	assert_int_equal(check(k, len, 0, &err), -1);
	assert_non_null(strstr(err.msg, why));
	free(k);
	k = elf("Xen", 18, 0xffff, 4, &len);
	assert_int_equal(check(k, len, 0, &err), -1);
	assert_non_null(strstr(err.msg, why));
	free(k);
	/* a 32-bit ELF */
	k = elf("Xen", 18, 1, 4, &len);
	k[EI_CLASS] = ELFCLASS32;
	assert_int_equal(check(k, len, 0, &err), -1);
	assert_non_null(strstr(err.msg, why));
	free(k);
}

static void test_needles_are_whole_names(void **state)
{
	(void)state;
	vb_error err;
	/* "virtio_console_x" is not the driver "virtio_console" */
	static const char near[] = "retain_initrd\0virtio-mmio\0virtio_mmio.device\0"
				   "virtio_console_x\0009pnet_virtio\0v9fs_inode_cache\0";
	size_t plen, klen;
	unsigned char *p = compress(ARCHIVE_FILTER_GZIP, near, sizeof(near), &plen);
	unsigned char *k = bzimage(p, plen, 0x20f, 1, &klen);
	assert_int_equal(check(k, klen, 0, &err), -1);
	assert_non_null(strstr(err.msg, "(CONFIG_VIRTIO_CONSOLE=y)"));
	assert_non_null(strstr(err.msg, "carries no trace of the drivers"));
	assert_null(strstr(err.msg, "CONFIG_9P_FS"));
	free(k);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bzimage_with_the_drivers),
		cmocka_unit_test(test_bzimage_header_faults),
		cmocka_unit_test(test_elf_vmlinux),
		cmocka_unit_test(test_needles_are_whole_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
