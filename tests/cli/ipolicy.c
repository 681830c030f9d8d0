/* An instance's replacement policy, chosen in the control plane: the
 * policy= key of dime config (checked when written, refused while the
 * instance has processes), dime run --instance running it, dime stats
 * showing it, and what it changes: a hot set that an lru instance keeps
 * local and a fifo one does not, for one process and for two sharing the
 * budget. And --evict-batch watermarks applied to an instance's budget. */
#define _GNU_SOURCE
#include "control.h"

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define HEADER "instance_id latency_ns bandwidth_bps local_npages page_fault_count pid\n"
/* The shared budget's stated slack (README): 32 requested evictions, and
 * a page in flight per fault being resolved. */
#define SLACK (32 + 2)

static char *plugin(const char *name)
{
	char *p;
	cr_assert_neq(asprintf(&p, "%s/tests/plugins/%s", test_build_dir(), name), -1);
	return p;
}

/* Instance id's policy, from dime stats --json. */
static char *policy_of(int id)
{
	char n[16];
	snprintf(n, sizeof(n), "%d", id);
	struct dime_result r = CTL("stats", "--json", "-i", n);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert(json_valid(r.out), "%s", r.out);
	char *s = calloc(1, PATH_MAX);
	cr_assert(json_str(r.out, "policy", s, PATH_MAX), "no policy in %s", r.out);
	dime_result_free(&r);
	return s;
}

static void expect_policy(int id, const char *want)
{
	char *p = policy_of(id);
	cr_assert_str_eq(p, want, "instance %d", id);
	free(p);
}

/* The write is refused naming `token`; neither the table nor instance 0's
 * policy changed. */
static void write_refused(const char *text, const char *token)
{
	char *before = ctl_table_text(), *pol = policy_of(0);
	struct dime_result r = CTL("config", text);
	assert_refused(&r, token);
	dime_result_free(&r);
	char *after = ctl_table_text();
	cr_assert_str_eq(after, before, "'%s' changed the table", text);
	expect_policy(0, pol);
	free(before);
	free(after);
	free(pol);
}

Test(ipolicy, the_key_shows_in_stats_not_in_dimes_table)
{
	ctl_write_ok("instance_id=0 latency_ns=1000 local_npages=2000");
	expect_policy(0, "fifo");
	ctl_write_ok("instance_id=0 policy=lru");
	ctl_write_ok("instance_id=1 policy=clock local_npages=7");
	/* DiME's six columns, byte for byte. */
	char *t = ctl_table_text();
	cr_assert_str_eq(t, HEADER
			 "          0       1000    1000000000         2000                0 \n"
			 "          1       2000    1000000000            7                0 \n");
	free(t);
	expect_policy(0, "lru");
	expect_policy(1, "clock");
	struct dime_result r = CTL("stats", "-i", "1");
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "\n  policy                          clock\n"), "%s", r.out);
	dime_result_free(&r);
	/* A plug-in, given by a relative path, is kept as its absolute path. */
	char *lfu = plugin("lfu.so"), abs[PATH_MAX], *rel, *w;
	cr_assert(realpath(lfu, abs), "%s", lfu);
	char cwd[PATH_MAX];
	cr_assert(getcwd(cwd, sizeof(cwd)));
	rel = strstr(abs, cwd) == abs && abs[strlen(cwd)] == '/' ? abs + strlen(cwd) + 1 : NULL;
	if (rel && strchr(rel, '/')) {
		cr_assert_neq(asprintf(&w, "instance_id=0 policy=%s", rel), -1);
		ctl_write_ok(w);
		expect_policy(0, abs);
	}
	cr_assert_neq(asprintf(&w, "instance_id=1 policy=%s", lfu), -1);
	ctl_write_ok(w);
	expect_policy(1, abs);
}

