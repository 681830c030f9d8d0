/* Start-up measurement of dime's own fault-handling costs.
 *
 * The delay model counts a fetch from the moment the fault began, so that
 * dime's handling is inside the emulated time, not added on top. Neither a
 * handler thread nor a signal handler can see that moment, so each server
 * measures, once per process: a small region with every access a remote
 * fault at zero delay, the faulting thread timestamping around each access
 * and the engine timestamping when it sees the fault and when it starts the
 * page-in. Medians give `pre` (access to seen), `post` (page-in to the
 * program running again) and the floor (the whole fault). */
#include "book.h"
#include "clock.h"
#include "internal.h"
#include "region.h"

#include <errno.h>
#include <stdlib.h>

enum { CALIB_PAGES = 64, CALIB_LOCAL = 16, CALIB_PASSES = 5 };

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t median(int64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_u64);
	return v[n / 2] > 0 ? (uint64_t)v[n / 2] : 0;
}

int server_calibrate(struct server *s)
{
	struct dime_params p;
	dime_params_init(&p);
	p.size = CALIB_PAGES * engine.page_size;
	p.local_npages = CALIB_LOCAL;
	p.latency_ns = 0;
	p.bandwidth_bps = UINT64_MAX; /* transfer time rounds to zero */
	p.mode = s->mode;
	s->costs = (struct server_costs){ 0, 0, 0 };

	enum { N = CALIB_PAGES * CALIB_PASSES };
	size_t bytes = 5 * N * sizeof(uint64_t);
	uint64_t *buf = book_alloc(bytes);
	if (!buf)
		return -ENOMEM;
	struct calib_log log = { .cap = N, .seen = buf, .pagein = buf + N };
	uint64_t *t0 = buf + 2 * N, *t1 = buf + 3 * N;
	int64_t *d = (int64_t *)(buf + 4 * N);

	struct region *r;
	int err = region_new(&p, s, &r);
	if (err) {
		book_free(buf, bytes);
		return err;
	}
	volatile char *mem = (volatile char *)r->base;
	size_t ps = engine.page_size;
	/* First touches: every page written once, most then evicted. */
	for (int i = 0; i < CALIB_PAGES; i++)
		mem[i * ps] = 1;
	/* A cyclic sweep larger than the budget: every access is remote. */
	r->calib = &log;
	int n = 0;
	for (int pass = 0; pass < CALIB_PASSES; pass++) {
		for (int i = 0; i < CALIB_PAGES; i++, n++) {
			t0[n] = clock_ticks();
			(void)mem[i * ps];
			t1[n] = clock_ticks();
		}
	}
	r->calib = NULL;
	region_delete(r);

	if (log.n == n) {
		for (int i = 0; i < n; i++)
			d[i] = (int64_t)(log.seen[i] - t0[i]);
		s->costs.pre = median(d, n);
		for (int i = 0; i < n; i++)
			d[i] = (int64_t)(t1[i] - log.pagein[i]);
		s->costs.post = median(d, n);
		for (int i = 0; i < n; i++)
			d[i] = (int64_t)(t1[i] - t0[i]);
		s->costs.floor = median(d, n);
		s->calibrated = true;
	}
	/* A mismatch (a fault lost to an unexpected path) leaves the costs at
	 * zero: delays are then added on top of dime's handling, as in the
	 * later DiME. */
	book_free(buf, bytes);
	return 0;
}
