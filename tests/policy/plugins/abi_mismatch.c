/* A plug-in built for a policy ABI version this dime does not have. */
#include <dime/policy.h>

const struct dime_policy dime_policy_plugin = {
	.abi_version = DIME_POLICY_ABI_VERSION + 1,
	.size = sizeof(struct dime_policy),
	.name = "future",
};
