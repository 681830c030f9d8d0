/* dime run --trace: the Chrome trace-event JSON of a run, read back with
 * python3's json module (a real parser), compared with --stats-json. */
#define _GNU_SOURCE
#include "control.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Loads the trace and prints one flat JSON object summing it up. */
static const char summary_py[] =
	"import json, sys\n"
	"t = json.load(open(sys.argv[1]))\n"
	"ev = t['traceEvents']\n"
	"x = [e for e in ev if e.get('ph') == 'X']\n"
	"by = lambda n: [e for e in x if e['name'] == n]\n"
	"faults = by('remote fault') + by('first touch') + by('soft fault')\n"
	"pids = {e['pid'] for e in x}\n"
	"per_pid = [sum(1 for e in by('remote fault') if e['pid'] == p) for p in pids] or [0]\n"
	"own = {e['pid'] for e in faults if e['tid'] == e['pid']}\n"
	"inst = {e['args']['instance'] for e in x} or {0}\n"
	"ok = all(isinstance(e['ts'], (int, float)) and e['dur'] >= 0 and\n"
	"         e['args']['addr'].startswith('0x') for e in x)\n"
	"tracks = {}\n"
	"for e in x: tracks.setdefault((e['pid'], e['tid']), []).append(e)\n"
	"crossing = 0\n"
	"for v in tracks.values():\n"
	"    ends = []\n"
	"    for e in sorted(v, key=lambda e: (e['ts'], -e['dur'])):\n"
	"        while ends and ends[-1] <= e['ts'] + 1e-3: ends.pop()\n"
	"        crossing += bool(ends and e['ts'] + e['dur'] > ends[-1] + 1e-3)\n"
	"        ends.append(e['ts'] + e['dur'])\n"
	"o = t['otherData']\n"
	"print(json.dumps({'remote': len(by('remote fault')), 'first': len(by('first touch')),\n"
	"  'soft': len(by('soft fault')),\n"
	"  'evict': len(by('eviction')), 'pids': len(pids), 'pids_own_tid': len(own),\n"
	"  'pid_remote_min': min(per_pid),\n"
	"  'remote_tids': len({e['tid'] for e in by('remote fault')}),\n"
	"  'crossing': crossing, 'inst_min': min(inst), 'inst_max': max(inst), 'fields_ok': int(ok),\n"
	"  'delayed': sum(1 for e in by('remote fault') if e['args']['delay_ns'] > 0),\n"
	"  'delay_sum': sum(e['args']['delay_ns'] for e in faults),\n"
	"  'local_samples': sum(1 for e in ev if e.get('ph') == 'C' and e['name'] == 'local pages'),\n"
	"  'link_samples': sum(1 for e in ev if e.get('ph') == 'C' and e['name'] == 'link busy'),\n"
	"  'events_written': o['events_written'], 'events_recorded': o['events_recorded'],\n"
	"  'events_dropped': o['events_dropped'], 'max_events': o['max_events']}))\n";

struct summary {
	uint64_t remote, first, soft, evict, pids, pids_own_tid, pid_remote_min, remote_tids, inst_min, inst_max;
	uint64_t crossing, fields_ok, delayed, delay_sum, local_samples, link_samples;
	uint64_t written, recorded, dropped, max_events;
};