Test(ipolicy, every_policy_error_names_its_token)
{
	ctl_write_ok("instance_id=0 policy=clock");
	write_refused("instance_id=0 policy=nope", "policy=nope");
	write_refused("instance_id=0 policy=", "policy=");
	write_refused("instance_id=0 policy=lru policy=fifo", "policy=fifo");
	write_refused("instance_id=0 policy=./no-such-policy.so", "policy=./no-such-policy.so");
	char *w;
	const char *broken[] = { "no_symbol.so", "abi_mismatch.so", "lacks_choose.so" };
	const char *why[] = { "does not export the symbol", "ABI version 2", "has no choose" };
	for (int i = 0; i < 3; i++) {
		char *p = plugin(broken[i]);
		cr_assert_neq(asprintf(&w, "instance_id=0 policy=%s", p), -1);
		write_refused(w, p);
		write_refused(w, why[i]);
	}
	char *text = temp_path("not-a-library.so");
	write_file(text, "not an ELF file\n");
	cr_assert_neq(asprintf(&w, "instance_id=0 policy=%s", text), -1);
	write_refused(w, "cannot load policy plug-in");
	/* A working plug-in whose absolute path does not fit the table's
	 * 255 bytes. */
	char *deep = temp_path("d");
	cr_assert(!mkdir(deep, 0700));
	while (strlen(deep) < 260) {
		char *next;
		cr_assert_neq(asprintf(&next, "%s/%s", deep, "a-long-directory-name-for-the-limit"), -1);
		cr_assert(!mkdir(next, 0700));
		deep = next;
	}
	char *copy, *cmd;
	cr_assert_neq(asprintf(&copy, "%s/lfu.so", deep), -1);
	cr_assert_neq(asprintf(&cmd, "cp '%s' '%s'", plugin("lfu.so"), copy), -1);
	cr_assert_eq(system(cmd), 0);
	cr_assert_neq(asprintf(&w, "instance_id=0 policy=%s", copy), -1);
	write_refused(w, "longer than 255 bytes");
	/* All or nothing: a good policy with a bad key is not applied. */
	write_refused("instance_id=0 policy=lru local_npages=0", "local_npages=0");
	write_refused("instance_id=1 policy=lru colour=x", "colour=x");
}

Test(ipolicy, a_change_is_refused_while_the_instance_has_processes)
{
	require_preload();
	ctl_write_ok("instance_id=0 latency_ns=0 local_npages=16 policy=fifo");
	struct sweeper_run s = SWEEPER(64, "--instance", "0", );
	ctl_wait_faults(0, 50);
	struct dime_result r = CTL("config", "instance_id=0 policy=lru");
	assert_refused(&r, "instance 0 has running processes");
	cr_assert(strstr(r.err, "'policy=lru'"), "%s", r.err);
	dime_result_free(&r);
	expect_policy(0, "fifo");
	/* The same policy again changes nothing and is fine; so are the other
	 * keys. */
	ctl_write_ok("instance_id=0 policy=fifo latency_ns=0");
	cr_assert_eq(sweeper_stop(&s), 0);
	ctl_write_ok("instance_id=0 policy=lru");
	expect_policy(0, "lru");
}

/* An instance a run made for itself records the run's policy, and cannot
 * be given another while the run lives. */
Test(ipolicy, a_run_of_its_own_records_its_policy)
{
	require_preload();
	struct sweeper_run s = SWEEPER(64, "--local-pages", "16", "--latency-ns", "0", "--policy",
				       "random", );
	expect_policy(0, "random");
	struct dime_result r = CTL("config", "instance_id=0 policy=fifo");
	assert_refused(&r, "instance 0 has running processes");
	dime_result_free(&r);
	cr_assert_eq(sweeper_stop(&s), 0);
}

/* dime run in an instance with `args`: the program touches MARKER. */
static struct dime_result run_in_instance(const char *const args[], char **marker)
{
	*marker = temp_path("started");
	const char *argv[16];
	int n = 0;
	argv[n++] = "dime";
	argv[n++] = "run";
	argv[n++] = "--instance";
	argv[n++] = "0";
	while (*args)
		argv[n++] = *args++;
	argv[n++] = "touch";
	argv[n++] = *marker;
	argv[n] = NULL;
	return ctl_run(argv);
}

