/* Regions in instances: live parameters, the instance's link, and one local
 * budget shared by every process of the instance. See instance.h; the
 * table's layout and rules are in src/control/table.h.
 *
 * The shared budget. Every page gets a ticket from the instance's counter
 * whenever its policy learns that it is local or in use (it arrives, a
 * soft fault shows it referenced, it comes back), so tickets order the
 * pages of all its processes by their last known use. Each process
 * publishes its local count (member.local, summed in instance.local by
 * atomic deltas) and the ticket of the page its policy would evict next
 * (member.oldest, through the policy's peek). A fault that takes the
 * instance over local_npages looks for the processes whose next victims
 * are older than its own: it asks them to evict (member.req, and a futex
 * wake of their evictor threads); what they are not asked for, or when
 * too many requests are outstanding, it evicts from its own pages, as a
 * process alone does. Which page leaves a process is always its own
 * policy's choice: the comparison only picks the process.
 *
 * What the comparison means per policy (every process of an instance runs
 * the instance's policy: src/control/grammar.c):
 *   - fifo: the instance's pages leave in arrival order, one FIFO.
 *   - lru, clock: the next victim's ticket is its last observed use (a
 *     soft fault refreshes it), so the process whose victim was used
 *     longest ago gives up a page: a global LRU/CLOCK up to the
 *     granularity of the observations.
 *   - random: peek draws a random page of the process; the process whose
 *     draw has been local longest gives one up (see random.c).
 *   - a plug-in without peek: no order to compare; the process holding
 *     the most pages (more than the faulting one by 2 or more) gives one
 *     up, so the processes converge to equal shares.
 *
 * Watermarks (evict_low, evict_high: --evict-batch) apply to the
 * instance's count: a fault that leaves fewer than evict_low of the
 * instance's pages free makes evictions due until evict_high are free, a
 * batch shared out as above. evict_high is capped below the instance's
 * current local_npages (a live change may lower it under the run's
 * watermark).
 *
 * Bound: requests not served yet are counted in instance.pending and at
 * most PENDING_MAX are outstanding per instance, so the pages counted local
 * over all processes never exceed local_npages + PENDING_MAX, plus one page
 * in flight per fault being resolved at that moment. (As for one process,
 * evictions the fault path defers keep up to 64 pages per process mapped
 * while counted remote: fault.c.) A process that dies takes its count and
 * its outstanding requests with it (members.c) when it is removed: by the
 * evictor thread of any live member (ctl_reap, every 250 ms) or by the
 * next command. The order across the
 * processes holds up to those deferred and requested pages. */
#define _GNU_SOURCE
#include "instance.h"
#include "book.h"
#include "region.h"
#include "../control/table.h"

#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Evictions outstanding at once: per instance, and asked of one process. */
#define PENDING_MAX 32
#define REQ_MAX 16

struct instance_link {
	struct ctl_table *table;
	struct ctl_member *self;
	int id;              /* the instance r counts in now */
	uint32_t seq;        /* its parameters' sequence last taken */
	uint64_t published;  /* what self->local holds from r */
	uint64_t *ticket;    /* per page: when it became local */
	pid_t evictor;       /* the process whose evictor thread runs, or 0 (none,
				or served by instance_serve() from elsewhere) */
};

static struct ctl_instance *current(const struct region *r)
{
	return &r->inst->table->inst[r->inst->id];
}

static void take_params(struct region *r)
{
	struct ctl_instance *in = current(r);
	uint64_t lat, bw, loc;
	r->inst->seq = ctl_params_read(&in->params, &lat, &bw, &loc);
	r->params.latency_ns = lat;
	r->params.bandwidth_bps = bw;
	r->params.local_npages = loc;
	region_set_delay(r);
}

/* Points r's counters and link at instance id. */
static void attach(struct region *r, int id)
{
	struct ctl_instance *in = &r->inst->table->inst[id];
	r->inst->id = id;
	r->link = &in->link_free_at;
	r->ctr_more[0] = &in->ctr;
	take_params(r);
}

/* The ticket of the page r's policy would evict after `skip` others, or
 * UINT64_MAX. r->lock held. */
static uint64_t age_of_next(struct region *r, size_t skip)
{
	uint64_t v;
	if (!r->policy->peek || !r->policy->peek(r->policy_state, skip, &v) || v >= r->npages ||
	    (r->state[v] != PAGE_LOCAL && r->state[v] != PAGE_INACTIVE))
		return UINT64_MAX;
	return r->inst->ticket[v];
}

