/* Stacks the program allocated on its heap (malloc): threads started on
 * them with pthread_attr_setstack (language runtimes, thread pools), and
 * coroutines switched to with swapcontext.
 *   usage: stacks thread [ROUNDS]   a thread fills a buffer on its stack
 *                                   and waits while everything else is
 *                                   evicted; its stack must have stayed
 *                                   local (dime pins it: see
 *                                   src/preload/thread.c) and intact, and
 *                                   once joined it can go remote again
 *   usage: stacks coroutine [ROUNDS] the same on a coroutine's stack,
 *                                   which is emulated: its pages go remote
 *                                   and the coroutine faults them back
 *   usage: stacks coroutine-calls [CALLS]  a coroutine calls madvise and
 *                                   mprotect on emulated memory (dime
 *                                   takes its region lock in them) while
 *                                   another thread keeps evicting
 *   usage: stacks coroutine-fork [FORKS]  a coroutine forks while another
 *                                   thread keeps evicting; each child
 *                                   checks the coroutine's stack
 *   usage: stacks exit [ROUNDS]     threads exit while another thread
 *                                   keeps evicting, and each is joined
 * In signal mode a fault on a stack page needs another stack for dime's
 * SIGBUS (dime gives each thread one). At a thread's exit the kernel
 * clears the thread's id word at the top of its stack and wakes
 * pthread_join(); it cannot wait for dime there, so a remote page would
 * lose the write and the join would wait for ever. */
#include "common.h"
#include "../../proc-state.h"

#include <pthread.h>
#include <ucontext.h>
#include <alloca.h>
#include <stdatomic.h>
#include <time.h>
#include <sys/wait.h>

enum { STACK_BYTES = 256 * 1024, DEEP_BYTES = 64 * 1024 };

static struct sweeper main_sweep;
static _Atomic int phase; /* thread: 1 thread filled, 2 main evicted */
static _Atomic int stop;
static volatile uint8_t *_Atomic deep_buf; /* the waiting thread's or coroutine's buffer */

static void *deep_main(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	volatile uint8_t buf[DEEP_BYTES];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = pat(i, seed);
	atomic_store(&deep_buf, buf);
	atomic_store(&phase, 1);
	while (atomic_load(&phase) != 2)
		sched_yield();
	for (size_t i = 0; i < sizeof(buf); i++)
		if (buf[i] != pat(i, seed))
			fail("stack byte %zu is 0x%02x after the others were evicted, want 0x%02x", i,
			     buf[i], pat(i, seed));
	return (void *)(uintptr_t)(seed + 1);
}

static void *noop_main(void *arg)
{
	return arg;
}

/* Evicts continuously, so that any page left alone for a moment (the top
 * of an exiting thread's stack) goes remote. */
static void *evictor_main(void *arg)
{
	(void)arg;
	struct sweeper s = { 0 };
	while (!atomic_load(&stop))
		sweep_pages(&s, 16);
	return NULL;
}

static void *user_stack(pthread_attr_t *at)
{
	void *stack = heap_pages(STACK_BYTES);
	CHECK(pthread_attr_init(at) == 0, "pthread_attr_init");
	CHECK(pthread_attr_setstack(at, stack, STACK_BYTES) == 0, "pthread_attr_setstack");
	return stack;
}

static void deep(int rounds)
{
	for (int r = 0; r < rounds; r++) {
		pthread_attr_t at;
		uint8_t *stack = user_stack(&at);
		atomic_store(&phase, 0);
		pthread_t t;
		CHECK(pthread_create(&t, &at, deep_main, (void *)(uintptr_t)r) == 0,
		      "pthread_create");
		while (atomic_load(&phase) != 1)
			sched_yield();
		volatile uint8_t *buf = atomic_load(&deep_buf);
		CHECK((uint8_t *)buf > stack && (uint8_t *)buf < stack + STACK_BYTES,
		      "the thread's buffer at %p is not on the stack it was given", (void *)buf);
		evict_all(&main_sweep);
		need_local((const void *)buf, DEEP_BYTES, "a running thread's heap stack");
		atomic_store(&phase, 2);
		void *ret;
		CHECK(pthread_join(t, &ret) == 0, "pthread_join");
		CHECK((uintptr_t)ret == (uintptr_t)r + 1, "round %d: the thread returned %p", r, ret);
		/* Joined: its stack is emulated memory like any other again. */
		need_remote(&main_sweep, (const void *)(buf + DEEP_BYTES / 4), DEEP_BYTES / 2,
			    "a joined thread's heap stack");
		pthread_attr_destroy(&at);
		free(stack);
	}
}

