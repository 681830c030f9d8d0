/* Engine internals shared between the engine's files. Not installed.
 *
 * Objects:
 *   struct server  one per fault-resolution mode in a process: the
 *                  userfaultfd every region of that mode is registered
 *                  with, its handler threads (thread mode) and the costs
 *                  measured at start-up.
 *   struct region  an emulated range: the program-visible pages at `base`,
 *                  a same-sized private "store" that holds the contents of
 *                  remote pages (dime injects the delay of the interconnect,
 *                  the data never leaves this machine), a state byte per
 *                  page, the replacement policy's order and the counters.
 *
 * Where a page's bytes are, by state (the invariant every path keeps):
 *   UNTOUCHED  nowhere: it reads as zeroes.
 *   LOCAL      mapped at base + off (the store slot may hold a stale
 *              copy, left by a page-in that copied: never read, dropped
 *              before the slot is used again).
 *   REMOTE     in the store at store + off (or nowhere, if the program
 *              zapped it behind dime's back: it then reads as zeroes).
 *   FETCHING   moving store -> base by the thread that set the state.
 *   EVICTING   moving base -> store by the thread that set the state.
 *   INACTIVE   in the store, yet local: the policy asked to observe it
 *              (include/dime/policy.h); the next access is a soft fault.
 * Page-out moves with UFFDIO_MOVE, which is atomic: the current bytes are
 * always in exactly one place, also as seen by a concurrent fork() (whose
 * child takes a page mapped at base as LOCAL, region.c).
 *
 * Locking: region->lock protects state[], local_count and the policy (every
 * callback runs under it: policy-call.h). It is
 * never held across a busy-wait or a page move, and never by a thread that
 * touches emulated memory. engine.lock protects the region table and server
 * start-up; handler threads never take it.
 */
#ifndef DIME_INTERNAL_H
#define DIME_INTERNAL_H

#include "../../include/dime.h"
#include "../policy/policy.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum page_state {
	PAGE_UNTOUCHED = 0,
	PAGE_LOCAL = 1,
	PAGE_REMOTE = 2,
	PAGE_FETCHING = 3,
	PAGE_EVICTING = 4,
	PAGE_INACTIVE = 5,
};

#include "counters.h"
#include "trace.h"

/* Start-up measurement of dime's own costs in one mode, in ticks:
 *   pre     from the faulting access to the handler seeing the fault,
 *   post    from starting the page-in to the program running again,
 *   handoff the part of post the handler can time: the page-in itself,
 *   floor   the whole remote fault at zero configured delay,
 *   entry   from the faulting access to the kernel's page-fault event,
 *   exit    from the kernel's fault-completed event to the program running
 *           (entry and exit: thread mode with the fault clock, faultclock.h;
 *           else 0).
 * pre, post and handoff grow with the time a fault waits (measured here:
 * 7.3 us at a 5 us fetch, 9.5 us at 80 us), so they are measured at zero
 * delay and at two fetch times, at[0] near the floor and at[1] four times
 * that; a region takes them interpolated for its own fetch time
 * (region.c). */
struct cost_point {
	uint64_t fetch, pre, post, handoff, exit;
};
struct server_costs {
	uint64_t pre, post, handoff, floor, entry, exit;
	struct cost_point at[2]; /* fetch 0: not measured */
};

struct server {
	enum dime_mode mode;
	int uffd;            /* -1 until started */
	int nthreads;
	pthread_t threads[64];
	struct server_costs costs;
	bool calibrated;
};

/* Timestamps a fault leaves behind while the engine calibrates itself
 * (and for the benchmark's breakdown of a fault). */
struct calib_log {
	int n, cap;
	uint64_t *seen, *pagein; /* ticks: handler saw the fault / started page-in */
	uint64_t *evict;         /* ticks the fault spent moving victims out, or NULL */
	uint64_t *pagein_end;    /* ticks: page-in done, or NULL */
	uint64_t *began;         /* ticks: the fault's page-fault event, 0 if none; or NULL */
	uint64_t *ended;         /* ticks: its fault-completed event, 0 if none; or NULL */
};

/* The address space of a region that is not this process's own: `dime
 * insert` serves another process's memory from an agent holding that
 * process's userfaultfd (src/attach/). UFFDIO_* calls act on the uffd's mm
 * either way; these stand in for what the engine otherwise does with plain
 * loads, stores and madvise() in its own memory. Called without locks. */
