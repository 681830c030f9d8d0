/* A plug-in of the right version without its required choose callback. */
#include <dime/policy.h>

static int init(const struct dime_policy_info *info, void **state)
{
	(void)info;
	*state = (void *)1;
	return 0;
}

static void teardown(void *state) { (void)state; }
static void local(void *state, uint64_t page, enum dime_page_event how)
{
	(void)state, (void)page, (void)how;
}
static void gone(void *state, uint64_t page) { (void)state, (void)page; }

const struct dime_policy dime_policy_plugin = {
	DIME_POLICY_INIT,
	.name = "lacks-choose",
	.init = init,
	.teardown = teardown,
	.page_local = local,
	.page_gone = gone,
};
