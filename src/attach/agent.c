/* dime-agent: the process `dime insert` starts for one target. It attaches
 * (target.c), then serves the target's uffd until the target exits or
 * `dime detach` asks it to detach over its control socket.
 *
 *   dime-agent attach PID DIR INSTANCE policy first_touch bandwidth_model
 *              evict_low evict_high
 *   dime-agent recover PID DIR
 *
 * DIR is the control directory (src/control/dir.c). The target becomes a
 * member of INSTANCE of its table (member.c): latency, bandwidth and local
 * budget are the instance's. DIR also holds attach-PID.sock (the control socket: a line "stats" or
 * "detach", the answer as text), attach-PID.state (what recover needs if
 * this agent dies) and attach-PID.log (this agent's messages once it runs
 * in the background). Until attached, messages go to stderr and the report
 * to stdout, whose last line is "attached" on success; `dime insert` reads
 * them. The agent then leaves the terminal's session.
 *
 * One thread: faults and events are handled in the order the kernel gives
 * them (see attach.h). Evictions the fault path left due are done when no
 * message is waiting. */
#define _GNU_SOURCE
#include "attach.h"
#include "../engine/clock.h"
#include "../engine/uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

/* The socket's path must fit in sun_path. */
static char sock_path[100], state_path[256], log_path[256];

void agent_log(struct attach_target *t, const char *fmt, ...)
{
	FILE *f = t->log ? t->log : stderr;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fflush(f);
}

static void remove_files(void)
{
	unlink(sock_path);
	unlink(state_path);
	unlink(log_path);
}

static int state_write(const struct attach_target *t)
{
	char tmp[300];
	snprintf(tmp, sizeof(tmp), "%s.tmp", state_path);
	FILE *f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f, "pid %d\nagent %d\nfd %d\ndelta %lld\n", (int)t->pid, (int)getpid(), t->target_fd,
		(long long)t->delta);
	fprintf(f, "helper %lx %lx %d %d %d\n", (unsigned long)t->helper.code,
		(unsigned long)t->helper.stack, t->helper.target_cmd, t->helper.target_res,
		(int)t->helper.tid);
	for (size_t i = 0; i < t->nimages; i++)
		fprintf(f, "image %lx %lx\n", (unsigned long)t->images[i].start,
			(unsigned long)t->images[i].end);
	for (size_t i = 0; i < t->nranges; i++)
		fprintf(f, "range %lx %lx\n", (unsigned long)t->ranges[i].start,
			(unsigned long)t->ranges[i].end);
	if (fclose(f))
		return -errno;
	return rename(tmp, state_path) ? -errno : 0;
}

/* Appends [lo, hi) to a growing array of ranges. */
static int push_range(struct attach_range **v, size_t *n, size_t *cap, uintptr_t lo, uintptr_t hi)
{
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 64;
		struct attach_range *p = realloc(*v, c * sizeof(*p));
		if (!p)
			return -ENOMEM;
		*v = p;
		*cap = c;
	}
	(*v)[(*n)++] = (struct attach_range){ .start = lo, .end = hi };
	return 0;
}

static int state_read(struct attach_target *t)
{
	FILE *f = fopen(state_path, "re");
	if (!f)
		return -errno;
	char line[256];
	size_t image_cap = 0;
	int err = 0;
	while (!err && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		long long d;
		int v;
		if (sscanf(line, "fd %d", &v) == 1)
			t->target_fd = v;
		else if (sscanf(line, "delta %lld", &d) == 1)
			t->delta = (intptr_t)d;
		else if (sscanf(line, "image %lx %lx", &lo, &hi) == 2)
			err = push_range(&t->images, &t->nimages, &image_cap, lo, hi);
		else if (sscanf(line, "range %lx %lx", &lo, &hi) == 2)
			err = push_range(&t->ranges, &t->nranges, &t->cap, lo, hi);
		else if (sscanf(line, "helper %lx %lx %d %d %d", &lo, &hi, &t->helper.target_cmd,
				&t->helper.target_res, &v) == 5) {
			/* Detach waits for the thread to be gone (end of file
			 * on its pipe) before unmapping its code. */
			t->helper.code = lo;
			t->helper.stack = hi;
			t->helper.tid = v;
		}
	}
	fclose(f);
	return err;
}

