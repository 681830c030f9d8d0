/* The demo workload: an in-memory key-value store under a skewed load.
 *
 * Builds a chained hash table of N records (64-byte values, one malloc
 * each), then serves lookups drawn from a Zipf-like distribution (a hot set
 * of 10% of the keys gets 90% of the requests) and updates. Prints the
 * checksum of everything it read, which must be the same with and without
 * dime, and its own throughput.
 *
 * usage: workload [records] [operations] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct record {
	struct record *next;
	uint64_t key;
	char value[64];
};

static uint64_t rng = 88172645463325252ull;
static uint64_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000;
	size_t ops = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000;
	size_t nbuckets = n / 2 + 1;
	struct record **table = calloc(nbuckets, sizeof(*table));
	if (!table)
		return 1;
	for (uint64_t k = 0; k < n; k++) {
		struct record *r = malloc(sizeof(*r));
		if (!r)
			return 1;
		r->key = k;
		memset(r->value, (int)(k % 251), sizeof(r->value));
		r->next = table[k % nbuckets];
		table[k % nbuckets] = r;
	}
	double t0 = now();
	uint64_t sum = 0, hot = n / 10 ? n / 10 : 1;
	for (size_t i = 0; i < ops; i++) {
		uint64_t x = next_random();
		uint64_t k = x % 10 < 9 ? (x >> 8) % hot : (x >> 8) % n;
		struct record *r = table[k % nbuckets];
		while (r && r->key != k)
			r = r->next;
		if (!r)
			return 2;
		if (x % 16 == 0)
			r->value[x % 64] = (char)x; /* an update */
		sum += (unsigned char)r->value[(x >> 20) % 64] + r->key;
	}
	double t = now() - t0;
	printf("checksum %016llx  %.0f ops/s\n", (unsigned long long)sum, ops / t);
	return 0;
}
