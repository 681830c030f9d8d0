/* The program's own anonymous private mappings, served from the emulated
 * region: mmap, munmap, mremap and madvise.
 *
 * A mapping is a page-aligned mimalloc block, discarded on creation so that
 * it reads as zeroes lazily, as fresh anonymous memory does. Each page
 * remembers the block it belongs to, so a partial munmap zeroes and
 * releases just those pages and the block is freed when its last page is
 * unmapped. Anything else (files, shared, stacks, executable or fixed
 * mappings, and dime's or mimalloc's own) goes to the kernel unchanged. */
#define _GNU_SOURCE
#include "preload.h"
#include "../engine/book.h"
#include "../engine/ranges.h"
#include "../engine/sys.h"

#include <errno.h>
#include <mimalloc.h>
#include <stdarg.h>

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

/* block_of[pg]: 1 + first page of the mapping page pg belongs to, or 0.
 * live[first]: pages of that mapping still mapped. Guarded by lock. */
static uint32_t *block_of, *live;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

int mappings_init(struct region *r)
{
	if (r->npages >= UINT32_MAX)
		return -EINVAL;
	block_of = book_alloc(r->npages * sizeof(uint32_t));
	live = book_alloc(r->npages * sizeof(uint32_t));
	return block_of && live ? 0 : -ENOMEM;
}

static size_t page_up(size_t n)
{
	return (n + engine.page_size - 1) & ~(engine.page_size - 1);
}

static bool emulable(void *addr, int prot, int flags)
{
	return preload_ready() && !addr && prot == (PROT_READ | PROT_WRITE) &&
	       (flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE &&
	       !(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_STACK | MAP_GROWSDOWN |
			  MAP_HUGETLB));
}

static void *map_emulated(size_t len)
{
	struct region *r = preload_region;
	size_t size = page_up(len);
	preload_busy++;
	void *p = mi_malloc_aligned(size, engine.page_size);
	preload_busy--;
	if (!p) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	region_discard(r, (uintptr_t)p, size);
	size_t first = ((uintptr_t)p - r->base) >> engine.page_shift, n = size >> engine.page_shift;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n; i++)
		block_of[first + i] = (uint32_t)first + 1;
	live[first] = (uint32_t)n;
	pthread_mutex_unlock(&lock);
	return p;
}

/* Zeroes [addr, addr+len) of the region and frees mappings left with no
 * page. */
static void unmap_emulated(uintptr_t addr, size_t len)
{
	struct region *r = preload_region;
	region_discard(r, addr, len);
	size_t first = (addr - r->base) >> engine.page_shift, n = len >> engine.page_shift;
	void *freed[64];
	int nfreed = 0;
	pthread_mutex_lock(&lock);
	for (size_t pg = first; pg < first + n; pg++) {
		uint32_t b = block_of[pg];
		if (!b)
			continue;
		block_of[pg] = 0;
		if (--live[b - 1] == 0 && nfreed < 64)
			freed[nfreed++] = (void *)(r->base + ((size_t)(b - 1) << engine.page_shift));
	}
	pthread_mutex_unlock(&lock);
	preload_busy++;
	for (int i = 0; i < nfreed; i++)
		mi_free(freed[i]);
	preload_busy--;
}

/* The part of [addr, addr+len) inside the region, page-aligned. */
static bool clip(const void *addr, size_t len, uintptr_t *start, size_t *n)
{
	struct region *r = preload_region;
	if (!r || preload_busy)
		return false;
	uintptr_t a = (uintptr_t)addr, e = a + page_up(len);
	uintptr_t lo = a > r->base ? a : r->base, hi = e < r->base + r->size ? e : r->base + r->size;
	if (lo >= hi)
		return false;
	*start = lo & ~(uintptr_t)(engine.page_size - 1);
	*n = hi - *start;
	return true;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (len && emulable(addr, prot, flags))
		return map_emulated(len);
	uintptr_t s;
	size_t n;
	/* A fixed mapping over emulated memory replaces what was there. */
	if ((flags & MAP_FIXED) && clip(addr, len, &s, &n))
		unmap_emulated(s, n);
	return sys_mmap(addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
	__attribute__((alias("mmap")));

int munmap(void *addr, size_t len)
{
	uintptr_t s;
	size_t n;
	if ((uintptr_t)addr & (engine.page_size - 1)) {
		errno = EINVAL;
		return -1;
	}
	if (!clip(addr, len, &s, &n))
		return sys_munmap(addr, len);
	unmap_emulated(s, n);
	/* Any part outside the region is the kernel's. */
	uintptr_t a = (uintptr_t)addr, e = a + page_up(len);
	int rc = 0;
	if (a < s)
		rc |= sys_munmap(addr, s - a);
	if (e > s + n)
		rc |= sys_munmap((void *)(s + n), e - (s + n));
	return rc ? -1 : 0;
}

int madvise(void *addr, size_t len, int advice)
{
	uintptr_t s;
	size_t n;
	if (!clip(addr, len, &s, &n) || (uintptr_t)addr != s || page_up(len) != n)
		return sys_madvise(addr, len, advice);
	switch (advice) {
	case MADV_DONTNEED:
	case MADV_FREE:
	case MADV_REMOVE:
		/* MADV_FREE may drop the bytes at any time; doing so now is
		 * one of the behaviours it allows. */
		region_discard(preload_region, s, n);
		return 0;
	case MADV_HUGEPAGE:
	case MADV_NOHUGEPAGE:
	case MADV_COLLAPSE:
	case MADV_WILLNEED:
	case MADV_COLD:
	case MADV_PAGEOUT:
		/* Residency is dime's to decide; huge pages would defeat
		 * page-sized emulation. Accept and ignore. */
		return 0;
	default:
		return sys_madvise(addr, len, advice);
	}
}

void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	uintptr_t s;
	size_t n;
	void *new_addr = NULL;
	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
	if (!clip(old, old_len, &s, &n)) {
		long rc = syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
		return rc == -1 ? MAP_FAILED : (void *)rc;
	}
	if ((uintptr_t)old != s || page_up(old_len) != n || !new_len ||
	    (flags & ~MREMAP_MAYMOVE)) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	size_t want = page_up(new_len);
	if (want <= n) {
		if (want < n)
			unmap_emulated(s + want, n - want);
		return old;
	}
	if (!(flags & MREMAP_MAYMOVE)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	void *p = map_emulated(want);
	if (p == MAP_FAILED)
		return p;
	int err = region_move(preload_region, (uintptr_t)p, s, n);
	if (err) {
		unmap_emulated((uintptr_t)p, want);
		errno = -err;
		return MAP_FAILED;
	}
	unmap_emulated(s, n);
	return p;
}
