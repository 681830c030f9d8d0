/* dime sweep: what its files share. sweep.c parses the options, runs the
 * grid and writes the CSV; sweep-plot.c draws the plots with gnuplot. */
#ifndef DIME_CLI_SWEEP_H
#define DIME_CLI_SWEEP_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A list of values from the command line, in the order given. */
struct sweep_list {
	uint64_t *v;
	size_t n;
};

#define SWEEP_MAX_PASS 32

/* The sweep as the user asked for it (sweep-options.c). */
struct sweep_opts {
	struct sweep_list pages, percents, latencies, bandwidths;
	uint64_t repeat;
	uint64_t timeout_s; /* 0: none */
	const char *metric;
	bool metric_time, metric_default;
	regex_t re; /* unless metric_time */
	bool delegate, plot;
	const char *out;
	const char *config;
	const char *pass[SWEEP_MAX_PASS]; /* `dime run` options, as --name=value */
	int npass;
	char **program;
};

/* Parses and checks everything; on bad input fails (exit 2) before
 * anything is created or run. */
void sweep_options(int argc, char **argv, struct sweep_opts *o);

/* The counters of --stats-json that the CSV keeps, in its column order. */
enum { C_REMOTE_FAULTS, C_LOCAL_PAGES_PEAK = 3, NCOUNTERS = 7 };
extern const char *const sweep_counters[NCOUNTERS];

/* What one run gave (sweep-run.c). */
struct outcome {
	int status; /* the shell's way: exit status or 128 + signal */
	double wall_s;
	bool have_metric, have_stats;
	double metric;
	char unit[32];
	uint64_t c[NCOUNTERS];
	const char *error; /* NULL when the run succeeded */
	char error_buf[32];
};

/* Runs COMMAND once at these parameters; its stdout, stderr and stats go
 * to DIR/runs/TAG.{out,err,json}. */
void sweep_run_one(const struct sweep_opts *o, uint64_t pages, uint64_t lat, uint64_t bw,
		   const char *tag, struct outcome *res);
/* The path of this dime binary (/proc/self/exe); fails if unreadable. */
char *sweep_self_path(void);
/* CLOCK_MONOTONIC in seconds. */
double sweep_now(void);
/* asprintf that exits on failure (out of memory). */
char *sweep_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* SIGINT, SIGTERM and SIGHUP stop the sweep: the run in progress gets the
 * signal too, and sweep_stopped() then returns it (0 until then). */
void sweep_signals_install(void);
int sweep_stopped(void);

/* Prints the last line of a failed run's stderr, with its path. */
void sweep_report_failure(const struct sweep_opts *o, const char *tag);

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
