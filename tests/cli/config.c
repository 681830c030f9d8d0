/* DiME's config file: values reach the run, options override it. Checked
 * through --stats-json's config object, so these need the preload. */
#define _GNU_SOURCE
#include "harness.h"

#include <stdio.h>
#include <string.h>

/* Runs `true` with args plus --stats-json; returns the JSON. */
static char *run_json(const char *const args[])
{
	char *path = temp_path("stats.json");
	const char *argv[32];
	size_t n = 0;
	argv[n++] = "dime";
	argv[n++] = "run";
	for (; *args; args++)
		argv[n++] = *args;
	argv[n++] = "--stats-json";
	argv[n++] = path;
	argv[n++] = "true";
	argv[n] = NULL;
	struct dime_result r = run_exe(NULL, argv, NULL);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	dime_result_free(&r);
	char *j = read_file_text(path);
	cr_assert(json_valid(j), "not JSON:\n%s", j);
	return j;
}

#define RUN_JSON(...) run_json((const char *const[]){ __VA_ARGS__, NULL })

static char *conf(const char *text)
{
	char *p = temp_path("dime.conf");
	write_file(p, text);
	return p;
}

static void expect_num(const char *j, const char *key, uint64_t want)
{
	uint64_t v;
	cr_assert(json_u64(j, key, &v), "no %s in\n%s", key, j);
	cr_assert_eq(v, want, "%s is %llu, want %llu", key, (unsigned long long)v,
		     (unsigned long long)want);
}

static void expect_str(const char *j, const char *key, const char *want)
{
	char s[64];
	cr_assert(json_str(j, key, s, sizeof(s)), "no %s in\n%s", key, j);
	cr_assert_str_eq(s, want, "%s", key);
}

Test(config, values_applied)
{
	require_preload();
	char *c = conf("latency_ns 500\nbandwidth_bps 2000000000\nlocal_npages 5000\n"
		       "policy fifo\nfirst_touch remote\nbandwidth_model per-fault\nmode signal\n");
	char *j = RUN_JSON("-c", c);
	expect_num(j, "latency_ns", 500);
	expect_num(j, "bandwidth_bps", 2000000000);
	expect_num(j, "local_npages", 5000);
	expect_str(j, "policy", "fifo");
	expect_str(j, "first_touch", "remote");
	expect_str(j, "bandwidth_model", "per-fault");
	expect_str(j, "mode", "signal");
	/* 2 * 500 + 4096 * 8 / 2 Gbit/s */
	struct dime_params p;
	dime_params_init(&p);
	p.latency_ns = 500;
	p.bandwidth_bps = 2000000000;
	expect_num(j, "fetch_ns", dime_fetch_ns(&p, (size_t)sysconf(_SC_PAGESIZE)));
	free(j);
}

Test(config, dime_template_is_the_default)
{
	require_preload();
	char *c = conf("latency_ns 2000\nbandwidth_bps 1000000000\nlocal_npages 100000\n");
	char *a = RUN_JSON("-c", c), *b = RUN_JSON("--latency-ns", "2000");
	expect_num(a, "latency_ns", 2000);
	expect_num(b, "bandwidth_bps", 1000000000);
	expect_num(b, "local_npages", 100000);
	expect_str(b, "mode", "thread");
	free(a);
	free(b);
}

Test(config, options_override_the_file_in_any_order)
{
	require_preload();
	char *c = conf("latency_ns 500\nlocal_npages 5000\nmode signal\n");
	char *j = RUN_JSON("--latency-ns", "7", "-c", c);
	expect_num(j, "latency_ns", 7);
	expect_num(j, "local_npages", 5000);
	expect_str(j, "mode", "signal");
	free(j);
	char *opt;
	cr_assert_neq(asprintf(&opt, "--config=%s", c), -1);
	j = RUN_JSON(opt, "--local-pages=9", "--mode", "thread");
	expect_num(j, "latency_ns", 500);
	expect_num(j, "local_npages", 9);
	expect_str(j, "mode", "thread");
	free(j);
}

Test(config, comments_blanks_and_line_ends)
{
	require_preload();
	char *c = conf("# DiME config\n"
		       "\n"
		       "   \t\n"
		       "latency_ns 300 # one-way\n"
		       "\tlocal_npages\t42#tight\r\n"
		       "  # bandwidth_bps 0\n"
		       "bandwidth_bps 8000000000"); /* no final newline */
	char *j = RUN_JSON("-c", c);
	expect_num(j, "latency_ns", 300);
	expect_num(j, "local_npages", 42);
	expect_num(j, "bandwidth_bps", 8000000000);
	free(j);
}

Test(config, later_line_wins_and_empty_file)
{
	require_preload();
	char *j = RUN_JSON("-c", conf("latency_ns 1\nlatency_ns 2\n"));
	expect_num(j, "latency_ns", 2);
	free(j);
	j = RUN_JSON("-c", conf(""));
	expect_num(j, "latency_ns", 2000);
	free(j);
}