/* Publishes the age of r's next victim: the oldest page that neither a
 * deferred eviction nor an outstanding request will take. r->lock held. */
static void publish_oldest(struct region *r)
{
	struct ctl_member *self = r->inst->self;
	uint64_t age = age_of_next(r, r->evict_due + atomic_load(&self->req));
	atomic_store_explicit(&self->oldest, age, memory_order_relaxed);
}

/* Publishes r's local count; returns the instance's count after it. */
static uint64_t sync_count(struct region *r)
{
	struct instance_link *l = r->inst;
	struct ctl_instance *in = current(r);
	uint64_t now = r->local_count - r->evict_due;
	if (now == l->published)
		return atomic_load(&in->local);
	uint64_t d = now - l->published; /* modulo 2^64: a decrease works too */
	atomic_fetch_add(&l->self->local, d);
	uint64_t total = atomic_fetch_add(&in->local, d) + d;
	l->published = now;
	uint64_t peak = atomic_load_explicit(&in->local_peak, memory_order_relaxed);
	while ((int64_t)total > 0 && total > peak &&
	       !atomic_compare_exchange_weak(&in->local_peak, &peak, total))
		;
	return total;
}

void instance_sync(struct region *r)
{
	sync_count(r);
	publish_oldest(r);
}

static long futex(_Atomic uint32_t *w, int op, uint32_t val, const struct timespec *ts)
{
	/* Not FUTEX_PRIVATE: the word is in a mapping shared between processes. */
	return syscall(SYS_futex, w, op, val, ts, NULL, 0);
}

/* The member of r's instance, other than r's process, that should give up
 * a page rather than r's process: the one whose next victim is older than
 * r's (`mine`, its ticket), or for a policy without peek the one holding
 * the most pages if that is at least `held` + 2 (not counting what it was
 * asked for already). NULL if none. */
static struct ctl_member *other_victim(struct region *r, uint64_t mine, uint64_t held)
{
	struct ctl_table *t = r->inst->table;
	struct ctl_member *best = NULL;
	bool by_age = r->policy->peek != NULL;
	uint64_t age = mine, most = held + 1;
	uint32_t end = atomic_load_explicit(&t->mem_end, memory_order_relaxed);
	for (uint32_t i = 0; i < end && i < CTL_MAX_MEMBERS; i++) {
		struct ctl_member *m = &t->mem[i];
		if (m == r->inst->self || !atomic_load_explicit(&m->pid, memory_order_relaxed) ||
		    atomic_load_explicit(&m->joined, memory_order_relaxed) != r->inst->id)
			continue;
		if (by_age) {
			uint64_t a = atomic_load_explicit(&m->oldest, memory_order_relaxed);
			if (a < age) {
				age = a;
				best = m;
			}
			continue;
		}
		uint64_t l = atomic_load_explicit(&m->local, memory_order_relaxed);
		uint64_t q = atomic_load_explicit(&m->req, memory_order_relaxed);
		if (l > q && l - q > most) {
			most = l - q;
			best = m;
		}
	}
	return best;
}

/* Asks member q to evict up to `want` of its pages; how many it was asked. */
static uint64_t ask(struct ctl_instance *in, struct ctl_member *q, uint64_t want)
{
	uint64_t pending = atomic_load(&in->pending);
	uint32_t have = atomic_load(&q->req);
	uint64_t n = want;
	if (n > REQ_MAX - (have < REQ_MAX ? have : REQ_MAX))
		n = REQ_MAX - (have < REQ_MAX ? have : REQ_MAX);
	if (n > PENDING_MAX - (pending < PENDING_MAX ? pending : PENDING_MAX))
		n = PENDING_MAX - (pending < PENDING_MAX ? pending : PENDING_MAX);
	if (!n)
		return 0;
	atomic_fetch_add(&in->pending, n);
	atomic_fetch_add(&q->req, (uint32_t)n);
	/* Its age is unknown until it publishes again: no one asks it for
	 * the same pages meanwhile. */
	atomic_store(&q->oldest, UINT64_MAX);
	atomic_fetch_add(&q->wake, 1);
	futex(&q->wake, FUTEX_WAKE, 1, NULL);
	return n;
}

void instance_page_local(struct region *r, size_t pg)
{
	r->inst->ticket[pg] =
		atomic_fetch_add_explicit(&current(r)->ticket, 1, memory_order_relaxed);
}

/* How many pages the instance must give up now that it counts `held`
 * (requested evictions not included): beyond the budget, or, with
 * watermarks, down to evict_high free pages once fewer than evict_low
 * are free. */