#define RUN_IN_INSTANCE(marker, ...) \
	run_in_instance((const char *const[]){ __VA_ARGS__ NULL }, marker)

Test(ipolicy, run_in_an_instance_runs_its_policy)
{
	require_preload();
	ctl_write_ok("instance_id=0 latency_ns=0 local_npages=64 policy=lru");
	char *json = temp_path("stats.json"), *marker;
	struct dime_result r = RUN_IN_INSTANCE(&marker, "--stats-json", json, );
	cr_assert_eq(r.status, 0, "%s", r.err);
	dime_result_free(&r);
	char *j = read_file_text(json), s[64];
	cr_assert(json_str(j, "policy", s, sizeof(s)) && !strcmp(s, "lru"), "%s", j);
	free(j);
	/* The same policy given again is fine. */
	r = RUN_IN_INSTANCE(&marker, "--policy", "lru", );
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(file_exists(marker));
	dime_result_free(&r);
	/* Another one is refused, before the program starts: from the
	 * command line or from the config file. */
	r = RUN_IN_INSTANCE(&marker, "--policy", "fifo", );
	assert_refused(&r, "instance 0's policy lru");
	cr_assert(strstr(r.err, "'fifo'"), "%s", r.err);
	cr_assert(!file_exists(marker), "the program ran although dime refused");
	dime_result_free(&r);
	char *conf = temp_path("dime.conf");
	write_file(conf, "policy clock\n");
	r = RUN_IN_INSTANCE(&marker, "-c", conf, );
	assert_refused(&r, "config file key policy clock differs");
	cr_assert(!file_exists(marker));
	dime_result_free(&r);
	/* Watermarks are checked against the instance's budget. */
	r = RUN_IN_INSTANCE(&marker, "--evict-batch", "16,64", );
	assert_refused(&r, "instance 0's local_npages 64");
	cr_assert(!file_exists(marker));
	dime_result_free(&r);
}

/* A process that joins an instance with another policy than the
 * instance's (dime config changed it while the process started) stops
 * before its program runs, with one line. */
Test(ipolicy, a_process_never_joins_with_another_policy)
{
	require_preload();
	ctl_write_ok("instance_id=0 latency_ns=0 local_npages=64 policy=lru");
	char *marker = temp_path("started"), *preload;
	cr_assert_neq(asprintf(&preload, "LD_PRELOAD=%s", build_file("libdime-preload.so")), -1);
	const char *env[] = { preload, "DIME_POLICY=fifo", "DIME_INSTANCE=0",
			      control_env()[0], NULL };
	struct dime_result r = run_exe("/usr/bin/touch",
				       (const char *const[]){ "touch", marker, NULL }, env);
	cr_assert_eq(r.status, 2, "status %d: %s", r.status, r.err);
	cr_assert_eq(count_lines(r.err), 1, "%s", r.err);
	cr_assert(strstr(r.err, "instance 0 changed its policy to lru"), "%s", r.err);
	cr_assert(!file_exists(marker));
	dime_result_free(&r);
	char *t = ctl_table_text();
	cr_assert_str_eq(t, HEADER "          0          0    1000000000           64                0 \n");
	free(t);
}