static ucontext_t main_ctx, co_ctx;

static void coroutine_main(unsigned seed)
{
	volatile uint8_t buf[DEEP_BYTES];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = pat(i, seed);
	atomic_store(&deep_buf, buf);
	swapcontext(&co_ctx, &main_ctx);
	/* The pages under buf are remote now (checked by the main context):
	 * each access below faults on this coroutine's own stack. */
	for (size_t i = 0; i < sizeof(buf); i++)
		if (buf[i] != pat(i, seed))
			fail("coroutine stack byte %zu is 0x%02x after its page went remote, want 0x%02x",
			     i, buf[i], pat(i, seed));
}

/* One round in a function of its own: swapcontext returns twice. */
static __attribute__((noinline)) void coroutine_round(unsigned r)
{
	uint8_t *stack = heap_pages(STACK_BYTES);
	CHECK(getcontext(&co_ctx) == 0, "getcontext");
	co_ctx.uc_stack.ss_sp = stack;
	co_ctx.uc_stack.ss_size = STACK_BYTES;
	co_ctx.uc_link = &main_ctx;
	makecontext(&co_ctx, (void (*)(void))coroutine_main, 1, r);
	CHECK(swapcontext(&main_ctx, &co_ctx) == 0, "swapcontext");
	volatile uint8_t *buf = atomic_load(&deep_buf);
	CHECK((uint8_t *)buf > stack && (uint8_t *)buf < stack + STACK_BYTES,
	      "the coroutine's buffer at %p is not on its stack", (void *)buf);
	/* Its middle half: pages of the buffer only. */
	need_remote(&main_sweep, (const void *)(buf + DEEP_BYTES / 4), DEEP_BYTES / 2,
		    "a suspended coroutine's stack pages");
	CHECK(swapcontext(&main_ctx, &co_ctx) == 0, "swapcontext");
	free(stack);
}

static void coroutines(int rounds)
{
	for (int r = 0; r < rounds; r++)
		coroutine_round((unsigned)r);
}

/* coroutine-calls: dime's code in madvise, mprotect and munmap runs on the
 * coroutine's stack and takes the region's lock, while another thread's
 * faults evict pages of that stack at any moment; a fault on the stack
 * while the lock is held would never be resolved. The pad moves the stack
 * pointer through every 64-byte offset of a page. */
static uint8_t *co_block;
static int co_calls;
static _Atomic unsigned long progress; /* calls or forks done */

static __attribute__((noinline)) void calls_at(size_t pad)
{
	volatile char *room = alloca(pad + 1);
	room[0] = 0;
	CHECK(madvise(co_block, PAGE, MADV_DONTNEED) == 0, "madvise: %s", strerror(errno));
	CHECK(mprotect(co_block, PAGE, PROT_READ) == 0, "mprotect: %s", strerror(errno));
	CHECK(mprotect(co_block, PAGE, PROT_READ | PROT_WRITE) == 0, "mprotect: %s",
	      strerror(errno));
	room[0] = 1;
	atomic_fetch_add(&progress, 1);
}

static void calls_main(void)
{
	for (int k = 0; k < co_calls; k++)
		calls_at((size_t)k * 64 % PAGE);
	void *m = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED, "mmap: %s", strerror(errno));
	memset(m, 1, 4 * PAGE);
	CHECK(munmap(m, 4 * PAGE) == 0, "munmap: %s", strerror(errno));
}

/* A hang here is the failure: said after a minute without progress (a
 * call or fork takes milliseconds), checked every second. */
static void *hang_watch(void *arg)
{
	(void)arg;
	unsigned long seen = atomic_load(&progress);
	for (int still = 0; still < 60; still++) {
		sleep(1);
		unsigned long now = atomic_load(&progress);
		if (now != seen)
			still = 0;
		seen = now;
	}
	/* Written whole before fail(), whose message is short. */
	static char state[16384];
	proc_state(getpid(), state, sizeof(state));
	if (write(2, state, strlen(state)) < 0)
		_exit(1);
	fail("the coroutine hung (a fault on its stack under dime's lock)");
}

/* Runs body as a coroutine on a heap stack while another thread keeps
 * evicting, under the hang watch. */
