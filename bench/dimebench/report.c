/* dimebench's report: the rows of every measurement on stdout, in a CSV
 * (section, measurement, value, unit, baseline, ratio, target, note) and,
 * with -m, as markdown tables for docs/results/accuracy.md. Every value is
 * the median over the repetitions (results in dimebench.c). */
#define _GNU_SOURCE
#include "dimebench.h"

#include <dime.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/pattern.h"

static FILE *csv, *md;
static const char *section = "";
static int md_rows; /* row() also writes a markdown row */

static void fmt_value(char *v, size_t size, double value)
{
	if (isnan(value))
		snprintf(v, size, "-");
	else if (fabs(value) >= 1000)
		snprintf(v, size, "%.0f", value);
	else
		snprintf(v, size, "%.4g", value);
}

static void row(const char *what, const char *unit, double value, const char *vs,
		double ratio, const char *target, const char *note)
{
	char r[32] = "", v[32];
	if (!isnan(ratio))
		snprintf(r, sizeof(r), "%.3f", ratio);
	fmt_value(v, sizeof(v), value);
	printf("%-52s %12s %-6s %-18s %8s  %-8s %s\n", what, v, unit, vs, r, target, note);
	fprintf(csv, "%s,\"%s\",%s,%s,\"%s\",%s,\"%s\",\"%s\"\n", section, what, v, unit, vs, r,
		target, note);
	if (md && md_rows)
		fprintf(md, "| %s | %s | %s | %s | %s | %s | %s |\n", what, v, unit, vs, r, target,
			note);
}

/* A markdown section; with `generic`, row() fills a table under it. */
static void md_section(const char *name, const char *title, const char *intro, int generic)
{
	section = name;
	md_rows = generic;
	if (!md)
		return;
	fprintf(md, "\n### %s\n\n%s\n\n", title, intro);
	if (generic)
		fprintf(md, "| measurement | value | unit | baseline | ratio | target | note |\n"
			    "|---|---:|---|---|---:|---|---|\n");
}

static void md_us(double ns_value)
{
	if (isnan(ns_value))
		fprintf(md, " - |");
	else
		fprintf(md, " %.2f |", ns_value / 1000);
}

static void md_num(const char *fmt, double v)
{
	if (isnan(v))
		fprintf(md, " - |");
	else {
		fputc(' ', md);
		fprintf(md, fmt, v);
		fprintf(md, " |");
	}
}


static const char *const modes[2] = { "thread", "signal" };

static void report_overhead(void)
{
	md_section("overhead", "Overhead against the kernel minor fault",
		   "A remote fault at latency 0 and unlimited bandwidth (dime's own cost: the floor), "
		   "a cyclic sweep over 512 pages with 256 local, against a kernel minor fault "
		   "(a memfd page in the page cache whose PTE was zapped, written again) measured in "
		   "the same repetition. The breakdown comes from the engine's own timestamps.",
		   1);
	double minor = V("minor", "median_ns");
	row("kernel minor fault, median", "ns", minor, "-", NAN, "", "memfd page cache, PTE zapped, write");
	row("kernel minor fault, p99", "ns", V("minor", "p99_ns"), "-", NAN, "", "");
	for (int m = 0; m < 2; m++) {
		char l[64], w[96];
		snprintf(l, sizeof(l), "remote %s", modes[m]);
		snprintf(w, sizeof(w), "remote fault at latency 0, %s, median", modes[m]);
		row(w, "ns", V(l, "median_ns"), "minor median", R(l, "median_ns", "minor", "median_ns"),
		    m ? "<=4.5" : "<=7.5 (5)", "each access evicts one page");
		snprintf(w, sizeof(w), "remote fault at latency 0, %s, p99", modes[m]);
		row(w, "ns", V(l, "p99_ns"), "minor p99", R(l, "p99_ns", "minor", "p99_ns"), "", "");
		snprintf(w, sizeof(w), "remote fault at latency 0, %s, mean", modes[m]);
		row(w, "ns", V(l, "mean_ns"), "minor median", R(l, "mean_ns", "minor", "median_ns"), "",
		    "sweep wall time / faults");
		const char *parts[6][2] = { { "pre_ns", "trap + wake-up of the handler" },
					    { "mid_ns", "dime bookkeeping" },
					    { "evict_ns", "eviction (mean, batched)" },
					    { "post_ns", "page-in + wake-up + retry" },
					    { "pagein_ns", "  of which the page-in" },
					    { "resume_ns", "  of which the wake-up and retry" } };
		if (m == 1) {
			parts[0][1] = "trap + signal delivery";
			parts[3][1] = "page-in + sigreturn + retry";
			parts[5][1] = "  of which sigreturn and retry";
		}
		for (int k = 0; k < 6; k++) {
			snprintf(w, sizeof(w), "  %s: %s", modes[m], parts[k][1]);
			row(w, "ns", V(l, parts[k][0]), "minor median",
			    R(l, parts[k][0], "minor", "median_ns"), "", "");
		}
	}
}

