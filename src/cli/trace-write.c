/* Writing a run's trace as Chrome trace-event JSON (the "JSON Object
 * Format" that Perfetto and chrome://tracing open): one complete event
 * ("ph":"X") per fault and eviction on the track of its pid and tid,
 * counter events ("ph":"C") for local pages and the link's busy fraction
 * under dime run's own pid, and in "otherData" the bounds and how many
 * events were dropped.
 *
 * Written by hand, like --stats-json (report.c): every value is a number
 * or a string dime chose, so nothing needs escaping. Whatever the ring
 * holds (a process killed while writing a slot, slots overwritten), the
 * output is valid JSON: a slot is either copied whole or left out.
 *
 * Slices on one track must nest (Perfetto drops ones that cross). The
 * events of a thread happen one after another, or inside each other (a
 * signal-mode fault's evictions), but a fault's end is an estimate and
 * clocks are read per event, so neighbours may cross by a little: the
 * events are sorted by track and time and their ends adjusted (nest()). */
#include "cli.h"
#include "trace.h"
#include "../engine/trace.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_name[] = {
	[TRACE_REMOTE] = "remote fault",
	[TRACE_FIRST_TOUCH] = "first touch",
	[TRACE_SOFT] = "soft fault",
	[TRACE_EVICT] = "eviction",
};

/* ns as microseconds with three decimals, exactly. */
static void us(FILE *f, const char *key, uint64_t ns)
{
	fprintf(f, "\"%s\":%" PRIu64 ".%03" PRIu64, key, ns / 1000, ns % 1000);
}

/* Copies event number n out of the ring if its slot still holds it,
 * whole (trace.h: seq before and after the copy). */
static bool take(const struct trace_ring *ring, uint64_t n, struct trace_event *out)
{
	const struct trace_event *e = &ring->ev[n % ring->capacity];
	if (atomic_load_explicit(&e->seq, memory_order_acquire) != n + 1)
		return false;
	memcpy(out, (const void *)e, sizeof(*out));
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&e->seq, memory_order_relaxed) == n + 1 && out->kind &&
	       out->kind <= TRACE_EVICT;
}

static void event(FILE *f, const struct trace_event *e)
{
	fprintf(f, ",\n{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"X\",", kind_name[e->kind],
		e->kind == TRACE_EVICT ? "eviction" : "fault");
	us(f, "ts", e->begin_ns);
	fputc(',', f);
	us(f, "dur", e->dur_ns);
	fprintf(f, ",\"pid\":%" PRId32 ",\"tid\":%" PRId32 ",\"args\":{\"addr\":\"0x%" PRIx64
		"\",\"instance\":%d,\"region\":%u,\"delay_ns\":%" PRIu64 ",\"handling_ns\":%" PRIu64
		"}}",
		e->pid, e->tid, e->addr, e->instance, e->region, e->delay_ns, e->handling_ns);
}

static int by_track_and_time(const void *pa, const void *pb)
{
	const struct trace_event *a = pa, *b = pb;
	if (a->pid != b->pid)
		return a->pid < b->pid ? -1 : 1;
	if (a->tid != b->tid)
		return a->tid < b->tid ? -1 : 1;
	if (a->begin_ns != b->begin_ns)
		return a->begin_ns < b->begin_ns ? -1 : 1;
	/* The enclosing one first. */
	return a->dur_ns > b->dur_ns ? -1 : a->dur_ns < b->dur_ns;
}

static uint64_t end_of(const struct trace_event *e)
{
	return e->begin_ns + e->dur_ns;
}

/* Makes the sorted events of each track nest (see the top). Only ends
 * move, so the order by begin stays valid: an eviction that outlasts the
 * fault it is part of (signal mode) extends that fault, whose end was an
 * estimate; any other slice that crosses an open one ends that one where
 * it begins (one thread's faults, or moves, follow each other). */
