/* Parameter checking and the fetch-time formula. */
#include "helpers.h"

#include <errno.h>
#include <string.h>

static void expect_bad(struct dime_params *p, const char *key)
{
	const char *bad = NULL;
	cr_expect_eq(dime_params_check(p, &bad), -EINVAL);
	cr_expect_str_eq(bad, key);
	struct dime_region *r = NULL;
	cr_expect_eq(dime_region_create(p, &r), -EINVAL);
	cr_expect_null(r);
}

Test(params, defaults_are_dimes_template)
{
	struct dime_params p;
	dime_params_init(&p);
	cr_expect_eq(p.latency_ns, 2000);
	cr_expect_eq(p.bandwidth_bps, 1000000000);
	cr_expect_eq(p.local_npages, 100000);
	cr_expect_str_eq(p.policy, "fifo");
	cr_expect_eq(dime_params_check(&p, NULL), 0);
}

Test(params, rejects_each_bad_field)
{
	struct dime_params p;
	dime_params_init(&p);
	p.bandwidth_bps = 0;
	expect_bad(&p, "bandwidth_bps");
	dime_params_init(&p);
	p.local_npages = 0;
	expect_bad(&p, "local_npages");
	dime_params_init(&p);
	strcpy(p.policy, "lru-magic");
	expect_bad(&p, "policy");
	dime_params_init(&p);
	p.mode = 7;
	expect_bad(&p, "mode");
	dime_params_init(&p);
	p.first_touch = 9;
	expect_bad(&p, "first_touch");
	dime_params_init(&p);
	p.bandwidth_model = 3;
	expect_bad(&p, "bandwidth_model");
	dime_params_init(&p);
	p.size = 0;
	expect_bad(&p, "size");
	dime_params_init(&p);
	p.latency_ns = UINT64_MAX;
	expect_bad(&p, "latency_ns");
}

Test(params, fetch_time_is_dimes_formula)
{
	struct dime_params p;
	dime_params_init(&p);
	/* 2 * 2000 + 4096 * 8 * 1e9 / 1e9 */
	cr_expect_eq(dime_fetch_ns(&p, 4096), 4000 + 32768);
	p.latency_ns = 10000;
	p.bandwidth_bps = 10000000000ull;
	cr_expect_eq(dime_fetch_ns(&p, 4096), 20000 + 3277);
	p.bandwidth_bps = 1;
	cr_expect_eq(dime_fetch_ns(&p, 4096), 20000 + 32768000000000ull);
}