static void report_fetch(void)
{
	md_section("fetch", "Fetch time measured from inside the program against the configured one",
		   "Each row: a program sweeping cyclically over 512 pages with 256 local (every "
		   "access a remote fault, 3,072 timed accesses), timing each access itself with "
		   "clock_gettime(CLOCK_MONOTONIC). Configured fetch = 2 x latency + 4096 x 8 / "
		   "bandwidth. Ratios are medians over the repetitions of each repetition's ratio. "
		   "A configured fetch below the floor (dime's own cost of a fault, measured at "
		   "start-up) cannot be met: such faults take about the floor. The last two columns are "
		   "the machine's own mean and tail on a wait of the configured time, with no dime: a "
		   "busy-wait of that long, timed the same way, 3,072 times (its mean and p99 "
		   "are the floor for the fetch's: what preemption, the host and interrupts add "
		   "to any wait of that length here).",
		   0);
	if (md)
		fprintf(md, "| mode | latency | bandwidth | configured (us) | floor (us) | mean (us) | "
			    "median (us) | p99 (us) | mean / cfg | median / cfg | p99 / cfg | "
			    "faults / access | plain wait: mean / cfg | plain wait: p99 / cfg |\n"
			    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int m = 0; m < 2; m++)
		for (int li = 0; li < NLAT; li++)
			for (int b = 0; b < NBW; b++) {
				char l[96], wl[96], w[128], note[96];
				const char *bwname = b ? "10G" : "1G";
				snprintf(l, sizeof(l), "fetch %s %s %s", modes[m], lat_grid[li], bw_grid[b]);
				snprintf(wl, sizeof(wl), "wait %s %s", lat_grid[li], bw_grid[b]);
				double want = V(l, "fetch_ns"), floor = V(l, "floor_ns");
				snprintf(note, sizeof(note), "configured %.0f ns (floor %.0f)", want, floor);
				const char *tgt = want >= 10000 && want > 1.5 * floor ? "1+-0.01" : "";
				snprintf(w, sizeof(w), "fetch, %s, %s ns, %s b/s, mean", modes[m],
					 lat_grid[li], bwname);
				row(w, "ns", V(l, "mean_ns"), "configured", V(l, "mean_err") + 1, tgt,
				    note);
				snprintf(w, sizeof(w), "fetch, %s, %s ns, %s b/s, median", modes[m],
					 lat_grid[li], bwname);
				row(w, "ns", V(l, "median_ns"), "configured", V(l, "median_err") + 1, "",
				    "");
				snprintf(w, sizeof(w), "fetch, %s, %s ns, %s b/s, p99", modes[m],
					 lat_grid[li], bwname);
				row(w, "ns", V(l, "p99_ns"), "configured", V(l, "p99_err") + 1,
				    *tgt ? "<=1.05" : "", "");
				if (!md)
					continue;
				fprintf(md, "| %s | %.0f us | %s b/s |", modes[m],
					atof(lat_grid[li]) / 1000, bwname);
				md_us(want);
				md_us(floor);
				md_us(V(l, "mean_ns"));
				md_us(V(l, "median_ns"));
				md_us(V(l, "p99_ns"));
				md_num("%.3f", V(l, "mean_err") + 1);
				md_num("%.3f", V(l, "median_err") + 1);
				md_num("%.3f", V(l, "p99_err") + 1);
				md_num("%.3f", V(l, "faults_per_access"));
				md_num("%.3f", V(wl, "mean_err") + 1);
				md_num("%.3f", V(wl, "p99_err") + 1);
				fprintf(md, "\n");
			}
	/* The waits once, not per mode. */
	for (int li = 0; li < NLAT; li++)
		for (int b = 0; b < NBW; b++) {
			char wl[96], w[128];
			snprintf(wl, sizeof(wl), "wait %s %s", lat_grid[li], bw_grid[b]);
			snprintf(w, sizeof(w), "plain busy-wait of the fetch time, %s ns, %s b/s, mean",
				 lat_grid[li], b ? "10G" : "1G");
			row(w, "ns", V(wl, "mean_ns"), "configured", V(wl, "mean_err") + 1, "",
			    "no dime: what the machine adds to a wait on average");
			snprintf(w, sizeof(w), "plain busy-wait of the fetch time, %s ns, %s b/s, p99",
				 lat_grid[li], b ? "10G" : "1G");
			row(w, "ns", V(wl, "p99_ns"), "configured", V(wl, "p99_err") + 1, "",
			    "no dime: the machine's own tail");
		}
}

