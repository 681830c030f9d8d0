/* The table of built-in policies. */
#include "policy.h"

#include <string.h>

extern const struct dime_policy_ops dime_policy_fifo;

static const struct dime_policy_ops *const builtins[] = {
	&dime_policy_fifo,
};

const struct dime_policy_ops *policy_find(const char *name)
{
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
		if (strcmp(builtins[i]->name, name) == 0)
			return builtins[i];
	return NULL;
}

const char *policy_names(void)
{
	return "fifo";
}
