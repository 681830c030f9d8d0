/* fork() in a threaded program whose stdio FILEs are on remote pages.
 *
 * In the child, glibc resets the lock of every FILE before any fork
 * handler runs, so before dime can serve faults there: a FILE on a remote
 * page would read as zeroes and the child crash. dime pins those pages
 * local across the fork. Each round evicts everything, forks, and has the
 * child write through every FILE; the parent then reads the files back. */
#include "common.h"

#include <pthread.h>
#include <sys/wait.h>

enum { FILES = 64, ROUNDS = 20 };

static void *idle(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

int main(void)
{
	prog_name = "fork_stdio";
	pthread_t t;
	/* A second thread: glibc resets FILE locks only in a threaded fork. */
	if (pthread_create(&t, NULL, idle, NULL))
		fail("pthread_create");
	FILE *f[FILES];
	for (int i = 0; i < FILES; i++) {
		f[i] = tmpfile();
		if (!f[i])
			fail("tmpfile: %s", strerror(errno));
		fprintf(f[i], "parent %d\n", i);
	}
	char *sweep = malloc(SWEEP_BYTES);
	if (!sweep)
		fail("malloc");
	for (int round = 0; round < ROUNDS; round++) {
		for (size_t i = 0; i < SWEEP_BYTES; i += PAGE)
			sweep[i] = (char)round; /* every FILE is remote now */
		fflush(NULL);
		pid_t pid = fork();
		if (pid < 0)
			fail("fork: %s", strerror(errno));
		if (pid == 0) {
			for (int i = 0; i < FILES; i++)
				if (fprintf(f[i], "child %d %d\n", round, i) < 0 || fflush(f[i]))
					_exit(3);
			_exit(0);
		}
		int st;
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
			fail("round %d: child failed (status %#x)", round, st);
	}
	for (int i = 0; i < FILES; i++) {
		char line[64], want[64];
		rewind(f[i]);
		snprintf(want, sizeof(want), "parent %d\n", i);
		if (!fgets(line, sizeof(line), f[i]) || strcmp(line, want))
			fail("file %d: first line '%s'", i, line);
		int lines = 1;
		while (fgets(line, sizeof(line), f[i]))
			lines++;
		if (lines != 1 + ROUNDS)
			fail("file %d: %d lines, want %d", i, lines, 1 + ROUNDS);
	}
	return 0;
}
