/* dime insert -p PID[,PID...] [options]   (DiME's insert_module.sh)
 * dime detach -p PID[,PID...]
 *
 * insert starts one agent (dime-agent, next to dime) per process; the
 * agent attaches and serves the process from then on (src/attach/). detach
 * asks each agent over its control socket to put every page back and exit;
 * if the agent is gone (killed), it starts one that recovers the process
 * from the state file the agent left.
 *
 * Everything the user typed is checked first: bad input exits 2 and
 * touches no process. If attaching to one of several processes fails, the
 * ones attached before are detached again. */
#define _GNU_SOURCE
#include "cli.h"

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
	fputs("usage: dime insert -p PID[,PID...] [options]\n"
	      "\n"
	      "Brings running processes under emulation, like DiME's insert_module.sh:\n"
	      "their anonymous private memory (heap, anonymous mappings, thread stacks)\n"
	      "becomes emulated. Pages resident now count as local; pages beyond\n"
	      "--local-pages become remote at once. No byte changes. An agent process\n"
	      "per PID serves the faults until the process exits or `dime detach`.\n"
	      "Needs ptrace access to the processes and userfaultfd (root, or\n"
	      "vm.unprivileged_userfaultfd=1), and Linux 6.8 or later.\n"
	      "\n"
	      "options:\n"
	      "    -p, --pid PID[,PID...]         the processes (required)\n"
	      "    -c, --config FILE              DiME's config file; options override it\n",
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

/* The per-user directory of the agents' sockets and state files:
 * $XDG_RUNTIME_DIR/dime, else /tmp/dime-UID; owned by the user, mode 0700. */
static const char *control_dir(void)
{
	static char dir[PATH_MAX];
	const char *x = getenv("XDG_RUNTIME_DIR");
	struct stat st;
	if (x && *x && !stat(x, &st) && S_ISDIR(st.st_mode))
		snprintf(dir, sizeof(dir), "%s/dime", x);
	else
		snprintf(dir, sizeof(dir), "/tmp/dime-%u", (unsigned)getuid());
	if (mkdir(dir, 0700) && errno != EEXIST) {
		fprintf(stderr, "dime: cannot create %s: %s\n", dir, strerror(errno));
		exit(1);
	}
	if (lstat(dir, &st) || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
	    (st.st_mode & 077)) {
		fprintf(stderr, "dime: %s is not a private directory of this user\n", dir);
		exit(1);
	}
	return dir;
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
	char path[PATH_MAX];
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

static int parse_common(int argc, char **argv, bool insert, pid_t *pids, int *npids,
			struct dime_params *p)
{
	const char *pid_list = NULL, *config = NULL, *values[SET_COUNT] = { 0 };
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
	if (config)
		config_load(config, p, NULL);
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
	*npids = parse_pids(pid_list, pids, insert);
	return 0;
}

int cmd_insert(int argc, char **argv)
{
	pid_t pids[MAX_PIDS];
	int n;
	struct dime_params p;
	parse_common(argc, argv, true, pids, &n, &p);
	const char *dir = control_dir();
	for (int i = 0; i < n; i++) {
		if (agent_connect(dir, pids[i]) >= 0)
			fail("process is under dime already: '%d'", (int)pids[i]);
		if (state_exists(dir, pids[i]))
			fail("the agent of process %d was killed; run 'dime detach -p %d' first: '%d'",
			     (int)pids[i], (int)pids[i], (int)pids[i]);
	}
	const char *agent = agent_path();
	for (int i = 0; i < n; i++) {
		char spid[16], lat[24], bw[24], local[24], ft[4], bm[4];
		snprintf(spid, sizeof(spid), "%d", (int)pids[i]);
		snprintf(lat, sizeof(lat), "%llu", (unsigned long long)p.latency_ns);
		snprintf(bw, sizeof(bw), "%llu", (unsigned long long)p.bandwidth_bps);
		snprintf(local, sizeof(local), "%llu", (unsigned long long)p.local_npages);
		snprintf(ft, sizeof(ft), "%d", (int)p.first_touch);
		snprintf(bm, sizeof(bm), "%d", (int)p.bandwidth_model);
		char *argv2[] = { (char *)agent, "attach", spid, (char *)dir, lat, bw, local,
				  p.policy, ft, bm, NULL };
		if (agent_run(argv2, true)) {
			/* Nothing half-applied: the ones before leave again. */
			for (int k = 0; k < i; k++)
				detach_one(dir, pids[k], agent_connect(dir, pids[k]), true);
			if (i)
				fprintf(stderr, "dime: processes inserted before were detached again\n");
			return 1;
		}
	}
	return 0;
}

int cmd_detach(int argc, char **argv)
{
	pid_t pids[MAX_PIDS];
	int n;
	struct dime_params p;
	parse_common(argc, argv, false, pids, &n, &p);
	const char *dir = control_dir();
	int socks[MAX_PIDS];
	for (int i = 0; i < n; i++) {
		socks[i] = agent_connect(dir, pids[i]);
		if (socks[i] < 0 && !state_exists(dir, pids[i]))
			fail("process is not under dime: '%d'", (int)pids[i]);
	}
	int status = 0;
	for (int i = 0; i < n; i++)
		if (detach_one(dir, pids[i], socks[i], false))
			status = 1;
	return status;
}
