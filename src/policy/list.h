/* Intrusive doubly linked lists over page indices, for the built-in
 * policies: two u64 arrays of npages + nheads entries (64-bit: a region of
 * `dime insert` spans an address space; only touched parts of the lazily
 * mapped arrays cost memory); entry npages + k is the head of list k. Links store index + 1, so that zero-filled arrays
 * (fresh host->alloc memory) mean "in no list": a page is unlinked or
 * linked in O(1) and knows whether it is linked. All under the region
 * lock, like every policy callback. */
#ifndef DIME_POLICY_LIST_H
#define DIME_POLICY_LIST_H

#include "../../include/dime/policy.h"

#include <stdbool.h>
#include <stdint.h>

struct plist {
	uint64_t npages;
	unsigned nheads;
	uint64_t *next, *prev;
	uint64_t *len; /* per list */
	const struct dime_policy_host *host;
};

#define PL_LINK(i) ((uint64_t)(i) + 1)
#define PL_IDX(v) ((uint64_t)(v) - 1)

static inline size_t plist_bytes(uint64_t npages, unsigned nheads)
{
	return (size_t)(npages + nheads) * sizeof(uint64_t);
}

static inline int plist_init(struct plist *l, const struct dime_policy_info *info, unsigned nheads)
{
	l->npages = info->npages;
	l->nheads = nheads;
	l->host = info->host;
	l->next = info->host->alloc(plist_bytes(l->npages, nheads));
	l->prev = info->host->alloc(plist_bytes(l->npages, nheads));
	l->len = info->host->alloc(nheads * sizeof(uint64_t));
	if (!l->next || !l->prev || !l->len) {
		l->host->free(l->next, plist_bytes(l->npages, nheads));
		l->host->free(l->prev, plist_bytes(l->npages, nheads));
		l->host->free(l->len, nheads * sizeof(uint64_t));
		return -12; /* ENOMEM */
	}
	for (unsigned k = 0; k < nheads; k++) {
		uint64_t h = l->npages + k;
		l->next[h] = l->prev[h] = PL_LINK(h);
	}
	return 0;
}

static inline void plist_free(struct plist *l)
{
	l->host->free(l->next, plist_bytes(l->npages, l->nheads));
	l->host->free(l->prev, plist_bytes(l->npages, l->nheads));
	l->host->free(l->len, l->nheads * sizeof(uint64_t));
}

static inline bool plist_linked(const struct plist *l, uint64_t p)
{
	return l->next[p] != 0;
}

/* Unlinks p from list k (the caller knows which list p is in). */
static inline void plist_del(struct plist *l, unsigned k, uint64_t p)
{
	uint64_t n = PL_IDX(l->next[p]), pr = PL_IDX(l->prev[p]);
	l->next[pr] = PL_LINK(n);
	l->prev[n] = PL_LINK(pr);
	l->next[p] = l->prev[p] = 0;
	l->len[k]--;
}

/* Inserts p (unlinked) after node `at` (a page or a head) of list k. */
static inline void plist_add_after(struct plist *l, unsigned k, uint64_t at, uint64_t p)
{
	uint64_t n = PL_IDX(l->next[at]);
	l->next[at] = PL_LINK(p);
	l->prev[p] = PL_LINK(at);
	l->next[p] = PL_LINK(n);
	l->prev[n] = PL_LINK(p);
	l->len[k]++;
}

static inline uint64_t plist_head(const struct plist *l, unsigned k)
{
	return l->npages + k;
}

/* Newest at the tail (before the head), oldest first after the head. */
static inline void plist_push(struct plist *l, unsigned k, uint64_t p)
{
	plist_add_after(l, k, PL_IDX(l->prev[plist_head(l, k)]), p);
}

/* The oldest page of list k, or UINT64_MAX if it is empty. */
static inline uint64_t plist_first(const struct plist *l, unsigned k)
{
	uint64_t f = PL_IDX(l->next[plist_head(l, k)]);
	return f == plist_head(l, k) ? UINT64_MAX : f;
}

#endif
