/* The fault clock (src/engine/faultclock.c): in thread mode, where perf
 * events are allowed, every remote fault's start comes from the kernel's
 * page-fault event, for the thread that created the region, the threads
 * it starts afterwards, a fork()ed child, and faults taken by the kernel
 * inside system calls; with DIME_NO_FAULTCLOCK set, none, and the bytes
 * are the same either way. Counted (clocked_faults), never timed. */
#define _GNU_SOURCE
#include "helpers.h"

#include <linux/perf_event.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>

enum { PAGES = 256, LOCAL = 32, PASSES = 3 };

static size_t ps(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* Whether this process may sample its own page faults, kernel-mode ones
 * included if `kernel`: otherwise dime runs without the clock, and these
 * tests have nothing to check. */
static bool perf_allowed(bool kernel)
{
	struct perf_event_attr a;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = PERF_TYPE_SOFTWARE;
	a.config = PERF_COUNT_SW_PAGE_FAULTS;
	a.sample_period = 1;
	a.exclude_kernel = !kernel;
	a.exclude_hv = 1;
	int fd = (int)syscall(SYS_perf_event_open, &a, 0, 0, -1, 0);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static struct dime_region *delayed_region(void)
{
	struct dime_params p;
	dime_params_init(&p);
	p.size = PAGES * ps();
	p.local_npages = LOCAL;
	p.latency_ns = 5000;
	p.mode = DIME_MODE_THREAD;
	struct dime_region *r;
	int err = dime_region_create(&p, &r);
	cr_assert_eq(err, 0, "dime_region_create: %s", dime_strerror(err));
	return r;
}

/* Writes every page PASSES times (each pass over PAGES > LOCAL pages makes
 * every access remote after the first), checking what the last pass
 * wrote; the number of wrong bytes. */
static int sweep(char *m, unsigned salt)
{
	int wrong = 0;
	for (unsigned pass = 0; pass < PASSES; pass++)
		for (size_t i = 0; i < PAGES; i++) {
			unsigned char *b = (unsigned char *)m + i * ps();
			if (pass && b[7] != (unsigned char)(salt + pass - 1 + i))
				wrong++;
			b[7] = (unsigned char)(salt + pass + i);
		}
	return wrong;
}

static void stats(struct dime_region *r, uint64_t *remote, uint64_t *clocked)
{
	struct dime_stats s;
	dime_region_stats(r, &s);
	*remote = s.remote_faults;
	*clocked = s.clocked_faults;
}

/* Nearly every remote fault since (remote0, clocked0) was timed: a sample
 * may be lost only to a ring overflowing, which a sweep cannot cause. */
static void assert_clocked(struct dime_region *r, uint64_t remote0, uint64_t clocked0,
			   const char *who)
{
	uint64_t remote, clocked;
	stats(r, &remote, &clocked);
	remote -= remote0;
	clocked -= clocked0;
	cr_assert_gt(remote, PAGES, "%s: only %llu remote faults", who, (unsigned long long)remote);
	cr_assert_geq(clocked * 100, remote * 95, "%s: %llu of %llu remote faults timed", who,
		      (unsigned long long)clocked, (unsigned long long)remote);
}

Test(faultclock, remote_faults_of_the_creating_thread_are_timed)
{
	if (!perf_allowed(false))
		cr_skip_test("perf events not allowed here");
	struct dime_region *r = delayed_region();
	cr_assert_eq(sweep(dime_region_base(r), 1), 0);
	assert_clocked(r, 0, 0, "main thread");
	dime_region_destroy(r);
}

static void *sweeper(void *arg)
{
	return (void *)(intptr_t)sweep(arg, 2);
}

Test(faultclock, threads_started_afterwards_are_timed)
{
	if (!perf_allowed(false))
		cr_skip_test("perf events not allowed here");
	struct dime_region *r = delayed_region();
	uint64_t remote0, clocked0;
	stats(r, &remote0, &clocked0);
	pthread_t t;
	void *wrong;
	cr_assert_eq(pthread_create(&t, NULL, sweeper, dime_region_base(r)), 0);
	pthread_join(t, &wrong);
	cr_assert_eq((intptr_t)wrong, 0);
	assert_clocked(r, remote0, clocked0, "new thread");
	dime_region_destroy(r);
}

Test(faultclock, a_forked_child_times_its_own_faults)
{
	if (!perf_allowed(false))
		cr_skip_test("perf events not allowed here");
	struct dime_region *r = delayed_region();
	char *m = dime_region_base(r);
	cr_assert_eq(sweep(m, 3), 0);
	pid_t child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		/* The child's counters start as the parent's were. */
		uint64_t remote0, clocked0, remote, clocked;
		stats(r, &remote0, &clocked0);
		int wrong = sweep(m, 4);
		stats(r, &remote, &clocked);
		bool ok = remote - remote0 > PAGES && (clocked - clocked0) * 100 >= (remote - remote0) * 95;
		_exit(wrong ? 1 : ok ? 0 : 2);
	}
	int status;
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status), "child died (status %#x)", status);
	cr_assert_neq(WEXITSTATUS(status), 1, "child read wrong bytes");
	cr_assert_eq(WEXITSTATUS(status), 0, "child's remote faults were not timed");
	/* The parent's bytes are its own, and its clock still works. */
	uint64_t remote0, clocked0;
	stats(r, &remote0, &clocked0);
	for (size_t i = 0; i < PAGES; i++)
		cr_assert_eq(((unsigned char *)m)[i * ps() + 7], (unsigned char)(3 + PASSES - 1 + i));
	cr_assert_eq(sweep(m, 5), 0);
	assert_clocked(r, remote0, clocked0, "parent after fork");
	dime_region_destroy(r);
}

Test(faultclock, faults_inside_system_calls_are_timed)
{
	if (!perf_allowed(true))
		cr_skip_test("kernel-mode perf samples not allowed here");
	struct dime_region *r = delayed_region();
	char *m = dime_region_base(r);
	cr_assert_eq(sweep(m, 6), 0);
	/* Pages 0..LOCAL-1 are remote now (FIFO, cyclic sweep): the
	 * kernel's read() into them faults, not the program. */
	int pfd[2];
	cr_assert_eq(pipe(pfd), 0);
	uint64_t remote0, clocked0, remote, clocked;
	stats(r, &remote0, &clocked0);
	char byte = 'x';
	for (size_t i = 0; i < LOCAL; i++) {
		cr_assert_eq(write(pfd[1], &byte, 1), 1);
		cr_assert_eq(read(pfd[0], m + i * ps(), 1), 1);
	}
	stats(r, &remote, &clocked);
	cr_assert_geq(remote - remote0, LOCAL / 2, "read() into remote pages took %llu remote faults",
		      (unsigned long long)(remote - remote0));
	cr_assert_eq(clocked - clocked0, remote - remote0, "%llu of %llu timed",
		     (unsigned long long)(clocked - clocked0), (unsigned long long)(remote - remote0));
	for (size_t i = 0; i < LOCAL; i++)
		cr_assert_eq(m[i * ps()], 'x');
	close(pfd[0]);
	close(pfd[1]);
	dime_region_destroy(r);
}

Test(faultclock, off_by_environment_estimates_every_fault_and_keeps_the_bytes)
{
	setenv("DIME_NO_FAULTCLOCK", "1", 1);
	struct dime_region *r = delayed_region();
	cr_assert_eq(sweep(dime_region_base(r), 7), 0);
	uint64_t remote, clocked;
	stats(r, &remote, &clocked);
	cr_assert_gt(remote, PAGES);
	cr_assert_eq(clocked, 0);
	dime_region_destroy(r);
}
