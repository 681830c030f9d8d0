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
 * the userfaultfd for every fault, so a handler whose CPU runs no faulting
 * thread is only ever woken for other CPUs' faults, which its own CPU's
 * handler takes first. After STANDBY_MISSES such wake-ups in a row it
 * stops waiting on the userfaultfd (standby). A handler that gets a fault
 * it was asleep for (the faulting thread ran elsewhere, or did not fault
 * for a while) looks at most once per CHECK_NS where that thread runs
 * (/proc/self/task/TID/stat; the fault carries the thread id) and ends the
 * standby of that CPU's handler: after a migration the right handler is
 * back within a fault or two.
 *
 * A handler reads without blocking first: after resolving a fault it is
 * usually preempted by the thread it woke, and when it runs again the next
 * fault is already queued. Only when there is none does it do the region's
 * deferred evictions (fault.c) and poll(). */
#define _GNU_SOURCE
#include "clock.h"
#include "internal.h"
#include "uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

enum {
	STANDBY_MISSES = 4,
	CHECK_NS = 1000000,
	CHECK_ALL_NS = 10000000,
	BUSY_NS = 200000,  /* a handler that served within this is busy */
	DEFER_NS = 5000,   /* how long a late handler leaves a fault to it */
	MAX_HANDLERS = 64,
};

struct handler {
	struct server *s;
	int cpu;              /* pinned to, or -1 */
	_Atomic uint32_t arm; /* futex word: bumped to end a standby */
	_Atomic bool standby;
	_Atomic uint64_t served; /* ticks: when it last resolved a fault */
	uint64_t last_check;  /* ticks */
};

static struct handler handlers[MAX_HANDLERS];
static int nhandlers;
static _Atomic int nactive; /* handlers not in standby */

/* A write hit a page the copy fallback protected for its page-out: the
 * page-out wakes the writer when the page is gone. Any other protection is
 * stale: lift it. */
static void fault_write_protected(struct region *r, size_t pg)
{
	pthread_mutex_lock(&r->lock);
	bool evicting = r->state[pg] == PAGE_EVICTING;
	pthread_mutex_unlock(&r->lock);
	if (!evicting)
		page_unprotect(r, pg);
}

static void handle(struct server *s, const struct uffd_msg *m, uint64_t t_begin)
{
	if (m->event != UFFD_EVENT_PAGEFAULT)
		return;
	uintptr_t addr = m->arg.pagefault.address & ~(uintptr_t)(engine.page_size - 1);
	struct region *r = region_lookup_get(addr);
	if (!r)
		return; /* unregistered meanwhile: the kernel woke the thread */
	if ((m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) && addr - r->base < r->size)
		fault_write_protected(r, (addr - r->base) >> engine.page_shift);
	else if (addr - r->base < r->size)
		fault_resolve(r, (addr - r->base) >> engine.page_shift,
			      m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE, t_begin);
	else
		uffd_zeropage(s->uffd, addr, engine.page_size); /* a stray store access */
	region_put(r);
}

