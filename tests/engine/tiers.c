/* Tiers: several regions with their own parameters in one process, each
 * with its own budget and counters, accessed in an interleaved loop. Costs
 * are checked by counters and lower bounds only (a busy machine can make
 * faults slower than configured on average, never faster). */
#define _GNU_SOURCE
#include "helpers.h"


static const size_t PS = 4096;

static struct dime_region *tier(uint64_t latency_ns, uint64_t bps, size_t pages, size_t local)
{
	struct dime_params p;
	dime_params_init(&p);
	p.size = pages * PS;
	p.local_npages = local;
	p.latency_ns = latency_ns;
	p.bandwidth_bps = bps;
	struct dime_region *r;
	cr_assert_eq(dime_region_create(&p, &r), 0);
	return r;
}

Test(tiers, each_tier_charges_its_own_fetch_time_and_keeps_its_own_counts)
{
	enum { PAGES = 48, NEAR_LOCAL = 8, FAR_LOCAL = 16, PASSES = 3 };
	struct dime_params far_p;
	dime_params_init(&far_p);
	far_p.latency_ns = 60000;
	far_p.bandwidth_bps = 1000000000;
	uint64_t far_fetch = dime_fetch_ns(&far_p, PS);
	struct dime_region *near = tier(0, 100000000000ull, PAGES, NEAR_LOCAL);
	struct dime_region *far = tier(far_p.latency_ns, far_p.bandwidth_bps, PAGES, FAR_LOCAL);
	volatile unsigned char *n = dime_region_base(near), *f = dime_region_base(far);
	for (size_t i = 0; i < PAGES; i++) {
		n[i * PS] = (unsigned char)i;
		f[i * PS] = (unsigned char)(i ^ 0x5a);
	}
	uint64_t near_min = UINT64_MAX, far_min = UINT64_MAX, far_sum = 0;
	for (int pass = 0; pass < PASSES; pass++)
		for (size_t i = 0; i < PAGES; i++) {
			uint64_t t0 = test_now_ns();
			cr_assert_eq(n[i * PS], (unsigned char)i);
			uint64_t t1 = test_now_ns();
			cr_assert_eq(f[i * PS], (unsigned char)(i ^ 0x5a));
			uint64_t t2 = test_now_ns();
			near_min = t1 - t0 < near_min ? t1 - t0 : near_min;
			far_min = t2 - t1 < far_min ? t2 - t1 : far_min;
			far_sum += t2 - t1;
		}
	struct dime_stats ns, fs;
	dime_region_stats(near, &ns);
	dime_region_stats(far, &fs);
	/* A cyclic sweep over more pages than the budget faults on every
	 * access under FIFO, in each tier by its own budget. */
	cr_expect_eq(ns.remote_faults, (uint64_t)PAGES * PASSES);
	cr_expect_eq(fs.remote_faults, (uint64_t)PAGES * PASSES);
	cr_expect_eq(ns.first_touch_faults, PAGES);
	cr_expect_eq(fs.first_touch_faults, PAGES);
	cr_expect_leq(ns.local_pages_peak, NEAR_LOCAL + NEAR_LOCAL / 4);
	cr_expect_leq(fs.local_pages_peak, FAR_LOCAL + FAR_LOCAL / 4);
	cr_expect_gt(fs.local_pages_peak, NEAR_LOCAL + NEAR_LOCAL / 4,
		     "the far tier's larger budget is its own");
	/* The far accesses took their fetch time on average (2% for the
	 * calibration; a single fault may be shorter while it pays back an
	 * earlier one's overrun, the delay debt); the far tier's
	 * busy-waiting dwarfs the near one's, which has (almost) nothing to
	 * inject. */
	uint64_t far_mean = far_sum / (PAGES * PASSES);
	cr_expect_geq(far_mean, far_fetch * 98 / 100, "mean far access %lu ns, fetch %lu ns",
		      far_mean, far_fetch);
	cr_expect_gt(fs.injected_delay_ns, ns.injected_delay_ns + PAGES * PASSES * far_fetch / 2);
	cr_expect_lt(near_min, far_min, "near %lu ns, far %lu ns", near_min, far_min);
	dime_region_destroy(near);
	dime_region_destroy(far);
}
