/* dime sweep's plots: a gnuplot script, DIR/plot.gp, that reads DIR/sweep.csv
 * and draws PNGs, run by gnuplot (a child process) in DIR. The script stays
 * next to the CSV so that a user can restyle the plots and run it again.
 *
 * Only runs that succeeded are drawn (exit status 0 and no error); the
 * repeats of a point are averaged (gnuplot's `smooth unique`).
 */
#define _GNU_SOURCE
#include "cli.h"
#include "sweep.h"

#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SCRIPT "plot.gp"

/* One curve: the successful runs at this latency and bandwidth. */
static void curve(FILE *f, const struct sweep_plot *sp, bool first, uint64_t lat, uint64_t bw,
		  const char *title)
{
	fprintf(f,
		"%s'sweep.csv' skip 1 using (($%d == %" PRIu64 " && $%d == %" PRIu64
		" && $%d == 0 && strcol(%d) eq '') ? $%d : NaN):%d smooth unique with linespoints title '%s'",
		first ? "plot " : ", \\\n     ", COL_LATENCY, lat, COL_BANDWIDTH, bw, COL_EXIT,
		COL_ERROR, sp->percent ? COL_LOCAL_PERCENT : COL_LOCAL_PAGES, COL_METRIC, title);
}

/* The script; returns the number of plots in it. */
static int write_script(FILE *f, const struct sweep_plot *sp)
{
	size_t nlat = sp->latencies->n, nbw = sp->bandwidths->n;
	int plots = 0;
	fprintf(f,
		"# Written by dime sweep: plots of sweep.csv. Run `gnuplot plot.gp` here.\n"
		"set datafile separator ','\n"
		/* Rows of other curves are missing, not undefined: an undefined
		 * point would break the curve's line. */
		"set datafile missing NaN\n"
		"set terminal pngcairo size 900,600 noenhanced\n"
		"set grid\n"
		"set key outside right top\n"
		"set xlabel '%s'\n"
		"set ylabel '%s'\n"
		"set yrange [0:*]\n",
		sp->percent ? "local memory (% of the footprint)" : "local memory (pages)",
		sp->ylabel);

	for (size_t b = 0; b < nbw; b++) {
		uint64_t bw = sp->bandwidths->v[b];
		bool first = true;
		char bws[32], title[64];
		sweep_format_bps(bws, sizeof(bws), bw);
		for (size_t l = 0; l < nlat; l++) {
			if (!sp->ok[l * nbw + b])
				continue;
			if (first)
				fprintf(f, "\nset output 'by-latency-bw-%" PRIu64 ".png'\n"
					   "set title 'bandwidth %s: one line per latency'\n",
					bw, bws);
			snprintf(title, sizeof(title), "%" PRIu64 " ns", sp->latencies->v[l]);
			curve(f, sp, first, sp->latencies->v[l], bw, title);
			first = false;
		}
		if (!first) {
			fputc('\n', f);
			plots++;
		}
	}
	for (size_t l = 0; l < nlat; l++) {
		uint64_t lat = sp->latencies->v[l];
		bool first = true;
		char bws[32];
		for (size_t b = 0; b < nbw; b++) {
			if (!sp->ok[l * nbw + b])
				continue;
			if (first)
				fprintf(f, "\nset output 'by-bandwidth-lat-%" PRIu64 ".png'\n"
					   "set title 'latency %" PRIu64 " ns: one line per bandwidth'\n",
					lat, lat);
			sweep_format_bps(bws, sizeof(bws), sp->bandwidths->v[b]);
			curve(f, sp, first, lat, sp->bandwidths->v[b], bws);
			first = false;
		}
		if (!first) {
			fputc('\n', f);
			plots++;
		}
	}
	return plots;
}

/* Plots of an earlier sweep into the same directory, at values this one
 * does not have, would pass for this sweep's. */
static void remove_old_plots(const char *dir)
{
	static const char *const patterns[] = { "by-latency-bw-*.png", "by-bandwidth-lat-*.png" };
	for (size_t k = 0; k < 2; k++) {
		char *pattern;
		glob_t g;
		if (asprintf(&pattern, "%s/%s", dir, patterns[k]) < 0)
			return;
		if (!glob(pattern, 0, NULL, &g)) {
			for (size_t i = 0; i < g.gl_pathc; i++)
				unlink(g.gl_pathv[i]);
			globfree(&g);
		}
		free(pattern);
	}
}

int sweep_plot(const struct sweep_plot *sp)
{
	char *path;
	remove_old_plots(sp->dir);
	if (asprintf(&path, "%s/" SCRIPT, sp->dir) < 0)
		return -1;
	FILE *f = fopen(path, "we");
	if (!f) {
		fprintf(stderr, "dime sweep: cannot write '%s': %s\n", path, strerror(errno));
		free(path);
		return -1;
	}
	int plots = write_script(f, sp);
	if (fclose(f)) {
		fprintf(stderr, "dime sweep: cannot write '%s': %s\n", path, strerror(errno));
		free(path);
		return -1;
	}
	free(path);
	if (!plots) {
		fputs("dime sweep: no run succeeded: nothing to plot\n", stderr);
		return 0;
	}

	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "dime sweep: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		if (chdir(sp->dir)) {
			dprintf(2, "dime sweep: cannot enter '%s': %s\n", sp->dir, strerror(errno));
			_exit(EXIT_NOEXEC);
		}
		execlp("gnuplot", "gnuplot", SCRIPT, (char *)NULL);
		dprintf(2, "dime sweep: cannot execute gnuplot: %s\n", strerror(errno));
		_exit(EXIT_NOEXEC);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "dime sweep: gnuplot failed on %s/" SCRIPT "\n", sp->dir);
		return -1;
	}
	return plots;
}
