/* When each fault began and ended: the kernel's page-fault events, sampled.
 *
 * Thread mode only: in signal mode the faulting thread sees its own fault
 * after a trap and a signal delivery, which vary far less than a wake-up,
 * and its fault has ended (with the SIGBUS) before dime handles it.
 *
 * PERF_COUNT_SW_PAGE_FAULTS fires at the top of the architecture's fault
 * handler (x86 do_user_addr_fault, arm64 do_page_fault), before the fault
 * reaches userfaultfd, also for the kernel's own accesses in system calls.
 * With a sample period of 1 every page fault of the process writes
 * {pid, tid, time, address} to a ring buffer; the time is
 * CLOCK_MONOTONIC_RAW, the clock the tick counter is calibrated against
 * (clock.c). A handler that reads a fault of thread T at page P drains the
 * rings and takes T's latest sample if it is at P (T sleeps in that fault,
 * so its latest sample is that fault's).
 *
 * The end of a fault is timed too: PERF_COUNT_SW_PAGE_FAULTS_MIN and _MAJ
 * fire when a fault completes (for a userfaultfd fault, when the retry after
 * the handler's wake-up has found the page), into the same ring. A handler
 * leaves what it expects of a fault's end before it wakes the thread
 * (faultclock_expect_end()); the drain that finds the end sample hands the
 * difference to the region's delay debt (fault_end_measured()), so the
 * faulting thread's own wake-up, the one part of a fault no handler can
 * time, is made up by later faults like any other lateness.
 *
 * Events per CPU, each for this process's threads on that CPU: a
 * per-task event that follows new threads (inherit) cannot be mmap'd, a
 * per-CPU one can. The events follow the thread that opened them and every
 * thread it creates afterwards (inherit_thread: not fork()ed children, which
 * open their own); the preload opens them in the main thread before the
 * program runs, the library when its first thread-mode region is created.
 *
 * Off, and every fault estimated from the calibrated `pre` as before, when
 * perf_event_open() is not allowed (perf_event_paranoid > 2 without
 * CAP_PERFMON, a seccomp filter); with paranoid 2 only user-mode faults
 * are sampled (faults of system calls are estimated). A sample lost to a
 * full ring leaves its fault estimated too.
 *
 * Cost, measured on the 2-vCPU VM: about 1.7 us per page fault of the
 * process (two samples), in the faulting thread. For a remote fault it is
 * part of dime's handling inside the emulated time (calibration runs with
 * the events on), so it raises the floor, not the configured fetch times.
 * The events run only once a region has a fetch time to emulate
 * (faultclock_need()), and during a calibration: a process emulating no
 * delay does not pay.
 *
 * Locking: `lock` serialises draining the rings and the table of latest
 * samples; handler threads take it, never while holding a region lock.
 * Opened and re-opened (fork child) under engine.lock, before any handler
 * of the process runs. */
#define _GNU_SOURCE
#include "faultclock.h"
#include "clock.h"
#include "internal.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum {
	MAX_CPUS = 256,
	RING_PAGES = 8,     /* data pages per CPU (a power of two): 1024 samples */
	SLOTS = 1024,       /* latest sample per thread, by tid % SLOTS */
};
/* A sample older than this does not belong to the fault asked about (its
 * own was lost): no fault waits that long for its handler. */
#define AGE_MAX_NS 1000000000ull

/* PERF_RECORD_SAMPLE with PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_TID |
 * PERF_SAMPLE_TIME | PERF_SAMPLE_ADDR, after its header. */
struct sample {
	uint64_t id;
	uint32_t pid, tid;
	uint64_t time, addr;
};

/* What a thread's latest fault left: its start, and what its end is
 * expected to be. Slots are indexed by tid % SLOTS; a colliding thread
 * takes the slot over (its predecessor's faults are then estimated). */
