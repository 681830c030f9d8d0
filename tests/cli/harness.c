/* Running build/dime from the CLI tests; see harness.h. */
#define _GNU_SOURCE
#include "harness.h"

#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>

extern char **environ;

const char *build_file(const char *name)
{
	char *p;
	cr_assert_neq(asprintf(&p, "%s/%s", test_build_dir(), name), -1);
	return p;
}

const char *dime_path(void)
{
	return build_file("dime");
}

/* The test's environment under `env`, which wins; the floor warning off so
 * that stderr holds only what a test expects. */
static char **make_env(const char *const env[])
{
	size_t n = 0, k = 0, extra = 0;
	while (environ[n])
		n++;
	while (env && env[extra])
		extra++;
	char **out = calloc(n + extra + 2, sizeof(*out));
	cr_assert(out);
	for (size_t i = 0; i < extra; i++)
		out[k++] = (char *)env[i];
	out[k++] = "DIME_QUIET_FLOOR=1";
	for (size_t i = 0; i < n; i++) {
		size_t len = strcspn(environ[i], "=");
		bool shadowed = !strncmp(environ[i], "DIME_QUIET_FLOOR=", 17);
		for (size_t j = 0; j < extra && !shadowed; j++)
			shadowed = !strncmp(environ[i], env[j], len) && env[j][len] == '=';
		if (!shadowed)
			out[k++] = environ[i];
	}
	return out;
}

/* The child's signals as a shell would leave them, whatever Criterion did. */
static void child_signals(void)
{
	const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static pid_t start(const char *exe, const char *const argv[], const char *const env[],
		   int out, int err)
{
	char **envp = make_env(env);
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		dup2(null, 0);
		if (out >= 0)
			dup2(out, 1);
		if (err >= 0)
			dup2(err, 2);
		child_signals();
		execve(exe, (char *const *)argv, envp);
		dprintf(2, "test: cannot execute %s: %s\n", exe, strerror(errno));
		_exit(126);
	}
	free(envp);
	return pid;
}

int dime_wait(pid_t pid, int seconds)
{
	int status;
	for (long waited_ms = 0;; waited_ms += 5) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		cr_assert(w == 0 || errno == EINTR, "waitpid: %s", strerror(errno));
		if (waited_ms >= seconds * 1000L) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 5000000 }, NULL);
	}
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

static char *slurp(int fd)
{
	struct stat st;
	cr_assert(!fstat(fd, &st));
	char *buf = malloc((size_t)st.st_size + 1);
	cr_assert(buf);
	ssize_t n = pread(fd, buf, (size_t)st.st_size, 0);
	cr_assert_eq(n, st.st_size);
	buf[n] = 0;
	close(fd);
	return buf;
}

struct dime_result run_exe(const char *exe, const char *const argv[], const char *const env[])
{
	int out = memfd_create("out", MFD_CLOEXEC), err = memfd_create("err", MFD_CLOEXEC);
	cr_assert(out >= 0 && err >= 0);
	pid_t pid = start(exe ? exe : dime_path(), argv, env, out, err);
	struct dime_result r = { .status = dime_wait(pid, 30) };
	r.out = slurp(out);
	r.err = slurp(err);
	cr_assert_neq(r.status, -1, "%s timed out; stderr: %s", argv[1], r.err);
	return r;
}

pid_t dime_start(const char *const argv[])
{
	return start(dime_path(), argv, NULL, -1, -1);
}

pid_t dime_start_env(const char *const argv[], const char *const env[])
{
	return start(dime_path(), argv, env, -1, -1);
}

void dime_result_free(struct dime_result *r)
{
	free(r->out);
	free(r->err);
}

int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		if (*s == '\n' || !s[1])
			n++;
	return n;
}

