/* dime sweep's options: the usage, the value lists, and every check made
 * before anything runs (bad input: one line, exit 2, nothing created). */
#define _GNU_SOURCE
#include "cli.h"
#include "sweep.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_METRIC "dime-metric: *([-+0-9.eE]+) *([^ \t\n]*)"
/* A grid bigger than this is a typo, not a plan. */
#define MAX_LIST 10000

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
	      "    --timeout SECONDS         stop a run after this long (SIGTERM, then SIGKILL\n"
	      "                              30 s later) and record it as failed (default: none)\n"
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
	/* The last occurrence of the option wins, as in dime run. */
	l->n = 0;
	if (!*text || text[0] == ',' || text[strlen(text) - 1] == ',' || strstr(text, ",,"))
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
	free(copy);
}

static void pass(struct sweep_opts *o, const char *name, const char *value)
{
	if (o->npass >= SWEEP_MAX_PASS)
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
		} else if (arg_is(arg, "--timeout", &value)) {
			value = arg_value(argc, argv, &i, "--timeout", value);
			if (parse_u64(value, &o->timeout_s) || !o->timeout_s ||
			    o->timeout_s > 1000000000)
				fail("bad value for --timeout: '%s'", shown(value));
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
		config_load(o->config, &p, NULL);
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
	sweep_self_path();
	/* $DIME is split on blanks by the shell scripts that use it. */
	if (o->delegate) {
		if (has_blank(sweep_self_path()))
			fail("with --delegate dime's own path cannot contain blanks: '%s'",
			     shown(sweep_self_path()));
		if (has_blank(o->out))
			fail("with --delegate the output directory cannot contain blanks: '%s'",
			     shown(o->out));
		for (int k = 0; k < o->npass; k++)
			if (has_blank(o->pass[k]))
				fail("with --delegate option values cannot contain blanks: '%s'",
				     shown(o->pass[k]));
	}
}

void sweep_options(int argc, char **argv, struct sweep_opts *o)
{
	parse(argc, argv, o);
	validate(o);
}
