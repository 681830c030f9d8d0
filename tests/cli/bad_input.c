/* Bad input: exit status 2, one line on stderr naming the culprit, and the
 * program never started. None of this needs the preload library: dime
 * checks everything the user typed before it looks for it. */
#define _GNU_SOURCE
#include "harness.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Stands for `touch MARKER` in an argument list: the program that must not
 * run. */
#define TOUCH "\001touch"

static void refused_by(const char *exe, const char *token, const char *const args[])
{
	char *marker = temp_path("started");
	const char *argv[64];
	size_t n = 0;
	argv[n++] = "dime";
	for (; *args; args++) {
		cr_assert_lt(n, 60);
		if (!strcmp(*args, TOUCH)) {
			argv[n++] = "touch";
			argv[n++] = marker;
		} else {
			argv[n++] = *args;
		}
	}
	argv[n] = NULL;
	struct dime_result r = run_exe(exe, argv, NULL);
	assert_refused(&r, token);
	cr_assert(!file_exists(marker), "the program ran although dime refused");
	dime_result_free(&r);
	free(marker);
}

#define REFUSED(token, ...) refused_by(NULL, token, (const char *const[]){ __VA_ARGS__, NULL })

/* A config file holding `text`; its path. */
static char *conf(const char *text)
{
	char *p = temp_path("dime.conf");
	write_file(p, text);
	return p;
}

Test(bad_input, unknown_option)
{
	REFUSED("unknown option: '--foo'", "run", "--foo", "--", TOUCH);
	REFUSED("'--foo=1'", "run", "--foo=1", TOUCH);
	REFUSED("'-x'", "run", "-x", TOUCH);
	/* Near misses of real options are not abbreviations. */
	REFUSED("'--latency'", "run", "--latency", "5", TOUCH);
	REFUSED("'--statsx'", "run", "--statsx", TOUCH);
}

Test(bad_input, not_a_number)
{
	REFUSED("bad value for --latency-ns: '12x'", "run", "--latency-ns", "12x", "--", TOUCH);
	REFUSED("'0x10'", "run", "--latency-ns", "0x10", TOUCH);
	REFUSED("'1e9'", "run", "--bandwidth-bps", "1e9", TOUCH);
	REFUSED("'abc'", "run", "--local-pages=abc", TOUCH);
	REFUSED("'1.5'", "run", "--local-pages", "1.5", TOUCH);
}

Test(bad_input, signs_blanks_and_empty)
{
	REFUSED("'-5'", "run", "--latency-ns", "-5", TOUCH);
	REFUSED("'-1'", "run", "--local-pages=-1", TOUCH);
	REFUSED("'+5'", "run", "--latency-ns", "+5", TOUCH);
	REFUSED("' 5'", "run", "--latency-ns", " 5", TOUCH);
	REFUSED("'5 '", "run", "--latency-ns", "5 ", TOUCH);
	REFUSED("--latency-ns: ''", "run", "--latency-ns=", TOUCH);
	REFUSED("--bandwidth-bps: ''", "run", "--bandwidth-bps", "", TOUCH);
}

Test(bad_input, overflow)
{
	REFUSED("'18446744073709551616'", "run", "--latency-ns", "18446744073709551616", TOUCH);
	REFUSED("'99999999999999999999999'", "run", "--local-pages", "99999999999999999999999",
		TOUCH);
	/* Fits in 64 bits, but the fetch time would not. */
	REFUSED("'18446744073709551615'", "run", "--latency-ns", "18446744073709551615", TOUCH);
}

Test(bad_input, zero_bandwidth_and_local_pages)
{
	REFUSED("--bandwidth-bps", "run", "--bandwidth-bps", "0", TOUCH);
	REFUSED("'0'", "run", "--bandwidth-bps=0", TOUCH);
	REFUSED("--local-pages", "run", "--local-pages", "0", TOUCH);
	REFUSED("'00'", "run", "--local-pages", "00", TOUCH);
}