Test(ipolicy, pid_moves_a_process_only_to_an_instance_of_its_policy)
{
	require_preload();
	ctl_write_ok("instance_id=0 latency_ns=0 local_npages=16 policy=clock");
	ctl_write_ok("instance_id=1 latency_ns=0 local_npages=16 policy=lru");
	ctl_write_ok("instance_id=2 latency_ns=0 local_npages=16 policy=clock");
	struct sweeper_run s = SWEEPER(64, "--instance", "0", );
	int pid;
	cr_assert_eq(ctl_row_pids(0, &pid, 1), 1);
	char w[64], why[64];
	snprintf(w, sizeof(w), "instance_id=1 pid=%d", pid);
	snprintf(why, sizeof(why), "pid %d runs policy clock", pid);
	struct dime_result r = CTL("config", w);
	assert_refused(&r, why);
	dime_result_free(&r);
	cr_assert_eq(ctl_row_pids(0, &pid, 1), 1);
	/* Nor by changing the target's policy in the same write. */
	snprintf(w, sizeof(w), "instance_id=2 policy=lru pid=%d", pid);
	r = CTL("config", w);
	assert_refused(&r, why);
	dime_result_free(&r);
	expect_policy(2, "clock");
	snprintf(w, sizeof(w), "instance_id=2 pid=%d", pid);
	ctl_write_ok(w);
	cr_assert_eq(ctl_row_pids(2, &pid, 1), 1);
	ctl_wait_faults(2, 50);
	cr_assert_eq(sweeper_stop(&s), 0);
}

/* hotcold (tests/preload/progs) in instance 0 with `procs` processes side
 * by side: the remote faults of each (re-fetches of its hot pages). */
static void hot_cold(int procs, uint64_t *remote)
{
	char *json[2], *ready[2], *go = temp_path("go");
	pid_t pid[2];
	/* Two processes run on one CPU, the one this test runs on: see
	 * two_processes_of_an_lru_instance_keep_their_hot_sets. */
	cpu_set_t all, one;
	cr_assert(!sched_getaffinity(0, sizeof(all), &all));
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	if (procs > 1)
		cr_assert(!sched_setaffinity(0, sizeof(one), &one));
	for (int i = 0; i < procs; i++) {
		json[i] = temp_path("stats.json");
		ready[i] = temp_path("ready");
		const char *argv[] = { "dime", "run", "--instance", "0", "--stats-json", json[i],
				       "--", build_file("tests/progs/hotcold"), "8", "4", "300",
				       ready[i], go, NULL };
		pid[i] = dime_start_env(argv, control_env());
	}
	if (procs > 1)
		cr_assert(!sched_setaffinity(0, sizeof(all), &all));
	for (int i = 0; i < procs; i++)
		for (int k = 0; k < 6000 && !file_exists(ready[i]); k++) {
			cr_assert_eq(waitpid(pid[i], NULL, WNOHANG), 0, "hotcold ended early");
			usleep(5000);
		}
	write_file(go, "");
	for (int i = 0; i < procs; i++) {
		cr_assert_eq(dime_wait(pid[i], 120), 0, "hotcold %d failed", i);
		char *j = read_file_text(json[i]);
		cr_assert(json_u64(j, "remote_faults", &remote[i]), "%s", j);
		free(j);
	}
}

/* 300 rounds of a hot set of 8 pages and 4 new cold pages, 64 local
 * pages. LRU keeps the hot pages local (a few faults while it learns);
 * FIFO evicts each of them about once per 64 arrivals, ~130 re-fetches
 * (both measured on the project's VM: 0-8 and 124-136). */
Test(ipolicy, the_instance_policy_decides_whether_the_hot_set_stays_local)
{
	require_preload();
	uint64_t lru, fifo;
	ctl_write_ok("instance_id=0 latency_ns=0 local_npages=64 policy=lru");
	hot_cold(1, &lru);
	ctl_write_ok("instance_id=0 policy=fifo");
	hot_cold(1, &fifo);
	cr_assert_leq(lru, 24, "lru: %llu hot-page re-fetches", (unsigned long long)lru);
	cr_assert_geq(fifo, 80, "fifo: only %llu hot-page re-fetches", (unsigned long long)fifo);
}

/* Two such programs share one budget of 64: under lru the instance's
 * order keeps both hot sets mostly local, under fifo each hot page is
 * re-fetched once per 64 arrivals of either (~330 each; ~130 if the two
 * happen to run one after the other). Both run on one CPU: there the
 * measured re-fetches are 3-47 each under lru and 321-331 under fifo (a
 * PVM guest, 2 vCPUs). Run side by side on two vCPUs, lru's are bimodal,
 * 4-77 each in some runs and 113-166 in others, against fifo's 184-324:
 * docs/ARCHITECTURE.md, "Instances", says why that is a known weakness
 * and not a lost page. */
