/* dime insert: emulation of a process that is already running, served by
 * an agent process (dime-agent) that holds the target's userfaultfd.
 *
 * The target's own anonymous private memory (heap, anonymous mappings,
 * thread stacks) becomes one engine region spanning all of it: region
 * page i is the target's address base + i * page_size. Its store is not
 * one mapping but an image of each covered range at a fixed distance
 * `delta`, mapped in the target (UFFDIO_MOVE moves pages only inside the
 * uffd's mm). The engine's fault path (fault.c, pageio.c) then works
 * unchanged; struct region_mm gives it the few things it otherwise does in
 * its own memory.
 *
 * The agent is single-threaded: it reads the uffd and handles faults and
 * events strictly in order. That is what keeps events right: the kernel
 * lets the target go on once an event is *read*, so a REMAP or FORK must
 * be handled before any later fault is looked at.
 *
 * Files: inject.c (system calls run in the target, libcompel), vmas.c
 * (what is covered, where the store goes), target.c (attach, detach),
 * events.c (REMOVE, UNMAP, REMAP), child.c (FORK), member.c (the target
 * as a member of an instance: shared budget, live parameters), agent.c
 * (main loop, control socket).
 */
#ifndef DIME_ATTACH_H
#define DIME_ATTACH_H

#include "../engine/counters.h"
#include "../engine/internal.h"
#include "../engine/uffd.h"
#include "../engine/book.h"
#include "../engine/clock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* A covered range of the target: an anonymous private mapping whose pages
 * the region emulates, its store image at start + delta. */
struct attach_range {
	uintptr_t start, end;
	char name[32]; /* "[heap]", "anon", ... for the report */
};

/* A mapping left out, and why (for the report). */
struct attach_skip {
	uintptr_t start, end;
	const char *why;
};

/* The emulation's settings, counters and instance (member.c). The
 * latency, bandwidth and local budget are the instance's, taken at each
 * fault; policy, first touch, bandwidth model and watermarks are the
 * agent's own. The region counts into `own` (what detach reports) and into
 * the instance's and the member's counters of the table. */
struct ctl_table;
struct ctl_member;
struct attach_emul {
	struct dime_params params;
	struct counters own;
	struct ctl_table *table;
	struct ctl_member *self;  /* the target's slot, NULL when not a member */
	bool joined;              /* the region counts in the instance */
	int wake_fd;              /* eventfd: other processes asked for evictions */
	pthread_t relay;
	_Atomic bool relay_stop;
};

struct attach_target {
	pid_t pid;
	int pidfd;
	int uffd;         /* the agent's copy */
	int target_fd;    /* the same uffd's number in the target, or -1 */
	intptr_t delta;   /* store image of address a: a + delta */
	struct attach_range *ranges; /* covered, sorted, disjoint */
	size_t nranges, cap;
	struct attach_skip *skips;
	size_t nskips, skip_cap;
	/* Store images as mapped (merged covered ranges), for munmap. */
	struct attach_range *images;
	size_t nimages;
	struct attach_emul emul;
	struct region *region;
	struct server server;
	struct region_mm mm;
	uint8_t *buf;           /* one page, for mm.read */
	pid_t *known;           /* child processes seen (child.c) */
	size_t nknown, known_cap;
	FILE *log;              /* after start-up: the agent's log */
	struct attach_helper {
		int cmd, res;           /* the agent's pipe ends, or -1 */
		pid_t tid;              /* the helper thread in the target */
		uintptr_t code, stack;  /* its mappings in the target */
		int target_cmd, target_res; /* its pipe ends there */
	} helper;
	/* Messages read but not handled yet, in the kernel's order: a helper
	 * call that waits reads what comes meanwhile (helper.c) and leaves it
	 * here; only agent_serve() handles messages, never inside a helper
	 * call (answers on the helper's pipe would cross). */
	struct uffd_msg *pending;
	size_t pending_head, npending, pending_cap;
};

/* --- inject.c: system calls run by the target (libcompel) --------------- */
struct inject;
/* Stops the target's main thread and prepares it for system calls. 0 or
 * -errno; on failure says why on stderr. */
int inject_begin(pid_t pid, struct inject **out);
/* Runs system call nr with args in the target. Its return value (a
 * negative errno on failure) in *ret; 0, or -1 if it could not be run. */
int inject_syscall(struct inject *in, long nr, long *ret, unsigned long a1, unsigned long a2,
		   unsigned long a3, unsigned long a4, unsigned long a5, unsigned long a6);
/* Runs the target's main thread from ip until it traps (int3 / brk); the
 * return-value register then in *ret. 0, or -1 if it could not be run. */
int inject_run_at(struct inject *in, uintptr_t ip, long *ret);
/* Restores the target's registers and lets it go. */
int inject_end(struct inject *in);

