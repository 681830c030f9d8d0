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
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_METRIC "dime-metric: *([-+0-9.eE]+) *([^ \t\n]*)"
/* The unconstrained run that measures the footprint: every page can stay. */
#define UNLIMITED_PAGES ((uint64_t)1 << 40)
/* A grid bigger than this is a typo, not a plan. */
#define MAX_LIST 10000
#define MAX_PASS 32

struct sweep_opts {
	struct sweep_list pages, percents, latencies, bandwidths;
	uint64_t repeat;
	const char *metric;
	bool metric_time, metric_default;
	regex_t re;
	bool delegate, plot;
	const char *out;
	const char *config;
	const char *pass[MAX_PASS]; /* `dime run` options, as --name=value */
	int npass;
	char **program;
};

/* The counters of --stats-json that the CSV keeps, in its column order. */
enum { C_REMOTE_FAULTS, C_LOCAL_PAGES_PEAK = 3 };
static const char *const counters[] = {
	"remote_faults",    "first_touch_faults", "evictions", "local_pages_peak",
	"injected_delay_ns", "handling_ns",       "processes",
};
#define NCOUNTERS (sizeof(counters) / sizeof(counters[0]))

struct outcome {
	int status;
	double wall_s;
	bool have_metric, have_stats;
	double metric;
	char unit[32];
	uint64_t c[NCOUNTERS];
	const char *error; /* NULL when the run succeeded */
	char error_buf[32];
};

void sweep_usage(FILE *f)
{
	fputs("usage: dime sweep [options] [--] COMMAND [ARGS...]\n"
	      "\n"
	      "Runs COMMAND under `dime run` at every point of a grid of local memory,\n"
	      "latency and bandwidth, and writes DIR/sweep.csv (one row per run: the\n"
	      "parameters, the metric COMMAND reported, wall time, exit status and dime's\n"
	      "counters) and PNG plots drawn by gnuplot: one line per latency, x = local\n"
	      "memory, y = metric, one plot per bandwidth (by-latency-bw-BPS.png); and one\n"
	      "line per bandwidth, one plot per latency (by-bandwidth-lat-NS.png). A run\n"
	      "that exits non-zero is recorded and makes dime sweep exit 1 at the end.\n"
	      "\n"
	      "LIST: values separated by commas, each N or FIRST:LAST:STEP (10:60:10).\n"
	      "\n"
	      "grid:\n"
	      "    --local-pages LIST        local budgets in pages\n"
	      "    --local-percent LIST      local budgets in % (1-100) of COMMAND's footprint,\n"
	      "                              measured first by one unconstrained run\n"
	      "    --latency-ns LIST         one-way latencies in ns (default 2000)\n"
	      "    --bandwidth-bps LIST      bandwidths in bits/s (default 1000000000)\n"
	      "    --repeat N                runs per point (default 1); plots show the mean\n"
	      "\n"
	      "sweep:\n"
	      "    --metric REGEX|time       the metric: the first capture group of the first\n"
	      "                              match of the POSIX extended REGEX in COMMAND's\n"
	      "                              stdout (default: the workloads' line\n"
	      "                              'dime-metric: VALUE UNIT'); `time`: wall time (s)\n"
	      "    --delegate                run COMMAND natively with the `dime run ... --`\n"
	      "                              prefix in $DIME, for it to put in front of what\n"
	      "                              it emulates (the workloads/ scripts)\n"
	      "    -o, --output DIR          where results go (default dime-sweep)\n"
	      "    --no-plot                 write the CSV only\n"
	      "    -h, --help                show this help\n"
	      "\n"
	      "passed to every `dime run`: --policy, --first-touch, --bandwidth-model,\n"
	      "--mode, -c/--config, --stats (see dime run --help).\n"
	      "\n"
	      "Progress goes to stderr; each run's stdout, stderr and stats are kept in\n"
	      "DIR/runs/POINT-REPEAT.{out,err,json}. Options also take the form\n"
	      "--option=value.\n",
	      f);
}

static void list_add(struct sweep_list *l, uint64_t v, const char *option, const char *text)
{
	if (l->n >= MAX_LIST)
		fail("bad value for %s (more than %d values): '%s'", option, MAX_LIST, shown(text));
	uint64_t *v2 = realloc(l->v, (l->n + 1) * sizeof(*v2));
	if (!v2)
		fail("out of memory");
	l->v = v2;
	l->v[l->n++] = v;
}

/* One number of a list, checked as `dime run` checks that setting (or as
 * a percentage). */
