/* Tracing: events of the fault path for `dime run --trace FILE`.
 *
 * The ring. `dime run` creates one ring in a memfd (src/cli/trace-run.c)
 * and passes its descriptor in DIME_TRACE_FD; every emulated process of
 * the run maps it MAP_SHARED (fork children inherit the mapping, exec'd
 * images map it again from the environment) and writes its events into it.
 * The CLI reads it once the program has ended (src/cli/trace-write.c).
 * Event number n (from one counter shared by all processes) goes into slot
 * n % capacity, so the ring holds the most recent `capacity` events of the
 * whole run; older ones are overwritten and counted as dropped.
 *
 * Writing a slot (trace.c): seq = 0, the fields, then seq = n + 1 with
 * release order. A reader takes a slot only if seq is non-zero, names an
 * event among the last `capacity`, and is the same before and after it
 * copied the fields. A process killed while writing leaves seq 0: that
 * slot is skipped, never half read, and counted as dropped. So a writer
 * takes its slot only once the event is complete in its own memory, and
 * exit() waits for the writers of the moment (trace.c). Two writers meet in one slot only if
 * one of them stalls for `capacity` other events in the middle of its
 * few stores; the slot then holds either's fields.
 *
 * Cost. Off (no ring): one predictable branch on trace_ring at each hook.
 * On: a fetch-add on the shared head, a clock_gettime() (vDSO) and the
 * stores of one 64-byte slot; no lock, no malloc, async-signal-safe, so
 * it runs inside the SIGBUS handler of signal mode. The ring is dime's
 * own memory (never emulated). A fault is recorded with its counters,
 * before its page-in; the time that takes becomes delay debt (fault.c),
 * so the program's emulated time does not grow with tracing.
 */
#ifndef DIME_TRACE_H
#define DIME_TRACE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DIME_TRACE_MAGIC 0x64696d6574726163ull /* "dimetrac" */
#define DIME_TRACE_VERSION 1
/* Bounds of the ring's capacity (--trace-max-events). */
#define DIME_TRACE_MAX_EVENTS_DEFAULT 100000u
#define DIME_TRACE_MAX_EVENTS_LIMIT 10000000u

enum trace_kind {
	TRACE_REMOTE = 1,  /* a fetch from remote memory */
	TRACE_FIRST_TOUCH, /* a never-used page made local */
	TRACE_SOFT,        /* a touch of a page the policy observed */
	TRACE_EVICT,       /* a page moved (or declared) remote */
};

/* One event, 64 bytes. Times in ns on CLOCK_MONOTONIC (one clock for all
 * processes). */
struct trace_event {
	_Atomic uint64_t seq; /* 1 + the event's number; 0 while written */
	uint64_t begin_ns;
	uint64_t dur_ns;
	uint64_t addr;        /* the page's address in its process */
	uint64_t delay_ns;    /* injected (busy-waited) delay */
	uint64_t handling_ns; /* dime's own handling, the delay left out */
	int32_t pid, tid;     /* the faulting thread (eviction: the evicting one) */
	int16_t instance;     /* -1: none */
	uint8_t region;       /* the region's slot in its process */
	uint8_t kind;         /* enum trace_kind */
	uint32_t pad;
};

struct trace_ring {
	uint64_t magic;
	uint32_t version, event_size;
	uint64_t capacity;               /* slots */
	uint64_t pad0[5];
	_Atomic uint64_t head;           /* events ever recorded */
	/* Transfer time of every delayed fetch, summed (the link's busy
	 * time: sampled by the CLI into a utilisation counter). */
	_Atomic uint64_t link_busy_ns;
	uint64_t pad1[6];
	struct trace_event ev[];
};

/* Bytes of a ring of `capacity` events. */
static inline size_t trace_ring_bytes(uint64_t capacity)
{
	return sizeof(struct trace_ring) + capacity * sizeof(struct trace_event);
}

/* The run's ring, NULL when tracing is off (the hooks test it). Hidden:
 * one PC-relative load, no GOT, in the shared objects. */
extern struct trace_ring *trace_ring __attribute__((visibility("hidden")));

/* Thread-local data of the recording path is initial-exec: a SIGBUS
 * handler cannot go through __tls_get_addr, whose slow path reads and
 * may allocate a thread's TLS vector in the emulated heap. */
#define TRACE_TLS __thread __attribute__((tls_model("initial-exec")))

/* The thread whose fault a handler thread serves now (thread mode: from
 * the userfaultfd message; 0 otherwise: the current thread faulted). */
extern TRACE_TLS pid_t trace_fault_tid;

static inline int trace_on(void)
{
	return __builtin_expect(trace_ring != NULL, 0);
}

/* Maps the ring named by DIME_TRACE_FD, if set (the preload, once per
 * process image). A bad one is reported and tracing stays off. */
void trace_attach_env(void);

struct region;
/* A fault on page pg of r that began at tick t_begin and ended (the
 * program runs again) at t_end. link_ns: the transfer time it reserved on
 * the link (0: not a fetch). Any thread, signal handlers included. */
void trace_fault(const struct region *r, enum trace_kind kind, size_t pg, uint64_t t_begin,
		 uint64_t t_end, uint64_t delay_ns, uint64_t handling_ns, uint64_t link_ns);
/* Page pg of r became remote between ticks t_begin and t_end, moved by the
 * current thread. */
void trace_evict(const struct region *r, size_t pg, uint64_t t_begin, uint64_t t_end);

#endif
