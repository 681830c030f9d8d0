/* Regions: the program-visible range, its store, page states, policy. */
#define _GNU_SOURCE /* PTHREAD_MUTEX_ADAPTIVE_NP */
#include "book.h"
#include "clock.h"
#include "heap.h"
#include "faultclock.h"
#include "internal.h"
#include "policy-call.h"
#include "region.h"
#include "sys.h"
#include "uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The region lock spins briefly before it sleeps: it is held for well
 * under a microsecond, while a sleeper costs the unlocker a futex wake and
 * itself a wake-up, ~60 us when the waker runs on the other vCPU of this
 * kind of VM. With two threads faulting, 3-12% of the faults found the
 * lock taken and 1-2% slept; spinning leaves next to none asleep. */
static void region_lock_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
}

/* Maps `size` bytes aligned to `align` (a power of two). */
static uintptr_t map_range(size_t size, size_t align)
{
	void *p = sys_mmap(NULL, size + align, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return 0;
	uintptr_t start = ((uintptr_t)p + align - 1) & ~(align - 1);
	if (start > (uintptr_t)p)
		sys_munmap(p, start - (uintptr_t)p);
	if ((uintptr_t)p + align > start)
		sys_munmap((void *)(start + size), (uintptr_t)p + align - start);
	p = (void *)start;
	/* Huge pages would be split by every 4 KiB fault and move. */
	sys_madvise(p, size, MADV_NOHUGEPAGE);
	return (uintptr_t)p;
}

/* Registers the private anonymous mappings inside [start, start+len) one
 * by one, from /proc/self/maps. For a range the program has partly mapped
 * something else over (a file with MAP_FIXED): one registration of the
 * whole range fails with EINVAL, and the foreign part has left emulation.
 * Reads with raw calls into a static buffer: this runs in a fork child
 * before its heap is usable. */
static int register_anonymous_parts(int uffd, uintptr_t start, size_t len)
{
	static char buf[1 << 16];
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int err = 0;
	size_t have = 0;
	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = 0;
		char *line = buf, *nl;
		while ((nl = strchr(line, '\n'))) {
			*nl = 0;
			unsigned long lo, hi, ino;
			char perms[5];
			int path_at = 0;
			if (sscanf(line, "%lx-%lx %4s %*s %*s %lu %n", &lo, &hi, perms, &ino, &path_at) >= 4 &&
			    hi > start && lo < start + len && ino == 0 && !line[path_at] &&
			    perms[1] == 'w' && perms[3] == 'p') {
				uintptr_t a = lo > start ? lo : start;
				uintptr_t b = hi < start + len ? hi : start + len;
				int e = uffd_register(uffd, a, b - a);
				if (e && !err)
					err = e;
			}
			line = nl + 1;
		}
		have -= (size_t)(line - buf);
		memmove(buf, line, have);
	}
	close(fd);
	return err;
}

int region_register(struct region *r, int uffd)
{
	/* With UFFDIO_MOVE the store is a move destination, which must be
	 * registered; without it, evictions write-protect the page they copy. */
	int err = uffd_register(uffd, r->base, r->size);
	if (err == -EINVAL)
		err = register_anonymous_parts(uffd, r->base, r->size);
	if (!err && engine.use_move)
		err = uffd_register_store(uffd, r->store, r->size, &r->copy_in);
	return err;
}

/* a + (b - a) * (x - xa) / (xb - xa), for x within [xa, xb]. */
static uint64_t lerp(uint64_t a, uint64_t b, uint64_t x, uint64_t xa, uint64_t xb)
{
	return (uint64_t)((int64_t)a + ((int64_t)b - (int64_t)a) * (int64_t)(x - xa) /
				       (int64_t)(xb - xa));
}

/* dime's costs for faults that wait `fetch` ticks: interpolated between
 * the two delayed measurements, the nearer one outside them. */
static struct cost_point costs_for(const struct server_costs *c, uint64_t fetch)
{
	const struct cost_point *a = &c->at[0], *b = &c->at[1];
	if (!a->fetch || !b->fetch || b->fetch <= a->fetch)
		return (struct cost_point){ fetch, c->pre, c->post, c->handoff, c->exit };
	if (fetch <= a->fetch)
		return (struct cost_point){ fetch, a->pre, a->post, a->handoff, a->exit };
	if (fetch >= b->fetch)
		return (struct cost_point){ fetch, b->pre, b->post, b->handoff, b->exit };
	return (struct cost_point){
		fetch, lerp(a->pre, b->pre, fetch, a->fetch, b->fetch),
		lerp(a->post, b->post, fetch, a->fetch, b->fetch),
		lerp(a->handoff, b->handoff, fetch, a->fetch, b->fetch),
		lerp(a->exit, b->exit, fetch, a->fetch, b->fetch)
	};
}

