/* dime's benchmark: what emulated memory costs on this machine, each number
 * as a ratio to a baseline measured in the same run.
 *
 *   dimebench [-r REPS] [-o results.csv] [-m tables.md]
 *                                          run everything, print the table
 *                                          (report: dimebench/report.c)
 *   dimebench case NAME ARGS...            one measurement (prints key=value)
 *
 * Every measurement runs in a fresh process (a server's handler threads
 * and start-up calibration belong to a process), REPS times in turn, and
 * the table shows medians over the repetitions. The machine is shared and
 * noisy: ratios to a baseline taken in the same repetition are the numbers
 * to read.
 *
 * The breakdown of a fault needs the engine's per-fault timestamps: this
 * program reads the engine's private region structure (src/engine), the
 * only thing here beyond the public API. */
#define _GNU_SOURCE
#include <dime.h>

#include "../src/engine/clock.h"
#include "../src/engine/internal.h"
#include "dimebench/dimebench.h"
#include "lib/memcg.h"
#include "lib/pattern.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


/* ---- timing ------------------------------------------------------------ */

static double ticks_per_ns;

/* The engine's tick counter (TSC, the aarch64 generic timer, or
 * CLOCK_MONOTONIC): the engine busy-waits on the same clock. */
static inline uint64_t now(void)
{
	return clock_ticks();
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void calibrate_tsc(void)
{
	uint64_t n0 = mono_ns(), t0 = now();
	while (mono_ns() - n0 < 50000000)
		;
	uint64_t t1 = now(), n1 = mono_ns();
	ticks_per_ns = (double)(t1 - t0) / (double)(n1 - n0);
}

static double ns(double ticks)
{
	return ticks / ticks_per_ns;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Sorts v and returns the q-quantile (0..1). */
static uint64_t quantile(uint64_t *v, size_t n, double q)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i];
}

static double mean_u64(const uint64_t *v, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)v[i];
	return s / (double)n;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (!p) {
		perror("malloc");
		exit(2);
	}
	return p;
}

static void put(const char *key, double v)
{
	printf("%s=%.6g\n", key, v);
}

/* ---- cases --------------------------------------------------------------- */

/* Parameters of a benchmark region: `pages` of address space, `budget`
 * local. */
static struct dime_params params(enum dime_mode mode, size_t pages, uint64_t budget,
				 uint64_t latency_ns, uint64_t bps)
{
	struct dime_params p;
	dime_params_init(&p);
	p.size = pages * PAGE;
	p.local_npages = budget;
	p.latency_ns = latency_ns;
	p.bandwidth_bps = bps;
	p.mode = mode;
	return p;
}

static struct dime_region *region_of(const struct dime_params *p)
{
	struct dime_region *r;
	int err = dime_region_create(p, &r);
	if (err) {
		fprintf(stderr, "dimebench: dime_region_create: %s\n", dime_strerror(err));
		exit(2);
	}
	return r;
}

static struct dime_region *region(enum dime_mode mode, size_t pages, uint64_t budget,
				  uint64_t latency_ns, uint64_t bps)
{
	struct dime_params p = params(mode, pages, budget, latency_ns, bps);
	return region_of(&p);
}

static enum dime_mode parse_mode(const char *s)
{
	return strcmp(s, "signal") == 0 ? DIME_MODE_SIGNAL : DIME_MODE_THREAD;
}

/* `pages` pages of a memfd of their own, mapped shared and all in the page
 * cache: zapping their PTEs and touching them again is a minor fault. */
static volatile char *memfd_pages(size_t pages)
{
	int fd = memfd_create("dimebench", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)(pages * PAGE)) < 0) {
		perror("memfd");
		exit(2);
	}
	volatile char *m = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	for (size_t i = 0; i < pages; i++)
		m[i * PAGE] = 1;
	return m;
}

/* Kernel minor fault: a memfd page in the page cache whose PTE was zapped,
 * touched again (written, as the remote-fault cases write). */
static void case_minor(void)
{
	enum { PAGES = 512, PASSES = 16 };
	volatile char *m = memfd_pages(PAGES);
	uint64_t *lat = xmalloc(sizeof(*lat) * PAGES * PASSES);
	size_t n = 0;
	for (int pass = 0; pass < PASSES; pass++) {
		for (size_t i = 0; i < PAGES; i++) {
			madvise((void *)(m + i * PAGE), PAGE, MADV_DONTNEED);
			uint64_t t0 = now();
			m[i * PAGE] += 1;
			lat[n++] = now() - t0;
		}
	}
	put("median_ns", ns((double)quantile(lat, n, 0.5)));
	put("p99_ns", ns((double)quantile(lat, n, 0.99)));
}

/* A cyclic sweep over `pages` pages with `budget` local: after the first
 * pass every access is a remote fault. Times each access from inside the
 * program; with `log`, the engine timestamps each fault too. */
struct sweep {
	uint64_t *t0, *lat;
	size_t n;
	double wall_ns;
	struct dime_stats st;
};

