/* Thread mode: handler threads that resolve faults while the faulting
 * thread sleeps in the kernel.
 *
 * Where a fault's time goes on a small VM (2 vCPUs, kernel 6.18): a context
 * switch costs ~1.7 us, a wake-up of a thread on another vCPU 45-60 us
 * (an idle vCPU halts), and every page a handler moves while another
 * thread of the process runs on another vCPU costs that vCPU a TLB
 * shootdown (~9 us). So the fault must be served on the faulting thread's
 * own vCPU, by a handler no other vCPU wakes.
 *
 * One handler per CPU, pinned. The kernel wakes every thread waiting on
 * the userfaultfd for every fault, and the handler on the faulting
 * thread's CPU usually gets there first. A handler that serves a fault
 * learns where it was taken: from the fault clock's sample (faultclock.h)
 * for every fault, or else from /proc/self/task/TID/stat (the fault
 * carries the thread id) at most once per CHECK_NS. If elsewhere, it
 * wakes that CPU's handler and goes to standby: it stops
 * waiting on the userfaultfd, so faults no longer wake its CPU. So does a
 * handler woken STANDBY_MISSES times in a row for faults another took,
 * unless the last faulting thread runs on its CPU. After a migration the
 * right handler is back at the next fault (with the fault clock) or within
 * a few milliseconds.
 *
 * Handlers are SCHED_IDLE threads (see set_class()), so the thread a
 * handler wakes runs at once and stays on its CPU; a watchdog makes them
 * normal threads for a while if other threads on their CPUs starve them.
 *
 * A read takes the oldest fault queued, also one of a thread on another
 * CPU. Each thread has an owner, the handler of the CPU it was last seen
 * on (the fault clock's sample, or the rate-limited look at /proc); a
 * fault read by another handler goes to its owner's mailbox and is served
 * there, so the thread's wake-up stays on its CPU (owners.c). While a
 * fault waits for its fetch, its handler serves the faults that will be
 * done before it (nested.c).
 *
 * A handler reads without blocking first: after resolving a fault it is
 * preempted by the thread it woke, and when it runs again the next fault
 * is usually queued already. When there is none it spins for SPIN_NS
 * (a SCHED_IDLE thread spins only on a CPU with nothing else to run, and
 * a vCPU that halts takes 45-60 us to wake), then sleeps on the
 * userfaultfd and its mailbox; only when no handler has served a fault
 * for IDLE_MS does it do the region's deferred evictions (fault.c). */
#define _GNU_SOURCE
#include "clock.h"
#include "faultclock.h"
#include "handler.h"
#include "internal.h"
#include "uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

enum {
	STANDBY_MISSES = 4,
	CHECK_NS = 5000000,
	LOCAL_NS = 15000000,  /* a handler serving no thread of its CPU for this long is not needed */
	WATCH_NS = 10000000,  /* the watchdog's period while faults come */
	QUIET_WATCH_NS = 100000000, /* and after QUIET_NS without any */
	QUIET_NS = 1000000000,
	WATCH_STUCK = 2,
	FAIR_NS = 1000000000, /* how long handlers stay normal threads */
	IDLE_MS = 1,          /* no fault served for this long: do the deferred evictions */
	SPIN_NS = 20000,      /* nothing to do: spin this long before sleeping */
};

struct handler handlers[MAX_HANDLERS];
int nhandlers;
static _Atomic int nactive; /* handlers not in standby */
static _Atomic pid_t last_tid; /* the thread of the last fault served */
static _Atomic int last_cpu;    /* the CPU it faulted on, -1 if unknown */
static _Atomic uint64_t served; /* faults served by all handlers */
static _Atomic bool fair;       /* handlers are normal threads for now */
static _Atomic int running;     /* dime threads past glibc's thread start-up */

/* A write hit a page the copy fallback protected for its page-out: the
 * page-out wakes the writer when the page is gone. Any other protection is
 * stale: lift it. */