/* --- helper.c: page moves inside the target --------------------------- */
/* Starts the helper thread in the target (stopped, in `in`), after the
 * uffd exists there (t->target_fd). 0 or -errno (reported). */
int helper_start(struct attach_target *t, struct inject *in);
/* UFFDIO_MOVE through the helper. On EAGAIN (an event of the target is
 * waiting to be read) reads and handles the waiting events first. */
int helper_move(struct attach_target *t, struct uffdio_move *m);
/* MADV_DONTNEED in the target, through the helper (a store slot whose
 * bytes nobody needs). The REMOVE event it raises on the store is read
 * meanwhile. */
void helper_discard(struct attach_target *t, uintptr_t addr, size_t len);
/* Ends the helper: closes the agent's ends, waits for the thread to exit.
 * Its mappings and pipe ends in the target go with inject (detach). */
void helper_stop(struct attach_target *t);
/* Unmaps the helper's code and stack and closes its pipe ends in the
 * target (stopped, in `in`). */
void helper_remove(struct attach_target *t, struct inject *in);

/* --- vmas.c ---------------------------------------------------------------- */
/* Reads /proc/PID/smaps: the ranges to cover and the ones left out. */
int vmas_scan(struct attach_target *t);
/* Chooses delta so that every store image falls on free addresses of the
 * target. 0 or -ENOSPC. */
int vmas_place_store(struct attach_target *t);
/* Drops [start, end) from the covered ranges (unmapped or moved away). */
void vmas_uncover(struct attach_target *t, uintptr_t start, uintptr_t end);
/* The covered range holding addr, or NULL. */
const struct attach_range *vmas_find(const struct attach_target *t, uintptr_t addr);
/* Whether addr is in a store image. */
bool vmas_in_store(const struct attach_target *t, uintptr_t addr);

/* --- target.c ---------------------------------------------------------- */
/* Brings t->pid under emulation with t->emul.params; prints what it
 * covered on `report`. 0 or -errno (already reported on stderr). */
int target_attach(struct attach_target *t, FILE *report);
/* Moves every remote page back, unregisters everything, unmaps the store
 * and closes the target's uffd: the target runs as before. Prints what it
 * did on `report`. 0 or -errno. */
int target_detach(struct attach_target *t, FILE *report);
/* Serves a page fault at addr. */
void target_fault(struct attach_target *t, const struct uffd_msg *m, uint64_t t_seen);
/* The counters and state, one `key value` line each. */
void target_report_stats(const struct attach_target *t, FILE *f);
/* Maps zeroes at a missing page of the target (a fault dime does not
 * emulate). */
void target_zero_fill(struct attach_target *t, int uffd, uintptr_t page, bool write);
/* Moves the page whose bytes are at store slot `slot` back to `page`
 * (through the helper, else by copying). 0 or -errno. */
int target_move_back(struct attach_target *t, uintptr_t page, uintptr_t slot);
/* Copies `len` bytes at `addr` of process pid into buf. 0 or -errno. */
int target_read(pid_t pid, uintptr_t addr, void *buf, size_t len);

/* --- events.c ------------------------------------------------------------ */
/* Handles a non-fault message of the target's uffd. */
void events_handle(struct attach_target *t, const struct uffd_msg *m);

/* --- child.c ---------------------------------------------------------- */
/* Records the target's current children (before the first fork event). */
void child_known_init(struct attach_target *t);
/* A fork of process `parent` gave `child_uffd`: makes the child's memory
 * whole (every page its own, as after a plain fork) and releases it from
 * userfaultfd. Closes child_uffd. */
void child_settle(struct attach_target *t, pid_t parent, int child_uffd);

/* --- member.c: the target in its instance ---------------------------- */
/* Makes t->pid a member of `instance` of the table in dir, served by this
 * agent, and takes the instance's parameters into t->emul.params. 0 or
 * -errno (reported on stderr). */
int member_open(struct attach_target *t, const char *dir, int instance);
/* Counts t->region in the instance (before its pages are adopted) and
 * starts relaying other processes' requests to t->emul.wake_fd. 0 or
 * -errno. */
int member_join(struct attach_target *t);
/* wake_fd is readable: serves the evictions asked of the target. */
void member_serve(struct attach_target *t);
/* The same without the eventfd: between two messages of the target, so
 * that a target that faults without pause does not starve the requests. */
void member_serve_due(struct attach_target *t);
/* Leaves the instance and the table (detach, the target's exit, a failed
 * attach). */
void member_leave(struct attach_target *t);

/* --- agent.c ------------------------------------------------------------- */
/* Reads what the uffd holds now into t->pending, handling nothing. */
void agent_pump(struct attach_target *t);
/* Handles t->pending and whatever the uffd holds, in order, until both are
 * empty; then does the evictions left due. */
void agent_serve(struct attach_target *t);
/* The agent's log (stderr before it is a daemon). */
void agent_log(struct attach_target *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
