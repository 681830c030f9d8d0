/* Discarding and moving ranges of a region. See ranges.h.
 *
 * These run in the program's thread, concurrently with faults on other
 * pages. Each page changes state under the region lock; a page that a
 * handler is moving right now (FETCHING or EVICTING) is waited for, so the
 * two never act on one page at once. */
#include "clock.h"
#include "instance.h"
#include "policy-call.h"
#include "ranges.h"
#include "sys.h"
#include "uffd.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

/* Locks r and waits until page pg is not in flight. Returns with the lock
 * held. */
static void lock_settled(struct region *r, size_t pg)
{
	pthread_mutex_lock(&r->lock);
	while (r->state[pg] == PAGE_FETCHING || r->state[pg] == PAGE_EVICTING) {
		pthread_mutex_unlock(&r->lock);
		sched_yield();
		pthread_mutex_lock(&r->lock);
	}
}

void region_discard(struct region *r, uintptr_t addr, size_t len)
{
	size_t first = (addr - r->base) >> engine.page_shift;
	size_t n = len >> engine.page_shift, gone = 0;
	for (size_t pg = first; pg < first + n; pg++) {
		lock_settled(r, pg);
		if (r->state[pg] == PAGE_LOCAL || r->state[pg] == PAGE_INACTIVE) {
			pol_gone(r, pg);
			r->local_count--;
			gone++;
		}
		r->state[pg] = PAGE_UNTOUCHED;
		pthread_mutex_unlock(&r->lock);
	}
	size_t off = addr - r->base;
	sys_madvise((void *)addr, len, MADV_DONTNEED);
	sys_madvise((void *)(r->store + off), len, MADV_DONTNEED);
	if (gone) {
		RCTR_LOCAL_SUB(r, gone);
		if (r->inst) {
			pthread_mutex_lock(&r->lock);
			instance_sync(r);
			pthread_mutex_unlock(&r->lock);
		}
	}
}

int region_move(struct region *r, uintptr_t dst, uintptr_t src, size_t len)
{
	size_t ps = engine.page_size, n = len >> engine.page_shift;
	size_t s0 = (src - r->base) >> engine.page_shift, d0 = (dst - r->base) >> engine.page_shift;
	int uffd = r->server->uffd;
	for (size_t i = 0; i < n; i++) {
		size_t sp = s0 + i, dp = d0 + i;
		lock_settled(r, sp);
		enum page_state st = r->state[sp];
		/* Local bytes live in the region, remote and inactive ones in
		 * the store. An inactive page arrives remote: the policy's
		 * order has no place for it at the new index. */
		bool inactive = st == PAGE_INACTIVE;
		if (inactive) {
			pol_gone(r, sp);
			r->local_count--;
			RCTR_LOCAL_SUB(r, 1);
			st = PAGE_REMOTE;
		}
		uintptr_t from = st == PAGE_LOCAL ? src + i * ps : r->store + sp * ps;
		uintptr_t to = st == PAGE_LOCAL ? dst + i * ps : r->store + dp * ps;
		int err = 0;
		if ((st == PAGE_LOCAL || st == PAGE_REMOTE) && engine.use_move) {
			/* A stale copy in the destination slot, left by a
			 * page-in that copied (pageio.c), is dropped before
			 * the move. The kernel may answer EEXIST or EINVAL
			 * for a page it has moved, or EINVAL for a page table
			 * freed under the call (pageio.c, page_left()): the
			 * page tables say what happened; try again while the
			 * bytes are still at `from`. */
			if (st == PAGE_REMOTE)
				sys_madvise((void *)to, ps, MADV_DONTNEED);
			for (int attempt = 0; attempt < 3; attempt++) {
				err = uffd_move(uffd, to, from, ps);
				if (err == 0 || err == -EBUSY || err == -ENOENT)
					break;
				if (!page_has_bytes(from)) {
					err = 0;
					break;
				}
			}
		} else if (st == PAGE_REMOTE) {
			/* Copy fallback: the store is plain memory. */
			memcpy((void *)to, (const void *)from, ps);
			sys_madvise((void *)from, ps, MADV_DONTNEED);
		} else if (st == PAGE_LOCAL) {
			if (page_has_bytes(from))
				err = uffd_copy(uffd, to, (const void *)from, ps);
			sys_madvise((void *)from, ps, MADV_DONTNEED);
		}
		if (err == -ENOENT)
			err = 0; /* no bytes: the destination reads zeroes too */
		if (err == -EBUSY) {
			/* Shared with a fork()ed relative: copy instead. */
			err = uffd_copy(uffd, to, (const void *)from, ps);
			sys_madvise((void *)from, ps, MADV_DONTNEED);
		}
		if (err) {
			pthread_mutex_unlock(&r->lock);
			return err;
		}
		if (st == PAGE_LOCAL) {
			pol_gone(r, sp);
			pol_local(r, dp, DIME_PAGE_RETURNED);
		}
		/* touched_end first, in this hold of the lock (internal.h). */
		if (st == PAGE_LOCAL || st == PAGE_REMOTE) {
			size_t end = atomic_load(&r->touched_end);
			while (dp + 1 > end && !atomic_compare_exchange_weak(&r->touched_end, &end, dp + 1))
				;
		}
		r->state[dp] = st;
		r->state[sp] = PAGE_UNTOUCHED;
		pthread_mutex_unlock(&r->lock);
	}
	return 0;
}
