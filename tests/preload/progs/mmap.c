/* The program's own mappings: anonymous private ones are emulated and keep
 * the kernel's semantics (fresh ones read zero; MADV_DONTNEED and
 * MADV_FREE zero; munmap, partial or whole, then mmap gives zeroes;
 * mremap keeps content); shared and file mappings are not emulated and
 * behave as without dime. Every check covers local and remote pages. */
#include "common.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

static struct sweeper sw;

static uint8_t *map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED, "mmap(%zu): %s", len, strerror(errno));
	CHECK(((uintptr_t)p & (PAGE - 1)) == 0, "mmap returned an unaligned %p", p);
	need_emulated(p, "anonymous private mmap");
	need_emulated((uint8_t *)p + len - 1, "the end of an anonymous private mmap");
	return p;
}

/* Fills [p, p+len), then makes the first half remote and the rest local. */
static void fill_mixed(uint8_t *p, size_t len, unsigned seed)
{
	fill(p, len, seed);
	evict_all(&sw);
	need_remote(&sw, p, len, "a mapping");
	size_t half = (len / 2) & ~(size_t)(PAGE - 1);
	for (size_t off = half; off < len; off += PAGE)
		(void)*(volatile uint8_t *)(p + off);
}

static void fresh_zero(void)
{
	enum { LEN = 300 * PAGE };
	uint8_t *p = map(LEN);
	verify_zero(p, LEN, "fresh anonymous mmap");
	fill(p, LEN, 1);
	evict_all(&sw);
	need_remote(&sw, p, LEN, "anonymous mmap");
	verify(p, LEN, 1, "anonymous mmap after eviction");
	SYS_OK(munmap(p, LEN), "munmap");

	/* munmap then mmap: zeroes, whether or not the address is reused;
	 * sizes vary so that blocks get reused in many ways. */
	for (int i = 0; i < 40; i++) {
		size_t len = (size_t)(1 + (i * 7) % 23) * PAGE + (i % 3) * 100;
		p = map(len);
		verify_zero(p, len, "mmap after munmap");
		fill_mixed(p, len, (unsigned)i);
		verify(p, len, (unsigned)i, "mmap'd content");
		SYS_OK(munmap(p, len), "munmap");
	}
}

static void dontneed_free(void)
{
	enum { LEN = 40 * PAGE };
	static const struct {
		int advice;
		const char *name;
	} advs[] = { { MADV_DONTNEED, "MADV_DONTNEED" }, { MADV_FREE, "MADV_FREE" } };
	for (unsigned a = 0; a < 2; a++) {
		uint8_t *p = map(LEN);
		fill_mixed(p, LEN, 2);
		/* Pages 5..34: remote and local ones. */
		SYS_OK(madvise(p + 5 * PAGE, 30 * PAGE, advs[a].advice), advs[a].name);
		verify(p, 5 * PAGE, 2, "pages before the madvise'd range");
		verify_zero(p + 5 * PAGE, 30 * PAGE, advs[a].name);
		verify_at(p + 35 * PAGE, 5 * PAGE, 35 * PAGE, 2, "pages after the madvise'd range");
		/* Written again, they hold the new bytes. */
		fill(p, LEN, 3);
		evict_all(&sw);
		verify(p, LEN, 3, "rewritten after madvise");
		SYS_OK(munmap(p, LEN), "munmap");
	}
	/* On malloc'd memory too (what allocators like jemalloc do). */
	uint8_t *m = heap_pages(16 * PAGE);
	fill(m, 16 * PAGE, 4);
	evict_all(&sw);
	SYS_OK(madvise(m + 4 * PAGE, 8 * PAGE, MADV_DONTNEED), "MADV_DONTNEED on malloc'd pages");
	verify(m, 4 * PAGE, 4, "malloc'd pages before the range");
	verify_zero(m + 4 * PAGE, 8 * PAGE, "MADV_DONTNEED on malloc'd pages");
	verify_at(m + 12 * PAGE, 4 * PAGE, 12 * PAGE, 4, "malloc'd pages after the range");
	free(m);
}

