/* dime run [options] [--] PROGRAM [ARGS...]
 *
 * Everything the user typed is checked before anything starts, so bad input
 * always exits 2 for its own reason; only then does dime look for the
 * preload, check userfaultfd, and start the program.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "trace.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PRELOAD_NAME "libdime-preload.so"
/* Big enough to exercise the engine, small enough to cost nothing. */
#define CHECK_REGION_SIZE ((size_t)64 << 20)

struct run_opts {
	const char *config;
	const char *values[SET_COUNT]; /* from the command line; last one wins */
	bool stats;
	const char *stats_json;
	const char *instance;
	const char *trace, *trace_max;
	char **program;
};

/* One option of the help: its help text may hold '\n' for more lines. */
static void help_line(FILE *f, const char *left, const char *help)
{
	enum { WIDTH = 30 };
	if (strlen(left) > WIDTH)
		fprintf(f, "    %s\n    %-*s ", left, WIDTH, "");
	else
		fprintf(f, "    %-*s ", WIDTH, left);
	for (const char *nl; (nl = strchr(help, '\n')); help = nl + 1)
		fprintf(f, "%.*s\n    %-*s ", (int)(nl - help), help, WIDTH, "");
	fprintf(f, "%s\n", help);
}

void run_usage(FILE *f)
{
	fputs("usage: dime run [options] [--] PROGRAM [ARGS...]\n"
	      "\n"
	      "Runs PROGRAM with its heap in emulated disaggregated memory: at most\n"
	      "--local-pages pages are local at a time, and touching any other page\n"
	      "costs a fetch of 2 * latency + page size / bandwidth. Child processes\n"
	      "are emulated too. dime exits with PROGRAM's status (128 + N if signal N\n"
	      "killed it), 127 if PROGRAM cannot be executed, 2 on bad usage.\n"
	      "\n"
	      "options:\n",
	      f);
	for (int s = 0; s < SET_COUNT; s++) {
		char left[64];
		snprintf(left, sizeof(left), "%s %s", settings[s].option, settings[s].arg);
		help_line(f, left, settings[s].help);
	}
	help_line(f, "-c, --config FILE",
		  "DiME's config file: `key value` lines, # comments;\n"
		  "keys latency_ns, bandwidth_bps, local_npages, policy,\n"
		  "first_touch, bandwidth_model, mode, evict_batch;\n"
		  "options override it");
	help_line(f, "--instance N",
		  "join instance N of `dime config` (its latency,\n"
		  "bandwidth, local pages and policy apply, its budget\n"
		  "is shared); without it the run makes an instance of\n"
		  "its own");
	help_line(f, "--stats", "print a summary of the run on stderr at exit");
	help_line(f, "--stats-json FILE", "write the run's counters and configuration as JSON");
	help_line(f, "--trace FILE",
		  "write a trace of the run (Chrome trace-event JSON, opens\n"
		  "in ui.perfetto.dev): every fault and eviction, local pages\n"
		  "and link utilisation over time");
	help_line(f, "--trace-max-events N",
		  "keep the N most recent events in the trace (default\n"
		  "100000, at most 10000000)");
	help_line(f, "-h, --help", "show this help");
	fputs("\nOptions also take the form --option=value.\n", f);
}

static void parse(int argc, char **argv, struct run_opts *o)
{
	int i;
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i], *value;
		int s;
		if (!strcmp(arg, "--")) {
			i++;
			break;
		}
		/* The program's name ends dime's options, as with env(1). */
		if (arg[0] != '-' || !arg[1])
			break;
		if (arg_is(arg, "-h", &value) || arg_is(arg, "--help", &value)) {
			arg_no_value(arg, value);
			run_usage(stdout);
			exit(0);
		} else if (arg_is(arg, "--config", &value)) {
			o->config = arg_value(argc, argv, &i, "--config", value);
		} else if (!strncmp(arg, "-c", 2)) {
			/* -c FILE or -cFILE, as getopt would take it. */
			o->config = arg_value(argc, argv, &i, "-c", arg[2] ? arg + 2 : NULL);
		} else if (arg_is(arg, "--instance", &value)) {
			o->instance = arg_value(argc, argv, &i, "--instance", value);
		} else if (arg_is(arg, "--stats", &value)) {
			arg_no_value(arg, value);
			o->stats = true;
		} else if (arg_is(arg, "--stats-json", &value)) {
			o->stats_json = arg_value(argc, argv, &i, "--stats-json", value);
			if (!*o->stats_json)
				fail("bad value for --stats-json: ''");
		} else if (arg_is(arg, "--trace", &value)) {
			o->trace = arg_value(argc, argv, &i, "--trace", value);
		} else if (arg_is(arg, "--trace-max-events", &value)) {
			o->trace_max = arg_value(argc, argv, &i, "--trace-max-events", value);
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
			o->values[s] = v;
		}
	}
	if (i >= argc) {
		fputs("dime run: no program given\n", stderr);
		exit(EXIT_USAGE);
	}
	o->program = argv + i;
}

