/* Memory that comes and goes in several threads under heavy eviction,
 * every byte checked: each thread walks a window through its own mapping
 * (fill, evict, read back, discard) and all of them read one shared
 * array from different starts.
 *
 * What it is after: page-outs and page-ins that meet discards in the same
 * page tables, and faults of several threads on one page. On 6.18 a
 * UFFDIO_MOVE can answer EEXIST or EINVAL for a page it has moved when a
 * page table is freed under it (src/engine/pageio.c, page_left()); dime
 * once took such a page for not moved, or dropped its slot as a stale
 * copy, and the page read back as zeroes (about one run of mmap's
 * "stress" in 30 then). A stale fault on a local page once mapped zeroes
 * over a page that had just left (fault.c). One run of this program does
 * tens of those runs' page-outs; the kernel's answer stays rare.
 * usage: churn [ROUNDS] */
#include "common.h"

#include <pthread.h>

enum { NTHREADS = 4 };

static unsigned rounds = 200;

/* Each thread walks a window of pages through its own 4 MiB mapping:
 * fills the window, sweeps (the window leaves), reads back the window
 * before (page-ins), and discards the one before that (MADV_DONTNEED:
 * its slots in the store are emptied, and the kernel frees page tables
 * left empty), so that discards meet page-outs and page-ins of their
 * neighbours in the same 2 MiB, done by the handlers of every thread's
 * faults. */
enum { WINDOW = 16, AREA = 1024, SHARED = 48 };

/* Read by every thread, each from its own start: several threads fault on
 * one remote page at once, and the handler of the second fault finds the
 * page already brought in (and maybe on its way out again). */
static uint8_t *shared;

static void *churn_main(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	struct sweeper own = { 0 };
	uint8_t *area = mmap(NULL, AREA * PAGE, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(area != MAP_FAILED, "mmap: %s", strerror(errno));
	need_emulated(area, "an anonymous mapping");
	size_t win = WINDOW * PAGE, nwin = AREA / WINDOW;
	for (unsigned r = 0; r < rounds; r++) {
		uint8_t *w = area + (r % nwin) * win;
		unsigned seed = id * 100000 + r;
		verify_zero(w, win, "churn: a discarded window");
		fill(w, win, seed);
		sweep_pages(&own, 40);
		if (r >= 1) {
			uint8_t *prev = area + ((r - 1) % nwin) * win;
			verify(prev, win, seed - 1, "churn: a window evicted and read back");
		}
		if (r >= 2) {
			uint8_t *old = area + ((r - 2) % nwin) * win;
			verify(old, win, seed - 2, "churn: a window before its discard");
			SYS_OK(madvise(old, win, MADV_DONTNEED), "MADV_DONTNEED");
		}
		size_t at = ((id * SHARED / NTHREADS + r) % SHARED) * PAGE;
		verify_at(shared + at, SHARED * PAGE - at, at, 7, "churn: shared pages");
		verify(shared, at, 7, "churn: shared pages");
	}
	SYS_OK(munmap(area, AREA * PAGE), "munmap");
	return NULL;
}

int main(int argc, char **argv)
{
	prog_name = "churn";
	if (argc > 1)
		rounds = (unsigned)atoi(argv[1]);
	shared = heap_pages(SHARED * PAGE);
	fill(shared, SHARED * PAGE, 7);
	pthread_t t[NTHREADS];
	for (unsigned i = 0; i < NTHREADS; i++)
		CHECK(pthread_create(&t[i], NULL, churn_main, (void *)(uintptr_t)i) == 0,
		      "pthread_create");
	for (unsigned i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	return 0;
}
