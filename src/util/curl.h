/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One way to start a libcurl transfer, for every module that talks HTTP
 * (agent binaries, registries, remote skills, the LLM gateway, logins).
 */
#ifndef VB_UTIL_CURL_H
#define VB_UTIL_CURL_H

#include <curl/curl.h>

#include "voidbox/error.h"

/* libcurl initialised once per process (thread-safe); -1 with (err) if it
 * cannot be. */
int vb_curl_global(vb_error *err);

/* A new easy handle, libcurl initialised once per process first (thread-safe):
 * no signals (transfers run on library threads) and VoidBox's User-Agent.
 * NULL with (err) when libcurl cannot start. */
CURL *vb_curl_easy(vb_error *err);

/* For downloads from the web (registries, npm): http and https only, also
 * after a redirect (at most 5 followed), a 30 s connect timeout, and a
 * stalled transfer (under 1 KB/s for a minute) cut off. */
void vb_curl_download_defaults(CURL *c);

#endif
