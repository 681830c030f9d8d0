/* dime sweep: bad input refused before anything runs; a small grid over
 * the demo workload gives the CSV, the plots and the trend; failures are
 * recorded and make the sweep fail; the $DIME contract of --delegate. */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SWEEP(...) dime_run("sweep", __VA_ARGS__)

static const char *const columns[] = {
	"point",	  "repeat",	      "local_pages",	  "local_percent",
	"latency_ns",	  "bandwidth_bps",    "metric",		  "metric_unit",
	"wall_s",	  "exit_status",      "error",		  "remote_faults",
	"first_touch_faults", "evictions",    "local_pages_peak", "injected_delay_ns",
	"handling_ns",	  "processes",
};
#define NCOLS (sizeof(columns) / sizeof(columns[0]))

/* The demo workload prints "checksum HEX  N ops/s". */
#define DEMO_METRIC "checksum [0-9a-f]+ +([0-9]+) ops/s"

struct csv {
	size_t nrows; /* data rows, header excluded */
	char *cell[64][NCOLS];
};

/* Parses DIR/sweep.csv, asserting its header and that every row has every
 * column. */
static struct csv *csv_read(const char *dir)
{
	char *path;
	cr_assert_neq(asprintf(&path, "%s/sweep.csv", dir), -1);
	char *text = read_file_text(path);
	struct csv *c = calloc(1, sizeof(*c));
	cr_assert(c);
	char *save = NULL;
	char *line = strtok_r(text, "\n", &save);
	cr_assert(line, "empty CSV");
	char header[1024] = "";
	for (size_t k = 0; k < NCOLS; k++) {
		strcat(header, k ? "," : "");
		strcat(header, columns[k]);
	}
	cr_assert_str_eq(line, header);
	while ((line = strtok_r(NULL, "\n", &save))) {
		cr_assert_lt(c->nrows, 64);
		size_t k = 0;
		for (char *p = line;; k++) {
			cr_assert_lt(k, NCOLS, "too many columns: %s", line);
			char *comma = strchr(p, ',');
			c->cell[c->nrows][k] = p;
			if (!comma)
				break;
			*comma = 0;
			p = comma + 1;
		}
		cr_assert_eq(k + 1, NCOLS, "%zu columns in a row", k + 1);
		c->nrows++;
	}
	free(path);
	return c;
}

static size_t col(const char *name)
{
	for (size_t k = 0; k < NCOLS; k++)
		if (!strcmp(columns[k], name))
			return k;
	cr_assert_fail("no column %s", name);
	return 0;
}

static const char *cell(const struct csv *c, size_t row, const char *name)
{
	return c->cell[row][col(name)];
}

static uint64_t num(const struct csv *c, size_t row, const char *name)
{
	const char *s = cell(c, row, name);
	char *end;
	cr_assert(*s, "empty %s in row %zu", name, row);
	uint64_t v = strtoull(s, &end, 10);
	cr_assert(!*end, "%s is not a number: '%s'", name, s);
	return v;
}

/* The row at these parameters (the first if repeated). */
static size_t row_at(const struct csv *c, uint64_t pages, uint64_t lat)
{
	for (size_t r = 0; r < c->nrows; r++)
		if (num(c, r, "local_pages") == pages && num(c, r, "latency_ns") == lat)
			return r;
	cr_assert_fail("no row at %" PRIu64 " pages, %" PRIu64 " ns", pages, lat);
	return 0;
}

static void assert_png(const char *dir, const char *name)
{
	char *path;
	cr_assert_neq(asprintf(&path, "%s/%s", dir, name), -1);
	FILE *f = fopen(path, "rb");
	cr_assert(f, "no plot %s", path);
	unsigned char magic[8];
	cr_assert_eq(fread(magic, 1, 8, f), 8);
	fclose(f);
	cr_assert(!memcmp(magic, "\x89PNG\r\n\x1a\n", 8), "%s is not a PNG", path);
	free(path);
}

