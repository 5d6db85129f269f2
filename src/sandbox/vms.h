/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The live VMs of this user, of every kind (voidbox exec, shell, a run's
 * stages, a library caller's): each VM's runtime directory holds an
 * info.json written at boot, and the directory's name carries the pid of
 * the process that owns the VM.  For `voidbox ps` and `voidbox stop`.
 */
#ifndef VB_SANDBOX_VMS_H
#define VB_SANDBOX_VMS_H

#include <stddef.h>
#include <stdint.h>

#include "voidbox/error.h"

struct vb_vm_live {
	char vm_id[32];      /* "vm-" and 12 hex digits; it, accel, isolation: [a-z0-9-] only */
	char name[72];       /* the sandbox config's name, "" if none (not terminal-safe) */
	char accel[16];      /* "kvm", "tcg" */
	char isolation[16];  /* "hardware", "emulated" */
	char snapshot[16];   /* restored from: 12 hex digits of the snapshot's id, or "" */
	char command[256];   /* the owner's command line, as written (not terminal-safe) */
	long pid;            /* the owning process: it tears the VM down */
	long long pid_start; /* its start time (clock ticks since boot), -1 if unknown */
	long vmm_pid;        /* the VMM (QEMU) process */
	int64_t started_ms;  /* wall clock, ms since the epoch */
	int has_net;         /* the VM has a network: the counters below, as of the last second */
	uint64_t net_bytes_out, net_bytes_in, net_connections, net_denied;
};

/* The VMs in this user's runtime root whose owner is alive, oldest first,
 * as a malloc'd array (free() it); none is an empty list.  Directories of
 * dead owners and VMs still writing their info are skipped; nothing is
 * changed on disk.  Reads only each VM's small info.json. */
int vb_vms_live(struct vb_vm_live **vms, size_t *n, vb_error *err);

#endif
