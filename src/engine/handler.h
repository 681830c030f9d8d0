/* Thread mode's handler threads, as their three files share them:
 * server.c (the handlers' loop, standby, the watchdog, start-up),
 * owners.c (which handler serves which thread's faults) and nested.c
 * (serving faults within another fault's wait). */
#ifndef DIME_HANDLER_H
#define DIME_HANDLER_H

#include "internal.h"
#include "mailbox.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum { MAX_HANDLERS = 64 };

/* One handler thread, pinned to a CPU. Set up by thread_server_start()
 * before the thread runs; `tid` is 0 until it runs and again once it
 * stops. */
struct handler {
	struct server *s;
	int cpu;              /* pinned to, or -1 */
	_Atomic pid_t tid;
	_Atomic bool standby;
	uint64_t last_check;  /* ticks */
	uint64_t local_at;    /* ticks: served a thread of its own CPU */
	struct mailbox mail;  /* faults of its CPU's threads others read */
	_Atomic uint64_t nserved; /* faults it served, for the watchdog */
};

/* The handlers of this process's thread-mode server (server.c). */
extern struct handler handlers[MAX_HANDLERS];
extern int nhandlers;

/* --- server.c ------------------------------------------------------------ */
/* h serves a message read from the userfaultfd at t_seen, and learns
 * from it where the faulting thread runs. True if h should go to standby
 * (its CPU has no faulting thread of its own). */
bool serve_fault(struct handler *h, const struct uffd_msg *m, uint64_t t_seen);
/* Ends the standby of the handlers of cpu. */
void arm_cpu(int cpu);

/* --- owners.c ------------------------------------------------------------ */
/* The handler that serves thread tid's faults, or NULL if not known. */
struct handler *owner_of(pid_t tid);
/* Thread tid was seen faulting on cpu. */
void owner_set(pid_t tid, int cpu);
/* No thread has an owner (a fork()ed child's new handlers). */
void owners_forget(void);
/* Leaves fault m, read at t_seen, in o's mailbox if o can serve it. */
bool post_fault(struct handler *o, const struct uffd_msg *m, uint64_t t_seen);
/* Leaves a fault that h read for its thread's owner, if that is another
 * handler that can take it; false: h serves it. */
bool route_fault(struct handler *h, const struct uffd_msg *m, uint64_t t_seen);

/* --- nested.c ------------------------------------------------------------ */
/* Makes the calling thread handler h, serving faults within its faults'
 * waits (fault_wait_hook). */
void nested_serving_begin(struct handler *h);

#endif
