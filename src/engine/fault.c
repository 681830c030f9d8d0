/* The fault path: one missing-page fault on an emulated region, from
 * deciding what it is to the page being mapped. Shared by thread mode (a
 * handler thread calls it) and signal mode (the faulting thread calls it
 * from its SIGBUS handler). See internal.h for the page states and locks.
 *
 * Evictions. Each fault that brings a page in beyond the budget evicts one
 * page at that moment as far as the emulation is concerned: the counters
 * move and the oldest local page in the policy's order is the one that
 * goes. Moving it out costs a UFFDIO_MOVE, 1-2 us, nearly all of it per
 * call, not per page. When the emulated fetch time leaves room for that,
 * the fault moves its victims out inside that time, before the new page
 * arrives: the emulation is exact. When it does not (fetch times near
 * dime's floor), the move waits: the region keeps a count of evictions due
 * (evict_due), and the due pages leave together, runs of consecutive pages
 * in one call, once more than a quarter of the budget (at most
 * EVICT_SLACK) is due, or when a handler thread runs out of faults to
 * serve. Until then they stay mapped and LOCAL, so an access to one does
 * not fault: at most EVICT_SLACK pages beyond the budget are mapped, and a
 * cyclic sweep over twice the budget still faults on every access. A page
 * is EVICTING only while a thread moves it, so nothing ever waits on a due
 * eviction. */
#include "clock.h"
#include "delay.h"
#include "instance.h"
#include "internal.h"
#include "uffd.h"

#include <sched.h>
#include <stdlib.h>

/* Most evictions a region leaves due, and most pages one call moves out
 * (a bound on the time one fault spends on others' evictions). */
#define EVICT_SLACK 64
#define EVICT_CHUNK 16

/* Page-out cost per page in ticks, a running average over all regions:
 * whether a fault has time to move its victims out. */
static _Atomic uint64_t evict_cost;

static void note_local(struct region *r, size_t pg)
{
	size_t end = atomic_load_explicit(&r->touched_end, memory_order_relaxed);
	while (pg + 1 > end &&
	       !atomic_compare_exchange_weak_explicit(&r->touched_end, &end, pg + 1,
						      memory_order_relaxed, memory_order_relaxed))
		;
}

static uint64_t slack(const struct region *r)
{
	uint64_t s = r->params.local_npages / 4;
	return s < EVICT_SLACK ? s : EVICT_SLACK;
}

/* Picks up to n due victims, oldest first, and marks them EVICTING. Region
 * lock held. Returns how many it picked into pg[]. */
static unsigned take_due(struct region *r, size_t *pg, unsigned n)
{
	unsigned k = 0;
	uint64_t tries = r->local_count;
	while (k < n && r->evict_due) {
		size_t v;
		if (!tries-- || !r->policy->choose_victim(r->policy_state, &v)) {
			/* Every local page is in flight or pinned: the due
			 * evictions cannot happen, those pages stay local (a
			 * later fault counts them again if they still exceed
			 * the budget). */
			RCTR_SUB(r, evictions, r->evict_due);
			RCTR_LOCAL_ADD(r, r->evict_due, r->local_count);
			r->evict_due = 0;
			break;
		}
		if (r->state[v] == PAGE_FETCHING || region_pinned(r, v)) {
			/* Still arriving (its fault stalled while others cycled
			 * through the budget), or pinned across a fork(): passed
			 * over and kept. */
			r->policy->page_local(r->policy_state, v);
			continue;
		}
		if (r->state[v] != PAGE_LOCAL)
			continue;
		r->state[v] = PAGE_EVICTING;
		r->local_count--;
		r->evict_due--;
		pg[k++] = v;
	}
	return k;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

/* Moves out victims from take_due() and records where they went. */
static void evict(struct region *r, size_t *pg, unsigned n)
{
	if (!n)
		return;
	uint64_t t0 = clock_ticks();
	bool ok[EVICT_CHUNK];
	qsort(pg, n, sizeof(*pg), cmp_size);
	for (unsigned i = 0; i < n;) {
		unsigned run = 1;
		while (i + run < n && pg[i + run] == pg[i] + run)
			run++;
		size_t done = page_out_run(r, pg[i], run);
		for (size_t k = 0; k < done; k++)
			ok[i + k] = true;
		if (done < run) {
			ok[i + done] = page_out(r, pg[i + done]);
			done++;
		}
		i += (unsigned)done;
	}
	unsigned failed = 0;
	uint64_t local;
	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < n; i++) {
		if (ok[i]) {
			r->state[pg[i]] = PAGE_REMOTE;
		} else {
			/* The page could not be moved: it stays local. */
			r->state[pg[i]] = PAGE_LOCAL;
			r->local_count++;
			r->policy->page_local(r->policy_state, pg[i]);
			failed++;
		}
	}
	local = r->local_count - r->evict_due;
	if (r->inst)
		instance_sync(r);
	pthread_mutex_unlock(&r->lock);
	if (failed) {
		RCTR_SUB(r, evictions, failed);
		RCTR_LOCAL_ADD(r, failed, local);
	}
	uint64_t per = (clock_ticks() - t0) / n;
	uint64_t avg = atomic_load_explicit(&evict_cost, memory_order_relaxed);
	atomic_store_explicit(&evict_cost, avg ? (7 * avg + per) / 8 : per, memory_order_relaxed);
}

