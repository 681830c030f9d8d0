/* Page-in and page-out.
 *
 * Page-out uses UFFDIO_MOVE from the region to its store: zero-copy and
 * atomic, so no concurrent store by another thread can be lost between
 * "copy out" and "unmap", and a concurrent fork() sees each page in exactly
 * one place. Page-in moves the page back, or copies it from the store when
 * that is cheaper (see pagein_by_copy()): the faulting thread is asleep or
 * in its SIGBUS handler, and no other thread can touch a FETCHING page, so
 * a copy cannot miss a store; the stale copy it leaves in the slot is never
 * read and is dropped by the page's next page-out. After fork() a page may
 * still be shared copy-on-write with the other process; the kernel refuses
 * to move it (EBUSY), so page-out first breaks the sharing with a no-op
 * atomic write and page-in copies instead.
 *
 * Kernels without UFFDIO_MOVE (before 6.8) get copies made just as safe by
 * write protection: page-out write-protects the page, copies it to the
 * store, zaps it and wakes any writer that hit the protection, which then
 * faults the page back in as a remote page; page-in copies from the store.
 *
 * Page-out takes runs of consecutive pages in one call where it can: the
 * kernel then flushes the TLB once for the run instead of once per page,
 * and the per-call cost (most of the 1-2 us a move costs) is paid once.
 */
#include "clock.h"
#include "internal.h"
#include "sys.h"
#include "uffd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* Stale copies: r->stale has a bit for each slot a page-in by copy left
 * its bytes in. Taking a bit is the right to drop that slot; without a
 * bitmap every slot of a page going out may hold one. */
static void stale_set(struct region *r, size_t pg)
{
	if (r->stale)
		__atomic_fetch_or(&r->stale[pg / 64], 1ull << (pg % 64), __ATOMIC_RELAXED);
}

static bool stale_take(struct region *r, size_t pg)
{
	if (!r->stale)
		return true;
	uint64_t bit = 1ull << (pg % 64);
	return __atomic_fetch_and(&r->stale[pg / 64], ~bit, __ATOMIC_RELAXED) & bit;
}

/* What dropping a stale copy costs, per page in ticks: a running average,
 * process-wide. Part of what a page-in by copy costs (pagein_by_copy()):
 * its drop comes later, with the page's page-out, and on a guest whose
 * every page-table change goes through the host it is a zap and a TLB
 * flush, as dear as the move that copying saved. */
static _Atomic uint64_t drop_cost;

/* Adds sample t to one of the page-move averages (drop_cost, and page-in's
 * move_cost and copy_cost below). A preempted sample counts as at most 4
 * averages: one must not flip page-in's choice, a change that lasts still
 * shows within a few. */
static void pagein_note(_Atomic uint64_t *avg, uint64_t t)
{
	uint64_t a = atomic_load_explicit(avg, memory_order_relaxed);
	cost_avg_add(avg, a && t > 4 * a ? 4 * a : t);
}

static void note_drop(size_t pages, uint64_t ticks)
{
	if (pages)
		pagein_note(&drop_cost, ticks / pages);
}

/* A page-out may race with the region's destruction (a handler doing
 * deferred evictions as the program destroys the region): nothing to say
 * then. */
static bool region_gone(const struct region *r)
{
	return atomic_load_explicit(&engine.regions[r->id], memory_order_acquire) != r;
}

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

/* Whether the page at addr has bytes (present or swapped out), from
 * /proc/self/pagemap: touching a missing page from here would fault. */
bool page_has_bytes(uintptr_t addr)
{
	uint64_t e = 0;
	off_t at = (off_t)(addr >> engine.page_shift) * 8;
	if (pread(engine.pagemap_fd, &e, sizeof(e), at) != sizeof(e))
		return true; /* cannot tell: copying is the safe side */
	return e & (3ull << 62);
}

/* One UFFDIO_MOVE call: 0 or -errno, m->move set as the kernel sets it.
 * The kernel runs it only in the uffd's own mm; another process's region
 * moves through its mm's helper. */
static int move_call(struct region *r, struct uffdio_move *m)
{
	if (r->mm)
		return r->mm->move(r->mm, m);
	return ioctl(r->server->uffd, UFFDIO_MOVE, m) == 0 ? 0 : -errno;
}

