/* The process's place in the control plane: `dime run` names an instance
 * (DIME_INSTANCE) of the table in DIME_CONTROL_DIR; the process joins it as
 * a member, so its parameters, link and local budget are the instance's.
 * A fork child joins its parent's instance as a new member; an exec'd
 * image takes the same slot again (same pid, same start time). The process
 * leaves the table at exit; one killed or ending with _exit is removed by
 * a live member's evictor thread or the next command that sweeps
 * (src/control/members.c). */
#include "preload.h"
#include "../control/control.h"
#include "../engine/instance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct ctl_table *table;
static struct ctl_member *self;
static pid_t run_pid;

static void __attribute__((noreturn)) refuse(const char *fmt, const char *arg)
{
	fputs("dime: ", stderr);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	_exit(2);
}

static void leave(void)
{
	struct region *r = preload_region;
	if (!self || !r)
		return;
	instance_leave(r);
	ctl_lock(table);
	if (atomic_load(&self->pid) == getpid())
		ctl_member_remove(table, self);
	ctl_unlock(table);
	self = NULL;
}

static void join(struct region *r, int id)
{
	ctl_lock(table);
	if ((uint32_t)id >= atomic_load(&table->ninstances)) {
		ctl_unlock(table);
		char s[16];
		snprintf(s, sizeof(s), "%d", id);
		refuse("instance %s no longer exists", s);
	}
	self = ctl_member_add(table, id, run_pid);
	ctl_unlock(table);
	if (!self)
		refuse("the instance table is full (%s processes)", "256");
	instance_join(r, table, self);
}

static void child_join(void)
{
	if (self && preload_region)
		join(preload_region, atomic_load(&self->instance));
}

void preload_instance_join(struct region *r)
{
	const char *s = getenv("DIME_INSTANCE");
	if (!s)
		return;
	char *end;
	long id = strtol(s, &end, 10);
	if (!*s || *end || id < 0 || id >= CTL_MAX_INSTANCES)
		refuse("bad value for DIME_INSTANCE: '%s'", s);
	const char *dir = getenv("DIME_CONTROL_DIR");
	if (!dir)
		refuse("%s is set but DIME_CONTROL_DIR is not", "DIME_INSTANCE");
	const char *run = getenv("DIME_RUN_PID");
	run_pid = run ? (pid_t)atoi(run) : 0;
	char msg[CTL_MSG];
	table = ctl_table_open_at(dir, msg);
	if (!table)
		refuse("%s", msg);
	/* Its evictor thread removes dead members: a killed process's pages
	 * leave the budget without waiting for a command. */
	instance_set_reaper(ctl_reap);
	join(r, (int)id);
	atexit(leave);
	pthread_atfork(NULL, NULL, child_join);
}
