/* Process-wide engine state and the public region API. */
#include "book.h"
#include "clock.h"
#include "faultclock.h"
#include "fork.h"
#include "heap.h"
#include "internal.h"
#include "region.h"
#include "uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

struct engine engine = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.servers = { { .mode = DIME_MODE_THREAD, .uffd = -1 },
		     { .mode = DIME_MODE_SIGNAL, .uffd = -1 } },
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* Start-up measurements travel to exec'd descendants in DIME_CALIBRATION
 * (dime_calibration_export()), so `dime run` measures once for its program
 * and a shell pipeline under dime does not measure again in every process:
 * "v4,<ticks per ns, 2^-20>" then for thread mode and for signal mode
 * ",<pre>,<post>,<handoff>,<floor>,<entry>,<exit>" and twice ",<fetch>,<pre>,<post>,
 * <handoff>,<exit>" (struct server_costs), costs in ticks, a mode not measured
 * yet all zero. */
#define CALIBRATION_ENV "DIME_CALIBRATION"
enum { COSTS_N = 16 }; /* numbers per mode */

static uint64_t *cost_field(struct server_costs *c, int i)
{
	uint64_t *f[COSTS_N] = { &c->pre,	     &c->post,		&c->handoff,	    &c->floor,
				 &c->entry,	     &c->exit,
				 &c->at[0].fetch,    &c->at[0].pre,	&c->at[0].post,	    &c->at[0].handoff,
				 &c->at[0].exit,
				 &c->at[1].fetch,    &c->at[1].pre,	&c->at[1].post,	    &c->at[1].handoff,
				 &c->at[1].exit };
	return f[i];
}

static bool costs_from_env(void)
{
	const char *s = getenv(CALIBRATION_ENV);
	unsigned long long v[1 + 2 * COSTS_N];
	int n = 0, used = 0;
	if (!s || strncmp(s, "v4,", 3))
		return false;
	for (s += 2; n < 1 + 2 * COSTS_N && sscanf(s, ",%llu%n", &v[n], &used) == 1; s += used)
		n++;
	if (n != 1 + 2 * COSTS_N || *s || !v[0])
		return false;
	clock_ticks_per_ns_q20 = v[0];
	clock_ns_per_tick_q20 = (uint64_t)(((unsigned __int128)1 << 40) / v[0]);
	for (int m = 0; m < 2; m++) {
		struct server *sv = &engine.servers[m];
		for (int i = 0; i < COSTS_N; i++)
			*cost_field(&sv->costs, i) = v[1 + m * COSTS_N + i];
		sv->calibrated = sv->costs.floor != 0;
	}
	return true;
}

void dime_calibration_export(void)
{
	engine_init();
	char buf[1024];
	int len = snprintf(buf, sizeof(buf), "v4,%llu", (unsigned long long)clock_ticks_per_ns_q20);
	pthread_mutex_lock(&engine.lock); /* a server may be measuring */
	for (int m = 0; m < 2; m++)
		for (int i = 0; i < COSTS_N; i++)
			len += snprintf(buf + len, sizeof(buf) - (size_t)len, ",%llu",
					(unsigned long long)*cost_field(&engine.servers[m].costs, i));
	pthread_mutex_unlock(&engine.lock);
	setenv(CALIBRATION_ENV, buf, 1);
}

static void init(void)
{
	engine.page_size = (size_t)sysconf(_SC_PAGESIZE);
	engine.page_shift = (unsigned)__builtin_ctzl(engine.page_size);
	engine.zero_page = book_alloc(engine.page_size);
	engine.pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (!costs_from_env())
		clock_init();
	fork_handlers_install();
}

void engine_thread_begin(const char *name)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	prctl(PR_SET_NAME, name);
}

void engine_init(void)
{
	pthread_once(&init_once, init);
}

int server_open(struct server *s)
{
	if (s->uffd >= 0)
		return 0;
	const struct uffd_caps *caps = uffd_caps();
	if (caps->open_errno)
		return -caps->open_errno;
	/* Read once, at the first open (start-up): a fork()ed child opens
	 * before its regions are registered again, and environ lives in the
	 * emulated heap once the program called setenv(); a remote page of it
	 * touched then would be mapped as zeroes for good. */
	static int no_move = -1, copy_in = -1;
	if (no_move < 0) {
		no_move = getenv("DIME_NO_MOVE") != NULL;
		copy_in = getenv("DIME_COPY_IN") != NULL;
	}
	engine.use_move = caps->has_move && !no_move;
	engine.copy_in_always = copy_in;
	if (!engine.use_move && !caps->has_wp)
		return -ENOTSUP;
	/* Handler threads exist to serve the kernel's own accesses too; with
	 * only user-mode faults trappable they would not. */
	if (s->mode == DIME_MODE_THREAD && caps->user_mode_only)
		return -EPERM;
	uint64_t features = engine.use_move ? UFFD_FEATURE_MOVE : 0;
	if (s->mode == DIME_MODE_SIGNAL)
		features |= UFFD_FEATURE_SIGBUS;
	else
		features |= UFFD_FEATURE_THREAD_ID; /* handlers find the faulting thread's CPU (server.c) */
	int fd = uffd_open(features);
	if (fd < 0)
		return fd;
	s->uffd = fd;
	return 0;
}

