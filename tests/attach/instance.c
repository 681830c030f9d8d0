/* dime insert into instances of the control plane: an inserted process is
 * a member (the pid column of `dime config`, its counters in `dime
 * stats`), shares one budget with the instance's `dime run` processes,
 * takes a latency changed by `dime config` at its next faults, leaves the
 * table at detach and at exit, and a killed agent is cleaned up: by the
 * instance's live processes without any command, else by the next
 * command, which says so. */
#define _GNU_SOURCE
#include "harness.h"
#include "proc-state.h"
#include "stats-json.h"
#include "table-peek.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#define HEADER "instance_id latency_ns bandwidth_bps local_npages page_fault_count pid\n"
/* README: at most 32 requested evictions outstanding per instance, plus
 * one page per fault being resolved (the agent resolves one at a time, the
 * sweeper's process one). */
#define SLACK (32 + 2)

static void sleep_ms(long ms)
{
	nanosleep(&(struct timespec){ .tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000 }, NULL);
}

/* A `dime run --instance N -- sweep_until PAGES` in the background. */
struct sweeper {
	pid_t dime;
	char stop[256], ready[256];
};
static struct sweeper *running;

static void sweeper_kill(void)
{
	/* No assertions: the test is over. The stop file ends the program. */
	if (running) {
		int fd = open(running->stop, O_CREAT | O_WRONLY, 0600);
		if (fd >= 0)
			close(fd);
	}
}

static void sweeper_start(struct sweeper *s, const char *instance, const char *pages)
{
	snprintf(s->stop, sizeof(s->stop), "%s/stop", xdg);
	snprintf(s->ready, sizeof(s->ready), "%s/ready", xdg);
	char *prog;
	cr_assert_neq(asprintf(&prog, "%s/tests/progs/sweep_until", test_build_dir()), -1);
	s->dime = dime_background((const char *const[]){ "run", "--instance", instance, "--", prog,
							  pages, s->stop, s->ready, NULL });
	running = s;
	atexit(sweeper_kill);
	for (int i = 0; i < WAIT_S * 10 && access(s->ready, F_OK); i++) {
		cr_assert_eq(waitpid(s->dime, NULL, WNOHANG), 0, "the sweeper ended early");
		sleep_ms(100);
	}
	if (access(s->ready, F_OK)) {
		static char state[16384];
		proc_state(s->dime, state, sizeof(state));
		cr_assert_fail("the sweeper did not start in %d s\n%s", WAIT_S, state);
	}
}

