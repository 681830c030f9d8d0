/* What a process tree is doing, for the message of a test that timed out
 * waiting for it: each thread of `root` and of its descendants with its
 * state, where it sleeps in the kernel (wchan) and, as root, the top of
 * its kernel stack. A hang that CI hits once in many runs is then
 * readable from the log alone. */
#pragma once

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* Appends to the report; keeps what fits. */
static inline void proc_state_add(char *out, size_t cap, const char *fmt, ...)
{
	size_t len = strlen(out);
	if (len + 1 >= cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out + len, cap - len, fmt, ap);
	va_end(ap);
}

/* The first line of /proc/<path>, without its newline ("" if unreadable). */
static inline void proc_state_line(const char *path, char *buf, size_t cap)
{
	buf[0] = 0;
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(buf, (int)cap, f))
		buf[strcspn(buf, "\n")] = 0;
	fclose(f);
}

/* The parent of pid from /proc/<pid>/stat, or -1. */
static inline pid_t proc_state_parent(pid_t pid)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	proc_state_line(path, line, sizeof(line));
	const char *p = strrchr(line, ')'); /* the command may hold spaces */
	int ppid;
	char state;
	return p && sscanf(p + 1, " %c %d", &state, &ppid) == 2 ? ppid : -1;
}

static inline void proc_state_threads(pid_t pid, char *out, size_t cap)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char dir[300], p[320], comm[64], stat[512], wchan[128], stack[512] = "";
		snprintf(dir, sizeof(dir), "/proc/%d/task/%s", (int)pid, e->d_name);
		snprintf(p, sizeof(p), "%s/comm", dir);
		proc_state_line(p, comm, sizeof(comm));
		snprintf(p, sizeof(p), "%s/stat", dir);
		proc_state_line(p, stat, sizeof(stat));
		const char *s = strrchr(stat, ')');
		snprintf(p, sizeof(p), "%s/wchan", dir);
		proc_state_line(p, wchan, sizeof(wchan));
		/* Root only; its first lines name the wait. */
		snprintf(p, sizeof(p), "%s/stack", dir);
		FILE *f = fopen(p, "re");
		char l[96];
		for (int k = 0; f && k < 4 && fgets(l, sizeof(l), f); k++) {
			l[strcspn(l, "\n")] = 0;
			char *sym = strchr(l, ']'); /* "[<0>] do_futex+0x..." */
			proc_state_add(stack, sizeof(stack), "%s%s", k ? " < " : "", sym ? sym + 2 : l);
		}
		if (f)
			fclose(f);
		proc_state_add(out, cap, "  %d/%s %-16s %c %s%s%s\n", (int)pid, e->d_name, comm,
			       s && s[1] ? s[2] : '?', wchan, stack[0] ? " | " : "", stack);
	}
	closedir(d);
}

/* The report for root and every process below it, in out (cap bytes). */
static inline void proc_state(pid_t root, char *out, size_t cap)
{
	out[0] = 0;
	proc_state_add(out, cap,
		       "threads of process %d and its children "
		       "(pid/tid comm state wchan | kernel stack):\n",
		       (int)root);
	pid_t tree[64] = { root };
	int n = 1;
	/* Breadth-first over /proc: a child is found once its parent is in. */
	for (int i = 0; i < n; i++) {
		proc_state_threads(tree[i], out, cap);
		DIR *d = opendir("/proc");
		if (!d)
			break;
		for (struct dirent *e; (e = readdir(d)) && n < 64;) {
			pid_t pid = (pid_t)atoi(e->d_name);
			if (pid > 0 && proc_state_parent(pid) == tree[i])
				tree[n++] = pid;
		}
		closedir(d);
	}
}