static struct summary summarize(const char *trace)
{
	struct dime_result r =
		run_exe("/usr/bin/python3", (const char *const[]){ "python3", "-c", summary_py,
								    trace, NULL },
			NULL);
	cr_assert_eq(r.status, 0, "the trace is not valid JSON or lacks fields:\n%s", r.err);
	struct summary s;
	const struct {
		const char *key;
		uint64_t *v;
	} keys[] = {
		{ "remote", &s.remote },
		{ "first", &s.first },
		{ "soft", &s.soft },
		{ "evict", &s.evict },
		{ "pids", &s.pids },
		{ "pids_own_tid", &s.pids_own_tid },
		{ "remote_tids", &s.remote_tids },
		{ "pid_remote_min", &s.pid_remote_min },
		{ "inst_min", &s.inst_min },
		{ "inst_max", &s.inst_max },
		{ "fields_ok", &s.fields_ok },
		{ "crossing", &s.crossing },
		{ "delayed", &s.delayed },
		{ "delay_sum", &s.delay_sum },
		{ "local_samples", &s.local_samples },
		{ "link_samples", &s.link_samples },
		{ "events_written", &s.written },
		{ "events_recorded", &s.recorded },
		{ "events_dropped", &s.dropped },
		{ "max_events", &s.max_events },
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		cr_assert(json_u64(r.out, keys[i].key, keys[i].v), "no %s in %s", keys[i].key,
			  r.out);
	dime_result_free(&r);
	return s;
}

/* Runs `dime run ARGS` (which must write its trace to `trace`),
 * asserting success, and summarizes the trace. */
#define TRACED_RUN(trace, ...)                                                  \
	({                                                                      \
		struct dime_result r_ = CTL("run", __VA_ARGS__);                \
		cr_assert_eq(r_.status, 0, "stderr: %s", r_.err);               \
		dime_result_free(&r_);                                          \
		summarize(trace);                                               \
	})

static uint64_t stat_of(const char *json_path, const char *key)
{
	char *j = read_file_text(json_path);
	uint64_t v;
	cr_assert(json_u64(j, key, &v), "no %s in %s", key, j);
	free(j);
	return v;
}

Test(trace, one_event_per_fault_and_eviction_as_counted)
{
	require_preload();
	char *trace = temp_path("run.trace.json"), *stats = temp_path("stats.json");
	/* Four threads sweeping over a budget of 64 pages: remote faults
	 * and evictions from several threads. */
	struct summary s = TRACED_RUN(trace, "--local-pages", "64", "--latency-ns", "20000",
				      "--trace", trace, "--trace-max-events", "1000000",
				      "--stats-json", stats, "--",
				      build_file("tests/progs/threads"), "3");
	uint64_t remote = stat_of(stats, "remote_faults");
	cr_assert_gt(remote, 500);
	cr_assert_eq(s.dropped, 0);
	cr_assert_eq(s.written, s.recorded);
	cr_assert_eq(s.remote, remote, "%lu remote-fault events, %lu remote faults",
		     (unsigned long)s.remote, (unsigned long)remote);
	cr_assert_eq(s.first, stat_of(stats, "first_touch_faults"));
	/* Evictions are recorded when the page leaves: a few counted ones
	 * may still be due when the process exits (fault.c). */
	uint64_t evictions = stat_of(stats, "evictions");
	cr_assert_leq(s.evict, evictions);
	cr_assert_geq(s.evict + 64, evictions);
	cr_assert(s.fields_ok);
	cr_assert_eq(s.crossing, 0, "slices on a thread's track nest");
	/* Each event's injected delay is the one its fault added to the
	 * counter. */
	cr_assert_eq(s.delay_sum, stat_of(stats, "injected_delay_ns"));
	cr_assert_gt(s.delayed, 0);
	/* One process; its remote faults on the tracks of the program's
	 * threads (4 workers), not of dime's handlers. */
	cr_assert_eq(s.pids, 1);
	cr_assert_geq(s.remote_tids, 4);
	cr_assert_eq(s.inst_min, 0);
	cr_assert_eq(s.inst_max, 0);
	cr_assert_geq(s.local_samples, 1);
	cr_assert_geq(s.link_samples, 1);
}

Test(trace, signal_mode_faults_on_the_faulting_threads)
{
	require_preload();
	char *trace = temp_path("run.trace.json"), *stats = temp_path("stats.json");
	struct summary s = TRACED_RUN(trace, "--mode", "signal", "--local-pages", "64", "--trace",
				      trace, "--stats-json", stats, "--",
				      build_file("tests/progs/threads"), "2");
	cr_assert_eq(s.dropped, 0);
	cr_assert_eq(s.remote, stat_of(stats, "remote_faults"));
	cr_assert_geq(s.remote_tids, 4);
	cr_assert_gt(s.evict, 0);
	cr_assert_eq(s.crossing, 0, "evictions nest in their faults");
}

Test(trace, soft_faults_are_events_of_their_own)
{
	require_preload();
	char *trace = temp_path("run.trace.json"), *stats = temp_path("stats.json");
	/* LRU observes pages: their next touches are soft faults. */
	struct summary s = TRACED_RUN(trace, "--policy", "lru", "--local-pages", "64", "--trace",
				      trace, "--trace-max-events", "1000000", "--stats-json", stats,
				      "--", build_file("tests/progs/threads"), "3");
	uint64_t soft = stat_of(stats, "soft_faults");
	cr_assert_gt(soft, 0);
	cr_assert_eq(s.dropped, 0);
	cr_assert_eq(s.soft, soft);
	cr_assert_eq(s.remote, stat_of(stats, "remote_faults"));
}

Test(trace, events_carry_the_instance)
{
	require_preload();
	ctl_write_ok("instance_id=0 local_npages=1000");
	ctl_write_ok("instance_id=1 latency_ns=500 local_npages=64");
	char *trace = temp_path("run.trace.json");
	struct summary s = TRACED_RUN(trace, "--instance", "1", "--trace", trace, "--",
				      build_file("tests/progs/threads"), "1");
	cr_assert_gt(s.remote, 0);
	cr_assert_eq(s.inst_min, 1);
	cr_assert_eq(s.inst_max, 1);
}

Test(trace, execd_children_have_their_own_pids)
{
	require_preload();
	char *trace = temp_path("run.trace.json"), *stats = temp_path("stats.json");
	/* fork+execve, posix_spawn and system(): exec'd images and shells. */
	struct summary s = TRACED_RUN(trace, "--local-pages", "64", "--trace", trace,
				      "--trace-max-events", "1000000", "--stats-json", stats, "--",
				      build_file("tests/progs/exec"));
	uint64_t processes = stat_of(stats, "processes");
	cr_assert_gt(processes, 2);
	cr_assert_eq(s.dropped, 0);
	cr_assert_eq(s.remote, stat_of(stats, "remote_faults"));
	/* Every process that faulted shows under its own pid, its main
	 * thread's faults on its own track (tid == pid). */
	cr_assert_gt(s.pids, 2, "events of %lu pids", (unsigned long)s.pids);
	cr_assert_eq(s.pids_own_tid, s.pids);
}

Test(trace, a_forked_child_has_its_own_pid)
{
	require_preload();
	char *trace = temp_path("run.trace.json"), *stats = temp_path("stats.json");
	char *trace_arg, *stats_arg;
	cr_assert_neq(asprintf(&trace_arg, "--trace=%s", trace), -1);
	cr_assert_neq(asprintf(&stats_arg, "--stats-json=%s", stats), -1);
	/* Both processes sweep 128 pages over a shared budget of 32. */
	struct sweeper_run w = SWEEPER_FORKED(128, "--local-pages", "32", "--trace-max-events",
					      "1000000", trace_arg, stats_arg, );
	ctl_wait_faults(0, 3000);
	/* The parent alone may make those faults before the child, on a
	 * loaded machine not yet scheduled, has joined the instance: a bound
	 * on waiting for it, not on speed. */
	int pids[4], npids = ctl_row_pids(0, pids, 4);
	for (int i = 0; i < 2000 && npids < 2; i++) {
		usleep(5000);
		npids = ctl_row_pids(0, pids, 4);
	}
	cr_assert_eq(npids, 2);
	cr_assert_eq(sweeper_stop(&w), 0);
	struct summary s = summarize(trace);
	cr_assert_eq(s.dropped, 0);
	cr_assert_eq(s.remote, stat_of(stats, "remote_faults"));
	cr_assert_eq(s.pids, 2);
	cr_assert_eq(s.pids_own_tid, 2);
	cr_assert(s.pid_remote_min > 0, "both processes fault remotely");
}

Test(trace, the_bound_holds_on_a_long_run)
{
	require_preload();
	char *trace = temp_path("run.trace.json"), *stats = temp_path("stats.json");
	struct summary s = TRACED_RUN(trace, "--local-pages", "32", "--latency-ns", "0", "--trace",
				      trace, "--trace-max-events", "300", "--stats-json", stats,
				      "--", build_file("tests/progs/threads"), "10");
	uint64_t all = stat_of(stats, "remote_faults") + stat_of(stats, "first_touch_faults");
	cr_assert_gt(all, 3000);
	cr_assert_eq(s.max_events, 300);
	cr_assert_leq(s.written, 300);
	cr_assert_geq(s.written, 290, "the most recent events are kept, whole");
	cr_assert_geq(s.recorded, all);
	cr_assert_eq(s.dropped, s.recorded - s.written);
	cr_assert_eq(s.remote + s.first + s.evict, s.written);
	/* 300 events and at most 8192 samples of two counters. */
	struct stat st;
	cr_assert(!stat(trace, &st));
	cr_assert_lt(st.st_size, 300 * 400 + 2 * 8192 * 120);
}

Test(trace, a_process_killed_mid_run_leaves_a_valid_trace)
{
	require_preload();
	char *trace = temp_path("run.trace.json");
	char *trace_arg;
	cr_assert_neq(asprintf(&trace_arg, "--trace=%s", trace), -1);
	struct sweeper_run w = SWEEPER_FORKED(128, "--local-pages", "32", trace_arg, );
	ctl_wait_faults(0, 2000);
	int pids[4];
	int n = ctl_row_pids(0, pids, 4);
	cr_assert_eq(n, 2);
	/* The forked child: kill -9 while it faults. */
	int child = pids[0] > pids[1] ? pids[0] : pids[1];
	cr_assert(!kill(child, SIGKILL));
	int status = sweeper_stop(&w);
	cr_assert_neq(status, 0, "the parent sees its child killed");
	struct summary s = summarize(trace);
	cr_assert_eq(s.pids, 2);
	cr_assert_gt(s.remote, 0);
}

/* Refused before anything starts: exit 2, one line naming it, and the
 * program (touch MARKER) never ran. */
static void refused(const char *token, const char *const args[])
{
	char *marker = temp_path("started");
	const char *argv[16];
	size_t n = 0;
	argv[n++] = "dime";
	argv[n++] = "run";
	for (; *args; args++)
		argv[n++] = *args;
	argv[n++] = "touch";
	argv[n++] = marker;
	argv[n] = NULL;
	struct dime_result r = run_exe(NULL, argv, NULL);
	assert_refused(&r, token);
	cr_assert(!file_exists(marker), "the program ran although dime refused");
	dime_result_free(&r);
}
#define REFUSED(token, ...) refused(token, (const char *const[]){ __VA_ARGS__, NULL })

Test(trace, bad_options_are_refused)
{
	char *dir = temp_path("no-such-dir"), *path;
	cr_assert_neq(asprintf(&path, "%s/t.json", dir), -1);
	REFUSED(path, "--trace", path, "--");
	REFUSED("'/'", "--trace=/", "--");
	REFUSED("--trace: ''", "--trace", "", "--");
	REFUSED("missing value for option: '--trace'", "--trace", "--");
	char *ok = temp_path("t.json");
	REFUSED("--trace-max-events (1 to 10000000): '0'", "--trace", ok, "--trace-max-events",
		"0", "--");
	REFUSED("'-5'", "--trace", ok, "--trace-max-events", "-5", "--");
	REFUSED("'many'", "--trace", ok, "--trace-max-events=many", "--");
	REFUSED("'10000001'", "--trace", ok, "--trace-max-events", "10000001", "--");
	REFUSED("--trace-max-events needs --trace", "--trace-max-events", "10", "--");
	cr_assert(!file_exists(ok), "a refused run wrote no trace");
}

Test(trace, trace_without_a_file_is_refused)
{
	struct dime_result r = dime_run("run", "--trace");
	assert_refused(&r, "--trace");
	dime_result_free(&r);
}
