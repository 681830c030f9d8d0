/* A hot set touched every round between new cold pages: the pattern on
 * which a policy with access information (lru, clock) keeps the hot set
 * local and FIFO does not. Cold pages are touched once (first touches),
 * so the run's remote faults are re-fetches of hot pages.
 * usage: hotcold HOT COLD_PER_ROUND ROUNDS [READYFILE GOFILE]
 * With READYFILE and GOFILE, creates READYFILE once its hot set is
 * touched and waits for GOFILE before the rounds (two programs then run
 * their rounds side by side). Exits 0, or 1 if a byte was wrong. */
#include "common.h"

#include <fcntl.h>

int main(int argc, char **argv)
{
	prog_name = "hotcold";
	CHECK(argc == 4 || argc == 6, "usage: hotcold HOT COLD_PER_ROUND ROUNDS [READY GO]");
	size_t hot = strtoull(argv[1], NULL, 10), cold = strtoull(argv[2], NULL, 10);
	size_t rounds = strtoull(argv[3], NULL, 10);
	CHECK(hot > 0 && rounds > 0, "bad arguments");
	volatile uint8_t *h = heap_pages(hot * PAGE);
	volatile uint8_t *c = heap_pages((cold * rounds + 1) * PAGE);
	for (size_t i = 0; i < hot; i++)
		h[i * PAGE] = 0;
	if (argc == 6) {
		close(SYS_OK(open(argv[4], O_CREAT | O_WRONLY, 0600), "creating READYFILE"));
		while (access(argv[5], F_OK))
			usleep(1000);
	}
	size_t next = 0;
	for (size_t r = 0; r < rounds; r++) {
		for (size_t i = 0; i < hot; i++)
			h[i * PAGE] += 1;
		for (size_t k = 0; k < cold; k++)
			c[next++ * PAGE] = 1;
	}
	for (size_t i = 0; i < hot; i++)
		CHECK(h[i * PAGE] == (uint8_t)rounds, "hot page %zu is %u, want %u", i,
		      (unsigned)h[i * PAGE], (unsigned)(uint8_t)rounds);
	return 0;
}
