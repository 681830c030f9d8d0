/* One run of a sweep: `dime run` (this binary, as a child) at one point of
 * the grid, or with --delegate the command itself with the `dime run ...
 * --` prefix in $DIME; then its metric and its --stats-json counters. */
#define _GNU_SOURCE
#include "cli.h"
#include "sweep.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const int stop_signals[] = { SIGINT, SIGTERM, SIGHUP };
#define NSTOP (sizeof(stop_signals) / sizeof(stop_signals[0]))
/* The run in progress, to pass a stop signal on to; the signal, once one
 * came. Written with the stop signals blocked or by their handler. */
static volatile pid_t current;
static volatile sig_atomic_t stopped_by;

static void on_stop(int sig)
{
	stopped_by = sig;
	if (current > 0)
		kill(current, sig);
}

static void stop_set(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < NSTOP; i++)
		sigaddset(set, stop_signals[i]);
}

void sweep_signals_install(void)
{
	struct sigaction sa = { .sa_handler = on_stop };
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NSTOP; i++)
		sigaction(stop_signals[i], &sa, NULL);
}

int sweep_stopped(void)
{
	return stopped_by;
}

const char *const sweep_counters[NCOUNTERS] = {
	"remote_faults",    "first_touch_faults", "evictions", "local_pages_peak",
	"injected_delay_ns", "handling_ns",       "processes",
};

double sweep_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

char *sweep_self_path(void)
{
	/* Read once, at start-up: once the binary is replaced (a rebuild
	 * during a sweep), the link names the old file " (deleted)". */
	static char path[PATH_MAX];
	if (path[0])
		return path;
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n < 0)
		fail("cannot find dime itself: %s", strerror(errno));
	path[n] = 0;
	return path;
}

