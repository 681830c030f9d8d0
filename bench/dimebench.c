/* dime's benchmark: what emulated memory costs on this machine, each number
 * as a ratio to a baseline measured in the same run.
 *
 *   dimebench [-r REPS] [-o results.csv]   run everything, print the table
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

enum { PAGE = 4096 };

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

static struct dime_region *region(enum dime_mode mode, size_t pages, uint64_t budget,
				  uint64_t latency_ns, uint64_t bps)
{
	struct dime_params p;
	dime_params_init(&p);
	p.size = pages * PAGE;
	p.local_npages = budget;
	p.latency_ns = latency_ns;
	p.bandwidth_bps = bps;
	p.mode = mode;
	struct dime_region *r;
	int err = dime_region_create(&p, &r);
	if (err) {
		fprintf(stderr, "dimebench: dime_region_create: %s\n", dime_strerror(err));
		exit(2);
	}
	return r;
}

static enum dime_mode parse_mode(const char *s)
{
	return strcmp(s, "signal") == 0 ? DIME_MODE_SIGNAL : DIME_MODE_THREAD;
}

/* Kernel minor fault: a memfd page in the page cache whose PTE was zapped,
 * touched again (written, as the remote-fault cases write). */
static void case_minor(void)
{
	enum { PAGES = 512, PASSES = 16 };
	int fd = memfd_create("dimebench", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, PAGES * PAGE) < 0) {
		perror("memfd");
		exit(2);
	}
	volatile char *m = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	for (size_t i = 0; i < PAGES; i++)
		m[i * PAGE] = 1;
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
	uint64_t w0 = now();
	for (int pass = 0; pass < passes; pass++) {
		for (size_t i = 0; i < pages; i++, k++) {
			uint64_t t0 = now();
			m[i * PAGE] += 1;
			uint64_t t1 = now();
			out->t0[k] = t0;
			out->lat[k] = t1 - t0;
		}
	}
	out->wall_ns = ns((double)(now() - w0));
	r->calib = NULL;
	dime_region_stats(dr, &out->st);
	out->st.remote_faults -= s0.remote_faults;
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
	struct sweep sw;
	sweep(dr, PAGES, PASSES, &log, &sw);

	/* Match each access with the fault the engine saw inside it. */
	uint64_t *pre = xmalloc(sizeof(uint64_t) * n), *mid = xmalloc(sizeof(uint64_t) * n);
	uint64_t *post = xmalloc(sizeof(uint64_t) * n), *ev = xmalloc(sizeof(uint64_t) * n);
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
	}
	dime_region_destroy(dr);
}

/* Emulated fetch time as the program sees it, against the configured one. */
static void case_fetch(enum dime_mode mode, uint64_t latency_ns)
{
	enum { PAGES = 512, BUDGET = 256, PASSES = 6 };
	uint64_t bps = 100000000000ull;
	struct dime_region *dr = region(mode, PAGES, BUDGET, latency_ns, bps);
	struct dime_params p;
	dime_params_init(&p);
	p.latency_ns = latency_ns;
	p.bandwidth_bps = bps;
	double want = (double)dime_fetch_ns(&p, PAGE);
	struct sweep sw;
	sweep(dr, PAGES, PASSES, NULL, &sw);
	double sum = 0;
	for (size_t i = 0; i < sw.n; i++)
		sum += ns((double)sw.lat[i]);
	double mean = sum / (double)sw.n;
	put("fetch_ns", want);
	put("mean_ns", mean);
	put("median_ns", ns((double)quantile(sw.lat, sw.n, 0.5)));
	put("p99_ns", ns((double)quantile(sw.lat, sw.n, 0.99)));
	put("mean_err", (mean - want) / want);
	put("p99_err", (ns((double)sw.lat[(size_t)(0.99 * (double)(sw.n - 1) + 0.5)]) - want) / want);
	put("floor_ns", (double)dime_floor_ns(mode));
	dime_region_destroy(dr);
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
	dime_region_destroy(dr);
}

/* Access to resident pages against the same loop on malloc()ed memory. */
static uint64_t touch_loop(volatile uint64_t *m, size_t words, int loops)
{
	uint64_t t0 = now();
	for (int l = 0; l < loops; l++)
		for (size_t i = 0; i < words; i += 8)
			m[i] += 1;
	return now() - t0;
}

