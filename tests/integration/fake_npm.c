/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A test-only stand-in for an npm registry (tests/integration/
 * test_agentbin.sh): serves the files under DIR on 127.0.0.1, the URL
 * unescaped as a registry client escapes it ("@scope%2fname/VERSION" is
 * the file DIR/@scope/name/VERSION), and appends "GET URL" to LOG for
 * every request, so a test can tell what was fetched.  Prints the port on
 * stdout, then serves until SIGTERM.
 *
 *   fake_npm DIR LOG
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *root, *logpath;

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **state)
{
	(void)cls;
	(void)version;
	(void)upload;
	(void)upload_len;
	(void)state;
	FILE *log = fopen(logpath, "a");
	if (log) {
		fprintf(log, "%s %s\n", method, url);
		fclose(log);
	}
	char path[4096];
	int fd = -1;
	struct stat st;
	if (!strstr(url, "..") && snprintf(path, sizeof(path), "%s%s", root, url) < (int)sizeof(path))
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -1;
	}
	struct MHD_Response *r;
	unsigned status = MHD_HTTP_OK;
	if (fd >= 0) {
		r = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
	} else {
		static const char nf[] = "{\"error\":\"Not found\"}";
		r = MHD_create_response_from_buffer(sizeof(nf) - 1, (void *)(uintptr_t)nf,
						    MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_NOT_FOUND;
	}
	enum MHD_Result rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fputs("usage: fake_npm DIR LOG\n", stderr);
		return 2;
	}
	root = argv[1];
	logpath = argv[2];
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct MHD_Daemon *d =
		MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
				 answer, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				 MHD_OPTION_END);
	if (!d) {
		fputs("fake_npm: cannot start\n", stderr);
		return 1;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	printf("%u\n", info ? info->port : 0);
	fflush(stdout);
	int sig;
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	return 0;
}
