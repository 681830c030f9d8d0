/* Recording trace events into the run's shared ring (layout and rules in
 * trace.h). Everything here may run in a SIGBUS handler: no malloc, no
 * lock, no stdio on the recording path; the ids it needs are cached. */
#define _GNU_SOURCE
#include "trace.h"
#include "clock.h"
#include "instance.h"
#include "internal.h"
#include "sys.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct trace_ring *trace_ring;
TRACE_TLS pid_t trace_fault_tid;

/* This process's pid, in a page the kernel wipes in a fork child
 * (MADV_WIPEONFORK): a child finds 0 and takes its own, from its very
 * first event, whatever order the fork handlers run in. */
struct trace_proc {
	_Atomic pid_t pid;
};
static struct trace_proc *proc;

/* The current thread's id, valid while `pid` is the process's (a fork
 * child's thread has a new id). */
static TRACE_TLS struct {
	pid_t pid, tid;
} self;

static pid_t proc_pid(void)
{
	pid_t pid = atomic_load_explicit(&proc->pid, memory_order_relaxed);
	if (!pid) {
		pid = getpid();
		atomic_store_explicit(&proc->pid, pid, memory_order_relaxed);
	}
	return pid;
}

static pid_t self_tid(pid_t pid)
{
	if (self.pid != pid) {
		self.tid = (pid_t)syscall(SYS_gettid);
		self.pid = pid;
	}
	return self.tid;
}

/* Events being written into the ring by this process now. */
static _Atomic unsigned writers;

/* At exit(): dime's handler threads run on until the process ends, and one
 * cut off inside record() would leave its slot empty. Waits for the
 * events being written now (a writer needs a few stores; the wait gives
 * up after 1000 short sleeps, a stalled writer must not hang the exit);
 * the exit then cuts only a writer that starts later. */
static void wait_for_writers(void)
{
	for (int i = 0; i < 1000 && atomic_load_explicit(&writers, memory_order_acquire); i++)
		usleep(1);
}

void trace_attach_env(void)
{
	const char *s = getenv("DIME_TRACE_FD");
	if (!s || trace_ring)
		return;
	char *end;
	long fd = strtol(s, &end, 10);
	struct stat st;
	struct trace_ring *ring = MAP_FAILED;
	if (*s && !*end && fd >= 0 && fd <= 1 << 30 && !fstat((int)fd, &st) &&
	    (size_t)st.st_size >= sizeof(struct trace_ring))
		ring = sys_mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
				(int)fd, 0);
	void *page = sys_mmap(NULL, sizeof(struct trace_proc), PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ring == MAP_FAILED || page == MAP_FAILED || ring->magic != DIME_TRACE_MAGIC ||
	    ring->version != DIME_TRACE_VERSION ||
	    ring->event_size != sizeof(struct trace_event) || !ring->capacity ||
	    trace_ring_bytes(ring->capacity) > (size_t)st.st_size ||
	    sys_madvise(page, sizeof(struct trace_proc), MADV_WIPEONFORK)) {
		fprintf(stderr, "dime: DIME_TRACE_FD=%s is not a dime trace ring; "
				"this process is not traced\n", s);
		if (ring != MAP_FAILED)
			sys_munmap(ring, (size_t)st.st_size);
		if (page != MAP_FAILED)
			sys_munmap(page, sizeof(struct trace_proc));
		return;
	}
	proc = page;
	trace_ring = ring;
	atexit(wait_for_writers);
}

/* CLOCK_MONOTONIC in ns at tick t: the clock is read now and the
 * distance in ticks converted, so calibration errors stay within one
 * event's span and processes agree on the time. */
static uint64_t mono_at(uint64_t t)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = clock_ticks();
	uint64_t mono = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	return (int64_t)(now - t) >= 0 ? mono - clock_ticks_to_ns(now - t)
				       : mono + clock_ticks_to_ns(t - now);
}

static void record(const struct region *r, enum trace_kind kind, size_t pg, pid_t tid,
		   uint64_t t_begin, uint64_t t_end, uint64_t delay_ns, uint64_t handling_ns)
{
	struct trace_ring *ring = trace_ring;
	pid_t pid = proc_pid();
	/* Everything slow (the clock read) before the slot is claimed: a
	 * slot claimed and never completed (the process exited in between)
	 * is counted as dropped, so the claim comes last and the window is
	 * a few stores. */
	struct trace_event ev = {
		.begin_ns = mono_at(t_begin),
		.dur_ns = clock_ticks_to_ns(t_end - t_begin),
		.addr = r->base + ((uint64_t)pg << engine.page_shift),
		.delay_ns = delay_ns,
		.handling_ns = handling_ns,
		.pid = pid,
		.tid = tid ? tid : self_tid(pid),
		.instance = (int16_t)instance_id(r),
		.region = (uint8_t)r->id,
		.kind = (uint8_t)kind,
	};
	atomic_fetch_add_explicit(&writers, 1, memory_order_acquire);
	uint64_t n = atomic_fetch_add_explicit(&ring->head, 1, memory_order_relaxed);
	struct trace_event *e = &ring->ev[n % ring->capacity];
	atomic_store_explicit(&e->seq, 0, memory_order_relaxed);
	/* The fields may not be seen before seq reads 0. */
	atomic_thread_fence(memory_order_release);
	/* Everything after seq, which is written apart. */
	size_t at = offsetof(struct trace_event, begin_ns);
	memcpy((char *)e + at, (const char *)&ev + at, sizeof(ev) - at);
	atomic_store_explicit(&e->seq, n + 1, memory_order_release);
	atomic_fetch_sub_explicit(&writers, 1, memory_order_release);
}

void trace_fault(const struct region *r, enum trace_kind kind, size_t pg, uint64_t t_begin,
		 uint64_t t_end, uint64_t delay_ns, uint64_t handling_ns, uint64_t link_ns)
{
	if (link_ns)
		atomic_fetch_add_explicit(&trace_ring->link_busy_ns, link_ns,
					  memory_order_relaxed);
	record(r, kind, pg, trace_fault_tid, t_begin, t_end, delay_ns, handling_ns);
}

void trace_evict(const struct region *r, size_t pg, uint64_t t_begin, uint64_t t_end)
{
	record(r, TRACE_EVICT, pg, 0, t_begin, t_end, 0,
	       clock_ticks_to_ns(t_end - t_begin));
}
