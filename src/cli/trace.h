/* `dime run --trace FILE`: the run's trace ring, the counters sampled while
 * the program runs, and the Chrome trace-event JSON written at the end.
 *
 * Bounds: the ring keeps the most recent --trace-max-events events of all
 * processes (src/engine/trace.h); the counters (local pages, link busy
 * fraction) are sampled every TRACE_PERIOD_NS, at most TRACE_SAMPLES_MAX
 * samples: when full, every second sample is dropped and the period
 * doubles, so a long run keeps its whole span at a coarser grain. */
#ifndef DIME_CLI_TRACE_H
#define DIME_CLI_TRACE_H

#include <stdint.h>
#include <stdio.h>

#define TRACE_PERIOD_NS 10000000u /* 10 ms */
#define TRACE_SAMPLES_MAX 8192u

struct run_stats;
struct trace_run;

/* One counter sample: when, and the run's counts then. */
struct trace_sample {
	uint64_t t_ns;         /* CLOCK_MONOTONIC */
	uint64_t local_pages;  /* over every process of the run */
	uint64_t link_busy_ns; /* transfer time reserved so far */
};

/* Checks the options before anything starts: `path` can be written (it is
 * not created yet) and `max` (NULL: the default) is a count in
 * [1, DIME_TRACE_MAX_EVENTS_LIMIT]. Fails with exit 2 naming the bad one.
 * Returns the ring's capacity. */
uint64_t trace_check(const char *path, const char *max);

/* Creates the ring (a memfd the program inherits) and starts sampling the
 * run's counters from `stats`. Fails with exit 2 if it cannot. */
struct trace_run *trace_start(uint64_t capacity, const struct run_stats *stats);

/* `env` with DIME_TRACE_FD for the ring added (a new array). */
char **trace_env(char **env, const struct trace_run *t);

/* Stops sampling and writes the trace to `path`: 0, or -1 with errno. */
int trace_finish(struct trace_run *t, const char *path);

/* The JSON (trace-write.c): the ring's events, the samples, and how many
 * of each were recorded and dropped. 0, or -1 if writing failed. */
struct trace_ring;
int trace_write(FILE *f, const struct trace_ring *ring, const struct trace_sample *s,
		unsigned nsamples, uint64_t period_ns, int counters_pid);

#endif
