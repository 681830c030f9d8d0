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
 * EVICT_SLACK) is due, or when the process's handler threads have served
 * no fault for a millisecond (server.c). Until then they stay mapped and
 * LOCAL, so an access to one does not fault: at most EVICT_SLACK pages
 * beyond the budget are mapped, and a cyclic sweep over twice the budget
 * still faults on every access. A page is EVICTING only while a thread
 * moves it, so nothing ever waits on a due eviction. */
#include "clock.h"
#include "delay.h"
#include "faultclock.h"
#include "instance.h"
#include "internal.h"
#include "policy-call.h"
#include "trace.h"
#include "uffd.h"

#include <sched.h>
#include <stdlib.h>

/* Most evictions a region leaves due, and most pages one call moves out
 * (a bound on the time one fault spends on others' evictions). */
#define EVICT_SLACK 64
#define EVICT_CHUNK 32

/* Delay debt. A fault's page-in is due at its deadline less the calibrated
 * page-in-and-return time (post). When the handler sees that it starts the
 * page-in late (it was preempted while waiting, or evictions took longer
 * than the fetch had room for), the lateness is added to the region's
 * debt; so is the time the page-in itself took beyond its calibrated
 * share of post (handoff), and a page-in faster than that is subtracted.
 * Later faults wait that much less or, for a credit, more (settle_debt()):
 * the emulated time is then right on average, not only when nothing went
 * wrong. A long stall (the vCPU descheduled for milliseconds) is forgiven
 * beyond DEBT_MAX_NS, so that the faults after it keep the configured
 * shape instead of all running at dime's floor. */
#define DEBT_MAX_NS 1000000
/* Most pages one call makes inactive for the policy to observe. */
#define OBSERVE_MAX (2 * EVICT_CHUNK)

/* Page-out cost per page in ticks, a running average over all regions:
 * whether a fault has time to move its victims out. Fed only by the
 * page-outs a fault does before its page-in, while the faulting thread is
 * stopped, which is what it predicts. A drain's page-outs (a handler
 * idle for a millisecond, an instance's evictor) overlap the program's
 * running and can cost far more: on a PVM guest a page moved while the
 * other vCPU runs pays a cross-vCPU flush through the host, ~100 us where
 * a fault's own costs 5-20 us, and a few such samples kept every fault's
 * victims out of its wait. */
static _Atomic uint64_t evict_cost;

static void note_evict_cost(unsigned pages, uint64_t ticks)
{
	if (!pages)
		return;
	cost_avg_add(&evict_cost, ticks / pages);
}

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

/* What one take_due() sends out: victims (to become REMOTE) and pages the
 * policy wants observed (to become INACTIVE), both marked EVICTING. */
struct outgoing {
	size_t victim[EVICT_CHUNK];
	unsigned nvictims;
	size_t observe[OBSERVE_MAX];
	unsigned nobserve;
};

/* Takes p out of o's observations; whether it was there. */
static bool drop_observe(struct outgoing *o, size_t p)
{
	for (unsigned i = 0; i < o->nobserve; i++)
		if (o->observe[i] == p) {
			o->observe[i] = o->observe[--o->nobserve];
			return true;
		}
	return false;
}

/* The due evictions that cannot happen: every local page the policy
 * offered is in flight or pinned. Those pages stay local (a later fault
 * counts them again if they still exceed the budget). Region lock held. */
static void cancel_due(struct region *r)
{
	RCTR_SUB(r, evictions, r->evict_due);
	RCTR_LOCAL_ADD(r, r->evict_due, r->local_count);
	r->evict_due = 0;
}

/* Takes victim p, which the policy has just forgotten, into o, or gives it
 * back to the policy if it cannot leave now. Region lock held. */
