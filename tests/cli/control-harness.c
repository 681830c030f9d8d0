/* See control.h. */
#define _GNU_SOURCE
#include "control.h"
#include "proc-state.h"
#include "stats-json.h"
#include "table-peek.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static const char *env[2];

const char *const *control_env(void)
{
	if (!env[0]) {
		char *dir = temp_path("control");
		cr_assert(!mkdir(dir, 0700));
		char *e;
		cr_assert_neq(asprintf(&e, "DIME_CONTROL_DIR=%s", dir), -1);
		env[0] = e;
	}
	return env;
}

struct dime_result ctl_run(const char *const argv[])
{
	return run_exe(NULL, argv, control_env());
}

char *ctl_table_text(void)
{
	struct dime_result r = CTL("config");
	cr_assert_eq(r.status, 0, "dime config: %d, stderr: %s", r.status, r.err);
	cr_assert_str_empty(r.err);
	free(r.err);
	return r.out;
}

void ctl_write_ok(const char *text)
{
	struct dime_result r = CTL("config", text);
	cr_assert_eq(r.status, 0, "'%s': status %d, stderr: %s", text, r.status, r.err);
	cr_assert_str_empty(r.err);
	dime_result_free(&r);
}

struct inst_stats ctl_stats(int instance)
{
	char id[16];
	snprintf(id, sizeof(id), "%d", instance);
	struct dime_result r = CTL("stats", "--json", "-i", id);
	cr_assert_eq(r.status, 0, "dime stats: %d, stderr: %s", r.status, r.err);
	cr_assert(json_valid(r.out), "not JSON: %s", r.out);
	struct inst_stats s;
	cr_assert(json_u64(r.out, "remote_faults", &s.remote_faults));
	cr_assert(json_u64(r.out, "injected_delay_ns", &s.injected_delay_ns));
	cr_assert(json_u64(r.out, "local_pages", &s.local_pages));
	cr_assert(json_u64(r.out, "local_pages_peak", &s.local_pages_peak));
	cr_assert(json_u64(r.out, "evictions", &s.evictions));
	stats_json_hist(r.out, s.hist);
	dime_result_free(&r);
	return s;
}

static void sleep_ms(long ms)
{
	nanosleep(&(struct timespec){ .tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000 }, NULL);
}

/* A test that fails stops its sweepers too (Criterion ends a failed test
 * with exit, which runs atexit handlers): the stop file ends every process
 * of a sweeper, forked ones included; SIGTERM, which dime forwards, ends
 * one that does not look. */
static struct sweeper_run running[8];
static void sweepers_kill(void)
{
	/* No Criterion assertions here: the test is over. */
	for (int i = 0; i < 8; i++) {
		pid_t pid = running[i].dime;
		if (pid <= 0)
			continue;
		int fd = open(running[i].stop, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
		int k = 0;
		while (waitpid(pid, NULL, WNOHANG) == 0 && k++ < 1000)
			sleep_ms(10);
		if (k > 1000)
			kill(pid, SIGTERM);
	}
}

struct sweeper_run sweeper_start(const char *const args[], unsigned pages, bool fork_too)
{
	struct sweeper_run s = { .stop = temp_path("stop"), .ready = temp_path("ready") };
	const char *argv[32];
	int n = 0;
	argv[n++] = "dime";
	argv[n++] = "run";
	while (*args)
		argv[n++] = *args++;
	argv[n++] = "--";
	argv[n++] = build_file("tests/progs/sweep_until");
	char *np;
	cr_assert_neq(asprintf(&np, "%u", pages), -1);
	argv[n++] = np;
	argv[n++] = s.stop;
	argv[n++] = s.ready;
	if (fork_too)
		argv[n++] = "fork";
	argv[n] = NULL;
	s.dime = dime_start_env(argv, control_env());
	static bool registered;
	if (!registered)
		atexit(sweepers_kill);
	registered = true;
	for (int i = 0; i < 8; i++)
		if (!running[i].dime) {
			running[i] = s;
			break;
		}
	for (int i = 0; i < 6000 && !file_exists(s.ready); i++) {
		cr_assert_eq(waitpid(s.dime, NULL, WNOHANG), 0, "the sweeper ended early");
		sleep_ms(5);
	}
	if (!file_exists(s.ready)) {
		static char state[16384];
		proc_state(s.dime, state, sizeof(state));
		cr_assert_fail("the sweeper did not start in 30 s\n%s", state);
	}
	return s;
}

int sweeper_stop(struct sweeper_run *s)
{
	write_file(s->stop, "");
	int st = dime_wait(s->dime, 60);
	for (int i = 0; i < 8; i++)
		if (running[i].dime == s->dime)
			running[i].dime = 0;
	return st;
}

struct inst_stats ctl_wait_faults(int instance, uint64_t n)
{
	struct inst_stats s;
	for (int i = 0; i < 3000; i++) {
		s = ctl_stats(instance);
		if (s.remote_faults >= n)
			return s;
		sleep_ms(10);
	}
	static char state[16384];
	state[0] = 0;
	for (int i = 0; i < 8; i++)
		if (running[i].dime > 0)
			proc_state(running[i].dime, state + strlen(state), sizeof(state) - strlen(state));
	cr_assert_fail("instance %d stays at %llu remote faults, want %llu\n%s", instance,
		       (unsigned long long)s.remote_faults, (unsigned long long)n, state);
	return s;
}

int ctl_row_pids(int instance, int *pids, int max)
{
	char *t = ctl_table_text();
	int n = table_text_row_pids(t, instance, pids, max);
	free(t);
	return n;
}

void two_sweepers(struct sweeper_run *a, struct sweeper_run *b)
{
	*a = SWEEPER(150, "--instance", "0", );
	*b = SWEEPER(150, "--instance", "0", );
}
