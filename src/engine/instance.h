/* A region that belongs to an instance of the control plane (src/control):
 * its parameters, its link and its local budget are the instance's, shared
 * with the instance's other processes through the table in shared memory.
 * A region without one (r->inst NULL: the C API, a plain LD_PRELOAD user)
 * keeps its own. */
#ifndef DIME_INSTANCE_H
#define DIME_INSTANCE_H

#include "internal.h"

struct ctl_table;
struct ctl_member;

/* Makes r count in member m's instance (the preload, once the process has
 * its slot; again in a fork child with the child's slot). Any thread not
 * holding r->lock. */
void instance_join(struct region *r, struct ctl_table *t, struct ctl_member *m);

/* The same for a region served by a process that is not its own (the
 * agent of `dime insert`, src/attach/): no evictor thread; the server
 * calls instance_serve() when m's wake word changes. 0 or -ENOMEM. */
int instance_join_served(struct region *r, struct ctl_table *t, struct ctl_member *m);

/* Serves the evictions other processes asked of r (its evictor's work):
 * whether it evicted any. Any thread not holding r->lock. */
bool instance_serve(struct region *r);

/* r->lock held: page pg, just made local other than by a fault (pages
 * resident when `dime insert` attached), takes its place in the
 * instance's order, after every page already there. */
void instance_ticket(struct region *r, size_t pg);

/* r->lock held: the pages r counts local beyond the instance's budget are
 * due to leave (marked in evict_due, published); how many. The caller
 * counts them as evictions and drains them (fault_drain()). */
uint64_t instance_admit(struct region *r);

/* The control plane's sweep of dead members (ctl_reap of src/control/),
 * which evictor threads run every 250 ms: the engine does not link the
 * control plane, its joiner does. */
void instance_set_reaper(int (*reap)(struct ctl_table *t));

/* Stops counting r's pages in its instance (the process leaves the table
 * at exit): r keeps its last parameters, the instance's link, and adds
 * faults still in flight to the instance's counters. */
void instance_leave(struct region *r);

/* At each fault, r->lock held: takes parameters changed by `dime config`
 * and follows a move to another instance. One shared load each when
 * nothing changed. */
void instance_refresh(struct region *r);

/* r->lock held: publishes how many pages r counts local now into its
 * process's and its instance's counts. */
void instance_sync(struct region *r);

/* The policy was told that page pg is local (it arrived, was referenced or
 * came back; r->lock held): its age in the instance's order starts now. */
void instance_page_local(struct region *r, size_t pg);

/* A page just became local (r->lock held, counted in local_count): how
 * many of r's own pages must leave for the instance's budget (and its
 * watermarks). Asks other processes of the instance to evict their pages
 * when theirs are older. */
uint64_t instance_evictions(struct region *r);

/* The fault took the remote page pg local: DiME's page_fault_count. */
void instance_count_fault(struct region *r);

/* The instance r counts in now, or the one it left at exit, or -1 (for
 * traces: src/engine/trace.c). */
int instance_id(const struct region *r);

#endif
