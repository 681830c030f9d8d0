/* exec'd children are emulated: fork+execve, posix_spawn and system(), the
 * first with argv and envp built on the heap and made remote, so that the
 * kernel reads them from remote pages.
 * The helper `emulated` is looked for next to this program. */
#include "common.h"

#include <libgen.h>
#include <limits.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

static char helper[PATH_MAX];
static struct sweeper sw;

static char arg_char(size_t i)
{
	return (char)('a' + pat(i, 7) % 26);
}

static void wait_ok(pid_t pid, const char *what)
{
	int st;
	if (waitpid(pid, &st, 0) != pid)
		fail("waitpid(%s): %s", what, strerror(errno));
	if (WIFSIGNALED(st))
		fail("%s was killed by signal %d", what, WTERMSIG(st));
	if (WEXITSTATUS(st))
		fail("%s exited with status %d", what, WEXITSTATUS(st));
}

static char *heap_strdup(const char *s)
{
	char *d = strdup(s);
	CHECK(d, "strdup");
	need_emulated(d, "strdup");
	return d;
}

static void fork_exec(void)
{
	enum { ARG = 3 * PAGE + 123 };
	char lenbuf[32];
	snprintf(lenbuf, sizeof(lenbuf), "%d", ARG);
	char **argv = calloc(4, sizeof(char *));
	char *big = heap_pages(ARG + 1);
	for (size_t i = 0; i < ARG; i++)
		big[i] = arg_char(i);
	big[ARG] = 0;
	argv[0] = heap_strdup("emulated");
	argv[1] = heap_strdup(lenbuf);
	argv[2] = big;
	size_t n = 0;
	while (environ[n])
		n++;
	char **envp = calloc(n + 1, sizeof(char *));
	CHECK(argv && envp, "calloc");
	for (size_t i = 0; i < n; i++)
		envp[i] = heap_strdup(environ[i]);
	char *path = heap_strdup(helper);

	pid_t pid = fork();
	SYS_OK(pid, "fork");
	if (pid == 0) {
		prog_name = "exec(child)";
		/* The pointers, strings and path: all remote for execve. */
		evict_all(&sw);
		need_remote(&sw, big, ARG, "execve argument");
		need_remote(&sw, argv, 4 * sizeof(char *), "execve argv array");
		execve(path, argv, envp);
		fail("execve %s: %s", path, strerror(errno));
	}
	wait_ok(pid, "fork+execve of the helper");
	for (size_t i = 0; i < n; i++)
		free(envp[i]);
	free(envp);
	free(argv[0]);
	free(argv[1]);
	free(argv);
	free(big);
	free(path);
}

static void spawn(void)
{
	char *argv[] = { "emulated", NULL };
	pid_t pid;
	evict_all(&sw);
	int err = posix_spawn(&pid, helper, NULL, NULL, argv, environ);
	CHECK(!err, "posix_spawn %s: %s", helper, strerror(err));
	wait_ok(pid, "posix_spawn of the helper");
}

static void via_system(void)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "exec '%s'", helper);
	int st = system(cmd);
	CHECK(st == 0, "system(\"%s\") returned %#x", cmd, st);
}

int main(void)
{
	prog_name = "exec";
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	SYS_OK(n, "readlink /proc/self/exe");
	self[n] = 0;
	snprintf(helper, sizeof(helper), "%s/emulated", dirname(self));
	CHECK(access(helper, X_OK) == 0, "helper %s: %s", helper, strerror(errno));

	fork_exec();
	spawn();
	via_system();
	return 0;
}
