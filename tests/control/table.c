/* The instance table as the CLI and the preload use it: a holder of the
 * lock killed with -9 wedges no one, dead members leave and are reported,
 * a reused PID is not taken for the member. */
#define _GNU_SOURCE
#include "helpers.h"
#include "../src/control/control.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static struct ctl_table *fresh_table(void)
{
	char dir[] = "/tmp/dime-ctl-test-XXXXXX";
	cr_assert(mkdtemp(dir));
	char msg[CTL_MSG];
	struct ctl_table *t = ctl_table_open_at(dir, msg);
	cr_assert(t, "%s", msg);
	/* The mapping stays; the file is not needed any more. */
	char path[64];
	snprintf(path, sizeof(path), "%s/table", dir);
	unlink(path);
	rmdir(dir);
	return t;
}

/* What a command's sweep of t says (asserting it removed `removed`
 * members); free() it. */
static char *sweep_report(struct ctl_table *t, int removed)
{
	char *text = NULL;
	size_t len = 0;
	FILE *report = open_memstream(&text, &len);
	ctl_lock(t);
	cr_assert_eq(ctl_sweep(t, 0, report), removed);
	ctl_unlock(t);
	fclose(report);
	return text;
}

/* Adds an instance (latency 1000 ns, 1 Gb/s, 10 pages) to t: its id. */
static int test_instance(struct ctl_table *t)
{
	ctl_lock(t);
	int id = ctl_instance_add(t, 1000, 1000000000, 10, 0);
	ctl_unlock(t);
	return id;
}

/* A child that joins instance `inst`, says so on a pipe, then waits to be
 * killed; holds the table lock meanwhile if `hold`. */
