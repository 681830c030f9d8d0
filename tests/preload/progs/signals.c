/* The program's own signal handlers keep working.
 * usage: signals usr1   SIGUSR1/SIGUSR2 handlers that touch remote heap
 *                       pages, one on an alternate stack in a remote heap
 *                       block (the kernel writes the frame there); thread
 *                       mode only: signal mode keeps such a stack local.
 *        signals usr1-noaltstack  the same without the alternate stack, for
 *                       signal mode.
 *        signals altstack  signal stacks in emulated memory amid faults.
 *        signals blocked  threads and handlers that block every signal.
 *        signals bus-resethand  a SIGBUS crash handler re-raising.
 *        signals bus    the program's SIGBUS handler gets real SIGBUSes
 *                       (touching beyond the end of a mapped file) amid
 *                       loads and stores that fault (in signal mode: dime's
 *                       own SIGBUSes); with the default action a real
 *                       SIGBUS still kills. Both modes. */
#include "common.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

static struct sweeper sw;

/* --- SIGUSR1 ---------------------------------------------------------------- */

enum { DATA = 8 * PAGE };
static uint8_t *volatile data;          /* heap: remote when the handler runs */
static volatile sig_atomic_t handled, bad_in_handler;
static char *volatile alt_lo, *volatile alt_hi;
static volatile sig_atomic_t on_alt;

static void usr_handler(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	char here;
	on_alt = &here >= alt_lo && &here < alt_hi;
	/* Reads and writes remote pages from inside the handler. */
	for (size_t i = 0; i < DATA; i++)
		if (data[i] != pat(i, (unsigned)handled))
			bad_in_handler = 1;
	for (size_t i = 0; i < DATA; i++)
		data[i] = pat(i, (unsigned)handled + 1);
	handled++;
	(void)sig;
}

static void plain_handler(int sig)
{
	(void)sig;
	for (size_t i = 0; i < DATA; i++)
		data[i] = pat(i, (unsigned)handled + 1);
	handled++;
}

static void deliver(int sig, const char *what)
{
	sig_atomic_t before = handled;
	evict_all(&sw);
	need_remote(&sw, data, DATA, "data the handler uses");
	CHECK(raise(sig) == 0, "raise");
	CHECK(handled == before + 1, "%s: the handler did not run", what);
	CHECK(!bad_in_handler, "%s: the handler read wrong bytes", what);
	verify(data, DATA, (unsigned)handled, what);
}

static void usr1(bool altstack)
{
	data = heap_pages(DATA);
	fill(data, DATA, 0);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = usr_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	SYS_OK(sigaction(SIGUSR1, &sa, NULL), "sigaction(SIGUSR1)");
	deliver(SIGUSR1, "SIGUSR1 handler");

	/* Sent by another process (the kernel queues it for us). */
	evict_all(&sw);
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old);
	pid_t pid = fork();
	SYS_OK(pid, "fork");
	if (pid == 0) {
		kill(getppid(), SIGUSR1);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	sig_atomic_t before = handled;
	sigprocmask(SIG_SETMASK, &old, NULL); /* delivered here */
	CHECK(handled == before + 1, "SIGUSR1 from another process: the handler did not run");
	verify(data, DATA, (unsigned)handled, "SIGUSR1 from another process");

	/* signal() */
	CHECK(signal(SIGUSR2, plain_handler) != SIG_ERR, "signal(SIGUSR2)");
	deliver(SIGUSR2, "SIGUSR2 handler installed with signal()");
	struct sigaction cur;
	SYS_OK(sigaction(SIGUSR2, NULL, &cur), "sigaction(SIGUSR2, NULL, &old)");
	CHECK(cur.sa_handler == plain_handler, "sigaction does not report the handler");

	if (!altstack)
		return;
	/* An alternate stack in a remote heap block. */
	enum { ALT = 16 * PAGE };
	char *alt = heap_pages(ALT);
	stack_t ss = { .ss_sp = alt, .ss_size = ALT };
	SYS_OK(sigaltstack(&ss, NULL), "sigaltstack");
	alt_lo = alt;
	alt_hi = alt + ALT;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	SYS_OK(sigaction(SIGUSR1, &sa, NULL), "sigaction(SIGUSR1, SA_ONSTACK)");
	evict_all(&sw);
	need_remote(&sw, alt + ALT - PAGE, PAGE, "top of the alternate stack");
	deliver(SIGUSR1, "SIGUSR1 handler on a remote alternate stack");
	CHECK(on_alt, "the handler did not run on the alternate stack");
	ss.ss_flags = SS_DISABLE;
	SYS_OK(sigaltstack(&ss, NULL), "sigaltstack(SS_DISABLE)");
	free(alt);
}

