/* Shared by the preload's helper programs. Each program runs one scenario
 * under LD_PRELOAD=libdime-preload.so, checks every byte itself and exits 0,
 * or 1 with a line on stderr naming what broke.
 *
 * Remoteness is forced, not hoped for: the tests run with a small budget
 * (DIME_LOCAL_PAGES, 64 by default) and FIFO replacement, so touching more
 * than that many other pages makes every older page remote. remote()
 * checks it with mincore(): a remote page is not mapped in the process
 * (its bytes are in dime's store), so a system call on it really makes the
 * kernel fault. */
#ifndef PROGS_COMMON_H
#define PROGS_COMMON_H

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096
/* Sweep size: 1024 pages, far more than any budget the tests configure. */
#define SWEEP_BYTES (4u << 20)

static const char *prog_name = "prog";

__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One write, no stdio: the heap (and stdio's buffers) may be what broke. */
	char line[600];
	int n = snprintf(line, sizeof(line), "%s[%d]: %s\n", prog_name, (int)getpid(), msg);
	if (write(2, line, (size_t)n) < 0)
		_exit(1);
	_exit(1);
}

#define CHECK(cond, ...)                      \
	do {                                  \
		if (!(cond))                  \
			fail(__VA_ARGS__);    \
	} while (0)

/* A system call that must succeed: reports errno otherwise. */
#define SYS_OK(call, what)                                                         \
	({                                                                         \
		long rc_ = (long)(call);                                           \
		if (rc_ < 0)                                                       \
			fail("%s failed: %s", what, strerror(errno));              \
		rc_;                                                               \
	})

/* The byte at offset i of a buffer filled with `seed`: differs between
 * neighbouring bytes, pages and seeds. */
static inline uint8_t pat(size_t i, unsigned seed)
{
	return (uint8_t)(i * 131u + (i >> 12) * 17u + seed * 101u + 1u);
}

static inline void fill(void *buf, size_t len, unsigned seed)
{
	uint8_t *b = buf;
	for (size_t i = 0; i < len; i++)
		b[i] = pat(i, seed);
}

/* Checks buf against pat(start + i, seed); names the first bad byte. */
static inline void verify_at(const void *buf, size_t len, size_t start, unsigned seed,
			     const char *what)
{
	const volatile uint8_t *b = buf;
	for (size_t i = 0; i < len; i++) {
		uint8_t want = pat(start + i, seed), got = b[i];
		if (got != want)
			fail("%s: byte %zu (page %zu) is 0x%02x, want 0x%02x (seed %u)", what, i,
			     i / PAGE, got, want, seed);
	}
}

static inline void verify(const void *buf, size_t len, unsigned seed, const char *what)
{
	verify_at(buf, len, 0, seed, what);
}

static inline void verify_zero(const void *buf, size_t len, const char *what)
{
	const volatile uint8_t *b = buf;
	for (size_t i = 0; i < len; i++)
		if (b[i])
			fail("%s: byte %zu (page %zu) is 0x%02x, want 0", what, i, i / PAGE, b[i]);
}

/* --- emulation ----------------------------------------------------------- */

static inline bool is_emulated(const void *p)
{
	static bool (*fn)(const void *);
	if (!fn)
		fn = (bool (*)(const void *))dlsym(RTLD_DEFAULT, "dime_is_emulated");
	if (!fn)
		fail("dime_is_emulated not found: not running under libdime-preload.so");
	return fn(p);
}

static inline void need_emulated(const void *p, const char *what)
{
	if (!is_emulated(p))
		fail("%s at %p is not in emulated memory", what, p);
}

/* Page-aligned heap memory. */
static inline void *heap_pages(size_t len)
{
	void *p = aligned_alloc(PAGE, (len + PAGE - 1) & ~(size_t)(PAGE - 1));
	CHECK(p, "aligned_alloc(%zu) failed", len);
	need_emulated(p, "aligned_alloc block");
	return p;
}

/* A sweep array per thread (or per process after fork, which copies it). */
struct sweeper {
	volatile uint8_t *mem;
	size_t next; /* next page to touch, cyclically */
};

/* Touches `npages` pages of the sweeper's array with writes, each one a
 * page the budget does not hold (first touch or remote): every page made
 * local before the call is then older in FIFO order. */
static inline void sweep_pages(struct sweeper *s, size_t npages)
{
	if (!s->mem) {
		s->mem = malloc(SWEEP_BYTES);
		CHECK(s->mem, "malloc(sweep array) failed");
		need_emulated((const void *)s->mem, "sweep array");
	}
	for (size_t i = 0; i < npages; i++) {
		s->mem[s->next * PAGE]++;
		s->next = (s->next + 1) % (SWEEP_BYTES / PAGE);
	}
}

/* Makes every page touched before the call remote, if the caller is the
 * only thread touching memory: FIFO evicts the oldest page for each of
 * more new pages than the budget holds. */
static inline void evict_all(struct sweeper *s)
{
	const char *env = getenv("DIME_LOCAL_PAGES");
	size_t budget = env ? strtoull(env, NULL, 10) : 0;
	CHECK(budget && budget <= SWEEP_BYTES / PAGE / 2,
	      "DIME_LOCAL_PAGES must be set and at most %u", SWEEP_BYTES / PAGE / 2);
	sweep_pages(s, 2 * budget);
}

/* Number of pages of [p, p+len) that are mapped in this process. */
static inline size_t resident_pages(const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)(PAGE - 1);
	size_t n = ((uintptr_t)p + len - a + PAGE - 1) / PAGE;
	unsigned char vec[4096];
	size_t count = 0;
	for (size_t done = 0; done < n;) {
		size_t k = n - done < sizeof(vec) ? n - done : sizeof(vec);
		if (mincore((void *)(a + done * PAGE), k * PAGE, vec) < 0)
			fail("mincore: %s", strerror(errno));
		for (size_t i = 0; i < k; i++)
			count += vec[i] & 1;
		done += k;
	}
	return count;
}

/* Fails unless every page of [p, p+len) is remote, sweeping and waiting
 * if a few are not yet. Two things leave a page mapped for a while
 * without anything being wrong: a page whose fault is still being
 * finished (its handler preempted) is passed over by the eviction and
 * leaves with a later sweep; and a page an eviction has taken but not yet
 * moved out (EVICTING: the handler doing the deferred evictions of a
 * quiet moment was preempted in the middle of its batch) leaves when that
 * thread runs again, which on a loaded machine took up to 0.43 s. So the
 * waits between sweeps double, from 1 ms up to 100 ms, for about 10 s in
 * all: a generous bound on waiting, not on speed. A page the emulation
 * lost track of stays local however long this waits. */
static inline void need_remote(struct sweeper *s, const void *p, size_t len, const char *what)
{
	size_t n = resident_pages(p, len);
	unsigned wait_us = 1000, waited_ms = 0;
	int sweeps = 0;
	for (; n && waited_ms < 10000; sweeps++) {
		usleep(wait_us);
		waited_ms += wait_us / 1000;
		wait_us = wait_us < 100000 / 2 ? 2 * wait_us : 100000;
		evict_all(s);
		n = resident_pages(p, len);
	}
	if (n)
		fail("setup: %zu page(s) of %s still local after %d sweeps over %u ms", n, what,
		     sweeps, waited_ms);
}

static inline void need_local(const void *p, size_t len, const char *what)
{
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)(PAGE - 1);
	size_t n = ((uintptr_t)p + len - a + PAGE - 1) / PAGE;
	if (resident_pages(p, len) != n)
		fail("setup: a page of %s is not local", what);
}

#endif
