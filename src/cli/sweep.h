/* dime sweep: what its files share. sweep.c parses the options, runs the
 * grid and writes the CSV; sweep-plot.c draws the plots with gnuplot. */
#ifndef DIME_CLI_SWEEP_H
#define DIME_CLI_SWEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A list of values from the command line, in the order given. */
struct sweep_list {
	uint64_t *v;
	size_t n;
};

/* What the plots need to know about the sweep. */
struct sweep_plot {
	const char *dir;      /* the output directory; the CSV is sweep.csv there */
	bool percent;         /* x is local_percent (else local_pages) */
	const char *ylabel;   /* the metric's unit, "wall time (s)", ... */
	const struct sweep_list *latencies;
	const struct sweep_list *bandwidths;
	/* ok[l * nbw + b]: at least one run at latency l and bandwidth b
	 * succeeded (a curve with no point makes gnuplot fail). */
	const bool *ok;
};

/* CSV columns that the plot script reads, 1-based as gnuplot counts. */
enum {
	COL_LOCAL_PAGES = 3,
	COL_LOCAL_PERCENT = 4,
	COL_LATENCY = 5,
	COL_BANDWIDTH = 6,
	COL_METRIC = 7,
	COL_EXIT = 10,
	COL_ERROR = 11,
};

/* Writes plot.gp in the output directory and runs gnuplot on it there.
 * Returns the number of PNGs written, or -1 (after saying why on stderr). */
int sweep_plot(const struct sweep_plot *sp);

/* "1 Gb/s", "250 Mb/s", "1.5 Gb/s", "300 b/s": for titles and progress. */
void sweep_format_bps(char *buf, size_t size, uint64_t bps);

#endif
