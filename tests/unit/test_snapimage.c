/* SPDX-License-Identifier: Apache-2.0 */
/* Snapshots of VMs with an image root and disks (src/sandbox/snapimage.c):
 * the devices part of the configuration text and the checks a restore
 * makes on it.  No VM: files stand in for the disks. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "sandbox/sandbox_int.h"
#include "util/util.h"

static char tmp[64], root[128], disk[128];

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/vb-test-snapimage.XXXXXX");
	if (!mkdtemp(tmp))
		return -1;
	snprintf(root, sizeof(root), "%s/root.ext4", tmp);
	snprintf(disk, sizeof(disk), "%s/skill.ext4", tmp);
	put(root, "root");
	put(disk, "disk");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vb_rm_rf(tmp);
	return 0;
}

static void devices(const struct vb_sandbox_config *cfg, char *buf, size_t len)
{
	vb_error err = { 0 };
	assert_int_equal(vb_sandbox_snap_devices(cfg, buf, len, &err), 0);
}

/* the value of " key=" in (text) */
static void word(const char *text, const char *key, char *out, size_t len)
{
	char pat[24];
	snprintf(pat, sizeof(pat), " %s=", key);
	const char *p = strstr(text, pat);
	assert_non_null(p);
	p += strlen(pat);
	snprintf(out, len, "%.*s", (int)strcspn(p, " "), p);
}

static void test_no_disks_unchanged(void **state)
{
	(void)state;
	struct vb_sandbox_config cfg = { 0 };
	char buf[VB_SNAP_CONF_MAX];
	devices(&cfg, buf, sizeof(buf));
	/* what snapshots and warm names were made with before disks */
	assert_string_equal(buf, "devices=ctl,rng,net,9p*4");
	assert_int_equal(vb_sandbox_snap_slots(&cfg), 4);
}

static void test_layout_and_slots(void **state)
{
	(void)state;
	struct vb_sandbox_config cfg = { .rootfs = root, .root_ref = "reg:5000/a/b:v1" };
	char buf[VB_SNAP_CONF_MAX], id[32];
	devices(&cfg, buf, sizeof(buf));
	assert_int_equal(vb_sandbox_snap_slots(&cfg), 3);
	assert_non_null(strstr(buf, "devices=ctl,rng,net,blk*1,9p*3 root="));
	assert_non_null(strstr(buf, " image=reg:5000/a/b:v1"));
	assert_null(strstr(buf, "disks="));
	word(buf, "root", id, sizeof(id));
	assert_int_equal(strlen(id), 16);
	struct vb_disk_mount dm = { .image = disk, .path = "/skill" };
	cfg.disk_mounts = &dm;
	cfg.n_disk_mounts = 1;
	devices(&cfg, buf, sizeof(buf));
	assert_int_equal(vb_sandbox_snap_slots(&cfg), 2);
	assert_non_null(strstr(buf, "devices=ctl,rng,net,blk*2,9p*2 "));
	word(buf, "disks", id, sizeof(id));
	assert_int_equal(strlen(id), 18);
	assert_string_equal(id + 16, ":1");
	/* a disk that is gone: no configuration, so no restore */
	vb_error err = { 0 };
	cfg.rootfs = "/nonexistent/root.ext4";
	assert_int_equal(vb_sandbox_snap_devices(&cfg, buf, sizeof(buf), &err), -1);
	assert_non_null(strstr(err.msg, "root image '/nonexistent/root.ext4'"));
}

