/* FIFO, DiME's default: pages leave local memory in the order they came
 * in. One intrusive list (list.h), so a page that leaves early (page_gone)
 * is unlinked in O(1) and the order of the others is exact. Needs no
 * access information: it never asks to observe a page. */
#include "list.h"
#include "policy.h"

struct fifo {
	struct plist l;
	const struct dime_policy_host *host;
};

static int fifo_init(const struct dime_policy_info *info, void **state)
{
	struct fifo *f = info->host->alloc(sizeof(*f));
	if (!f)
		return -12;
	f->host = info->host;
	int err = plist_init(&f->l, info, 1);
	if (err) {
		info->host->free(f, sizeof(*f));
		return err;
	}
	*state = f;
	return 0;
}

static void fifo_teardown(void *st)
{
	struct fifo *f = st;
	plist_free(&f->l);
	f->host->free(f, sizeof(*f));
}

static void fifo_page_local(void *st, uint64_t p, enum dime_page_event how)
{
	struct fifo *f = st;
	if (how == DIME_PAGE_REFERENCED)
		return; /* never observed; and FIFO ignores reuse */
	if (plist_linked(&f->l, p))
		plist_del(&f->l, 0, p);
	plist_push(&f->l, 0, p);
}

static void fifo_page_gone(void *st, uint64_t p)
{
	struct fifo *f = st;
	if (plist_linked(&f->l, p))
		plist_del(&f->l, 0, p);
}

static void fifo_choose(void *st, struct dime_policy_choice *c)
{
	struct fifo *f = st;
	while (c->nvictims < c->max_victims) {
		uint64_t p = plist_first(&f->l, 0);
		if (p == UINT64_MAX)
			return;
		plist_del(&f->l, 0, p);
		c->victims[c->nvictims++] = p;
	}
}

static int fifo_peek(void *st, uint64_t skip, uint64_t *page)
{
	struct fifo *f = st;
	uint64_t h = plist_head(&f->l, 0), p = PL_IDX(f->l.next[h]);
	for (; p != h && skip; skip--)
		p = PL_IDX(f->l.next[p]);
	if (p == h)
		return 0;
	*page = p;
	return 1;
}

const struct dime_policy policy_fifo = {
	DIME_POLICY_INIT,
	.name = "fifo",
	.summary = "first in, first out (DiME's default)",
	.init = fifo_init,
	.teardown = fifo_teardown,
	.page_local = fifo_page_local,
	.choose = fifo_choose,
	.page_gone = fifo_page_gone,
	.peek = fifo_peek,
};