static void report_bandwidth(void)
{
	md_section("bandwidth", "Streaming bandwidth measured from inside the program",
		   "A sequential sweep over 1,024 pages with 64 local at latency 0: only the link's "
		   "transfer time is emulated. Achieved = bytes of the remote faults x 8 / the "
		   "sweep's wall time (clock_gettime). One stream cannot go faster than a page per "
		   "floor: the target applies where a page's transfer time is 1.5x the floor or "
		   "more.",
		   1);
	const char *rates[3] = { bw_grid[0], bw_grid[1], SLOW_BW }, *names[3] = { "1G", "10G", "250M" };
	for (int m = 0; m < 2; m++) {
		for (int b = 0; b < 3; b++) {
			char l[64], w[96], note[96];
			snprintf(l, sizeof(l), "bw %s %s", modes[m], rates[b]);
			double floor = V(l, "floor_ns"), page_ns = PAGE * 8 * 1e9 / atof(rates[b]);
			double limit = PAGE * 8 / (floor / 1e9);
			snprintf(note, sizeof(note), "one stream can reach %.2g b/s (floor %.0f ns)", limit,
				 floor);
			snprintf(w, sizeof(w), "streaming bandwidth, %s, %s b/s", modes[m], names[b]);
			/* As for fetch times: a target only well above the floor. */
			row(w, "b/s", V(l, "achieved_bps"), "configured", V(l, "ratio"),
			    page_ns > 1.5 * floor ? "1+-0.03" : "", note);
		}
	}
	/* What the fault clock is worth: the same stream with each fault's
	 * start and end estimated from the calibration instead. */
	const char *l = "bw thread 1000000000 noclock";
	row("streaming bandwidth, thread, 1G, fault clock off", "b/s", V(l, "achieved_bps"),
	    "configured", V(l, "ratio"), "-", "DIME_NO_FAULTCLOCK=1: calibrated start and end");
	row("  thread, 1G: remote faults timed by the kernel's events", "1",
	    V("bw thread 1000000000", "clocked_per_fault"), "-", NAN, "", "clocked_faults / remote_faults");
}

static void report_other(void)
{
	md_section("other", "Resident pages and threads",
		   "Access to local pages against the same loop on plain anonymous memory, and "
		   "remote faults per second of two threads against one (latency 0). The last row "
		   "is the kernel's own fault path under the same load, no dime: two threads "
		   "against one, each zapping 32 pages of its own memfd at a time and writing "
		   "them again (minor faults): what this VM gives fault-heavy work.",
		   1);
	row("resident-page loop, per pass", "ns", V("resident", "emulated_ns"), "plain anon memory",
	    V("resident", "ratio"), "<=1.02", "64 pages, one write per cache line");
	row("  control: plain anon memory, another buffer", "ns", NAN, "plain anon memory",
	    V("resident", "control_ratio"), "", "what physical placement alone makes of it");
	for (int m = 0; m < 2; m++) {
		char l1[64], l2[64], w[96];
		snprintf(l1, sizeof(l1), "mt %s 1", modes[m]);
		snprintf(l2, sizeof(l2), "mt %s 2", modes[m]);
		snprintf(w, sizeof(w), "remote faults/s, %s, 2 threads", modes[m]);
		row(w, "1/s", V(l2, "faults_per_s"), "1 thread", R(l2, "faults_per_s", l1, "faults_per_s"),
		    ">=1.4", "");
		for (int t = 0; t < 2; t++) {
			const char *l = t ? l2 : l1;
			snprintf(w, sizeof(w), "  %s, %d thread%s: TLB shootdowns per fault", modes[m],
				 t + 1, t ? "s" : "");
			row(w, "1", V(l, "tlb_per_fault"), "-", NAN, "",
			    "~9 us each while a sibling runs (x86 only)");
			snprintf(w, sizeof(w), "  %s, %d thread%s: context switches per fault", modes[m],
				 t + 1, t ? "s" : "");
			row(w, "1", V(l, "switches_per_fault"), "-", NAN, "",
			    m ? "lock waits" : "2 per fault: sleep, wake");
		}
	}
	row("kernel minor faults/s, 2 threads", "1/s", V("minor-mt 2", "faults_per_s"), "1 thread",
	    R("minor-mt 2", "faults_per_s", "minor-mt 1", "faults_per_s"), "",
	    "no dime: 32-page zaps, the machine's own scaling");
}

