/* SPDX-License-Identifier: Apache-2.0 */
#include <pthread.h>

#include "util/curl.h"
#include "voidbox/voidbox.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int vb_curl_global(vb_error *err)
{
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return vb_error_set(err, VB_E_RUNTIME, "cannot initialise libcurl");
	return 0;
}

CURL *vb_curl_easy(vb_error *err)
{
	CURL *c = vb_curl_global(err) == 0 ? curl_easy_init() : NULL;
	if (!c) {
		vb_error_set(err, VB_E_RUNTIME, "cannot initialise libcurl");
		return NULL;
	}
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "voidbox/" VOIDBOX_VERSION);
	return c;
}

void vb_curl_download_defaults(CURL *c)
{
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
}
