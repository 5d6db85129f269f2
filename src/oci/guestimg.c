/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest images: the kernel and initramfs out of an OCI artifact's layers,
 * and the check that the kernel can run VoidBox's guest at all.  A guest
 * image comes from a registry, so its layers are untrusted: only the few
 * expected regular files at a layer's root are ever written (under fixed
 * names in a private staging dir), with sizes bounded, and the kernel is
 * looked at before any VM boots it.
 */
#include <archive.h>
#include <archive_entry.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oci/guestimg.h"
#include "util/term.h"
#include "util/util.h"

/* Bumped when the checks change, so older cache dirs are prepared again. */
#define MARKER_NAME "guest-image.ok"
#define MARKER_TEXT "voidbox guest image 1\n"
#define MAX_VMLINUX (256ull << 20) /* a decompressed kernel: distro ones are ~60 MB */
#define MAX_IKCONFIG (4u << 20)

/* ---- decompression --------------------------------------------------- */

/* The compressions a kernel payload or an initramfs comes in (those Linux
 * itself unpacks, minus lzo), by libarchive's own code: never a filter
 * that would run an external program. */
static void support_filters(struct archive *a)
{
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_bzip2(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_lzma(a);
	archive_read_support_filter_lz4(a);
	archive_read_support_filter_zstd(a);
}

/* (data) inflated by whichever filter libarchive recognises, at most (max)
 * bytes.  (*complete) says whether the stream ended cleanly: a kernel
 * payload often carries trailing bytes (the size bzImage appends) that make
 * the decompressor complain after everything useful came out. */
static unsigned char *inflate_any(const void *data, size_t len, size_t max, size_t *out_len,
				  int *complete, vb_error *err)
{
	*out_len = 0;
	*complete = 0;
	struct archive *a = archive_read_new();
	if (!a) {
		vb_error_set(err, VB_E_RUNTIME, "out of memory");
		return NULL;
	}
	support_filters(a);
	archive_read_support_format_raw(a);
	struct archive_entry *e;
	if (archive_read_open_memory(a, data, len) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK || archive_filter_count(a) < 2) {
		vb_error_set(err, VB_E_USAGE, "compressed in a format VoidBox cannot read (%s)",
			     archive_error_string(a) ? archive_error_string(a) : "unknown");
		archive_read_free(a);
		return NULL;
	}
	size_t cap = 1u << 20, n = 0;
	unsigned char *buf = malloc(cap);
	while (buf) {
		if (n == cap) {
			if (cap >= max) {
				free(buf);
				buf = NULL;
				vb_error_set(err, VB_E_USAGE, "larger than %llu MiB decompressed",
					     (unsigned long long)(max >> 20));
				break;
			}
			cap = cap * 2 > max ? max : cap * 2;
			unsigned char *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				buf = NULL;
				vb_error_set(err, VB_E_RUNTIME, "out of memory");
				break;
			}
			buf = nb;
		}
		la_ssize_t r = archive_read_data(a, buf + n, cap - n);
		if (r <= 0) {
			*complete = r == 0;
			break;
		}
		n += (size_t)r;
	}
	archive_read_free(a);
	*out_len = n;
	return buf;
}

/* ---- the kernel -------------------------------------------------------- */

static uint16_t le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* An x86 bzImage's compressed vmlinux (boot protocol, Documentation/x86/boot.rst). */
static int bzimage_payload(const unsigned char *k, size_t len, const unsigned char **payload,
			   size_t *plen, vb_error *err)
{
	uint16_t version = le16(k + 0x206);
	if (version < 0x20c)
		return vb_error_set(err, VB_E_USAGE,
				    "boot protocol %u.%02u is too old (QEMU's microvm needs 2.12+)",
				    version >> 8, version & 0xff);
	if (!(le16(k + 0x236) & 1)) /* XLF_KERNEL_64: the agent is x86-64 */
		return vb_error_set(err, VB_E_USAGE, "not a 64-bit x86 kernel");
	uint64_t setup = ((uint64_t)(k[0x1f1] ? k[0x1f1] : 4) + 1) * 512;
	uint64_t off = setup + le32(k + 0x248), n = le32(k + 0x24c);
	if (n == 0 || off + n > len)
		return vb_error_set(err, VB_E_USAGE, "its compressed payload lies outside the file");
	*payload = k + off;
	*plen = (size_t)n;
	return 0;
}