static void test_identity(void **state)
{
	(void)state;
	struct vb_sandbox_config cfg = { .rootfs = root, .root_ref = "r:1" };
	char a[VB_SNAP_CONF_MAX], b[VB_SNAP_CONF_MAX], ra[32], rb[32];
	devices(&cfg, a, sizeof(a));
	/* another name of the same file: the same root id */
	cfg.root_ref = "r@sha256:00";
	devices(&cfg, b, sizeof(b));
	word(a, "root", ra, sizeof(ra));
	word(b, "root", rb, sizeof(rb));
	assert_string_equal(ra, rb);
	/* other boot data: another root */
	cfg.root_user = "1000";
	devices(&cfg, b, sizeof(b));
	word(b, "root", rb, sizeof(rb));
	assert_string_not_equal(ra, rb);
	cfg.root_user = NULL;
	/* the file touched (mtime: the ctime's clock is too coarse to tell
	 * two writes in a row apart), or replaced (inode): another root */
	const struct timespec past[2] = { { .tv_sec = 1000000 }, { .tv_sec = 1000000 } };
	assert_int_equal(utimensat(AT_FDCWD, root, past, 0), 0);
	devices(&cfg, b, sizeof(b));
	word(b, "root", rb, sizeof(rb));
	assert_string_not_equal(ra, rb);
	devices(&cfg, a, sizeof(a));
	word(a, "root", ra, sizeof(ra));
	char copy[160];
	snprintf(copy, sizeof(copy), "%s.new", root);
	put(copy, "root");
	assert_int_equal(rename(copy, root), 0);
	devices(&cfg, b, sizeof(b));
	word(b, "root", rb, sizeof(rb));
	assert_string_not_equal(ra, rb);
}

static void test_checks(void **state)
{
	(void)state;
	const char *id = "0123456789abcdef";
	const char *none = "memory=1024 devices=ctl,rng,net,9p*4 vmm=qemu";
	const char *a = "memory=1024 devices=ctl,rng,net,blk*1,9p*3 root=aaaa image=img:a vmm=qemu";
	const char *a2 = "memory=1024 devices=ctl,rng,net,blk*1,9p*3 root=bbbb image=img:a vmm=qemu";
	const char *b = "memory=1024 devices=ctl,rng,net,blk*1,9p*3 root=cccc image=img:b vmm=qemu";
	const char *a_other = "memory=1024 devices=ctl,rng,net,blk*1,9p*3 root=aaaa image=img@x vmm=qemu";
	const char *ad = "memory=1024 devices=ctl,rng,net,blk*2,9p*2 root=aaaa image=img:a "
			 "disks=dddd:1 vmm=qemu";
	char ref[128];
	vb_error err = { 0 };
	assert_int_equal(vb_sandbox_snap_image_check(id, none, none, ref, sizeof(ref), &err), 0);
	assert_string_equal(ref, "");
	assert_int_equal(vb_sandbox_snap_image_check(id, none, a, ref, sizeof(ref), &err), -1);
	assert_int_equal(err.kind, VB_E_USAGE);
	assert_non_null(strstr(err.msg, "was taken without an image root, this VM has image img:a"));
	assert_int_equal(vb_sandbox_snap_image_check(id, a, none, ref, sizeof(ref), &err), -1);
	assert_non_null(strstr(err.msg, "snapshot 0123456789ab was taken on image img:a: restore it"));
	assert_int_equal(vb_sandbox_snap_image_check(id, a, b, ref, sizeof(ref), &err), -1);
	assert_non_null(strstr(err.msg, "was taken on image img:a, not img:b"));
	assert_int_equal(vb_sandbox_snap_image_check(id, a, a2, ref, sizeof(ref), &err), -1);
	assert_non_null(strstr(err.msg, "was taken on another root disk of image img:a"));
	assert_int_equal(vb_sandbox_snap_image_check(id, a, ad, ref, sizeof(ref), &err), -1);
	assert_non_null(strstr(err.msg, "other read-only disks (none; now dddd:1)"));
	/* the same root file by another name: the snapshot's name, to compare */
	assert_int_equal(vb_sandbox_snap_image_check(id, a, a_other, ref, sizeof(ref), &err), 0);
	assert_string_equal(ref, "img:a");
	/* a hostile manifest's image name reaches no terminal raw */
	const char *esc = "memory=1024 devices=ctl,rng,net,blk*1,9p*3 root=eeee image=x\033[2J vmm=q";
	assert_int_equal(vb_sandbox_snap_image_check(id, esc, none, ref, sizeof(ref), &err), -1);
	assert_null(strchr(err.msg, '\033'));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_disks_unchanged),
		cmocka_unit_test_setup_teardown(test_layout_and_slots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
		cmocka_unit_test(test_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