static void sweep(struct dime_region *dr, size_t pages, int passes, struct calib_log *log,
		  struct sweep *out)
{
	volatile char *m = dime_region_base(dr);
	for (size_t i = 0; i < pages; i++)
		m[i * PAGE] = (char)i;
	/* One untimed pass: the first touches are behind, the queue warm. */
	for (size_t i = 0; i < pages; i++)
		m[i * PAGE] += 1;
	size_t n = pages * (size_t)passes;
	out->t0 = xmalloc(sizeof(uint64_t) * n);
	out->lat = xmalloc(sizeof(uint64_t) * n);
	struct dime_stats s0;
	dime_region_stats(dr, &s0);
	struct region *r = (struct region *)dr;
	if (log)
		r->calib = log;
	size_t k = 0;
	uint64_t w0 = mono_ns();
	for (int pass = 0; pass < passes; pass++) {
		for (size_t i = 0; i < pages; i++, k++) {
			uint64_t t0 = now();
			m[i * PAGE] += 1;
			uint64_t t1 = now();
			out->t0[k] = t0;
			out->lat[k] = t1 - t0;
		}
	}
	out->wall_ns = (double)(mono_ns() - w0);
	r->calib = NULL;
	dime_region_stats(dr, &out->st);
	out->st.remote_faults -= s0.remote_faults;
	out->st.clocked_faults -= s0.clocked_faults;
	out->n = n;
}

/* Fault overhead at zero emulated delay, with a breakdown from the engine's
 * timestamps. */
static void case_remote(enum dime_mode mode)
{
	enum { PAGES = 512, BUDGET = 256, PASSES = 12 };
	struct dime_region *dr = region(mode, PAGES, BUDGET, 0, UINT64_MAX);
	size_t n = (size_t)PAGES * PASSES;
	struct calib_log log = { .cap = (int)n };
	log.seen = xmalloc(sizeof(uint64_t) * n);
	log.pagein = xmalloc(sizeof(uint64_t) * n);
	log.evict = xmalloc(sizeof(uint64_t) * n);
	log.pagein_end = xmalloc(sizeof(uint64_t) * n);
	struct sweep sw;
	sweep(dr, PAGES, PASSES, &log, &sw);

	/* Match each access with the fault the engine saw inside it. */
	uint64_t *pre = xmalloc(sizeof(uint64_t) * n), *mid = xmalloc(sizeof(uint64_t) * n);
	uint64_t *post = xmalloc(sizeof(uint64_t) * n), *ev = xmalloc(sizeof(uint64_t) * n);
	uint64_t *pin = xmalloc(sizeof(uint64_t) * n), *resume = xmalloc(sizeof(uint64_t) * n);
	size_t m = 0, j = 0;
	for (size_t i = 0; i < sw.n && j < (size_t)log.n; i++) {
		uint64_t a = sw.t0[i], b = sw.t0[i] + sw.lat[i];
		while (j < (size_t)log.n && log.seen[j] < a)
			j++;
		if (j >= (size_t)log.n || log.pagein[j] > b)
			continue;
		pre[m] = log.seen[j] - a;
		ev[m] = log.evict[j];
		mid[m] = log.pagein[j] - log.seen[j] - log.evict[j];
		post[m] = b - log.pagein[j];
		pin[m] = log.pagein_end[j] - log.pagein[j];
		resume[m] = b - log.pagein_end[j];
		m++;
		j++;
	}
	double wall = sw.wall_ns / (double)sw.st.remote_faults;
	put("median_ns", ns((double)quantile(sw.lat, sw.n, 0.5)));
	put("p99_ns", ns((double)quantile(sw.lat, sw.n, 0.99)));
	put("mean_ns", wall);
	put("faults_per_access", (double)sw.st.remote_faults / (double)sw.n);
	put("floor_ns", (double)dime_floor_ns(mode));
	{
		struct server_costs c = ((struct region *)dr)->server->costs;
		put("calib_pre_ns", ns((double)c.pre));
		put("calib_post_ns", ns((double)c.post));
	}
	if (m > sw.n / 2) {
		put("pre_ns", ns((double)quantile(pre, m, 0.5)));
		put("mid_ns", ns((double)quantile(mid, m, 0.5)));
		put("evict_ns", ns(mean_u64(ev, m)));
		put("post_ns", ns((double)quantile(post, m, 0.5)));
		put("pagein_ns", ns((double)quantile(pin, m, 0.5)));
		put("resume_ns", ns((double)quantile(resume, m, 0.5)));
	}
	dime_region_destroy(dr);
}

/* What a pattern run saw from inside, as key=value lines: every access,
 * and the accesses slow enough to be faults (pattern.h). */
/* The case's command line joined by '-': names its samples file. */
static char case_name[128];

/* With DIME_BENCH_SAMPLES=DIR, a pattern case writes its per-access times
 * (ns, in access order, one a line) to DIR/CASE.txt for plots. */