struct uffdio_move;
struct region_mm {
	/* The len bytes at addr of that process (all present), in a buffer
	 * of the mm's that stays valid until the calling thread's next call;
	 * NULL if they cannot be read. */
	const void *(*read)(const struct region_mm *mm, uintptr_t addr, size_t len);
	/* MADV_DONTNEED of [addr, addr+len) in that process. */
	void (*discard)(const struct region_mm *mm, uintptr_t addr, size_t len);
	/* UFFDIO_MOVE in that process (the kernel refuses it from another
	 * mm): 0 or -errno, m->move set as the ioctl sets it. */
	int (*move)(const struct region_mm *mm, struct uffdio_move *m);
};

struct region {
	uintptr_t base, store;
	const struct region_mm *mm;      /* NULL: this process's memory */
	size_t size, npages;
	struct dime_params params;
	struct server *server;
	/* Page-in may copy from the store (pageio.c): a stale copy may be
	 * left in the slot of a LOCAL page. Set at registration. */
	bool copy_in;
	/* With copy_in, a bit per page: its slot may hold a stale copy
	 * (pageio.c), set by the page-in that copies, taken by the page-out
	 * that drops it (atomic: neighbours of a word change under other
	 * threads). NULL (another process's region): every LOCAL page's
	 * slot may. */
	uint64_t *stale;
	/* Pages the program's own mapping changes hold local, or NULL: the
	 * preload's mprotect'd and signal-stack pages. UFFDIO_MOVE refuses a
	 * VMA that is not read-write (EINVAL), so such a page can never
	 * leave and must never be in the policy's order: a page that becomes
	 * local while held (first touch of a protected page, a fork() child
	 * rebuilding its states) stays out of it. Called under `lock`,
	 * maybe in a SIGBUS handler. */
	bool (*held_local)(size_t pg);

	uint8_t *state;                  /* enum page_state per page */
	/* 1 + highest page ever made local. Invariant: every page that is
	 * not UNTOUCHED lies below it, raised under `lock` in the same hold
	 * that takes the page out of UNTOUCHED. A fork() child rebuilds the
	 * states below it from its page tables (region_rebuild()) and
	 * trusts the rest to be UNTOUCHED: a page left FETCHING there by a
	 * thread that does not exist in the child would be waited on for
	 * ever (the preload's fork handler discards MADV_WIPEONFORK ranges,
	 * which waits out pages in flight). */
	_Atomic size_t touched_end;
	pthread_mutex_t lock;
	/* LOCAL + FETCHING + INACTIVE pages, and EVICTING ones on their way
	 * to INACTIVE (observed pages stay local). */
	uint64_t local_count;
	const struct dime_policy *policy;
	void *policy_state;
	uint64_t policy_next_tick;       /* ticks; when policy->tick is due */

	/* Delay model, in ticks. */
	uint64_t latency_ticks, transfer_ticks;
	struct cost_point costs;         /* the server's, for this fetch time */
	_Atomic uint64_t link_free_at;   /* shared link: when it is next idle */
	_Atomic uint64_t *link;          /* &link_free_at, or its instance's link */
	_Atomic int64_t delay_debt;      /* lateness still to take off (fault.c) */

	struct counters own_counters;
	struct counters *ctr;            /* own_counters or a shared slot */
	/* More counters it adds into: its instance's and its process's slot
	 * in the control plane's table (instance.c). */
	struct counters *ctr_more[2];
	_Atomic int nctr_more;
	struct instance_link *inst;      /* NULL: its own budget (instance.h) */
	/* The instance it left at exit (instance_leave()): what the exit
	 * path still does, e.g. deferred evictions, is traced as its. */
	struct instance_link *left;

	/* Evictions decided but not done yet (fault.c): that many of the
	 * oldest LOCAL pages in the policy's order count as remote. Under lock. */
	uint64_t evict_due;

	/* Pages that must stay local for a moment (fork.c: glibc touches
	 * them in a fork child before dime can serve faults there). */
	size_t pinned[32];
	int npinned;

	struct calib_log *calib;
	int heap_arena;                  /* mimalloc arena id, or -1 */
	unsigned heap_gen;               /* tells per-thread heaps apart */
	unsigned id;                     /* slot in the region table */
};

/* Adds a sample to a running average (weight 1/8; the first sample sets
 * it). Relaxed: the averages that choose between ways of moving pages are
 * process-wide, and a stale one only costs time. */
static inline void cost_avg_add(_Atomic uint64_t *avg, uint64_t sample)
{
	uint64_t a = atomic_load_explicit(avg, memory_order_relaxed);
	atomic_store_explicit(avg, a ? (7 * a + sample) / 8 : sample, memory_order_relaxed);
}