static pid_t member_child(struct ctl_table *t, int inst, bool hold)
{
	int p[2];
	cr_assert(!pipe(p));
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		ctl_lock(t);
		struct ctl_member *m = ctl_member_add(t, inst, 0);
		atomic_store(&m->local, 5);
		atomic_fetch_add(&t->inst[inst].local, 5);
		if (!hold)
			ctl_unlock(t);
		char c = 1;
		if (write(p[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char c;
	cr_assert_eq(read(p[0], &c, 1), 1);
	close(p[0]);
	close(p[1]);
	return pid;
}

static void kill9(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static int members_of(struct ctl_table *t, int inst)
{
	int n = 0;
	for (int i = 0; i < CTL_MAX_MEMBERS; i++)
		n += atomic_load(&t->mem[i].pid) && atomic_load(&t->mem[i].instance) == inst;
	return n;
}

Test(table, lock_holder_killed_with_9)
{
	struct ctl_table *t = fresh_table();
	int id = test_instance(t);
	pid_t pid = member_child(t, id, true);
	kill9(pid);
	/* Would block forever with a plain process-shared mutex. */
	ctl_lock(t);
	char *text = NULL;
	size_t len = 0;
	FILE *report = open_memstream(&text, &len);
	cr_assert_eq(ctl_sweep(t, 0, report), 1);
	fclose(report);
	ctl_unlock(t);
	char want[128];
	snprintf(want, sizeof(want),
		 "dime: removed exited processes from the instance table: %d (instance 0)\n",
		 (int)pid);
	cr_assert_str_eq(text, want);
	cr_assert_eq(members_of(t, id), 0);
	/* Its pages left the instance's count with it. */
	cr_assert_eq(atomic_load(&t->inst[id].local), 0);
	/* And the lock works as before. */
	ctl_lock(t);
	ctl_unlock(t);
}

Test(table, killed_member_leaves_and_live_one_stays)
{
	struct ctl_table *t = fresh_table();
	int id = test_instance(t);
	pid_t a = member_child(t, id, false), b = member_child(t, id, false);
	cr_assert_eq(members_of(t, id), 2);
	cr_assert_eq(atomic_load(&t->inst[id].local), 10);
	kill9(a);
	ctl_lock(t);
	cr_assert_eq(ctl_sweep(t, 0, NULL), 1);
	ctl_unlock(t);
	cr_assert_eq(members_of(t, id), 1);
	cr_assert_eq(atomic_load(&t->inst[id].local), 5);
	kill9(b);
}

Test(table, reused_pid_is_not_the_member)
{
	struct ctl_table *t = fresh_table();
	ctl_lock(t);
	struct ctl_member *m = ctl_member_add(t, 0, 0);
	ctl_unlock(t);
	cr_assert(ctl_member_alive(m));
	/* Same pid, another start time: another process. */
	m->start_time++;
	cr_assert_not(ctl_member_alive(m));
	cr_assert_eq(ctl_proc_start_time(0), 0);
}

Test(table, auto_instances_leave_from_the_end_only)
{
	struct ctl_table *t = fresh_table();
	ctl_lock(t);
	ctl_instance_add(t, 1, 1, 1, CTL_INST_AUTO);
	ctl_instance_add(t, 1, 1, 1, 0);
	ctl_instance_add(t, 1, 1, 1, CTL_INST_AUTO);
	ctl_instances_trim(t);
	/* The last goes; the first stays while a persistent one follows. */
	cr_assert_eq(atomic_load(&t->ninstances), 2);
	ctl_unlock(t);
}

Test(table, parameters_read_consistently)
{
	struct ctl_table *t = fresh_table();
	ctl_lock(t);
	int id = ctl_instance_add(t, 1, 2, 3, 0);
	uint64_t a, b, c;
	uint32_t s0 = ctl_params_read(&t->inst[id].params, &a, &b, &c);
	cr_assert(a == 1 && b == 2 && c == 3);
	ctl_params_write(&t->inst[id].params, 4, 5, 6);
	uint32_t s1 = ctl_params_read(&t->inst[id].params, &a, &b, &c);
	ctl_unlock(t);
	cr_assert(a == 4 && b == 5 && c == 6);
	cr_assert_neq(s0, s1, "a change must be visible to a process that cached the old one");
}

Test(table, another_layout_is_replaced)
{
	char dir[] = "/tmp/dime-ctl-test-XXXXXX";
	cr_assert(mkdtemp(dir));
	char path[64];
	snprintf(path, sizeof(path), "%s/table", dir);
	/* What an older dime left: another size, then the right size with
	 * another version. */
	FILE *f = fopen(path, "w");
	cr_assert(f);
	fputs("an older table", f);
	fclose(f);
	char msg[CTL_MSG];
	struct ctl_table *t = ctl_table_open_at(dir, msg);
	cr_assert(t, "%s", msg);
	cr_assert_eq(t->version, CTL_VERSION);
	t->version = CTL_VERSION + 1;
	struct ctl_table *u = ctl_table_open_at(dir, msg);
	cr_assert(u, "%s", msg);
	cr_assert_eq(u->version, CTL_VERSION);
	cr_assert_eq(atomic_load(&u->ninstances), 0);
	/* The lock of the new table works. */
	ctl_lock(u);
	ctl_unlock(u);
	unlink(path);
	rmdir(dir);
}

Test(table, a_new_instance_runs_the_default_policy)
{
	struct ctl_table *t = fresh_table();
	ctl_lock(t);
	int id = ctl_instance_add(t, 1, 2, 3, 0);
	ctl_unlock(t);
	cr_assert_str_eq(t->inst[id].policy, "fifo");
	char msg[CTL_MSG];
	cr_assert_eq(ctl_config_write(t, "instance_id=1 policy=random", msg), 0, "%s", msg);
	cr_assert_str_eq(t->inst[1].policy, "random");
	/* A row made again after a trim starts over. */
	ctl_lock(t);
	atomic_store(&t->ninstances, 1);
	id = ctl_instance_add(t, 1, 2, 3, 0);
	ctl_unlock(t);
	cr_assert_str_eq(t->inst[id].policy, "fifo");
}

/* The policy changes only while no process is in the instance (its
 * members would keep running the old one), and a dead member does not
 * count. */
Test(table, policy_changes_only_without_members)
{
	struct ctl_table *t = fresh_table();
	char msg[CTL_MSG];
	cr_assert_eq(ctl_config_write(t, "instance_id=0 policy=lru", msg), 0, "%s", msg);
	pid_t pid = member_child(t, 0, false);
	ctl_lock(t);
	cr_assert(ctl_instance_busy(t, 0));
	ctl_unlock(t);
	cr_assert_eq(ctl_config_write(t, "instance_id=0 policy=clock", msg), -1);
	cr_assert(strstr(msg, "instance 0 has running processes") && strstr(msg, "'policy=clock'"),
		  "%s", msg);
	cr_assert_str_eq(t->inst[0].policy, "lru");
	cr_assert_eq(ctl_config_write(t, "instance_id=0 policy=lru", msg), 0, "%s", msg);
	kill9(pid);
	/* The write's own sweep removes the dead member first (and says so
	 * on stderr). */
	cr_assert_eq(ctl_config_write(t, "instance_id=0 policy=clock", msg), 0, "%s", msg);
	cr_assert_str_eq(t->inst[0].policy, "clock");
}

/* An AUTO instance is busy while the `dime run` that made it lives, before
 * its program has joined. */
Test(table, an_auto_instance_is_busy_while_its_run_lives)
{
	struct ctl_table *t = fresh_table();
	ctl_lock(t);
	int id = ctl_instance_add(t, 1, 2, 3, CTL_INST_AUTO);
	t->inst[id].owner_pid = getpid();
	t->inst[id].owner_start = ctl_proc_start_time(getpid());
	cr_assert(ctl_instance_busy(t, id));
	t->inst[id].owner_start++;
	cr_assert_not(ctl_instance_busy(t, id));
	ctl_unlock(t);
}

Test(table, live_members_reap_and_the_next_sweep_says_so)
{
	struct ctl_table *t = fresh_table();
	int id = test_instance(t);
	pid_t a = member_child(t, id, false), b = member_child(t, id, false);
	kill9(a);
	/* A live member's sweep: the dead one and its pages leave. */
	cr_assert_eq(ctl_reap(t), 1);
	cr_assert_eq(members_of(t, id), 1);
	cr_assert_eq(atomic_load(&t->inst[id].local), 5);
	/* Not again within its period, whoever asks. */
	kill9(b);
	cr_assert_eq(ctl_reap(t), 0);
	/* The next command reports both: the reaped one and its own find. */
	char *text = sweep_report(t, 1);
	char want[160];
	snprintf(want, sizeof(want),
		 "dime: removed exited processes from the instance table: %d (instance 0), %d "
		 "(instance 0)\n",
		 (int)a, (int)b);
	cr_assert_str_eq(text, want);
	free(text);
	/* Said once. */
	text = sweep_report(t, 0);
	cr_assert_str_empty(text);
	free(text);
}

Test(table, an_inserted_member_dies_with_its_agent)
{
	struct ctl_table *t = fresh_table();
	int id = test_instance(t);
	/* A child plays the agent of this process. */
	int p[2];
	cr_assert(!pipe(p));
	pid_t agent = fork();
	cr_assert_geq(agent, 0);
	if (agent == 0) {
		struct ctl_member *m;
		ctl_lock(t);
		int err = ctl_member_add_inserted(t, id, getppid(), &m);
		ctl_unlock(t);
		char c = err ? 0 : 1;
		if (write(p[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char c = 0;
	cr_assert_eq(read(p[0], &c, 1), 1);
	cr_assert_eq(c, 1);
	ctl_lock(t);
	struct ctl_member *m = ctl_member_of(t, getpid());
	cr_assert(m);
	cr_assert_eq(m->agent, agent);
	/* A process is in the table once. */
	struct ctl_member *again;
	cr_assert_eq(ctl_member_add_inserted(t, id, getpid(), &again), -EEXIST);
	ctl_unlock(t);
	kill9(agent);
	cr_assert_not(ctl_member_alive(m));
	char *text = sweep_report(t, 1);
	char want[200];
	snprintf(want, sizeof(want),
		 "dime: removed processes whose dime-agent died from the instance table: %d "
		 "(instance 0); 'dime detach -p PID' gives them their pages back\n",
		 (int)getpid());
	cr_assert_str_eq(text, want);
	free(text);
	cr_assert_eq(members_of(t, id), 0);
}