Test(ipolicy, two_processes_of_an_lru_instance_keep_their_hot_sets)
{
	require_preload();
	uint64_t lru[2], fifo[2];
	ctl_write_ok("instance_id=0 latency_ns=0 local_npages=64 policy=lru");
	hot_cold(2, lru);
	ctl_write_ok("instance_id=0 policy=fifo");
	hot_cold(2, fifo);
	uint64_t l = lru[0] + lru[1], f = fifo[0] + fifo[1];
	cr_assert_leq(l, 160, "lru: %llu + %llu hot-page re-fetches of 4800 touches",
		      (unsigned long long)lru[0], (unsigned long long)lru[1]);
	cr_assert_geq(fifo[0], 80, "fifo: only %llu", (unsigned long long)fifo[0]);
	cr_assert_geq(fifo[1], 80, "fifo: only %llu", (unsigned long long)fifo[1]);
	cr_assert_gt(f, 2 * l, "fifo %llu, lru %llu", (unsigned long long)f, (unsigned long long)l);
}

/* --evict-batch LOW,HIGH in an instance: a fault that leaves fewer than
 * LOW of the instance's pages free evicts until HIGH are, so two cyclic
 * sweeps that would keep all 100 pages local (budget.c) keep 60-80 of
 * them, and never more than the budget plus the slack. */
Test(ipolicy, watermarks_batch_evictions_in_an_instance)
{
	require_preload();
	ctl_write_ok("instance_id=0 latency_ns=0 local_npages=100");
	struct sweeper_run a = SWEEPER(150, "--instance", "0", "--evict-batch", "20,40", );
	struct sweeper_run b = SWEEPER(150, "--instance", "0", "--evict-batch", "20,40", );
	ctl_wait_faults(0, 2000);
	uint64_t sum = 0;
	for (int i = 0; i < 20; i++) {
		struct inst_stats s = ctl_stats(0);
		cr_assert_leq(s.local_pages, 100 + SLACK, "now %llu",
			      (unsigned long long)s.local_pages);
		sum += s.local_pages;
		usleep(20000);
	}
	/* About 70 on average; without watermarks about 100. */
	cr_assert_leq(sum, 20 * 90, "on average %llu local pages", (unsigned long long)sum / 20);
	struct inst_stats s = ctl_stats(0);
	cr_assert_leq(s.local_pages_peak, 100 + SLACK, "peak %llu",
		      (unsigned long long)s.local_pages_peak);
	cr_assert_geq(s.evictions, 1000);
	/* And they go on faulting: a policy that lost pages to cancelled
	 * evictions once let both sweepers end with all 300 local, faulting
	 * no more, within about 50000 faults. */
	ctl_wait_faults(0, s.remote_faults + 50000);
	cr_assert_eq(sweeper_stop(&a), 0);
	cr_assert_eq(sweeper_stop(&b), 0);
}

/* Per-process local pages of instance 0, from dime stats --json. */
static int process_locals(uint64_t *local, int max)
{
	struct dime_result r = CTL("stats", "--json", "-i", "0");
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	int n = 0;
	for (const char *p = strstr(r.out, "{\"pid\""); p && n < max; p = strstr(p + 1, "{\"pid\"")) {
		const char *l = strstr(p, "\"local_pages\": ");
		cr_assert(l, "%s", r.out);
		local[n++] = strtoull(l + 15, NULL, 10);
	}
	dime_result_free(&r);
	return n;
}

/* A plug-in without peek (the example LFU) has no order to compare across
 * processes: the process holding the most pages gives one up, so two
 * equal sweeps share the budget instead of the first keeping it all. */
