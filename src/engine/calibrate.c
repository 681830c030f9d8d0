/* Start-up measurement of dime's own fault-handling costs.
 *
 * The delay model counts a fetch from the moment the fault began, so that
 * dime's handling is inside the emulated time, not added on top. Neither a
 * handler thread nor a signal handler can see that moment, so each server
 * measures, once per process: a small region with every access a remote
 * fault at zero delay, the faulting thread timestamping around each access
 * and the engine timestamping when it sees the fault and when it starts the
 * page-in (a second run with a delay about the floor gives pre and post as
 * delayed faults have them). That gives `pre` (access to seen), `post` (page-in to the
 * program running again) and the floor (the whole fault).
 *
 * A fault then lasts fetch + (pre' - pre) + (post' - post), pre' and post'
 * being that fault's own: the emulated time is right on average when pre
 * and post are the means of what faults cost. Means of the middle of the
 * distribution: a descheduled vCPU leaves outliers of tens of microseconds
 * that would drag a mean of a few hundred samples. The first passes are
 * left out (handler threads and caches settle), and of up to CALIB_ROUNDS
 * rounds the one with the lowest floor counts: another process competing
 * for the CPUs during start-up must not make every later fault too short
 * (a busy machine may make faults longer than configured, never shorter). */
#include "book.h"
#include "clock.h"
#include "internal.h"
#include "region.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
	/* A footprint like a small program's: cache and TLB misses in the
	 * kernel's fault path grow with it. */
	CALIB_PAGES = 512,
	CALIB_LOCAL = 128,
	CALIB_WARMUP = 1,   /* passes not timed */
	CALIB_FAULTS = 640, /* timed faults */
	CALIB_ROUNDS = 3,
	CALIB_DELAYED_ROUNDS = 6, /* three at each of two fetch times */
	CALIB_DELAYED_FAULTS = 320,
	CALIB_AGREE = 10,  /* % two rounds may differ by and end the search */
};

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Mean of v[] without its highest 1 %, at least 0: a fault's costs have
 * a long tail (interrupts, wake-ups), and what the mean leaves out here
 * makes every later fault that much longer on average; the top 1 % are the
 * vCPU descheduled, tens of microseconds that would drag a mean of a few
 * hundred samples. */
static uint64_t central_mean(int64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_i64);
	int lo = 0, hi = n - n / 100;
	int64_t sum = 0;
	for (int i = lo; i < hi; i++)
		sum += v[i];
	int64_t mean = sum / (hi - lo);
	/* On a quiet machine the mean is a few % above the median. Another
	 * process competing for the vCPUs during the whole measurement (a
	 * loaded machine: other programs, a test suite's previous process
	 * still exiting) leaves far more than 1 % of samples tens of
	 * microseconds long, and a mean that takes them in would make every
	 * later fault of this process that much shorter than configured;
	 * the median hardly moves. So the mean counts up to 5/4 of the
	 * median: a busy machine may make faults longer, never shorter. */
	int64_t median = v[n / 2], cap = median + median / 4;
	if (median > 0 && mean > cap)
		mean = cap;
	return mean > 0 ? (uint64_t)mean : 0;
}

enum { N = CALIB_FAULTS };

/* Of n rounds at one fetch time, the one with the least pre + post: a
 * round disturbed by another process makes dime's costs look larger, and
 * taking that would make every later fault shorter than configured; a
 * busy machine may make faults longer, not shorter. */
static struct cost_point least_point(const struct cost_point *p, int n)
{
	int best = 0;
	for (int i = 1; i < n; i++)
		if (p[i].pre + p[i].post < p[best].pre + p[best].post)
			best = i;
	return p[best];
}

struct samples {
	uint64_t seen[N], pagein[N]; /* engine: fault seen, page-in started */
	uint64_t pagein_end[N];      /* engine: page-in done */
	uint64_t began[N];           /* kernel: page-fault event, 0 if none */
	uint64_t ended[N];           /* kernel: fault-completed event, 0 if none */
	uint64_t t0[N], t1[N];       /* program: around the access */
	int64_t d[N];
};

/* One round on a fresh region. Returns 0 and the costs, or -errno. */
static int round_costs(struct server *s, struct samples *b, uint64_t latency_ns, int faults,
		       struct server_costs *out)
{
	struct dime_params p;
	dime_params_init(&p);
	p.size = CALIB_PAGES * engine.page_size;
	p.local_npages = CALIB_LOCAL;
	p.latency_ns = 0; /* the warm-up goes fast; the latency is set after it */
	p.bandwidth_bps = UINT64_MAX; /* transfer time rounds to zero */
	p.mode = s->mode;
	struct calib_log log = { .cap = faults, .seen = b->seen, .pagein = b->pagein,
				 .pagein_end = b->pagein_end, .began = b->began, .ended = b->ended };
	memset(b->ended, 0, sizeof(b->ended));

