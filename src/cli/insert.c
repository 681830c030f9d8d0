/* dime insert -p PID[,PID...] [--instance N] [options]   (DiME's insert_module.sh)
 * dime detach -p PID[,PID...]
 *
 * insert starts one agent (dime-agent, next to dime) per process; the
 * agent attaches and serves the process from then on (src/attach/). The
 * processes join instance N of the control plane, or one instance made for
 * them from the options (AUTO, as a plain `dime run` makes: it leaves the
 * table with its last process when it is the last row). Agents, sockets
 * and the table share one control directory (src/control/dir.c). detach
 * asks each agent over its control socket to put every page back and exit;
 * if the agent is gone (killed), it starts one that recovers the process
 * from the state file the agent left.
 *
 * Everything the user typed is checked first: bad input exits 2 and
 * touches no process. If attaching to one of several processes fails, the
 * ones attached before are detached again. */
#define _GNU_SOURCE
#include "cli.h"
#include "../control/control.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define AGENT_NAME "dime-agent"
#define MAX_PIDS 64

void insert_usage(FILE *f)
{
	fputs("usage: dime insert -p PID[,PID...] [--instance N] [options]\n"
	      "\n"
	      "Brings running processes under emulation, like DiME's insert_module.sh:\n"
	      "their anonymous private memory (heap, anonymous mappings, thread stacks)\n"
	      "becomes emulated. Pages resident now count as local; pages beyond the\n"
	      "budget become remote at once. No byte changes. The processes join one\n"
	      "instance of `dime config` and share its budget. An agent process per\n"
	      "PID serves the faults until the process exits or `dime detach`.\n"
	      "Needs ptrace access to the processes and userfaultfd (root, or\n"
	      "vm.unprivileged_userfaultfd=1), and Linux 6.8 or later.\n"
	      "\n"
	      "options:\n"
	      "    -p, --pid PID[,PID...]         the processes (required)\n"
	      "    -c, --config FILE              DiME's config file; options override it\n"
	      "    --instance N                   join instance N of `dime config`: its\n"
	      "                                   latency, bandwidth and local pages apply,\n"
	      "                                   live, and its budget is shared; without\n"
	      "                                   it the processes get an instance of their\n"
	      "                                   own, made from the options\n",
	      f);
	for (int s = 0; s < SET_COUNT; s++) {
		if (s == SET_MODE)
			continue;
		char left[64];
		snprintf(left, sizeof(left), "%s %s", settings[s].option, settings[s].arg);
		fprintf(f, "    %-30s ", left);
		for (const char *h = settings[s].help, *nl; *h; h = nl + 1) {
			nl = strchr(h, '\n');
			if (!nl) {
				fprintf(f, "%s\n", h);
				break;
			}
			fprintf(f, "%.*s\n    %-30s ", (int)(nl - h), h, "");
		}
	}
	fputs("    -h, --help                     show this help\n"
	      "\nOptions also take the form --option=value.\n",
	      f);
}

void detach_usage(FILE *f)
{
	fputs("usage: dime detach -p PID[,PID...]\n"
	      "\n"
	      "Ends the emulation of processes brought under it by `dime insert`: every\n"
	      "remote page moves back, dime's mappings and descriptors leave the\n"
	      "process, which runs on as before. Prints the counters of the emulation.\n"
	      "If the agent of a process was killed, recovers the process.\n",
	      f);
}

/* PID[,PID...]: each a process other than dime itself (alive, for
 * insert), no repeats. */
