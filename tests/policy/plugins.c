/* Policy plug-ins through the C API: every refusal names its reason, and
 * the example plug-in (examples/policy, built by its own Makefile) runs a
 * region correctly. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const size_t PS = 4096;

static const char *plugin(const char *name)
{
	static char path[4][512];
	static int next;
	char *p = path[next++ % 4];
	snprintf(p, sizeof(path[0]), "%s/tests/plugins/%s", test_build_dir(), name);
	return p;
}

static void refused(const char *policy, const char *why)
{
	char msg[512] = "";
	cr_expect_eq(dime_policy_check(policy, msg, sizeof(msg)), -EINVAL, "%s", policy);
	cr_expect(strstr(msg, why), "%s: '%s' does not say '%s'", policy, msg, why);
	cr_expect(!strchr(msg, '\n'), "more than one line: %s", msg);

	struct dime_params p;
	dime_params_init(&p);
	snprintf(p.policy, sizeof(p.policy), "%s", policy);
	const char *bad = NULL;
	cr_expect_eq(dime_params_check(&p, &bad), -EINVAL);
	cr_expect_str_eq(bad, "policy");
	struct dime_region *r = NULL;
	cr_expect_eq(dime_region_create(&p, &r), -EINVAL);
}

Test(plugins, refusals_say_why)
{
	refused("no-such-policy", "no such policy");
	refused("./no-such-file.so", "cannot load");
	refused(plugin("no_symbol.so"), "does not export the symbol dime_policy_plugin");
	refused(plugin("abi_mismatch.so"), "ABI version 2; this dime has version 1");
	refused(plugin("lacks_choose.so"), "has no choose");
}

Test(plugins, builtins_pass_the_check)
{
	const char *names[] = { "fifo", "random", "clock", "lru" };
	for (size_t i = 0; i < 4; i++)
		cr_expect_eq(dime_policy_check(names[i], NULL, 0), 0, "%s", names[i]);
}

/* The example LFU on a hot/cold mix: the data is right, the plug-in's
 * callbacks ran (policy time), and it observed pages (soft faults). */
Test(plugins, example_lfu_runs_a_region)
{
	struct dime_params p;
	dime_params_init(&p);
	p.size = 2048 * PS;
	p.local_npages = 64;
	p.latency_ns = 0;
	p.bandwidth_bps = UINT64_MAX / 2;
	snprintf(p.policy, sizeof(p.policy), "%s", plugin("lfu.so"));
	struct dime_region *r = NULL;
	int err = dime_region_create(&p, &r);
	cr_assert_eq(err, 0, "%s", dime_strerror(err));
	volatile char *m = dime_region_base(r);
	for (size_t pass = 0; pass < 4; pass++)
		for (size_t i = 0; i < 2048; i++) {
			m[(i % 8) * PS] += 1; /* hot */
			m[i * PS + 1] = (char)(pass + i);
		}
	struct dime_stats s;
	dime_region_stats(r, &s);
	for (size_t i = 0; i < 2048; i++)
		cr_expect_eq(m[i * PS + 1], (char)(3 + i), "page %zu", i);
	cr_expect_gt(s.remote_faults, 0);
	cr_expect_gt(s.soft_faults, 0);
	cr_expect_gt(s.policy_ns, 0);
	cr_expect_leq(s.local_pages_peak, 64 + 16);
	dime_region_destroy(r);
}