/* QEMU loads an ELF kernel on x86 only through its PVH entry note. */
static int elf_has_pvh(const unsigned char *k, size_t len)
{
	Elf64_Ehdr eh;
	if (len < sizeof(eh))
		return 0;
	memcpy(&eh, k, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > len ||
	    (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > len - eh.e_phoff)
		return 0;
	for (size_t i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, k + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_NOTE || ph.p_offset > len || ph.p_filesz > len - ph.p_offset)
			continue;
		const unsigned char *p = k + ph.p_offset, *end = p + ph.p_filesz;
		while (end - p >= 12) {
			uint32_t namesz = le32(p), descsz = le32(p + 4), type = le32(p + 8);
			uint64_t name_al = ((uint64_t)namesz + 3) & ~3ull;
			uint64_t desc_al = ((uint64_t)descsz + 3) & ~3ull;
			if (name_al + desc_al > (uint64_t)(end - p - 12))
				break;
			if (namesz == 4 && !memcmp(p + 12, "Xen", 4) && type == 18) /* PHYS32_ENTRY */
				return 1;
			p += 12 + name_al + desc_al;
		}
	}
	return 0;
}

struct kreq {
	const char *what;   /* for the message */
	const char *option; /* the Kconfig symbol */
	const char *needle; /* a string only the built-in driver brings */
	size_t needle_len;  /* with the NUL when it is a whole C string */
	unsigned need;      /* 0: always; else a VB_GUESTIMG_NEED_* bit */
};
#define NEEDLE(s) s, sizeof(s) - 1
/* The needles are driver, cache and parameter names (what /sys,
 * /proc/slabinfo and the command line know), ending in their NUL so a
 * longer name does not match, and stable across kernel versions; a driver
 * built as a module leaves none of them in the kernel image. */
static const struct kreq kreqs[] = {
	/* a boot parameter init/initramfs.c has had since 2.6 */
	{ "initramfs support", "CONFIG_BLK_DEV_INITRD", NEEDLE("retain_initrd\0"), 0 },
	{ "virtio-mmio", "CONFIG_VIRTIO_MMIO", NEEDLE("virtio-mmio\0"), 0 },
	{ "virtio-mmio devices from the command line", "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES",
	  NEEDLE("virtio_mmio.device\0"), 0 },
	{ "the virtio console (the control channel)", "CONFIG_VIRTIO_CONSOLE",
	  NEEDLE("virtio_console\0"), 0 },
	{ "9p over virtio (mounts)", "CONFIG_NET_9P_VIRTIO", NEEDLE("9pnet_virtio\0"), 0 },
	{ "the 9p filesystem (mounts)", "CONFIG_9P_FS", NEEDLE("v9fs_inode_cache\0"), 0 },
	{ "virtio-net (the network)", "CONFIG_VIRTIO_NET", NEEDLE("virtio_net\0"),
	  VB_GUESTIMG_NEED_NET },
	{ "virtio-blk (root disks)", "CONFIG_VIRTIO_BLK", NEEDLE("virtio_blk\0"),
	  VB_GUESTIMG_NEED_DISK },
	{ "ext4 (root disks)", "CONFIG_EXT4_FS", NEEDLE("ext4_inode_cache\0"), VB_GUESTIMG_NEED_DISK },
	{ "overlayfs (root disks)", "CONFIG_OVERLAY_FS", NEEDLE("ovl_inode\0"),
	  VB_GUESTIMG_NEED_DISK },
};

/* The compressions an initramfs may come in, by their magic, and how to
 * tell the kernel unpacks them: its config, else a message only the
 * decompressor carries (none known for the last three: those count as
 * unsupported without a config). */