static void save_samples(const struct bench_run *r)
{
	const char *dir = getenv("DIME_BENCH_SAMPLES");
	if (!dir || !*dir)
		return;
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s.txt", dir, case_name);
	FILE *f = fopen(path, "we");
	if (!f) {
		fprintf(stderr, "dimebench: %s: %s\n", path, strerror(errno));
		return;
	}
	for (size_t k = 0; k < r->n; k++)
		fprintf(f, "%llu\n", (unsigned long long)r->lat_ns[k]);
	fclose(f);
}

static struct bench_summary put_run(struct bench_run *r, double faults)
{
	struct bench_summary s;
	save_samples(r);
	bench_summarize(r, &s);
	put("accesses", (double)r->n);
	put("mean_ns", s.mean_ns);
	put("median_ns", s.median_ns);
	put("p99_ns", s.p99_ns);
	put("faults_per_access", faults / (double)r->n);
	put("slow_per_access", (double)s.slow / (double)r->n);
	put("slow_median_ns", s.slow_median_ns);
	put("slow_p99_ns", s.slow_p99_ns);
	/* Time per counted fault: the slow accesses' time over the faults. */
	put("per_fault_ns", faults > 0 ? s.slow_sum_ns / faults : NAN);
	return s;
}

/* Emulated fetch time as the program sees it, against the configured one:
 * a cyclic sweep over twice the local budget, every access a remote
 * fault, each timed with clock_gettime. */
/* Fills the region's first `pages` pages, warms the run's pattern up,
 * then times it; *d: the counters the timed part added. */
static void timed_pattern(struct dime_region *dr, size_t pages, enum bench_fill fill,
			  struct bench_run *run, struct dime_stats *d)
{
	volatile char *m = dime_region_base(dr);
	bench_fill(m, pages, fill);
	bench_warm(m, run);
	struct dime_stats s0;
	dime_region_stats(dr, &s0);
	bench_timed(m, run);
	dime_region_stats(dr, d);
	d->remote_faults -= s0.remote_faults;
	d->soft_faults -= s0.soft_faults;
}

/* The machine's own noise on a wait of the configured fetch time, with no
 * dime at all: a busy-wait of that long on the program's clock, timed as
 * the fetch cases time each access. Its tail is what preemption, the
 * host and interrupts add to any wait of that length here: the floor for
 * the fetch cases' p99. */
static void case_wait(uint64_t latency_ns, uint64_t bps)
{
	enum { ACCESSES = 512 * 6 };
	struct dime_params p = params(DIME_MODE_THREAD, 1, 1, latency_ns, bps);
	uint64_t want = dime_fetch_ns(&p, bench_page_size());
	struct bench_run run;
	bench_run_init(&run, BENCH_CYCLIC, 1, ACCESSES);
	uint64_t w0 = bench_mono_ns();
	for (size_t k = 0; k < run.n; k++) {
		uint64_t t0 = bench_mono_ns(), t;
		do
			t = bench_mono_ns();
		while (t - t0 < want);
		run.lat_ns[k] = t - t0;
	}
	run.wall_ns = bench_mono_ns() - w0;
	struct bench_summary sum;
	bench_summarize(&run, &sum);
	put("fetch_ns", (double)want);
	put("mean_ns", sum.mean_ns);
	put("median_ns", sum.median_ns);
	put("p99_ns", sum.p99_ns);
	put("mean_err", (sum.mean_ns - (double)want) / (double)want);
	put("p99_err", (sum.p99_ns - (double)want) / (double)want);
	bench_run_free(&run);
}

static void case_fetch(enum dime_mode mode, uint64_t latency_ns, uint64_t bps)
{
	enum { BUDGET = 256, PASSES = 6 };
	size_t pages = 2 * BUDGET;
	struct dime_params p = params(mode, pages, BUDGET, latency_ns, bps);
	struct dime_region *dr = region_of(&p);
	double want = (double)dime_fetch_ns(&p, bench_page_size());
	struct bench_run run;
	bench_run_init(&run, BENCH_CYCLIC, pages, pages * PASSES);
	struct dime_stats d;
	timed_pattern(dr, pages, BENCH_FILL_SPARSE, &run, &d);
	put("fetch_ns", want);
	put("floor_ns", (double)dime_floor_ns(mode));
	struct bench_summary sum = put_run(&run, (double)d.remote_faults);
	put("mean_err", (sum.mean_ns - want) / want);
	put("median_err", (sum.median_ns - want) / want);
	put("p99_err", (sum.p99_ns - want) / want);
	bench_run_free(&run);
	dime_region_destroy(dr);
}

static enum bench_pattern parse_pattern(const char *s)
{
	if (!strcmp(s, "random"))
		return BENCH_RANDOM;
	return strcmp(s, "hotcold") == 0 ? BENCH_HOTCOLD : BENCH_CYCLIC;
}