/* Catches a stats file that cannot be written before anything starts,
 * without creating it yet. */
static void check_json_path(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		fail("out of memory");
	const char *dir = dirname(copy);
	if (access(dir, W_OK | X_OK))
		fail("cannot write stats file '%s': %s", shown(path), strerror(errno));
	struct stat st;
	if (!stat(path, &st) && S_ISDIR(st.st_mode))
		fail("cannot write stats file '%s': %s", shown(path), strerror(EISDIR));
	if (!access(path, F_OK) && access(path, W_OK))
		fail("cannot write stats file '%s': %s", shown(path), strerror(errno));
	free(copy);
}

static char *find_preload(void)
{
	static char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - sizeof(PRELOAD_NAME) - 1);
	if (n < 0)
		fail("cannot find dime's own directory: %s", strerror(errno));
	path[n] = 0;
	char *slash = strrchr(path, '/');
	strcpy(slash ? slash + 1 : path, PRELOAD_NAME);
	if (access(path, R_OK))
		fail("cannot find the preload library (%s): '%s'", strerror(errno), shown(path));
	return path;
}

/* One small region in the run's mode: fails here, with dime_strerror()'s
 * advice, rather than in every process of the program. Creating it
 * measures dime's costs in that mode (and warns once if the fetch time is
 * below the floor); the program's processes take that measurement over
 * (DIME_CALIBRATION) instead of each measuring again. */
static void check_userfaultfd(const struct dime_params *p)
{
	struct dime_params q = *p;
	q.size = CHECK_REGION_SIZE;
	struct dime_region *r;
	int err = dime_region_create(&q, &r);
	if (err)
		fail("%s", dime_strerror(err));
	dime_region_destroy(r);
	dime_calibration_export();
}

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

int cmd_run(int argc, char **argv)
{
	struct run_opts o = { 0 };
	parse(argc, argv, &o);

	struct dime_params p;
	dime_params_init(&p);
	bool in_file[SET_COUNT] = { 0 };
	if (o.config)
		config_load(o.config, &p, in_file);
	int instance = -1;
	if (o.instance) {
		uint64_t v;
		if (parse_u64(o.instance, &v) || v >= 64)
			fail("bad value for --instance: '%s'", shown(o.instance));
		instance = (int)v;
		run_instance_exclusive(o.values, in_file);
	}
	/* The command line wins over the file, wherever -c appeared. */
	for (int s = 0; s < SET_COUNT; s++) {
		const char *detail;
		if (o.values[s] && setting_apply(&p, s, o.values[s], &detail))
			fail("bad value for %s: '%s'", settings[s].option, shown(o.values[s]));
	}
	const char *bad;
	if (dime_params_check(&p, &bad)) {
		if (!strcmp(bad, "evict_batch"))
			fail("invalid configuration: 'evict_batch' %" PRIu64 ",%" PRIu64
			     " (needs LOW <= HIGH < local pages %" PRIu64 ")",
			     p.evict_low, p.evict_high, p.local_npages);
		fail("invalid configuration: '%s'", bad);
	}
	policy_absolute(&p);
	if (o.stats_json)
		check_json_path(o.stats_json);
	uint64_t trace_events = 0;
	if (o.trace || o.trace_max)
		trace_events = trace_check(o.trace, o.trace_max);

	const char *preload = find_preload();
	signals_block();
	/* First: a joined instance's parameters and policy are the run's, for
	 * the checks and the floor warning below. */
	struct run_instance ri;
	run_instance_open(&ri, instance, &p,
			  o.values[SET_POLICY] ? "--policy" :
			  in_file[SET_POLICY]  ? "config file key policy" : NULL);
	check_userfaultfd(&p);
	FILE *json = NULL;
	if (o.stats_json && !(json = fopen(o.stats_json, "we")))
		fail("cannot write stats file '%s': %s", shown(o.stats_json), strerror(errno));
	int stats_fd;
	struct run_stats *page = stats_page_create(&stats_fd);
	char **env = child_env(environ, preload, &p, stats_fd, &ri);
	struct trace_run *trace = NULL;
	if (o.trace) {
		trace = trace_start(trace_events, page);
		env = trace_env(env, trace);
	}

	struct run_result res = { 0 };
	bool ran;
	uint64_t start = now_ns();
	res.exit_status = spawn_wait(o.program, env, &ran);
	res.wall_ns = now_ns() - start;
	run_result_read(&res, page);
	run_instance_close(&ri);
	if (trace && trace_finish(trace, o.trace))
		fprintf(stderr, "dime: cannot write trace file '%s': %s\n", shown(o.trace),
			strerror(errno));

	if (o.stats && ran)
		report_human(stderr, &res, &p, o.program);
	if (json && (report_json(json, &res, &p) | fclose(json)))
		fprintf(stderr, "dime: cannot write stats file '%s': %s\n", shown(o.stats_json),
			strerror(errno));
	return res.exit_status;
}