static void take_victim(struct region *r, struct outgoing *o, uint64_t p)
{
	if (p >= r->npages)
		return;
	if (r->state[p] == PAGE_EVICTING && drop_observe(o, p)) {
		/* Asked to observe and now chosen (it went round the
		 * policy's order within this call): it leaves instead.
		 * Still counted local until now. */
		r->local_count--;
		r->evict_due--;
		o->victim[o->nvictims++] = p;
		return;
	}
	if (r->state[p] == PAGE_FETCHING || r->state[p] == PAGE_EVICTING || region_pinned(r, p)) {
		/* Still arriving (its fault stalled while others cycled
		 * through the budget, or a soft fault), being observed by
		 * another thread, or pinned across a fork(): passed over and
		 * kept. */
		pol_local(r, p, DIME_PAGE_RETURNED);
		return;
	}
	if (r->state[p] == PAGE_INACTIVE) {
		r->state[p] = PAGE_REMOTE;
		r->local_count--;
		r->evict_due--;
		if (region_traced(r)) {
			uint64_t now = clock_ticks();
			trace_evict(r, p, now, now); /* in the store already */
		}
		return;
	}
	if (r->state[p] != PAGE_LOCAL)
		return;
	r->state[p] = PAGE_EVICTING;
	r->local_count--;
	r->evict_due--;
	o->victim[o->nvictims++] = p;
}

/* Asks the policy for up to n of the due victims, best first, and marks
 * them EVICTING; an inactive victim is in the store already and becomes
 * REMOTE at once. Marks the pages the policy wants observed too. Region
 * lock held.
 *
 * Every page the policy returns is forgotten by it (policy.h), so each one
 * is either taken or given back (take_victim()), even on the call after
 * which the due evictions are cancelled: a page dropped here would stay
 * local for good, out of every order, and an instance whose pages all went
 * that way could never evict again. The policy is offered at most as many
 * victims as there are local pages before the rest is cancelled, so a
 * policy that keeps returning pages in flight cannot loop. */