/* The size of r's stale-copy bitmap. */
static inline size_t stale_bytes(const struct region *r)
{
	return (r->npages + 63) / 64 * sizeof(uint64_t);
}

/* Whether this region's faults and evictions go to the trace: tracing on,
 * and not a start-up calibration region (its faults are dime's own). */
static inline bool region_traced(const struct region *r)
{
	return trace_on() && !r->calib;
}

/* Adding to every counter set of a region. */
#define RCTR_EACH(r, c_, stmt)                                                          \
	do {                                                                             \
		int n_ = atomic_load_explicit(&(r)->nctr_more, memory_order_acquire);    \
		for (int i_ = -1; i_ < n_; i_++) {                                       \
			struct counters *c_ = i_ < 0 ? (r)->ctr : (r)->ctr_more[i_];      \
			stmt;                                                            \
		}                                                                        \
	} while (0)
#define RCTR_ADD(r, field, v) RCTR_EACH(r, c_, ctr_add(&c_->field, (v)))
#define RCTR_SUB(r, field, v) \
	RCTR_EACH(r, c_, atomic_fetch_sub_explicit(&c_->field, (v), memory_order_relaxed))
#define RCTR_LOCAL_ADD(r, n, local) RCTR_EACH(r, c_, ctr_local_add(c_, (n), (local)))
#define RCTR_LOCAL_SUB(r, n) RCTR_EACH(r, c_, ctr_local_sub(c_, (n)))

/* --- engine.c: process-wide state --------------------------------------- */
struct engine {
	pthread_mutex_t lock;
	struct server servers[2];
	_Atomic(struct region *) regions[64];
	/* Threads using the region in each slot (slot_get(), region_put()). */
	_Atomic int slot_users[64];
	size_t page_size;
	unsigned page_shift;
	uint8_t *zero_page;
	/* Page moves use UFFDIO_MOVE; false on kernels without it (or with
	 * DIME_NO_MOVE=1): copy plus write-protect instead (pageio.c). */
	bool use_move;
	/* Page-in always copies where it can (DIME_COPY_IN=1, for tests):
	 * normally pageio.c chooses by measurement. */
	bool copy_in_always;
	int pagemap_fd; /* /proc/self/pagemap, for the copy fallback */
};
extern struct engine engine;

void engine_init(void);
/* First thing in every thread dime starts: blocks all signals (they
 * belong to the program's threads) and names it (ps, top, traces). */
void engine_thread_begin(const char *name);
/* Starts the server for `mode` if needed (engine.lock held). 0 or -errno. */
int server_start(struct server *s);
/* server_start in two steps, for a fork()ed child that must register its
 * regions before any of its dime threads runs (fork.c): open the
 * userfaultfd, then start serving it. */
int server_open(struct server *s);
int server_run(struct server *s);
/* The region table. A region's memory is freed only after it has left its
 * slot (NULL) and no thread uses the slot any more: a reader raises the
 * slot's count before it loads the pointer and drops it with
 * region_put(), and a region that leaves waits for the count to reach
 * zero (slot_empty(), slot_wait_unused()). The counts live in the engine, not in the
 * region, so a reader racing a removal touches no freed memory. Both
 * sides use sequentially consistent order: either the reader sees the
 * slot empty, or the remover sees the reader. */
static inline struct region *slot_get(size_t i)
{
	if (!atomic_load_explicit(&engine.regions[i], memory_order_relaxed))
		return NULL;
	atomic_fetch_add_explicit(&engine.slot_users[i], 1, memory_order_seq_cst);
	struct region *r = atomic_load_explicit(&engine.regions[i], memory_order_seq_cst);
	if (!r)
		atomic_fetch_sub_explicit(&engine.slot_users[i], 1, memory_order_release);
	return r;
}
static inline void region_put(struct region *r)
{
	atomic_fetch_sub_explicit(&engine.slot_users[r->id], 1, memory_order_release);
}
/* Takes a region out of its slot, then (before freeing it) waits until
 * no thread uses the slot. */
void slot_empty(struct region *r);
void slot_wait_unused(const struct region *r);
/* The region containing addr, from slot_get(); or NULL. */
struct region *region_lookup_get(uintptr_t addr);

/* Whether page pg is pinned local. Region lock held. */
static inline bool region_held(const struct region *r, size_t pg)
{
	return r->held_local && r->held_local(pg);
}

static inline bool region_pinned(const struct region *r, size_t pg)
{
	for (int i = 0; i < r->npinned; i++)
		if (r->pinned[i] == pg)
			return true;
	return false;
}

