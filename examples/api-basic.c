/* The C API in a few lines: one emulated region with 256 local pages
 * (1 MiB), a 16 MiB array built with dime_malloc() in it, two passes over
 * the array, and what they cost.
 *
 *   make && build/examples/api-basic */
#include <dime.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	struct dime_params p;
	dime_params_init(&p);
	p.local_npages = 256;
	p.latency_ns = 5000;            /* 5 us one way */
	p.bandwidth_bps = 25000000000;  /* 25 Gb/s */
	p.size = (size_t)1 << 30;       /* address space to reserve */

	struct dime_region *r;
	int err = dime_region_create(&p, &r);
	if (err) {
		fprintf(stderr, "api-basic: %s\n", dime_strerror(err));
		return 1;
	}

	size_t n = (16 << 20) / sizeof(long);
	long *a = dime_malloc(r, n * sizeof(long));
	if (!a)
		return 1;
	for (size_t i = 0; i < n; i++)
		a[i] = (long)i;
	long sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += a[i];

	struct dime_stats s;
	dime_region_stats(r, &s);
	printf("sum %ld (expected %ld)\n", sum, (long)(n * (n - 1) / 2));
	printf("fetch time %llu ns, floor %llu ns\n",
	       (unsigned long long)dime_fetch_ns(&p, 4096),
	       (unsigned long long)dime_floor_ns(p.mode));
	printf("first touches %llu, remote faults %llu, evictions %llu, peak local pages %llu\n",
	       (unsigned long long)s.first_touch_faults, (unsigned long long)s.remote_faults,
	       (unsigned long long)s.evictions, (unsigned long long)s.local_pages_peak);
	printf("injected delay %.1f ms, dime's own handling %.1f ms\n",
	       s.injected_delay_ns / 1e6, s.handling_ns / 1e6);
	dime_free(a);
	dime_region_destroy(r);
	return 0;
}
