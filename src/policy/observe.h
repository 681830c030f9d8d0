/* Pages a built-in policy wants observed but has not handed to dime yet:
 * dime takes at most max_observe per call, a policy may want more at once
 * (CLOCK's first sweep, LRU's first refill). A ring of page indices plus
 * a flag per page, so that a page is queued once and one that leaves is
 * skipped. Under the region lock. */
#ifndef DIME_POLICY_OBSERVE_H
#define DIME_POLICY_OBSERVE_H

#include "../../include/dime/policy.h"

#include <stdbool.h>
#include <stdint.h>

struct pending {
	uint64_t *ring;
	uint64_t cap, head, n;
	uint64_t pushed, popped; /* requests queued and taken out, ever */
	uint8_t *queued; /* per page */
	uint64_t npages;
	const struct dime_policy_host *host;
};

static inline int pending_init(struct pending *q, const struct dime_policy_info *info)
{
	/* No more pages can wait than are local: the budget, plus what may
	 * be mapped beyond it for a moment; a request beyond is dropped. */
	q->cap = info->local_npages + 1024;
	q->npages = info->npages;
	q->host = info->host;
	q->head = q->n = q->pushed = q->popped = 0;
	q->ring = info->host->alloc(q->cap * sizeof(uint64_t));
	q->queued = info->host->alloc(info->npages);
	if (!q->ring || !q->queued) {
		q->host->free(q->ring, q->cap * sizeof(uint64_t));
		q->host->free(q->queued, q->npages);
		return -12;
	}
	return 0;
}

static inline void pending_free(struct pending *q)
{
	q->host->free(q->ring, q->cap * sizeof(uint64_t));
	q->host->free(q->queued, q->npages);
}

static inline void pending_add(struct pending *q, uint64_t p)
{
	if (q->queued[p] || q->n == q->cap)
		return;
	q->queued[p] = 1;
	q->ring[(q->head + q->n++) % q->cap] = p;
	q->pushed++;
}

/* p no longer needs observing (it left, or was chosen). */
static inline void pending_drop(struct pending *q, uint64_t p)
{
	q->queued[p] = 0; /* its ring entry is skipped when reached */
}

static inline bool pending_has(const struct pending *q, uint64_t p)
{
	return q->queued[p];
}

/* Hands queued pages to dime, oldest request first, up to the request
 * numbered `until` (pushed's value at some earlier time; UINT64_MAX: all). */
static inline void pending_give_until(struct pending *q, struct dime_policy_choice *c,
				      uint64_t until)
{
	while (q->n && c->nobserve < c->max_observe && q->popped < until) {
		uint64_t p = q->ring[q->head];
		q->head = (q->head + 1) % q->cap;
		q->n--;
		q->popped++;
		if (q->queued[p]) {
			q->queued[p] = 0;
			c->observe[c->nobserve++] = p;
		}
	}
}

static inline void pending_give(struct pending *q, struct dime_policy_choice *c)
{
	pending_give_until(q, c, UINT64_MAX);
}

#endif
