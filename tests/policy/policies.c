/* The built-in replacement policies on access patterns whose fault counts
 * are known. Counts, never times. */
#include "helpers.h"

#include <errno.h>
#include <stdbool.h>
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

/* A loop that fits the budget: after the first pass nothing faults, and
 * with no eviction pressure no page is observed either. */
Test(policies, lru_fitting_loop_has_no_faults_after_warm_up)
{
	const size_t pages = 48;
	struct dime_region *r = policy_region("lru", 4 * pages, 64, DIME_MODE_THREAD);
	volatile char *m = dime_region_base(r);
	for (int pass = 0; pass < 20; pass++)
		for (size_t i = 0; i < pages; i++)
			m[i * PS + 5] += 1;
	struct dime_stats s;
	dime_region_stats(r, &s);
	cr_expect_eq(s.first_touch_faults, pages);
	cr_expect_eq(s.remote_faults, 0);
	cr_expect_eq(s.soft_faults, 0);
	cr_expect_eq(s.evictions, 0);
	for (size_t i = 0; i < pages; i++)
		cr_expect_eq(m[i * PS + 5], 20);
	dime_region_destroy(r);
}

/* A hot set of 8 pages touched every round between 4 new cold pages, with
 * 64 local pages. Cold pages are first touches, so remote faults are
 * re-fetches of hot pages. LRU and CLOCK learn (through soft faults) that
 * the hot pages are in use and keep them local after a warm-up; FIFO
 * evicts each of them once per budget's worth of arrivals. Returns the
 * remote faults after the warm-up. */
static uint64_t hot_cold(const char *policy, enum dime_mode mode, bool one_by_one,
			 uint64_t *soft)
{
	const size_t hot = 8, cold = 4, warm = 50, rounds = 300;
	const size_t pages = hot + cold * rounds;
	struct dime_params p;
	dime_params_init(&p);
	p.size = pages * PS;
	p.local_npages = 64;
	p.latency_ns = 0;
	p.bandwidth_bps = UINT64_MAX / 2;
	p.mode = mode;
	if (one_by_one) {
		/* Every fault has a fetch time well above the floor: each
		 * evicts its one victim inside it, none is left due. */
		p.latency_ns = 50000;
		p.first_touch = DIME_FIRST_TOUCH_REMOTE;
	}
	strcpy(p.policy, policy);
	struct dime_region *r = NULL;
	cr_assert_eq(dime_region_create(&p, &r), 0);
	volatile char *m = dime_region_base(r);
	struct dime_stats before = { 0 }, after;
	size_t next_cold = hot;
	for (size_t round = 0; round < rounds; round++) {
		if (round == warm)
			dime_region_stats(r, &before);
		for (size_t h = 0; h < hot; h++)
			m[h * PS] += 1;
		for (size_t c = 0; c < cold; c++)
			m[next_cold++ * PS] = 1;
	}
	dime_region_stats(r, &after);
	for (size_t h = 0; h < hot; h++)
		cr_expect_eq(m[h * PS], (char)rounds, "%s: hot page %zu", policy, h);
	cr_expect_eq(after.first_touch_faults, pages, "%s", policy);
	*soft = after.soft_faults - before.soft_faults;
	dime_region_destroy(r);
	return after.remote_faults - before.remote_faults;
}

Test(policies, lru_keeps_the_hot_set_local)
{
	uint64_t soft, remote = hot_cold("lru", DIME_MODE_THREAD, false, &soft);
	cr_expect_eq(remote, 0, "lru: %ju hot-page remote faults after warm-up", (uintmax_t)remote);
	cr_expect_gt(soft, 0, "lru observed nothing");
}

Test(policies, clock_keeps_the_hot_set_local)
{
	uint64_t soft, remote = hot_cold("clock", DIME_MODE_THREAD, false, &soft);
	cr_expect_eq(remote, 0, "clock: %ju hot-page remote faults after warm-up",
		     (uintmax_t)remote);
	cr_expect_gt(soft, 0, "clock observed nothing");
}

/* The same with every eviction made inside its fault's fetch time. A
 * handler preempted past a fetch's deadline (a loaded machine, ASan) leaves
 * that fault's eviction due, to leave with a later one in a batch, which
 * can take a hot page whose observation is still on its way: at most one
 * or two such faults, where FIFO makes ~110. */
Test(policies, clock_keeps_the_hot_set_local_one_by_one)
{
	uint64_t soft, remote = hot_cold("clock", DIME_MODE_THREAD, true, &soft);
	cr_expect_leq(remote, 2, "clock: %ju hot-page remote faults after warm-up",
		      (uintmax_t)remote);
	cr_expect_gt(soft, 0, "clock observed nothing");
}