static void fault_write_protected(struct region *r, size_t pg)
{
	/* Under the lock: a page-out that marks the page EVICTING after the
	 * look would protect and copy it, and a lift between its copy and its
	 * zap would let a write in that the zap then drops. */
	pthread_mutex_lock(&r->lock);
	if (r->state[pg] != PAGE_EVICTING)
		page_unprotect(r, pg);
	pthread_mutex_unlock(&r->lock);
}

/* Serves one message. Returns the CPU the fault was taken on when the
 * fault clock knows it, else -1. */
static int serve_message(struct server *s, const struct uffd_msg *m, uint64_t t_seen)
{
	if (m->event != UFFD_EVENT_PAGEFAULT)
		return -1;
	uintptr_t addr = m->arg.pagefault.address & ~(uintptr_t)(engine.page_size - 1);
	struct region *r = region_lookup_get(addr);
	if (!r)
		return -1; /* unregistered meanwhile: the kernel woke the thread */
	int cpu = -1;
	if ((m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) && addr - r->base < r->size)
		fault_write_protected(r, (addr - r->base) >> engine.page_shift);
	else if (addr - r->base < r->size) {
		if (trace_on()) /* the faulting thread, not this handler */
			trace_fault_tid = (pid_t)m->arg.pagefault.feat.ptid;
		pid_t tid = (pid_t)m->arg.pagefault.feat.ptid;
		uint64_t t_began = 0;
		if (!faultclock_began(tid, addr, &t_began, &cpu))
			cpu = -1;
		fault_resolve(r, (addr - r->base) >> engine.page_shift,
			      m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE, t_seen, t_began,
			      tid);
	} else
		uffd_zeropage(s->uffd, addr, engine.page_size); /* a stray store access */
	region_put(r);
	return cpu;
}

/* Does the deferred evictions of this server's regions. */
static void drain_all(struct server *s)
{
	for (size_t i = 0; i < sizeof(engine.regions) / sizeof(engine.regions[0]); i++) {
		struct region *r = slot_get(i);
		if (!r)
			continue;
		if (r->server == s && r->evict_due)
			fault_drain(r);
		region_put(r);
	}
}

/* The CPU thread tid of this process last ran on, or -1. */
static int thread_cpu(pid_t tid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	/* Field 39; count from the end of the command name, which may hold
	 * spaces and parentheses. */
	char *p = strrchr(buf, ')');
	int field = 2;
	for (; p && *p && field < 39; p++)
		if (*p == ' ')
			field++;
	return p && field == 39 ? atoi(p) : -1;
}

/* Where thread tid runs, if the last look is older than CHECK_NS: the CPU,
 * or -1 (not looked, or unknown). */
static int faulting_cpu(struct handler *h, pid_t tid)
{
	uint64_t now = clock_ticks();
	if (!tid || now - h->last_check < clock_ns_to_ticks(CHECK_NS))
		return -1;
	h->last_check = now;
	return thread_cpu(tid);
}

/* Handlers run in the SCHED_IDLE class: when one wakes a thread on its
 * own CPU, the scheduler then sees that CPU as free and leaves the thread
 * there; from a normal-class handler it moves the thread to an idle CPU,
 * and its next fault is served across CPUs. But a SCHED_IDLE thread gets
 * next to no CPU while other runnable threads share its CPU: the watchdog
 * below makes the handlers normal threads for FAIR_NS when faults wait
 * while none is served. */
static void set_class(pid_t tid, bool idle)
{
	struct sched_param sp = { 0 };
	sched_setscheduler(tid, idle ? SCHED_IDLE : SCHED_OTHER, &sp);
}

/* Ends the standby of the handlers of cpu. */
void arm_cpu(int cpu)
{
	for (int i = 0; i < nhandlers; i++) {
		struct handler *h = &handlers[i];
		bool on = true;
		if (h->cpu != cpu || !atomic_compare_exchange_strong(&h->standby, &on, false))
			continue;
		atomic_fetch_add(&nactive, 1);
		mailbox_kick(&h->mail);
	}
}


/* Stops waiting on the userfaultfd until arm_cpu() is called for h's CPU or
 * mail comes, unless h is the last handler waiting on it. What is due it
 * leaves to the handlers still waiting, which drain once the process is
 * quiet: draining here, while the thread that made h go serves on another
 * CPU, moved pages under that thread (see handler_main()). */