static void case_pattern(enum dime_mode mode, enum bench_pattern pat, uint64_t latency_ns,
			 uint64_t bps, const char *policy)
{
	size_t pages = 2 * ZRAM_N;
	struct dime_params p = params(mode, pages, ZRAM_N, latency_ns, bps);
	snprintf(p.policy, sizeof(p.policy), "%s", policy);
	struct dime_region *dr = region_of(&p);
	struct bench_run run;
	bench_run_init(&run, pat, pages, pages * ZRAM_PASSES);
	struct dime_stats d;
	timed_pattern(dr, pages, BENCH_FILL_RANDOM, &run, &d);
	put("fetch_ns", (double)dime_fetch_ns(&p, bench_page_size()));
	put("floor_ns", (double)dime_floor_ns(mode));
	/* Soft faults (a policy observing pages) are slow accesses too. */
	double soft = (double)d.soft_faults;
	put_run(&run, (double)d.remote_faults + soft);
	put("remote_per_access", (double)d.remote_faults / (double)run.n);
	put("soft_per_access", soft / (double)run.n);
	bench_run_free(&run);
	dime_region_destroy(dr);
}

/* Swap-ins and swap-outs of the whole machine (/proc/vmstat). */
static void swap_counts(double *in, double *out)
{
	char key[64];
	unsigned long long v;
	*in = *out = NAN;
	FILE *f = fopen("/proc/vmstat", "re");
	if (!f)
		return;
	while (fscanf(f, "%63s %llu", key, &v) == 2) {
		if (!strcmp(key, "pswpin"))
			*in = (double)v;
		else if (!strcmp(key, "pswpout"))
			*out = (double)v;
	}
	fclose(f);
}

/* The same pattern on plain anonymous memory in the cgroup of
 * bench/zram-baseline.sh: its limit holds ZRAM_N pages of the working set
 * (what the process had charged before plus ZRAM_N pages), the rest goes to
 * swap on zram. Faults are the kernel's: major (a swap-in) and minor (a
 * page found in the swap cache) from getrusage. */
static void case_zram(enum bench_pattern pat, enum bench_fill fill)
{
	struct bench_memcg cg;
	if (bench_memcg_from_env(&cg)) {
		fprintf(stderr, "dimebench: zram case outside bench/zram-baseline.sh\n");
		exit(2);
	}
	size_t page = bench_page_size(), pages = 2 * ZRAM_N;
	struct bench_run run;
	bench_run_init(&run, pat, pages, pages * ZRAM_PASSES);
	char *m = mmap(NULL, pages * page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED) {
		perror("dimebench: mmap");
		exit(2);
	}
	/* 4 KiB pages, as dime's: a huge page would be swapped as one. */
	madvise(m, pages * page, MADV_NOHUGEPAGE);
	if (bench_memcg_join(&cg))
		exit(2);
	/* Charged from here: the time array, then the working set. */
	memset(run.lat_ns, 0, sizeof(uint64_t) * run.n);
	long long base = bench_memcg_usage(&cg);
	if (base < 0 || bench_memcg_limit(&cg, base + (long long)(ZRAM_N * page)))
		exit(2);
	bench_fill(m, pages, fill);
	bench_warm(m, &run);
	struct rusage u0, u1;
	double in0, out0, in1, out1;
	swap_counts(&in0, &out0);
	getrusage(RUSAGE_SELF, &u0);
	bench_timed(m, &run);
	getrusage(RUSAGE_SELF, &u1);
	swap_counts(&in1, &out1);
	unsigned char *vec = xmalloc(pages);
	size_t resident = 0;
	if (mincore(m, pages * page, vec) == 0)
		for (size_t i = 0; i < pages; i++)
			resident += vec[i] & 1;
	double major = (double)(u1.ru_majflt - u0.ru_majflt);
	double minor = (double)(u1.ru_minflt - u0.ru_minflt);
	put_run(&run, major + minor);
	put("major_per_access", major / (double)run.n);
	put("minor_per_access", minor / (double)run.n);
	put("swapin_per_access", (in1 - in0) / (double)run.n);
	put("swapout_per_access", (out1 - out0) / (double)run.n);
	put("resident_pages", (double)resident);
	put("limit_pages", (double)ZRAM_N);
	bench_run_free(&run);
}

/* Streaming: a sequential sweep, every access a remote fault, latency 0:
 * the link's bandwidth is all that is emulated. */
static void case_bw(enum dime_mode mode, uint64_t bps)
{
	enum { PAGES = 1024, BUDGET = 64, PASSES = 3 };
	struct dime_region *dr = region(mode, PAGES, BUDGET, 0, bps);
	struct sweep sw;
	sweep(dr, PAGES, PASSES, NULL, &sw);
	double bytes = (double)sw.st.remote_faults * PAGE;
	double achieved = bytes * 8 / (sw.wall_ns / 1e9);
	put("configured_bps", (double)bps);
	put("achieved_bps", achieved);
	put("ratio", achieved / (double)bps);
	put("floor_ns", (double)dime_floor_ns(mode));
	put("clocked_per_fault", (double)sw.st.clocked_faults / (double)sw.st.remote_faults);
	dime_region_destroy(dr);
}

/* Access to resident pages against the same loop on plain anonymous
 * memory. */