/* What a failed UFFDIO_MOVE did, from the page tables: whether the page
 * at addr has left (no bytes there any more). The ioctl's answer is not
 * the whole truth. This kernel's move_pages() keeps an -EAGAIN from one
 * step of its loop (a page table it was about to use was freed or
 * replaced under it: MADV_DONTNEED frees page tables it leaves empty,
 * CONFIG_PT_RECLAIM) while the next step moves the page, then tries that
 * page again: it answers EEXIST (the destination is now full) or EINVAL
 * (the table of one side emptied and freed meanwhile) for a page it has
 * moved, and does not count it in `move`. Measured on 6.18 with a plain
 * program moving pages while another thread discards in the same 2 MiB:
 * 1 call in 1,000 to 7,000, and every such page had moved. So
 * no page-out or page-in takes an error as final before asking where the
 * bytes are: treating a moved page as not moved leaves it LOCAL with its
 * bytes in the store (it then reads as zeroes), and dropping the slot as
 * a stale copy drops the page's only bytes. Another process's region (an
 * attach) cannot be asked: false, its old behaviour. */
static bool page_left(const struct region *r, uintptr_t addr)
{
	return !r->mm && !page_has_bytes(addr);
}

static void discard(struct region *r, uintptr_t addr, size_t len)
{
	if (r->mm)
		r->mm->discard(r->mm, addr, len);
	else
		sys_madvise((void *)addr, len, MADV_DONTNEED);
}

static bool page_out_copy(struct region *r, size_t pg)
{
	size_t ps = engine.page_size, off = pg * ps;
	uintptr_t page = r->base + off, slot = r->store + off;
	int uffd = r->server->uffd;
	int err = uffd_writeprotect(uffd, page, ps, true);
	if (err) {
		if (!region_gone(r))
			report_once("page-out (UFFDIO_WRITEPROTECT)", -err);
		return false;
	}
	if (page_has_bytes(page))
		memcpy((void *)slot, (const void *)page, ps);
	else
		sys_madvise((void *)slot, ps, MADV_DONTNEED);
	sys_madvise((void *)page, ps, MADV_DONTNEED);
	uffd_wake(uffd, page, ps);
	return true;
}

void page_unprotect(struct region *r, size_t pg)
{
	size_t ps = engine.page_size;
	uffd_writeprotect(r->server->uffd, r->base + pg * ps, ps, false);
}

bool page_out(struct region *r, size_t pg)
{
	size_t ps = engine.page_size, off = pg * ps;
	if (!engine.use_move)
		return page_out_copy(r, pg);
	/* A stale copy is dropped before the move, never in answer to an
	 * EEXIST: see page_out_run(). */
	if (r->copy_in && stale_take(r, pg)) {
		uint64_t t0 = clock_ticks();
		discard(r, r->store + off, ps);
		note_drop(1, clock_ticks() - t0);
	}
	for (int attempt = 0; attempt < 3; attempt++) {
		struct uffdio_move m = { .dst = r->store + off, .src = r->base + off, .len = ps };
		int err;
		while ((err = move_call(r, &m)) == -EAGAIN)
			;
		switch (err) {
		case 0:
		case -ENOENT: /* nothing mapped: nothing to keep */
			return true;
		case -EBUSY:
			/* Another process's page cannot be written from here
			 * without racing its own stores: it stays local. */
			if (r->mm)
				return false;
			break_cow(r->base + off);
			break;
		default:
			if (page_left(r, r->base + off))
				return true; /* moved after all (see page_left()) */
			if (err == -EEXIST) {
				/* The page still has its bytes, so the slot's
				 * are stale (a copy page-in's EBUSY path could
				 * not drop): the page's own are the truth. */
				discard(r, r->store + off, ps);
				break;
			}
			/* EINVAL with the page still here: a page table
			 * freed under the call (see page_left()), try again. */
			if (err == -EINVAL && attempt < 2)
				break;
			if (!region_gone(r))
				report_once("page-out (UFFDIO_MOVE)", -err);
			return false;
		}
	}
	return false;
}

