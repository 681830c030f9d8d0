/* dime run end to end: exit statuses, signals, the environment contract,
 * the stats reports. These start programs under the preload library and
 * skip until build/libdime-preload.so exists. */
#define _GNU_SOURCE
#include "harness.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define RUN(...) dime_run("run", __VA_ARGS__)

static void assert_status(struct dime_result r, int want)
{
	cr_assert_eq(r.status, want, "status %d, want %d; stderr: %s", r.status, want, r.err);
	dime_result_free(&r);
}

Test(run, exit_status_is_the_programs)
{
	require_preload();
	assert_status(RUN("--", "sh", "-c", "exit 7"), 7);
	assert_status(RUN("true"), 0);
	assert_status(RUN("false"), 1);
	assert_status(RUN("sh", "-c", "exit 255"), 255);
}

Test(run, arguments_after_the_program_are_the_programs)
{
	require_preload();
	/* Without "--", the program's name ends dime's options. */
	struct dime_result r = RUN("sh", "-c", "exit $#", "zero", "--stats", "--latency-ns", "x");
	cr_assert_eq(r.status, 3, "stderr: %s", r.err);
	cr_assert(!strstr(r.err, "remote faults"), "dime took the program's --stats: %s", r.err);
	dime_result_free(&r);
}

Test(run, killed_by_a_signal_is_128_plus_it)
{
	require_preload();
	assert_status(RUN("sh", "-c", "kill -TERM $$"), 128 + SIGTERM);
	assert_status(RUN("sh", "-c", "kill -KILL $$"), 128 + SIGKILL);
}

Test(run, exec_failure_is_127)
{
	require_preload();
	struct dime_result r = RUN("dime-no-such-program", "arg");
	cr_assert_eq(r.status, 127, "stderr: %s", r.err);
	cr_assert_eq(count_lines(r.err), 1, "stderr: %s", r.err);
	cr_assert(strstr(r.err, "dime run: cannot execute 'dime-no-such-program'"), "%s", r.err);
	dime_result_free(&r);

	char *plain = temp_path("not-executable");
	write_file(plain, "#!/bin/sh\nexit 0\n");
	r = RUN(plain);
	cr_assert_eq(r.status, 127, "stderr: %s", r.err);
	cr_assert(strstr(r.err, plain) && strstr(r.err, "Permission denied"), "%s", r.err);
	dime_result_free(&r);
}

static void wait_for_file(const char *path)
{
	for (int i = 0; i < 2000 && !file_exists(path); i++)
		nanosleep(&(struct timespec){ .tv_nsec = 5000000 }, NULL);
	cr_assert(file_exists(path), "the program did not start");
}

/* The program traps `sig` and exits 42: dime exiting 42 shows the signal
 * reached it through dime (dime dying of it would give 128 + sig). */
static void check_forwarded(int sig, const char *name)
{
	char *ready = temp_path("ready");
	char *script;
	cr_assert_neq(asprintf(&script,
			       "trap 'kill $!; exit 42' %s; sleep 30 & touch '%s'; wait", name,
			       ready), -1);
	pid_t pid = dime_start((const char *const[]){ "dime", "run", "sh", "-c", script, NULL });
	wait_for_file(ready);
	kill(pid, sig);
	cr_assert_eq(dime_wait(pid, 10), 42, "%s was not forwarded", name);
}

Test(run, forwards_signals_sent_to_dime)
{
	require_preload();
	check_forwarded(SIGTERM, "TERM");
	check_forwarded(SIGINT, "INT");
	check_forwarded(SIGHUP, "HUP");
	check_forwarded(SIGQUIT, "QUIT");
}

Test(run, forwarded_signal_kills_the_program)
{
	require_preload();
	char *ready = temp_path("ready");
	char *script;
	cr_assert_neq(asprintf(&script, "touch '%s'; exec sleep 30", ready), -1);
	pid_t pid = dime_start((const char *const[]){ "dime", "run", "sh", "-c", script, NULL });
	wait_for_file(ready);
	kill(pid, SIGTERM);
	cr_assert_eq(dime_wait(pid, 10), 128 + SIGTERM);
}

/* The value of NAME in an `env` listing, or NULL. */
static char *env_value(const char *listing, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = listing; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, name, n) && p[n] == '=')
			return strndup(p + n + 1, strcspn(p + n + 1, "\n"));
	return NULL;
}

