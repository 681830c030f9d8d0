/* dime stats [-i N] [--json] [--watch SECONDS]: the counters of every
 * instance and of each of its processes, beyond DiME's six columns. Read
 * without the table lock (counters are atomics); the list of processes is
 * taken under it. */
#define _GNU_SOURCE
#include "cli.h"
#include "../control/control.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void stats_usage(FILE *f)
{
	fputs("usage: dime stats [-i N] [--json] [--watch SECONDS]\n"
	      "\n"
	      "Shows the policy and the counters of each instance and of each of its\n"
	      "processes: local pages (now and peak), remote faults, first touches, evictions,\n"
	      "injected delay, dime's handling time, and a histogram of remote fault\n"
	      "times (trap to resume, log2 buckets).\n"
	      "\n"
	      "options:\n"
	      "    -i N, --instance N   only instance N\n"
	      "    --json               JSON instead of text\n"
	      "    --watch SECONDS      again every SECONDS (> 0, decimals allowed) until\n"
	      "                         interrupted\n"
	      "    -h, --help           show this help\n",
	      f);
}

struct snap_member {
	int pid;
	uint64_t local;
	struct dime_stats s;
};

static void show_hist(FILE *f, const struct counters *c, bool json)
{
	if (json) {
		fputs("\"fault_time_hist_log2_ns\": [", f);
		for (int b = 0; b < CTR_HIST_BUCKETS; b++)
			fprintf(f, "%s%" PRIu64, b ? ", " : "", atomic_load(&c->fault_hist[b]));
		fputc(']', f);
		return;
	}
	uint64_t max = 0;
	for (int b = 0; b < CTR_HIST_BUCKETS; b++)
		if (atomic_load(&c->fault_hist[b]) > max)
			max = atomic_load(&c->fault_hist[b]);
	if (!max)
		return;
	fputs("  remote fault time (trap to resume):\n", f);
	for (int b = 0; b < CTR_HIST_BUCKETS; b++) {
		uint64_t v = atomic_load(&c->fault_hist[b]);
		if (!v)
			continue;
		int bar = (int)((v * 40 + max - 1) / max);
		fprintf(f, "    %12" PRIu64 " .. %12" PRIu64 " ns %12" PRIu64 " %.*s\n",
			(uint64_t)1 << b, ((uint64_t)2 << b) - 1, v, bar,
			"########################################");
	}
}

static void show_counters_json(FILE *f, const struct dime_stats *s)
{
	fprintf(f,
		"\"remote_faults\": %" PRIu64 ", \"first_touch_faults\": %" PRIu64
		", \"evictions\": %" PRIu64 ", \"injected_delay_ns\": %" PRIu64
		", \"handling_ns\": %" PRIu64,
		s->remote_faults, s->first_touch_faults, s->evictions, s->injected_delay_ns,
		s->handling_ns);
}

static void show_instance(FILE *f, struct ctl_table *t, uint32_t id, bool json, bool first)
{
	struct ctl_instance *in = &t->inst[id];
	uint64_t lat, bw, loc;
	ctl_params_read(&in->params, &lat, &bw, &loc);
	struct dime_stats s;
	counters_read(&in->ctr, &s);
	static struct snap_member mem[CTL_MAX_MEMBERS];
	char policy[CTL_POLICY_MAX];
	int n = 0;
	ctl_lock(t);
	snprintf(policy, sizeof(policy), "%s", in->policy);
	for (int i = 0; i < CTL_MAX_MEMBERS; i++) {
		struct ctl_member *m = &t->mem[i];
		int pid = atomic_load(&m->pid);
		if (!pid || atomic_load(&m->instance) != (int)id)
			continue;
		mem[n].pid = pid;
		mem[n].local = atomic_load(&m->local);
		counters_read(&m->ctr, &mem[n].s);
		n++;
	}
	ctl_unlock(t);
	uint64_t local = atomic_load(&in->local), peak = atomic_load(&in->local_peak);
	uint64_t pending = atomic_load(&in->pending);
	if (json) {
		fprintf(f,
			"%s\n    {\"instance_id\": %u, \"latency_ns\": %" PRIu64
			", \"bandwidth_bps\": %" PRIu64 ", \"local_npages\": %" PRIu64
			", \"page_fault_count\": %" PRIu64 ", \"local_pages\": %" PRIu64
			", \"local_pages_peak\": %" PRIu64 ", \"pending_evictions\": %" PRIu64 ", ",
			first ? "" : ",", id, lat, bw, loc, atomic_load(&in->page_fault_count),
			(int64_t)local < 0 ? 0 : local, peak, pending);
		fputs("\"policy\": ", f);
		report_json_string(f, policy);
		fputs(", ", f);
		show_counters_json(f, &s);
		fputs(", ", f);
		show_hist(f, &in->ctr, true);
		fputs(", \"processes\": [", f);
		for (int i = 0; i < n; i++) {
			fprintf(f, "%s\n      {\"pid\": %d, \"local_pages\": %" PRIu64 ", ",
				i ? "," : "", mem[i].pid, mem[i].local);
			show_counters_json(f, &mem[i].s);
			fputc('}', f);
		}
		fputs(n ? "\n    ]}" : "]}", f);
		return;
	}
	fprintf(f,
		"instance %u: latency %" PRIu64 " ns, bandwidth %" PRIu64 " bit/s, local_npages %" PRIu64
		", %d process%s\n",
		id, lat, bw, loc, n, n == 1 ? "" : "es");
	fprintf(f, "  %-22s %14s\n", "policy", shown(policy));
	fprintf(f, "  %-22s %14" PRIu64 " (peak %" PRIu64 ")\n", "local pages",
		(int64_t)local < 0 ? 0 : local, peak);
	fprintf(f, "  %-22s %14" PRIu64 "\n", "page_fault_count", atomic_load(&in->page_fault_count));
	fprintf(f, "  %-22s %14" PRIu64 "\n", "remote faults", s.remote_faults);
	fprintf(f, "  %-22s %14" PRIu64 "\n", "first touches", s.first_touch_faults);
	fprintf(f, "  %-22s %14" PRIu64 "\n", "evictions", s.evictions);
	fprintf(f, "  %-22s %14" PRIu64 "\n", "injected delay ns", s.injected_delay_ns);
	fprintf(f, "  %-22s %14" PRIu64 "\n", "handling ns", s.handling_ns);
	show_hist(f, &in->ctr, false);
	if (n)
		fprintf(f, "  %8s %12s %14s %12s %12s %16s %14s\n", "pid", "local pages",
			"remote faults", "first touch", "evictions", "injected ns", "handling ns");
	for (int i = 0; i < n; i++)
		fprintf(f, "  %8d %12" PRIu64 " %14" PRIu64 " %12" PRIu64 " %12" PRIu64 " %16" PRIu64
			" %14" PRIu64 "\n",
			mem[i].pid, mem[i].local, mem[i].s.remote_faults, mem[i].s.first_touch_faults,
			mem[i].s.evictions, mem[i].s.injected_delay_ns, mem[i].s.handling_ns);
}

