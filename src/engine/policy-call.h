/* The engine's calls into the replacement policy (include/dime/policy.h),
 * all with the region lock held, each timed into the policy_ns counter so
 * that a policy's own cost per fault can be reported. A clock read costs
 * ~10 ns on x86_64 (TSC); a callback of the built-ins 20-100 ns. */
#ifndef DIME_POLICY_CALL_H
#define DIME_POLICY_CALL_H

#include "clock.h"
#include "instance.h"
#include "internal.h"

static inline void policy_took(struct region *r, uint64_t t0)
{
	ctr_add(&r->ctr->policy_ns, clock_ticks_to_ns(clock_ticks() - t0));
}

/* In an instance, the page's age in the instance's order starts with
 * every event the policy learns (instance.c). */
static inline void pol_local(struct region *r, size_t pg, enum dime_page_event how)
{
	uint64_t t0 = clock_ticks();
	r->policy->page_local(r->policy_state, pg, how);
	policy_took(r, t0);
	if (r->inst)
		instance_page_local(r, pg);
}

static inline void pol_gone(struct region *r, size_t pg)
{
	uint64_t t0 = clock_ticks();
	r->policy->page_gone(r->policy_state, pg);
	policy_took(r, t0);
}

/* Asks for victims (and observations); then, if the policy has a tick and
 * it is due, gives it its tick with the observation room that is left. */
static inline void pol_choose(struct region *r, struct dime_policy_choice *c)
{
	uint64_t t0 = clock_ticks();
	if (c->max_victims)
		r->policy->choose(r->policy_state, c);
	if (c->nvictims > c->max_victims)
		c->nvictims = c->max_victims; /* a plug-in's bug must not overrun */
	if (c->nobserve > c->max_observe)
		c->nobserve = c->max_observe;
	if (r->policy->tick && (int64_t)(t0 - r->policy_next_tick) >= 0) {
		r->policy_next_tick = t0 + clock_ns_to_ticks(r->policy->tick_ns);
		struct dime_policy_choice t = {
			.victims = c->victims + c->nvictims,
			.observe = c->observe + c->nobserve,
			.max_observe = c->max_observe - c->nobserve,
		};
		r->policy->tick(r->policy_state, clock_ticks_to_ns(t0), &t);
		c->nobserve += t.nobserve <= t.max_observe ? t.nobserve : t.max_observe;
	}
	policy_took(r, t0);
}

#endif