static const struct {
	const unsigned char magic[6];
	size_t magic_len;
	const char *option, *needle;
} rd_formats[] = {
	{ { 0x1f, 0x8b }, 2, "CONFIG_RD_GZIP", "Not a gzip file" },
	{ { 0xfd, '7', 'z', 'X', 'Z', 0 }, 6, "CONFIG_RD_XZ", "XZ-compressed data is corrupt" },
	{ { 0x28, 0xb5, 0x2f, 0xfd }, 4, "CONFIG_RD_ZSTD", "ZSTD-compressed data is corrupt" },
	{ { 'B', 'Z', 'h' }, 3, "CONFIG_RD_BZIP2", NULL },
	{ { 0x5d, 0, 0 }, 3, "CONFIG_RD_LZMA", NULL },
	{ { 0x02, 0x21, 0x4c, 0x18 }, 4, "CONFIG_RD_LZ4", NULL },
};
#define N_RD (sizeof(rd_formats) / sizeof(rd_formats[0]))

/* The kernel's own config, when built with CONFIG_IKCONFIG (a gzip stream
 * between "IKCFG_ST" and "IKCFG_ED"); NULL when absent or unreadable. */
static char *ikconfig(const unsigned char *v, size_t len)
{
	const unsigned char *st = memmem(v, len, "IKCFG_ST", 8);
	if (!st)
		return NULL;
	st += 8;
	const unsigned char *ed = memmem(st, len - (size_t)(st - v), "IKCFG_ED", 8);
	if (!ed)
		return NULL;
	size_t n;
	int complete;
	vb_error e = { 0 };
	unsigned char *cfg = inflate_any(st, (size_t)(ed - st), MAX_IKCONFIG, &n, &complete, &e);
	if (!cfg || n == 0 || n == MAX_IKCONFIG) {
		free(cfg);
		return NULL;
	}
	cfg[n] = '\0'; /* inflate_any() returns with n < its buffer's size */
	return (char *)cfg;
}

static int config_has(const char *cfg, const char *option)
{
	char line[96];
	snprintf(line, sizeof(line), "\n%s=y\n", option);
	return strstr(cfg, line) != NULL;
}

/* (shown) names the kernel in messages (the staging file's name is of no
 * use to the user).  (*rd), when not NULL, gets a bit per rd_formats[]
 * entry the kernel is known to unpack. */
static int check_kernel(const char *path, const char *shown, unsigned need, unsigned *rd,
			vb_error *err)
{
	size_t klen;
	_cleanup_free_ unsigned char *k =
		(unsigned char *)vb_read_file(path, VB_GUESTIMG_MAX_KERNEL, &klen, err);
	if (!k) {
		vb_error_prefix(err, "guest kernel");
		return -1;
	}
	const unsigned char *v = k; /* the uncompressed image searched */
	size_t vlen = klen;
	_cleanup_free_ unsigned char *inflated = NULL;
	int complete = 1;
	if (klen >= 0x250 && !memcmp(k + 0x202, "HdrS", 4)) {
		const unsigned char *payload = NULL;
		size_t plen = 0;
		if (bzimage_payload(k, klen, &payload, &plen, err) < 0 ||
		    !(inflated = inflate_any(payload, plen, MAX_VMLINUX, &vlen, &complete, err))) {
			vb_error_prefix(err, "guest kernel %s", shown);
			return -1;
		}
		v = inflated;
	} else if (klen >= 4 && !memcmp(k, ELFMAG, SELFMAG)) {
		if (!elf_has_pvh(k, klen))
			return vb_error_set(err, VB_E_USAGE,
					    "guest kernel %s: an ELF kernel without an x86-64 PVH entry "
					    "note, which QEMU's microvm cannot boot (use a bzImage)",
					    shown);
	} else {
		return vb_error_set(err, VB_E_USAGE,
				    "guest kernel %s is not a Linux kernel QEMU's microvm boots "
				    "(neither an x86 bzImage nor an ELF vmlinux)",
				    shown);
	}

	_cleanup_free_ char *cfg = ikconfig(v, vlen);
	char missing[1024] = "";
	size_t used = 0, n_missing = 0;
	for (size_t i = 0; i < sizeof(kreqs) / sizeof(kreqs[0]); i++) {
		const struct kreq *r = &kreqs[i];
		if (r->need && !(need & r->need))
			continue;
		int ok = cfg ? config_has(cfg, r->option)
			     : memmem(v, vlen, r->needle, r->needle_len) != NULL;
		if (ok)
			continue;
		int w = snprintf(missing + used, sizeof(missing) - used, "%s%s (%s=y)",
				 n_missing ? ", " : "", r->what, r->option);
		if (w > 0 && (size_t)w < sizeof(missing) - used)
			used += (size_t)w;
		n_missing++;
	}
	for (size_t i = 0; rd && i < N_RD; i++)
		if (cfg ? config_has(cfg, rd_formats[i].option)
			: rd_formats[i].needle && memmem(v, vlen, rd_formats[i].needle,
							 strlen(rd_formats[i].needle)))
			*rd |= 1u << i;
	if (n_missing)
		return vb_error_set(err, VB_E_USAGE,
				    "guest kernel %s lacks what VoidBox needs built in (%s): %s%s", shown,
				    cfg ? "its embedded config says"
					: "its image carries no trace of the drivers",
				    missing,
				    !cfg && !complete ? " (its payload did not decompress cleanly)"
						      : "");
	return 0;
}