/* process_madvise() on the calling thread's own memory (Linux 6.15). */
#ifndef PIDFD_SELF_THREAD
#define PIDFD_SELF_THREAD -10000
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif

bool page_out_clear(struct region *r, const size_t *pg, unsigned n)
{
	static _Atomic bool unsupported;
	enum { MAX_PAGES = 64 }; /* a chunk of victims or of observations */
	size_t ps = engine.page_size, total = 0;
	if (!engine.use_move || !r->copy_in || r->mm || n > MAX_PAGES)
		return false;
	/* The slots that hold a stale copy, as runs. */
	struct iovec iov[MAX_PAGES];
	unsigned k = 0;
	uint64_t t0 = clock_ticks();
	for (unsigned i = 0; i < n; i++) {
		if (!stale_take(r, pg[i]))
			continue;
		char *slot = (char *)(r->store + pg[i] * ps);
		if (k && (char *)iov[k - 1].iov_base + iov[k - 1].iov_len == slot)
			iov[k - 1].iov_len += ps;
		else
			iov[k++] = (struct iovec){ slot, ps };
		total += ps;
	}
	if (k > 1 && !atomic_load_explicit(&unsupported, memory_order_relaxed)) {
		long got = syscall(SYS_process_madvise, PIDFD_SELF_THREAD, iov, (size_t)k,
				   MADV_DONTNEED, 0u);
		if (got == (long)total)
			k = 0;
		else if (got < 0 && errno != EINTR && errno != EAGAIN)
			atomic_store_explicit(&unsupported, true, memory_order_relaxed);
	}
	/* One run, or no process_madvise(): a call each (a run dropped
	 * already by a call that stopped part-way is dropped again, which
	 * changes nothing). */
	for (unsigned i = 0; i < k; i++)
		sys_madvise(iov[i].iov_base, iov[i].iov_len, MADV_DONTNEED);
	note_drop(total / ps, clock_ticks() - t0);
	return true;
}

size_t page_out_run(struct region *r, size_t pg, size_t n, bool cleared)
{
	size_t ps = engine.page_size, done = 0;
	if (!engine.use_move)
		return 0; /* the copy fallback goes page by page */
	/* Stale copies left by page-ins that copied are dropped before the
	 * move, the whole run's slots in one call, and never in answer to an
	 * EEXIST: the kernel can report EEXIST for a page it has just moved
	 * (see page_left()), and dropping the slot then would drop the
	 * page's only bytes. */
	if (r->copy_in && !cleared)
		discard(r, r->store + pg * ps, n * ps);
	while (done < n) {
		size_t off = (pg + done) * ps;
		struct uffdio_move m = {
			.dst = r->store + off,
			.src = r->base + off,
			.len = (n - done) * ps,
			/* A page the program discarded has no bytes to keep. */
			.mode = UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES,
		};
		int err = move_call(r, &m);
		if (err == 0)
			return n;
		if (m.move > 0) {
			/* Stopped part-way (EAGAIN): go on after the moved part. */
			done += (size_t)m.move / ps;
			continue;
		}
		if (err == -EAGAIN)
			continue;
		if (err != -EBUSY && page_left(r, r->base + off)) {
			done++; /* moved, not counted (see page_left()) */
			continue;
		}
		/* The first page needs care (shared after fork, stale store
		 * copy, a page table freed under the call): leave it to
		 * page_out(). */
		return done;
	}
	return done;
}

/* The page-in operations without their wake-up (the caller wakes). */
static int move_nowake(struct region *r, uintptr_t dst, uintptr_t src, size_t len)
{
	for (;;) {
		struct uffdio_move m = { .dst = dst, .src = src, .len = len,
					 .mode = UFFDIO_MOVE_MODE_DONTWAKE };
		int err = move_call(r, &m);
		if (err != -EAGAIN)
			return err;
	}
}

static int copy_nowake(int uffd, uintptr_t dst, const void *src, size_t len)
{
	for (;;) {
		struct uffdio_copy c = { .dst = dst, .src = (uintptr_t)src, .len = len,
					 .mode = UFFDIO_COPY_MODE_DONTWAKE };
		if (ioctl(uffd, UFFDIO_COPY, &c) == 0)
			return 0;
		if (errno != EAGAIN)
			return -errno;
	}
}