/* --- SIGBUS ----------------------------------------------------------------- */

static sigjmp_buf bus_env;
static void *volatile bus_addr;
static volatile int bus_code, bus_count;

static void bus_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	bus_addr = si->si_addr;
	bus_code = si->si_code;
	bus_count++;
	siglongjmp(bus_env, 1);
}

static void bus_plain(int sig)
{
	(void)sig;
	bus_count++;
	siglongjmp(bus_env, 1);
}

/* A page of a mapping past the end of its file: touching it is SIGBUS. */
static volatile uint8_t *beyond_eof(void)
{
	FILE *f = tmpfile();
	CHECK(f, "tmpfile");
	CHECK(ftruncate(fileno(f), 100) == 0, "ftruncate");
	uint8_t *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fileno(f), 0);
	CHECK(m != MAP_FAILED, "mmap(file): %s", strerror(errno));
	fclose(f);
	return m + PAGE;
}

static void bus(void)
{
	enum { LEN = 64 * PAGE };
	uint8_t *mem = heap_pages(LEN);
	volatile uint8_t *eof = beyond_eof();

	struct sigaction sa, old;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = bus_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	SYS_OK(sigaction(SIGBUS, &sa, NULL), "sigaction(SIGBUS)");
	SYS_OK(sigaction(SIGBUS, NULL, &old), "sigaction(SIGBUS, NULL, &old)");
	CHECK((old.sa_flags & SA_SIGINFO) && old.sa_sigaction == bus_handler,
	      "sigaction does not report the program's SIGBUS handler");

	for (int round = 0; round < 5; round++) {
		/* Loads and stores that fault (dime's SIGBUSes in signal mode). */
		fill(mem, LEN, (unsigned)round);
		evict_all(&sw);
		need_remote(&sw, mem, LEN, "heap buffer");
		verify(mem, LEN, (unsigned)round, "heap buffer between real SIGBUSes");
		int before = bus_count;
		if (sigsetjmp(bus_env, 1) == 0) {
			(void)*eof;
			fail("no SIGBUS touching beyond the end of a mapped file");
		}
		CHECK(bus_count == before + 1, "the SIGBUS handler ran %d times",
		      bus_count - before);
		CHECK(bus_addr == (void *)eof, "SIGBUS si_addr %p, want %p", bus_addr,
		      (void *)eof);
		CHECK(bus_code == BUS_ADRERR, "SIGBUS si_code %d, want BUS_ADRERR", bus_code);
	}

	/* signal() for SIGBUS, and what it returns. */
	sighandler_t prev = signal(SIGBUS, bus_plain);
	CHECK(prev != SIG_ERR, "signal(SIGBUS)");
	prev = signal(SIGBUS, bus_plain);
	CHECK(prev == bus_plain, "signal(SIGBUS) returned %p, want the handler set before",
	      (void *)prev);
	int before = bus_count;
	if (sigsetjmp(bus_env, 1) == 0) {
		(void)*eof;
		fail("no SIGBUS with a handler from signal()");
	}
	CHECK(bus_count == before + 1, "the signal() SIGBUS handler did not run");
	fill(mem, LEN, 9);
	evict_all(&sw);
	verify(mem, LEN, 9, "heap buffer after SIGBUS handlers");

	/* Default action: a real SIGBUS kills, a dime one does not. */
	pid_t pid = fork();
	SYS_OK(pid, "fork");
	if (pid == 0) {
		signal(SIGBUS, SIG_DFL);
		fill(mem, LEN, 10);
		evict_all(&sw);
		verify(mem, LEN, 10, "child's heap buffer with SIGBUS at SIG_DFL");
		(void)*eof;
		_exit(3);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS,
	      "a real SIGBUS with the default action: status %#x, want death by SIGBUS", st);
	free(mem);
}

