/* Page-in and page-out.
 *
 * Both use UFFDIO_MOVE between the region and its store: zero-copy and
 * atomic, so no concurrent store by another thread can be lost between
 * "copy out" and "unmap", and a concurrent fork() sees each page in exactly
 * one place. After fork() a page may still be shared copy-on-write with the
 * other process; the kernel refuses to move it (EBUSY), so page-out first
 * breaks the sharing with a no-op atomic write and page-in copies instead.
 */
#include "internal.h"
#include "uffd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static void report_once(const char *what, int err)
{
	static _Atomic int reported;
	if (!atomic_exchange(&reported, 1))
		fprintf(stderr, "dime: %s failed: %s\n", what, strerror(err));
}

/* A write that changes nothing, to give this process its own copy of a
 * page it shares copy-on-write with a fork()ed relative. */
static void break_cow(uintptr_t addr)
{
	_Atomic uint64_t *w = (_Atomic uint64_t *)addr;
	uint64_t v = atomic_load_explicit(w, memory_order_relaxed);
	while (!atomic_compare_exchange_weak(w, &v, v))
		;
}

bool page_out(struct region *r, size_t pg)
{
	size_t ps = engine.page_size, off = pg * ps;
	int uffd = r->server->uffd;
	for (int attempt = 0; attempt < 3; attempt++) {
		int err = uffd_move(uffd, r->store + off, r->base + off, ps);
		switch (err) {
		case 0:
		case -ENOENT: /* nothing mapped: nothing to keep */
			return true;
		case -EBUSY:
			break_cow(r->base + off);
			break;
		case -EEXIST: /* a stale store copy (see page_in) */
			madvise((void *)(r->store + off), ps, MADV_DONTNEED);
			break;
		default:
			report_once("page-out (UFFDIO_MOVE)", -err);
			return false;
		}
	}
	return false;
}

void page_in(struct region *r, size_t pg, bool from_store, bool write)
{
	size_t ps = engine.page_size, off = pg * ps;
	uintptr_t dst = r->base + off, src = r->store + off;
	int uffd = r->server->uffd, err;

	if (from_store) {
		err = uffd_move(uffd, dst, src, ps);
		if (err == -EBUSY) {
			/* Shared with a fork()ed relative: copy, then drop ours. */
			err = uffd_copy(uffd, dst, (const void *)src, ps);
			if (err == 0 || err == -EEXIST)
				madvise((void *)src, ps, MADV_DONTNEED);
		}
		if (err != -ENOENT)
			goto done;
		/* The store is empty: the page was zapped while remote. */
	}
	/* A read of a never-written page maps the shared zero page, as the
	 * kernel would; a write needs a private page anyway. */
	err = write ? uffd_copy(uffd, dst, engine.zero_page, ps) : uffd_zeropage(uffd, dst, ps);
done:
	if (err == -EEXIST)
		err = uffd_wake(uffd, dst, ps); /* someone mapped it already */
	if (err)
		report_once("page-in", -err);
}