static void take_due(struct region *r, struct outgoing *o, unsigned n)
{
	uint64_t tries = r->local_count;
	o->nvictims = o->nobserve = 0;
	while (o->nvictims < n && r->evict_due) {
		uint64_t v[EVICT_CHUNK], obs[OBSERVE_MAX];
		uint64_t want = n - o->nvictims;
		struct dime_policy_choice c = {
			.victims = v,
			.max_victims = want < r->evict_due ? want : r->evict_due,
			.observe = obs,
			.max_observe = OBSERVE_MAX - o->nobserve,
		};
		pol_choose(r, &c);
		for (size_t i = 0; i < c.nobserve; i++) {
			uint64_t p = obs[i];
			if (p < r->npages && r->state[p] == PAGE_LOCAL && !region_pinned(r, p)) {
				r->state[p] = PAGE_EVICTING; /* stays in local_count */
				o->observe[o->nobserve++] = p;
			}
		}
		for (size_t i = 0; i < c.nvictims; i++)
			take_victim(r, o, v[i]);
		bool exhausted = !c.nvictims || tries <= c.nvictims;
		tries -= exhausted ? tries : c.nvictims;
		if (exhausted && r->evict_due && o->nvictims < n) {
			cancel_due(r);
			break;
		}
	}
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

/* Moves out pages from take_due() and records where they went: REMOTE,
 * or INACTIVE if `observed`. */
static void evict(struct region *r, size_t *pg, unsigned n, bool observed)
{
	if (!n)
		return;
	uint64_t t0 = clock_ticks();
	bool ok[OBSERVE_MAX];
	qsort(pg, n, sizeof(*pg), cmp_size);
	bool cleared = page_out_clear(r, pg, n);
	for (unsigned i = 0; i < n;) {
		unsigned run = 1;
		while (i + run < n && pg[i + run] == pg[i] + run)
			run++;
		size_t done = page_out_run(r, pg[i], run, cleared);
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
			r->state[pg[i]] = observed ? PAGE_INACTIVE : PAGE_REMOTE;
		} else if (observed) {
			/* Stays mapped: it will not report, which only costs
			 * the policy one observation. */
			r->state[pg[i]] = PAGE_LOCAL;
		} else {
			/* The page could not be moved: it stays local. */
			r->state[pg[i]] = PAGE_LOCAL;
			r->local_count++;
			pol_local(r, pg[i], DIME_PAGE_RETURNED);
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
	if (region_traced(r) && !observed)
		for (unsigned i = 0; i < n; i++)
			if (ok[i])
				trace_evict(r, pg[i], t0 + i * per, t0 + (i + 1) * per);
}

static void send_out(struct region *r, struct outgoing *o)
{
	evict(r, o->victim, o->nvictims, false);
	evict(r, o->observe, o->nobserve, true);
}

/* How many pages to evict now that a page came in: beyond the budget,
 * or, with watermarks, down to evict_high free pages once fewer than
 * evict_low are. Region lock held. */
static uint64_t evictions_needed(const struct region *r)
{
	uint64_t in = r->local_count - r->evict_due, budget = r->params.local_npages;
	if (r->params.evict_high)
		return in + r->params.evict_low > budget ? in + r->params.evict_high - budget : 0;
	return in > budget ? in - budget : 0;
}

void fault_drain(struct region *r)
{
	struct outgoing o;
	for (;;) {
		pthread_mutex_lock(&r->lock);
		take_due(r, &o, EVICT_CHUNK);
		pthread_mutex_unlock(&r->lock);
		if (!o.nvictims && !o.nobserve)
			return;
		send_out(r, &o);
	}
}

/* Adds d ticks (negative: a fault ended early) to r's debt, within
 * +-DEBT_MAX_NS. */
static void add_debt(struct region *r, int64_t d)
{
	if (r->calib)
		return; /* measuring dime's own costs: each fault as it comes */
	int64_t cap = (int64_t)clock_ns_to_ticks(DEBT_MAX_NS);
	int64_t debt = atomic_load_explicit(&r->delay_debt, memory_order_relaxed), to;
	do {
		to = debt + d;
		to = to > cap ? cap : to < -cap ? -cap : to;
	} while (!atomic_compare_exchange_weak_explicit(&r->delay_debt, &debt, to,
							memory_order_relaxed, memory_order_relaxed));
}

/* What of the region's delay debt this fault settles: ticks by which it
 * ends earlier (a credit: later). At most half the wait it would have, so
 * no fault ends before dime's floor and every fault that can wait still
 * does (a long stall is paid back over several faults, not by a run of
 * faults at the floor); a credit at most doubles the wait. The link's
 * reservation ends that much earlier too (delay_deadline()), so that a
 * stream of fetches catches up instead of queueing behind the reservation
 * of the fault that ran late. */
static int64_t settle_debt(struct region *r, uint64_t t_begin)
{
	int64_t room = (int64_t)(t_begin + 2 * r->latency_ticks + r->transfer_ticks -
				 r->costs.post - clock_ticks());
	int64_t debt = atomic_load_explicit(&r->delay_debt, memory_order_relaxed);
	while (debt != 0 && room > 0) {
		int64_t half = room / 2;
		int64_t pay = debt < half ? (debt > -room ? debt : -room) : half;
		if (atomic_compare_exchange_weak_explicit(&r->delay_debt, &debt, debt - pay,
							  memory_order_relaxed, memory_order_relaxed))
			return pay;
	}
	return 0;
}

__thread __attribute__((tls_model("initial-exec"))) void (*fault_wait_hook)(uint64_t deadline);

/* Busy-waits until the page-in is due. Returns the ticks spent waiting. */
static uint64_t wait_deadline(struct region *r, uint64_t deadline)
{
	uint64_t t0 = clock_ticks(), spun = 0;
	if ((int64_t)(deadline - t0) > 0) {
		if (fault_wait_hook)
			fault_wait_hook(deadline);
		else
			clock_spin_until(deadline);
		spun = clock_ticks() - t0;
	}
	/* Started the page-in late: preempted while waiting, or evictions
	 * and bookkeeping took longer than the fetch. */
	int64_t late = (int64_t)(clock_ticks() - deadline);
	if (late > 0)
		add_debt(r, late);
	return spun;
}

/* When the fault began: its page-fault event less the calibrated entry
 * into the kernel, or else one calibrated trap and wake-up before its
 * handler saw it. */
static uint64_t fault_begin(const struct region *r, uint64_t t_seen, uint64_t t_began)
{
	if (!t_began)
		return t_seen - r->costs.pre;
	uint64_t t = t_began - r->server->costs.entry;
	return (int64_t)(t - t_seen) > 0 ? t_seen : t;
}

void fault_end_measured(struct region *r, uint64_t t_done, uint64_t t_end)
{
	/* Expected from t_done on: post less the handoff already settled. */
	int64_t want = (int64_t)r->costs.post - (int64_t)r->costs.handoff;
	add_debt(r, (int64_t)(t_end + r->costs.exit - t_done) - want);
}

void fault_resolve(struct region *r, size_t pg, bool write, uint64_t t_seen, uint64_t t_began,
		   pid_t tid)
{
	uint64_t t_begin = fault_begin(r, t_seen, t_began);
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
		 * dime (a raw madvise): like the kernel, map zeroes. Or a
		 * stale fault, for a page another handler has brought in
		 * since: the zeroes then find it mapped (EEXIST) and change
		 * nothing. FETCHING while they go in, so that no eviction
		 * moves the page out in between: zeroes would then fill the
		 * emptied page while its bytes sit in the store, and the
		 * program would read them (and the next page-out would drop
		 * the real bytes as a stale copy). */
		r->state[pg] = PAGE_FETCHING;
		pthread_mutex_unlock(&r->lock);
		if (!engine.use_move)
			page_unprotect(r, pg);
		page_in(r, pg, false, write, false);
		pthread_mutex_lock(&r->lock);
		r->state[pg] = PAGE_LOCAL;
		pthread_mutex_unlock(&r->lock);
		uffd_wake(r->server->uffd, r->base + (pg << engine.page_shift), engine.page_size);
		return;
	}
	if (st == PAGE_INACTIVE) {
		soft_fault(r, pg, write, t_seen);
		return;
	}
	bool remote = st == PAGE_REMOTE;
	bool delayed = fetch_delayed(r, st);
	r->state[pg] = PAGE_FETCHING;
	/* Before the lock is let go (internal.h, touched_end): a fork() from
	 * another thread while this page is in flight must find it below
	 * touched_end, or the child would keep it FETCHING for ever. */
	note_local(r, pg);
	r->local_count++;
	/* The policy learns of the page now, under the lock that ordered the
	 * faults, so its order is the order in which they were taken; not of
	 * a held page (a protected one read for the first time). */
	if (!region_held(r, pg))
		pol_local(r, pg, remote ? DIME_PAGE_FETCHED : DIME_PAGE_FIRST_TOUCH);
	/* Beyond the budget: the oldest local pages are remote from now on
	 * (usually one; more when pages came back from elsewhere, e.g. the
	 * program unpinned them, or a watermark batch). */
	uint64_t evicts = r->inst ? instance_evictions(r) : evictions_needed(r);
	r->evict_due += evicts;
	uint64_t deadline = 0;
	if (delayed)
		deadline = delay_deadline(r, t_begin, settle_debt(r, t_begin)) - r->costs.post;
	/* As many due pages leave now as this fetch has the time for (they
	 * are gone before the new page arrives), all of a chunk if too many
	 * are due or a watermark batch is due (it leaves at once, in as few
	 * moves as it can). */
	unsigned fit = 0;
	if (delayed) {
		int64_t room = (int64_t)(deadline - clock_ticks());
		uint64_t cost = atomic_load_explicit(&evict_cost, memory_order_relaxed);
		if (room > 0)
			fit = !cost || (uint64_t)room / cost >= EVICT_CHUNK ? EVICT_CHUNK
									  : (unsigned)((uint64_t)room / cost);
	}
	bool batch = evicts && r->params.evict_high;
	if (batch || r->evict_due > slack(r))
		fit = EVICT_CHUNK;
	struct outgoing out = { 0 };
	if (fit)
		take_due(r, &out, fit);
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
	send_out(r, &out);
	note_evict_cost(out.nvictims + out.nobserve, clock_ticks() - t_evict);
	if (batch && out.nvictims == EVICT_CHUNK)
		fault_drain(r);
	t_evict = clock_ticks() - t_evict;

	uint64_t spun = 0;
	if (delayed)
		spun = wait_deadline(r, deadline);
	uint64_t t_in = clock_ticks();
	/* Counted before the page-in: the thread it wakes on this CPU runs at
	 * once and may look at the counters before this one runs again. */
	if (remote) {
		RCTR_ADD(r, remote_faults, 1);
		if (t_began)
			RCTR_ADD(r, clocked_faults, 1);
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
				    clock_ticks() + r->costs.post - t_begin))], 1);
	if (region_traced(r))
		fault_trace(r, remote ? TRACE_REMOTE : TRACE_FIRST_TOUCH, pg, t_begin, t_seen, spun,
			    delayed ? clock_ticks_to_ns(r->transfer_ticks) : 0);
	/* The page is LOCAL before its thread runs again: on a handler's CPU
	 * that thread runs at once when woken, and this handler only when
	 * that thread blocks again, maybe after faults served elsewhere that
	 * must not find the page still FETCHING. */
	page_in(r, pg, remote, write, false);
	uint64_t t_done = clock_ticks();

	pthread_mutex_lock(&r->lock);
	r->state[pg] = PAGE_LOCAL;
	pthread_mutex_unlock(&r->lock);
	/* Before the wake-up: the thread's fault may end at once. */
	if (delayed && t_began && tid)
		faultclock_expect_end(tid, r->base + (pg << engine.page_shift), r, t_done,
				      r->calib && r->calib->n < r->calib->cap ? r->calib->n : -1);
	if (r->server->mode == DIME_MODE_THREAD)
		uffd_wake(r->server->uffd, r->base + (pg << engine.page_shift), engine.page_size);
	/* The page-in took longer or shorter than calibrated: this fault
	 * ends that much later or earlier, later faults make up for it. (The
	 * wake-up the handler cannot time: in thread mode the woken thread
	 * runs first, and this handler only when that thread blocks again.
	 * The fault clock times it: fault_end_measured().) */
	if (delayed && r->costs.handoff)
		add_debt(r, (int64_t)(t_done - t_in) - (int64_t)r->costs.handoff);
	if (r->calib && r->calib->n < r->calib->cap) {
		/* When the handler saw it: the calibration's pre is made of these. */
		r->calib->seen[r->calib->n] = t_seen;
		r->calib->pagein[r->calib->n] = t_in;
		if (r->calib->evict)
			r->calib->evict[r->calib->n] = t_evict;
		if (r->calib->pagein_end)
			r->calib->pagein_end[r->calib->n] = t_done;
		if (r->calib->began)
			r->calib->began[r->calib->n] = t_began;
		r->calib->n++;
	}

	uint64_t total_ns = clock_ticks_to_ns(t_done + r->costs.post - t_begin);
	RCTR_ADD(r, handling_ns, clock_ticks_to_ns(t_done - t_seen - spun));
	RCTR_ADD(r, faults_total_ns, total_ns);
}

