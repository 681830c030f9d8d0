/* Which handler serves which thread's faults (thread mode).
 *
 * A read of the userfaultfd takes the oldest fault queued, also one of a
 * thread on another CPU; served there, the thread's wake-up would cross
 * vCPUs. Each thread has an owner, the handler of the CPU it was last
 * seen faulting on (served_fault(), server.c), and a fault read by another
 * handler goes to the owner's mailbox (mailbox.h). */
#include "handler.h"

enum { OWNERS = 4096 }; /* slots of the thread -> handler table */

/* Each thread's owner: tid << 16 | index of its handler + 1, in the slot
 * tid % OWNERS. Relaxed: a stale or overwritten entry only routes a fault
 * to a handler of the wrong CPU, which serves it all the same. */
static _Atomic uint64_t owners[OWNERS];

struct handler *owner_of(pid_t tid)
{
	uint64_t e = atomic_load_explicit(&owners[(unsigned)tid % OWNERS], memory_order_relaxed);
	int i = (int)(e & 0xffff) - 1;
	return (pid_t)(e >> 16) == tid && i >= 0 && i < nhandlers ? &handlers[i] : NULL;
}

/* Thread tid's faults go to cpu's handler from now on, or to whichever
 * handler reads them if that CPU has none (the program widened its
 * affinity after dime started). */
void owner_set(pid_t tid, int cpu)
{
	uint64_t e = 0;
	for (int i = 0; i < nhandlers; i++)
		if (handlers[i].cpu == cpu)
			e = (uint64_t)(uint32_t)tid << 16 | (uint64_t)(i + 1);
	atomic_store_explicit(&owners[(unsigned)tid % OWNERS], e, memory_order_relaxed);
}

void owners_forget(void)
{
	for (size_t i = 0; i < OWNERS; i++)
		atomic_store_explicit(&owners[i], 0, memory_order_relaxed);
}

/* Leaves fault m in o's mailbox if o can serve it, ending its standby:
 * not if o has not started or has stopped (tid 0; a post then fails on the
 * shut mailbox too), nor if the faulting thread is o itself (a handler's
 * own fault, in glibc's start of the thread: it sleeps in that fault). */
bool post_fault(struct handler *o, const struct uffd_msg *m, uint64_t t_seen)
{
	pid_t tid = atomic_load(&o->tid);
	if (!tid || tid == (pid_t)m->arg.pagefault.feat.ptid)
		return false;
	if (atomic_load(&o->standby))
		arm_cpu(o->cpu);
	return mailbox_post(&o->mail, m, t_seen);
}

/* Leaves a fault that h read for its thread's owner, if that is another
 * handler that can take it; false: h serves it. */
bool route_fault(struct handler *h, const struct uffd_msg *m, uint64_t t_seen)
{
	if (m->event != UFFD_EVENT_PAGEFAULT)
		return false;
	struct handler *o = owner_of((pid_t)m->arg.pagefault.feat.ptid);
	return o && o != h && post_fault(o, m, t_seen);
}