static int listen_socket(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock_path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	unlink(sock_path);
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 4) < 0) {
		int err = -errno;
		close(s);
		return err;
	}
	return s;
}

/* One request on the control socket. Returns true if the agent is done. */
static bool serve_request(struct attach_target *t, int lsock)
{
	int c = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return false;
	char cmd[32] = "";
	struct timeval tv = { 5, 0 };
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ssize_t n = read(c, cmd, sizeof(cmd) - 1);
	cmd[n > 0 ? n : 0] = 0;
	FILE *f = fdopen(c, "w");
	if (!f) {
		close(c);
		return false;
	}
	bool done = false;
	if (!strncmp(cmd, "stats", 5)) {
		target_report_stats(t, f);
	} else if (!strncmp(cmd, "detach", 6)) {
		/* Out of the instance first: the pages that move back are the
		 * process's own again, no longer counted. */
		member_leave(t);
		int err = target_detach(t, f);
		if (err)
			fprintf(f, "dime: detaching process %d: %s\n", (int)t->pid, strerror(-err));
		done = true;
	} else {
		fprintf(f, "dime: unknown request\n");
	}
	fclose(f);
	return done;
}

void agent_pump(struct attach_target *t)
{
	struct uffd_msg m[16];
	for (;;) {
		ssize_t n = read(t->uffd, m, sizeof(m));
		if (n <= 0)
			return;
		for (size_t i = 0; i < (size_t)n / sizeof(m[0]); i++) {
			if (t->npending == t->pending_cap) {
				size_t cap = t->pending_cap ? 2 * t->pending_cap : 64;
				struct uffd_msg *p = realloc(t->pending, cap * sizeof(*p));
				if (!p)
					abort(); /* an event must not be lost */
				t->pending = p;
				t->pending_cap = cap;
			}
			t->pending[t->npending++] = m[i];
		}
	}
}

void agent_serve(struct attach_target *t)
{
	for (;;) {
		agent_pump(t);
		if (t->pending_head == t->npending) {
			t->pending_head = t->npending = 0;
			break;
		}
		struct uffd_msg one = t->pending[t->pending_head++];
		if (one.event == UFFD_EVENT_PAGEFAULT)
			target_fault(t, &one, clock_ticks());
		else
			events_handle(t, &one);
		member_serve_due(t);
	}
	if (t->region && t->region->evict_due)
		fault_drain(t->region);
}

static int loop(struct attach_target *t, int lsock)
{
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	for (;;) {
		struct pollfd p[5] = {
			{ .fd = t->uffd, .events = POLLIN },
			{ .fd = t->pidfd, .events = POLLIN },
			{ .fd = lsock, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
			{ .fd = t->emul.wake_fd, .events = POLLIN },
		};
		/* Messages read while a helper call waited come first. */
		if (poll(p, 5, t->npending ? 0 : -1) < 0 && errno != EINTR)
			return 1;
		if (p[0].revents || t->npending)
			agent_serve(t);
		if (p[1].revents) {
			/* The target is gone, and its memory with it. */
			agent_log(t, "dime: process %d exited\n", (int)t->pid);
			member_leave(t);
			close(t->uffd);
			return 0;
		}
		if (p[2].revents && serve_request(t, lsock))
			return 0;
		if (p[3].revents) {
			/* Stopped: leave the target as it was. */
			member_leave(t);
			target_detach(t, t->log);
			return 0;
		}
		/* Other processes of the instance asked for evictions. */
		if (p[4].revents)
			member_serve(t);
	}
}

static void daemonize(struct attach_target *t)
{
	t->log = fopen(log_path, "ae");
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		close(null);
	}
	if (t->log)
		setvbuf(t->log, NULL, _IOLBF, 0);
}

static void usage_exit(void)
{
	fputs("dime-agent is started by dime insert and dime detach\n", stderr);
	exit(2);
}

static uint64_t num(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end || !*s)
		usage_exit();
	return v;
}