Test(sweep, a_grid_gives_the_csv_the_plots_and_the_trend)
{
	require_preload();
	char *out = temp_path("out");
	const char *demo = build_file("demo-workload");
	struct dime_result r = SWEEP("--local-pages", "100,300", "--latency-ns", "0,20000",
				     "--metric", DEMO_METRIC, "-o", out, "--", demo, "20000", "20000");
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert(strstr(r.err, "[4/4]"), "no progress on stderr: %s", r.err);
	cr_assert_str_empty(r.out);

	struct csv *c = csv_read(out);
	cr_assert_eq(c->nrows, 4);
	const uint64_t pages[] = { 100, 300 }, lats[] = { 0, 20000 };
	for (size_t l = 0; l < 2; l++) {
		size_t lo = row_at(c, pages[0], lats[l]), hi = row_at(c, pages[1], lats[l]);
		for (size_t k = 0; k < 2; k++) {
			size_t row = k ? hi : lo;
			cr_assert_eq(num(c, row, "exit_status"), 0);
			cr_assert_str_empty(cell(c, row, "error"));
			cr_assert_str_empty(cell(c, row, "local_percent"));
			cr_assert_eq(num(c, row, "bandwidth_bps"), 1000000000);
			cr_assert_eq(num(c, row, "repeat"), 1);
			cr_assert_gt(num(c, row, "metric"), 0);
			cr_assert_leq(num(c, row, "local_pages_peak"), pages[k]);
			cr_assert_geq(num(c, row, "processes"), 1);
		}
		/* The demo's ~430 pages do not fit in 100 local pages; in 300
		 * most of them do: fewer remote faults. */
		cr_assert_gt(num(c, lo, "remote_faults"), 2 * num(c, hi, "remote_faults"),
			     "remote faults at 100 pages: %" PRIu64 ", at 300: %" PRIu64,
			     num(c, lo, "remote_faults"), num(c, hi, "remote_faults"));
		cr_assert_gt(num(c, lo, "evictions"), num(c, hi, "evictions"));
	}
	/* 20 us of latency costs the same faults more time in dime's
	 * handlers (busy-wait, and evictions done inside the wait) than
	 * latency 0: at least a quarter of each 2 x 20 us (faults that pay
	 * back an earlier one's lateness wait less; ~27 us more per fault
	 * on a VM whose page moves are dear, ~40 us on others). */
	size_t l0 = row_at(c, 100, 0), l20 = row_at(c, 100, 20000);
	uint64_t spent0 = num(c, l0, "injected_delay_ns") + num(c, l0, "handling_ns");
	uint64_t spent20 = num(c, l20, "injected_delay_ns") + num(c, l20, "handling_ns");
	cr_assert_gt(num(c, l20, "injected_delay_ns"), num(c, l0, "injected_delay_ns"));
	cr_assert_gt(spent20, spent0 + num(c, l20, "remote_faults") * 10000,
		     "handler time at latency 0: %" PRIu64 " ns, at 20 us: %" PRIu64 " ns, %" PRIu64
		     " faults",
		     spent0, spent20, num(c, l20, "remote_faults"));

	assert_png(out, "by-latency-bw-1000000000.png");
	assert_png(out, "by-bandwidth-lat-0.png");
	assert_png(out, "by-bandwidth-lat-20000.png");
	dime_result_free(&r);
}

Test(sweep, percent_of_the_measured_footprint)
{
	require_preload();
	char *out = temp_path("out");
	struct dime_result r = SWEEP("--local-percent", "25,100", "--latency-ns=1000",
				     "--bandwidth-bps", "1000000000,10000000000", "--metric",
				     DEMO_METRIC, "--no-plot", "-o", out, "--",
				     build_file("demo-workload"), "20000", "20000");
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert(strstr(r.err, "footprint"), "%s", r.err);

	char *fp_path;
	cr_assert_neq(asprintf(&fp_path, "%s/runs/footprint.json", out), -1);
	uint64_t footprint;
	cr_assert(json_u64(read_file_text(fp_path), "local_pages_peak", &footprint));
	cr_assert_gt(footprint, 300);

	struct csv *c = csv_read(out);
	cr_assert_eq(c->nrows, 4);
	for (size_t row = 0; row < 4; row++) {
		uint64_t pct = num(c, row, "local_percent");
		cr_assert(pct == 25 || pct == 100);
		cr_assert_eq(num(c, row, "local_pages"), (footprint * pct + 50) / 100);
		/* Everything fits at 100%: not one remote fault. */
		if (pct == 100)
			cr_assert_eq(num(c, row, "remote_faults"), 0);
		else
			cr_assert_gt(num(c, row, "remote_faults"), 0);
	}
	char *png;
	cr_assert_neq(asprintf(&png, "%s/by-latency-bw-1000000000.png", out), -1);
	cr_assert(!file_exists(png), "--no-plot drew plots");
	dime_result_free(&r);
}

