/* See control.h. */
#define _GNU_SOURCE
#include "control.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *env[2];

const char *const *control_env(void)
{
	if (!env[0]) {
		char *dir = temp_path("control");
		cr_assert(!mkdir(dir, 0700));
		char *e;
		cr_assert_neq(asprintf(&e, "DIME_CONTROL_DIR=%s", dir), -1);
		env[0] = e;
	}
	return env;
}

struct dime_result ctl_run(const char *const argv[])
{
	return run_exe(NULL, argv, control_env());
}

char *ctl_table_text(void)
{
	struct dime_result r = CTL("config");
	cr_assert_eq(r.status, 0, "dime config: %d, stderr: %s", r.status, r.err);
	cr_assert_str_empty(r.err);
	free(r.err);
	return r.out;
}
