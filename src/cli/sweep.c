/* dime sweep [options] [--] COMMAND [ARGS...]
 *
 * Runs COMMAND under `dime run` once per point of a grid (local memory x
 * latency x bandwidth, each point --repeat times), reads the command's
 * metric from its output, and writes one CSV row per run and the plots.
 *
 * Everything the user typed is checked before anything runs: bad input
 * exits 2 with one line and leaves no file behind. A run that fails (a
 * non-zero exit status: a workload that found a wrong result, a crash) is
 * recorded in the CSV, reported, and makes the sweep exit 1 at the end;
 * the other points still run.
 *
 * Each run is `dime run` started anew as a child of this process (this
 * very binary, /proc/self/exe), with its counters written by --stats-json
 * into the run's own file. With --delegate the command runs natively and
 * finds that `dime run ... --` prefix in $DIME, to put in front of the
 * part it wants emulated (the workloads/ scripts).
 */
#define _GNU_SOURCE
#include "cli.h"
#include "sweep.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The unconstrained run that measures the footprint: every page can stay. */
#define UNLIMITED_PAGES ((uint64_t)1 << 40)

static void format_duration(char *buf, size_t size, double s)
{
	long t = (long)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, size, "%ldh%02ldm", t / 3600, t / 60 % 60);
	else if (t >= 60)
		snprintf(buf, size, "%ldm%02lds", t / 60, t % 60);
	else
		snprintf(buf, size, "%lds", t);
}

void sweep_format_bps(char *buf, size_t size, uint64_t bps)
{
	static const struct {
		double scale;
		const char *unit;
	} units[] = { { 1e9, "Gb/s" }, { 1e6, "Mb/s" }, { 1e3, "kb/s" }, { 1, "b/s" } };
	for (size_t k = 0; k < sizeof(units) / sizeof(units[0]); k++)
		if ((double)bps >= units[k].scale || units[k].scale == 1) {
			snprintf(buf, size, "%g %s", (double)bps / units[k].scale, units[k].unit);
			return;
		}
}

/* Says where a failed run's reason can be read: its stderr's last line. */
static void csv_header(FILE *f)
{
	fputs("point,repeat,local_pages,local_percent,latency_ns,bandwidth_bps,metric,"
	      "metric_unit,wall_s,exit_status,error",
	      f);
	for (size_t k = 0; k < NCOUNTERS; k++)
		fprintf(f, ",%s", sweep_counters[k]);
	fputc('\n', f);
}

static void csv_row(FILE *f, size_t point, uint64_t rep, uint64_t pages, const uint64_t *pct,
		    uint64_t lat, uint64_t bw, const struct outcome *r)
{
	fprintf(f, "%zu,%" PRIu64 ",%" PRIu64 ",", point, rep, pages);
	if (pct)
		fprintf(f, "%" PRIu64, *pct);
	fprintf(f, ",%" PRIu64 ",%" PRIu64 ",", lat, bw);
	if (r->have_metric)
		fprintf(f, "%.10g", r->metric);
	/* The unit and the error are dime's own words: no commas or quotes. */
	fprintf(f, ",%s,%.3f,%d,%s", r->unit, r->wall_s, r->status, r->error ? r->error : "");
	for (size_t k = 0; k < NCOUNTERS; k++) {
		fputc(',', f);
		if (r->have_stats)
			fprintf(f, "%" PRIu64, r->c[k]);
	}
	fputc('\n', f);
	fflush(f);
}

static void make_dirs(const char *dir)
{
	char *runs = sweep_asprintf("%s/runs", dir);
	if ((mkdir(dir, 0777) && errno != EEXIST) || (mkdir(runs, 0777) && errno != EEXIST)) {
		fprintf(stderr, "dime sweep: cannot create '%s': %s\n", runs, strerror(errno));
		exit(1);
	}
	free(runs);
}

/* A stop signal came: the run it interrupted measured nothing and is not
 * recorded; the rows before it are. */
static void __attribute__((noreturn)) stop(FILE *csv)
{
	if (csv)
		fclose(csv);
	fprintf(stderr, "stopped by signal %d\n", sweep_stopped());
	exit(128 + sweep_stopped());
}

/* The footprint for --local-percent: local_pages_peak of a run that keeps
 * every page local. */
static uint64_t measure_footprint(const struct sweep_opts *o)
{
	struct outcome r;
	fprintf(stderr, "dime sweep: measuring the footprint (one run with no local limit)\n");
	sweep_run_one(o, UNLIMITED_PAGES, o->latencies.v[0], o->bandwidths.v[0], "footprint", &r);
	if (sweep_stopped())
		stop(NULL);
	uint64_t peak = r.c[C_LOCAL_PAGES_PEAK];
	if (r.error || !peak) {
		fprintf(stderr, "dime sweep: the footprint run failed (%s)\n",
			r.error ? r.error : "no page used");
		sweep_report_failure(o, "footprint");
		exit(1);
	}
	fprintf(stderr, "dime sweep: footprint %" PRIu64 " pages, %.1f s", peak, r.wall_s);
	if (r.have_metric && !o->metric_time)
		fprintf(stderr, ", metric %.*f%s%s", r.metric >= 100 ? 0 : 3, r.metric,
			r.unit[0] ? " " : "", r.unit);
	fputc('\n', stderr);
	return peak;
}