int main(int argc, char **argv)
{
	if (argc < 4)
		usage_exit();
	bool recover = !strcmp(argv[1], "recover");
	if (!recover && (strcmp(argv[1], "attach") || argc != 10))
		usage_exit();
	/* A client that went away must not take the agent with it. */
	signal(SIGPIPE, SIG_IGN);
	static struct attach_target t;
	t.pid = (pid_t)num(argv[2]);
	t.target_fd = -1;
	t.uffd = -1;
	if (snprintf(sock_path, sizeof(sock_path), "%s/attach-%d.sock", argv[3], (int)t.pid) >=
	    (int)sizeof(sock_path))
		usage_exit();
	snprintf(state_path, sizeof(state_path), "%s/attach-%d.state", argv[3], (int)t.pid);
	snprintf(log_path, sizeof(log_path), "%s/attach-%d.log", argv[3], (int)t.pid);
	t.emul.wake_fd = -1;
	t.pidfd = (int)syscall(SYS_pidfd_open, t.pid, 0);
	if (t.pidfd < 0) {
		fprintf(stderr, "dime: no process %d\n", (int)t.pid);
		if (recover)
			remove_files();
		return 1;
	}
	engine_init();
	t.helper = (struct attach_helper){ .cmd = -1, .res = -1, .target_cmd = -1, .target_res = -1 };
	if (recover) {
		engine.use_move = true;
		t.buf = book_alloc(engine.page_size);
		if (state_read(&t) || !t.buf) {
			fprintf(stderr, "dime: cannot read %s\n", state_path);
			return 1;
		}
		t.uffd = (int)syscall(SYS_pidfd_getfd, t.pidfd, t.target_fd, 0);
		char link[64], what[64] = "";
		snprintf(link, sizeof(link), "/proc/self/fd/%d", t.uffd);
		if (t.uffd < 0 || readlink(link, what, sizeof(what) - 1) < 0 ||
		    !strstr(what, "userfaultfd")) {
			fprintf(stderr, "dime: process %d no longer holds dime's userfaultfd\n",
				(int)t.pid);
			t.uffd = -1;
			t.target_fd = -1;
		}
		fprintf(stdout, "dime: the agent of process %d was gone; recovering\n", (int)t.pid);
		int err = target_detach(&t, stdout);
		remove_files();
		return err ? 1 : 0;
	}

	struct dime_params *p = &t.emul.params;
	dime_params_init(p);
	snprintf(p->policy, sizeof(p->policy), "%s", argv[5]);
	p->first_touch = (enum dime_first_touch)num(argv[6]);
	p->bandwidth_model = (enum dime_bandwidth_model)num(argv[7]);
	p->evict_low = num(argv[8]);
	p->evict_high = num(argv[9]);
	uint64_t instance = num(argv[4]);
	if (instance >= 64 || member_open(&t, argv[3], (int)instance))
		return 1;
	/* Watermarks the instance's budget (maybe changed since dime insert
	 * checked them) has no room for are dropped, not refused. */
	if (p->evict_high >= p->local_npages)
		p->evict_low = p->evict_high = 0;
	if (dime_params_check(p, NULL)) {
		member_leave(&t);
		usage_exit();
	}
	/* The agent's own costs of a fault, measured on a region of its own:
	 * the target's faults take the same path (trap, a handler reads the
	 * uffd, page-in, wake-up). */
	dime_floor_ns(DIME_MODE_THREAD);
	int lsock = listen_socket();
	if (lsock < 0) {
		fprintf(stderr, "dime: cannot listen on %s: %s\n", sock_path, strerror(-lsock));
		member_leave(&t);
		return 1;
	}
	if (target_attach(&t, stdout)) {
		member_leave(&t);
		unlink(sock_path);
		return 1;
	}
	int err = state_write(&t);
	if (err)
		fprintf(stderr, "dime: cannot write %s: %s (dime detach cannot recover if this agent "
				"dies)\n",
			state_path, strerror(-err));
	setsid();
	printf("attached\n");
	fflush(stdout);
	daemonize(&t);
	int status = loop(&t, lsock);
	remove_files();
	return status;
}
