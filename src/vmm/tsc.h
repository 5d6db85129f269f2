/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's TSC frequency, which is the guest's under TCG (QEMU's TCG
 * reads the host's TSC for the guest's RDTSC), so that the guest kernel
 * need not calibrate it against the PIT (vmm_qemu.c says why).
 */
#ifndef VB_VMM_TSC_H
#define VB_VMM_TSC_H

/* In kHz, measured once per process (20 ms, up to 3 times if preempted;
 * the first call only); 0 when unknown: not an x86-64 host, a TSC that does
 * not tick at a constant rate (no constant_tsc in /proc/cpuinfo), or no
 * measurement trustworthy to 0.1%. */
unsigned vb_host_tsc_khz(void);

#endif