void fault_drain(struct region *r)
{
	size_t pg[EVICT_CHUNK];
	for (;;) {
		pthread_mutex_lock(&r->lock);
		unsigned n = take_due(r, pg, EVICT_CHUNK);
		pthread_mutex_unlock(&r->lock);
		if (!n)
			return;
		evict(r, pg, n);
	}
}

void fault_resolve(struct region *r, size_t pg, bool write, uint64_t t_begin)
{
	uint64_t t_seen = clock_ticks();
	enum page_state st;

	pthread_mutex_lock(&r->lock);
	if (r->inst)
		instance_refresh(r);
	for (;;) {
		st = r->state[pg];
		if (st != PAGE_EVICTING)
			break;
		/* Another thread is moving this page out; it is about to be
		 * REMOTE. Wait without holding the lock. */
		pthread_mutex_unlock(&r->lock);
		sched_yield();
		pthread_mutex_lock(&r->lock);
	}
	if (st == PAGE_FETCHING) {
		/* Another thread is bringing it in; its page-in wakes (thread
		 * mode) or lets through (signal mode) this fault. */
		pthread_mutex_unlock(&r->lock);
		return;
	}
	if (st == PAGE_LOCAL) {
		/* Local yet faulting: a write protection left over (copy
		 * fallback), or the program discarded the page without telling
		 * dime (a raw madvise): like the kernel, map zeroes. */
		pthread_mutex_unlock(&r->lock);
		if (!engine.use_move)
			page_unprotect(r, pg);
		page_in(r, pg, false, write, true);
		return;
	}
	bool remote = st == PAGE_REMOTE;
	bool delayed = remote || r->params.first_touch == DIME_FIRST_TOUCH_REMOTE;
	r->state[pg] = PAGE_FETCHING;
	r->local_count++;
	/* The policy learns of the page now, under the lock that ordered the
	 * faults, so its order is the order in which they were taken. */
	r->policy->page_local(r->policy_state, pg);
	/* Beyond the budget: the oldest local pages are remote from now on
	 * (usually one; more when pages came back from elsewhere, e.g. the
	 * program unpinned them). */
	uint64_t evicts = 0;
	if (r->inst)
		evicts = instance_evictions(r, pg);
	else if (r->local_count > r->params.local_npages + r->evict_due)
		evicts = r->local_count - r->params.local_npages - r->evict_due;
	r->evict_due += evicts;
	uint64_t deadline = delayed ? delay_deadline(r, t_begin) - r->server->costs.post : 0;
	/* The due pages leave now if this fetch has the time (the victims are
	 * gone before the new page arrives) or if too many are due. */
	uint64_t need = r->evict_due * atomic_load_explicit(&evict_cost, memory_order_relaxed);
	bool in_time = delayed && (int64_t)(deadline - clock_ticks() - need) > 0;
	size_t victims[EVICT_CHUNK];
	unsigned nv = 0;
	if (in_time || r->evict_due > slack(r))
		nv = take_due(r, victims, EVICT_CHUNK);
	uint64_t local = r->local_count - r->evict_due;
	if (r->inst)
		instance_sync(r);
	pthread_mutex_unlock(&r->lock);
	/* One page in, `evicts` out. */
	if (evicts)
		RCTR_ADD(r, evictions, evicts);
	if (evicts == 0)
		RCTR_LOCAL_ADD(r, 1, local);
	else if (evicts > 1)
		RCTR_LOCAL_SUB(r, evicts - 1);

	uint64_t t_evict = clock_ticks();
	evict(r, victims, nv);
	if (in_time && nv == EVICT_CHUNK)
		fault_drain(r);
	t_evict = clock_ticks() - t_evict;

	uint64_t spun = 0;
	if (delayed) {
		uint64_t t0 = clock_ticks();
		if ((int64_t)(deadline - t0) > 0) {
			clock_spin_until(deadline);
			spun = clock_ticks() - t0;
		}
	}
	if (r->calib && r->calib->n < r->calib->cap) {
		/* When the handler saw it: the calibration's pre is made of these. */
		r->calib->seen[r->calib->n] = t_begin + r->server->costs.pre;
		r->calib->pagein[r->calib->n] = clock_ticks();
		if (r->calib->evict)
			r->calib->evict[r->calib->n] = t_evict;
		r->calib->n++;
	}
	/* Counted before the page-in: the thread it wakes on this CPU runs at
	 * once and may look at the counters before this one runs again. */
	if (remote) {
		RCTR_ADD(r, remote_faults, 1);
		if (r->inst)
			instance_count_fault(r);
	} else {
		RCTR_ADD(r, first_touch_faults, 1);
	}
	RCTR_ADD(r, injected_delay_ns, clock_ticks_to_ns(spun));
	/* The fault's time from trap to resume, estimated now (the page-in
	 * and wake-up cost `post`): a histogram bucket counted after the
	 * page-in could be lost with the process. */
	if (remote)
		RCTR_ADD(r, fault_hist[ctr_hist_bucket(clock_ticks_to_ns(
				    clock_ticks() + r->server->costs.post - t_begin))], 1);
	note_local(r, pg);
	/* The page is LOCAL before its thread runs again: on a handler's CPU
	 * that thread runs at once when woken, and this handler only when
	 * that thread blocks again, maybe after faults served elsewhere that
	 * must not find the page still FETCHING. */
	page_in(r, pg, remote, write, false);
	uint64_t t_done = clock_ticks();

	pthread_mutex_lock(&r->lock);
	r->state[pg] = PAGE_LOCAL;
	pthread_mutex_unlock(&r->lock);
	if (r->server->mode == DIME_MODE_THREAD)
		uffd_wake(r->server->uffd, r->base + (pg << engine.page_shift), engine.page_size);

	uint64_t total_ns = clock_ticks_to_ns(t_done + r->server->costs.post - t_begin);
	RCTR_ADD(r, handling_ns, clock_ticks_to_ns(t_done - t_seen - spun));
	RCTR_ADD(r, faults_total_ns, total_ns);
}

/* A fork()ed child rebuilds its page states from its page tables, all of
 * them settled: nothing is due there. This runs before the engine's own
 * child handler (constructors run before the first region exists). */
static void forget_due_in_child(void)
{
	for (size_t i = 0; i < sizeof(engine.regions) / sizeof(engine.regions[0]); i++) {
		struct region *r = atomic_load_explicit(&engine.regions[i], memory_order_relaxed);
		if (r)
			r->evict_due = 0;
	}
}

__attribute__((constructor)) static void fault_init(void)
{
	pthread_atfork(NULL, NULL, forget_due_in_child);
}
