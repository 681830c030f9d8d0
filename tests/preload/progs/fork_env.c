/* fork() after setenv(), with environ on a remote page.
 *
 * setenv() moves environ (the array and the strings) into the heap, which
 * is emulated. dime's set-up in a fork()ed child read its own settings
 * from the environment: once before the child's memory was registered
 * again (the remote page was mapped as zeroes for good: the child saw an
 * empty environment) and once before its handlers ran (the child hung).
 * Each round evicts everything, forks, and has the child find a variable. */
#include "common.h"

#include <sys/wait.h>

enum { ROUNDS = 10, VARS = 50 };

int main(void)
{
	prog_name = "fork_env";
	char name[32];
	for (int i = 0; i < VARS; i++) {
		snprintf(name, sizeof(name), "DIME_TEST_VAR_%d", i);
		if (setenv(name, "value", 1))
			fail("setenv: %s", strerror(errno));
	}
	char *sweep = malloc(SWEEP_BYTES);
	if (!sweep)
		fail("malloc");
	for (int round = 0; round < ROUNDS; round++) {
		for (size_t i = 0; i < SWEEP_BYTES; i += PAGE)
			sweep[i] = 'x'; /* environ is remote now */
		pid_t pid = fork();
		if (pid < 0)
			fail("fork: %s", strerror(errno));
		if (pid == 0) {
			const char *v = getenv("DIME_TEST_VAR_7");
			_exit(v && strcmp(v, "value") == 0 ? 0 : 3);
		}
		int st;
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
			fail("round %d: child failed (status %#x)", round, st);
	}
	free(sweep);
	return 0;
}
