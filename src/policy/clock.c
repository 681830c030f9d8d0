/* CLOCK (second chance). The local pages form a ring in arrival order; the
 * hand looks at the oldest: if it was referenced since the hand last
 * passed, its bit is cleared and it goes round again, else it is the
 * victim. Written as a queue: a referenced page moves to the tail.
 *
 * The reference bit comes from dime's observation (include/dime/policy.h):
 * clearing a page's bit asks dime to make the page inactive (unmapped, still
 * local), and touching it again is a soft fault that sets the bit. A new
 * page starts unreferenced and observed: it reports its next use. */
#include "list.h"
#include "observe.h"
#include "policy.h"

struct clk {
	struct plist l;
	struct pending q;
	uint8_t *ref; /* per page */
	uint64_t npages;
	uint64_t queued_before; /* pending.pushed at the end of the last choose */
	const struct dime_policy_host *host;
};

static void clk_free(struct clk *c)
{
	c->host->free(c->ref, c->npages);
	c->host->free(c, sizeof(*c));
}

static int clk_init(const struct dime_policy_info *info, void **state)
{
	struct clk *c = info->host->alloc(sizeof(*c));
	if (!c)
		return -12;
	c->host = info->host;
	c->npages = info->npages;
	c->ref = info->host->alloc(info->npages);
	if (!c->ref) {
		clk_free(c);
		return -12;
	}
	int err = plist_init(&c->l, info, 1);
	if (!err) {
		err = pending_init(&c->q, info);
		if (err)
			plist_free(&c->l);
	}
	if (err) {
		clk_free(c);
		return err;
	}
	*state = c;
	return 0;
}

static void clk_teardown(void *st)
{
	struct clk *c = st;
	pending_free(&c->q);
	plist_free(&c->l);
	clk_free(c);
}

static void clk_page_local(void *st, uint64_t p, enum dime_page_event how)
{
	struct clk *c = st;
	if (how == DIME_PAGE_REFERENCED && plist_linked(&c->l, p)) {
		c->ref[p] = 1;
		return; /* keeps its place in the ring */
	}
	if (plist_linked(&c->l, p))
		plist_del(&c->l, 0, p);
	pending_drop(&c->q, p);
	plist_push(&c->l, 0, p);
	if (how == DIME_PAGE_FIRST_TOUCH || how == DIME_PAGE_FETCHED) {
		/* Observed from its arrival on: the bit then says whether it
		 * was used again. (Arriving with the bit set instead makes
		 * the hand clear a lap of new pages at once now and then, and
		 * take the first of them, hot or not, before any could
		 * report.) Costs no extra move: the page would be moved out
		 * to leave anyway, and an observed victim is already out. */
		c->ref[p] = 0;
		pending_add(&c->q, p);
	} else {
		c->ref[p] = 1;
	}
}

static void clk_page_gone(void *st, uint64_t p)
{
	struct clk *c = st;
	if (plist_linked(&c->l, p))
		plist_del(&c->l, 0, p);
	pending_drop(&c->q, p);
	c->ref[p] = 0;
}

static void clk_choose(void *st, struct dime_policy_choice *ch)
{
	struct clk *c = st;
	/* One lap clears every bit, a second passes the pages still waiting
	 * to be observed: a victim is found within 2 * len + 1 looks. */
	uint64_t looks = 2 * c->l.len[0] + 1;
	while (ch->nvictims < ch->max_victims && looks--) {
		uint64_t p = plist_first(&c->l, 0);
		if (p == UINT64_MAX)
			break;
		plist_del(&c->l, 0, p);
		if (c->ref[p]) {
			c->ref[p] = 0;
			plist_push(&c->l, 0, p);
			pending_add(&c->q, p);
			continue;
		}
		/* A limit: when a batch of victims finds too few pages that
		 * are observed and unreferenced, it takes pages whose bit it
		 * has just cleared, hot or not. */
		if (pending_has(&c->q, p) && looks) {
			/* Not observed yet (dime takes a limited number of
			 * pages a call): its bit says nothing, so it goes
			 * round again, unless nothing else is left. */
			plist_push(&c->l, 0, p);
			continue;
		}
		pending_drop(&c->q, p);
		ch->victims[ch->nvictims++] = p;
		looks = 2 * c->l.len[0] + 1;
	}
	/* Not the pages that arrived since the last call: one of them is the
	 * page whose fault is asking, still on its way in (dime could not
	 * observe it); they go next time. */
	pending_give_until(&c->q, ch, c->queued_before);
	c->queued_before = c->q.pushed;
}

/* The hand's next victims: pages in order whose bit is clear and that are
 * observed already; if fewer, the ring's order (after a lap, choose takes
 * those). */
static int clk_peek(void *st, uint64_t skip, uint64_t *page)
{
	struct clk *c = st;
	uint64_t h = plist_head(&c->l, 0), k = skip;
	for (uint64_t p = PL_IDX(c->l.next[h]); p != h; p = PL_IDX(c->l.next[p]))
		if (!c->ref[p] && !pending_has(&c->q, p) && !k--) {
			*page = p;
			return 1;
		}
	for (uint64_t p = PL_IDX(c->l.next[h]); p != h; p = PL_IDX(c->l.next[p]))
		if (!skip--) {
			*page = p;
			return 1;
		}
	return 0;
}

const struct dime_policy policy_clock = {
	DIME_POLICY_INIT,
	.name = "clock",
	.summary = "second chance, reference bits from soft faults",
	.init = clk_init,
	.teardown = clk_teardown,
	.page_local = clk_page_local,
	.choose = clk_choose,
	.page_gone = clk_page_gone,
	.peek = clk_peek,
};