static int parse_pids(const char *list, pid_t *pids, bool must_live)
{
	int n = 0;
	char *copy = strdup(list), *save = NULL;
	if (!copy)
		fail("out of memory");
	if (!*list || list[strlen(list) - 1] == ',')
		fail("bad value for --pid: '%s'", shown(list));
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;
		if (parse_u64(tok, &v) || v == 0 || v > INT_MAX)
			fail("bad process id: '%s'", shown(tok));
		if (n == MAX_PIDS)
			fail("too many processes (at most %d): '%s'", MAX_PIDS, shown(tok));
		for (int k = 0; k < n; k++)
			if (pids[k] == (pid_t)v)
				fail("process given twice: '%s'", shown(tok));
		if ((pid_t)v == getpid())
			fail("dime cannot insert itself: '%s'", shown(tok));
		if (must_live && kill((pid_t)v, 0) && errno == ESRCH)
			fail("no such process: '%s'", shown(tok));
		pids[n++] = (pid_t)v;
	}
	free(copy);
	if (!n)
		fail("bad value for --pid: '%s'", shown(list));
	return n;
}

static const char *agent_path(void)
{
	static char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - sizeof(AGENT_NAME) - 1);
	if (n < 0)
		fail("cannot find dime's own directory: %s", strerror(errno));
	path[n] = 0;
	char *slash = strrchr(path, '/');
	strcpy(slash ? slash + 1 : path, AGENT_NAME);
	if (access(path, X_OK)) {
		fprintf(stderr, "dime: cannot find the agent (%s): %s\n", strerror(errno), path);
		exit(1);
	}
	return path;
}

/* Connects to the agent of pid; -1 if there is none. */
static int agent_connect(const char *dir, pid_t pid)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/attach-%d.sock", dir, (int)pid);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

static bool state_exists(const char *dir, pid_t pid)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/attach-%d.state", dir, (int)pid);
	return !access(path, F_OK);
}

/* Sends `request` to the agent on s and copies its answer to out.
 * Returns how many bytes the answer had. */
static size_t agent_ask(int s, const char *request, FILE *out)
{
	size_t total = 0;
	if (write(s, request, strlen(request)) < 0) {
		close(s);
		return 0;
	}
	shutdown(s, SHUT_WR);
	char buf[4096];
	ssize_t n;
	while ((n = read(s, buf, sizeof(buf))) > 0) {
		fwrite(buf, 1, (size_t)n, out);
		total += (size_t)n;
	}
	close(s);
	return total;
}

/* Runs the agent with argv; copies what it prints to stdout except a last
 * line "attached". Returns 0 if it printed that line (insert) or exited 0
 * (recover). */
