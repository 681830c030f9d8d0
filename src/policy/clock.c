/* CLOCK (second chance). The local pages form a ring in arrival order; the
 * hand looks at the oldest: if it was referenced since the hand last
 * passed, its bit is cleared and it goes round again, else it is the
 * victim. Written as a queue: a referenced page moves to the tail.
 *
 * The reference bit comes from dime's observation (include/dime/policy.h):
 * clearing a page's bit asks dime to make the page inactive (unmapped, still
 * local), and touching it again is a soft fault that sets the bit. A new
 * page starts referenced: it was just touched. */
#include "list.h"
#include "observe.h"
#include "policy.h"

struct clk {
	struct plist l;
	struct pending q;
	uint8_t *ref; /* per page */
	uint64_t npages;
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
	c->ref[p] = 1;
	if (how == DIME_PAGE_REFERENCED && plist_linked(&c->l, p))
		return; /* keeps its place in the ring */
	if (plist_linked(&c->l, p))
		plist_del(&c->l, 0, p);
	pending_drop(&c->q, p);
	plist_push(&c->l, 0, p);
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
	pending_give(&c->q, ch);
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
};
