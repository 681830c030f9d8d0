/* Replacement policies inside dime: the built-ins and the loader of
 * plug-ins, both behind the public ABI of include/dime/policy.h (one
 * path: the engine calls a built-in exactly as it calls a plug-in).
 *
 * The rules of that header hold for the built-ins too: callbacks run under
 * the region lock, maybe in a SIGBUS handler; no malloc, no blocking, no
 * emulated memory. */
#ifndef DIME_POLICY_H
#define DIME_POLICY_H

#include "../../include/dime/policy.h"

#include <stdbool.h>
#include <stddef.h>

/* The policy called `name`: a built-in, or, if `name` has a '/', the
 * plug-in at that path (loaded once, never unloaded: regions of a fork()ed
 * child still use it). Returns 0, or -EINVAL with one line saying why in
 * msg (if not NULL). */
int policy_get(const char *name, const struct dime_policy **out, char *msg, size_t size);

/* Comma-separated names of the built-in policies, for messages. */
const char *policy_names(void);

/* What dime offers every policy (host.c). */
extern const struct dime_policy_host policy_host;

/* The built-ins. */
extern const struct dime_policy policy_fifo, policy_random, policy_clock,
	policy_lru;

#endif