static void assert_env(const char *listing, const char *name, const char *want)
{
	char *v = env_value(listing, name);
	cr_assert(v, "%s not set in the program's environment", name);
	cr_assert_str_eq(v, want, "%s", name);
	free(v);
}

static char *program_env(const char *const *dime_args, const char *const env[])
{
	char *out = temp_path("env");
	char *script;
	cr_assert_neq(asprintf(&script, "env > '%s'", out), -1);
	const char *argv[32];
	size_t n = 0;
	argv[n++] = "dime";
	argv[n++] = "run";
	for (; *dime_args; dime_args++)
		argv[n++] = *dime_args;
	argv[n++] = "sh";
	argv[n++] = "-c";
	argv[n++] = script;
	argv[n] = NULL;
	struct dime_result r = run_exe(NULL, argv, env);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	dime_result_free(&r);
	return read_file_text(out);
}

Test(run, environment_contract)
{
	require_preload();
	char preload[PATH_MAX];
	cr_assert(realpath(build_file("libdime-preload.so"), preload));

	/* dime's values replace inherited ones. */
	char *e = program_env((const char *const[]){ NULL },
			      (const char *const[]){ "DIME_MODE=bogus", NULL });
	assert_env(e, "LD_PRELOAD", preload);
	assert_env(e, "PYTHONMALLOC", "malloc");
	assert_env(e, "DIME_LATENCY_NS", "2000");
	assert_env(e, "DIME_BANDWIDTH_BPS", "1000000000");
	assert_env(e, "DIME_LOCAL_PAGES", "100000");
	assert_env(e, "DIME_POLICY", "fifo");
	assert_env(e, "DIME_FIRST_TOUCH", "local");
	assert_env(e, "DIME_BANDWIDTH_MODEL", "shared");
	assert_env(e, "DIME_MODE", "thread");
	assert_env(e, "DIME_QUIET_FLOOR", "1");
	char *fd = env_value(e, "DIME_STATS_FD");
	cr_assert(fd && *fd && strspn(fd, "0123456789") == strlen(fd), "DIME_STATS_FD=%s", fd);
	free(e);

	/* Existing preloads stay, after dime's. */
	char *both;
	cr_assert_neq(asprintf(&both, "%s:libm.so.6", preload), -1);
	e = program_env((const char *const[]){ "--latency-ns", "123", "--bandwidth-bps",
					       "40000000000", "--local-pages", "789",
					       "--first-touch", "remote", "--bandwidth-model",
					       "per-fault", "--mode", "signal", NULL },
			(const char *const[]){ "LD_PRELOAD=libm.so.6", NULL });
	assert_env(e, "LD_PRELOAD", both);
	assert_env(e, "DIME_LATENCY_NS", "123");
	assert_env(e, "DIME_BANDWIDTH_BPS", "40000000000");
	assert_env(e, "DIME_LOCAL_PAGES", "789");
	assert_env(e, "DIME_FIRST_TOUCH", "remote");
	assert_env(e, "DIME_BANDWIDTH_MODEL", "per-fault");
	assert_env(e, "DIME_MODE", "signal");
	free(e);
}

/* dime run measures dime's costs once for the whole program: its
 * processes take that measurement over (DIME_CALIBRATION) instead of each
 * spending its start-up measuring again. The shell's environment as dime
 * run passed it (/proc/$$/environ) holds the measurement, and `env`, two
 * preloaded processes further on, still has it unchanged: a process that
 * measured again would hand on its own numbers. */
Test(run, program_takes_over_dime_runs_measurement)
{
	require_preload();
	char *given = temp_path("given"), *seen = temp_path("seen"), *script;
	cr_assert_neq(asprintf(&script, "tr '\\0' '\\n' < /proc/$$/environ > '%s'; env > '%s'",
			       given, seen),
		      -1);
	struct dime_result r = dime_run("run", "sh", "-c", script);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	dime_result_free(&r);
	char *g = read_file_text(given), *s = read_file_text(seen);
	char *from_dime = env_value(g, "DIME_CALIBRATION");
	cr_assert(from_dime, "dime run passed no DIME_CALIBRATION; it gave:\n%s", g);
	cr_assert(!strncmp(from_dime, "v4,", 3), "DIME_CALIBRATION=%s", from_dime);
	char *handed_on = env_value(s, "DIME_CALIBRATION");
	cr_assert(handed_on, "DIME_CALIBRATION did not reach `env`");
	cr_assert_str_eq(handed_on, from_dime,
			 "a process of the program measured dime's costs again");
	free(from_dime);
	free(handed_on);
	free(g);
	free(s);
	free(script);
}

