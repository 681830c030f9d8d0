/* The program's own anonymous private mappings, served from the emulated
 * region: mmap, munmap, mremap, madvise and mprotect.
 *
 * A mapping is a page-aligned mimalloc block, discarded on creation so that
 * it reads as zeroes lazily, as fresh anonymous memory does. Each page
 * remembers the block it belongs to, so a partial munmap zeroes and
 * releases just those pages and the block is freed when its last page is
 * unmapped. Anything else (files, shared, stacks, executable or fixed
 * mappings, and dime's or mimalloc's own) goes to the kernel unchanged.
 *
 * The program may also change what the kernel has at an emulated page:
 *   mprotect   Pages move between the region and its store with
 *              UFFDIO_MOVE, which needs both sides to have the same
 *              protection: a remote page could not come back into a
 *              read-only page, nor a local one leave it. Pages are
 *              therefore made local before their protection changes and
 *              stay local ("pinned": out of the policy's order) until it
 *              is read-write again.
 *   MAP_FIXED  A mapping of the kernel's replaces the pages ("foreign"):
 *              they are no longer emulated, and their block stays the
 *              program's until it unmaps them.
 *   sigaltstack  In signal mode the kernel writes signal frames (dime's
 *              SIGBUS's too) to the alternate stack itself, which it cannot
 *              do on a remote page: those pages are pinned as well.
 *   threads    The kernel clears an exiting thread's id word, and in
 *              signal mode writes a new thread's first signal frame on its
 *              stack, neither of which it can do on a remote page
 *              (thread.c): those pages are pinned while it needs them.
 *   madvise    MADV_WIPEONFORK and MADV_DONTFORK: the kernel applies them
 *              to what is mapped at the pages, but a remote page's bytes
 *              are in the store, so a fork()ed child would still see
 *              them; the child discards such pages itself (and DONTFORK
 *              ones are then holes, like foreign pages).
 * munmap gives such pages a plain registered mapping back before their
 * block returns to mimalloc, which would otherwise hand out memory that is
 * read-only, someone's file, or wiped in the next fork()ed child. */
#define _GNU_SOURCE
#include "preload.h"
#include "../engine/book.h"
#include "../engine/policy-call.h"
#include "../engine/ranges.h"
#include "../engine/sys.h"
#include "../engine/uffd.h"

#include <errno.h>
#include <mimalloc.h>
#include <sched.h>
#include <stdarg.h>
#include <string.h>

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define RW (PROT_READ | PROT_WRITE)

/* kind_of[pg]: what the program made of the page, bits. */
enum {
	KIND_PLAIN = 0,      /* read-write, registered: emulated */
	KIND_PROT = 0x80,    /* | the protection (not RW): pinned local */
	KIND_FOREIGN = 0x40, /* replaced by a kernel mapping, or a hole */
	KIND_WIPE = 0x20,    /* MADV_WIPEONFORK */
	KIND_DONTFORK = 0x10,
	KIND_ALTSTACK = 0x08, /* a signal stack in signal mode: pinned local */
	KIND_FORK = KIND_WIPE | KIND_DONTFORK,
	KIND_PINNED = KIND_PROT | KIND_ALTSTACK,
	PROT_BITS = PROT_READ | PROT_WRITE | PROT_EXEC,
};

/* block_of[pg]: 1 + first page of the mapping page pg belongs to, or 0.
 * live[first]: pages of that mapping still mapped. Guarded by lock, as is
 * kind_of[] with its counts: `odd` pages not plain, `forkish` pages with
 * a KIND_FORK bit. */
static uint32_t *block_of, *live;
static uint8_t *kind_of;
/* kernel_pins[pg]: pins of page pg by kernel_pin() (thread.c: a thread's
 * exit word, its first frames); pinned while not 0. Changes under lock
 * and r->lock. */
static uint8_t *kernel_pins;
static size_t odd, forkish;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void set_kind(size_t pg, uint8_t k)
{
	uint8_t old = kind_of[pg];
	odd += (size_t)(k != 0) - (size_t)(old != 0);
	forkish += (size_t)((k & KIND_FORK) != 0) - (size_t)((old & KIND_FORK) != 0);
	kind_of[pg] = k;
}

