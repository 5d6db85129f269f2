/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Errors in libvoidbox: every fallible function returns a negative int (or
 * NULL) and fills the vb_error passed last.  Callers may add context with
 * vb_error_prefix(); the CLI prints the message once and maps the kind to an
 * exit code.  Library code never exits and never prints.
 */
#ifndef VOIDBOX_ERROR_H
#define VOIDBOX_ERROR_H

#include <stddef.h>

enum vb_error_kind {
	VB_E_OK = 0,
	VB_E_RUNTIME,   /* VoidBox itself failed (exit 125) */
	VB_E_USAGE,     /* bad arguments or spec (exit 2) */
	VB_E_NOTFOUND,  /* program not found in the guest (exit 127) */
	VB_E_NOEXEC,    /* program not executable or refused by policy (exit 126) */
	VB_E_TIMEOUT,   /* a deadline passed (exit 124) */
	VB_E_VMDIED,    /* the VM stopped unexpectedly (exit 125) */
	VB_E_CANCELLED, /* interrupted by a signal (exit 130) */
};

typedef struct vb_error {
	enum vb_error_kind kind;
	char msg[1024];
} vb_error;

/* Set (err) (which may be NULL) and return -1. printf-style. */
int vb_error_set(vb_error *err, enum vb_error_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Like vb_error_set, appending ": strerror(errnum)". */
int vb_error_errno(vb_error *err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prepend "context: " to the message already in (err). */
void vb_error_prefix(vb_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vb_error_clear(vb_error *err);

#endif