static uint64_t touch_loop(volatile uint64_t *m, size_t words, int loops)
{
	uint64_t t0 = now();
	for (int l = 0; l < loops; l++)
		for (size_t i = 0; i < words; i += 8)
			m[i] += 1;
	return now() - t0;
}

/* Native memory mapped like a region: anonymous, 4 KiB pages, and aligned
 * like one (64 MiB), so both use the same cache and TLB sets. */
static volatile uint64_t *native_pages(size_t pages)
{
	size_t align = (size_t)64 << 20, len = pages * PAGE;
	char *raw = mmap(NULL, len + align, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED) {
		perror("dimebench: mmap");
		exit(2);
	}
	volatile uint64_t *m = (volatile uint64_t *)(((uintptr_t)raw + align - 1) & ~(align - 1));
	madvise((void *)m, len, MADV_NOHUGEPAGE);
	memset((void *)m, 0, len);
	return m;
}

/* 64 pages: a set that fits the second-level cache whatever physical pages
 * back it. A larger one measures which pages each side was given: two
 * native buffers of 256 pages differed by up to 12% from one allocation
 * to the next on the PVM guest (conflict misses), dime or not. The
 * control, a second native buffer against the first, shows what is left
 * of that here. */
static void case_resident(void)
{
	enum { PAGES = 64, LOOPS = 20, ROUNDS = 101 };
	struct dime_region *dr = region(DIME_MODE_THREAD, PAGES, PAGES, 0, UINT64_MAX);
	size_t words = (size_t)PAGES * PAGE / 8;
	volatile uint64_t *emu = dime_region_base(dr);
	volatile uint64_t *nat = native_pages(PAGES), *ctl = native_pages(PAGES);
	for (size_t i = 0; i < words; i += PAGE / 8)
		emu[i] = 0;
	/* Short rounds, each in another order; the median of each round's
	 * ratio: the machine's speed drifts, the three see the same. */
	volatile uint64_t *mem[3] = { emu, nat, ctl };
	uint64_t t[3][ROUNDS], ratio[ROUNDS], control[ROUNDS];
	for (int r = 0; r < ROUNDS; r++) {
		for (int k = 0; k < 3; k++) {
			int which = (r + k) % 3;
			t[which][r] = touch_loop(mem[which], words, LOOPS);
		}
		ratio[r] = t[0][r] * 1000000 / t[1][r];
		control[r] = t[2][r] * 1000000 / t[1][r];
	}
	struct dime_stats st;
	dime_region_stats(dr, &st);
	put("emulated_ns", ns((double)quantile(t[0], ROUNDS, 0.5)) / LOOPS);
	put("native_ns", ns((double)quantile(t[1], ROUNDS, 0.5)) / LOOPS);
	put("ratio", (double)quantile(ratio, ROUNDS, 0.5) / 1e6);
	put("control_ratio", (double)quantile(control, ROUNDS, 0.5) / 1e6);
	put("remote_faults", (double)st.remote_faults);
	dime_region_destroy(dr);
}

/* TLB shootdown interrupts the machine took so far (the "TLB" line of
 * /proc/interrupts, x86), or NAN where there is none. */
static double tlb_shootdowns(void)
{
	FILE *f = fopen("/proc/interrupts", "r");
	char line[4096];
	double n = NAN;
	while (f && fgets(line, sizeof(line), f)) {
		char *p = line;
		while (*p == ' ')
			p++;
		if (strncmp(p, "TLB:", 4))
			continue;
		n = 0;
		for (p += 4;;) {
			char *end;
			unsigned long long v = strtoull(p, &end, 10);
			if (end == p)
				break;
			n += (double)v;
			p = end;
		}
	}
	if (f)
		fclose(f);
	return n;
}

/* Remote faults per second of `nthreads` threads, each sweeping its own
 * pages of one region; and what limits two threads on a small VM: the TLB
 * shootdowns (a page moved while another thread of the process runs on
 * another CPU) and the context switches, per fault. */
struct mt_job {
	volatile char *m;
	size_t first, n;
	int passes;
	pthread_barrier_t *ready, *go, *done;
};

static void *mt_run(void *arg)
{
	struct mt_job *j = arg;
	/* First touches and one pass: every later access is remote. */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = j->first; i < j->first + j->n; i++)
			j->m[i * PAGE] += 1;
	pthread_barrier_wait(j->ready);
	pthread_barrier_wait(j->go);
	for (int pass = 0; pass < j->passes; pass++)
		for (size_t i = j->first; i < j->first + j->n; i++)
			j->m[i * PAGE] += 1;
	pthread_barrier_wait(j->done);
	return NULL;
}

