/* Regions in instances: live parameters, the instance's link, published
 * local counts. See instance.h; the table's layout and rules are in
 * src/control/table.h. */
#include "instance.h"
#include "book.h"
#include "region.h"
#include "../control/table.h"

struct instance_link {
	struct ctl_table *table;
	struct ctl_member *self;
	int id;              /* the instance r counts in now */
	uint32_t seq;        /* its parameters' sequence last taken */
	uint64_t published;  /* what self->local holds from r */
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

void instance_join(struct region *r, struct ctl_table *t, struct ctl_member *m)
{
	struct instance_link *l = r->inst;
	if (!l && !(l = book_alloc(sizeof(*l))))
		return;
	pthread_mutex_lock(&r->lock);
	l->table = t;
	l->self = m;
	l->published = 0;
	r->inst = l;
	attach(r, atomic_load(&m->instance));
	r->ctr_more[1] = &m->ctr;
	atomic_store_explicit(&r->nctr_more, 2, memory_order_release);
	instance_sync(r);
	pthread_mutex_unlock(&r->lock);
}

void instance_leave(struct region *r)
{
	/* A fault in flight (another thread, or the program's exit path
	 * still touching memory) counts into the instance to the end; the
	 * process's slot may go to another process, so its share goes here. */
	static struct counters after_leaving;
	pthread_mutex_lock(&r->lock);
	r->ctr_more[1] = &after_leaving;
	r->inst = NULL;
	pthread_mutex_unlock(&r->lock);
}

void instance_sync(struct region *r)
{
	struct instance_link *l = r->inst;
	uint64_t now = r->local_count - r->evict_due;
	if (now == l->published)
		return;
	struct ctl_instance *in = current(r);
	uint64_t d = now - l->published; /* modulo 2^64: a decrease works too */
	atomic_fetch_add(&l->self->local, d);
	uint64_t total = atomic_fetch_add(&in->local, d) + d;
	l->published = now;
	uint64_t peak = atomic_load_explicit(&in->local_peak, memory_order_relaxed);
	while ((int64_t)total > 0 && total > peak &&
	       !atomic_compare_exchange_weak(&in->local_peak, &peak, total))
		;
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