static void show(FILE *f, struct ctl_table *t, int only, bool json)
{
	ctl_lock(t);
	ctl_sweep(t, 0, stderr);
	uint32_t n = atomic_load(&t->ninstances);
	ctl_unlock(t);
	if (only >= 0 && (uint32_t)only >= n)
		fail("no such instance (there are %u): '%d'", n, only);
	if (json)
		fputs("{\"instances\": [", f);
	bool first = true;
	for (uint32_t i = 0; i < n; i++) {
		if (only >= 0 && i != (uint32_t)only)
			continue;
		if (!json && !first)
			fputc('\n', f);
		show_instance(f, t, i, json, first);
		first = false;
	}
	if (json)
		fputs(first ? "]}\n" : "\n  ]}\n", f);
	fflush(f);
}

/* SECONDS: digits, optionally a '.' and more digits; > 0. */
static bool parse_seconds(const char *s, struct timespec *out)
{
	uint64_t whole = 0, frac = 0, scale = 1000000000;
	const char *p = s;
	if (!*p || *p == '.')
		return false;
	for (; *p >= '0' && *p <= '9'; p++)
		if ((whole = whole * 10 + (uint64_t)(*p - '0')) > 1000000)
			return false;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			if (scale > 1)
				frac += (uint64_t)(*p - '0') * (scale /= 10);
	if (*p || (!whole && !frac))
		return false;
	*out = (struct timespec){ .tv_sec = (time_t)whole, .tv_nsec = (long)frac };
	return true;
}

int cmd_stats(int argc, char **argv)
{
	int only = -1;
	bool json = false;
	struct timespec watch = { 0 };
	bool watching = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			stats_usage(stdout);
			return 0;
		} else if (!strcmp(a, "--json")) {
			json = true;
		} else if (!strcmp(a, "-i") || !strcmp(a, "--instance") ||
			   !strncmp(a, "--instance=", 11)) {
			const char *v = a[1] == '-' && a[10] == '=' ? a + 11 : NULL;
			if (!v && i + 1 >= argc)
				fail("missing value for option: '%s'", a);
			v = v ? v : argv[++i];
			uint64_t n;
			if (parse_u64(v, &n) || n >= CTL_MAX_INSTANCES)
				fail("bad value for --instance: '%s'", shown(v));
			only = (int)n;
		} else if (!strcmp(a, "--watch") || !strncmp(a, "--watch=", 8)) {
			const char *v = a[7] == '=' ? a + 8 : NULL;
			if (!v && i + 1 >= argc)
				fail("missing value for option: '%s'", a);
			v = v ? v : argv[++i];
			if (!parse_seconds(v, &watch))
				fail("bad value for --watch (seconds > 0): '%s'", shown(v));
			watching = true;
		} else {
			fail("unknown option: '%s'", shown(a));
		}
	}
	char dir[PATH_MAX];
	struct ctl_table *t = control_table(dir, sizeof(dir));
	for (;;) {
		show(stdout, t, only, json);
		if (!watching)
			return ferror(stdout) ? 1 : 0;
		nanosleep(&watch, NULL);
		if (!json)
			fputc('\n', stdout);
	}
}
