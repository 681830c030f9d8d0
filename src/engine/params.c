/* Parameters: defaults, validation, the fetch-time formula. */
#include "../../include/dime.h"
#include "../policy/policy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void dime_params_init(struct dime_params *p)
{
	memset(p, 0, sizeof(*p));
	/* DiME's insert_module.sh template. */
	p->latency_ns = 2000;
	p->bandwidth_bps = 1000000000;
	p->local_npages = 100000;
	p->size = (size_t)64 << 30;
	strcpy(p->policy, "fifo");
}

int dime_params_check(const struct dime_params *p, const char **bad_key)
{
	const char *bad = NULL;
	/* Keep the fetch time representable: 2 * latency + a page at 1 bps. */
	if (p->latency_ns > UINT64_MAX / 4)
		bad = "latency_ns";
	else if (p->bandwidth_bps == 0)
		bad = "bandwidth_bps";
	else if (p->local_npages == 0)
		bad = "local_npages";
	else if (p->size == 0 || p->size > ((size_t)1 << 46))
		bad = "size";
	else if (dime_policy_check(p->policy, NULL, 0))
		bad = "policy";
	else if (p->evict_high >= p->local_npages || p->evict_low > p->evict_high)
		bad = "evict_batch";
	else if (p->first_touch != DIME_FIRST_TOUCH_LOCAL && p->first_touch != DIME_FIRST_TOUCH_REMOTE)
		bad = "first_touch";
	else if (p->bandwidth_model != DIME_BANDWIDTH_SHARED &&
		 p->bandwidth_model != DIME_BANDWIDTH_PER_FAULT)
		bad = "bandwidth_model";
	else if (p->mode != DIME_MODE_THREAD && p->mode != DIME_MODE_SIGNAL)
		bad = "mode";
	if (bad_key)
		*bad_key = bad;
	return bad ? -EINVAL : 0;
}

uint64_t dime_fetch_ns(const struct dime_params *p, size_t page_size)
{
	unsigned __int128 xfer = ((unsigned __int128)page_size * 8 * 1000000000u +
				  p->bandwidth_bps / 2) / p->bandwidth_bps;
	unsigned __int128 t = 2 * (unsigned __int128)p->latency_ns + xfer;
	return t > UINT64_MAX ? UINT64_MAX : (uint64_t)t;
}

int dime_policy_check(const char *policy, char *msg, size_t size)
{
	const struct dime_policy *pol;
	if (!memchr(policy, 0, DIME_POLICY_MAX)) {
		if (msg && size)
			snprintf(msg, size, "policy name or path longer than %d bytes",
				 DIME_POLICY_MAX - 1);
		return -EINVAL;
	}
	return policy_get(policy, &pol, msg, size);
}