static char **dirs;
static size_t ndirs;

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void remove_dirs(void)
{
	for (size_t i = 0; i < ndirs; i++)
		nftw(dirs[i], remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

char *temp_path(const char *name)
{
	char *dir = strdup("/tmp/dime-cli-test-XXXXXX");
	cr_assert(dir && mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	if (!ndirs)
		atexit(remove_dirs);
	dirs = realloc(dirs, (ndirs + 1) * sizeof(*dirs));
	cr_assert(dirs);
	dirs[ndirs++] = dir;
	char *p;
	cr_assert_neq(asprintf(&p, "%s/%s", dir, name), -1);
	return p;
}

void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert(f, "%s: %s", path, strerror(errno));
	fputs(text, f);
	cr_assert(!fclose(f));
}

char *read_file_text(const char *path)
{
	int fd = open(path, O_RDONLY);
	cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
	return slurp(fd);
}

bool file_exists(const char *path)
{
	return !access(path, F_OK);
}

void require_preload(void)
{
	const char *p = build_file("libdime-preload.so");
	if (!file_exists(p))
		cr_skip_test("%s is not built yet", p);
}

void assert_refused(const struct dime_result *r, const char *token)
{
	cr_assert_eq(r->status, 2, "status %d, stderr: %s", r->status, r->err);
	cr_assert_eq(count_lines(r->err), 1, "stderr is not one line: %s", r->err);
	size_t n = strlen(r->err);
	cr_assert(n && r->err[n - 1] == '\n', "stderr line unterminated: %s", r->err);
	cr_assert(!strncmp(r->err, "dime", 4), "stderr: %s", r->err);
	cr_assert(strstr(r->err, token), "stderr does not name '%s': %s", token, r->err);
	cr_assert_str_empty(r->out);
}

/* A recursive-descent JSON checker: enough to trust the file's shape. */
static const char *json_value(const char *p, int depth);

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static const char *json_string_end(const char *p)
{
	if (*p++ != '"')
		return NULL;
	for (; *p != '"'; p++) {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p != '\\')
			continue;
		p++;
		if (*p == 'u') {
			for (int i = 1; i <= 4; i++)
				if (!isxdigit((unsigned char)p[i]))
					return NULL;
			p += 4;
		} else if (!*p || !strchr("\"\\/bfnrt", *p)) {
			return NULL;
		}
	}
	return p + 1;
}

static const char *digits(const char *p)
{
	if (!isdigit((unsigned char)*p))
		return NULL;
	while (isdigit((unsigned char)*p))
		p++;
	return p;
}

static const char *json_number_end(const char *p)
{
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (!(p = digits(p)))
		return NULL;
	if (*p == '.' && !(p = digits(p + 1)))
		return NULL;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		p = digits(p);
	}
	return p;
}

static const char *json_container(const char *p, int depth, char close, bool keyed)
{
	p = skip_ws(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (keyed) {
			if (!(p = json_string_end(skip_ws(p))))
				return NULL;
			p = skip_ws(p);
			if (*p++ != ':')
				return NULL;
		}
		if (!(p = json_value(p, depth + 1)))
			return NULL;
		p = skip_ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

static const char *json_value(const char *p, int depth)
{
	if (depth > 32)
		return NULL;
	p = skip_ws(p);
	switch (*p) {
	case '{':
		return json_container(p, depth, '}', true);
	case '[':
		return json_container(p, depth, ']', false);
	case '"':
		return json_string_end(p);
	case 't':
		return strncmp(p, "true", 4) ? NULL : p + 4;
	case 'f':
		return strncmp(p, "false", 5) ? NULL : p + 5;
	case 'n':
		return strncmp(p, "null", 4) ? NULL : p + 4;
	default:
		return json_number_end(p);
	}
}

bool json_valid(const char *text)
{
	const char *end = json_value(text, 0);
	return end && !*skip_ws(end);
}

static const char *json_after_key(const char *text, const char *key)
{
	char quoted[128];
	snprintf(quoted, sizeof(quoted), "\"%s\"", key);
	const char *p = strstr(text, quoted);
	if (!p)
		return NULL;
	p = skip_ws(p + strlen(quoted));
	return *p == ':' ? skip_ws(p + 1) : NULL;
}

bool json_u64(const char *text, const char *key, uint64_t *out)
{
	const char *p = json_after_key(text, key);
	if (!p || !isdigit((unsigned char)*p))
		return false;
	char *end;
	errno = 0;
	*out = strtoull(p, &end, 10);
	return !errno && (*end == ',' || *end == '}' || isspace((unsigned char)*end));
}

bool json_str(const char *text, const char *key, char *buf, size_t size)
{
	const char *p = json_after_key(text, key);
	const char *end = p ? json_string_end(p) : NULL;
	if (!end || (size_t)(end - p - 2) >= size)
		return false;
	memcpy(buf, p + 1, (size_t)(end - p - 2));
	buf[end - p - 2] = 0;
	return true;
}
