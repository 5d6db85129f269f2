/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Budgets (src/llm/budget.c): the check that refuses the request that
 * would cross a limit, with its wording, and the run's shared budget under
 * threads taking and settling at once (a fan-out of stages).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <string.h>

#include "llm/llm.h"

static void test_allows(void **state)
{
	(void)state;
	char why[256];
	struct vb_llm_budget none = { 0 };
	assert_true(vb_llm_budget_allows(&none, "", 1000000, 1u << 30, 1e6, 1u << 30, 1e6, why,
					 sizeof(why)));
	struct vb_llm_budget req = { .max_requests = 2 };
	assert_true(vb_llm_budget_allows(&req, "", 1, 0, 0, 0, 0, why, sizeof(why)));
	assert_false(vb_llm_budget_allows(&req, "", 2, 0, 0, 0, 0, why, sizeof(why)));
	assert_string_equal(why, "budget exceeded (max_requests 2: 2 made)");
	assert_false(vb_llm_budget_allows(&req, "run budget ", 2, 0, 0, 0, 0, why, sizeof(why)));
	assert_string_equal(why, "budget exceeded (run budget max_requests 2: 2 made)");
	/* tokens: spent plus this request's estimate; reaching it exactly is fine */
	struct vb_llm_budget tok = { .max_tokens = 100 };
	assert_true(vb_llm_budget_allows(&tok, "", 0, 60, 0, 40, 0, why, sizeof(why)));
	assert_false(vb_llm_budget_allows(&tok, "", 0, 60, 0, 41, 0, why, sizeof(why)));
	assert_string_equal(why,
			    "budget exceeded (max_tokens 100: 60 used, this request needs ~41 more)");
	struct vb_llm_budget cost = { .max_cost_usd = 0.5 };
	assert_true(vb_llm_budget_allows(&cost, "", 0, 0, 0.25, 0, 0.25, why, sizeof(why)));
	assert_false(vb_llm_budget_allows(&cost, "run budget ", 0, 0, 0.4, 0, 0.2, why,
					  sizeof(why)));
	assert_string_equal(why, "budget exceeded (run budget max_cost_usd 0.5000: $0.4000 spent, "
				 "this request needs ~$0.2000 more)");
}

static void test_shared_reserves_in_flight(void **state)
{
	(void)state;
	char why[256];
	struct vb_llm_budget b = { .max_tokens = 100 };
	struct vb_llm_shared_budget *sb = vb_llm_shared_budget_new(&b);
	assert_non_null(sb);
	/* two in flight at once: the second sees the first's estimate */
	assert_true(vb_llm_shared_budget_take(sb, 60, 0, why, sizeof(why)));
	assert_false(vb_llm_shared_budget_take(sb, 60, 0, why, sizeof(why)));
	assert_non_null(strstr(why, "run budget max_tokens 100: 60 used"));
	/* the first took less than estimated: room again */
	vb_llm_shared_budget_settle(sb, 60, 0, 20, 10, 0);
	assert_true(vb_llm_shared_budget_take(sb, 60, 0, why, sizeof(why)));
	/* a request that failed before an answer gives its estimate back */
	vb_llm_shared_budget_settle(sb, 60, 0, 0, 0, 0);
	struct vb_llm_totals t;
	vb_llm_shared_budget_totals(sb, &t);
	assert_int_equal(t.requests, 2);
	assert_int_equal(t.refused, 1);
	assert_int_equal(t.input_tokens, 20);
	assert_int_equal(t.output_tokens, 10);
	vb_llm_shared_budget_free(sb);
	vb_llm_shared_budget_free(NULL);
}

struct worker {
	struct vb_llm_shared_budget *sb;
	int admitted;
};

static void *spend(void *opaque)
{
	struct worker *w = opaque;
	char why[256];
	for (int i = 0; i < 2000; i++)
		if (vb_llm_shared_budget_take(w->sb, 3, 0.001, why, sizeof(why))) {
			w->admitted++;
			vb_llm_shared_budget_settle(w->sb, 3, 0.001, 2, 1, 0.001);
		}
	return NULL;
}

/* Eight stages at once: the sum never passes the limit, and the totals are
 * exact. */
static void test_shared_under_threads(void **state)
{
	(void)state;
	struct vb_llm_budget b = { .max_requests = 777 };
	struct vb_llm_shared_budget *sb = vb_llm_shared_budget_new(&b);
	struct worker w[8];
	pthread_t th[8];
	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){ .sb = sb };
		assert_int_equal(pthread_create(&th[i], NULL, spend, &w[i]), 0);
	}
	int sum = 0;
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		sum += w[i].admitted;
	}
	assert_int_equal(sum, 777);
	struct vb_llm_totals t;
	vb_llm_shared_budget_totals(sb, &t);
	assert_int_equal(t.requests, 777);
	assert_int_equal(t.input_tokens, 2 * 777);
	assert_int_equal(t.output_tokens, 777);
	assert_int_equal(t.refused, 8 * 2000 - 777);
	vb_llm_shared_budget_free(sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allows),
		cmocka_unit_test(test_shared_reserves_in_flight),
		cmocka_unit_test(test_shared_under_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
