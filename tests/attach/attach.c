/* dime insert / dime detach on a running program that checks its own data
 * from two threads (tests/attach/progs/target.c): remote faults happen while its checksums
 * stay right, fork and mremap in the target keep every copy right, detach
 * leaves nothing of dime behind, and the agent's and the target's deaths
 * leave nothing wedged. */
#define _GNU_SOURCE
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

TestSuite(attach, .init = control_dir_init, .timeout = 600);

Test(attach, insert_then_detach_keeps_every_byte)
{
	skip_unless_root();
	struct target t;
	target_start(&t);
	passes(&t, 1);
	char fds_before[2048], fds_after[2048];
	int maps = proc_count(t.pid, "maps"), fds = proc_fds(t.pid, fds_before, sizeof(fds_before));
	int tasks = proc_count(t.pid, "task");
	struct run r = insert_ok(t.pid, "64");
	cr_assert(strstr(r.out, "is under emulation"), "%s", r.out);
	cr_assert(strstr(r.out, "[heap]"), "the heap is not covered: %s", r.out);
	cr_assert(strstr(r.out, "main stack (grows down)"), "%s", r.out);
	cr_assert(strstr(r.out, "made remote now"), "%s", r.out);
	/* Whole passes over 2,200 pages with 64 local: remote faults. */
	passes(&t, 3);
	r = detach_ok(t.pid);
	cr_assert(strstr(r.out, "all pages in place"), "%s", r.out);
	cr_assert_gt(stat_of(r.out, "remote_faults "), 1000, "%s", r.out);
	cr_assert_gt(stat_of(r.out, "evictions "), 1000, "%s", r.out);
	cr_assert_leq(stat_of(r.out, "local_pages_peak "), 64 + 16, "%s", r.out);
	/* The data pages are all there, and dime's mappings, descriptors and
	 * helper thread are gone. */
	unsigned long long ck;
	void *small, *big;
	cr_assert_eq(sscanf(t.ready, "ready %llu %p %p", &ck, &small, &big), 3);
	cr_assert(all_present(t.pid, (uintptr_t)big, 6 << 20));
	cr_assert(all_present(t.pid, (uintptr_t)small, 2048 * 1000));
	cr_assert_eq(proc_count(t.pid, "maps"), maps);
	cr_assert_eq(proc_fds(t.pid, fds_after, sizeof(fds_after)), fds,
		     "descriptors before: %s; after: %s", fds_before, fds_after);
	cr_assert_eq(proc_count(t.pid, "task"), tasks);
	passes(&t, 2);
	target_finish(&t);
	char sock[256];
	snprintf(sock, sizeof(sock), "%s/dime/attach-%d.sock", xdg, (int)t.pid);
	cr_assert(gone(sock));
}

Test(attach, fork_in_target_keeps_both_copies)
{
	skip_unless_root();
	struct target t;
	target_start(&t);
	insert_ok(t.pid, "64");
	passes(&t, 1);
	/* The child checks every byte, changes its copy and checks again;
	 * the parent checks its own copy did not change. */
	char line[128];
	kill(t.pid, SIGUSR1);
	cr_assert(wait_line(&t, "fork ok", line, sizeof(line)), "fork in the target failed");
	passes(&t, 2);
	kill(t.pid, SIGUSR1);
	cr_assert(wait_line(&t, "fork ok", line, sizeof(line)), "second fork failed");
	detach_ok(t.pid);
	target_finish(&t);
}

Test(attach, mremap_and_madvise_in_target)
{
	skip_unless_root();
	struct target t;
	target_start(&t);
	insert_ok(t.pid, "64");
	passes(&t, 1);
	/* The large block moves (its remote pages with it) and a scratch
	 * block discarded with MADV_DONTNEED reads as zeroes. */
	char line[128];
	kill(t.pid, SIGUSR2);
	cr_assert(wait_line(&t, "remap ok", line, sizeof(line)), "mremap in the target failed");
	passes(&t, 2);
	detach_ok(t.pid);
	target_finish(&t);
}

