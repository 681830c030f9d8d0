/* What the attach tests share: a target program to insert into
 * (tests/attach/progs/target.c), running dime in a control directory of
 * the test's own ($XDG_RUNTIME_DIR/dime), and looking at the result. */
#ifndef DIME_TEST_ATTACH_HARNESS_H
#define DIME_TEST_ATTACH_HARNESS_H

#include "helpers.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Generous bounds on waiting, never on speed: a slow machine passes. */
#define WAIT_S 120

struct target {
	pid_t pid;
	FILE *out;
	char ready[128]; /* its "ready CHECKSUM ..." line */
};

struct run {
	int status;
	char out[16384];
};

/* $XDG_RUNTIME_DIR of the test's dime commands (the suite's .init). */
extern char *xdg;
void control_dir_init(void);

/* The next line of the target's output starting with `prefix`, into buf;
 * false at end of output or after WAIT_S seconds. */
bool wait_line(struct target *t, const char *prefix, char *buf, size_t size);
void target_start(struct target *t);
/* Lets the target run `n` more full passes over its data, counted from now. */
void passes(struct target *t, int n);
/* SIGTERM; the target's last check must give the checksum it started with
 * and it must exit 0. */
void target_finish(struct target *t);

/* Runs dime with args (NULL-terminated), stdout and stderr together. */
struct run dime(const char *const args[]);
#define DIME(...) dime((const char *const[]){ __VA_ARGS__, NULL })
/* Starts dime with args in the background, its output discarded. */
pid_t dime_background(const char *const args[]);
struct run insert(pid_t pid, const char *local_pages);
struct run detach(pid_t pid);
/* The same, asserting exit status 0 (its output in the message if not). */
struct run insert_ok(pid_t pid, const char *local_pages);
struct run detach_ok(pid_t pid);
/* The number after `key` in out (asserted present). */
uint64_t stat_of(const char *out, const char *key);
/* Lines of /proc/PID/FILE, or entries of the directory /proc/PID/FILE. */
int proc_count(pid_t pid, const char *what);
/* The open descriptors of pid: their number, and "FD -> TARGET" of each
 * into buf (for failure messages). */
int proc_fds(pid_t pid, char *buf, size_t size);
/* Whether every page of [addr, addr+len) of pid has bytes (pagemap). */
bool all_present(pid_t pid, uintptr_t addr, size_t len);
bool gone(const char *path);
/* The agent's pid, from its state file. */
pid_t agent_of(pid_t pid);
/* Kills the dime-agent serving pid with SIGKILL and waits (up to WAIT_S)
 * until it is gone. */
void kill_agent(pid_t pid);
void skip_unless_root(void);
/* Exit status 2, one line naming `token`. */
void assert_refused(const struct run *r, const char *token);

#endif
