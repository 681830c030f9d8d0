/* DiME's /proc/dime_config, as `dime config`: its write grammar and its
 * table.
 *
 * Write: blank-separated key=value tokens. instance_id is mandatory; an id
 * equal to the number of instances creates one (dime's defaults, then the
 * given keys); latency_ns, bandwidth_bps, local_npages change parameters;
 * page_fault_count=N sets the count (0 resets it); pid=a,b,c sets the PID
 * list; policy=NAME|PATH (dime's) sets the instance's replacement policy.
 * Unlike DiME, which logged errors to the kernel log and applied the
 * rest, any error rejects the whole write and names its token.
 *
 * policy=: a built-in name or a plug-in (a value with a '/', made absolute
 * against the writer's directory), loaded and checked against the policy
 * ABI when written, so that every process can start with it. A running
 * process cannot change its policy (a policy's order over the pages is
 * its own state, and a plug-in cannot be loaded inside a fault), so a
 * change is refused while the instance has processes: all members of an
 * instance then always run its policy. For the same reason pid= moves a
 * process only into an instance with the policy it runs.
 *
 * pid= and what a config write cannot do: a process becomes emulated by
 * starting under `dime run` (or `dime insert`), not by a config write. So
 * every PID listed must be a process running under dime; listing it moves
 * it to this instance (a process is in one instance), and a running member
 * of this instance missing from the list is refused, since it cannot leave
 * emulation this way. A PID not under dime is refused by name. */
#define _GNU_SOURCE
#include "control.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

enum key { K_INSTANCE, K_LATENCY, K_BANDWIDTH, K_LOCAL, K_FAULTS, K_PID, K_POLICY, K_COUNT };
static const char *const key_names[K_COUNT] = {
	"instance_id", "latency_ns", "bandwidth_bps", "local_npages", "page_fault_count", "pid",
	"policy",
};

#define MAX_PIDS CTL_MAX_MEMBERS

struct write_req {
	const char *token[K_COUNT]; /* the token that gave each key, or NULL */
	uint64_t value[K_COUNT];
	pid_t pids[MAX_PIDS];
	int npids;
	char policy[CTL_POLICY_MAX]; /* policy=, checked and made absolute */
};

static int bad(char msg[CTL_MSG], const char *why, const char *token)
{
	char clean[160];
	snprintf(clean, sizeof(clean), "%s", token);
	for (char *c = clean; *c; c++)
		if (iscntrl((unsigned char)*c))
			*c = '?';
	snprintf(msg, CTL_MSG, "%s: '%s'", why, clean);
	return -1;
}

