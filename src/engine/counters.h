/* Counters of a region, or of every process of a `dime run` when they live
 * in the run's shared stats page (then all processes add into the same
 * counters; local_pages, the sum over processes, is kept by deltas for
 * that reason, and local_pages_peak is the largest of any one process).
 * Updated with relaxed atomics from any thread; read with counters_read(). */
#ifndef DIME_COUNTERS_H
#define DIME_COUNTERS_H

#include "../../include/dime.h"

#include <stdatomic.h>
#include <stdint.h>

#define CTR_HIST_BUCKETS 32

struct counters {
	_Atomic uint64_t remote_faults;
	_Atomic uint64_t first_touch_faults;
	_Atomic uint64_t evictions;
	_Atomic uint64_t local_pages;
	_Atomic uint64_t local_pages_peak;
	_Atomic uint64_t injected_delay_ns;
	_Atomic uint64_t handling_ns;
	_Atomic uint64_t faults_total_ns; /* trap to resume, estimated */
	_Atomic uint64_t soft_faults;     /* touches of inactive pages */
	_Atomic uint64_t policy_ns;       /* in the policy's callbacks */
	_Atomic uint64_t soft_fault_ns;   /* handling soft faults */
	_Atomic uint64_t clocked_faults;  /* remote faults timed from the kernel's event */
	/* Remote faults by their time from trap to resume (estimated), in
	 * log2 buckets: bucket b counts [2^b, 2^(b+1)) ns. */
	_Atomic uint64_t fault_hist[CTR_HIST_BUCKETS];
};

/* The shared page a `dime run` hands its processes (fd in DIME_STATS_FD). */
#define DIME_RUN_STATS_MAGIC 0x64696d6573746174ull /* "dimestat" */
struct run_stats {
	uint64_t magic;
	_Atomic uint64_t processes; /* processes that emulated memory */
	struct counters total;
};

static inline unsigned ctr_hist_bucket(uint64_t ns)
{
	unsigned b = ns ? 63 - (unsigned)__builtin_clzll(ns) : 0;
	return b < CTR_HIST_BUCKETS ? b : CTR_HIST_BUCKETS - 1;
}

static inline void ctr_add(_Atomic uint64_t *c, uint64_t v)
{
	atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

/* n more pages are local; `process_local` is how many this process (its
 * region) holds now. The peak is per process: each process has its own
 * budget, so the largest count any one of them reached. */
static inline void ctr_local_add(struct counters *c, uint64_t n, uint64_t process_local)
{
	uint64_t now = process_local;
	atomic_fetch_add_explicit(&c->local_pages, n, memory_order_relaxed);
	uint64_t peak = atomic_load_explicit(&c->local_pages_peak, memory_order_relaxed);
	while (now > peak &&
	       !atomic_compare_exchange_weak_explicit(&c->local_pages_peak, &peak, now,
						      memory_order_relaxed, memory_order_relaxed))
		;
}

static inline void ctr_local_sub(struct counters *c, uint64_t n)
{
	atomic_fetch_sub_explicit(&c->local_pages, n, memory_order_relaxed);
}

static inline void counters_read(const struct counters *c, struct dime_stats *out)
{
	out->remote_faults = atomic_load(&c->remote_faults);
	out->first_touch_faults = atomic_load(&c->first_touch_faults);
	out->evictions = atomic_load(&c->evictions);
	out->local_pages = atomic_load(&c->local_pages);
	out->local_pages_peak = atomic_load(&c->local_pages_peak);
	out->injected_delay_ns = atomic_load(&c->injected_delay_ns);
	out->handling_ns = atomic_load(&c->handling_ns);
	out->soft_faults = atomic_load(&c->soft_faults);
	out->policy_ns = atomic_load(&c->policy_ns);
	out->soft_fault_ns = atomic_load(&c->soft_fault_ns);
	out->clocked_faults = atomic_load(&c->clocked_faults);
}

#endif
