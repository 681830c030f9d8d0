/* dime: the replacement-policy plug-in ABI.
 *
 * A replacement policy keeps its own order over the local pages of one
 * emulated region (an "instance") and chooses which of them become remote
 * when the local budget is exceeded. dime's built-in policies (fifo,
 * random, clock, lru) use exactly this interface; a user's policy is a
 * shared object that exports one symbol,
 *
 *     const struct dime_policy dime_policy_plugin = { DIME_POLICY_INIT, ... };
 *
 * (a designated initializer: members a plug-in leaves out are NULL/0).
 *
 * and is chosen with `dime run --policy ./my_policy.so` (any value with a
 * '/' is a path) or dime_params.policy in the C API. It needs no link-time
 * dependency on dime: everything it may call comes in the host table.
 * Build it with `cc -shared -fPIC -I<dime>/include`.
 *
 * Pages are indices into the region, 0 .. npages-1.
 *
 * RULES (every callback). Callbacks are called with the region's lock held,
 * from one of dime's handler threads or from inside a SIGBUS handler of the
 * program's faulting thread (--mode signal), interrupting arbitrary program
 * code. Therefore a callback:
 *   - must not block, sleep, wait for another thread or take locks that
 *     the program might hold;
 *   - must not call malloc/free/realloc or anything that may (stdio, most
 *     of libc): under `dime run` the program's malloc IS dime's emulated
 *     heap, and calling it from here deadlocks or recurses. Allocate with
 *     host->alloc, only in init (memory never comes from the program);
 *   - must not touch emulated memory (the program's heap, anything the
 *     program gives it): a fault there deadlocks on the region lock;
 *   - must be async-signal-safe and reentrant across regions (state lives
 *     in the object init returned, never in globals shared by instances);
 *   - should be fast: it runs inside the emulated fetch time of a fault,
 *     and dime reports the time spent in callbacks (policy_ns).
 * Callbacks of one region never run concurrently (the lock serialises
 * them); different regions may call into the same plug-in concurrently.
 * init and teardown run in an ordinary thread context without the lock,
 * but may run while dime sets up the program's heap: the same rule about
 * malloc applies.
 */
#ifndef DIME_POLICY_ABI_H
#define DIME_POLICY_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped when the layout or meaning of anything here changes in a way
 * that an existing plug-in would misread. dime refuses a plug-in built
 * for another version, with a one-line error naming both versions. */
#define DIME_POLICY_ABI_VERSION 1

/* The symbol a plug-in exports (a const struct dime_policy). */
#define DIME_POLICY_SYMBOL "dime_policy_plugin"

/* Services dime offers a policy. All are async-signal-safe and may be
 * called from any callback. */
struct dime_policy_host {
	uint32_t abi_version; /* DIME_POLICY_ABI_VERSION of this dime */
	uint32_t size;        /* sizeof(struct dime_policy_host) of this dime */
	/* Zero-filled memory of at least `size` bytes, from the kernel, never
	 * emulated, never from malloc; NULL if none. Whole pages: round small
	 * objects up or carve them from one allocation. */
	void *(*alloc)(size_t size);
	/* Gives back memory from alloc, with the size asked for. */
	void (*free)(void *p, size_t size);
	/* The next number of a fast 64-bit PRNG whose whole state is *state
	 * (seed it from dime_policy_info.seed). */
	uint64_t (*random)(uint64_t *state);
	/* A monotonic clock in ns (cheap: a TSC read on x86_64). */
	uint64_t (*now_ns)(void);
};

/* What a region tells its policy at init. */
struct dime_policy_info {
	uint64_t npages;       /* pages in the region: page indices are < npages */
	uint64_t local_npages; /* the local budget */
	uint64_t page_size;    /* bytes per page */
	uint64_t seed;         /* differs per region and process; for the PRNG */
	const struct dime_policy_host *host;
};

