/* Random, DiME's: the victim is a local page chosen uniformly at random.
 * The local pages are kept dense in an array (slot[]), with each page's
 * position (pos[], index + 1, zero = not local), so adding, removing and
 * choosing are O(1). No access information. */
#include "policy.h"

struct rnd {
	uint64_t *slot; /* local pages, dense: slot[0 .. n-1] */
	uint64_t *pos;  /* per page: its slot + 1, or 0 */
	uint64_t n, npages, rng;
	uint64_t peek_rng; /* peek's own draws: choose's stay as they were */
	const struct dime_policy_host *host;
};

static int rnd_init(const struct dime_policy_info *info, void **state)
{
	const struct dime_policy_host *h = info->host;
	struct rnd *r = h->alloc(sizeof(*r));
	if (!r)
		return -12;
	r->host = h;
	r->npages = info->npages;
	r->rng = info->seed;
	r->peek_rng = info->seed ^ 0x9e3779b97f4a7c15ull;
	r->slot = h->alloc(info->npages * sizeof(uint64_t));
	r->pos = h->alloc(info->npages * sizeof(uint64_t));
	if (!r->slot || !r->pos) {
		h->free(r->slot, info->npages * sizeof(uint64_t));
		h->free(r->pos, info->npages * sizeof(uint64_t));
		h->free(r, sizeof(*r));
		return -12;
	}
	*state = r;
	return 0;
}

static void rnd_teardown(void *st)
{
	struct rnd *r = st;
	r->host->free(r->slot, r->npages * sizeof(uint64_t));
	r->host->free(r->pos, r->npages * sizeof(uint64_t));
	r->host->free(r, sizeof(*r));
}

static void rnd_remove(struct rnd *r, uint64_t p)
{
	uint64_t i = r->pos[p] - 1;
	uint64_t last = r->slot[--r->n];
	r->slot[i] = last;
	r->pos[last] = i + 1;
	r->pos[p] = 0;
}

static void rnd_page_local(void *st, uint64_t p, enum dime_page_event how)
{
	struct rnd *r = st;
	(void)how;
	if (r->pos[p])
		return;
	r->slot[r->n] = p;
	r->pos[p] = ++r->n;
}

static void rnd_page_gone(void *st, uint64_t p)
{
	struct rnd *r = st;
	if (r->pos[p])
		rnd_remove(r, p);
}

static void rnd_choose(void *st, struct dime_policy_choice *c)
{
	struct rnd *r = st;
	while (c->nvictims < c->max_victims && r->n) {
		/* Multiply-shift: uniform to within n / 2^64, no division. */
		uint64_t i = (uint64_t)(((unsigned __int128)r->host->random(&r->rng) * r->n) >> 64);
		uint64_t p = r->slot[i];
		rnd_remove(r, p);
		c->victims[c->nvictims++] = p;
	}
}

/* Random has no order: any local page is as likely the next victim as
 * another, so peek names one drawn at random (whatever `skip`), from
 * draws of its own. A fixed slot would not do: slot[0] holds a page that
 * random choices happened to spare for long, so an instance comparing
 * the ages of its processes' next victims (engine/instance.c) would keep
 * asking the process holding it. */
static int rnd_peek(void *st, uint64_t skip, uint64_t *page)
{
	struct rnd *r = st;
	if (skip >= r->n)
		return 0;
	uint64_t i = (uint64_t)(((unsigned __int128)r->host->random(&r->peek_rng) * r->n) >> 64);
	*page = r->slot[i];
	return 1;
}

const struct dime_policy policy_random = {
	DIME_POLICY_INIT,
	.name = "random",
	.summary = "a local page chosen at random (DiME's)",
	.init = rnd_init,
	.teardown = rnd_teardown,
	.page_local = rnd_page_local,
	.choose = rnd_choose,
	.page_gone = rnd_page_gone,
	.peek = rnd_peek,
};
