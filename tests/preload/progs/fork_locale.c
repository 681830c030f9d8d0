/* fork() after setlocale(), with the locale's data on a remote page.
 *
 * setlocale() loads the locale's data into the heap, which is emulated.
 * In a fork()ed child dime starts its handler threads, and glibc's start
 * of every thread reads that data (__ctype_init) before dime's code runs:
 * with the page remote and no handler running yet, the child hung (or,
 * had the thread run before the child's memory was registered again,
 * read zeroes). Each round evicts everything, forks, and has the child
 * classify characters and start a thread of its own. */
#include "common.h"

#include <ctype.h>
#include <locale.h>
#include <pthread.h>
#include <sys/wait.h>

enum { ROUNDS = 20 };

static void *classify(void *arg)
{
	return (void *)(intptr_t)(isalpha('a') && !isalpha('1') && toupper('q') == 'Q' &&
				  *(const char *)arg == 'x');
}

int main(void)
{
	prog_name = "fork_locale";
	if (!setlocale(LC_ALL, "C.UTF-8"))
		fail("setlocale C.UTF-8");
	char *sweep = malloc(SWEEP_BYTES);
	if (!sweep)
		fail("malloc");
	for (int round = 0; round < ROUNDS; round++) {
		for (size_t i = 0; i < SWEEP_BYTES; i += PAGE)
			sweep[i] = 'x'; /* the locale's data is remote now */
		pid_t pid = fork();
		if (pid < 0)
			fail("fork: %s", strerror(errno));
		if (pid == 0) {
			pthread_t t;
			void *ok = NULL;
			if (pthread_create(&t, NULL, classify, sweep) || pthread_join(t, &ok) || !ok)
				_exit(3);
			_exit(classify(sweep + PAGE) ? 0 : 4);
		}
		int st;
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
			fail("round %d: child failed (status %#x)", round, st);
	}
	free(sweep);
	return 0;
}