void region_set_delay(struct region *r)
{
	r->latency_ticks = clock_ns_to_ticks(r->params.latency_ns);
	struct dime_params no_latency = r->params;
	no_latency.latency_ns = 0;
	r->transfer_ticks = clock_ns_to_ticks(dime_fetch_ns(&no_latency, engine.page_size));
	r->costs = costs_for(&r->server->costs, 2 * r->latency_ticks + r->transfer_ticks);
	/* Debt is owed to the fetch time it was run up under: a new one
	 * (`dime config` changed the latency) starts even, or a millisecond
	 * of debt from 40 us fetches would cut the first 400 us ones short. */
	atomic_store_explicit(&r->delay_debt, 0, memory_order_relaxed);
	/* A fetch time to place: when faults begin and end matters now. */
	if (r->server->mode == DIME_MODE_THREAD && !r->mm && (r->latency_ticks || r->transfer_ticks))
		faultclock_need();
}

int region_new(const struct dime_params *p, struct server *s, struct region **out)
{
	size_t ps = engine.page_size;
	struct region *r = book_alloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->params = *p;
	r->server = s;
	r->size = (p->size + ps - 1) & ~(ps - 1);
	r->npages = r->size >> engine.page_shift;
	r->ctr = &r->own_counters;
	r->link = &r->link_free_at;
	r->heap_arena = -1;
	region_lock_init(&r->lock);
	region_set_delay(r);

	int err = -ENOMEM;
	r->base = map_range(r->size, HEAP_ALIGN);
	r->store = map_range(r->size, ps);
	r->state = book_alloc(r->npages);
	if (!r->base || !r->store || !r->state)
		goto fail;
	err = policy_get(p->policy, &r->policy, NULL, 0);
	if (!err)
		err = policy_start(r);
	if (err)
		goto fail;
	err = region_register(r, s->uffd);
	if (err)
		goto fail;
	err = -ENOMEM;
	if (r->copy_in && !(r->stale = book_alloc(stale_bytes(r))))
		goto fail;

	err = -ENOSPC;
	for (unsigned i = 0; i < sizeof(engine.regions) / sizeof(engine.regions[0]); i++) {
		if (!atomic_load(&engine.regions[i])) {
			r->id = i;
			atomic_store(&engine.regions[i], r);
			*out = r;
			return 0;
		}
	}
fail:
	if (r->policy_state)
		policy_stop(r);
	if (r->base)
		sys_munmap((void *)r->base, r->size);
	if (r->store)
		sys_munmap((void *)r->store, r->size);
	book_free(r->stale, stale_bytes(r));
	book_free(r->state, r->npages);
	book_free(r, sizeof(*r));
	return err;
}

/* Takes the first free slot of the region table for r. */
static int publish(struct region *r)
{
	for (unsigned i = 0; i < sizeof(engine.regions) / sizeof(engine.regions[0]); i++) {
		if (!atomic_load(&engine.regions[i])) {
			r->id = i;
			atomic_store(&engine.regions[i], r);
			return 0;
		}
	}
	return -ENOSPC;
}

int region_adopt(const struct dime_params *p, struct server *s, uintptr_t base,
		 uintptr_t store, size_t size, const struct region_mm *mm, struct region **out)
{
	struct region *r = book_alloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->params = *p;
	r->server = s;
	r->mm = mm;
	r->base = base;
	r->store = store;
	r->size = size;
	r->npages = size >> engine.page_shift;
	r->ctr = &r->own_counters;
	r->link = &r->link_free_at;
	r->heap_arena = -1;
	region_lock_init(&r->lock);
	region_set_delay(r);
	int err = -ENOMEM;
	r->state = book_alloc(r->npages);
	if (!r->state)
		goto fail;
	err = policy_get(p->policy, &r->policy, NULL, 0);
	if (!err)
		err = policy_start(r);
	if (err)
		goto fail;
	err = publish(r);
	if (!err) {
		*out = r;
		return 0;
	}
fail:
	if (r->policy_state)
		policy_stop(r);
	book_free(r->state, r->npages);
	book_free(r, sizeof(*r));
	return err;
}

void region_forget(struct region *r)
{
	slot_empty(r);
	slot_wait_unused(r);
	policy_stop(r);
	book_free(r->state, r->npages);
	book_free(r, sizeof(*r));
}

