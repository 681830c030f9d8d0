/* The parameters of a run, from the environment `dime run` sets up. A
 * direct LD_PRELOAD user can set the same variables; unset ones take the
 * defaults of dime_params_init(). */
#include "preload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void bad(const char *var, const char *val)
{
	fprintf(stderr, "dime: bad value for %s: '%s'\n", var, val);
	_exit(2);
}

static uint64_t number(const char *var, uint64_t dflt)
{
	const char *s = getenv(var);
	if (!s)
		return dflt;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*s || *s == '-' || *s == '+' || *end || errno)
		bad(var, s);
	return v;
}

/* Index of the environment value in `names`, or the default 0. */
static int choice(const char *var, const char *const *names, int n)
{
	const char *s = getenv(var);
	if (!s)
		return 0;
	for (int i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	bad(var, s);
	return 0;
}

void config_from_env(struct dime_params *p)
{
	static const char *const first_touch[] = { "local", "remote" };
	static const char *const bw_model[] = { "shared", "per-fault" };
	static const char *const mode[] = { "thread", "signal" };

	dime_params_init(p);
	p->latency_ns = number("DIME_LATENCY_NS", p->latency_ns);
	p->bandwidth_bps = number("DIME_BANDWIDTH_BPS", p->bandwidth_bps);
	p->local_npages = number("DIME_LOCAL_PAGES", p->local_npages);
	p->size = number("DIME_REGION_BYTES", p->size);
	const char *pol = getenv("DIME_POLICY");
	if (pol) {
		/* Loaded here again, in every process (exec'd ones too): the
		 * file may have changed since dime run checked it. */
		static char why[512];
		if (dime_policy_check(pol, why, sizeof(why))) {
			fprintf(stderr, "dime: bad value for DIME_POLICY: %s\n", why);
			_exit(2);
		}
		strcpy(p->policy, pol);
	}
	const char *batch = getenv("DIME_EVICT_BATCH");
	if (batch) {
		unsigned long long lo, hi;
		int used = 0;
		if (sscanf(batch, "%llu,%llu%n", &lo, &hi, &used) != 2 || batch[used] ||
		    batch[0] == '-' || strchr(batch, '-'))
			bad("DIME_EVICT_BATCH", batch);
		p->evict_low = lo;
		p->evict_high = hi;
	}
	p->first_touch = choice("DIME_FIRST_TOUCH", first_touch, 2);
	p->bandwidth_model = choice("DIME_BANDWIDTH_MODEL", bw_model, 2);
	p->mode = choice("DIME_MODE", mode, 2);

	const char *key;
	if (dime_params_check(p, &key)) {
		fprintf(stderr, "dime: bad value for %s in the environment\n", key);
		_exit(2);
	}
}
