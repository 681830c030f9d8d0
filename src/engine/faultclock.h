/* When each fault began and ended, as the kernel saw it (thread mode).
 *
 * A handler thread learns of a fault one trap and one wake-up after the
 * access, and the delay model counts from the access. The calibrated mean
 * of that interval (`pre`) is right on average only where the interval
 * does not vary: here a wake-up across vCPUs, a handler that another task
 * delays, a timer tick make it 5-70 us instead of 5.5, and each such fault
 * lasts that much longer than configured, unseen. The kernel's page-fault
 * software event fires at the start of every page fault of the process,
 * before userfaultfd, in the faulting thread, and its fault-completed
 * events at the end: sampled, they give each fault's thread, address and
 * time. See faultclock.c. */
#ifndef DIME_FAULTCLOCK_H
#define DIME_FAULTCLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Opens the events for the calling thread and the threads it creates from
 * now on, once per process (a fork()ed child opens its own; call it there
 * again). Off, silently, where perf events are not allowed: faults then
 * use the calibrated `pre`. Under engine.lock. */
void faultclock_open(void);

/* The events cost every page fault of the process: they run from
 * faultclock_need() on (a region with a fetch time to emulate; any
 * thread, also a handler taking a live latency change), and during a
 * start-up calibration (faultclock_calibrating(true) .. (false), under
 * engine.lock), which measures dime's costs with them. */
void faultclock_need(void);
void faultclock_calibrating(bool on);

/* The tick at which thread tid's fault on the page at `page` began, and
 * the CPU it faulted on, from its sample: true, *t_began and *cpu, or
 * false (no sample: a thread that began before faultclock_open(), a ring
 * that overflowed, events off). Each sample answers once. Any handler
 * thread; takes the clock's lock. */
bool faultclock_began(pid_t tid, uintptr_t page, uint64_t *t_began, int *cpu);

/* Before the handler wakes thread tid from its fault at `page` of r,
 * whose page-in ended at tick t_done: when the end of that fault arrives,
 * fault_end_measured() gets it (calib: the fault's index in r's
 * calibration log, or -1). Takes the clock's lock. */
struct region;
void faultclock_expect_end(pid_t tid, uintptr_t page, struct region *r, uint64_t t_done,
			   int calib);

#endif