static void case_resident(void)
{
	enum { PAGES = 256, LOOPS = 5, ROUNDS = 101 };
	struct dime_region *dr = region(DIME_MODE_THREAD, PAGES, PAGES, 0, UINT64_MAX);
	size_t words = (size_t)PAGES * PAGE / 8;
	volatile uint64_t *emu = dime_region_base(dr);
	/* Native memory mapped like a region: anonymous, 4 KiB pages... */
	/* ...and aligned like one (64 MiB), so both use the same cache and
	 * TLB sets. */
	size_t align = (size_t)64 << 20;
	char *raw = mmap(NULL, (size_t)PAGES * PAGE + align, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	volatile uint64_t *nat = (volatile uint64_t *)(((uintptr_t)raw + align - 1) & ~(align - 1));
	madvise((void *)nat, (size_t)PAGES * PAGE, MADV_NOHUGEPAGE);
	memset((void *)nat, 0, (size_t)PAGES * PAGE);
	for (size_t i = 0; i < words; i += PAGE / 8)
		emu[i] = 0;
	/* Short rounds, alternating which goes first; the median of each
	 * round's ratio: the machine's speed drifts, the pairs see the same. */
	uint64_t te[ROUNDS], tn[ROUNDS], ratio[ROUNDS];
	for (int r = 0; r < ROUNDS; r++) {
		if (r % 2) {
			tn[r] = touch_loop(nat, words, LOOPS);
			te[r] = touch_loop(emu, words, LOOPS);
		} else {
			te[r] = touch_loop(emu, words, LOOPS);
			tn[r] = touch_loop(nat, words, LOOPS);
		}
		ratio[r] = te[r] * 1000000 / tn[r];
	}
	struct dime_stats st;
	dime_region_stats(dr, &st);
	put("emulated_ns", ns((double)quantile(te, ROUNDS, 0.5)) / LOOPS);
	put("native_ns", ns((double)quantile(tn, ROUNDS, 0.5)) / LOOPS);
	put("ratio", (double)quantile(ratio, ROUNDS, 0.5) / 1e6);
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

static int run_case(int argc, char **argv)
{
	calibrate_tsc();
	if (getenv("DIME_QUIET_FLOOR") == NULL)
		setenv("DIME_QUIET_FLOOR", "1", 1);
	const char *c = argv[0];
	if (!strcmp(c, "minor"))
		case_minor();
	else if (!strcmp(c, "remote") && argc > 1)
		case_remote(parse_mode(argv[1]));
	else if (!strcmp(c, "fetch") && argc > 2)
		case_fetch(parse_mode(argv[1]), strtoull(argv[2], NULL, 10));
	else if (!strcmp(c, "bw") && argc > 2)
		case_bw(parse_mode(argv[1]), strtoull(argv[2], NULL, 10));
	else if (!strcmp(c, "resident"))
		case_resident();
	else if (!strcmp(c, "mt") && argc > 2)
		case_mt(parse_mode(argv[1]), atoi(argv[2]));
	else {
		fprintf(stderr, "dimebench: unknown case %s\n", c);
		return 2;
	}
	return 0;
}

/* ---- driver ---------------------------------------------------------------- */

enum { MAX_KEYS = 16, MAX_REPS = 15 };

struct result {
	const char *label;  /* case command line */
	int nkeys;
	char keys[MAX_KEYS][24];
	double v[MAX_KEYS][MAX_REPS];
};

static const char *cases[] = {
	"minor",
	"remote thread",
	"remote signal",
	"fetch thread 1000", "fetch thread 5000", "fetch thread 20000",
	"fetch signal 1000", "fetch signal 5000", "fetch signal 20000",
	"bw thread 1000000000", "bw thread 10000000000",
	"bw signal 1000000000", "bw signal 10000000000",
	"resident",
	"mt thread 1", "mt thread 2",
	"mt signal 1", "mt signal 2",
};
enum { NCASES = sizeof(cases) / sizeof(cases[0]) };

static struct result results[NCASES];

/* Runs `self case <words of c>` and records its key=value lines. */
static void run_child(const char *self, int ci, int rep)
{
	char buf[256], *argv[8];
	snprintf(buf, sizeof(buf), "%s", cases[ci]);
	int argc = 0;
	argv[argc++] = (char *)self;
	argv[argc++] = "case";
	for (char *tok = strtok(buf, " "); tok && argc < 7; tok = strtok(NULL, " "))
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
			line[sizeof(res->keys[k]) - 1] = 0;
			memcpy(res->keys[k], line, strlen(line) + 1);
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
		exit(1);
	}
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

static double median_of(double *v, int n)
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
static double val(const char *label, const char *key, int rep)
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

/* Median over repetitions of f(rep). */
#define MEDIAN_OVER_REPS(expr)                                  \
	({                                                      \
		double v_[MAX_REPS];                            \
		for (int rep = 0; rep < reps; rep++)            \
			v_[rep] = (expr);                       \
		median_of(v_, reps);                            \
	})

static FILE *csv;
static int reps = 3;

static void row(const char *what, const char *unit, double value, const char *vs,
		double ratio, const char *target, const char *note)
{
	char r[32] = "", v[32];
	if (!isnan(ratio))
		snprintf(r, sizeof(r), "%.3f", ratio);
	if (isnan(value))
		snprintf(v, sizeof(v), "-");
	else if (fabs(value) >= 1000)
		snprintf(v, sizeof(v), "%.0f", value);
	else
		snprintf(v, sizeof(v), "%.4g", value);
	printf("%-44s %12s %-6s %-18s %8s  %-8s %s\n", what, v, unit, vs, r, target, note);
	fprintf(csv, "\"%s\",%s,%s,\"%s\",%s,\"%s\",\"%s\"\n", what, v, unit, vs, r, target, note);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "case"))
		return argc > 2 ? run_case(argc - 2, argv + 2) : 2;
	const char *out = "build/bench/results.csv";
	int opt;
	while ((opt = getopt(argc, argv, "r:o:")) != -1) {
		if (opt == 'r')
			reps = atoi(optarg);
		else if (opt == 'o')
			out = optarg;
		else {
			fprintf(stderr, "usage: dimebench [-r REPS] [-o results.csv]\n");
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
	double bg[MAX_REPS];
	for (int rep = 0; rep < reps; rep++) {
		bg[rep] = wait_quiet();
		fprintf(stderr, "dimebench: repetition %d/%d (background load %.0f%% of a CPU)\n",
			rep + 1, reps, bg[rep]);
		for (int c = 0; c < NCASES; c++)
			run_child(self, c, rep);
	}
	csv = fopen(out, "w");
	if (!csv) {
		fprintf(stderr, "dimebench: %s: %s\n", out, strerror(errno));
		return 2;
	}
	fprintf(csv, "measurement,value,unit,baseline,ratio,target,note\n");
	printf("%-44s %12s %-6s %-18s %8s  %-8s %s\n", "measurement (median of reps)", "value", "unit",
	       "baseline", "ratio", "target", "note");

#define V(label, key) MEDIAN_OVER_REPS(val(label, key, rep))
#define R(label, key, blabel, bkey) MEDIAN_OVER_REPS(val(label, key, rep) / val(blabel, bkey, rep))
	double minor = V("minor", "median_ns");
	row("kernel minor fault, median", "ns", minor, "-", NAN, "", "memfd page cache, PTE zapped, write");
	row("kernel minor fault, p99", "ns", V("minor", "p99_ns"), "-", NAN, "", "");
	const char *modes[2] = { "thread", "signal" };
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
		const char *parts[4][2] = { { "pre_ns", "trap + wake-up of the handler" },
					    { "mid_ns", "dime bookkeeping" },
					    { "evict_ns", "eviction (mean, batched)" },
					    { "post_ns", "page-in + wake-up + retry" } };
		if (m == 1) {
			parts[0][1] = "trap + signal delivery";
			parts[3][1] = "page-in + sigreturn + retry";
		}
		for (int k = 0; k < 4; k++) {
			snprintf(w, sizeof(w), "  %s: %s", modes[m], parts[k][1]);
			row(w, "ns", V(l, parts[k][0]), "minor median",
			    R(l, parts[k][0], "minor", "median_ns"), "", "");
		}
	}
	for (int m = 0; m < 2; m++) {
		for (int li = 0; li < 3; li++) {
			const char *lat[3] = { "1000", "5000", "20000" };
			char l[64], w[96], note[96];
			snprintf(l, sizeof(l), "fetch %s %s", modes[m], lat[li]);
			double want = V(l, "fetch_ns");
			snprintf(note, sizeof(note), "configured fetch %.0f ns (floor %.0f)", want,
				 V(l, "floor_ns"));
			snprintf(w, sizeof(w), "fetch time, %s, latency %s ns, mean", modes[m], lat[li]);
			row(w, "ns", V(l, "mean_ns"), "configured", V(l, "mean_err") + 1,
			    want >= 10000 ? "1+-0.01" : "", note);
			snprintf(w, sizeof(w), "fetch time, %s, latency %s ns, median", modes[m],
				 lat[li]);
			row(w, "ns", V(l, "median_ns"), "configured",
			    R(l, "median_ns", l, "fetch_ns"), "", "the typical fault");
			snprintf(w, sizeof(w), "fetch time, %s, latency %s ns, p99", modes[m], lat[li]);
			row(w, "ns", V(l, "p99_ns"), "configured", V(l, "p99_err") + 1,
			    want >= 10000 ? "<=1.05" : "", "");
		}
	}
	for (int m = 0; m < 2; m++) {
		const char *bw[2] = { "1000000000", "10000000000" };
		for (int b = 0; b < 2; b++) {
			char l[64], w[96], note[96];
			snprintf(l, sizeof(l), "bw %s %s", modes[m], bw[b]);
			double floor = V(l, "floor_ns");
			double limit = PAGE * 8 / (floor / 1e9);
			snprintf(note, sizeof(note), "one stream can reach %.2g b/s (floor %.0f ns)", limit,
				 floor);
			snprintf(w, sizeof(w), "streaming bandwidth, %s, %s b/s", modes[m],
				 b ? "10G" : "1G");
			row(w, "b/s", V(l, "achieved_bps"), "configured", V(l, "ratio"), "1+-0.03", note);
		}
	}
	row("resident-page loop, per pass", "ns", V("resident", "emulated_ns"), "plain anon memory",
	    V("resident", "ratio"), "<=1.02", "256 pages, one write per cache line");
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
	row("background load before a repetition", "%", median_of(bg, reps), "-", NAN, "<=10",
	    "other processes on this shared machine");
	fclose(csv);
	printf("\nCSV: %s (%d repetitions)\n", out, reps);
	return 0;
}