/* One line of the zram comparison: console rows and a markdown row. */
static void compare_line(const char *label, const char *pattern, const char *memory,
			 double configured, int kernel)
{
	char w[128];
	double minor = V("minor", "median_ns");
	double per = V(label, "per_fault_ns"), med = V(label, "slow_median_ns"),
	       p99 = V(label, "slow_p99_ns");
	snprintf(w, sizeof(w), "%s, %s: time per fault", memory, pattern);
	if (kernel) {
		row(w, "ns", per, "minor median", R(label, "per_fault_ns", "minor", "median_ns"), "",
		    "not configurable");
	} else {
		char note[64];
		snprintf(note, sizeof(note), "configured %.0f ns", configured);
		row(w, "ns", per, "configured", per / configured, "", note);
	}
	snprintf(w, sizeof(w), "%s, %s: slow accesses, median", memory, pattern);
	row(w, "ns", med, kernel ? "minor median" : "configured",
	    kernel ? med / minor : med / configured, "", "accesses >= 2 us");
	snprintf(w, sizeof(w), "%s, %s: slow accesses, p99", memory, pattern);
	row(w, "ns", p99, kernel ? "minor median" : "configured",
	    kernel ? p99 / minor : p99 / configured, "", "");
	snprintf(w, sizeof(w), "%s, %s: faults per access", memory, pattern);
	row(w, "", V(label, "faults_per_access"), "-", NAN, "",
	    kernel ? "major + minor (getrusage)" : "remote + soft faults (dime's counters)");
	snprintf(w, sizeof(w), "%s, %s: slow accesses per access", memory, pattern);
	row(w, "", V(label, "slow_per_access"), "-", NAN, "", "");
	if (kernel) {
		snprintf(w, sizeof(w), "%s, %s: major faults per access", memory, pattern);
		row(w, "", V(label, "major_per_access"), "-", NAN, "", "swap-ins from zram");
		snprintf(w, sizeof(w), "%s, %s: minor faults per access", memory, pattern);
		row(w, "", V(label, "minor_per_access"), "-", NAN, "", "found in the swap cache");
		snprintf(w, sizeof(w), "%s, %s: swap-outs per access", memory, pattern);
		row(w, "", V(label, "swapout_per_access"), "-", NAN, "", "/proc/vmstat pswpout");
		snprintf(w, sizeof(w), "%s, %s: resident pages at the end", memory, pattern);
		row(w, "", V(label, "resident_pages"), "limit", V(label, "resident_pages") / ZRAM_N,
		    "", "mincore()");
	}
	if (!kernel) {
		snprintf(w, sizeof(w), "%s, %s: soft faults per access", memory, pattern);
		row(w, "", V(label, "soft_per_access"), "-", NAN, "", "lru observes pages");
	}
	if (!md)
		return;
	fprintf(md, "| %s | %s |", pattern, memory);
	if (kernel)
		fprintf(md, " not configurable |");
	else
		md_us(configured);
	md_us(per);
	md_us(med);
	md_us(p99);
	md_num("%.3f", V(label, "faults_per_access"));
	md_num("%.3f", V(label, "slow_per_access"));
	if (kernel) {
		md_num("%.3f", V(label, "major_per_access"));
		md_num("%.3f", V(label, "minor_per_access"));
		md_num("%.3f", V(label, "swapout_per_access"));
		md_num("%.0f", V(label, "resident_pages"));
	} else {
		fprintf(md, " - | soft: %.3f | - | %d (budget) |", V(label, "soft_per_access"), ZRAM_N);
	}
	fprintf(md, "\n");
}

