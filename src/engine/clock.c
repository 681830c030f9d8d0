/* Tick calibration. See clock.h. */
#include "clock.h"

#include <pthread.h>

uint64_t clock_ticks_per_ns_q20 = 1u << 20;
uint64_t clock_ns_per_tick_q20 = 1u << 20;

static pthread_once_t once = PTHREAD_ONCE_INIT;

static uint64_t raw_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void calibrate(void)
{
#if defined(__aarch64__)
	uint64_t freq;
	__asm__ volatile("mrs %0, cntfrq_el0" : "=r"(freq));
	if (freq) {
		clock_ticks_per_ns_q20 = (uint64_t)(((unsigned __int128)freq << 20) / 1000000000u);
		clock_ns_per_tick_q20 = (uint64_t)(((unsigned __int128)1000000000u << 20) / freq);
		return;
	}
#endif
	/* Median of five 1 ms windows: a vCPU preempted between the paired
	 * reads skews one window, not the result. */
	double r[5];
	for (int i = 0; i < 5; i++) {
		uint64_t n0 = raw_ns(), t0 = clock_ticks();
		while (raw_ns() - n0 < 1000000)
			;
		uint64_t t1 = clock_ticks(), n1 = raw_ns();
		r[i] = (double)(t1 - t0) / (double)(n1 - n0);
	}
	for (int i = 1; i < 5; i++)
		for (int j = i; j > 0 && r[j] < r[j - 1]; j--) {
			double x = r[j];
			r[j] = r[j - 1];
			r[j - 1] = x;
		}
	double best = r[2];
	clock_ticks_per_ns_q20 = (uint64_t)(best * (1 << 20));
	clock_ns_per_tick_q20 = (uint64_t)((1 << 20) / best);
}

void clock_init(void)
{
	pthread_once(&once, calibrate);
}