void region_delete(struct region *r)
{
	/* Out of the table first: handlers that find it no more leave the
	 * fault to the kernel; unregistering wakes any thread still waiting
	 * on the range; then wait for handlers that found it before. */
	slot_empty(r);
	uffd_unregister(r->server->uffd, r->base, r->size);
	if (engine.use_move)
		uffd_unregister(r->server->uffd, r->store, r->size);
	slot_wait_unused(r);
	policy_stop(r);
	sys_munmap((void *)r->base, r->size);
	sys_munmap((void *)r->store, r->size);
	book_free(r->stale, stale_bytes(r));
	book_free(r->state, r->npages);
	book_free(r, sizeof(*r));
}

/* Reads the pagemap entries of `n` pages from addr: bit 63 present, bit
 * 62 swapped. Either means the page has bytes. */
static int read_pagemap(int fd, uintptr_t addr, size_t n, uint64_t *out)
{
	off_t off = (off_t)(addr >> engine.page_shift) * 8;
	size_t want = n * 8;
	ssize_t got = pread(fd, out, want, off);
	return got == (ssize_t)want ? 0 : -EIO;
}

#define HAS_BYTES(e) ((e) & (3ull << 62))

/* A page the child has bytes of: local, and in the policy's order unless
 * held (internal.h): the loop that evicts the child down to its budget
 * must not choose a page that cannot move. */
static void rebuild_local(struct region *r, size_t pg)
{
	r->state[pg] = PAGE_LOCAL;
	if (!region_held(r, pg))
		pol_local(r, pg, DIME_PAGE_RETURNED);
}

int region_rebuild(struct region *r)
{
	enum { CHUNK = 4096 };
	static uint64_t reg[CHUNK], sto[CHUNK]; /* single-threaded: fork child */
	size_t ps = engine.page_size, end = atomic_load(&r->touched_end);
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;

	region_lock_init(&r->lock);
	policy_stop(r);
	int err = policy_start(r);
	if (err) {
		close(fd);
		return err;
	}
	uint64_t local = 0;
	/* Every stale copy is dropped below. */
	if (r->stale)
		memset(r->stale, 0, stale_bytes(r));
	for (size_t at = 0; at < end; at += CHUNK) {
		size_t n = end - at < CHUNK ? end - at : CHUNK;
		if (read_pagemap(fd, r->base + at * ps, n, reg) ||
		    read_pagemap(fd, r->store + at * ps, n, sto)) {
			close(fd);
			return -EIO;
		}
		for (size_t i = 0; i < n; i++) {
			size_t pg = at + i;
			if (HAS_BYTES(reg[i])) {
				rebuild_local(r, pg);
				local++;
				/* A stale copy left by a page-in that copied (or
				 * one interrupted): dropped, runs in one call. */
				if (HAS_BYTES(sto[i])) {
					size_t k = 1;
					while (i + k < n && HAS_BYTES(reg[i + k]) && HAS_BYTES(sto[i + k]))
						k++;
					sys_madvise((void *)(r->store + pg * ps), k * ps, MADV_DONTNEED);
					for (size_t j = 1; j < k; j++)
						rebuild_local(r, pg + j);
					local += k - 1;
					i += k - 1;
				}
			} else if (HAS_BYTES(sto[i])) {
				r->state[pg] = PAGE_REMOTE;
			} else if (r->state[pg] != PAGE_UNTOUCHED) {
				/* Bytes nowhere: zeroes, which a remote fault
				 * with an empty store also yields. (An inactive
				 * page, in the store, becomes remote too: the
				 * child's policy starts without it.) */
				r->state[pg] = PAGE_REMOTE;
			}
		}
	}
	close(fd);
	r->local_count = local;
	r->evict_due = 0; /* the loop below evicts down to the budget */
	/* A child's own counters start at zero; a shared stats page (dime
	 * run) keeps counting, now with this process's pages added. */
	if (r->ctr == &r->own_counters)
		memset(&r->own_counters, 0, sizeof(r->own_counters));
	atomic_store(&r->link_free_at, 0); /* an instance's link stays: others use it */
	while (r->local_count > r->params.local_npages) {
		uint64_t v;
		struct dime_policy_choice c = { .victims = &v, .max_victims = 1 };
		pol_choose(r, &c);
		if (!c.nvictims || v >= r->npages || r->state[v] != PAGE_LOCAL)
			break;
		if (page_out(r, v)) {
			r->state[v] = PAGE_REMOTE;
			r->local_count--;
		} else {
			pol_local(r, v, DIME_PAGE_RETURNED);
			break; /* it stays local, and so may the rest */
		}
	}
	RCTR_LOCAL_ADD(r, r->local_count, r->local_count);
	return 0;
}
