/* The trace of a `dime run` while it runs: checking the options, the ring
 * in a memfd that every process of the run maps (DIME_TRACE_FD), and a
 * thread of dime's own that samples the run's counters (see trace.h). */
#define _GNU_SOURCE
#include "cli.h"
#include "trace.h"
#include "../engine/counters.h"
#include "../engine/trace.h"

#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct trace_run {
	struct trace_ring *ring;
	size_t bytes;
	int fd;
	const struct run_stats *stats;
	pthread_t sampler;
	_Atomic int stop;
	/* Written by the sampler only, read after it is joined. */
	struct trace_sample samples[TRACE_SAMPLES_MAX];
	unsigned nsamples;
	uint64_t period_ns;
};

uint64_t trace_check(const char *path, const char *max)
{
	uint64_t n = DIME_TRACE_MAX_EVENTS_DEFAULT;
	if (max && (parse_u64(max, &n) || n == 0 || n > DIME_TRACE_MAX_EVENTS_LIMIT))
		fail("bad value for --trace-max-events (1 to %u): '%s'",
		     DIME_TRACE_MAX_EVENTS_LIMIT, shown(max));
	if (!path)
		fail("--trace-max-events needs --trace FILE: '%s'", shown(max));
	if (!*path)
		fail("bad value for --trace: ''");
	char *copy = strdup(path);
	if (!copy)
		fail("out of memory");
	const char *dir = dirname(copy);
	struct stat st;
	if (access(dir, W_OK | X_OK))
		fail("cannot write trace file '%s': %s", shown(path), strerror(errno));
	if (!stat(path, &st) && S_ISDIR(st.st_mode))
		fail("cannot write trace file '%s': %s", shown(path), strerror(EISDIR));
	if (!access(path, F_OK) && access(path, W_OK))
		fail("cannot write trace file '%s': %s", shown(path), strerror(errno));
	free(copy);
	return n;
}

static uint64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void sample(struct trace_run *t)
{
	if (t->nsamples == TRACE_SAMPLES_MAX) {
		/* Full: keep every second sample, at twice the period. */
		for (unsigned i = 0; i < TRACE_SAMPLES_MAX / 2; i++)
			t->samples[i] = t->samples[2 * i];
		t->nsamples = TRACE_SAMPLES_MAX / 2;
		t->period_ns *= 2;
	}
	t->samples[t->nsamples++] = (struct trace_sample){
		.t_ns = mono_ns(),
		.local_pages = atomic_load_explicit(&t->stats->total.local_pages,
						    memory_order_relaxed),
		.link_busy_ns = atomic_load_explicit(&t->ring->link_busy_ns,
						     memory_order_relaxed),
	};
}

static void *sampler_main(void *arg)
{
	struct trace_run *t = arg;
	uint64_t next = mono_ns();
	while (!atomic_load(&t->stop)) {
		sample(t);
		next += t->period_ns;
		/* In steps of at most one base period, so that the end of the
		 * run is not kept waiting by a long (doubled) period. */
		for (uint64_t now; !atomic_load(&t->stop) && (now = mono_ns()) < next;) {
			uint64_t until = next - now > TRACE_PERIOD_NS ? now + TRACE_PERIOD_NS : next;
			struct timespec at = { .tv_sec = (time_t)(until / 1000000000u),
					       .tv_nsec = (long)(until % 1000000000u) };
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
		}
	}
	sample(t); /* the counts at the end */
	return NULL;
}

struct trace_run *trace_start(uint64_t capacity, const struct run_stats *stats)
{
	struct trace_run *t = calloc(1, sizeof(*t));
	if (!t)
		fail("out of memory");
	t->bytes = trace_ring_bytes(capacity);
	/* Not close-on-exec: the program and its children inherit it. */
	t->fd = memfd_create("dime-trace", 0);
	if (t->fd < 0 || ftruncate(t->fd, (off_t)t->bytes))
		fail("cannot create the trace ring (%zu bytes): %s", t->bytes, strerror(errno));
	t->ring = mmap(NULL, t->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd, 0);
	if (t->ring == MAP_FAILED)
		fail("cannot map the trace ring (%zu bytes): %s", t->bytes, strerror(errno));
	/* A fresh memfd reads as zeroes: every slot is empty (seq 0). */
	t->ring->version = DIME_TRACE_VERSION;
	t->ring->event_size = sizeof(struct trace_event);
	t->ring->capacity = capacity;
	atomic_thread_fence(memory_order_release);
	t->ring->magic = DIME_TRACE_MAGIC;
	t->stats = stats;
	t->period_ns = TRACE_PERIOD_NS;
	int err = pthread_create(&t->sampler, NULL, sampler_main, t);
	if (err)
		fail("cannot start the trace's sampler: %s", strerror(err));
	return t;
}

char **trace_env(char **env, const struct trace_run *t)
{
	size_t n = 0;
	while (env[n])
		n++;
	char **out = calloc(n + 2, sizeof(*out));
	char *var = NULL;
	if (!out || asprintf(&var, "DIME_TRACE_FD=%d", t->fd) < 0)
		fail("out of memory");
	memcpy(out, env, n * sizeof(*out));
	out[n] = var;
	return out;
}

int trace_finish(struct trace_run *t, const char *path)
{
	atomic_store(&t->stop, 1);
	pthread_join(t->sampler, NULL);
	FILE *f = fopen(path, "we");
	if (!f)
		return -1;
	int err = trace_write(f, t->ring, t->samples, t->nsamples, t->period_ns, (int)getpid());
	if (fclose(f))
		err = -1;
	return err;
}
