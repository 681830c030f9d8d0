/* An out-of-tree replacement policy for dime: sampled LFU, the way Redis
 * approximates it. Each local page has a use count; a victim is the least
 * used of SAMPLE local pages drawn at random. Counts grow with each
 * reference dime reports (a soft fault on an observed page) and each
 * fetch, and are halved every HALF_LIFE_NS so that old popularity fades.
 * To learn about references, each choice asks dime to observe OBSERVE
 * random local pages (unmapped but still local: touching one again is a
 * soft fault).
 *
 * Built against include/dime/policy.h alone (see Makefile); no link-time
 * dependency on dime: memory and random numbers come from the host table.
 *
 *     make -C examples/policy DIME=../..      # -> lfu.so
 *     dime run --policy ./examples/policy/lfu.so -- PROGRAM
 *
 * Callbacks follow the header's rules: no malloc, no blocking, no
 * emulated memory; all state is in the object init returns. */
#include <dime/policy.h>

enum { SAMPLE = 8, OBSERVE = 2 };
#define HALF_LIFE_NS 100000000ull /* 100 ms */

struct lfu {
	uint64_t *slot;  /* local pages, dense */
	uint64_t *pos;   /* per page: slot + 1, 0 if not local */
	uint16_t *count; /* per page, kept while remote too */
	uint64_t n, npages, rng;
	const struct dime_policy_host *host;
};

static int lfu_init(const struct dime_policy_info *info, void **state)
{
	const struct dime_policy_host *h = info->host;
	struct lfu *l = h->alloc(sizeof(*l));
	if (!l)
		return -12; /* -ENOMEM */
	l->host = h;
	l->npages = info->npages;
	l->rng = info->seed;
	l->slot = h->alloc(info->npages * sizeof(uint64_t));
	l->pos = h->alloc(info->npages * sizeof(uint64_t));
	l->count = h->alloc(info->npages * sizeof(uint16_t));
	if (!l->slot || !l->pos || !l->count) {
		h->free(l->slot, info->npages * sizeof(uint64_t));
		h->free(l->pos, info->npages * sizeof(uint64_t));
		h->free(l->count, info->npages * sizeof(uint16_t));
		h->free(l, sizeof(*l));
		return -12;
	}
	*state = l;
	return 0;
}

static void lfu_teardown(void *st)
{
	struct lfu *l = st;
	l->host->free(l->slot, l->npages * sizeof(uint64_t));
	l->host->free(l->pos, l->npages * sizeof(uint64_t));
	l->host->free(l->count, l->npages * sizeof(uint16_t));
	l->host->free(l, sizeof(*l));
}

static void bump(struct lfu *l, uint64_t p)
{
	if (l->count[p] < UINT16_MAX)
		l->count[p]++;
}

static void lfu_page_local(void *st, uint64_t p, enum dime_page_event how)
{
	struct lfu *l = st;
	if (how == DIME_PAGE_FETCHED || how == DIME_PAGE_REFERENCED || how == DIME_PAGE_FIRST_TOUCH)
		bump(l, p);
	if (l->pos[p])
		return;
	l->slot[l->n] = p;
	l->pos[p] = ++l->n;
}

static void remove_page(struct lfu *l, uint64_t p)
{
	uint64_t i = l->pos[p] - 1;
	uint64_t last = l->slot[--l->n];
	l->slot[i] = last;
	l->pos[last] = i + 1;
	l->pos[p] = 0;
}

static void lfu_page_gone(void *st, uint64_t p)
{
	struct lfu *l = st;
	if (l->pos[p])
		remove_page(l, p);
	l->count[p] = 0; /* freed: its history means nothing now */
}

static uint64_t any_local(struct lfu *l)
{
	return l->slot[((unsigned __int128)l->host->random(&l->rng) * l->n) >> 64];
}

static void lfu_choose(void *st, struct dime_policy_choice *c)
{
	struct lfu *l = st;
	while (c->nvictims < c->max_victims && l->n) {
		uint64_t best = any_local(l);
		for (int i = 1; i < SAMPLE; i++) {
			uint64_t p = any_local(l);
			if (l->count[p] < l->count[best])
				best = p;
		}
		remove_page(l, best);
		c->victims[c->nvictims++] = best;
	}
	for (int i = 0; i < OBSERVE && l->n && c->nobserve < c->max_observe; i++)
		c->observe[c->nobserve++] = any_local(l);
}

/* Ages every count: halves them (the local pages' only, in O(local)). */
static void lfu_tick(void *st, uint64_t now_ns, struct dime_policy_choice *c)
{
	struct lfu *l = st;
	(void)now_ns;
	(void)c;
	for (uint64_t i = 0; i < l->n; i++)
		l->count[l->slot[i]] >>= 1;
}

const struct dime_policy dime_policy_plugin = {
	DIME_POLICY_INIT,
	.name = "lfu",
	.summary = "sampled LFU with halving counts (example plug-in)",
	.init = lfu_init,
	.teardown = lfu_teardown,
	.page_local = lfu_page_local,
	.choose = lfu_choose,
	.page_gone = lfu_page_gone,
	.tick = lfu_tick,
	.tick_ns = HALF_LIFE_NS,
};