Test(run, stats_fd_is_inherited)
{
	require_preload();
	/* The program can open the page through the descriptor it was given. */
	struct dime_result r = RUN("sh", "-c", "test -e /proc/self/fd/$DIME_STATS_FD");
	cr_assert_eq(r.status, 0, "DIME_STATS_FD is not open in the program; stderr: %s", r.err);
	dime_result_free(&r);
}

Test(run, silent_without_stats)
{
	require_preload();
	struct dime_result r = RUN("true");
	cr_assert_eq(r.status, 0);
	cr_assert_str_empty(r.err);
	cr_assert_str_empty(r.out);
	dime_result_free(&r);
}

Test(run, stats_summary_on_stderr)
{
	require_preload();
	struct dime_result r = RUN("--stats", "sh", "-c", "echo hi; exit 4");
	cr_assert_eq(r.status, 4, "stderr: %s", r.err);
	cr_assert_str_eq(r.out, "hi\n");
	const char *rows[] = { "remote faults",	     "first-touch faults", "evictions",
			       "local pages peak",   "injected delay (ms)", "handling time (ms)",
			       "mean handling per fault (us)", "wall time", "processes" };
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		cr_assert(strstr(r.err, rows[i]), "summary lacks '%s':\n%s", rows[i], r.err);
	dime_result_free(&r);
}

static const char *const number_keys[] = {
	"remote_faults", "first_touch_faults", "evictions", "local_pages_peak",
	"injected_delay_ns", "handling_ns", "processes", "wall_ns", "exit_status",
	"latency_ns", "bandwidth_bps", "local_npages", "fetch_ns",
};

Test(run, stats_json)
{
	require_preload();
	char *path = temp_path("stats.json");
	struct dime_result r = RUN("--stats-json", path, "sh", "-c", "exit 3");
	cr_assert_eq(r.status, 3, "stderr: %s", r.err);
	cr_assert_str_empty(r.err);
	dime_result_free(&r);

	char *j = read_file_text(path);
	cr_assert(json_valid(j), "not JSON:\n%s", j);
	uint64_t v;
	for (size_t i = 0; i < sizeof(number_keys) / sizeof(number_keys[0]); i++)
		cr_assert(json_u64(j, number_keys[i], &v), "no number %s in\n%s",
			  number_keys[i], j);
	cr_assert(strstr(j, "\"config\": {"), "%s", j);
	cr_assert(json_u64(j, "exit_status", &v) && v == 3);
	cr_assert(json_u64(j, "processes", &v) && v >= 1, "no process reported:\n%s", j);
	cr_assert(json_u64(j, "wall_ns", &v) && v > 0);

	struct dime_params p;
	dime_params_init(&p);
	cr_assert(json_u64(j, "fetch_ns", &v));
	cr_assert_eq(v, dime_fetch_ns(&p, (size_t)sysconf(_SC_PAGESIZE)));
	char s[64];
	cr_assert(json_str(j, "policy", s, sizeof(s)) && !strcmp(s, "fifo"));
	cr_assert(json_str(j, "first_touch", s, sizeof(s)) && !strcmp(s, "local"));
	cr_assert(json_str(j, "bandwidth_model", s, sizeof(s)) && !strcmp(s, "shared"));
	cr_assert(json_str(j, "mode", s, sizeof(s)) && !strcmp(s, "thread"));
	free(j);
}

Test(run, stats_json_when_exec_fails)
{
	require_preload();
	char *path = temp_path("stats.json");
	struct dime_result r = RUN("--stats-json", path, "dime-no-such-program");
	cr_assert_eq(r.status, 127);
	dime_result_free(&r);
	char *j = read_file_text(path);
	uint64_t v;
	cr_assert(json_valid(j), "not JSON:\n%s", j);
	cr_assert(json_u64(j, "exit_status", &v) && v == 127);
	cr_assert(json_u64(j, "processes", &v) && v == 0);
	free(j);
}
