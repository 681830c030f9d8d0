/* dime_malloc(): mimalloc heaps on a region's arena. mimalloc heaps belong
 * to one thread, so each thread gets its own heap per region, created on
 * first use. */
#include "heap.h"

#include <errno.h>
#include <mimalloc.h>

static _Atomic unsigned generation;

struct thread_heap {
	unsigned gen;
	mi_heap_t *heap;
};
static __thread struct thread_heap thread_heaps[64];

void heap_attach(struct region *r, bool exclusive)
{
	mi_arena_id_t id;
	r->heap_gen = atomic_fetch_add(&generation, 1) + 1;
	/* is_large marks the memory pinned: mimalloc then never decommits or
	 * resets it, which would unmap pages behind the engine's back. */
	if (mi_manage_os_memory_ex((void *)r->base, r->size, true, true, true, -1, exclusive, &id))
		r->heap_arena = id;
}

static mi_heap_t *heap_of(struct region *r)
{
	struct thread_heap *th = &thread_heaps[r->id];
	if (th->gen != r->heap_gen) {
		th->heap = mi_heap_new_in_arena(r->heap_arena);
		th->gen = th->heap ? r->heap_gen : 0;
	}
	return th->heap;
}

void *dime_malloc(struct dime_region *dr, size_t size)
{
	struct region *r = (struct region *)dr;
	mi_heap_t *h = r->heap_arena < 0 ? NULL : heap_of(r);
	if (!h) {
		errno = ENOMEM;
		return NULL;
	}
	return mi_heap_malloc(h, size);
}

void *dime_calloc(struct dime_region *dr, size_t n, size_t size)
{
	struct region *r = (struct region *)dr;
	mi_heap_t *h = r->heap_arena < 0 ? NULL : heap_of(r);
	if (!h) {
		errno = ENOMEM;
		return NULL;
	}
	return mi_heap_calloc(h, n, size);
}

void dime_free(void *p)
{
	mi_free(p);
}
