/* Thread mode: handler threads that resolve faults while the faulting
 * thread sleeps in the kernel.
 *
 * Why one handler per vCPU, each pinned and blocking in read() on the same
 * userfaultfd: waking a thread on another vCPU costs ~60 us on this kind of
 * VM (an idle vCPU halts), on the same vCPU ~4 us. The kernel wakes every
 * reader; the one on the faulting thread's vCPU usually gets there first.
 * Measured in the lab (shared/docs/mechanism-costs.md) against poll(),
 * epoll with EPOLLEXCLUSIVE and busy-polling: blocking read() had the best
 * median and two-thread throughput. */
#define _GNU_SOURCE
#include "clock.h"
#include "internal.h"
#include "uffd.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

struct handler_arg {
	struct server *s;
	int cpu;
};

static struct handler_arg args[64];

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

static void *handler_main(void *arg)
{
	struct handler_arg *a = arg;
	struct server *s = a->s;
	sigset_t all;
	/* Signals belong to the program's threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	if (a->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(a->cpu, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	char name[16];
	snprintf(name, sizeof(name), "dime-fault/%d", a->cpu);
	prctl(PR_SET_NAME, name);

	struct uffd_msg msgs[16];
	for (;;) {
		ssize_t n = read(s->uffd, msgs, sizeof(msgs));
		uint64_t t = clock_ticks();
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			/* The descriptor went away (fork child replaced it). */
			return NULL;
		}
		/* The fault began one trap-and-wake-up before we saw it. */
		uint64_t t_begin = t - s->costs.pre;
		for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]); i++)
			handle(s, &msgs[i], t_begin);
	}
}

int thread_server_start(struct server *s)
{
	cpu_set_t allowed;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
		CPU_ZERO(&allowed);
	int ncpu = 0;
	for (int cpu = 0; cpu < CPU_SETSIZE && ncpu < 64; cpu++) {
		if (!CPU_ISSET(cpu, &allowed))
			continue;
		args[ncpu] = (struct handler_arg){ .s = s, .cpu = cpu };
		ncpu++;
	}
	if (ncpu == 0)
		args[ncpu++] = (struct handler_arg){ .s = s, .cpu = -1 };
	s->nthreads = 0;
	for (int i = 0; i < ncpu; i++) {
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 256 << 10);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		int err = pthread_create(&s->threads[i], &attr, handler_main, &args[i]);
		pthread_attr_destroy(&attr);
		if (err)
			return s->nthreads ? 0 : -err;
		s->nthreads++;
	}
	return 0;
}
