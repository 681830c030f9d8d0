/* The workloads/ scripts: each passes natively, and its check catches a
 * wrong result. The wrong results come from a $DIME prefix that corrupts
 * what the emulated part produces (its output, or a server that loses
 * data), as a broken emulator would. Small sizes keep this quick. The
 * tests run from the source tree's root, as `make check` does. */
#define _GNU_SOURCE
#include "harness.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Writes an executable script; its path. */
static char *script(const char *name, const char *text)
{
	char *path = temp_path(name);
	write_file(path, text);
	cr_assert(!chmod(path, 0755));
	return path;
}

static struct dime_result workload(const char *name, const char *dime, const char *const sizes[])
{
	char *path, *env_dime;
	cr_assert_neq(asprintf(&path, "workloads/%s.sh", name), -1);
	cr_assert(file_exists(path), "%s: run the tests from the source tree's root", path);
	cr_assert_neq(asprintf(&env_dime, "DIME=%s", dime ? dime : ""), -1);
	const char *env[8];
	size_t n = 0;
	env[n++] = env_dime;
	for (; *sizes; sizes++)
		env[n++] = *sizes;
	env[n] = NULL;
	struct dime_result r = run_exe(path, (const char *const[]){ path, NULL }, env);
	free(path);
	free(env_dime);
	return r;
}

/* Natively: exit 0 and exactly one line, "dime-metric: VALUE UNIT". */
static void assert_passes(const char *name, const char *dime, const char *const sizes[])
{
	struct dime_result r = workload(name, dime, sizes);
	cr_assert_eq(r.status, 0, "%s: status %d, stderr: %s", name, r.status, r.err);
	double v;
	char unit[32];
	cr_assert_eq(count_lines(r.out), 1, "%s: %s", name, r.out);
	cr_assert_eq(sscanf(r.out, "dime-metric: %lf %31s", &v, unit), 2, "%s: %s", name, r.out);
	cr_assert_gt(v, 0);
	dime_result_free(&r);
}

/* With a corrupting prefix: exit 1 and the reason on stderr. */
static void assert_caught(const char *name, const char *dime, const char *const sizes[])
{
	struct dime_result r = workload(name, dime, sizes);
	cr_assert_eq(r.status, 1, "%s: a wrong result passed (status %d): %s", name, r.status,
		     r.out);
	char *prefix;
	cr_assert_neq(asprintf(&prefix, "workload %s: ", name), -1);
	cr_assert(strstr(r.err, prefix), "%s", r.err);
	cr_assert(!strstr(r.out, "dime-metric"), "a failed run reported a metric: %s", r.out);
	free(prefix);
	dime_result_free(&r);
}

/* The program's stdout with one digit of its first line changed. */
#define CORRUPT_STDOUT "#!/bin/bash\nset -o pipefail\n\"$@\" | sed '1s/[0-9]/#/'\n"

Test(workloads, sqlite)
{
	const char *const sizes[] = { "SQLITE_ROWS=5000", NULL };
	assert_passes("sqlite", NULL, sizes);
	assert_caught("sqlite", script("corrupt", CORRUPT_STDOUT), sizes);
}

Test(workloads, a_bad_size_is_bad_usage)
{
	const char *const bad[][2] = { { "SQLITE_ROWS=abc", NULL }, { "PY_ITEMS=0", NULL },
				       { "REDIS_OPS=-5", NULL }, { "SORT_LINES=1e6", NULL } };
	const char *const names[] = { "sqlite", "python", "redis", "sort" };
	for (size_t i = 0; i < 4; i++) {
		struct dime_result r = workload(names[i], NULL, bad[i]);
		cr_assert_eq(r.status, 2, "%s: status %d", names[i], r.status);
		cr_assert(strstr(r.err, "bad value for"), "%s: %s", names[i], r.err);
		cr_assert_str_empty(r.out);
		dime_result_free(&r);
	}
}

Test(workloads, python)
{
	const char *const sizes[] = { "PY_ITEMS=20000", NULL };
	assert_passes("python", NULL, sizes);
	assert_caught("python", script("corrupt", CORRUPT_STDOUT), sizes);
}

Test(workloads, sort)
{
	const char *const sizes[] = { "SORT_LINES=20000", NULL };
	assert_passes("sort", NULL, sizes);
	/* Drops the fifth line of the file after -o. */
	assert_caught("sort",
		      script("corrupt", "#!/bin/bash\n\"$@\" || exit\nprev=\n"
					"for a; do [ \"$prev\" = -o ] && sed -i 5d \"$a\"; prev=$a; done\n"),
		      sizes);
}

Test(workloads, xz)
{
	const char *const sizes[] = { "XZ_MB=1", "XZ_DICT_MB=1", NULL };
	assert_passes("xz", NULL, sizes);
	/* The compressed stream loses its last bytes. */
	assert_caught("xz", script("corrupt", "#!/bin/bash\nset -o pipefail\n\"$@\" | head -c -64\n"),
		      sizes);
}

Test(workloads, redis)
{
	const char *const sizes[] = { "REDIS_KEYS=5000", "REDIS_OPS=5000", "REDIS_CHECK_KEYS=500",
				      NULL };
	assert_passes("redis", NULL, sizes);
	/* A server that evicts keys at random: values get lost. */
	assert_caught("redis",
		      script("lossy", "#!/bin/sh\nexec \"$@\" --maxmemory 2mb "
				      "--maxmemory-policy allkeys-random\n"),
		      sizes);
}

Test(workloads, memcached)
{
	const char *const sizes[] = { "MEMC_OPS=20000", "MEMC_CHECK_KEYS=500", NULL };
	assert_passes("memcached", NULL, sizes);
	/* 2 MB for 3 MB of objects: memcached evicts. */
	assert_caught("memcached", script("lossy", "#!/bin/sh\nexec \"$@\" -m 2 -I 512k\n"), sizes);
}

Test(workloads, correct_under_dime_below_the_footprint)
{
	require_preload();
	char *dime;
	/* sqlite's 5000 rows take ~500 pages; 100 local pages make it fetch. */
	cr_assert_neq(asprintf(&dime, "%s run --local-pages 100 --latency-ns 1000 --", dime_path()), -1);
	const char *const sizes[] = { "SQLITE_ROWS=5000", NULL };
	assert_passes("sqlite", dime, sizes);
	const char *const py[] = { "PY_ITEMS=5000", NULL };
	assert_passes("python", dime, py);
	free(dime);
}