static int number(const char *s, uint64_t *out)
{
	if (!isdigit((unsigned char)*s))
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

/* pid=a,b,c (a trailing comma, as the table prints it, is fine). */
static int parse_pids(const char *value, const char *token, struct write_req *w,
		      char msg[CTL_MSG])
{
	const char *p = value;
	while (*p) {
		char num[24];
		size_t n = strcspn(p, ",");
		uint64_t v;
		if (n == 0 || n >= sizeof(num))
			return bad(msg, "bad pid list", token);
		memcpy(num, p, n);
		num[n] = 0;
		if (number(num, &v) || v == 0 || v > INT32_MAX)
			return bad(msg, "bad pid list", token);
		bool dup = false;
		for (int i = 0; i < w->npids; i++)
			dup |= w->pids[i] == (pid_t)v;
		if (!dup) {
			if (w->npids == MAX_PIDS)
				return bad(msg, "too many pids", token);
			w->pids[w->npids++] = (pid_t)v;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* policy=NAME|PATH: what dime run --policy takes, loaded once here so
 * that a plug-in that does not load or fails the ABI check is refused now,
 * not in every process that joins. */
static int parse_policy(const char *value, const char *token, struct write_req *w,
			char msg[CTL_MSG])
{
	char abs[PATH_MAX], why[CTL_MSG];
	if (!*value)
		return bad(msg, "bad value (a policy name or a plug-in path)", token);
	if (strchr(value, '/')) {
		if (!realpath(value, abs)) {
			snprintf(why, sizeof(why), "bad value (cannot load policy plug-in: %s)",
				 strerror(errno));
			return bad(msg, why, token);
		}
		if (strlen(abs) >= CTL_POLICY_MAX) {
			snprintf(why, sizeof(why),
				 "bad value (its absolute path is longer than %d bytes)",
				 CTL_POLICY_MAX - 1);
			return bad(msg, why, token);
		}
		value = abs;
	}
	char reason[512];
	if (dime_policy_check(value, reason, sizeof(reason))) {
		/* The loader's reason repeats the path; the token names it. */
		snprintf(why, sizeof(why), "bad value (%.200s)", reason);
		return bad(msg, why, token);
	}
	snprintf(w->policy, sizeof(w->policy), "%s", value);
	return 0;
}

static int parse_token(char *tok, struct write_req *w, char msg[CTL_MSG])
{
	char *eq = strchr(tok, '=');
	if (!eq || eq == tok)
		return bad(msg, "bad token (want key=value)", tok);
	*eq = 0;
	int k;
	for (k = 0; k < K_COUNT && strcmp(tok, key_names[k]); k++)
		;
	*eq = '=';
	if (k == K_COUNT)
		return bad(msg, "unknown key", tok);
	if (w->token[k])
		return bad(msg, "key given twice", tok);
	w->token[k] = tok;
	const char *value = eq + 1;
	if (k == K_PID)
		return parse_pids(value, tok, w, msg);
	if (k == K_POLICY)
		return parse_policy(value, tok, w, msg);
	int err = number(value, &w->value[k]);
	if (err == -ERANGE)
		return bad(msg, "bad value (too large)", tok);
	if (err)
		return bad(msg, "bad value (not a number)", tok);
	/* The same limits as everywhere else: dime_params_check()'s. */
	struct dime_params one;
	dime_params_init(&one);
	if (k == K_LATENCY)
		one.latency_ns = w->value[k];
	if (k == K_BANDWIDTH)
		one.bandwidth_bps = w->value[k];
	if (k == K_LOCAL)
		one.local_npages = w->value[k];
	if (dime_params_check(&one, NULL))
		return bad(msg, k == K_LATENCY ? "bad value (too large)" : "bad value (must be > 0)",
			   tok);
	if (k == K_INSTANCE && w->value[k] >= CTL_MAX_INSTANCES)
		return bad(msg, "bad value (at most 63)", tok);
	return 0;
}

static struct ctl_member *member_of_pid(struct ctl_table *t, pid_t pid)
{
	for (int i = 0; i < CTL_MAX_MEMBERS; i++)
		if (atomic_load(&t->mem[i].pid) == pid)
			return &t->mem[i];
	return NULL;
}

/* The checks that need the table; lock held. */
static int check_against_table(struct ctl_table *t, const struct write_req *w, int id,
			       char msg[CTL_MSG])
{
	uint32_t n = atomic_load(&t->ninstances);
	if ((uint32_t)id > n) {
		char why[96];
		snprintf(why, sizeof(why), "no such instance (there are %u; instance_id=%u creates one)",
			 n, n);
		return bad(msg, why, w->token[K_INSTANCE]);
	}
	/* The policy the instance has after this write (a new one: the
	 * default). */
	struct dime_params d;
	dime_params_init(&d);
	const char *policy = w->token[K_POLICY] ? w->policy :
			     (uint32_t)id < n ? t->inst[id].policy : d.policy;
	if (w->token[K_POLICY] && (uint32_t)id < n && strcmp(w->policy, t->inst[id].policy) &&
	    ctl_instance_busy(t, id)) {
		char why[128];
		snprintf(why, sizeof(why),
			 "instance %d has running processes: its policy cannot change until "
			 "they exit", id);
		return bad(msg, why, w->token[K_POLICY]);
	}
	if (!w->token[K_PID])
		return 0;
	for (int i = 0; i < w->npids; i++) {
		struct ctl_member *m = member_of_pid(t, w->pids[i]);
		if (!m) {
			char why[128];
			snprintf(why, sizeof(why),
				 "pid %d is not running under dime (start it with dime run, or dime insert)",
				 (int)w->pids[i]);
			return bad(msg, why, w->token[K_PID]);
		}
		/* Every member runs its instance's policy (see the top). */
		int from = atomic_load(&m->instance);
		if (from != id && from >= 0 && from < CTL_MAX_INSTANCES &&
		    strcmp(t->inst[from].policy, policy)) {
			char why[CTL_MSG];
			snprintf(why, sizeof(why),
				 "pid %d runs policy %.60s (instance %d), instance %d's is %.60s: "
				 "a process keeps its policy", (int)w->pids[i], t->inst[from].policy,
				 from, id, policy);
			return bad(msg, why, w->token[K_PID]);
		}
	}
	for (int i = 0; i < CTL_MAX_MEMBERS; i++) {
		pid_t pid = atomic_load(&t->mem[i].pid);
		if (!pid || atomic_load(&t->mem[i].instance) != id)
			continue;
		bool listed = false;
		for (int j = 0; j < w->npids; j++)
			listed |= w->pids[j] == pid;
		if (!listed) {
			char why[160];
			snprintf(why, sizeof(why),
				 "pid %d runs under dime in instance %d and cannot leave emulation "
				 "(list it, or move it with another instance's pid=)",
				 (int)pid, id);
			return bad(msg, why, w->token[K_PID]);
		}
	}
	return 0;
}

int ctl_config_write(struct ctl_table *t, const char *text, char msg[CTL_MSG])
{
	struct write_req w = { 0 };
	char *copy = strdup(text);
	if (!copy)
		return bad(msg, "out of memory", "");
	int err = 0;
	for (char *save = NULL, *tok = strtok_r(copy, " \t\n\r\f\v", &save); tok && !err;
	     tok = strtok_r(NULL, " \t\n\r\f\v", &save))
		err = parse_token(tok, &w, msg);
	if (!err && !w.token[K_INSTANCE]) {
		snprintf(msg, CTL_MSG, "missing mandatory key: 'instance_id'");
		err = -1;
	}
	if (err) {
		free(copy);
		return -1;
	}
	int id = (int)w.value[K_INSTANCE];
	ctl_lock(t);
	ctl_sweep(t, 0, stderr);
	err = check_against_table(t, &w, id, msg);
	if (!err && (uint32_t)id == atomic_load(&t->ninstances)) {
		struct dime_params d;
		dime_params_init(&d);
		if (ctl_instance_add(t, d.latency_ns, d.bandwidth_bps, d.local_npages, 0) < 0)
			err = bad(msg, "the table is full", w.token[K_INSTANCE]);
	}
	if (!err) {
		struct ctl_instance *in = &t->inst[id];
		uint64_t lat, bw, loc;
		ctl_params_read(&in->params, &lat, &bw, &loc);
		if (w.token[K_LATENCY] || w.token[K_BANDWIDTH] || w.token[K_LOCAL])
			ctl_params_write(&in->params, w.token[K_LATENCY] ? w.value[K_LATENCY] : lat,
					 w.token[K_BANDWIDTH] ? w.value[K_BANDWIDTH] : bw,
					 w.token[K_LOCAL] ? w.value[K_LOCAL] : loc);
		if (w.token[K_FAULTS])
			atomic_store(&in->page_fault_count, w.value[K_FAULTS]);
		if (w.token[K_POLICY])
			strcpy(in->policy, w.policy);
		/* The processes notice the move at their next fault. */
		for (int i = 0; i < w.npids; i++)
			atomic_store(&member_of_pid(t, w.pids[i])->instance, id);
	}
	ctl_unlock(t);
	free(copy);
	return err ? -1 : 0;
}

void ctl_config_print(struct ctl_table *t, FILE *f)
{
	ctl_lock(t);
	ctl_sweep(t, 0, stderr);
	fputs("instance_id latency_ns bandwidth_bps local_npages page_fault_count pid\n", f);
	uint32_t n = atomic_load(&t->ninstances);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t lat, bw, loc;
		ctl_params_read(&t->inst[i].params, &lat, &bw, &loc);
		/* DiME's columns: each as wide as its header, a blank after each. */
		fprintf(f, "%11u %10" PRIu64 " %13" PRIu64 " %12" PRIu64 " %16" PRIu64 " ", i, lat,
			bw, loc, atomic_load(&t->inst[i].page_fault_count));
		for (int m = 0; m < CTL_MAX_MEMBERS; m++) {
			pid_t pid = atomic_load(&t->mem[m].pid);
			if (pid && atomic_load(&t->mem[m].instance) == (int)i)
				fprintf(f, "%d,", (int)pid);
		}
		fputc('\n', f);
	}
	ctl_unlock(t);
}