static void case_mt(enum dime_mode mode, int nthreads)
{
	enum { PER_THREAD = 512, BUDGET = 128, PASSES = 16 };
	struct dime_region *dr = region(mode, (size_t)PER_THREAD * nthreads, BUDGET, 0, UINT64_MAX);
	pthread_barrier_t ready, go, done;
	pthread_barrier_init(&ready, NULL, (unsigned)nthreads + 1);
	pthread_barrier_init(&go, NULL, (unsigned)nthreads + 1);
	pthread_barrier_init(&done, NULL, (unsigned)nthreads + 1);
	struct mt_job jobs[8];
	pthread_t th[8];
	for (int t = 0; t < nthreads; t++) {
		jobs[t] = (struct mt_job){ dime_region_base(dr), (size_t)t * PER_THREAD, PER_THREAD,
					   PASSES, &ready, &go, &done };
		pthread_create(&th[t], NULL, mt_run, &jobs[t]);
	}
	struct dime_stats s0, s1;
	struct rusage u0, u1;
	pthread_barrier_wait(&ready);
	dime_region_stats(dr, &s0);
	double tlb0 = tlb_shootdowns();
	getrusage(RUSAGE_SELF, &u0);
	uint64_t t0 = now();
	pthread_barrier_wait(&go);
	pthread_barrier_wait(&done);
	uint64_t t1 = now();
	getrusage(RUSAGE_SELF, &u1);
	double tlb1 = tlb_shootdowns();
	dime_region_stats(dr, &s1);
	for (int t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	double faults = (double)(s1.remote_faults - s0.remote_faults);
	put("faults_per_s", faults / (ns((double)(t1 - t0)) / 1e9));
	put("faults_per_access", faults / ((double)nthreads * PER_THREAD * PASSES));
	put("tlb_per_fault", (tlb1 - tlb0) / faults);
	put("switches_per_fault", (double)(u1.ru_nvcsw - u0.ru_nvcsw + u1.ru_nivcsw - u0.ru_nivcsw) /
					  faults);
	dime_region_destroy(dr);
}

/* The kernel's own fault path under the same load: `nthreads` threads,
 * each with 512 pages of its own memfd, zapping 32 at a time (one TLB
 * shootdown per batch while the other thread runs, as dime's batched
 * page-out) and writing each again (a minor fault). The ratio of two
 * threads to one is what this VM gives fault-heavy work without dime. */
struct minor_job {
	volatile char *m;
	long faults;
	pthread_barrier_t *go, *done;
};

static void *minor_mt_run(void *arg)
{
	enum { PAGES = 512, BATCH = 32 };
	struct minor_job *j = arg;
	pthread_barrier_wait(j->go);
	for (long k = 0; k < j->faults / BATCH; k++) {
		size_t first = (size_t)(k % (PAGES / BATCH)) * BATCH;
		madvise((void *)(j->m + first * PAGE), BATCH * PAGE, MADV_DONTNEED);
		for (size_t i = first; i < first + BATCH; i++)
			j->m[i * PAGE] += 1;
	}
	pthread_barrier_wait(j->done);
	return NULL;
}

static void case_minor_mt(int nthreads)
{
	enum { PAGES = 512, FAULTS = 512 * 512 };
	pthread_barrier_t go, done;
	pthread_barrier_init(&go, NULL, (unsigned)nthreads + 1);
	pthread_barrier_init(&done, NULL, (unsigned)nthreads + 1);
	struct minor_job jobs[8];
	pthread_t th[8];
	for (int t = 0; t < nthreads; t++) {
		jobs[t] = (struct minor_job){ memfd_pages(PAGES), FAULTS, &go, &done };
		pthread_create(&th[t], NULL, minor_mt_run, &jobs[t]);
	}
	uint64_t t0 = now();
	pthread_barrier_wait(&go);
	pthread_barrier_wait(&done);
	uint64_t t1 = now();
	for (int t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	put("faults_per_s", (double)FAULTS * nthreads / (ns((double)(t1 - t0)) / 1e9));
}

static int run_case(int argc, char **argv)
{
	calibrate_tsc();
	if (getenv("DIME_QUIET_FLOOR") == NULL)
		setenv("DIME_QUIET_FLOOR", "1", 1);
	const char *c = argv[0];
	for (int i = 0; i < argc; i++) {
		size_t len = strlen(case_name);
		snprintf(case_name + len, sizeof(case_name) - len, "%s%s", i ? "-" : "", argv[i]);
	}
	if (!strcmp(c, "minor"))
		case_minor();
	else if (!strcmp(c, "remote") && argc > 1)
		case_remote(parse_mode(argv[1]));
	else if (!strcmp(c, "fetch") && argc > 3)
		case_fetch(parse_mode(argv[1]), strtoull(argv[2], NULL, 10),
			   strtoull(argv[3], NULL, 10));
	else if (!strcmp(c, "wait") && argc > 2)
		case_wait(strtoull(argv[1], NULL, 10), strtoull(argv[2], NULL, 10));
	else if (!strcmp(c, "pattern") && argc > 4)
		case_pattern(parse_mode(argv[1]), parse_pattern(argv[2]), strtoull(argv[3], NULL, 10),
			     strtoull(argv[4], NULL, 10), argc > 5 ? argv[5] : "fifo");
	else if (!strcmp(c, "zram") && argc > 2)
		case_zram(parse_pattern(argv[1]),
			  strcmp(argv[2], "sparse") ? BENCH_FILL_RANDOM : BENCH_FILL_SPARSE);
	else if (!strcmp(c, "bw") && argc > 2) {
		/* "noclock": as where perf events are not allowed. */
		if (argc > 3 && !strcmp(argv[3], "noclock"))
			setenv("DIME_NO_FAULTCLOCK", "1", 1);
		case_bw(parse_mode(argv[1]), strtoull(argv[2], NULL, 10));
	}
	else if (!strcmp(c, "resident"))
		case_resident();
	else if (!strcmp(c, "minor-mt") && argc > 1)
		case_minor_mt(atoi(argv[1]));
	else if (!strcmp(c, "mt") && argc > 2)
		case_mt(parse_mode(argv[1]), atoi(argv[2]));
	else {
		fprintf(stderr, "dimebench: unknown case %s\n", c);
		return 2;
	}
	return 0;
}

/* ---- driver ---------------------------------------------------------------- */

const char *const lat_grid[NLAT] = { "1000", "5000", "10000", "20000" };
const char *const bw_grid[NBW] = { "1000000000", "10000000000" };

/* Every case, run in this order in each repetition. The fetch and wait
 * rows cover lat_grid x bw_grid; the pattern rows run at PATTERN_LAT,
 * PATTERN_BW. */
const char *const cases[NCASES] = {
	"minor",
	"remote thread",
	"remote signal",
	"fetch thread 1000 1000000000", "fetch thread 1000 10000000000",
	"fetch thread 5000 1000000000", "fetch thread 5000 10000000000",
	"fetch thread 10000 1000000000", "fetch thread 10000 10000000000",
	"fetch thread 20000 1000000000", "fetch thread 20000 10000000000",
	"fetch signal 1000 1000000000", "fetch signal 1000 10000000000",
	"fetch signal 5000 1000000000", "fetch signal 5000 10000000000",
	"fetch signal 10000 1000000000", "fetch signal 10000 10000000000",
	"fetch signal 20000 1000000000", "fetch signal 20000 10000000000",
	"wait 1000 1000000000", "wait 1000 10000000000",
	"wait 5000 1000000000", "wait 5000 10000000000",
	"wait 10000 1000000000", "wait 10000 10000000000",
	"wait 20000 1000000000", "wait 20000 10000000000",
	"bw thread 1000000000", "bw thread 10000000000", "bw thread " SLOW_BW,
	"bw signal 1000000000", "bw signal 10000000000", "bw signal " SLOW_BW,
	"bw thread 1000000000 noclock",
	"resident",
	"mt thread 1", "mt thread 2",
	"mt signal 1", "mt signal 2",
	"minor-mt 1", "minor-mt 2",
	"pattern thread cyclic " PATTERN_LAT " " PATTERN_BW,
	"pattern signal cyclic " PATTERN_LAT " " PATTERN_BW,
	"pattern thread random " PATTERN_LAT " " PATTERN_BW,
	"pattern signal random " PATTERN_LAT " " PATTERN_BW,
	"pattern thread hotcold " PATTERN_LAT " " PATTERN_BW,
	"pattern signal hotcold " PATTERN_LAT " " PATTERN_BW,
	"pattern signal hotcold " PATTERN_LAT " " PATTERN_BW " lru",
	"zram cyclic random",
	"zram cyclic sparse",
	"zram random random",
	"zram hotcold random",
};
_Static_assert(sizeof(cases) / sizeof(cases[0]) == NCASES, "NCASES counts the cases");

struct result results[NCASES];
int reps = 3;

int is_zram(int ci)
{
	return !strncmp(cases[ci], "zram ", 5);
}

/* Runs `self case <words of c>` and records its key=value lines. Returns
 * 0, or -1 if the case failed (the zram cases may: the caller decides). */
static int run_child(const char *self, int ci, int rep)
{
	char buf[256], *argv[10];
	snprintf(buf, sizeof(buf), "%s", cases[ci]);
	int argc = 0;
	argv[argc++] = (char *)self;
	argv[argc++] = "case";
	for (char *tok = strtok(buf, " "); tok && argc < 9; tok = strtok(NULL, " "))
		argv[argc++] = tok;
	argv[argc] = NULL;
	int fd[2];
	if (pipe(fd) < 0) {
		perror("pipe");
		exit(2);
	}
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		execv(self, argv);
		_exit(127);
	}
	close(fd[1]);
	FILE *f = fdopen(fd[0], "r");
	char line[256];
	struct result *res = &results[ci];
	res->label = cases[ci];
	while (fgets(line, sizeof(line), f)) {
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = 0;
		int k;
		for (k = 0; k < res->nkeys && strcmp(res->keys[k], line); k++)
			;
		if (k == res->nkeys) {
			if (k == MAX_KEYS)
				continue;
			/* The key only: the value after it is still to read. */
			size_t len = strnlen(line, sizeof(res->keys[k]) - 1);
			memcpy(res->keys[k], line, len);
			res->keys[k][len] = 0;
			for (int r = 0; r < MAX_REPS; r++)
				res->v[k][r] = NAN;
			res->nkeys++;
		}
		res->v[k][rep] = strtod(eq + 1, NULL);
	}
	fclose(f);
	int status;
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "dimebench: case '%s' failed\n", cases[ci]);
		if (!is_zram(ci))
			exit(1);
		return -1;
	}
	return 0;
}