Test(sweep, a_failed_run_is_recorded_and_fails_the_sweep)
{
	require_preload();
	char *out = temp_path("out");
	struct dime_result r = SWEEP("--local-pages", "10,20", "--no-plot", "-o", out, "--", "sh",
				     "-c", "echo 'dime-metric: 7 ops/s'; exit 3");
	cr_assert_eq(r.status, 1, "stderr: %s", r.err);
	cr_assert(strstr(r.err, "FAILED (exit 3)"), "%s", r.err);
	cr_assert(strstr(r.err, "2 failed"), "%s", r.err);
	struct csv *c = csv_read(out);
	cr_assert_eq(c->nrows, 2, "a failed run stopped the sweep");
	for (size_t row = 0; row < 2; row++) {
		cr_assert_eq(num(c, row, "exit_status"), 3);
		cr_assert_str_eq(cell(c, row, "error"), "exit 3");
	}
	dime_result_free(&r);

	/* Exit 0 without the metric line is a failure too. */
	out = temp_path("out");
	r = SWEEP("--local-pages", "10", "--no-plot", "-o", out, "--", "true");
	cr_assert_eq(r.status, 1, "stderr: %s", r.err);
	c = csv_read(out);
	cr_assert_eq(c->nrows, 1);
	cr_assert_str_eq(cell(c, 0, "error"), "no metric");
	cr_assert_str_empty(cell(c, 0, "metric"));
	dime_result_free(&r);
}

Test(sweep, a_run_past_the_timeout_is_stopped_and_failed)
{
	require_preload();
	char *out = temp_path("out");
	struct dime_result r = SWEEP("--local-pages", "10", "--timeout", "1", "--no-plot", "-o",
				     out, "--", "sh", "-c", "echo dime-metric: 1 ops/s; sleep 60");
	cr_assert_eq(r.status, 1, "stderr: %s", r.err);
	cr_assert(strstr(r.err, "FAILED (timeout)"), "%s", r.err);
	struct csv *c = csv_read(out);
	cr_assert_eq(c->nrows, 1);
	cr_assert_str_eq(cell(c, 0, "error"), "timeout");
	cr_assert_lt(strtod(cell(c, 0, "wall_s"), NULL), 30, "the run was not stopped");
	dime_result_free(&r);
}

Test(sweep, delegate_hands_the_prefix_over_in_DIME)
{
	require_preload();
	char *out = temp_path("out");
	/* The command emulates only its inner part, with $DIME. */
	struct dime_result r = SWEEP("--delegate", "--local-pages", "10", "--no-plot", "-o", out,
				     "--", "sh", "-c",
				     "case \"$DIME\" in *' run '*'--local-pages=10 '*' --') ;; *) exit 9;; esac;"
				     " $DIME sh -c 'echo dime-metric: 42.5 widgets/s'");
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	struct csv *c = csv_read(out);
	cr_assert_eq(c->nrows, 1);
	cr_assert_str_eq(cell(c, 0, "metric"), "42.5");
	cr_assert_str_eq(cell(c, 0, "metric_unit"), "widgets/s");
	cr_assert_geq(num(c, 0, "processes"), 1);
	dime_result_free(&r);

	/* A command that ignores $DIME emulated nothing: a failure. */
	out = temp_path("out");
	r = SWEEP("--delegate", "--local-pages", "10", "--no-plot", "-o", out, "--", "sh", "-c",
		  "echo dime-metric: 1 ops/s");
	cr_assert_eq(r.status, 1, "stderr: %s", r.err);
	c = csv_read(out);
	cr_assert(strstr(cell(c, 0, "error"), "no stats"), "%s", cell(c, 0, "error"));
	dime_result_free(&r);
}

Test(sweep, metric_time_is_the_wall_time)
{
	require_preload();
	char *out = temp_path("out");
	struct dime_result r = SWEEP("--local-pages", "10", "--metric", "time", "-o", out, "--",
				     "sh", "-c", "sleep 0.3");
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	struct csv *c = csv_read(out);
	double metric = strtod(cell(c, 0, "metric"), NULL);
	double wall = strtod(cell(c, 0, "wall_s"), NULL);
	cr_assert_geq(metric, 0.3);
	cr_assert_float_eq(metric, wall, 0.001);
	assert_png(out, "by-latency-bw-1000000000.png");
	dime_result_free(&r);
}

/* Each is refused with exit 2, one line naming the culprit, and neither the
 * command nor the output directory comes to exist. */
