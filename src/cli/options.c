/* The run's settings: their names, parsing and validation, shared by the
 * command line and the config file so that both accept the same values. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const struct setting_desc settings[SET_COUNT] = {
	[SET_LATENCY] = { "--latency-ns", "latency_ns", "N",
			  "one-way latency in ns (default 2000)" },
	[SET_BANDWIDTH] = { "--bandwidth-bps", "bandwidth_bps", "N",
			    "link bandwidth in bits/s, > 0 (default 1000000000)" },
	[SET_LOCAL_PAGES] = { "--local-pages", "local_npages", "N",
			      "pages that may be local at once, > 0 (default 100000)" },
	[SET_POLICY] = { "--policy", "policy", "NAME|PATH",
			  "replacement policy: fifo (default), random, clock,\n"
			  "lru, or a plug-in .so (a path with a '/')" },
	[SET_FIRST_TOUCH] = { "--first-touch", "first_touch", "local|remote",
			      "local: a page's first touch costs no fetch (default);\n"
			      "remote: it is charged as one, as in later DiME" },
	[SET_BANDWIDTH_MODEL] = { "--bandwidth-model", "bandwidth_model", "shared|per-fault",
				  "shared: fetches queue on one link (default);\n"
				  "per-fault: no contention, as in DiME" },
	[SET_MODE] = { "--mode", "mode", "thread|signal",
		       "thread: handler threads resolve faults (default);\n"
		       "signal: the faulting thread does, faster, but system\n"
		       "calls on remote pages fail with EFAULT (so do\n"
		       "pthread waits on a lock in the heap: glibc aborts)" },
	[SET_EVICT_BATCH] = { "--evict-batch", "evict_batch", "LOW,HIGH",
			      "batched eviction: when fewer than LOW pages of the\n"
			      "budget are free, evict until HIGH are (default 0,0:\n"
			      "one page per fault beyond the budget)" },
};

/* Indexed by the enums' values. */
static const char *const first_touch_names[] = { "local", "remote" };
static const char *const bandwidth_model_names[] = { "shared", "per-fault" };
static const char *const mode_names[] = { "thread", "signal" };

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("dime: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(EXIT_USAGE);
}

const char *shown(const char *s)
{
	size_t n = strlen(s);
	size_t i = 0;
	while (i < n && !iscntrl((unsigned char)s[i]))
		i++;
	if (i == n)
		return s;
	/* A newline in a token must not split the one-line message. */
	char *c = strdup(s);
	if (!c)
		return "?";
	for (; i < n; i++)
		if (iscntrl((unsigned char)c[i]))
			c[i] = '?';
	return c;
}

int setting_by_option(const char *option)
{
	for (int s = 0; s < SET_COUNT; s++)
		if (!strcmp(settings[s].option, option))
			return s;
	return -1;
}

int setting_by_key(const char *key)
{
	for (int s = 0; s < SET_COUNT; s++)
		if (!strcmp(settings[s].key, key))
			return s;
	return -1;
}

int parse_u64(const char *s, uint64_t *out)
{
	/* strtoull alone would take blanks, a sign (and negate "-1" into a
	 * huge number) and an empty string. */
	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE)
		return -ERANGE;
	*out = v;
	return 0;
}

static int parse_name(const char *s, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return (int)i;
	return -1;
}

static const char *name_of(unsigned v, const char *const *names, size_t n)
{
	return v < n ? names[v] : "?";
}

const char *first_touch_name(enum dime_first_touch t)
{
	return name_of(t, first_touch_names, NELEM(first_touch_names));
}

const char *bandwidth_model_name(enum dime_bandwidth_model m)
{
	return name_of(m, bandwidth_model_names, NELEM(bandwidth_model_names));
}

const char *mode_name(enum dime_mode m)
{
	return name_of(m, mode_names, NELEM(mode_names));
}

static const char *number_detail(int err)
{
	return err == -ERANGE ? "too large" : NULL;
}