int vb_guestimg_check_kernel(const char *path, unsigned need, vb_error *err)
{
	return check_kernel(path, path, need, NULL, err);
}

/* ---- the layers -------------------------------------------------------- */

enum { KERNEL, INITRAMFS };
/* In order of preference within each kind; void-box's names first. */
static const struct {
	const char *name;
	int kind;
} slots[] = {
	{ "vmlinuz", KERNEL },		 { "vmlinux", KERNEL },	      { "bzImage", KERNEL },
	{ "rootfs.cpio.gz", INITRAMFS }, { "initramfs.cpio.gz", INITRAMFS },
	{ "rootfs.cpio", INITRAMFS },	 { "initramfs.cpio", INITRAMFS },
};
#define N_SLOTS (sizeof(slots) / sizeof(slots[0]))

/* The compression a layer's media type announces: a filter code, -1 when
 * there is no type to go by, -2 for a type that is not a tar layer. */
static int media_filter(const char *mt)
{
	if (!mt)
		return -1;
	size_t n = strlen(mt);
#define ENDS(s) (n >= sizeof(s) - 1 && !strcmp(mt + n - (sizeof(s) - 1), s))
	if (ENDS("tar+gzip") || ENDS("tar.gzip"))
		return ARCHIVE_FILTER_GZIP;
	if (ENDS("tar+zstd") || ENDS("tar.zstd"))
		return ARCHIVE_FILTER_ZSTD;
	if (ENDS(".tar") || ENDS("diff.tar"))
		return ARCHIVE_FILTER_NONE;
#undef ENDS
	return -2;
}

/* A member's name at the layer's root ("./vmlinuz", "/vmlinuz" or
 * "vmlinuz" → "vmlinuz"); NULL for anything in a subdirectory. */
static const char *root_name(const char *name)
{
	if (!name)
		return NULL;
	for (;;) {
		if (name[0] == '/')
			name++;
		else if (name[0] == '.' && name[1] == '/')
			name += 2;
		else
			break;
	}
	return strchr(name, '/') ? NULL : name;
}

/* Copy the current member (e)'s data to (path), at most (max) bytes. */
static int copy_member(struct archive *a, struct archive_entry *e, const char *path, uint64_t max,
		       const char *what, vb_error *err)
{
	int64_t size = archive_entry_size(e);
	if (size < 0 || (uint64_t)size > max)
		return vb_error_set(err, VB_E_USAGE, "%s is larger than %llu MiB", what,
				    (unsigned long long)(max >> 20));
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
				      0644);
	if (fd < 0)
		return vb_error_errno(err, errno, "cannot create %s", path);
	uint64_t total = 0;
	const void *buf;
	size_t len;
	int64_t off;
	int r;
	while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
		if (off < 0 || (uint64_t)off + len > max)
			return vb_error_set(err, VB_E_USAGE, "%s is larger than %llu MiB", what,
					    (unsigned long long)(max >> 20));
		if ((uint64_t)off != total && lseek(fd, off, SEEK_SET) < 0)
			return vb_error_errno(err, errno, "writing %s", path);
		if (vb_write_full(fd, buf, len) < 0)
			return vb_error_errno(err, errno, "writing %s", path);
		total = (uint64_t)off + len;
	}
	if (r != ARCHIVE_EOF)
		return vb_error_set(err, VB_E_USAGE, "reading %s: %s", what, archive_error_string(a));
	if (total < (uint64_t)size && ftruncate(fd, (off_t)size) < 0) /* a sparse tail */
		return vb_error_errno(err, errno, "writing %s", path);
	return 0;
}