struct slot {
	pid_t tid; /* 0: empty */
	uintptr_t page;
	uint64_t time; /* CLOCK_MONOTONIC_RAW ns; 0: consumed */
	int cpu;       /* where it faulted */
	/* Set by faultclock_expect_end(), cleared when the end arrives. */
	struct region *end_region;
	unsigned end_id;
	uintptr_t end_page;
	uint64_t end_t_done;
	int end_calib; /* index in the region's calibration log, or -1 */
};

enum { EV_BEGIN, EV_MIN, EV_MAJ, EV_N };

static struct {
	pthread_mutex_t lock;
	pid_t owner; /* the process that opened the events */
	int n;       /* CPUs with events open */
	_Atomic bool running; /* enabled; read by handlers without the lock */
	bool needed;    /* a region has a fetch time: faultclock_need() */
	int fd[MAX_CPUS][EV_N]; /* [EV_BEGIN] owns the ring */
	struct perf_event_mmap_page *ring[MAX_CPUS];
	size_t map_bytes;
	struct slot slot[SLOTS];
	uint64_t id[MAX_CPUS]; /* begin events' ids, one per CPU */
	int cpu[MAX_CPUS];     /* the CPU of each */
} fc = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint64_t raw_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int open_event(int cpu, int config, bool kernel, bool enabled)
{
	struct perf_event_attr a;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = PERF_TYPE_SOFTWARE;
	a.config = (uint64_t)config;
	a.disabled = !enabled;
	a.sample_period = 1;
	a.sample_type = PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_TID | PERF_SAMPLE_TIME |
			PERF_SAMPLE_ADDR;
	a.use_clockid = 1;
	a.clockid = CLOCK_MONOTONIC_RAW;
	a.inherit = 1;
	a.inherit_thread = 1;
	a.exclude_hv = 1;
	a.exclude_kernel = !kernel;
	/* Nobody polls the rings: no wake-up before one is full. */
	a.watermark = 1;
	a.wakeup_watermark = (uint32_t)(RING_PAGES * engine.page_size);
	return (int)syscall(SYS_perf_event_open, &a, 0, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

/* Closes what is open. A fork()ed child closes its parent's descriptors
 * but has no rings to unmap: the kernel maps them VM_DONTCOPY, and their
 * addresses may hold the child's own mappings by now. */
static void close_all(void)
{
	bool mapped = fc.owner == getpid();
	for (int i = 0; i < fc.n; i++) {
		if (mapped)
			munmap(fc.ring[i], fc.map_bytes);
		for (int e = 0; e < EV_N; e++)
			close(fc.fd[i][e]);
	}
	fc.n = 0;
	memset(fc.slot, 0, sizeof(fc.slot));
}

/* Opens the events of one CPU into slot fc.n, the end events writing
 * into the begin event's ring. 0 (or 1: CPU offline, nothing opened), or
 * -errno with nothing of this CPU left open. */
static int open_cpu(int cpu, bool kernel, bool enabled)
{
	static const int config[EV_N] = { PERF_COUNT_SW_PAGE_FAULTS, PERF_COUNT_SW_PAGE_FAULTS_MIN,
					   PERF_COUNT_SW_PAGE_FAULTS_MAJ };
	int *fd = fc.fd[fc.n], err = 0;
	void *ring = MAP_FAILED;
	for (int e = 0; e < EV_N; e++)
		fd[e] = -1;
	/* The ring first: only a mapped event takes others' output. */
	fd[0] = open_event(cpu, config[0], kernel, enabled);
	if (fd[0] < 0)
		return errno == ENODEV || errno == ENXIO ? 1 : -errno;
	ring = mmap(NULL, fc.map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd[0], 0);
	if (ring == MAP_FAILED || ioctl(fd[0], PERF_EVENT_IOC_ID, &fc.id[fc.n]) < 0)
		err = -errno;
	for (int e = 1; e < EV_N && !err; e++) {
		fd[e] = open_event(cpu, config[e], kernel, enabled);
		if (fd[e] < 0 || ioctl(fd[e], PERF_EVENT_IOC_SET_OUTPUT, fd[0]) < 0)
			err = -errno;
	}
	if (err) {
		if (ring != MAP_FAILED)
			munmap(ring, fc.map_bytes);
		for (int e = 0; e < EV_N; e++)
			if (fd[e] >= 0)
				close(fd[e]);
		return err;
	}
	fc.cpu[fc.n] = cpu;
	fc.ring[fc.n++] = ring;
	return 0;
}

/* Opens the events of every CPU, kernel-mode faults included if
 * `kernel`. 0, or -errno with nothing left open. */
static int open_all(bool kernel, bool enabled)
{
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	if (ncpu < 1 || ncpu > MAX_CPUS)
		return -ERANGE;
	fc.map_bytes = (1 + RING_PAGES) * engine.page_size;
	fc.owner = getpid();
	for (int cpu = 0; cpu < ncpu; cpu++) {
		int err = open_cpu(cpu, kernel, enabled);
		if (err < 0) {
			close_all();
			return err;
		}
	}
	return fc.n ? 0 : -ENODEV;
}

void faultclock_open(void)
{
	if (fc.n && fc.owner == getpid())
		return;
	/* A fork()ed child's copy may be held by a thread that is gone. */
	pthread_mutex_init(&fc.lock, NULL);
	close_all();
	atomic_store(&fc.running, false);
	/* Read once, at the first open (start-up): a fork()ed child comes
	 * here before its handlers serve faults, and a program that called
	 * setenv() keeps environ in its emulated heap, maybe remote: reading
	 * it then would wait forever for a fault nobody serves. */
	static int disabled = -1;
	if (disabled < 0)
		disabled = getenv("DIME_NO_FAULTCLOCK") != NULL;
	if (disabled)
		return;
	/* Running if needed already (a fork()ed child of a process that
	 * emulates a delay); a calibration turns them on for itself. */
	if (open_all(true, fc.needed) != 0)
		open_all(false, fc.needed);
	atomic_store(&fc.running, fc.n && fc.needed);
}

static void set_running(bool on)
{
	if (!fc.n || atomic_load(&fc.running) == on)
		return;
	for (int i = 0; i < fc.n; i++)
		for (int e = 0; e < EV_N; e++)
			ioctl(fc.fd[i][e], on ? PERF_EVENT_IOC_ENABLE : PERF_EVENT_IOC_DISABLE, 0);
	atomic_store(&fc.running, on);
}

void faultclock_calibrating(bool on)
{
	set_running(on || fc.needed);
}

void faultclock_need(void)
{
	fc.needed = true;
	set_running(true);
}

/* Copies len bytes at ring offset `off` (wrapping) into dst. */
static void ring_read(const struct perf_event_mmap_page *pg, uint64_t off, void *dst, size_t len)
{
	const unsigned char *data = (const unsigned char *)pg + pg->data_offset;
	uint64_t size = pg->data_size, at = off & (size - 1);
	size_t first = len < size - at ? len : (size_t)(size - at);
	memcpy(dst, data + at, first);
	memcpy((unsigned char *)dst + first, data, len - first);
}

/* The tick of sample time t, taken at now_raw (CLOCK_MONOTONIC_RAW) =
 * now (ticks). Only the sample's age goes through the tick rate: the two
 * clocks drift apart over seconds, not over a fault. */
static uint64_t sample_ticks(uint64_t t, uint64_t now_raw, uint64_t now)
{
	int64_t age = (int64_t)(now_raw - t);
	return now - clock_ns_to_ticks(age > 0 ? (uint64_t)age : 0);
}

/* A thread's fault ended at `t` (CLOCK_MONOTONIC_RAW): what its handler
 * expected of that goes to the region's debt. fc.lock held. */
static void ended(struct slot *sl, uint64_t t, uint64_t now_raw, uint64_t now)
{
	struct region *want = sl->end_region;
	sl->end_region = NULL;
	struct region *r = slot_get(sl->end_id);
	if (!r)
		return; /* gone meanwhile */
	if (r == want) { /* (or a new region at the same address: harmless) */
		uint64_t t_end = sample_ticks(t, now_raw, now);
		struct calib_log *log = r->calib;
		if (log && log->ended && sl->end_calib >= 0 && sl->end_calib < log->cap)
			log->ended[sl->end_calib] = t_end;
		fault_end_measured(r, sl->end_t_done, t_end);
	}
	region_put(r);
}

/* Takes every new record of one ring into the table. fc.lock held. */
static void drain(int cpu, uint64_t now_raw, uint64_t now)
{
	struct perf_event_mmap_page *pg = fc.ring[cpu];
	uint64_t head = __atomic_load_n(&pg->data_head, __ATOMIC_ACQUIRE);
	uint64_t tail = pg->data_tail;
	while (tail < head) {
		struct perf_event_header h;
		ring_read(pg, tail, &h, sizeof(h));
		if (h.size < sizeof(h))
			break; /* cannot happen; do not loop on it */
		if (h.type == PERF_RECORD_SAMPLE && h.size >= sizeof(h) + sizeof(struct sample)) {
			struct sample s;
			ring_read(pg, tail + sizeof(h), &s, sizeof(s));
			struct slot *sl = &fc.slot[s.tid % SLOTS];
			uintptr_t page = (uintptr_t)s.addr & ~(uintptr_t)(engine.page_size - 1);
			if (sl->tid != (pid_t)s.tid)
				*sl = (struct slot){ .tid = (pid_t)s.tid };
			if (s.id == fc.id[cpu]) {
				sl->page = page;
				sl->time = s.time;
				sl->cpu = fc.cpu[cpu];
			} else if (sl->end_region && sl->end_page == page) {
				ended(sl, s.time, now_raw, now);
			}
		} else if (h.type == PERF_RECORD_LOST) {
			/* Samples were dropped here: a thread's latest in the
			 * table may be older than its latest fault, and an
			 * expected end may never come. */
			memset(fc.slot, 0, sizeof(fc.slot));
		}
		tail += h.size;
	}
	__atomic_store_n(&pg->data_tail, head, __ATOMIC_RELEASE);
}

bool faultclock_began(pid_t tid, uintptr_t page, uint64_t *t_began, int *cpu)
{
	if (!atomic_load_explicit(&fc.running, memory_order_relaxed))
		return false;
	pthread_mutex_lock(&fc.lock);
	uint64_t now_raw = raw_ns(), now = clock_ticks();
	for (int i = 0; i < fc.n; i++)
		drain(i, now_raw, now);
	struct slot *sl = &fc.slot[(uint32_t)tid % SLOTS];
	uint64_t t = sl->time;
	*cpu = sl->cpu;
	bool hit = tid && sl->tid == tid && sl->page == page && t &&
		   !((int64_t)(now_raw - t) > 0 && now_raw - t > AGE_MAX_NS);
	if (hit)
		sl->time = 0;
	pthread_mutex_unlock(&fc.lock);
	if (!hit)
		return false;
	*t_began = sample_ticks(t, now_raw, now);
	return true;
}

void faultclock_expect_end(pid_t tid, uintptr_t page, struct region *r, uint64_t t_done,
			   int calib)
{
	if (!atomic_load_explicit(&fc.running, memory_order_relaxed))
		return;
	pthread_mutex_lock(&fc.lock);
	struct slot *sl = &fc.slot[(uint32_t)tid % SLOTS];
	if (sl->tid == tid) {
		sl->end_region = r;
		sl->end_id = r->id;
		sl->end_page = page;
		sl->end_t_done = t_done;
		sl->end_calib = calib;
	}
	pthread_mutex_unlock(&fc.lock);
}
