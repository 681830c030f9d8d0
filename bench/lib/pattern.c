/* Access patterns timed from inside the program (see pattern.h). */
#define _GNU_SOURCE
#include "pattern.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

size_t bench_page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (!p) {
		perror("dimebench: malloc");
		exit(2);
	}
	return p;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

void bench_run_init(struct bench_run *r, enum bench_pattern pat, size_t pages, size_t n)
{
	r->pages = pages;
	r->n = n;
	/* One array: the warm-up's accesses first, then the timed ones, so
	 * the two never repeat each other (a warm-up that did would leave
	 * exactly the timed pages resident). */
	r->warm = xmalloc(sizeof(*r->order) * 2 * n);
	r->order = r->warm + n;
	r->lat_ns = xmalloc(sizeof(*r->lat_ns) * n);
	r->wall_ns = 0;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	size_t hot = pages / 4;
	for (size_t k = 0; k < 2 * n; k++) {
		uint64_t x = xorshift(&seed);
		if (pat == BENCH_CYCLIC)
			r->warm[k] = (uint32_t)(k % pages);
		else if (pat == BENCH_RANDOM || hot == 0 || hot == pages)
			r->warm[k] = (uint32_t)(x % pages);
		else if (x % 10 != 0)
			r->warm[k] = (uint32_t)((x / 10) % hot);
		else
			r->warm[k] = (uint32_t)(hot + (x / 10) % (pages - hot));
	}
}

void bench_run_free(struct bench_run *r)
{
	free(r->warm);
	free(r->lat_ns);
}

void bench_fill(volatile char *m, size_t pages, enum bench_fill fill)
{
	size_t page = bench_page_size();
	uint64_t seed = 0x2545f4914f6cdd1dull;
	for (size_t i = 0; i < pages; i++) {
		volatile uint64_t *w = (volatile uint64_t *)(m + i * page);
		if (fill == BENCH_FILL_SPARSE) {
			w[0] = i + 1;
			continue;
		}
		for (size_t j = 0; j < page / 8; j++)
			w[j] = xorshift(&seed);
	}
}

void bench_warm(volatile char *m, const struct bench_run *r)
{
	size_t page = bench_page_size();
	for (size_t i = 0; i < r->pages; i++)
		m[i * page] += 1;
	for (size_t k = 0; k < r->n; k++)
		m[(size_t)r->warm[k] * page] += 1;
}

void bench_timed(volatile char *m, struct bench_run *r)
{
	size_t page = bench_page_size();
	uint64_t w0 = bench_mono_ns();
	for (size_t k = 0; k < r->n; k++) {
		volatile char *p = m + (size_t)r->order[k] * page;
		uint64_t t0 = bench_mono_ns();
		*p += 1;
		r->lat_ns[k] = bench_mono_ns() - t0;
	}
	r->wall_ns = bench_mono_ns() - w0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The q-quantile of the sorted v[0..n-1] (nearest rank). */
static double at(const uint64_t *v, size_t n, double q)
{
	return n ? (double)v[(size_t)(q * (double)(n - 1) + 0.5)] : 0;
}

void bench_summarize(struct bench_run *r, struct bench_summary *s)
{
	qsort(r->lat_ns, r->n, sizeof(uint64_t), cmp_u64);
	double sum = 0;
	size_t first_slow = r->n;
	for (size_t k = 0; k < r->n; k++) {
		sum += (double)r->lat_ns[k];
		if (first_slow == r->n && r->lat_ns[k] >= BENCH_SLOW_NS)
			first_slow = k;
	}
	s->mean_ns = r->n ? sum / (double)r->n : 0;
	s->median_ns = at(r->lat_ns, r->n, 0.5);
	s->p99_ns = at(r->lat_ns, r->n, 0.99);
	s->slow = r->n - first_slow;
	s->slow_sum_ns = 0;
	for (size_t k = first_slow; k < r->n; k++)
		s->slow_sum_ns += (double)r->lat_ns[k];
	s->slow_median_ns = at(r->lat_ns + first_slow, s->slow, 0.5);
	s->slow_p99_ns = at(r->lat_ns + first_slow, s->slow, 0.99);
}