/* A crash handler's pattern: SA_RESETHAND, note the fault, raise the
 * signal again to die of it. The handler must run once. */
static volatile int *resethand_runs; /* MAP_SHARED: the parent reads it */

static void resethand_handler(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	(*resethand_runs)++;
	raise(sig);
}

static void bus_resethand(void)
{
	resethand_runs = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(resethand_runs != MAP_FAILED, "mmap");
	volatile uint8_t *eof = beyond_eof();
	uint8_t *mem = heap_pages(64 * PAGE);
	for (int how = 0; how < 2; how++) {
		*resethand_runs = 0;
		pid_t pid = fork();
		SYS_OK(pid, "fork");
		if (pid == 0) {
			struct sigaction sa;
			memset(&sa, 0, sizeof(sa));
			sa.sa_sigaction = resethand_handler;
			sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
			sigemptyset(&sa.sa_mask);
			SYS_OK(sigaction(SIGBUS, &sa, NULL), "sigaction(SIGBUS, SA_RESETHAND)");
			fill(mem, 64 * PAGE, 11);
			evict_all(&sw);
			verify(mem, 64 * PAGE, 11, "heap with a SA_RESETHAND SIGBUS handler");
			if (how == 0)
				(void)*eof; /* a real fault */
			else
				raise(SIGBUS); /* a sent one */
			_exit(3);
		}
		int st;
		CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
		CHECK(*resethand_runs == 1, "a SA_RESETHAND SIGBUS handler ran %d times, want 1",
		      *resethand_runs);
		CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS,
		      "re-raising SIGBUS from a SA_RESETHAND handler: status %#x, want death by "
		      "SIGBUS",
		      st);
	}
}

/* Threads that block every signal and handlers that run with a full
 * sa_mask still touch remote pages (in signal mode dime's faults are
 * SIGBUSes: they must get through). */
enum { BLK = 32 * PAGE };
static uint8_t *blk;
static volatile sig_atomic_t blk_handled;

static void *blocked_thread(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	CHECK(pthread_sigmask(SIG_BLOCK, &all, NULL) == 0, "pthread_sigmask");
	struct sweeper own = { 0 };
	for (int r = 0; r < 5; r++) {
		sweep_pages(&own, 200);
		verify(blk, BLK, (unsigned)r, "a thread with every signal blocked");
		fill(blk, BLK, (unsigned)r + 1);
	}
	return NULL;
}

static void full_mask_handler(int sig)
{
	(void)sig;
	verify(blk, BLK, 5, "a handler with a full sa_mask");
	fill(blk, BLK, 6);
	blk_handled = 1;
}

static void blocked(void)
{
	blk = heap_pages(BLK);
	fill(blk, BLK, 0);
	pthread_t t;
	CHECK(pthread_create(&t, NULL, blocked_thread, NULL) == 0, "pthread_create");
	pthread_join(t, NULL);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = full_mask_handler;
	sigfillset(&sa.sa_mask);
	SYS_OK(sigaction(SIGUSR1, &sa, NULL), "sigaction(SIGUSR1)");
	evict_all(&sw);
	need_remote(&sw, blk, BLK, "data of a handler with a full sa_mask");
	CHECK(raise(SIGUSR1) == 0, "raise");
	CHECK(blk_handled, "the handler did not run");

	sigset_t all;
	sigfillset(&all);
	SYS_OK(sigprocmask(SIG_SETMASK, &all, NULL), "sigprocmask");
	evict_all(&sw);
	verify(blk, BLK, 6, "the main thread with every signal blocked");
	sigemptyset(&all);
	SYS_OK(sigprocmask(SIG_SETMASK, &all, NULL), "sigprocmask");
}

