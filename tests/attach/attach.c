/* dime insert / dime detach on a running program that checks its own data
 * from two threads (tests/attach/progs/target.c): remote faults happen while its checksums
 * stay right, fork and mremap in the target keep every copy right, detach
 * leaves nothing of dime behind, and the agent's and the target's deaths
 * leave nothing wedged. */
#define _GNU_SOURCE
#include "helpers.h"

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

/* Generous bounds on waiting, never on speed: a slow machine passes. */
#define WAIT_S 120

struct target {
	pid_t pid;
	FILE *out;
	char ready[128]; /* its "ready CHECKSUM ..." line */
};

static char *xdg; /* a control directory of the test's own */

static void control_dir_init(void)
{
	char tmpl[] = "/tmp/dime-attach-test-XXXXXX";
	char *d = mkdtemp(tmpl);
	cr_assert(d);
	xdg = strdup(d);
}

/* The next line of the target's output starting with `prefix`, into buf;
 * false at end of output or after WAIT_S seconds. */
static bool wait_line(struct target *t, const char *prefix, char *buf, size_t size)
{
	time_t end = time(NULL) + WAIT_S;
	while (time(NULL) < end) {
		struct pollfd p = { .fd = fileno(t->out), .events = POLLIN };
		if (poll(&p, 1, 1000) <= 0)
			continue;
		if (!fgets(buf, (int)size, t->out))
			return false;
		if (!strncmp(buf, prefix, strlen(prefix)))
			return true;
	}
	return false;
}

static void target_start(struct target *t)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	char *exe;
	cr_assert_neq(asprintf(&exe, "%s/tests/attach-progs/target", test_build_dir()), -1);
	t->pid = fork();
	cr_assert_geq(t->pid, 0);
	if (t->pid == 0) {
		/* A failed test must not leave it running. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execl(exe, exe, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	t->out = fdopen(p[0], "r");
	setvbuf(t->out, NULL, _IONBF, 0);
	cr_assert(wait_line(t, "ready ", t->ready, sizeof(t->ready)), "the target did not start");
}

/* Lets the target run `n` more full passes over its data, counted from
 * now: lines it printed before are skipped, and the pass under way now
 * does not count. */
static void passes(struct target *t, int n)
{
	char line[128];
	struct pollfd p = { .fd = fileno(t->out), .events = POLLIN };
	while (poll(&p, 1, 0) > 0 && (p.revents & POLLIN) && fgets(line, sizeof(line), t->out))
		;
	for (int i = 0; i < n + 1; i++)
		cr_assert(wait_line(t, "pass ", line, sizeof(line)), "the target stopped making passes");
}

/* SIGTERM; the target's last check must give the checksum it started with
 * and it must exit 0. */
static void target_finish(struct target *t)
{
	char line[128];
	unsigned long long start, last;
	kill(t->pid, SIGTERM);
	cr_assert(wait_line(t, "done ", line, sizeof(line)), "the target did not finish");
	cr_assert_eq(sscanf(t->ready, "ready %llu", &start), 1);
	cr_assert_eq(sscanf(line, "done %llu", &last), 1);
	cr_assert_eq(last, start, "checksum changed: %s, started with %s", line, t->ready);
	int st;
	cr_assert_eq(waitpid(t->pid, &st, 0), t->pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the target failed: status %#x", st);
	fclose(t->out);
}

struct run {
	int status;
	char out[16384];
};

/* Runs dime with args (NULL-terminated), stdout and stderr together. */
static struct run dime(const char *const args[])
{
	struct run r = { 0 };
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t c = fork();
	cr_assert_geq(c, 0);
	if (c == 0) {
		char *exe, *env;
		if (asprintf(&exe, "%s/dime", test_build_dir()) < 0 ||
		    asprintf(&env, "XDG_RUNTIME_DIR=%s", xdg) < 0)
			_exit(127);
		putenv(env);
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		close(p[1]);
		const char *argv[32] = { "dime" };
		for (int i = 0; args[i] && i < 30; i++)
			argv[i + 1] = args[i];
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	size_t n = 0;
	ssize_t k;
	while ((k = read(p[0], r.out + n, sizeof(r.out) - 1 - n)) > 0)
		n += (size_t)k;
	close(p[0]);
	int st;
	cr_assert_eq(waitpid(c, &st, 0), c);
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return r;
}

static struct run insert(pid_t pid, const char *local_pages)
{
	char spid[16];
	snprintf(spid, sizeof(spid), "%d", (int)pid);
	return dime((const char *[]){ "insert", "-p", spid, "--local-pages", local_pages,
				      "--latency-ns", "0", NULL });
}

static struct run detach(pid_t pid)
{
	char spid[16];
	snprintf(spid, sizeof(spid), "%d", (int)pid);
	return dime((const char *[]){ "detach", "-p", spid, NULL });
}

static uint64_t stat_of(const char *out, const char *key)
{
	const char *p = strstr(out, key);
	cr_assert(p, "no %s in: %s", key, out);
	return strtoull(p + strlen(key), NULL, 10);
}

/* Lines of /proc/PID/FILE, or entries of the directory /proc/PID/FILE. */
static int proc_count(pid_t pid, const char *what)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	int n = 0;
	DIR *d = opendir(path);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			n += e->d_name[0] != '.';
		closedir(d);
		return n;
	}
	FILE *f = fopen(path, "r");
	cr_assert(f, "%s", path);
	for (int c; (c = fgetc(f)) != EOF;)
		n += c == '\n';
	fclose(f);
	return n;
}

/* Whether every page of [addr, addr+len) of pid has bytes (pagemap). */
static bool all_present(pid_t pid, uintptr_t addr, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	bool ok = true;
	for (uintptr_t a = addr & ~(ps - 1); ok && a < addr + len; a += ps) {
		uint64_t e = 0;
		cr_assert_eq(pread(fd, &e, 8, (off_t)(a / ps) * 8), 8);
		ok = e & (3ull << 62);
	}
	close(fd);
	return ok;
}

static bool gone(const char *path)
{
	return access(path, F_OK) && errno == ENOENT;
}

/* The agent's pid, from its state file. */
static pid_t agent_of(pid_t pid)
{
	char path[256], line[64];
	snprintf(path, sizeof(path), "%s/dime/attach-%d.state", xdg, (int)pid);
	FILE *f = fopen(path, "r");
	cr_assert(f, "no state file %s", path);
	int a = 0;
	while (fgets(line, sizeof(line), f))
		sscanf(line, "agent %d", &a);
	fclose(f);
	cr_assert_gt(a, 0);
	return a;
}

static void skip_unless_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("dime insert needs ptrace and userfaultfd rights: run as root");
}