static int sweeper_stop(struct sweeper *s)
{
	int fd = open(s->stop, O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(fd, 0);
	close(fd);
	int st;
	cr_assert_eq(waitpid(s->dime, &st, 0), s->dime);
	running = NULL;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static struct run insert_into(pid_t pid, const char *instance)
{
	char spid[16];
	snprintf(spid, sizeof(spid), "%d", (int)pid);
	return DIME("insert", "-p", spid, "--instance", instance);
}

/* The PIDs of row `instance` of `dime config` (asserting a quiet run). */
static int row_pids(int instance, int *pids, int max)
{
	struct run r = DIME("config");
	cr_assert_eq(r.status, 0, "%s", r.out);
	cr_assert_eq(strncmp(r.out, HEADER, strlen(HEADER)), 0, "%s", r.out);
	return table_text_row_pids(r.out, instance, pids, max);
}

static bool has_pid(const int *pids, int n, pid_t pid)
{
	for (int i = 0; i < n; i++)
		if (pids[i] == pid)
			return true;
	return false;
}

/* From one `dime stats --json -i N`: the instance's counters, and the
 * local pages and remote faults of up to two processes (if listed). */
struct snap {
	uint64_t local, peak, remote_faults, delay_ns;
	uint64_t hist[32]; /* the instance's remote faults by log2 of their time in ns */
	bool listed[2];
	uint64_t proc_local[2], proc_faults[2];
};

static uint64_t after(const char *s, const char *key)
{
	const char *p = strstr(s, key);
	cr_assert(p, "no %s in %s", key, s);
	return strtoull(p + strlen(key), NULL, 10);
}

static struct snap stats2(int instance, pid_t pid, pid_t other)
{
	char id[16], want[48];
	snprintf(id, sizeof(id), "%d", instance);
	struct run r = DIME("stats", "--json", "-i", id);
	cr_assert_eq(r.status, 0, "%s", r.out);
	struct snap s = { 0 };
	s.local = after(r.out, "\"local_pages\": ");
	s.peak = after(r.out, "\"local_pages_peak\": ");
	s.remote_faults = after(r.out, "\"remote_faults\": ");
	s.delay_ns = after(r.out, "\"injected_delay_ns\": ");
	stats_json_hist(r.out, s.hist);
	for (int i = 0; i < 2; i++) {
		snprintf(want, sizeof(want), "{\"pid\": %d,", (int)(i ? other : pid));
		const char *p = strstr(r.out, want);
		if (p) {
			s.listed[i] = true;
			s.proc_local[i] = after(p, "\"local_pages\": ");
			s.proc_faults[i] = after(p, "\"remote_faults\": ");
		}
	}
	return s;
}

static struct snap stats(int instance, pid_t pid)
{
	return stats2(instance, pid, 0);
}

static struct snap wait_faults(int instance, pid_t pid, uint64_t n)
{
	struct snap s;
	for (int i = 0; i < WAIT_S * 20; i++) {
		s = stats(instance, pid);
		if (s.remote_faults >= n)
			return s;
		sleep_ms(50);
	}
	cr_assert_fail("instance %d stays at %llu remote faults, want %llu", instance,
		       (unsigned long long)s.remote_faults, (unsigned long long)n);
	return s;
}

/* Instance 0 with a budget of 200, a `dime run` sweeping in it and a
 * target inserted into it: the run's process id; r: dime insert's. */
static pid_t run_and_inserted_target(struct sweeper *s, struct target *t, struct run *r)
{
	*r = DIME("config", "instance_id=0 latency_ns=0 local_npages=200");
	cr_assert_eq(r->status, 0, "%s", r->out);
	sweeper_start(s, "0", "300");
	int pids[4];
	cr_assert_eq(row_pids(0, pids, 4), 1);
	target_start(t);
	*r = insert_into(t->pid, "0");
	cr_assert_eq(r->status, 0, "%s", r->out);
	return pids[0];
}

TestSuite(attach_instance, .init = control_dir_init, .timeout = 600);

Test(attach_instance, insert_shares_a_runs_budget)
{
	skip_unless_root();
	struct run r;
	struct sweeper s;
	struct target t;
	pid_t run_pid = run_and_inserted_target(&s, &t, &r);
	cr_assert(strstr(r.out, "instance 0, budget 200 local pages"), "%s", r.out);
	/* Both in the pid column; the run's process cannot be inserted. */
	int pids[4];
	cr_assert_eq(row_pids(0, pids, 4), 2);
	cr_assert(has_pid(pids, 2, t.pid) && has_pid(pids, 2, run_pid));
	r = insert_into(run_pid, "0");
	assert_refused(&r, "under dime already");
	r = detach(run_pid);
	assert_refused(&r, "dime run");
	passes(&t, 2);
	/* Together within the budget and its slack, each with pages and
	 * faults of its own: one budget, shared. */
	uint64_t target_max = 0, run_max = 0;
	for (int i = 0; i < 20; i++) {
		struct snap a = stats2(0, t.pid, run_pid);
		cr_assert(a.listed[0] && a.listed[1]);
		cr_assert_leq(a.local, 200 + SLACK, "instance holds %llu", (unsigned long long)a.local);
		cr_assert_leq(a.peak, 200 + SLACK, "instance peak %llu", (unsigned long long)a.peak);
		cr_assert_leq(a.proc_local[0] + a.proc_local[1], 200 + SLACK, "%llu + %llu",
			      (unsigned long long)a.proc_local[0], (unsigned long long)a.proc_local[1]);
		target_max = a.proc_local[0] > target_max ? a.proc_local[0] : target_max;
		run_max = a.proc_local[1] > run_max ? a.proc_local[1] : run_max;
		sleep_ms(50);
	}
	struct snap a = stats2(0, t.pid, run_pid);
	cr_assert_gt(a.proc_faults[0], 1000, "the inserted process: %llu remote faults",
		     (unsigned long long)a.proc_faults[0]);
	cr_assert_gt(a.proc_faults[1], 1000, "the run's process: %llu remote faults",
		     (unsigned long long)a.proc_faults[1]);
	cr_assert_gt(target_max, 0);
	cr_assert_gt(run_max, 0);
	/* Detached: out of the pid column and the count, the run stays. */
	r = detach_ok(t.pid);
	cr_assert(strstr(r.out, "all pages in place"), "%s", r.out);
	cr_assert_eq(row_pids(0, pids, 4), 1);
	cr_assert_eq(pids[0], run_pid);
	passes(&t, 1);
	target_finish(&t);
	cr_assert_eq(sweeper_stop(&s), 0);
}

Test(attach_instance, live_latency_change_reaches_the_inserted_process)
{
	skip_unless_root();
	/* Transfers cost nothing at this bandwidth: a fetch is 2 x latency. */
	struct run r = DIME("config",
			    "instance_id=0 latency_ns=0 bandwidth_bps=1000000000000000 local_npages=64");
	cr_assert_eq(r.status, 0, "%s", r.out);
	struct target t;
	target_start(&t);
	r = insert_into(t.pid, "0");
	cr_assert_eq(r.status, 0, "%s", r.out);
	struct snap a = wait_faults(0, t.pid, 200);
	struct snap b = wait_faults(0, t.pid, a.remote_faults + 500);
	uint64_t before = (b.delay_ns - a.delay_ns) / (b.remote_faults - a.remote_faults);
	r = DIME("config", "instance_id=0 latency_ns=200000");
	cr_assert_eq(r.status, 0, "%s", r.out);
	/* A fault already in flight may still have the old latency. */
	struct snap c = wait_faults(0, t.pid, stats(0, t.pid).remote_faults + 5);
	struct snap d = wait_faults(0, t.pid, c.remote_faults + 100);
	uint64_t now = (d.delay_ns - c.delay_ns) / (d.remote_faults - c.remote_faults);
	/* A 400 us fetch, up from nothing. The agent's own handling (helper
	 * round trips for the page-in and the eviction, 30-250 us on a busy
	 * 2-vCPU machine) is inside it, and a fault pays back at most half
	 * its wait of earlier lateness (fault.c): so at least 100 us of it is
	 * injected delay, and most faults take over 2^17 ns (131 us) from
	 * trap to resume, when before most took less. */
	uint64_t slow_before = 0, slow_after = 0;
	for (int i = 17; i < 32; i++) {
		slow_before += b.hist[i] - a.hist[i];
		slow_after += d.hist[i] - c.hist[i];
	}
	uint64_t n_before = b.remote_faults - a.remote_faults, n_after = d.remote_faults - c.remote_faults;
	cr_assert_geq(now, 100000, "after: %llu ns injected per fault (before %llu)",
		      (unsigned long long)now, (unsigned long long)before);
	cr_assert_lt(before, 50000, "before: %llu ns injected per fault", (unsigned long long)before);
	cr_assert_geq(slow_after * 4, n_after * 3, "after: %llu of %llu faults over 131 us",
		      (unsigned long long)slow_after, (unsigned long long)n_after);
	cr_assert_leq(slow_before * 2, n_before, "before: %llu of %llu faults over 131 us",
		      (unsigned long long)slow_before, (unsigned long long)n_before);
	r = detach_ok(t.pid);
	target_finish(&t);
}

Test(attach_instance, own_instance_leaves_with_detach_and_exit)
{
	skip_unless_root();
	struct target t;
	target_start(&t);
	/* Without --instance: a row of its own, from the options. */
	struct run r = insert_ok(t.pid, "64");
	r = DIME("config");
	char want[256];
	snprintf(want, sizeof(want),
		 HEADER "          0          0    1000000000           64 %16llu %d,\n",
		 (unsigned long long)0, (int)t.pid);
	/* page_fault_count moves; compare the row up to it and the pids. */
	cr_assert_eq(strncmp(r.out, want, strlen(HEADER) + 50), 0, "%s", r.out);
	int pids[2];
	cr_assert_eq(row_pids(0, pids, 2), 1);
	cr_assert_eq(pids[0], t.pid);
	r = detach_ok(t.pid);
	r = DIME("config");
	cr_assert_str_eq(r.out, HEADER);
	/* Again, and the process exits: its agent takes it out of the table. */
	r = insert_ok(t.pid, "64");
	cr_assert_eq(row_pids(0, pids, 2), 1);
	target_finish(&t);
	for (int i = 0; i < WAIT_S * 10; i++) {
		r = DIME("config");
		if (!strcmp(r.out, HEADER))
			break;
		sleep_ms(100);
	}
	cr_assert_str_eq(r.out, HEADER, "the exited process stayed (or said so)");
}

Test(attach_instance, processes_of_one_insert_share_one_instance)
{
	skip_unless_root();
	struct target a, b;
	target_start(&a);
	target_start(&b);
	char both[40];
	snprintf(both, sizeof(both), "%d,%d", (int)a.pid, (int)b.pid);
	struct run r = DIME("insert", "-p", both, "--local-pages", "100", "--latency-ns", "0");
	cr_assert_eq(r.status, 0, "%s", r.out);
	/* One row, both PIDs, one budget: DiME's insert_module.sh -p A,B. */
	int pids[4];
	cr_assert_eq(row_pids(0, pids, 4), 2);
	cr_assert(has_pid(pids, 2, a.pid) && has_pid(pids, 2, b.pid));
	passes(&a, 1);
	passes(&b, 1);
	for (int i = 0; i < 10; i++) {
		struct snap x = stats2(0, a.pid, b.pid);
		cr_assert(x.listed[0] && x.listed[1]);
		cr_assert_leq(x.local, 100 + SLACK, "instance holds %llu", (unsigned long long)x.local);
		cr_assert_leq(x.proc_local[0] + x.proc_local[1], 100 + SLACK, "%llu + %llu",
			      (unsigned long long)x.proc_local[0], (unsigned long long)x.proc_local[1]);
		sleep_ms(50);
	}
	cr_assert_leq(stats(0, a.pid).peak, 100 + SLACK);
	r = detach_ok(a.pid);
	cr_assert_eq(row_pids(0, pids, 4), 1);
	cr_assert_eq(pids[0], b.pid);
	r = detach_ok(b.pid);
	r = DIME("config");
	cr_assert_str_eq(r.out, HEADER, "the instance made for them stayed");
	target_finish(&a);
	target_finish(&b);
}

Test(attach_instance, killed_agent_is_cleaned_up_by_the_next_command)
{
	skip_unless_root();
	struct target t;
	target_start(&t);
	struct run r = insert_ok(t.pid, "64");
	passes(&t, 1);
	kill_agent(t.pid);
	/* No live member is left to notice: the command does, and says so
	 * (stderr comes first: the sweep runs before the table prints). */
	r = DIME("config");
	cr_assert_eq(r.status, 0, "%s", r.out);
	char want[256];
	snprintf(want, sizeof(want),
		 "dime: removed processes whose dime-agent died from the instance table: %d "
		 "(instance 0); 'dime detach -p PID' gives them their pages back\n" HEADER,
		 (int)t.pid);
	cr_assert_str_eq(r.out, want);
	r = DIME("config");
	cr_assert_str_eq(r.out, HEADER, "said twice");
	r = detach_ok(t.pid);
	cr_assert(strstr(r.out, "all pages in place"), "%s", r.out);
	passes(&t, 1);
	target_finish(&t);
}

Test(attach_instance, killed_agent_is_reaped_by_the_instances_live_process)
{
	skip_unless_root();
	struct run r;
	struct sweeper s;
	struct target t;
	pid_t run_pid = run_and_inserted_target(&s, &t, &r);
	passes(&t, 1);
	pid_t agent = agent_of(t.pid);
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/dime", xdg);
	const struct ctl_table *tab = table_peek_at(dir);
	kill(agent, SIGKILL);
	/* No dime command from here on: the run's process removes the
	 * member whose agent died, and then holds the whole budget. */
	for (int i = 0; i < WAIT_S * 10 && member_peek(tab, t.pid); i++)
		sleep_ms(100);
	cr_assert_null(member_peek(tab, t.pid), "the dead agent's process stayed a member");
	const struct ctl_member *m = member_peek(tab, run_pid);
	cr_assert(m);
	for (int i = 0; i < WAIT_S * 10 && atomic_load(&m->local) < 190; i++)
		sleep_ms(100);
	cr_assert_geq(atomic_load(&m->local), 190, "the survivor holds %llu of 200",
		      (unsigned long long)atomic_load(&m->local));
	cr_assert_leq(atomic_load(&tab->inst[0].local), 200 + SLACK);
	/* The next command says what happened. */
	r = DIME("config");
	char want[160];
	snprintf(want, sizeof(want),
		 "dime: removed processes whose dime-agent died from the instance table: %d "
		 "(instance 0)",
		 (int)t.pid);
	cr_assert(strstr(r.out, want), "%s", r.out);
	r = detach_ok(t.pid);
	cr_assert(strstr(r.out, "all pages in place"), "%s", r.out);
	target_finish(&t);
	cr_assert_eq(sweeper_stop(&s), 0);
}
