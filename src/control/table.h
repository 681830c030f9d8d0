/* The instance table: DiME's /proc/dime_config, in a file of the per-user
 * control directory (dir.c) that the CLI and every emulated process map
 * MAP_SHARED. Not installed; the layout is versioned (CTL_VERSION): a
 * table of another version or size is never reinterpreted, it is replaced
 * (table.c; processes of the older dime keep their mapping of the old one).
 *
 * Instances 0 .. ninstances-1 are the rows of `dime config`: ids stay dense,
 * as DiME scripts expect (a new id is always the count). Members are the
 * emulated processes, each in one instance; an instance's PID list is the
 * members whose `instance` is its id.
 *
 * Locking and memory rules:
 *   - `lock` is a process-shared ROBUST mutex; every change of the table's
 *     shape (instances, members, parameters) is made under it. A holder
 *     killed with -9 wedges no one: the next locker gets EOWNERDEAD and
 *     repairs what a half-done change can leave (ctl_lock() in table.c).
 *   - Parameters are read lock-free on the fault path through a seqlock:
 *     `seq` is odd while a writer (under `lock`) changes them; a reader
 *     retries until it sees the same even value before and after.
 *   - Counters and the shared-budget fields are atomics, updated by the
 *     processes without the lock.
 *   - The table never holds pointers: every process maps it elsewhere.
 */
#ifndef DIME_CONTROL_TABLE_H
#define DIME_CONTROL_TABLE_H

#include "../engine/counters.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define CTL_MAGIC 0x64696d657461626cull /* "dimetabl" */
/* 2: members reaped by live processes; 3: instances carry a policy. */
#define CTL_VERSION 4
#define CTL_MAX_INSTANCES 64
#define CTL_MAX_MEMBERS 256
/* Removals by live members that no command has reported yet (members.c). */
#define CTL_MAX_REAPED 32
/* An instance's policy, NUL included: dime_params.policy's size. */
#define CTL_POLICY_MAX DIME_POLICY_MAX

/* An instance's DiME parameters; see the seqlock rule above. */
struct ctl_params {
	_Atomic uint32_t seq;
	_Atomic uint64_t latency_ns;
	_Atomic uint64_t bandwidth_bps;
	_Atomic uint64_t local_npages;
};

enum {
	/* Made by a plain `dime run` for itself: it disappears with its last
	 * process when it is the last row (ids stay dense). Instances made by
	 * `dime config` persist, as DiME's did. */
	CTL_INST_AUTO = 1,
};

struct ctl_instance {
	struct ctl_params params;
	uint32_t flags;          /* CTL_INST_*; under lock */
	int32_t owner_pid;       /* the `dime run` that made an AUTO instance, 0 after it ended */
	uint64_t owner_start;    /* its start time (members.c), against PID reuse */
	/* The replacement policy every process of the instance runs: a
	 * built-in name or a plug-in's absolute path, NUL-terminated. Read
	 * and written under lock only, never on the fault path: a process
	 * takes it when it joins, and it changes only while the instance
	 * has no processes (grammar.c), so all members run this policy. */
	char policy[CTL_POLICY_MAX];
	_Atomic uint64_t page_fault_count; /* DiME's: remote faults, resettable */
	/* The shared budget (engine/instance.c). */
	_Atomic uint64_t local;  /* pages counted local over all its processes */
	_Atomic uint64_t local_peak;
	_Atomic uint64_t pending; /* evictions asked of members, not done yet */
	_Atomic uint64_t ticket; /* the next page to become local gets this */
	_Atomic uint64_t link_free_at; /* the shared link, in clock ticks */
	struct counters ctr;     /* every process of the instance adds into these */
};

struct ctl_member {
	_Atomic int32_t pid;     /* 0: a free slot */
	_Atomic int32_t instance; /* its instance; changed under lock (pid= moves it) */
	_Atomic int32_t joined;  /* the instance its pages are counted in (the process's own view) */
	int32_t run;             /* pid of the `dime run` that started it */
	uint64_t start_time;     /* /proc/PID/stat field 22: tells a reused PID apart */
	/* A process brought in by `dime insert`: the dime-agent that serves
	 * its faults (0 for a process that serves its own). The member is
	 * alive while its agent runs (the agent removes it when the process
	 * exits): without its agent the process's pages are no longer
	 * counted by anyone. */
	int32_t agent;
	uint64_t agent_start;
	_Atomic uint64_t local;  /* pages it counts local */
	_Atomic uint64_t oldest; /* ticket of its oldest local page, UINT64_MAX if none */
	_Atomic uint32_t req;    /* futex word: evictions other processes asked of it */
	_Atomic uint32_t wake;   /* futex word: bumped to wake its evictor */
	struct counters ctr;     /* this process's own counters */
};

/* A member removed by a live process (members.c, ctl_reap), kept until a
 * command reports it. */
struct ctl_reaped {
	int32_t pid;
	int32_t instance;
	int32_t run;
	int32_t agent_gone; /* the process lives on; its agent died */
};

struct ctl_table {
	uint64_t magic;
	uint32_t version;
	uint32_t size;           /* sizeof(struct ctl_table) of the writer */
	pthread_mutex_t lock;
	_Atomic uint32_t ninstances;
	_Atomic uint32_t mem_end;    /* 1 + the highest member slot ever used */
	struct ctl_instance inst[CTL_MAX_INSTANCES];
	struct ctl_member mem[CTL_MAX_MEMBERS];
	/* Live members' sweeps (ctl_reap): the next one is due at reap_at
	 * (CLOCK_MONOTONIC ns, one clock for every process); what they
	 * removed waits in reaped[] (under lock) for a command to say so. */
	_Atomic uint64_t reap_at;
	uint32_t nreaped;
	struct ctl_reaped reaped[CTL_MAX_REAPED];
};

/* A consistent snapshot of an instance's parameters (lock-free). */
static inline uint32_t ctl_params_read(const struct ctl_params *p, uint64_t *latency,
				       uint64_t *bandwidth, uint64_t *local_npages)
{
	for (;;) {
		uint32_t s = atomic_load_explicit(&p->seq, memory_order_acquire);
		if (s & 1)
			continue;
		*latency = atomic_load_explicit(&p->latency_ns, memory_order_relaxed);
		*bandwidth = atomic_load_explicit(&p->bandwidth_bps, memory_order_relaxed);
		*local_npages = atomic_load_explicit(&p->local_npages, memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&p->seq, memory_order_relaxed) == s)
			return s;
	}
}

/* Changes them; table lock held. */
static inline void ctl_params_write(struct ctl_params *p, uint64_t latency, uint64_t bandwidth,
				    uint64_t local_npages)
{
	uint32_t s = atomic_load_explicit(&p->seq, memory_order_relaxed);
	atomic_store_explicit(&p->seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&p->latency_ns, latency, memory_order_relaxed);
	atomic_store_explicit(&p->bandwidth_bps, bandwidth, memory_order_relaxed);
	atomic_store_explicit(&p->local_npages, local_npages, memory_order_relaxed);
	atomic_store_explicit(&p->seq, s + 2, memory_order_release);
}

#endif
