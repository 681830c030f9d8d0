/* The environment a run's program gets: the contract between `dime run` and
 * the preload library (src/preload).
 *
 *   LD_PRELOAD            the preload, in front of any existing entries
 *   PYTHONMALLOC=malloc   so CPython's small objects go through malloc too
 *   DIME_LATENCY_NS       decimal
 *   DIME_BANDWIDTH_BPS    decimal, > 0
 *   DIME_LOCAL_PAGES      decimal, > 0
 *   DIME_POLICY           policy name, or absolute path of a plug-in
 *   DIME_EVICT_BATCH      LOW,HIGH (decimal pages; 0,0 = off)
 *   DIME_FIRST_TOUCH      local | remote
 *   DIME_BANDWIDTH_MODEL  shared | per-fault
 *   DIME_MODE             thread | signal
 *   DIME_STATS_FD         fd of the shared struct run_stats page
 *   DIME_QUIET_FLOOR=1    dime run already warned about the floor, once
 *   DIME_INSTANCE         the instance to join (src/preload/instance.c)
 *   DIME_CONTROL_DIR      the control directory holding the instance table
 *   DIME_RUN_PID          the `dime run` that started the program
 *   DIME_TRACE_FD         fd of the trace ring (--trace; added by trace_env())
 *   DIME_CALIBRATION      dime's costs as `dime run` measured them (set in its
 *                         own environment by dime_calibration_export())
 *
 * Every other variable is passed on unchanged.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What child_env() sets; inherited values of these are dropped. */
static const char *const overridden[] = {
	"LD_PRELOAD", "PYTHONMALLOC", "DIME_LATENCY_NS", "DIME_BANDWIDTH_BPS",
	"DIME_LOCAL_PAGES", "DIME_POLICY", "DIME_FIRST_TOUCH", "DIME_BANDWIDTH_MODEL",
	"DIME_MODE", "DIME_STATS_FD", "DIME_QUIET_FLOOR", "DIME_EVICT_BATCH", "DIME_INSTANCE",
	"DIME_CONTROL_DIR", "DIME_RUN_PID",
	"DIME_TRACE_FD", /* only a run with --trace passes one (trace-run.c) */
};

#define NOVERRIDDEN (sizeof(overridden) / sizeof(overridden[0]))

static bool is_overridden(const char *entry)
{
	for (size_t i = 0; i < NOVERRIDDEN; i++) {
		size_t n = strlen(overridden[i]);
		if (!strncmp(entry, overridden[i], n) && entry[n] == '=')
			return true;
	}
	return false;
}

static char *var(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *var(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s;
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		fail("out of memory");
	return s;
}

char **child_env(char **base, const char *preload, const struct dime_params *p, int stats_fd,
		 const struct run_instance *inst)
{
	size_t n = 0;
	while (base && base[n])
		n++;
	char **env = calloc(n + NOVERRIDDEN + 1, sizeof(*env));
	if (!env)
		fail("out of memory");
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!is_overridden(base[i]))
			env[k++] = base[i];

	const char *old = getenv("LD_PRELOAD");
	if (old && *old)
		env[k++] = var("LD_PRELOAD=%s:%s", preload, old);
	else
		env[k++] = var("LD_PRELOAD=%s", preload);
	env[k++] = var("PYTHONMALLOC=malloc");
	env[k++] = var("DIME_LATENCY_NS=%" PRIu64, p->latency_ns);
	env[k++] = var("DIME_BANDWIDTH_BPS=%" PRIu64, p->bandwidth_bps);
	env[k++] = var("DIME_LOCAL_PAGES=%" PRIu64, p->local_npages);
	env[k++] = var("DIME_POLICY=%s", p->policy);
	env[k++] = var("DIME_FIRST_TOUCH=%s", first_touch_name(p->first_touch));
	env[k++] = var("DIME_BANDWIDTH_MODEL=%s", bandwidth_model_name(p->bandwidth_model));
	env[k++] = var("DIME_MODE=%s", mode_name(p->mode));
	env[k++] = var("DIME_EVICT_BATCH=%" PRIu64 ",%" PRIu64, p->evict_low, p->evict_high);
	env[k++] = var("DIME_STATS_FD=%d", stats_fd);
	env[k++] = var("DIME_QUIET_FLOOR=1");
	env[k++] = var("DIME_INSTANCE=%d", inst->id);
	env[k++] = var("DIME_CONTROL_DIR=%s", inst->dir);
	env[k++] = var("DIME_RUN_PID=%d", (int)getpid());
	env[k] = NULL;
	return env;
}