/* A fork() while another thread holds the lock would leave it locked in
 * the child for good. */
static void fork_prepare(void)
{
	pthread_mutex_lock(&lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&lock);
}

/* Runs after the engine's own child handler has re-registered the region
 * and rebuilt its page states (leaving pinned pages out of the policy's
 * order: page_held()). */
static void fork_child(void)
{
	pthread_mutex_init(&lock, NULL);
	struct region *r = preload_region;
	if (!forkish)
		return;
	for (size_t pg = 0; pg < r->npages && forkish; pg++) {
		uint8_t k = kind_of[pg];
		if (!(k & KIND_FORK))
			continue;
		size_t end = pg + 1;
		while (end < r->npages && (kind_of[end] & KIND_FORK) == (k & KIND_FORK))
			end++;
		uintptr_t at = r->base + (pg << engine.page_shift);
		/* The kernel wiped (or left out) the local pages; the
		 * remote ones are still in the store. */
		region_discard(r, at, (end - pg) << engine.page_shift);
		for (size_t i = pg; i < end; i++)
			set_kind(i, k & KIND_DONTFORK ? KIND_FOREIGN : kind_of[i]);
		pg = end - 1;
	}
}

/* The engine's region->held_local: pinned pages cannot move (mprotect'd:
 * UFFDIO_MOVE needs read-write on both sides; signal stacks, exit words:
 * the kernel writes there itself). kind_of[]'s KIND_PINNED bits and
 * kernel_pins[] change under the region lock, which the engine holds when
 * it asks. */
static bool page_held(size_t pg)
{
	return (kind_of[pg] & KIND_PINNED) || kernel_pins[pg];
}

int mappings_init(struct region *r)
{
	if (r->npages >= UINT32_MAX)
		return -EINVAL;
	block_of = book_alloc(r->npages * sizeof(uint32_t));
	live = book_alloc(r->npages * sizeof(uint32_t));
	kind_of = book_alloc(r->npages);
	kernel_pins = book_alloc(r->npages);
	if (!block_of || !live || !kind_of || !kernel_pins)
		return -ENOMEM;
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	r->held_local = page_held;
	return 0;
}

static size_t page_up(size_t n)
{
	return (n + engine.page_size - 1) & ~(engine.page_size - 1);
}

static size_t page_of(uintptr_t addr)
{
	return (addr - preload_region->base) >> engine.page_shift;
}

static int sys_mprotect(void *addr, size_t len, int prot)
{
	return (int)syscall(SYS_mprotect, addr, len, prot);
}

static bool emulable(int prot, int flags)
{
	return preload_ready() && prot == RW && (flags & MAP_ANONYMOUS) &&
	       (flags & MAP_TYPE) == MAP_PRIVATE &&
	       !(flags & (MAP_FIXED_NOREPLACE | MAP_STACK | MAP_GROWSDOWN | MAP_HUGETLB));
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
	size_t first = page_of((uintptr_t)p), n = size >> engine.page_shift;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n; i++)
		block_of[first + i] = (uint32_t)first + 1;
	live[first] = (uint32_t)n;
	pthread_mutex_unlock(&lock);
	return p;
}

/* Gives the pages of [s, s+n) that are not plain a fresh registered
 * read-write mapping, as the region had at first. Their bytes must be
 * discarded already. Returns false if the kernel refused. lock held. */
static bool make_plain(uintptr_t s, size_t n)
{
	struct region *r = preload_region;
	size_t first = page_of(s), np = n >> engine.page_shift;
	for (size_t i = 0; i < np;) {
		if (kind_of[first + i] == KIND_PLAIN) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < np && kind_of[first + j] != KIND_PLAIN)
			j++;
		/* Fresh: no protection, file or madvise flag of the old one. */
		void *at = (void *)(s + (i << engine.page_shift));
		size_t len = (j - i) << engine.page_shift;
		if (sys_mmap(at, len, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
			     0) == MAP_FAILED)
			return false;
		sys_madvise(at, len, MADV_NOHUGEPAGE);
		if (uffd_register(r->server->uffd, (uintptr_t)at, len))
			return false;
		for (size_t k = i; k < j; k++)
			set_kind(first + k, KIND_PLAIN);
		i = j;
	}
	return true;
}

