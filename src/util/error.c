/* SPDX-License-Identifier: Apache-2.0 */
#include "voidbox/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int vb_error_set(vb_error *err, enum vb_error_kind kind, const char *fmt, ...)
{
	if (!err)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	err->kind = kind;
	return -1;
}

int vb_error_errno(vb_error *err, int errnum, const char *fmt, ...)
{
	if (!err)
		return -1;
	char head[sizeof(err->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	snprintf(err->msg, sizeof(err->msg), "%.700s: %s", head, strerror(errnum));
	err->kind = VB_E_RUNTIME;
	return -1;
}

void vb_error_prefix(vb_error *err, const char *fmt, ...)
{
	if (!err)
		return;
	char head[256], old[sizeof(err->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s: %.760s", head, old);
}

void vb_error_clear(vb_error *err)
{
	if (err) {
		err->kind = VB_E_OK;
		err->msg[0] = '\0';
	}
}