int server_run(struct server *s)
{
	return s->mode == DIME_MODE_THREAD ? thread_server_start(s) : signal_server_start(s);
}

int server_start(struct server *s)
{
	if (s->uffd >= 0)
		return 0;
	int err = server_open(s);
	if (err)
		return err;
	err = server_run(s);
	if (!err && !s->calibrated) {
		/* Thread mode's costs as they are with the fault clock
		 * running; afterwards it runs only for a region with a fetch
		 * time (region_set_delay()). */
		bool clocked = s->mode == DIME_MODE_THREAD;
		if (clocked)
			faultclock_calibrating(true);
		err = server_calibrate(s);
		if (clocked)
			faultclock_calibrating(false);
	}
	if (err) {
		close(s->uffd);
		s->uffd = -1;
	}
	return err;
}

struct region *region_lookup_get(uintptr_t addr)
{
	for (size_t i = 0; i < sizeof(engine.regions) / sizeof(engine.regions[0]); i++) {
		struct region *r = slot_get(i);
		if (!r)
			continue;
		if (addr - r->base < r->size || addr - r->store < r->size)
			return r;
		region_put(r);
	}
	return NULL;
}

void slot_empty(struct region *r)
{
	atomic_store_explicit(&engine.regions[r->id], NULL, memory_order_seq_cst);
}

void slot_wait_unused(const struct region *r)
{
	while (atomic_load_explicit(&engine.slot_users[r->id], memory_order_seq_cst))
		sched_yield();
}

bool dime_is_emulated(const void *addr)
{
	struct region *r = region_lookup_get((uintptr_t)addr);
	if (!r)
		return false;
	bool in = (uintptr_t)addr - r->base < r->size;
	region_put(r);
	return in;
}

static void warn_floor(const struct region *r)
{
	static _Atomic int warned;
	uint64_t want = dime_fetch_ns(&r->params, engine.page_size);
	uint64_t floor = clock_ticks_to_ns(r->server->costs.floor);
	if (want >= floor || atomic_exchange(&warned, 1) || getenv("DIME_QUIET_FLOOR"))
		return;
	fprintf(stderr,
		"dime: warning: configured fetch time %llu ns is below this machine's floor "
		"of %llu ns in %s mode; remote faults will take about %llu ns\n",
		(unsigned long long)want, (unsigned long long)floor,
		r->params.mode == DIME_MODE_SIGNAL ? "signal" : "thread", (unsigned long long)floor);
}

int region_create_ex(const struct dime_params *p, bool exclusive_heap, struct region **out)
{
	int err = dime_params_check(p, NULL);
	if (err)
		return err;
	engine_init();
	pthread_mutex_lock(&engine.lock);
	struct server *s = &engine.servers[p->mode];
	err = server_start(s);
	struct region *r = NULL;
	if (!err)
		err = region_new(p, s, &r);
	pthread_mutex_unlock(&engine.lock);
	if (err)
		return err;
	heap_attach(r, exclusive_heap);
	warn_floor(r);
	*out = r;
	return 0;
}

int dime_region_create(const struct dime_params *p, struct dime_region **out)
{
	return region_create_ex(p, true, (struct region **)out);
}

void dime_region_destroy(struct dime_region *dr)
{
	struct region *r = (struct region *)dr;
	if (!r)
		return;
	pthread_mutex_lock(&engine.lock);
	region_delete(r);
	pthread_mutex_unlock(&engine.lock);
}

void *dime_region_base(const struct dime_region *r)
{
	return (void *)((const struct region *)r)->base;
}

size_t dime_region_size(const struct dime_region *r)
{
	return ((const struct region *)r)->size;
}

void dime_region_stats(const struct dime_region *dr, struct dime_stats *out)
{
	counters_read(((const struct region *)dr)->ctr, out);
}

uint64_t dime_floor_ns(enum dime_mode mode)
{
	if (mode != DIME_MODE_THREAD && mode != DIME_MODE_SIGNAL)
		return 0;
	engine_init();
	pthread_mutex_lock(&engine.lock);
	struct server *s = &engine.servers[mode];
	int err = server_start(s);
	uint64_t ns = err ? 0 : clock_ticks_to_ns(s->costs.floor);
	pthread_mutex_unlock(&engine.lock);
	return ns;
}

const char *dime_strerror(int err)
{
	switch (err) {
	case -EPERM:
	case -EACCES:
		return uffd_permission_hint();
	case -ENOSYS:
		return "this kernel has no userfaultfd (CONFIG_USERFAULTFD)";
	case -ENOTSUP:
		return "this kernel has neither UFFDIO_MOVE (Linux 6.8) nor write-protection "
		       "of anonymous memory (Linux 5.7)";
	case -ENOSPC:
		return "too many emulated regions in this process (at most 64)";
	default:
		return strerror(-err);
	}
}
