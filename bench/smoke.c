/* Correctness smoke run before the measurements: distinct bytes on four
 * times as many pages as the local budget, re-read, checked and rewritten
 * several times, in both modes, by one thread and by two (each on its own
 * half, itself twice the budget, so every access is remote however the
 * threads interleave). Exits non-zero on a wrong byte or count. */
#define _GNU_SOURCE
#include <dime.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PAGES = 512, BUDGET = 128, PASSES = 4, PAGE = 4096 };

struct job {
	uint8_t *mem;
	size_t first, n; /* pages of this thread */
	unsigned seed;
	int bad;
};

static uint8_t pattern(size_t pg, size_t i, unsigned seed)
{
	return (uint8_t)(pg * 131 + i * 7 + seed + (i >> 8));
}

static void *run(void *arg)
{
	struct job *j = arg;
	for (size_t p = j->first; p < j->first + j->n; p++)
		for (size_t i = 0; i < PAGE; i++)
			j->mem[p * PAGE + i] = pattern(p, i, j->seed);
	for (int pass = 0; pass < PASSES && !j->bad; pass++) {
		for (size_t p = j->first; p < j->first + j->n; p++) {
			for (size_t i = 0; i < PAGE; i++) {
				if (j->mem[p * PAGE + i] != pattern(p, i, j->seed + pass)) {
					fprintf(stderr, "smoke: page %zu byte %zu wrong in pass %d\n",
						p, i, pass);
					j->bad = 1;
					return NULL;
				}
				/* Rewrite with the next pass's pattern: evicted pages
				 * must carry the new bytes. */
				j->mem[p * PAGE + i] = pattern(p, i, j->seed + pass + 1);
			}
		}
	}
	return NULL;
}

static int check(enum dime_mode mode, int nthreads)
{
	struct dime_params prm;
	dime_params_init(&prm);
	prm.size = PAGES * PAGE;
	prm.local_npages = BUDGET;
	prm.latency_ns = 0;
	prm.bandwidth_bps = UINT64_MAX / 2;
	prm.mode = mode;
	struct dime_region *r;
	int err = dime_region_create(&prm, &r);
	if (err) {
		fprintf(stderr, "smoke: dime_region_create: %s\n", dime_strerror(err));
		return 1;
	}
	uint8_t *mem = dime_region_base(r);
	struct job jobs[2];
	pthread_t th[2];
	for (int t = 0; t < nthreads; t++) {
		jobs[t] = (struct job){ mem, (size_t)t * PAGES / nthreads, PAGES / nthreads,
					(unsigned)t * 17 + 3, 0 };
		pthread_create(&th[t], NULL, run, &jobs[t]);
	}
	int bad = 0;
	for (int t = 0; t < nthreads; t++) {
		pthread_join(th[t], NULL);
		bad |= jobs[t].bad;
	}
	struct dime_stats st;
	dime_region_stats(r, &st);
	if (st.local_pages_peak > BUDGET) {
		fprintf(stderr, "smoke: %llu pages local at once, budget %d\n",
			(unsigned long long)st.local_pages_peak, BUDGET);
		bad = 1;
	}
	/* Exact for one thread. With two, a thread descheduled for long in the
	 * middle of a page (or of moving victims out) lets the other's faults
	 * reorder things a little. */
	uint64_t want = (uint64_t)PASSES * PAGES;
	if (nthreads == 1 ? st.remote_faults != want
			  : st.remote_faults * 100 < want * 99 || st.remote_faults * 100 > want * 101) {
		fprintf(stderr, "smoke: %llu remote faults, expected %llu\n",
			(unsigned long long)st.remote_faults, (unsigned long long)want);
		bad = 1;
	}
	dime_region_destroy(r);
	printf("smoke: %-6s mode, %d thread%s: %s (%llu remote faults, %llu evictions)\n",
	       mode == DIME_MODE_THREAD ? "thread" : "signal", nthreads, nthreads > 1 ? "s" : "",
	       bad ? "FAILED" : "ok", (unsigned long long)st.remote_faults,
	       (unsigned long long)st.evictions);
	return bad;
}

int main(void)
{
	int bad = 0;
	for (int m = 0; m < 2; m++)
		for (int t = 1; t <= 2; t++)
			bad |= check(m ? DIME_MODE_SIGNAL : DIME_MODE_THREAD, t);
	return bad;
}
