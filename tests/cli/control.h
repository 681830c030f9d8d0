/* The CLI tests of the control plane run dime with a control directory of
 * their own (DIME_CONTROL_DIR), so parallel runs never share a table. */
#ifndef DIME_TEST_CLI_CONTROL_H
#define DIME_TEST_CLI_CONTROL_H

#include "harness.h"

/* A fresh control directory for this test; the environment entry for it. */
const char *const *control_env(void);
/* Runs dime with argv (NULL-terminated, "dime" first) in that directory. */
struct dime_result ctl_run(const char *const argv[]);
#define CTL(...) ctl_run((const char *const[]){ "dime", __VA_ARGS__, NULL })
/* `dime config`'s output, asserting success and a quiet stderr. */
char *ctl_table_text(void);

/* `dime config` must accept this write. */
void ctl_write_ok(const char *text);

/* An instance's counters, from `dime stats --json -i N`. */
struct inst_stats {
	uint64_t remote_faults, injected_delay_ns, local_pages, local_pages_peak, evictions;
	uint64_t hist[32]; /* remote faults by log2 of their time in ns */
};
struct inst_stats ctl_stats(int instance);

/* A `dime run [args...] -- sweep_until PAGES` in the background (args NULL-
 * terminated, may be empty), returned once the buffer is filled. */
struct sweeper_run {
	pid_t dime;
	char *stop, *ready;
};
struct sweeper_run sweeper_start(const char *const args[], unsigned pages, bool fork_too);
#define SWEEPER(pages, ...) sweeper_start((const char *const[]){ __VA_ARGS__ NULL }, pages, false)
/* Two `dime run`s in instance 0, each sweeping 150 pages. */
void two_sweepers(struct sweeper_run *a, struct sweeper_run *b);
/* The same, and the program forks after filling: two processes sweep. */
#define SWEEPER_FORKED(pages, ...) \
	sweeper_start((const char *const[]){ __VA_ARGS__ NULL }, pages, true)
/* Tells it to stop; returns dime's status. */
int sweeper_stop(struct sweeper_run *s);
/* Waits until instance's remote faults reach at least `n`. */
struct inst_stats ctl_wait_faults(int instance, uint64_t n);
/* The PIDs in row `instance` of `dime config` (up to max); their number. */
int ctl_row_pids(int instance, int *pids, int max);

#endif