Test(bad_input, bad_names)
{
	REFUSED("'mru'", "run", "--policy", "mru", TOUCH);
	REFUSED("'FIFO'", "run", "--policy=FIFO", TOUCH);
	REFUSED("'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'", "run", "--policy",
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", TOUCH);
	REFUSED("'maybe'", "run", "--first-touch", "maybe", TOUCH);
	REFUSED("'both'", "run", "--bandwidth-model", "both", TOUCH);
	REFUSED("'fast'", "run", "--mode", "fast", TOUCH);
	REFUSED("--mode (thread|signal): ''", "run", "--mode=", TOUCH);
}

Test(bad_input, missing_value)
{
	REFUSED("'--latency-ns'", "run", "--latency-ns");
	REFUSED("'--mode'", "run", "--mode", "--", TOUCH);
	REFUSED("'--config'", "run", "--config");
	REFUSED("'-c'", "run", "-c");
	REFUSED("'--stats-json'", "run", "--stats-json", "--", TOUCH);
}

Test(bad_input, value_given_to_a_flag)
{
	REFUSED("'--stats=yes'", "run", "--stats=yes", TOUCH);
	REFUSED("'--help=1'", "run", "--help=1", TOUCH);
}

Test(bad_input, missing_program)
{
	REFUSED("dime run: no program given", "run");
	REFUSED("no program given", "run", "--");
	REFUSED("no program given", "run", "--stats", "--latency-ns", "5", "--");
}

Test(bad_input, subcommands_and_global_options)
{
	REFUSED("unknown subcommand: 'frobnicate'", "frobnicate", TOUCH);
	REFUSED("unknown option: '--frob'", "--frob", "run", TOUCH);
	REFUSED("unknown subcommand: 'frob'", "help", "frob");
	/* No subcommand at all. */
	struct dime_result r = run_exe(NULL, (const char *const[]){ "dime", NULL }, NULL);
	assert_refused(&r, "dime --help");
	dime_result_free(&r);
}

Test(bad_input, control_characters_stay_on_one_line)
{
	REFUSED("bad value for --latency-ns: '1?2'", "run", "--latency-ns", "1\n2", TOUCH);
	REFUSED("unknown option: '--a?b'", "run", "--a\nb", TOUCH);
}

Test(bad_input, config_unknown_key)
{
	char *c = conf("# header\nlatency_ns 5\nlatncy_ns 7\n");
	char *want;
	cr_assert_neq(asprintf(&want, "config file %s line 3: unknown key 'latncy_ns'", c), -1);
	REFUSED(want, "run", "-c", c, TOUCH);
	/* DiME's /proc syntax is not its file syntax. */
	REFUSED("'latency_ns=5'", "run", "-c", conf("latency_ns=5\n"), TOUCH);
}

Test(bad_input, config_bad_values)
{
	REFUSED("line 1: bad value for latency_ns: '12x'", "run", "-c", conf("latency_ns 12x\n"),
		TOUCH);
	REFUSED("line 2: bad value for bandwidth_bps (must be > 0): '0'", "run", "--config",
		conf("\nbandwidth_bps 0 # no link\n"), TOUCH);
	char *opt;
	cr_assert_neq(asprintf(&opt, "--config=%s", conf("local_npages 0\n")), -1);
	REFUSED("bad value for local_npages (must be > 0): '0'", "run", opt, TOUCH);
	REFUSED("'-3'", "run", "-c", conf("latency_ns -3\n"), TOUCH);
	REFUSED("'99999999999999999999'", "run", "-c", conf("local_npages 99999999999999999999\n"),
		TOUCH);
	REFUSED("'mru'", "run", "-c", conf("policy mru\n"), TOUCH);
	REFUSED("'fast'", "run", "-c", conf("mode fast\n"), TOUCH);
	REFUSED("'sometimes'", "run", "-c", conf("first_touch sometimes\n"), TOUCH);
	REFUSED("'both'", "run", "-c", conf("bandwidth_model both\n"), TOUCH);
}

Test(bad_input, config_bad_value_is_not_hidden_by_an_option)
{
	/* All or nothing: a broken file is refused even where an option
	 * would have overridden the line. */
	REFUSED("'12x'", "run", "--latency-ns", "5", "-c", conf("latency_ns 12x\n"), TOUCH);
}

Test(bad_input, config_line_shape)
{
	REFUSED("line 2: missing value for key: 'latency_ns'", "run", "-c",
		conf("local_npages 10\nlatency_ns   # none\n"), TOUCH);
	REFUSED("line 1: unexpected text after the value: '6'", "run", "-c",
		conf("latency_ns 5 6\n"), TOUCH);
}

Test(bad_input, config_unreadable)
{
	char *missing = temp_path("absent.conf");
	REFUSED(missing, "run", "-c", missing, TOUCH);
	REFUSED("Is a directory", "run", "-c", "/", TOUCH);
}

Test(bad_input, stats_json_unwritable)
{
	char *dir = temp_path("no-such-dir");
	char *path;
	cr_assert_neq(asprintf(&path, "%s/stats.json", dir), -1);
	REFUSED(path, "run", "--stats-json", path, TOUCH);
	REFUSED("'/'", "run", "--stats-json=/", TOUCH);
	REFUSED("--stats-json: ''", "run", "--stats-json", "", TOUCH);
}

/* Copies a file into dir, keeping it executable. */
static void copy_into(const char *src, const char *dir)
{
	char *cmd;
	cr_assert_neq(asprintf(&cmd, "cp '%s' '%s'/", src, dir), -1);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	free(cmd);
}

Test(bad_input, missing_preload)
{
	/* A dime whose directory lacks the preload (its rpath finds
	 * libdime.so next to it). */
	char *dir = temp_path("bin");
	cr_assert(!mkdir(dir, 0755));
	copy_into(dime_path(), dir);
	copy_into(build_file("libdime.so"), dir);
	char *exe;
	cr_assert_neq(asprintf(&exe, "%s/dime", dir), -1);
	refused_by(exe, "libdime-preload.so'", (const char *const[]){ "run", TOUCH, NULL });
	/* ...and bad input is still reported as bad input. */
	refused_by(exe, "'12x'",
		   (const char *const[]){ "run", "--latency-ns", "12x", TOUCH, NULL });
}
