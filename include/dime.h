/* dime: disaggregated-memory emulation in user space.
 *
 * Public C API. A region is a range of address space that behaves like
 * anonymous private memory, of which at most `local_npages` pages are
 * resident ("local") at a time; touching any other page costs the emulated
 * fetch time of the configured interconnect.
 *
 * Conventions: functions that can fail return 0 or a negative errno value
 * (-EINVAL for bad parameters, -ENOSYS or -EPERM when userfaultfd is not
 * available); allocation functions return NULL and set errno.
 */
#ifndef DIME_H
#define DIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DIME_VERSION "0.1.0"

/* How faults are resolved. */
enum dime_mode {
	/* Handler threads resolve faults; the faulting thread sleeps in the
	 * kernel. Correct for every access, including the kernel's own during
	 * system calls. The default. */
	DIME_MODE_THREAD = 0,
	/* The faulting thread resolves its own fault in a SIGBUS handler.
	 * Faster, but a system call that touches a remote page fails with
	 * EFAULT instead of waiting (see README, "Modes"). */
	DIME_MODE_SIGNAL = 1,
};

/* What the first touch of a never-used page costs. */
enum dime_first_touch {
	DIME_FIRST_TOUCH_LOCAL = 0,  /* becomes local, no fetch delay */
	DIME_FIRST_TOUCH_REMOTE = 1, /* charged as a fetch (later DiME) */
};

/* How concurrent fetches share the link. */
enum dime_bandwidth_model {
	DIME_BANDWIDTH_SHARED = 0,    /* one link per region; transfers queue */
	DIME_BANDWIDTH_PER_FAULT = 1, /* DiME's: no contention */
};

/* Size of dime_params.policy: a path may be long. */
#define DIME_POLICY_MAX 256

struct dime_params {
	uint64_t latency_ns;    /* one-way latency; default 2000 */
	uint64_t bandwidth_bps; /* link bandwidth in bits/s, > 0; default 1e9 */
	uint64_t local_npages;  /* resident-page budget, > 0; default 100000 */
	size_t size;            /* bytes of address space; default 64 GiB */
	/* Replacement policy: a built-in name (fifo, random, clock, lru) or
	 * the path of a plug-in (any value with a '/'; include/dime/policy.h),
	 * NUL-terminated, at most DIME_POLICY_MAX - 1 bytes. Default "fifo". */
	char policy[DIME_POLICY_MAX];
	enum dime_first_touch first_touch;
	enum dime_bandwidth_model bandwidth_model;
	enum dime_mode mode;
	/* Batched eviction by watermarks, in pages (0, 0: off, one victim per
	 * fault beyond the budget). When fewer than evict_low pages of the
	 * budget are free, pages are evicted until evict_high are free, in one
	 * batch. 0 <= evict_low <= evict_high < local_npages. */
	uint64_t evict_low, evict_high;
};

/* Counters of one region (or, from the CLI, of a whole run). */
struct dime_stats {
	uint64_t remote_faults;      /* faults that fetched a remote page (DiME's page_fault_count) */
	uint64_t first_touch_faults; /* first touches of never-used pages */
	uint64_t evictions;          /* pages made remote by the policy */
	uint64_t local_pages;        /* pages local now */
	uint64_t local_pages_peak;   /* most pages local at once */
	uint64_t injected_delay_ns;  /* time spent busy-waiting to emulate fetches */
	uint64_t handling_ns;        /* dime's own handling time, page-in/out included */
	/* Accesses to pages the policy observed (inactive: local but
	 * unmapped): no emulated delay, not remote faults. */
	uint64_t soft_faults;
	uint64_t policy_ns;          /* time spent in the policy's callbacks */
	uint64_t soft_fault_ns;      /* handling soft faults (part of handling_ns) */
	/* Remote faults whose start the kernel's page-fault event timed
	 * (thread mode, where perf events are allowed); the others' start is
	 * estimated from dime's start-up calibration (README, "Accuracy"). */
	uint64_t clocked_faults;
};

/* Fills *p with the defaults above. */
void dime_params_init(struct dime_params *p);

/* Checks *p; returns 0 or -EINVAL. On -EINVAL and if `bad_key` is not NULL,
 * *bad_key names the offending field (a DiME key name). */
int dime_params_check(const struct dime_params *p, const char **bad_key);

/* Checks that `policy` names a built-in policy or a loadable plug-in
 * (loading it). Returns 0, or -EINVAL with a one-line reason in msg. */
int dime_policy_check(const char *policy, char *msg, size_t size);

/* Emulated time of one page fetch in ns, without queueing:
 * 2 * latency_ns + page_size * 8 * 1e9 / bandwidth_bps. */
uint64_t dime_fetch_ns(const struct dime_params *p, size_t page_size);

struct dime_region;

/* Creates a region. On success stores it in *out and returns 0. */
int dime_region_create(const struct dime_params *p, struct dime_region **out);

/* Destroys a region; its memory must no longer be used. */
void dime_region_destroy(struct dime_region *r);

void *dime_region_base(const struct dime_region *r);
size_t dime_region_size(const struct dime_region *r);

/* Returns true if addr lies in an emulated region of this process. */
bool dime_is_emulated(const void *addr);

/* Allocates from a region's heap (any thread). dime_free() takes a pointer
 * from any region. */
void *dime_malloc(struct dime_region *r, size_t size);
void *dime_calloc(struct dime_region *r, size_t n, size_t size);
void dime_free(void *ptr);

/* Copies the region's counters into *out. */
void dime_region_stats(const struct dime_region *r, struct dime_stats *out);

/* The smallest fetch time this machine can emulate in ns (dime's own
 * handling, measured at start-up), for the given mode. */
uint64_t dime_floor_ns(enum dime_mode mode);

/* Hands this process's start-up measurement of dime's own costs (of each
 * mode measured so far: creating a region measures its mode) to the
 * programs it starts: sets DIME_CALIBRATION in the environment, and the
 * engine of a process started with it takes those costs instead of
 * measuring again (1-2 s a mode on a small VM). For processes on this
 * machine only. `dime run` and the preload library call it. */
void dime_calibration_export(void);

/* A message for an error this API returned: for permission and kernel
 * support problems it says what to do. */
const char *dime_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