static uint64_t instance_over(const struct region *r, uint64_t held)
{
	uint64_t budget = r->params.local_npages;
	uint64_t high = r->params.evict_high, low = r->params.evict_low;
	if (high >= budget)
		high = budget ? budget - 1 : 0;
	if (low > high)
		low = high;
	if (high && held + low > budget)
		return held + high - budget;
	return held > budget ? held - budget : 0;
}

uint64_t instance_evictions(struct region *r)
{
	struct ctl_instance *in = current(r);
	/* Counted first: of two processes faulting at once, the second sees
	 * the first's page. */
	uint64_t total = sync_count(r);
	uint64_t pending = atomic_load(&in->pending);
	if ((int64_t)(total - pending) <= 0)
		return 0;
	uint64_t over = instance_over(r, total - pending);
	if (!over)
		return 0;
	uint64_t mine = r->local_count - r->evict_due;
	uint64_t my_age = age_of_next(r, r->evict_due);
	/* Older victims of other processes first (a watermark batch may
	 * spread over several), each asked once per fault. */
	for (int asked = 0; over && asked < PENDING_MAX; asked++) {
		struct ctl_member *q = other_victim(r, my_age, mine);
		uint64_t n = q ? ask(in, q, over) : 0;
		if (!n)
			break;
		over -= n;
	}
	/* The rest from this process, keeping the page just taken. */
	if (over > mine - 1)
		over = mine - 1;
	return over;
}

bool instance_serve(struct region *r)
{
	pthread_mutex_lock(&r->lock);
	struct instance_link *l = r->inst;
	uint32_t n = l ? atomic_exchange(&l->self->req, 0) : 0;
	uint64_t take = 0;
	if (n) {
		uint64_t mine = r->local_count - r->evict_due;
		take = n < mine ? n : mine;
		r->evict_due += take;
		instance_sync(r);
		atomic_fetch_sub(&current(r)->pending, n);
	}
	pthread_mutex_unlock(&r->lock);
	if (!take)
		return false;
	RCTR_ADD(r, evictions, take);
	RCTR_LOCAL_SUB(r, take);
	fault_drain(r);
	return true;
}

/* The control plane's sweep of dead members (ctl_reap), when the joiner
 * set it: the engine alone (libdime) does not link the control plane. */
static int (*reaper)(struct ctl_table *t);

void instance_set_reaper(int (*reap)(struct ctl_table *t))
{
	reaper = reap;
}

/* How long the evictor sleeps without a request: how soon a dead member's
 * pages leave the instance's count without any command (ctl_reap). */
#define EVICTOR_PERIOD_NS 250000000

/* Serves other processes' requests: evicts that many of this process's
 * oldest pages, in one batch. Leaves when the process leaves its instance.
 * Wakes every EVICTOR_PERIOD_NS anyway: requests never wait on a lost
 * wake-up, and dead members are looked for. */
static void *evictor_main(void *arg)
{
	struct region *r = arg;
	engine_thread_begin("dime-evictor");
	for (;;) {
		pthread_mutex_lock(&r->lock);
		struct instance_link *l = r->inst;
		if (!l || l->evictor != getpid()) {
			pthread_mutex_unlock(&r->lock);
			return NULL;
		}
		/* Read before the requests are taken: one posted after that
		 * changes the word and the wait below returns at once. */
		_Atomic uint32_t *wake = &l->self->wake;
		uint32_t w = atomic_load(wake);
		struct ctl_table *t = l->table;
		pthread_mutex_unlock(&r->lock);
		bool served = instance_serve(r);
		/* Cheap when not due (a clock read): also between requests. */
		if (reaper)
			reaper(t);
		if (served)
			continue;
		futex(wake, FUTEX_WAIT, w, &(struct timespec){ .tv_nsec = EVICTOR_PERIOD_NS });
	}
}

/* A fork child is not its parent's member: until it joins as its own
 * (the preload's atfork handler, registered after this one), its region
 * counts on its own, and the link, with its tickets, waits here. */
static struct region *joined_region;
static struct instance_link *detached;

static void child_detach(void)
{
	struct region *r = joined_region;
	if (!r || !r->inst)
		return;
	detached = r->inst;
	r->inst = NULL;
	atomic_store(&r->nctr_more, 0);
	r->link = &r->link_free_at;
}

