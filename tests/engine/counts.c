/* Exact fault counts for access patterns whose counts are known. */
#include "helpers.h"

#include <string.h>

static const size_t PS = 4096;

/* A cyclic sweep over 2N pages with N local pages: under FIFO the page
 * touched next is always the one evicted longest ago, so every access after
 * the first pass is a remote fault and evicts one page. */
static void cyclic_sweep(enum dime_mode mode)
{
	const size_t n = 64, pages = 2 * n, passes = 5;
	struct dime_region *r = test_region(pages * PS, n, mode);
	volatile char *m = dime_region_base(r);
	for (size_t pass = 0; pass < passes; pass++)
		for (size_t i = 0; i < pages; i++)
			m[i * PS] = (char)(pass + i);

	struct dime_stats s;
	dime_region_stats(r, &s);
	cr_expect_eq(s.first_touch_faults, pages);
	cr_expect_eq(s.remote_faults, (passes - 1) * pages);
	cr_expect_eq(s.evictions, passes * pages - n);
	cr_expect_eq(s.local_pages, n);
	cr_expect_eq(s.local_pages_peak, n);
	for (size_t i = 0; i < pages; i++)
		cr_expect_eq(m[i * PS], (char)(passes - 1 + i), "page %zu", i);
	dime_region_destroy(r);
}

Test(counts, fifo_cyclic_sweep_thread) { cyclic_sweep(DIME_MODE_THREAD); }
Test(counts, fifo_cyclic_sweep_signal) { cyclic_sweep(DIME_MODE_SIGNAL); }

/* A working set that fits the budget faults once per page, then never. */
Test(counts, fitting_loop_has_no_remote_faults)
{
	const size_t pages = 100;
	struct dime_region *r = test_region(4 * pages * PS, pages, DIME_MODE_THREAD);
	volatile char *m = dime_region_base(r);
	for (int pass = 0; pass < 10; pass++)
		for (size_t i = 0; i < pages; i++)
			m[i * PS + 7] += 1;
	struct dime_stats s;
	dime_region_stats(r, &s);
	cr_expect_eq(s.first_touch_faults, pages);
	cr_expect_eq(s.remote_faults, 0);
	cr_expect_eq(s.evictions, 0);
	for (size_t i = 0; i < pages; i++)
		cr_expect_eq(m[i * PS + 7], 10);
	dime_region_destroy(r);
}

/* FIFO keeps arrival order: re-touching a local page does not refresh it. */
Test(counts, fifo_ignores_reuse)
{
	struct dime_region *r = test_region(16 * PS, 2, DIME_MODE_THREAD);
	volatile char *m = dime_region_base(r);
	m[0] = 1;      /* A: first touch */
	m[PS] = 2;     /* B: first touch */
	(void)m[0];    /* A again: local, no fault */
	m[2 * PS] = 3; /* C: evicts A (oldest arrival), not B */
	struct dime_stats s;
	dime_region_stats(r, &s);
	cr_expect_eq(s.remote_faults, 0);
	(void)m[PS]; /* B still local */
	dime_region_stats(r, &s);
	cr_expect_eq(s.remote_faults, 0);
	cr_expect_eq(m[0], 1); /* A was remote: one fetch */
	dime_region_stats(r, &s);
	cr_expect_eq(s.remote_faults, 1);
	dime_region_destroy(r);
}

/* A read of a never-written page maps zeroes and counts as a first touch. */
Test(counts, untouched_reads_zero)
{
	struct dime_region *r = test_region(64 * PS, 8, DIME_MODE_THREAD);
	const volatile char *m = dime_region_base(r);
	for (size_t i = 0; i < 64; i++)
		cr_expect_eq(m[i * PS + 100], 0);
	struct dime_stats s;
	dime_region_stats(r, &s);
	cr_expect_eq(s.first_touch_faults, 64);
	dime_region_destroy(r);
}
