/* LRU as Linux and DiME approximate it: an active and an inactive list.
 * New pages enter the active list; its oldest pages move to the inactive
 * list, which is kept at a quarter of the budget (at least twice the
 * largest batch of victims asked for, at most half the budget); victims leave from the
 * inactive list's oldest end. A page on the inactive list is observed
 * (include/dime/policy.h: unmapped, still local), so touching it again is a
 * soft fault, which promotes it back to the active list.
 *
 * A page therefore survives as long as it is touched at least once in the
 * time the inactive list takes to drain (about a quarter of the budget's
 * worth of faults); a page touched less often than that is evicted in
 * least-recently-deactivated order. Each deactivated page costs one page
 * move, and one soft fault if it turns out to be in use. */
#include "list.h"
#include "observe.h"
#include "policy.h"

enum { ACTIVE = 0, INACTIVE = 1 };

struct lru {
	struct plist l;
	struct pending q;
	uint8_t *where; /* per page: 0 none, 1 + ACTIVE or 1 + INACTIVE */
	uint64_t npages, target, max_target;
	const struct dime_policy_host *host;
};

static void lru_free(struct lru *u)
{
	u->host->free(u->where, u->npages);
	u->host->free(u, sizeof(*u));
}

static int lru_init(const struct dime_policy_info *info, void **state)
{
	struct lru *u = info->host->alloc(sizeof(*u));
	if (!u)
		return -12;
	u->host = info->host;
	u->npages = info->npages;
	u->target = info->local_npages / 4 ? info->local_npages / 4 : 1;
	u->max_target = info->local_npages / 2 ? info->local_npages / 2 : 1;
	u->where = info->host->alloc(info->npages);
	if (!u->where) {
		lru_free(u);
		return -12;
	}
	int err = plist_init(&u->l, info, 2);
	if (!err) {
		err = pending_init(&u->q, info);
		if (err)
			plist_free(&u->l);
	}
	if (err) {
		lru_free(u);
		return err;
	}
	*state = u;
	return 0;
}

static void lru_teardown(void *st)
{
	struct lru *u = st;
	pending_free(&u->q);
	plist_free(&u->l);
	lru_free(u);
}

static void unlink_page(struct lru *u, uint64_t p)
{
	if (u->where[p])
		plist_del(&u->l, u->where[p] - 1u, p);
	u->where[p] = 0;
	pending_drop(&u->q, p);
}

static void lru_page_local(void *st, uint64_t p, enum dime_page_event how)
{
	struct lru *u = st;
	(void)how; /* new, back, or referenced: all become the newest active */
	unlink_page(u, p);
	plist_push(&u->l, ACTIVE, p);
	u->where[p] = 1 + ACTIVE;
}

static void lru_page_gone(void *st, uint64_t p)
{
	unlink_page(st, p);
}

static uint64_t take_oldest(struct lru *u, unsigned list)
{
	uint64_t p = plist_first(&u->l, list);
	if (p != UINT64_MAX)
		unlink_page(u, p);
	return p;
}

static void lru_choose(void *st, struct dime_policy_choice *c)
{
	struct lru *u = st;
	/* Pages promoted since the last call left the inactive list: it must
	 * hold a batch's victims with room to spare, or they would come from
	 * the unobserved active list. */
	if (u->target < 2 * c->max_victims)
		u->target = 2 * c->max_victims < u->max_target ? 2 * c->max_victims : u->max_target;
	/* Victims first, from pages that had their time on the inactive list;
	 * the active list only if that ran dry. */
	while (c->nvictims < c->max_victims) {
		uint64_t p = take_oldest(u, INACTIVE);
		if (p == UINT64_MAX)
			p = take_oldest(u, ACTIVE);
		if (p == UINT64_MAX)
			break;
		c->victims[c->nvictims++] = p;
	}
	/* Then the inactive list is topped up for the next victims. */
	while (u->l.len[INACTIVE] < u->target) {
		uint64_t p = take_oldest(u, ACTIVE);
		if (p == UINT64_MAX)
			break;
		plist_push(&u->l, INACTIVE, p);
		u->where[p] = 1 + INACTIVE;
		pending_add(&u->q, p);
	}
	pending_give(&u->q, c);
}

/* Victims come from the inactive list's oldest end, then the active's. */
static int lru_peek(void *st, uint64_t skip, uint64_t *page)
{
	struct lru *u = st;
	for (unsigned list = INACTIVE + 1; list-- > 0;) {
		uint64_t h = plist_head(&u->l, list);
		for (uint64_t p = PL_IDX(u->l.next[h]); p != h; p = PL_IDX(u->l.next[p]))
			if (!skip--) {
				*page = p;
				return 1;
			}
	}
	return 0;
}

const struct dime_policy policy_lru = {
	DIME_POLICY_INIT,
	.name = "lru",
	.summary = "active/inactive lists (Linux's, DiME's), promotion on soft faults",
	.init = lru_init,
	.teardown = lru_teardown,
	.page_local = lru_page_local,
	.choose = lru_choose,
	.page_gone = lru_page_gone,
	.peek = lru_peek,
};