static int agent_run(char *const argv[], bool daemon)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC))
		return -1;
	fflush(NULL);
	pid_t c = fork();
	if (c < 0)
		return -1;
	if (c == 0) {
		dup2(p[1], 1);
		if (daemon)
			setsid();
		execv(argv[0], argv);
		fprintf(stderr, "dime: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	size_t len = 0, cap = 4096;
	char *out = malloc(cap);
	ssize_t n;
	while (out && (n = read(p[0], out + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (len + 1 == cap) {
			char *o = realloc(out, cap *= 2);
			if (!o)
				break;
			out = o;
		}
	}
	close(p[0]);
	if (!out)
		return -1;
	out[len] = 0;
	static const char mark[] = "attached\n";
	bool attached = daemon && len >= sizeof(mark) - 1 &&
			!strcmp(out + len - (sizeof(mark) - 1), mark) &&
			(len == sizeof(mark) - 1 || out[len - sizeof(mark)] == '\n');
	if (attached)
		out[len - (sizeof(mark) - 1)] = 0;
	fputs(out, stdout);
	free(out);
	fflush(stdout);
	if (attached)
		return 0; /* it goes on in the background */
	int st;
	if (waitpid(c, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 && !daemon ? 0 : -1;
}

/* Detaches pid through its agent's socket s, or recovers it if s < 0. */
static int detach_one(const char *dir, pid_t pid, int s, bool quiet)
{
	if (s >= 0) {
		FILE *out = quiet ? fopen("/dev/null", "we") : stdout;
		size_t said = agent_ask(s, "detach\n", out ? out : stdout);
		if (quiet && out)
			fclose(out);
		/* No answer and its state left behind: the agent died (it
		 * removes the state when it detaches); recover instead. */
		if (said || !state_exists(dir, pid))
			return 0;
	}
	char spid[16];
	snprintf(spid, sizeof(spid), "%d", (int)pid);
	char *argv[] = { (char *)agent_path(), "recover", spid, (char *)dir, NULL };
	return agent_run(argv, false);
}

/* What the command line asked for. */
struct insert_opts {
	pid_t pids[MAX_PIDS];
	int npids;
	int instance; /* -1: an instance of their own */
	struct dime_params p;
};

static void parse_common(int argc, char **argv, bool insert, struct insert_opts *o)
{
	const char *pid_list = NULL, *config = NULL, *values[SET_COUNT] = { 0 };
	const char *instance = NULL;
	struct dime_params *p = &o->p;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value;
		if (arg_is(arg, "-h", &value) || arg_is(arg, "--help", &value)) {
			(insert ? insert_usage : detach_usage)(stdout);
			exit(0);
		} else if (arg_is(arg, "--pid", &value)) {
			pid_list = arg_value(argc, argv, &i, "--pid", value);
		} else if (!strncmp(arg, "-p", 2)) {
			pid_list = arg_value(argc, argv, &i, "-p", arg[2] ? arg + 2 : NULL);
		} else if (insert && arg_is(arg, "--config", &value)) {
			config = arg_value(argc, argv, &i, "--config", value);
		} else if (insert && !strncmp(arg, "-c", 2)) {
			config = arg_value(argc, argv, &i, "-c", arg[2] ? arg + 2 : NULL);
		} else if (insert && arg_is(arg, "--instance", &value)) {
			instance = arg_value(argc, argv, &i, "--instance", value);
		} else {
			int s = -1;
			if (insert && arg[0] == '-') {
				for (s = 0; s < SET_COUNT; s++)
					if (arg_is(arg, settings[s].option, &value))
						break;
			}
			if (s < 0 || s == SET_COUNT)
				fail("%s: '%s'", arg[0] == '-' ? "unknown option" : "unexpected argument",
				     shown(arg));
			const char *v = arg_value(argc, argv, &i, settings[s].option, value);
			struct dime_params scratch;
			const char *detail;
			dime_params_init(&scratch);
			if (setting_apply(&scratch, s, v, &detail))
				fail("bad value for %s%s%s%s: '%s'", settings[s].option,
				     detail ? " (" : "", detail ? detail : "", detail ? ")" : "",
				     shown(v));
			values[s] = v;
		}
	}
	if (!pid_list)
		fail("no process given: '-p PID' is required");
	dime_params_init(p);
	bool in_file[SET_COUNT] = { 0 };
	if (config)
		config_load(config, p, in_file);
	o->instance = -1;
	if (instance) {
		uint64_t v;
		if (parse_u64(instance, &v) || v >= 64)
			fail("bad value for --instance: '%s'", shown(instance));
		o->instance = (int)v;
		run_instance_exclusive(values, in_file);
	}
	for (int s = 0; s < SET_COUNT; s++) {
		const char *detail;
		if (values[s] && setting_apply(p, s, values[s], &detail))
			fail("bad value for %s: '%s'", settings[s].option, shown(values[s]));
	}
	/* The agent serves faults while the faulting thread sleeps in the
	 * kernel; a SIGBUS handler would have to live in the target. */
	if (p->mode != DIME_MODE_THREAD)
		fail("dime insert serves faults from an agent, only in thread mode: '%s'",
		     mode_name(p->mode));
	const char *bad;
	if (dime_params_check(p, &bad))
		fail("invalid configuration: '%s'", bad);
	o->npids = parse_pids(pid_list, o->pids, insert);
}

/* The socket's path must fit in sun_path. */
static void check_dir_length(const char *dir, const struct insert_opts *o)
{
	struct sockaddr_un a;
	for (int i = 0; i < o->npids; i++)
		if (strlen(dir) + sizeof("/attach-.sock") + 10 > sizeof(a.sun_path))
			fail("control directory too long for the agents' sockets (at most %zu "
			     "bytes): '%s'", sizeof(a.sun_path) - sizeof("/attach-.sock") - 10,
			     shown(dir));
}

/* Sweeps the table (saying what it removed, an agent that died too);
 * whether pid is a live member, and if so whether dime insert made it one. */
static bool table_member(struct ctl_table *t, pid_t pid, bool *inserted)
{
	ctl_lock(t);
	ctl_sweep(t, 0, stderr);
	struct ctl_member *m = ctl_member_of(t, pid);
	*inserted = m && m->agent;
	ctl_unlock(t);
	return m;
}

int cmd_insert(int argc, char **argv)
{
	static struct insert_opts o;
	parse_common(argc, argv, true, &o);
	struct dime_params *p = &o.p;
	char dir[PATH_MAX];
	struct ctl_table *table = control_table(dir, sizeof(dir));
	check_dir_length(dir, &o);
	for (int i = 0; i < o.npids; i++) {
		bool inserted;
		int s = agent_connect(dir, o.pids[i]);
		if (s >= 0)
			close(s);
		if (s >= 0 || table_member(table, o.pids[i], &inserted))
			fail("process is under dime already: '%d'", (int)o.pids[i]);
		if (state_exists(dir, o.pids[i]))
			fail("the agent of process %d was killed; run 'dime detach -p %d' first: '%d'",
			     (int)o.pids[i], (int)o.pids[i], (int)o.pids[i]);
	}
	const char *agent = agent_path();
	struct run_instance ri;
	run_instance_open(&ri, o.instance, p);
	const char *bad;
	if (dime_params_check(p, &bad)) {
		/* The instance's budget leaves no room for the watermarks. */
		run_instance_close(&ri);
		fail("invalid configuration: '%s' (instance %d has local_npages %llu)", bad, ri.id,
		     (unsigned long long)p->local_npages);
	}
	int status = 0;
	for (int i = 0; i < o.npids; i++) {
		char spid[16], inst[16], ft[4], bm[4], low[24], high[24];
		snprintf(spid, sizeof(spid), "%d", (int)o.pids[i]);
		snprintf(inst, sizeof(inst), "%d", ri.id);
		snprintf(ft, sizeof(ft), "%d", (int)p->first_touch);
		snprintf(bm, sizeof(bm), "%d", (int)p->bandwidth_model);
		snprintf(low, sizeof(low), "%llu", (unsigned long long)p->evict_low);
		snprintf(high, sizeof(high), "%llu", (unsigned long long)p->evict_high);
		char *argv2[] = { (char *)agent, "attach", spid, dir, inst, p->policy, ft, bm, low,
				  high, NULL };
		if (agent_run(argv2, true)) {
			/* Nothing half-applied: the ones before leave again. */
			for (int k = 0; k < i; k++)
				detach_one(dir, o.pids[k], agent_connect(dir, o.pids[k]), true);
			if (i)
				fprintf(stderr, "dime: processes inserted before were detached again\n");
			status = 1;
			break;
		}
	}
	/* The instance made for them lives on with its processes. */
	run_instance_close(&ri);
	return status;
}

int cmd_detach(int argc, char **argv)
{
	static struct insert_opts o;
	parse_common(argc, argv, false, &o);
	char dir[PATH_MAX];
	struct ctl_table *table = control_table(dir, sizeof(dir));
	int socks[MAX_PIDS];
	for (int i = 0; i < o.npids; i++) {
		bool inserted;
		bool member = table_member(table, o.pids[i], &inserted);
		socks[i] = agent_connect(dir, o.pids[i]);
		if (socks[i] < 0 && !state_exists(dir, o.pids[i]))
			fail(member && !inserted ? "process runs under dime run, not dime insert: '%d'"
						 : "process is not under dime: '%d'",
			     (int)o.pids[i]);
	}
	int status = 0;
	for (int i = 0; i < o.npids; i++)
		if (detach_one(dir, o.pids[i], socks[i], false))
			status = 1;
	return status;
}
