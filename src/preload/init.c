/* Setting the preload up: on the first malloc (or at load time, whichever
 * comes first) create the emulated region, hand it to mimalloc as the only
 * memory it may use, and attach to the run's shared counters.
 *
 * Allocations made while this runs (pthread_create, dlsym, stdio...) are
 * served by a small bootstrap arena (alloc.c): mimalloc must take its
 * first segment from the region, or it would keep serving the program
 * from a non-emulated one. */
#include "preload.h"
#include "../engine/sys.h"
#include "../engine/trace.h"

#include <dlfcn.h>
#include <mimalloc.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

_Atomic int preload_phase = PRELOAD_OFF;
struct region *preload_region;
__thread int preload_busy;

static struct run_stats *run_stats;

/* Joins the counters of `dime run` if it passed its stats page. */
static void stats_attach(struct region *r)
{
	const char *s = getenv("DIME_STATS_FD");
	if (!s)
		return;
	int fd = atoi(s);
	void *p = sys_mmap(NULL, sizeof(struct run_stats), PROT_READ | PROT_WRITE, MAP_SHARED,
			   fd, 0);
	if (p == MAP_FAILED || ((struct run_stats *)p)->magic != DIME_RUN_STATS_MAGIC) {
		fprintf(stderr, "dime: DIME_STATS_FD=%s is not a dime stats page; "
				"counting this process on its own\n", s);
		if (p != MAP_FAILED)
			sys_munmap(p, sizeof(struct run_stats));
		return;
	}
	run_stats = p;
	ctr_add(&run_stats->processes, 1);
	r->ctr = &run_stats->total;
}

static void child_after_fork(void)
{
	if (run_stats)
		ctr_add(&run_stats->processes, 1);
}

static void setup(void)
{
	struct dime_params p;
	config_from_env(&p);
	/* mimalloc may only use the arena we give it. */
	mi_option_set(mi_option_limit_os_alloc, 1);
	mi_option_disable(mi_option_allow_decommit);
	/* A thread's first segments are "eager-commit delayed" by default,
	 * and mimalloc then refuses arenas marked large (ours is: see
	 * heap_attach) and asks the OS, which the limit above forbids: every
	 * thread but the first would get ENOMEM from malloc. */
	mi_option_set(mi_option_eager_commit_delay, 0);
	struct region *r;
	int err = region_create_ex(&p, false, &r);
	if (!err && r->heap_arena < 0)
		err = -ENOMEM;
	if (!err)
		err = mappings_init(r);
	if (err) {
		/* Running on without emulation would give wrong results. */
		fprintf(stderr, "dime: cannot emulate memory for pid %d: %s\n", getpid(),
			dime_strerror(err));
		_exit(2);
	}
	stats_attach(r);
	trace_attach_env();
	preload_instance_join(r);
	dime_calibration_export();
	threads_init();
	pthread_atfork(NULL, NULL, child_after_fork);
	preload_region = r;
}

void *next_symbol(const char *name, _Atomic(void *) *cache)
{
	void *f = atomic_load(cache);
	if (!f) {
		f = dlsym(RTLD_NEXT, name);
		atomic_store(cache, f);
	}
	return f;
}

bool preload_ready_slow(void)
{
	int expect = PRELOAD_OFF;
	if (atomic_compare_exchange_strong(&preload_phase, &expect, PRELOAD_INIT)) {
		preload_busy++;
		setup();
		preload_busy--;
		atomic_store_explicit(&preload_phase, PRELOAD_ON, memory_order_release);
		return true;
	}
	if (preload_busy)
		return false; /* set-up itself is allocating */
	/* Another thread is setting up: wait for it. */
	while (atomic_load_explicit(&preload_phase, memory_order_acquire) != PRELOAD_ON)
		sched_yield();
	return true;
}

__attribute__((constructor)) static void preload_load(void)
{
	if (!preload_busy)
		preload_ready_slow();
}
