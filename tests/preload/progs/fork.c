/* fork(): the child gets its own copy of emulated memory and is emulated
 * itself; the parent forks while another of its threads keeps evicting, so
 * pages are in flight at the moment of the fork. Then a nested fork, and
 * a shell pipeline through system() and popen() (exec'd and forked
 * processes with the preload).
 * usage: fork [noshell]   (noshell: skip the shell, for signal mode) */
#include "common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

enum { BUF_PAGES = 256, FORKS = 6 };
#define LEN ((size_t)BUF_PAGES * PAGE)

static uint8_t *buf, *other;
static _Atomic int stop_evictor;
static struct sweeper main_sw;

static void *evictor(void *arg)
{
	(void)arg;
	struct sweeper sw = { 0 };
	while (!atomic_load(&stop_evictor))
		sweep_pages(&sw, 32);
	return NULL;
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

/* In a child: its copy is right, it can rewrite all of it, evict it and
 * read it back, and it is emulated with its own budget. */
static void child_work(unsigned inherited_seed, unsigned own_seed, const char *who)
{
	void *p = malloc(100);
	need_emulated(p, "malloc in a fork()ed child");
	free(p);
	verify(buf, LEN, inherited_seed, who);
	fill(buf, LEN, own_seed);
	evict_all(&main_sw);
	need_remote(&main_sw, buf, LEN, "the child's buffer");
	verify(buf, LEN, own_seed, who);
}

static void one_fork(int iter)
{
	int sync[2];
	SYS_OK(pipe(sync), "pipe");
	pid_t pid = fork();
	SYS_OK(pid, "fork");
	if (pid == 0) {
		prog_name = "fork(child)";
		close(sync[1]);
		child_work(1, 100 + (unsigned)iter, "fork()ed child's copy");
		/* The parent rewrites `other` once we are running: its writes
		 * must stay invisible here. */
		char c;
		CHECK(read(sync[0], &c, 1) == 1, "read(sync): %s", strerror(errno));
		verify(other, LEN, 2, "child's copy of a buffer the parent rewrote");
		if (iter == 0) {
			pid_t g = fork();
			SYS_OK(g, "nested fork");
			if (g == 0) {
				prog_name = "fork(grandchild)";
				child_work(100, 200, "nested fork()ed child's copy");
				_exit(0);
			}
			wait_ok(g, "the nested child");
			verify(buf, LEN, 100, "child's buffer after the nested child rewrote its copy");
		}
		_exit(0);
	}
	close(sync[0]);
	fill(other, LEN, 3);
	CHECK(write(sync[1], "x", 1) == 1, "write(sync): %s", strerror(errno));
	close(sync[1]);
	wait_ok(pid, "the fork()ed child");
	verify(buf, LEN, 1, "parent's buffer after the child rewrote its copy");
	verify(other, LEN, 3, "parent's rewritten buffer");
	fill(other, LEN, 2);
}

static void shell(void)
{
	char path[] = "/tmp/dime-fork-XXXXXX";
	int fd = (int)SYS_OK(mkstemp(path), "mkstemp");
	close(fd);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "sh -c 'seq 1 100000 | tail -1' > %s", path);
	int st = system(cmd);
	CHECK(st == 0, "system(\"%s\") returned %#x", cmd, st);
	FILE *f = fopen(path, "r");
	CHECK(f, "fopen %s", path);
	char line[64] = "";
	CHECK(fgets(line, sizeof(line), f), "no output from the pipeline");
	fclose(f);
	unlink(path);
	CHECK(strcmp(line, "100000\n") == 0, "system(): the pipeline printed '%s'", line);

	f = popen("seq 1 100000 | tail -1", "r");
	CHECK(f, "popen: %s", strerror(errno));
	CHECK(fgets(line, sizeof(line), f), "popen: no output");
	st = pclose(f);
	CHECK(st == 0 && strcmp(line, "100000\n") == 0, "popen(): status %#x, output '%s'", st,
	      line);
}

int main(int argc, char **argv)
{
	prog_name = "fork";
	bool noshell = argc > 1 && !strcmp(argv[1], "noshell");
	buf = heap_pages(LEN);
	other = heap_pages(LEN);
	fill(buf, LEN, 1);
	fill(other, LEN, 2);

	pthread_t t;
	CHECK(pthread_create(&t, NULL, evictor, NULL) == 0, "pthread_create");
	for (int i = 0; i < FORKS; i++)
		one_fork(i);
	atomic_store(&stop_evictor, 1);
	pthread_join(t, NULL);
	verify(buf, LEN, 1, "parent's buffer at the end");

	if (!noshell)
		shell();
	return 0;
}