/* Soft faults resolved in the faulting thread's SIGBUS handler. */
Test(policies, lru_keeps_the_hot_set_local_signal)
{
	uint64_t soft, remote = hot_cold("lru", DIME_MODE_SIGNAL, false, &soft);
	cr_expect_eq(remote, 0, "lru: %ju hot-page remote faults after warm-up", (uintmax_t)remote);
	cr_expect_gt(soft, 0, "lru observed nothing");
}

Test(policies, fifo_evicts_the_hot_set)
{
	uint64_t soft, remote = hot_cold("fifo", DIME_MODE_THREAD, false, &soft);
	/* 250 rounds bring 1000 cold pages: each hot page leaves about once
	 * per 64 arrivals, so ~8 * 1000 / 72 re-fetches. */
	cr_expect_gt(remote, 50, "fifo: only %ju hot-page remote faults", (uintmax_t)remote);
	cr_expect_eq(soft, 0);
}

/* Random: a page touched once, then 64 new pages, with 64 local pages.
 * Each arrival evicts a uniformly chosen local page, so the page survives
 * the 48..64 choices made by then (some may still be due) with
 * probability (63/64)^64 = 0.37 .. (63/64)^48 = 0.47: it is remote
 * 53-63% of the time. 300 trials: 5 sigma (~0.14) either side. FIFO would
 * always have evicted it. */
Test(policies, random_victims_within_statistical_bounds)
{
	const size_t n = 64, trials = 300;
	const size_t pages = trials * (n + 1);
	struct dime_region *r = policy_region("random", pages, n, DIME_MODE_THREAD);
	volatile char *m = dime_region_base(r);
	size_t next = 0, remote = 0;
	for (size_t t = 0; t < trials; t++) {
		size_t x = next++;
		m[x * PS] = 1;
		for (size_t k = 0; k < n; k++)
			m[next++ * PS] = 1;
		struct dime_stats a, b;
		dime_region_stats(r, &a);
		cr_assert_eq(m[x * PS], 1);
		dime_region_stats(r, &b);
		remote += b.remote_faults - a.remote_faults;
	}
	cr_expect(remote >= trials * 40 / 100 && remote <= trials * 77 / 100,
		  "random: the page was remote in %zu of %zu trials", remote, trials);
	dime_region_destroy(r);
}

/* Watermarks: evictions leave in batches. With 64 local pages and
 * evict_low,evict_high = 0,16, the 65th page sends 17 pages out (16 free
 * after it arrived), and so does every 17th page after: 190 first touches
 * make 8 batches, 136 evictions, and leave 54 pages local. With 8,16 a
 * batch of 9 starts whenever fewer than 8 pages are free. */
static void watermarks(uint64_t low, uint64_t high, uint64_t evictions, uint64_t local)
{
	struct dime_params p;
	dime_params_init(&p);
	p.size = 256 * PS;
	p.local_npages = 64;
	p.latency_ns = 0;
	p.bandwidth_bps = UINT64_MAX / 2;
	p.evict_low = low;
	p.evict_high = high;
	struct dime_region *r = NULL;
	cr_assert_eq(dime_region_create(&p, &r), 0);
	volatile char *m = dime_region_base(r);
	for (size_t i = 0; i < 190; i++)
		m[i * PS] = (char)i;
	struct dime_stats s;
	dime_region_stats(r, &s);
	cr_expect_eq(s.evictions, evictions, "%ju,%ju: %ju evictions", (uintmax_t)low,
		     (uintmax_t)high, (uintmax_t)s.evictions);
	cr_expect_eq(s.local_pages, local, "%ju,%ju: %ju local", (uintmax_t)low, (uintmax_t)high,
		     (uintmax_t)s.local_pages);
	cr_expect_leq(s.local_pages_peak, 64);
	for (size_t i = 0; i < 190; i++)
		cr_expect_eq(m[i * PS], (char)i);
	dime_region_destroy(r);
}

Test(policies, watermarks_evict_in_batches)
{
	watermarks(0, 0, 126, 64);
	watermarks(0, 16, 136, 54);
	watermarks(8, 16, 135, 55);
}

Test(policies, watermarks_are_checked)
{
	struct dime_params p;
	dime_params_init(&p);
	p.local_npages = 64;
	p.evict_low = 9;
	p.evict_high = 8;
	const char *bad = NULL;
	cr_expect_eq(dime_params_check(&p, &bad), -EINVAL);
	cr_expect_str_eq(bad, "evict_batch");
	p.evict_low = 0;
	p.evict_high = 64;
	cr_expect_eq(dime_params_check(&p, &bad), -EINVAL);
	p.evict_high = 63;
	cr_expect_eq(dime_params_check(&p, NULL), 0);
}
