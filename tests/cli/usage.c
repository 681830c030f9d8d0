/* dime --help, --version, dime help, dime run --help. */
#include "harness.h"

#include <string.h>

/* Every option of `dime run`, as the help must list it. */
static const char *const run_options[] = {
	"--latency-ns", "--bandwidth-bps", "--local-pages", "-c", "--config", "--policy",
	"--first-touch", "--bandwidth-model", "--mode", "--evict-batch", "--stats", "--stats-json",
	"--help", "fifo", "random", "clock", "lru",
	/* and the values of the enumerations */
	"local|remote", "shared|per-fault", "thread|signal",
};

static void assert_run_help(struct dime_result *r)
{
	cr_assert_eq(r->status, 0, "stderr: %s", r->err);
	cr_assert_str_empty(r->err);
	cr_assert(strstr(r->out, "usage: dime run"), "%s", r->out);
	for (size_t i = 0; i < sizeof(run_options) / sizeof(run_options[0]); i++)
		cr_assert(strstr(r->out, run_options[i]), "help lacks %s:\n%s", run_options[i],
			  r->out);
	dime_result_free(r);
}

Test(usage, version)
{
	struct dime_result r = dime_run("--version");
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "dime " DIME_VERSION "\n");
	cr_assert_str_empty(r.err);
	dime_result_free(&r);
}

Test(usage, help_lists_commands)
{
	const char *forms[] = { "--help", "-h", "help" };
	for (size_t i = 0; i < 3; i++) {
		struct dime_result r = dime_run(forms[i]);
		cr_assert_eq(r.status, 0, "%s: %s", forms[i], r.err);
		cr_assert_str_empty(r.err);
		cr_assert(strstr(r.out, "usage: dime"), "%s", r.out);
		cr_assert(strstr(r.out, "run"), "%s", r.out);
		cr_assert(strstr(r.out, "--version"), "%s", r.out);
		dime_result_free(&r);
	}
}

Test(usage, run_help_lists_every_option)
{
	struct dime_result r = dime_run("run", "--help");
	assert_run_help(&r);
	r = dime_run("run", "-h");
	assert_run_help(&r);
	r = dime_run("help", "run");
	assert_run_help(&r);
}

Test(usage, run_help_wins_over_later_arguments)
{
	/* --help is answered where it stands, before looking for a program. */
	struct dime_result r = dime_run("run", "--latency-ns", "5", "--help", "--bogus");
	assert_run_help(&r);
}

Test(usage, help_of_help)
{
	struct dime_result r = dime_run("help", "--help");
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "usage: dime help"), "%s", r.out);
	dime_result_free(&r);
}