int setting_apply(struct dime_params *p, enum setting s, const char *value,
		  const char **detail)
{
	/* The value alone on top of the defaults, so that dime_params_check()
	 * can only object to this setting. */
	struct dime_params one;
	dime_params_init(&one);
	int err = 0, v;
	*detail = NULL;
	switch (s) {
	case SET_LATENCY:
		err = parse_u64(value, &one.latency_ns);
		break;
	case SET_BANDWIDTH:
		err = parse_u64(value, &one.bandwidth_bps);
		break;
	case SET_LOCAL_PAGES:
		err = parse_u64(value, &one.local_npages);
		break;
	case SET_POLICY: {
		/* The loader's reason (no such file, missing symbol, ABI
		 * version) is the detail; the CLI is single-threaded. */
		static char why[512];
		if (dime_policy_check(value, why, sizeof(why))) {
			*detail = why;
			return -1;
		}
		strcpy(one.policy, value);
		break;
	}
	case SET_EVICT_BATCH: {
		const char *comma = strchr(value, ',');
		char low[32];
		if (!comma || (size_t)(comma - value) >= sizeof(low))
			goto bad_name;
		memcpy(low, value, (size_t)(comma - value));
		low[comma - value] = 0;
		err = parse_u64(low, &one.evict_low);
		if (!err)
			err = parse_u64(comma + 1, &one.evict_high);
		break;
	}
	case SET_FIRST_TOUCH:
		if ((v = parse_name(value, first_touch_names, NELEM(first_touch_names))) < 0)
			goto bad_name;
		one.first_touch = v;
		break;
	case SET_BANDWIDTH_MODEL:
		v = parse_name(value, bandwidth_model_names, NELEM(bandwidth_model_names));
		if (v < 0)
			goto bad_name;
		one.bandwidth_model = v;
		break;
	case SET_MODE:
		if ((v = parse_name(value, mode_names, NELEM(mode_names))) < 0)
			goto bad_name;
		one.mode = v;
		break;
	default:
		return -1;
	}
	if (err) {
		*detail = number_detail(err);
		return -1;
	}
	if (dime_params_check(&one, NULL)) {
		static const char *const why[SET_COUNT] = {
			[SET_LATENCY] = "too large",
			[SET_BANDWIDTH] = "must be > 0",
			[SET_LOCAL_PAGES] = "must be > 0",
			[SET_EVICT_BATCH] = "LOW <= HIGH < local pages",
		};
		*detail = why[s];
		return -1;
	}

	switch (s) {
	case SET_LATENCY:
		p->latency_ns = one.latency_ns;
		break;
	case SET_BANDWIDTH:
		p->bandwidth_bps = one.bandwidth_bps;
		break;
	case SET_LOCAL_PAGES:
		p->local_npages = one.local_npages;
		break;
	case SET_POLICY:
		strcpy(p->policy, one.policy);
		break;
	case SET_FIRST_TOUCH:
		p->first_touch = one.first_touch;
		break;
	case SET_BANDWIDTH_MODEL:
		p->bandwidth_model = one.bandwidth_model;
		break;
	case SET_MODE:
		p->mode = one.mode;
		break;
	case SET_EVICT_BATCH:
		p->evict_low = one.evict_low;
		p->evict_high = one.evict_high;
		break;
	default:
		break;
	}
	return 0;

bad_name:
	/* The help's placeholder lists the accepted names. */
	*detail = settings[s].arg;
	return -1;
}

void policy_absolute(struct dime_params *p)
{
	char abs[PATH_MAX];
	if (!strchr(p->policy, '/') || !realpath(p->policy, abs))
		return;
	if (strlen(abs) >= sizeof(p->policy))
		fail("bad value for --policy (its absolute path is longer than %zu bytes): '%s'",
		     sizeof(p->policy) - 1, shown(abs));
	strcpy(p->policy, abs);
}
