/* Reading `dime stats --json` output in the tests that share an instance
 * (tests/cli, tests/attach). */
#ifndef DIME_TEST_STATS_JSON_H
#define DIME_TEST_STATS_JSON_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { STATS_HIST_BUCKETS = 32 };

/* The first "fault_time_hist_log2_ns" array of json into hist: remote
 * faults by log2 of their time in ns. */
static inline void stats_json_hist(const char *json, uint64_t hist[STATS_HIST_BUCKETS])
{
	const char *h = strstr(json, "\"fault_time_hist_log2_ns\": [");
	cr_assert(h, "no histogram in %s", json);
	h = strchr(h, '[') + 1;
	for (int b = 0; b < STATS_HIST_BUCKETS; b++) {
		char *end;
		hist[b] = strtoull(h, &end, 10);
		h = end + 1;
	}
}

#endif