static uint64_t list_number(const char *s, const char *option, int setting, const char *text)
{
	uint64_t v;
	if (parse_u64(s, &v))
		fail("bad value for %s: '%s'", option, shown(text));
	if (setting >= 0) {
		struct dime_params scratch;
		const char *detail;
		dime_params_init(&scratch);
		if (setting_apply(&scratch, setting, s, &detail))
			fail("bad value for %s%s%s%s: '%s'", option, detail ? " (" : "",
			     detail ? detail : "", detail ? ")" : "", shown(text));
	} else if (v < 1 || v > 100) {
		fail("bad value for %s (1 to 100): '%s'", option, shown(text));
	}
	return v;
}

/* "10,20,30" or "10:60:10" or a mix; `setting` validates each value (-1:
 * a percentage). */
static void list_parse(struct sweep_list *l, const char *text, const char *option, int setting)
{
	char *copy = strdup(text), *save = NULL;
	if (!copy)
		fail("out of memory");
	l->n = 0;
	if (!*text || text[strlen(text) - 1] == ',')
		fail("bad value for %s: '%s'", option, shown(text));
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *c1 = strchr(item, ':');
		if (!c1) {
			list_add(l, list_number(item, option, setting, text), option, text);
			continue;
		}
		char *c2 = strchr(c1 + 1, ':');
		if (!c2 || strchr(c2 + 1, ':'))
			fail("bad value for %s (FIRST:LAST:STEP): '%s'", option, shown(text));
		*c1 = *c2 = 0;
		uint64_t first = list_number(item, option, setting, text);
		uint64_t last = list_number(c1 + 1, option, setting, text);
		uint64_t step;
		if (parse_u64(c2 + 1, &step) || !step || last < first)
			fail("bad value for %s (FIRST:LAST:STEP): '%s'", option, shown(text));
		for (uint64_t v = first; v <= last; v += step) {
			list_add(l, v, option, text);
			if (last - v < step)
				break;
		}
	}
	if (strstr(text, ",,") || text[0] == ',')
		fail("bad value for %s: '%s'", option, shown(text));
	free(copy);
}

static void pass(struct sweep_opts *o, const char *name, const char *value)
{
	if (o->npass >= MAX_PASS)
		fail("too many options for dime run: '%s'", name);
	char *s;
	if (value ? asprintf(&s, "%s=%s", name, value) < 0 : !(s = strdup(name)))
		fail("out of memory");
	o->pass[o->npass++] = s;
}

static bool has_blank(const char *s)
{
	return strpbrk(s, " \t\n\r\f\v") != NULL;
}

/* Is `prog` something execvp would run? */
static bool program_found(const char *prog)
{
	if (strchr(prog, '/'))
		return !access(prog, X_OK);
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/bin:/bin";
	char *copy = strdup(path), *save = NULL, *buf;
	bool found = false;
	for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
		if (asprintf(&buf, "%s/%s", *d ? d : ".", prog) < 0)
			break;
		struct stat st;
		found = !access(buf, X_OK) && !stat(buf, &st) && S_ISREG(st.st_mode);
		free(buf);
	}
	free(copy);
	return found;
}

static void check_output_dir(const char *dir)
{
	struct stat st;
	if (!stat(dir, &st)) {
		if (!S_ISDIR(st.st_mode))
			fail("bad value for --output (not a directory): '%s'", shown(dir));
		if (access(dir, W_OK | X_OK))
			fail("bad value for --output (%s): '%s'", strerror(errno), shown(dir));
		return;
	}
	char *copy = strdup(dir);
	if (!copy)
		fail("out of memory");
	char *slash = strrchr(copy, '/');
	const char *parent = slash ? (slash == copy ? "/" : (*slash = 0, copy)) : ".";
	if (access(parent, W_OK | X_OK))
		fail("bad value for --output (%s): '%s'", strerror(errno), shown(dir));
	free(copy);
}

