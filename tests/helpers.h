/* Shared helpers for dime's tests. */
#ifndef DIME_TEST_HELPERS_H
#define DIME_TEST_HELPERS_H

#include <criterion/criterion.h>
#include <dime.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* A region for a test: small budget, no delay unless the test sets one. */
static inline struct dime_region *test_region(size_t size, uint64_t local_npages,
					      enum dime_mode mode)
{
	struct dime_params p;
	dime_params_init(&p);
	p.size = size;
	p.local_npages = local_npages;
	p.latency_ns = 0;
	p.bandwidth_bps = UINT64_MAX / 2;
	p.mode = mode;
	struct dime_region *r = NULL;
	int err = dime_region_create(&p, &r);
	cr_assert_eq(err, 0, "dime_region_create: %s", dime_strerror(err));
	return r;
}

/* Monotonic nanoseconds, for lower bounds on emulated time. */
static inline uint64_t test_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The build directory (build/ or build-asan/) for finding dime and friends. */
static inline const char *test_build_dir(void)
{
	const char *b = getenv("DIME_BUILD");
	return b ? b : "build";
}

#endif
