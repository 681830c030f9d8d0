/* The inserted process as a member of an instance of the control plane
 * (src/control/): its PID shows in `dime config`, its counters in `dime
 * stats`, and its region takes the instance's latency, bandwidth and local
 * budget live and shares the budget and the replacement order with the
 * instance's other processes (src/engine/instance.c).
 *
 * The member is the target's pid with the agent's pid beside it: it is
 * alive while both run (members.c). The agent joins before it adopts the
 * target's pages, so that the pages resident at insert take their place
 * in the instance's order and what exceeds the budget leaves at once.
 *
 * Requests of other processes (evict that many of your oldest pages)
 * arrive as a futex wake on the member's word. The agent's loop is one
 * thread that must do every page move itself (helper calls cannot
 * overlap), so a relay thread waits on that word and wakes the loop
 * through an eventfd; it never touches the region. It also runs the
 * control plane's sweep of dead members every 250 ms, as the evictor
 * thread of an emulated process does. */
#define _GNU_SOURCE
#include "attach.h"
#include "../control/control.h"
#include "../engine/instance.h"

#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define RELAY_PERIOD_NS 250000000

static long futex(_Atomic uint32_t *w, int op, uint32_t val, const struct timespec *ts)
{
	/* Not FUTEX_PRIVATE: the word is in the table, shared between processes. */
	return syscall(SYS_futex, w, op, val, ts, NULL, 0);
}

int member_open(struct attach_target *t, const char *dir, int instance)
{
	struct attach_emul *e = &t->emul;
	char msg[CTL_MSG];
	e->wake_fd = -1;
	e->table = ctl_table_open_at(dir, msg);
	if (!e->table) {
		fprintf(stderr, "dime: %s\n", msg);
		return -EIO;
	}
	struct ctl_table *tab = e->table;
	ctl_lock(tab);
	int err = (uint32_t)instance < atomic_load(&tab->ninstances) ? 0 : -ENOENT;
	if (!err)
		err = ctl_member_add_inserted(tab, instance, t->pid, &e->self);
	if (!err) {
		struct dime_params *p = &e->params;
		ctl_params_read(&tab->inst[instance].params, &p->latency_ns, &p->bandwidth_bps,
				&p->local_npages);
	}
	ctl_unlock(tab);
	if (err == -ENOENT)
		fprintf(stderr, "dime: instance %d no longer exists\n", instance);
	else if (err == -EEXIST)
		fprintf(stderr, "dime: process %d is under dime already\n", (int)t->pid);
	else if (err == -ENOSPC)
		fprintf(stderr, "dime: the instance table is full (%d processes)\n", CTL_MAX_MEMBERS);
	else if (err)
		fprintf(stderr, "dime: no process %d\n", (int)t->pid);
	if (err)
		e->self = NULL;
	return err;
}

static void *relay_main(void *arg)
{
	struct attach_emul *e = arg;
	engine_thread_begin("dime-relay");
	_Atomic uint32_t *wake = &e->self->wake;
	while (!atomic_load(&e->relay_stop)) {
		/* Read before the requests: one posted after changes it. */
		uint32_t w = atomic_load(wake);
		uint64_t one = 1;
		if (atomic_load(&e->self->req) && write(e->wake_fd, &one, sizeof(one)) < 0 &&
		    errno != EAGAIN)
			break;
		futex(wake, FUTEX_WAIT, w, &(struct timespec){ .tv_nsec = RELAY_PERIOD_NS });
		ctl_reap(e->table);
	}
	return NULL;
}

int member_join(struct attach_target *t)
{
	struct attach_emul *e = &t->emul;
	int err = instance_join_served(t->region, e->table, e->self);
	if (err)
		return err;
	e->joined = true;
	e->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e->wake_fd < 0)
		return -errno;
	atomic_store(&e->relay_stop, false);
	err = -pthread_create(&e->relay, NULL, relay_main, e);
	if (err) {
		close(e->wake_fd);
		e->wake_fd = -1;
	}
	return err;
}

void member_serve(struct attach_target *t)
{
	struct attach_emul *e = &t->emul;
	uint64_t n;
	if (e->wake_fd >= 0 && read(e->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	member_serve_due(t);
}

void member_serve_due(struct attach_target *t)
{
	struct attach_emul *e = &t->emul;
	if (t->region && e->joined && atomic_load_explicit(&e->self->req, memory_order_relaxed))
		instance_serve(t->region);
}

void member_leave(struct attach_target *t)
{
	struct attach_emul *e = &t->emul;
	if (!e->self)
		return;
	if (e->wake_fd >= 0) {
		atomic_store(&e->relay_stop, true);
		atomic_fetch_add(&e->self->wake, 1);
		futex(&e->self->wake, FUTEX_WAKE, 1, NULL);
		pthread_join(e->relay, NULL);
		close(e->wake_fd);
		e->wake_fd = -1;
	}
	if (e->joined && t->region)
		instance_leave(t->region);
	e->joined = false;
	ctl_lock(e->table);
	/* Unless a sweep took it already (the target died) and the slot
	 * went to another process. */
	if (atomic_load(&e->self->pid) == t->pid && e->self->agent == getpid())
		ctl_member_remove(e->table, e->self);
	ctl_instances_trim(e->table);
	ctl_unlock(e->table);
	e->self = NULL;
}