static int zeropage_nowake(int uffd, uintptr_t dst, size_t len)
{
	for (;;) {
		struct uffdio_zeropage z = { .range = { .start = dst, .len = len },
					     .mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE };
		if (ioctl(uffd, UFFDIO_ZEROPAGE, &z) == 0)
			return 0;
		if (errno != EAGAIN)
			return -errno;
	}
}

/* Page-in by move or by copy. A move takes the page from the store and
 * unmaps it there: once another thread of the process runs on another CPU,
 * every move costs a TLB shootdown, ~9 us on this kind of VM. A copy leaves
 * the store alone (the kernel reads the slot: an empty one reads as zeroes,
 * see uffd_register_store()) but costs a page copy and leaves a stale copy
 * in the slot, which the page's next page-out drops (page_out_clear()): a
 * copy costs that drop too (drop_cost). Which is cheaper depends on what the
 * program's other threads do, so it is measured: a running average of each
 * (one sample in PAGEIN_PROBE goes to the one not chosen, so a change is
 * noticed), and page-in takes the cheaper. Process-wide, relaxed: a stale
 * average only costs time. */
enum { PAGEIN_PROBE = 64 };
static _Atomic uint64_t move_cost, copy_cost, pageins;

static bool pagein_by_copy(void)
{
	uint64_t m = atomic_load_explicit(&move_cost, memory_order_relaxed);
	uint64_t c = atomic_load_explicit(&copy_cost, memory_order_relaxed);
	if (engine.copy_in_always)
		return true;
	uint64_t n = atomic_fetch_add_explicit(&pageins, 1, memory_order_relaxed);
	if (!m || !c)
		return !c && m; /* measure each first */
	/* A copy's stale slot is dropped later, at a cost of its own. */
	bool copy = c + atomic_load_explicit(&drop_cost, memory_order_relaxed) < m;
	return n % PAGEIN_PROBE ? copy : !copy;
}

void page_in(struct region *r, size_t pg, bool from_store, bool write, bool wake)
{
	size_t ps = engine.page_size, off = pg * ps;
	uintptr_t dst = r->base + off, src = r->store + off;
	int uffd = r->server->uffd, err;

	if (from_store && !engine.use_move) {
		/* An empty slot reads as zeroes, which is then right too. */
		err = copy_nowake(uffd, dst, (const void *)src, ps);
		goto done;
	}
	if (from_store && r->copy_in && pagein_by_copy()) {
		uint64_t t0 = clock_ticks();
		err = copy_nowake(uffd, dst, (const void *)src, ps);
		pagein_note(&copy_cost, clock_ticks() - t0);
		stale_set(r, pg); /* the slot keeps the bytes copied */
		goto done;
	}
	if (from_store) {
		uint64_t t0 = clock_ticks();
		err = move_nowake(r, dst, src, ps);
		if (err == 0)
			pagein_note(&move_cost, clock_ticks() - t0);
		if (err && err != -EEXIST && err != -ENOENT && err != -EBUSY && !r->mm) {
			/* EINVAL and the like (see page_left()): moved if
			 * the page is here now; else copied, as if shared. */
			if (page_has_bytes(dst))
				err = 0;
			else if (page_has_bytes(src))
				err = -EBUSY;
		}
		if (err == -EBUSY) {
			/* Shared with a fork()ed relative: copy, then drop ours. */
			const void *bytes = r->mm ? r->mm->read(r->mm, src, ps) : (const void *)src;
			err = bytes ? copy_nowake(uffd, dst, bytes, ps) : -EIO;
			if (err == 0 || err == -EEXIST)
				discard(r, src, ps);
		}
		if (err != -ENOENT)
			goto done;
		/* The store is empty: the page was zapped while remote. */
	}
	/* A read of a never-written page maps the shared zero page, as the
	 * kernel would; a write needs a private page anyway. */
	err = write ? copy_nowake(uffd, dst, engine.zero_page, ps) : zeropage_nowake(uffd, dst, ps);
done:
	if (err == -EEXIST)
		err = 0; /* someone mapped it already */
	if (err)
		report_once("page-in", -err);
	if (wake)
		uffd_wake(uffd, dst, ps);
}