Test(ipolicy, a_plugin_without_peek_shares_the_budget)
{
	require_preload();
	char *w;
	cr_assert_neq(asprintf(&w, "instance_id=0 latency_ns=0 local_npages=100 policy=%s",
			       plugin("lfu.so")), -1);
	ctl_write_ok(w);
	struct sweeper_run a, b;
	two_sweepers(&a, &b);
	ctl_wait_faults(0, 3000);
	uint64_t sum[2] = { 0, 0 };
	for (int i = 0; i < 20; i++) {
		uint64_t l[4];
		cr_assert_eq(process_locals(l, 4), 2);
		cr_assert_leq(l[0] + l[1], 100 + SLACK, "%llu + %llu", (unsigned long long)l[0],
			      (unsigned long long)l[1]);
		sum[0] += l[0];
		sum[1] += l[1];
		usleep(20000);
	}
	/* About half each; at least a fifth on average. */
	cr_assert_geq(sum[0], 20 * 20, "average %llu", (unsigned long long)sum[0] / 20);
	cr_assert_geq(sum[1], 20 * 20, "average %llu", (unsigned long long)sum[1] / 20);
	cr_assert_leq(ctl_stats(0).local_pages_peak, 100 + SLACK);
	cr_assert_eq(sweeper_stop(&a), 0);
	cr_assert_eq(sweeper_stop(&b), 0);
}

/* A process that pid= moved stays in its new instance (and on its policy)
 * when it execs: the exec'd image takes its slot where it is now, not the
 * instance its dime run named. */
/* The member of instance `id` whose command line holds `mark`, or 0. */
static int member_running(int id, const char *mark)
{
	int pids[16], n = ctl_row_pids(id, pids, 16);
	for (int i = 0; i < n; i++) {
		char path[64], buf[4096] = { 0 };
		snprintf(path, sizeof(path), "/proc/%d/cmdline", pids[i]);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		for (size_t k = 0; k < len; k++)
			if (!buf[k])
				buf[k] = ' ';
		if (strstr(buf, mark))
			return pids[i];
	}
	return 0;
}

Test(ipolicy, an_exec_after_a_move_stays_in_the_new_instance)
{
	require_preload();
	ctl_write_ok("instance_id=0 latency_ns=0 local_npages=64 policy=clock");
	ctl_write_ok("instance_id=1 latency_ns=0 local_npages=64 policy=clock");
	char *ready = temp_path("ready"), *done = temp_path("done"), *script;
	char *go = temp_path("go"), *stop = temp_path("stop");
	/* Each loop also ends when its own file is gone: a failed test's
	 * temporary directories are removed, and the script with them. */
	cr_assert_neq(asprintf(&script,
			       "touch %s; while [ ! -e %s ] && [ -e %s ]; do sleep 0.01; done; "
			       "exec sh -c 'touch %s; while [ ! -e %s ] && [ -e %s ]; do sleep 0.01; done'",
			       ready, go, ready, done, stop, done), -1);
	const char *argv[] = { "dime", "run", "--instance", "0", "--", "sh", "-c", script, NULL };
	pid_t d = dime_start_env(argv, control_env());
	for (int i = 0; i < 3000 && !file_exists(ready); i++)
		usleep(5000);
	cr_assert(file_exists(ready));
	int sh = member_running(0, ready);
	cr_assert_gt(sh, 0, "the script is not in instance 0");
	char w[64];
	snprintf(w, sizeof(w), "instance_id=1 pid=%d", sh);
	ctl_write_ok(w);
	write_file(go, "");
	for (int i = 0; i < 3000 && !file_exists(done); i++)
		usleep(5000);
	cr_assert(file_exists(done));
	/* The exec'd image (its command line holds `done`) is the same pid. */
	cr_assert_eq(member_running(1, done), sh, "after exec, pid %d left instance 1", sh);
	cr_assert_eq(member_running(0, done), 0);
	write_file(stop, "");
	cr_assert_eq(dime_wait(d, 30), 0);
}
