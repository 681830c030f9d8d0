/* Members: the emulated processes of the table, and their liveness.
 *
 * A PID alone does not name a process for long: after one exits, the
 * kernel may give its PID to another. A member therefore records the
 * process's start time too (/proc/PID/stat field 22), and is alive only
 * while a process with that PID and that start time exists. Members whose
 * process ended without leaving the table (killed with -9, or _exit after
 * fork) are removed by a live member of the table (ctl_reap(): every
 * emulated process and agent looks a few times a second) or by the next
 * command that sweeps (every `dime config`, `dime stats`, `dime run`,
 * `dime insert`, `dime detach`), whichever comes first; the command says
 * so on stderr, for the removals of live members too. Reads /proc with raw calls and no malloc: the preload
 * runs this in a fork child and at exit. */
#define _GNU_SOURCE
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t ctl_proc_start_time(pid_t pid)
{
	char path[64], buf[1024];
	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* The command name (field 2) may hold spaces and parentheses: count
	 * fields from its closing parenthesis, which is field 3's start - 2. */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* A zombie has exited: its memory is gone, it is no member any more. */
	if (p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'))
		return 0;
	int field = 2;
	for (; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	unsigned long long v = 0;
	if (field != 22 || sscanf(p, "%llu", &v) != 1)
		return 0;
	return v + 1; /* never 0 for a live process, whatever its start */
}

static bool proc_alive(pid_t pid, uint64_t start)
{
	return pid && ctl_proc_start_time(pid) == start;
}

bool ctl_member_alive(const struct ctl_member *m)
{
	pid_t pid = atomic_load(&m->pid);
	if (!pid)
		return false;
	/* An inserted process's slot is its agent's: the agent writes its
	 * counts there until it has seen the process exit and removed it
	 * itself, so no one else may free (and reuse) it before. Without
	 * its agent, the process's pages are no one's to count. */
	if (m->agent)
		return proc_alive(m->agent, m->agent_start);
	return proc_alive(pid, m->start_time);
}

void ctl_member_remove(struct ctl_table *t, struct ctl_member *m)
{
	/* Exchanges make a second removal (after a holder of the lock died
	 * half-way) subtract nothing twice. */
	int j = atomic_load(&m->joined);
	uint64_t local = atomic_exchange(&m->local, 0);
	uint64_t req = atomic_exchange(&m->req, 0);
	if (j >= 0 && j < CTL_MAX_INSTANCES) {
		atomic_fetch_sub(&t->inst[j].local, local);
		atomic_fetch_sub(&t->inst[j].pending, req);
	}
	atomic_store(&m->oldest, UINT64_MAX);
	atomic_store_explicit(&m->pid, 0, memory_order_release);
}

/* Puts process pid (started at `start`) into a free slot of instance
 * `inst`. Lock held; a slot of the same pid was removed by the caller. */
static struct ctl_member *member_put(struct ctl_table *t, struct ctl_member *m, int inst,
				     pid_t pid, uint64_t start, pid_t run, pid_t agent)
{
	atomic_store(&m->instance, inst);
	atomic_store(&m->joined, inst);
	m->run = run;
	m->start_time = start;
	m->agent = agent;
	m->agent_start = agent ? ctl_proc_start_time(agent) : 0;
	atomic_store(&m->local, 0);
	atomic_store(&m->oldest, UINT64_MAX);
	atomic_store(&m->req, 0);
	memset(&m->ctr, 0, sizeof(m->ctr));
	atomic_store_explicit(&m->pid, pid, memory_order_release);
	uint32_t end = (uint32_t)(m - t->mem) + 1;
	if (atomic_load(&t->mem_end) < end)
		atomic_store(&t->mem_end, end);
	return m;
}

struct ctl_member *ctl_member_add(struct ctl_table *t, int inst, pid_t run)
{
	pid_t pid = getpid();
	uint64_t start = ctl_proc_start_time(pid);
	struct ctl_member *free_slot = NULL;
	for (int i = 0; i < CTL_MAX_MEMBERS; i++) {
		struct ctl_member *m = &t->mem[i];
		pid_t p = atomic_load(&m->pid);
		if (p == pid && m->start_time == start) {
			/* This process again, after exec: its old image's pages
			 * are gone. */
			ctl_member_remove(t, m);
			free_slot = m;
			break;
		}
		if (p == pid)
			ctl_member_remove(t, m); /* an older process with this pid */
		if (!atomic_load(&m->pid) && !free_slot)
			free_slot = m;
	}
	return free_slot ? member_put(t, free_slot, inst, pid, start, run, 0) : NULL;
}

int ctl_member_add_inserted(struct ctl_table *t, int inst, pid_t pid, struct ctl_member **out)
{
	uint64_t start = ctl_proc_start_time(pid);
	if (!start)
		return -ESRCH;
	struct ctl_member *free_slot = NULL;
	for (int i = 0; i < CTL_MAX_MEMBERS; i++) {
		struct ctl_member *m = &t->mem[i];
		if (atomic_load(&m->pid) == pid) {
			if (ctl_member_alive(m))
				return -EEXIST;
			ctl_member_remove(t, m);
		}
		if (!atomic_load(&m->pid) && !free_slot)
			free_slot = m;
	}
	if (!free_slot)
		return -ENOSPC;
	*out = member_put(t, free_slot, inst, pid, start, 0, getpid());
	return 0;
}

struct ctl_member *ctl_member_of(struct ctl_table *t, pid_t pid)
{
	for (int i = 0; i < CTL_MAX_MEMBERS; i++)
		if (atomic_load(&t->mem[i].pid) == pid && ctl_member_alive(&t->mem[i]))
			return &t->mem[i];
	return NULL;
}

/* A member gone and not reported yet. */
struct gone {
	int32_t pid, instance, run;
	bool agent_gone;
};

/* Removes m (dead) and says why into *g. */
static void take_out(struct ctl_table *t, struct ctl_member *m, struct gone *g)
{
	g->pid = atomic_load(&m->pid);
	g->instance = atomic_load(&m->instance);
	g->run = m->run;
	/* The process runs on without its agent: it still waits for the
	 * pages the agent had made remote (dime detach gives them back). */
	g->agent_gone = m->agent && proc_alive(g->pid, m->start_time);
	ctl_member_remove(t, m);
}

static void report_line(FILE *f, const struct gone *g, int n, bool agents)
{
	int shown = 0;
	for (int i = 0; i < n; i++) {
		if (g[i].agent_gone != agents)
			continue;
		fprintf(f, "%s%d (instance %d)",
			shown++ ? ", "
			: agents ? "dime: removed processes whose dime-agent died from the instance table: "
				 : "dime: removed exited processes from the instance table: ",
			(int)g[i].pid, (int)g[i].instance);
	}
	if (shown && agents)
		fputs("; 'dime detach -p PID' gives them their pages back", f);
	if (shown)
		fputc('\n', f);
}

int ctl_sweep(struct ctl_table *t, pid_t quiet_run, FILE *report)
{
	static struct gone g[CTL_MAX_REAPED + CTL_MAX_MEMBERS];
	int n = 0, removed = 0;
	/* First what live members removed since the last command. */
	for (uint32_t i = 0; i < t->nreaped && i < CTL_MAX_REAPED; i++)
		g[n++] = (struct gone){ .pid = t->reaped[i].pid, .instance = t->reaped[i].instance,
					.run = t->reaped[i].run,
					.agent_gone = t->reaped[i].agent_gone };
	t->nreaped = 0;
	for (int i = 0; i < CTL_MAX_MEMBERS; i++) {
		struct ctl_member *m = &t->mem[i];
		if (!atomic_load(&m->pid) || ctl_member_alive(m))
			continue;
		take_out(t, m, &g[n++]);
		removed++;
	}
	/* A `dime run` cleaning up after its own program: its processes
	 * that ended go quietly. */
	int keep = 0;
	for (int i = 0; i < n; i++)
		if (!(quiet_run && g[i].run == quiet_run && !g[i].agent_gone))
			g[keep++] = g[i];
	if (report) {
		report_line(report, g, keep, false);
		report_line(report, g, keep, true);
	}
	ctl_instances_trim(t);
	return removed;
}

/* How often live members look for dead ones, over all processes. */
#define REAP_NS 200000000ull

int ctl_reap(struct ctl_table *t)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	uint64_t at = atomic_load(&t->reap_at);
	/* One process does it per period; the others find it done. */
	if (now < at || !atomic_compare_exchange_strong(&t->reap_at, &at, now + REAP_NS))
		return 0;
	int removed = 0;
	ctl_lock(t);
	for (int i = 0; i < CTL_MAX_MEMBERS; i++) {
		struct ctl_member *m = &t->mem[i];
		if (!atomic_load(&m->pid) || ctl_member_alive(m))
			continue;
		struct gone g;
		take_out(t, m, &g);
		removed++;
		/* Kept for the next command to say; beyond the room, the
		 * removal still happens, unsaid. */
		if (t->nreaped < CTL_MAX_REAPED)
			t->reaped[t->nreaped++] = (struct ctl_reaped){
				.pid = g.pid, .instance = g.instance, .run = g.run,
				.agent_gone = g.agent_gone };
	}
	ctl_instances_trim(t);
	ctl_unlock(t);
	return removed;
}
