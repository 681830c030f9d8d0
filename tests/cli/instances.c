/* dime config: DiME's table, byte for byte, and its write grammar: every
 * key, every error, all or nothing. */
#define _GNU_SOURCE
#include "control.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define HEADER "instance_id latency_ns bandwidth_bps local_npages page_fault_count pid\n"

#define write_ok ctl_write_ok

/* The write is refused naming `token`, and the table did not change. */
static void write_refused(const char *text, const char *token)
{
	char *before = ctl_table_text();
	struct dime_result r = CTL("config", text);
	assert_refused(&r, token);
	dime_result_free(&r);
	char *after = ctl_table_text();
	cr_assert_str_eq(after, before, "'%s' changed the table", text);
	free(before);
	free(after);
}

Test(dime_config, empty_table_is_the_header)
{
	char *t = ctl_table_text();
	cr_assert_str_eq(t, HEADER);
	free(t);
}

Test(dime_config, table_byte_for_byte)
{
	write_ok("instance_id=0 latency_ns=1000 bandwidth_bps=1000000000 local_npages=2000");
	write_ok("instance_id=1 latency_ns=123456789 bandwidth_bps=25000000000 local_npages=7");
	char *t = ctl_table_text();
	cr_assert_str_eq(t, HEADER
			 "          0       1000    1000000000         2000                0 \n"
			 "          1  123456789   25000000000            7                0 \n");
	free(t);
}

Test(dime_config, a_new_instance_starts_from_the_defaults)
{
	write_ok("instance_id=0");
	write_ok("instance_id=1 local_npages=5");
	char *t = ctl_table_text();
	cr_assert_str_eq(t, HEADER
			 "          0       2000    1000000000       100000                0 \n"
			 "          1       2000    1000000000            5                0 \n");
	free(t);
}

Test(dime_config, each_key_changes_only_itself)
{
	write_ok("instance_id=0");
	write_ok("instance_id=0 latency_ns=5");
	write_ok("instance_id=0 bandwidth_bps=6");
	write_ok("instance_id=0 local_npages=7");
	write_ok("instance_id=0 page_fault_count=8");
	char *t = ctl_table_text();
	cr_assert_str_eq(t, HEADER
			 "          0          5             6            7                8 \n");
	free(t);
	write_ok("instance_id=0 page_fault_count=0");
	write_ok("instance_id=0 pid=");
	t = ctl_table_text();
	cr_assert_str_eq(t, HEADER
			 "          0          5             6            7                0 \n");
	free(t);
}

Test(dime_config, blanks_and_several_arguments)
{
	struct dime_result r = CTL("config", "instance_id=0", "latency_ns=9", "\tlocal_npages=3\n");
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	dime_result_free(&r);
	char *t = ctl_table_text();
	cr_assert_str_eq(t, HEADER
			 "          0          9    1000000000            3                0 \n");
	free(t);
}

Test(dime_config, every_error_names_its_token)
{
	write_ok("instance_id=0 latency_ns=100");
	write_refused("latency_ns=5", "instance_id");
	write_refused("", "instance_id");
	write_refused("instance_id=0 colour=blue", "colour=blue");
	write_refused("instance_id=0 latency_ns", "latency_ns");
	write_refused("instance_id=0 =5", "=5");
	write_refused("instance_id=0 latency_ns=1 latency_ns=2", "latency_ns=2");
	write_refused("instance_id=0 latency_ns=abc", "latency_ns=abc");
	write_refused("instance_id=0 latency_ns=", "latency_ns=");
	write_refused("instance_id=0 latency_ns=-1", "latency_ns=-1");
	write_refused("instance_id=0 latency_ns=+1", "latency_ns=+1");
	write_refused("instance_id=0 latency_ns=18446744073709551616", "latency_ns=18446744073709551616");
	write_refused("instance_id=0 latency_ns=9223372036854775807", "latency_ns=9223372036854775807");
	write_refused("instance_id=0 bandwidth_bps=0", "bandwidth_bps=0");
	write_refused("instance_id=0 bandwidth_bps=1e9", "bandwidth_bps=1e9");
	write_refused("instance_id=0 local_npages=0", "local_npages=0");
	write_refused("instance_id=0 local_npages=x", "local_npages=x");
	write_refused("instance_id=0 page_fault_count=x", "page_fault_count=x");
	write_refused("instance_id=x", "instance_id=x");
	write_refused("instance_id=2", "instance_id=2");
	write_refused("instance_id=64", "instance_id=64");
	write_refused("instance_id=0 pid=12,,13", "pid=12,,13");
	write_refused("instance_id=0 pid=abc", "pid=abc");
	write_refused("instance_id=0 pid=0", "pid=0");
	write_refused("instance_id=0 pid=-5", "pid=-5");
	/* pid 1 runs, but not under dime. */
	write_refused("instance_id=0 pid=1", "pid 1");
}

Test(dime_config, all_or_nothing)
{
	write_ok("instance_id=0 latency_ns=100 local_npages=10");
	/* A good key before a bad one is not applied either. */
	write_refused("instance_id=0 latency_ns=5 local_npages=0", "local_npages=0");
	write_refused("instance_id=1 latency_ns=5 colour=x", "colour=x");
	char *t = ctl_table_text();
	cr_assert_str_eq(t, HEADER
			 "          0        100    1000000000           10                0 \n");
	free(t);
}

Test(dime_config, usage_and_bad_options)
{
	struct dime_result r = CTL("config", "--help");
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "usage: dime config"), "%s", r.out);
	dime_result_free(&r);
	r = CTL("config", "--frobnicate");
	assert_refused(&r, "--frobnicate");
	dime_result_free(&r);
}

static struct dime_result config_in(const char *dir)
{
	char *e;
	cr_assert_neq(asprintf(&e, "DIME_CONTROL_DIR=%s", dir), -1);
	return run_exe(NULL, (const char *const[]){ "dime", "config", NULL },
		       (const char *const[]){ e, NULL });
}

Test(dime_config, control_directory_is_private)
{
	/* Made 0700 when missing. */
	char *fresh = temp_path("new");
	struct dime_result r = config_in(fresh);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	dime_result_free(&r);
	struct stat st;
	cr_assert(!stat(fresh, &st));
	cr_assert_eq(st.st_mode & 0777, 0700);
	/* Open to others: refused. */
	char *open_dir = temp_path("open");
	cr_assert(!mkdir(open_dir, 0777));
	cr_assert(!chmod(open_dir, 0777));
	r = config_in(open_dir);
	assert_refused(&r, open_dir);
	dime_result_free(&r);
	/* A symlink to a good directory: refused too. */
	char *link = temp_path("link");
	cr_assert(!symlink(fresh, link));
	r = config_in(link);
	assert_refused(&r, "symlink");
	dime_result_free(&r);
}