void fault_trace(struct region *r, enum trace_kind kind, size_t pg, uint64_t t_begin,
		 uint64_t t_seen, uint64_t spun, uint64_t link_ns)
{
	/* Recorded with the counters, before the page-in: the process may
	 * end as soon as the page is in. The end and dime's handling are
	 * estimated with the calibrated page-in, as the histogram's time. */
	uint64_t t0 = clock_ticks();
	trace_fault(r, kind, pg, t_begin, t0 + r->costs.post, clock_ticks_to_ns(spun),
		    clock_ticks_to_ns(t0 - t_seen - spun + r->costs.handoff), link_ns);
	/* The page-in starts that much later: later faults take it off
	 * their waits, as any lateness, so tracing is not charged to the
	 * program. */
	add_debt(r, (int64_t)(clock_ticks() - t0));
}

/* A fork()ed child rebuilds its page states from its page tables, all of
 * them settled: nothing is due there. This runs before the engine's own
 * child handler (constructors run before the first region exists). */
static void forget_due_in_child(void)
{
	for (size_t i = 0; i < sizeof(engine.regions) / sizeof(engine.regions[0]); i++) {
		struct region *r = atomic_load_explicit(&engine.regions[i], memory_order_relaxed);
		if (r) {
			r->evict_due = 0;
			atomic_store_explicit(&r->delay_debt, 0, memory_order_relaxed);
		}
	}
}

__attribute__((constructor)) static void fault_init(void)
{
	pthread_atfork(NULL, NULL, forget_due_in_child);
}
