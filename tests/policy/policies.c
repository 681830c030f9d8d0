/* The built-in replacement policies on access patterns whose fault counts
 * are known. Counts, never times. */
#include "helpers.h"

#include <string.h>

static const size_t PS = 4096;

static struct dime_region *policy_region(const char *policy, size_t pages, uint64_t local,
					 enum dime_mode mode)
{
	struct dime_params p;
	dime_params_init(&p);
	p.size = pages * PS;
	p.local_npages = local;
	p.latency_ns = 0;
	p.bandwidth_bps = UINT64_MAX / 2;
	p.mode = mode;
	strcpy(p.policy, policy);
	struct dime_region *r = NULL;
	int err = dime_region_create(&p, &r);
	cr_assert_eq(err, 0, "dime_region_create(%s): %s", policy, dime_strerror(err));
	return r;
}

/* A cyclic sweep over 2N pages with N local: the page touched next is
 * always the one that left longest ago, so under FIFO and CLOCK (whose
 * reference bits are all cleared before any page returns) every access
 * after the first pass is a remote fault, and no observed page is touched
 * before it leaves (no soft faults). */
static void cyclic_sweep(const char *policy, enum dime_mode mode)
{
	const size_t n = 64, pages = 2 * n, passes = 5;
	struct dime_region *r = policy_region(policy, pages, n, mode);
	volatile char *m = dime_region_base(r);
	for (size_t pass = 0; pass < passes; pass++)
		for (size_t i = 0; i < pages; i++)
			m[i * PS] = (char)(pass + i);
	struct dime_stats s;
	dime_region_stats(r, &s);
	cr_expect_eq(s.first_touch_faults, pages, "%s", policy);
	cr_expect_eq(s.remote_faults, (passes - 1) * pages, "%s: %ju remote", policy, (uintmax_t)s.remote_faults);
	cr_expect_eq(s.soft_faults, 0, "%s: %ju soft", policy, (uintmax_t)s.soft_faults);
	cr_expect_eq(s.evictions, passes * pages - n, "%s: %ju evictions", policy, (uintmax_t)s.evictions);
	cr_expect_eq(s.local_pages, n, "%s", policy);
	for (size_t i = 0; i < pages; i++)
		cr_expect_eq(m[i * PS], (char)(passes - 1 + i), "%s page %zu", policy, i);
	dime_region_destroy(r);
}

Test(policies, fifo_cyclic_sweep_faults_every_access) { cyclic_sweep("fifo", DIME_MODE_THREAD); }
Test(policies, clock_cyclic_sweep_faults_every_access) { cyclic_sweep("clock", DIME_MODE_THREAD); }
Test(policies, clock_cyclic_sweep_faults_every_access_signal) { cyclic_sweep("clock", DIME_MODE_SIGNAL); }
