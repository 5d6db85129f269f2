/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libvoidbox: every agent stage in its own micro-VM.
 *
 *     VoidBox = Agent(Skills) + Isolation
 *
 * This umbrella header pulls in the whole public API.
 */
#ifndef VOIDBOX_VOIDBOX_H
#define VOIDBOX_VOIDBOX_H

#define VOIDBOX_VERSION "0.1.0"

#include "voidbox/error.h"
#include "voidbox/sandbox.h"
#include "voidbox/run.h"

#endif
