/* dime stats: per-instance and per-process counters, text and JSON. */
#define _GNU_SOURCE
#include "control.h"

#include <stdio.h>
#include <string.h>

Test(stats, counters_of_a_running_program)
{
	require_preload();
	ctl_write_ok("instance_id=0 latency_ns=0 local_npages=16");
	struct sweeper_run s = SWEEPER(64, "--instance", "0", );
	int pid;
	cr_assert_eq(ctl_row_pids(0, &pid, 1), 1);
	struct inst_stats a = ctl_wait_faults(0, 100);
	cr_assert_geq(a.evictions, 100);
	cr_assert_leq(a.local_pages, 16);

	struct dime_result r = CTL("stats", "--json");
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert(json_valid(r.out), "%s", r.out);
	char key[64];
	snprintf(key, sizeof(key), "\"pid\": %d,", pid);
	cr_assert(strstr(r.out, key), "no row for pid %d:\n%s", pid, r.out);
	cr_assert(strstr(r.out, "\"fault_time_hist_log2_ns\": ["), "%s", r.out);
	dime_result_free(&r);

	r = CTL("stats", "-i", "0");
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	const char *head = "instance 0: latency 0 ns, bandwidth 1000000000 bit/s, "
			   "local_npages 16, 1 process\n";
	cr_assert(!strncmp(r.out, head, strlen(head)), "%s", r.out);
	cr_assert(strstr(r.out, "remote fault time (trap to resume):"), "%s", r.out);
	snprintf(key, sizeof(key), "\n  %8d ", pid);
	cr_assert(strstr(r.out, key), "no row for pid %d:\n%s", pid, r.out);
	dime_result_free(&r);
	cr_assert_eq(sweeper_stop(&s), 0);
}

Test(stats, the_histogram_adds_up)
{
	require_preload();
	ctl_write_ok("instance_id=0 latency_ns=0 local_npages=16");
	struct sweeper_run s = SWEEPER(64, "--instance", "0", );
	ctl_wait_faults(0, 100);
	cr_assert_eq(sweeper_stop(&s), 0);
	struct dime_result r = CTL("stats", "--json", "-i", "0");
	cr_assert_eq(r.status, 0);
	uint64_t faults, sum = 0;
	cr_assert(json_u64(r.out, "remote_faults", &faults));
	const char *h = strstr(r.out, "\"fault_time_hist_log2_ns\": [");
	cr_assert(h);
	h = strchr(h, '[') + 1;
	for (int b = 0; b < 32; b++) {
		char *end;
		sum += strtoull(h, &end, 10);
		h = end + 1;
	}
	cr_assert_eq(sum, faults, "%s", r.out);
	dime_result_free(&r);
}

Test(stats, empty_table_and_bad_input)
{
	struct dime_result r = CTL("stats", "--json");
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "{\"instances\": []}\n");
	dime_result_free(&r);
	r = CTL("stats", "-i", "0");
	assert_refused(&r, "'0'");
	dime_result_free(&r);
	r = CTL("stats", "-i", "x");
	assert_refused(&r, "'x'");
	dime_result_free(&r);
	r = CTL("stats", "--watch", "0");
	assert_refused(&r, "'0'");
	dime_result_free(&r);
	r = CTL("stats", "--watch", "-1");
	assert_refused(&r, "'-1'");
	dime_result_free(&r);
	r = CTL("stats", "--watch");
	assert_refused(&r, "--watch");
	dime_result_free(&r);
	r = CTL("stats", "--frob");
	assert_refused(&r, "--frob");
	dime_result_free(&r);
}

Test(stats, watch_repeats)
{
	ctl_write_ok("instance_id=0");
	/* Stopped by the test once it has written two reports (each is
	 * flushed), or after 30 s: a loaded machine may take long to start
	 * it, and the count below says whether it repeated. */
	char *out = temp_path("out");
	char *cmd;
	cr_assert_neq(asprintf(&cmd,
			       "\"$0\" stats --watch 0.1 > '%s' & i=0; "
			       "while [ \"$(grep -c 'instance 0:' '%s')\" -lt 2 ] && [ $i -lt 300 ]; "
			       "do sleep 0.1; i=$((i + 1)); done; kill $! 2>/dev/null; true",
			       out, out),
		      -1);
	struct dime_result r = run_exe("/bin/sh", (const char *const[]){ "sh", "-c", cmd, dime_path(), NULL },
				       control_env());
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	dime_result_free(&r);
	char *text = read_file_text(out);
	int n = 0;
	for (const char *p = text; (p = strstr(p, "instance 0:")); p++)
		n++;
	cr_assert_geq(n, 2, "%s", text);
}
