/* The fault path: one missing-page fault on an emulated region, from
 * deciding what it is to the page being mapped. Shared by thread mode (a
 * handler thread calls it) and signal mode (the faulting thread calls it
 * from its SIGBUS handler). See internal.h for the page states and locks. */
#include "clock.h"
#include "delay.h"
#include "internal.h"

#include <sched.h>

/* Evictions one fault may perform: more than one only when the budget
 * shrank or an earlier eviction failed. */
#define MAX_VICTIMS 8

static void note_local(struct region *r, size_t pg)
{
	size_t end = atomic_load_explicit(&r->touched_end, memory_order_relaxed);
	while (pg + 1 > end &&
	       !atomic_compare_exchange_weak_explicit(&r->touched_end, &end, pg + 1,
						      memory_order_relaxed, memory_order_relaxed))
		;
}

/* Picks victims until the budget holds. A page still arriving (its fault
 * stalled, e.g. the thread was preempted, while others cycled through the
 * budget) is passed over and kept. Region lock held. */
static int choose_victims(struct region *r, size_t *victims)
{
	int nv = 0;
	uint64_t tries = r->local_count;
	while (r->local_count > r->params.local_npages && nv < MAX_VICTIMS && tries--) {
		size_t v;
		if (!r->policy->choose_victim(r->policy_state, &v))
			break;
		if (r->state[v] == PAGE_FETCHING) {
			r->policy->page_local(r->policy_state, v);
			continue;
		}
		if (r->state[v] != PAGE_LOCAL)
			continue;
		r->state[v] = PAGE_EVICTING;
		r->local_count--;
		victims[nv++] = v;
	}
	return nv;
}

static void evict(struct region *r, const size_t *victims, int nv)
{
	for (int i = 0; i < nv; i++) {
		bool out = page_out(r, victims[i]);
		pthread_mutex_lock(&r->lock);
		if (out) {
			r->state[victims[i]] = PAGE_REMOTE;
		} else {
			/* The page could not be moved: it stays local. */
			r->state[victims[i]] = PAGE_LOCAL;
			r->local_count++;
			r->policy->page_local(r->policy_state, victims[i]);
		}
		uint64_t local = r->local_count;
		pthread_mutex_unlock(&r->lock);
		if (out)
			ctr_add(&r->ctr->evictions, 1);
		else
			ctr_local_add(r->ctr, 1, local);
	}
}

void fault_resolve(struct region *r, size_t pg, bool write, uint64_t t_begin)
{
	uint64_t t_seen = clock_ticks();
	size_t victims[MAX_VICTIMS];
	enum page_state st;

	pthread_mutex_lock(&r->lock);
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
		page_in(r, pg, false, write);
		return;
	}
	bool remote = st == PAGE_REMOTE;
	r->state[pg] = PAGE_FETCHING;
	r->local_count++;
	/* The policy learns of the page now, under the lock that ordered the
	 * faults, so its order is the order in which they were taken. */
	r->policy->page_local(r->policy_state, pg);
	int nv = choose_victims(r, victims);
	uint64_t local = r->local_count;
	pthread_mutex_unlock(&r->lock);
	/* One page in, nv pages out: the count only rises when under budget. */
	if (nv == 0)
		ctr_local_add(r->ctr, 1, local);
	else if (nv > 1)
		ctr_local_sub(r->ctr, (uint64_t)nv - 1);

	/* Page-out first, inside the fetch's time budget: the victim leaves
	 * before the new page arrives, so the budget is never exceeded. */
	evict(r, victims, nv);

	uint64_t spun = 0;
	if (remote || r->params.first_touch == DIME_FIRST_TOUCH_REMOTE) {
		uint64_t deadline = delay_deadline(r, t_begin) - r->server->costs.post;
		uint64_t t0 = clock_ticks();
		if ((int64_t)(deadline - t0) > 0) {
			clock_spin_until(deadline);
			spun = clock_ticks() - t0;
		}
	}
	if (r->calib && r->calib->n < r->calib->cap) {
		r->calib->seen[r->calib->n] = t_begin;
		r->calib->pagein[r->calib->n] = clock_ticks();
		r->calib->n++;
	}
	/* Counted before the page-in wakes the program, which may look. */
	ctr_add(remote ? &r->ctr->remote_faults : &r->ctr->first_touch_faults, 1);
	note_local(r, pg);
	page_in(r, pg, remote, write);
	uint64_t t_done = clock_ticks();

	pthread_mutex_lock(&r->lock);
	r->state[pg] = PAGE_LOCAL;
	pthread_mutex_unlock(&r->lock);

	ctr_add(&r->ctr->injected_delay_ns, clock_ticks_to_ns(spun));
	ctr_add(&r->ctr->handling_ns, clock_ticks_to_ns(t_done - t_seen - spun));
	ctr_add(&r->ctr->faults_total_ns,
		clock_ticks_to_ns(t_done + r->server->costs.post - t_begin));
}