static void nest(struct trace_event *ev, uint64_t n)
{
	enum { DEPTH = 8 };
	struct trace_event *open[DEPTH];
	int depth = 0;
	for (uint64_t i = 0; i < n; i++) {
		struct trace_event *e = &ev[i];
		if (i && (e->pid != ev[i - 1].pid || e->tid != ev[i - 1].tid))
			depth = 0;
		while (depth && end_of(open[depth - 1]) <= e->begin_ns)
			depth--;
		while (depth && end_of(e) > end_of(open[depth - 1])) {
			struct trace_event *t = open[depth - 1];
			if (t->kind != TRACE_EVICT && e->kind == TRACE_EVICT) {
				t->dur_ns = end_of(e) - t->begin_ns;
				break;
			}
			t->dur_ns = e->begin_ns - t->begin_ns;
			depth--;
		}
		if (depth < DEPTH)
			open[depth++] = e;
	}
}

static void counters(FILE *f, const struct trace_sample *s, unsigned n, int pid)
{
	for (unsigned i = 0; i < n; i++) {
		fprintf(f, ",\n{\"name\":\"local pages\",\"ph\":\"C\",");
		us(f, "ts", s[i].t_ns);
		fprintf(f, ",\"pid\":%d,\"args\":{\"pages\":%" PRIu64 "}}", pid,
			s[i].local_pages);
		if (i + 1 == n)
			break;
		/* The busy fraction of the interval that starts here. */
		uint64_t dt = s[i + 1].t_ns - s[i].t_ns, busy = s[i + 1].link_busy_ns -
								 s[i].link_busy_ns;
		fprintf(f, ",\n{\"name\":\"link busy\",\"ph\":\"C\",");
		us(f, "ts", s[i].t_ns);
		fprintf(f, ",\"pid\":%d,\"args\":{\"fraction\":%.4f}}", pid,
			dt ? (double)busy / (double)dt : 0.0);
	}
}

int trace_write(FILE *f, const struct trace_ring *ring, const struct trace_sample *s,
		unsigned nsamples, uint64_t period_ns, int counters_pid)
{
	uint64_t head = atomic_load_explicit(&ring->head, memory_order_acquire);
	uint64_t first = head > ring->capacity ? head - ring->capacity : 0, written = 0;
	uint64_t by_kind[TRACE_EVICT + 1] = { 0 };

	fprintf(f, "{\"traceEvents\":[\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,"
		   "\"args\":{\"name\":\"dime run (counters)\"}}",
		counters_pid);
	struct trace_event *ev = malloc((head - first + 1) * sizeof(*ev));
	if (!ev)
		return -1;
	for (uint64_t n = first; n < head; n++)
		if (take(ring, n, &ev[written]))
			by_kind[ev[written++].kind]++;
	qsort(ev, written, sizeof(*ev), by_track_and_time);
	nest(ev, written);
	for (uint64_t i = 0; i < written; i++)
		event(f, &ev[i]);
	free(ev);
	counters(f, s, nsamples, counters_pid);
	fprintf(f, "\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":{\"tool\":\"dime\","
		   "\"clock\":\"CLOCK_MONOTONIC\",\"max_events\":%" PRIu64
		   ",\"events_recorded\":%" PRIu64 ",\"events_written\":%" PRIu64
		   ",\"events_dropped\":%" PRIu64 ",\"remote_fault_events\":%" PRIu64
		   ",\"first_touch_events\":%" PRIu64 ",\"soft_fault_events\":%" PRIu64
		   ",\"eviction_events\":%" PRIu64 ",\"counter_samples\":%u"
		   ",\"counter_period_ns\":%" PRIu64 "}}\n",
		ring->capacity, head, written, head - written, by_kind[TRACE_REMOTE],
		by_kind[TRACE_FIRST_TOUCH], by_kind[TRACE_SOFT], by_kind[TRACE_EVICT], nsamples,
		period_ns);
	return ferror(f) ? -1 : 0;
}
