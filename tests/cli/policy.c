/* --policy and --evict-batch end to end: built-ins and plug-ins chosen on
 * the command line, refusals before anything starts, the plug-in loaded
 * again in every emulated process. */
#define _GNU_SOURCE
#include "harness.h"

#include <stdio.h>
#include <string.h>

static char *plugin(const char *name)
{
	char *p;
	cr_assert_neq(asprintf(&p, "%s/tests/plugins/%s", test_build_dir(), name), -1);
	return p;
}

/* dime refuses with one line naming `token`, and `touch MARKER` never ran. */
static void refused(const char *token, const char *opt, const char *value)
{
	char *marker = temp_path("started");
	struct dime_result r = dime_run("run", opt, value, "touch", marker);
	assert_refused(&r, token);
	cr_assert(!file_exists(marker), "the program ran although dime refused");
	dime_result_free(&r);
	free(marker);
}

Test(policy, plugin_errors_refuse_to_start)
{
	refused("cannot load policy plug-in", "--policy", "./no-such-policy.so");
	refused("does not export the symbol dime_policy_plugin", "--policy", plugin("no_symbol.so"));
	refused("ABI version 2; this dime has version 1", "--policy", plugin("abi_mismatch.so"));
	refused("has no choose", "--policy", plugin("lacks_choose.so"));
	char *text = temp_path("not-a-library.so");
	write_file(text, "not an ELF file\n");
	refused("cannot load policy plug-in", "--policy", text);
}

Test(policy, evict_batch_refusals)
{
	refused("--evict-batch", "--evict-batch", "16");
	refused("--evict-batch", "--evict-batch", "a,b");
	refused("--evict-batch", "--evict-batch", "-1,4");
	refused("--evict-batch", "--evict-batch", "8,4");
	/* Checked against the budget of the whole configuration. */
	char *marker = temp_path("started");
	struct dime_result r = dime_run("run", "--local-pages", "100", "--evict-batch", "0,100",
					"touch", marker);
	assert_refused(&r, "evict_batch");
	cr_assert(!file_exists(marker));
	dime_result_free(&r);
}

/* The preload checks DIME_POLICY itself: a process started with a bad one
 * outside `dime run` stops before main with one line. */
Test(policy, preload_refuses_a_bad_plugin)
{
	require_preload();
	char *marker = temp_path("started");
	char *preload, *pol;
	cr_assert_neq(asprintf(&preload, "LD_PRELOAD=%s", build_file("libdime-preload.so")), -1);
	cr_assert_neq(asprintf(&pol, "DIME_POLICY=%s", plugin("abi_mismatch.so")), -1);
	const char *env[] = { preload, pol, NULL };
	struct dime_result r = run_exe("/usr/bin/touch",
				       (const char *const[]){ "touch", marker, NULL }, env);
	cr_assert_eq(r.status, 2, "status %d: %s", r.status, r.err);
	cr_assert(strstr(r.err, "DIME_POLICY") && strstr(r.err, "ABI version"), "%s", r.err);
	cr_assert(!file_exists(marker));
	dime_result_free(&r);
}

/* A program that sorts through its heap, run by a shell that dime
 * starts: sort is an exec'd child, so the plug-in works there too. The
 * tests' plug-in paths are relative (build/...). */
static void sort_under(const char *policy, bool expect_soft)
{
	require_preload();
	char *json = temp_path("stats.json");
	char *in = temp_path("in.txt"), *out = temp_path("out.txt");
	char *script;
	/* From another directory: a plug-in given by a relative path must
	 * still load (dime passes it on as an absolute path). */
	cr_assert_neq(asprintf(&script,
			       "cd / && seq 1 60000 | sort -R > %s && sort -n -S 16M %s > %s",
			       in, in, out), -1);
	struct dime_result r = dime_run("run", "--local-pages", "200", "--latency-ns", "0",
					"--policy", policy, "--stats-json", json, "sh", "-c", script);
	cr_assert_eq(r.status, 0, "%s: status %d: %s", policy, r.status, r.err);
	dime_result_free(&r);
	char *sorted = read_file_text(out);
	char expect[32];
	cr_assert(sorted && !strncmp(sorted, "1\n2\n3\n", 6), "%s: bad output", policy);
	snprintf(expect, sizeof(expect), "\n60000\n");
	cr_assert(strstr(sorted, expect), "%s: output ends wrong", policy);
	char *j = read_file_text(json);
	uint64_t remote, soft, policy_ns, processes;
	cr_assert(json_u64(j, "remote_faults", &remote) && json_u64(j, "soft_faults", &soft) &&
		  json_u64(j, "policy_ns", &policy_ns) && json_u64(j, "processes", &processes), "%s", j);
	cr_expect_gt(remote, 0, "%s", policy);
	cr_expect_gt(policy_ns, 0, "%s", policy);
	cr_expect_geq(processes, 3, "%s", policy);
	if (expect_soft)
		cr_expect_gt(soft, 0, "%s: no soft faults", policy);
	else
		cr_expect_eq(soft, 0, "%s", policy);
	free(j);
	free(sorted);
}

Test(policy, every_builtin_runs_a_real_program)
{
	sort_under("fifo", false);
	sort_under("random", false);
	sort_under("clock", true);
	sort_under("lru", true);
}

Test(policy, example_plugin_runs_in_every_process)
{
	sort_under(plugin("lfu.so"), true);
}

/* The config file takes the same values; the JSON shows what was used. */
Test(policy, config_file_keys)
{
	require_preload();
	char *conf = temp_path("dime.conf"), *json = temp_path("stats.json");
	write_file(conf, "local_npages 128\npolicy lru\nevict_batch 8,32\n");
	struct dime_result r = dime_run("run", "-c", conf, "--stats-json", json, "true");
	cr_assert_eq(r.status, 0, "%s", r.err);
	dime_result_free(&r);
	char *j = read_file_text(json), s[64];
	cr_assert(json_valid(j), "%s", j);
	cr_assert(json_str(j, "policy", s, sizeof(s)) && !strcmp(s, "lru"), "%s", j);
	cr_assert(strstr(j, "\"evict_batch\": [8, 32]"), "%s", j);
	free(j);
}
