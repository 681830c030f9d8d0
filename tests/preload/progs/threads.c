/* Loads and stores from several threads under heavy eviction: each thread
 * rewrites and checks its own data every round, and all of them add into
 * a shared array, so pages move in and out while other threads use them.
 * The threads meet at a pthread barrier in the heap: its futex waits on a
 * word that may be remote. In signal mode the kernel's read of a remote
 * word fails with EFAULT and glibc aborts ("The futex facility returned an
 * unexpected error code"), a limit README states; `static-barrier` puts
 * the barrier in the program's data instead, for that mode.
 * usage: threads [ROUNDS] [static-barrier] */
#include "common.h"

#include <pthread.h>
#include <stdatomic.h>

enum { NTHREADS = 4, OWN_PAGES = 128, SHARED_PAGES = 32 };
#define SHARED_WORDS (SHARED_PAGES * PAGE / sizeof(uint64_t))

static int rounds = 20;
static _Atomic uint64_t *shared;
static pthread_barrier_t *barrier; /* on the heap, unless static-barrier */
static pthread_barrier_t static_barrier;

static void *thread_main(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	size_t len = OWN_PAGES * PAGE;
	/* Allocated by the thread: its own mimalloc heap. */
	uint8_t *own = malloc(len);
	CHECK(own, "thread %u: malloc failed", id);
	need_emulated(own, "a thread's malloc block");
	fill(own, len, id * 1000);
	for (int r = 0; r < rounds; r++) {
		pthread_barrier_wait(barrier);
		/* Every page of `own` was last touched a whole round ago, by
		 * this thread only: after the other threads' traffic most are
		 * remote. */
		unsigned seed = id * 1000 + (unsigned)r;
		verify(own, len, seed, "a thread's own data");
		fill(own, len, seed + 1);
		/* Each thread walks the shared array from a different start. */
		for (size_t k = 0; k < SHARED_WORDS; k += 64) {
			size_t i = (k + id * SHARED_WORDS / NTHREADS) % SHARED_WORDS;
			atomic_fetch_add_explicit(&shared[i], 1, memory_order_relaxed);
		}
	}
	verify(own, len, id * 1000 + (unsigned)rounds, "a thread's own data at the end");
	free(own);
	return NULL;
}

int main(int argc, char **argv)
{
	prog_name = "threads";
	if (argc > 1)
		rounds = atoi(argv[1]);
	bool heap_barrier = !(argc > 2 && !strcmp(argv[2], "static-barrier"));
	shared = heap_pages(SHARED_PAGES * PAGE);
	for (size_t i = 0; i < SHARED_WORDS; i++)
		atomic_store_explicit(&shared[i], 0, memory_order_relaxed);
	barrier = heap_barrier ? malloc(sizeof(*barrier)) : &static_barrier;
	CHECK(barrier, "malloc");
	pthread_barrier_init(barrier, NULL, NTHREADS);

	pthread_t t[NTHREADS];
	for (unsigned i = 0; i < NTHREADS; i++)
		CHECK(pthread_create(&t[i], NULL, thread_main, (void *)(uintptr_t)i) == 0,
		      "pthread_create");
	for (unsigned i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);

	for (size_t i = 0; i < SHARED_WORDS; i++) {
		uint64_t want = i % 64 == 0 ? (uint64_t)NTHREADS * (uint64_t)rounds : 0;
		uint64_t got = atomic_load_explicit(&shared[i], memory_order_relaxed);
		CHECK(got == want, "shared word %zu is %llu, want %llu", i, (unsigned long long)got,
		      (unsigned long long)want);
	}
	pthread_barrier_destroy(barrier);
	if (heap_barrier)
		free(barrier);
	free((void *)shared);
	return 0;
}
