/* What the target does to its covered memory, as the kernel reports it on
 * the uffd. The kernel lets the target go on once the message is read, and
 * the agent reads no further message before this one is handled (agent.c),
 * so the target's next faults find the page states already right.
 *
 * REMOVE (madvise DONTNEED/FREE/REMOVE) arrives before the kernel zaps the
 * pages, UNMAP and REMAP after the mapping changed. */
#include "attach.h"
#include "../engine/instance.h"
#include "../engine/policy-call.h"
#include "../engine/uffd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Pages [start, end) of the region read as zeroes from now on: local ones
 * leave the budget, remote ones leave stale bytes in the store (the next
 * page-out there finds them, EEXIST, and discards them first). Evictions
 * left due are done first: they count as done already, and a page leaving
 * here must not be counted out twice. */
static void forget(struct attach_target *t, uintptr_t start, uintptr_t end)
{
	struct region *r = t->region;
	if (!r)
		return;
	size_t ps = engine.page_size;
	bool covered = false;
	for (size_t i = 0; i < t->nranges && !covered; i++)
		covered = t->ranges[i].start < end && t->ranges[i].end > start;
	if (!covered)
		return; /* the store, or memory dime does not cover */
	fault_drain(r);
	for (size_t i = 0; i < t->nranges; i++) {
		uintptr_t lo = t->ranges[i].start > start ? t->ranges[i].start : start;
		uintptr_t hi = t->ranges[i].end < end ? t->ranges[i].end : end;
		uint64_t gone = 0;
		pthread_mutex_lock(&r->lock);
		for (uintptr_t a = lo; a < hi; a += ps) {
			size_t pg = (a - r->base) / ps;
			if (r->state[pg] == PAGE_LOCAL || r->state[pg] == PAGE_INACTIVE) {
				pol_gone(r, pg);
				r->local_count--;
				gone++;
			}
			r->state[pg] = PAGE_UNTOUCHED;
		}
		/* They leave the instance's count now, not at the next fault:
		 * the target may not fault again for a long time. */
		if (gone && r->inst)
			instance_sync(r);
		pthread_mutex_unlock(&r->lock);
		if (gone)
			RCTR_LOCAL_SUB(r, gone);
	}
}

/* mremap() moved [from, from+len) to `to`. The local pages went with the
 * mapping; the remote ones' bytes are still in the store at from's image.
 * The new place is outside the store's layout, so it leaves emulation:
 * remote pages move there, then it is unregistered. */
static void remap(struct attach_target *t, uintptr_t from, uintptr_t to, size_t len)
{
	struct region *r = t->region;
	size_t ps = engine.page_size, n = 0;
	/* Which pages to bring over, taken before anything else: a move can
	 * wait for the next event (the UNMAP of the old place follows), which
	 * is handled meanwhile and forgets the old place. */
	size_t *offs = r ? malloc((len / ps) * sizeof(*offs)) : NULL;
	for (size_t off = 0; offs && off < len; off += ps) {
		uintptr_t a = from + off;
		/* Inactive pages (observed by the policy) are in the store too. */
		if (vmas_find(t, a) && (r->state[(a - r->base) / ps] == PAGE_REMOTE ||
					r->state[(a - r->base) / ps] == PAGE_INACTIVE))
			offs[n++] = off;
	}
	forget(t, from, from + len);
	vmas_uncover(t, from, from + len);
	for (size_t i = 0; i < n; i++) {
		int err = target_move_back(t, to + offs[i], from + offs[i] + t->delta);
		if (err && err != -ENOENT)
			agent_log(t, "dime: page %#lx lost its move to %#lx after mremap: %s\n",
				  (unsigned long)(from + offs[i]), (unsigned long)(to + offs[i]),
				  strerror(-err));
	}
	free(offs);
	uffd_unregister(t->uffd, to, len);
	agent_log(t, "dime: %#lx-%#lx moved to %#lx by mremap: no longer emulated\n",
		  (unsigned long)from, (unsigned long)(from + len), (unsigned long)to);
}

void events_handle(struct attach_target *t, const struct uffd_msg *m)
{
	switch (m->event) {
	case UFFD_EVENT_REMOVE:
		forget(t, m->arg.remove.start, m->arg.remove.end);
		break;
	case UFFD_EVENT_UNMAP:
		forget(t, m->arg.remove.start, m->arg.remove.end);
		vmas_uncover(t, m->arg.remove.start, m->arg.remove.end);
		break;
	case UFFD_EVENT_REMAP:
		remap(t, m->arg.remap.from, m->arg.remap.to, m->arg.remap.len);
		break;
	case UFFD_EVENT_FORK:
		child_settle(t, t->pid, (int)m->arg.fork.ufd);
		break;
	default:
		break;
	}
}