static void parse(int argc, char **argv, struct sweep_opts *o)
{
	int i;
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i], *value;
		int s;
		if (!strcmp(arg, "--")) {
			i++;
			break;
		}
		if (arg[0] != '-' || !arg[1])
			break;
		if (arg_is(arg, "-h", &value) || arg_is(arg, "--help", &value)) {
			arg_no_value(arg, value);
			sweep_usage(stdout);
			exit(0);
		} else if (arg_is(arg, "--local-pages", &value)) {
			value = arg_value(argc, argv, &i, "--local-pages", value);
			list_parse(&o->pages, value, "--local-pages", SET_LOCAL_PAGES);
		} else if (arg_is(arg, "--local-percent", &value)) {
			value = arg_value(argc, argv, &i, "--local-percent", value);
			list_parse(&o->percents, value, "--local-percent", -1);
		} else if (arg_is(arg, "--latency-ns", &value)) {
			value = arg_value(argc, argv, &i, "--latency-ns", value);
			list_parse(&o->latencies, value, "--latency-ns", SET_LATENCY);
		} else if (arg_is(arg, "--bandwidth-bps", &value)) {
			value = arg_value(argc, argv, &i, "--bandwidth-bps", value);
			list_parse(&o->bandwidths, value, "--bandwidth-bps", SET_BANDWIDTH);
		} else if (arg_is(arg, "--repeat", &value)) {
			value = arg_value(argc, argv, &i, "--repeat", value);
			if (parse_u64(value, &o->repeat) || !o->repeat || o->repeat > MAX_LIST)
				fail("bad value for --repeat: '%s'", shown(value));
		} else if (arg_is(arg, "--metric", &value)) {
			o->metric = arg_value(argc, argv, &i, "--metric", value);
		} else if (arg_is(arg, "--delegate", &value)) {
			arg_no_value(arg, value);
			o->delegate = true;
		} else if (arg_is(arg, "--no-plot", &value)) {
			arg_no_value(arg, value);
			o->plot = false;
		} else if (arg_is(arg, "--output", &value) || arg_is(arg, "-o", &value)) {
			o->out = arg_value(argc, argv, &i, arg[1] == 'o' ? "-o" : "--output", value);
			if (!*o->out)
				fail("bad value for --output: ''");
		} else if (arg_is(arg, "--stats", &value)) {
			arg_no_value(arg, value);
			pass(o, "--stats", NULL);
		} else if (arg_is(arg, "--stats-json", &value)) {
			fail("dime sweep keeps every run's stats itself: '%s'", shown(arg));
		} else if (arg_is(arg, "--config", &value) || !strncmp(arg, "-c", 2)) {
			if (arg[1] == 'c')
				value = arg[2] ? arg + 2 : NULL;
			o->config = arg_value(argc, argv, &i, arg[1] == 'c' ? "-c" : "--config", value);
			pass(o, "--config", o->config);
		} else {
			for (s = 0; s < SET_COUNT; s++)
				if (arg_is(arg, settings[s].option, &value))
					break;
			if (s == SET_COUNT)
				fail("unknown option: '%s'", shown(arg));
			const char *v = arg_value(argc, argv, &i, settings[s].option, value);
			struct dime_params scratch;
			const char *detail;
			dime_params_init(&scratch);
			if (setting_apply(&scratch, s, v, &detail))
				fail("bad value for %s%s%s%s: '%s'", settings[s].option,
				     detail ? " (" : "", detail ? detail : "", detail ? ")" : "",
				     shown(v));
			pass(o, settings[s].option, v);
		}
	}
	if (i >= argc) {
		fputs("dime sweep: no command given\n", stderr);
		exit(EXIT_USAGE);
	}
	o->program = argv + i;
}