/* One layer: the slots it carries are (re)written in (stage). */
static int scan_layer(size_t idx, const char *blob, const char *media_type, const char *stage,
		      int have[N_SLOTS], vb_error *err)
{
	int want = media_filter(media_type);
	char mt[128];
	vb_term_copy(mt, sizeof(mt), media_type, 0); /* from a registry: shown safely */
	if (want == -2)
		return vb_error_set(err, VB_E_USAGE, "layer %zu has media type '%s', not a tar layer",
				    idx + 1, mt);
	struct archive *a = archive_read_new();
	if (!a)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	int rc = 0, r;
	struct archive_entry *e;
	if (archive_read_open_filename(a, blob, 1 << 16) != ARCHIVE_OK) {
		rc = vb_error_set(err, VB_E_USAGE, "layer %zu (%s): %s", idx + 1, blob,
				  archive_error_string(a));
		goto done;
	}
	for (size_t nth = 0; (r = archive_read_next_header(a, &e)) == ARCHIVE_OK; nth++) {
		if (nth == 0 && want >= 0 && archive_filter_code(a, 0) != want) {
			rc = vb_error_set(err, VB_E_USAGE,
					  "layer %zu: its media type says %s, its bytes are %s",
					  idx + 1, mt, archive_filter_name(a, 0));
			goto done;
		}
		if ((uint64_t)archive_filter_bytes(a, 0) > VB_GUESTIMG_MAX_LAYER_DATA ||
		    (uint64_t)archive_entry_size(e) > VB_GUESTIMG_MAX_LAYER_DATA) {
			rc = vb_error_set(err, VB_E_USAGE, "layer %zu holds more than %llu GiB",
					  idx + 1,
					  (unsigned long long)(VB_GUESTIMG_MAX_LAYER_DATA >> 30));
			goto done;
		}
		const char *name = root_name(archive_entry_pathname(e));
		if (!name)
			continue;
		int whiteout = !strncmp(name, ".wh.", 4);
		for (size_t s = 0; s < N_SLOTS; s++) {
			if (strcmp(whiteout ? name + 4 : name, slots[s].name))
				continue;
			_cleanup_free_ char *path = vb_strfmt("%s/%zu", stage, s);
			if (!path) {
				rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
				goto done;
			}
			if (whiteout) {
				unlink(path);
				have[s] = 0;
				break;
			}
			if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e)) {
				rc = vb_error_set(err, VB_E_USAGE,
						  "layer %zu: /%s is not a regular file (a link or "
						  "a directory is not followed)",
						  idx + 1, name);
				goto done;
			}
			_cleanup_free_ char *what = vb_strfmt("layer %zu: /%s", idx + 1, name);
			if (!what) {
				rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
				goto done;
			}
			uint64_t max = slots[s].kind == KERNEL ? VB_GUESTIMG_MAX_KERNEL
							       : VB_GUESTIMG_MAX_INITRAMFS;
			if ((rc = copy_member(a, e, path, max, what, err)) < 0)
				goto done;
			have[s] = 1;
			break;
		}
	}
	if (r != ARCHIVE_EOF)
		rc = vb_error_set(err, VB_E_USAGE, "layer %zu (%s) is not a readable tar: %s",
				  idx + 1, blob, archive_error_string(a));
done:
	archive_read_free(a);
	return rc;
}

/* The initramfs must read as a cpio archive to its end (compressed as the
 * kernel's own unpacker allows, if libarchive knows the compression). */