char *sweep_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		fputs("dime sweep: out of memory\n", stderr);
		exit(1);
	}
	return s;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t size = 0;
	FILE *m = open_memstream(&buf, &size);
	char chunk[65536];
	size_t n;
	while (m && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(f);
	if (!m || fclose(m)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* The unsigned number after "key": in a --stats-json file. */
static bool json_number(const char *text, const char *key, uint64_t *out)
{
	char quoted[64];
	snprintf(quoted, sizeof(quoted), "\"%s\":", key);
	const char *p = strstr(text, quoted);
	if (!p)
		return false;
	p += strlen(quoted);
	p += strspn(p, " \t\n");
	char *end;
	errno = 0;
	*out = strtoull(p, &end, 10);
	return end != p && !errno;
}

static void read_stats(const char *path, struct outcome *res)
{
	char *text = slurp(path);
	res->have_stats = text != NULL;
	for (size_t k = 0; text && k < NCOUNTERS; k++)
		res->have_stats &= json_number(text, sweep_counters[k], &res->c[k]);
	free(text);
}

static void read_metric(const struct sweep_opts *o, const char *path, struct outcome *res)
{
	if (o->metric_time) {
		res->metric = res->wall_s;
		res->have_metric = true;
		return;
	}
	char *text = slurp(path);
	regmatch_t m[3];
	if (text && !regexec(&o->re, text, 3, m, 0) && m[1].rm_so >= 0) {
		char *start = text + m[1].rm_so, *end;
		text[m[1].rm_eo] = 0;
		res->metric = strtod(start, &end);
		res->have_metric = end != start && !*end && isfinite(res->metric);
		if (o->metric_default && o->re.re_nsub >= 2 && m[2].rm_so >= 0)
			snprintf(res->unit, sizeof(res->unit), "%.*s",
				 (int)(m[2].rm_eo - m[2].rm_so), text + m[2].rm_so);
	}
	free(text);
}

/* Waits for the run; past `timeout_s` (0: never) sends it SIGTERM, which
 * `dime run` passes to its program and a workload turns into stopping its
 * server, and SIGKILL if it is still there KILL_GRACE_S later. Returns
 * whether it timed out. */
#define KILL_GRACE_S 30
static bool wait_run(pid_t pid, double start, uint64_t timeout_s, int *status)
{
	int sent = 0;
	for (;;) {
		pid_t w = waitpid(pid, status, timeout_s ? WNOHANG : 0);
		if (w == pid)
			return sent > 0;
		if (w < 0 && errno != EINTR) {
			fprintf(stderr, "dime sweep: waitpid: %s\n", strerror(errno));
			exit(1);
		}
		if (!timeout_s)
			continue;
		double late = sweep_now() - start - (double)timeout_s;
		if (late >= 0 && sent == 0) {
			kill(pid, SIGTERM);
			sent = 1;
		} else if (late >= KILL_GRACE_S && sent == 1) {
			kill(pid, SIGKILL);
			sent = 2;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 20000000 }, NULL);
	}
}

/* One run: the command at local pages / latency / bandwidth, its output in
 * DIR/runs/TAG.{out,err,json}. */
void sweep_run_one(const struct sweep_opts *o, uint64_t pages, uint64_t lat, uint64_t bw,
		    const char *tag, struct outcome *res)
{
	memset(res, 0, sizeof(*res));
	char *out = sweep_asprintf("%s/runs/%s.out", o->out, tag);
	char *err = sweep_asprintf("%s/runs/%s.err", o->out, tag);
	char *json = sweep_asprintf("%s/runs/%s.json", o->out, tag);
	unlink(json);

	/* self run PASS... --local-pages=N --latency-ns=N --bandwidth-bps=N
	 * --stats-json=FILE -- */
	const char *prefix[SWEEP_MAX_PASS + 8];
	int n = 0;
	prefix[n++] = sweep_self_path();
	prefix[n++] = "run";
	for (int k = 0; k < o->npass; k++)
		prefix[n++] = o->pass[k];
	prefix[n++] = sweep_asprintf("--local-pages=%" PRIu64, pages);
	prefix[n++] = sweep_asprintf("--latency-ns=%" PRIu64, lat);
	prefix[n++] = sweep_asprintf("--bandwidth-bps=%" PRIu64, bw);
	prefix[n++] = sweep_asprintf("--stats-json=%s", json);
	prefix[n++] = "--";

	size_t nprog = 0;
	while (o->program[nprog])
		nprog++;
	char **argv = calloc((size_t)n + nprog + 1, sizeof(*argv));
	char *dime_env = NULL;
	if (!argv)
		fail("out of memory");
	size_t a = 0;
	if (o->delegate) {
		size_t len = 0;
		for (int k = 0; k < n; k++)
			len += strlen(prefix[k]) + 1;
		dime_env = calloc(len + 1, 1);
		if (!dime_env)
			fail("out of memory");
		for (int k = 0; k < n; k++) {
			strcat(dime_env, prefix[k]);
			if (k + 1 < n)
				strcat(dime_env, " ");
		}
	} else {
		for (int k = 0; k < n; k++)
			argv[a++] = (char *)prefix[k];
	}
	for (size_t k = 0; k < nprog; k++)
		argv[a++] = o->program[k];

	double start = sweep_now();
	/* Blocked until `current` is set, so that a stop signal cannot fall
	 * between fork and it and miss the run. */
	sigset_t stop, old;
	stop_set(&stop);
	sigprocmask(SIG_BLOCK, &stop, &old);
	pid_t pid = stopped_by ? -2 : fork();
	if (pid == -2) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		res->status = 128 + stopped_by;
		res->error = "stopped";
		goto out;
	}
	if (pid < 0) {
		fprintf(stderr, "dime sweep: fork: %s\n", strerror(errno));
		exit(1);
	}
	if (pid == 0) {
		for (size_t i = 0; i < NSTOP; i++)
			signal(stop_signals[i], SIG_DFL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		int in = open("/dev/null", O_RDONLY);
		int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (in < 0 || fo < 0 || fe < 0)
			_exit(EXIT_NOEXEC);
		dup2(in, 0);
		dup2(fo, 1);
		dup2(fe, 2);
		if (dime_env)
			setenv("DIME", dime_env, 1);
		execvp(argv[0], argv);
		dprintf(2, "dime sweep: cannot execute '%s': %s\n", argv[0], strerror(errno));
		_exit(EXIT_NOEXEC);
	}
	current = pid;
	sigprocmask(SIG_SETMASK, &old, NULL);
	int status;
	bool timed_out = wait_run(pid, start, o->timeout_s, &status);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	current = 0;
	sigprocmask(SIG_SETMASK, &old, NULL);
	res->wall_s = sweep_now() - start;
	res->status = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);

	read_stats(json, res);
	read_metric(o, out, res);
	if (timed_out) {
		res->error = "timeout";
	} else if (res->status) {
		snprintf(res->error_buf, sizeof(res->error_buf), "exit %d", res->status);
		res->error = res->error_buf;
	} else if (!res->have_stats) {
		res->error = o->delegate ? "no stats (command did not use $DIME)" : "no stats";
	} else if (!res->have_metric) {
		res->error = "no metric";
	}

out:
	for (int k = o->npass + 2; k < n - 1; k++)
		free((char *)prefix[k]);
	free(argv);
	free(dime_env);
	free(out);
	free(err);
	free(json);
}

void sweep_report_failure(const struct sweep_opts *o, const char *tag)
{
	char *path = sweep_asprintf("%s/runs/%s.err", o->out, tag);
	char *text = slurp(path);
	if (text) {
		size_t len = strlen(text);
		while (len && text[len - 1] == '\n')
			text[--len] = 0;
		char *last = strrchr(text, '\n');
		if (len)
			fprintf(stderr, "dime sweep:     %s: %s\n", path, shown(last ? last + 1 : text));
	}
	free(text);
	free(path);
}
