/* Access patterns of the accuracy rows, timed from inside the program.
 *
 * The same code runs on a dime region and on plain anonymous memory in a
 * memory cgroup with swap on zram, so the two are compared on the same
 * accesses. Each access is one byte written in one page, timed with
 * clock_gettime(CLOCK_MONOTONIC): the kernel's clock, not the tick counter
 * dime busy-waits on, so a wrong calibration of dime's clock would show. */
#ifndef DIME_BENCH_PATTERN_H
#define DIME_BENCH_PATTERN_H

#include <stddef.h>
#include <stdint.h>

enum bench_pattern {
	BENCH_CYCLIC, /* pages 0..P-1 in order, again and again */
	BENCH_RANDOM, /* uniformly random pages (fixed seed) */
	/* 90% of accesses to a hot quarter of the pages, 10% uniformly to
	 * the rest (fixed seed): recency-based replacement keeps the hot
	 * pages, FIFO does not. */
	BENCH_HOTCOLD,
};

enum bench_fill {
	BENCH_FILL_RANDOM, /* pseudo-random bytes: incompressible */
	BENCH_FILL_SPARSE, /* one word per page, the rest zero: compresses ~100x */
};

/* Accesses slower than this are faults seen from inside: a resident page
 * in random order costs ~400 ns here (a TLB and cache miss in a VM, the two
 * clock reads included; 1% of them near 800 ns), a swap-in from zram or a
 * dime fault 5 us or more. A kernel minor fault (~1-2.5 us) may fall on
 * either side: the kernel's counters say how many there were. */
#define BENCH_SLOW_NS 2000

struct bench_run {
	size_t pages;     /* pages the pattern covers */
	size_t n;         /* timed accesses */
	uint32_t *order;  /* n page indices */
	uint32_t *warm;   /* n more, drawn after them: the untimed warm-up */
	uint64_t *lat_ns; /* n access times */
	uint64_t wall_ns; /* the timed accesses, start to end */
};

struct bench_summary {
	double mean_ns, median_ns, p99_ns; /* over every access */
	size_t slow;                       /* accesses >= BENCH_SLOW_NS */
	double slow_sum_ns;                /* their total time */
	double slow_median_ns, slow_p99_ns;
};

/* Allocates and fills the order (n accesses over `pages` pages) and the
 * time array (untouched: the caller decides where its pages are charged). */
void bench_run_init(struct bench_run *r, enum bench_pattern pat, size_t pages, size_t n);
void bench_run_free(struct bench_run *r);

/* Writes every page once (its first touch), with the given content. */
void bench_fill(volatile char *m, size_t pages, enum bench_fill fill);

/* One untimed pass in page order, then the pattern's accesses once
 * untimed: the replacement order reaches its steady state before the
 * timed accesses. */
void bench_warm(volatile char *m, const struct bench_run *r);

/* The timed accesses. */
void bench_timed(volatile char *m, struct bench_run *r);

/* Sorts r->lat_ns (order lost) and summarizes it. */
void bench_summarize(struct bench_run *r, struct bench_summary *s);

uint64_t bench_mono_ns(void);
size_t bench_page_size(void);

#endif
