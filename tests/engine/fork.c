/* fork(): the child gets its own copy, is itself emulated, and neither
 * sees the other's writes, also while pages are being evicted. */
#include "helpers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

static const size_t PS = 4096;
enum { PAGES = 256, LOCAL = 32 };

static uint64_t word(unsigned who, size_t page)
{
	return (uint64_t)who << 40 | page;
}

static int check(const char *base, unsigned who)
{
	int bad = 0;
	for (size_t i = 0; i < PAGES; i++) {
		const uint64_t *p = (const uint64_t *)(base + i * PS);
		bad += p[0] != word(who, i) || p[PS / 8 - 1] != ~word(who, i);
	}
	return bad;
}

static void fill(char *base, unsigned who)
{
	for (size_t i = 0; i < PAGES; i++) {
		uint64_t *p = (uint64_t *)(base + i * PS);
		p[0] = word(who, i);
		p[PS / 8 - 1] = ~word(who, i);
	}
}

struct churn {
	char *base;
	_Atomic int stop;
};

/* Keeps the budget turning over while the main thread forks. */
static void *churn(void *arg)
{
	struct churn *c = arg;
	while (!atomic_load(&c->stop)) {
		for (size_t i = 0; i < PAGES && !atomic_load(&c->stop); i++)
			(void)*(volatile char *)(c->base + i * PS + 8);
		usleep(500); /* leave the child some CPU on a 2-vCPU machine */
	}
	return NULL;
}

static void fork_under_eviction(enum dime_mode mode)
{
	struct dime_region *r = test_region(PAGES * PS, LOCAL, mode);
	char *base = dime_region_base(r);
	fill(base, 1);
	struct churn c = { .base = base };
	pthread_t t;
	pthread_create(&t, NULL, churn, &c);

	for (int round = 0; round < 5; round++) {
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			/* The child: its own bytes, its own faults. */
			int bad = check(base, 1);
			fill(base, 2);
			bad += check(base, 2);
			struct dime_stats s;
			dime_region_stats(r, &s);
			/* 256 pages through 32 local: it must have faulted. */
			if (s.remote_faults == 0 || s.local_pages_peak > LOCAL)
				bad += 1000;
			_exit(bad ? 1 : 0);
		}
		int status;
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "child of round %d failed (status %#x)", round, status);
		cr_expect_eq(check(base, 1), 0, "the parent's bytes changed in round %d", round);
	}
	atomic_store(&c.stop, 1);
	pthread_join(t, NULL);
	dime_region_destroy(r);
}

Test(fork, child_gets_its_own_copy_thread_mode) { fork_under_eviction(DIME_MODE_THREAD); }
Test(fork, child_gets_its_own_copy_signal_mode) { fork_under_eviction(DIME_MODE_SIGNAL); }

Test(fork, grandchild_is_emulated)
{
	struct dime_region *r = test_region(PAGES * PS, LOCAL, DIME_MODE_THREAD);
	char *base = dime_region_base(r);
	fill(base, 3);
	pid_t pid = fork();
	if (pid == 0) {
		pid_t g = fork();
		if (g == 0)
			_exit(check(base, 3) ? 1 : 0);
		int st;
		waitpid(g, &st, 0);
		_exit(WIFEXITED(st) && WEXITSTATUS(st) == 0 && check(base, 3) == 0 ? 0 : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	dime_region_destroy(r);
}