static void partial_munmap(void)
{
	enum { N = 12 };
	uint8_t *p = map(N * PAGE);
	fill_mixed(p, N * PAGE, 5); /* pages 0..5 remote, 6..11 local */
	/* Holes: remote pages 2..3, a remote-local span 5..6, local 10..11. */
	SYS_OK(munmap(p + 2 * PAGE, 2 * PAGE), "munmap of pages 2-3");
	SYS_OK(munmap(p + 5 * PAGE, 2 * PAGE), "munmap of pages 5-6");
	SYS_OK(munmap(p + 10 * PAGE, 2 * PAGE), "munmap of pages 10-11");
	static const int kept[] = { 0, 1, 4, 7, 8, 9 };
	evict_all(&sw);
	for (unsigned i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		verify_at(p + kept[i] * PAGE, PAGE, (size_t)kept[i] * PAGE, 5,
			  "a page left by partial munmaps");
	/* A new mapping must not see the old bytes, wherever it lands. */
	uint8_t *q = map(2 * PAGE);
	verify_zero(q, 2 * PAGE, "mmap after a partial munmap");
	SYS_OK(munmap(q, 2 * PAGE), "munmap");
	for (unsigned i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		SYS_OK(munmap(p + kept[i] * PAGE, PAGE), "munmap of a remaining page");
	q = map(N * PAGE);
	verify_zero(q, N * PAGE, "mmap after munmapping every page");
	SYS_OK(munmap(q, N * PAGE), "munmap");
}

static void remap(void)
{
	uint8_t *p = map(8 * PAGE);
	fill_mixed(p, 8 * PAGE, 6);
	uint8_t *q = mremap(p, 8 * PAGE, 32 * PAGE, MREMAP_MAYMOVE);
	CHECK(q != MAP_FAILED, "mremap grow: %s", strerror(errno));
	need_emulated(q, "mremap'd mapping");
	verify(q, 8 * PAGE, 6, "mremap grow: the old content");
	verify_zero(q + 8 * PAGE, 24 * PAGE, "mremap grow: the new part");
	fill_mixed(q, 32 * PAGE, 7);
	uint8_t *s = mremap(q, 32 * PAGE, 4 * PAGE, 0);
	CHECK(s == q, "mremap shrink moved or failed: %p (%s)", (void *)s, strerror(errno));
	verify(s, 4 * PAGE, 7, "mremap shrink: the content kept");
	q = mremap(s, 4 * PAGE, 16 * PAGE, MREMAP_MAYMOVE);
	CHECK(q != MAP_FAILED, "mremap grow after shrink: %s", strerror(errno));
	verify(q, 4 * PAGE, 7, "mremap grow after shrink: the old content");
	verify_zero(q + 4 * PAGE, 12 * PAGE, "mremap grow after shrink: bytes dropped by the shrink");
	SYS_OK(munmap(q, 16 * PAGE), "munmap");

	/* realloc of big blocks (mimalloc's own moves and growth). */
	size_t len = 64 * PAGE;
	uint8_t *m = malloc(len);
	CHECK(m, "malloc");
	fill(m, len, 8);
	for (int i = 0; i < 4; i++) {
		evict_all(&sw);
		m = realloc(m, len * 2);
		CHECK(m, "realloc");
		verify(m, len, 8 + (unsigned)i, "realloc'd content");
		fill(m, len * 2, 9 + (unsigned)i);
		len *= 2;
	}
	free(m);
}

/* Shared and file mappings go to the kernel untouched. */
static void not_emulated(void)
{
	enum { LEN = 16 * PAGE };
	uint8_t *sh = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(sh != MAP_FAILED, "mmap(MAP_SHARED): %s", strerror(errno));
	CHECK(!is_emulated(sh), "a MAP_SHARED mapping is emulated");
	verify_zero(sh, LEN, "fresh MAP_SHARED mapping");
	pid_t pid = fork();
	SYS_OK(pid, "fork");
	if (pid == 0) {
		fill(sh, LEN, 10);
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st), "child failed");
	verify(sh, LEN, 10, "MAP_SHARED mapping after a child wrote it");
	SYS_OK(munmap(sh, LEN), "munmap(MAP_SHARED)");

	FILE *f = tmpfile();
	CHECK(f, "tmpfile");
	int fd = fileno(f);
	static uint8_t data[LEN];
	fill(data, LEN, 11);
	CHECK(pwrite(fd, data, LEN, 0) == LEN, "pwrite");
	uint8_t *pf = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK(pf != MAP_FAILED, "mmap(file, MAP_PRIVATE): %s", strerror(errno));
	CHECK(!is_emulated(pf), "a private file mapping is emulated");
	verify(pf, LEN, 11, "private file mapping");
	fill(pf, LEN, 12); /* copy-on-write: the file keeps its bytes */
	CHECK(pread(fd, data, LEN, 0) == LEN, "pread");
	verify(data, LEN, 11, "file under a written private mapping");
	SYS_OK(munmap(pf, LEN), "munmap(file)");

	uint8_t *sf = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(sf != MAP_FAILED, "mmap(file, MAP_SHARED): %s", strerror(errno));
	CHECK(!is_emulated(sf), "a shared file mapping is emulated");
	fill(sf, LEN, 13);
	SYS_OK(msync(sf, LEN, MS_SYNC), "msync");
	CHECK(pread(fd, data, LEN, 0) == LEN, "pread");
	verify(data, LEN, 13, "file under a written shared mapping");
	SYS_OK(munmap(sf, LEN), "munmap(file)");
	fclose(f);

	/* Not read-write: the kernel's, and still zero. */
	uint8_t *ro = mmap(NULL, LEN, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(ro != MAP_FAILED, "mmap(PROT_READ): %s", strerror(errno));
	verify_zero(ro, LEN, "read-only anonymous mapping");
	SYS_OK(munmap(ro, LEN), "munmap");
}

/* --- protection changes ---------------------------------------------------- */

static sigjmp_buf probe_env;
static volatile sig_atomic_t probing;

static void on_segv(int sig)
{
	(void)sig;
	if (!probing)
		_exit(99);
	siglongjmp(probe_env, 1);
}

/* Can the program write at p (keeping its byte)? */
static bool writable(volatile uint8_t *p)
{
	probing = 1;
	if (sigsetjmp(probe_env, 1)) {
		probing = 0;
		return false;
	}
	*p = *p;
	probing = 0;
	return true;
}

static bool readable(volatile uint8_t *p)
{
	probing = 1;
	if (sigsetjmp(probe_env, 1)) {
		probing = 0;
		return false;
	}
	(void)*p;
	probing = 0;
	return true;
}

/* mprotect of emulated pages: remote ones become readable (not a hang or
 * zeroes), protected ones keep their bytes however much is evicted, and
 * unmapping them gives the memory back usable. */
static void protect(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_segv;
	sigemptyset(&sa.sa_mask);
	SYS_OK(sigaction(SIGSEGV, &sa, NULL), "sigaction(SIGSEGV)");

	/* Read-only, on remote pages and more of them than the budget. */
	enum { BIG = 200 };
	uint8_t *p = map(BIG * PAGE);
	fill(p, BIG * PAGE, 20);
	evict_all(&sw);
	need_remote(&sw, p, BIG * PAGE, "pages to protect");
	SYS_OK(mprotect(p, BIG * PAGE, PROT_READ), "mprotect(PROT_READ) of remote pages");
	verify(p, BIG * PAGE, 20, "remote pages made read-only");
	evict_all(&sw);
	verify(p, BIG * PAGE, 20, "read-only pages after a sweep");
	CHECK(!writable(p + 5 * PAGE), "a read-only page is writable");
	SYS_OK(mprotect(p, BIG * PAGE, PROT_READ | PROT_WRITE), "mprotect back to read-write");
	CHECK(writable(p + 5 * PAGE), "a page made read-write again is not writable");
	fill(p, BIG * PAGE, 21);
	evict_all(&sw);
	need_remote(&sw, p, BIG * PAGE, "pages read-write again");
	verify(p, BIG * PAGE, 21, "pages read-write again");

	/* A guard page in the middle, then munmap: the memory comes back. */
	SYS_OK(mprotect(p + 10 * PAGE, PAGE, PROT_NONE), "mprotect(PROT_NONE)");
	CHECK(!readable(p + 10 * PAGE), "a PROT_NONE page is readable");
	evict_all(&sw);
	verify(p, 10 * PAGE, 21, "pages before a guard page");
	verify_at(p + 11 * PAGE, (BIG - 11) * PAGE, 11 * PAGE, 21, "pages after a guard page");
	SYS_OK(munmap(p, BIG * PAGE), "munmap of a mapping with a guard page");
	for (int i = 0; i < 8; i++) {
		uint8_t *q = map(BIG * PAGE);
		verify_zero(q, BIG * PAGE, "mmap after unmapping a guard page");
		CHECK(writable(q + 10 * PAGE), "a page of a fresh mapping is not writable");
		fill(q, BIG * PAGE, 22);
		SYS_OK(munmap(q, BIG * PAGE), "munmap");
	}
	/* The same through malloc, which gets the freed memory. */
	for (int i = 0; i < 64; i++) {
		uint8_t *m = malloc(BIG * PAGE / 8);
		CHECK(m, "malloc");
		memset(m, 0x5a, BIG * PAGE / 8);
		free(m);
	}

	/* mremap keeps protections, also for the part it adds. */
	p = map(8 * PAGE);
	fill(p, 8 * PAGE, 23);
	evict_all(&sw);
	SYS_OK(mprotect(p + 4 * PAGE, 4 * PAGE, PROT_READ), "mprotect(PROT_READ)");
	uint8_t *q = mremap(p, 8 * PAGE, 16 * PAGE, MREMAP_MAYMOVE);
	CHECK(q != MAP_FAILED, "mremap of a partly read-only mapping: %s", strerror(errno));
	verify(q, 8 * PAGE, 23, "mremap'd partly read-only mapping");
	CHECK(writable(q + 3 * PAGE), "mremap: a read-write page became read-only");
	CHECK(!writable(q + 4 * PAGE), "mremap: a read-only page became writable");
	CHECK(!writable(q + 12 * PAGE), "mremap: the grown part is not read-only");
	evict_all(&sw);
	verify(q, 8 * PAGE, 23, "mremap'd partly read-only mapping after a sweep");

	/* A fork()ed child sees the protected bytes. */
	pid_t pid = fork();
	SYS_OK(pid, "fork");
	if (pid == 0) {
		evict_all(&sw);
		verify(q, 8 * PAGE, 23, "child's copy of a partly read-only mapping");
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st),
	      "a child reading protected pages failed: status %#x", st);
	SYS_OK(munmap(q, 16 * PAGE), "munmap");

	/* Heap memory too (a JIT's buffer, say): protected, then back. */
	uint8_t *h = heap_pages(16 * PAGE);
	fill(h, 16 * PAGE, 24);
	evict_all(&sw);
	SYS_OK(mprotect(h, 16 * PAGE, PROT_READ), "mprotect(PROT_READ) of heap pages");
	verify(h, 16 * PAGE, 24, "read-only heap pages");
	SYS_OK(mprotect(h, 16 * PAGE, PROT_READ | PROT_WRITE), "mprotect(RW) of heap pages");
	free(h);
	signal(SIGSEGV, SIG_DFL);
}

/* MAP_FIXED over an emulated mapping replaces those pages: by a file, which
 * must never be handed out as memory again; by anonymous memory, which is
 * emulated and zero. */
static void fixed(void)
{
	enum { LEN = 8 * PAGE };
	FILE *f = tmpfile();
	CHECK(f, "tmpfile");
	static uint8_t data[2 * PAGE];
	fill(data, 2 * PAGE, 30);
	CHECK(pwrite(fileno(f), data, 2 * PAGE, 0) == 2 * PAGE, "pwrite");

	uint8_t *p = map(LEN);
	fill(p, LEN, 31);
	evict_all(&sw);
	void *r = mmap(p + 2 * PAGE, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		       fileno(f), 0);
	CHECK(r == p + 2 * PAGE, "MAP_FIXED file mapping over emulated pages: %s", strerror(errno));
	verify(p + 2 * PAGE, 2 * PAGE, 30, "file mapped over emulated pages");
	verify(p, 2 * PAGE, 31, "emulated pages before a file mapped over others");
	verify_at(p + 4 * PAGE, 4 * PAGE, 4 * PAGE, 31, "emulated pages after it");
	fill(p + 2 * PAGE, 2 * PAGE, 32);
	CHECK(pread(fileno(f), data, 2 * PAGE, 0) == 2 * PAGE, "pread");
	verify(data, 2 * PAGE, 32, "file written through a MAP_FIXED mapping");
	/* The rest goes; the file mapping stays and must not be reused. */
	SYS_OK(munmap(p, 2 * PAGE), "munmap");
	SYS_OK(munmap(p + 4 * PAGE, 4 * PAGE), "munmap");
	for (int i = 0; i < 200; i++) {
		uint8_t *m = malloc(PAGE);
		CHECK(m, "malloc");
		memset(m, 0xaa, PAGE);
		uint8_t *q = map(2 * PAGE);
		memset(q, 0xbb, 2 * PAGE);
	}
	verify(p + 2 * PAGE, 2 * PAGE, 32, "a MAP_FIXED file mapping after much allocation");
	CHECK(pread(fileno(f), data, 2 * PAGE, 0) == 2 * PAGE, "pread");
	verify(data, 2 * PAGE, 32, "a file mapped with MAP_FIXED after much allocation");
	SYS_OK(munmap(p + 2 * PAGE, 2 * PAGE), "munmap of the file mapping");
	fclose(f);
	for (int i = 0; i < 8; i++) {
		uint8_t *q = map(LEN);
		verify_zero(q, LEN, "mmap after unmapping a MAP_FIXED file mapping");
		fill(q, LEN, 33);
		evict_all(&sw);
		verify(q, LEN, 33, "mmap after unmapping a MAP_FIXED file mapping");
	}

	/* Anonymous over emulated: zero, and still emulated. */
	p = map(LEN);
	fill(p, LEN, 34);
	r = mmap(p + PAGE, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		 -1, 0);
	CHECK(r == p + PAGE, "MAP_FIXED anonymous mapping: %s", strerror(errno));
	verify_zero(p + PAGE, 2 * PAGE, "MAP_FIXED anonymous mapping over emulated pages");
	verify(p, PAGE, 34, "the page before a MAP_FIXED anonymous mapping");
	verify_at(p + 3 * PAGE, 5 * PAGE, 3 * PAGE, 34, "the pages after it");
	fill(p, LEN, 35);
	evict_all(&sw);
	need_remote(&sw, p, LEN, "a MAP_FIXED anonymous mapping (still emulated)");
	verify(p, LEN, 35, "a MAP_FIXED anonymous mapping");
	SYS_OK(munmap(p, LEN), "munmap");
}

/* fork() with a file mapped (MAP_FIXED) over emulated pages. */
static void fixed_fork(void)
{
	FILE *f = tmpfile();
	CHECK(f, "tmpfile");
	static uint8_t data[2 * PAGE];
	fill(data, 2 * PAGE, 40);
	CHECK(pwrite(fileno(f), data, 2 * PAGE, 0) == 2 * PAGE, "pwrite");
	uint8_t *p = map(8 * PAGE);
	fill(p, 8 * PAGE, 41);
	void *r = mmap(p + 2 * PAGE, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED, fileno(f), 0);
	CHECK(r == p + 2 * PAGE, "MAP_FIXED file mapping over emulated pages: %s", strerror(errno));
	evict_all(&sw);
	pid_t pid = fork();
	SYS_OK(pid, "fork");
	if (pid == 0) {
		verify(p + 2 * PAGE, 2 * PAGE, 40, "child: the file mapping");
		verify(p, 2 * PAGE, 41, "child: emulated pages beside it");
		uint8_t *m = heap_pages(64 * PAGE);
		fill(m, 64 * PAGE, 42);
		evict_all(&sw);
		verify(m, 64 * PAGE, 42, "child: its heap");
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
	CHECK(WIFEXITED(st) && !WEXITSTATUS(st), "a child forked with a file mapped over emulated "
						 "pages exited with status %#x", st);
	fclose(f);
}

/* Runs fn in a fork()ed child and fails unless it exits 0. */
static void in_child(void (*fn)(void *), void *arg, const char *what)
{
	pid_t pid = fork();
	SYS_OK(pid, "fork");
	if (pid == 0) {
		prog_name = "mmap(child)";
		fn(arg);
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
	CHECK(WIFEXITED(st) && !WEXITSTATUS(st), "%s: the child's status is %#x", what, st);
}

enum { FA = 16 * PAGE };

static void child_sees_zero(void *p)
{
	verify_zero(p, FA, "child: a MADV_WIPEONFORK mapping");
}

static void child_sees_data(void *p)
{
	evict_all(&sw);
	verify(p, FA, 50, "child: a mapping after MADV_KEEPONFORK");
}

static void child_has_hole(void *p)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_segv;
	sigemptyset(&sa.sa_mask);
	SYS_OK(sigaction(SIGSEGV, &sa, NULL), "sigaction(SIGSEGV)");
	CHECK(!readable(p) && !readable((uint8_t *)p + FA - 1),
	      "child: a MADV_DONTFORK mapping is there");
	/* Unmapped, its memory must serve again. */
	SYS_OK(munmap(p, FA), "child: munmap of a MADV_DONTFORK mapping");
	for (int i = 0; i < 16; i++) {
		uint8_t *q = map(FA);
		fill(q, FA, 51);
		evict_all(&sw);
		verify(q, FA, 51, "child: mmap after unmapping a MADV_DONTFORK mapping");
	}
}

static uint8_t *reused[64];

static void child_heap_intact(void *arg)
{
	(void)arg;
	for (int i = 0; i < 64; i++)
		verify(reused[i], FA, 52, "child: heap memory that once was a MADV_WIPEONFORK mapping");
}

/* MADV_WIPEONFORK and MADV_DONTFORK on emulated mappings, with remote pages
 * (whose bytes the kernel does not know of). */
static void fork_advice(void)
{
	uint8_t *p = map(FA);
	fill_mixed(p, FA, 50);
	SYS_OK(madvise(p, FA, MADV_WIPEONFORK), "MADV_WIPEONFORK");
	in_child(child_sees_zero, p, "MADV_WIPEONFORK");
	verify(p, FA, 50, "parent: a MADV_WIPEONFORK mapping after fork");

	/* mremap keeps the flag. */
	uint8_t *q = mremap(p, FA, 2 * FA, MREMAP_MAYMOVE);
	CHECK(q != MAP_FAILED, "mremap: %s", strerror(errno));
	p = mremap(q, 2 * FA, FA, 0);
	CHECK(p == q, "mremap shrink");
	evict_all(&sw);
	in_child(child_sees_zero, p, "MADV_WIPEONFORK after mremap");

	SYS_OK(madvise(p, FA, MADV_KEEPONFORK), "MADV_KEEPONFORK");
	in_child(child_sees_data, p, "MADV_KEEPONFORK");

	/* Unmapped, the memory goes back to the heap without the flag. */
	SYS_OK(madvise(p, FA, MADV_WIPEONFORK), "MADV_WIPEONFORK");
	SYS_OK(munmap(p, FA), "munmap");
	for (int i = 0; i < 64; i++) {
		reused[i] = malloc(FA);
		CHECK(reused[i], "malloc");
		fill(reused[i], FA, 52);
	}
	evict_all(&sw);
	in_child(child_heap_intact, NULL, "heap memory that once was MADV_WIPEONFORK");

	p = map(FA);
	fill_mixed(p, FA, 53);
	SYS_OK(madvise(p, FA, MADV_DONTFORK), "MADV_DONTFORK");
	in_child(child_has_hole, p, "MADV_DONTFORK");
	verify(p, FA, 53, "parent: a MADV_DONTFORK mapping after fork");
	SYS_OK(munmap(p, FA), "munmap");
	for (int i = 0; i < 64; i++)
		free(reused[i]);
}

/* Protected pages are held local: read-only ones that were written, and
 * untouched ones read for the first time (the zero page), more of them
 * than the budget. Neither the parent's evictions nor a fork()ed child's
 * (which evicts its copy down to the budget at once) may choose one:
 * UFFDIO_MOVE refuses a page that is not read-write, and dime said so on
 * stderr (which the test checks stays empty). */
enum { HELD = 100, HELD_FRESH = 8 };

static void child_held_intact(void *p)
{
	const uint8_t *q = p;
	verify(q, HELD * PAGE, 25, "child: protected pages");
	verify_zero(q + HELD * PAGE, HELD_FRESH * PAGE, "child: protected pages never written");
	evict_all(&sw);
	verify(q, HELD * PAGE, 25, "child: protected pages after a sweep");
}

static void protect_fork(void)
{
	uint8_t *p = map((HELD + HELD_FRESH) * PAGE);
	fill(p, HELD * PAGE, 25);
	SYS_OK(mprotect(p, (HELD + HELD_FRESH) * PAGE, PROT_READ), "mprotect(PROT_READ)");
	verify_zero(p + HELD * PAGE, HELD_FRESH * PAGE, "protected pages never written");
	evict_all(&sw);
	verify(p, HELD * PAGE, 25, "protected pages after a sweep");
	in_child(child_held_intact, p, "a child forked with protected pages");
	evict_all(&sw);
	verify(p, HELD * PAGE, 25, "parent: protected pages after the fork");
	SYS_OK(mprotect(p, (HELD + HELD_FRESH) * PAGE, PROT_READ | PROT_WRITE), "mprotect(RW)");
	fill(p, (HELD + HELD_FRESH) * PAGE, 26);
	evict_all(&sw);
	need_remote(&sw, p, (HELD + HELD_FRESH) * PAGE, "pages read-write again");
	verify(p, (HELD + HELD_FRESH) * PAGE, 26, "pages read-write again");
	SYS_OK(munmap(p, (HELD + HELD_FRESH) * PAGE), "munmap");
}

/* Threads that map, fill, protect, remap, discard and unmap at once, with
 * each other's evictions, while the main thread forks: each checks its
 * own bytes at every step, the children check theirs. */
enum { STRESS_THREADS = 4, STRESS_ROUNDS = 60 };

static void *stress_main(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	struct sweeper own = { 0 };
	for (unsigned r = 0; r < STRESS_ROUNDS; r++) {
		unsigned seed = id * 1000 + r;
		size_t np = 2 + (id * 7 + r * 5) % 30, len = np * PAGE;
		uint8_t *p = map(len);
		verify_zero(p, len, "stress: a fresh mapping");
		fill(p, len, seed);
		sweep_pages(&own, 40);
		verify(p, len, seed, "stress: filled");
		if (r % 3 == 0) {
			SYS_OK(mprotect(p, len / 2 & ~(size_t)(PAGE - 1), PROT_READ), "mprotect");
			sweep_pages(&own, 40);
			verify(p, len, seed, "stress: part read-only");
			SYS_OK(mprotect(p, len, PROT_READ | PROT_WRITE), "mprotect(RW)");
		}
		if (r % 4 == 1)
			SYS_OK(madvise(p, len, MADV_WIPEONFORK), "MADV_WIPEONFORK");
		uint8_t *q = mremap(p, len, 2 * len, MREMAP_MAYMOVE);
		CHECK(q != MAP_FAILED, "stress: mremap: %s", strerror(errno));
		verify(q, len, seed, "stress: remapped");
		verify_zero(q + len, len, "stress: the grown part");
		SYS_OK(madvise(q + PAGE, PAGE, MADV_DONTNEED), "MADV_DONTNEED");
		verify(q, PAGE, seed, "stress: before a discarded page");
		verify_zero(q + PAGE, PAGE, "stress: a discarded page");
		verify_at(q + 2 * PAGE, len - 2 * PAGE, 2 * PAGE, seed, "stress: after it");
		SYS_OK(munmap(q, 2 * len), "munmap");
	}
	return NULL;
}

static void stress_child(void *arg)
{
	(void)arg;
	uint8_t *p = map(32 * PAGE);
	fill(p, 32 * PAGE, 77);
	evict_all(&sw);
	verify(p, 32 * PAGE, 77, "stress child: its own mapping");
}

static void stress(void)
{
	pthread_t t[STRESS_THREADS];
	for (unsigned i = 0; i < STRESS_THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, stress_main, (void *)(uintptr_t)i) == 0,
		      "pthread_create");
	for (int i = 0; i < 10; i++) {
		in_child(stress_child, NULL, "a child forked amid mapping changes");
		usleep(5000);
	}
	for (unsigned i = 0; i < STRESS_THREADS; i++)
		pthread_join(t[i], NULL);
}

/* mlock of emulated memory is accepted and changes nothing (residency is
 * dime's); mlockall locks and populates everything else, and returns (it
 * would otherwise populate the whole region through dime). */
static void locking(void)
{
	enum { LEN = 32 * PAGE };
	uint8_t *h = heap_pages(LEN);
	fill(h, LEN, 60);
	SYS_OK(mlock(h, LEN), "mlock of heap pages");
	evict_all(&sw);
	need_remote(&sw, h, LEN, "mlock'ed emulated pages");
	verify(h, LEN, 60, "mlock'ed emulated pages");
	SYS_OK(munlock(h, LEN), "munlock");

	uint8_t *sh = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(sh != MAP_FAILED, "mmap(MAP_SHARED)");
	if (mlockall(MCL_CURRENT | MCL_FUTURE)) {
		/* Not permitted here (RLIMIT_MEMLOCK): nothing to check. */
		CHECK(errno == ENOMEM || errno == EPERM, "mlockall: %s", strerror(errno));
		return;
	}
	CHECK(resident_pages(sh, LEN) == LEN / PAGE, "mlockall(MCL_CURRENT) did not populate a "
						     "shared mapping");
	uint8_t *later = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(later != MAP_FAILED, "mmap(MAP_SHARED)");
	CHECK(resident_pages(later, LEN) == LEN / PAGE, "mlockall(MCL_FUTURE) did not populate a "
							"new shared mapping");
	fill(h, LEN, 61);
	uint8_t *m = map(LEN);
	fill(m, LEN, 62);
	evict_all(&sw);
	need_remote(&sw, h, LEN, "heap pages after mlockall");
	need_remote(&sw, m, LEN, "an anonymous mapping after mlockall");
	verify(h, LEN, 61, "heap pages after mlockall");
	verify(m, LEN, 62, "an anonymous mapping after mlockall");
	SYS_OK(munlockall(), "munlockall");

	uint8_t *lazy = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(lazy != MAP_FAILED, "mmap(MAP_SHARED)");
	SYS_OK(mlockall(MCL_CURRENT | MCL_ONFAULT), "mlockall(MCL_ONFAULT)");
	CHECK(resident_pages(lazy, LEN) == 0, "mlockall(MCL_ONFAULT) populated a mapping");
	SYS_OK(munlockall(), "munlockall");
	munmap(sh, LEN);
	munmap(later, LEN);
	munmap(lazy, LEN);
	munmap(m, LEN);
	free(h);
}

int main(int argc, char **argv)
{
	prog_name = "mmap";
	const char *what = argc > 1 ? argv[1] : "basic";
	if (!strcmp(what, "basic")) {
		fresh_zero();
		dontneed_free();
		partial_munmap();
		remap();
		not_emulated();
	} else if (!strcmp(what, "protect")) {
		protect();
	} else if (!strcmp(what, "protect-fork")) {
		protect_fork();
	} else if (!strcmp(what, "fixed")) {
		fixed();
	} else if (!strcmp(what, "lock")) {
		locking();
	} else if (!strcmp(what, "stress")) {
		stress();
	} else if (!strcmp(what, "fork-advice")) {
		fork_advice();
	} else if (!strcmp(what, "fixed-fork")) {
		fixed_fork();
	} else {
		fail("usage: mmap [basic|protect|protect-fork|fixed|fork-advice|lock|stress|"
		     "fixed-fork]");
	}
	return 0;
}