/* --- fault.c ------------------------------------------------------------- */
/* Resolves a missing-page fault at page `pg` of r, which its handler saw
 * at tick `t_seen`. `write` says whether it was a write fault. `t_began`:
 * the tick of the kernel's page-fault event for it (faultclock.h), or 0
 * when unknown (the calibrated `pre` then says when it began). `tid`: the
 * faulting thread when the fault clock may time its end, or 0. */
void fault_resolve(struct region *r, size_t pg, bool write, uint64_t t_seen, uint64_t t_began,
		   pid_t tid);
/* When set (a handler thread, server.c), a fault's wait for its deadline
 * goes through this instead of a plain spin: the handler serves, meanwhile,
 * the faults that are due before it, and returns at the deadline. */
extern __thread __attribute__((tls_model("initial-exec"))) void (*fault_wait_hook)(uint64_t deadline);
/* The fault-completed event of a fault whose page-in ended at t_done came
 * at t_end (faultclock.c): its thread's wake-up and return took that much
 * more or less than calibrated, which later faults make up. Any thread. */
void fault_end_measured(struct region *r, uint64_t t_done, uint64_t t_end);
/* Does the evictions r has deferred. Any thread not holding r->lock. */
void fault_drain(struct region *r);
/* Records a fault about to be paged in (trace.h), when tracing is on:
 * it began at t_begin, its handler saw it at t_seen and waited `spun`
 * ticks; the recording's own time becomes delay debt. */
void fault_trace(struct region *r, enum trace_kind kind, size_t pg, uint64_t t_begin,
		 uint64_t t_seen, uint64_t spun, uint64_t link_ns);

/* --- inactive.c: pages the policy observes -------------------------------- */
/* A fault on an INACTIVE page (lock held; returns with it dropped): maps
 * it back with no emulated delay and tells the policy it was referenced. */
void soft_fault(struct region *r, size_t pg, bool write, uint64_t t_seen);
/* Creates (0 or -errno) and destroys the region's policy state. */
int policy_start(struct region *r);
void policy_stop(struct region *r);

/* --- pageio.c ------------------------------------------------------------ */
/* Moves page pg into the store. Returns true if the page's bytes are now
 * safe in the store (or there were none). */
bool page_out(struct region *r, size_t pg);
/* Drops the stale copies in the store slots of the sorted pages pg[0..n),
 * all EVICTING: only the slots that hold one (r->stale), every run of them
 * in one call: the kernel then flushes the TLB once, not once per run
 * (with another thread running on another CPU, each flush is a
 * shootdown). Whether it did (else each run's page-out drops its own
 * run's slots: another process's region). */
bool page_out_clear(struct region *r, const size_t *pg, unsigned n);
/* Moves pages [pg, pg+n) into the store in as few calls as it can, their
 * slots already emptied if `cleared` (page_out_clear()). Returns how many
 * from pg on are done; page_out() takes over at the first it could not
 * move. */
size_t page_out_run(struct region *r, size_t pg, size_t n, bool cleared);
/* Maps page pg from the store (remote) or zeroes (untouched), then wakes
 * the threads waiting for it if `wake` (else the caller must). */
void page_in(struct region *r, size_t pg, bool from_store, bool write, bool wake);
/* Whether the page at addr has bytes (present or swapped), from the page
 * tables: touching a missing registered page from dime's side would fault. */
bool page_has_bytes(uintptr_t addr);
/* Copy fallback: lifts a write protection that no page-out holds. */
void page_unprotect(struct region *r, size_t pg);

/* --- region.c ------------------------------------------------------------- */
int region_register(struct region *r, int uffd);
/* Sets up and publishes a region over memory that exists already (another
 * process's, see struct region_mm): nothing is mapped or registered here,
 * every page starts UNTOUCHED. 0 or -errno. */
int region_adopt(const struct dime_params *p, struct server *s, uintptr_t base,
		 uintptr_t store, size_t size, const struct region_mm *mm, struct region **out);
/* Unpublishes a region from region_adopt() and frees its bookkeeping. */
void region_forget(struct region *r);
/* Rebuilds state[], the policy and local_count from the page tables (after
 * fork, whose snapshot may have caught a page in flight). */
int region_rebuild(struct region *r);
/* Recomputes the delay model's ticks from r->params. */
void region_set_delay(struct region *r);

/* --- server.c / sigbus.c / calibrate.c ------------------------------------ */
int thread_server_start(struct server *s);
int signal_server_start(struct server *s);
int server_calibrate(struct server *s);


#endif

/* engine.c */
int region_create_ex(const struct dime_params *p, bool exclusive_heap, struct region **out);
