/* FIFO, DiME's default: pages leave local memory in the order they came in.
 *
 * An intrusive doubly linked list over page indices (two arrays, index
 * npages is the list head), so a page that leaves early (page_gone) is
 * unlinked in O(1) and the order of the others is exact. Links are 64-bit:
 * a region of `dime insert` spans a process's whole address space (the
 * arrays are mapped lazily, only touched parts cost memory). */
#include "../engine/book.h"
#include "policy.h"

#include <stdint.h>

struct fifo {
	size_t npages;
	uint64_t *next, *prev; /* 0 in both = not linked (see below) */
};

/* Links store index+1 so that zero-filled arrays mean "not in the list". */
#define LINK(i) ((uint64_t)(i) + 1)
#define UNLINK(v) ((size_t)(v) - 1)

static void *fifo_create(size_t npages, uint64_t local_npages)
{
	(void)local_npages;
	struct fifo *f = book_alloc(sizeof(*f));
	if (!f)
		return NULL;
	f->npages = npages;
	f->next = book_alloc((npages + 1) * sizeof(uint64_t));
	f->prev = book_alloc((npages + 1) * sizeof(uint64_t));
	if (!f->next || !f->prev) {
		book_free(f->next, (npages + 1) * sizeof(uint64_t));
		book_free(f->prev, (npages + 1) * sizeof(uint64_t));
		book_free(f, sizeof(*f));
		return NULL;
	}
	size_t h = npages;
	f->next[h] = f->prev[h] = LINK(h);
	return f;
}

static void fifo_destroy(void *st, size_t npages)
{
	struct fifo *f = st;
	book_free(f->next, (npages + 1) * sizeof(uint64_t));
	book_free(f->prev, (npages + 1) * sizeof(uint64_t));
	book_free(f, sizeof(*f));
}

static void unlink_page(struct fifo *f, size_t p)
{
	size_t n = UNLINK(f->next[p]), pr = UNLINK(f->prev[p]);
	f->next[pr] = LINK(n);
	f->prev[n] = LINK(pr);
	f->next[p] = f->prev[p] = 0;
}

static void fifo_page_local(void *st, size_t p)
{
	struct fifo *f = st;
	size_t h = f->npages;
	if (f->next[p])
		unlink_page(f, p);
	size_t last = UNLINK(f->prev[h]);
	f->next[last] = LINK(p);
	f->prev[p] = LINK(last);
	f->next[p] = LINK(h);
	f->prev[h] = LINK(p);
}

static void fifo_page_gone(void *st, size_t p)
{
	struct fifo *f = st;
	if (f->next[p])
		unlink_page(f, p);
}

static bool fifo_choose_victim(void *st, size_t *page)
{
	struct fifo *f = st;
	size_t h = f->npages, first = UNLINK(f->next[h]);
	if (first == h)
		return false;
	unlink_page(f, first);
	*page = first;
	return true;
}

static bool fifo_peek_victim(void *st, size_t skip, size_t *page)
{
	struct fifo *f = st;
	size_t h = f->npages, p = UNLINK(f->next[h]);
	for (; p != h && skip; skip--)
		p = UNLINK(f->next[p]);
	if (p == h)
		return false;
	*page = p;
	return true;
}

const struct dime_policy_ops dime_policy_fifo = {
	.name = "fifo",
	.summary = "first in, first out (DiME's default)",
	.create = fifo_create,
	.destroy = fifo_destroy,
	.page_local = fifo_page_local,
	.page_gone = fifo_page_gone,
	.choose_victim = fifo_choose_victim,
	.peek_victim = fifo_peek_victim,
};
