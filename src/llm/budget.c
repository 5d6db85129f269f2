/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Budgets: the check every gateway makes before forwarding a model request,
 * and the run's budget that all the stages' gateways share (`voidbox run
 * --budget`, docs/agents.md "Budgets").
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "llm/llm.h"

struct vb_llm_shared_budget {
	pthread_mutex_t lock; /* everything below */
	struct vb_llm_budget limits;
	struct vb_llm_totals totals;
	/* the estimates of requests admitted and not answered yet: parallel
	 * stages must not each see room for the same tokens */
	uint64_t pending_tokens;
	double pending_cost;
};

bool vb_llm_budget_allows(const struct vb_llm_budget *b, const char *prefix, uint64_t requests,
			  uint64_t tokens, double cost, uint64_t need_tokens, double need_cost,
			  char *why, size_t n)
{
	if (b->max_requests && requests + 1 > b->max_requests) {
		snprintf(why, n, "budget exceeded (%smax_requests %llu: %llu made)", prefix,
			 (unsigned long long)b->max_requests, (unsigned long long)requests);
		return false;
	}
	if (b->max_tokens && tokens + need_tokens > b->max_tokens) {
		snprintf(why, n,
			 "budget exceeded (%smax_tokens %llu: %llu used, this request needs ~%llu "
			 "more)",
			 prefix, (unsigned long long)b->max_tokens, (unsigned long long)tokens,
			 (unsigned long long)need_tokens);
		return false;
	}
	if (b->max_cost_usd > 0 && cost + need_cost > b->max_cost_usd) {
		snprintf(why, n,
			 "budget exceeded (%smax_cost_usd %.4f: $%.4f spent, this request needs "
			 "~$%.4f more)",
			 prefix, b->max_cost_usd, cost, need_cost);
		return false;
	}
	return true;
}

struct vb_llm_shared_budget *vb_llm_shared_budget_new(const struct vb_llm_budget *limits)
{
	struct vb_llm_shared_budget *sb = calloc(1, sizeof(*sb));
	if (!sb)
		return NULL;
	pthread_mutex_init(&sb->lock, NULL);
	sb->limits = *limits;
	return sb;
}

void vb_llm_shared_budget_free(struct vb_llm_shared_budget *sb)
{
	if (!sb)
		return;
	pthread_mutex_destroy(&sb->lock);
	free(sb);
}

void vb_llm_shared_budget_totals(struct vb_llm_shared_budget *sb, struct vb_llm_totals *out)
{
	pthread_mutex_lock(&sb->lock);
	*out = sb->totals;
	pthread_mutex_unlock(&sb->lock);
}

bool vb_llm_shared_budget_take(struct vb_llm_shared_budget *sb, uint64_t need_tokens,
			       double need_cost, char *why, size_t n)
{
	pthread_mutex_lock(&sb->lock);
	struct vb_llm_totals *t = &sb->totals;
	bool ok = vb_llm_budget_allows(&sb->limits, "run budget ", t->requests,
				       t->input_tokens + t->output_tokens + sb->pending_tokens,
				       t->cost_usd + sb->pending_cost, need_tokens, need_cost, why,
				       n);
	if (ok) {
		t->requests++;
		sb->pending_tokens += need_tokens;
		sb->pending_cost += need_cost;
	} else {
		t->refused++;
	}
	pthread_mutex_unlock(&sb->lock);
	return ok;
}

void vb_llm_shared_budget_settle(struct vb_llm_shared_budget *sb, uint64_t need_tokens,
				 double need_cost, uint64_t in, uint64_t out, double cost)
{
	pthread_mutex_lock(&sb->lock);
	sb->pending_tokens -= need_tokens < sb->pending_tokens ? need_tokens : sb->pending_tokens;
	sb->pending_cost -= need_cost;
	if (sb->pending_cost < 1e-12)
		sb->pending_cost = 0;
	sb->totals.input_tokens += in;
	sb->totals.output_tokens += out;
	sb->totals.cost_usd += cost;
	pthread_mutex_unlock(&sb->lock);
}
