/* See harness.h. */
#define _GNU_SOURCE
#include "harness.h"

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

char *xdg; /* a control directory of the test's own */

void control_dir_init(void)
{
	char tmpl[] = "/tmp/dime-attach-test-XXXXXX";
	char *d = mkdtemp(tmpl);
	cr_assert(d);
	xdg = strdup(d);
}

/* The next line of the target's output starting with `prefix`, into buf;
 * false at end of output or after WAIT_S seconds. */
bool wait_line(struct target *t, const char *prefix, char *buf, size_t size)
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

void target_start(struct target *t)
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
void passes(struct target *t, int n)
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
void target_finish(struct target *t)
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

/* In a forked child: execs dime with args (NULL-terminated) in the tests'
 * own control directory, $XDG_RUNTIME_DIR/dime whatever the environment
 * says, stdout and stderr to fd `out`. */
static void exec_dime(const char *const args[], int out)
{
	char *exe, *env;
	if (asprintf(&exe, "%s/dime", test_build_dir()) < 0 ||
	    asprintf(&env, "XDG_RUNTIME_DIR=%s", xdg) < 0)
		_exit(127);
	putenv(env);
	unsetenv("DIME_CONTROL_DIR");
	dup2(out, 1);
	dup2(out, 2);
	close(out);
	const char *argv[32] = { "dime" };
	for (int i = 0; args[i] && i < 30; i++)
		argv[i + 1] = args[i];
	execv(exe, (char *const *)argv);
	_exit(127);
}

/* Runs dime with args (NULL-terminated), stdout and stderr together. */
struct run dime(const char *const args[])
{
	struct run r = { 0 };
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t c = fork();
	cr_assert_geq(c, 0);
	if (c == 0) {
		close(p[0]);
		exec_dime(args, p[1]);
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

pid_t dime_background(const char *const args[])
{
	pid_t c = fork();
	cr_assert_geq(c, 0);
	if (c == 0)
		exec_dime(args, open("/dev/null", O_RDWR));
	return c;
}

struct run insert(pid_t pid, const char *local_pages)
{
	char spid[16];
	snprintf(spid, sizeof(spid), "%d", (int)pid);
	return dime((const char *[]){ "insert", "-p", spid, "--local-pages", local_pages,
				      "--latency-ns", "0", NULL });
}

struct run detach(pid_t pid)
{
	char spid[16];
	snprintf(spid, sizeof(spid), "%d", (int)pid);
	return dime((const char *[]){ "detach", "-p", spid, NULL });
}

uint64_t stat_of(const char *out, const char *key)
{
	const char *p = strstr(out, key);
	cr_assert(p, "no %s in: %s", key, out);
	return strtoull(p + strlen(key), NULL, 10);
}

/* Lines of /proc/PID/FILE, or entries of the directory /proc/PID/FILE. */
int proc_count(pid_t pid, const char *what)
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

/* The open descriptors of pid: their number, and "FD -> TARGET" of each
 * into buf, for a failure message that says which one differs. */
int proc_fds(pid_t pid, char *buf, size_t size)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	cr_assert(d, "%s", path);
	int n = 0;
	size_t len = 0;
	buf[0] = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		n++;
		char link[320], what[128];
		snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
		ssize_t k = readlink(link, what, sizeof(what) - 1);
		what[k > 0 ? k : 0] = 0;
		int w = snprintf(buf + len, size - len, "%s%s -> %s", len ? ", " : "", e->d_name,
				 k > 0 ? what : "(closed)");
		if (w > 0 && (size_t)w < size - len)
			len += (size_t)w;
	}
	closedir(d);
	return n;
}

/* Whether every page of [addr, addr+len) of pid has bytes (pagemap). */
bool all_present(pid_t pid, uintptr_t addr, size_t len)
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

bool gone(const char *path)
{
	return access(path, F_OK) && errno == ENOENT;
}

/* The agent's pid, from its state file. */
pid_t agent_of(pid_t pid)
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

void skip_unless_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("dime insert needs ptrace and userfaultfd rights: run as root");
}

/* Exit status 2, one line naming `token`. */
void assert_refused(const struct run *r, const char *token)
{
	cr_assert_eq(r->status, 2, "status %d: %s", r->status, r->out);
	cr_assert(strstr(r->out, token), "'%s' not named in: %s", token, r->out);
	cr_assert_eq(strchr(r->out, '\n'), r->out + strlen(r->out) - 1, "more than a line: %s",
		     r->out);
}

struct run insert_ok(pid_t pid, const char *local_pages)
{
	struct run r = insert(pid, local_pages);
	cr_assert_eq(r.status, 0, "dime insert: %s", r.out);
	return r;
}

struct run detach_ok(pid_t pid)
{
	struct run r = detach(pid);
	cr_assert_eq(r.status, 0, "dime detach: %s", r.out);
	return r;
}

void kill_agent(pid_t pid)
{
	pid_t agent = agent_of(pid);
	kill(agent, SIGKILL);
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/%d", (int)agent);
	for (int i = 0; i < WAIT_S * 10 && !gone(proc); i++)
		usleep(100000);
}
