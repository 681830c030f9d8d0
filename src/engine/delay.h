/* The delay model: what a fetch from remote memory costs.
 *
 * DiME's model: 2 * latency + page_size * 8 / bandwidth, counted from when
 * the fault began, so dime's own handling is part of the budget. With the
 * shared-link model (the default) transfers of concurrent fetches of one
 * region (or of every process of its instance: r->link) queue for the link: the request travels one latency, waits until
 * the link is idle, occupies it for one transfer time, and the data
 * arrives one latency later. */
#ifndef DIME_DELAY_H
#define DIME_DELAY_H

#include "internal.h"

/* Tick at which the fetch of a fault that began at t_begin completes, less
 * `pay` ticks of the region's delay debt (fault.c; negative: a credit).
 * Reserves the link (shared model). Lock-free; any thread.
 *
 * The debt comes off the end, and off the link's reservation with it: a
 * stream of fetches that fell behind (a page-in preempted for 20 us) finds
 * the link busy until the previous reservation ends however early its own
 * fault counts as having begun, so only a reservation that ends earlier
 * lets the stream catch up. The reservation is pulled back only while it
 * is the last one (another fetch queued behind it keeps its place). */
/* Whether a fault on a page in state st waits for a fetch: a remote page
 * (or one on its way out), or a first touch charged like one. */
static inline bool fetch_delayed(const struct region *r, enum page_state st)
{
	return st == PAGE_REMOTE || st == PAGE_EVICTING ||
	       (st == PAGE_UNTOUCHED && r->params.first_touch == DIME_FIRST_TOUCH_REMOTE);
}

/* When a transfer that reaches the link at `arrive` ends, the link being
 * busy until free_at. */
static inline uint64_t transfer_end(const struct region *r, uint64_t arrive, uint64_t free_at)
{
	return ((int64_t)(free_at - arrive) > 0 ? free_at : arrive) + r->transfer_ticks;
}

static inline uint64_t delay_deadline(struct region *r, uint64_t t_begin, int64_t pay)
{
	uint64_t lat = r->latency_ticks, xfer = r->transfer_ticks;
	if (r->params.bandwidth_model == DIME_BANDWIDTH_PER_FAULT)
		return t_begin - (uint64_t)pay + 2 * lat + xfer;
	uint64_t arrive = t_begin + lat, end;
	uint64_t free_at = atomic_load_explicit(r->link, memory_order_relaxed);
	do {
		end = transfer_end(r, arrive, free_at);
	} while (!atomic_compare_exchange_weak_explicit(r->link, &free_at, end,
							memory_order_relaxed,
							memory_order_relaxed));
	if (pay) {
		uint64_t ours = end;
		atomic_compare_exchange_strong_explicit(r->link, &ours, end - (uint64_t)pay,
							memory_order_relaxed, memory_order_relaxed);
	}
	return end - (uint64_t)pay + lat;
}

/* When a fetch of r that began at t_begin would complete: delay_deadline()
 * without reserving the link and without the debt. For a handler deciding
 * which of its faults is due first. */
static inline uint64_t delay_estimate(const struct region *r, uint64_t t_begin)
{
	uint64_t lat = r->latency_ticks;
	if (r->params.bandwidth_model == DIME_BANDWIDTH_PER_FAULT)
		return t_begin + 2 * lat + r->transfer_ticks;
	return transfer_end(r, t_begin + lat, atomic_load_explicit(r->link, memory_order_relaxed)) +
	       lat;
}

#endif