/* The checks that need all the options at once. */
static void validate(struct sweep_opts *o)
{
	if (!o->pages.n && !o->percents.n)
		fail("no local memory to sweep: give --local-pages or --local-percent");
	if (o->pages.n && o->percents.n)
		fail("give --local-pages or --local-percent, not both: '--local-percent'");

	/* The config file's latency and bandwidth are the defaults' stand-in. */
	struct dime_params p;
	dime_params_init(&p);
	if (o->config)
		config_load(o->config, &p);
	if (!o->latencies.n)
		list_add(&o->latencies, p.latency_ns, "--latency-ns", "");
	if (!o->bandwidths.n)
		list_add(&o->bandwidths, p.bandwidth_bps, "--bandwidth-bps", "");

	o->metric_default = !o->metric;
	o->metric_time = o->metric && !strcmp(o->metric, "time");
	if (!o->metric_time) {
		const char *re = o->metric ? o->metric : DEFAULT_METRIC;
		if (regcomp(&o->re, re, REG_EXTENDED | REG_NEWLINE))
			fail("bad value for --metric (not a POSIX extended regex): '%s'", shown(re));
		if (o->re.re_nsub < 1)
			fail("bad value for --metric (no capture group): '%s'", shown(re));
	}

	if (!program_found(o->program[0]))
		fail("cannot find the command: '%s'", shown(o->program[0]));
	check_output_dir(o->out);
	if (o->plot && !program_found("gnuplot"))
		fail("gnuplot is not installed (Debian package gnuplot-nox), or use --no-plot: 'gnuplot'");
	/* $DIME is split on blanks by the shell scripts that use it. */
	if (o->delegate) {
		if (has_blank(o->out))
			fail("with --delegate the output directory cannot contain blanks: '%s'",
			     shown(o->out));
		for (int k = 0; k < o->npass; k++)
			if (has_blank(o->pass[k]))
				fail("with --delegate option values cannot contain blanks: '%s'",
				     shown(o->pass[k]));
	}
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static char *self_path(void)
{
	static char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n < 0)
		fail("cannot find dime itself: %s", strerror(errno));
	path[n] = 0;
	return path;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		fputs("dime sweep: out of memory\n", stderr);
		exit(1);
	}
	return s;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t size = 0;
	FILE *m = open_memstream(&buf, &size);
	char chunk[65536];
	size_t n;
	while (m && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(f);
	if (!m || fclose(m)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* The unsigned number after "key": in a --stats-json file. */
static bool json_number(const char *text, const char *key, uint64_t *out)
{
	char quoted[64];
	snprintf(quoted, sizeof(quoted), "\"%s\":", key);
	const char *p = strstr(text, quoted);
	if (!p)
		return false;
	p += strlen(quoted);
	p += strspn(p, " \t\n");
	char *end;
	errno = 0;
	*out = strtoull(p, &end, 10);
	return end != p && !errno;
}

static void read_stats(const char *path, struct outcome *res)
{
	char *text = slurp(path);
	res->have_stats = text != NULL;
	for (size_t k = 0; text && k < NCOUNTERS; k++)
		res->have_stats &= json_number(text, counters[k], &res->c[k]);
	free(text);
}

static void read_metric(const struct sweep_opts *o, const char *path, struct outcome *res)
{
	if (o->metric_time) {
		res->metric = res->wall_s;
		res->have_metric = true;
		return;
	}
	char *text = slurp(path);
	regmatch_t m[3];
	if (text && !regexec(&o->re, text, 3, m, 0) && m[1].rm_so >= 0) {
		char *start = text + m[1].rm_so, *end;
		text[m[1].rm_eo] = 0;
		res->metric = strtod(start, &end);
		res->have_metric = end != start && !*end && isfinite(res->metric);
		if (o->metric_default && o->re.re_nsub >= 2 && m[2].rm_so >= 0)
			snprintf(res->unit, sizeof(res->unit), "%.*s",
				 (int)(m[2].rm_eo - m[2].rm_so), text + m[2].rm_so);
	}
	free(text);
}

/* One run: the command at local pages / latency / bandwidth, its output in
 * DIR/runs/TAG.{out,err,json}. */
static void run_one(const struct sweep_opts *o, uint64_t pages, uint64_t lat, uint64_t bw,
		    const char *tag, struct outcome *res)
{
	memset(res, 0, sizeof(*res));
	char *out = xasprintf("%s/runs/%s.out", o->out, tag);
	char *err = xasprintf("%s/runs/%s.err", o->out, tag);
	char *json = xasprintf("%s/runs/%s.json", o->out, tag);
	unlink(json);

	/* self run PASS... --local-pages=N --latency-ns=N --bandwidth-bps=N
	 * --stats-json=FILE -- */
	const char *prefix[MAX_PASS + 8];
	int n = 0;
	prefix[n++] = self_path();
	prefix[n++] = "run";
	for (int k = 0; k < o->npass; k++)
		prefix[n++] = o->pass[k];
	prefix[n++] = xasprintf("--local-pages=%" PRIu64, pages);
	prefix[n++] = xasprintf("--latency-ns=%" PRIu64, lat);
	prefix[n++] = xasprintf("--bandwidth-bps=%" PRIu64, bw);
	prefix[n++] = xasprintf("--stats-json=%s", json);
	prefix[n++] = "--";

	size_t nprog = 0;
	while (o->program[nprog])
		nprog++;
	char **argv = calloc((size_t)n + nprog + 1, sizeof(*argv));
	char *dime_env = NULL;
	if (!argv)
		fail("out of memory");
	size_t a = 0;
	if (o->delegate) {
		size_t len = 0;
		for (int k = 0; k < n; k++)
			len += strlen(prefix[k]) + 1;
		dime_env = calloc(len + 1, 1);
		if (!dime_env)
			fail("out of memory");
		for (int k = 0; k < n; k++) {
			strcat(dime_env, prefix[k]);
			if (k + 1 < n)
				strcat(dime_env, " ");
		}
	} else {
		for (int k = 0; k < n; k++)
			argv[a++] = (char *)prefix[k];
	}
	for (size_t k = 0; k < nprog; k++)
		argv[a++] = o->program[k];

	double start = now_s();
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "dime sweep: fork: %s\n", strerror(errno));
		exit(1);
	}
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (in < 0 || fo < 0 || fe < 0)
			_exit(EXIT_NOEXEC);
		dup2(in, 0);
		dup2(fo, 1);
		dup2(fe, 2);
		if (dime_env)
			setenv("DIME", dime_env, 1);
		execvp(argv[0], argv);
		dprintf(2, "dime sweep: cannot execute '%s': %s\n", argv[0], strerror(errno));
		_exit(EXIT_NOEXEC);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			fprintf(stderr, "dime sweep: waitpid: %s\n", strerror(errno));
			exit(1);
		}
	res->wall_s = now_s() - start;
	res->status = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);

	read_stats(json, res);
	read_metric(o, out, res);
	if (res->status) {
		snprintf(res->error_buf, sizeof(res->error_buf), "exit %d", res->status);
		res->error = res->error_buf;
	} else if (!res->have_stats) {
		res->error = o->delegate ? "no stats (command did not use $DIME)" : "no stats";
	} else if (!res->have_metric) {
		res->error = "no metric";
	}

	for (int k = o->npass + 2; k < n - 1; k++)
		free((char *)prefix[k]);
	free(argv);
	free(dime_env);
	free(out);
	free(err);
	free(json);
}

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
static void report_failure(const struct sweep_opts *o, const char *tag)
{
	char *path = xasprintf("%s/runs/%s.err", o->out, tag);
	char *text = slurp(path);
	if (text) {
		size_t len = strlen(text);
		while (len && text[len - 1] == '\n')
			text[--len] = 0;
		char *last = strrchr(text, '\n');
		if (len)
			fprintf(stderr, "dime sweep:     %s: %s\n", path, shown(last ? last + 1 : text));
	}
	free(text);
	free(path);
}

