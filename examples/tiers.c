/* Memory tiers in one program: each dime region is an instance of its own,
 * with its own interconnect, local budget, policy and statistics. The
 * program puts one array in each tier, sweeps each so that every access
 * fetches a page, and prints what an access to each tier cost as measured
 * here, next to the configured fetch time and this machine's floor (the
 * fastest fetch dime can emulate: below it, a fetch costs the floor).
 *
 *   make && build/examples/tiers [--signal] [NAME:LATENCY_NS:BANDWIDTH_BPS ...]
 *
 * The default tiers: CXL-like (300 ns one way, 32 GB/s), RDMA-like (3 us,
 * 25 Gb/s) and an NVMe-over-fabrics-like far tier (25 us, 16 Gb/s).
 * `--signal` resolves faults in the faulting thread (lower floor). A
 * tier's parameters go through struct dime_params, exactly as for one
 * region. */
#define _GNU_SOURCE
#include <dime.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct tier {
	char name[16];
	uint64_t latency_ns, bandwidth_bps;
	struct dime_region *region;
	unsigned char *data;
	double access_ns; /* mean time of one access that fetched a page */
};

enum { TIER_PAGES = 512, TIER_BUDGET = 256, PASSES = 8, MAX_TIERS = 8 };

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void tier_params(const struct tier *t, enum dime_mode mode, struct dime_params *p)
{
	dime_params_init(p);
	p->mode = mode;
	p->latency_ns = t->latency_ns;
	p->bandwidth_bps = t->bandwidth_bps;
	p->local_npages = TIER_BUDGET;
	p->size = (size_t)64 << 20;
}

static int tier_open(struct tier *t, size_t page, enum dime_mode mode)
{
	struct dime_params p;
	tier_params(t, mode, &p);
	int err = dime_region_create(&p, &t->region);
	if (err) {
		fprintf(stderr, "tiers: %s tier: %s\n", t->name, dime_strerror(err));
		return -1;
	}
	t->data = dime_malloc(t->region, TIER_PAGES * page);
	if (!t->data) {
		fprintf(stderr, "tiers: %s tier: out of memory\n", t->name);
		return -1;
	}
	for (size_t i = 0; i < TIER_PAGES; i++)
		memset(t->data + i * page, (int)(i & 0xff), page);
	return 0;
}

/* A cyclic sweep over twice the budget: under FIFO every access fetches a
 * page (the first pass after the fill included). Returns the byte sum so
 * that the compiler keeps the loads. */
static unsigned tier_sweep(struct tier *t, size_t page, int passes)
{
	unsigned sum = 0;
	struct dime_stats s0, s1;
	dime_region_stats(t->region, &s0);
	uint64_t t0 = now_ns();
	for (int k = 0; k < passes; k++)
		for (size_t i = 0; i < TIER_PAGES; i++)
			sum += t->data[i * page + (size_t)k % page];
	uint64_t t1 = now_ns();
	dime_region_stats(t->region, &s1);
	uint64_t faults = s1.remote_faults - s0.remote_faults;
	t->access_ns = faults ? (double)(t1 - t0) / (double)faults : 0;
	return sum;
}

/* NAME:LATENCY_NS:BANDWIDTH_BPS */
static int tier_parse(const char *arg, struct tier *t)
{
	char name[16];
	unsigned long long lat, bps;
	int end = 0;
	if (sscanf(arg, "%15[^:]:%llu:%llu%n", name, &lat, &bps, &end) != 3 || arg[end]) {
		fprintf(stderr, "tiers: bad tier '%s' (want NAME:LATENCY_NS:BANDWIDTH_BPS)\n", arg);
		return -1;
	}
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->latency_ns = lat;
	t->bandwidth_bps = bps;
	return 0;
}

int main(int argc, char **argv)
{
	struct tier tiers[MAX_TIERS] = {
		{ .name = "cxl", .latency_ns = 300, .bandwidth_bps = 256000000000ull },
		{ .name = "rdma", .latency_ns = 3000, .bandwidth_bps = 25000000000ull },
		{ .name = "nvmeof", .latency_ns = 25000, .bandwidth_bps = 16000000000ull },
	};
	int ntiers = 3, given = 0;
	enum dime_mode mode = DIME_MODE_THREAD;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--signal")) {
			mode = DIME_MODE_SIGNAL;
			continue;
		}
		if (given == MAX_TIERS) {
			fprintf(stderr, "tiers: more than %d tiers at '%s'\n", MAX_TIERS, argv[i]);
			return 2;
		}
		if (tier_parse(argv[i], &tiers[given++]))
			return 2;
		ntiers = given;
	}
	for (int i = 0; i < ntiers; i++) {
		struct dime_params p;
		const char *bad;
		tier_params(&tiers[i], mode, &p);
		if (dime_params_check(&p, &bad)) {
			fprintf(stderr, "tiers: %s tier: bad %s\n", tiers[i].name, bad);
			return 2;
		}
	}
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	for (int i = 0; i < ntiers; i++)
		if (tier_open(&tiers[i], page, mode))
			return 1;

	unsigned expect = 0;
	for (int k = 0; k < PASSES; k++)
		for (size_t i = 0; i < TIER_PAGES; i++)
			expect += (unsigned)(i & 0xff);
	uint64_t floor_ns = dime_floor_ns(mode);
	printf("%-7s %10s %12s %12s %12s %14s %8s\n", "tier", "latency", "bandwidth",
	       "fetch (cfg)", "floor", "access (meas)", "faults");
	for (int i = 0; i < ntiers; i++) {
		struct tier *t = &tiers[i];
		unsigned got = tier_sweep(t, page, PASSES);
		if (got != expect) {
			fprintf(stderr, "tiers: %s tier read back %u, expected %u\n", t->name, got,
				expect);
			return 1;
		}
		struct dime_params p;
		tier_params(t, mode, &p);
		uint64_t fetch = dime_fetch_ns(&p, page);
		struct dime_stats s;
		dime_region_stats(t->region, &s);
		printf("%-7s %8lluns %8.1fGb/s %10lluns %10lluns %12.0fns %8llu%s\n", t->name,
		       (unsigned long long)t->latency_ns, t->bandwidth_bps / 1e9,
		       (unsigned long long)fetch, (unsigned long long)floor_ns, t->access_ns,
		       (unsigned long long)s.remote_faults, fetch < floor_ns ? "  (below the floor)" : "");
	}
	printf("each tier: %d of its %d pages local, its own statistics and policy (fifo)\n",
	       TIER_BUDGET, TIER_PAGES);
	printf("a fetch configured below the floor costs the floor: dime emulates a page fetch\n"
	       "per fault, and a fault cannot cost less than dime's own handling of it\n");
	for (int i = 0; i < ntiers; i++) {
		dime_free(tiers[i].data);
		dime_region_destroy(tiers[i].region);
	}
	return 0;
}
