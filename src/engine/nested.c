/* Serving faults within another fault's wait (thread mode).
 *
 * A handler busy-waits each remote fault's fetch time. The faulting threads
 * of a CPU have only its handler (the others may be in standby), so a
 * thread of a faster tier, or whose fetch queued behind less, would wait
 * out a slower fetch of another thread on that CPU. So while one of its
 * faults waits (fault_wait_hook, fault.c), a handler looks for others and
 * serves at once those that will be done by then. */
#include "clock.h"
#include "delay.h"
#include "handler.h"

#include <unistd.h>

enum {
	LOOK_NS = 2000, /* waiting for a deadline: look for faults this often */
	NEST_MAX = 4,   /* waits served within one another at most */
};

static __thread struct handler *self; /* the handler this thread is */
static __thread int nested;           /* waits this thread is serving within */

/* Whether the fault in m, which a handler saw at t_seen, would be done by
 * `deadline` if served now: a remote page's fetch estimated from when it
 * was seen (it began earlier) with its region's link as it is now; any
 * other fault costs no wait. The page's state is read without the lock:
 * a stale one only serves a fault early or late. */
static bool done_by(const struct uffd_msg *m, uint64_t t_seen, uint64_t deadline)
{
	if (m->event != UFFD_EVENT_PAGEFAULT)
		return true;
	uintptr_t addr = m->arg.pagefault.address & ~(uintptr_t)(engine.page_size - 1);
	struct region *r = region_lookup_get(addr);
	if (!r)
		return true;
	bool done = true;
	if (addr - r->base < r->size) {
		uint8_t st = __atomic_load_n(&r->state[(addr - r->base) >> engine.page_shift],
					     __ATOMIC_RELAXED);
		done = !fetch_delayed(r, st) ||
		       (int64_t)(deadline - delay_estimate(r, t_seen)) >= 0;
	}
	region_put(r);
	return done;
}

/* Serves m within the wait of another fault. */
static void serve_nested(struct handler *h, const struct uffd_msg *m, uint64_t t_seen)
{
	pid_t traced = trace_fault_tid; /* the waiting fault's, for its trace */
	serve_fault(h, m, t_seen); /* no standby within a wait */
	trace_fault_tid = traced;
}

/* A fault read within a wait that is not done by its deadline: to its
 * owner, or back to this handler's mailbox for after the wait; if the
 * thread has no owner yet, to a handler that is not waiting in standby,
 * which may be free now. Served at once if no mailbox has room. */
static void keep_for_later(struct handler *h, const struct uffd_msg *m, uint64_t t_seen)
{
	if (route_fault(h, m, t_seen))
		return;
	struct handler *o = owner_of((pid_t)m->arg.pagefault.feat.ptid);
	for (int i = 0; !o && i < nhandlers; i++)
		if (&handlers[i] != h && !atomic_load(&handlers[i].standby) &&
		    post_fault(&handlers[i], m, t_seen))
			return;
	if (!mailbox_post(&h->mail, m, t_seen))
		serve_nested(h, m, t_seen);
}

/* fault_wait_hook of handler threads: while one of its faults waits for
 * its deadline, a handler serves the faults that are done by then. A
 * thread of a faster tier, or whose fetch queued behind less, must not
 * wait for a slower fetch: the faulting threads of a CPU have only its
 * handler, and the handlers of the other CPUs may be in standby. The
 * others are kept for after the wait. It looks every LOOK_NS, not within
 * the last LOOK_NS, and not deeper than NEST_MAX waits. */
static void wait_serving(uint64_t deadline)
{
	struct handler *h = self;
	struct uffd_msg msg;
	struct mail mail[MAILBOX_CAP];
	nested++;
	while (nested <= NEST_MAX) {
		uint64_t look = clock_ticks() + clock_ns_to_ticks(LOOK_NS);
		if ((int64_t)(deadline - look) <= 0)
			break;
		while ((int64_t)(clock_ticks() - look) < 0 && !mailbox_has(&h->mail))
			cpu_relax();
		unsigned nmail = mailbox_take(&h->mail, mail);
		for (unsigned i = 0; i < nmail; i++)
			if (done_by(&mail[i].msg, mail[i].t_seen, deadline) ||
			    !mailbox_post(&h->mail, &mail[i].msg, mail[i].t_seen))
				serve_nested(h, &mail[i].msg, mail[i].t_seen);
		ssize_t n = read(h->s->uffd, &msg, sizeof(msg));
		uint64_t t = clock_ticks();
		if (n > 0 && done_by(&msg, t, deadline))
			serve_nested(h, &msg, t);
		else if (n > 0)
			keep_for_later(h, &msg, t);
	}
	nested--;
	clock_spin_until(deadline);
}

void nested_serving_begin(struct handler *h)
{
	self = h;
	fault_wait_hook = wait_serving;
}