static void csv_header(FILE *f)
{
	fputs("point,repeat,local_pages,local_percent,latency_ns,bandwidth_bps,metric,"
	      "metric_unit,wall_s,exit_status,error",
	      f);
	for (size_t k = 0; k < NCOUNTERS; k++)
		fprintf(f, ",%s", counters[k]);
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
	char *runs = xasprintf("%s/runs", dir);
	if ((mkdir(dir, 0777) && errno != EEXIST) || (mkdir(runs, 0777) && errno != EEXIST)) {
		fprintf(stderr, "dime sweep: cannot create '%s': %s\n", runs, strerror(errno));
		exit(1);
	}
	free(runs);
}

/* The footprint for --local-percent: local_pages_peak of a run that keeps
 * every page local. */
static uint64_t measure_footprint(const struct sweep_opts *o)
{
	struct outcome r;
	fprintf(stderr, "dime sweep: measuring the footprint (one run with no local limit)\n");
	run_one(o, UNLIMITED_PAGES, o->latencies.v[0], o->bandwidths.v[0], "footprint", &r);
	uint64_t peak = r.c[C_LOCAL_PAGES_PEAK];
	if (r.error || !peak) {
		fprintf(stderr, "dime sweep: the footprint run failed (%s)\n",
			r.error ? r.error : "no page used");
		report_failure(o, "footprint");
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
	parse(argc, argv, &o);
	validate(&o);
	make_dirs(o.out);

	bool percent = o.percents.n > 0;
	const struct sweep_list *local = percent ? &o.percents : &o.pages;
	uint64_t footprint = percent ? measure_footprint(&o) : 0;

	char *csv_path = xasprintf("%s/sweep.csv", o.out);
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
	double t0 = now_s();
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
					run_one(&o, pages, lat, bw, tag, &r);
					csv_row(csv, point, rep, pages, percent ? &local->v[i] : NULL, lat, bw, &r);
					done++;
					if (r.error) {
						failed++;
						fprintf(stderr, "FAILED (%s) after %.1f s\n", r.error, r.wall_s);
						report_failure(&o, tag);
					} else {
						ok[l * nbw + b] = true;
						if (!unit[0] && r.unit[0])
							snprintf(unit, sizeof(unit), "%s", r.unit);
						char eta[32];
						format_duration(eta, sizeof(eta),
								(now_s() - t0) / (double)done * (double)(nruns - done));
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
	format_duration(total, sizeof(total), now_s() - t0);
	fprintf(stderr, "dime sweep: %zu runs in %s, %zu failed; %s", nruns, total, failed, csv_path);
	if (plots > 0)
		fprintf(stderr, ", %d plots in %s", plots, o.out);
	fputc('\n', stderr);
	free(ok);
	free(csv_path);
	return failed || plots < 0 ? 1 : 0;
}