static void report_zram(const char *skip, const int *zram_failed, const int *zram_oom)
{
	char intro[1024];
	const char *info = getenv("DIME_BENCH_ZRAM_INFO");
	snprintf(intro, sizeof(intro),
		 "The same program (bench/lib/pattern.c) on the same access patterns (cyclic: "
		 "pages in order; random: uniform; hotcold: 90%% of accesses to a hot quarter of "
		 "the pages, 10%% to the rest): %d pages "
		 "touched, %d of them local (dime's budget) or resident (the cgroup's memory limit, "
		 "set to what the process had charged plus %d pages), %d timed accesses, each timed "
		 "with clock_gettime; page contents pseudo-random (incompressible) unless said. "
		 "dime: latency %s ns, %s b/s, FIFO unless said. The kernel: a memory cgroup with swap on zram "
		 "(%s). Time per fault = the time of the accesses slower than %d ns / the faults "
		 "counted; slow median and p99 are over those accesses.",
		 2 * ZRAM_N, ZRAM_N, ZRAM_N, 2 * ZRAM_N * ZRAM_PASSES, PATTERN_LAT, "10G",
		 info ? info : "not run", BENCH_SLOW_NS);
	md_section("zram", "The do-it-yourself baseline: a memory cgroup with swap on zram", intro, 0);
	if (skip) {
		fprintf(stderr, "dimebench: zram baseline skipped: %s\n", skip);
		if (md)
			fprintf(md, "**Not measured in this run: %s.**\n\n", skip);
	}
	if (md)
		fprintf(md, "| pattern | memory | configured per fault (us) | time per fault (us) | "
			    "slow median (us) | slow p99 (us) | faults / access | slow / access | "
			    "major / access | minor / access | swap-outs / access | resident pages |\n"
			    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	struct dime_params p;
	dime_params_init(&p);
	p.latency_ns = strtoull(PATTERN_LAT, NULL, 10);
	p.bandwidth_bps = strtoull(PATTERN_BW, NULL, 10);
	double configured = (double)dime_fetch_ns(&p, PAGE);
	char failures[1024] = ""; /* said under the table, not inside it */
	const char *pats[3] = { "cyclic", "random", "hotcold" };
	for (int pi = 0; pi < 3; pi++) {
		for (int c = 0; c < NCASES; c++) {
			char mode[16], pat[16], policy[16] = "fifo", mem[64];
			if (sscanf(cases[c], "pattern %15s %15s %*s %*s %15s", mode, pat, policy) < 2 ||
			    strcmp(pat, pats[pi]))
				continue;
			snprintf(mem, sizeof(mem), "dime %s, %s", mode, policy);
			compare_line(cases[c], pats[pi], mem, configured, 0);
		}
		if (skip)
			continue;
		for (int c = 0; c < NCASES; c++) {
			if (!is_zram(c) || strncmp(cases[c] + 5, pats[pi], strlen(pats[pi])))
				continue;
			int sparse = strstr(cases[c], "sparse") != NULL;
			compare_line(cases[c], pats[pi],
				     sparse ? "zram swap, compressible pages" : "zram swap", NAN, 1);
			if (zram_failed[c]) {
				char note[200];
				snprintf(note, sizeof(note),
					 "case '%s' failed in %d of %d repetitions%s", cases[c],
					 zram_failed[c], reps,
					 zram_oom[c] == zram_failed[c]
						 ? " (killed by the memory cgroup's OOM killer)"
						 : "");
				row(note, "", NAN, "-", NAN, "", "");
				size_t len = strlen(failures);
				snprintf(failures + len, sizeof(failures) - len, "\n%s.\n", note);
			}
		}
	}
	if (md)
		fputs(failures, md);
}

int report_write(const char *out, const char *mdout, const char *skip, const int *zram_failed,
		 const int *zram_oom, const double *bg, const double *la)
{
	csv = fopen(out, "w");
	if (!csv) {
		fprintf(stderr, "dimebench: %s: %s\n", out, strerror(errno));
		return 2;
	}
	if (mdout && !(md = fopen(mdout, "w"))) {
		fprintf(stderr, "dimebench: %s: %s\n", mdout, strerror(errno));
		return 2;
	}
	fprintf(csv, "section,measurement,value,unit,baseline,ratio,target,note\n");
	printf("%-52s %12s %-6s %-18s %8s  %-8s %s\n", "measurement (median of reps)", "value", "unit",
	       "baseline", "ratio", "target", "note");
	report_overhead();
	report_fetch();
	report_bandwidth();
	report_other();
	report_zram(skip, zram_failed, zram_oom);
	md_section("load", "Load", "The machine is shared with other work.", 1);
	row("background load before a repetition", "%", median_of(bg, reps), "-", NAN, "<=10",
	    "busy CPU time of the machine, % of one CPU");
	row("load average (1 min) before a repetition", "", median_of(la, reps), "-", NAN, "", "");
	if (md) {
		fprintf(md, "\nPer repetition: background load");
		for (int r = 0; r < reps; r++)
			fprintf(md, "%s %.0f%%", r ? "," : "", bg[r]);
		fprintf(md, "; load average");
		for (int r = 0; r < reps; r++)
			fprintf(md, "%s %.2f", r ? "," : "", la[r]);
		fprintf(md, ".\n");
		fclose(md);
	}
	fclose(csv);
	printf("\nCSV: %s (%d repetitions)\n", out, reps);
	return 0;
}