Test(sweep, bad_input_runs_nothing)
{
	static const struct {
		const char *token;
		const char *args[8];
	} cases[] = {
		{ "--local-pages", { "--local-pages", "0" } },
		{ "'x'", { "--local-pages", "x" } },
		{ "'10:5:1'", { "--local-pages", "10:5:1" } },
		{ "'1,,2'", { "--local-pages", "1,,2" } },
		{ "'1,'", { "--local-pages", "1," } },
		{ "--local-pages", { "--local-pages", "" } },
		{ "'0'", { "--local-percent", "0" } },
		{ "'101'", { "--local-percent", "101" } },
		{ "'5.5'", { "--local-percent", "5.5" } },
		{ "'-1'", { "--local-pages", "5", "--latency-ns", "-1" } },
		{ "--bandwidth-bps", { "--local-pages", "5", "--bandwidth-bps", "1,0" } },
		{ "--repeat", { "--local-pages", "5", "--repeat", "0" } },
		{ "--timeout", { "--local-pages", "5", "--timeout", "0" } },
		{ "--timeout", { "--local-pages", "5", "--timeout", "1s" } },
		{ "--metric", { "--local-pages", "5", "--metric", "(" } },
		{ "capture group", { "--local-pages", "5", "--metric", "ops/s" } },
		{ "--stats-json", { "--local-pages", "5", "--stats-json", "f" } },
		{ "--bogus", { "--local-pages", "5", "--bogus" } },
		{ "'nope'", { "--local-pages", "5", "--policy", "nope" } },
		{ "'fast'", { "--local-pages", "5", "--mode", "fast" } },
		{ "--delegate", { "--local-pages", "5", "--delegate=yes" } },
		{ "--local-percent", { "--local-pages", "5", "--local-percent", "5" } },
		{ "--local-pages", { "--latency-ns", "5" } },
		{ "--repeat", { "--local-pages", "5", "--repeat" } },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = temp_path("out"), *marker = temp_path("started");
		const char *argv[24];
		size_t n = 0;
		argv[n++] = "dime";
		argv[n++] = "sweep";
		argv[n++] = "-o";
		argv[n++] = out;
		for (const char *const *a = cases[i].args; *a; a++)
			argv[n++] = *a;
		/* A trailing option that wants a value takes "--" as missing. */
		argv[n++] = "--";
		argv[n++] = "touch";
		argv[n++] = marker;
		argv[n] = NULL;
		struct dime_result r = run_exe(NULL, argv, NULL);
		assert_refused(&r, cases[i].token);
		cr_assert(!file_exists(marker), "case %zu ran the command", i);
		cr_assert(!file_exists(out), "case %zu created the output directory", i);
		dime_result_free(&r);
	}
}

Test(sweep, bad_command_and_output_run_nothing)
{
	char *out = temp_path("out");
	struct dime_result r = SWEEP("--local-pages", "5", "-o", out, "--", "no-such-command-dime");
	assert_refused(&r, "no-such-command-dime");
	cr_assert(!file_exists(out));
	dime_result_free(&r);

	r = SWEEP("--local-pages", "5", "-o", "/nonexistent-dime/out", "--", "true");
	assert_refused(&r, "/nonexistent-dime/out");
	dime_result_free(&r);

	r = SWEEP("--local-pages", "5");
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "no command"), "%s", r.err);
	dime_result_free(&r);
}

Test(sweep, help_lists_every_option)
{
	static const char *const options[] = {
		"--local-pages", "--local-percent", "--latency-ns", "--bandwidth-bps", "--repeat", "--timeout",
		"--metric",	 "--delegate",	    "--output",	    "--no-plot",       "--policy",
		"--first-touch", "--bandwidth-model", "--mode",	    "--config",	       "--stats",
	};
	struct dime_result r = SWEEP("--help");
	cr_assert_eq(r.status, 0);
	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
		cr_assert(strstr(r.out, options[i]), "help lacks %s", options[i]);
	dime_result_free(&r);
}

/* SIGTERM to dime sweep stops the run in progress too, and the sweep ends
 * with 128 + 15 without recording the interrupted run. */
Test(sweep, a_stop_signal_stops_the_run_in_progress)
{
	require_preload();
	char *out = temp_path("out"), *pidfile = temp_path("pid");
	char *cmd;
	cr_assert_neq(asprintf(&cmd, "echo $$ > %s.tmp; mv %s.tmp %s; exec sleep 60", pidfile,
			       pidfile, pidfile), -1);
	pid_t sweep = dime_start((const char *const[]){ "dime", "sweep", "--local-pages", "10",
							"--no-plot", "-o", out, "--", "sh", "-c",
							cmd, NULL });
	for (int i = 0; i < 3000 && !file_exists(pidfile); i++)
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	cr_assert(file_exists(pidfile), "the run did not start");
	pid_t run = (pid_t)atoi(read_file_text(pidfile));
	cr_assert_gt(run, 0);
	cr_assert(!kill(sweep, SIGTERM));
	cr_assert_eq(dime_wait(sweep, 30), 128 + SIGTERM);
	/* dime run reaps its program; give it a moment to. */
	for (int i = 0; i < 500 && !kill(run, 0); i++)
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	cr_assert(kill(run, 0) && errno == ESRCH, "the run outlived the sweep");
	struct csv *c = csv_read(out);
	cr_assert_eq(c->nrows, 0);
}