TestSuite(attach, .init = control_dir_init, .timeout = 600);

Test(attach, insert_then_detach_keeps_every_byte)
{
	skip_unless_root();
	struct target t;
	target_start(&t);
	passes(&t, 1);
	int maps = proc_count(t.pid, "maps"), fds = proc_count(t.pid, "fd");
	int tasks = proc_count(t.pid, "task");
	struct run r = insert(t.pid, "64");
	cr_assert_eq(r.status, 0, "%s", r.out);
	cr_assert(strstr(r.out, "is under emulation"), "%s", r.out);
	cr_assert(strstr(r.out, "[heap]"), "the heap is not covered: %s", r.out);
	cr_assert(strstr(r.out, "main stack (grows down)"), "%s", r.out);
	cr_assert(strstr(r.out, "made remote now"), "%s", r.out);
	/* Whole passes over 2,200 pages with 64 local: remote faults. */
	passes(&t, 3);
	r = detach(t.pid);
	cr_assert_eq(r.status, 0, "%s", r.out);
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
	cr_assert_eq(proc_count(t.pid, "fd"), fds);
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
	struct run r = insert(t.pid, "64");
	cr_assert_eq(r.status, 0, "%s", r.out);
	passes(&t, 1);
	/* The child checks every byte, changes its copy and checks again;
	 * the parent checks its own copy did not change. */
	char line[128];
	kill(t.pid, SIGUSR1);
	cr_assert(wait_line(&t, "fork ok", line, sizeof(line)), "fork in the target failed");
	passes(&t, 2);
	kill(t.pid, SIGUSR1);
	cr_assert(wait_line(&t, "fork ok", line, sizeof(line)), "second fork failed");
	r = detach(t.pid);
	cr_assert_eq(r.status, 0, "%s", r.out);
	target_finish(&t);
}

Test(attach, mremap_and_madvise_in_target)
{
	skip_unless_root();
	struct target t;
	target_start(&t);
	struct run r = insert(t.pid, "64");
	cr_assert_eq(r.status, 0, "%s", r.out);
	passes(&t, 1);
	/* The large block moves (its remote pages with it) and a scratch
	 * block discarded with MADV_DONTNEED reads as zeroes. */
	char line[128];
	kill(t.pid, SIGUSR2);
	cr_assert(wait_line(&t, "remap ok", line, sizeof(line)), "mremap in the target failed");
	passes(&t, 2);
	r = detach(t.pid);
	cr_assert_eq(r.status, 0, "%s", r.out);
	target_finish(&t);
}

Test(attach, agent_exits_when_target_is_killed)
{
	skip_unless_root();
	struct target t;
	target_start(&t);
	struct run r = insert(t.pid, "64");
	cr_assert_eq(r.status, 0, "%s", r.out);
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
	int maps = proc_count(t.pid, "maps"), fds = proc_count(t.pid, "fd");
	int tasks = proc_count(t.pid, "task");
	struct run r = insert(t.pid, "64");
	cr_assert_eq(r.status, 0, "%s", r.out);
	passes(&t, 1);
	/* The target's remote pages stay registered: its next access to one
	 * waits (it does not read zeroes) until detach brings them back. */
	pid_t agent = agent_of(t.pid);
	kill(agent, SIGKILL);
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/%d", (int)agent);
	for (int i = 0; i < WAIT_S * 10 && !gone(proc); i++)
		usleep(100000);
	r = detach(t.pid);
	cr_assert_eq(r.status, 0, "%s", r.out);
	cr_assert(strstr(r.out, "recovering"), "%s", r.out);
	cr_assert(strstr(r.out, "all pages in place"), "%s", r.out);
	passes(&t, 2);
	cr_assert_eq(proc_count(t.pid, "task"), tasks);
	cr_assert_eq(proc_count(t.pid, "maps"), maps);
	cr_assert_eq(proc_count(t.pid, "fd"), fds);
	target_finish(&t);
}

/* Exit status 2, one line naming `token`. */
static void assert_refused(const struct run *r, const char *token)
{
	cr_assert_eq(r->status, 2, "status %d: %s", r->status, r->out);
	cr_assert(strstr(r->out, token), "'%s' not named in: %s", token, r->out);
	cr_assert_eq(strchr(r->out, '\n'), r->out + strlen(r->out) - 1, "more than a line: %s",
		     r->out);
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
	assert_refused(&r, "--instance");
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
	struct run r = insert(t.pid, "64");
	cr_assert_eq(r.status, 0, "%s", r.out);
	r = insert(t.pid, "64");
	assert_refused(&r, "under dime already");
	r = detach(t.pid);
	cr_assert_eq(r.status, 0, "%s", r.out);
	target_finish(&t);
}
