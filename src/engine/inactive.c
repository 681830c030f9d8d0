/* The region's policy: starting and stopping it, and the pages it observes.
 *
 * Access information in user space. DiME read the hardware accessed bits;
 * a user-space emulator cannot (/sys/kernel/mm/page_idle needs root, a
 * kernel built with it, and PFNs from pagemap; write protection sees only
 * writes). dime takes it from the page tables it controls: a policy may ask
 * for a local page to be observed (include/dime/policy.h). The page moves to
 * the store like an evicted one (batched with the evictions: fault.c) but
 * stays local: state INACTIVE, counted in local_count, still in the
 * policy's order. The next access is a soft fault: it maps the page back
 * with no emulated delay, counts soft_faults, and tells the policy the page
 * was referenced. Choosing an inactive page as a victim costs nothing: its
 * bytes are in the store already. The price is a page move per observation
 * and a soft fault per observed page found in use (see make
 * bench-policies). */
#include "clock.h"
#include "internal.h"
#include "policy-call.h"
#include "uffd.h"

#include <errno.h>
#include <unistd.h>

void soft_fault(struct region *r, size_t pg, bool write, uint64_t t_seen)
{
	r->state[pg] = PAGE_FETCHING; /* still counted local */
	pol_local(r, pg, DIME_PAGE_REFERENCED);
	pthread_mutex_unlock(&r->lock);
	/* Counted before the page-in wakes the thread (see fault_resolve). */
	RCTR_ADD(r, soft_faults, 1);
	if (region_traced(r))
		fault_trace(r, TRACE_SOFT, pg, t_seen - r->costs.pre, t_seen, 0, 0);
	page_in(r, pg, true, write, false);
	uint64_t t_done = clock_ticks();
	pthread_mutex_lock(&r->lock);
	r->state[pg] = PAGE_LOCAL;
	pthread_mutex_unlock(&r->lock);
	if (r->server->mode == DIME_MODE_THREAD)
		uffd_wake(r->server->uffd, r->base + (pg << engine.page_shift), engine.page_size);
	uint64_t ns = clock_ticks_to_ns(t_done - t_seen);
	RCTR_ADD(r, handling_ns, ns);
	RCTR_ADD(r, soft_fault_ns, ns);
}

int policy_start(struct region *r)
{
	/* Different in every region and process (a fork child starts again
	 * with its own), so random choices are not replayed in lockstep. */
	static _Atomic uint64_t regions;
	struct dime_policy_info info = {
		.npages = r->npages,
		.local_npages = r->params.local_npages,
		.page_size = engine.page_size,
		.seed = clock_ticks() ^ ((uint64_t)getpid() << 32) ^
			(atomic_fetch_add(&regions, 1) * 0x9e3779b97f4a7c15ull),
		.host = &policy_host,
	};
	void *st = NULL;
	int err = r->policy->init(&info, &st);
	if (err > 0 || (!err && !st))
		err = -EINVAL; /* a plug-in that said neither yes nor no */
	r->policy_state = err ? NULL : st;
	r->policy_next_tick = clock_ticks();
	return err;
}

void policy_stop(struct region *r)
{
	if (r->policy_state)
		r->policy->teardown(r->policy_state);
	r->policy_state = NULL;
}
