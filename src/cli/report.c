/* Reports of a run: a human summary in the manner of `perf stat`, and JSON
 * for scripts. The JSON is written by hand: it holds only numbers and
 * strings dime chose, and the one string a user chose (the policy, already
 * validated) is escaped anyway. */
#include "cli.h"

#include <inttypes.h>
#include <unistd.h>

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static void row_u64(FILE *f, uint64_t v, const char *what)
{
	fprintf(f, " %16" PRIu64 "      %s\n", v, what);
}

/* ns shown in a larger unit with three decimals, exactly (no doubles). */
static void row_ns(FILE *f, uint64_t ns, uint64_t unit, const char *what)
{
	uint64_t milli = unit / 1000;
	uint64_t whole = ns / unit, frac = (ns % unit + milli / 2) / milli;
	if (frac == 1000) {
		whole++;
		frac = 0;
	}
	char num[32];
	snprintf(num, sizeof(num), "%" PRIu64 ".%03" PRIu64, whole, frac);
	fprintf(f, " %16s      %s\n", num, what);
}

void report_human(FILE *f, const struct run_result *res, const struct dime_params *p,
		  char *const argv[])
{
	const struct dime_stats *s = &res->stats;
	fputs("\n dime stats for '", f);
	for (char *const *a = argv; *a; a++)
		fprintf(f, "%s%s", a == argv ? "" : " ", *a);
	fprintf(f, "':\n   latency %" PRIu64 " ns, bandwidth %" PRIu64 " bit/s, %" PRIu64
		" local pages, %s, first touch %s, %s bandwidth, %s mode\n"
		"   fetch time %" PRIu64 " ns\n\n",
		p->latency_ns, p->bandwidth_bps, p->local_npages, p->policy,
		first_touch_name(p->first_touch), bandwidth_model_name(p->bandwidth_model),
		mode_name(p->mode), dime_fetch_ns(p, page_size()));

	row_u64(f, s->remote_faults, "remote faults");
	row_u64(f, s->clocked_faults, "  of which timed by the kernel's fault event");
	row_u64(f, s->first_touch_faults, "first-touch faults");
	row_u64(f, s->soft_faults, "soft faults (observed pages touched)");
	row_u64(f, s->evictions, "evictions");
	row_u64(f, s->local_pages_peak, "local pages peak");
	row_ns(f, s->injected_delay_ns, 1000000, "injected delay (ms)");
	row_ns(f, s->handling_ns, 1000000, "handling time (ms)");
	row_ns(f, s->policy_ns, 1000000, "in the policy (ms)");
	/* handling_ns covers first touches and soft faults as well as fetches. */
	uint64_t faults = s->remote_faults + s->first_touch_faults + s->soft_faults;
	if (faults)
		row_ns(f, s->handling_ns / faults, 1000, "mean handling per fault (us)");
	else
		fprintf(f, " %16s      %s\n", "-", "mean handling per fault (us)");
	row_ns(f, res->wall_ns, 1000000000, "wall time (s)");
	row_u64(f, res->processes, "processes");
	fputc('\n', f);
}

void report_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

int report_json(FILE *f, const struct run_result *res, const struct dime_params *p)
{
	const struct dime_stats *s = &res->stats;
	fprintf(f,
		"{\n"
		"  \"remote_faults\": %" PRIu64 ",\n"
		"  \"clocked_faults\": %" PRIu64 ",\n"
		"  \"first_touch_faults\": %" PRIu64 ",\n"
		"  \"soft_faults\": %" PRIu64 ",\n"
		"  \"evictions\": %" PRIu64 ",\n"
		"  \"local_pages\": %" PRIu64 ",\n"
		"  \"local_pages_peak\": %" PRIu64 ",\n"
		"  \"injected_delay_ns\": %" PRIu64 ",\n"
		"  \"handling_ns\": %" PRIu64 ",\n"
		"  \"policy_ns\": %" PRIu64 ",\n"
		"  \"soft_fault_ns\": %" PRIu64 ",\n"
		"  \"processes\": %" PRIu64 ",\n"
		"  \"wall_ns\": %" PRIu64 ",\n"
		"  \"exit_status\": %d,\n",
		s->remote_faults, s->clocked_faults, s->first_touch_faults, s->soft_faults, s->evictions,
		s->local_pages, s->local_pages_peak, s->injected_delay_ns, s->handling_ns,
		s->policy_ns, s->soft_fault_ns, res->processes,
		res->wall_ns, res->exit_status);
	fprintf(f,
		"  \"config\": {\n"
		"    \"latency_ns\": %" PRIu64 ",\n"
		"    \"bandwidth_bps\": %" PRIu64 ",\n"
		"    \"local_npages\": %" PRIu64 ",\n"
		"    \"policy\": ",
		p->latency_ns, p->bandwidth_bps, p->local_npages);
	report_json_string(f, p->policy);
	fprintf(f,
		",\n"
		"    \"first_touch\": \"%s\",\n"
		"    \"bandwidth_model\": \"%s\",\n"
		"    \"mode\": \"%s\",\n"
		"    \"evict_batch\": [%" PRIu64 ", %" PRIu64 "],\n"
		"    \"fetch_ns\": %" PRIu64 "\n"
		"  },\n"
		"  \"version\": \"%s\"\n"
		"}\n",
		first_touch_name(p->first_touch), bandwidth_model_name(p->bandwidth_model),
		mode_name(p->mode), p->evict_low, p->evict_high, dime_fetch_ns(p, page_size()),
		DIME_VERSION);
	return fflush(f) || ferror(f) ? -1 : 0;
}
