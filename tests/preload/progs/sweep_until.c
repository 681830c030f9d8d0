/* Sweeps a heap buffer cyclically, checking every byte, until a file
 * exists: a running program that keeps faulting, for the control-plane
 * tests (live parameter changes, shared budgets, kill -9).
 * usage: sweep_until PAGES STOPFILE [READYFILE [fork]]
 * READYFILE is created once the buffer is filled. With "fork", a forked
 * child sweeps its copy too. Exits 0 when STOPFILE exists, 1 if a byte was
 * wrong (in either process). */
#include "common.h"

#include <fcntl.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
	prog_name = "sweep_until";
	CHECK(argc >= 3, "usage: sweep_until PAGES STOPFILE [READYFILE]");
	size_t pages = strtoull(argv[1], NULL, 10), len = pages * PAGE;
	CHECK(pages > 0, "bad PAGES '%s'", argv[1]);
	uint8_t *b = heap_pages(len);
	fill(b, len, 3);
	pid_t child = -1;
	if (argc > 4 && !strcmp(argv[4], "fork"))
		child = SYS_OK(fork(), "fork");
	if (argc > 3 && child)
		close(SYS_OK(open(argv[3], O_CREAT | O_WRONLY, 0600), "creating READYFILE"));
	while (access(argv[2], F_OK)) {
		verify(b, len, 3, "the swept buffer");
		/* Writes too, so that evicted pages are dirty; the byte comes back. */
		for (size_t i = 0; i < len; i += PAGE)
			b[i] ^= 0xff;
		for (size_t i = 0; i < len; i += PAGE)
			b[i] ^= 0xff;
	}
	verify(b, len, 3, "the swept buffer");
	free(b);
	if (child > 0) {
		int st;
		SYS_OK(waitpid(child, &st, 0), "waitpid");
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the forked child failed");
	}
	return 0;
}
