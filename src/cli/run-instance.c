/* The instance of a `dime run`: joined (--instance N) or made for the run,
 * so that every emulated process shows in `dime config`.
 *
 * An instance made for the run is AUTO (src/control/table.h): it persists
 * while the run's `dime run` or any of its processes lives, and leaves the
 * table with them if it is the last row. A row in the middle stays (ids
 * stay dense, as DiME scripts expect) and leaves once every row after it
 * has gone. */
#include "cli.h"
#include "../control/control.h"

#include <unistd.h>

void run_instance_open(struct run_instance *ri, int id, struct dime_params *p)
{
	ri->table = control_table(ri->dir, sizeof(ri->dir));
	struct ctl_table *t = ri->table;
	ctl_lock(t);
	ctl_sweep(t, 0, stderr);
	uint32_t n = atomic_load(&t->ninstances);
	if (id >= 0 && (uint32_t)id >= n) {
		ctl_unlock(t);
		fail("no such instance (there are %u; see dime config): '%d'", n, id);
	}
	ri->own = id < 0;
	if (ri->own) {
		id = ctl_instance_add(t, p->latency_ns, p->bandwidth_bps, p->local_npages,
				      CTL_INST_AUTO);
		if (id < 0) {
			ctl_unlock(t);
			fail("the instance table is full (%d instances)", CTL_MAX_INSTANCES);
		}
		t->inst[id].owner_pid = getpid();
		t->inst[id].owner_start = ctl_proc_start_time(getpid());
	} else {
		ctl_params_read(&t->inst[id].params, &p->latency_ns, &p->bandwidth_bps,
				&p->local_npages);
	}
	ctl_unlock(t);
	ri->id = id;
}

void run_instance_close(struct run_instance *ri)
{
	struct ctl_table *t = ri->table;
	ctl_lock(t);
	if (ri->own && t->inst[ri->id].owner_pid == getpid())
		t->inst[ri->id].owner_pid = 0;
	/* The run's own processes that ended without leaving (_exit after
	 * fork, killed) go quietly: the run saw them end. */
	ctl_sweep(t, getpid(), stderr);
	ctl_unlock(t);
}

void run_instance_exclusive(const char *const values[SET_COUNT], const bool in_file[SET_COUNT])
{
	/* The instance's parameters apply: a second source would be
	 * silently lost. */
	for (int s = SET_LATENCY; s <= SET_LOCAL_PAGES; s++) {
		if (values[s])
			fail("%s cannot be combined with --instance (the instance's "
			     "parameters apply): '%s'", settings[s].option, settings[s].option);
		if (in_file[s])
			fail("config file key %s cannot be combined with --instance (the "
			     "instance's parameters apply): '%s'", settings[s].key, settings[s].key);
	}
}
