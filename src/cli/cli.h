/* The dime command line: declarations shared by its files.
 *
 * Exit statuses follow the shell: a run exits with its program's status
 * (128 + signal if a signal killed it), 127 if the program could not be
 * executed, and 2 (EXIT_USAGE) when dime refused to start anything. Every
 * refusal prints exactly one line on stderr that quotes the bad token.
 */
#ifndef DIME_CLI_H
#define DIME_CLI_H

#include "../../include/dime.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define EXIT_USAGE 2
#define EXIT_NOEXEC 127

/* Prints "dime: <message>" on stderr and exits with EXIT_USAGE. */
__attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...);

/* `s` made safe to quote in a one-line message: control characters become
 * '?'. Returns `s` itself when it is clean; otherwise a string that lives
 * until exit. */
const char *shown(const char *s);

/* Settings of a run that have both a command-line option and a key in
 * DiME's config file. */
enum setting {
	SET_LATENCY,
	SET_BANDWIDTH,
	SET_LOCAL_PAGES,
	SET_POLICY,
	SET_FIRST_TOUCH,
	SET_BANDWIDTH_MODEL,
	SET_MODE,
	SET_EVICT_BATCH,
	SET_COUNT
};

struct setting_desc {
	const char *option; /* "--latency-ns" */
	const char *key;    /* "latency_ns", as in DiME's config file */
	const char *arg;    /* placeholder in the help */
	const char *help;
};

extern const struct setting_desc settings[SET_COUNT];

/* The setting with this option (without "=value") or key; -1 if none. */
int setting_by_option(const char *option);
int setting_by_key(const char *key);

/* Parses `value` and stores it in *p. On a bad value returns -1 and leaves
 * *p alone; *detail then says why, or is NULL when the text is simply not
 * a value of the right kind. Validation is dime_params_check()'s. */
int setting_apply(struct dime_params *p, enum setting s, const char *value,
		  const char **detail);

/* Strict unsigned decimal: digits only, no sign, no blanks, no overflow.
 * Returns 0, -EINVAL or -ERANGE. */
int parse_u64(const char *s, uint64_t *out);

/* Names of enum values, as the options and environment spell them. */
const char *first_touch_name(enum dime_first_touch t);
const char *bandwidth_model_name(enum dime_bandwidth_model m);
const char *mode_name(enum dime_mode m);

/* Reads DiME's config file into *p; on any error fails with a message
 * naming the file and line. Marks the settings it set in seen (if not
 * NULL). */
void config_load(const char *path, struct dime_params *p, bool seen[SET_COUNT]);

/* Subcommands: argv[0] is the subcommand's name. */
int cmd_run(int argc, char **argv);
void run_usage(FILE *f);
int cmd_config(int argc, char **argv);
void config_usage(FILE *f);
int cmd_stats(int argc, char **argv);
void stats_usage(FILE *f);

/* The instance table of the control directory, opened; fails with its
 * message if it cannot be. */
struct ctl_table;
struct ctl_table *control_table(char *dir, size_t size);
int cmd_sweep(int argc, char **argv);
void sweep_usage(FILE *f);

/* Option words (args.c). arg_is: is `arg` the option `name`, alone (*value
 * NULL) or as name=value (*value points after '=')? arg_value: the value
 * of the option at argv[*i], after '=' or the next word (advancing *i);
 * fails if there is none. arg_no_value: fails if a flag was given a value. */
bool arg_is(const char *arg, const char *name, const char **value);
const char *arg_value(int argc, char **argv, int *i, const char *name, const char *value);
void arg_no_value(const char *arg, const char *value);
int cmd_insert(int argc, char **argv);
void insert_usage(FILE *f);
int cmd_detach(int argc, char **argv);
void detach_usage(FILE *f);

/* The shared page that the run's processes add their counters into. */
struct run_stats;
struct run_stats *stats_page_create(int *fd);

/* What a run produced, for the reports. */
struct run_result {
	struct dime_stats stats;
	uint64_t processes;
	uint64_t wall_ns;
	int exit_status;
};

void run_result_read(struct run_result *res, const struct run_stats *page);
void report_human(FILE *f, const struct run_result *res, const struct dime_params *p,
		  char *const argv[]);
/* Returns 0, or -1 if writing failed. */
int report_json(FILE *f, const struct run_result *res, const struct dime_params *p);

/* The instance a run's processes join (run-instance.c). */
struct run_instance {
	int id;
	char dir[4096]; /* the control directory */
	struct ctl_table *table;
	bool own;       /* made by this run for itself */
};
/* Joins instance `id` (>= 0; its parameters replace latency, bandwidth and
 * local pages in *p) or makes one from *p (id < 0). Fails with exit 2 on a
 * bad id. */
void run_instance_open(struct run_instance *ri, int id, struct dime_params *p);
/* After the program ended: its exited processes leave the table, and an
 * instance made for the run leaves it too if it is the last row. */
void run_instance_close(struct run_instance *ri);
/* --instance N was given (dime run, dime insert): fails if latency,
 * bandwidth or local pages were given too, as options (values) or in the
 * config file (in_file). */
void run_instance_exclusive(const char *const values[SET_COUNT], const bool in_file[SET_COUNT]);

/* The child's environment: `base` plus the preload contract (see env.c).
 * Never fails (exits on allocation failure). */
char **child_env(char **base, const char *preload, const struct dime_params *p,
		 int stats_fd, const struct run_instance *inst);

/* Blocks the signals dime forwards to its program, in this thread and in
 * every thread started later; spawn_wait() unblocks them. */
void signals_block(void);

/* Runs argv[0] (searched in PATH) with `envp`, forwarding SIGINT, SIGTERM,
 * SIGHUP and SIGQUIT sent to dime, and returns its status the shell way:
 * the exit status, or 128 + the signal that killed it. If it cannot be
 * executed, says so and returns EXIT_NOEXEC with *ran false. */
int spawn_wait(char *const argv[], char *const envp[], bool *ran);

#endif
