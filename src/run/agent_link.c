/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An agent that runs inside the VM (codex) reaches the stage's LLM gateway
 * through a loopback forward.  The forward is part of the VM's config,
 * so it exists before the gateway does (and after it is gone): the link
 * between them refuses connections outside the agent's run.
 */
#include <unistd.h>

#include "llm/llm.h"
#include "run/engine.h"

int vb_run_agent_accept(void *opaque, int fd)
{
	struct vb_run_agent_link *l = opaque;
	int rc = -1;
	pthread_mutex_lock(&l->mu);
	if (l->gw) {
		/* serve_fd hands the connection to the gateway's server and
		 * returns: holding the lock keeps the gateway alive meanwhile */
		vb_error err = { 0 };
		rc = vb_llm_gateway_serve_fd(l->gw, fd, &err) < 0 ? -1 : 0;
		fd = -1; /* taken even on error */
	}
	pthread_mutex_unlock(&l->mu);
	if (fd >= 0)
		close(fd);
	return rc;
}

void vb_run_agent_link_set(struct vb_run_agent_link *l, struct vb_llm_gateway *gw)
{
	pthread_mutex_lock(&l->mu);
	l->gw = gw;
	pthread_mutex_unlock(&l->mu);
}
