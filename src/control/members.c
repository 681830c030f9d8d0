/* Members: the emulated processes of the table, and their liveness.
 *
 * A PID alone does not name a process for long: after one exits, the
 * kernel may give its PID to another. A member therefore records the
 * process's start time too (/proc/PID/stat field 22), and is alive only
 * while a process with that PID and that start time exists. Members whose
 * process ended without leaving the table (killed with -9, or _exit after
 * fork) are removed by the next command that sweeps (every `dime config`,
 * `dime stats`, `dime run`) or by a live process that notices; the command
 * says so on stderr. Reads /proc with raw calls and no malloc: the preload
 * runs this in a fork child and at exit. */
#define _GNU_SOURCE
#include "control.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
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

bool ctl_member_alive(const struct ctl_member *m)
{
	pid_t pid = atomic_load(&m->pid);
	return pid && ctl_proc_start_time(pid) == m->start_time;
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
	if (!free_slot)
		return NULL;
	struct ctl_member *m = free_slot;
	atomic_store(&m->instance, inst);
	atomic_store(&m->joined, inst);
	m->run = run;
	m->start_time = start;
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

int ctl_sweep(struct ctl_table *t, pid_t quiet_run, FILE *report)
{
	int removed = 0, shown = 0;
	for (int i = 0; i < CTL_MAX_MEMBERS; i++) {
		struct ctl_member *m = &t->mem[i];
		pid_t pid = atomic_load(&m->pid);
		if (!pid || ctl_member_alive(m))
			continue;
		int inst = atomic_load(&m->instance);
		bool quiet = quiet_run && m->run == quiet_run;
		ctl_member_remove(t, m);
		removed++;
		if (quiet || !report)
			continue;
		fprintf(report, "%s%d (instance %d)",
			shown++ ? ", " : "dime: removed exited processes from the instance table: ",
			(int)pid, inst);
	}
	if (shown)
		fputc('\n', report);
	ctl_instances_trim(t);
	return removed;
}