/* Does the deferred evictions of this server's regions. */
static void drain_all(struct server *s)
{
	for (size_t i = 0; i < sizeof(engine.regions) / sizeof(engine.regions[0]); i++) {
		struct region *r = atomic_load_explicit(&engine.regions[i], memory_order_acquire);
		if (!r || r->server != s || !r->evict_due)
			continue;
		atomic_fetch_add_explicit(&r->inflight, 1, memory_order_acquire);
		if (atomic_load_explicit(&engine.regions[i], memory_order_acquire) == r)
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

/* Where the thread of fault m runs, or -1 if unknown, or -2 if the fault
 * does not say which thread (no UFFD_FEATURE_THREAD_ID): then every
 * handler in standby is worth a try, every CHECK_ALL_NS at most. */
static int faulting_cpu(const struct uffd_msg *m)
{
	pid_t tid = (pid_t)m->arg.pagefault.feat.ptid;
	if (tid)
		return thread_cpu(tid);
	static _Atomic uint64_t last;
	uint64_t now = clock_ticks(), prev = atomic_load(&last);
	if (now - prev < clock_ns_to_ticks(CHECK_ALL_NS) ||
	    !atomic_compare_exchange_strong(&last, &prev, now))
		return -1;
	return -2;
}

/* Ends the standby of the handlers of cpu (all of them for -2). */
static void arm(int cpu)
{
	for (int i = 0; i < nhandlers; i++) {
		struct handler *h = &handlers[i];
		if ((cpu != -2 && h->cpu != cpu) || !atomic_load(&h->standby))
			continue;
		atomic_fetch_add(&h->arm, 1);
		syscall(SYS_futex, &h->arm, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	}
}

/* Whether another handler served a fault recently: it is then the one on
 * the faulting thread's CPU, and a fault that is still queued when this
 * one wakes (a wake-up across vCPUs takes tens of microseconds) is most
 * likely for it. */
static bool other_busy(const struct handler *h, uint64_t now)
{
	for (int i = 0; i < nhandlers; i++)
		if (&handlers[i] != h &&
		    now - atomic_load_explicit(&handlers[i].served, memory_order_relaxed) <
			    clock_ns_to_ticks(BUSY_NS))
			return true;
	return false;
}

/* Waits until no fault is queued or DEFER_NS passed. Returns whether one
 * is still queued. */
static bool still_queued(int uffd)
{
	uint64_t end = clock_ticks() + clock_ns_to_ticks(DEFER_NS);
	struct pollfd p = { .fd = uffd, .events = POLLIN };
	while (poll(&p, 1, 0) > 0) {
		if (clock_ticks() > end)
			return true;
		cpu_relax();
	}
	return false;
}

/* Waits on h->arm until arm() is called for h's CPU, unless h is the last
 * handler waiting on the userfaultfd. */
static void standby(struct handler *h)
{
	int act = atomic_load(&nactive);
	if (act <= 1 || !atomic_compare_exchange_strong(&nactive, &act, act - 1))
		return;
	uint32_t w = atomic_load(&h->arm);
	atomic_store(&h->standby, true);
	syscall(SYS_futex, &h->arm, FUTEX_WAIT_PRIVATE, w, NULL, NULL, 0);
	atomic_store(&h->standby, false);
	atomic_fetch_add(&nactive, 1);
}

static void *handler_main(void *arg)
{
	struct handler *h = arg;
	struct server *s = h->s;
	sigset_t all;
	/* Signals belong to the program's threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	if (h->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(h->cpu, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	char name[16];
	snprintf(name, sizeof(name), "dime-fault/%d", h->cpu);
	prctl(PR_SET_NAME, name);

	struct uffd_msg msgs[16];
	bool slept = false; /* the last read follows a poll() */
	unsigned misses = 0;
	for (;;) {
		if (slept && other_busy(h, clock_ticks()) && !still_queued(s->uffd)) {
			/* Woken for a fault another CPU's handler took. */
			slept = false;
			if (++misses >= STANDBY_MISSES) {
				drain_all(s);
				standby(h);
				misses = 0;
			}
			goto wait;
		}
		ssize_t n = read(s->uffd, msgs, sizeof(msgs));
		uint64_t t = clock_ticks();
		if (n > 0) {
			/* The fault began one trap-and-wake-up before we saw it. */
			uint64_t t_begin = t - s->costs.pre;
			for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]); i++)
				handle(s, &msgs[i], t_begin);
			atomic_store_explicit(&h->served, clock_ticks(), memory_order_relaxed);
			if (!slept) {
				misses = 0;
			} else if (t - h->last_check > clock_ns_to_ticks(CHECK_NS)) {
				/* Asleep when it came: where does its thread run? */
				h->last_check = t;
				int cpu = faulting_cpu(&msgs[0]);
				if (cpu == -2) {
					arm(-2);
				} else if (cpu >= 0 && cpu != h->cpu) {
					arm(cpu);
					misses++;
				} else if (cpu == h->cpu) {
					misses = 0;
				}
			}
			slept = false;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return NULL; /* the descriptor went away (fork child replaced it) */
		if (slept && ++misses >= STANDBY_MISSES) {
			/* Woken for others' faults again and again: the faulting
			 * threads run on other CPUs. */
			drain_all(s);
			standby(h);
			misses = 0;
			slept = false;
			continue;
		}
		/* No fault waiting: a good time for deferred work. */
		drain_all(s);
	wait:;
		struct pollfd p = { .fd = s->uffd, .events = POLLIN };
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			return NULL;
		if (p.revents & (POLLERR | POLLNVAL))
			return NULL;
		slept = true;
	}
}

int thread_server_start(struct server *s)
{
	/* Reads never block: handlers poll() when there is nothing to do. */
	int fl = fcntl(s->uffd, F_GETFL);
	if (fl < 0 || fcntl(s->uffd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	cpu_set_t allowed;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
		CPU_ZERO(&allowed);
	nhandlers = 0;
	for (int cpu = 0; cpu < CPU_SETSIZE && nhandlers < MAX_HANDLERS; cpu++)
		if (CPU_ISSET(cpu, &allowed))
			handlers[nhandlers++] = (struct handler){ .s = s, .cpu = cpu };
	if (nhandlers == 0)
		handlers[nhandlers++] = (struct handler){ .s = s, .cpu = -1 };
	atomic_store(&nactive, nhandlers);
	s->nthreads = 0;
	for (int i = 0; i < nhandlers; i++) {
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 256 << 10);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		int err = pthread_create(&s->threads[i], &attr, handler_main, &handlers[i]);
		pthread_attr_destroy(&attr);
		if (err) {
			atomic_fetch_sub(&nactive, nhandlers - i);
			return s->nthreads ? 0 : -err;
		}
		s->nthreads++;
	}
	return 0;
}