static int check_initramfs(const char *path, const char *shown, vb_error *err)
{
	struct archive *a = archive_read_new();
	if (!a)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	support_filters(a);
	archive_read_support_format_cpio(a);
	struct archive_entry *e;
	int r = archive_read_open_filename(a, path, 1 << 16);
	size_t n = 0;
	while (r == ARCHIVE_OK && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		int f = archive_format(a); /* the kernel reads "newc" only */
		if (f != ARCHIVE_FORMAT_CPIO_SVR4_NOCRC && f != ARCHIVE_FORMAT_CPIO_SVR4_CRC) {
			r = ARCHIVE_FATAL;
			archive_set_error(a, EINVAL, "not the \"newc\" cpio format the kernel reads");
			break;
		}
		n++;
	}
	int rc = 0;
	const char *why = r != ARCHIVE_EOF ? archive_error_string(a) : "it is empty";
	if (r != ARCHIVE_EOF || n == 0)
		rc = vb_error_set(err, VB_E_USAGE, "the guest image's initramfs /%s is not a cpio "
				  "archive VoidBox can read%s%s", shown, why ? ": " : "",
				  why ? why : "");
	archive_read_free(a);
	return rc;
}

/* The initramfs at (path) as the kernel will get it: left as it is when
 * plain cpio or compressed in a way the kernel is known to unpack (rd);
 * else decompressed here into (plain), so the kernel needs no decompressor
 * (a kernel that cannot unpack the guest's archive would boot VoidBox's
 * agent without the guest image's files).  Sets (*use) to the file to
 * install. */
static int kernel_readable(const char *path, const char *plain, unsigned rd, const char **use,
			   vb_error *err)
{
	*use = path;
	unsigned char head[6] = { 0 };
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || vb_read_full(fd, head, sizeof(head)) < 0)
		return vb_error_errno(err, errno, "cannot read %s", path);
	size_t f = N_RD;
	for (size_t i = 0; i < N_RD && f == N_RD; i++)
		if (!memcmp(head, rd_formats[i].magic, rd_formats[i].magic_len))
			f = i;
	if (f == N_RD || (rd & (1u << f)))
		return 0;
	struct archive *a = archive_read_new();
	if (!a)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	support_filters(a);
	archive_read_support_format_raw(a);
	struct archive_entry *e;
	int rc = 0;
	if (lseek(fd, 0, SEEK_SET) != 0 || archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK) {
		rc = vb_error_set(err, VB_E_USAGE, "cannot decompress the guest image's initramfs: %s",
				  archive_error_string(a));
	} else {
		archive_entry_set_size(e, 0); /* copy_member()'s bound is the data's */
		rc = copy_member(a, e, plain, VB_GUESTIMG_MAX_INITRAMFS,
				 "the guest image's initramfs (decompressed)", err);
	}
	archive_read_free(a);
	if (rc == 0)
		*use = plain;
	return rc;
}

static char *cached(const char *cache_dir, const char *name)
{
	return vb_strfmt("%s/%s", cache_dir, name);
}

/* The cache dir was completed earlier by the same checks. */
static int reusable(const char *cache_dir)
{
	_cleanup_free_ char *marker = cached(cache_dir, MARKER_NAME);
	_cleanup_free_ char *k = cached(cache_dir, "vmlinuz");
	_cleanup_free_ char *i = cached(cache_dir, "initramfs");
	if (!marker || !k || !i)
		return 0;
	vb_error e = { 0 };
	size_t len;
	_cleanup_free_ char *text = vb_read_file(marker, 64, &len, &e);
	return text && len == strlen(MARKER_TEXT) && !memcmp(text, MARKER_TEXT, len) &&
	       access(k, R_OK) == 0 && access(i, R_OK) == 0;
}

