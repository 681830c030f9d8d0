/* What dimebench's driver (dimebench.c) and its report (report.c) share:
 * the cases, their results over the repetitions, and the report's entry. */
#ifndef DIME_BENCH_DIMEBENCH_H
#define DIME_BENCH_DIMEBENCH_H

enum { PAGE = 4096 };

/* The access patterns the zram baseline runs too, at the same size: ZRAM_N
 * pages local (or resident), twice that touched. */
enum { ZRAM_N = 2048, ZRAM_PASSES = 3 };

/* The fetch-time grid: every latency at every bandwidth, in both modes. */
enum { NLAT = 4, NBW = 2 };
extern const char *const lat_grid[NLAT], *const bw_grid[NBW];

/* Streaming bandwidths: the fetch grid's, and one whose page time (131 us)
 * is well above dime's floor on a machine with dear page-table changes
 * (a PVM guest's floor is ~30 us, a page at 1 Gb/s 33 us). */
#define SLOW_BW "250000000"

/* The patterns compared with the zram baseline run at this configuration. */
#define PATTERN_LAT "10000"
#define PATTERN_BW "10000000000"

enum { NCASES = 52, MAX_KEYS = 24, MAX_REPS = 15 };
extern const char *const cases[NCASES];

/* A case's key=value lines, one value per repetition (NAN if missing). */
struct result {
	const char *label; /* case command line */
	int nkeys;
	char keys[MAX_KEYS][24];
	double v[MAX_KEYS][MAX_REPS];
};
extern struct result results[NCASES];
extern int reps;

/* Whether case ci is one of the zram baseline's. */
int is_zram(int ci);

/* The median of the non-NAN values of v[0..n-1] (NAN if none). */
double median_of(const double *v, int n);

/* The value of `key` of case `label` in repetition rep (NAN if none). */
double val(const char *label, const char *key, int rep);

/* Median over repetitions of expr (which may use rep). */
#define MEDIAN_OVER_REPS(expr)                                  \
	({                                                      \
		double v_[MAX_REPS];                            \
		for (int rep = 0; rep < reps; rep++)            \
			v_[rep] = (expr);                       \
		median_of(v_, reps);                            \
	})
#define V(label, key) MEDIAN_OVER_REPS(val(label, key, rep))
#define R(label, key, blabel, bkey) MEDIAN_OVER_REPS(val(label, key, rep) / val(blabel, bkey, rep))

/* Prints the rows, writes the CSV to `out` and, if mdout is not NULL, the
 * markdown tables. skip: why the zram baseline did not run (or NULL);
 * zram_failed, zram_oom: per case, failed repetitions and those the
 * cgroup's OOM killer ended; bg, la: background load and load average
 * before each repetition. Returns 0, or 2 if a file cannot be written. */
int report_write(const char *out, const char *mdout, const char *skip, const int *zram_failed,
		 const int *zram_oom, const double *bg, const double *la);

#endif