static void run_evicted_coroutine(void (*body)(void))
{
	pthread_t ev, watch;
	uint8_t *stack = heap_pages(STACK_BYTES);
	CHECK(pthread_create(&ev, NULL, evictor_main, NULL) == 0, "pthread_create");
	CHECK(pthread_create(&watch, NULL, hang_watch, NULL) == 0, "pthread_create");
	CHECK(getcontext(&co_ctx) == 0, "getcontext");
	co_ctx.uc_stack.ss_sp = stack;
	co_ctx.uc_stack.ss_size = STACK_BYTES;
	co_ctx.uc_link = &main_ctx;
	makecontext(&co_ctx, body, 0);
	CHECK(swapcontext(&main_ctx, &co_ctx) == 0, "swapcontext");
	atomic_store(&stop, 1);
	CHECK(pthread_join(ev, NULL) == 0, "pthread_join");
	free(stack);
}

static void coroutine_calls(int calls)
{
	co_block = heap_pages(PAGE);
	co_calls = calls;
	run_evicted_coroutine(calls_main);
}

/* coroutine-fork: a coroutine forks while another thread evicts. dime's
 * fork handlers take the region's lock and run on the forking thread's
 * stack, here emulated memory whose pages can go remote at any moment.
 * Each child checks a buffer on the coroutine's stack, made remote by the
 * evictor, and exits; a hang is the failure. */
static int co_forks;

static __attribute__((noinline)) void fork_at(size_t pad, const volatile uint8_t *buf,
					      unsigned seed)
{
	volatile char *room = alloca(pad + 1);
	room[0] = 0;
	pid_t pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		for (size_t i = 0; i < DEEP_BYTES; i++)
			if (buf[i] != pat(i, seed))
				_exit(3);
		_exit(room[0] == 0 ? 0 : 4);
	}
	/* Not on the coroutine's stack: in signal mode the kernel cannot
	 * write to a remote page (documented). */
	static int status;
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "fork %u: the child saw the coroutine's stack wrong (status 0x%x)", seed, status);
	atomic_fetch_add(&progress, 1);
}

static void fork_main(void)
{
	volatile uint8_t buf[DEEP_BYTES];
	for (int k = 0; k < co_forks; k++) {
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = pat(i, (unsigned)k);
		fork_at((size_t)k * 64 % (4 * PAGE), buf, (unsigned)k);
	}
}

static void coroutine_forks(int forks)
{
	co_forks = forks;
	run_evicted_coroutine(fork_main);
}

static void exits(int rounds)
{
	pthread_t ev;
	CHECK(pthread_create(&ev, NULL, evictor_main, NULL) == 0, "pthread_create");
	for (int r = 0; r < rounds; r++) {
		pthread_attr_t at;
		void *stack = user_stack(&at);
		pthread_t t;
		CHECK(pthread_create(&t, &at, noop_main, (void *)(uintptr_t)r) == 0,
		      "pthread_create");
		/* A lost exit write leaves the join waiting for ever: a minute
		 * says so (a round takes microseconds). */
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 60;
		void *ret;
		int err = pthread_timedjoin_np(t, &ret, &until);
		CHECK(err != ETIMEDOUT, "round %d: the thread's exit never reached pthread_join", r);
		CHECK(err == 0, "pthread_join: %s", strerror(err));
		CHECK((uintptr_t)ret == (uintptr_t)r, "round %d: the thread returned %p", r, ret);
		pthread_attr_destroy(&at);
		free(stack);
	}
	atomic_store(&stop, 1);
	CHECK(pthread_join(ev, NULL) == 0, "pthread_join");
}

int main(int argc, char **argv)
{
	prog_name = "stacks";
	CHECK(argc > 1, "usage: stacks thread|coroutine|coroutine-calls|coroutine-fork|exit [ROUNDS]");
	int rounds = argc > 2 ? atoi(argv[2]) : 0;
	if (!strcmp(argv[1], "thread"))
		deep(rounds ? rounds : 20);
	else if (!strcmp(argv[1], "coroutine"))
		coroutines(rounds ? rounds : 20);
	else if (!strcmp(argv[1], "coroutine-calls"))
		coroutine_calls(rounds ? rounds : 100000);
	else if (!strcmp(argv[1], "coroutine-fork"))
		coroutine_forks(rounds ? rounds : 2000);
	else if (!strcmp(argv[1], "exit"))
		exits(rounds ? rounds : 5000);
	else
		fail("unknown scenario %s", argv[1]);
	return 0;
}
