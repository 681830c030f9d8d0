/* Live members remove dead ones: a process of an instance killed with -9
 * leaves the table, and its pages the shared budget, without any dime
 * command being run (the survivor's evictor thread looks every 250 ms);
 * the next command then says what was removed. */
#define _GNU_SOURCE
#include "control.h"
#include "table-peek.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static void sleep_ms(long ms)
{
	nanosleep(&(struct timespec){ .tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000 }, NULL);
}

Test(reap, a_killed_process_leaves_the_budget_without_a_command)
{
	require_preload();
	ctl_write_ok("instance_id=0 latency_ns=0 local_npages=100");
	struct sweeper_run a, b;
	two_sweepers(&a, &b);
	ctl_wait_faults(0, 2000);
	int pids[2];
	cr_assert_eq(ctl_row_pids(0, pids, 2), 2);
	const struct ctl_table *t = table_peek_at(strchr(control_env()[0], '=') + 1);
	/* The whole of one run dies: its dime, then its program (the
	 * second member, whichever run that is). */
	kill(b.dime, SIGKILL);
	dime_wait(b.dime, 10);
	int victim = pids[1], survivor = pids[0];
	kill(victim, SIGKILL);
	/* No dime command from here until the survivor holds the budget. */
	for (int i = 0; i < 6000 && member_peek(t, victim); i++)
		sleep_ms(10);
	cr_assert_null(member_peek(t, victim), "the killed process stayed in the table");
	const struct ctl_member *m = member_peek(t, survivor);
	cr_assert(m);
	for (int i = 0; i < 6000 && atomic_load(&m->local) < 95; i++)
		sleep_ms(10);
	cr_assert_geq(atomic_load(&m->local), 95, "the survivor holds %llu of 100",
		      (unsigned long long)atomic_load(&m->local));
	/* The instance's count is the survivor's alone. */
	uint64_t inst = atomic_load(&t->inst[0].local), mine = atomic_load(&m->local);
	cr_assert_leq(inst, mine + 2, "instance %llu, survivor %llu", (unsigned long long)inst,
		      (unsigned long long)mine);
	/* The next command says so, once. */
	struct dime_result r = CTL("config");
	char want[128];
	snprintf(want, sizeof(want),
		 "dime: removed exited processes from the instance table: %d (instance 0)\n", victim);
	cr_assert_str_eq(r.err, want);
	dime_result_free(&r);
	r = CTL("config");
	cr_assert_str_empty(r.err);
	dime_result_free(&r);
	write_file(b.stop, ""); /* in case the survivor is b's program */
	int st = sweeper_stop(&a);
	cr_assert(st == 0 || st == 128 + SIGKILL, "status %d", st);
}