static void standby(struct handler *h)
{
	int act = atomic_load(&nactive);
	if (act <= 1 || !atomic_compare_exchange_strong(&nactive, &act, act - 1))
		return;
	atomic_store(&h->standby, true);
	while (atomic_load(&h->standby) && !mailbox_has(&h->mail))
		mailbox_sleep(&h->mail, -1, -1);
	bool on = true;
	if (atomic_compare_exchange_strong(&h->standby, &on, false))
		atomic_fetch_add(&nactive, 1); /* ended by mail, not by arm_cpu() */
}

/* Spins up to SPIN_NS for mail or a fault: true if one came. Not while
 * handlers are normal threads, whose spinning would take time from the
 * program's threads. */
static bool spin_for_work(struct handler *h)
{
	if (atomic_load_explicit(&fair, memory_order_relaxed))
		return false;
	uint64_t until = clock_ticks() + clock_ns_to_ticks(SPIN_NS);
	do {
		for (int k = 0; k < 64; k++) {
			if (mailbox_has(&h->mail))
				return true;
			cpu_relax();
		}
		struct pollfd p = { .fd = h->s->uffd, .events = POLLIN };
		if (poll(&p, 1, 0) != 0)
			return true; /* a fault, or an error the next read reports */
	} while (clock_ticks() < until);
	return false;
}

/* After h served a fault of thread tid taken on cpu (-1: not known):
 * where the thread's faults go from now on, and whether handlers must
 * change standby. True if h should go to standby. */
static bool served_fault(struct handler *h, pid_t tid, int cpu, uint64_t t)
{
	atomic_store_explicit(&last_tid, tid, memory_order_relaxed);
	atomic_fetch_add_explicit(&served, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->nserved, 1, memory_order_relaxed);
	/* Where the fault was taken: from the fault clock at no cost, else
	 * from /proc, at most once per CHECK_NS. */
	if (cpu < 0)
		cpu = faulting_cpu(h, tid);
	atomic_store_explicit(&last_cpu, cpu, memory_order_relaxed);
	if (cpu < 0)
		return false;
	owner_set(tid, cpu);
	if (cpu == h->cpu) {
		h->local_at = t;
		return false;
	}
	/* Served across CPUs: that CPU's handler must wait too, and this
	 * one only if its CPU has a faulting thread of its own. */
	arm_cpu(cpu);
	/* Signed: a fault from the mailbox was seen before the last local one. */
	return (int64_t)(t - h->local_at) > (int64_t)clock_ns_to_ticks(LOCAL_NS);
}

bool serve_fault(struct handler *h, const struct uffd_msg *m, uint64_t t_seen)
{
	int cpu = serve_message(h->s, m, t_seen);
	return m->event == UFFD_EVENT_PAGEFAULT &&
	       served_fault(h, (pid_t)m->arg.pagefault.feat.ptid, cpu, t_seen);
}

/* A handler stops (its userfaultfd went away, or poll() failed): posts
 * to it fail from now on, and what it was left is served here. */
static void *handler_stop(struct handler *h)
{
	struct mail mail[MAILBOX_CAP];
	atomic_store(&h->tid, 0);
	unsigned n = mailbox_shut(&h->mail, mail);
	for (unsigned i = 0; i < n; i++)
		serve_message(h->s, &mail[i].msg, mail[i].t_seen);
	return NULL;
}

