/* The emulation clock: a cheap, monotonic tick counter (TSC on x86_64, the
 * generic timer on aarch64, CLOCK_MONOTONIC elsewhere) calibrated against
 * CLOCK_MONOTONIC_RAW once per process. Delays are busy-waited on it: a
 * sleep would add the scheduler's wake-up latency, tens of microseconds. */
#ifndef DIME_CLOCK_H
#define DIME_CLOCK_H

#include <stdint.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static inline uint64_t clock_ticks(void)
{
	return __rdtsc();
}
static inline void cpu_relax(void)
{
	__builtin_ia32_pause();
}
#elif defined(__aarch64__)
static inline uint64_t clock_ticks(void)
{
	uint64_t v;
	__asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v));
	return v;
}
static inline void cpu_relax(void)
{
	__asm__ volatile("yield");
}
#else
static inline uint64_t clock_ticks(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static inline void cpu_relax(void)
{
}
#endif

/* Ticks per nanosecond scaled by 2^20 (fixed point), and its inverse.
 * Valid after clock_init(). */
extern uint64_t clock_ticks_per_ns_q20;
extern uint64_t clock_ns_per_tick_q20;

/* Calibrates once per process (about 5 ms); later calls return at once. */
void clock_init(void);

static inline uint64_t clock_ns_to_ticks(uint64_t ns)
{
	return (uint64_t)(((unsigned __int128)ns * clock_ticks_per_ns_q20) >> 20);
}

static inline uint64_t clock_ticks_to_ns(uint64_t t)
{
	return (uint64_t)(((unsigned __int128)t * clock_ns_per_tick_q20) >> 20);
}

/* Spins until clock_ticks() >= deadline. */
static inline void clock_spin_until(uint64_t deadline)
{
	while ((int64_t)(clock_ticks() - deadline) < 0)
		cpu_relax();
}

#endif
