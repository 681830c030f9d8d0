/* Replacement policies.
 *
 * A policy keeps its own order over a region's local pages and picks victims
 * when the local budget is exceeded. Every callback is called with the
 * region's lock held, from a handler thread or from a faulting thread's
 * signal handler: it must not block, allocate with malloc, or touch
 * emulated memory. Pages are indices into the region (0 .. npages-1).
 */
#ifndef DIME_POLICY_H
#define DIME_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dime_policy_ops {
	const char *name;
	const char *summary;
	/* Per-region state for npages pages and a budget; NULL on failure. */
	void *(*create)(size_t npages, uint64_t local_npages);
	void (*destroy)(void *st, size_t npages);
	/* `page` became local (first touch or fetch). */
	void (*page_local)(void *st, size_t page);
	/* `page` stopped being local without being chosen (the program freed
	 * or zeroed it). */
	void (*page_gone)(void *st, size_t page);
	/* Chooses a local page to make remote and forgets it. Returns false if
	 * the policy tracks no page. */
	bool (*choose_victim)(void *st, size_t *page);
	/* Optional: the page that choose_victim() would pick after `skip`
	 * other calls, left in place; false if there is none. An instance
	 * shared by several processes (src/engine/instance.c) compares the
	 * age of each process's next victim to decide whose page leaves;
	 * without it, a process only ever evicts its own. */
	bool (*peek_victim)(void *st, size_t skip, size_t *page);
};

/* The built-in policy called `name`, or NULL. */
const struct dime_policy_ops *policy_find(const char *name);

/* Comma-separated names of the built-in policies, for messages. */
const char *policy_names(void);

#endif
