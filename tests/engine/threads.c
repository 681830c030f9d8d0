/* Several threads verifying their own data under heavy eviction. */
#include "helpers.h"

#include <pthread.h>
#include <stdatomic.h>

static const size_t PS = 4096;
enum { THREADS = 4, PAGES_PER_THREAD = 96, ROUNDS = 20, LOCAL = 32 };

struct worker {
	char *base;
	unsigned id;
	int errors;
};

static uint64_t tag(unsigned id, unsigned round, size_t page)
{
	return (uint64_t)id << 32 | (uint64_t)round << 16 | page;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	for (unsigned round = 0; round < ROUNDS; round++) {
		for (size_t i = 0; i < PAGES_PER_THREAD; i++) {
			uint64_t *p = (uint64_t *)(w->base + i * PS);
			if (round > 0 && (p[0] != tag(w->id, round - 1, i) || p[PS / 8 - 1] != ~p[0]))
				w->errors++;
			p[0] = tag(w->id, round, i);
			p[PS / 8 - 1] = ~p[0];
		}
	}
	return NULL;
}

/* THREADS workers, worker i on PAGES_PER_THREAD pages from base[i], to
 * the end; each must have read back every byte it wrote. */
static void run_workers_at(char *const base[THREADS])
{
	pthread_t t[THREADS];
	struct worker w[THREADS];
	for (unsigned i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ base[i], i + 1, 0 };
		pthread_create(&t[i], NULL, work, &w[i]);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		cr_expect_eq(w[i].errors, 0, "thread %u saw %d bad pages", i, w[i].errors);
	}
}

/* THREADS workers, each on its own part of r. */
static void run_workers(struct dime_region *r)
{
	char *base[THREADS];
	for (unsigned i = 0; i < THREADS; i++)
		base[i] = (char *)dime_region_base(r) + i * PAGES_PER_THREAD * PS;
	run_workers_at(base);
}

static void run(enum dime_mode mode)
{
	struct dime_region *r = test_region(THREADS * PAGES_PER_THREAD * PS, LOCAL, mode);
	run_workers(r);
	struct dime_stats s;
	dime_region_stats(r, &s);
	cr_expect_gt(s.evictions, (uint64_t)THREADS * PAGES_PER_THREAD);
	cr_expect_leq(s.local_pages_peak, LOCAL);
	dime_region_destroy(r);
}

Test(threads, verify_under_eviction_thread_mode) { run(DIME_MODE_THREAD); }
Test(threads, verify_under_eviction_signal_mode) { run(DIME_MODE_SIGNAL); }

/* A budget smaller than the pages in flight: with THREADS faulting at
 * once and 2 local pages, a fault often finds every local page still
 * arriving, passes them over and gives its eviction up for later. The
 * policy must keep every page it offered: one it lost would stay local for
 * good, out of its order (a shared instance once ended with all its pages
 * local that way). So a sweep by one thread afterwards, nothing in flight,
 * brings the region back within its budget, and every access of a second
 * sweep over twice the budget is a remote fault (FIFO). */
static void tiny_budget(enum dime_mode mode)
{
	enum { TINY = 2 };
	size_t npages = THREADS * PAGES_PER_THREAD;
	struct dime_region *r = test_region(npages * PS, TINY, mode);
	run_workers(r);
	volatile char *m = dime_region_base(r);
	for (size_t i = 0; i < npages; i++)
		(void)m[i * PS];
	struct dime_stats before, after;
	dime_region_stats(r, &before);
	cr_expect_leq(before.local_pages, TINY, "%llu local pages after a sweep by one thread",
		      (unsigned long long)before.local_pages);
	for (size_t i = 0; i < npages; i++)
		(void)m[i * PS];
	dime_region_stats(r, &after);
	cr_expect_eq(after.remote_faults - before.remote_faults, npages,
		     "%llu of %zu accesses faulted",
		     (unsigned long long)(after.remote_faults - before.remote_faults), npages);
	dime_region_destroy(r);
}

Test(threads, a_budget_below_the_pages_in_flight_holds_thread_mode) { tiny_budget(DIME_MODE_THREAD); }
Test(threads, a_budget_below_the_pages_in_flight_holds_signal_mode) { tiny_budget(DIME_MODE_SIGNAL); }

/* Half the workers on a region without delay, half on one with a 50 us
 * fetch, more threads than this machine has CPUs: a handler serves the
 * near tier's faults within the waits of the far tier's (server.c's
 * wait_serving()), and no byte may suffer for it. */
Test(threads, verify_under_eviction_across_two_tiers_thread_mode)
{
	struct dime_region *near = test_region(THREADS / 2 * PAGES_PER_THREAD * PS, LOCAL,
						 DIME_MODE_THREAD);
	struct dime_params p;
	dime_params_init(&p);
	p.size = THREADS / 2 * PAGES_PER_THREAD * PS;
	p.local_npages = LOCAL;
	p.latency_ns = 25000;
	p.bandwidth_bps = UINT64_MAX / 2;
	p.mode = DIME_MODE_THREAD;
	struct dime_region *far;
	cr_assert_eq(dime_region_create(&p, &far), 0);
	char *base[THREADS];
	for (unsigned i = 0; i < THREADS; i++)
		base[i] = (char *)dime_region_base(i % 2 ? far : near) +
			  i / 2 * PAGES_PER_THREAD * PS;
	run_workers_at(base);
	struct dime_region *tiers[2] = { near, far };
	for (int k = 0; k < 2; k++) {
		struct dime_stats s;
		dime_region_stats(tiers[k], &s);
		cr_expect_gt(s.remote_faults, (uint64_t)PAGES_PER_THREAD, "tier %d", k);
		cr_expect_leq(s.local_pages_peak, LOCAL, "tier %d", k);
		dime_region_destroy(tiers[k]);
	}
}

/* Regions created and destroyed while other threads fault on a region of
 * their own: the handlers that look regions up on every fault race every
 * removal, and must neither crash nor lose a byte. */
struct churn {
	_Atomic bool stop;
	enum dime_mode mode;
	int rounds;
};

static void *create_destroy(void *arg)
{
	struct churn *c = arg;
	while (!atomic_load(&c->stop)) {
		struct dime_region *r = test_region(8 * PS, 2, c->mode);
		char *m = dime_region_base(r);
		for (int i = 0; i < 8; i++)
			m[i * PS] = (char)i;
		dime_region_destroy(r);
		c->rounds++;
	}
	return NULL;
}

static void churn(enum dime_mode mode)
{
	struct dime_region *r = test_region(THREADS * PAGES_PER_THREAD * PS, LOCAL, mode);
	struct churn c = { .mode = mode };
	pthread_t creator;
	pthread_create(&creator, NULL, create_destroy, &c);
	run_workers(r);
	atomic_store(&c.stop, true);
	pthread_join(creator, NULL);
	cr_expect_gt(c.rounds, 0);
	dime_region_destroy(r);
}

Test(threads, regions_come_and_go_while_others_fault_thread_mode) { churn(DIME_MODE_THREAD); }
Test(threads, regions_come_and_go_while_others_fault_signal_mode) { churn(DIME_MODE_SIGNAL); }