/* How a page became local (page_local's `how`). */
enum dime_page_event {
	DIME_PAGE_FIRST_TOUCH = 0, /* a never-used page was touched */
	DIME_PAGE_FETCHED = 1,     /* a remote page came back (a remote fault) */
	/* An inactive page (one the policy asked to observe) was touched: a
	 * soft fault. The page never stopped being local and is still in the
	 * policy's order; this is the reference information. */
	DIME_PAGE_REFERENCED = 2,
	/* A page the policy let go of is local after all: a victim dime could
	 * not move out, a page moved by mremap (new index), a page whose pin
	 * ended, or a page found local after fork(). Treat it as new. */
	DIME_PAGE_RETURNED = 3,
};

/* One call of choose (or tick): what dime asks for and what the policy
 * answers. */
struct dime_policy_choice {
	/* Victims: up to max_victims local pages (0 on a tick) that become
	 * remote now, best first. The policy forgets each one it returns. It
	 * may return fewer, or none if it tracks no page. */
	uint64_t *victims;
	size_t max_victims;
	size_t nvictims; /* set by the policy */
	/* Observation: up to max_observe local pages (0 when dime cannot take
	 * any now) that dime makes *inactive*: unmapped into the store but
	 * still local and still in the policy's order. The next access to one
	 * is a soft fault (no emulated delay, counted in soft_faults) that
	 * calls page_local(DIME_PAGE_REFERENCED): it plays the part of the
	 * hardware accessed bit. Each costs a page move now and a soft fault
	 * (several us) if the page is touched again: observe sparingly. A
	 * request for a page dime cannot unmap now (in flight, pinned) is
	 * dropped silently: the page stays mapped and will not report. */
	uint64_t *observe;
	size_t max_observe;
	size_t nobserve; /* set by the policy */
};

struct dime_policy {
	uint32_t abi_version; /* DIME_POLICY_ABI_VERSION the plug-in was built for */
	uint32_t size;        /* sizeof(struct dime_policy) the plug-in was built with */
	const char *name;     /* short name, for reports */
	const char *summary;  /* one line, for help */

	/* Required. Creates the state of one region; returns 0 and sets
	 * *state, or a negative errno (the region is not created). */
	int (*init)(const struct dime_policy_info *info, void **state);
	/* Required. Frees what init made. */
	void (*teardown)(void *state);
	/* Required. `page` became local (see enum dime_page_event). */
	void (*page_local)(void *state, uint64_t page, enum dime_page_event how);
	/* Required. Fills c->victims (and optionally c->observe). */
	void (*choose)(void *state, struct dime_policy_choice *c);
	/* Required. `page` stopped being local without being chosen: the
	 * program freed, zeroed or moved it, or dime pinned it local for a
	 * moment (it comes back with DIME_PAGE_RETURNED). */
	void (*page_gone)(void *state, uint64_t page);
	/* Optional (NULL). Called on the eviction path, right after choose
	 * (or where choose would be called), at most once every tick_ns, with
	 * max_victims 0 and the observation room choose left: a chance to age
	 * the order or ask for observations. Not called while nothing is
	 * evicted. now_ns is host->now_ns()'s clock. */
	void (*tick)(void *state, uint64_t now_ns, struct dime_policy_choice *c);
	uint64_t tick_ns;
	/* Optional (NULL). The page choose would return as its (skip+1)-th
	 * victim if called now, changing nothing: returns 1 and sets *page,
	 * or 0 if there is none. For instances whose processes share one
	 * budget: dime compares the next victims of the processes and evicts
	 * from the one whose victim has been local longest (since it arrived,
	 * or since the policy last learned it was referenced). Without it,
	 * the process of the instance holding the most pages gives one up
	 * (chosen by its choose). A policy without an order (random) may name
	 * any page it could choose. */
	int (*peek)(void *state, uint64_t skip, uint64_t *page);
};

/* The first two members of a struct dime_policy built against this header. */
#define DIME_POLICY_INIT .abi_version = DIME_POLICY_ABI_VERSION, .size = sizeof(struct dime_policy)

#ifdef __cplusplus
}
#endif
#endif