	struct region *r;
	int err = region_new(&p, s, &r);
	if (err)
		return err;
	volatile char *mem = (volatile char *)r->base;
	size_t ps = engine.page_size;
	/* First touches, then the warm-up passes: every access is remote (a
	 * cyclic sweep larger than the budget) but not timed yet. */
	for (int pass = 0; pass <= CALIB_WARMUP; pass++)
		for (int i = 0; i < CALIB_PAGES; i++)
			mem[i * ps] += 1;
	/* No fault in flight now; the faults measured do not settle debts. */
	r->latency_ticks = clock_ns_to_ticks(latency_ns);
	atomic_store(&r->delay_debt, 0);
	r->calib = &log;
	for (int n = 0; n < faults; n++) {
		b->t0[n] = clock_ticks();
		(void)mem[(n % CALIB_PAGES) * ps];
		b->t1[n] = clock_ticks();
	}
	r->calib = NULL;
	region_delete(r);

	/* Pair each access with the fault seen inside it; an access that
	 * took another path (none is expected) is left out. */
	int m = 0, j = 0;
	for (int i = 0; i < faults && j < log.n; i++) {
		while (j < log.n && log.seen[j] < b->t0[i])
			j++;
		if (j == log.n || log.pagein[j] > b->t1[i])
			continue;
		b->t0[m] = b->t0[i];
		b->t1[m] = b->t1[i];
		b->seen[m] = log.seen[j];
		b->pagein[m] = log.pagein[j];
		b->pagein_end[m] = log.pagein_end[j];
		b->began[m] = log.began[j];
		b->ended[m] = b->ended[j];
		m++;
		j++;
	}
	if (m < faults / 2)
		return -EAGAIN;
	for (int i = 0; i < m; i++)
		b->d[i] = (int64_t)(b->seen[i] - b->t0[i]);
	out->pre = central_mean(b->d, m);
	for (int i = 0; i < m; i++)
		b->d[i] = (int64_t)(b->t1[i] - b->pagein[i]);
	out->post = central_mean(b->d, m);
	for (int i = 0; i < m; i++)
		b->d[i] = (int64_t)(b->pagein_end[i] - b->pagein[i]);
	out->handoff = central_mean(b->d, m);
	for (int i = 0; i < m; i++)
		b->d[i] = (int64_t)(b->t1[i] - b->t0[i]);
	out->floor = central_mean(b->d, m);
	/* With the fault clock: from the access to the kernel's event, which
	 * the fault path adds back to each measured begin. */
	int k = 0;
	for (int i = 0; i < m; i++)
		if (b->began[i] && b->began[i] >= b->t0[i] && b->began[i] <= b->seen[i])
			b->d[k++] = (int64_t)(b->began[i] - b->t0[i]);
	out->entry = k >= m / 2 ? central_mean(b->d, k) : 0;
	/* And from its fault-completed event to the program running. */
	k = 0;
	for (int i = 0; i < m; i++)
		if (b->ended[i] && b->ended[i] >= b->pagein[i] && b->ended[i] <= b->t1[i])
			b->d[k++] = (int64_t)(b->t1[i] - b->ended[i]);
	out->exit = k >= m / 2 ? central_mean(b->d, k) : 0;
	return 0;
}

int server_calibrate(struct server *s)
{
	s->costs = (struct server_costs){ 0 };
	struct samples *b = book_alloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	struct server_costs best = { 0 }, c;
	int err = 0;
	for (int round = 0; round < CALIB_ROUNDS; round++) {
		err = round_costs(s, b, 0, N, &c);
		if (err == -EAGAIN)
			continue;
		if (err)
			break;
		bool agree = best.floor && (c.floor > best.floor ? c.floor - best.floor
								 : best.floor - c.floor) * 100 <=
						   best.floor * CALIB_AGREE;
		if (!best.floor || c.floor < best.floor)
			best = c;
		if (agree)
			break;
	}
	/* pre, post and handoff as faults with a delay have them: after a
	 * busy-wait the trap, the page-in and the return to the program take
	 * longer than back to back, the more the longer the wait. Rounds at
	 * a fetch time about the floor and at four times that, in turn, the
	 * least of each point's rounds. What a point's noise leaves is an
	 * error the delay debt (fault.c) cannot see. */
	enum { PER_POINT = CALIB_DELAYED_ROUNDS / 2 };
	struct cost_point pt[2][PER_POINT];
	int got[2] = { 0, 0 };
	for (int round = 0; best.floor && err != -ENOMEM && round < CALIB_DELAYED_ROUNDS; round++) {
		int k = round % 2;
		uint64_t f = clock_ticks_to_ns(best.floor), lat = k ? 2 * f : f / 2;
		err = round_costs(s, b, lat, CALIB_DELAYED_FAULTS, &c);
		if (err == -EAGAIN)
			continue;
		if (err)
			break;
		pt[k][got[k]++] = (struct cost_point){ clock_ns_to_ticks(2 * lat), c.pre, c.post,
						       c.handoff, c.exit };
	}
	if (got[0] && got[1])
		for (int k = 0; k < 2; k++)
			best.at[k] = least_point(pt[k], got[k]);
	book_free(b, sizeof(*b));
	/* No usable round (faults lost to an unexpected path) leaves the costs
	 * at zero: delays are then added on top of dime's handling, as in the
	 * later DiME. */
	if (best.floor) {
		s->costs = best;
		s->calibrated = true;
	}
	return err == -EAGAIN ? 0 : err;
}