int cmd_sweep(int argc, char **argv)
{
	struct sweep_opts o = { .repeat = 1, .plot = true, .out = "dime-sweep" };
	sweep_options(argc, argv, &o);
	sweep_signals_install();
	make_dirs(o.out);

	bool percent = o.percents.n > 0;
	const struct sweep_list *local = percent ? &o.percents : &o.pages;
	uint64_t footprint = percent ? measure_footprint(&o) : 0;

	char *csv_path = sweep_asprintf("%s/sweep.csv", o.out);
	FILE *csv = fopen(csv_path, "we");
	if (!csv) {
		fprintf(stderr, "dime sweep: cannot write '%s': %s\n", csv_path, strerror(errno));
		return 1;
	}
	csv_header(csv);

	size_t nlat = o.latencies.n, nbw = o.bandwidths.n;
	size_t npoints = local->n * nlat * nbw;
	size_t nruns = npoints * o.repeat, done = 0, failed = 0;
	bool *ok = calloc(nlat * nbw, sizeof(*ok));
	char unit[32] = "";
	if (!ok)
		fail("out of memory");
	double t0 = sweep_now();
	/* Repeats outermost: an interrupted sweep has whole grids, and slow
	 * drifts of the machine spread over every point alike. */
	for (uint64_t rep = 1; rep <= o.repeat; rep++) {
		size_t point = 0;
		for (size_t i = 0; i < local->n; i++)
			for (size_t l = 0; l < nlat; l++)
				for (size_t b = 0; b < nbw; b++) {
					point++;
					uint64_t pages = local->v[i];
					if (percent) {
						pages = (footprint * local->v[i] + 50) / 100;
						pages = pages ? pages : 1;
					}
					uint64_t lat = o.latencies.v[l], bw = o.bandwidths.v[b];
					char tag[64], bws[32], where[64];
					snprintf(tag, sizeof(tag), "%zu-%" PRIu64, point, rep);
					sweep_format_bps(bws, sizeof(bws), bw);
					if (percent)
						snprintf(where, sizeof(where), "local %" PRIu64 "%% (%" PRIu64 " pages)",
							 local->v[i], pages);
					else
						snprintf(where, sizeof(where), "local %" PRIu64 " pages", pages);
					fprintf(stderr, "dime sweep: [%zu/%zu] %s, %" PRIu64 " ns, %s, run %" PRIu64 "/%" PRIu64 ": ",
						done + 1, nruns, where, lat, bws, rep, o.repeat);

					struct outcome r;
					sweep_run_one(&o, pages, lat, bw, tag, &r);
					if (sweep_stopped())
						stop(csv);
					csv_row(csv, point, rep, pages, percent ? &local->v[i] : NULL, lat, bw, &r);
					done++;
					if (r.error) {
						failed++;
						fprintf(stderr, "FAILED (%s) after %.1f s\n", r.error, r.wall_s);
						sweep_report_failure(&o, tag);
					} else {
						ok[l * nbw + b] = true;
						if (!unit[0] && r.unit[0])
							snprintf(unit, sizeof(unit), "%s", r.unit);
						char eta[32];
						format_duration(eta, sizeof(eta),
								(sweep_now() - t0) / (double)done * (double)(nruns - done));
						fprintf(stderr, "%.*f%s%s, %.1f s, %" PRIu64 " remote faults; ETA %s\n",
							r.metric >= 100 ? 0 : 3, r.metric, r.unit[0] ? " " : "",
							r.unit, r.wall_s, r.c[C_REMOTE_FAULTS], eta);
					}
				}
	}
	if (fclose(csv)) {
		fprintf(stderr, "dime sweep: cannot write '%s': %s\n", csv_path, strerror(errno));
		return 1;
	}

	int plots = 0;
	if (o.plot) {
		struct sweep_plot sp = {
			.dir = o.out,
			.percent = percent,
			.ylabel = o.metric_time ? "wall time (s)" : unit[0] ? unit : "metric",
			.latencies = &o.latencies,
			.bandwidths = &o.bandwidths,
			.ok = ok,
		};
		plots = sweep_plot(&sp);
	}
	char total[32];
	format_duration(total, sizeof(total), sweep_now() - t0);
	fprintf(stderr, "dime sweep: %zu runs in %s, %zu failed; %s", nruns, total, failed, csv_path);
	if (plots > 0)
		fprintf(stderr, ", %d plots in %s", plots, o.out);
	fputc('\n', stderr);
	free(ok);
	free(csv_path);
	return failed || plots < 0 ? 1 : 0;
}