/* Busy CPU time of the whole machine over 0.3 s, in % of one CPU. */
static double busy_percent(void)
{
	unsigned long long v[2][8];
	for (int k = 0; k < 2; k++) {
		FILE *f = fopen("/proc/stat", "r");
		if (!f || fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[k][0], &v[k][1],
				 &v[k][2], &v[k][3], &v[k][4], &v[k][5], &v[k][6], &v[k][7]) != 8) {
			if (f)
				fclose(f);
			return 0;
		}
		fclose(f);
		if (!k)
			usleep(300000);
	}
	unsigned long long busy = 0;
	for (int i = 0; i < 8; i++)
		if (i != 3 && i != 4) /* idle, iowait */
			busy += v[1][i] - v[0][i];
	return (double)busy * 100.0 / (0.3 * (double)sysconf(_SC_CLK_TCK));
}

/* The machine is shared: waits (up to 30 s) until the others are quiet. */
static double wait_quiet(void)
{
	double b = busy_percent();
	for (int i = 0; i < 60 && b > 10; i++)
		b = busy_percent();
	return b;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double median_of(const double *v, int n)
{
	double s[MAX_REPS];
	int m = 0;
	for (int i = 0; i < n; i++)
		if (!isnan(v[i]))
			s[m++] = v[i];
	if (!m)
		return NAN;
	qsort(s, (size_t)m, sizeof(double), cmp_double);
	return m % 2 ? s[m / 2] : (s[m / 2 - 1] + s[m / 2]) / 2;
}

/* The value of `key` of case `label` in repetition rep (NAN if none). */
double val(const char *label, const char *key, int rep)
{
	for (int c = 0; c < NCASES; c++) {
		if (!results[c].label || strcmp(results[c].label, label))
			continue;
		for (int k = 0; k < results[c].nkeys; k++)
			if (!strcmp(results[c].keys[k], key))
				return results[c].v[k][rep];
	}
	return NAN;
}


static double load1(void)
{
	double l = NAN;
	FILE *f = fopen("/proc/loadavg", "re");
	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = NAN;
		fclose(f);
	}
	return l;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "case"))
		return argc > 2 ? run_case(argc - 2, argv + 2) : 2;
	const char *out = "build/bench/results.csv", *mdout = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "r:o:m:")) != -1) {
		if (opt == 'r')
			reps = atoi(optarg);
		else if (opt == 'o')
			out = optarg;
		else if (opt == 'm')
			mdout = optarg;
		else {
			fprintf(stderr, "usage: dimebench [-r REPS] [-o results.csv] [-m tables.md]\n");
			return 2;
		}
	}
	if (reps < 1 || reps > MAX_REPS)
		reps = 3;
	char self[4096];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len <= 0)
		return 2;
	self[len] = 0;
	/* The zram baseline runs only under bench/zram-baseline.sh, which
	 * says what is missing when it cannot set it up. */
	const char *skip = getenv("DIME_BENCH_ZRAM_SKIP");
	if (!skip && !getenv("DIME_BENCH_CGROUP"))
		skip = "not run under bench/zram-baseline.sh";
	if (skip)
		fprintf(stderr, "dimebench: zram baseline skipped: %s\n", skip);
	else
		fprintf(stderr, "dimebench: zram baseline: %s\n", getenv("DIME_BENCH_ZRAM_INFO"));
	double bg[MAX_REPS], la[MAX_REPS];
	/* Failed zram cases, and how many of them the cgroup's OOM killer
	 * ended: a tight limit with free swap can still end that way. */
	int zram_failed[NCASES] = { 0 }, zram_oom[NCASES] = { 0 };
	struct bench_memcg cg;
	int have_cg = !skip && bench_memcg_from_env(&cg) == 0;
	for (int rep = 0; rep < reps; rep++) {
		bg[rep] = wait_quiet();
		la[rep] = load1();
		fprintf(stderr,
			"dimebench: repetition %d/%d (background load %.0f%% of a CPU, load average %.2f)\n",
			rep + 1, reps, bg[rep], la[rep]);
		for (int c = 0; c < NCASES; c++) {
			if (is_zram(c) && skip)
				continue;
			long long oom0 = have_cg && is_zram(c) ? bench_memcg_oom_kills(&cg) : -1;
			if (run_child(self, c, rep)) {
				zram_failed[c]++;
				if (oom0 >= 0 && bench_memcg_oom_kills(&cg) > oom0)
					zram_oom[c]++;
			}
		}
	}
	return report_write(out, mdout, skip, zram_failed, zram_oom, bg, la);
}