static void *handler_main(void *arg)
{
	struct handler *h = arg;
	struct server *s = h->s;
	char name[16];
	snprintf(name, sizeof(name), "dime-fault/%d", h->cpu);
	engine_thread_begin(name);
	if (h->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(h->cpu, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	atomic_fetch_add(&running, 1);
	atomic_store(&h->tid, (pid_t)syscall(SYS_gettid));
	nested_serving_begin(h);
	set_class(0, !atomic_load(&fair));

	struct uffd_msg msg;
	struct mail mail[MAILBOX_CAP];
	bool slept = false; /* the last read follows a sleep or a spin that saw a fault */
	unsigned misses = 0;
	for (;;) {
		/* Faults other handlers read for this one first: they are
		 * older than any still queued. */
		bool to_standby = false;
		unsigned nmail = mailbox_take(&h->mail, mail), mine = nmail;
		for (unsigned i = 0; i < nmail; i++)
			to_standby |= serve_fault(h, &mail[i].msg, mail[i].t_seen);
		/* One fault a read: one that waits for its fetch must not
		 * hold others read with it, which its wait serves if they
		 * are due first (nested.c). */
		ssize_t n = read(s->uffd, &msg, sizeof(msg));
		uint64_t t = clock_ticks();
		if (n > 0 && !route_fault(h, &msg, t)) {
			to_standby |= serve_fault(h, &msg, t);
			mine++;
		}
		if (mine) {
			misses = 0;
			slept = false;
			if (to_standby)
				standby(h);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return handler_stop(h); /* the descriptor went away */
		if (slept && ++misses >= STANDBY_MISSES) {
			/* Woken for faults another handler took or owns, again
			 * and again: unless the last faulting thread runs here,
			 * it is not this handler's to serve. */
			misses = 0;
			pid_t tid = atomic_load_explicit(&last_tid, memory_order_relaxed);
			int cpu = atomic_load_explicit(&last_cpu, memory_order_relaxed);
			if (cpu < 0)
				cpu = tid ? thread_cpu(tid) : -1;
			if (cpu >= 0 && cpu != h->cpu) {
				standby(h);
				slept = false;
				continue;
			}
		}
		/* No fault waiting. Deferred evictions wait for a quiet
		 * moment, of the process, not of this handler: between two
		 * faults of a stream they would leave a page or two at a
		 * time, each move a TLB shootdown of the other vCPU while
		 * another thread of the process runs there; in a stream they
		 * leave in chunks from the fault path. A handler whose
		 * thread moved to another CPU sees no fault while that
		 * thread's stream goes on there: on a PVM guest its drains
		 * cost 85-100 us a page and stalled the stream for
		 * milliseconds after every migration. */
		if (spin_for_work(h)) {
			slept = true;
			continue;
		}
		uint64_t before = atomic_load_explicit(&served, memory_order_relaxed);
		int ready = mailbox_sleep(&h->mail, s->uffd, IDLE_MS);
		if (ready == 0 && atomic_load_explicit(&served, memory_order_relaxed) == before) {
			drain_all(s);
			ready = mailbox_sleep(&h->mail, s->uffd, -1);
		}
		if (ready == -2 || (ready < 0 && errno != EINTR))
			return handler_stop(h);
		slept = true;
	}
}

/* Watches for handlers that cannot run: faults queued, none served over
 * WATCH_STUCK periods in a row. */
static void *watchdog_main(void *arg)
{
	struct server *s = arg;
	engine_thread_begin("dime-watchdog");
	atomic_fetch_add(&running, 1);
	uint64_t last = 0, fair_since = 0, busy_at = clock_ticks();
	uint64_t last_by[MAX_HANDLERS] = { 0 };
	int stuck = 0;
	for (;;) {
		/* Slower when no fault was served for a while. */
		bool quiet = clock_ticks() - busy_at > clock_ns_to_ticks(QUIET_NS);
		struct timespec ts = { 0, quiet ? QUIET_WATCH_NS : WATCH_NS };
		nanosleep(&ts, NULL);
		uint64_t now = clock_ticks(), n = atomic_load(&served);
		if (n != last)
			busy_at = now;
		struct pollfd p = { .fd = s->uffd, .events = POLLIN };
		if (poll(&p, 1, 0) < 0 || (p.revents & (POLLERR | POLLNVAL)))
			return NULL; /* the descriptor went away (fork child) */
		/* Stuck: faults queued and none served, or mail that its
		 * handler does not take (its CPU busy with other threads
		 * while others serve). */
		bool stalled = (p.revents & POLLIN) && n == last;
		for (int i = 0; i < nhandlers; i++) {
			uint64_t hn = atomic_load_explicit(&handlers[i].nserved, memory_order_relaxed);
			stalled |= mailbox_has(&handlers[i].mail) && hn == last_by[i];
			last_by[i] = hn;
		}
		stuck = stalled ? stuck + 1 : 0;
		last = n;
		bool to_fair = stuck >= WATCH_STUCK && !atomic_load(&fair);
		bool to_idle = atomic_load(&fair) && now - fair_since > clock_ns_to_ticks(FAIR_NS);
		if (!to_fair && !to_idle)
			continue;
		atomic_store(&fair, to_fair);
		fair_since = now;
		for (int i = 0; i < nhandlers; i++)
			if (atomic_load(&handlers[i].tid))
				set_class(atomic_load(&handlers[i].tid), !to_fair);
	}
}

/* glibc's start of a thread reads the program's locale (__ctype_init),
 * which setlocale() put in the emulated heap: a dime thread may fault on
 * emulated memory before it reaches dime's code. In a fork()ed child that
 * page may be remote, and no handler runs yet to serve it, so the thread
 * starting them serves the userfaultfd itself until they all run (`want`
 * threads started by this call). */
static void serve_until_running(struct server *s, int want)
{
	struct uffd_msg msgs[16];
	while (atomic_load(&running) < want) {
		ssize_t n = read(s->uffd, msgs, sizeof(msgs));
		if (n > 0) {
			uint64_t t = clock_ticks();
			for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]); i++)
				serve_message(s, &msgs[i], t);
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return;
		struct pollfd p = { .fd = s->uffd, .events = POLLIN };
		poll(&p, 1, 1);
	}
}

int thread_server_start(struct server *s)
{
	/* Before any handler: they and the program's threads to come follow
	 * the events of this thread. */
	faultclock_open();
	/* Reads never block: handlers poll() when there is nothing to do. */
	int fl = fcntl(s->uffd, F_GETFL);
	if (fl < 0 || fcntl(s->uffd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	cpu_set_t allowed;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
		CPU_ZERO(&allowed);
	/* In a fork()ed child: the parent's handlers are not here, their
	 * mailboxes' descriptors are. */
	for (int i = 0; i < nhandlers; i++)
		mailbox_close(&handlers[i].mail);
	owners_forget();
	nhandlers = 0;
	for (int cpu = 0; cpu < CPU_SETSIZE && nhandlers < MAX_HANDLERS; cpu++)
		if (CPU_ISSET(cpu, &allowed))
			handlers[nhandlers++] = (struct handler){ .s = s, .cpu = cpu };
	if (nhandlers == 0)
		handlers[nhandlers++] = (struct handler){ .s = s, .cpu = -1 };
	for (int i = 0; i < nhandlers; i++) {
		int err = mailbox_init(&handlers[i].mail);
		if (err) {
			while (i-- > 0)
				mailbox_close(&handlers[i].mail);
			nhandlers = 0;
			return err;
		}
	}
	atomic_store(&nactive, nhandlers);
	atomic_store(&running, 0);
	s->nthreads = 0;
	for (int i = 0; i < nhandlers; i++) {
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 256 << 10);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		int err = pthread_create(&s->threads[i], &attr, handler_main, &handlers[i]);
		pthread_attr_destroy(&attr);
		if (err) {
			/* The handlers not started take no mail; those started
			 * may have gone to standby counting on them. */
			struct mail none[MAILBOX_CAP];
			for (int j = i; j < nhandlers; j++)
				mailbox_shut(&handlers[j].mail, none);
			atomic_fetch_sub(&nactive, nhandlers - i);
			for (int j = 0; j < i; j++)
				arm_cpu(handlers[j].cpu);
			serve_until_running(s, s->nthreads);
			return s->nthreads ? 0 : -err;
		}
		s->nthreads++;
	}
	pthread_attr_t attr;
	pthread_t t;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 << 10);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int want = s->nthreads + (pthread_create(&t, &attr, watchdog_main, s) == 0);
	pthread_attr_destroy(&attr);
	serve_until_running(s, want);
	return 0;
}