static int install(const char *stage, const char *cache_dir, const char *ks, const char *is,
		   vb_error *err)
{
	_cleanup_free_ char *ms = vb_strfmt("%s/marker", stage);
	_cleanup_free_ char *kd = cached(cache_dir, "vmlinuz");
	_cleanup_free_ char *id = cached(cache_dir, "initramfs");
	_cleanup_free_ char *md = cached(cache_dir, MARKER_NAME);
	if (!ms || !kd || !id || !md)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	_cleanup_close_ int fd = open(ms, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || vb_write_full(fd, MARKER_TEXT, strlen(MARKER_TEXT)) < 0)
		return vb_error_errno(err, errno, "cannot write %s", ms);
	/* an older marker off, the files, the marker last: a crash or a failure
	 * in between leaves no marker, and the next prepare starts over */
	if ((unlink(md) < 0 && errno != ENOENT) || rename(ks, kd) < 0 || rename(is, id) < 0 ||
	    rename(ms, md) < 0)
		return vb_error_errno(err, errno, "cannot install the guest image in %s", cache_dir);
	return 0;
}

int vb_guestimg_prepare(const char *const *layer_paths, const char *const *media_types, size_t n,
			const char *cache_dir, char **kernel, char **initramfs, vb_error *err)
{
	*kernel = *initramfs = NULL;
	if (!cache_dir || !cache_dir[0])
		return vb_error_set(err, VB_E_USAGE, "no cache directory for the guest image");
	if (vb_mkdir_p(cache_dir, 0700, err) < 0)
		return -1;
	if (!reusable(cache_dir)) {
		if (n == 0)
			return vb_error_set(err, VB_E_USAGE, "the guest image has no layers");
		_cleanup_free_ char *stage = vb_strfmt("%s/.staging-XXXXXX", cache_dir);
		if (!stage)
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		if (!mkdtemp(stage))
			return vb_error_errno(err, errno, "cannot create a staging dir in %s",
					      cache_dir);
		int have[N_SLOTS] = { 0 }, rc = 0;
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = scan_layer(i, layer_paths[i], media_types ? media_types[i] : NULL, stage,
					have, err);
		size_t pick[2] = { N_SLOTS, N_SLOTS };
		for (size_t s = N_SLOTS; s-- > 0;)
			if (have[s])
				pick[slots[s].kind] = s;
		if (rc == 0 && pick[KERNEL] == N_SLOTS)
			rc = vb_error_set(err, VB_E_USAGE,
					  "the guest image has no kernel (a regular file /vmlinuz, "
					  "/vmlinux or /bzImage in a layer)");
		if (rc == 0 && pick[INITRAMFS] == N_SLOTS)
			rc = vb_error_set(err, VB_E_USAGE,
					  "the guest image has no initramfs (a regular file "
					  "/rootfs.cpio.gz, /initramfs.cpio.gz, /rootfs.cpio or "
					  "/initramfs.cpio in a layer)");
		_cleanup_free_ char *kpath = rc ? NULL : vb_strfmt("%s/%zu", stage, pick[KERNEL]);
		_cleanup_free_ char *ipath = rc ? NULL : vb_strfmt("%s/%zu", stage, pick[INITRAMFS]);
		if (rc == 0 && (!kpath || !ipath))
			rc = vb_error_set(err, VB_E_RUNTIME, "out of memory");
		_cleanup_free_ char *kshown = rc ? NULL : vb_strfmt("/%s", slots[pick[KERNEL]].name);
		unsigned rd = 0;
		if (rc == 0 && check_kernel(kpath, kshown ? kshown : "", 0, &rd, err) < 0) {
			vb_error_prefix(err, "the guest image");
			rc = -1;
		}
		if (rc == 0)
			rc = check_initramfs(ipath, slots[pick[INITRAMFS]].name, err);
		_cleanup_free_ char *plain = rc ? NULL : vb_strfmt("%s/plain", stage);
		const char *use = ipath;
		if (rc == 0 && (!plain || kernel_readable(ipath, plain, rd, &use, err) < 0))
			rc = plain ? -1 : vb_error_set(err, VB_E_RUNTIME, "out of memory");
		if (rc == 0)
			rc = install(stage, cache_dir, kpath, use, err);
		vb_rm_rf(stage);
		if (rc < 0)
			return -1;
	}
	*kernel = cached(cache_dir, "vmlinuz");
	*initramfs = cached(cache_dir, "initramfs");
	if (!*kernel || !*initramfs) {
		free(*kernel);
		free(*initramfs);
		*kernel = *initramfs = NULL;
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	}
	return 0;
}