/* Zeroes [addr, addr+len) of the region and frees mappings left with no
 * page. */
static void unmap_emulated(uintptr_t addr, size_t len)
{
	struct region *r = preload_region;
	region_discard(r, addr, len);
	size_t first = page_of(addr), n = len >> engine.page_shift;
	void *freed[64];
	int nfreed = 0;
	pthread_mutex_lock(&lock);
	/* A block whose pages could not be made plain again is leaked:
	 * better than mimalloc serving that memory. */
	bool plain = !odd || make_plain(addr, len);
	for (size_t pg = first; pg < first + n; pg++) {
		uint32_t b = block_of[pg];
		if (!b)
			continue;
		block_of[pg] = 0;
		if (--live[b - 1] == 0 && plain && nfreed < 64)
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

/* Has any page of [s, s+n) a bit of `kind`? */
static bool any_kind(uintptr_t s, size_t n, uint8_t kind)
{
	if (!odd)
		return false;
	size_t first = page_of(s), np = n >> engine.page_shift;
	for (size_t i = 0; i < np; i++)
		if (kind_of[first + i] & kind)
			return true;
	return false;
}

static uintptr_t mmap_call(const uintptr_t *a)
{
	return (uintptr_t)mmap((void *)a[0], a[1], (int)a[2], (int)a[3], (int)a[4], (off_t)a[5]);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	OFF_EMULATED_STACK(void *, mmap_call, (uintptr_t)addr, len, (uintptr_t)prot,
			   (uintptr_t)flags, (uintptr_t)fd, (uintptr_t)off);
	if (len && !(flags & MAP_FIXED) && !addr && emulable(prot, flags))
		return map_emulated(len);
	uintptr_t s;
	size_t n;
	if (!(flags & MAP_FIXED) || ((uintptr_t)addr & (engine.page_size - 1)) ||
	    !clip(addr, len, &s, &n))
		return sys_mmap(addr, len, prot, flags, fd, off);

	/* A fixed mapping over emulated memory replaces what was there. */
	struct region *r = preload_region;
	region_discard(r, s, n);
	pthread_mutex_lock(&lock);
	void *p;
	if (emulable(prot, flags) && s == (uintptr_t)addr && n == page_up(len)) {
		/* A fresh anonymous mapping: the zeroed pages are one. */
		p = odd && !make_plain(s, n) ? MAP_FAILED : addr;
		if (p == MAP_FAILED)
			errno = ENOMEM;
	} else {
		p = sys_mmap(addr, len, prot, flags, fd, off);
		if (p != MAP_FAILED) {
			size_t first = page_of(s);
			for (size_t i = 0; i < n >> engine.page_shift; i++)
				set_kind(first + i, KIND_FOREIGN);
		}
	}
	pthread_mutex_unlock(&lock);
	return p;
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
	__attribute__((alias("mmap")));

static uintptr_t munmap_call(const uintptr_t *a)
{
	return (uintptr_t)munmap((void *)a[0], a[1]);
}

int munmap(void *addr, size_t len)
{
	OFF_EMULATED_STACK(int, munmap_call, (uintptr_t)addr, len);
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

/* Takes pages that lost their last reason to be pinned back into the
 * policy's order. r->lock held. */
static void unpin_locked(struct region *r, size_t first, size_t np)
{
	for (size_t pg = first; pg < first + np; pg++)
		if (!page_held(pg) && !(kind_of[pg] & KIND_FOREIGN) && r->state[pg] == PAGE_LOCAL)
			pol_local(r, pg, DIME_PAGE_RETURNED);
}

/* Brings the pages of [first, first+np) in (untouched ones too if
 * `populate`) and takes them out of the policy's order, so that no
 * eviction can choose them; foreign pages are left alone. Page by page: a
 * pinned page is never a victim, so this ends even for more pages than
 * the budget. Returns with r->lock held. */
static void pin_locked(struct region *r, size_t first, size_t np, bool populate)
{
	pthread_mutex_lock(&r->lock);
	for (size_t pg = first; pg < first + np;) {
		enum page_state st = r->state[pg];
		if (kind_of[pg] & KIND_FOREIGN) {
			pg++;
		} else if (st == PAGE_LOCAL ||
			   (st == PAGE_UNTOUCHED && (!populate || (kind_of[pg] & KIND_PROT)))) {
			/* An untouched page gets the zero page on a read and
			 * then could not leave if protected: dime reports
			 * that and keeps it local, which is right. (Nor can
			 * a protected one be populated: it may be PROT_NONE.) */
			if (st == PAGE_LOCAL)
				pol_gone(r, pg);
			pg++;
		} else {
			/* Remote, untouched or in flight: a read brings it in
			 * (only a read-write page can be remote). */
			pthread_mutex_unlock(&r->lock);
			if (st == PAGE_REMOTE || st == PAGE_UNTOUCHED || st == PAGE_INACTIVE)
				(void)*(volatile char *)(r->base + (pg << engine.page_shift));
			else
				sched_yield();
			pthread_mutex_lock(&r->lock);
		}
	}
}

/* Pins the pages of [s, s+n) local and gives them protection prot (not
 * RW); or, with prot RW, unpins them. Non-foreign pages only; the caller
 * changes the protection of foreign ones. Returns 0 or -1 with errno.
 * lock held. */
static int protect(uintptr_t s, size_t n, int prot)
{
	struct region *r = preload_region;
	size_t first = page_of(s), np = n >> engine.page_shift;
	if (prot == RW) {
		if (sys_mprotect((void *)s, n, prot))
			return -1;
		pthread_mutex_lock(&r->lock);
		for (size_t pg = first; pg < first + np; pg++)
			if (kind_of[pg] & KIND_PROT)
				set_kind(pg, kind_of[pg] & ~(KIND_PROT | PROT_BITS));
		unpin_locked(r, first, np);
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	pin_locked(r, first, np, false);
	/* Under the lock: no page of the range can be chosen now. */
	int rc = sys_mprotect((void *)s, n, prot);
	int err = errno;
	if (rc == 0) {
		for (size_t pg = first; pg < first + np; pg++)
			if (!(kind_of[pg] & KIND_FOREIGN))
				set_kind(pg, (uint8_t)((kind_of[pg] & ~PROT_BITS) | KIND_PROT |
						       (prot & PROT_BITS)));
	} else {
		unpin_locked(r, first, np);
	}
	pthread_mutex_unlock(&r->lock);
	errno = err;
	return rc;
}

static uintptr_t altstack_pin_call(const uintptr_t *a)
{
	altstack_pin((const void *)a[0], a[1], a[2]);
	return 0;
}

void altstack_pin(const void *sp, size_t size, bool pin)
{
	if (on_emulated_stack()) {
		off_stack(altstack_pin_call, (const uintptr_t[]){ (uintptr_t)sp, size, pin }, 3);
		return;
	}
	uintptr_t s;
	size_t n;
	if (!size || !clip(sp, size, &s, &n))
		return;
	struct region *r = preload_region;
	size_t first = page_of(s), np = n >> engine.page_shift;
	pthread_mutex_lock(&lock);
	if (pin)
		pin_locked(r, first, np, true);
	else
		pthread_mutex_lock(&r->lock);
	for (size_t pg = first; pg < first + np; pg++)
		if (!(kind_of[pg] & KIND_FOREIGN))
			set_kind(pg, pin ? kind_of[pg] | KIND_ALTSTACK : kind_of[pg] & ~KIND_ALTSTACK);
	if (!pin)
		unpin_locked(r, first, np);
	pthread_mutex_unlock(&r->lock);
	pthread_mutex_unlock(&lock);
}

static uintptr_t kernel_pin_call(const uintptr_t *a)
{
	kernel_pin((const void *)a[0], a[1], a[2]);
	return 0;
}

void kernel_pin(const void *p, size_t len, bool pin)
{
	if (on_emulated_stack()) {
		off_stack(kernel_pin_call, (const uintptr_t[]){ (uintptr_t)p, len, pin }, 3);
		return;
	}
	struct region *r = preload_region;
	uintptr_t a = (uintptr_t)p;
	if (!r || preload_busy || a < r->base || a + len > r->base + r->size || !len)
		return;
	pthread_mutex_lock(&lock);
	for (size_t pg = page_of(a); pg <= page_of(a + len - 1); pg++) {
		if (kind_of[pg] & KIND_FOREIGN)
			continue;
		/* Saturated: pinned for good, the safe side. */
		if (kernel_pins[pg] == UINT8_MAX)
			continue;
		if (!pin) {
			pthread_mutex_lock(&r->lock);
			if (kernel_pins[pg] && !--kernel_pins[pg])
				unpin_locked(r, pg, 1);
			pthread_mutex_unlock(&r->lock);
			continue;
		}
		if (page_held(pg))
			pthread_mutex_lock(&r->lock); /* local already */
		else
			pin_locked(r, pg, 1, false);
		kernel_pins[pg]++;
		pthread_mutex_unlock(&r->lock);
	}
	pthread_mutex_unlock(&lock);
}

static uintptr_t mprotect_call(const uintptr_t *a)
{
	return (uintptr_t)mprotect((void *)a[0], a[1], (int)a[2]);
}

int mprotect(void *addr, size_t len, int prot)
{
	OFF_EMULATED_STACK(int, mprotect_call, (uintptr_t)addr, len, (uintptr_t)prot);
	uintptr_t s;
	size_t n;
	if (((uintptr_t)addr & (engine.page_size - 1)) || !clip(addr, len, &s, &n))
		return sys_mprotect(addr, len, prot);
	pthread_mutex_lock(&lock);
	int rc = 0;
	/* Runs of foreign and of emulated pages. */
	size_t first = page_of(s), np = n >> engine.page_shift;
	for (size_t i = 0; i < np && !rc;) {
		bool foreign = kind_of[first + i] & KIND_FOREIGN;
		size_t j = i;
		while (j < np && (bool)(kind_of[first + j] & KIND_FOREIGN) == foreign)
			j++;
		uintptr_t at = s + (i << engine.page_shift);
		size_t run = (j - i) << engine.page_shift;
		rc = foreign ? sys_mprotect((void *)at, run, prot) : protect(at, run, prot);
		i = j;
	}
	pthread_mutex_unlock(&lock);
	/* Any part outside the region is the kernel's. */
	uintptr_t a = (uintptr_t)addr, e = a + page_up(len);
	if (!rc && a < s)
		rc = sys_mprotect(addr, s - a, prot);
	if (!rc && e > s + n)
		rc = sys_mprotect((void *)(s + n), e - (s + n), prot);
	return rc;
}

/* MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_DONTFORK, MADV_DOFORK: the
 * kernel's, and remembered for fork_child(). lock held. */
static int advise_fork(uintptr_t s, size_t n, int advice)
{
	int rc = sys_madvise((void *)s, n, advice);
	if (rc)
		return rc;
	bool wipe = advice == MADV_WIPEONFORK || advice == MADV_KEEPONFORK;
	bool set = advice == MADV_WIPEONFORK || advice == MADV_DONTFORK;
	uint8_t bit = wipe ? KIND_WIPE : KIND_DONTFORK;
	size_t first = page_of(s);
	for (size_t i = 0; i < n >> engine.page_shift; i++) {
		uint8_t k = kind_of[first + i];
		set_kind(first + i, set ? k | bit : k & ~bit);
	}
	return 0;
}

static uintptr_t madvise_call(const uintptr_t *a)
{
	return (uintptr_t)madvise((void *)a[0], a[1], (int)a[2]);
}

int madvise(void *addr, size_t len, int advice)
{
	OFF_EMULATED_STACK(int, madvise_call, (uintptr_t)addr, len, (uintptr_t)advice);
	uintptr_t s;
	size_t n;
	if (!clip(addr, len, &s, &n) || (uintptr_t)addr != s || page_up(len) != n)
		return sys_madvise(addr, len, advice);
	pthread_mutex_lock(&lock);
	bool foreign = any_kind(s, n, KIND_FOREIGN);
	pthread_mutex_unlock(&lock);
	if (foreign)
		return sys_madvise(addr, len, advice); /* rare: not worth splitting */
	switch (advice) {
	case MADV_DONTNEED:
	case MADV_FREE:
	case MADV_REMOVE:
		/* MADV_FREE may drop the bytes at any time; doing so now is
		 * one of the behaviours it allows. */
		region_discard(preload_region, s, n);
		return 0;
	case MADV_WIPEONFORK:
	case MADV_KEEPONFORK:
	case MADV_DONTFORK:
	case MADV_DOFORK: {
		pthread_mutex_lock(&lock);
		int rc = advise_fork(s, n, advice);
		pthread_mutex_unlock(&lock);
		return rc;
	}
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

/* Gives fresh pages [at, at+len) the protection and fork flags that `kind`
 * stands for. lock held. */
static void reapply(uintptr_t at, size_t len, uint8_t kind)
{
	if (kind & KIND_PROT)
		protect(at, len, kind & PROT_BITS);
	if (kind & KIND_WIPE)
		advise_fork(at, len, MADV_WIPEONFORK);
	if (kind & KIND_DONTFORK)
		advise_fork(at, len, MADV_DONTFORK);
}

/* mremap of emulated memory: the pages move within the region, keeping
 * their protection and flags as the kernel's mremap does. */
static void *remap_emulated(uintptr_t s, size_t n, size_t want)
{
	size_t np = n >> engine.page_shift;
	uint8_t *kinds = NULL;
	pthread_mutex_lock(&lock);
	bool foreign = any_kind(s, n, KIND_FOREIGN);
	bool special = !foreign && any_kind(s, n, 0xff);
	if (special && (kinds = book_alloc(np))) {
		/* Pages move only between equal protections: move them
		 * read-write, and give the destination what the source had. */
		memcpy(kinds, kind_of + page_of(s), np);
		protect(s, n, RW);
	}
	pthread_mutex_unlock(&lock);
	if (foreign || (special && !kinds)) {
		/* Part of it is a file (or other) mapping of the kernel's:
		 * not something a block of the region can become. */
		errno = foreign ? EINVAL : ENOMEM;
		return MAP_FAILED;
	}
	void *p = map_emulated(want);
	int err = p == MAP_FAILED ? -errno : region_move(preload_region, (uintptr_t)p, s, n);
	void *ret = p;
	uintptr_t keep = err ? s : (uintptr_t)p; /* where the bytes are now */
	if (err) {
		if (p != MAP_FAILED)
			unmap_emulated((uintptr_t)p, want);
		errno = -err;
		ret = MAP_FAILED;
	}
	if (kinds) {
		pthread_mutex_lock(&lock);
		for (size_t i = 0; i < np;) {
			size_t j = i;
			while (j < np && kinds[j] == kinds[i])
				j++;
			reapply(keep + (i << engine.page_shift), (j - i) << engine.page_shift, kinds[i]);
			i = j;
		}
		/* The kernel grows a mapping with the protection and flags of
		 * its end. */
		if (!err)
			reapply(keep + n, want - n, kinds[np - 1]);
		pthread_mutex_unlock(&lock);
		book_free(kinds, np);
	}
	if (!err)
		unmap_emulated(s, n);
	return ret;
}

static uintptr_t mremap_call(const uintptr_t *a)
{
	return (uintptr_t)mremap((void *)a[0], a[1], a[2], (int)a[3], (void *)a[4]);
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
	OFF_EMULATED_STACK(void *, mremap_call, (uintptr_t)old, old_len, new_len, (uintptr_t)flags,
			   (uintptr_t)new_addr);
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
	return remap_emulated(s, n, want);
}