/* Alternate signal stacks in emulated memory (malloc'd, and mmap'd with a
 * guard page as language runtimes do) while faults keep coming: in signal
 * mode each of dime's SIGBUSes is delivered on that stack. */
static void *altstack_thread(void *arg)
{
	(void)arg;
	char *st = malloc(SIGSTKSZ * 2);
	CHECK(st, "malloc");
	stack_t ss = { .ss_sp = st, .ss_size = SIGSTKSZ * 2 };
	SYS_OK(sigaltstack(&ss, NULL), "sigaltstack in a thread");
	struct sweeper own = { 0 };
	for (int r = 0; r < 3; r++) {
		sweep_pages(&own, 200);
		verify(blk, BLK, 20, "a thread with a malloc'd signal stack");
	}
	ss.ss_flags = SS_DISABLE;
	SYS_OK(sigaltstack(&ss, NULL), "sigaltstack(SS_DISABLE)");
	free(st);
	return NULL;
}

static void altstack(void)
{
	blk = heap_pages(BLK);
	fill(blk, BLK, 20);
	data = heap_pages(DATA);

	size_t sz = PAGE + 4 * PAGE;
	uint8_t *m = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED, "mmap");
	need_emulated(m, "mmap'd signal stack");
	SYS_OK(mprotect(m, PAGE, PROT_NONE), "mprotect(guard)");
	stack_t ss = { .ss_sp = m + PAGE, .ss_size = 4 * PAGE };
	SYS_OK(sigaltstack(&ss, NULL), "sigaltstack");
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = usr_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	SYS_OK(sigaction(SIGUSR1, &sa, NULL), "sigaction(SIGUSR1, SA_ONSTACK)");
	alt_lo = (char *)m + PAGE;
	alt_hi = (char *)m + sz;
	for (int r = 0; r < 3; r++) {
		evict_all(&sw);
		verify(blk, BLK, 20, "heap with a signal stack in emulated memory");
		fill(data, DATA, (unsigned)handled);
		evict_all(&sw);
		CHECK(raise(SIGUSR1) == 0, "raise");
		CHECK(on_alt, "the handler did not run on the alternate stack");
		verify(data, DATA, (unsigned)handled, "data the handler wrote");
	}
	pthread_t t;
	CHECK(pthread_create(&t, NULL, altstack_thread, NULL) == 0, "pthread_create");
	pthread_join(t, NULL);
	/* Replaced by a malloc'd one; the old one unmapped and reused. */
	char *st = malloc(SIGSTKSZ * 2);
	CHECK(st, "malloc");
	ss = (stack_t){ .ss_sp = st, .ss_size = SIGSTKSZ * 2 };
	SYS_OK(sigaltstack(&ss, NULL), "sigaltstack (replacing)");
	SYS_OK(munmap(m, sz), "munmap of the old signal stack");
	for (int r = 0; r < 3; r++) {
		uint8_t *q = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		CHECK(q != MAP_FAILED, "mmap");
		fill(q, sz, 21);
		evict_all(&sw);
		verify(q, sz, 21, "a mapping where a signal stack was");
		verify(blk, BLK, 20, "heap with a replaced signal stack");
		SYS_OK(munmap(q, sz), "munmap");
	}
	ss.ss_flags = SS_DISABLE;
	SYS_OK(sigaltstack(&ss, NULL), "sigaltstack(SS_DISABLE)");
	free(st);
}

int main(int argc, char **argv)
{
	prog_name = "signals";
	const char *what = argc > 1 ? argv[1] : "";
	if (!strcmp(what, "usr1"))
		usr1(true);
	else if (!strcmp(what, "usr1-noaltstack"))
		usr1(false);
	else if (!strcmp(what, "bus"))
		bus();
	else if (!strcmp(what, "bus-resethand"))
		bus_resethand();
	else if (!strcmp(what, "blocked"))
		blocked();
	else if (!strcmp(what, "altstack"))
		altstack();
	else
		fail("usage: signals usr1|usr1-noaltstack|bus|bus-resethand|blocked|altstack");
	return 0;
}