uint64_t instance_admit(struct region *r)
{
	struct ctl_instance *in = current(r);
	uint64_t mine = r->local_count - r->evict_due;
	uint64_t total = atomic_load(&in->local) - r->inst->published + mine;
	uint64_t pending = atomic_load(&in->pending);
	uint64_t over = total > r->params.local_npages + pending ?
				total - r->params.local_npages - pending : 0;
	if (over > mine)
		over = mine;
	r->evict_due += over;
	instance_sync(r);
	return over;
}

void instance_ticket(struct region *r, size_t pg)
{
	r->inst->ticket[pg] = atomic_fetch_add_explicit(&current(r)->ticket, 1, memory_order_relaxed);
}

/* Links r to member m's instance (with l, a fork child's inherited link,
 * or a new one if NULL); r's local pages beyond the instance's budget are
 * due when it returns. Returns the link with r->lock held, or NULL (lock
 * not taken) if there is no memory for one. */
static struct instance_link *link_in(struct region *r, struct ctl_table *t, struct ctl_member *m,
				     struct instance_link *l, uint64_t *over)
{
	if (!l) {
		l = book_alloc(sizeof(*l));
		if (!l)
			return NULL;
		l->ticket = book_alloc(r->npages * sizeof(uint64_t));
		if (!l->ticket) {
			book_free(l, sizeof(*l));
			return NULL;
		}
	}
	pthread_mutex_lock(&r->lock);
	l->table = t;
	l->self = m;
	l->published = 0;
	r->inst = l;
	attach(r, atomic_load(&m->instance));
	r->ctr_more[1] = &m->ctr;
	atomic_store_explicit(&r->nctr_more, 2, memory_order_release);
	/* A fork child arrives with its copy of its parent's local pages:
	 * beyond the instance's budget, the excess leaves before it counts. */
	*over = instance_admit(r);
	return l;
}

static void drain_admitted(struct region *r, uint64_t over)
{
	if (!over)
		return;
	RCTR_ADD(r, evictions, over);
	RCTR_LOCAL_SUB(r, over);
	fault_drain(r);
}

void instance_join(struct region *r, struct ctl_table *t, struct ctl_member *m)
{
	struct instance_link *l = r->inst ? r->inst : detached;
	detached = NULL;
	if (!joined_region) {
		joined_region = r;
		pthread_atfork(NULL, NULL, child_detach);
	}
	uint64_t over;
	if (!(l = link_in(r, t, m, l, &over)))
		return;
	bool start = l->evictor != getpid(); /* threads do not survive fork */
	l->evictor = getpid();
	pthread_mutex_unlock(&r->lock);
	drain_admitted(r, over);
	if (start) {
		pthread_attr_t attr;
		pthread_t th;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 64 << 10);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&th, &attr, evictor_main, r))
			l->evictor = 0; /* requests then wait for the process's own faults */
		pthread_attr_destroy(&attr);
	}
}

int instance_join_served(struct region *r, struct ctl_table *t, struct ctl_member *m)
{
	uint64_t over;
	struct instance_link *l = link_in(r, t, m, NULL, &over);
	if (!l)
		return -ENOMEM;
	l->evictor = 0;
	pthread_mutex_unlock(&r->lock);
	drain_admitted(r, over);
	return 0;
}

void instance_leave(struct region *r)
{
	/* A fault in flight (another thread, or the program's exit path
	 * still touching memory) counts into the instance to the end; the
	 * process's slot may go to another process, so its share goes here. */
	static struct counters after_leaving;
	pthread_mutex_lock(&r->lock);
	r->ctr_more[1] = &after_leaving;
	r->left = r->inst;
	r->inst = NULL;
	pthread_mutex_unlock(&r->lock);
}

void instance_refresh(struct region *r)
{
	struct instance_link *l = r->inst;
	int want = atomic_load_explicit(&l->self->instance, memory_order_relaxed);
	if (want != l->id && want >= 0 && want < CTL_MAX_INSTANCES) {
		/* Moved by `dime config ... pid=`: the pages counted in the old
		 * instance now count in the new one. */
		struct ctl_instance *from = current(r);
		atomic_fetch_sub(&from->local, l->published);
		atomic_fetch_add(&l->table->inst[want].local, l->published);
		atomic_store(&l->self->joined, want);
		attach(r, want);
		return;
	}
	uint32_t seq = atomic_load_explicit(&current(r)->params.seq, memory_order_acquire);
	if (seq != l->seq)
		take_params(r);
}

void instance_count_fault(struct region *r)
{
	atomic_fetch_add_explicit(&current(r)->page_fault_count, 1, memory_order_relaxed);
}

int instance_id(const struct region *r)
{
	const struct instance_link *l = r->inst ? r->inst : r->left;
	return l ? l->id : -1;
}