Test(attach, agent_exits_when_target_is_killed)
{
	skip_unless_root();
	struct target t;
	target_start(&t);
	insert_ok(t.pid, "64");
	passes(&t, 1);
	pid_t agent = agent_of(t.pid);
	kill(t.pid, SIGKILL);
	waitpid(t.pid, NULL, 0);
	char proc[64], state[256];
	snprintf(proc, sizeof(proc), "/proc/%d", (int)agent);
	snprintf(state, sizeof(state), "%s/dime/attach-%d.state", xdg, (int)t.pid);
	for (int i = 0; i < WAIT_S * 10 && !gone(proc); i++)
		usleep(100000);
	cr_assert(gone(proc), "the agent outlived its target");
	cr_assert(gone(state), "the agent left its state file");
	fclose(t.out);
}

Test(attach, detach_recovers_after_agent_is_killed)
{
	skip_unless_root();
	struct target t;
	target_start(&t);
	char fds_before[2048], fds_after[2048];
	int maps = proc_count(t.pid, "maps"), fds = proc_fds(t.pid, fds_before, sizeof(fds_before));
	int tasks = proc_count(t.pid, "task");
	struct run r = insert_ok(t.pid, "64");
	passes(&t, 1);
	/* The target's remote pages stay registered: its next access to one
	 * waits (it does not read zeroes) until detach brings them back. */
	kill_agent(t.pid);
	r = detach_ok(t.pid);
	cr_assert(strstr(r.out, "recovering"), "%s", r.out);
	cr_assert(strstr(r.out, "all pages in place"), "%s", r.out);
	passes(&t, 2);
	cr_assert_eq(proc_count(t.pid, "task"), tasks);
	cr_assert_eq(proc_count(t.pid, "maps"), maps);
	cr_assert_eq(proc_fds(t.pid, fds_after, sizeof(fds_after)), fds,
		     "descriptors before: %s; after: %s", fds_before, fds_after);
	target_finish(&t);
}

Test(attach, bad_input_is_refused)
{
	struct run r = dime((const char *[]){ "insert", NULL });
	assert_refused(&r, "-p");
	r = dime((const char *[]){ "insert", "-p", "abc", NULL });
	assert_refused(&r, "abc");
	r = dime((const char *[]){ "insert", "-p", "0", NULL });
	assert_refused(&r, "'0'");
	r = dime((const char *[]){ "insert", "-p", "1,", NULL });
	assert_refused(&r, "1,");
	r = dime((const char *[]){ "insert", "-p", "99999999999", NULL });
	assert_refused(&r, "99999999999");
	char self[32];
	snprintf(self, sizeof(self), "%d,%d", (int)getpid(), (int)getpid());
	r = dime((const char *[]){ "insert", "-p", self, NULL });
	assert_refused(&r, "given twice");
	r = dime((const char *[]){ "insert", "-p", "1", "--local-pages", "0", NULL });
	assert_refused(&r, "--local-pages");
	r = dime((const char *[]){ "insert", "-p", "1", "--mode", "signal", NULL });
	assert_refused(&r, "signal");
	r = dime((const char *[]){ "insert", "-p", "1", "--instance", "0", NULL });
	assert_refused(&r, "no such instance");
	r = dime((const char *[]){ "insert", "-p", "1", "--instance", "x", NULL });
	assert_refused(&r, "'x'");
	r = dime((const char *[]){ "insert", "-p", "1", "--instance", "0", "--local-pages", "5",
				   NULL });
	assert_refused(&r, "--local-pages");
	r = dime((const char *[]){ "insert", "-p", "1", "-c", "/nonexistent/dime.conf", NULL });
	assert_refused(&r, "/nonexistent/dime.conf");
	/* A process that has exited. */
	pid_t c = fork();
	if (c == 0)
		_exit(0);
	waitpid(c, NULL, 0);
	char dead[16];
	snprintf(dead, sizeof(dead), "%d", (int)c);
	r = dime((const char *[]){ "insert", "-p", dead, NULL });
	assert_refused(&r, "no such process");
	/* Not under dime. */
	snprintf(self, sizeof(self), "%d", (int)getpid());
	r = dime((const char *[]){ "detach", "-p", self, NULL });
	assert_refused(&r, "not under dime");
	r = dime((const char *[]){ "detach", "-p", self, "--local-pages", "5", NULL });
	assert_refused(&r, "--local-pages");
}

Test(attach, insert_twice_is_refused)
{
	skip_unless_root();
	struct target t;
	target_start(&t);
	struct run r = insert_ok(t.pid, "64");
	r = insert(t.pid, "64");
	assert_refused(&r, "under dime already");
	r = detach_ok(t.pid);
	target_finish(&t);
}
