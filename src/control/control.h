/* The control plane: the per-user control directory, the instance table in
 * it, DiME's write grammar and process liveness. Used by the CLI (`dime
 * config`, `dime stats`, `dime run`) and by the preload (an emulated process
 * joins its instance). Functions return 0 or -errno unless said otherwise;
 * those that can fail for the user's reasons fill a one-line message. */
#ifndef DIME_CONTROL_H
#define DIME_CONTROL_H

#include "table.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define CTL_MSG 256

/* --- dir.c ---------------------------------------------------------------- */
/* The control directory: $DIME_CONTROL_DIR, else $XDG_RUNTIME_DIR/dime,
 * else /run/dime for root, else /tmp/dime-$UID. Created 0700 if missing;
 * refused if it is a symlink, not a directory, not owned by this user or
 * open to others. Fills path (PATH_MAX) and returns an O_DIRECTORY fd, or
 * -1 with msg set. */
int ctl_dir_open(char *path, size_t size, char msg[CTL_MSG]);
/* Opens an existing directory with the same checks; -1 with msg. */
int ctl_dir_check_open(const char *path, char msg[CTL_MSG]);

/* --- table.c -------------------------------------------------------------- */
/* Opens (creating and initialising if needed) the table in the control
 * directory and maps it. NULL with msg set on failure. */
struct ctl_table *ctl_table_open(char msg[CTL_MSG]);
/* The same, from an already resolved directory path (the preload's
 * DIME_CONTROL_DIR), without creating the directory. */
struct ctl_table *ctl_table_open_at(const char *dir, char msg[CTL_MSG]);
/* Takes the table lock, recovering it from a holder that died. */
void ctl_lock(struct ctl_table *t);
void ctl_unlock(struct ctl_table *t);
/* Appends an instance with these parameters (lock held): its id, or -1 if
 * the table is full. */
int ctl_instance_add(struct ctl_table *t, uint64_t latency, uint64_t bandwidth,
		     uint64_t local_npages, uint32_t flags);
/* Removes AUTO instances from the end of the table while they have no
 * member and no live owner (lock held). */
void ctl_instances_trim(struct ctl_table *t);

/* --- members.c ------------------------------------------------------------ */
/* Field 22 of /proc/PID/stat (start time in clock ticks since boot), or 0 if
 * the process does not exist. */
uint64_t ctl_proc_start_time(pid_t pid);
/* Whether the member's process still runs (same pid, same start time);
 * for an inserted process, whether its agent does (which removes the
 * member itself when the process exits). */
bool ctl_member_alive(const struct ctl_member *m);
/* Adds this process to instance `inst`, or finds its slot (an exec keeps
 * the pid and the start time). Lock held. The slot, or NULL if full. */
struct ctl_member *ctl_member_add(struct ctl_table *t, int inst, pid_t run);
/* Adds process pid, served by this process (a dime-agent), to instance
 * `inst`. Lock held. 0, -ESRCH (no such process), -EEXIST (a member
 * already) or -ENOSPC (the table is full). */
int ctl_member_add_inserted(struct ctl_table *t, int inst, pid_t pid, struct ctl_member **out);
/* The live member with this pid, or NULL. Lock held. */
struct ctl_member *ctl_member_of(struct ctl_table *t, pid_t pid);
/* Frees a member's slot and takes its pages and pending evictions out of
 * its instance's counts. Lock held. */
void ctl_member_remove(struct ctl_table *t, struct ctl_member *m);
/* Removes members whose process is gone (or whose agent died). Lock held.
 * Those of `quiet_run` (a `dime run` cleaning up after its own program)
 * are removed silently; the others, and those live members removed since
 * the last sweep (ctl_reap), are listed on `report` (if not NULL) in one
 * line, as "dime: removed exited processes from the instance table: 1234
 * (instance 0), ...", and a second line for processes whose agent died.
 * Returns how many this sweep removed. */
int ctl_sweep(struct ctl_table *t, pid_t quiet_run, FILE *report);
/* The sweep of a live member (an emulated process, an agent): removes dead
 * members and keeps them for the next command to report. Takes the lock
 * itself; does the work at most once per 200 ms over all processes, and
 * returns 0 at once when it is not due. How many it removed. */
int ctl_reap(struct ctl_table *t);

/* --- grammar.c ------------------------------------------------------------ */
/* Applies DiME's write grammar ("instance_id=0 latency_ns=1000 ...") to the
 * table, all or nothing. Takes the lock itself. Returns 0, or -1 with msg
 * naming the bad token. */
int ctl_config_write(struct ctl_table *t, const char *text, char msg[CTL_MSG]);
/* Prints DiME's table. Takes the lock itself. */
void ctl_config_print(struct ctl_table *t, FILE *f);

#endif
