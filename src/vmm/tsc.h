/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's TSC frequency, which is the guest's under TCG (QEMU's TCG
 * reads the host's TSC for the guest's RDTSC), so that the guest kernel
 * need not calibrate it against the PIT (vmm_qemu.c says why).
 */
#ifndef VB_VMM_TSC_H
#define VB_VMM_TSC_H

/* In kHz, measured once per process (about 20 ms, the first call only);
 * 0 when unknown: not an x86-64 host, or its TSC does not tick at a
 * constant rate (no constant_tsc in /proc/cpuinfo). */
unsigned vb_host_tsc_khz(void);

#endif
